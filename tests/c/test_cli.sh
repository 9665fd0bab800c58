#!/bin/sh
# test_cli.sh -- the streamdb command-line tool on a real database file:
# put (file and stdin), get (stdout, -o, --version), ls (prefix and -1),
# rm, stat, versions, check, compact, export (including its refusal of '..'
# segments and of symlinks that would lead outside the target directory),
# and errors (non-zero exit, message on stderr, no file created).
# Usage: test_cli.sh PATH-TO-streamdb
set -u
CLI=$1
T=$(mktemp -d "${TMPDIR:-/tmp}/streamdb-cli-XXXXXX")
DB=$T/test.db
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
run() { "$CLI" "$@"; }

# help and usage
run --help | grep -q "usage: streamdb" || fail "--help"
run --version | grep -q "streamdb " || fail "--version"
run >/dev/null 2>&1; [ $? -eq 2 ] || fail "no arguments should exit 2"
run "$DB" frobnicate >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown command should exit 2"
[ ! -e "$DB" ] || fail "an unknown command created the database"

# put from a file and from stdin; the id is a UUIDv7
head -c 3000017 /dev/urandom > "$T/big.bin"
id=$(run "$DB" put /data/big.bin "$T/big.bin") || fail "put from a file"
echo "$id" | grep -Eq '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' \
  || fail "put printed '$id', not a UUIDv7"
printf 'hello' | run "$DB" put /data/hello.txt >/dev/null || fail "put from stdin"
printf 'hello2' | run "$DB" put /data/hello.txt - >/dev/null || fail "put from -"
: | run "$DB" put /data/empty >/dev/null || fail "put empty"
printf 'a' | run "$DB" put /data/sub/a >/dev/null || fail "put /data/sub/a"

# get
run "$DB" get /data/big.bin > "$T/out.bin" || fail "get to stdout"
cmp -s "$T/big.bin" "$T/out.bin" || fail "get to stdout: bytes differ"
run "$DB" get /data/big.bin -o "$T/out2.bin" || fail "get -o"
cmp -s "$T/big.bin" "$T/out2.bin" || fail "get -o: bytes differ"
[ "$(run "$DB" get /data/hello.txt)" = hello2 ] || fail "get current version"
[ "$(run "$DB" get /data/hello.txt --version -1)" = hello ] || fail "get --version -1"
[ "$(run "$DB" get /data/hello.txt --version 1)" = hello ] || fail "get --version 1"
[ "$(run "$DB" get /data/empty | wc -c)" -eq 0 ] || fail "get empty"

# ls
printf '/data/big.bin\n/data/empty\n/data/hello.txt\n/data/sub/a\n' > "$T/want"
run "$DB" ls > "$T/got" || fail "ls"
cmp -s "$T/want" "$T/got" || { fail "ls output"; cat "$T/got" >&2; }
run "$DB" ls /data/s > "$T/got" || fail "ls /data/s"
[ "$(cat "$T/got")" = /data/sub/a ] || fail "ls /data/s output: $(cat "$T/got")"
printf '/data/big.bin\n/data/empty\n/data/hello.txt\n/data/sub/\n' > "$T/want"
run "$DB" ls /data/ -1 > "$T/got" || fail "ls -1"
cmp -s "$T/want" "$T/got" || { fail "ls -1 output"; cat "$T/got" >&2; }
run "$DB" ls --list /data/ > "$T/got2" || fail "ls --list"
cmp -s "$T/got" "$T/got2" || fail "ls --list differs from -1"
[ -z "$(run "$DB" ls /nothing/)" ] || fail "ls of an empty prefix"

# stat and versions
run "$DB" stat /data/hello.txt > "$T/stat" || fail "stat PATH"
grep -q '^size: 6$' "$T/stat" || fail "stat size"
grep -q '^version: 2$' "$T/stat" || fail "stat version"
grep -q "^id: " "$T/stat" || fail "stat id"
run "$DB" stat /data/big.bin | grep -q "^id: $id\$" || fail "stat id of big.bin is not the id put printed"
run "$DB" stat /data/hello.txt --version -1 | grep -q '^size: 5$' || fail "stat --version -1"
run "$DB" stat > "$T/dbstat" || fail "stat"
grep -q '^documents: 4$' "$T/dbstat" || { fail "stat documents"; cat "$T/dbstat" >&2; }
grep -q '^page_size: 8192$' "$T/dbstat" || fail "stat page_size"
[ "$(run "$DB" versions /data/hello.txt | cut -f1 | tr '\n' ' ')" = "1 2 " ] || fail "versions"
[ "$(run "$DB" versions /data/hello.txt | sed -n 2p | cut -f2)" = 6 ] || fail "versions size"

