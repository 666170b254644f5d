// Tests of vars/dockyard.groovy against the Jenkins stand-in, with `sh` answered by
// a script of exit codes (no Dockyard needed). Run: groovy -cp jenkins/test
// jenkins/test/DockyardStepTest.groovy [TEST_NAME ...]; prints "N passed, M failed".

File library = new File(getClass().protectionDomain.codeSource.location.path).parentFile.parentFile
final String TOKEN = 'dyt_' + ('5e' * 32)
final String CA = '/secrets/dockyard-ca.crt'

// A stand-in whose `sh` plays the CLI: `codes` maps a command ("run", "watch",
// "cancel", "status", "artifacts") to the exit codes of its successive calls.
def fakeJenkins = { Map codes, boolean existing = false ->
  File ws = File.createTempDir()
  JenkinsStandIn j = new JenkinsStandIn(library, ws)
  j.credentials['dockyard-token'] = [kind: 'string', value: TOKEN]
  j.credentials['dockyard-ca'] = [kind: 'file', value: CA]
  Map calls = [:].withDefault { 0 }
  j.shHandler = { Map args, Map env ->
    String script = args.script
    String command = script.startsWith('dockyard ') ? script.split(' ')[1] : 'other'
    List seq = codes[command] ?: [0]
    int code = seq[Math.min(calls[command], seq.size() - 1)] as int
    calls[command] = calls[command] + 1
    if (command == 'run' && code == 0) {
      new File(ws, 'target').mkdirs()
      new File(ws, 'target/.dockyard-submit.json').text =
          "{\"run_id\": \"7\", \"existing\": ${existing || calls['run'] > 1}}"
    }
    if (command == 'watch' && codes.abortDuringWatch) j.abort()
    return [status: code, stdout: command == 'status' ? '{"run_id": "7", "state": "succeeded"}' : '']
  }
  return j
}

def runStep = { JenkinsStandIn j, Map extra = [:] ->
  Script dockyard = j.loadVar('dockyard')
  return dockyard.run([file: 'examples/wheels/pipeline.yml', controller: 'ci:7420', credentialsId: 'dockyard-token',
                       caCredentialsId: 'dockyard-ca', archive: '*.whl'] + extra)
}

