/*
 * test_mmap.c -- reads through mmap (use_mmap = 1): every size and version
 * reads back the same as through pread, across writes that grow the file,
 * checkpoints and a reopen; a stream and a snapshot keep reading their
 * document after it is deleted and the file is compacted (a shrink under a
 * mapping must never turn into SIGBUS or wrong bytes); flipped bits are still
 * caught by the CRCs.
 */
#include "testutil.h"

#include <sys/wait.h>

static const size_t lens[] = {0, 100, 5000, 65536, 65537, 300000, 3u << 20};
#define NL (sizeof lens / sizeof lens[0])

int main(void) {
    tu_init("mmap");
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.use_mmap = 1;
    cfg.wal_autocheckpoint = 1u << 20;
    const char *dbpath = tu_path("mmap.db");
    streamdb *db = tu_open_cfg(dbpath, &cfg);
    char p[32];
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < NL; i++) {
            snprintf(p, sizeof p, "/m/%zu", i);
            CHECK_OK(db, tu_put(db, p, i + 100u * (unsigned)round, lens[i]));
            tu_expect_doc(db, p, 0, i + 100u * (unsigned)round, lens[i]);
        }
        if (round == 1) CHECK_OK(db, streamdb_flush(db));
    }
    for (size_t i = 0; i < NL; i++) {
        snprintf(p, sizeof p, "/m/%zu", i);
        tu_expect_doc(db, p, 0, i + 200, lens[i]);
        tu_expect_doc(db, p, -1, i + 100, lens[i]);
    }
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    db = tu_open_cfg(dbpath, &cfg);
    for (size_t i = 0; i < NL; i++) {
        snprintf(p, sizeof p, "/m/%zu", i);
        tu_expect_doc(db, p, 0, i + 200, lens[i]);
    }

    /* A document at the end of the file, read by a stream and a snapshot
     * while it is deleted and the file compacted. */
    const size_t tail = 8u << 20;
    CHECK_OK(db, tu_put(db, "/m/tail", 77, tail));
    CHECK_OK(db, streamdb_flush(db));
    streamdb_stream *s = NULL;
    REQUIRE_OK(db, streamdb_stream_open(db, "/m/tail", 7, 0, &s));
    streamdb *snap = NULL;
    REQUIRE_OK(db, streamdb_snapshot(db, &snap));
    long long big_file = tu_file_size(dbpath);
    CHECK_OK(db, streamdb_delete(db, "/m/tail"));
    for (size_t i = 0; i < NL; i++) {
        snprintf(p, sizeof p, "/m/%zu", i);
        CHECK_OK(db, streamdb_delete(db, p));
    }
    CHECK_OK(db, streamdb_flush(db));
    int rc = streamdb_compact(db);
    CHECKF(rc == 0 || rc == STREAMDB_ERR_BUSY, "compact with readers = %d (%s)", rc,
           streamdb_strerror(rc));
    unsigned char *buf = malloc(1u << 20);
    uint64_t pos = 0;
    for (;;) {
        size_t n = 0;
        rc = streamdb_stream_read(s, buf, 1u << 20, &n);
        CHECK_OK(db, rc);
        if (rc || n == 0) break;
        if (tu_verify(buf, n, 77, pos) >= 0) {
            TU_FAIL("stream over a compacted file: wrong bytes near %" PRIu64, pos);
            break;
        }
        pos += n;
    }
    CHECK(pos == tail);
    streamdb_stream_close(s);
    tu_expect_doc(snap, "/m/tail", 0, 77, tail);
    tu_expect_doc(snap, "/m/6", 0, 206, lens[6]);
    CHECK_OK(snap, streamdb_snapshot_close(snap));
    /* With the readers gone the file shrinks. */
    CHECK_OK(db, streamdb_compact(db));
    long long small = tu_file_size(dbpath);
    CHECKF(small < big_file - (long long)tail / 2, "compact: %lld -> %lld", big_file, small);
    /* and grows again under the mapping */
    CHECK_OK(db, tu_put(db, "/m/again", 78, 5u << 20));
    tu_expect_doc(db, "/m/again", 0, 78, 5u << 20);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));

    /* Flipped bits in document data read through the mapping. */
    db = tu_open_cfg(dbpath, &cfg);
    tu_expect_doc(db, "/m/again", 0, 78, 5u << 20);
    CHECK_OK(db, streamdb_close(db));
    long long size = tu_file_size(dbpath);
    const char *copy = tu_path("mmap-flip.db");
    int detected = 0, flips = 0;
    for (long long off = size / 4; off < size; off += size / 9) {
        REQUIRE(tu_copy_file(dbpath, copy, -1) == 0);
        int fd = open(copy, O_RDWR);
        unsigned char c = 0;
        REQUIRE(fd >= 0 && pread(fd, &c, 1, off) == 1);
        c ^= 0x10;
        REQUIRE(pwrite(fd, &c, 1, off) == 1);
        close(fd);
        streamdb *f = NULL;
        rc = streamdb_open(copy, &cfg, &f);
        flips++;
        if (rc) {
            CHECKF(rc == STREAMDB_ERR_CORRUPT, "flip at %lld: open = %d", off, rc);
            detected++;
            continue;
        }
        void *d = NULL;
        size_t dl = 0;
        rc = streamdb_get(f, "/m/again", 0, &d, &dl);
        if (rc == STREAMDB_ERR_CORRUPT) detected++;
        else if (rc) TU_FAIL("flip at %lld: get = %d (%s)", off, rc, streamdb_strerror(rc));
        else {
            CHECKF(dl == 5u << 20 && tu_verify(d, dl, 78, 0) < 0, "flip at %lld: WRONG BYTES", off);
            streamdb_free(d);
        }
        streamdb_close(f);
    }
    printf("%d flips, %d detected\n", flips, detected);
    CHECK(detected >= flips / 2);

    /* A one-chunk document, which a point read checks in the map before it
     * copies anything: a flipped byte gives CORRUPT, and the caller's buffer
     * is left as it was, never holding the damaged bytes. */
    {
        const char *cpath = tu_path("mmap-chunk.db");
        streamdb *c = tu_open_cfg(cpath, &cfg);
        CHECK_OK(c, tu_put(c, "/m/chunk", 91, 65536));
        CHECK_OK(c, streamdb_close(c));
        uint8_t *want = tu_make(65536, 91);
        long long csize = tu_file_size(cpath);
        uint8_t *file = malloc((size_t)csize);
        int fd = open(cpath, O_RDWR);
        REQUIRE(file && fd >= 0 && pread(fd, file, (size_t)csize, 0) == csize);
        uint8_t *at = memmem(file, (size_t)csize, want, 4096);
        REQUIRE(at != NULL);
        long long off = (long long)(at - file) + 40000;
        unsigned char x = file[off] ^ 0x01;
        REQUIRE(pwrite(fd, &x, 1, off) == 1);
        close(fd);
        c = tu_open_cfg(cpath, &cfg);
        uint8_t *buf = malloc(65536);
        REQUIRE(buf != NULL);
        memset(buf, 0xEE, 65536);
        size_t n = 0;
        CHECK_RC(c, streamdb_get_into(c, "/m/chunk", 8, 0, buf, 65536, &n), STREAMDB_ERR_CORRUPT);
        size_t changed = 0;
        for (size_t i = 0; i < 65536; i++) changed += buf[i] != 0xEE;
        CHECKF(changed == 0, "after a failed check, %zu bytes of the buffer were written", changed);
        CHECK_OK(c, streamdb_close(c));
        free(buf);
        free(file);
        free(want);
    }

    /* Pages without a frame in the log are read from the map even while the
     * log holds other pages; pages with one are read from their frame, for
     * each view the frame it sees. */
    {
        const char *lp = tu_path("mmap-log.db");
        streamdb_config lc;
        streamdb_config_init(&lc);
        lc.use_mmap = 1;
        lc.wal_autocheckpoint = 64u << 20;   /* no checkpoint in between */
        streamdb *l = tu_open_cfg(lp, &lc);
        REQUIRE_OK(l, streamdb_begin_transaction(l));
        for (int i = 0; i < 400; i++) {
            snprintf(p, sizeof p, "/l/%03d", i);
            CHECK_OK(l, tu_put(l, p, 1000u + (unsigned)i, 1000));
        }
        CHECK_OK(l, streamdb_commit_transaction(l));
        CHECK_OK(l, streamdb_flush(l));
        /* one small commit: a few pages in the log */
        CHECK_OK(l, tu_put(l, "/l/399", 5000, 1000));
        streamdb *old = NULL;
        REQUIRE_OK(l, streamdb_snapshot(l, &old));
        CHECK_OK(l, tu_put(l, "/l/399", 6000, 1000));
        CHECK_OK(l, tu_put(l, "/l/000", 6001, 1000));
        streamdb_stats st;
        CHECK_OK(l, streamdb_calculate_statistics(l, &st));
        CHECKF(st.wal_frames > 0, "the log should hold frames (%" PRIu64 ")", st.wal_frames);
        streamdb_cache_stats c0, c1;
        CHECK_OK(l, streamdb_get_cache_stats(l, &c0));
        for (int round = 0; round < 2; round++)
            for (int i = 1; i < 399; i++) {
                snprintf(p, sizeof p, "/l/%03d", i);
                tu_expect_doc(l, p, 0, 1000u + (unsigned)i, 1000);
                tu_expect_doc(old, p, 0, 1000u + (unsigned)i, 1000);
            }
        CHECK_OK(l, streamdb_get_cache_stats(l, &c1));
        /* the 398 documents span dozens of leaves; only the pages the two
         * commits wrote (a path, a leaf or two, their branches) have frames */
        CHECKF(c1.cached_pages - c0.cached_pages < 16,
               "pages without frames went through the cache: %" PRIu64 " -> %" PRIu64,
               c0.cached_pages, c1.cached_pages);
        tu_expect_doc(l, "/l/399", 0, 6000, 1000);
        tu_expect_doc(l, "/l/000", 0, 6001, 1000);
        tu_expect_doc(old, "/l/399", 0, 5000, 1000);
        tu_expect_doc(old, "/l/000", 0, 1000, 1000);
        CHECK_OK(old, streamdb_snapshot_close(old));
        /* a checkpoint copies the frames into the file and resets the log:
         * the same pages, now read from the map, hold the newest content */
        CHECK_OK(l, streamdb_flush(l));
        tu_expect_doc(l, "/l/399", 0, 6000, 1000);
        tu_expect_doc(l, "/l/000", 0, 6001, 1000);
        CHECK_OK(l, tu_put(l, "/l/399", 7000, 1000));
        tu_expect_doc(l, "/l/399", 0, 7000, 1000);
        tu_check_db(l);
        CHECK_OK(l, streamdb_close(l));
        /* recovery indexes the log before the map exists: its pages must
         * still be read from their frames */
        fflush(NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {   /* commits, then exits without closing: the log stays */
            streamdb *k = NULL;
            if (streamdb_open(lp, &lc, &k) || tu_put(k, "/l/001", 8000, 1000) ||
                tu_put(k, "/l/398", 8001, 1000))
                _exit(3);
            _exit(0);
        }
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        l = tu_open_cfg(lp, &lc);
        CHECK_OK(l, streamdb_calculate_statistics(l, &st));
        CHECKF(st.wal_frames > 0, "recovery should keep the log (%" PRIu64 " frames)", st.wal_frames);
        tu_expect_doc(l, "/l/001", 0, 8000, 1000);
        tu_expect_doc(l, "/l/398", 0, 8001, 1000);
        tu_expect_doc(l, "/l/399", 0, 7000, 1000);
        tu_expect_doc(l, "/l/002", 0, 1002, 1000);
        tu_check_db(l);
        CHECK_OK(l, streamdb_close(l));
    }
    for (int use_map = 1; use_map >= 0; use_map--) {
        /* Quick mode marks the mapped pages it only header-checked, so that
         * it reads them without a lock, and caches pages it only
         * header-checked; leaving quick mode clears the marks and the cache:
         * a page changed on disk meanwhile then fails its CRC. */
        const char *qp = tu_path(use_map ? "quick.db" : "quick-cache.db");
        streamdb_config qc;
        streamdb_config_init(&qc);
        qc.use_mmap = use_map;
        streamdb *q = tu_open_cfg(qp, &qc);
        REQUIRE_OK(q, tu_put(q, "/q/doc", 4242, 1000));
        CHECK_OK(q, streamdb_close(q));
        qc.quick_mode = 1;
        q = tu_open_cfg(qp, &qc);
        for (int i = 0; i < 3; i++)
            tu_expect_doc(q, "/q/doc", 0, 4242, 1000);
        uint64_t hits = 0;
        CHECK_OK(q, streamdb_get_stat(q, "hits", &hits));
        CHECKF(hits > 0, "quick mode: repeated reads of pages should be hits");
        uint32_t ps = streamdb_page_size(q);
        long long fsz = tu_file_size(qp);
        int fd = open(qp, O_RDWR);
        REQUIRE(fd >= 0);
        for (long long off = 2 * (long long)ps; off + ps <= fsz; off += ps) {
            unsigned char b;
            REQUIRE(pread(fd, &b, 1, off + ps / 2) == 1);
            b ^= 0x10;
            REQUIRE(pwrite(fd, &b, 1, off + ps / 2) == 1);
        }
        close(fd);
        CHECK_OK(q, streamdb_set_quick_mode(q, 0));
        void *d = NULL;
        size_t dl = 0;
        CHECK_RC(q, streamdb_get(q, "/q/doc", 0, &d, &dl), STREAMDB_ERR_CORRUPT);
        streamdb_free(d);
        CHECK_OK(q, streamdb_close(q));
    }
    free(buf);
    tu_finish();
}
