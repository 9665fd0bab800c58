/*
 * test_wal_sync.c -- acknowledged frames recorded in commit frames (docs/format.md [F4]).
 *
 * A child commits six transactions and _exit()s without closing, so every
 * frame stays in the log.  Damage to a frame of an early commit (one that a
 * later commit recorded as acknowledged) must make the open fail with
 * STREAMDB_ERR_CORRUPT (the last commit frame records how many frames were
 * acknowledged before it): silently recovering a shorter prefix would lose
 * acknowledged data.  Damage to the last commit's frames is a torn tail: the
 * open succeeds with the first five transactions.
 */
#include <sys/wait.h>

#include "testutil.h"

static void make_db(const char *db)
{
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        streamdb *d;
        streamdb_config c;
        streamdb_config_init(&c);
        c.page_size = 4096;
        if (streamdb_open(db, &c, &d))
            _exit(2);
        for (int i = 0; i < 6; i++) {
            char p[32];
            snprintf(p, sizeof p, "/w/%d", i);
            if (tu_put(d, p, (uint64_t)i, 1000))
                _exit(3);
        }
        _exit(0);   /* no close: no checkpoint */
    }
    int st;
    waitpid(pid, &st, 0);
    REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void flip(const char *file, long long off)
{
    int fd = open(file, O_RDWR);
    uint8_t b;
    REQUIRE(pread(fd, &b, 1, off) == 1);
    b ^= 0x10;
    REQUIRE(pwrite(fd, &b, 1, off) == 1);
    close(fd);
}

/* Where this log's frames end (the first frame not carrying the header's
 * salt): the file goes on with the zero fill of its last growth step, or
 * with frames of an earlier generation of a reused log. */
static long long frames_end(const char *file, long long first, long long frame)
{
    int fd = open(file, O_RDONLY);
    REQUIRE(fd >= 0);
    long long off = first;
    uint8_t salt[4], want[4];
    REQUIRE(pread(fd, want, 4, 12) == 4);
    while (pread(fd, salt, 4, off + 16) == 4 && !memcmp(salt, want, 4))
        off += frame;
    close(fd);
    return off;
}

int main(void)
{
    tu_init("wal_sync");
    const long long frame = 24 + 4096, first = 64;
    char wal[1100];

    /* an early frame: under an acknowledged commit */
    const char *db = tu_path("early.sdb");
    make_db(db);
    snprintf(wal, sizeof wal, "%s-wal", db);
    long long wsize = tu_file_size(wal);
    CHECK(frames_end(wal, first, frame) > first + 6 * frame);
    flip(wal, first + 24 + 100);   /* page bytes of frame 0 */
    streamdb *d = NULL;
    int rc = streamdb_open(db, NULL, &d);
    CHECKF(rc == STREAMDB_ERR_CORRUPT, "open = %d (%s)", rc, tu_errmsg(NULL));
    CHECK(strstr(tu_errmsg(NULL), "acknowledged") != NULL);
    CHECK(tu_file_size(wal) == wsize);   /* the evidence is kept */

    /* the last frame: a torn tail of the last, unrecorded commit */
    db = tu_path("tail.sdb");
    make_db(db);
    snprintf(wal, sizeof wal, "%s-wal", db);
    flip(wal, frames_end(wal, first, frame) - 10);
    d = tu_open(db);
    for (int i = 0; i < 5; i++) {
        char p[32];
        snprintf(p, sizeof p, "/w/%d", i);
        tu_expect_doc(d, p, 0, (uint64_t)i, 1000);
    }
    void *x;
    size_t xl;
    CHECK_RC(d, streamdb_get(d, "/w/5", 0, &x, &xl), STREAMDB_ERR_NOT_FOUND);
    tu_check_db(d);
    CHECK_OK(d, streamdb_close(d));
    printf("wal_sync: damage under an acknowledged commit reported, torn tail recovered\n");

    /* Log reuse: a checkpoint resets the log but keeps its file (up to
     * wal_autocheckpoint + one 64 KiB growth step), so later commits
     * overwrite frames of earlier generations.  A process killed after many
     * resets leaves such a tail; the open takes none of it. */
    db = tu_path("reuse.sdb");
    snprintf(wal, sizeof wal, "%s-wal", db);
    const int NDOC = 400;
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        streamdb_config c;
        streamdb_config_init(&c);
        c.page_size = 4096;
        c.wal_autocheckpoint = 128u << 10;
        if (streamdb_open(db, &c, &d))
            _exit(2);
        long long most = 0;
        for (int i = 0; i < NDOC; i++) {
            char p[32];
            snprintf(p, sizeof p, "/r/%03d", i);
            if (tu_put(d, p, (uint64_t)i + 100, 1500 + i))
                _exit(3);
            long long sz = tu_file_size(wal);
            most = sz > most ? sz : most;
            if (i == NDOC / 2 && streamdb_delete(d, "/r/007"))
                _exit(4);
        }
        /* bounded: the autocheckpoint, one growth step, one commit */
        if (most > (128 << 10) + (64 << 10) + 8 * frame)
            _exit(5);
        _exit(0);   /* no close: the log keeps its mixed generations */
    }
    int st;
    waitpid(pid, &st, 0);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
    CHECK(tu_file_size(wal) > frames_end(wal, first, frame));   /* a stale or zero tail */
    d = tu_open(db);
    for (int i = 0; i < NDOC; i++) {
        char p[32];
        snprintf(p, sizeof p, "/r/%03d", i);
        if (i == 7)
            CHECK_RC(d, streamdb_get(d, p, 0, &x, &xl), STREAMDB_ERR_NOT_FOUND);
        else
            tu_expect_doc(d, p, 0, (uint64_t)i + 100, 1500 + (size_t)i);
    }
    tu_check_db(d);
    CHECK_OK(d, streamdb_close(d));
    CHECK(tu_file_size(wal) == first);   /* a clean close cuts the log back to its header */
    printf("wal_sync: %d commits over a reused log recovered\n", NDOC);
    tu_finish();
}
