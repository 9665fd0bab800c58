/*
 * fuzz_ops.c -- operation sequences decoded from the input, run on a memory
 * database and checked against an in-memory model after every read.
 *
 * Each operation takes 5 bytes [op, a, b, c, d]: put (path a, content seed
 * b, length from c/d, sometimes a big document over 320 KiB that bypasses
 * the log; through write_document or a streaming writer), delete, get and
 * compare, prefix search and compare, begin / commit / rollback, close and
 * reopen, flush, compact, check.  Oracle: every read equals the model,
 * commits and rollbacks are all-or-nothing, streamdb_check passes, and the
 * final state survives a reopen.
 */
#include "fuzz_common.h"

#define NP 16
typedef struct { int live; uint8_t seed; size_t len; } mslot;
static char fo_paths[NP][24];

static void mk(uint8_t *buf, size_t len, uint8_t seed) { fz_fill(buf, len, seed, seed & 1); }

static void check_path(streamdb *db, const mslot *m, int i)
{
    void *data = NULL;
    size_t len = 0;
    int rc = streamdb_get(db, fo_paths[i], 0, &data, &len);
    if (!m[i].live) {
        FZ_ASSERT(rc == STREAMDB_ERR_NOT_FOUND, "get(%s) of a missing path = %d", fo_paths[i], rc);
    } else {
        FZ_ASSERT(rc == 0, "get(%s) = %d (%s): %s", fo_paths[i], rc, streamdb_strerror(rc), streamdb_errmsg(db));
        FZ_ASSERT(len == m[i].len, "get(%s): %zu bytes, model %zu", fo_paths[i], len, m[i].len);
        uint8_t *want = malloc(len ? len : 1);
        mk(want, len, m[i].seed);
        FZ_ASSERT(memcmp(want, data, len) == 0, "get(%s): wrong bytes", fo_paths[i]);
        free(want);
    }
    streamdb_free(data);
}

static void check_search(streamdb *db, const mslot *m, const char *prefix)
{
    char **paths = NULL;
    size_t n = 0;
    int rc = streamdb_search(db, prefix, &paths, &n);
    FZ_ASSERT(rc == 0, "search(%s) = %d", prefix, rc);
    size_t want = 0;
    for (int i = 0; i < NP; i++)
        if (m[i].live && !strncmp(fo_paths[i], prefix, strlen(prefix))) want++;
    FZ_ASSERT(n == want, "search(%s): %zu paths, model %zu", prefix, n, want);
    for (size_t k = 0; k < n; k++) {
        int found = 0;
        for (int i = 0; i < NP; i++)
            if (m[i].live && !strcmp(fo_paths[i], paths[k])) found = 1;
        FZ_ASSERT(found, "search(%s) returned %s, not in the model", prefix, paths[k]);
        if (k) FZ_ASSERT(strcmp(paths[k - 1], paths[k]) < 0, "search(%s) out of order", prefix);
    }
    streamdb_free_paths(paths, n);
}

