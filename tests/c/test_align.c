/*
 * test_align.c -- where a large document's chunks land, and its content CRC.
 *
 * 1. Placement.  A document big enough to bypass the log is written past the
 *    end of the file in 64 KiB chunks, and each chunk starts on a 64 KiB
 *    boundary of the file even when the file ended elsewhere (page sizes 4,
 *    8, 16 and 64 KiB).  The test finds every chunk's bytes in the file
 *    itself.  The pages skipped to get there go to the free list: the
 *    integrity check, which counts every page as used or free exactly once,
 *    passes; small documents written next reuse what is left of them; an
 *    aborted big write leaves the database as it was, before and after a
 *    reopen.  Only runs of whole chunks are aligned: a compressed document,
 *    small documents stored direct late in a big transaction, and documents
 *    of a chunk and a tail keep the file within a few pages of its content.
 * 2. The content CRC, taken chunk by chunk as the chunks are stored (a full
 *    raw chunk's CRC combined, the others continued over their bytes), for
 *    sizes around the inline limit, the 64 KiB chunk and the five-chunk
 *    direct threshold, written in one call and in odd pieces, raw, with
 *    snappy and with AES-GCM: every document reads back whole and the check
 *    (which recomputes each content CRC from the bytes) passes, also after a
 *    reopen.
 */
#include "testutil.h"

#define CHUNK 65536u

static streamdb *open_ps(const char *path, uint32_t ps, int codec) {
    streamdb_config c;
    streamdb_config_init(&c);
    c.page_size = ps;
    if (codec == 1) c.use_compression = 1;
    if (codec == 2) streamdb_config_set_key(&c, "streamdb test key, 32 bytes ....", 32);
    return tu_open_cfg(path, &c);
}

static streamdb_stats stats(streamdb *db) {
    streamdb_stats st;
    memset(&st, 0, sizeof st);
    int rc = streamdb_calculate_statistics(db, &st);
    if (rc) TU_FAIL("calculate_statistics = %d (%s)", rc, streamdb_strerror(rc));
    return st;
}

static void check_db(streamdb *db, const char *what) {
    int rc = streamdb_check(db);
    CHECKF(rc == 0, "%s: check = %d (%s): %s", what, rc, streamdb_strerror(rc), tu_errmsg(db));
}

/* The file offset, a multiple of step, where want (n bytes) starts: -1 if none. */
static long long find_in_file(const char *path, const void *want, size_t n, size_t step) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    unsigned char *buf = malloc(n);
    long long at = -1;
    for (long long off = 0; buf; off += (long long)step) {
        if (fseeko(f, off, SEEK_SET) || fread(buf, 1, n, f) != n) break;
        if (!memcmp(buf, want, n)) { at = off; break; }
    }
    free(buf);
    fclose(f);
    return at;
}

