/*
 * torture_ioerr.c -- T1 of RELIABILITY.md: an I/O error at the Nth call.
 *
 * A base database (a seeded workload, flushed) lives in a memory VFS.  For
 * every kind of call (open, read, write, sync incl. directory sync,
 * truncate, size, lock), every fault (EIO, ENOSPC, a short transfer, EINTR),
 * once or persistently, and N = 1, 2, ... until the Nth call is never
 * reached, a copy of the base is opened through the fault VFS and a second
 * workload (puts incl. a big document, deletes, a transaction, a flush, a
 * compaction) runs, then the handle is closed.  Checks:
 *  - short transfers and EINTR are invisible: every commit succeeds and the
 *    final state is the full workload;
 *  - after an EIO/ENOSPC on a write, sync or truncate made a call fail,
 *    every later write on that handle returns STREAMDB_ERR_FATAL (a commit
 *    that failed for another reason leaves the handle refusing writes or
 *    usable, but never "half written");
 *  - errors are documented codes (IO, FULL, FATAL, CORRUPT from a failed
 *    read is not accepted: a read error must be IO);
 *  - reopened without faults, the database equals the model after every
 *    acknowledged commit, or after that plus the failed one (before or
 *    after, never a mix), and streamdb_check passes.
 * TORTURE_SCALE widens the N sweep (smoke: dense for small N, sparse after).
 */
#include "torture.h"

static long points, lost, integrity, contract;

/* Copies the named files of src into a new memory VFS. */
static streamdb_vfs *mem_copy(const streamdb_vfs *src)
{
    streamdb_vfs *dst = streamdb_vfs_memory_new();
    const char *names[] = {"t1.db", "t1.db-wal"};
    for (int i = 0; i < 2; i++) {
        streamdb_file *f = NULL, *g = NULL;
        if (src->open(src, names[i], 0, 0600, &f)) continue;
        uint64_t sz = 0;
        src->size(f, &sz);
        uint8_t *buf = malloc(sz ? sz : 1);
        size_t done = 0;
        if (sz) src->read(f, buf, sz, 0, &done);
        src->close(f);
        dst->open(dst, names[i], STREAMDB_VFS_CREATE, 0600, &g);
        if (sz) dst->write(g, buf, sz, 0, &done);
        dst->close(g);
        free(buf);
    }
    return dst;
}

static void cfg_for(streamdb_config *cfg, const streamdb_vfs *vfs)
{
    streamdb_config_init(cfg);
    cfg->page_size = 4096;
    cfg->wal_autocheckpoint = 128 * 1024;
    cfg->vfs = vfs;
    cfg->async_workers = 1;
}

static int documented(int rc)
{
    return rc == STREAMDB_ERR_IO || rc == STREAMDB_ERR_FULL || rc == STREAMDB_ERR_FATAL ||
           rc == STREAMDB_ERR_NOMEM;
}

