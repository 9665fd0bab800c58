/*
 * sysfault.c -- RELIABILITY.md T12: drive the error returns of the VFS layer
 * (core/src/vfs) by failing real system calls underneath vfs_file.c.
 *
 * The torture families inject faults above the VFS interface (faultvfs.c), so
 * the backends' own error paths -- a failing pread, pwrite, fdatasync,
 * ftruncate, open, fstat, stat, flock, mmap, munmap, close, unlink, fsync of
 * the directory, an allocation failing inside a backend -- are only reached
 * here.  This file defines those libc functions itself: linked statically
 * with libstreamdb.a, the core's calls resolve to these wrappers, which pass
 * through to libc (dlsym RTLD_NEXT) unless a fault is armed.  Built with
 * -DSYSFAULT_PRELOAD -shared it is an LD_PRELOAD shim for the CLI instead,
 * armed by SYSFAULT=KIND:ERR:N[:p] (KIND as in kind_name below, ERR an errno
 * name or "short", N the call number, p persistent).
 *
 * Driver (tests/torture/coverage.sh builds and runs it):
 *   sysfault DIR      every kind x fault x call number over a workload of
 *                     commits, a transaction, a streaming write, reads, a
 *                     flush, a compaction and a close; then the allocation
 *                     sweep over the file and memory backends, locks, and
 *                     the direct backend checks.
 *   SYSFAULT_DENSE=1  every call number (default: 1..12, then a stride).
 *
 * Oracle for every injected fault: the failing call returns a documented
 * code (IO, FULL, NOMEM, FATAL; LOCKED only for EWOULDBLOCK from flock) with
 * a non-empty errmsg, never a crash; transient EINTR and short transfers are
 * invisible (the workload succeeds); after the fault is cleared the database
 * reopens, holds every acknowledged write, the operation in flight is all or
 * nothing, and streamdb_check passes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "streamdb.h"

/* ------------------------------------------------------------------ faults */

enum { K_OPEN, K_PREAD, K_PWRITE, K_FDATASYNC, K_FSYNC, K_FTRUNCATE, K_FSTAT, K_STAT, K_FLOCK,
       K_MMAP, K_MUNMAP, K_CLOSE, K_UNLINK, K_NKINDS };
static const char *kind_name[K_NKINDS] = {"open", "pread", "pwrite", "fdatasync", "fsync",
                                          "ftruncate", "fstat", "stat", "flock", "mmap",
                                          "munmap", "close", "unlink"};
#define E_SHORT (-1) /* a short transfer (half the bytes, at least one) */

static struct {
    int armed, kind, err, persistent;
    long nth, calls, fired;
} F;
/* Only calls on names under this prefix (open, stat, unlink) count. */
static char F_prefix[600];

static int hit(int kind)
{
    if (!__atomic_load_n(&F.armed, __ATOMIC_SEQ_CST) || F.kind != kind)
        return 0;
    long c = __atomic_add_fetch(&F.calls, 1, __ATOMIC_SEQ_CST);
    if (c == F.nth || (F.persistent && c > F.nth)) {
        __atomic_add_fetch(&F.fired, 1, __ATOMIC_SEQ_CST);
        return F.err;
    }
    return 0;
}
static int hit_name(int kind, const char *name)
{
    if (F_prefix[0] && strncmp(name, F_prefix, strlen(F_prefix)))
        return 0;
    return hit(kind);
}

