/*
 * test_search.c -- prefix search (cursor and array forms, byte order, exact
 * prefix semantics, a cursor sees the database as of its opening) and the
 * one-level listing (each document child once as is, each child with
 * documents below it once with a trailing '/').
 */
#include "testutil.h"

static const char *all_paths[] = {
    "/a", "/a/b", "/a/b/c", "/a/bc", "/a/c/d/e", "/ab", "/a\xc3\xa9", "/b", "/b/x/y",
    "/a/b/c/d", "/a/B", "/a/~", "/a/b-", "/zz/top",
};
#define NPATHS (sizeof all_paths / sizeof all_paths[0])

static int cmp_bytes(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b); /* bytewise */
}

/* Expected search result: every path starting with prefix, sorted by bytes. */
static size_t expect_search(const char *prefix, const char **out) {
    size_t n = 0;
    for (size_t i = 0; i < NPATHS; i++)
        if (strncmp(all_paths[i], prefix, strlen(prefix)) == 0) out[n++] = all_paths[i];
    qsort(out, n, sizeof *out, cmp_bytes);
    return n;
}

static void show(const char *what, const char **p, size_t n) {
    fprintf(stderr, "     %s (%zu):", what, n);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " \"%s\"", p[i]);
    fprintf(stderr, "\n");
}

static void check_search(streamdb *db, const char *prefix) {
    const char *want[NPATHS];
    size_t nwant = expect_search(prefix, want);

    /* cursor form */
    const char *got[NPATHS + 8];
    char *copies[NPATHS + 8];
    size_t ngot = 0;
    streamdb_cursor *c = NULL;
    int rc = streamdb_search_open(db, prefix, strlen(prefix), &c);
    CHECK_RC(db, rc, 0);
    if (rc) return;
    for (;;) {
        const char *p;
        size_t pl;
        rc = streamdb_cursor_next(c, &p, &pl);
        if (rc == STREAMDB_DONE) break;
        CHECK_RC(db, rc, 0);
        if (rc || ngot == NPATHS + 8) break;
        copies[ngot] = strndup(p, pl);
        got[ngot] = copies[ngot];
        ngot++;
    }
    /* After DONE the cursor stays done. */
    const char *p;
    size_t pl;
    CHECK_RC(db, streamdb_cursor_next(c, &p, &pl), STREAMDB_DONE);
    streamdb_cursor_close(c);
    int same = ngot == nwant;
    for (size_t i = 0; same && i < ngot; i++) same = strcmp(got[i], want[i]) == 0;
    if (!same) {
        TU_FAIL("search cursor \"%s\" gave the wrong paths or order", prefix);
        show("got", got, ngot);
        show("wanted", want, nwant);
    }
    for (size_t i = 0; i < ngot; i++) free(copies[i]);

    /* array form */
    char **arr = NULL;
    size_t n = 0;
    CHECK_OK(db, streamdb_search(db, prefix, &arr, &n));
    same = n == nwant;
    for (size_t i = 0; same && i < n; i++) same = strcmp(arr[i], want[i]) == 0;
    if (!same) {
        TU_FAIL("search array \"%s\" gave the wrong paths or order", prefix);
        show("got", (const char **)arr, n);
        show("wanted", want, nwant);
    }
    streamdb_free_paths(arr, n);
}

static int cmp_entry(const void *a, const void *b) { return strcmp(a, b); }

/* Expected listing of one level under prefix (which ends with '/'). */
static size_t expect_list(const char *prefix, char out[][64]) {
    size_t n = 0, pl = strlen(prefix);
    for (size_t i = 0; i < NPATHS; i++) {
        const char *p = all_paths[i];
        if (strncmp(p, prefix, pl) != 0 || p[pl] == 0) continue;
        const char *slash = strchr(p + pl, '/');
        char e[64];
        if (slash)
            snprintf(e, sizeof e, "%.*s", (int)(slash - p + 1), p);
        else
            snprintf(e, sizeof e, "%s", p);
        size_t k;
        for (k = 0; k < n; k++)
            if (strcmp(out[k], e) == 0) break;
        if (k == n) strcpy(out[n++], e);
    }
    qsort(out, n, 64, cmp_entry);
    return n;
}

