/*
 * test_fault_vfs.c -- T1 smoke form (RELIABILITY.md): an I/O error at the
 * Nth write or sync.
 *
 * A fault-injecting VFS wraps streamdb_vfs_file() and counts every write and
 * every sync (file and directory) across all files.  For N = 1, 2, ... it
 * fails the Nth write (EIO, ENOSPC, or a short write followed by EIO), the
 * Nth sync (EIO), the Nth truncate or the Nth read, once (transient) or from
 * then on (persistent), while documents are read, a transaction commits and
 * the database is flushed, compacted and closed.  Checks:
 *  - reads give the right bytes or STREAMDB_ERR_IO, never other bytes;
 *  - the call that met the fault returns an error, and the commit does not
 *    report success after a failed write;
 *  - after a failed write or sync every later write on the handle returns
 *    STREAMDB_ERR_FATAL, and no write or sync fault goes unreported;
 *  - after a reopen with the plain file VFS, the data equals the state before
 *    or after the transaction (after, if its commit returned success), never
 *    a mix, and streamdb_check passes.
 * The loop over N ends when a whole run meets no fault.
 */
#include "testutil.h"

struct fault_ctx {
    const streamdb_vfs *inner;
    long writes, syncs, reads, truncates;
    long fail_write_at, fail_sync_at, fail_read_at, fail_truncate_at; /* 0: never */
    int err;
    int short_write;                  /* write half, then fail the rest */
    int persistent;
    int triggered;
};

struct ffile {
    streamdb_file *inner;
    struct fault_ctx *ctx;
};

static streamdb_file *wrap(struct ffile *f) { return (streamdb_file *)(void *)f; }
static struct ffile *unwrap(streamdb_file *f) { return (struct ffile *)(void *)f; }

static int f_open(const streamdb_vfs *vfs, const char *name, int flags, unsigned mode,
                  streamdb_file **out) {
    struct fault_ctx *ctx = vfs->ctx;
    struct ffile *f = calloc(1, sizeof *f);
    if (!f) return ENOMEM;
    int rc = ctx->inner->open(ctx->inner, name, flags, mode, &f->inner);
    if (rc) {
        free(f);
        return rc;
    }
    f->ctx = ctx;
    *out = wrap(f);
    return 0;
}
static int f_close(streamdb_file *file) {
    struct ffile *f = unwrap(file);
    int rc = f->ctx->inner->close(f->inner);
    free(f);
    return rc;
}
static int f_read(streamdb_file *file, void *buf, size_t n, uint64_t off, size_t *done) {
    struct ffile *f = unwrap(file);
    struct fault_ctx *c = f->ctx;
    long k = ++c->reads;
    if (c->fail_read_at && (k == c->fail_read_at || (c->persistent && k > c->fail_read_at))) {
        c->triggered = 1;
        *done = 0;
        return c->err;
    }
    return c->inner->read(f->inner, buf, n, off, done);
}
static int f_write(streamdb_file *file, const void *buf, size_t n, uint64_t off, size_t *done) {
    struct ffile *f = unwrap(file);
    struct fault_ctx *c = f->ctx;
    long k = ++c->writes;
    if (c->fail_write_at && (k == c->fail_write_at || (c->persistent && k > c->fail_write_at))) {
        c->triggered = 1;
        if (c->short_write && n > 1 && k == c->fail_write_at) {
            /* half of it lands; the core must loop, and meet the error next */
            int rc = c->inner->write(f->inner, buf, n / 2, off, done);
            if (rc == 0) c->fail_write_at = k + 1;
            return rc;
        }
        *done = 0;
        return c->err;
    }
    return c->inner->write(f->inner, buf, n, off, done);
}
static int sync_fault(struct fault_ctx *c) {
    long k = ++c->syncs;
    if (c->fail_sync_at && (k == c->fail_sync_at || (c->persistent && k > c->fail_sync_at))) {
        c->triggered = 1;
        return c->err;
    }
    return 0;
}
static int f_sync(streamdb_file *file) {
    struct ffile *f = unwrap(file);
    int rc = sync_fault(f->ctx);
    return rc ? rc : f->ctx->inner->sync(f->inner);
}
static int f_truncate(streamdb_file *file, uint64_t size) {
    struct ffile *f = unwrap(file);
    struct fault_ctx *c = f->ctx;
    long k = ++c->truncates;
    if (c->fail_truncate_at && (k == c->fail_truncate_at || (c->persistent && k > c->fail_truncate_at))) {
        c->triggered = 1;
        return c->err;
    }
    return c->inner->truncate(f->inner, size);
}
static int f_size(streamdb_file *file, uint64_t *size) {
    struct ffile *f = unwrap(file);
    return f->ctx->inner->size(f->inner, size);
}
static int f_lock(streamdb_file *file, int exclusive) {
    struct ffile *f = unwrap(file);
    return f->ctx->inner->lock(f->inner, exclusive);
}
static int f_map(streamdb_file *file, uint64_t len, const void **addr) {
    struct ffile *f = unwrap(file);
    if (!f->ctx->inner->map) return ENOTSUP;
    return f->ctx->inner->map(f->inner, len, addr);
}
static int f_unmap(streamdb_file *file, const void *addr, uint64_t len) {
    struct ffile *f = unwrap(file);
    return f->ctx->inner->unmap(f->inner, addr, len);
}
static int f_exists(const streamdb_vfs *vfs, const char *name, int *exists) {
    struct fault_ctx *c = vfs->ctx;
    return c->inner->exists(c->inner, name, exists);
}
static int f_remove(const streamdb_vfs *vfs, const char *name) {
    struct fault_ctx *c = vfs->ctx;
    return c->inner->remove(c->inner, name);
}
static int f_sync_dir(const streamdb_vfs *vfs, const char *name) {
    struct fault_ctx *c = vfs->ctx;
    int rc = sync_fault(c);
    return rc ? rc : c->inner->sync_dir(c->inner, name);
}

