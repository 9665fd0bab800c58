/*
 * test_threads.c -- one handle, 1 writer thread and 4 reader threads.
 *
 * The writer writes rounds v = 1, 2, ... of 16 documents /th/pNN; the content
 * of (p, v) is derivable: a 16-byte header (magic, p, v) then tu_fill bytes of
 * seed p*1e6+v, with a length that moves between inline-sized and multi-chunk.
 * Plain rounds write p = 0..15 one commit each; every fourth round is one
 * transaction writing p = 15..0.  So every committed state has
 *     v0 >= v1 >= ... >= v15 >= v0 - 1
 * and a half-visible transaction would break that order.
 *
 * Readers check, for every document read, that the bytes are exactly some
 * (p, v) the writer wrote, with committed[p] (stored after a commit returned,
 * read before the read began) <= v <= attempted[p] (stored before the write,
 * read after the read ended).  They read whole documents, byte ranges, streams,
 * snapshots (all 16 at once: the order above, stat.version == v, version -1
 * == v-1) and prefix searches.  A third of the time reads go through pread, a
 * third through mmap, and a third through pread and a page cache of 4 pages,
 * so that entries are evicted while other threads hold them.  Duration:
 * STREAMDB_THREAD_SECONDS (default 4).
 */
#include <pthread.h>
#include <sched.h>

#include "testutil.h"

#define NP 16
#define NREADERS 4
#define MAGIC 0x5344544du

static streamdb *g_db;
static atomic_uint_fast64_t committed[NP], attempted[NP];
static atomic_int stop;
static atomic_long reads_done, commits_done;

static size_t doc_len(unsigned p, uint64_t v) {
    uint64_t x = (p * 7919u + v * 104729u) % 1000;
    if (x < 400) return 16 + (size_t)x;               /* small */
    if (x < 900) return 16 + (size_t)(x * 97);        /* up to ~90 KB */
    return 16 + (size_t)(x * 400);                    /* up to ~400 KB */
}

static void *make_doc(unsigned p, uint64_t v, size_t *len) {
    *len = doc_len(p, v);
    unsigned char *b = malloc(*len);
    uint32_t m = MAGIC, pp = p;
    memcpy(b, &m, 4);
    memcpy(b + 4, &pp, 4);
    memcpy(b + 8, &v, 8);
    tu_fill(b + 16, *len - 16, p * 1000000ull + v, 0);
    return b;
}

/* Checks bytes [0, n) of a document that claims to be path p: returns v, or 0
 * after reporting.  full: n is the whole document. */
static uint64_t check_doc(const char *what, unsigned p, const unsigned char *b, size_t n,
                          int full) {
    uint32_t m, pp;
    uint64_t v;
    if (n < 16) {
        TU_FAIL("%s: p%u has only %zu bytes", what, p, n);
        return 0;
    }
    memcpy(&m, b, 4);
    memcpy(&pp, b + 4, 4);
    memcpy(&v, b + 8, 8);
    if (m != MAGIC || pp != p || v == 0) {
        TU_FAIL("%s: p%u has a wrong header (magic %08x, p %u, v %" PRIu64 ")", what, p, m, pp, v);
        return 0;
    }
    size_t len = doc_len(p, v);
    if ((full && n != len) || n > len) {
        TU_FAIL("%s: p%u v%" PRIu64 " has %zu bytes, wanted %zu", what, p, v, n, len);
        return 0;
    }
    long long bad = tu_verify(b + 16, n - 16, p * 1000000ull + v, 0);
    if (bad >= 0) {
        TU_FAIL("%s: p%u v%" PRIu64 " wrong byte at %lld", what, p, v, bad + 16);
        return 0;
    }
    return v;
}

static void check_range(const char *what, unsigned p, uint64_t v, uint64_t lo, uint64_t hi) {
    if (v && (v < lo || v > hi))
        TU_FAIL("%s: p%u read v%" PRIu64 ", outside [%" PRIu64 ", %" PRIu64 "]", what, p, v, lo,
                hi);
}