int main(void)
{
    /* [F10] on every commit that has a fresh page, not only on batches of
     * 256 KiB: these workloads' transactions are small */
    setenv("STREAMDB_TEST_FRESH_DIRECT", "1", 0);
    tu_init("torture_ioerr");
    long scale = t_scale();
    uint64_t seed = t_seed();
    if (!getenv("TORTURE_SEED")) seed = 7;   /* a fixed base: N sweeps are what vary */
    /* the base */
    workload w0 = w_make(seed, 10, 10);
    model *h0 = w_history(&w0, NULL);
    model base = m_clone(&h0[w0.ncommits]);
    streamdb_vfs *basevfs = streamdb_vfs_memory_new();
    {
        streamdb_config cfg;
        cfg_for(&cfg, basevfs);
        streamdb *db = tu_open_cfg("t1.db", &cfg);
        int a, s;
        REQUIRE_OK(db, w_run(db, &w0, 1, &a, &s, NULL, NULL));
        REQUIRE_OK(db, streamdb_close(db));
    }
    workload w = w_make(seed + 1000, 12, 12);
    model *hist = w_history(&w, &base);
    int kind_only = (int)tu_env_long("TORTURE_KIND", 0);        /* 1 + fv_kind */
    long n_only = tu_env_long("TORTURE_N", 0);
    for (int kind = 0; kind < FV_NKINDS; kind++) {
        if (kind_only && kind != kind_only - 1) continue;
        for (int fault = 0; fault < FV_NFAULTS; fault++) {
            if (fault == FV_SHORT && kind != FV_READ && kind != FV_WRITE) continue;
            for (int persistent = 0; persistent < 2; persistent++) {
                if ((int)tu_env_long("TORTURE_FAULT", 0) && fault != (int)tu_env_long("TORTURE_FAULT", 0) - 1) continue;
                for (long n = n_only ? n_only : 1;; ) {
                    char label[200];
                    snprintf(label, sizeof label, "TORTURE_SEED=%llu TORTURE_KIND=%d TORTURE_FAULT=%d persistent=%d TORTURE_N=%ld (%s %s)",
                             (unsigned long long)seed, kind + 1, fault + 1, persistent, n,
                             fv_kind_name((fv_kind)kind), fv_fault_name((fv_fault)fault));
                    streamdb_vfs *mem = mem_copy(basevfs);
                    faultvfs *fv = fv_new(mem);
                    fv_arm(fv, (fv_kind)kind, n, (fv_fault)fault, persistent);
                    streamdb_config cfg;
                    cfg_for(&cfg, fv_vfs(fv));
                    streamdb *db = NULL;
                    int acked = 0, synced = 0, rc_run = 0, rc_close = 0;
                    int rc_open = streamdb_open("t1.db", &cfg, &db);
                    int transparent = fault == FV_SHORT || fault == FV_EINTR;
                    if (rc_open == 0) {
                        rc_run = w_run(db, &w, 1, &acked, &synced, NULL, NULL);
                        long d = fv_delivered(fv);
                        if (rc_run && !documented(rc_run)) {
                            contract++;
                            fprintf(stderr, "FAIL %s: workload error %d (%s) is not an I/O code: %s\n", label,
                                    rc_run, streamdb_strerror(rc_run), tu_errmsg(db));
                        }
                        if (rc_run && (kind == FV_WRITE || kind == FV_SYNC || kind == FV_TRUNCATE) && !transparent && d) {
                            int rc2 = tu_put(db, "/after-failure", 1, 10);
                            if (rc2 != STREAMDB_ERR_FATAL) {
                                contract++;
                                fprintf(stderr, "FAIL %s: after %s, a write returned %d (%s), wanted FATAL\n", label,
                                        streamdb_strerror(rc_run), rc2, streamdb_strerror(rc2));
                            }
                        }
                        rc_close = streamdb_close(db);
                        (void)rc_close;
                    } else if (!documented(rc_open) && rc_open != STREAMDB_ERR_LOCKED) {
                        contract++;
                        fprintf(stderr, "FAIL %s: open = %d (%s): %s\n", label, rc_open,
                                streamdb_strerror(rc_open), tu_errmsg(NULL));
                    }
                    long calls = fv_count(fv, (fv_kind)kind);
                    long delivered = fv_delivered(fv);
                    if (transparent && (rc_open || rc_run)) {
                        contract++;
                        fprintf(stderr, "FAIL %s: a %s should be retried, but open = %s, workload = %s (%d of %d commits): %s\n",
                                label, fv_fault_name((fv_fault)fault), streamdb_strerror(rc_open),
                                streamdb_strerror(rc_run), acked, w.ncommits, tu_errmsg(db ? NULL : NULL));
                    }
                    fv_free(fv);
                    /* reopen without faults */
                    points++;
                    streamdb_config c2;
                    cfg_for(&c2, mem);
                    streamdb *db2 = NULL;
                    int rc = streamdb_open("t1.db", &c2, &db2);
                    if (rc) {
                        integrity++;
                        fprintf(stderr, "FAIL %s: reopen = %s: %s\n", label, streamdb_strerror(rc), tu_errmsg(NULL));
                    } else {
                        int lo = acked, hi = acked + 1 > w.ncommits ? w.ncommits : acked + 1;
                        if (rc_open == 0 && rc_run == 0) lo = hi = w.ncommits;
                        char why[700];
                        if (w_match(db2, hist, lo, hi, why, sizeof why) < 0) {
                            char t[700];
                            int older = lo > 0 ? w_match(db2, hist, 0, lo - 1, t, sizeof t) : -1;
                            if (older >= 0) lost++; else integrity++;
                            fprintf(stderr, "FAIL %s: after reopen %s (acked %d): %s\n", label,
                                    older >= 0 ? "acknowledged commits are missing" : "the state is no prefix",
                                    acked, why);
                        }
                        rc = streamdb_check(db2);
                        if (rc) {
                            integrity++;
                            fprintf(stderr, "FAIL %s: check = %s: %s\n", label, streamdb_strerror(rc), tu_errmsg(db2));
                        }
                        streamdb_close(db2);
                    }
                    streamdb_vfs_memory_free(mem);
                    if (n_only || calls < n || (delivered == 0 && !persistent)) break;
                    long step = n < 24 ? 1 : 1 + n / (6 * scale);
                    n += step;
                }
            }
        }
    }
    streamdb_vfs_memory_free(basevfs);
    w_history_free(hist, w.ncommits);
    w_history_free(h0, w0.ncommits);
    m_free(&base);
    w_free(&w);
    w_free(&w0);
    t_figure("T1 I/O errors", points, lost, integrity);
    printf("T1 I/O errors: %ld contract failures (an EINTR not retried, an I/O error reported as another code, "
           "a write accepted after a failed commit)%s\n", contract,
           getenv("TORTURE_LENIENT") ? " (TORTURE_LENIENT: not counted as failures)" : "");
    if (lost || integrity || (contract && !getenv("TORTURE_LENIENT"))) tu_failures = 1;
    tu_finish();
}