static void placement(uint32_t ps) {
    const char *path = tu_path("align-%u.db", ps);
    streamdb *db = open_ps(path, ps, 0);
    uint32_t align = ps < CHUNK ? CHUNK / ps : 1;
    /* small documents until the file ends off a chunk boundary */
    char p[64];
    int nsmall = 0;
    for (; nsmall < 64; nsmall++) {
        snprintf(p, sizeof p, "/small/%d", nsmall);
        REQUIRE_OK(db, tu_put(db, p, 100u + (unsigned)nsmall, 3000));
        REQUIRE_OK(db, streamdb_flush(db));
        if (align > 1 && stats(db).total_pages % align) break;
    }
    streamdb_stats s0 = stats(db);
    if (align > 1)
        CHECKF(s0.total_pages % align != 0, "ps %u: file still on a boundary after %d docs", ps,
               nsmall);

    /* a big document: 32 full chunks and a tail of 3 bytes */
    const size_t big = 32 * (size_t)CHUNK + 3;
    const uint64_t seed = 4242 + ps;
    REQUIRE_OK(db, tu_put(db, "/big", seed, big));
    REQUIRE_OK(db, streamdb_flush(db));
    tu_expect_doc(db, "/big", 0, seed, big);
    check_db(db, "after the big write");
    /* the pages skipped are free (the commit's own tree pages may have
     * taken some already): the check above counted each one */
    streamdb_stats s1 = stats(db);
    CHECKF(s1.total_pages >= s0.total_pages + 32 * (CHUNK / ps) + 1, "ps %u: %" PRIu64 " -> %" PRIu64
           " pages", ps, s0.total_pages, s1.total_pages);

    /* every full chunk at a 64 KiB boundary of the file */
    unsigned char head[64];
    int found = 0, aligned = 0;
    for (uint32_t k = 0; k < 32; k++) {
        tu_fill(head, sizeof head, seed, (uint64_t)k * CHUNK);
        long long at = find_in_file(path, head, sizeof head, ps);
        if (at < 0) continue;
        found++;
        if (at % CHUNK == 0) aligned++;
        else if (aligned + 1 == found)
            TU_FAIL("ps %u: chunk %u at offset %lld, not on a 64 KiB boundary", ps, k, at);
    }
    CHECKF(found == 32, "ps %u: %d of 32 chunks found in the file", ps, found);
    CHECKF(aligned == found, "ps %u: %d of %d chunks on a 64 KiB boundary", ps, aligned, found);

    /* the skipped pages are reused by what comes next */
    for (int i = 0; i < 40; i++) {
        snprintf(p, sizeof p, "/after/%d", i);
        REQUIRE_OK(db, tu_put(db, p, 500u + (unsigned)i, 3000));
    }
    REQUIRE_OK(db, streamdb_flush(db));
    streamdb_stats s2 = stats(db);
    if (s1.free_pages)
        CHECKF(s2.free_pages < s1.free_pages, "ps %u: free pages not reused (%" PRIu64 " -> %" PRIu64
               ")", ps, s1.free_pages, s2.free_pages);
    check_db(db, "after the small writes");

    /* a big write aborted after it went direct leaves no trace */
    streamdb_writer *w;
    REQUIRE_OK(db, streamdb_writer_begin(db, "/aborted", 8, &w));
    void *piece = tu_make(100000, 77);
    for (int i = 0; i < 12; i++) REQUIRE_OK(db, streamdb_writer_write(w, piece, 100000));
    free(piece);
    streamdb_writer_abort(w);
    streamdb_stats s3 = stats(db);
    CHECKF(s3.total_pages == s2.total_pages && s3.free_pages == s2.free_pages,
           "ps %u: abort changed the pages: %" PRIu64 "/%" PRIu64 " -> %" PRIu64 "/%" PRIu64, ps,
           s2.total_pages, s2.free_pages, s3.total_pages, s3.free_pages);
    CHECK(streamdb_get(db, "/aborted", 0, &(void *){NULL}, &(size_t){0}) == STREAMDB_ERR_NOT_FOUND);
    check_db(db, "after the abort");
    /* and a big write after the abort lands on a boundary too */
    REQUIRE_OK(db, tu_put(db, "/big2", seed + 1, 8 * (size_t)CHUNK));
    REQUIRE_OK(db, streamdb_flush(db));
    tu_fill(head, sizeof head, seed + 1, 0);
    long long at = find_in_file(path, head, sizeof head, ps);
    CHECKF(at >= 0 && at % CHUNK == 0, "ps %u: /big2 at offset %lld", ps, at);
    REQUIRE_OK(db, streamdb_close(db));

    db = open_ps(path, ps, 0);
    check_db(db, "after the reopen");
    tu_expect_doc(db, "/big", 0, seed, big);
    tu_expect_doc(db, "/big2", 0, seed + 1, 8 * (size_t)CHUNK);
    for (int i = 0; i <= nsmall && i < 64; i++) {
        snprintf(p, sizeof p, "/small/%d", i);
        tu_expect_doc(db, p, 0, 100u + (unsigned)i, 3000);
    }
    for (int i = 0; i < 40; i++) {
        snprintf(p, sizeof p, "/after/%d", i);
        tu_expect_doc(db, p, 0, 500u + (unsigned)i, 3000);
    }
    REQUIRE_OK(db, streamdb_close(db));
}