static void fault_vfs_init(streamdb_vfs *v, struct fault_ctx *c) {
    memset(c, 0, sizeof *c);
    c->inner = streamdb_vfs_file();
    memset(v, 0, sizeof *v);
    v->version = 1;
    v->ctx = c;
    v->open = f_open;
    v->close = f_close;
    v->read = f_read;
    v->write = f_write;
    v->sync = f_sync;
    v->truncate = f_truncate;
    v->size = f_size;
    v->lock = f_lock;
    v->map = c->inner->map ? f_map : NULL;
    v->unmap = c->inner->unmap ? f_unmap : NULL;
    v->exists = f_exists;
    v->remove = f_remove;
    v->sync_dir = f_sync_dir;
}

/* ---- the workload ---------------------------------------------------------- */

struct doc {
    const char *path;
    uint64_t seed;
    size_t len; /* (size_t)-1: absent */
};
#define ABSENT ((size_t)-1)
static const struct doc before[] = {
    {"/a/1", 1, 3000}, {"/a/2", 2, 200000}, {"/a/3", 3, 40}, {"/b/1", 0, ABSENT}, {"/b/2", 0, ABSENT},
};
static const struct doc after[] = {
    {"/a/1", 11, 90000}, {"/a/2", 0, ABSENT}, {"/a/3", 3, 40}, {"/b/1", 12, 100}, {"/b/2", 13, 300000},
};
#define ND 5

/* 1 when db holds exactly the given state. */
static int holds(streamdb *db, const struct doc *want, char *why, size_t cap) {
    for (int i = 0; i < ND; i++) {
        void *d = NULL;
        size_t dl = 0;
        int rc = streamdb_get(db, want[i].path, 0, &d, &dl);
        if (want[i].len == ABSENT) {
            if (rc != STREAMDB_ERR_NOT_FOUND) {
                snprintf(why, cap, "%s: get = %d, wanted NOT_FOUND", want[i].path, rc);
                if (rc == 0) streamdb_free(d);
                return 0;
            }
            continue;
        }
        if (rc) {
            snprintf(why, cap, "%s: get = %d (%s)", want[i].path, rc, streamdb_strerror(rc));
            return 0;
        }
        int ok = dl == want[i].len && tu_verify(d, dl, want[i].seed, 0) < 0;
        streamdb_free(d);
        if (!ok) {
            snprintf(why, cap, "%s: %zu bytes, not seed %" PRIu64 " of %zu", want[i].path, dl,
                     want[i].seed, want[i].len);
            return 0;
        }
    }
    return 1;
}

static long points, lost, integrity;

enum { T_WRITE, T_SYNC, T_TRUNCATE, T_READ };

