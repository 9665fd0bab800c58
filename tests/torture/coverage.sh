#!/bin/sh
# tests/torture/coverage.sh [BUILD_DIR] -- RELIABILITY.md T12: coverage of the
# core while the test families run, and every error-return branch of the VFS
# layer (core/src/vfs/*.c) reached.
#
#  1. configures BUILD_DIR (default build-test/coverage) with gcc --coverage
#     -O0, builds, and runs the whole ctest suite (C tests, the torture smoke
#     families T1/T3/T5/T10 and their regressions, crash/torn/bitflip tests,
#     the fuzz corpus replays, the CLI test);
#  2. builds tests/torture/sysfault.c twice against that build's libstreamdb.a:
#     a driver that fails real system calls (pread, pwrite, fdatasync, fsync,
#     ftruncate, open, fstat, stat, flock, mmap, munmap, close, unlink) and
#     allocations under the core, and an LD_PRELOAD shim for the CLI; runs
#     both (each fault: a documented error, then every acknowledged write
#     still there and streamdb check clean);
#  3. runs plain gcov (JSON) over the core objects and prints line and branch
#     coverage per core/src file and in total, then finds every error branch
#     of core/src/vfs/*.c in the source (a line that returns or assigns an
#     errno / E* code / NULL, tests errno, < 0, MAP_FAILED or a failed
#     allocation, and the condition guarding such a line) and requires each
#     executed with every branch arc on it taken.  A branch listed in
#     tests/torture/coverage_vfs_branches.txt (with its reason) is reported
#     as unreachable instead.
#
# Exits non-zero if a test, the driver or the shim check fails, or if a VFS
# error branch is not reached.  Needs cmake, gcc (gcov), python3; no gcovr or
# lcov.  JOBS (default 2) sets the build and ctest parallelism;
# T12_CTEST_ARGS adds ctest arguments (e.g. "-E c_bitflip" for a shorter
# run); T12_SKIP_CTEST=1 reuses the counters of an earlier run (for work on
# this script).  Logs stay in BUILD_DIR/t12-logs.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build-test/coverage}
jobs=${JOBS:-2}
t0=$(date +%s)
status=0
for tool in cmake gcov python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "T12: $tool is required" >&2; exit 2; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/streamdb-t12-XXXXXX")
fast=$work
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  fast=$(mktemp -d /dev/shm/streamdb-t12-XXXXXX)
fi
cleanup() { rm -rf "$work"; [ "$fast" = "$work" ] || rm -rf "$fast"; }
trap cleanup EXIT
mkdir -p "$build"
build=$(cd "$build" && pwd)
logs=$build/t12-logs
mkdir -p "$logs"
echo "T12: build $build, logs $logs"

# ---- 1. build with coverage, run ctest ----
# CC applies to a new build directory only (changing the compiler of an
# existing one makes cmake drop its cache, flags included).
CC=${CC:-gcc} cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_C_FLAGS="--coverage -O0" -DSTREAMDB_BUILD_LUA=OFF -DSTREAMDB_BUILD_BENCH=OFF \
      -DSTREAMDB_SANITIZE= >"$logs/cmake.log" 2>&1 || { cat "$logs/cmake.log"; exit 1; }
