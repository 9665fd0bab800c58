/*
 * torture_stress.c -- T10 of RELIABILITY.md: random model-based stress with
 * reopens.
 *
 * A seeded random mix of puts (small, chunked, and big documents of over
 * 320 KiB that bypass the log), overwrites past versions_to_keep, deletes,
 * streaming writers (committed or aborted), transactions (committed or
 * rolled back), prefix scans, reads of the current and older versions,
 * flushes, compactions, integrity checks and close/reopen runs against a
 * model, under several configurations: memory VFS, file VFS with mmap,
 * compression, encryption, both.  Every read and scan is compared with the
 * model at once.  The seed is printed on every failure (TORTURE_SEED replays
 * it; TORTURE_CONFIG=k runs one configuration).
 */
#include "torture.h"

#define KEEP 3
#define NPATHS 40

typedef struct hdoc {
    int live;
    int nv;                 /* versions kept in the model (<= KEEP) */
    uint64_t seed[KEEP];    /* [0] = newest */
    size_t len[KEEP];
} hdoc;

static long points, lost, integrity;
static uint64_t g_seed;
static int g_config;
static hdoc docs[NPATHS];
static char pathname[NPATHS][40];

#define SFAIL(...) do { integrity++; fprintf(stderr, "FAIL TORTURE_SEED=%llu TORTURE_CONFIG=%d op %ld: ", \
    (unsigned long long)g_seed, g_config, points); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } while (0)

static void h_put(int i, uint64_t seed, size_t len)
{
    hdoc *d = &docs[i];
    if (!d->live) { d->live = 1; d->nv = 0; }
    memmove(&d->seed[1], &d->seed[0], (KEEP - 1) * sizeof d->seed[0]);
    memmove(&d->len[1], &d->len[0], (KEEP - 1) * sizeof d->len[0]);
    d->seed[0] = seed;
    d->len[0] = len;
    if (d->nv < KEEP) d->nv++;
}

static size_t rand_size(uint64_t *rs)
{
    unsigned r = (unsigned)(w_rand(rs) % 100);
    if (r < 50) return (size_t)(w_rand(rs) % 3000);
    if (r < 92) return 3000 + (size_t)(w_rand(rs) % 200000);
    return 320 * 1024 + 1 + (size_t)(w_rand(rs) % 400000);
}

static void check_doc(streamdb *db, int i, int back)
{
    hdoc *d = &docs[i];
    void *data = NULL;
    size_t len = 0;
    int rc = streamdb_get(db, pathname[i], -(int64_t)back, &data, &len);
    if (!d->live) {
        if (back == 0 && rc != STREAMDB_ERR_NOT_FOUND) SFAIL("get(%s) of a deleted path = %d (%s)", pathname[i], rc, streamdb_strerror(rc));
    } else if (back < d->nv) {
        if (rc) SFAIL("get(%s, -%d) = %s: %s", pathname[i], back, streamdb_strerror(rc), tu_errmsg(db));
        else if (len != d->len[back] || tu_verify(data, len, d->seed[back], 0) >= 0)
            SFAIL("get(%s, -%d): %zu bytes, model %zu, content %s", pathname[i], back, len, d->len[back],
                  len == d->len[back] ? "differs" : "-");
    }
    streamdb_free(data);
}

static void check_scan(streamdb *db, const char *prefix)
{
    char **paths = NULL;
    size_t n = 0;
    int rc = streamdb_search(db, prefix, &paths, &n);
    if (rc) { SFAIL("search(%s) = %s", prefix, streamdb_strerror(rc)); return; }
    /* the model's paths with this prefix, sorted */
    const char *want[NPATHS];
    size_t nw = 0;
    for (int i = 0; i < NPATHS; i++)
        if (docs[i].live && !strncmp(pathname[i], prefix, strlen(prefix))) want[nw++] = pathname[i];
    for (size_t a = 1; a < nw; a++)
        for (size_t b = a; b > 0 && strcmp(want[b - 1], want[b]) > 0; b--) {
            const char *t = want[b]; want[b] = want[b - 1]; want[b - 1] = t;
        }
    if (n != nw) SFAIL("search(%s): %zu paths, model %zu", prefix, n, nw);
    else
        for (size_t k = 0; k < n; k++)
            if (strcmp(paths[k], want[k])) { SFAIL("search(%s)[%zu] = %s, model %s", prefix, k, paths[k], want[k]); break; }
    streamdb_free_paths(paths, n);
}

