#!/usr/bin/env bash
# Rebuilds the sdists in src/index/ from the dependency sources in deps/, inside
# `docker run --rm --network none dockyard/python` (no registry is needed or reached).
# The archives are normalised (sorted members, fixed mtimes, owner root, gzip mtime 0)
# so a rebuild of unchanged sources gives byte-identical files; the committed sdists
# stay the source of truth for the pipeline.
#
#   ./make-index.sh          rewrite src/index/*.tar.gz
#   ./make-index.sh --check  rebuild into a temp dir and fail if src/index/ differs
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
image=${DOCKYARD_PYTHON_IMAGE:-dockyard/python}
index="$here/src/index"
mode=${1:-write}
case "$mode" in write|--check) ;; *) echo "usage: $0 [--check]" >&2; exit 2 ;; esac

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Sources go in and sdists come out as tar streams, so nothing in the work tree is
# written by the container (no root-owned egg-info) and any Docker daemon works.
tar -C "$here/deps" --exclude='*.egg-info' --exclude=__pycache__ --exclude=build --exclude=dist -cf - . |
  docker run --rm -i --network none -e SOURCE_DATE_EPOCH=1704067200 "$image" sh -euc '
    exec 3>&1 1>&2   # stdout carries the result tar only
    mkdir -p /deps /out && tar -C /deps -xf -
    for dir in /deps/*/; do
      (cd "$dir" && python3 setup.py -q sdist --formats=gztar --dist-dir /out)
    done
    python3 - /out <<"PY"
import gzip, io, os, sys, tarfile
epoch = int(os.environ["SOURCE_DATE_EPOCH"])
out = sys.argv[1]
for name in sorted(os.listdir(out)):
    path = os.path.join(out, name)
    with tarfile.open(path, "r:gz") as src:
        members = [(m, src.extractfile(m).read() if m.isfile() else None) for m in src.getmembers()]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as dst:
        for m, data in sorted(members, key=lambda md: md[0].name):
            m.mtime, m.uid, m.gid, m.uname, m.gname = epoch, 0, 0, "root", "root"
            m.pax_headers = {}
            m.mode = 0o755 if m.isdir() else 0o644
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    with open(path, "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
        gz.write(buf.getvalue())
    print("sdist", name)
PY
    tar -C /out -cf - . >&3
  ' | tar -C "$out" -xf -

ls "$out"/*.tar.gz >/dev/null 2>&1 || { echo "make-index: no sdists were built" >&2; exit 1; }

if [ "$mode" = --check ]; then
  if diff -r "$out" "$index" >/dev/null; then
    echo "make-index: src/index/ is up to date"
  else
    diff -r "$out" "$index" >&2 || true
    echo "make-index: src/index/ differs from a rebuild of deps/; run $0" >&2
    exit 1
  fi
else
  rm -f "$index"/*.tar.gz
  mkdir -p "$index"
  cp "$out"/*.tar.gz "$index"/
  ls -l "$index"
fi