#define REAL(ret, name, args)                                    \
    static ret(*real_##name) args;                                \
    static void load_##name(void)                                 \
    {                                                             \
        if (!real_##name)                                         \
            real_##name = (ret(*) args)dlsym(RTLD_NEXT, #name);   \
    }
REAL(int, open, (const char *, int, ...))
REAL(ssize_t, pread, (int, void *, size_t, off_t))
REAL(ssize_t, pwrite, (int, const void *, size_t, off_t))
REAL(int, fdatasync, (int))
REAL(int, fsync, (int))
REAL(int, ftruncate, (int, off_t))
REAL(int, fstat, (int, struct stat *))
REAL(int, stat, (const char *, struct stat *))
REAL(int, flock, (int, int))
REAL(void *, mmap, (void *, size_t, int, int, int, off_t))
REAL(int, munmap, (void *, size_t))
REAL(int, close, (int))
REAL(int, unlink, (const char *))

/* Set by a successful open(): the next allocation of the core may be failed
 * (the backend's own malloc right after open). */
static int F_after_open;
static void *F_mapped; /* the last file mapping: the one munmap faults apply to */

int open(const char *name, int flags, ...)
{
    load_open();
    unsigned mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, unsigned);
        va_end(ap);
    }
    int e = hit_name(K_OPEN, name);
    if (e) {
        errno = e;
        return -1;
    }
    int fd = real_open(name, flags, mode);
    if (fd >= 0)
        __atomic_store_n(&F_after_open, 1, __ATOMIC_SEQ_CST);
    return fd;
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
    load_pread();
    int e = hit(K_PREAD);
    if (e == E_SHORT && n > 1)
        n /= 2;
    else if (e && e != E_SHORT) {
        errno = e;
        return -1;
    }
    return real_pread(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    load_pwrite();
    int e = hit(K_PWRITE);
    if (e == E_SHORT && n > 1)
        n /= 2;
    else if (e && e != E_SHORT) {
        errno = e;
        return -1;
    }
    return real_pwrite(fd, buf, n, off);
}

#define SIMPLE1(kind, name, T1)                   \
    int name(T1 a)                                \
    {                                             \
        load_##name();                            \
        int e = hit(kind);                        \
        if (e) {                                  \
            errno = e;                            \
            return -1;                            \
        }                                         \
        return real_##name(a);                    \
    }
SIMPLE1(K_FDATASYNC, fdatasync, int)
SIMPLE1(K_FSYNC, fsync, int)

int close(int fd)
{
    load_close();
    int e = hit(K_CLOSE);
    if (e) {
        /* Linux closes the descriptor whatever close returns. */
        real_close(fd);
        errno = e;
        return -1;
    }
    return real_close(fd);
}

int ftruncate(int fd, off_t len)
{
    load_ftruncate();
    int e = hit(K_FTRUNCATE);
    if (e) {
        errno = e;
        return -1;
    }
    return real_ftruncate(fd, len);
}

int fstat(int fd, struct stat *st)
{
    load_fstat();
    int e = hit(K_FSTAT);
    if (e) {
        errno = e;
        return -1;
    }
    return real_fstat(fd, st);
}

int stat(const char *name, struct stat *st)
{
    load_stat();
    int e = hit_name(K_STAT, name);
    if (e) {
        errno = e;
        return -1;
    }
    return real_stat(name, st);
}

int flock(int fd, int op)
{
    load_flock();
    int e = hit(K_FLOCK);
    if (e) {
        errno = e;
        return -1;
    }
    return real_flock(fd, op);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    load_mmap();
    /* Only file mappings: the allocator and thread stacks use anonymous ones. */
    int e = (flags & MAP_ANONYMOUS) ? 0 : hit(K_MMAP);
    if (e) {
        errno = e;
        return MAP_FAILED;
    }
    void *p = real_mmap(addr, len, prot, flags, fd, off);
    if (!(flags & MAP_ANONYMOUS) && p != MAP_FAILED)
        F_mapped = p;
    return p;
}

int munmap(void *addr, size_t len)
{
    load_munmap();
    int e = (F_mapped && addr == F_mapped) ? hit(K_MUNMAP) : 0;
    if (e) {
        /* Report the failure but release the mapping: nothing leaks. */
        real_munmap(addr, len);
        errno = e;
        return -1;
    }
    return real_munmap(addr, len);
}

int unlink(const char *name)
{
    load_unlink();
    int e = hit_name(K_UNLINK, name);
    if (e) {
        errno = e;
        return -1;
    }
    return real_unlink(name);
}

static void arm(int kind, int err, long nth, int persistent)
{
    F.kind = kind;
    F.err = err;
    F.nth = nth;
    F.persistent = persistent;
    F.calls = F.fired = 0;
    __atomic_store_n(&F.armed, 1, __ATOMIC_SEQ_CST);
}
__attribute__((unused)) static void disarm(void) { __atomic_store_n(&F.armed, 0, __ATOMIC_SEQ_CST); }

#ifdef SYSFAULT_PRELOAD
static int parse_err(const char *s)
{
    static const struct { const char *n; int e; } t[] = {
        {"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EINTR", EINTR}, {"ENOMEM", ENOMEM}, {"EACCES", EACCES},
        {"EWOULDBLOCK", EWOULDBLOCK}, {"EINVAL", EINVAL}, {"EDQUOT", EDQUOT}, {"EBADF", EBADF},
        {"EFBIG", EFBIG}, {"short", E_SHORT}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(s, t[i].n))
            return t[i].e;
    return atoi(s);
}

/* ------------------------------------------------------ LD_PRELOAD shim */
__attribute__((constructor)) static void sysfault_init(void)
{
    const char *spec = getenv("SYSFAULT");
    if (!spec || !*spec)
        return;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", spec);
    char *kind = strtok(buf, ":"), *err = strtok(NULL, ":"), *nth = strtok(NULL, ":"),
         *p = strtok(NULL, ":");
    if (!kind || !err || !nth) {
        fprintf(stderr, "sysfault: bad SYSFAULT=%s\n", spec);
        _exit(3);
    }
    const char *pre = getenv("SYSFAULT_PREFIX");
    if (pre)
        snprintf(F_prefix, sizeof F_prefix, "%s", pre);
    for (int k = 0; k < K_NKINDS; k++)
        if (!strcmp(kind, kind_name[k]))
            arm(k, parse_err(err), atol(nth), p && *p == 'p');
}
#else
/* ---------------------------------------------------------------- driver */

/* Counters shared with the child processes every run executes in (so that a
 * crash of the core is reported, and the sweep goes on). */
static struct stats { long runs, fired, failed_ops, clean_msgs, crashes, last; int failures; } *S;
#define failures (S->failures)
#define FAILF(...)                                                   \
    do {                                                             \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);         \
        fprintf(stderr, __VA_ARGS__);                                \
        fputc('\n', stderr);                                         \
        failures++;                                                  \
    } while (0)

/* Allocation faults through the public allocator hooks. */
enum { A_OFF, A_NTH, A_AFTER_OPEN };
static struct { int mode; long nth, calls, fired; } A;
static int alloc_fail(void)
{
    if (A.mode == A_NTH) {
        long c = __atomic_add_fetch(&A.calls, 1, __ATOMIC_SEQ_CST);
        if (c == A.nth) {
            A.fired++;
            return 1;
        }
    } else if (A.mode == A_AFTER_OPEN) {
        if (__atomic_exchange_n(&F_after_open, 0, __ATOMIC_SEQ_CST)) {
            A.fired++;
            A.mode = A_OFF;
            return 1;
        }
    }
    return 0;
}
static void *a_malloc(size_t n, void *ctx) { return alloc_fail() ? NULL : malloc(n); }
static void *a_realloc(void *p, size_t n, void *ctx) { return alloc_fail() ? NULL : realloc(p, n); }
static void a_free(void *p, void *ctx) { free(p); }