static void check_all(streamdb *db)
{
    for (int i = 0; i < NPATHS; i++) {
        check_doc(db, i, 0);
        if (docs[i].live && docs[i].nv > 1) check_doc(db, i, docs[i].nv - 1);
    }
    check_scan(db, "/");
    int rc = streamdb_check(db);
    if (rc) SFAIL("check = %s: %s", streamdb_strerror(rc), tu_errmsg(db));
    uint64_t cnt = 0;
    rc = streamdb_count(db, &cnt);
    uint64_t live = 0;
    for (int i = 0; i < NPATHS; i++) live += docs[i].live;
    if (rc || cnt != live) SFAIL("count = %d, %llu documents, model %llu", rc, (unsigned long long)cnt, (unsigned long long)live);
}

static streamdb *open_cfg(const char *path, const streamdb_config *cfg)
{
    streamdb *db = NULL;
    int rc = streamdb_open(path, cfg, &db);
    if (rc) { SFAIL("open = %s: %s", streamdb_strerror(rc), tu_errmsg(NULL)); return NULL; }
    return db;
}

static int put_stream(streamdb *db, const char *path, uint64_t seed, size_t len, int abort_it, uint64_t *rs)
{
    streamdb_writer *wr = NULL;
    int rc = streamdb_writer_begin(db, path, strlen(path), &wr);
    if (rc) return rc;
    uint8_t *buf = tu_make(len, seed);
    size_t off = 0;
    while (off < len && !rc) {
        size_t n = 1 + (size_t)(w_rand(rs) % 70000);
        if (n > len - off) n = len - off;
        rc = streamdb_writer_write(wr, buf + off, n);
        off += n;
    }
    free(buf);
    if (rc || abort_it) { streamdb_writer_abort(wr); return rc ? rc : 1; }
    return streamdb_writer_commit(wr, NULL);
}