/* One run; returns 1 if the fault was met. */
static int run(const char *kind, long n, int err, int short_write, int persistent, int target) {
    static char dbpath[600];
    snprintf(dbpath, sizeof dbpath, "%s/fault.db", tu_fast_dir());
    char wal[1100];
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    unlink(dbpath);
    unlink(wal);
    streamdb_vfs vfs;
    struct fault_ctx ctx;
    fault_vfs_init(&vfs, &ctx);
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.page_size = 4096;
    cfg.vfs = &vfs;
    streamdb *db = tu_open_cfg(dbpath, &cfg);
    for (int i = 0; i < ND; i++)
        if (before[i].len != ABSENT) REQUIRE_OK(db, tu_put(db, before[i].path, before[i].seed, before[i].len));
    /* a document at the end of the file, deleted in the transaction, so
     * that compact has a tail to truncate */
    REQUIRE_OK(db, tu_put(db, "/z/tail", 99, 1500000));
    CHECK_OK(db, streamdb_close(db));
    db = tu_open_cfg(dbpath, &cfg); /* cold cache: the reads below go to the file */

    /* Arm, then reads, the transaction, a flush, a compact and a close. */
    ctx.writes = ctx.syncs = ctx.reads = ctx.truncates = 0;
    ctx.err = err;
    ctx.short_write = short_write;
    ctx.persistent = persistent;
    switch (target) {
    case T_WRITE: ctx.fail_write_at = n; break;
    case T_SYNC: ctx.fail_sync_at = n; break;
    case T_TRUNCATE: ctx.fail_truncate_at = n; break;
    default: ctx.fail_read_at = n; break;
    }

    int first_err = 0, committed = 0;
    const char *where = NULL;
#define STEP(name, expr)                                        \
    do {                                                        \
        int rc_ = (expr);                                       \
        if (rc_ && !first_err) {                                \
            first_err = rc_;                                    \
            where = name;                                       \
        }                                                       \
    } while (0)
    /* Reads give the right bytes or an error, never other bytes. */
    for (int i = 0; i < ND; i++) {
        if (before[i].len == ABSENT) continue;
        void *d = NULL;
        size_t dl = 0;
        int rc = streamdb_get(db, before[i].path, 0, &d, &dl);
        if (rc == 0) {
            CHECKF(dl == before[i].len && tu_verify(d, dl, before[i].seed, 0) < 0,
                   "%s %ld: get %s returned WRONG BYTES", kind, n, before[i].path);
            streamdb_free(d);
        } else {
            CHECKF(rc == STREAMDB_ERR_IO, "%s %ld: get %s = %d (%s), wanted IO: %s", kind, n,
                   before[i].path, rc, streamdb_strerror(rc), tu_errmsg(db));
            CHECKF(ctx.triggered, "%s %ld: get %s failed with no fault injected", kind, n,
                   before[i].path);
        }
    }
    STEP("begin", streamdb_begin_transaction(db));
    STEP("write /a/1", tu_put(db, "/a/1", 11, 90000));
    STEP("delete /a/2", streamdb_delete(db, "/a/2"));
    STEP("write /b/1", tu_put(db, "/b/1", 12, 100));
    STEP("write /b/2", tu_put(db, "/b/2", 13, 300000));
    STEP("delete /z/tail", streamdb_delete(db, "/z/tail"));
    int had_error = first_err != 0;
    int crc = streamdb_commit_transaction(db);
    if (crc == 0) committed = 1;
    else {
        STEP("commit", crc);
        if (crc != STREAMDB_ERR_TRANSACTION) streamdb_rollback_transaction(db);
    }
    if (had_error && committed) {
        TU_FAIL("%s %ld: commit returned success after %s failed (%d)", kind, n, where, first_err);
        integrity++;
    }
    if (!first_err) STEP("flush", streamdb_flush(db));
    if (!first_err) STEP("compact", streamdb_compact(db));
    int met = ctx.triggered;
    if (first_err) {
        CHECKF(met, "%s %ld: %s failed (%d: %s) with no fault injected: %s", kind, n, where,
               first_err, streamdb_strerror(first_err), tu_errmsg(db));
        /* After a failed write or sync the handle is latched: every write
         * is FATAL now. */
        if (target == T_WRITE || target == T_SYNC) {
            int rc = tu_put(db, "/c/after", 1, 10);
            CHECKF(rc == STREAMDB_ERR_FATAL, "%s %ld: a write after the failure of %s returned %d (%s)",
                   kind, n, where, rc, streamdb_strerror(rc));
            rc = streamdb_begin_transaction(db);
            CHECKF(rc == STREAMDB_ERR_FATAL, "%s %ld: begin after the failure returned %d", kind, n, rc);
            if (rc == 0) streamdb_rollback_transaction(db);
        }
    }
    int close_rc = streamdb_close(db);
    met = ctx.triggered;
    /* A write or sync fault that no call reported (not even close) was swallowed. */
    if (target == T_WRITE || target == T_SYNC)
        CHECKF(!met || first_err || close_rc, "%s %ld: an injected I/O error was reported by no call",
               kind, n);

    /* Reopen with the plain file VFS. */
    streamdb_config plain;
    streamdb_config_init(&plain);
    plain.page_size = 4096;
    streamdb *db2 = NULL;
    int rc = streamdb_open(dbpath, &plain, &db2);
    points++;
    if (rc) {
        TU_FAIL("%s %ld: reopen = %d (%s): %s", kind, n, rc, streamdb_strerror(rc), tu_errmsg(NULL));
        integrity++;
        return met;
    }
    char why_b[200] = "", why_a[200] = "";
    int is_before = holds(db2, before, why_b, sizeof why_b);
    int is_after = holds(db2, after, why_a, sizeof why_a);
    if (committed && !is_after) {
        TU_FAIL("%s %ld: the commit returned success but the data is not the state after it: %s",
                kind, n, why_a);
        lost++;
    } else if (!is_before && !is_after) {
        TU_FAIL("%s %ld (fault in %s): the data is neither before (%s) nor after (%s)", kind, n,
                where ? where : "-", why_b, why_a);
        integrity++;
    } else {
        void *d = NULL;
        size_t dl = 0;
        rc = streamdb_get(db2, "/z/tail", 0, &d, &dl);
        if (is_after) CHECKF(rc == STREAMDB_ERR_NOT_FOUND, "%s %ld: /z/tail outlived its delete", kind, n);
        else CHECKF(rc == 0 && dl == 1500000 && tu_verify(d, dl, 99, 0) < 0, "%s %ld: /z/tail damaged", kind, n);
        if (rc == 0) streamdb_free(d);
    }
    void *d;
    size_t dl;
    rc = streamdb_get(db2, "/c/after", 0, &d, &dl);
    CHECKF(rc == STREAMDB_ERR_NOT_FOUND, "%s %ld: a write refused as FATAL is in the file", kind, n);
    if (rc == 0) streamdb_free(d);
    rc = streamdb_check(db2);
    if (rc) {
        TU_FAIL("%s %ld: check = %d (%s): %s", kind, n, rc, streamdb_strerror(rc), tu_errmsg(db2));
        integrity++;
    }
    /* The reopened handle writes again. */
    CHECK_OK(db2, tu_put(db2, "/c/later", 5, 5000));
    CHECK_OK(db2, streamdb_close(db2));
    return met;
}