# rm
run "$DB" rm /data/empty || fail "rm"
run "$DB" get /data/empty > /dev/null 2> "$T/err" && fail "get after rm succeeded"
grep -q "/data/empty" "$T/err" || fail "error message does not name the path: $(cat "$T/err")"
run "$DB" rm /data/empty 2>/dev/null && fail "rm of a missing path succeeded"

# errors
run "$DB" get /nope > /dev/null 2> "$T/err"; rc=$?
[ $rc -eq 1 ] || fail "get of a missing path exited $rc"
[ -s "$T/err" ] || fail "get of a missing path printed no error"
: | run "$DB" put no-slash 2> "$T/err" && fail "put of an invalid path succeeded"
[ -s "$T/err" ] || fail "put of an invalid path printed no error"
run "$T/missing.db" ls > /dev/null 2>&1 && fail "ls on a missing database succeeded"
[ ! -e "$T/missing.db" ] || fail "a read command created the database"
run "$DB" put /data/x "$T/no-such-file" 2>/dev/null && fail "put of a missing file succeeded"
run "$DB" get /data/x > /dev/null 2>&1 && fail "a failed put left a document"
run "$DB" get /data/hello.txt --version 7 > /dev/null 2>&1 && fail "get of a missing version succeeded"
echo "garbage garbage garbage" > "$T/garbage.db"
run "$T/garbage.db" ls > /dev/null 2> "$T/err" && fail "ls on a garbage file succeeded"
[ -s "$T/err" ] || fail "ls on a garbage file printed no error"
run --page-size 4096 "$DB" ls > /dev/null 2>&1 && fail "opening with another page size succeeded"

# check and compact
[ "$(run "$DB" check)" = ok ] || fail "check"
run "$DB" compact || fail "compact"

# export: documents become files; '..' and symlinks cannot escape
printf 'evil' | run "$DB" put '/x/../../evil' >/dev/null || fail "put a path with .."
printf 'evil2' | run "$DB" put '/..' >/dev/null 2>&1
printf 'dot' | run "$DB" put '/exp/./dot' >/dev/null || fail "put a path with ."
printf 'pwned' | run "$DB" put '/link/pwned' >/dev/null || fail "put /link/pwned"
printf 'ok' | run "$DB" put '/exp/ok/file' >/dev/null || fail "put /exp/ok/file"
mkdir -p "$T/export" "$T/outside"
ln -s "$T/outside" "$T/export/link"
run "$DB" export / "$T/export" > "$T/exp.out" 2> "$T/exp.err"; rc=$?
[ $rc -ne 0 ] || fail "export with refused paths exited 0"
grep -q 'x/\.\./\.\./evil' "$T/exp.err" || fail "export did not report the .. path"
[ ! -e "$T/evil" ] && [ ! -e "$T/export/evil" ] && [ ! -e "$T/x" ] || fail "export wrote outside through .."
[ -z "$(ls -A "$T/outside")" ] || fail "export wrote through a symlink"
[ ! -e "$T/export/exp/dot" ] || fail "export wrote a path with a . segment"
[ "$(cat "$T/export/exp/ok/file" 2>/dev/null)" = ok ] || fail "export /exp/ok/file"
cmp -s "$T/big.bin" "$T/export/data/big.bin" || fail "export /data/big.bin"
[ "$(cat "$T/export/data/hello.txt" 2>/dev/null)" = hello2 ] || fail "export /data/hello.txt"
run "$DB" export /data/ "$T/export2" > /dev/null || fail "export /data/"
[ -f "$T/export2/data/sub/a" ] && [ ! -e "$T/export2/exp" ] || fail "export /data/ files"

# a big document through stdin, streamed both ways
head -c 20000000 /dev/urandom > "$T/big2.bin"
run "$DB" put /big2 < "$T/big2.bin" > /dev/null || fail "put 20 MB from stdin"
run "$DB" get /big2 | cmp -s - "$T/big2.bin" || fail "get 20 MB"
[ "$(run "$DB" check)" = ok ] || fail "check at the end"

if [ $fails -eq 0 ]; then
  echo "cli: all checks passed"
  rm -rf "$T"
  exit 0
fi
echo "cli: $fails check(s) FAILED (files kept in $T)"
exit 1
