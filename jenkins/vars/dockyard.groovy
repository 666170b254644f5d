// Dockyard steps for Jenkins pipelines: run a pipeline on Dockyard agents and follow
// it in the build console, plus status, cancel and artifacts. See dockyard.txt.
import groovy.json.JsonSlurperClassic
import io.dockyard.jenkins.DockyardCli

/**
 * Submits `file` to Dockyard (re-attaching to the run a retried or resumed step
 * started, by idempotency key), streams its live log stage by stage, fetches the
 * artifacts into `artifactsDir`, records JUnit results, archives `archive`, and
 * sets the build result from the CLI's exit code. An abort cancels the run.
 * Returns the run id.
 */
def run(Map args) {
  String file = args.file ?: 'dockyard.yml'
  String artifactsDir = args.artifactsDir ?: 'target'
  String step = args.id ?: file
  String key = args.idempotencyKey ?: DockyardCli.idempotencyKey(env.BUILD_TAG ?: 'manual', step)
  String junitFile = "${artifactsDir}/dockyard-junit.xml"
  DockyardCli cli = new DockyardCli(args.cli ?: 'dockyard')

  String runId = null
  Integer code = null
  withDockyard(args) {
    String submitted = "${artifactsDir}/.dockyard-submit.json"
    sh(script: "mkdir -p ${DockyardCli.quote(artifactsDir)}", label: 'dockyard: prepare')
    int submitCode = sh(script: cli.submit(file, key, submitted), returnStatus: true, label: "dockyard: submit ${file}")
    if (submitCode != 0) {
      code = submitCode
      return
    }
    Map answer = new JsonSlurperClassic().parseText(readFile(submitted)) as Map
    runId = answer.run_id as String
    echo(answer.existing ? "Dockyard run ${runId}: re-attached (submitted earlier by this step)" :
                           "Dockyard run ${runId} submitted")
    try {
      code = sh(script: cli.watch(runId, artifactsDir, junitFile), returnStatus: true, label: "dockyard: run ${runId}")
    } catch (InterruptedException aborted) {
      // A Jenkins abort: nothing may keep running on the agents.
      echo("Aborted: cancelling Dockyard run ${runId}")
      sh(script: cli.cancel(runId), returnStatus: true, label: "dockyard: cancel ${runId}")
      throw aborted
    }
  }
  if (code in [0, 1, 5] && args.junit != false) {
    junit(testResults: "${junitFile},${artifactsDir}/reports/**/*.xml", allowEmptyResults: true)
  }
  if (code == 0 && args.archive) {
    archiveArtifacts(artifacts: "${artifactsDir}/${args.archive}", fingerprint: true)
  }
  Map table = new JsonSlurperClassic().parseText(libraryResource('io/dockyard/jenkins/exit-codes.json')) as Map
  Map outcome = DockyardCli.outcome(table, code as int)
  if (outcome.result != 'SUCCESS') {
    // `error` fails the build unless a `retry` around this step succeeds later; a
    // result set here would stick even then, so only the ones error cannot say.
    if (outcome.result != 'FAILURE') currentBuild.result = outcome.result
    error("Dockyard${runId ? ' run ' + runId : ''}: ${outcome.meaning} (exit code ${code})")
  }
  return runId
}

/** The run as JSON fields (run_id, pipeline, state, stages...). */
Map status(String runId, Map args = [:]) {
  DockyardCli cli = new DockyardCli(args.cli ?: 'dockyard')
  String json = null
  withDockyard(args) {
    json = sh(script: cli.status(runId), returnStdout: true, label: "dockyard: status ${runId}")
  }
  return new JsonSlurperClassic().parseText(json) as Map
}

/** Cancels the run (needs a token allowed to: its submitter or an admin). */
def cancel(String runId, Map args = [:]) {
  DockyardCli cli = new DockyardCli(args.cli ?: 'dockyard')
  withDockyard(args) {
    sh(script: cli.cancel(runId), label: "dockyard: cancel ${runId}")
  }
}

/** Fetches the run's artifacts into `dest`, each verified by sha256. */
def artifacts(String runId, String dest, Map args = [:]) {
  DockyardCli cli = new DockyardCli(args.cli ?: 'dockyard')
  withDockyard(args) {
    sh(script: cli.artifacts(runId, dest), label: "dockyard: artifacts ${runId}")
  }
}

// The controller address and credentials for the CLI, through the environment
// only: the token never appears on a command line or in the console.
void withDockyard(Map args, Closure body) {
  List vars = []
  if (args.controller) vars << "DOCKYARD_CONTROLLER=${args.controller}"
  List credentials = []
  if (args.credentialsId) credentials << string(credentialsId: args.credentialsId, variable: 'DOCKYARD_TOKEN')
  if (args.caCredentialsId) credentials << file(credentialsId: args.caCredentialsId, variable: 'DOCKYARD_CA_FILE')
  withEnv(vars) {
    if (credentials) {
      withCredentials(credentials) { body() }
    } else {
      body()
    }
  }
}