/* ---- content and model ---- */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}
static void fill(uint8_t *b, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(mix(seed * 1000003u + i / 8) >> (8 * (i % 8)));
}

#define MAXD 16
typedef struct { char path[32]; uint64_t seed; size_t len; int live; } doc;
typedef struct { doc d[MAXD]; } model;

static doc *m_get(model *m, const char *path)
{
    for (int i = 0; i < MAXD; i++)
        if (m->d[i].live && !strcmp(m->d[i].path, path))
            return &m->d[i];
    return NULL;
}
static void m_put(model *m, const char *path, uint64_t seed, size_t len)
{
    doc *d = m_get(m, path);
    for (int i = 0; !d && i < MAXD; i++)
        if (!m->d[i].live)
            d = &m->d[i];
    if (!d)
        abort();
    snprintf(d->path, sizeof d->path, "%s", path);
    d->seed = seed;
    d->len = len;
    d->live = 1;
}
static void m_del(model *m, const char *path)
{
    doc *d = m_get(m, path);
    if (d)
        d->live = 0;
}

/* 0 when db equals the model exactly (paths, then bytes); 1 when it differs;
 * -1 when a read failed (its code in m_err). */
static int m_err;
static int m_equal(streamdb *db, model *m, char *why, size_t wl)
{
    char **paths = NULL;
    size_t np = 0;
    int rc = streamdb_search(db, "/", &paths, &np);
    if (rc) {
        snprintf(why, wl, "search: %s (%s)", streamdb_strerror(rc), streamdb_errmsg(db));
        m_err = rc;
        return -1;
    }
    size_t live = 0;
    for (int i = 0; i < MAXD; i++)
        live += m->d[i].live;
    int bad = 0;
    if (np != live) {
        snprintf(why, wl, "%zu paths, model %zu", np, live);
        bad = 1;
    }
    for (size_t i = 0; !bad && i < np; i++) {
        doc *d = m_get(m, paths[i]);
        if (!d) {
            snprintf(why, wl, "unexpected path %s", paths[i]);
            bad = 1;
            break;
        }
        void *data = NULL;
        size_t len = 0;
        rc = streamdb_get(db, paths[i], 0, &data, &len);
        uint8_t *want = malloc(d->len + 1);
        fill(want, d->len, d->seed);
        if (rc) {
            snprintf(why, wl, "get %s: %s (%s)", paths[i], streamdb_strerror(rc), streamdb_errmsg(db));
            m_err = rc;
            bad = -1;
        } else if (len != d->len || memcmp(data, want, len)) {
            snprintf(why, wl, "%s: %zu bytes (model %zu), content %s", paths[i], len, d->len,
                     len == d->len ? "differs" : "-");
            bad = 1;
        }
        free(want);
        streamdb_free(data);
    }
    streamdb_free_paths(paths, np);
    return bad;
}

static int put(streamdb *db, const char *path, uint64_t seed, size_t len)
{
    uint8_t *b = malloc(len + 1);
    fill(b, len, seed);
    int rc = streamdb_write_document(db, path, b, len, NULL);
    free(b);
    return rc;
}

/* A streaming write in 50 000-byte pieces. */
static int put_stream(streamdb *db, const char *path, uint64_t seed, size_t len)
{
    uint8_t *b = malloc(len + 1);
    fill(b, len, seed);
    streamdb_writer *w = NULL;
    int rc = streamdb_writer_begin(db, path, strlen(path), &w);
    for (size_t off = 0; !rc && off < len; off += 50000)
        rc = streamdb_writer_write(w, b + off, len - off < 50000 ? len - off : 50000);
    if (w) {
        if (rc)
            streamdb_writer_abort(w);
        else
            rc = streamdb_writer_commit(w, NULL);
    }
    free(b);
    return rc;
}

static char dir[512];
static char dbpath[600];
#define n_runs (S->runs)
#define n_fired (S->fired)
#define n_failed_ops (S->failed_ops)
#define n_clean_msgs (S->clean_msgs)

/* Runs body in a child process; a crash there is a failure named by label.
 * The child leaves its result in S->last. */
#define ISOLATE(label, body)                                                     \
    do {                                                                         \
        S->last = 0;                                                             \
        fflush(stdout);                                                          \
        pid_t p_ = fork();                                                       \
        if (p_ == 0) {                                                           \
            body;                                                                \
            exit(0);                                                             \
        }                                                                        \
        int st_ = 0;                                                             \
        if (p_ < 0 || waitpid(p_, &st_, 0) != p_) {                              \
            perror("fork");                                                      \
            exit(2);                                                             \
        }                                                                        \
        if (!WIFEXITED(st_) || WEXITSTATUS(st_)) {                               \
            S->crashes++;                                                        \
            S->last = 1;                                                         \
            FAILF("%s: the process died (%s %d)", label,                         \
                  WIFSIGNALED(st_) ? "signal" : "exit status",                   \
                  WIFSIGNALED(st_) ? WTERMSIG(st_) : WEXITSTATUS(st_));          \
        }                                                                        \
    } while (0)

static void rm_db(void)
{
    char p[700];
    unlink(dbpath);
    snprintf(p, sizeof p, "%s-wal", dbpath);
    unlink(p);
}

static streamdb *open_db(int mmap_on, int *rc_out)
{
    streamdb_config c;
    streamdb_config_init(&c);
    c.use_mmap = mmap_on;
    c.sync_commits = 1;
    c.page_size = 4096;
    streamdb *db = NULL;
    int rc = streamdb_open(dbpath, &c, &db);
    if (rc_out)
        *rc_out = rc;
    if (rc && db)
        FAILF("open failed (%s) but returned a handle", streamdb_strerror(rc));
    return rc ? NULL : db;
}

