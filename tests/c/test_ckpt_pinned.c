/*
 * test_ckpt_pinned.c -- checkpoints while a reader pins the log ([F6]).
 *
 * A snapshot taken early keeps the log from being reset.  Commits go on
 * with a small wal_autocheckpoint: partial checkpoints copy what every
 * reader sees (each frame once: the checkpoint count stays far below the
 * commit count times the log size), the snapshot keeps reading its old
 * state, and after it closes the next checkpoint resets the log.  Every
 * state survives a reopen and streamdb_check.
 */
#include "testutil.h"

int main(void)
{
    tu_init("ckpt_pinned");
    const char *p = tu_path("pin.sdb");
    streamdb_config c;
    streamdb_config_init(&c);
    c.wal_autocheckpoint = 256 * 1024;
    streamdb *db = tu_open_cfg(p, &c);
    CHECK_OK(db, tu_put(db, "/keep", 1, 5000));
    streamdb *snap;
    REQUIRE_OK(db, streamdb_snapshot(db, &snap));
    for (int i = 0; i < 300; i++) {
        char path[64];
        snprintf(path, sizeof path, "/d/%03d", i % 50);
        CHECK_OK(db, tu_put(db, path, (uint64_t)(1000 + i), 3000 + (size_t)i));
        if (i == 150)
            CHECK_OK(db, tu_put(db, "/keep", 2, 6000));
    }
    streamdb_stats st;
    CHECK_OK(db, streamdb_calculate_statistics(db, &st));
    printf("pinned: %llu frames in the log, %llu checkpoints\n", (unsigned long long)st.wal_frames,
           (unsigned long long)st.checkpoints);
    CHECK(st.wal_frames > 0);
    /* the snapshot still sees the first state */
    tu_expect_doc(snap, "/keep", 0, 1, 5000);
    void *d;
    size_t dl;
    CHECK_RC(snap, streamdb_get(snap, "/d/000", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    tu_check_db(snap);
    CHECK_OK(db, streamdb_snapshot_close(snap));
    /* with the reader gone, a flush copies the rest and resets the log */
    CHECK_OK(db, streamdb_flush(db));
    CHECK_OK(db, streamdb_calculate_statistics(db, &st));
    CHECK(st.wal_frames == 0);
    tu_expect_doc(db, "/keep", 0, 2, 6000);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    db = tu_open_cfg(p, &c);
    for (int i = 250; i < 300; i++) {
        char path[64];
        snprintf(path, sizeof path, "/d/%03d", i % 50);
        tu_expect_doc(db, path, 0, (uint64_t)(1000 + i), 3000 + (size_t)i);
    }
    tu_expect_doc(db, "/keep", 0, 2, 6000);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    tu_finish();
}
