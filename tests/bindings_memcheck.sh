#!/usr/bin/env bash
# tests/bindings_memcheck.sh BUILD_PREFIX -- the bindings' robustness tests
# (RELIABILITY T13: use after close, close while children are live,
# exceptions inside with/<close>, threads, resized buffers) under Valgrind
# memcheck (RELIABILITY T11), and optionally under AddressSanitizer.
#
#   tests/bindings_memcheck.sh build-test/memcheck
#
# Python: the package is built from a copy of the sources (-O1 -g) into a venv
# under BUILD_PREFIX, then the lifecycle/streams/errors tests and the
# thread tests that do not measure timing run with PYTHONMALLOC=malloc.
# Lua: lua/Makefile builds streamdb.so (-O1 -g) under BUILD_PREFIX, then busted
# runs the lifetime and stream specs; child interpreters the specs start run
# under Valgrind too.
#
# Fails when a test fails, or when Valgrind reports, in any process, an
# invalid read/write/free, a use of uninitialised memory, an overlap or a
# bad syscall argument, or a definitely lost block whose allocation stack
# passes through StreamDb code (the Python extension, the Lua module or
# libstreamdb).  Definite leaks without StreamDb frames are the interpreters'
# own (CPython does not free everything at exit) and are only counted.
# tests/valgrind.supp suppresses interpreter internals only, never StreamDb.
#
# Environment:
#   PYTHON=...          interpreter for the venv (default /usr/bin/python3 if
#                       present: Debian's build is clean under Valgrind;
#                       a pyenv build reports false positives in its own
#                       startup code)
#   LUA=lua5.4          Lua interpreter; BUSTED=/usr/bin/busted
#   MEMCHECK_PARTS="python lua python-asan"   which parts to run; python-asan
#                       runs the Python tests (those above, unfiltered, plus
#                       test_basic and test_async) against an extension built
#                       with -fsanitize=address, gcc's libasan preloaded, no
#                       Valgrind (catches stack and global overflows, which
#                       memcheck does not)
#   VALGRIND_EXTRA="..."  more valgrind options (e.g. --track-origins=yes)
# Logs: BUILD_PREFIX/memcheck-logs/{py,lua}.PID.log
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_PREFIX" >&2
  exit 2
fi
mkdir -p "$1"
prefix=$(cd "$1" && pwd)   # relative to the caller's directory
cd "$(dirname "$0")/.."
root=$PWD
logs=$prefix/memcheck-logs
supp=$root/tests/valgrind.supp
parts=${MEMCHECK_PARTS:-python lua python-asan}
if [ -z "${PYTHON:-}" ]; then
  if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
lua=${LUA:-lua5.4}
busted=${BUSTED:-/usr/bin/busted}
command -v valgrind >/dev/null || { echo "$0: valgrind is not installed" >&2; exit 2; }
rm -rf "$logs"
mkdir -p "$logs"
step() { printf '\n==== %s ====\n' "$*"; }
now() { date +%s; }
t_start=$(now)

# --errors-for-leak-kinds=none: leaks are judged by check_logs below, which
# tells StreamDb's leaks from the interpreters'; every other error also makes
# valgrind exit with 97.
vg_opts=(--tool=memcheck --error-exitcode=97 --num-callers=40
         --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=none
         --fair-sched=yes --gen-suppressions=all --suppressions="$supp" --fullpath-after=)
# shellcheck disable=SC2206
vg_opts+=(${VALGRIND_EXTRA:-})

# Reads every log of a run; prints the errors that count; non-zero if any.
# (Text logs, not --xml: valgrind reopens a %p log file in a fork()ed child,
# but not an XML file, so children would interleave their XML with the
# parent's.)
check_logs() {  # check_logs NAME (logs are $logs/NAME.PID.log)
  "$PYTHON" - "$logs" "$1" <<'PYEOF'
import glob, os, re, sys

logs, name = sys.argv[1], sys.argv[2]
# StreamDb's sources, as --fullpath-after= shows them
ours = re.compile(r"\((/[^()]*/(core/src/[^()/]+/[^()/]+\.c|python/streamdb/_streamdb\.c|"
                  r"lua/lstreamdb\.c)|[^()]*(_streamdb[.\w-]*\.so|/streamdb\.so|libstreamdb\.so[.\d]*))[:)]")
frame = re.compile(r"^\s+(at|by) 0x[0-9A-F]+: ")
procs = {}
for path in sorted(glob.glob(os.path.join(logs, name + ".*.log"))):
    text = open(path, errors="replace").read()
    m = re.search(r"^==(\d+)== ", text, re.M)
    if not m:
        continue  # a fork()ed child that exec'd an untraced program at once
    pid = m.group(1)
    pm = re.search(r"^==\d+== Parent PID: (\d+)", text, re.M)
    lines = [l[len(pid) + 5:] for l in text.splitlines() if l.startswith("==%s== " % pid)]
    procs[pid] = (pm.group(1) if pm else None, path, lines, "ERROR SUMMARY:" in text)
if not procs:
    sys.exit("memcheck: no valgrind logs for %s in %s" % (name, logs))
bad, notes, other = [], [], [0, 0]
for pid, (ppid, path, lines, finished) in sorted(procs.items()):
    forked = ppid in procs  # a fork()ed child: os._exit, no cleanup, by design
    if not finished and not forked:
        notes.append("%s: no ERROR SUMMARY (the process was killed?)" % os.path.basename(path))
    blocks, cur = [], []
    for l in lines + [""]:
        if l.strip():
            cur.append(l)
        elif cur:
            blocks.append(cur)
            cur = []
    for b in blocks:
        if len(b) < 2 or not frame.match(b[1]):
            continue  # banner, summaries
        head = b[0].strip()
        mine = any(ours.search(l) for l in b[1:])
        if " lost in loss record " in head:
            if "definitely lost" not in head:
                continue
            if not mine or forked:
                other[0] += 1
                other[1] += int(head.split()[0].replace(",", ""))
                continue
        bad.append((os.path.basename(path) + (" (forked child)" if forked else ""), b))
print("memcheck %s: %d process(es) checked, %d error(s) that count; %d definite leak "
      "record(s) (%d bytes) of the interpreter or of forked children, not counted"
      % (name, len(procs), len(bad), other[0], other[1]))
for n in notes:
    print("  note: " + n)
for where, b in bad[:30]:
    print("  " + where)
    for l in b[:16]:
        print("    " + l)
sys.exit(1 if bad else 0)
PYEOF
}