/* The committed base every run starts from. */
static void base(model *m)
{
    memset(m, 0, sizeof *m);
    rm_db();
    int rc;
    streamdb *db = open_db(0, &rc);
    if (!db) {
        fprintf(stderr, "base: open: %s %s\n", streamdb_strerror(rc), streamdb_errmsg(NULL));
        exit(2);
    }
    struct { const char *p; uint64_t s; size_t n; } b[] = {
        {"/base/small", 1, 100}, {"/base/mid", 2, 9000}, {"/base/big", 3, 200000},
        {"/base/direct", 4, 400000}};
    for (size_t i = 0; i < 4; i++) {
        if ((rc = put(db, b[i].p, b[i].s, b[i].n))) {
            fprintf(stderr, "base: put: %s\n", streamdb_strerror(rc));
            exit(2);
        }
        m_put(m, b[i].p, b[i].s, b[i].n);
    }
    if (streamdb_close(db)) {
        fprintf(stderr, "base: close failed\n");
        exit(2);
    }
}

static int allowed(int kind, int rc, int err)
{
    if (err == EWOULDBLOCK && kind == K_FLOCK)
        return rc == STREAMDB_ERR_LOCKED;
    if (err == EACCES && kind == K_OPEN && rc == STREAMDB_ERR_READONLY)
        return 1; /* "cannot open ... for writing (try read_only)" */
    return rc == STREAMDB_ERR_IO || rc == STREAMDB_ERR_FULL || rc == STREAMDB_ERR_FATAL ||
           rc == STREAMDB_ERR_NOMEM;
}

/* A fault the core must not let through: a transient EINTR, a short
 * transfer, EINVAL from a directory fsync, a failing munmap or close. */
static int transparent(int kind, int err, int persistent)
{
    return (err == EINTR && !persistent) || err == E_SHORT || (kind == K_FSYNC && (err == EINVAL || err == EBADF)) ||
           kind == K_MUNMAP || kind == K_CLOSE;
}

/*
 * The workload: each step is one commit (or a read, flush, compaction,
 * check); it stops at the first failing step.  *m is the model of what was
 * acknowledged; *alt the model after the step in flight, *uncertain set when
 * that step failed (the database may hold either).  Returns the failing code.
 */
static int workload(streamdb *db, model *m, model *alt, int *uncertain, char *what, size_t wl)
{
    int rc = 0;
#define STEP(desc, prep, expr)                  \
    if (!rc) {                                  \
        snprintf(what, wl, "%s", desc);         \
        *alt = *m;                              \
        prep;                                   \
        rc = (expr);                            \
        if (!rc)                                \
            *m = *alt;                          \
        else                                    \
            *uncertain = 1;                     \
    }
    STEP("put /w/a", m_put(alt, "/w/a", 10, 300), put(db, "/w/a", 10, 300));
    STEP("put /base/big", m_put(alt, "/base/big", 11, 150000), put(db, "/base/big", 11, 150000));
    int had_small = m_get(m, "/base/small") != NULL;
    STEP("transaction",
         (m_put(alt, "/t/1", 12, 5000), m_put(alt, "/t/2", 13, 70000), m_del(alt, "/base/small")),
         ({
             int r_ = streamdb_begin_transaction(db);
             if (!r_) r_ = put(db, "/t/1", 12, 5000);
             if (!r_) r_ = put(db, "/t/2", 13, 70000);
             if (!r_ && had_small) r_ = streamdb_delete(db, "/base/small");
             if (!r_) r_ = streamdb_commit_transaction(db);
             else streamdb_rollback_transaction(db);
             r_;
         }));
    STEP("read back", (void)0, ({
             char why[256];
             int r_ = m_equal(db, m, why, sizeof why);
             if (r_ > 0) FAILF("read back differs from the model: %s", why);
             r_ < 0 ? m_err : 0;
         }));
    STEP("stream /w/stream", m_put(alt, "/w/stream", 14, 330000), put_stream(db, "/w/stream", 14, 330000));
    STEP("flush", (void)0, streamdb_flush(db));
    int had_direct = m_get(m, "/base/direct") != NULL;
    STEP("delete /base/direct", m_del(alt, "/base/direct"),
         had_direct ? streamdb_delete(db, "/base/direct") : 0);
    STEP("compact", (void)0, streamdb_compact(db));
    STEP("check", (void)0, streamdb_check(db));
#undef STEP
    return rc;
}

/*
 * One run: the committed base (or nothing, fresh: the open creates the
 * database), arm (kind, err, nth, persistent) -- the allocator when kind < 0
 * (-1 the Nth allocation, -2 the first after an open()) -- then open and the
 * workload; clear the fault; reopen and check.  Returns the faults fired.
 */
