/*
 * test_bad_input.c -- every bad input of issue 2 gets a clear code and a
 * message and leaves the database unchanged:
 *  - invalid paths, through every function that takes one: empty, no
 *    leading '/', an empty segment ('//', trailing '/'), a NUL inside (via the
 *    _n forms), over the maximum length, invalid UTF-8 (stray continuation,
 *    truncated sequence, overlong form, surrogate, beyond U+10FFFF, 0xFF);
 *  - a document over max_document_size, whole or through the writer: TOO_LARGE
 *    and nothing written;
 *  - paths, ids and versions that do not exist: NOT_FOUND.
 */
#include "testutil.h"

struct bad {
    const char *p;
    size_t len;
    const char *why;
};

/* slack: pages the index may keep after a long path was added and removed */
static void check_state(streamdb *db, uint64_t used0, uint64_t slack) {
    char **paths;
    size_t n = 0;
    CHECK_OK(db, streamdb_search(db, "/", &paths, &n));
    CHECKF(n == 2, "search / gives %zu paths", n);
    streamdb_free_paths(paths, n);
    uint64_t count = 0;
    CHECK_OK(db, streamdb_count(db, &count));
    CHECK(count == 2);
    tu_expect_doc(db, "/ok/doc", 0, 1, 5000);
    uint64_t used = tu_used_pages(db);
    CHECKF(used >= used0 && used <= used0 + slack, "used pages %" PRIu64 ", wanted %" PRIu64
           " (+%" PRIu64 ")", used, used0, slack);
}

