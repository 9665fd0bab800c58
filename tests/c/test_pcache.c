/*
 * test_pcache.c -- the path cache (path -> document id) never answers with
 * a mapping the reader's state does not have:
 *  - deletes, binds, unbinds and a delete + re-create at the same path are
 *    seen at once by the handle, while a snapshot taken before them keeps
 *    its own mapping;
 *  - a tiny cache (4 slots) under thousands of paths evicts and refills
 *    without a wrong answer; paths longer than a slot holds are not cached
 *    and still read right;
 *  - readers in threads, against a writer that deletes and re-creates the
 *    same paths in one transaction each (new ids, the path never missing),
 *    always find the path and its own content (run under TSan with
 *    `ctest -L threads`);
 *  - the cache is used when asked for (path_cache_size; off by default):
 *    repeated reads of one path hit it, and with it off the same answers
 *    come with no hits.
 */
#include "testutil.h"

#include <pthread.h>

/* A document whose content names its path and generation. */
static int put_named(streamdb *db, const char *path, unsigned gen)
{
    char body[160];
    int n = snprintf(body, sizeof body, "%s#%u#", path, gen);
    memset(body + n, 'x', sizeof body - (size_t)n);
    return streamdb_write_document(db, path, body, sizeof body, NULL);
}

/* 1 when path reads back as its own document (any generation). */
static int named_ok(streamdb *db, const char *path, unsigned *gen_out)
{
    char buf[256];
    size_t n = 0;
    int rc = streamdb_get_into(db, path, strlen(path), 0, buf, sizeof buf, &n);
    if (rc || n != 160)
        return 0;
    size_t pl = strlen(path);
    if (memcmp(buf, path, pl) || buf[pl] != '#')
        return 0;
    if (gen_out)
        *gen_out = (unsigned)strtoul(buf + pl + 1, NULL, 10);
    return 1;
}

static uint64_t stat_of(streamdb *db, const char *name)
{
    uint64_t v = 0;
    CHECK_OK(db, streamdb_get_stat(db, name, &v));
    return v;
}

typedef struct {
    streamdb *db;
    int paths;
    atomic_int *stop;
    long reads, bad;
} rctx;

static void *reader(void *arg)
{
    rctx *r = arg;
    uint64_t x = (uint64_t)(uintptr_t)r * 0x9E3779B97F4A7C15ull;
    char p[64];
    while (!atomic_load(r->stop)) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        snprintf(p, sizeof p, "/t/%03d", (int)(x % (uint64_t)r->paths));
        if (!named_ok(r->db, p, NULL)) {
            if (r->bad++ < 5)
                fprintf(stderr, "reader: %s missing or wrong\n", p);
        }
        r->reads++;
    }
    return NULL;
}

/* Against a writer that overwrites the paths (same ids, new versions): a
 * read never goes back to an older version of a path than this thread has
 * already read (each read's state is at least as new as the last one's). */
static void *reader_mono(void *arg)
{
    rctx *r = arg;
    unsigned last[256] = {0};
    uint64_t x = (uint64_t)(uintptr_t)r * 0x9E3779B97F4A7C15ull + 1;
    char p[64];
    while (!atomic_load(r->stop)) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int i = (int)(x % (uint64_t)r->paths);
        snprintf(p, sizeof p, "/o/%03d", i);
        unsigned g = 0;
        if (!named_ok(r->db, p, &g) || g < last[i]) {
            if (r->bad++ < 5)
                fprintf(stderr, "reader: %s wrong or older (gen %u after %u)\n", p, g, last[i]);
        } else {
            last[i] = g;
        }
        r->reads++;
    }
    return NULL;
}