static long run(int kind, int err, long nth, int persistent, int mmap_on, int fresh, const char *label)
{
    model m, alt;
    base(&m);
    if (fresh) {
        rm_db();
        memset(&m, 0, sizeof m);
    }
    alt = m;
    int uncertain = 0;
    int rc = 0;
    char what[128] = "open";
    n_runs++;
    if (kind >= 0)
        arm(kind, err, nth, persistent);
    else {
        A.calls = A.fired = 0;
        A.nth = nth;
        F_after_open = 0;
        A.mode = kind == -1 ? A_NTH : A_AFTER_OPEN;
    }
    streamdb *db = open_db(mmap_on, &rc);
    if (db) {
        rc = workload(db, &m, &alt, &uncertain, what, sizeof what);
        if (rc) {
            const char *msg = streamdb_errmsg(db);
            n_failed_ops++;
            if (!allowed(kind, rc, err))
                FAILF("%s: %s failed with %d %s (%s), not a documented I/O code", label, what, rc,
                      streamdb_strerror(rc), msg ? msg : "");
            if (!msg || !*msg)
                FAILF("%s: %s failed with %s and an empty errmsg", label, what, streamdb_strerror(rc));
            else
                n_clean_msgs++;
        }
        int crc = streamdb_close(db);
        if (crc && !allowed(kind, crc, err))
            FAILF("%s: close returned %s", label, streamdb_strerror(crc));
        if (crc && !rc)
            snprintf(what, sizeof what, "close"), rc = crc;
    } else {
        const char *msg = streamdb_errmsg(NULL);
        n_failed_ops++;
        if (!allowed(kind, rc, err))
            FAILF("%s: open failed with %d %s (%s)", label, rc, streamdb_strerror(rc), msg ? msg : "");
        if (!msg || !*msg)
            FAILF("%s: open failed with %s and an empty errmsg", label, streamdb_strerror(rc));
        else
            n_clean_msgs++;
    }
    long fired = kind >= 0 ? F.fired : A.fired;
    disarm();
    A.mode = A_OFF;
    if (!fired && rc)
        FAILF("%s: nothing injected, yet %s failed: %s", label, what, streamdb_strerror(rc));
    if (fired && rc && kind >= 0 && transparent(kind, err, persistent))
        FAILF("%s: a transient fault surfaced: %s failed with %s (%s)", label, what,
              streamdb_strerror(rc), streamdb_errmsg(NULL));
    n_fired += fired;

    /* Reopen without faults: every acknowledged write, the failed step all or nothing. */
    int orc;
    streamdb *v = open_db(0, &orc);
    if (!v) {
        FAILF("%s: after a fault in %s, reopen failed: %s (%s)", label, what, streamdb_strerror(orc),
              streamdb_errmsg(NULL));
        return fired;
    }
    char why[256], why2[256] = "";
    int eq = m_equal(v, &m, why, sizeof why);
    if (eq && uncertain)
        eq = m_equal(v, &alt, why2, sizeof why2);
    if (eq)
        FAILF("%s: after a fault in %s (%s): the database is neither the state before nor after it: "
              "%s / %s", label, what, rc ? streamdb_strerror(rc) : "no error", why, why2);
    int crc = streamdb_check(v);
    if (crc)
        FAILF("%s: check after reopen: %s (%s)", label, streamdb_strerror(crc), streamdb_errmsg(v));
    streamdb_close(v);
    return fired;
}

static int dense;
/* Call numbers to try for a kind that makes `calls` calls in a clean run:
 * 1..12, then about 24 more spread to the last call. */
static long next_n(long n, long calls)
{
    if (dense || n < 12)
        return n + 1;
    long nx = n + calls / 24 + 1;
    return nx > calls && n < calls ? calls : nx;
}

static void sweep(int kind, int err, int persistent, int mmap_on, int fresh)
{
    /* A clean run counts the calls. */
    model m, alt;
    base(&m);
    if (fresh) {
        rm_db();
        memset(&m, 0, sizeof m);
    }
    arm(kind, 0, 0, 0);
    int rc, unc = 0;
    char what[128];
    streamdb *db = open_db(mmap_on, &rc);
    if (db) {
        if ((rc = workload(db, &m, &alt, &unc, what, sizeof what)))
            FAILF("%s: clean workload failed in %s: %s", kind_name[kind], what, streamdb_strerror(rc));
        streamdb_close(db);
    } else
        FAILF("%s: clean open failed: %s", kind_name[kind], streamdb_strerror(rc));
    long calls = F.calls;
    disarm();
    long tried = 0, fired = 0;
    for (long n = 1; n <= calls; n = next_n(n, calls)) {
        char label[96];
        snprintf(label, sizeof label, "%s=%s@%ld%s%s%s", kind_name[kind],
                 err == E_SHORT ? "short" : strerrorname_np(err), n, persistent ? "+" : "",
                 mmap_on ? " mmap" : "", fresh ? " create" : "");
        ISOLATE(label, S->last = run(kind, err, n, persistent, mmap_on, fresh, label));
        tried++;
        fired += S->last > 0;
    }
    printf("  %-9s %-11s %-10s %-4s %-6s %4ld calls, %3ld points tried, %3ld fired\n", kind_name[kind],
           err == E_SHORT ? "short" : strerrorname_np(err), persistent ? "persistent" : "once",
           mmap_on ? "mmap" : "", fresh ? "create" : "", calls, tried, fired);
}

/* ---- the memory backend ---- */
/* The memory backend, a workload with the Nth allocation failing (n < 0:
 * none; returns the allocations made). */
