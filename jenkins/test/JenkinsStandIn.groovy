// A stand-in for the Jenkins pipeline step API, enough to run this library's vars/
// and a scripted Jenkinsfile outside Jenkins: it records every step with its
// arguments and the console, keeps env and credentials like withEnv/withCredentials
// do, runs `sh` either through a handler (unit tests) or for real with bash (the
// end-to-end test), and can simulate a build abort and `retry`.

class JenkinsStandIn {
  final List<Map> steps = []          // [name: 'sh', args: [...], env: [...]]
  final List<String> console = []     // what the build console would show, unmasked
  final Map<String, String> env = [:]
  final Map<String, Map> credentials = [:]  // id -> [kind: 'string'|'file', value: ...]
  final Map currentBuild = [result: null]
  final Map<String, String> resources = [:]  // libraryResource path -> text
  File workspace
  File libraryRoot
  File checkoutFrom = null  // `checkout scm` copies examples/ from here
  // (Map shArgs, Map env) -> [status: int, stdout: String]; null: run it with bash.
  Closure shHandler = null
  // Called with each real `sh`'s output line; may call abort().
  Closure onOutputLine = null
  private Process running = null
  private volatile boolean aborted = false

  JenkinsStandIn(File libraryRoot, File workspace) {
    this.libraryRoot = libraryRoot
    this.workspace = workspace
    env.BUILD_TAG = 'jenkins-app-42'
    env.WORKSPACE = workspace.path
  }

  // Loads vars/NAME.groovy (with src/ on the class path) bound to these steps.
  Script loadVar(String name) {
    GroovyClassLoader loader = new GroovyClassLoader(this.class.classLoader)
    loader.addClasspath(new File(libraryRoot, 'src').path)
    Script script = new GroovyShell(loader, bindSteps(new Binding())).parse(new File(libraryRoot, "vars/${name}.groovy"))
    return script
  }

  // Runs a scripted Jenkinsfile; `vars` are the library's globals it may use.
  void runJenkinsfile(File jenkinsfile, Map<String, Script> vars) {
    Binding binding = bindSteps(new Binding())
    vars.each { k, v -> binding.setVariable(k, v) }
    // @Library loads the library in Jenkins; here the vars are bound already.
    String text = jenkinsfile.text.replaceAll(/(?m)^@Library\(.*\)\s*_\s*$/, '')
    new GroovyShell(this.class.classLoader, binding).evaluate(text)
  }

  // Simulates the user pressing "Abort": the running sh gets SIGTERM (as Jenkins
  // kills the step's processes) and the step throws FlowInterruptedException.
  void abort() {
    aborted = true
    running?.destroy()
  }

  List<Map> stepsNamed(String name) { steps.findAll { it.name == name } }

  private void record(String name, Object args) {
    steps << [name: name, args: args, env: new LinkedHashMap(env)]
  }

  private Binding bindSteps(Binding b) {
    b.setVariable('env', env)
    b.setVariable('currentBuild', currentBuild)
    b.setVariable('scm', [kind: 'scm'])
    b.setVariable('sh', { Object a ->
      Map args = a instanceof Map ? a : [script: a.toString()]
      record('sh', args)
      console << "+ ${args.script}".toString()
      Map r = shHandler != null ? shHandler(args, new LinkedHashMap(env)) : runWithBash(args)
      if (aborted) throw new FlowInterruptedException('aborted by the user')
      r.stdout?.eachLine { console << it }
      if (args.returnStatus) return r.status
      if (r.status != 0) throw new AbortException("script returned exit code ${r.status}")
      return args.returnStdout ? r.stdout : null
    })
    b.setVariable('echo', { String m -> record('echo', m); console << m })
    b.setVariable('error', { String m -> record('error', m); console << "ERROR: ${m}".toString(); throw new AbortException(m) })
    b.setVariable('withEnv', { List vars, Closure body ->
      record('withEnv', vars)
      Map saved = new LinkedHashMap(env)
      vars.each { String kv -> int i = kv.indexOf('='); env[kv.substring(0, i)] = kv.substring(i + 1) }
      try { return body() } finally { env.clear(); env.putAll(saved) }
    })
    b.setVariable('string', { Map m -> [kind: 'string'] + m })
    b.setVariable('file', { Map m -> [kind: 'file'] + m })
    b.setVariable('withCredentials', { List bindings, Closure body ->
      record('withCredentials', bindings)
      Map saved = new LinkedHashMap(env)
      bindings.each { Map c ->
        Map stored = credentials[c.credentialsId]
        if (stored == null) throw new AbortException("Could not find credentials entry with ID '${c.credentialsId}'")
        env[c.variable] = stored.value
      }
      try { return body() } finally { env.clear(); env.putAll(saved) }
    })
    b.setVariable('readFile', { String path -> record('readFile', path); new File(workspace, path).text })
    b.setVariable('libraryResource', { String path ->
      record('libraryResource', path)
      new File(libraryRoot, "resources/${path}").text
    })
    b.setVariable('junit', { Map m -> record('junit', m) })
    b.setVariable('archiveArtifacts', { Map m -> record('archiveArtifacts', m) })
    b.setVariable('checkout', { Object s ->
      record('checkout', s)
      if (checkoutFrom != null) {
        assert ['cp', '-r', new File(checkoutFrom, 'examples').path, workspace.path].execute().waitFor() == 0
      }
    })
    b.setVariable('node', { Object... a -> record('node', a.size() > 1 ? a[0] : null); (a[-1] as Closure)() })
    b.setVariable('stage', { String name, Closure body -> record('stage', name); console << "[Pipeline] stage ${name}".toString(); body() })
    b.setVariable('retry', { int times, Closure body ->
      record('retry', times)
      for (int i = 1; ; i++) {
        try { return body() } catch (AbortException e) { if (i >= times) throw e; console << "Retrying" }
      }
    })
    return b
  }

  private Map runWithBash(Map args) {
    ProcessBuilder pb = new ProcessBuilder('bash', '-c', args.script as String)
    pb.directory(workspace)
    pb.environment().putAll(env)
    pb.redirectErrorStream(true)
    running = pb.start()
    StringBuilder out = new StringBuilder()
    try {
      running.inputStream.eachLine { String line ->
        out.append(line).append('\n')
        System.out.println(line)
        if (onOutputLine != null) onOutputLine(line)
      }
    } catch (IOException closed) {
      if (!aborted) throw closed  // an abort killed the process under the reader
    }
    int status = running.waitFor()
    running = null
    return [status: status, stdout: args.returnStdout ? out.toString() : out.toString()]
  }
}
