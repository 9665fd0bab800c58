/*
 * torture_nomem.c -- T2 of RELIABILITY.md: allocation failure at the Nth call.
 *
 * The test installs allocator hooks (streamdb_set_allocator) that count every
 * allocation of the library and fail the Nth one, once or from then on.  A
 * base database (a seeded workload) is copied into a fresh directory; then,
 * with the hooks armed, it is opened and a second workload runs: puts
 * (small, chunked and big documents that bypass the log), deletes, explicit
 * transactions, flushes, compactions, and after each step a whole read and a
 * streamed read of a document.  N sweeps every allocation the scenario makes
 * (densely at first, then sparsely unless TORTURE_SCALE is large).  Checks:
 *  - every failure is STREAMDB_ERR_NOMEM, never another code or a crash;
 *  - a failed step leaves the database as it was before the step (a failed
 *    commit is not applied, not even after a reopen, where the version
 *    numbers are compared too), and the handle stays usable: the steps
 *    after it, and one more write with a healthy allocator, succeed;
 *  - every read that succeeds returns the model's bytes;
 *  - a failed open leaves nothing allocated; after close, nothing allocated
 *    by the library is still live (no leak on any error path);
 *  - reopened without faults, the database equals the model after every
 *    acknowledged commit and streamdb_check passes.
 * Prints "T2 allocation failures: N points tried, ...".
 */
#include <limits.h>

#include "torture.h"

/* ---- counting, failing allocator ---- */
static atomic_long calls;     /* allocations requested since the last reset */
static atomic_long live;      /* blocks handed out and not yet freed */
static atomic_long failed;    /* allocations refused */
static atomic_int armed;
static long fail_at;
static int persistent;

/* a place for a debugger's breakpoint: every refused allocation passes here */
__attribute__((noinline)) void refused_here(void) { __asm__ volatile(""); }

static int refuse(void)
{
    long k = atomic_fetch_add(&calls, 1) + 1;
    if (!atomic_load(&armed)) return 0;
    if (k == fail_at || (persistent && k > fail_at)) {
        atomic_fetch_add(&failed, 1);
        refused_here();
        return 1;
    }
    return 0;
}
static void *h_malloc(size_t n, void *ctx)
{
    (void)ctx;
    if (refuse()) return NULL;
    void *p = malloc(n);
    if (p) atomic_fetch_add(&live, 1);
    return p;
}
static void *h_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    if (refuse()) return NULL;
    return realloc(p, n);
}
static void h_free(void *p, void *ctx)
{
    (void)ctx;
    atomic_fetch_sub(&live, 1);
    free(p);
}
static const streamdb_allocator hooks = {h_malloc, h_realloc, h_free, NULL};

/* ---- the scenario ---- */
static long points, lost, integrity, contract, leaks;
static char dbfile[600], walfile[620], basefile[600], basewal[620];
static workload w;
static model base_model;

static void cfg_for(streamdb_config *cfg)
{
    streamdb_config_init(cfg);
    cfg->page_size = 4096;
    cfg->wal_autocheckpoint = 96 * 1024;   /* checkpoints inside the workload */
    cfg->versions_to_keep = 2;             /* version reclamation too */
    tu_codec(cfg);
}

/* Deletes in the workload name paths that exist when every earlier step
 * succeeded; after a failed step a path may be missing: such a delete is
 * skipped (here and in the model, where m_del of a missing path does
 * nothing). */
static int skip_op(const model *cur, const wstep *st, int k)
{
    if (st->ops[k].kind != OP_DEL || m_find(cur, st->ops[k].path) >= 0) return 0;
    for (int j = 0; j < k; j++)
        if (st->ops[j].kind == OP_PUT && !strcmp(st->ops[j].path, st->ops[k].path)) return 0;
    return 1;
}

