/*
 * test_nowait.c -- streamdb_get_into_flags(STREAMDB_READ_NOWAIT): a read that
 * is served from memory or not at all.
 *  - a read that needs a file read returns STREAMDB_ERR_WOULDBLOCK, with
 *    *len_out 0 and the cache's counters untouched; the same read without the
 *    flag then succeeds, and afterwards the no-wait read succeeds too where
 *    the pages are now in memory (the page cache, or checked map pages);
 *  - chunk data with frames in the log always needs a pread: WOULDBLOCK until
 *    a checkpoint puts it in the main file, then served from the map;
 *  - a snapshot and the owner of a write transaction read their own state
 *    with the flag, as without it;
 *  - with use_mmap off, only the page cache serves: a tiny cache under many
 *    documents gives both answers, and every answer given is right;
 *  - main-file pages the kernel dropped (posix_fadvise DONTNEED) are not
 *    touched: mincore says they are not resident, so the read would block
 *    (checked where the filesystem drops them; tmpfs keeps its pages);
 *  - unknown flags are STREAMDB_ERR_INVALID;
 *  - in threads, against a writer whose commits pass a small autocheckpoint
 *    (log resets under the readers), every no-wait answer is either a whole,
 *    right document or WOULDBLOCK followed by a right blocking read (run under
 *    TSan with `ctest -L threads`; STREAMDB_THREAD_SECONDS, default 2).
 */
#include "testutil.h"

#include <pthread.h>
#include <sys/mman.h>

static int nowait_get(streamdb *db, const char *path, void *buf, size_t cap, size_t *n)
{
    return streamdb_get_into_flags(db, path, strlen(path), 0, STREAMDB_READ_NOWAIT, buf, cap, n);
}

/* The binding's pattern: the no-wait read, then, where it would block, the
 * ordinary one.  Counts which answered; a blocked read copies nothing. */
static int get_either(streamdb *db, const char *path, void *buf, size_t cap, size_t *n,
                      long *served, long *blocked)
{
    int rc = nowait_get(db, path, buf, cap, n);
    if (rc != STREAMDB_ERR_WOULDBLOCK) {
        ++*served;
        return rc;
    }
    ++*blocked;
    CHECK(*n == 0);
    return streamdb_get_into(db, path, strlen(path), 0, buf, cap, n);
}

/* path must read back, with the flag, as seed's document of len bytes. */
static void expect_nowait(streamdb *db, const char *path, uint64_t seed, size_t len)
{
    static unsigned char buf[300 * 1024];
    size_t n = 12345;
    int rc = nowait_get(db, path, buf, sizeof buf, &n);
    CHECKF(rc == 0, "%s: rc %d (%s): %s", path, rc, streamdb_strerror(rc), tu_errmsg(db));
    if (rc == 0) {
        CHECKF(n == len, "%s: %zu bytes, wanted %zu", path, n, len);
        CHECKF(n == len && tu_verify(buf, len, seed, 0) < 0, "%s: wrong bytes", path);
    }
}

static void expect_block(streamdb *db, const char *path)
{
    static unsigned char buf[300 * 1024];
    size_t n = 12345;
    uint64_t h0 = 0, m0 = 0, h1 = 0, m1 = 0;
    streamdb_get_stat(db, "misses", &m0);
    streamdb_get_stat(db, "hits", &h0);
    CHECK_RC(db, nowait_get(db, path, buf, sizeof buf, &n), STREAMDB_ERR_WOULDBLOCK);
    CHECK(n == 0);
    streamdb_get_stat(db, "misses", &m1);
    streamdb_get_stat(db, "hits", &h1);
    CHECKF(m1 == m0, "%s: a blocked read counted %llu misses", path,
           (unsigned long long)(m1 - m0));
    (void)h0;
    (void)h1;
}