grep -q '^CMAKE_C_FLAGS:STRING=--coverage -O0$' "$build/CMakeCache.txt" &&
  grep -q 'CMAKE_C_COMPILER_ID "GNU"' "$build"/CMakeFiles/*/CMakeCCompiler.cmake ||
  { echo "T12: $build is not a gcc --coverage build (use a new directory)" >&2; exit 2; }
cmake --build "$build" -j"$jobs" >"$logs/build.log" 2>&1 || { tail -50 "$logs/build.log"; exit 1; }
t1=$(date +%s)
cat >"$work/gcovsum.py" <<'PYEOF'
import gzip, json, os, re, subprocess, sys
root, build, exempt_file = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
brief = len(sys.argv) > 4  # only the figure line (the state after ctest alone)
if brief:
    sys.stdout = open(os.devnull, "w")
src_root = os.path.join(root, "core", "src") + os.sep
# (file, function, line) -> [count, [arc counts]], summed over the shared and
# static objects (same sources, same flags)
acc = {}
gcdas = []
for d, _, files in os.walk(build):
    if "CMakeFiles" not in d or os.sep + "core" + os.sep + "src" not in d:
        continue
    gcdas += [os.path.join(d, f) for f in files if f.endswith(".gcda")]
if not gcdas:
    print("T12: no .gcda files under", build); sys.exit(1)
for g in sorted(gcdas):
    out = subprocess.run(["gcov", "-b", "--json-format", "--stdout", "-o", os.path.dirname(g), g],
                         capture_output=True, text=True, cwd=os.environ.get("T12_WORK", "/tmp"))
    for doc in out.stdout.splitlines():
        if not doc.strip():
            continue
        for f in json.loads(doc)["files"]:
            path = os.path.realpath(f["file"] if os.path.isabs(f["file"]) else os.path.join(os.path.dirname(g), f["file"]))
            if not path.startswith(src_root):
                continue
            for ln in f["lines"]:
                key = (path, ln.get("function_name", ""), ln["line_number"])
                arcs = [b["count"] for b in ln["branches"]]
                if key not in acc:
                    acc[key] = [0, [0] * len(arcs)]
                a = acc[key]
                a[0] += ln["count"]
                if len(a[1]) < len(arcs):
                    a[1] += [0] * (len(arcs) - len(a[1]))
                for i, c in enumerate(arcs):
                    a[1][i] += c
# per (file, line)
lines = {}
for (path, fn, no), (cnt, arcs) in acc.items():
    e = lines.setdefault(path, {}).setdefault(no, [0, []])
    e[0] += cnt
    e[1] += arcs
tot = [0, 0, 0, 0]
print("%-28s %8s %13s %8s %13s" % ("core/src file", "lines", "", "branches", ""))
for path in sorted(lines):
    ls = lines[path]
    l_all = len(ls); l_hit = sum(1 for c, _ in ls.values() if c > 0)
    b_all = sum(len(a) for _, a in ls.values()); b_hit = sum(1 for _, a in ls.values() for c in a if c > 0)
    tot = [tot[0] + l_hit, tot[1] + l_all, tot[2] + b_hit, tot[3] + b_all]
    pct = lambda h, a: "%6.1f%%" % (100.0 * h / a) if a else "     -"
    print("%-28s %8s %13s %8s %13s" % (path[len(src_root):], pct(l_hit, l_all), "(%d/%d)" % (l_hit, l_all),
                                        pct(b_hit, b_all), "(%d/%d)" % (b_hit, b_all)))
if not tot[1]:
    print("T12: no coverage data for core/src under", build); sys.exit(1)
print("%-28s %7.1f%% %13s %7.1f%% %13s" % ("total", 100.0 * tot[0] / tot[1], "(%d/%d)" % (tot[0], tot[1]),
                                          100.0 * tot[2] / tot[3], "(%d/%d)" % (tot[2], tot[3])))

# ---- VFS error branches, found in the source ----
exempt = []   # (file, function, marker, reason)
if os.path.exists(exempt_file):
    for raw in open(exempt_file):
        raw = raw.strip()
        if not raw or raw.startswith("#"):
            continue
        parts = [p.strip() for p in raw.split("|")]
        if len(parts) != 4:
            print("T12: bad line in", exempt_file, ":", raw); sys.exit(1)
        exempt.append(parts)
ERR = re.compile(r"\berrno\b|\bE[A-Z][A-Z0-9]+\b|MAP_FAILED|<\s*0\b|\breturn\s+NULL\b")
NULLTEST = re.compile(r"\bif\s*\(\s*!\s*\(?\s*[A-Za-z_]\w*\s*(\)|\|\|)")
RCTEST = re.compile(r"\bif\s*\(\s*!?\s*(rc|r|e|err)\s*\)")
COND = re.compile(r"^\s*(\}\s*)?(if|while)\s*\(|^\s*\}\s*while\s*\(")
FUNC = re.compile(r"^[A-Za-z_][\w\s\*]*?\b([A-Za-z_]\w*)\s*\([^;]*$")
def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return [re.sub(r"//.*", "", l) for l in text.split("\n")]
vfs_dir = os.path.join(src_root, "vfs")
found = []  # (file, line, function, text, kind)
for name in sorted(os.listdir(vfs_dir)):
    if not name.endswith(".c"):
        continue
    path = os.path.join(vfs_dir, name)
    src = strip_comments(open(path).read())
    fn = "?"
    marks = {}
    for i, l in enumerate(src, 1):
        m = FUNC.match(l)
        if m and not l.startswith(("#", " ", "\t", "}")):
            fn = m.group(1)
        s = l.strip()
        if not s or s.startswith("#"):
            continue
        if ERR.search(s) or NULLTEST.search(s) or RCTEST.search(s):
            marks[i] = "error"
    # a condition whose next statement is an error line guards it: each cause must happen
    for i, l in enumerate(src, 1):
        if i in marks or not COND.search(l):
            continue
        j = i + 1
        while j <= len(src) and src[j - 1].strip() in ("", "{"):
            j += 1
        if j in marks:
            marks[i] = "guard"
    fn = "?"
    for i, l in enumerate(src, 1):
        m = FUNC.match(l)
        if m and not l.startswith(("#", " ", "\t", "}")):
            fn = m.group(1)
        if i in marks and i in lines.get(path, {}):
            found.append((name, i, fn, l.strip(), marks[i]))
reached = 0
unreach = []
missing = []
for name, no, fn, text, kind in found:
    cnt, arcs = lines[os.path.join(vfs_dir, name)][no]
    ok = cnt > 0 and all(c > 0 for c in arcs)
    ex = [e for e in exempt if e[0] == name and e[1] == fn and e[2] in text]
    state = "reached" if ok else ("UNREACHABLE" if ex else "NOT REACHED")
    arcs_s = ("arcs " + ",".join(str(c) for c in arcs)) if arcs else "no arcs"
    print("  %-11s %-13s %-11s line %-4d %-6s count %-8d %-28s %s" % (state, name, fn, no, kind, cnt, arcs_s, text))
    if ok:
        reached += 1
    elif ex:
        unreach.append((name, fn, text, ex[0][3]))
    else:
        missing.append((name, no, fn, text))
for e in exempt:
    if not any(f[0] == e[0] and f[2] == e[1] and e[2] in f[3] for f in found):
        print("T12: stale entry in coverage_vfs_branches.txt (no such branch now):", " | ".join(e))
for name, fn, text, reason in unreach:
    print("  unreachable: %s %s: %s -- %s" % (name, fn, text, reason))
n = len(found)
if brief:
    sys.stdout = sys.__stdout__
    print("T12: after ctest alone: core lines %.1f%%, branches %.1f%%; VFS error-return branches reached: %d of %d"
          % (100.0 * tot[0] / tot[1], 100.0 * tot[2] / tot[3], reached, len(found)))
    sys.exit(0)
print("T12 coverage: core lines %.1f%% (%d/%d), branches %.1f%% (%d/%d); VFS error-return branches reached: %d of %d%s"
      % (100.0 * tot[0] / tot[1], tot[0], tot[1], 100.0 * tot[2] / tot[3], tot[2], tot[3], reached, n,
         (" (%d listed unreachable)" % len(unreach)) if unreach else ""))
sys.exit(1 if missing or n == 0 else 0)
PYEOF
if [ "${T12_SKIP_CTEST:-0}" != 1 ]; then
  find "$build" -name '*.gcda' -exec rm -f {} +
  # shellcheck disable=SC2086
  if (cd "$build" && ctest -j"$jobs" --output-on-failure ${T12_CTEST_ARGS:-} >"$logs/ctest.log" 2>&1); then
    echo "T12: ctest: $(grep -E 'tests passed' "$logs/ctest.log" | tail -1)"
  else
    status=1
    echo "T12: ctest FAILED:"
    grep -E 'tests passed|\(Failed\)|\(SEGFAULT\)|\(Timeout\)|Exception|\*\*\*' "$logs/ctest.log" | tail -20
  fi
  T12_WORK=$work python3 "$work/gcovsum.py" "$root" "$build" "$here/coverage_vfs_branches.txt" brief || true
fi
t2=$(date +%s)

# ---- 2. system-call faults under the VFS: driver and CLI shim ----
libs=""
for v in SNAPPY_LIBRARY OPENSSL_CRYPTO_LIBRARY; do
  p=$(sed -n "s/^$v:[A-Z]*=//p" "$build/CMakeCache.txt" | head -1)
  case "$p" in ""|*NOTFOUND) ;; *) libs="$libs $p" ;; esac
done
cc=$(sed -n "s/^CMAKE_C_COMPILER:[A-Z]*=//p" "$build/CMakeCache.txt")
# The driver itself is not instrumented (only the core is measured); -lgcov
# because libstreamdb.a is.
# shellcheck disable=SC2086
"$cc" -O0 -g -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE -I"$root/core/include" \
  "$here/sysfault.c" "$build/libstreamdb.a" $libs -lpthread -ldl -lgcov -o "$work/sysfault" \
  >"$logs/sysfault-build.log" 2>&1 || { cat "$logs/sysfault-build.log"; exit 1; }
"$cc" -O1 -shared -fPIC -Wall -DSYSFAULT_PRELOAD -I"$root/core/include" "$here/sysfault.c" -ldl \
  -o "$work/sysfault.so" >>"$logs/sysfault-build.log" 2>&1 || { cat "$logs/sysfault-build.log"; exit 1; }
mkdir -p "$fast/driver"
if "$work/sysfault" "$fast/driver" >"$logs/sysfault.log" 2>&1; then
  sf_res=passed
else
  sf_res=FAILED
  status=1
fi
grep -v '^FAIL\|^     ' "$logs/sysfault.log" | sed 's/^/  /'
if [ "$sf_res" = FAILED ]; then
  echo "T12: sysfault FAILED ($(grep -c '^FAIL' "$logs/sysfault.log") failures; first 40):"
  grep -A1 '^FAIL' "$logs/sysfault.log" | head -40 | sed 's/^/  /'
fi

# The CLI (statically linked with the instrumented core) under the shim.
cli="$build/streamdb"
cli_tried=0
cli_bad=0
if [ -x "$cli" ]; then
  d=$fast/cli
  mkdir -p "$d"
  head -c 300000 /dev/urandom >"$d/one"
  head -c 90000 /dev/urandom >"$d/two"
  # cli_case EXPECT SPEC ARGS...: under SYSFAULT=SPEC, `streamdb ARGS` must
  # fail (EXPECT fail: exit 1 with a "streamdb: " message), succeed (ok: a
  # transient fault; a get must give the right bytes) or either; afterwards, without faults, /one is intact, /two is
  # all or nothing (and there after an ok put), and check is clean.
  cli_case() {
    expect=$1; spec=$2; shift 2
    rm -f "$d/db" "$d/db-wal" "$d/out2"
    "$cli" "$d/db" put /one "$d/one" >/dev/null 2>&1 || { echo "  cli: setup put failed"; cli_bad=$((cli_bad+1)); return 0; }
    cli_tried=$((cli_tried+1))
    set +e
    LD_PRELOAD="$work/sysfault.so" SYSFAULT="$spec" SYSFAULT_PREFIX="$d" "$cli" "$@" \
      >"$d/out" 2>"$d/err"
    rc=$?
    set -e
    if [ "$expect" = either ] && [ "$rc" -eq 0 ]; then
      expect=ok   # e.g. a failed read-ahead, redone by the reader: the bytes must be right
    fi
    if [ "$expect" = fail ] || [ "$expect" = either ]; then
      if [ "$rc" -ne 1 ] || ! grep -q '^streamdb: ' "$d/err"; then
        echo "  cli: SYSFAULT=$spec streamdb $*: exit $rc (wanted 1 and a message), stderr: $(head -c 300 "$d/err")"
        cli_bad=$((cli_bad+1))
      fi
    elif [ "$rc" -ne 0 ]; then
      echo "  cli: SYSFAULT=$spec streamdb $*: exit $rc (a transient fault), stderr: $(head -c 300 "$d/err")"
      cli_bad=$((cli_bad+1))
    elif [ -f "$d/out2" ] && ! cmp -s "$d/one" "$d/out2"; then
      echo "  cli: SYSFAULT=$spec streamdb $*: wrong bytes read"
      cli_bad=$((cli_bad+1))
    fi
    if ! "$cli" "$d/db" get /one -o "$d/got" 2>"$d/err2" || ! cmp -s "$d/one" "$d/got"; then
      echo "  cli: after SYSFAULT=$spec: /one lost or changed: $(cat "$d/err2")"
      cli_bad=$((cli_bad+1))
    fi
    if "$cli" "$d/db" get /two -o "$d/got" 2>/dev/null; then
      if ! cmp -s "$d/two" "$d/got"; then
        echo "  cli: after SYSFAULT=$spec: /two holds other bytes"
        cli_bad=$((cli_bad+1))
      fi
    elif [ "$expect" = ok ] && [ "$2" = put ]; then
      echo "  cli: after SYSFAULT=$spec (a transient fault): the acknowledged /two is missing"
      cli_bad=$((cli_bad+1))
    fi
    if ! "$cli" "$d/db" check >/dev/null 2>"$d/err2"; then
      echo "  cli: after SYSFAULT=$spec: check failed: $(cat "$d/err2")"
      cli_bad=$((cli_bad+1))
    fi
  }
  for spec in pwrite:EIO:1 pwrite:EIO:3 pwrite:ENOSPC:1:p fdatasync:EIO:1 fdatasync:EIO:2 \
              ftruncate:EIO:1 open:EIO:1 open:EACCES:1 stat:EIO:1 fstat:EIO:1 flock:EIO:1 \
              flock:EWOULDBLOCK:1 pread:EIO:1 pread:EIO:5; do
    cli_case fail "$spec" "$d/db" put /two "$d/two"
  done
  for spec in pread:EIO:1 fstat:EIO:1 open:EIO:1 flock:EWOULDBLOCK:1; do
    cli_case fail "$spec" "$d/db" get /one -o "$d/out2"
  done
  # a failing read of a chunk fails the get, or (a read-ahead) is redone
  for spec in pread:EIO:4 pread:EIO:5 pread:EIO:8 pread:EIO:4:p; do
    cli_case either "$spec" "$d/db" get /one -o "$d/out2"
  done
  for spec in pwrite:short:1:p pwrite:EINTR:2 fdatasync:EINTR:1 ftruncate:EINTR:1 open:EINTR:1 \
              flock:EINTR:1 pread:short:1:p; do
    cli_case ok "$spec" "$d/db" put /two "$d/two"
  done
  for spec in pread:short:1:p pread:EINTR:3 mmap:ENOMEM:1:p; do
    cli_case ok "$spec" --mmap "$d/db" get /one -o "$d/out2"
  done
  echo "T12: CLI under the shim: $cli_tried faults, $cli_bad problems"
  [ "$cli_bad" = 0 ] || status=1
fi
t3=$(date +%s)

# ---- 3. gcov ----
echo
if T12_WORK=$work python3 "$work/gcovsum.py" "$root" "$build" "$here/coverage_vfs_branches.txt" \
     >"$logs/gcov.out" 2>&1; then
  cov_res=0
else
  cov_res=1
  status=1
fi
cat "$logs/gcov.out"
t4=$(date +%s)
echo "T12: time: build $((t1 - t0)) s, ctest $((t2 - t1)) s, sysfault + CLI $((t3 - t2)) s, gcov $((t4 - t3)) s, total $((t4 - t0)) s"
echo "T12: ctest + sysfault driver ($sf_res) + CLI shim ($cli_bad problems) + VFS branches ($( [ $cov_res = 0 ] && echo all reached || echo NOT all reached )): $( [ $status = 0 ] && echo passed || echo FAILED )"
exit $status