static void path_of(char *buf, unsigned p) { snprintf(buf, 16, "/th/p%02u", p); }

static void *writer(void *arg) {
    double seconds = *(double *)arg;
    uint64_t end = tu_now_ns() + (uint64_t)(seconds * 1e9);
    char path[16];
    for (uint64_t v = 2; !atomic_load(&stop); v++) {
        int txn = v % 4 == 0;
        if (txn && streamdb_begin_transaction(g_db) != 0) {
            TU_FAIL("begin_transaction: %s", tu_errmsg(g_db));
            break;
        }
        for (unsigned k = 0; k < NP; k++) {
            unsigned p = txn ? NP - 1 - k : k;
            path_of(path, p);
            size_t len;
            void *b = make_doc(p, v, &len);
            atomic_store(&attempted[p], v);
            int rc = streamdb_write_document(g_db, path, b, len, NULL);
            free(b);
            if (rc) {
                TU_FAIL("writer: write p%u v%" PRIu64 " = %d (%s): %s", p, v, rc,
                        streamdb_strerror(rc), tu_errmsg(g_db));
                atomic_store(&stop, 1);
                return NULL;
            }
            if (!txn) {
                atomic_store(&committed[p], v);
                atomic_fetch_add(&commits_done, 1);
            }
        }
        if (txn) {
            int rc = streamdb_commit_transaction(g_db);
            if (rc) {
                TU_FAIL("writer: commit v%" PRIu64 " = %d: %s", v, rc, tu_errmsg(g_db));
                break;
            }
            for (unsigned p = 0; p < NP; p++) atomic_store(&committed[p], v);
            atomic_fetch_add(&commits_done, 1);
        }
        if (tu_now_ns() > end) break;
    }
    atomic_store(&stop, 1);
    return NULL;
}

static void read_whole(uint64_t *rnd) {
    unsigned p = (unsigned)(tu_mix((*rnd)++) % NP);
    char path[16];
    path_of(path, p);
    uint64_t lo = atomic_load(&committed[p]);
    void *d = NULL;
    size_t dl = 0;
    int rc = streamdb_get(g_db, path, 0, &d, &dl);
    uint64_t hi = atomic_load(&attempted[p]);
    if (rc) {
        TU_FAIL("get p%u = %d (%s): %s", p, rc, streamdb_strerror(rc), tu_errmsg(g_db));
        return;
    }
    check_range("get", p, check_doc("get", p, d, dl, 1), lo, hi);
    streamdb_free(d);
}

static void read_range(uint64_t *rnd) {
    unsigned p = (unsigned)(tu_mix((*rnd)++) % NP);
    char path[16];
    path_of(path, p);
    static _Thread_local unsigned char buf[70000];
    uint64_t lo = atomic_load(&committed[p]);
    size_t n = 0;
    int rc = streamdb_read(g_db, path, 0, 0, buf, sizeof buf, &n);
    uint64_t hi = atomic_load(&attempted[p]);
    if (rc) {
        TU_FAIL("read p%u = %d (%s): %s", p, rc, streamdb_strerror(rc), tu_errmsg(g_db));
        return;
    }
    uint64_t v = check_doc("read", p, buf, n, 0);
    check_range("read", p, v, lo, hi);
    if (v && n != (doc_len(p, v) < sizeof buf ? doc_len(p, v) : sizeof buf))
        TU_FAIL("read p%u v%" PRIu64 ": %zu bytes", p, v, n);
}

