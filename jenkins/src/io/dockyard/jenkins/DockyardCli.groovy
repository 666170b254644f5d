package io.dockyard.jenkins

/**
 * The `dockyard` command lines the pipeline step runs, built in one place so they
 * can be tested without Jenkins. Secrets never enter a command line: the token and
 * the CA reach the CLI through the environment (DOCKYARD_TOKEN, DOCKYARD_CA_FILE).
 */
class DockyardCli implements Serializable {
  private static final long serialVersionUID = 1L

  final String executable

  DockyardCli(String executable = 'dockyard') {
    this.executable = executable
  }

  /** Single-quotes `value` for sh, so no path or key is ever interpreted by the shell. */
  static String quote(String value) {
    return "'" + value.replace("'", "'\"'\"'") + "'"
  }

  /**
   * The key that makes a retried, resumed or re-run step re-attach to its run:
   * the build (BUILD_TAG is unique per job and build number) and the step.
   */
  static String idempotencyKey(String buildTag, String step) {
    return "${buildTag}:${step}".toString()
  }

  String submit(String file, String key, String jsonOut) {
    return "${executable} run ${quote(file)} --idempotency-key=${quote(key)} --detach --json > ${quote(jsonOut)}".toString()
  }

  String watch(String runId, String artifactsDir, String junitFile) {
    return "${executable} watch ${quote(runId)} --artifacts-dir=${quote(artifactsDir)} --junit=${quote(junitFile)}".toString()
  }

  String cancel(String runId) {
    return "${executable} cancel ${quote(runId)}".toString()
  }

  String status(String runId) {
    return "${executable} status ${quote(runId)} --json".toString()
  }

  String artifacts(String runId, String dest) {
    return "${executable} artifacts ${quote(runId)} --dest=${quote(dest)}".toString()
  }

  /** The CLI's exit code as a Jenkins result and its meaning (resources/.../exit-codes.json). */
  static Map outcome(Map table, int code) {
    Map known = table[code.toString()] as Map
    if (known == null) {
      return [result: 'FAILURE', meaning: "dockyard exited with unexpected code ${code}".toString()]
    }
    return known
  }
}
