/*
 * test_append.c -- the trees' append path (btree.c, bt_append): a key above
 * every key of a tree's rightmost leaf goes into that leaf without a
 * descent, for as long as the transaction knows that leaf is the rightmost.
 *
 * Each phase runs in one transaction, where the knowledge lives, and mixes
 * the appends that take the path with every operation that must end it or
 * step around it, then checks every document and streamdb_check, before and
 * after a reopen:
 *
 *  - appends alone (new paths in ascending order: both trees append);
 *  - appends with rewrites of older documents between them (the path tree
 *    finds the path; the document tree inserts a version in the middle);
 *  - appends with new paths that sort before all others (middle inserts);
 *  - appends, then deletes of the newest few hundred documents (the
 *    rightmost leaves of both trees emptied and freed), then appends again
 *    into the space the deletes gave back;
 *  - paths in descending order (no appends at all);
 *  - small and 64 KiB documents (a chunk page between the tree pages).
 */
#include "testutil.h"

#define N 3000

static char alive[4 * N];     /* 1: path i holds seed i's document */
static size_t len_of[4 * N];
static uint64_t seed_of[4 * N];

static void path_of(char *p, size_t cap, int i) {
    /* i < N: ascending appends; N..2N: a prefix that sorts first */
    if (i < 2 * N)
        snprintf(p, cap, "/%s/level%03d/asset%06d", i < N ? "m" : "a", (i % N) / 100, i % N);
    else
        snprintf(p, cap, "/z/desc%06d", 4 * N - i);   /* written in descending order */
}

static void put(streamdb *db, int i, uint64_t seed, size_t len) {
    char p[64];
    path_of(p, sizeof p, i);
    CHECK_OK(db, tu_put(db, p, seed, len));
    alive[i] = 1;
    len_of[i] = len;
    seed_of[i] = seed;
}

static void del(streamdb *db, int i) {
    char p[64];
    path_of(p, sizeof p, i);
    CHECK_OK(db, streamdb_delete(db, p));
    alive[i] = 0;
}

static void verify(streamdb *db, const char *when) {
    size_t n = 0;
    for (int i = 0; i < 4 * N; i++) {
        char p[64];
        path_of(p, sizeof p, i);
        if (alive[i]) {
            n += tu_expect_doc(db, p, 0, seed_of[i], len_of[i]);
        } else {
            void *d = NULL;
            size_t dl = 0;
            CHECK_RC(db, streamdb_get(db, p, 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
        }
    }
    size_t want = 0;
    for (int i = 0; i < 4 * N; i++) want += alive[i] != 0;
    streamdb_stats st;
    CHECK_OK(db, streamdb_calculate_statistics(db, &st));
    CHECKF(st.path_count == want && n == want, "%s: %" PRIu64 " paths, %zu read, %zu wanted",
           when, st.path_count, n, want);
    tu_check_db(db);
}

static size_t size_for(int i) { return i % 97 == 0 ? 65536 : 200 + (size_t)(i % 5) * 300; }

int main(void) {
    tu_init("append");
    const char *path = tu_path("append.db");
    streamdb *db = tu_open(path);

    /* appends alone, then with rewrites and with middle inserts between them */
    CHECK_OK(db, streamdb_begin_transaction(db));
    for (int i = 0; i < N / 3; i++) put(db, i, (uint64_t)i, size_for(i));
    for (int i = N / 3; i < 2 * N / 3; i++) {
        put(db, i, (uint64_t)i, size_for(i));
        if (i % 10 == 0) put(db, i / 2, 1000000u + (uint64_t)i, size_for(i + 1));  /* rewrite */
        if (i % 7 == 0) put(db, N + i, 2000000u + (uint64_t)i, size_for(i));       /* sorts first */
    }
    CHECK_OK(db, streamdb_commit_transaction(db));
    verify(db, "appends, rewrites, middle inserts");

    /* appends, deletes of the newest, appends into what they freed */
    CHECK_OK(db, streamdb_begin_transaction(db));
    for (int i = 2 * N / 3; i < N - 200; i++) put(db, i, 3000000u + (uint64_t)i, size_for(i));
    for (int i = N - 201; i >= N / 2; i--) del(db, i);
    for (int i = N / 2; i < N; i++) put(db, i, 4000000u + (uint64_t)i, size_for(i + 2));
    CHECK_OK(db, streamdb_commit_transaction(db));
    verify(db, "appends after deletes");

    /* descending paths: every insert lands before the last key */
    CHECK_OK(db, streamdb_begin_transaction(db));
    for (int i = 2 * N; i < 3 * N; i++) put(db, i, 5000000u + (uint64_t)i, size_for(i));
    CHECK_OK(db, streamdb_commit_transaction(db));
    verify(db, "descending");

    /* one commit per document: the knowledge starts again with each */
    for (int i = 3 * N; i < 3 * N + 300; i++) put(db, i, 6000000u + (uint64_t)i, size_for(i));
    verify(db, "one commit each");

    CHECK_OK(db, streamdb_close(db));
    db = tu_open(path);
    verify(db, "reopened");
    CHECK_OK(db, streamdb_close(db));
    tu_finish();
}
