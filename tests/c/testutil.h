/*
 * testutil.h -- the small shared harness of the C tests.
 *
 * Every test is one executable whose main returns non-zero on failure and
 * prints each failed check (file:line, the expression, the return code with
 * streamdb_strerror and streamdb_errmsg).  CHECK* records a failure and goes
 * on; REQUIRE* stops the test, for steps that later checks depend on.
 *
 * Document content is derived from a seed and a byte offset (tu_fill), so any
 * byte range of any document can be verified without keeping a copy, and a
 * document can be identified from its bytes (tu_doc_seed) in the threaded and
 * crash tests.
 *
 * Temporary files live in a directory under $TMPDIR (default /tmp) that is
 * removed at exit when the test passed and kept (and printed) when it failed.
 */
#ifndef STREAMDB_TESTUTIL_H
#define STREAMDB_TESTUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "streamdb.h"

static atomic_int tu_failures;
static const char *tu_test_name = "test";

#define TU_FAIL(...)                                                            \
    do {                                                                        \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                    \
        fprintf(stderr, __VA_ARGS__);                                           \
        fputc('\n', stderr);                                                    \
        atomic_fetch_add(&tu_failures, 1);                                      \
    } while (0)

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) TU_FAIL("check failed: %s", #cond);                        \
    } while (0)

