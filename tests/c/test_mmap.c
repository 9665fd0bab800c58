/*
 * test_mmap.c -- reads through mmap (use_mmap = 1): every size and version
 * reads back the same as through pread, across writes that grow the file,
 * checkpoints and a reopen; a stream and a snapshot keep reading their
 * document after it is deleted and the file is compacted (a shrink under a
 * mapping must never turn into SIGBUS or wrong bytes); flipped bits are still
 * caught by the CRCs.
 */
#include "testutil.h"

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
    free(buf);
    tu_finish();
}
