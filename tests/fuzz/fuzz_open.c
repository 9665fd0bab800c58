/*
 * fuzz_open.c -- the opener, the page decoder and recovery on hostile files.
 *
 * Input: [flags u8][split u16 LE][bytes].  flags & 1: the bytes (up to
 * 64 * split when flags & 2 too) are the database file; flags & 2: the (rest of the)
 * bytes are the -wal file; flags & 4: every page of the database file that
 * claims a page type gets its CRC recomputed, so damaged content reaches the
 * decoders instead of stopping at the checksum; flags & 8: open read-only;
 * flags & 16: quick mode.  The database is opened through a memory VFS,
 * everything is read, searched, listed and checked.  Oracle: no crash, no
 * hang, no sanitizer report; returned content matches its own CRC.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    uint8_t flags = data[0];
    size_t split = ((size_t)data[1] | (size_t)data[2] << 8) * 64;
    data += 3;
    size -= 3;
    const uint8_t *dbb = NULL, *walb = NULL;
    size_t dbl = 0, wall = 0;
    if ((flags & 3) == 3) {
        if (split > size) split = size;
        dbb = data; dbl = split; walb = data + split; wall = size - split;
    } else if (flags & 2) {
        walb = data; wall = size;
    } else {
        dbb = data; dbl = size;
    }
    streamdb_vfs *v = streamdb_vfs_memory_new();
    if (dbb) {
        uint8_t *copy = malloc(dbl ? dbl : 1);
        memcpy(copy, dbb, dbl);
        if (flags & 4) fz_reseal_pages(copy, dbl, 4096);
        fz_put_file(v, "f.db", copy, dbl);
        free(copy);
    }
    if (walb) fz_put_file(v, "f.db-wal", walb, wall);
    streamdb_config cfg;
    fz_cfg(&cfg, v);
    cfg.read_only = (flags & 8) != 0;
    cfg.quick_mode = (flags & 16) != 0;
    fz_quick = cfg.quick_mode;
    cfg.create = 0;
    streamdb *db = NULL;
    if (streamdb_open("f.db", &cfg, &db) == 0) {
        fz_exercise(db);
        if (!(flags & 8)) {
            /* a write on whatever was opened must not crash either */
            streamdb_write_document(db, "/fuzz/new", "x", 1, NULL);
            streamdb_flush(db);
        }
        streamdb_close(db);
    }
    streamdb_vfs_memory_free(v);
    return 0;
}