static void read_stream(uint64_t *rnd) {
    unsigned p = (unsigned)(tu_mix((*rnd)++) % NP);
    char path[16];
    path_of(path, p);
    uint64_t lo = atomic_load(&committed[p]);
    streamdb_stream *s = NULL;
    int rc = streamdb_stream_open(g_db, path, strlen(path), 0, &s);
    if (rc) {
        TU_FAIL("stream_open p%u = %d: %s", p, rc, tu_errmsg(g_db));
        return;
    }
    uint64_t size = 0;
    streamdb_stream_size(s, &size);
    unsigned char *b = malloc(size ? size : 1);
    size_t got = 0;
    while (got < size) {
        size_t n = 0;
        size_t want = size - got < 10000 ? size - got : 10000;
        rc = streamdb_stream_read(s, b + got, want, &n);
        if (rc || n == 0) {
            TU_FAIL("stream_read p%u at %zu = %d, n=%zu", p, got, rc, n);
            break;
        }
        got += n;
        if (got < size && (got / 10000) % 7 == 0) sched_yield();
    }
    streamdb_stream_close(s);
    uint64_t hi = atomic_load(&attempted[p]);
    if (got == size) check_range("stream", p, check_doc("stream", p, b, got, 1), lo, hi);
    free(b);
}

static void read_snapshot(uint64_t *rnd) {
    (void)rnd;
    uint64_t lo[NP], hi[NP], v[NP];
    for (unsigned p = 0; p < NP; p++) lo[p] = atomic_load(&committed[p]);
    streamdb *snap = NULL;
    int rc = streamdb_snapshot(g_db, &snap);
    if (rc) {
        TU_FAIL("snapshot = %d: %s", rc, tu_errmsg(g_db));
        return;
    }
    char path[16];
    for (unsigned p = 0; p < NP; p++) {
        path_of(path, p);
        void *d = NULL;
        size_t dl = 0;
        v[p] = 0;
        rc = streamdb_get(snap, path, 0, &d, &dl);
        if (rc) {
            TU_FAIL("snapshot get p%u = %d: %s", p, rc, tu_errmsg(snap));
            continue;
        }
        v[p] = check_doc("snapshot", p, d, dl, 1);
        streamdb_free(d);
        streamdb_doc_info info;
        rc = streamdb_stat(snap, path, strlen(path), 0, &info);
        if (rc || info.version != v[p] || info.size != dl)
            TU_FAIL("snapshot stat p%u = %d: version %" PRIu64 " size %" PRIu64 ", content v%" PRIu64,
                    p, rc, info.version, info.size, v[p]);
        if (v[p] > 1 && p % 5 == 0) {
            rc = streamdb_get(snap, path, -1, &d, &dl);
            if (rc) TU_FAIL("snapshot get p%u version -1 = %d: %s", p, rc, tu_errmsg(snap));
            else {
                uint64_t pv = check_doc("snapshot -1", p, d, dl, 1);
                if (pv && pv != v[p] - 1) TU_FAIL("p%u: previous of v%" PRIu64 " is v%" PRIu64, p, v[p], pv);
                streamdb_free(d);
            }
        }
    }
    char **paths;
    size_t n = 0;
    rc = streamdb_search(snap, "/th/", &paths, &n);
    if (rc || n != NP) TU_FAIL("snapshot search = %d, %zu paths", rc, n);
    if (rc == 0) streamdb_free_paths(paths, n);
    streamdb_close(snap);
    for (unsigned p = 0; p < NP; p++) hi[p] = atomic_load(&attempted[p]);
    for (unsigned p = 0; p < NP; p++) check_range("snapshot", p, v[p], lo[p], hi[p]);
    for (unsigned p = 1; p < NP; p++) {
        if (v[p] > v[p - 1] || v[p] + 1 < v[0]) {
            TU_FAIL("snapshot is not a committed state: v[%u]=%" PRIu64 " v[%u]=%" PRIu64
                    " v[0]=%" PRIu64, p - 1, v[p - 1], p, v[p], v[0]);
            break;
        }
    }
}

