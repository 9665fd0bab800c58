#!/bin/sh
# examples/demo.sh -- StreamDb's command-line tool doing real work on a real
# database file: stores this repository's sources and a 64 MiB generated
# asset, lists them, reads them back byte for byte, checks the file, and
# exports a subtree.   usage: examples/demo.sh [path/to/streamdb] [DBFILE]
set -eu
cli=${1:-build/streamdb}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/streamdb-demo.XXXXXX")
db=${2:-$work/demo.sdb}
echo "database: $db"

n=0
for f in "$root"/core/include/*.h "$root"/core/src/*/*.c "$root"/docs/*.md; do
    rel=${f#"$root"}
    "$cli" "$db" put "/repo$rel" "$f" >/dev/null
    n=$((n + 1))
done
echo "stored $n source files under /repo"

head -c 67108864 /dev/urandom > "$work/asset.bin"
printf 'stored /assets/level1/terrain.bin, id '
"$cli" "$db" put /assets/level1/terrain.bin - < "$work/asset.bin"

echo "--- one level under /repo/ (directories end with /):"
"$cli" "$db" ls /repo/ --list
echo "--- everything under /repo/core/src/index:"
"$cli" "$db" ls /repo/core/src/index
echo "--- the asset's metadata:"
"$cli" "$db" stat /assets/level1/terrain.bin

"$cli" "$db" get /assets/level1/terrain.bin -o "$work/back.bin"
cmp "$work/asset.bin" "$work/back.bin" && echo "asset read back: identical (64 MiB)"
"$cli" "$db" get /repo/docs/format.md | cmp - "$root/docs/format.md" && echo "format.md read back: identical"

"$cli" "$db" check && echo "integrity check: ok"
"$cli" "$db" export /repo/docs "$work/export"
echo "exported /repo/docs to $work/export:"; ls "$work/export/repo/docs" 2>/dev/null || find "$work/export" -type f
echo "--- database statistics:"
"$cli" "$db" stat