static int do_step(streamdb *db, const wstep *st, const model *cur)
{
    int rc = 0;
    if (st->kind == ST_FLUSH) return streamdb_flush(db);
    if (st->kind == ST_COMPACT) return streamdb_compact(db);
    if (st->explicit_txn && (rc = streamdb_begin_transaction(db))) return rc;
    for (int k = 0; k < st->nops && !rc; k++) {
        const wop *o = &st->ops[k];
        if (skip_op(cur, st, k)) continue;
        if (o->kind == OP_PUT) rc = tu_put(db, o->path, o->seed, o->len);
        else rc = streamdb_delete(db, o->path);
    }
    if (st->explicit_txn) {
        if (rc) {
            int rb = streamdb_rollback_transaction(db);
            if (rb) {
                fprintf(stderr, "rollback after %s failed: %s\n", streamdb_strerror(rc), streamdb_strerror(rb));
                contract++;
            }
            return rc;
        }
        rc = streamdb_commit_transaction(db);
    }
    return rc;
}

/* Reads one model document whole and by stream under the armed allocator:
 * each read either fails with NOMEM or returns the model's bytes. */
static void read_check(streamdb *db, const model *m, unsigned pick, const char *label)
{
    if (!m->n) return;
    const mdoc *d = &m->d[pick % m->n];
    void *data = NULL;
    size_t len = 0;
    int rc = streamdb_get(db, d->path, 0, &data, &len);
    if (rc == 0) {
        if (len != d->len || tu_verify(data, len, d->seed, 0) >= 0) {
            fprintf(stderr, "FAIL %s: get(%s) returned wrong bytes\n", label, d->path);
            integrity++;
        }
        streamdb_free(data);
    } else if (rc != STREAMDB_ERR_NOMEM) {
        fprintf(stderr, "FAIL %s: get(%s) = %s: %s\n", label, d->path, streamdb_strerror(rc), tu_errmsg(db));
        contract++;
    }
    streamdb_stream *s = NULL;
    rc = streamdb_stream_open(db, d->path, strlen(d->path), 0, &s);
    if (rc) {
        if (rc != STREAMDB_ERR_NOMEM) {
            fprintf(stderr, "FAIL %s: stream_open(%s) = %s\n", label, d->path, streamdb_strerror(rc));
            contract++;
        }
        return;
    }
    static uint8_t buf[7000];
    uint64_t off = 0;
    for (;;) {
        size_t n = 0;
        rc = streamdb_stream_read(s, buf, sizeof buf, &n);
        if (rc) {
            if (rc != STREAMDB_ERR_NOMEM) {
                fprintf(stderr, "FAIL %s: stream_read(%s) = %s\n", label, d->path, streamdb_strerror(rc));
                contract++;
            }
            break;
        }
        if (n == 0) {
            if (off != d->len) {
                fprintf(stderr, "FAIL %s: stream of %s ended at %llu of %zu\n", label, d->path,
                        (unsigned long long)off, d->len);
                integrity++;
            }
            break;
        }
        if (tu_verify(buf, n, d->seed, off) >= 0) {
            fprintf(stderr, "FAIL %s: stream of %s: wrong bytes at %llu\n", label, d->path,
                    (unsigned long long)off);
            integrity++;
            break;
        }
        off += n;
    }
    streamdb_stream_close(s);
}

/* Compares db with want, allocator disarmed; 0 when equal. */
static int same(streamdb *db, const model *want, char *why, size_t n)
{
    int was = atomic_exchange(&armed, 0);
    int bad = m_compare(db, want, why, n);
    atomic_store(&armed, was);
    return bad;
}

/* Each document's current version number equals the model's (a commit that
 * reported failure but reached the log would add a version). */
static int versions_differ(streamdb *db, const model *m, char *why, size_t n)
{
    for (size_t i = 0; i < m->n; i++) {
        streamdb_doc_info info;
        int rc = streamdb_stat(db, m->d[i].path, strlen(m->d[i].path), 0, &info);
        if (rc || info.version != m->d[i].version) {
            snprintf(why, n, "%s: version %llu (%s), model %llu", m->d[i].path,
                     rc ? 0ull : (unsigned long long)info.version, streamdb_strerror(rc),
                     (unsigned long long)m->d[i].version);
            return 1;
        }
    }
    return 0;
}

/* One point: fail the Nth allocation (once, or from then on).  Returns 1 when
 * the Nth allocation was reached. */
