#!/bin/sh
# Regenerates the seed corpora in tests/fuzz/corpus/<target>/ with the
# fuzz_gen_corpus program of a build directory (default: build-fuzz-corpus,
# configured and built here).  Files found by fuzzing that are worth keeping
# (regressions) go into tests/fuzz/corpus/<target>/ by hand, named
# regress-*; this script never deletes them.
#   tests/fuzz/make_corpus.sh [build dir]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build-fuzz-corpus}
if [ ! -x "$build/tests/fuzz/fuzz_gen_corpus" ]; then
  cmake -S "$root" -B "$build" >/dev/null
  cmake --build "$build" --target fuzz_gen_corpus -j2 >/dev/null
fi
"$build/tests/fuzz/fuzz_gen_corpus" "$here/corpus"