static void semantics(const char *dbpath, uint32_t cache)
{
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.path_cache_size = cache;
    streamdb *db = tu_open_cfg(dbpath, &cfg);
    char p[200];
    for (int i = 0; i < 50; i++) {
        snprintf(p, sizeof p, "/s/%02d", i);
        CHECK_OK(db, put_named(db, p, 1));
    }
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 50; i++) {
            snprintf(p, sizeof p, "/s/%02d", i);
            CHECKF(named_ok(db, p, NULL), "%s before the changes", p);
        }
    if (cache >= 1024)   /* 50 paths cycling through 4 slots never hit */
        CHECKF(stat_of(db, "path_cache_hits") >= 100, "path cache hits: %" PRIu64,
               stat_of(db, "path_cache_hits"));
    else if (!cache)
        CHECK(stat_of(db, "path_cache_hits") == 0);

    streamdb *snap = NULL;
    REQUIRE_OK(db, streamdb_snapshot(db, &snap));
    uint8_t id3[16], id4[16];
    REQUIRE_OK(db, streamdb_get_id_by_path(db, "/s/03", 5, id3));
    REQUIRE_OK(db, streamdb_get_id_by_path(db, "/s/04", 5, id4));
    /* delete */
    CHECK_OK(db, streamdb_delete(db, "/s/01"));
    size_t n = 0;
    char buf[256];
    CHECK_RC(db, streamdb_get_into(db, "/s/01", 5, 0, buf, sizeof buf, &n), STREAMDB_ERR_NOT_FOUND);
    /* delete + re-create in one transaction: a new id at the same path */
    REQUIRE_OK(db, streamdb_begin_transaction(db));
    CHECK_OK(db, streamdb_delete(db, "/s/02"));
    CHECK_OK(db, put_named(db, "/s/02", 2));
    CHECK_OK(db, streamdb_commit_transaction(db));
    unsigned gen = 0;
    CHECK(named_ok(db, "/s/02", &gen) && gen == 2);
    /* bind a new path to /s/03's document, then unbind the old one */
    CHECK_OK(db, streamdb_bind_to_path(db, id3, "/s/new3", 7));
    CHECK_OK(db, streamdb_unbind_path(db, id3, "/s/03", 5));
    CHECK_RC(db, streamdb_get_into(db, "/s/03", 5, 0, buf, sizeof buf, &n), STREAMDB_ERR_NOT_FOUND);
    CHECK_OK(db, streamdb_get_into(db, "/s/new3", 7, 0, buf, sizeof buf, &n));
    CHECK(n == 160 && !memcmp(buf, "/s/03#1#", 8));
    /* a path moved from one document to another */
    CHECK_OK(db, streamdb_delete(db, "/s/05"));
    CHECK_OK(db, streamdb_bind_to_path(db, id4, "/s/05", 5));
    CHECK_OK(db, streamdb_get_into(db, "/s/05", 5, 0, buf, sizeof buf, &n));
    CHECK(n == 160 && !memcmp(buf, "/s/04#1#", 8));
    /* the snapshot still sees every path as it was */
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 50; i++) {
            snprintf(p, sizeof p, "/s/%02d", i);
            CHECKF(named_ok(snap, p, &gen) && gen == 1, "snapshot: %s", p);
        }
    CHECK_RC(snap, streamdb_get_into(snap, "/s/new3", 7, 0, buf, sizeof buf, &n), STREAMDB_ERR_NOT_FOUND);
    CHECK_OK(snap, streamdb_snapshot_close(snap));
    /* an overwrite keeps the id: the handle reads the new content */
    CHECK_OK(db, put_named(db, "/s/10", 7));
    CHECK(named_ok(db, "/s/10", &gen) && gen == 7);
    /* where the current version lies is known only for one state: a
     * snapshot and the handle, reading a path overwritten in between, each
     * get their own version, however their reads alternate */
    streamdb *old = NULL;
    REQUIRE_OK(db, streamdb_snapshot(db, &old));
    CHECK_OK(db, put_named(db, "/s/20", 8));
    for (int round = 0; round < 3; round++) {
        CHECK(named_ok(old, "/s/20", &gen) && gen == 1);
        CHECK(named_ok(db, "/s/20", &gen) && gen == 8);
        CHECK(named_ok(db, "/s/20", &gen) && gen == 8);
        CHECK(named_ok(old, "/s/20", &gen) && gen == 1);
    }
    CHECK_OK(old, streamdb_snapshot_close(old));
    CHECK_OK(db, put_named(db, "/s/20", 9));
    CHECK(named_ok(db, "/s/20", &gen) && gen == 9);
    /* long paths are not cached and still read right */
    memset(p, 'L', sizeof p);
    p[0] = '/';
    p[150] = 0;
    CHECK_OK(db, put_named(db, p, 1));
    for (int round = 0; round < 3; round++)
        CHECK(named_ok(db, p, NULL));
    CHECK_OK(db, streamdb_delete(db, p));
    CHECK_RC(db, streamdb_get_into(db, p, 150, 0, buf, sizeof buf, &n), STREAMDB_ERR_NOT_FOUND);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
}