static int run_point(long n, int pers)
{
    char label[128], why[512];
    snprintf(label, sizeof label, "TORTURE_N=%ld persistent=%d", n, pers);
    if (tu_copy_file(basefile, dbfile, -1) || tu_copy_file(basewal, walfile, -1)) {
        fprintf(stderr, "copy failed: %s\n", strerror(errno));
        exit(2);
    }
    streamdb_config cfg;
    cfg_for(&cfg);
    fail_at = n;
    persistent = pers;
    atomic_store(&calls, 0);
    atomic_store(&failed, 0);
    atomic_store(&armed, 1);

    model cur = m_clone(&base_model);   /* what the acknowledged steps made */
    int acked = 0;
    streamdb *db = NULL;
    int rc = streamdb_open(dbfile, &cfg, &db);
    if (rc) {
        atomic_store(&armed, 0);
        if (rc != STREAMDB_ERR_NOMEM) {
            fprintf(stderr, "FAIL %s: open = %s: %s\n", label, streamdb_strerror(rc), tu_errmsg(NULL));
            contract++;
        }
        if (atomic_load(&live) != 0) {
            fprintf(stderr, "FAIL %s: a failed open left %ld blocks allocated\n", label, atomic_load(&live));
            leaks++;
            atomic_store(&live, 0);
        }
        goto reopen;
    }
    for (int i = 0; i < w.n; i++) {
        const wstep *st = &w.s[i];
        rc = do_step(db, st, &cur);
        if (rc) {
            /* A failed step is not retried: it must have changed nothing,
             * now and after the reopen below (where a commit that reached
             * the log although it "failed" would show up, with its version
             * numbers); the steps after it prove the handle still works. */
            if (rc != STREAMDB_ERR_NOMEM) {
                fprintf(stderr, "FAIL %s: step %d = %s: %s\n", label, i, streamdb_strerror(rc), tu_errmsg(db));
                contract++;
            }
            atomic_store(&armed, 0);   /* the allocator recovers */
            if (same(db, &cur, why, sizeof why)) {
                fprintf(stderr, "FAIL %s: step %d failed with %s but changed the database: %s\n", label,
                        i, streamdb_strerror(rc), why);
                integrity++;
            }
            continue;
        }
        if (st->kind == ST_TXN) {
            acked++;
            for (int k = 0; k < st->nops; k++) {
                if (st->ops[k].kind == OP_PUT) m_put(&cur, st->ops[k].path, st->ops[k].seed, st->ops[k].len);
                else m_del(&cur, st->ops[k].path);
            }
        }
        read_check(db, &cur, (unsigned)i * 7u + 3u, label);
    }
    /* one more write and read with a healthy allocator: the handle works */
    atomic_store(&armed, 0);
    rc = tu_put(db, "/after/failure", (uint64_t)n, 3000);
    if (rc) {
        fprintf(stderr, "FAIL %s: a write after the failures = %s: %s\n", label, streamdb_strerror(rc),
                tu_errmsg(db));
        contract++;
    } else {
        m_put(&cur, "/after/failure", (uint64_t)n, 3000);
        acked++;
    }
    if (same(db, &cur, why, sizeof why)) {
        fprintf(stderr, "FAIL %s: at the end: %s\n", label, why);
        integrity++;
    }
    atomic_store(&armed, 1);   /* close, and its checkpoint, under the hooks too */
    rc = streamdb_close(db);
    atomic_store(&armed, 0);
    if (rc && rc != STREAMDB_ERR_NOMEM) {
        fprintf(stderr, "FAIL %s: close = %s: %s\n", label, streamdb_strerror(rc), tu_errmsg(NULL));
        contract++;
    }
    if (atomic_load(&live) != 0) {
        fprintf(stderr, "FAIL %s: %ld blocks still allocated after close\n", label, atomic_load(&live));
        leaks++;
        atomic_store(&live, 0);
    }
reopen:;
    int reached = atomic_load(&failed) > 0;
    streamdb_config plain;
    cfg_for(&plain);
    db = NULL;
    rc = streamdb_open(dbfile, &plain, &db);
    if (rc) {
        fprintf(stderr, "FAIL %s: reopen = %s: %s\n", label, streamdb_strerror(rc), tu_errmsg(NULL));
        integrity++;
        return reached;
    }
    if (same(db, &cur, why, sizeof why) || versions_differ(db, &cur, why, sizeof why)) {
        fprintf(stderr, "FAIL %s: after reopen (%d commits acknowledged): %s\n", label, acked, why);
        lost++;
    }
    if ((rc = streamdb_check(db))) {
        fprintf(stderr, "FAIL %s: check = %s: %s\n", label, streamdb_strerror(rc), tu_errmsg(db));
        integrity++;
    }
    streamdb_close(db);
    atomic_store(&live, 0);
    m_free(&cur);
    return reached;
}