def tests = [
  RunsTheExactCommandLinesWithCredentialsOnlyInTheEnvironment: {
    JenkinsStandIn j = fakeJenkins([:])
    assert runStep(j) == '7'
    List scripts = j.stepsNamed('sh')*.args*.script
    assert scripts == [
      "mkdir -p 'target'",
      "dockyard run 'examples/wheels/pipeline.yml' --idempotency-key='jenkins-app-42:examples/wheels/pipeline.yml' --detach --json > 'target/.dockyard-submit.json'",
      "dockyard watch '7' --artifacts-dir='target' --junit='target/dockyard-junit.xml'",
    ]
    j.stepsNamed('sh').each { Map s ->
      assert s.env.DOCKYARD_TOKEN == TOKEN
      assert s.env.DOCKYARD_CA_FILE == CA
      assert s.env.DOCKYARD_CONTROLLER == 'ci:7420'
    }
    assert !j.env.containsKey('DOCKYARD_TOKEN'): 'the token is gone from the environment after the step'
  },

  TokenNeverAppearsOnACommandLineOrInTheConsole: {
    JenkinsStandIn j = fakeJenkins([watch: [1]])
    try { runStep(j) } catch (AbortException expected) { }
    assert j.stepsNamed('sh').every { !it.args.script.contains(TOKEN) }
    assert j.console.every { !it.contains(TOKEN) }
    assert j.steps.findAll { it.name != 'sh' && it.name != 'withCredentials' }.every { !it.args.toString().contains(TOKEN) }
  },

  BuildResultFollowsTheExitCode: {
    Map expected = [
      watch0: [null, null],
      watch1: [null, 'a stage failed or timed out'],   // FAILURE: the error itself fails the build
      watch3: [null, 'infrastructure error'],
      watch5: ['ABORTED', 'the run was cancelled'],
      run2: ['NOT_BUILT', 'bad pipeline file'],
      run3: [null, 'infrastructure error'],
      run4: [null, 'refused the credentials'],
    ]
    expected.each { String which, List want ->
      String command = which.replaceAll(/\d/, '')
      int code = which.replaceAll(/\D/, '') as int
      JenkinsStandIn j = fakeJenkins([(command): [code]])
      String message = null
      try { runStep(j) } catch (AbortException e) { message = e.message }
      assert j.currentBuild.result == want[0]: which
      if (want[1] == null) {
        assert message == null: which
      } else {
        assert message.contains(want[1]) && message.contains("exit code ${code}"): "${which}: ${message}"
      }
    }
  },

  ArchivesWithFingerprintsAndRecordsJunit: {
    JenkinsStandIn j = fakeJenkins([:])
    runStep(j)
    assert j.stepsNamed('archiveArtifacts')*.args == [[artifacts: 'target/*.whl', fingerprint: true]]
    assert j.stepsNamed('junit')*.args == [[testResults: 'target/dockyard-junit.xml,target/reports/**/*.xml',
                                             allowEmptyResults: true]]
    // A failed run still reports its tests, and archives nothing.
    JenkinsStandIn failed = fakeJenkins([watch: [1]])
    try { runStep(failed) } catch (AbortException expected) { }
    assert failed.stepsNamed('junit').size() == 1
    assert failed.stepsNamed('archiveArtifacts').isEmpty()
    // junit: false records nothing.
    JenkinsStandIn quiet = fakeJenkins([:])
    runStep(quiet, [junit: false])
    assert quiet.stepsNamed('junit').isEmpty()
  },

  AbortCancelsTheRun: {
    JenkinsStandIn j = fakeJenkins([abortDuringWatch: true])
    boolean interrupted = false
    try { runStep(j) } catch (FlowInterruptedException e) { interrupted = true }
    assert interrupted: 'the abort reaches Jenkins'
    List scripts = j.stepsNamed('sh')*.args*.script
    assert scripts.last() == "dockyard cancel '7'"
    assert j.stepsNamed('sh').last().env.DOCKYARD_TOKEN == TOKEN
    assert j.stepsNamed('archiveArtifacts').isEmpty()
  },

  RetryReattachesWithTheSameKey: {
    // The first attempt loses the controller (exit 3); `retry` runs the step again.
    JenkinsStandIn j = fakeJenkins([watch: [3, 0]])
    Binding b = new Binding()
    Script dockyard = j.loadVar('dockyard')
    j.bindSteps(b)
    b.setVariable('dockyard', dockyard)
    new GroovyShell(b).evaluate('''
      retry(2) {
        dockyard.run(file: 'examples/wheels/pipeline.yml', controller: 'ci:7420', credentialsId: 'dockyard-token',
                     caCredentialsId: 'dockyard-ca')
      }
    ''')
    List submits = j.stepsNamed('sh')*.args*.script.findAll { it.startsWith('dockyard run ') }
    assert submits.size() == 2
    assert submits[0] == submits[1]
    assert submits[0].contains("--idempotency-key='jenkins-app-42:examples/wheels/pipeline.yml'")
    assert j.console.any { it.contains('re-attached') }
    assert j.currentBuild.result == null: 'a retry that succeeds leaves the build successful'
  },

  KeyCanBeNamedPerStep: {
    JenkinsStandIn j = fakeJenkins([:])
    runStep(j, [id: 'second-build'])
    assert j.stepsNamed('sh')[1].args.script.contains("--idempotency-key='jenkins-app-42:second-build'")
  },

  StatusCancelAndArtifactsRunTheCli: {
    JenkinsStandIn j = fakeJenkins([:])
    Script dockyard = j.loadVar('dockyard')
    Map creds = [credentialsId: 'dockyard-token', caCredentialsId: 'dockyard-ca']
    assert dockyard.status('7', creds).state == 'succeeded'
    dockyard.cancel('7', creds)
    dockyard.artifacts('7', 'out dir', creds)
    assert j.stepsNamed('sh')*.args*.script == ["dockyard status '7' --json", "dockyard cancel '7'",
                                                  "dockyard artifacts '7' --dest='out dir'"]
  },

  QuotingSurvivesHostileFileNames: {
    JenkinsStandIn j = fakeJenkins([:])
    runStep(j, [file: "it's; rm -rf /"])
    assert j.stepsNamed('sh')[1].args.script.startsWith("dockyard run 'it'\"'\"'s; rm -rf /' ")
  },
]

List<String> wanted = args ? args as List : tests.keySet() as List
int passed = 0
int failed = 0
wanted.each { String name ->
  Closure test = tests[name]
  if (test == null) { println "no test ${name}"; failed++; return }
  try {
    test()
    println "PASS ${name}"
    passed++
  } catch (Throwable t) {
    println "FAIL ${name}: ${t}"
    t.printStackTrace(System.out)
    failed++
  }
}
println "${passed} passed, ${failed} failed"
System.exit(failed == 0 ? 0 : 1)