static void run_config(int config, uint64_t seed, long nops)
{
    g_seed = seed;
    g_config = config;
    memset(docs, 0, sizeof docs);
    for (int i = 0; i < NPATHS; i++)
        snprintf(pathname[i], sizeof pathname[i], "/p%d/%s%d", i % 4, (i / 4) % 2 ? "a/" : "x", i);
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.versions_to_keep = KEEP;
    cfg.async_workers = 1;
    streamdb_vfs *mem = NULL;
    char path[700];
    const char *names[] = {"memory", "file+mmap", "compression", "encryption", "compression+encryption (file)"};
    int feats = streamdb_features();
    if ((config == 2 || config == 4) && !(feats & STREAMDB_FEATURE_COMPRESSION)) { printf("  config %s: compression not built, skipped\n", names[config]); return; }
    if ((config == 3 || config == 4) && !(feats & STREAMDB_FEATURE_ENCRYPTION)) { printf("  config %s: encryption not built, skipped\n", names[config]); return; }
    if (config == 1 || config == 4) {
        snprintf(path, sizeof path, "%s/stress%d.db", tu_fast_dir(), config);
        char wal[720];
        snprintf(wal, sizeof wal, "%s-wal", path);
        unlink(path);
        unlink(wal);
        cfg.use_mmap = config == 1;
        cfg.page_size = 4096;
    } else {
        mem = streamdb_vfs_memory_new();
        cfg.vfs = mem;
        snprintf(path, sizeof path, "stress.db");
        cfg.wal_autocheckpoint = 256 * 1024;
    }
    if (config == 2 || config == 4) cfg.use_compression = 1;
    if (config <= 1) cfg.path_cache_size = 64;   /* the (optional) path cache, with evictions */
    if (config == 3 || config == 4) {
        uint8_t key[32];
        tu_fill(key, sizeof key, seed, 0);
        streamdb_config_set_key(&cfg, key, sizeof key);
    }
    uint64_t rs = seed;
    streamdb *db = open_cfg(path, &cfg);
    if (!db) return;
    long start = points;
    for (long op = 0; op < nops && db; op++, points++) {
        unsigned r = (unsigned)(w_rand(&rs) % 100);
        int i = (int)(w_rand(&rs) % NPATHS);
        if (r < 45) {
            uint64_t s = w_rand(&rs);
            size_t len = rand_size(&rs);
            int rc = tu_put(db, pathname[i], s, len);
            if (rc) SFAIL("put(%s, %zu) = %s: %s", pathname[i], len, streamdb_strerror(rc), tu_errmsg(db));
            else h_put(i, s, len);
        } else if (r < 52) {
            uint64_t s = w_rand(&rs);
            size_t len = rand_size(&rs);
            int ab = (w_rand(&rs) % 4) == 0;
            int rc = put_stream(db, pathname[i], s, len, ab, &rs);
            if (ab) { if (rc != 1) SFAIL("aborted writer = %d", rc); }
            else if (rc) SFAIL("writer(%s, %zu) = %s: %s", pathname[i], len, streamdb_strerror(rc), tu_errmsg(db));
            else h_put(i, s, len);
        } else if (r < 60) {
            int rc = streamdb_delete(db, pathname[i]);
            if (docs[i].live) {
                if (rc) SFAIL("delete(%s) = %s", pathname[i], streamdb_strerror(rc));
                else docs[i].live = 0;
            } else if (rc != STREAMDB_ERR_NOT_FOUND) SFAIL("delete of an unbound path = %d", rc);
        } else if (r < 72) {
            check_doc(db, i, (int)(w_rand(&rs) % KEEP));
        } else if (r < 78) {
            const char *pfx[] = {"/", "/p1/", "/p2/a/", "/p3/x", "/p0/a/p", "/q"};
            check_scan(db, pfx[w_rand(&rs) % 6]);
        } else if (r < 86) {
            /* a transaction of 2..4 operations, committed or rolled back */
            int rc = streamdb_begin_transaction(db);
            if (rc) { SFAIL("begin = %s", streamdb_strerror(rc)); continue; }
            hdoc save[NPATHS];
            memcpy(save, docs, sizeof docs);
            int k = 2 + (int)(w_rand(&rs) % 3);
            for (int q = 0; q < k && !rc; q++) {
                int j = (int)(w_rand(&rs) % NPATHS);
                if (docs[j].live && w_rand(&rs) % 4 == 0) {
                    rc = streamdb_delete(db, pathname[j]);
                    if (!rc) docs[j].live = 0;
                } else {
                    uint64_t s = w_rand(&rs);
                    size_t len = rand_size(&rs);
                    rc = tu_put(db, pathname[j], s, len);
                    if (!rc) h_put(j, s, len);
                }
            }
            if (rc) { SFAIL("operation in a transaction = %s: %s", streamdb_strerror(rc), tu_errmsg(db)); streamdb_rollback_transaction(db); memcpy(docs, save, sizeof docs); continue; }
            if (w_rand(&rs) % 3 == 0) {
                rc = streamdb_rollback_transaction(db);
                memcpy(docs, save, sizeof docs);
                if (rc) SFAIL("rollback = %s", streamdb_strerror(rc));
            } else {
                rc = streamdb_commit_transaction(db);
                if (rc) { SFAIL("commit = %s: %s", streamdb_strerror(rc), tu_errmsg(db)); memcpy(docs, save, sizeof docs); }
            }
        } else if (r < 91) {
            int rc = streamdb_close(db);
            if (rc) SFAIL("close = %s", streamdb_strerror(rc));
            db = open_cfg(path, &cfg);
            if (db) check_all(db);
        } else if (r < 94) {
            int rc = (w_rand(&rs) & 1) ? streamdb_flush(db) : streamdb_compact(db);
            if (rc) SFAIL("flush/compact = %s: %s", streamdb_strerror(rc), tu_errmsg(db));
        } else if (r < 96) {
            int rc = streamdb_check(db);
            if (rc) SFAIL("check = %s: %s", streamdb_strerror(rc), tu_errmsg(db));
        } else {
            /* version list of a live path */
            if (!docs[i].live) continue;
            uint64_t *v = NULL;
            size_t nv = 0;
            int rc = streamdb_versions(db, pathname[i], strlen(pathname[i]), &v, &nv);
            if (rc) SFAIL("versions(%s) = %s", pathname[i], streamdb_strerror(rc));
            else if (nv < 1 || nv > KEEP || nv < (size_t)docs[i].nv)
                SFAIL("versions(%s): %zu, model keeps %d", pathname[i], nv, docs[i].nv);
            streamdb_free(v);
        }
    }
    if (db) {
        check_all(db);
        uint64_t checked = 0;
        int rc = streamdb_verify(db, "/", 1, &checked);
        if (rc) SFAIL("verify = %s: %s", streamdb_strerror(rc), tu_errmsg(db));
        rc = streamdb_close(db);
        if (rc) SFAIL("final close = %s", streamdb_strerror(rc));
        db = open_cfg(path, &cfg);
        if (db) { check_all(db); streamdb_close(db); }
    }
    streamdb_vfs_memory_free(mem);
    printf("  config %-30s seed %llu: %ld operations\n", names[config], (unsigned long long)seed, points - start);
}

int main(void)
{
    tu_init("torture_stress");
    long scale = t_scale();
    uint64_t seed = t_seed();
    long nops = tu_env_long("TORTURE_OPS", 300 * scale);
    long only = tu_env_long("TORTURE_CONFIG", -1);
    long rounds = scale > 1 ? scale / 2 + 1 : 1;
    for (long rd = 0; rd < rounds; rd++)
        for (int c = 0; c < 5; c++)
            if (only < 0 || only == c) run_config(c, seed + (uint64_t)rd * 7919 + (uint64_t)c, nops);
    t_figure("T10 model stress", points, lost, integrity);
    if (lost || integrity) tu_failures = 1;
    tu_finish();
}