#define CHECKF(cond, ...)                                                       \
    do {                                                                        \
        if (!(cond)) {                                                          \
            TU_FAIL("check failed: %s", #cond);                                 \
            fprintf(stderr, "     ");                                           \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

#define REQUIRE(cond)                                                           \
    do {                                                                        \
        if (!(cond)) {                                                          \
            TU_FAIL("required: %s", #cond);                                     \
            tu_finish();                                                        \
        }                                                                       \
    } while (0)

/* rc must equal want.  db gives the error context (may be NULL). */
#define CHECK_RC(db, expr, want)                                                \
    do {                                                                        \
        int rc_ = (expr);                                                       \
        int want_ = (want);                                                     \
        if (rc_ != want_)                                                       \
            TU_FAIL("%s returned %d (%s), wanted %d (%s); errmsg: %s", #expr,  \
                    rc_, streamdb_strerror(rc_), want_, streamdb_strerror(want_), \
                    tu_errmsg(db));                                             \
    } while (0)
#define CHECK_OK(db, expr) CHECK_RC(db, expr, STREAMDB_OK)

#define REQUIRE_RC(db, expr, want)                                              \
    do {                                                                        \
        int rc_ = (expr);                                                       \
        int want_ = (want);                                                     \
        if (rc_ != want_) {                                                     \
            TU_FAIL("%s returned %d (%s), wanted %d (%s); errmsg: %s", #expr,  \
                    rc_, streamdb_strerror(rc_), want_, streamdb_strerror(want_), \
                    tu_errmsg(db));                                             \
            tu_finish();                                                        \
        }                                                                       \
    } while (0)
#define REQUIRE_OK(db, expr) REQUIRE_RC(db, expr, STREAMDB_OK)

static inline const char *tu_errmsg(const streamdb *db) {
    const char *m = streamdb_errmsg(db);
    return m ? m : "(null)";
}

/* ---- temporary directory ------------------------------------------------ */

static char tu_dir[512];
static pid_t tu_dir_owner;

static int tu_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    chmod(p, 0700);
    return remove(p);
}

static void tu_rm_tree(const char *dir) {
    nftw(dir, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static char tu_fast[512];

static void tu_cleanup(void) {
    if (!tu_dir[0] || getpid() != tu_dir_owner) return;
    if (atomic_load(&tu_failures) == 0 && !getenv("STREAMDB_KEEP_TMP")) {
        tu_rm_tree(tu_dir);
        if (tu_fast[0]) tu_rm_tree(tu_fast);
    } else {
        fprintf(stderr, "%s: files kept in %s\n", tu_test_name, tu_dir);
        if (tu_fast[0]) fprintf(stderr, "%s: and in %s\n", tu_test_name, tu_fast);
    }
}

/* Prints the verdict and exits: the only way a test ends. */
static inline void tu_finish(void) {
    int f = atomic_load(&tu_failures);
    if (f) printf("%s: %d check(s) FAILED\n", tu_test_name, f);
    else printf("%s: all checks passed\n", tu_test_name);
    fflush(stdout);
    exit(f ? 1 : 0);
}

static inline void tu_init(const char *name) {
    tu_test_name = name;
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    snprintf(tu_dir, sizeof tu_dir, "%s/streamdb-%s-XXXXXX", base, name);
    if (!mkdtemp(tu_dir)) {
        fprintf(stderr, "%s: mkdtemp(%s): %s\n", name, tu_dir, strerror(errno));
        exit(2);
    }
    tu_dir_owner = getpid();
    atexit(tu_cleanup);
    setvbuf(stdout, NULL, _IOLBF, 0);
}

/* A path inside the temporary directory; 16 rotating buffers. */
static inline const char *tu_path(const char *fmt, ...) {
    static char bufs[16][1024];
    static atomic_uint next;
    char *b = bufs[atomic_fetch_add(&next, 1) % 16];
    int n = snprintf(b, 1024, "%s/", tu_dir);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b + n, 1024 - (size_t)n, fmt, ap);
    va_end(ap);
    return b;
}

/* A scratch directory on tmpfs (/dev/shm) when there is one, else the test
 * directory: for tests that open thousands of databases and test the
 * library's logic rather than the disk (every open and close syncs).
 * STREAMDB_TEST_ON_DISK=1 keeps everything in the test directory. */
static inline const char *tu_fast_dir(void) {
    if (tu_fast[0]) return tu_fast;
    snprintf(tu_fast, sizeof tu_fast, "/dev/shm/streamdb-%s-XXXXXX", tu_test_name);
    if (getenv("STREAMDB_TEST_ON_DISK") || !mkdtemp(tu_fast)) {
        tu_fast[0] = 0;
        return tu_dir;
    }
    return tu_fast;
}

static inline long tu_env_long(const char *name, long def) {
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    long x = strtol(v, &end, 10);
    return (*end == 0 && x > 0) ? x : def;
}

/* ---- deterministic content ------------------------------------------------ */

static inline uint64_t tu_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Bytes [offset, offset+len) of the document with this seed. */
static inline void tu_fill(void *buf, size_t len, uint64_t seed, uint64_t offset) {
    unsigned char *p = (unsigned char *)buf;
    uint64_t s = tu_mix(seed);
    size_t i = 0;
    while (i < len) {
        uint64_t pos = offset + i;
        uint64_t w = tu_mix(s ^ (pos >> 3));
        unsigned k = (unsigned)(pos & 7);
        for (; k < 8 && i < len; k++) p[i++] = (unsigned char)(w >> (8 * k));
    }
}

/* -1 when buf holds bytes [offset, offset+len) of seed's document, else the
 * index of the first wrong byte. */
static inline long long tu_verify(const void *buf, size_t len, uint64_t seed, uint64_t offset) {
    unsigned char tmp[4096];
    const unsigned char *p = (const unsigned char *)buf;
    for (size_t i = 0; i < len; i += sizeof tmp) {
        size_t n = len - i < sizeof tmp ? len - i : sizeof tmp;
        tu_fill(tmp, n, seed, offset + i);
        if (memcmp(tmp, p + i, n) != 0) {
            for (size_t j = 0; j < n; j++)
                if (tmp[j] != p[i + j]) return (long long)(i + j);
        }
    }
    return -1;
}

static inline void *tu_make(size_t len, uint64_t seed) {
    void *b = malloc(len ? len : 1);
    if (!b) { fprintf(stderr, "out of memory\n"); exit(2); }
    tu_fill(b, len, seed, 0);
    return b;
}

/* Writes seed's document of len bytes at path with streamdb_write_document. */
static inline int tu_put(streamdb *db, const char *path, uint64_t seed, size_t len) {
    void *b = tu_make(len, seed);
    int rc = streamdb_write_document(db, path, b, len, NULL);
    free(b);
    return rc;
}

/* The same through a streaming writer, piece bytes per write (0: tu_put). */
static inline int tu_put_pieces(streamdb *db, const char *path, uint64_t seed, size_t len,
                                size_t piece) {
    if (!piece) return tu_put(db, path, seed, len);
    streamdb_writer *w = NULL;
    int rc = streamdb_writer_begin(db, path, strlen(path), &w);
    if (rc) return rc;
    unsigned char *buf = (unsigned char *)malloc(piece);
    if (!buf) { fprintf(stderr, "out of memory\n"); exit(2); }
    for (size_t off = 0; !rc && off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        tu_fill(buf, n, seed, off);
        rc = streamdb_writer_write(w, buf, n);
    }
    free(buf);
    if (rc) {
        streamdb_writer_abort(w);
        return rc;
    }
    return streamdb_writer_commit(w, NULL);
}

/* Checks that the given version of path is seed's document of len bytes,
 * through streamdb_get.  Returns 1 when it is, 0 (after reporting) if not. */
#define tu_expect_doc(db, path, version, seed, len) \
    tu_expect_doc_at(__FILE__, __LINE__, db, path, version, seed, len)
static inline int tu_expect_doc_at(const char *file, int line, streamdb *db, const char *path,
                                   int64_t version, uint64_t seed, size_t len) {
    void *data = NULL;
    size_t got = 0;
    int rc = streamdb_get(db, path, version, &data, &got);
    if (rc != 0) {
        fprintf(stderr, "FAIL %s:%d: get(%s, v%" PRId64 ") = %d (%s): %s\n", file, line, path,
                version, rc, streamdb_strerror(rc), tu_errmsg(db));
        atomic_fetch_add(&tu_failures, 1);
        return 0;
    }
    int ok = 1;
    if (got != len) {
        fprintf(stderr, "FAIL %s:%d: get(%s, v%" PRId64 ") length %zu, wanted %zu\n", file, line,
                path, version, got, len);
        ok = 0;
    } else {
        long long bad = tu_verify(data, len, seed, 0);
        if (bad >= 0) {
            fprintf(stderr, "FAIL %s:%d: get(%s, v%" PRId64 ") wrong byte at %lld of %zu\n", file,
                    line, path, version, bad, len);
            ok = 0;
        }
    }
    if (!data) {
        fprintf(stderr, "FAIL %s:%d: get(%s) returned a NULL buffer\n", file, line, path);
        ok = 0;
    }
    streamdb_free(data);
    if (!ok) atomic_fetch_add(&tu_failures, 1);
    return ok;
}

/* ---- files ------------------------------------------------------------------ */

static inline long long tu_file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static inline int tu_copy_file(const char *src, const char *dst, long long limit) {
    int in = open(src, O_RDONLY);
    if (in < 0) return errno == ENOENT ? (unlink(dst), 0) : -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0) { close(in); return -1; }
    static char buf[1 << 16];
    long long copied = 0;
    for (;;) {
        size_t want = sizeof buf;
        if (limit >= 0 && (long long)want > limit - copied) want = (size_t)(limit - copied);
        if (want == 0) break;
        ssize_t n = read(in, buf, want);
        if (n < 0) { close(in); close(out); return -1; }
        if (n == 0) break;
        if (write(out, buf, (size_t)n) != n) { close(in); close(out); return -1; }
        copied += n;
    }
    close(in);
    close(out);
    return 0;
}

/* STREAMDB_TEST_CODEC = snappy | aes | both runs a test on compressed and/or
 * encrypted databases: ctest registers the crash, torn-tail and bit-flip
 * families a second time that way (issue 3: they must pass the same). */
static inline void tu_codec(streamdb_config *c) {
    const char *v = getenv("STREAMDB_TEST_CODEC");
    if (!v || !*v) return;
    if (!strcmp(v, "snappy") || !strcmp(v, "both")) c->use_compression = 1;
    if (!strcmp(v, "aes") || !strcmp(v, "both"))
        streamdb_config_set_key(c, "streamdb test key, 32 bytes ....", 32);
}

static inline streamdb *tu_open_cfg(const char *path, const streamdb_config *cfg) {
    streamdb_config dflt;
    if (!cfg) {
        streamdb_config_init(&dflt);
        tu_codec(&dflt);
        cfg = &dflt;
    }
    streamdb *db = NULL;
    int rc = streamdb_open(path, cfg, &db);
    if (rc != 0 || !db) {
        TU_FAIL("streamdb_open(%s) = %d (%s): %s", path, rc, streamdb_strerror(rc),
                tu_errmsg(NULL));
        tu_finish();
    }
    return db;
}

static inline streamdb *tu_open(const char *path) { return tu_open_cfg(path, NULL); }

static inline uint64_t tu_used_pages(streamdb *db) {
    streamdb_stats st;
    memset(&st, 0, sizeof st);
    int rc = streamdb_calculate_statistics(db, &st);
    if (rc != 0) TU_FAIL("calculate_statistics = %d (%s)", rc, streamdb_strerror(rc));
    return st.total_pages - st.free_pages;
}

static inline uint64_t tu_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Runs streamdb_check and reports a failure with its message. */
#define tu_check_db(db) CHECK_OK(db, streamdb_check(db))

#endif /* STREAMDB_TESTUTIL_H */
