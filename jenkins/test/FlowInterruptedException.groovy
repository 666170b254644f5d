// What Jenkins throws into a running step when the build is aborted (the real one
// extends InterruptedException too).
class FlowInterruptedException extends InterruptedException {
  FlowInterruptedException(String why) { super(why) }
}
