#!/bin/sh
# tests/lisp/run.sh -- runs the FiveAM tests of the StreamDb Lisp system under
# SBCL (Debian packages: sbcl cl-cffi cl-yason cl-fiveam cl-trivial-gray-streams).
#
#   STREAMDB_LIBRARY=build/libstreamdb.so STREAMDB_CLI=build/streamdb tests/lisp/run.sh
#
# STREAMDB_LIBRARY  full path of libstreamdb.so (else the linker's search path)
# STREAMDB_CLI      the streamdb command-line tool, for the cross-language test;
#                   when unset or missing, tests/lisp/readback.c is compiled
#                   against the library and used instead (said so in the output)
# STREAMDB_PYTHON   interpreter for the Python leg (default python3); the leg is
#                   skipped, visibly, when `import streamdb` fails
# Exits non-zero when a test fails or the system does not load.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if [ -n "${STREAMDB_LIBRARY:-}" ]; then
    if [ ! -f "$STREAMDB_LIBRARY" ]; then
        echo "run.sh: STREAMDB_LIBRARY=$STREAMDB_LIBRARY does not exist" >&2
        exit 1
    fi
    STREAMDB_LIBRARY=$(cd "$(dirname "$STREAMDB_LIBRARY")" && pwd)/$(basename "$STREAMDB_LIBRARY")
    export STREAMDB_LIBRARY
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/streamdb-lisp.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
STREAMDB_TEST_DIR=$work/db/
export STREAMDB_TEST_DIR
mkdir -p "$STREAMDB_TEST_DIR"

if [ -n "${STREAMDB_CLI:-}" ] && [ -x "$STREAMDB_CLI" ]; then
    STREAMDB_CLI=$(cd "$(dirname "$STREAMDB_CLI")" && pwd)/$(basename "$STREAMDB_CLI")
    export STREAMDB_CLI
    echo "run.sh: cross-language reads with the CLI $STREAMDB_CLI"
else
    unset STREAMDB_CLI || true
    cc=${CC:-cc}
    if [ -n "${STREAMDB_LIBRARY:-}" ]; then
        libdir=$(dirname "$STREAMDB_LIBRARY")
        set -- "$STREAMDB_LIBRARY" "-Wl,-rpath,$libdir"
    else
        set -- -lstreamdb
    fi
    "$cc" -O1 -Wall -I"$root/core/include" "$here/readback.c" -o "$work/readback" "$@"
    STREAMDB_READBACK=$work/readback
    export STREAMDB_READBACK
    echo "run.sh: NOTE: STREAMDB_CLI not set or not executable;" \
         "cross-language reads use tests/lisp/readback.c compiled against libstreamdb"
fi

exec sbcl --noinform --non-interactive --no-sysinit --no-userinit \
    --eval '(require :asdf)' \
    --eval "(push #p\"$root/bindings/dlisp/\" asdf:*central-registry*)" \
    --eval "(push #p\"$here/\" asdf:*central-registry*)" \
    --eval '(asdf:load-system :streamdb-tests)' \
    --eval '(sb-ext:exit :code (if (streamdb-tests:run-all) 0 1))'
