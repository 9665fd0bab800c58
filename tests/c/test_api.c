/*
 * test_api.c -- the basic API: write, get, read ranges, streams (seek, tell,
 * size, read), stat, versions (with versions_to_keep 2 and 3), the empty
 * document, multi-path documents, statistics, and close refusing while a
 * stream, cursor, writer or snapshot is open.
 */
#include "testutil.h"

static void test_write_get_read(streamdb *db) {
    const size_t len = 300000;
    uint8_t id[16], id2[16];
    void *b = tu_make(len, 11);
    CHECK_OK(db, streamdb_write_document(db, "/basic/doc", b, len, id));
    free(b);
    tu_expect_doc(db, "/basic/doc", 0, 11, len);

    /* The id is a version-7 UUID and stable across versions. */
    CHECKF((id[6] >> 4) == 7, "id version nibble %d", id[6] >> 4);
    CHECKF((id[8] & 0xc0) == 0x80, "id variant bits %02x", id[8]);
    CHECK_OK(db, streamdb_get_id_by_path(db, "/basic/doc", 10, id2));
    CHECK(memcmp(id, id2, 16) == 0);

    /* Byte ranges: start, middle across a 64 KiB chunk edge, the tail, past
     * the end and at the end. */
    static const uint64_t offs[] = {0, 1, 65535, 65536 - 100, 131072, 299990, 300000};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        unsigned char buf[200];
        size_t n = 12345;
        CHECK_OK(db, streamdb_read(db, "/basic/doc", 0, offs[i], buf, sizeof buf, &n));
        size_t want = offs[i] >= len ? 0 : (len - offs[i] < 200 ? len - offs[i] : 200);
        CHECKF(n == want, "read at %" PRIu64 ": %zu bytes, wanted %zu", offs[i], n, want);
        if (n == want) CHECKF(tu_verify(buf, n, 11, offs[i]) < 0, "read at %" PRIu64, offs[i]);
    }
    /* read_n with an explicit length (path not NUL-terminated). */
    {
        char p[] = "/basic/docXYZ";
        unsigned char buf[64];
        size_t n = 0;
        CHECK_OK(db, streamdb_read_n(db, p, 10, 0, 1000, buf, sizeof buf, &n));
        CHECK(n == 64 && tu_verify(buf, 64, 11, 1000) < 0);
    }

    /* Stream: size, read in odd pieces, seek every way, tell. */
    streamdb_stream *s = NULL;
    REQUIRE_OK(db, streamdb_stream_open(db, "/basic/doc", 10, 0, &s));
    uint64_t sz = 0, pos = 0;
    CHECK_OK(db, streamdb_stream_size(s, &sz));
    CHECK(sz == len);
    unsigned char *all = malloc(len);
    size_t got = 0;
    for (;;) {
        size_t n = 0;
        int rc = streamdb_stream_read(s, all + got, got + 7777 <= len ? 7777 : len - got + 10, &n);
        CHECK_RC(db, rc, 0);
        if (rc || n == 0) break;
        got += n;
        if (got > len) break;
    }
    CHECK(got == len);
    if (got == len) CHECK(tu_verify(all, len, 11, 0) < 0);
    free(all);
    CHECK_OK(db, streamdb_stream_tell(s, &pos));
    CHECK(pos == len);
    CHECK_OK(db, streamdb_stream_seek(s, 70000, 0, &pos));
    CHECK(pos == 70000);
    CHECK_OK(db, streamdb_stream_seek(s, -5000, 1, &pos));
    CHECK(pos == 65000);
    unsigned char buf[3000];
    size_t n = 0;
    CHECK_OK(db, streamdb_stream_read(s, buf, sizeof buf, &n));
    CHECK(n == sizeof buf && tu_verify(buf, n, 11, 65000) < 0);
    CHECK_OK(db, streamdb_stream_tell(s, &pos));
    CHECK(pos == 68000);
    CHECK_OK(db, streamdb_stream_seek(s, -10, 2, &pos));
    CHECK(pos == len - 10);
    CHECK_OK(db, streamdb_stream_read(s, buf, sizeof buf, &n));
    CHECK(n == 10 && tu_verify(buf, n, 11, len - 10) < 0);
    CHECK_OK(db, streamdb_stream_read(s, buf, sizeof buf, &n));
    CHECK(n == 0);
    CHECK_RC(db, streamdb_stream_seek(s, -1, 0, &pos), STREAMDB_ERR_INVALID);
    CHECK_OK(db, streamdb_stream_seek(s, 0, 0, &pos));
    CHECK_OK(db, streamdb_stream_read(s, buf, 100, &n));
    CHECK(n == 100 && tu_verify(buf, n, 11, 0) < 0);
    streamdb_stream_close(s);

    /* stat */
    streamdb_doc_info info;
    memset(&info, 0xee, sizeof info);
    CHECK_OK(db, streamdb_stat(db, "/basic/doc", 10, 0, &info));
    CHECK(info.size == len);
    CHECK(info.version == 1);
    CHECK(memcmp(info.id, id, 16) == 0);
    CHECK(info.created_ns > 1600000000ull * 1000000000ull);
    CHECK(info.modified_ns >= info.created_ns);
    CHECK((info.flags & STREAMDB_DOC_INLINE) == 0);
    CHECK(info.stored_size >= len);

    /* get_by_id */
    void *d = NULL;
    size_t dl = 0;
    CHECK_OK(db, streamdb_get_by_id(db, id, 0, &d, &dl));
    CHECK(dl == len && d && tu_verify(d, dl, 11, 0) < 0);
    streamdb_free(d);
}

