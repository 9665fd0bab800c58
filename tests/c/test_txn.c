/*
 * test_txn.c -- transactions: commit makes every write visible at once and
 * durable; rollback undoes writes, overwrites and deletes; other threads read
 * the committed state without waiting while a transaction is open, and their
 * writes wait for it; nested begin and commit/rollback without begin are
 * STREAMDB_ERR_TRANSACTION.
 */
#include <pthread.h>

#include "testutil.h"

static streamdb *g_db;

struct probe {
    int new_rc;        /* get of /t/new */
    int old_ok;        /* /t/old had its committed content */
    size_t search_n;   /* paths under /t/ */
    int del_present;   /* /t/del still readable */
    atomic_int done;
};

static void *reader(void *arg) {
    struct probe *pr = arg;
    void *d = NULL;
    size_t dl = 0;
    pr->new_rc = streamdb_get(g_db, "/t/new", 0, &d, &dl);
    if (pr->new_rc == 0) streamdb_free(d);
    d = NULL;
    int rc = streamdb_get(g_db, "/t/old", 0, &d, &dl);
    pr->old_ok = rc == 0 && dl == 1000 && tu_verify(d, dl, 1, 0) < 0 ? 1 : (rc == 0 ? 2 : 0);
    if (rc == 0) streamdb_free(d);
    char **paths = NULL;
    size_t n = 0;
    if (streamdb_search(g_db, "/t/", &paths, &n) == 0) {
        pr->search_n = n;
        streamdb_free_paths(paths, n);
    }
    pr->del_present = streamdb_get(g_db, "/t/del", 0, &d, &dl) == 0;
    if (pr->del_present) streamdb_free(d);
    atomic_store(&pr->done, 1);
    return NULL;
}

/* Runs reader() in a thread; fails if it does not finish within 10 s. */
static int probe(struct probe *pr) {
    memset(pr, 0, sizeof *pr);
    pthread_t t;
    pthread_create(&t, NULL, reader, pr);
    for (int i = 0; i < 1000 && !atomic_load(&pr->done); i++) usleep(10000);
    if (!atomic_load(&pr->done)) {
        TU_FAIL("a reader waited more than 10 s for an open transaction");
        tu_finish();
    }
    pthread_join(t, NULL);
    return 0;
}

static atomic_int writer_done;
static int writer_rc;
static void *other_writer(void *arg) {
    (void)arg;
    writer_rc = tu_put(g_db, "/t/fromthread", 77, 500);
    atomic_store(&writer_done, 1);
    return NULL;
}