static const struct {
    const char *path;
    size_t len;
} docs[] = {
    {"/n/small", 1000},      /* inline in its version record */
    {"/n/mid", 6000},        /* one chunk of one page */
    {"/n/two", 100 * 1024},  /* two chunks */
    {"/n/big", 200 * 1024},  /* four chunks: still a point read from the map */
};
#define NDOCS (sizeof docs / sizeof docs[0])

static void test_map(void)
{
    const char *dbpath = tu_path("map.db");
    streamdb *db = tu_open(dbpath);
    for (unsigned i = 0; i < NDOCS; i++)
        REQUIRE_OK(db, tu_put(db, docs[i].path, 10 + i, docs[i].len));

    /* chunk pages with frames in the log: a pread every time */
    for (unsigned i = 1; i < NDOCS; i++) {
        expect_block(db, docs[i].path);
        tu_expect_doc(db, docs[i].path, 0, 10 + i, docs[i].len);
        expect_block(db, docs[i].path);
    }
    /* the inline document: once read, its pages are in the cache */
    tu_expect_doc(db, "/n/small", 0, 10, 1000);
    expect_nowait(db, "/n/small", 10, 1000);

    unsigned char buf[16];
    size_t n = 0;
    CHECK_RC(db, streamdb_get_into_flags(db, "/n/small", 8, 0, 2u, buf, sizeof buf, &n),
             STREAMDB_ERR_INVALID);
    CHECK_RC(db, streamdb_get_into_flags(db, "/n/small", 8, 0, ~0u, buf, sizeof buf, &n),
             STREAMDB_ERR_INVALID);

    /* after a checkpoint everything is in the main file: the map serves it */
    REQUIRE_OK(db, streamdb_flush(db));
    for (unsigned i = 0; i < NDOCS; i++)
        expect_nowait(db, docs[i].path, 10 + i, docs[i].len);
    CHECK_RC(db, nowait_get(db, "/n/none", buf, sizeof buf, &n), STREAMDB_ERR_NOT_FOUND);
    /* too small a buffer: the size, nothing copied, as without the flag */
    n = 0;
    CHECK_OK(db, nowait_get(db, "/n/mid", buf, sizeof buf, &n));
    CHECK(n == 6000);

    /* a snapshot keeps its version; the handle reads the new one */
    streamdb *snap = NULL;
    REQUIRE_OK(db, streamdb_snapshot(db, &snap));
    REQUIRE_OK(db, tu_put(db, "/n/small", 99, 900));
    REQUIRE_OK(db, tu_put(db, "/n/mid", 98, 5000));
    expect_nowait(snap, "/n/small", 10, 1000);
    expect_nowait(snap, "/n/mid", 11, 6000);
    expect_block(db, "/n/mid");   /* the new chunk is in the log */
    tu_expect_doc(db, "/n/small", 0, 99, 900);
    expect_nowait(db, "/n/small", 99, 900);
    CHECK_OK(snap, streamdb_snapshot_close(snap));

    /* the owner of a write transaction sees its own writes, with the flag */
    REQUIRE_OK(db, streamdb_begin_transaction(db));
    REQUIRE_OK(db, tu_put(db, "/n/txn", 50, 700));
    REQUIRE_OK(db, tu_put(db, "/n/txnmid", 51, 7000));
    expect_nowait(db, "/n/txn", 50, 700);
    expect_nowait(db, "/n/txnmid", 51, 7000);   /* its chunk is a dirty page */
    REQUIRE_OK(db, streamdb_rollback_transaction(db));
    CHECK_RC(db, nowait_get(db, "/n/txn", buf, sizeof buf, &n), STREAMDB_ERR_NOT_FOUND);

    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
}

/* n documents fmt % i of len bytes, seed seed0 + i, in one transaction. */
static void put_many(streamdb *db, const char *fmt, int n, unsigned seed0, size_t len)
{
    char p[64];
    REQUIRE_OK(db, streamdb_begin_transaction(db));
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, fmt, i);
        REQUIRE_OK(db, tu_put(db, p, seed0 + (unsigned)i, len));
    }
    REQUIRE_OK(db, streamdb_commit_transaction(db));
}

