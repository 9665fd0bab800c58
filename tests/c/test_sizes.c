/*
 * test_sizes.c -- documents of sizes around the inline threshold, page sizes
 * and 64 KiB chunk boundaries: 0, 1, 1000, 2048, 2049, 8191, 8192, 65535,
 * 65536, 65537, 1 MiB + 3 and 20 MiB (STREAMDB_BIG_MB overrides the last).
 * Each is written whole and through the streaming writer in odd pieces, read
 * back whole, by ranges that straddle every boundary, and through a stream;
 * then again after a reopen.  Page sizes 8192 (all sizes), 4096 and 65536
 * (all but the largest).
 */
#include "testutil.h"

static size_t sizes[] = {0, 1, 1000, 2048, 2049, 8191, 8192, 65535, 65536, 65537,
                         (1u << 20) + 3, 20u << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void check_ranges(streamdb *db, const char *path, uint64_t seed, size_t len) {
    static const int64_t edges[] = {0, 1, 4096, 8192, 65536, 131072, 1 << 20};
    unsigned char buf[300];
    for (size_t e = 0; e < sizeof edges / sizeof edges[0]; e++) {
        for (int64_t delta = -150; delta <= 150; delta += 150) {
            int64_t off = edges[e] + delta;
            if (off < 0 || (uint64_t)off > len) continue;
            size_t n = 9999;
            int rc = streamdb_read(db, path, 0, (uint64_t)off, buf, sizeof buf, &n);
            CHECK_RC(db, rc, 0);
            if (rc) return;
            size_t want = len - (size_t)off < sizeof buf ? len - (size_t)off : sizeof buf;
            CHECKF(n == want, "%s len %zu read at %" PRId64 ": %zu bytes, wanted %zu", path, len,
                   off, n, want);
            if (n == want)
                CHECKF(tu_verify(buf, n, seed, (uint64_t)off) < 0, "%s len %zu read at %" PRId64,
                       path, len, off);
        }
    }
    /* The last byte and a read of the whole tail. */
    if (len > 0) {
        size_t n = 0;
        CHECK_OK(db, streamdb_read(db, path, 0, len - 1, buf, 1, &n));
        CHECK(n == 1 && tu_verify(buf, 1, seed, len - 1) < 0);
    }
}

static void check_stream(streamdb *db, const char *path, uint64_t seed, size_t len) {
    streamdb_stream *s = NULL;
    int rc = streamdb_stream_open(db, path, strlen(path), 0, &s);
    CHECK_RC(db, rc, 0);
    if (rc) return;
    uint64_t sz = 0;
    CHECK_OK(db, streamdb_stream_size(s, &sz));
    CHECK(sz == len);
    size_t piece = 40000;
    unsigned char *buf = malloc(piece);
    uint64_t pos = 0;
    for (;;) {
        size_t n = 0;
        rc = streamdb_stream_read(s, buf, piece, &n);
        CHECK_RC(db, rc, 0);
        if (rc || n == 0) break;
        if (tu_verify(buf, n, seed, pos) >= 0) {
            TU_FAIL("%s len %zu: stream bytes wrong near %" PRIu64, path, len, pos);
            break;
        }
        pos += n;
    }
    CHECKF(pos == len, "%s: stream gave %" PRIu64 " of %zu bytes", path, pos, len);
    /* Seek to near the end and read across the last chunk edge. */
    if (len > 70000) {
        uint64_t p2 = 0;
        CHECK_OK(db, streamdb_stream_seek(s, -70000, 2, &p2));
        CHECK(p2 == len - 70000);
        size_t n = 0;
        CHECK_OK(db, streamdb_stream_read(s, buf, piece, &n));
        CHECK(n == piece && tu_verify(buf, n, seed, len - 70000) < 0);
    }
    free(buf);
    streamdb_stream_close(s);
}

static int write_streaming(streamdb *db, const char *path, uint64_t seed, size_t len) {
    streamdb_writer *w = NULL;
    int rc = streamdb_writer_begin(db, path, strlen(path), &w);
    if (rc) return rc;
    static const size_t pieces[] = {1000, 65537, 1, 8191, 300000};
    size_t maxp = 300000, off = 0, k = 0;
    unsigned char *buf = malloc(maxp);
    while (off < len) {
        size_t n = pieces[k++ % 5];
        if (n > len - off) n = len - off;
        tu_fill(buf, n, seed, off);
        rc = streamdb_writer_write(w, buf, n);
        if (rc) {
            free(buf);
            streamdb_writer_abort(w);
            return rc;
        }
        off += n;
    }
    free(buf);
    return streamdb_writer_commit(w, NULL);
}

static void run(uint32_t page_size, size_t nsizes) {
    char name[64];
    snprintf(name, sizeof name, "sizes-%u.db", page_size);
    const char *dbpath = tu_path("%s", name);
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.page_size = page_size;
    streamdb *db = tu_open_cfg(dbpath, &cfg);
    char path[64];
    for (size_t i = 0; i < nsizes; i++) {
        size_t len = sizes[i];
        uint64_t seed = 1000 + i, seed2 = 5000 + i;
        snprintf(path, sizeof path, "/whole/%zu", len);
        CHECK_OK(db, tu_put(db, path, seed, len));
        tu_expect_doc(db, path, 0, seed, len);
        check_ranges(db, path, seed, len);
        check_stream(db, path, seed, len);
        streamdb_doc_info info;
        CHECK_OK(db, streamdb_stat(db, path, strlen(path), 0, &info));
        CHECK(info.size == len);
        snprintf(path, sizeof path, "/streamed/%zu", len);
        CHECK_OK(db, write_streaming(db, path, seed2, len));
        tu_expect_doc(db, path, 0, seed2, len);
        check_ranges(db, path, seed2, len);
    }
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));

    db = tu_open_cfg(dbpath, &cfg);
    for (size_t i = 0; i < nsizes; i++) {
        size_t len = sizes[i];
        snprintf(path, sizeof path, "/whole/%zu", len);
        tu_expect_doc(db, path, 0, 1000 + i, len);
        check_ranges(db, path, 1000 + i, len);
        snprintf(path, sizeof path, "/streamed/%zu", len);
        check_stream(db, path, 5000 + i, len);
    }
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    printf("page size %u: %zu sizes ok\n", page_size, nsizes);
}

int main(void) {
    tu_init("sizes");
    sizes[NSIZES - 1] = (size_t)tu_env_long("STREAMDB_BIG_MB", 20) << 20;
    run(8192, NSIZES);
    run(4096, NSIZES - 1);
    run(65536, NSIZES - 1);
    tu_finish();
}