static void check_all(streamdb *db, const mslot *m)
{
    for (int i = 0; i < NP; i++) check_path(db, m, i);
    check_search(db, m, "/");
    int rc = streamdb_check(db);
    FZ_ASSERT(rc == 0, "check = %d: %s", rc, streamdb_errmsg(db));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int i = 0; i < NP; i++)
        snprintf(fo_paths[i], sizeof fo_paths[i], i < 8 ? "/o/%d" : i < 12 ? "/o/d/%d" : "/p%d", i);
    mslot m[NP], tx[NP];
    memset(m, 0, sizeof m);
    int in_tx = 0;
    streamdb_vfs *v = streamdb_vfs_memory_new();
    streamdb_config cfg;
    fz_cfg(&cfg, v);
    cfg.wal_autocheckpoint = 200000;
    cfg.versions_to_keep = 1 + (size ? data[0] % 3 : 0);
    if (size && (data[0] & 8) && (streamdb_features() & STREAMDB_FEATURE_COMPRESSION)) cfg.use_compression = 1;
    streamdb *db = NULL;
    FZ_ASSERT(streamdb_open("o.db", &cfg, &db) == 0, "open: %s", streamdb_errmsg(NULL));
    uint8_t *buf = malloc(600000);
    int nops = 0;
    for (size_t off = 1; off + 5 <= size && nops < 64; off += 5, nops++) {
        const uint8_t *o = data + off;
        int i = o[1] % NP;
        mslot *cur = in_tx ? tx : m;
        switch (o[0] % 14) {
        case 0: case 1: case 2: case 3: {
            size_t len = (size_t)o[3] | (size_t)(o[4] & 0x7f) << 8;
            if (o[0] % 14 == 3) len = (o[4] & 0x80) ? 330000 + (size_t)o[3] * 97 : len * 3;
            mk(buf, len, o[2]);
            int rc;
            if (o[0] % 14 == 2 && !in_tx) {
                streamdb_writer *w = NULL;
                rc = streamdb_writer_begin(db, fo_paths[i], strlen(fo_paths[i]), &w);
                FZ_ASSERT(rc == 0, "writer_begin = %d", rc);
                size_t step = 1 + o[3] * 300, at = 0;
                while (rc == 0 && at < len) {
                    size_t k = len - at < step ? len - at : step;
                    rc = streamdb_writer_write(w, buf + at, k);
                    at += k;
                }
                FZ_ASSERT(rc == 0, "writer_write = %d", rc);
                if (o[4] & 1) { streamdb_writer_abort(w); break; }
                rc = streamdb_writer_commit(w, NULL);
            } else {
                rc = streamdb_write_document(db, fo_paths[i], buf, len, NULL);
            }
            FZ_ASSERT(rc == 0, "put(%s, %zu) = %d (%s): %s", fo_paths[i], len, rc, streamdb_strerror(rc), streamdb_errmsg(db));
            cur[i].live = 1; cur[i].seed = o[2]; cur[i].len = len;
            break;
        }
        case 4: case 5: {
            int rc = streamdb_delete(db, fo_paths[i]);
            if (cur[i].live) FZ_ASSERT(rc == 0, "delete(%s) = %d", fo_paths[i], rc);
            else FZ_ASSERT(rc == STREAMDB_ERR_NOT_FOUND, "delete of a missing path = %d", rc);
            cur[i].live = 0;
            break;
        }
        case 6: if (!in_tx) check_path(db, m, i); break;
        case 7: {
            const char *pf[] = {"/", "/o/", "/o/d/", "/p", "/o/1", "/q"};
            if (!in_tx) check_search(db, m, pf[o[1] % 6]);
            break;
        }
        case 8:
            if (!in_tx) { FZ_ASSERT(streamdb_begin_transaction(db) == 0, "begin"); memcpy(tx, m, sizeof m); in_tx = 1; }
            else FZ_ASSERT(streamdb_begin_transaction(db) == STREAMDB_ERR_TRANSACTION, "nested begin");
            break;
        case 9:
            if (in_tx) { int rc = streamdb_commit_transaction(db); FZ_ASSERT(rc == 0, "commit = %d: %s", rc, streamdb_errmsg(db)); memcpy(m, tx, sizeof m); in_tx = 0; }
            break;
        case 10:
            if (in_tx) { FZ_ASSERT(streamdb_rollback_transaction(db) == 0, "rollback"); in_tx = 0; }
            break;
        case 11:
            if (!in_tx) {
                FZ_ASSERT(streamdb_close(db) == 0, "close");
                db = NULL;
                FZ_ASSERT(streamdb_open("o.db", &cfg, &db) == 0, "reopen: %s", streamdb_errmsg(NULL));
                check_all(db, m);
            }
            break;
        case 12:
            if (!in_tx) FZ_ASSERT(((o[1] & 1) ? streamdb_flush(db) : streamdb_compact(db)) == 0, "flush/compact: %s", streamdb_errmsg(db));
            break;
        case 13:
            if (!in_tx) FZ_ASSERT(streamdb_check(db) == 0, "check: %s", streamdb_errmsg(db));
            break;
        }
    }
    if (in_tx) { FZ_ASSERT(streamdb_commit_transaction(db) == 0, "final commit"); memcpy(m, tx, sizeof m); }
    check_all(db, m);
    FZ_ASSERT(streamdb_close(db) == 0, "close");
    FZ_ASSERT(streamdb_open("o.db", &cfg, &db) == 0, "final reopen");
    check_all(db, m);
    streamdb_close(db);
    free(buf);
    streamdb_vfs_memory_free(v);
    return 0;
}
