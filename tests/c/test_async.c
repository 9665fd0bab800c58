/*
 * test_async.c -- asynchronous reads and read-ahead (issue 3).
 *
 *  - futures: ready / wait / result, the result handed over once;
 *  - callbacks: each runs exactly once, with the data or an error;
 *  - a request sees the database as of its submission;
 *  - cancellation of queued requests; a running one cannot be cancelled;
 *  - close with requests queued and running: every callback still runs
 *    exactly once (data or CANCELLED), every future becomes ready;
 *  - read-ahead on a large document (STREAMDB_RA_MB, default 256 MiB):
 *    the stream's sequential reads find prefetched chunks (prefetch_hits).
 */
#include "testutil.h"

#include <pthread.h>

typedef struct cbstate {
    pthread_mutex_t mu;
    int calls, ok, cancelled, other;
    size_t expect_len;
    uint64_t seed;
} cbstate;

static void on_done(void *ctx, int rc, void *data, size_t len)
{
    cbstate *st = ctx;
    int good = rc == 0 && len == st->expect_len && tu_verify(data, len, st->seed, 0) < 0;
    streamdb_free(data);
    pthread_mutex_lock(&st->mu);
    st->calls++;
    if (good)
        st->ok++;
    else if (rc == STREAMDB_ERR_CANCELLED && !data)
        st->cancelled++;
    else
        st->other++;
    pthread_mutex_unlock(&st->mu);
}

static void test_futures(void)
{
    const char *p = tu_path("fut.sdb");
    streamdb *db = tu_open(p);
    size_t n = 3 * 1024 * 1024 + 7;
    CHECK_OK(db, tu_put(db, "/doc", 1, n));
    streamdb_future *f;
    REQUIRE_OK(db, streamdb_get_future(db, "/doc", 4, 0, &f));
    /* overwritten after submission: the request still sees version 1 */
    CHECK_OK(db, tu_put(db, "/doc", 2, 100));
    CHECK_OK(db, streamdb_future_wait(f, -1));
    CHECK(streamdb_future_ready(f));
    void *d;
    size_t dl;
    const char *msg;
    CHECK_OK(db, streamdb_future_result(f, &d, &dl, &msg));
    CHECK(dl == n && tu_verify(d, dl, 1, 0) < 0);
    streamdb_free(d);
    CHECK_RC(db, streamdb_future_result(f, &d, &dl, &msg), STREAMDB_ERR_INVALID);
    streamdb_future_free(f);

    /* errors arrive through the future */
    REQUIRE_OK(db, streamdb_get_future(db, "/missing", 8, 0, &f));
    CHECK_OK(db, streamdb_future_wait(f, 10000));
    CHECK(streamdb_future_result(f, &d, &dl, &msg) == STREAMDB_ERR_NOT_FOUND);
    CHECK(msg && strstr(msg, "/missing"));
    streamdb_future_free(f);
    /* bad input is refused at submission */
    CHECK_RC(db, streamdb_get_future(db, "nope", 4, 0, &f), STREAMDB_ERR_INVALID);
    CHECK_RC(db, streamdb_get_async(db, "/doc", 4, 0, NULL, NULL), STREAMDB_ERR_INVALID);

    /* callbacks */
    cbstate st = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, 100, 2};
    for (int i = 0; i < 50; i++)
        CHECK_OK(db, streamdb_get_async(db, "/doc", 4, 0, on_done, &st));
    uint64_t pending = 1;
    for (int i = 0; i < 2000 && pending; i++) {
        streamdb_get_stat(db, "async_pending", &pending);
        usleep(1000);
    }
    usleep(10000);
    pthread_mutex_lock(&st.mu);
    CHECK(st.calls == 50 && st.ok == 50);
    pthread_mutex_unlock(&st.mu);
    CHECK_OK(db, streamdb_close(db));
}