static long mem_alloc(long n)
{
    A.calls = A.fired = 0;
    A.nth = n; /* n < 0: count only */
    A.mode = A_NTH;
    streamdb_vfs *vfs = streamdb_vfs_memory_new();
    model m;
    memset(&m, 0, sizeof m);
    int rc = 0;
    if (!vfs) {
        /* only the first allocation may fail this way */
        A.mode = A_OFF;
        if (n != 1) FAILF("memory_new failed with no injected fault (n=%ld)", n);
        return 1;
    }
    streamdb_config c;
    streamdb_config_init(&c);
    c.vfs = vfs;
    c.page_size = 4096;
    streamdb *db = NULL;
    rc = streamdb_open("/mem/db", &c, &db);
    model alt = m;
    const char *what = "open";
    int uncertain = 0;
    if (!rc) {
        what = "put /m/a"; alt = m; m_put(&alt, "/m/a", 21, 1000);
        if (!(rc = put(db, "/m/a", 21, 1000))) m = alt; else uncertain = 1;
    }
    if (!rc) {
        what = "put /m/big"; alt = m; m_put(&alt, "/m/big", 22, 600000);
        if (!(rc = put(db, "/m/big", 22, 600000))) m = alt; else uncertain = 1;
    }
    if (!rc) {
        what = "flush"; alt = m;
        rc = streamdb_flush(db);
    }
    long fired = A.fired;
    A.mode = A_OFF;
    if (n < 0 && rc) FAILF("memory: clean workload failed in %s: %s", what, streamdb_strerror(rc));
    if (rc && !fired)
        FAILF("memory: %s failed with no injected fault: %s", what, streamdb_strerror(rc));
    if (rc && rc != STREAMDB_ERR_NOMEM && rc != STREAMDB_ERR_FATAL && rc != STREAMDB_ERR_IO)
        FAILF("memory alloc@%ld: %s failed with %s (%s)", n, what, streamdb_strerror(rc),
              streamdb_errmsg(db));
    if (db) {
        int crc = streamdb_close(db);
        if (crc && crc != STREAMDB_ERR_NOMEM && crc != STREAMDB_ERR_IO && crc != STREAMDB_ERR_FATAL)
            FAILF("memory alloc@%ld: close: %s", n, streamdb_strerror(crc));
    }
    db = NULL;
    int orc = streamdb_open("/mem/db", &c, &db);
    if (orc == 0) {
        char why[256], why2[256] = "";
        int eq = m_equal(db, &m, why, sizeof why);
        if (eq && uncertain)
            eq = m_equal(db, &alt, why2, sizeof why2);
        if (eq)
            FAILF("memory alloc@%ld after %s: %s / %s", n, what, why, why2);
        if ((orc = streamdb_check(db)))
            FAILF("memory alloc@%ld: check: %s", n, streamdb_errmsg(db));
        streamdb_close(db);
    } else if (!(!strcmp(what, "open") && rc)) {
        FAILF("memory alloc@%ld: reopen failed: %s (%s)", n, streamdb_strerror(orc),
              streamdb_errmsg(NULL));
    }
    streamdb_vfs_memory_free(vfs);
    return n < 0 ? A.calls : fired;
}

static void memory_checks(void)
{
    /* A workload on the memory backend with the Nth allocation failing: grow
     * (realloc) and open (calloc, strdup) fail inside the backend. */
    long total = 0, tried = 0;
    ISOLATE("memory count", S->last = mem_alloc(-1));
    long calls = S->last;
    for (long n = 1; n <= calls; n = next_n(n, calls)) {
        char label[64];
        snprintf(label, sizeof label, "memory alloc@%ld", n);
        ISOLATE(label, S->last = mem_alloc(n));
        tried++;
        total += S->last > 0;
    }
    printf("  memory backend: %ld allocations, %ld points tried, %ld fired\n", calls, tried, total);

    /* Locks: a second writer, a reader beside a writer, a writer beside a reader. */
    streamdb_vfs *vfs = streamdb_vfs_memory_new();
    streamdb_config c;
    streamdb_config_init(&c);
    c.vfs = vfs;
    streamdb *w = NULL, *w2 = NULL, *r = NULL;
    int rc = streamdb_open("/mem/l", &c, &w);
    if (rc) FAILF("memory lock: open: %s", streamdb_strerror(rc));
    if (!rc) { rc = put(w, "/x", 5, 10); if (rc) FAILF("memory lock: put"); }
    rc = streamdb_open("/mem/l", &c, &w2);
    if (rc != STREAMDB_ERR_LOCKED) FAILF("memory: second writer got %s, wanted LOCKED", streamdb_strerror(rc));
    if (!rc) streamdb_close(w2);
    c.read_only = 1;
    rc = streamdb_open("/mem/l", &c, &r);
    if (rc != STREAMDB_ERR_LOCKED) FAILF("memory: reader beside a writer got %s, wanted LOCKED", streamdb_strerror(rc));
    if (!rc) streamdb_close(r);
    streamdb_close(w);
    r = NULL;
    rc = streamdb_open("/mem/l", &c, &r);
    if (rc) FAILF("memory: reader alone: %s", streamdb_strerror(rc));
    c.read_only = 0;
    w = NULL;
    rc = streamdb_open("/mem/l", &c, &w);
    if (rc != STREAMDB_ERR_LOCKED) FAILF("memory: writer beside a reader got %s, wanted LOCKED", streamdb_strerror(rc));
    if (!rc) streamdb_close(w);
    if (r) {
        void *d = NULL; size_t l = 0;
        if (streamdb_get(r, "/x", 0, &d, &l) || l != 10) FAILF("memory: reader lost /x");
        streamdb_free(d);
        streamdb_close(r);
    }
    /* A read-only open of a name that does not exist. */
    c.read_only = 1;
    c.create = 0;
    r = NULL;
    rc = streamdb_open("/mem/none", &c, &r);
    if (rc == 0 || r) FAILF("memory: read-only open of a missing database succeeded");
    streamdb_vfs_memory_free(vfs);

    /* The backend through its public function table: calls the core never
     * makes (open without CREATE of a missing name, truncate growing a file
     * past an allocation that fails), and memory_free(NULL). */
    vfs = streamdb_vfs_memory_new();
    streamdb_file *f = NULL;
    if (vfs->open(vfs, "/nope", 0, 0, &f) != ENOENT) FAILF("memory vfs: open of a missing name is not ENOENT");
    if (vfs->open(vfs, "/f", STREAMDB_VFS_CREATE, 0, &f)) FAILF("memory vfs: create");
    else {
        A.calls = A.fired = 0; A.nth = 1; A.mode = A_NTH;
        int e = vfs->truncate(f, 1 << 20);
        A.mode = A_OFF;
        uint64_t sz = 1;
        vfs->size(f, &sz);
        if (e != ENOMEM || sz != 0) FAILF("memory vfs: truncate with a failing allocation: %d, size %llu", e, (unsigned long long)sz);
        if (vfs->truncate(f, 100) || vfs->size(f, &sz) || sz != 100) FAILF("memory vfs: truncate to 100");
        vfs->close(f);
    }
    /* remove (the core never removes a file): gone afterwards, absent is no error */
    int ex = -1;
    if (vfs->remove(vfs, "/f") || vfs->exists(vfs, "/f", &ex) || ex != 0)
        FAILF("memory vfs: remove left the file (exists %d)", ex);
    if (vfs->remove(vfs, "/f")) FAILF("memory vfs: remove of an absent file is not 0");
    streamdb_vfs_memory_free(vfs);
    streamdb_vfs_memory_free(NULL);
}

