/*
 * fuzz_path.c -- path validation with arbitrary bytes, through
 * streamdb_write_document_n / streamdb_get_n / streamdb_search_n /
 * streamdb_delete_n.
 *
 * The header's rule: a path is UTF-8, begins with '/', has no NUL and no
 * empty segment, and is at most streamdb_max_path_len bytes.  This target
 * classifies each input independently:
 *  - clearly invalid (empty, no leading '/', a NUL, "//", too long, bytes
 *    that can never be UTF-8: a stray continuation byte, 0xF8..0xFF, a
 *    truncated sequence): write and get must return STREAMDB_ERR_INVALID;
 *  - clearly valid: the write succeeds, get returns the same bytes, a prefix
 *    search for the path returns it first, delete removes it;
 *  - cases the header leaves open (a trailing '/', "/" alone, overlong
 *    encodings, UTF-16 surrogates, code points past U+10FFFF): either
 *    answer, but write and get must agree.
 */
#include "fuzz_common.h"

enum { P_INVALID, P_VALID, P_OPEN };

static int classify(const uint8_t *p, size_t n, size_t maxlen)
{
    if (n == 0 || p[0] != '/' || n > maxlen) return P_INVALID;
    int open = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == 0) return P_INVALID;
        if (c == '/' && i + 1 < n && p[i + 1] == '/') return P_INVALID;
        if (c < 0x80) continue;
        int k;
        if (c >= 0xC0 && c <= 0xDF) k = 1;
        else if (c >= 0xE0 && c <= 0xEF) k = 2;
        else if (c >= 0xF0 && c <= 0xF7) k = 3;
        else return P_INVALID;          /* continuation byte as lead, or F8..FF */
        if (i + (size_t)k >= n) return P_INVALID;   /* truncated */
        for (int j = 1; j <= k; j++)
            if ((p[i + (size_t)j] & 0xC0) != 0x80) return P_INVALID;
        uint32_t cp = c & (0x3F >> k);
        for (int j = 1; j <= k; j++) cp = cp << 6 | (p[i + (size_t)j] & 0x3F);
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000)) open = 1;
        if (cp >= 0xD800 && cp <= 0xDFFF) open = 1;
        if (cp > 0x10FFFF) open = 1;
        i += (size_t)k;
    }
    if (p[n - 1] == '/') open = 1;
    return open ? P_OPEN : P_VALID;
}

static streamdb_vfs *fp_vfs;
static streamdb *fp_db;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fp_db) {
        fp_vfs = streamdb_vfs_memory_new();
        streamdb_config cfg;
        fz_cfg(&cfg, fp_vfs);
        cfg.page_size = 8192;
        if (streamdb_open("p.db", &cfg, &fp_db)) abort();
    }
    streamdb *db = fp_db;
    const char *p = (const char *)data;
    size_t maxlen = streamdb_max_path_len(db);
    int cls = classify(data, size, maxlen);
    int rw = streamdb_write_document_n(db, p, size, data, size, NULL);
    void *got = NULL;
    size_t glen = 0;
    int rg = streamdb_get_n(db, p, size, 0, &got, &glen);
    if (cls == P_INVALID) {
        FZ_ASSERT(rw == STREAMDB_ERR_INVALID, "write of an invalid path (%zu bytes) = %d (%s)", size, rw, streamdb_strerror(rw));
        FZ_ASSERT(rg == STREAMDB_ERR_INVALID, "get of an invalid path (%zu bytes) = %d (%s)", size, rg, streamdb_strerror(rg));
    } else if (cls == P_VALID || rw == 0) {
        FZ_ASSERT(rw == 0, "write of a valid path (%zu bytes) = %d (%s): %s", size, rw, streamdb_strerror(rw), streamdb_errmsg(db));
        FZ_ASSERT(rg == 0, "get of a written path = %d (%s)", rg, streamdb_strerror(rg));
        FZ_ASSERT(glen == size && memcmp(got, data, size) == 0, "get of %zu-byte path returned other bytes", size);
        char **paths = NULL;
        size_t n = 0;
        int rs = streamdb_search_n(db, p, size, &paths, &n);
        FZ_ASSERT(rs == 0 && n >= 1 && strlen(paths[0]) == size && !memcmp(paths[0], data, size),
                  "search for the path itself = %d, %zu results", rs, n);
        streamdb_free_paths(paths, n);
        FZ_ASSERT(streamdb_delete_n(db, p, size) == 0, "delete");
        void *g2 = NULL;
        size_t l2;
        FZ_ASSERT(streamdb_get_n(db, p, size, 0, &g2, &l2) == STREAMDB_ERR_NOT_FOUND, "get after delete");
    } else {
        FZ_ASSERT(rw == STREAMDB_ERR_INVALID, "write = %d (%s)", rw, streamdb_strerror(rw));
        FZ_ASSERT(rg == STREAMDB_ERR_INVALID, "write said INVALID, get said %d (%s)", rg, streamdb_strerror(rg));
    }
    streamdb_free(got);
    return 0;
}