static void test_small_inline(streamdb *db) {
    CHECK_OK(db, tu_put(db, "/basic/small", 12, 100));
    streamdb_doc_info info;
    CHECK_OK(db, streamdb_stat(db, "/basic/small", 12, 0, &info));
    CHECK(info.size == 100);
    tu_expect_doc(db, "/basic/small", 0, 12, 100);
}

static void test_empty(streamdb *db) {
    uint8_t id[16];
    CHECK_OK(db, streamdb_write_document(db, "/basic/empty", "", 0, id));
    void *d = NULL;
    size_t dl = 99;
    CHECK_OK(db, streamdb_get(db, "/basic/empty", 0, &d, &dl));
    CHECK(d != NULL);
    CHECK(dl == 0);
    streamdb_free(d);
    unsigned char buf[8];
    size_t n = 99;
    CHECK_OK(db, streamdb_read(db, "/basic/empty", 0, 0, buf, sizeof buf, &n));
    CHECK(n == 0);
    streamdb_stream *s = NULL;
    CHECK_OK(db, streamdb_stream_open(db, "/basic/empty", 12, 0, &s));
    if (s) {
        uint64_t sz = 99;
        CHECK_OK(db, streamdb_stream_size(s, &sz));
        CHECK(sz == 0);
        n = 99;
        CHECK_OK(db, streamdb_stream_read(s, buf, sizeof buf, &n));
        CHECK(n == 0);
        streamdb_stream_close(s);
    }
    streamdb_doc_info info;
    CHECK_OK(db, streamdb_stat(db, "/basic/empty", 12, 0, &info));
    CHECK(info.size == 0 && info.version == 1);

    /* An empty document through the streaming writer with no write at all. */
    streamdb_writer *w = NULL;
    CHECK_OK(db, streamdb_writer_begin(db, "/basic/empty2", 13, &w));
    if (w) CHECK_OK(db, streamdb_writer_commit(w, NULL));
    d = NULL;
    dl = 99;
    CHECK_OK(db, streamdb_get(db, "/basic/empty2", 0, &d, &dl));
    CHECK(dl == 0 && d != NULL);
    streamdb_free(d);
    /* A document overwritten with nothing keeps the earlier version readable. */
    CHECK_OK(db, tu_put(db, "/basic/toempty", 5, 5000));
    CHECK_OK(db, streamdb_write_document(db, "/basic/toempty", "", 0, NULL));
    CHECK_OK(db, streamdb_stat(db, "/basic/toempty", 14, 0, &info));
    CHECK(info.size == 0 && info.version == 2);
    tu_expect_doc(db, "/basic/toempty", -1, 5, 5000);
}

static void expect_versions(streamdb *db, const char *path, const uint64_t *want, size_t nwant) {
    uint64_t *v = NULL;
    size_t n = 0;
    int rc = streamdb_versions(db, path, strlen(path), &v, &n);
    CHECK_RC(db, rc, 0);
    if (rc) return;
    int same = n == nwant;
    for (size_t i = 0; same && i < n; i++) same = v[i] == want[i];
    if (!same) {
        TU_FAIL("versions(%s) wrong", path);
        fprintf(stderr, "     got:");
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %" PRIu64, v[i]);
        fprintf(stderr, "\n     wanted:");
        for (size_t i = 0; i < nwant; i++) fprintf(stderr, " %" PRIu64, want[i]);
        fprintf(stderr, "\n");
    }
    streamdb_free(v);
}