int main(void) {
    tu_init("txn");
    const char *dbpath = tu_path("txn.db");
    streamdb *db = g_db = tu_open(dbpath);
    CHECK_OK(db, tu_put(db, "/t/old", 1, 1000));
    CHECK_OK(db, tu_put(db, "/t/del", 2, 200000));

    /* Errors outside a transaction and for a nested begin. */
    CHECK_RC(db, streamdb_commit_transaction(db), STREAMDB_ERR_TRANSACTION);
    CHECK_RC(db, streamdb_rollback_transaction(db), STREAMDB_ERR_TRANSACTION);
    CHECK_OK(db, streamdb_begin_transaction(db));
    CHECK_RC(db, streamdb_begin_transaction(db), STREAMDB_ERR_TRANSACTION);

    /* Inside: a new document, an overwrite, a delete, a big document. */
    CHECK_OK(db, tu_put(db, "/t/new", 3, 70000));
    CHECK_OK(db, tu_put(db, "/t/old", 4, 3000));
    CHECK_OK(db, streamdb_delete(db, "/t/del"));
    CHECK_OK(db, tu_put(db, "/t/big", 5, 3u << 20));

    /* Another thread sees the committed state, without waiting. */
    struct probe pr;
    probe(&pr);
    CHECK_RC(db, pr.new_rc, STREAMDB_ERR_NOT_FOUND);
    CHECKF(pr.old_ok == 1, "old_ok=%d", pr.old_ok);
    CHECKF(pr.search_n == 2, "search gave %zu", pr.search_n);
    CHECK(pr.del_present);

    /* Another thread's write waits for the transaction. */
    pthread_t wt;
    pthread_create(&wt, NULL, other_writer, NULL);
    usleep(300000);
    CHECKF(!atomic_load(&writer_done), "a write from another thread did not wait for the open transaction");

    /* The nested begin did not end the transaction. */
    CHECK_OK(db, streamdb_commit_transaction(db));
    pthread_join(wt, NULL);
    CHECK_OK(db, writer_rc);
    CHECK_RC(db, streamdb_commit_transaction(db), STREAMDB_ERR_TRANSACTION);

    probe(&pr);
    CHECK_OK(db, pr.new_rc);
    CHECKF(pr.old_ok == 2, "old_ok=%d (the overwrite is not visible)", pr.old_ok);
    CHECK(!pr.del_present);
    tu_expect_doc(db, "/t/new", 0, 3, 70000);
    tu_expect_doc(db, "/t/old", 0, 4, 3000);
    tu_expect_doc(db, "/t/old", -1, 1, 1000);
    tu_expect_doc(db, "/t/big", 0, 5, 3u << 20);
    tu_expect_doc(db, "/t/fromthread", 0, 77, 500);

    /* Rollback undoes a write, an overwrite, a delete and a rebind. */
    CHECK_OK(db, streamdb_close(db));
    db = g_db = tu_open(dbpath);
    uint64_t used0 = tu_used_pages(db), count0 = 0, count1 = 0;
    CHECK_OK(db, streamdb_count(db, &count0));
    uint8_t id[16];
    CHECK_OK(db, streamdb_get_id_by_path(db, "/t/new", 6, id));
    CHECK_OK(db, streamdb_begin_transaction(db));
    CHECK_OK(db, tu_put(db, "/t/rolled", 6, 500000));
    CHECK_OK(db, tu_put(db, "/t/old", 7, 10));
    CHECK_OK(db, streamdb_delete(db, "/t/big"));
    CHECK_OK(db, streamdb_bind_to_path(db, id, "/t/alias", 8));
    CHECK_OK(db, streamdb_rollback_transaction(db));
    CHECK_RC(db, streamdb_rollback_transaction(db), STREAMDB_ERR_TRANSACTION);
    void *d;
    size_t dl;
    CHECK_RC(db, streamdb_get(db, "/t/rolled", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_get(db, "/t/alias", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    tu_expect_doc(db, "/t/old", 0, 4, 3000);
    tu_expect_doc(db, "/t/old", -1, 1, 1000);
    tu_expect_doc(db, "/t/big", 0, 5, 3u << 20);
    streamdb_doc_info info;
    CHECK_OK(db, streamdb_stat(db, "/t/old", 6, 0, &info));
    CHECK(info.version == 2);
    CHECK_OK(db, streamdb_count(db, &count1));
    CHECK(count1 == count0);
    char **paths;
    size_t n;
    CHECK_OK(db, streamdb_list_paths(db, id, &paths, &n));
    CHECK(n == 1);
    streamdb_free_paths(paths, n);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    /* Nothing of the rolled-back transaction is left in the file. */
    db = g_db = tu_open(dbpath);
    uint64_t used1 = tu_used_pages(db);
    CHECKF(used1 == used0, "used pages %" PRIu64 " after a rollback and a reopen, %" PRIu64
           " before", used1, used0);

    /* The handle works normally after a rollback. */
    CHECK_OK(db, streamdb_begin_transaction(db));
    for (int i = 0; i < 50; i++) {
        char p[32];
        snprintf(p, sizeof p, "/t/many/%02d", i);
        CHECK_OK(db, tu_put(db, p, 100 + i, 100u * i));
    }
    CHECK_OK(db, streamdb_commit_transaction(db));
    CHECK_OK(db, streamdb_close(db));

    db = g_db = tu_open(dbpath);
    for (int i = 0; i < 50; i++) {
        char p[32];
        snprintf(p, sizeof p, "/t/many/%02d", i);
        tu_expect_doc(db, p, 0, 100 + i, 100u * i);
    }
    CHECK_RC(db, streamdb_get(db, "/t/rolled", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    tu_expect_doc(db, "/t/fromthread", 0, 77, 500);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    tu_finish();
}