/* use_mmap off: the page cache is the only memory the flag may read. */
static void test_cache_only(void)
{
    const char *dbpath = tu_path("cache.db");
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    tu_codec(&cfg);
    cfg.use_mmap = 0;
    streamdb *db = tu_open_cfg(dbpath, &cfg);
    char p[64];
    const int ndocs = 2000;
    put_many(db, "/c/doc%05d", ndocs, 1000u, 512);
    CHECK_OK(db, streamdb_close(db));

    db = tu_open_cfg(dbpath, &cfg);   /* an empty cache */
    expect_block(db, "/c/doc00007");
    tu_expect_doc(db, "/c/doc00007", 0, 1007, 512);
    expect_nowait(db, "/c/doc00007", 1007, 512);
    CHECK_OK(db, streamdb_close(db));

    /* a cache of a few pages under a few hundred leaves: both answers */
    cfg.page_cache_size = 8;
    db = tu_open_cfg(dbpath, &cfg);
    long served = 0, blocked = 0;
    uint64_t x = 1;
    for (int k = 0; k < 20000; k++) {
        x = tu_mix(x);
        int i = (int)(x % (uint64_t)ndocs);
        snprintf(p, sizeof p, "/c/doc%05d", i);
        unsigned char buf[600];
        size_t n = 0;
        int rc = get_either(db, p, buf, sizeof buf, &n, &served, &blocked);
        CHECKF(rc == 0 && n == 512 && tu_verify(buf, 512, 1000u + (unsigned)i, 0) < 0,
               "%s: rc %d, %zu bytes", p, rc, n);
    }
    printf("tiny cache: %ld served from memory, %ld would block\n", served, blocked);
    CHECK(served > 0);
    CHECK(blocked > 0);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
}