int main(void)
{
    tu_init("pcache");
    semantics(tu_path("sem.db"), 131072);
    semantics(tu_path("sem-off.db"), 0);
    semantics(tu_path("sem-tiny.db"), 4);

    /* thousands of paths through a 4-slot cache */
    {
        streamdb_config cfg;
        streamdb_config_init(&cfg);
        cfg.path_cache_size = 4;
        streamdb *db = tu_open_cfg(tu_path("tiny.db"), &cfg);
        char p[64];
        REQUIRE_OK(db, streamdb_begin_transaction(db));
        for (int i = 0; i < 3000; i++) {
            snprintf(p, sizeof p, "/e/%05d", i);
            CHECK_OK(db, put_named(db, p, 1));
        }
        CHECK_OK(db, streamdb_commit_transaction(db));
        long bad = 0;
        for (int r = 0; r < 20000; r++) {
            snprintf(p, sizeof p, "/e/%05d", (r * 7919) % 3000);
            bad += !named_ok(db, p, NULL);
            bad += !named_ok(db, p, NULL);   /* the second read hits */
        }
        CHECKF(bad == 0, "%ld wrong reads through a 4-slot cache", bad);
        CHECKF(stat_of(db, "path_cache_hits") >= 20000, "%" PRIu64 " hits",
               stat_of(db, "path_cache_hits"));
        CHECK_OK(db, streamdb_close(db));
    }

    /* readers against a writer that re-creates the paths they read */
    {
        streamdb_config cfg;
        streamdb_config_init(&cfg);
        cfg.path_cache_size = 1024;
        streamdb *db = tu_open_cfg(tu_path("threads.db"), &cfg);
        const int paths = 64;
        char p[64];
        for (int i = 0; i < paths; i++) {
            snprintf(p, sizeof p, "/t/%03d", i);
            CHECK_OK(db, put_named(db, p, 0));
        }
        atomic_int stop = 0;
        rctx r[2];
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            r[i] = (rctx){db, paths, &stop, 0, 0};
            REQUIRE(pthread_create(&th[i], NULL, reader, &r[i]) == 0);
        }
        const char *env = getenv("STREAMDB_THREAD_SECONDS");
        double secs = env ? atof(env) : 2.0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        unsigned gen = 1;
        long commits = 0;
        for (;;) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if ((double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9 > secs)
                break;
            int i = (int)(gen % (unsigned)paths);
            snprintf(p, sizeof p, "/t/%03d", i);
            if (streamdb_begin_transaction(db)) {
                TU_FAIL("begin: %s", tu_errmsg(db));
                break;
            }
            CHECK_OK(db, streamdb_delete(db, p));
            CHECK_OK(db, put_named(db, p, gen));
            CHECK_OK(db, streamdb_commit_transaction(db));
            /* the writer's handle reads its own commit at once */
            unsigned g = 0;
            CHECKF(named_ok(db, p, &g) && g == gen, "%s after its re-creation", p);
            gen++;
            commits++;
        }
        atomic_store(&stop, 1);
        long reads = 0, bad = 0;
        for (int i = 0; i < 2; i++) {
            pthread_join(th[i], NULL);
            reads += r[i].reads;
            bad += r[i].bad;
        }
        printf("%ld re-creations, %ld reads in threads, %ld wrong, %" PRIu64 " cache hits\n",
               commits, reads, bad, stat_of(db, "path_cache_hits"));
        CHECK(bad == 0);
        CHECK(reads > 0 && commits > 0);
        CHECK(stat_of(db, "path_cache_hits") > 0);
        tu_check_db(db);
        CHECK_OK(db, streamdb_close(db));
    }
    /* readers against a writer that overwrites the paths they read */
    {
        streamdb_config cfg;
        streamdb_config_init(&cfg);
        cfg.path_cache_size = 1024;
        streamdb *db = tu_open_cfg(tu_path("overwrite.db"), &cfg);
        const int paths = 32;
        char p[64];
        for (int i = 0; i < paths; i++) {
            snprintf(p, sizeof p, "/o/%03d", i);
            CHECK_OK(db, put_named(db, p, 0));
        }
        atomic_int stop = 0;
        rctx r[2];
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            r[i] = (rctx){db, paths, &stop, 0, 0};
            REQUIRE(pthread_create(&th[i], NULL, reader_mono, &r[i]) == 0);
        }
        const char *env = getenv("STREAMDB_THREAD_SECONDS");
        double secs = env ? atof(env) : 2.0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        unsigned gen = 1;
        for (;;) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if ((double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9 > secs)
                break;
            snprintf(p, sizeof p, "/o/%03d", (int)(gen % (unsigned)paths));
            CHECK_OK(db, put_named(db, p, gen));
            unsigned g = 0;
            CHECKF(named_ok(db, p, &g) && g == gen, "%s after its overwrite", p);
            gen++;
        }
        atomic_store(&stop, 1);
        long reads = 0, bad = 0;
        for (int i = 0; i < 2; i++) {
            pthread_join(th[i], NULL);
            reads += r[i].reads;
            bad += r[i].bad;
        }
        printf("%u overwrites, %ld reads in threads, %ld wrong or older, %" PRIu64 " cache hits\n",
               gen - 1, reads, bad, stat_of(db, "path_cache_hits"));
        CHECK(bad == 0);
        CHECK(reads > 0 && gen > 1);
        tu_check_db(db);
        CHECK_OK(db, streamdb_close(db));
    }
    tu_finish();
}
