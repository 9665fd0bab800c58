/*
 * test_snapshot.c -- a snapshot sees the database as of its creation: old
 * content after overwrites (even with versions_to_keep = 1 and several
 * overwrites), deleted documents, the old search results; it refuses writes
 * (STREAMDB_ERR_READONLY); pages it pins come back after it is closed.
 */
#include "testutil.h"

int main(void) {
    tu_init("snapshot");
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.versions_to_keep = 1;
    const char *dbpath = tu_path("snap.db");
    streamdb *db = tu_open_cfg(dbpath, &cfg);
    CHECK_OK(db, tu_put(db, "/s/a", 1, 100));
    CHECK_OK(db, tu_put(db, "/s/big", 2, 2u << 20));
    CHECK_OK(db, tu_put(db, "/s/del", 3, 50000));
    uint8_t id_del[16];
    CHECK_OK(db, streamdb_get_id_by_path(db, "/s/del", 6, id_del));

    streamdb *snap = NULL;
    REQUIRE_OK(db, streamdb_snapshot(db, &snap));
    streamdb_stats st;
    CHECK_OK(db, streamdb_calculate_statistics(db, &st));
    CHECK(st.live_readers >= 1);

    /* Change everything, several times over. */
    for (int round = 0; round < 3; round++) {
        CHECK_OK(db, tu_put(db, "/s/a", 10 + round, 200));
        CHECK_OK(db, tu_put(db, "/s/big", 20 + round, 1u << 20));
    }
    CHECK_OK(db, streamdb_delete(db, "/s/del"));
    CHECK_OK(db, tu_put(db, "/s/new", 4, 10));

    /* The snapshot still sees the old state. */
    tu_expect_doc(snap, "/s/a", 0, 1, 100);
    tu_expect_doc(snap, "/s/big", 0, 2, 2u << 20);
    tu_expect_doc(snap, "/s/del", 0, 3, 50000);
    void *d;
    size_t dl;
    CHECK_RC(snap, streamdb_get(snap, "/s/new", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_OK(snap, streamdb_get_by_id(snap, id_del, 0, &d, &dl));
    if (dl == 50000) CHECK(tu_verify(d, dl, 3, 0) < 0);
    streamdb_free(d);
    char **paths;
    size_t n;
    CHECK_OK(snap, streamdb_search(snap, "/s/", &paths, &n));
    CHECK(n == 3);
    if (n == 3) CHECK(strcmp(paths[0], "/s/a") == 0 && strcmp(paths[2], "/s/del") == 0);
    streamdb_free_paths(paths, n);
    streamdb_doc_info info;
    CHECK_OK(snap, streamdb_stat(snap, "/s/big", 6, 0, &info));
    CHECK(info.version == 1 && info.size == 2u << 20);
    unsigned char buf[100];
    size_t nr;
    CHECK_OK(snap, streamdb_read(snap, "/s/big", 0, 1u << 20, buf, sizeof buf, &nr));
    CHECK(nr == 100 && tu_verify(buf, nr, 2, 1u << 20) < 0);
    /* A stream opened on the snapshot after the changes reads the old data. */
    streamdb_stream *s = NULL;
    CHECK_OK(snap, streamdb_stream_open(snap, "/s/big", 6, 0, &s));
    if (s) {
        uint64_t sz;
        CHECK_OK(snap, streamdb_stream_size(s, &sz));
        CHECK(sz == 2u << 20);
        uint64_t pos = 0;
        CHECK_OK(snap, streamdb_stream_seek(s, 65530, 0, &pos));
        CHECK_OK(snap, streamdb_stream_read(s, buf, sizeof buf, &nr));
        CHECK(nr == 100 && tu_verify(buf, nr, 2, 65530) < 0);
        streamdb_stream_close(s);
    }

    /* The live handle sees the new state. */
    tu_expect_doc(db, "/s/a", 0, 12, 200);
    tu_expect_doc(db, "/s/big", 0, 22, 1u << 20);
    CHECK_RC(db, streamdb_get(db, "/s/del", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);

    /* Writes through the snapshot are refused and change nothing. */
    CHECK_RC(snap, tu_put(snap, "/s/x", 1, 10), STREAMDB_ERR_READONLY);
    CHECK_RC(snap, streamdb_delete(snap, "/s/a"), STREAMDB_ERR_READONLY);
    CHECK_RC(snap, streamdb_begin_transaction(snap), STREAMDB_ERR_READONLY);
    streamdb_writer *w = NULL;
    CHECK_RC(snap, streamdb_writer_begin(snap, "/s/x", 4, &w), STREAMDB_ERR_READONLY);
    CHECK_RC(db, streamdb_get(db, "/s/x", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);

    /* Two snapshots at different times. */
    streamdb *snap2 = NULL;
    CHECK_OK(db, streamdb_snapshot(db, &snap2));
    CHECK_OK(db, tu_put(db, "/s/a", 30, 300));
    if (snap2) {
        tu_expect_doc(snap2, "/s/a", 0, 12, 200);
        CHECK_OK(snap2, streamdb_snapshot_close(snap2));
    }
    tu_expect_doc(snap, "/s/a", 0, 1, 100);

    CHECK_OK(snap, streamdb_close(snap));
    CHECK_OK(db, streamdb_calculate_statistics(db, &st));
    CHECK(st.live_readers == 0);

    /* With the snapshot gone, the pinned pages are reusable: more overwrites
     * of /s/big do not grow the file by another 2 MiB each. */
    CHECK_OK(db, streamdb_flush(db));
    for (int i = 0; i < 6; i++) CHECK_OK(db, tu_put(db, "/s/big", 40 + i, 1u << 20));
    CHECK_OK(db, streamdb_flush(db));
    CHECK_OK(db, streamdb_calculate_statistics(db, &st));
    uint64_t limit = (12ull << 20) / st.page_size;
    CHECKF(st.total_pages - st.free_pages < limit, "used pages %" PRIu64 " (limit %" PRIu64 ")",
           st.total_pages - st.free_pages, limit);
    tu_expect_doc(db, "/s/big", 0, 45, 1u << 20);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    tu_finish();
}