/* Default versions_to_keep = 2: the current and the previous version. */
static void test_versions_default(streamdb *db) {
    const char *p = "/ver/a";
    size_t lens[4] = {100, 70000, 3000, 200000};
    for (int v = 1; v <= 4; v++) CHECK_OK(db, tu_put(db, p, 100 + v, lens[v - 1]));
    uint64_t want[] = {3, 4};
    expect_versions(db, p, want, 2);
    tu_expect_doc(db, p, 0, 104, lens[3]);
    tu_expect_doc(db, p, -1, 103, lens[2]);
    tu_expect_doc(db, p, 4, 104, lens[3]);
    tu_expect_doc(db, p, 3, 103, lens[2]);
    void *d = NULL;
    size_t dl;
    CHECK_RC(db, streamdb_get(db, p, 2, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_get(db, p, 1, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_get(db, p, -2, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_get(db, p, 5, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    streamdb_doc_info cur, prev;
    CHECK_OK(db, streamdb_stat(db, p, strlen(p), 0, &cur));
    CHECK_OK(db, streamdb_stat(db, p, strlen(p), -1, &prev));
    CHECK(cur.version == 4 && cur.size == lens[3]);
    CHECK(prev.version == 3 && prev.size == lens[2]);
    CHECK(memcmp(cur.id, prev.id, 16) == 0);
    CHECK(cur.created_ns == prev.created_ns);
    CHECK(cur.modified_ns >= prev.modified_ns);
    /* Previous version through a range read and a stream. */
    unsigned char buf[500];
    size_t n = 0;
    CHECK_OK(db, streamdb_read(db, p, -1, 2800, buf, sizeof buf, &n));
    CHECK(n == 200 && tu_verify(buf, n, 103, 2800) < 0);
    streamdb_stream *s = NULL;
    CHECK_OK(db, streamdb_stream_open(db, p, strlen(p), 3, &s));
    if (s) {
        uint64_t sz = 0;
        CHECK_OK(db, streamdb_stream_size(s, &sz));
        CHECK(sz == lens[2]);
        CHECK_OK(db, streamdb_stream_read(s, buf, sizeof buf, &n));
        CHECK(n == sizeof buf && tu_verify(buf, n, 103, 0) < 0);
        streamdb_stream_close(s);
    }
    /* A one-version document: the previous version does not exist. */
    CHECK_OK(db, tu_put(db, "/ver/one", 7, 10));
    CHECK_RC(db, streamdb_get(db, "/ver/one", -1, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    uint64_t one[] = {1};
    expect_versions(db, "/ver/one", one, 1);
}

static void test_versions_keep3(void) {
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.versions_to_keep = 3;
    streamdb *db = tu_open_cfg(tu_path("keep3.db"), &cfg);
    const char *p = "/k";
    for (int v = 1; v <= 3; v++) CHECK_OK(db, tu_put(db, p, 200 + v, 1000u * (unsigned)v * 37));
    uint64_t w3[] = {1, 2, 3};
    expect_versions(db, p, w3, 3);
    tu_expect_doc(db, p, -2, 201, 37000);
    tu_expect_doc(db, p, 1, 201, 37000);
    CHECK_OK(db, tu_put(db, p, 204, 10));
    uint64_t w4[] = {2, 3, 4};
    expect_versions(db, p, w4, 3);
    tu_expect_doc(db, p, -2, 202, 74000);
    tu_expect_doc(db, p, -1, 203, 111000);
    tu_expect_doc(db, p, 0, 204, 10);
    void *d;
    size_t dl;
    CHECK_RC(db, streamdb_get(db, p, 1, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    /* The kept versions survive a reopen. */
    db = tu_open_cfg(tu_path("keep3.db"), &cfg);
    expect_versions(db, p, w4, 3);
    tu_expect_doc(db, p, 2, 202, 74000);
    CHECK_OK(db, streamdb_close(db));
}

static int has_path(char **paths, size_t n, const char *p) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(paths[i], p) == 0) return 1;
    return 0;
}

static void test_multipath(streamdb *db) {
    uint8_t id[16], id2[16], other[16];
    CHECK_OK(db, streamdb_write_document(db, "/m/one", "hello", 5, id));
    CHECK_OK(db, streamdb_bind_to_path(db, id, "/m/two", 6));
    CHECK_OK(db, streamdb_bind_to_path(db, id, "/m/two", 6)); /* no-op */
    CHECK_OK(db, streamdb_get_id_by_path(db, "/m/two", 6, id2));
    CHECK(memcmp(id, id2, 16) == 0);
    void *d = NULL;
    size_t dl = 0;
    CHECK_OK(db, streamdb_get(db, "/m/two", 0, &d, &dl));
    CHECK(dl == 5 && d && memcmp(d, "hello", 5) == 0);
    streamdb_free(d);

    char **paths = NULL;
    size_t n = 0;
    CHECK_OK(db, streamdb_list_paths(db, id, &paths, &n));
    CHECK(n == 2 && has_path(paths, n, "/m/one") && has_path(paths, n, "/m/two"));
    streamdb_free_paths(paths, n);

    /* A path bound to another document cannot be bound. */
    CHECK_OK(db, streamdb_write_document(db, "/m/other", "x", 1, other));
    CHECK(memcmp(other, id, 16) != 0);
    CHECK_RC(db, streamdb_bind_to_path(db, id, "/m/other", 8), STREAMDB_ERR_EXISTS);
    CHECK_OK(db, streamdb_get(db, "/m/other", 0, &d, &dl));
    CHECK(dl == 1 && memcmp(d, "x", 1) == 0);
    streamdb_free(d);

    /* A write through one path is a new version seen through both. */
    CHECK_OK(db, streamdb_write_document(db, "/m/two", "world!", 6, id2));
    CHECK(memcmp(id, id2, 16) == 0);
    CHECK_OK(db, streamdb_get(db, "/m/one", 0, &d, &dl));
    CHECK(dl == 6 && memcmp(d, "world!", 6) == 0);
    streamdb_free(d);
    streamdb_doc_info info;
    CHECK_OK(db, streamdb_stat(db, "/m/one", 6, 0, &info));
    CHECK(info.version == 2);

    uint64_t count0 = 0, count1 = 0;
    CHECK_OK(db, streamdb_count(db, &count0));
    /* Unbind one path: the document stays under the other. */
    CHECK_OK(db, streamdb_unbind_path(db, id, "/m/one", 6));
    CHECK_RC(db, streamdb_get(db, "/m/one", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_unbind_path(db, id, "/m/one", 6), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_unbind_path(db, id, "/m/other", 8), STREAMDB_ERR_NOT_FOUND);
    CHECK_OK(db, streamdb_get_by_id(db, id, 0, &d, &dl));
    CHECK(dl == 6);
    streamdb_free(d);
    CHECK_OK(db, streamdb_list_paths(db, id, &paths, &n));
    CHECK(n == 1 && has_path(paths, n, "/m/two"));
    streamdb_free_paths(paths, n);
    /* delete of the last path removes the document. */
    CHECK_OK(db, streamdb_delete(db, "/m/two"));
    CHECK_RC(db, streamdb_get_by_id(db, id, 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_list_paths(db, id, &paths, &n), STREAMDB_ERR_NOT_FOUND);
    CHECK_OK(db, streamdb_count(db, &count1));
    CHECK(count1 == count0 - 1);

    /* delete_by_id removes every path. */
    uint8_t id3[16];
    CHECK_OK(db, streamdb_write_document(db, "/m/three/a", "abc", 3, id3));
    CHECK_OK(db, streamdb_bind_to_path(db, id3, "/m/three/b", 10));
    CHECK_OK(db, streamdb_bind_to_path(db, id3, "/m/zz", 5));
    CHECK_OK(db, streamdb_delete_by_id(db, id3));
    CHECK_RC(db, streamdb_get(db, "/m/three/a", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_get(db, "/m/three/b", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_get(db, "/m/zz", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_delete_by_id(db, id3), STREAMDB_ERR_NOT_FOUND);
    char **found = NULL;
    size_t nf = 0;
    CHECK_OK(db, streamdb_search(db, "/m/", &found, &nf));
    CHECK(nf == 1 && has_path(found, nf, "/m/other"));
    streamdb_free_paths(found, nf);
    /* A freed path can be bound again; deleting an unknown path is NOT_FOUND. */
    CHECK_OK(db, streamdb_bind_to_path(db, other, "/m/zz", 5));
    CHECK_OK(db, streamdb_get(db, "/m/zz", 0, &d, &dl));
    CHECK(dl == 1);
    streamdb_free(d);
    CHECK_RC(db, streamdb_delete(db, "/m/nothing"), STREAMDB_ERR_NOT_FOUND);
    uint8_t zero[16] = {0};
    CHECK_RC(db, streamdb_delete_by_id(db, zero), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_bind_to_path(db, zero, "/m/new", 6), STREAMDB_ERR_NOT_FOUND);
}

static void test_stats(streamdb *db) {
    streamdb_stats st;
    memset(&st, 0, sizeof st);
    CHECK_OK(db, streamdb_calculate_statistics(db, &st));
    uint64_t count = 0;
    CHECK_OK(db, streamdb_count(db, &count));
    CHECK(st.document_count == count);
    CHECK(st.path_count >= st.document_count);
    CHECK(st.page_size == streamdb_page_size(db));
    CHECK(st.total_pages > 0 && st.free_pages < st.total_pages);
    CHECK(st.last_txn > 0);
    CHECK(st.live_readers == 0);
    streamdb_cache_stats cs;
    memset(&cs, 0, sizeof cs);
    CHECK_OK(db, streamdb_get_cache_stats(db, &cs));
    CHECK(cs.hits + cs.misses > 0);
    CHECK(cs.capacity_pages > 0);
    CHECK(streamdb_max_path_len(db) > 0 && streamdb_max_path_len(db) <= STREAMDB_MAX_PATH);
    CHECK(strcmp(streamdb_version(), STREAMDB_VERSION_STRING) == 0);
    CHECK(streamdb_strerror(STREAMDB_ERR_CORRUPT) && *streamdb_strerror(STREAMDB_ERR_CORRUPT));
    CHECK(strcmp(streamdb_strerror(STREAMDB_ERR_IO), streamdb_strerror(STREAMDB_ERR_NOT_FOUND)) != 0);
}

/* close refuses (BUSY, changing nothing) while a child object is open. */
static void test_close_busy(void) {
    streamdb *db = tu_open(tu_path("busy.db"));
    CHECK_OK(db, tu_put(db, "/b/x", 1, 100000));

    streamdb_stream *s = NULL;
    CHECK_OK(db, streamdb_stream_open(db, "/b/x", 4, 0, &s));
    CHECK_RC(db, streamdb_close(db), STREAMDB_ERR_BUSY);
    /* The handle still works and the stream still reads. */
    tu_expect_doc(db, "/b/x", 0, 1, 100000);
    unsigned char buf[100];
    size_t n = 0;
    CHECK_OK(db, streamdb_stream_read(s, buf, sizeof buf, &n));
    CHECK(n == 100 && tu_verify(buf, n, 1, 0) < 0);
    streamdb_stream_close(s);

    streamdb_cursor *c = NULL;
    CHECK_OK(db, streamdb_search_open(db, "/", 1, &c));
    CHECK_RC(db, streamdb_close(db), STREAMDB_ERR_BUSY);
    streamdb_cursor_close(c);

    streamdb *snap = NULL;
    CHECK_OK(db, streamdb_snapshot(db, &snap));
    CHECK_RC(db, streamdb_close(db), STREAMDB_ERR_BUSY);
    CHECK_OK(snap, streamdb_snapshot_close(snap));

    streamdb_writer *w = NULL;
    CHECK_OK(db, streamdb_writer_begin(db, "/b/y", 4, &w));
    CHECK_RC(db, streamdb_close(db), STREAMDB_ERR_BUSY);
    CHECK_OK(db, streamdb_writer_write(w, "abc", 3));
    CHECK_OK(db, streamdb_writer_commit(w, NULL));

    CHECK_OK(db, streamdb_begin_transaction(db));
    CHECK_OK(db, tu_put(db, "/b/z", 3, 10));
    CHECK_OK(db, streamdb_commit_transaction(db));
    CHECK_OK(db, streamdb_close(db));
    db = tu_open(tu_path("busy.db"));
    tu_expect_doc(db, "/b/x", 0, 1, 100000);
    void *d;
    size_t dl;
    CHECK_OK(db, streamdb_get(db, "/b/y", 0, &d, &dl));
    CHECK(dl == 3 && memcmp(d, "abc", 3) == 0);
    streamdb_free(d);
    tu_expect_doc(db, "/b/z", 0, 3, 10);
    CHECK_OK(db, streamdb_close(db));
    CHECK_OK(NULL, streamdb_close(NULL));
}

static void test_config_api(void) {
    streamdb_config *cfg = streamdb_config_new();
    REQUIRE(cfg != NULL);
    CHECK(cfg->create == 1);
    CHECK_OK(NULL, streamdb_config_set(cfg, "page_size", 16384));
    CHECK_OK(NULL, streamdb_config_set(cfg, "versions_to_keep", 1));
    CHECK_RC(NULL, streamdb_config_set(cfg, "no_such_setting", 1), STREAMDB_ERR_INVALID);
    CHECK(cfg->page_size == 16384 && cfg->versions_to_keep == 1);
    streamdb *db = tu_open_cfg(tu_path("cfgnew.db"), cfg);
    CHECK(streamdb_page_size(db) == 16384);
    CHECK_OK(db, tu_put(db, "/v", 1, 10));
    CHECK_OK(db, tu_put(db, "/v", 2, 10));
    uint64_t *v = NULL;
    size_t n = 0;
    CHECK_OK(db, streamdb_versions(db, "/v", 2, &v, &n));
    CHECK(n == 1 && v && v[0] == 2);
    streamdb_free(v);
    CHECK_OK(db, streamdb_close(db));
    streamdb_config_free(cfg);
}

struct logbuf {
    int warns;
    char last[256];
};
static void log_cb(void *ctx, int level, const char *message) {
    struct logbuf *lb = ctx;
    if (level == STREAMDB_LOG_WARN) lb->warns++;
    snprintf(lb->last, sizeof lb->last, "%s", message ? message : "");
}

/* Quick mode: turning it on logs a warning; reads still return the data. */
static void test_quick_mode_and_log(void) {
    struct logbuf lb = {0, ""};
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.log_fn = log_cb;
    cfg.log_ctx = &lb;
    streamdb *db = tu_open_cfg(tu_path("quick.db"), &cfg);
    CHECK_OK(db, tu_put(db, "/q", 3, 200000));
    int before = lb.warns;
    CHECK_OK(db, streamdb_set_quick_mode(db, 1));
    CHECKF(lb.warns > before, "turning quick mode on logged no warning");
    tu_expect_doc(db, "/q", 0, 3, 200000);
    CHECK_OK(db, streamdb_set_quick_mode(db, 0));
    tu_expect_doc(db, "/q", 0, 3, 200000);
    CHECK_OK(db, streamdb_close(db));
    /* quick_mode in the config */
    cfg.quick_mode = 1;
    db = tu_open_cfg(tu_path("quick.db"), &cfg);
    tu_expect_doc(db, "/q", 0, 3, 200000);
    tu_check_db(db); /* the check verifies CRCs whatever quick mode says */
    CHECK_OK(db, streamdb_close(db));
}

/* The log is checkpointed by size, and sync_commits = 0 still persists
 * everything through flush and close. */
static void test_autocheckpoint_and_nosync(void) {
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.wal_autocheckpoint = 256u << 10;
    cfg.sync_commits = 0;
    const char *p = tu_path("ckpt.db");
    streamdb *db = tu_open_cfg(p, &cfg);
    char path[32];
    for (int i = 0; i < 100; i++) {
        snprintf(path, sizeof path, "/ck/%03d", i);
        CHECK_OK(db, tu_put(db, path, (uint64_t)i, 20000));
    }
    streamdb_stats st;
    CHECK_OK(db, streamdb_calculate_statistics(db, &st));
    CHECKF(st.checkpoints > 0, "2 MB through a 256 KB log and no checkpoint");
    CHECKF(st.wal_bytes < (2u << 20), "log at %" PRIu64 " bytes", st.wal_bytes);
    CHECK_OK(db, streamdb_flush(db));
    CHECK_OK(db, streamdb_calculate_statistics(db, &st));
    CHECK(st.wal_frames == 0);
    for (int i = 100; i < 110; i++) {
        snprintf(path, sizeof path, "/ck/%03d", i);
        CHECK_OK(db, tu_put(db, path, (uint64_t)i, 20000));
    }
    CHECK_OK(db, streamdb_close(db));
    db = tu_open_cfg(p, &cfg);
    for (int i = 0; i < 110; i += 9) {
        snprintf(path, sizeof path, "/ck/%03d", i);
        tu_expect_doc(db, path, 0, (uint64_t)i, 20000);
    }
    uint64_t count = 0;
    CHECK_OK(db, streamdb_count(db, &count));
    CHECK(count == 110);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
}

/* streamdb_get_into: the caller's buffer, snprintf-style sizing. */
static void test_get_into(streamdb *db) {
    const size_t big = 200000, small = 700;
    void *b = tu_make(big, 41);
    CHECK_OK(db, streamdb_write_document(db, "/into/big", b, big, NULL));
    free(b);
    b = tu_make(small, 42);
    CHECK_OK(db, streamdb_write_document(db, "/into/small", b, small, NULL));
    free(b);
    b = tu_make(small + 1, 43);
    CHECK_OK(db, streamdb_write_document(db, "/into/small", b, small + 1, NULL));   /* version 2 */
    free(b);

    uint8_t *buf = malloc(big + 16);
    size_t n = 1;
    /* size query: no buffer */
    CHECK_OK(db, streamdb_get_into(db, "/into/big", 9, 0, NULL, 0, &n));
    CHECK(n == big);
    /* too small: OK, the size, nothing written */
    memset(buf, 0xEE, big + 16);
    CHECK_OK(db, streamdb_get_into(db, "/into/big", 9, 0, buf, big - 1, &n));
    CHECK(n == big);
    CHECK(buf[0] == 0xEE && buf[big - 2] == 0xEE);
    /* exactly the size, then larger: the content, nothing past it */
    CHECK_OK(db, streamdb_get_into(db, "/into/big", 9, 0, buf, big, &n));
    CHECK(n == big && tu_verify(buf, n, 41, 0) < 0);
    memset(buf, 0xEE, big + 16);
    CHECK_OK(db, streamdb_get_into(db, "/into/big", 9, 0, buf, big + 16, &n));
    CHECK(n == big && tu_verify(buf, n, 41, 0) < 0 && buf[big] == 0xEE);
    /* inline documents and versions */
    CHECK_OK(db, streamdb_get_into(db, "/into/small", 11, 0, buf, big, &n));
    CHECK(n == small + 1 && tu_verify(buf, n, 43, 0) < 0);
    CHECK_OK(db, streamdb_get_into(db, "/into/small", 11, -1, buf, big, &n));
    CHECK(n == small && tu_verify(buf, n, 42, 0) < 0);
    CHECK_OK(db, streamdb_get_into(db, "/into/small", 11, 1, buf, small, &n));
    CHECK(n == small && tu_verify(buf, n, 42, 0) < 0);
    /* errors */
    CHECK_RC(db, streamdb_get_into(db, "/into/none", 10, 0, buf, big, &n), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_get_into(db, "into", 4, 0, buf, big, &n), STREAMDB_ERR_INVALID);
    CHECK_RC(db, streamdb_get_into(db, "/into/big", 9, 0, NULL, 10, &n), STREAMDB_ERR_INVALID);
    CHECK_RC(db, streamdb_get_into(db, "/into/big", 9, 0, buf, big, NULL), STREAMDB_ERR_INVALID);
    CHECK_RC(db, streamdb_get_into(db, "/into/small", 11, 7, buf, big, &n), STREAMDB_ERR_NOT_FOUND);
    free(buf);
}

/* The library's CRC32C against a bitwise reference, in each implementation
 * this CPU has (the table; the crc32 instruction, three-way interleaved and
 * joined by shift tables; the carry-less multiply fold of AVX-512, here on
 * every length from 256 bytes, where the library takes it from 1 KiB): every
 * length up to 3 blocks of 8 KiB and a bit more, at every alignment mod 8,
 * from a non-zero register, and split in two calls; and 1 MiB at once. */
uint32_t sdb_crc32c(uint32_t crc, const void *buf, size_t len);
int sdb_crc32c_select(int impl);
static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t n) {
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

static void test_crc32c(void) {
    static const char *names[] = {"table", "crc32 instruction", "AVX-512 fold"};
    size_t max = 3 * 8192 + 3 * 256 + 64;
    uint8_t *b = tu_make(max + 16, 4242);
    uint8_t *big = tu_make(1u << 20, 4343);
    for (int impl = 0; impl < 3; impl++) {
        if (!sdb_crc32c_select(impl)) {
            printf("api: crc32c: no %s on this CPU\n", names[impl]);
            continue;
        }
        CHECK(sdb_crc32c(0, "123456789", 9) == 0xE3069283u);
        long bad = 0, tried = 0;
        for (size_t len = 0; len <= max; len += len < 1100 ? 1 : 37)
            for (size_t off = 0; off < 8; off += len < 1100 ? 1 : 3) {
                uint32_t want = crc_ref((uint32_t)len, b + off, len);
                bad += sdb_crc32c((uint32_t)len, b + off, len) != want;
                size_t cut = len / 3;
                bad += sdb_crc32c(sdb_crc32c((uint32_t)len, b + off, cut), b + off + cut, len - cut) != want;
                tried += 2;
            }
        bad += sdb_crc32c(7, big, 1u << 20) != crc_ref(7, big, 1u << 20);
        CHECKF(bad == 0, "crc32c (%s): %ld of %ld differ from the bitwise reference", names[impl],
               bad, tried);
    }
    sdb_crc32c_select(-1);
    free(big);
    free(b);
}

/* The writer's frame checksum over a page it has just sealed: from the page's
 * own CRC by a shift table, which must give what a pass over the bytes gives. */
typedef struct { uint32_t t[4][256]; uint64_t len; } crc_shift_t;
void sdb_crc32c_shift_init(crc_shift_t *s, uint64_t len2);
uint32_t sdb_crc32c_shift_combine(const crc_shift_t *s, uint32_t crc1, uint32_t crc2);
uint32_t sdb_crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);

static void test_crc32c_shift(void) {
    static const uint32_t sizes[] = {4096, 8192, 16384, 65536};
    crc_shift_t *sh = malloc(sizeof *sh);
    long bad = 0, tried = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        uint32_t ps = sizes[k];
        uint8_t *page = tu_make(ps, 500 + k);
        sdb_crc32c_shift_init(sh, ps - 4);
        for (uint32_t t = 0; t < 64; t++) {
            page[7 + t] ^= (uint8_t)(t + 1);          /* another body each time */
            uint32_t body = sdb_crc32c(0, page + 4, ps - 4);
            memcpy(page, &body, 4);                   /* sealed: CRC of the rest in front */
            uint32_t run = 0x9E3779B9u * (t + 1);     /* some running checksum */
            uint32_t want = sdb_crc32c(run, page, ps);
            uint32_t head = sdb_crc32c(run, page, 4);
            bad += sdb_crc32c_shift_combine(sh, head, body) != want;
            bad += sdb_crc32c_combine(head, body, ps - 4) != want;
            tried += 2;
        }
        free(page);
    }
    CHECKF(bad == 0, "crc32c shift combine: %ld of %ld differ from one pass", bad, tried);
    free(sh);
}

/* A rewrite finds its path in the same descent that would bind a new one
 * (sdb_bt_insert): it keeps the document's id and takes the next version,
 * whether the path's leaf is clean or already dirty in the transaction, and
 * leaves the id clock alone.  Ids carry the wall clock's millisecond: many
 * ids in one millisecond are told apart by a sequence number, not by
 * stepping the timestamp ahead. */
static uint64_t id_ms(const uint8_t *id) {
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++) ms = ms << 8 | id[i];
    return ms;
}

static void test_rewrite_finds_path(void) {
    streamdb *db = tu_open(tu_path("rewrite.db"));
    char p[64];
    uint8_t ids[400][16], id[16];
    /* enough paths for a path tree of several leaves */
    CHECK_OK(db, streamdb_begin_transaction(db));
    for (int i = 0; i < 400; i++) {
        snprintf(p, sizeof p, "/rewrite/%04d/with/a/longer/path/name", i);
        CHECK_OK(db, streamdb_write_document(db, p, "x", 1, ids[i]));
        if (i % 7 == 0) {   /* again in the same transaction: a dirty leaf */
            CHECK_OK(db, streamdb_write_document(db, p, "yy", 2, id));
            CHECK(memcmp(id, ids[i], 16) == 0);
        }
    }
    CHECK_OK(db, streamdb_commit_transaction(db));
    struct timespec t1;
    /* rewrites in later commits: clean leaves */
    for (int r = 0; r < 3; r++) {
        CHECK_OK(db, streamdb_begin_transaction(db));
        for (int i = 0; i < 400; i += 3) {
            snprintf(p, sizeof p, "/rewrite/%04d/with/a/longer/path/name", i);
            CHECK_OK(db, streamdb_write_document(db, p, "zzz", 3, id));
            CHECK(memcmp(id, ids[i], 16) == 0);
        }
        CHECK_OK(db, streamdb_commit_transaction(db));
    }
    CHECK_OK(db, streamdb_write_document(db, "/rewrite/new", "n", 1, id));
    clock_gettime(CLOCK_REALTIME, &t1);
    uint64_t now_ms = (uint64_t)t1.tv_sec * 1000 + (uint64_t)t1.tv_nsec / 1000000;
    /* neither the 400 creations nor the 402 rewrites moved the id clock
     * ahead of the wall clock */
    CHECKF(id_ms(id) <= now_ms, "new id at %" PRIu64 " ms, clock %" PRIu64 " ms", id_ms(id),
           now_ms);
    CHECK(memcmp(id, ids[399], 16) > 0);
    for (int i = 1; i < 400; i++) CHECK(memcmp(ids[i], ids[i - 1], 16) > 0);
    CHECK((id[6] & 0xf0) == 0x70 && (id[8] & 0xc0) == 0x80);   /* version 7, variant 10 */
    for (int i = 0; i < 400; i++) {
        snprintf(p, sizeof p, "/rewrite/%04d/with/a/longer/path/name", i);
        streamdb_doc_info info;
        CHECK_OK(db, streamdb_stat(db, p, strlen(p), 0, &info));
        uint64_t want = 1 + (i % 7 == 0) + (i % 3 == 0 ? 3 : 0);
        CHECKF(info.version == want && memcmp(info.id, ids[i], 16) == 0,
               "%s: version %" PRIu64 ", wanted %" PRIu64, p, info.version, want);
        CHECK(info.size == (i % 3 == 0 ? 3u : i % 7 == 0 ? 2u : 1u));
    }
    streamdb_stats st;
    CHECK_OK(db, streamdb_calculate_statistics(db, &st));
    CHECK(st.path_count == 401 && st.document_count == 401);
    tu_check_db(db);
    /* more ids than one millisecond's 4,096 sequence numbers, in a few
     * milliseconds: still increasing, and no more than a step or two ahead */
    enum { MANY = 10000 };
    uint8_t (*many)[16] = malloc(MANY * sizeof *many);
    REQUIRE(many);
    CHECK_OK(db, streamdb_begin_transaction(db));
    for (int i = 0; i < MANY; i++) {
        snprintf(p, sizeof p, "/ids/%05d", i);
        CHECK_OK(db, streamdb_write_document(db, p, "", 0, many[i]));
    }
    CHECK_OK(db, streamdb_commit_transaction(db));
    clock_gettime(CLOCK_REALTIME, &t1);
    now_ms = (uint64_t)t1.tv_sec * 1000 + (uint64_t)t1.tv_nsec / 1000000;
    int ordered = 1;
    for (int i = 1; i < MANY; i++) ordered &= memcmp(many[i], many[i - 1], 16) > 0;
    CHECK(ordered);
    CHECKF(id_ms(many[MANY - 1]) <= now_ms + MANY / 4096 + 1, "last id at %" PRIu64
           " ms, clock %" PRIu64 " ms", id_ms(many[MANY - 1]), now_ms);
    uint8_t last[16];
    memcpy(last, many[MANY - 1], 16);
    free(many);
    /* after a reopen, a new id still sorts after every earlier one */
    CHECK_OK(db, streamdb_close(db));
    db = tu_open(tu_path("rewrite.db"));
    CHECK_OK(db, streamdb_write_document(db, "/ids/after", "", 0, id));
    CHECK(memcmp(id, last, 16) > 0);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
}

int main(void) {
    tu_init("api");
    test_crc32c();
    test_crc32c_shift();
    streamdb *db = tu_open(tu_path("api.db"));
    CHECK(streamdb_page_size(db) == 8192);
    test_write_get_read(db);
    test_small_inline(db);
    test_empty(db);
    test_versions_default(db);
    test_multipath(db);
    test_get_into(db);
    test_stats(db);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    test_versions_keep3();
    test_close_busy();
    test_config_api();
    test_quick_mode_and_log();
    test_autocheckpoint_and_nosync();
    test_rewrite_finds_path();
    tu_finish();
}