int main(void) {
    tu_init("fault_vfs");
    struct {
        const char *kind;
        int err, short_write, persistent, target;
    } modes[] = {
        {"write EIO", EIO, 0, 0, T_WRITE},
        {"write ENOSPC persistent", ENOSPC, 0, 1, T_WRITE},
        {"short write then EIO", EIO, 1, 0, T_WRITE},
        {"sync EIO", EIO, 0, 0, T_SYNC},
        {"sync EIO persistent", EIO, 0, 1, T_SYNC},
        {"truncate EIO", EIO, 0, 0, T_TRUNCATE},
        {"read EIO", EIO, 0, 0, T_READ},
        {"read EIO persistent", EIO, 0, 1, T_READ},
    };
    long cap = tu_env_long("STREAMDB_FAULT_MAX", 400);
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        long n;
        for (n = 1; n <= cap; n++)
            if (!run(modes[m].kind, n, modes[m].err, modes[m].short_write, modes[m].persistent,
                     modes[m].target))
                break;
        printf("%s: faults at 1..%ld\n", modes[m].kind, n - 1);
        CHECKF(n > 1, "%s: the workload never reached the fault", modes[m].kind);
        CHECKF(n <= cap, "%s: still meeting faults at %ld (raise STREAMDB_FAULT_MAX)", modes[m].kind, cap);
    }
    printf("%ld fault points tried, %ld acknowledged writes lost, %ld integrity failures\n", points,
           lost, integrity);
    tu_finish();
}
