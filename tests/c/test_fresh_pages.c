/*
 * test_fresh_pages.c -- [F10], fresh pages: a commit with at least 256 KiB of fresh pages
 * (past the end of the state it started from) writes them in place in the
 * main file, not through the log, and syncs them before its commit frame.
 *
 * - A batch of 600 one-KiB documents into a new database leaves a handful of
 *   frames in the log, where the same batch through the log (threshold raised
 *   with STREAMDB_TEST_FRESH_DIRECT) leaves over a hundred; both read back.
 * - A small commit stays in the log.
 * - A child killed at the data sync of its second batch (the fresh pages
 *   written, nothing pointing to them) recovers to the first batch exactly;
 *   a child that commits three batches and exits without closing recovers all
 *   three.  Each time streamdb_check passes and later batches reuse the
 *   space.  Runs on compressed and encrypted databases too (tu_codec).
 */
#include <signal.h>
#include <sys/wait.h>

#include "testutil.h"

#define BATCH 600

static streamdb_config cfg;

static int put_batch(streamdb *db, int b) {
    int rc = streamdb_begin_transaction(db);
    for (int i = 0; i < BATCH && !rc; i++) {
        char p[64];
        snprintf(p, sizeof p, "/batch%d/doc%04d", b, i);
        rc = tu_put(db, p, (uint64_t)(b * 100000 + i), 1024);
    }
    if (rc) {
        streamdb_rollback_transaction(db);
        return rc;
    }
    return streamdb_commit_transaction(db);
}

static void expect_batch(streamdb *db, int b, int present) {
    for (int i = 0; i < BATCH; i++) {
        char p[64];
        snprintf(p, sizeof p, "/batch%d/doc%04d", b, i);
        if (present) {
            tu_expect_doc(db, p, 0, (uint64_t)(b * 100000 + i), 1024);
        } else {
            void *d = NULL;
            size_t dl = 0;
            CHECK_RC(db, streamdb_get(db, p, 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
        }
    }
}

static uint64_t wal_frames(streamdb *db) {
    streamdb_stats st;
    CHECK_OK(db, streamdb_calculate_statistics(db, &st));
    return st.wal_frames;
}

/* Frames left in the log by one batch into a new database. */
static uint64_t batch_frames(const char *path, const char *threshold) {
    if (threshold)
        setenv("STREAMDB_TEST_FRESH_DIRECT", threshold, 1);
    else
        unsetenv("STREAMDB_TEST_FRESH_DIRECT");
    streamdb *db = tu_open_cfg(path, &cfg);
    uint64_t before = wal_frames(db);
    CHECK_OK(db, put_batch(db, 1));
    uint64_t frames = wal_frames(db) - before;
    expect_batch(db, 1, 1);
    CHECK_OK(db, streamdb_close(db));
    unsetenv("STREAMDB_TEST_FRESH_DIRECT");
    db = tu_open_cfg(path, &cfg);
    expect_batch(db, 1, 1);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    return frames;
}

static void child_batches(const char *path, int n) {
    streamdb *db = NULL;
    if (streamdb_open(path, &cfg, &db)) _exit(2);
    for (int b = 1; b <= n; b++)
        if (put_batch(db, b)) _exit(3);
    _exit(0);   /* no close: the commits stay in the log */
}

int main(void) {
    tu_init("fresh_pages");
    streamdb_config_init(&cfg);
    tu_codec(&cfg);

    uint64_t direct = batch_frames(tu_path("direct.db"), NULL);
    uint64_t logged = batch_frames(tu_path("logged.db"), "1000000000");
    printf("one batch of %d x 1 KiB: %" PRIu64 " frames in place, %" PRIu64 " through the log\n",
           BATCH, direct, logged);
    CHECKF(direct <= 16, "%" PRIu64 " frames with the fresh pages written in place", direct);
    CHECKF(logged >= 80, "%" PRIu64 " frames with every page through the log", logged);

    /* a small commit: its fresh page (if any) goes through the log */
    streamdb *db = tu_open_cfg(tu_path("direct.db"), &cfg);
    uint64_t size0 = (uint64_t)tu_file_size(tu_path("direct.db"));
    CHECK_OK(db, tu_put(db, "/small", 7, 3000));
    CHECK((uint64_t)tu_file_size(tu_path("direct.db")) == size0);
    CHECK(wal_frames(db) >= 2);
    CHECK_OK(db, streamdb_close(db));

    /* killed at the data sync of the second batch */
    const char *kp = tu_path("killed.db");
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setenv("STREAMDB_KILLPOINT", "commit.before_data_sync:2", 1);
        child_batches(kp, 2);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %d", st);
    db = tu_open_cfg(kp, &cfg);
    expect_batch(db, 1, 1);
    expect_batch(db, 2, 0);
    tu_check_db(db);
    uint64_t used = tu_used_pages(db);
    /* the space the lost batch took is free again: the same batch fits */
    CHECK_OK(db, put_batch(db, 2));
    expect_batch(db, 2, 1);
    CHECK_OK(db, streamdb_close(db));
    db = tu_open_cfg(kp, &cfg);
    expect_batch(db, 1, 1);
    expect_batch(db, 2, 1);
    CHECK(tu_used_pages(db) > used);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));

    /* three batches, no close */
    const char *ex = tu_path("exited.db");
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
        child_batches(ex, 3);
    waitpid(pid, &st, 0);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
    db = tu_open_cfg(ex, &cfg);
    for (int b = 1; b <= 3; b++)
        expect_batch(db, b, 1);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    tu_finish();
}