#define EXPECT_INVALID(db, expr, b)                                                           \
    do {                                                                                      \
        int rc_ = (expr);                                                                     \
        if (rc_ != STREAMDB_ERR_INVALID) {                                                    \
            TU_FAIL("%s with a path that has %s returned %d (%s), wanted INVALID", #expr,    \
                    (b)->why, rc_, streamdb_strerror(rc_));                                   \
        } else {                                                                              \
            const char *m_ = streamdb_errmsg(db);                                             \
            CHECKF(m_ && *m_, "%s: no message for a path that has %s", #expr, (b)->why);      \
        }                                                                                     \
    } while (0)

int main(void) {
    tu_init("bad_input");
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.max_document_size = 1u << 20;
    const char *dbpath = tu_path("bad.db");
    streamdb *db = tu_open_cfg(dbpath, &cfg);
    CHECK_OK(db, tu_put(db, "/ok/doc", 1, 5000));
    uint8_t id[16];
    CHECK_OK(db, streamdb_get_id_by_path(db, "/ok/doc", 7, id));
    CHECK_OK(db, tu_put(db, "/ok/other", 2, 10));
    CHECK_OK(db, streamdb_flush(db));
    uint64_t used0 = tu_used_pages(db);

    size_t maxlen = streamdb_max_path_len(db);
    REQUIRE(maxlen >= 255 && maxlen <= STREAMDB_MAX_PATH);
    char *longp = malloc(maxlen + 2);
    longp[0] = '/';
    for (size_t i = 1; i <= maxlen; i++) longp[i] = (i % 100 == 0) ? '/' : 'a' + (char)(i % 26);
    longp[maxlen + 1] = 0;
    if (longp[maxlen] == '/') longp[maxlen] = 'z';

    static const char nul_inside[] = "/ok/do\0c";
    struct bad bads[] = {
        {"", 0, "zero length"},
        {"ok/doc", 6, "no leading slash"},
        {"//ok", 4, "an empty first segment"},
        {"/ok//doc", 8, "an empty middle segment"},
        {"/ok/", 4, "a trailing slash"},
        {"/", 1, "nothing after the slash"},
        {nul_inside, 8, "a NUL inside"},
        {longp, maxlen + 1, "one byte over the maximum length"},
        {"/\x80x", 3, "a stray continuation byte"},
        {"/a\xc3", 3, "a truncated 2-byte sequence"},
        {"/a\xe2\x82", 4, "a truncated 3-byte sequence"},
        {"/\xc0\xaf", 3, "an overlong '/'"},
        {"/\xe0\x80\xaf", 4, "an overlong 3-byte '/'"},
        {"/\xed\xa0\x80", 4, "a UTF-16 surrogate"},
        {"/\xf4\x90\x80\x80", 5, "a code point over U+10FFFF"},
        {"/\xff", 2, "the byte 0xFF"},
    };
    size_t nb = sizeof bads / sizeof bads[0];
    void *d = NULL;
    size_t dl = 0;
    unsigned char buf[16];
    for (size_t i = 0; i < nb; i++) {
        struct bad *b = &bads[i];
        EXPECT_INVALID(db, streamdb_write_document_n(db, b->p, b->len, "x", 1, NULL), b);
        EXPECT_INVALID(db, streamdb_get_n(db, b->p, b->len, 0, &d, &dl), b);
        EXPECT_INVALID(db, streamdb_read_n(db, b->p, b->len, 0, 0, buf, sizeof buf, &dl), b);
        streamdb_doc_info info;
        EXPECT_INVALID(db, streamdb_stat(db, b->p, b->len, 0, &info), b);
        streamdb_stream *s = NULL;
        EXPECT_INVALID(db, streamdb_stream_open(db, b->p, b->len, 0, &s), b);
        EXPECT_INVALID(db, streamdb_delete_n(db, b->p, b->len), b);
        EXPECT_INVALID(db, streamdb_bind_to_path(db, id, b->p, b->len), b);
        EXPECT_INVALID(db, streamdb_unbind_path(db, id, b->p, b->len), b);
        uint8_t id2[16];
        EXPECT_INVALID(db, streamdb_get_id_by_path(db, b->p, b->len, id2), b);
        uint64_t *vers;
        size_t nv;
        EXPECT_INVALID(db, streamdb_versions(db, b->p, b->len, &vers, &nv), b);
        streamdb_writer *w = NULL;
        EXPECT_INVALID(db, streamdb_writer_begin(db, b->p, b->len, &w), b);
        if (w) streamdb_writer_abort(w);
        /* and inside a transaction, which stays usable */
        CHECK_OK(db, streamdb_begin_transaction(db));
        EXPECT_INVALID(db, streamdb_write_document_n(db, b->p, b->len, "x", 1, NULL), b);
        CHECK_OK(db, streamdb_commit_transaction(db));
    }
    /* The NUL-terminated forms. */
    EXPECT_INVALID(db, streamdb_write_document(db, "no/slash", "x", 1, NULL), &bads[1]);
    EXPECT_INVALID(db, streamdb_write_document(db, "/a//b", "x", 1, NULL), &bads[3]);
    EXPECT_INVALID(db, streamdb_get(db, "", 0, &d, &dl), &bads[0]);
    EXPECT_INVALID(db, streamdb_delete(db, "/\xff"), &bads[15]);
    EXPECT_INVALID(db, streamdb_write_document(db, longp, "x", 1, NULL), &bads[7]);
    check_state(db, used0, 0);

    /* Exactly the maximum length is fine, and so is valid multi-byte UTF-8. */
    longp[maxlen] = 0;
    CHECK_OK(db, streamdb_write_document_n(db, longp, maxlen, "L", 1, NULL));
    CHECK_OK(db, streamdb_get_n(db, longp, maxlen, 0, &d, &dl));
    if (d) {
        CHECK(dl == 1 && memcmp(d, "L", 1) == 0);
        streamdb_free(d);
    }
    CHECK_OK(db, streamdb_delete_n(db, longp, maxlen));
    const char *utf8 = "/\xc3\xa9t\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80";
    CHECK_OK(db, streamdb_write_document(db, utf8, "u", 1, NULL));
    CHECK_OK(db, streamdb_delete(db, utf8));
    /* Dots are ordinary segment names to the database. */
    CHECK_OK(db, streamdb_write_document(db, "/a/../b", "dots", 4, NULL));
    CHECK_OK(db, streamdb_get(db, "/a/../b", 0, &d, &dl));
    CHECK(dl == 4);
    streamdb_free(d);
    CHECK_RC(db, streamdb_get(db, "/b", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_OK(db, streamdb_delete(db, "/a/../b"));
    free(longp);

    /* Over max_document_size: rejected before anything is written. */
    CHECK_OK(db, streamdb_flush(db));
    used0 = tu_used_pages(db);
    size_t max = 1u << 20;
    void *big = tu_make(max + 1, 9);
    CHECK_RC(db, streamdb_write_document(db, "/ok/big", big, max + 1, NULL), STREAMDB_ERR_TOO_LARGE);
    CHECK_RC(db, streamdb_write_document(db, "/ok/doc", big, max + 1, NULL), STREAMDB_ERR_TOO_LARGE);
    CHECK_RC(db, streamdb_get(db, "/ok/big", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    streamdb_doc_info info;
    CHECK_OK(db, streamdb_stat(db, "/ok/doc", 7, 0, &info));
    CHECK(info.version == 1);
    /* through the writer: the write that crosses the limit fails */
    streamdb_writer *w = NULL;
    CHECK_OK(db, streamdb_writer_begin(db, "/ok/big", 7, &w));
    if (w) {
        CHECK_OK(db, streamdb_writer_write(w, big, max / 2));
        int rc = streamdb_writer_write(w, (char *)big + max / 2, max / 2 + 1);
        CHECK_RC(db, rc, STREAMDB_ERR_TOO_LARGE);
        if (rc == 0) CHECK_RC(db, streamdb_writer_commit(w, NULL), STREAMDB_ERR_TOO_LARGE);
        else streamdb_writer_abort(w);
    }
    CHECK_RC(db, streamdb_get(db, "/ok/big", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_OK(db, streamdb_flush(db));
    check_state(db, used0, 0);

    /* Things that do not exist. */
    CHECK_RC(db, streamdb_get(db, "/ok/nothing", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_get(db, "/ok", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_get(db, "/ok/doc", 2, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_get(db, "/ok/doc", -1, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_read(db, "/ok/nothing", 0, 0, buf, 1, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_stat(db, "/ok/nothing", 11, 0, &info), STREAMDB_ERR_NOT_FOUND);
    streamdb_stream *s = NULL;
    CHECK_RC(db, streamdb_stream_open(db, "/ok/nothing", 11, 0, &s), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_delete(db, "/ok/nothing"), STREAMDB_ERR_NOT_FOUND);
    uint8_t none[16];
    memset(none, 0xab, 16);
    CHECK_RC(db, streamdb_get_by_id(db, none, 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_delete_by_id(db, none), STREAMDB_ERR_NOT_FOUND);
    char **paths;
    size_t n;
    CHECK_RC(db, streamdb_list_paths(db, none, &paths, &n), STREAMDB_ERR_NOT_FOUND);
    uint64_t *vers;
    CHECK_RC(db, streamdb_versions(db, "/ok/nothing", 11, &vers, &n), STREAMDB_ERR_NOT_FOUND);
    {
        const char *m = streamdb_errmsg(db);
        CHECKF(m && *m, "no message for a missing path");
    }
    CHECK_OK(db, streamdb_flush(db));
    check_state(db, used0, 0);
    /* exactly the maximum is accepted, then removed again */
    CHECK_OK(db, streamdb_write_document(db, "/ok/max", big, max, NULL));
    tu_expect_doc(db, "/ok/max", 0, 9, max);
    CHECK_OK(db, streamdb_delete(db, "/ok/max"));
    free(big);
    CHECK_OK(db, streamdb_flush(db));
    check_state(db, used0, 4);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    db = tu_open_cfg(dbpath, &cfg);
    check_state(db, used0, 4);
    CHECK_OK(db, streamdb_close(db));
    tu_finish();
}
