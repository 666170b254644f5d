// What Jenkins' `error` step (and a failing `sh`) throws.
class AbortException extends RuntimeException {
  AbortException(String why) { super(why) }
}
