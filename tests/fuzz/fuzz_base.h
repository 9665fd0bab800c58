/*
 * fuzz_base.h -- a valid database with a live log, built once per process:
 * three documents checkpointed into the main file, then commits that stay
 * in the log (a new document, an overwrite, a delete, a chunked document).
 * fb_db / fb_wal hold copies of both files taken while the handle was open.
 */
#ifndef STREAMDB_FUZZ_BASE_H
#define STREAMDB_FUZZ_BASE_H
#include "fuzz_common.h"

static uint8_t *fb_db, *fb_wal;
static size_t fb_dblen, fb_wallen;

static void fb_build(void)
{
    if (fb_db) return;
    streamdb_vfs *v = streamdb_vfs_memory_new();
    streamdb_config cfg;
    fz_cfg(&cfg, v);
    cfg.wal_autocheckpoint = 1u << 30;
    streamdb *db = NULL;
    if (streamdb_open("b.db", &cfg, &db)) abort();
    uint8_t *buf = malloc(200000);
    fz_fill(buf, 200000, 1, 0);
    if (streamdb_write_document(db, "/a/one", buf, 100, NULL)) abort();
    if (streamdb_write_document(db, "/a/two", buf + 7, 5000, NULL)) abort();
    if (streamdb_write_document(db, "/b", buf + 9, 70000, NULL)) abort();
    if (streamdb_flush(db)) abort();
    if (streamdb_write_document(db, "/a/three", buf + 3, 300, NULL)) abort();
    if (streamdb_write_document(db, "/a/one", buf + 11, 1200, NULL)) abort();
    if (streamdb_delete(db, "/a/two")) abort();
    if (streamdb_write_document(db, "/c/big", buf, 150000, NULL)) abort();
    free(buf);
    fb_db = fz_get_file(v, "b.db", &fb_dblen);
    fb_wal = fz_get_file(v, "b.db-wal", &fb_wallen);
    streamdb_close(db);
    streamdb_vfs_memory_free(v);
    if (!fb_db || !fb_wal) abort();
}
/* Size of the log header: 64 bytes (format.md), 1024 in the earlier layout
 * with a sync record; found from the real log so the target follows the
 * format. */
static size_t fb_walhdr(void)
{
    fb_build();
    const size_t F = 24 + 4096;
    if (fb_wallen >= 64 && (fb_wallen - 64) % F == 0) return 64;
    if (fb_wallen >= 1024 && (fb_wallen - 1024) % F == 0) return 1024;
    return 64;
}
#endif