/* Pages of path's file that the kernel holds, in 1/1000 of the file. */
static long resident_permille(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    long long sz = tu_file_size(path);
    long osz = sysconf(_SC_PAGESIZE);
    void *m = mmap(NULL, (size_t)sz, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return -1;
    size_t np = (size_t)((sz + osz - 1) / osz);
    unsigned char *vec = malloc(np);
    long in = 0;
    if (vec && mincore(m, (size_t)sz, vec) == 0)
        for (size_t i = 0; i < np; i++)
            in += vec[i] & 1;
    else
        in = -1;
    free(vec);
    munmap(m, (size_t)sz);
    return in < 0 ? -1 : (long)(in * 1000 / (long)np);
}

/* Main-file pages the kernel dropped are not read by a no-wait get. */
static void test_dropped_pages(void)
{
    const char *dbpath = tu_path("dropped.db");
    streamdb *db = tu_open(dbpath);
    char p[64];
    const int ndocs = 3000;
    put_many(db, "/d/doc%05d", ndocs, 5000u, 1024);
    REQUIRE_OK(db, streamdb_flush(db));
    CHECK_OK(db, streamdb_close(db));

    int fd = open(dbpath, O_RDONLY);
    REQUIRE(fd >= 0);
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    long before = resident_permille(dbpath);
    if (before < 0 || before > 500) {
        printf("dropped pages: skipped, the filesystem kept %ld/1000 of the file's pages\n",
               before);
        return;
    }
    db = tu_open(dbpath);
    long served = 0, blocked = 0;
    for (int i = 0; i < ndocs; i += 7) {
        snprintf(p, sizeof p, "/d/doc%05d", i);
        unsigned char buf[1100];
        size_t n = 0;
        long was_blocked = blocked;
        int rc = get_either(db, p, buf, sizeof buf, &n, &served, &blocked);
        CHECKF(rc == 0 && n == 1024 && tu_verify(buf, 1024, 5000u + (unsigned)i, 0) < 0,
               "%s: rc %d", p, rc);
        if (blocked > was_blocked)   /* now read and checked: served from the map */
            expect_nowait(db, p, 5000u + (unsigned)i, 1024);
    }
    printf("dropped pages (%ld/1000 resident at open): %ld served, %ld would block\n", before,
           served, blocked);
    CHECK(blocked > 0);
    CHECK_OK(db, streamdb_close(db));
}

/* ---- threads ---- */

#define TDOCS 64

typedef struct {
    streamdb *db;
    atomic_int *stop;
    long served, blocked, bad;
} rctx;

/* A document that names its own seed in its first 8 bytes. */
static size_t doc_len(uint64_t seed) { return seed % 3 ? 300 + seed % 1500 : 3000 + seed % 9000; }

static int doc_ok(const unsigned char *buf, size_t n)
{
    uint64_t seed;
    if (n < 8)
        return 0;
    memcpy(&seed, buf, 8);
    return n == doc_len(seed) && tu_verify(buf + 8, n - 8, seed, 8) < 0;
}

static int put_seeded(streamdb *db, const char *path, uint64_t seed)
{
    size_t n = doc_len(seed);
    unsigned char *b = tu_make(n, seed);
    memcpy(b, &seed, 8);
    int rc = streamdb_write_document(db, path, b, n, NULL);
    free(b);
    return rc;
}

static void *reader(void *arg)
{
    rctx *c = arg;
    uint64_t x = (uint64_t)(uintptr_t)c;
    unsigned char buf[16384];
    char p[32];
    while (!atomic_load(c->stop)) {
        x = tu_mix(x);
        snprintf(p, sizeof p, "/t/%02u", (unsigned)(x % TDOCS));
        size_t n = 0;
        int rc = get_either(c->db, p, buf, sizeof buf, &n, &c->served, &c->blocked);
        if (rc != 0 || !doc_ok(buf, n))
            c->bad++;
    }
    return NULL;
}

static void test_threads(void)
{
    const char *dbpath = tu_path("threads.db");
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    tu_codec(&cfg);
    cfg.wal_autocheckpoint = 256 * 1024;   /* log resets under the readers */
    streamdb *db = tu_open_cfg(dbpath, &cfg);
    char p[32];
    for (unsigned i = 0; i < TDOCS; i++) {
        snprintf(p, sizeof p, "/t/%02u", i);
        REQUIRE_OK(db, put_seeded(db, p, i + 1));
    }
    atomic_int stop = 0;
    rctx rc[2] = {{db, &stop, 0, 0, 0}, {db, &stop, 0, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        REQUIRE(pthread_create(&th[i], NULL, reader, &rc[i]) == 0);
    uint64_t t_end = tu_now_ns() + (uint64_t)tu_env_long("STREAMDB_THREAD_SECONDS", 2) * 1000000000ull;
    uint64_t seed = 1000, writes = 0;
    while (tu_now_ns() < t_end) {
        snprintf(p, sizeof p, "/t/%02u", (unsigned)(seed % TDOCS));
        CHECK_OK(db, put_seeded(db, p, seed++));
        writes++;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    uint64_t ckpts = 0;
    streamdb_get_stat(db, "checkpoints", &ckpts);
    long served = rc[0].served + rc[1].served, blocked = rc[0].blocked + rc[1].blocked;
    printf("threads: %llu writes, %llu checkpoints; reads: %ld served from memory, %ld would "
           "block, %ld wrong\n", (unsigned long long)writes, (unsigned long long)ckpts, served,
           blocked, rc[0].bad + rc[1].bad);
    CHECK(rc[0].bad + rc[1].bad == 0);
    CHECK(served > 0);
    CHECK(blocked > 0);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
}

int main(void)
{
    tu_init("nowait");
    test_map();
    test_cache_only();
    test_dropped_pages();
    test_threads();
    tu_finish();
    return 0;
}
