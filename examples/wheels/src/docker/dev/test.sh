#!/bin/sh
# The test stage's steps (the seed's test.sh): fill the shared cache at /build from the
# project's local index, install from that cache alone, run the tests with a JUnit report.
# ".[test]" rather than `-r requirements_test.txt` (which says `-e .[test]`): pip download
# zips an editable project into the download dir, and on a reused cache that zip already
# exists, so pip asks what to do and, with PIP_NO_INPUT, fails.
set -eu
pip download --no-index --find-links ./index -d /build ".[test]"
pip install --no-index -f /build -r requirements_test.txt
mkdir -p /reports
python3 tests/junit_runner.py /reports/todobackend.xml
