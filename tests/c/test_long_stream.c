/*
 * test_long_stream.c -- a stream opened on a 32 MiB document
 * (STREAMDB_LONG_STREAM_MB) keeps reading the original bytes while another
 * thread overwrites the document three times, deletes it and writes it again,
 * with versions_to_keep = 1 so nothing but the stream keeps the old pages
 * alive.  After the stream closes, the pages come back: further overwrites do
 * not grow the file without bound.
 */
#include <pthread.h>

#include "testutil.h"

static streamdb *g_db;
static size_t g_len;
static atomic_int progress; /* operations the writer finished */

/* seed's document of len bytes through a streaming writer, 1 MiB a write */
static int put_streaming(streamdb *db, const char *path, uint64_t seed, size_t len) {
    return tu_put_pieces(db, path, seed, len, 1u << 20);
}

static void *overwriter(void *arg) {
    (void)arg;
    for (uint64_t seed = 2; seed <= 4; seed++) {
        int rc = put_streaming(g_db, "/big/doc", seed, g_len);
        if (rc) TU_FAIL("overwrite %" PRIu64 " = %d: %s", seed, rc, tu_errmsg(g_db));
        atomic_fetch_add(&progress, 1);
    }
    int rc = streamdb_delete(g_db, "/big/doc");
    if (rc) TU_FAIL("delete = %d: %s", rc, tu_errmsg(g_db));
    /* Other documents that want the freed pages. */
    rc = put_streaming(g_db, "/big/other", 6, g_len);
    if (rc) TU_FAIL("other = %d: %s", rc, tu_errmsg(g_db));
    rc = put_streaming(g_db, "/big/doc", 5, g_len / 2);
    if (rc) TU_FAIL("rewrite = %d: %s", rc, tu_errmsg(g_db));
    atomic_fetch_add(&progress, 1);
    return NULL;
}

int main(void) {
    tu_init("long_stream");
    g_len = (size_t)tu_env_long("STREAMDB_LONG_STREAM_MB", 32) << 20;
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.versions_to_keep = 1;
    const char *dbpath = tu_path("ls.db");
    streamdb *db = g_db = tu_open_cfg(dbpath, &cfg);
    REQUIRE_OK(db, put_streaming(db, "/big/doc", 1, g_len));

    streamdb_stream *s = NULL;
    REQUIRE_OK(db, streamdb_stream_open(db, "/big/doc", 8, 0, &s));
    size_t piece = 256u << 10;
    unsigned char *buf = malloc(piece);
    uint64_t pos = 0;
    int bad = 0;
    pthread_t t;
    int started = 0;
    while (pos < g_len && !bad) {
        size_t n = 0;
        int rc = streamdb_stream_read(s, buf, piece, &n);
        if (rc || n == 0) {
            TU_FAIL("stream_read at %" PRIu64 " = %d (%s): %s", pos, rc, streamdb_strerror(rc),
                    tu_errmsg(db));
            break;
        }
        long long b = tu_verify(buf, n, 1, pos);
        if (b >= 0) {
            TU_FAIL("stream byte %" PRIu64 " is not the original (writer progress %d)",
                    pos + (uint64_t)b, atomic_load(&progress));
            bad = 1;
        }
        pos += n;
        if (!started && pos >= g_len / 8) {
            pthread_create(&t, NULL, overwriter, NULL);
            started = 1;
        }
        /* Let the writer get ahead, then finish reading after it is done. */
        if (started && pos >= g_len / 2 && pos < g_len / 2 + piece) {
            pthread_join(t, NULL);
            started = 2;
        }
        /* Seek back now and then and re-read. */
        if (pos % (4u << 20) == 0) {
            uint64_t p2;
            CHECK_OK(db, streamdb_stream_seek(s, -(int64_t)n, 1, &p2));
            CHECK_OK(db, streamdb_stream_read(s, buf, n, &n));
            CHECK(tu_verify(buf, n, 1, p2) < 0);
        }
    }
    if (started == 1) pthread_join(t, NULL);
    CHECK(pos == g_len);
    CHECK(atomic_load(&progress) == 4);
    uint64_t size = 0;
    CHECK_OK(db, streamdb_stream_size(s, &size));
    CHECK(size == g_len);
    streamdb_stats st;
    CHECK_OK(db, streamdb_calculate_statistics(db, &st));
    CHECK(st.live_readers >= 1);
    streamdb_stream_close(s);
    free(buf);

    tu_expect_doc(db, "/big/doc", 0, 5, g_len / 2);
    tu_expect_doc(db, "/big/other", 0, 6, g_len);
    tu_check_db(db);
    CHECK_OK(db, streamdb_calculate_statistics(db, &st));
    CHECK(st.live_readers == 0);

    /* The stream's pages are free now: three more overwrites fit in what
     * the file already has plus a little. */
    CHECK_OK(db, streamdb_flush(db));
    long long before = tu_file_size(dbpath);
    for (uint64_t seed = 7; seed < 10; seed++) CHECK_OK(db, put_streaming(db, "/big/other", seed, g_len));
    CHECK_OK(db, streamdb_flush(db));
    long long after = tu_file_size(dbpath);
    CHECKF(after <= before + (long long)g_len / 4, "file grew %lld -> %lld", before, after);
    tu_expect_doc(db, "/big/other", 0, 9, g_len);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    tu_finish();
}