static void *reader(void *arg) {
    uint64_t rnd = (uint64_t)(uintptr_t)arg * 0x1234567ull;
    while (!atomic_load(&stop)) {
        switch (tu_mix(rnd++) % 5) {
        case 0: read_whole(&rnd); break;
        case 1: read_range(&rnd); break;
        case 2: read_stream(&rnd); break;
        case 3: read_snapshot(&rnd); break;
        default: {
            streamdb_cursor *c = NULL;
            if (streamdb_search_open(g_db, "/th/", 4, &c) != 0) {
                TU_FAIL("search_open: %s", tu_errmsg(g_db));
                break;
            }
            const char *p;
            size_t pl, n = 0;
            while (streamdb_cursor_next(c, &p, &pl) == 0) n++;
            streamdb_cursor_close(c);
            if (n != NP) TU_FAIL("search /th/ gave %zu paths", n);
        }
        }
        atomic_fetch_add(&reads_done, 1);
    }
    return NULL;
}

/* cache_pages: the page cache's size (0: the default); a tiny one makes
 * nearly every page fetch evict an entry that other threads may hold. */
static void run(int use_mmap, uint32_t cache_pages, double seconds) {
    atomic_store(&stop, 0);
    atomic_store(&reads_done, 0);
    atomic_store(&commits_done, 0);
    const char *dbpath = tu_path("threads-%d-%u.db", use_mmap, cache_pages);
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.wal_autocheckpoint = 2u << 20; /* checkpoints happen under the readers */
    cfg.use_mmap = use_mmap;
    if (cache_pages)
        cfg.page_cache_size = cache_pages;
    streamdb *db = g_db = tu_open_cfg(dbpath, &cfg);
    char path[16];
    for (unsigned p = 0; p < NP; p++) {
        size_t len;
        void *b = make_doc(p, 1, &len);
        path_of(path, p);
        REQUIRE_OK(db, streamdb_write_document(db, path, b, len, NULL));
        free(b);
        atomic_store(&committed[p], 1);
        atomic_store(&attempted[p], 1);
    }
    pthread_t w, r[NREADERS];
    pthread_create(&w, NULL, writer, &seconds);
    for (uintptr_t i = 0; i < NREADERS; i++) pthread_create(&r[i], NULL, reader, (void *)(i + 1));
    pthread_join(w, NULL);
    for (int i = 0; i < NREADERS; i++) pthread_join(r[i], NULL);
    uint64_t evictions = 0;
    CHECK_OK(db, streamdb_get_stat(db, "evictions", &evictions));
    printf("%s, %s page cache: %ld commits, %ld reads, %llu evictions\n",
           use_mmap ? "mmap" : "pread", cache_pages ? "a 4-page" : "the default",
           atomic_load(&commits_done), atomic_load(&reads_done), (unsigned long long)evictions);
    if (cache_pages)
        CHECK(evictions > 100);
    CHECK(atomic_load(&commits_done) > 10);
    CHECK(atomic_load(&reads_done) > 10);

    streamdb_stats st;
    CHECK_OK(db, streamdb_calculate_statistics(db, &st));
    CHECK(st.live_readers == 0);
    for (unsigned p = 0; p < NP; p++) {
        path_of(path, p);
        void *d;
        size_t dl;
        if (streamdb_get(db, path, 0, &d, &dl) == 0) {
            CHECK(check_doc("final", p, d, dl, 1) == atomic_load(&committed[p]));
            streamdb_free(d);
        } else TU_FAIL("final get p%u", p);
    }
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    db = tu_open_cfg(dbpath, &cfg);
    for (unsigned p = 0; p < NP; p++) {
        path_of(path, p);
        void *d;
        size_t dl;
        if (streamdb_get(db, path, 0, &d, &dl) == 0) {
            CHECK(check_doc("reopened", p, d, dl, 1) == atomic_load(&committed[p]));
            streamdb_free(d);
        } else TU_FAIL("reopened get p%u", p);
    }
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
}

int main(void) {
    tu_init("threads");
    double seconds = (double)tu_env_long("STREAMDB_THREAD_SECONDS", 4);
    run(0, 0, seconds / 3);
    run(1, 0, seconds / 3);
    run(0, 4, seconds / 3);   /* evictions under the readers' references */
    tu_finish();
}
