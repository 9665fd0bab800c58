#!/usr/bin/env bash
# tests/run_all.sh -- every test suite of StreamDb: C (plain, then ASan+UBSan,
# then the threaded tests under TSan), Python, Lua and Common Lisp.
# Needs the Debian packages that .ci/run installs.  Exits non-zero on the
# first failing suite.  Build trees go under build-test/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/build-test
jobs=${JOBS:-2}
mkdir -p "$out"
step() { printf '\n==== %s ====\n' "$*"; }

step "C: build and ctest"
cmake -S . -B "$out/release" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTREAMDB_BUILD_BENCH=ON >/dev/null
cmake --build "$out/release" -j"$jobs"
(cd "$out/release" && ctest --output-on-failure -j"$jobs")

step "C: ctest under AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B "$out/asan" -DCMAKE_BUILD_TYPE=Debug -DSTREAMDB_SANITIZE=address,undefined \
      -DSTREAMDB_BUILD_LUA=OFF >/dev/null
cmake --build "$out/asan" -j"$jobs"
(cd "$out/asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 STREAMDB_CRASH_ITERS=10 \
   ctest --output-on-failure -j"$jobs")   # C tests, torture smoke families, fuzz corpus replay

step "C: coverage (T12): ctest under gcov, system-call faults under the VFS, every VFS error branch reached"
tests/torture/coverage.sh "$out/coverage"

step "C: threaded tests under ThreadSanitizer"
cmake -S . -B "$out/tsan" -DCMAKE_BUILD_TYPE=Debug -DSTREAMDB_SANITIZE=thread \
      -DSTREAMDB_BUILD_LUA=OFF -DSTREAMDB_BUILD_CLI=OFF >/dev/null
cmake --build "$out/tsan" -j"$jobs"
(cd "$out/tsan" && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -L threads)

step "Python: pip install . into a fresh venv, then pytest"
python3 -m venv "$out/venv"
"$out/venv/bin/pip" install -q --upgrade pip >/dev/null
"$out/venv/bin/pip" install -q "$root[test]"
(cd "$out" && "$out/venv/bin/python" -m pytest -q "$root/tests/python")

step "Lua: luarocks make into a local tree, then busted under Lua 5.4"
rm -rf "$out/lua_tree"
luarocks --lua-version 5.4 --tree "$out/lua_tree" make streamdb-0.1.0-1.rockspec >/dev/null
LUA_CPATH_5_4="$out/lua_tree/lib/lua/5.4/?.so;;" lua5.4 /usr/bin/busted tests/lua

step "Bindings: T13 robustness tests under Valgrind memcheck and ASan"
tests/bindings_memcheck.sh "$out/memcheck"

step "Common Lisp: SBCL + CFFI"
STREAMDB_LIBRARY="$out/release/libstreamdb.so" STREAMDB_CLI="$out/release/streamdb" \
  STREAMDB_PYTHON="$out/venv/bin/python" tests/lisp/run.sh

step "Benchmark: a seconds-long quick run against the peers that are installed"
"$out/release/bench/streamdb_bench" --scale 0.005 --dir "$out/bench-data"

step "all suites passed"