int main(void)
{
    /* [F10] on every commit that has a fresh page, not only on batches of
     * 256 KiB: these workloads' transactions are small */
    setenv("STREAMDB_TEST_FRESH_DIRECT", "1", 0);
    tu_init("torture_nomem");
    long scale = t_scale();
    uint64_t seed = t_seed();
    printf("torture_nomem: TORTURE_SEED=%llu TORTURE_SCALE=%ld\n", (unsigned long long)seed, scale);

    /* the hooks can be set only while no database is open */
    CHECK(streamdb_set_allocator(&(streamdb_allocator){h_malloc, NULL, h_free, NULL}) ==
             STREAMDB_ERR_INVALID);
    CHECK(streamdb_set_allocator(&hooks) == 0);
    const char *dir = tu_fast_dir();
    snprintf(dbfile, sizeof dbfile, "%s/t2.db", dir);
    snprintf(walfile, sizeof walfile, "%s/t2.db-wal", dir);
    snprintf(basefile, sizeof basefile, "%s/base.db", dir);
    snprintf(basewal, sizeof basewal, "%s/base.db-wal", dir);

    /* the base: a flushed workload, plus a few commits left in the log */
    {
        streamdb_config cfg;
        cfg_for(&cfg);
        streamdb *db = NULL;
        CHECK(streamdb_open(basefile, &cfg, &db) == 0);
        CHECK(streamdb_set_allocator(NULL) == STREAMDB_ERR_BUSY);
        workload b = w_make(seed ^ 0xba5eull, 16, 10);
        int acked = 0, synced = 0;
        CHECK(w_run(db, &b, 1, &acked, &synced, NULL, NULL) == 0);
        model *bh = w_history(&b, NULL);
        base_model = m_clone(&bh[b.ncommits]);
        w_history_free(bh, b.ncommits);
        w_free(&b);
        /* leave the log non-empty: the open replays it */
        CHECK(tu_put(db, "/a/doc0", seed, 1500) == 0);
        m_put(&base_model, "/a/doc0", seed, 1500);
        /* copy while open, at an acknowledged commit, so that close does
         * not checkpoint the log away */
        CHECK(tu_copy_file(basefile, dbfile, -1) == 0);
        CHECK(tu_copy_file(basewal, walfile, -1) == 0);
        CHECK(streamdb_close(db) == 0);
        CHECK(atomic_load(&live) == 0);
        /* the copies (taken at an acknowledged commit) are the base */
        CHECK(rename(dbfile, basefile) == 0 && rename(walfile, basewal) == 0);
    }
    w = w_make(seed, 14 + 2 * (int)scale, 12);

    /* how many allocations the whole scenario makes */
    run_point(LONG_MAX, 0);
    long total = atomic_load(&calls);
    CHECK(atomic_load(&failed) == 0);
    printf("torture_nomem: the scenario makes %ld allocations; %d steps, %d commits\n", total, w.n,
           w.ncommits);

    long only = tu_env_long("TORTURE_N", 0);
    if (only > 0) {   /* reproduce one point */
        run_point(only, (int)tu_env_long("TORTURE_PERSISTENT", 0));
        points = 1;
        goto done;
    }
    long dense = 150 * scale;
    long step = total / (200 * scale) + 1;
    for (int pers = 0; pers < 2; pers++) {
        for (long n = 1; n <= total + 1;) {
            /* allocations made with the hooks disarmed (the checks after a
             * failed step, the final write and comparison) are never refused:
             * those points are not counted */
            if (run_point(n, pers)) points++;
            n += n < dense ? 1 : step;
        }
    }
done:
    w_free(&w);
    m_free(&base_model);
    CHECK(streamdb_set_allocator(NULL) == 0);

    CHECK(lost == 0);
    CHECK(integrity == 0);
    CHECK(contract == 0);
    CHECK(leaks == 0);
    CHECK(points > 0);
    t_figure("T2 allocation failures", points, lost, integrity);
    printf("T2 allocation failures: %ld wrong error codes or unusable handles, %ld leaks\n", contract, leaks);
    tu_finish();
}
