/*
 * test_memvfs.c -- the in-memory VFS: a database lives in it across close
 * and reopen (as long as the vfs object), touches no file on disk, passes the
 * integrity check, and two vfs objects do not share files.
 */
#include "testutil.h"

int main(void) {
    tu_init("memvfs");
    /* Relative name: if the memory backend leaked to disk, it would land in
     * the test directory, which we check afterwards. */
    REQUIRE(chdir(tu_dir) == 0);
    streamdb_vfs *vfs = streamdb_vfs_memory_new();
    REQUIRE(vfs != NULL);
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.vfs = vfs;
    streamdb *db = tu_open_cfg("mem.db", &cfg);
    static const size_t lens[] = {0, 1, 5000, 65537, 3u << 20};
    char p[32];
    for (size_t i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "/mem/%zu", i);
        CHECK_OK(db, tu_put(db, p, i, lens[i]));
    }
    CHECK_OK(db, tu_put(db, "/mem/4", 44, 100000)); /* a second version */
    CHECK_OK(db, streamdb_begin_transaction(db));
    CHECK_OK(db, tu_put(db, "/mem/rolled", 1, 10));
    CHECK_OK(db, streamdb_rollback_transaction(db));
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    CHECKF(tu_file_size("mem.db") < 0, "the memory VFS created mem.db on disk");
    CHECKF(tu_file_size("mem.db-wal") < 0, "the memory VFS created mem.db-wal on disk");

    db = tu_open_cfg("mem.db", &cfg);
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "/mem/%zu", i);
        tu_expect_doc(db, p, 0, i, lens[i]);
    }
    tu_expect_doc(db, "/mem/4", 0, 44, 100000);
    tu_expect_doc(db, "/mem/4", -1, 4, lens[4]);
    void *d;
    size_t dl;
    CHECK_RC(db, streamdb_get(db, "/mem/rolled", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    char **paths;
    size_t n;
    CHECK_OK(db, streamdb_search(db, "/mem/", &paths, &n));
    CHECK(n == 5);
    streamdb_free_paths(paths, n);
    tu_check_db(db);
    /* A snapshot and a compact work on memory too. */
    streamdb *snap = NULL;
    CHECK_OK(db, streamdb_snapshot(db, &snap));
    CHECK_OK(db, streamdb_delete(db, "/mem/4"));
    if (snap) {
        tu_expect_doc(snap, "/mem/4", 0, 44, 100000);
        streamdb_snapshot_close(snap);
    }
    CHECK_OK(db, streamdb_compact(db));
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));

    /* The same name in another memory vfs is another (new) database. */
    streamdb_vfs *vfs2 = streamdb_vfs_memory_new();
    cfg.vfs = vfs2;
    db = tu_open_cfg("mem.db", &cfg);
    CHECK_RC(db, streamdb_get(db, "/mem/1", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_OK(db, streamdb_close(db));
    /* create = 0 on a name the vfs does not hold fails. */
    cfg.create = 0;
    streamdb *db2 = NULL;
    CHECK(streamdb_open("other.db", &cfg, &db2) < 0);
    CHECK(db2 == NULL);
    streamdb_vfs_memory_free(vfs2);

    /* Reopen the first vfs once more: still there after another vfs came and went. */
    cfg.vfs = vfs;
    cfg.create = 1;
    db = tu_open_cfg("mem.db", &cfg);
    tu_expect_doc(db, "/mem/3", 0, 3, lens[3]);
    CHECK_OK(db, streamdb_close(db));
    streamdb_vfs_memory_free(vfs);
    CHECK(chdir("/") == 0);
    tu_finish();
}