/* ---- the file backend through its public table ---- */
static void file_direct_checks(void)
{
    const streamdb_vfs *v = streamdb_vfs_file();
    char p[700];
    snprintf(p, sizeof p, "%s/direct", dir);
    streamdb_file *f = NULL;
    int ex = -1;
    /* exists: a name under a regular file (ENOTDIR) is an error, not "absent" */
    snprintf(p, sizeof p, "%s/direct", dir);
    int fd = open(p, O_CREAT | O_RDWR, 0600);
    close(fd);
    char under[800];
    snprintf(under, sizeof under, "%s/x", p);
    if (v->exists(v, under, &ex) != ENOTDIR) FAILF("file vfs: exists under a file is not ENOTDIR");
    /* remove: success, absent (ENOENT is success), and a real failure */
    if (v->remove(v, p)) FAILF("file vfs: remove");
    if (v->remove(v, p)) FAILF("file vfs: remove of an absent file is not 0");
    fd = open(p, O_CREAT | O_RDWR, 0600);
    close(fd);
    arm(K_UNLINK, EACCES, 1, 0);
    int e = v->remove(v, p);
    disarm();
    if (e != EACCES) FAILF("file vfs: remove with unlink failing EACCES gave %d", e);
    /* close: an EIO is reported, an EINTR is not (the descriptor is gone either way) */
    if (v->open(v, p, 0, 0, &f)) FAILF("file vfs: open");
    else {
        arm(K_CLOSE, EIO, 1, 0);
        e = v->close(f);
        disarm();
        if (e != EIO) FAILF("file vfs: close with EIO gave %d", e);
    }
    if (v->open(v, p, 0, 0, &f)) FAILF("file vfs: open");
    else {
        arm(K_CLOSE, EINTR, 1, 0);
        e = v->close(f);
        disarm();
        if (e != 0) FAILF("file vfs: close with EINTR gave %d, wanted 0", e);
    }
    /* sync_dir: EINVAL (a file system without directory fsync) is not an error */
    arm(K_FSYNC, EINVAL, 1, 0);
    e = v->sync_dir(v, p);
    disarm();
    if (e != 0) FAILF("file vfs: sync_dir with fsync EINVAL gave %d", e);
    unlink(p);
}

/* flock held by another process: the open gets LOCKED. */
static void lock_checks(void)
{
    model m;
    base(&m);
    int pfd[2], qfd[2];
    if (pipe(pfd) || pipe(qfd)) return;
    pid_t pid = fork();
    if (pid == 0) {
        streamdb *db = open_db(0, NULL);
        char c = db ? 'y' : 'n';
        if (write(pfd[1], &c, 1) != 1) _exit(1);
        if (read(qfd[0], &c, 1) != 1) _exit(1);
        streamdb_close(db);
        _exit(0);
    }
    char c = 0;
    if (read(pfd[0], &c, 1) != 1 || c != 'y') FAILF("lock: child could not open");
    int rc;
    streamdb *db = open_db(0, &rc);
    if (rc != STREAMDB_ERR_LOCKED) FAILF("lock: a second process's open gave %s, wanted LOCKED", streamdb_strerror(rc));
    if (db) streamdb_close(db);
    /* and a reader too */
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.read_only = 1;
    db = NULL;
    rc = streamdb_open(dbpath, &cfg, &db);
    if (rc != STREAMDB_ERR_LOCKED) FAILF("lock: a reader beside another process's writer gave %s", streamdb_strerror(rc));
    if (db) streamdb_close(db);
    if (write(qfd[1], "x", 1) != 1) FAILF("lock: pipe");
    int st;
    waitpid(pid, &st, 0);
    close(pfd[0]); close(pfd[1]); close(qfd[0]); close(qfd[1]);
    db = open_db(0, &rc);
    if (!db) FAILF("lock: open after the other process closed: %s", streamdb_strerror(rc));
    else {
        char why[256];
        if (m_equal(db, &m, why, sizeof why)) FAILF("lock: %s", why);
        streamdb_close(db);
    }
}

/* An open that creates the database and its log with the Nth allocation
 * failing: NOMEM, then a clean reopen. */
