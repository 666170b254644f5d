"""Runs the unit tests like `python -m unittest discover -v` and also writes a JUnit
XML report (stdlib only: the test stage has no network to fetch a plugin), so the CI
server that drives Dockyard can show the application's own tests."""
import sys
import time
import unittest
import xml.etree.ElementTree as ET


class TimedResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cases = []  # (test, seconds, kind, text)
        self._started = 0.0

    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def _record(self, test, kind, text=""):
        self.cases.append((test, time.monotonic() - self._started, kind, text))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failure", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "error", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped", reason)


def main(report_path):
    suite = unittest.defaultTestLoader.discover(".")
    result = unittest.TextTestRunner(verbosity=2, resultclass=TimedResult).run(suite)
    root = ET.Element("testsuite", name="todobackend", tests=str(len(result.cases)),
                      failures=str(len(result.failures)), errors=str(len(result.errors)),
                      skipped=str(len(result.skipped)),
                      time="%.3f" % sum(seconds for _, seconds, _, _ in result.cases))
    for test, seconds, kind, text in result.cases:
        case = ET.SubElement(root, "testcase", classname=test.__class__.__module__ + "." +
                             test.__class__.__name__, name=test._testMethodName, time="%.3f" % seconds)
        if kind in ("failure", "error", "skipped"):
            ET.SubElement(case, kind, message=text.splitlines()[-1] if text else kind).text = text
    ET.ElementTree(root).write(report_path, encoding="utf-8", xml_declaration=True)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "junit.xml"))