static void check_list(streamdb *db, const char *prefix) {
    char want[NPATHS][64];
    size_t nwant = expect_list(prefix, want);
    char **arr = NULL;
    size_t n = 0;
    CHECK_OK(db, streamdb_list(db, prefix, strlen(prefix), &arr, &n));
    char **sorted = malloc((n + 1) * sizeof *sorted);
    for (size_t i = 0; i < n; i++) sorted[i] = arr[i];
    qsort(sorted, n, sizeof *sorted, cmp_bytes);
    int same = n == nwant;
    for (size_t i = 0; same && i < n; i++) same = strcmp(sorted[i], want[i]) == 0;
    if (!same) {
        TU_FAIL("list \"%s\" gave the wrong entries", prefix);
        show("got", (const char **)arr, n);
        const char *w[NPATHS];
        for (size_t i = 0; i < nwant; i++) w[i] = want[i];
        show("wanted", w, nwant);
    }
    /* The listing comes in byte order, like the search. */
    for (size_t i = 0; same && i < n; i++)
        CHECKF(arr[i] == sorted[i], "list \"%s\" not in byte order at %zu", prefix, i);
    free(sorted);
    /* cursor form gives the same sequence */
    streamdb_cursor *c = NULL;
    CHECK_OK(db, streamdb_list_open(db, prefix, strlen(prefix), &c));
    if (c) {
        size_t i = 0;
        const char *p;
        size_t pl;
        int rc;
        while ((rc = streamdb_cursor_next(c, &p, &pl)) == 0) {
            CHECKF(i < n && pl == strlen(arr[i]) && memcmp(p, arr[i], pl) == 0,
                   "list cursor \"%s\" entry %zu differs from the array form", prefix, i);
            i++;
        }
        CHECK_RC(db, rc, STREAMDB_DONE);
        CHECK(i == n);
        streamdb_cursor_close(c);
    }
    streamdb_free_paths(arr, n);
}

/* A leaf whose keys are out of order (two offsets swapped, the page CRC made
 * right again, as a bug or a crafted file could leave it) must end a search
 * with STREAMDB_ERR_CORRUPT, not hand out keys twice or out of order. */
uint32_t sdb_crc32c(uint32_t crc, const void *buf, size_t len);

static void test_unordered_leaf(void) {
    const char *path = tu_path("unordered.db");
    streamdb_config cfg;
    streamdb_config_init(&cfg);   /* no codec: the page is edited in the clear */
    streamdb *db = tu_open_cfg(path, &cfg);
    char k[32];
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "/u/k%02d", i);
        CHECK_OK(db, tu_put(db, k, (uint64_t)i, 10));
    }
    size_t ps = streamdb_page_size(db);
    CHECK_OK(db, streamdb_close(db));   /* checkpointed: the leaf is in the main file */
    FILE *f = fopen(path, "r+b");
    REQUIRE(f != NULL);
    uint8_t *pg = malloc(ps);
    int edited = 0;
    for (long off = 0; !edited && fseek(f, off, SEEK_SET) == 0 && fread(pg, 1, ps, f) == ps;
         off += (long)ps) {
        /* the path tree's leaf: a leaf (type 2) whose shared prefix is "/u/k" */
        size_t n = pg[64] | pg[65] << 8, plen = pg[66] | pg[67] << 8;
        if (pg[4] != 2 || n != 20 || plen < 4 || memcmp(pg + 72, "/u/k", 4) != 0) continue;
        uint8_t *slots = pg + 72 + plen, t[2];
        memcpy(t, slots + 2 * 5, 2);
        memcpy(slots + 2 * 5, slots + 2 * 6, 2);
        memcpy(slots + 2 * 6, t, 2);
        uint32_t crc = sdb_crc32c(0, pg + 4, ps - 4);
        for (int b = 0; b < 4; b++) pg[b] = (uint8_t)(crc >> (8 * b));
        REQUIRE(fseek(f, off, SEEK_SET) == 0 && fwrite(pg, 1, ps, f) == ps);
        edited = 1;
    }
    fclose(f);
    free(pg);
    REQUIRE(edited);
    db = tu_open_cfg(path, &cfg);
    streamdb_cursor *c = NULL;
    REQUIRE_OK(db, streamdb_search_open(db, "/u/", 3, &c));
    const char *p;
    size_t pl;
    int rc, got = 0;
    while ((rc = streamdb_cursor_next(c, &p, &pl)) == 0) got++;
    CHECKF(rc == STREAMDB_ERR_CORRUPT && got == 6,
           "search over a leaf with swapped keys: rc %d after %d paths", rc, got);
    streamdb_cursor_close(c);
    CHECK_OK(db, streamdb_close(db));
}

