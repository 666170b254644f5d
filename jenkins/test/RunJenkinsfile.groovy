// Runs a scripted Jenkinsfile (jenkins/Jenkinsfile.example) through the Jenkins
// stand-in with real `sh` steps, for the end-to-end test. `checkout scm` copies the
// repository's examples/ into the workspace; credentials come from files.
// Usage: groovy -cp jenkins/test jenkins/test/RunJenkinsfile.groovy REPO WORKSPACE SUMMARY_JSON
// Environment: DOCKYARD_CONTROLLER, DOCKYARD_TOKEN_FILE, DOCKYARD_CA_PATH, PATH (with the
// dockyard CLI), optionally ABORT_ON_LINE (abort the build when a console line
// contains it). Writes what the build recorded to SUMMARY_JSON.
import groovy.json.JsonOutput

File repo = new File(args[0])
File workspace = new File(args[1])
File summary = new File(args[2])
workspace.mkdirs()

JenkinsStandIn jenkins = new JenkinsStandIn(new File(repo, 'jenkins'), workspace)
jenkins.checkoutFrom = repo
System.getenv().each { k, v -> if (!jenkins.env.containsKey(k)) jenkins.env[k] = v }
jenkins.credentials['dockyard-token'] = [kind: 'string', value: new File(System.getenv('DOCKYARD_TOKEN_FILE')).text.trim()]
jenkins.credentials['dockyard-ca'] = [kind: 'file', value: System.getenv('DOCKYARD_CA_PATH')]
String abortOn = System.getenv('ABORT_ON_LINE')
if (abortOn) jenkins.onOutputLine = { String line -> if (line.contains(abortOn)) jenkins.abort() }

Script dockyard = jenkins.loadVar('dockyard')
String result = 'SUCCESS'
String failure = null
try {
  jenkins.runJenkinsfile(new File(repo, 'jenkins/Jenkinsfile.example'), [dockyard: dockyard])
} catch (FlowInterruptedException e) {
  result = 'ABORTED'
  failure = e.message
} catch (Throwable e) {
  result = jenkins.currentBuild.result ?: 'FAILURE'
  failure = e.toString()
}
if (result == 'SUCCESS' && jenkins.currentBuild.result) result = jenkins.currentBuild.result

summary.text = JsonOutput.prettyPrint(JsonOutput.toJson([
  result: result,
  failure: failure,
  steps: jenkins.steps.collect { [name: it.name, args: it.args instanceof Map || it.args instanceof List ? it.args : it.args?.toString()] },
  console: jenkins.console,
]))
println "Jenkinsfile finished: ${result}${failure ? ' (' + failure + ')' : ''}"
