#!/usr/bin/env python3
"""Checks a directory of Python wheels, for Dockyard's end-to-end test of examples/wheels.

    check_wheels.py DIR --expect NAME [--expect NAME ...] [--forbid NAME ...]

Passes when:
  * DIR holds at least one .whl, and exactly one for each --expect distribution name
    (names are compared normalised: case-insensitive, '-', '_' and '.' equivalent);
  * no .whl in DIR is for a --forbid name;
  * every .whl in DIR is a readable zip (every member decompresses, CRCs intact) whose file name parses as
    NAME-VERSION[-BUILD]-PY-ABI-PLATFORM.whl and which holds NAME-VERSION.dist-info/WHEEL
    (with a Wheel-Version header) and NAME-VERSION.dist-info/RECORD;
  * every RECORD line names a file in the zip whose size and hash (`sha256=` urlsafe
    base64 without padding, or a stronger sha384/sha512) match, RECORD's own line has an
    empty hash and size, and every file in the zip is listed (signatures aside).

Prints `ok NAME.whl (N files)` per good wheel; otherwise one `FAIL wheel: file: reason`
line per problem on stderr and exits 1. Usage errors exit 2. Standard library only.
"""

import argparse
import base64
import csv
import hashlib
import io
import os
import re
import sys
import zipfile
import zlib

HASHES = ("sha256", "sha384", "sha512")
SIGNATURES = ("RECORD.jws", "RECORD.p7s")


def normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_wheel_name(filename):
    """(distribution, version) from a wheel file name, or None when it does not parse."""
    parts = filename[: -len(".whl")].split("-")
    if len(parts) not in (5, 6) or not all(parts):
        return None
    return parts[0], parts[1]


def check_wheel(path):
    """Returns (number of files, [problems]) for the wheel at `path`."""
    wheel = os.path.basename(path)
    problems = []

    def fail(member, reason):
        problems.append("%s: %s: %s" % (wheel, member, reason))

    parsed = parse_wheel_name(wheel)
    if parsed is None:
        fail("(file name)", "not NAME-VERSION[-BUILD]-PY-ABI-PLATFORM.whl")
        return 0, problems
    dist, version = parsed
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        fail("(archive)", "not a valid zip file: %s" % e)
        return 0, problems

    with zf:
        # Read every member once: a bad CRC or a damaged deflate stream fails here, by name.
        members = {}
        for i in zf.infolist():
            if i.is_dir():
                continue
            try:
                members[i.filename] = zf.read(i)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError,
                    RuntimeError) as e:
                fail(i.filename, "unreadable member (corrupted): %s" % e)
                members[i.filename] = None

        # The .dist-info directory: the one whose name matches the file name.
        dist_infos = sorted({m.split("/", 1)[0] for m in members
                             if m.split("/", 1)[0].endswith(".dist-info") and "/" in m})
        wanted = "%s-%s.dist-info" % (dist, version)
        matching = []
        for d in dist_infos:
            d_name, _, d_version = d[: -len(".dist-info")].rpartition("-")
            if normalise(d_name) == normalise(dist) and d_version == version:
                matching.append(d)
        if not matching:
            fail(wanted, "missing (.dist-info directories present: %s)"
                 % (", ".join(dist_infos) or "none"))
            return len(members), problems
        info = matching[0]
        wheel_meta, record_name = info + "/WHEEL", info + "/RECORD"

        if wheel_meta not in members:
            fail(wheel_meta, "missing")
        else:
            text = (members[wheel_meta] or b"").decode("utf-8", "replace")
            if not re.search(r"^Wheel-Version:\s*\S+", text, re.M):
                fail(wheel_meta, "has no Wheel-Version header")
        if record_name not in members:
            fail(record_name, "missing")
            return len(members), problems
        if members[record_name] is None:
            return len(members), problems

        listed = set()
        try:
            rows = list(csv.reader(io.StringIO(members[record_name].decode("utf-8"))))
        except (UnicodeDecodeError, csv.Error) as e:
            fail(record_name, "unreadable: %s" % e)
            return len(members), problems
        for lineno, row in enumerate(rows, 1):
            if not row:
                continue
            where = "%s line %d" % (record_name, lineno)
            if len(row) != 3:
                fail(where, "expected path,hash,size, got %r" % ",".join(row))
                continue
            name, digest, size = row
            if name in listed:
                fail(name, "listed twice in RECORD")
            listed.add(name)
            if name == record_name:
                if digest or size:
                    fail(name, "RECORD's own line must have an empty hash and size")
                continue
            if name not in members:
                fail(name, "listed in RECORD but not in the wheel")
                continue
            data = members[name]
            if data is None:
                continue  # already reported as unreadable
            algo, _, expected = digest.partition("=")
            if algo not in HASHES or not expected:
                fail(name, "RECORD hash %r is not sha256=/sha384=/sha512=" % digest)
            else:
                actual = base64.urlsafe_b64encode(hashlib.new(algo, data).digest())
                actual = actual.rstrip(b"=").decode("ascii")
                if actual != expected:
                    fail(name, "%s mismatch: RECORD says %s, file has %s"
                         % (algo, expected, actual))
            if not size.isdigit():
                fail(name, "RECORD size %r is not a number" % size)
            elif int(size) != len(data):
                fail(name, "size mismatch: RECORD says %s, file has %d" % (size, len(data)))

        for name in sorted(set(members) - listed):
            if not (name.startswith(info + "/") and name[len(info) + 1:] in SIGNATURES):
                fail(name, "in the wheel but not listed in RECORD")
    return len(members), problems


def main(argv=None):
    ap = argparse.ArgumentParser(description="Check a directory of Python wheels.")
    ap.add_argument("dir", metavar="DIR")
    ap.add_argument("--expect", action="append", default=[], metavar="NAME",
                    help="a distribution that must have exactly one wheel (repeatable)")
    ap.add_argument("--forbid", action="append", default=[], metavar="NAME",
                    help="a distribution that must have no wheel (repeatable)")
    args = ap.parse_args(argv)

    if not os.path.isdir(args.dir):
        print("FAIL %s: not a directory" % args.dir, file=sys.stderr)
        return 1
    wheels = sorted(f for f in os.listdir(args.dir)
                    if f.endswith(".whl") and os.path.isfile(os.path.join(args.dir, f)))
    failures = []
    if not wheels:
        failures.append("%s: holds no .whl files" % args.dir)

    by_name = {}
    for w in wheels:
        parsed = parse_wheel_name(w)
        if parsed:
            by_name.setdefault(normalise(parsed[0]), []).append(w)
    for name in args.expect:
        found = by_name.get(normalise(name), [])
        if len(found) != 1:
            failures.append("%s: expected exactly one wheel for %s, found %d%s"
                            % (args.dir, name, len(found),
                               (" (" + ", ".join(found) + ")") if found else ""))
    for name in args.forbid:
        for w in by_name.get(normalise(name), []):
            failures.append("%s: forbidden distribution %s is present" % (w, name))

    for w in wheels:
        count, problems = check_wheel(os.path.join(args.dir, w))
        if problems:
            failures.extend(problems)
        else:
            print("ok %s (%d files)" % (w, count))

    for f in failures:
        print("FAIL " + f, file=sys.stderr)
    if failures:
        print("check_wheels: %d problem(s) in %s" % (len(failures), args.dir), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