int main(void) {
    tu_init("search");
    test_unordered_leaf();
    const char *dbpath = tu_path("search.db");
    streamdb *db = tu_open(dbpath);
    /* Insert in a scrambled order. */
    for (size_t k = 0; k < NPATHS; k++) {
        size_t i = (k * 5 + 3) % NPATHS;
        CHECK_OK(db, tu_put(db, all_paths[i], i, 10 + i * 100));
    }
    static const char *prefixes[] = {"/", "/a", "/a/", "/a/b", "/a/b/", "/ab", "/b/x/",
                                     "/a\xc3\xa9", "/zz/top", "/zz/topper", "/nothing/", "/A"};
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
            check_search(db, prefixes[i]);
        static const char *lp[] = {"/", "/a/", "/a/b/", "/b/", "/zz/", "/nothing/", "/a/b/c/d/"};
        for (size_t i = 0; i < sizeof lp / sizeof lp[0]; i++) check_list(db, lp[i]);
        CHECK_OK(db, streamdb_close(db));
        db = tu_open(dbpath); /* and again after a reopen */
    }

    /* A cursor sees the database as of its opening. */
    streamdb_cursor *c = NULL;
    REQUIRE_OK(db, streamdb_search_open(db, "/a/", 3, &c));
    const char *p;
    size_t pl;
    CHECK_OK(db, streamdb_cursor_next(c, &p, &pl));
    CHECK(pl == 4 && memcmp(p, "/a/B", 4) == 0);
    CHECK_OK(db, tu_put(db, "/a/bb", 1, 10));   /* after the cursor's position */
    CHECK_OK(db, streamdb_delete(db, "/a/c/d/e")); /* ahead of it */
    const char *want[] = {"/a/b", "/a/b-", "/a/b/c", "/a/b/c/d", "/a/bc", "/a/c/d/e", "/a/~"};
    size_t i = 0;
    int rc;
    while ((rc = streamdb_cursor_next(c, &p, &pl)) == 0) {
        CHECKF(i < 7 && pl == strlen(want[i]) && memcmp(p, want[i], pl) == 0,
               "cursor entry %zu is \"%.*s\"", i, (int)pl, p);
        i++;
    }
    CHECK_RC(db, rc, STREAMDB_DONE);
    CHECK(i == 7);
    streamdb_cursor_close(c);
    char **arr = NULL;
    size_t n = 0;
    CHECK_OK(db, streamdb_search(db, "/a/", &arr, &n));
    CHECK(n == 8); /* 8 + "/a/bb" - "/a/c/d/e" */
    streamdb_free_paths(arr, n);
    /* Deleting the only document under a directory removes it from the listing. */
    CHECK_OK(db, streamdb_list(db, "/a/", 3, &arr, &n));
    for (size_t k = 0; k < n; k++) CHECK(strcmp(arr[k], "/a/c/") != 0);
    streamdb_free_paths(arr, n);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    tu_finish();
}