static void test_cancel_and_close(void)
{
    const char *p = tu_path("cancel.sdb");
    streamdb_config c;
    streamdb_config_init(&c);
    c.async_workers = 1;
    streamdb *db = tu_open_cfg(p, &c);
    size_t n = 8 * 1024 * 1024;
    CHECK_OK(db, tu_put(db, "/big", 3, n));
    enum { N = 40 };
    streamdb_future *fs[N];
    for (int i = 0; i < N; i++)
        REQUIRE_OK(db, streamdb_get_future(db, "/big", 4, 0, &fs[i]));
    int cancelled = 0;
    for (int i = N - 1; i >= N / 2; i--)
        if (streamdb_future_cancel(fs[i]) == 0)
            cancelled++;
    CHECK(cancelled > 0);
    for (int i = N - 1; i >= N / 2; i--) {
        if (!streamdb_future_ready(fs[i]))
            continue;
        void *d;
        size_t dl;
        int rc = streamdb_future_result(fs[i], &d, &dl, NULL);
        CHECK(rc == STREAMDB_ERR_CANCELLED || (rc == 0 && dl == n));
        if (rc == 0)
            streamdb_free(d);
    }
    /* a finished request cannot be cancelled */
    CHECK_OK(db, streamdb_future_wait(fs[0], -1));
    CHECK_RC(db, streamdb_future_cancel(fs[0]), STREAMDB_ERR_BUSY);

    /* close with callbacks queued: each runs exactly once */
    cbstate st = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, n, 3};
    for (int i = 0; i < 30; i++)
        CHECK_OK(db, streamdb_get_async(db, "/big", 4, 0, on_done, &st));
    CHECK_OK(db, streamdb_close(db));
    pthread_mutex_lock(&st.mu);
    CHECKF(st.calls == 30 && st.ok + st.cancelled == 30 && st.other == 0,
           "calls %d ok %d cancelled %d other %d", st.calls, st.ok, st.cancelled, st.other);
    printf("close with 30 queued reads: %d completed, %d cancelled\n", st.ok, st.cancelled);
    pthread_mutex_unlock(&st.mu);
    /* every future is ready after close, and freeing works after close */
    for (int i = 0; i < N; i++) {
        CHECK(streamdb_future_ready(fs[i]));
        streamdb_future_free(fs[i]);
    }
}

static void test_readahead(void)
{
    const char *p = tu_path("ra.sdb");
    streamdb *db = tu_open(p);
    size_t mb = (size_t)tu_env_long("STREAMDB_RA_MB", 256);
    size_t n = mb * 1024 * 1024;
    streamdb_writer *w;
    REQUIRE_OK(db, streamdb_writer_begin(db, "/video", 6, &w));
    uint8_t *buf = malloc(1 << 20);
    for (size_t off = 0; off < n; off += 1 << 20) {
        tu_fill(buf, 1 << 20, 9, off);
        REQUIRE_OK(db, streamdb_writer_write(w, buf, 1 << 20));
    }
    REQUIRE_OK(db, streamdb_writer_commit(w, NULL));
    uint64_t before = 0, after = 0;
    CHECK_OK(db, streamdb_get_stat(db, "prefetch_hits", &before));
    streamdb_stream *s;
    REQUIRE_OK(db, streamdb_stream_open(db, "/video", 6, 0, &s));
    size_t off = 0, got;
    long long bad = -1;
    do {
        REQUIRE_OK(db, streamdb_stream_read(s, buf, 65536, &got));
        if (bad < 0 && got && tu_verify(buf, got, 9, off) >= 0)
            bad = (long long)off;
        off += got;
    } while (got);
    streamdb_stream_close(s);
    CHECK(off == n && bad < 0);
    CHECK_OK(db, streamdb_get_stat(db, "prefetch_hits", &after));
    size_t chunks = n / 65536;
    printf("read-ahead: %zu MiB in 64 KiB reads, %zu chunks, %llu prefetch hits\n", mb, chunks,
           (unsigned long long)(after - before));
    /* all but the first two chunks can come from read-ahead */
    CHECKF(after - before >= chunks / 2, "only %llu prefetch hits",
           (unsigned long long)(after - before));
    streamdb_cache_stats cs;
    CHECK_OK(db, streamdb_get_cache_stats(db, &cs));
    CHECK(cs.prefetch_hits == after);

    /* random access does not trigger read-ahead */
    REQUIRE_OK(db, streamdb_stream_open(db, "/video", 6, 0, &s));
    for (int i = 0; i < 20; i++) {
        uint64_t pos = ((uint64_t)(i * 7919) % chunks) * 65536 + 123;
        CHECK_OK(db, streamdb_stream_seek(s, (int64_t)pos, 0, NULL));
        CHECK_OK(db, streamdb_stream_read(s, buf, 1000, &got));
        CHECK(got == 1000 && tu_verify(buf, got, 9, pos) < 0);
    }
    streamdb_stream_close(s);
    CHECK_OK(db, streamdb_get_stat(db, "prefetch_hits", &before));
    CHECK(before == after);
    free(buf);
    CHECK_OK(db, streamdb_close(db));
}

int main(void)
{
    tu_init("async");
    test_futures();
    test_cancel_and_close();
    test_readahead();
    tu_finish();
}