status=0

# ---- Python -------------------------------------------------------------------
# The thread tests that assert speed-ups (GIL released, parallel reads, an
# event loop kept free) cannot pass with Valgrind serialising threads; the
# large-document ones are too slow there.  All of them still run in
# tests/run_all.sh.
py_tests=(tests/python/test_lifecycle.py tests/python/test_streams.py
          tests/python/test_errors.py tests/python/test_threads.py)
slow="test_gil_is_released_during_core_calls test_two_threads_read_in_parallel"
slow+=" test_readers_while_writer_writes test_stream_used_from_two_threads_at_once_is_refused"
slow+=" test_close_waits_for_running_calls test_zipfile_over_stream test_tarfile_over_stream"
py_deselect=(-k "not ${slow// / and not }")

py_build() {  # py_build VENV CFLAGS LDFLAGS
  local venv=$1 src=$prefix/pysrc
  # a private copy: setup.py builds under <source>/build-python, which must
  # not mix objects built with other flags
  rm -rf "$src"
  mkdir -p "$src"
  cp -R core python setup.py pyproject.toml MANIFEST.in "$src"/
  [ -f README.md ] && cp README.md "$src"/
  rm -rf "$src/python/streamdb.egg-info" "$src/build-python"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >/dev/null
  CFLAGS="$2" LDFLAGS="$3" "$venv/bin/pip" install -q --no-cache-dir "$src[test]"
}

if [[ " $parts " == *" python "* ]]; then
  step "Python: build the extension (-O1 -g) into a venv"
  py_build "$prefix/venv-memcheck" "-O1 -g -fno-omit-frame-pointer" ""
  step "Python: T13 tests under valgrind memcheck"
  t0=$(now)
  rc=0
  (cd "$prefix" && PYTHONMALLOC=malloc PYTHONFAULTHANDLER=1 STREAMDB_SKIP_INSTALL_TEST=1 \
     valgrind "${vg_opts[@]}" --log-file="$logs/py.%p.log" \
     "$prefix/venv-memcheck/bin/python" -m pytest -q -p no:cacheprovider \
     "${py_tests[@]/#/$root/}" "${py_deselect[@]}") || rc=$?
  echo "python under valgrind: exit $rc, $(( $(now) - t0 )) s"
  [ "$rc" = 0 ] || status=1
  check_logs py || status=1
fi

if [[ " $parts " == *" python-asan "* ]]; then
  step "Python: the same tests against an extension built with AddressSanitizer"
  libasan=$(gcc -print-file-name=libasan.so)
  py_build "$prefix/venv-asan" "-O1 -g -fno-omit-frame-pointer -fsanitize=address" \
    "-fsanitize=address"
  t0=$(now)
  rc=0
  # leaks are Valgrind's job above: CPython's own exit-time leaks would drown them
  (cd "$prefix" && PYTHONMALLOC=malloc STREAMDB_SKIP_INSTALL_TEST=1 LD_PRELOAD="$libasan" \
     ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_init_order=1 \
     "$prefix/venv-asan/bin/python" -m pytest -q -p no:cacheprovider \
     "${py_tests[@]/#/$root/}" "$root/tests/python/test_async.py" \
     "$root/tests/python/test_basic.py") || rc=$?
  echo "python under ASan: exit $rc, $(( $(now) - t0 )) s"
  [ "$rc" = 0 ] || status=1
fi

# ---- Lua ----------------------------------------------------------------------
if [[ " $parts " == *" lua "* ]]; then
  step "Lua: build streamdb.so (-O1 -g) with lua/Makefile"
  make -s -f lua/Makefile BUILD_DIR="$prefix/lua-memcheck" \
    CFLAGS="-O1 -g -fno-omit-frame-pointer" LUA_INCDIR="${LUA_INCDIR:-/usr/include/lua5.4}" \
    -j"${JOBS:-2}" >/dev/null
  step "Lua: lifetime and stream specs under valgrind memcheck"
  # child interpreters started by the specs (helper.lua's H.lua) run under
  # valgrind too: its options go through a shell, so quote them
  child=$(printf '%q ' valgrind "${vg_opts[@]}" --log-file="$logs/lua.%p.log" "$lua")
  t0=$(now)
  rc=0
  LUA_CPATH_5_4="$prefix/lua-memcheck/?.so;;" LUA="$child" \
    valgrind "${vg_opts[@]}" --log-file="$logs/lua.%p.log" \
    "$lua" "$busted" -o TAP tests/lua/lifetime_spec.lua tests/lua/stream_spec.lua \
    tests/lua/async_spec.lua || rc=$?
  echo "lua under valgrind: exit $rc, $(( $(now) - t0 )) s"
  [ "$rc" = 0 ] || status=1
  check_logs lua || status=1
fi

step "bindings memcheck: $([ $status = 0 ] && echo passed || echo FAILED) in $(( $(now) - t_start )) s (logs in $logs)"
exit $status