/* Only whole-chunk runs are aligned: short direct runs (compressed chunks,
 * tails, small documents stored direct late in a big transaction) would each
 * leave a gap, and the gaps the whole chunks leave are filled by the short
 * runs that follow.  Each workload's file stays within a few pages of what
 * it holds. */
static void space(uint32_t ps) {
    const char *path = tu_path("space-%u.db", ps);
    streamdb_config c;
    streamdb_config_init(&c);
    c.page_size = ps;
    int snappy = (streamdb_features() & STREAMDB_FEATURE_COMPRESSION) != 0;
    c.use_compression = snappy;
    streamdb *db = tu_open_cfg(path, &c);
    const uint64_t slack = 4 * (CHUNK / ps) + 16;
    char p[64];

    /* a compressible 16 MiB document: short compressed chunks, direct */
    if (snappy) {
        size_t n = 16u << 20;
        unsigned char *buf = malloc(n);
        for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)((i / 512) % 7);
        REQUIRE_OK(db, streamdb_write_document(db, "/squeeze", buf, n, NULL));
        REQUIRE_OK(db, streamdb_flush(db));
        streamdb_stats st = stats(db);
        CHECKF(st.free_pages <= slack, "ps %u, compressed: %" PRIu64 " of %" PRIu64 " pages free",
               ps, st.free_pages, st.total_pages);
        void *got = NULL;
        size_t gl = 0;
        CHECK_OK(db, streamdb_get(db, "/squeeze", 0, &got, &gl));
        CHECK(gl == n && got && !memcmp(got, buf, n));
        streamdb_free(got);
        free(buf);
    }
    REQUIRE_OK(db, streamdb_close(db));
    c.use_compression = 0;
    db = tu_open_cfg(path, &c);

    /* one transaction: 1.8 MB of big documents, then 2,000 small chunked
     * ones, which go direct once the transaction has logged a megabyte */
    streamdb_stats s0 = stats(db);
    REQUIRE_OK(db, streamdb_begin_transaction(db));
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "/t/big%d", i);
        REQUIRE_OK(db, tu_put(db, p, 700u + (unsigned)i, 300000));
    }
    for (int i = 0; i < 2000; i++) {
        snprintf(p, sizeof p, "/t/small%04d", i);
        REQUIRE_OK(db, tu_put(db, p, 1000u + (unsigned)i, 3000));
    }
    REQUIRE_OK(db, streamdb_commit_transaction(db));
    REQUIRE_OK(db, streamdb_flush(db));
    streamdb_stats s1 = stats(db);
    uint64_t need = 6 * ((300000 + ps - 1) / ps) + 2000 * ((3000 + ps - 1) / ps);
    CHECKF(s1.total_pages - s0.total_pages <= need + need / 8 + slack,
           "ps %u, small direct documents: %" PRIu64 " pages for %" PRIu64 " of content", ps,
           s1.total_pages - s0.total_pages, need);

    /* documents of one chunk and 3 bytes, direct in a big transaction: the
     * whole chunks aligned, the tails in the gaps */
    streamdb_stats s2 = stats(db);
    REQUIRE_OK(db, streamdb_begin_transaction(db));
    for (int i = 0; i < 400; i++) {
        snprintf(p, sizeof p, "/u/doc%03d", i);
        REQUIRE_OK(db, tu_put(db, p, 3000u + (unsigned)i, CHUNK + 3));
    }
    REQUIRE_OK(db, streamdb_commit_transaction(db));
    REQUIRE_OK(db, streamdb_flush(db));
    streamdb_stats s3 = stats(db);
    need = 400 * (CHUNK / ps + 1);
    CHECKF(s3.total_pages - s2.total_pages <= need + need / 8 + slack,
           "ps %u, chunk+3 documents: %" PRIu64 " pages for %" PRIu64 " of content", ps,
           s3.total_pages - s2.total_pages, need);
    unsigned char head[64];
    int aligned = 0;
    for (int i = 300; i < 400; i += 10) {
        tu_fill(head, sizeof head, 3000u + (unsigned)i, 0);
        long long at = find_in_file(path, head, sizeof head, ps);
        aligned += at >= 0 && at % CHUNK == 0;
    }
    CHECKF(aligned == 10, "ps %u: %d of 10 late whole chunks on a 64 KiB boundary", ps, aligned);
    check_db(db, "space");
    for (int i = 0; i < 400; i += 37) {
        snprintf(p, sizeof p, "/u/doc%03d", i);
        tu_expect_doc(db, p, 0, 3000u + (unsigned)i, CHUNK + 3);
    }
    for (int i = 0; i < 2000; i += 99) {
        snprintf(p, sizeof p, "/t/small%04d", i);
        tu_expect_doc(db, p, 0, 1000u + (unsigned)i, 3000);
    }
    REQUIRE_OK(db, streamdb_close(db));
}