static long create_alloc(long n)
{
    rm_db();
    A.calls = A.fired = 0; A.nth = n; A.mode = A_NTH;
    int rc;
    streamdb *db = open_db(0, &rc);
    long fi = A.fired;
    A.mode = A_OFF;
    if (rc && rc != STREAMDB_ERR_NOMEM)
        FAILF("create alloc@%ld: open gave %s, wanted NOMEM (%s)", n, streamdb_strerror(rc), streamdb_errmsg(NULL));
    if (rc && !fi) FAILF("create alloc@%ld: failed with no fault", n);
    if (db) {
        if (put(db, "/a", 1, 10)) FAILF("create alloc@%ld: put after open", n);
        streamdb_close(db);
    }
    db = open_db(0, &rc);
    if (!db) FAILF("create alloc@%ld: reopen: %s (%s)", n, streamdb_strerror(rc), streamdb_errmsg(NULL));
    else {
        if (streamdb_check(db)) FAILF("create alloc@%ld: check", n);
        streamdb_close(db);
    }
    return fi;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: sysfault DIR\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    S = mmap(NULL, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (S == MAP_FAILED) return 2;
    memset(S, 0, sizeof *S);
    snprintf(dir, sizeof dir, "%s", argv[1]);
    if (mkdir(dir, 0700) && errno != EEXIST) {
        fprintf(stderr, "sysfault: mkdir %s: %s\n", dir, strerror(errno));
        return 2;
    }
    snprintf(dbpath, sizeof dbpath, "%s/t.sdb", dir);
    snprintf(F_prefix, sizeof F_prefix, "%s", dir);
    dense = getenv("SYSFAULT_DENSE") != NULL;
    streamdb_allocator al = {a_malloc, a_realloc, a_free, NULL};
    if (streamdb_set_allocator(&al)) {
        fprintf(stderr, "sysfault: streamdb_set_allocator failed\n");
        return 2;
    }
    const char *only = getenv("SYSFAULT_ONLY");
    /* Replays, in this process (for a debugger): one point of the memory or
     * create allocation sweeps. */
    if (getenv("SYSFAULT_MEM_ALLOC"))
        return (int)(mem_alloc(atol(getenv("SYSFAULT_MEM_ALLOC"))), failures != 0);
    if (getenv("SYSFAULT_CREATE_ALLOC"))
        return (int)(create_alloc(atol(getenv("SYSFAULT_CREATE_ALLOC"))), failures != 0);
    struct { int kind, err, persistent, mmap_on, fresh; } plan[] = {
        {K_OPEN, EIO, 0, 0, 1}, {K_OPEN, EINTR, 0, 0, 1}, {K_OPEN, EACCES, 1, 0, 0},
        {K_PREAD, EIO, 0, 0, 0}, {K_PREAD, EIO, 1, 0, 0}, {K_PREAD, EINTR, 0, 0, 0},
        {K_PREAD, E_SHORT, 1, 0, 0}, {K_PREAD, EIO, 0, 1, 0},
        {K_PWRITE, EIO, 0, 0, 0}, {K_PWRITE, ENOSPC, 1, 0, 0}, {K_PWRITE, EINTR, 0, 0, 0},
        {K_PWRITE, E_SHORT, 1, 0, 0}, {K_PWRITE, EIO, 0, 0, 1},
        {K_FDATASYNC, EIO, 0, 0, 0}, {K_FDATASYNC, EINTR, 0, 0, 0}, {K_FDATASYNC, ENOSPC, 1, 0, 0},
        {K_FSYNC, EIO, 0, 0, 1}, {K_FSYNC, EINVAL, 0, 0, 1}, {K_FSYNC, EBADF, 0, 0, 1},
        {K_FSYNC, EINTR, 0, 0, 1},
        {K_FTRUNCATE, EIO, 0, 0, 0}, {K_FTRUNCATE, EINTR, 0, 0, 0},
        {K_FSTAT, EIO, 0, 0, 0}, {K_STAT, EACCES, 0, 0, 0}, {K_STAT, EIO, 0, 0, 1},
        {K_FLOCK, EINTR, 0, 0, 0}, {K_FLOCK, EIO, 0, 0, 0}, {K_FLOCK, EWOULDBLOCK, 0, 0, 0},
        {K_MMAP, ENOMEM, 0, 1, 0}, {K_MUNMAP, EINVAL, 0, 1, 0},
        {K_CLOSE, EIO, 0, 0, 0}, {K_CLOSE, EINTR, 0, 0, 0},
    };
    printf("sysfault: system-call faults under the file backend (%s)\n", dir);
    for (size_t i = 0; i < sizeof plan / sizeof *plan; i++) {
        if (only && strcmp(only, kind_name[plan[i].kind]))
            continue;
        sweep(plan[i].kind, plan[i].err, plan[i].persistent, plan[i].mmap_on, plan[i].fresh);
    }
    if (!only || !strcmp(only, "alloc")) {
        /* the backend's own allocation right after a successful open() */
        ISOLATE("alloc after open", S->last = run(-2, ENOMEM, 0, 0, 0, 1, "alloc after open"));
        if (!S->last) FAILF("alloc after open: never fired");
        /* every allocation of an open that creates the database and its log */
        long n, fired = 0;
        for (n = 1; n < 5000; n++) {
            char label[64];
            snprintf(label, sizeof label, "create alloc@%ld", n);
            ISOLATE(label, S->last = create_alloc(n));
            fired += S->last;
            if (!S->last) break;
        }
        printf("  create: allocation %ld points tried, %ld fired\n", n, fired);
        memory_checks();
        file_direct_checks();
        lock_checks();
    }
    printf("sysfault: %ld runs, %ld faults injected, %ld operations failed (all with a documented code "
           "and a message: %ld), %ld crashes, %d failures\n",
           n_runs, n_fired, n_failed_ops, n_clean_msgs, S->crashes, failures);
    return failures ? 1 : 0;
}
#endif