static void content_crc(int codec) {
    static const char *const names[] = {"raw", "snappy", "aes"};
    const char *path = tu_path("crc-%d.db", codec);
    streamdb *db = open_ps(path, 8192, codec);
    const size_t sizes[] = {0, 1, 2047, 2048, 2049, 65535, 65536, 65537, 131072,
                            4 * 65536, 5 * 65536 - 1, 5 * 65536, 5 * 65536 + 5, 7 * 65536 + 12345};
    const size_t pieces[] = {0, 1000, 65536, 70001};
    const size_t ns = sizeof sizes / sizeof *sizes, np = sizeof pieces / sizeof *pieces;
    char p[64];
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < np; j++) {
            if (pieces[j] == 1000 && sizes[i] > 200000) continue;   /* keep it quick */
            snprintf(p, sizeof p, "/crc/%zu/%zu", sizes[i], pieces[j]);
            int rc = tu_put_pieces(db, p, i * 16 + j, sizes[i], pieces[j]);
            CHECKF(rc == 0, "%s: write %s = %d (%s)", names[codec], p, rc, streamdb_strerror(rc));
        }
    /* the same sizes in one transaction, where later documents go direct
     * once the transaction has logged a megabyte */
    REQUIRE_OK(db, streamdb_begin_transaction(db));
    for (size_t i = 0; i < ns; i++) {
        snprintf(p, sizeof p, "/txn/%zu", sizes[i]);
        REQUIRE_OK(db, tu_put_pieces(db, p, 9000 + i, sizes[i], 0));
    }
    REQUIRE_OK(db, streamdb_commit_transaction(db));
    check_db(db, names[codec]);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < ns; i++) {
            for (size_t j = 0; j < np; j++) {
                if (pieces[j] == 1000 && sizes[i] > 200000) continue;
                snprintf(p, sizeof p, "/crc/%zu/%zu", sizes[i], pieces[j]);
                tu_expect_doc(db, p, 0, i * 16 + j, sizes[i]);
            }
            snprintf(p, sizeof p, "/txn/%zu", sizes[i]);
            tu_expect_doc(db, p, 0, 9000 + i, sizes[i]);
        }
        if (round == 0) {
            REQUIRE_OK(db, streamdb_close(db));
            db = open_ps(path, 8192, codec);
            check_db(db, "after the reopen");
        }
    }
    REQUIRE_OK(db, streamdb_close(db));
}

int main(void) {
    tu_init("align");
    const uint32_t ps[] = {4096, 8192, 16384, 65536};
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++) placement(ps[i]);
    for (size_t i = 0; i < sizeof ps / sizeof *ps; i++) space(ps[i]);
    for (int codec = 0; codec < 3; codec++) {
        if (codec && !(streamdb_features() & (codec == 1 ? STREAMDB_FEATURE_COMPRESSION
                                                         : STREAMDB_FEATURE_ENCRYPTION))) {
            printf("skipping %s: not built in\n", codec == 1 ? "snappy" : "aes");
            continue;
        }
        content_crc(codec);
    }
    tu_finish();
    return 0;
}
