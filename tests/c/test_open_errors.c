/*
 * test_open_errors.c -- files that must not open, or open only for reading:
 *  - invalid configurations (page size not a power of two in 4096..65536);
 *  - a file made with another page size: STREAMDB_ERR_INCOMPATIBLE, file untouched;
 *  - garbage and text files: STREAMDB_ERR_NOT_A_DB, file untouched;
 *  - a truncated file: an error at open, or CORRUPT from reads and check;
 *    never wrong bytes;
 *  - a missing file with create = 0: an error, and no file created;
 *  - a read-only file: opening it for writing fails; read_only = 1 opens it,
 *    reads work and every write is STREAMDB_ERR_READONLY (run as an
 *    unprivileged user in a child, since root ignores file modes);
 *  - a second process opening the same file: STREAMDB_ERR_LOCKED at once;
 *    a forked child using its parent's handle: STREAMDB_ERR_CLOSED.
 */
#include <pwd.h>
#include <sys/wait.h>

#include "testutil.h"

static int open_rc(const char *path, const streamdb_config *cfg) {
    streamdb *db = (streamdb *)0x1;
    int rc = streamdb_open(path, cfg, &db);
    if (rc == 0) streamdb_close(db);
    else if (db != NULL) TU_FAIL("failed open of %s left *out non-NULL", path);
    if (rc != 0) {
        const char *m = streamdb_errmsg(NULL);
        CHECKF(m && *m, "open of %s failed (%d) with an empty errmsg", path, rc);
    }
    return rc;
}

static int same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = 0;
        if (ca == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static void make_db(const char *path, uint32_t ps) {
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.page_size = ps;
    streamdb *db = tu_open_cfg(path, &cfg);
    CHECK_OK(db, tu_put(db, "/x/small", 1, 100));
    CHECK_OK(db, tu_put(db, "/x/big1", 2, 400000));
    CHECK_OK(db, tu_put(db, "/x/big2", 3, 400000));
    CHECK_OK(db, streamdb_close(db));
}

static void test_config(void) {
    streamdb_config cfg;
    static const uint32_t bad[] = {2048, 5000, 131072, 12288};
    for (size_t i = 0; i < 4; i++) {
        streamdb_config_init(&cfg);
        cfg.page_size = bad[i];
        const char *p = tu_path("badcfg-%u.db", bad[i]);
        CHECK_RC(NULL, open_rc(p, &cfg), STREAMDB_ERR_INVALID);
        CHECKF(tu_file_size(p) < 0, "a rejected config created %s", p);
    }
}

static void test_page_size_mismatch(void) {
    const char *p = tu_path("ps.db");
    make_db(p, 8192);
    const char *copy = tu_path("ps-copy.db");
    tu_copy_file(p, copy, -1);
    streamdb_config cfg;
    static const uint32_t other[] = {4096, 16384, 65536};
    for (size_t i = 0; i < 3; i++) {
        streamdb_config_init(&cfg);
        cfg.page_size = other[i];
        CHECK_RC(NULL, open_rc(p, &cfg), STREAMDB_ERR_INCOMPATIBLE);
    }
    CHECK(same_file(p, copy));
    streamdb_config_init(&cfg);
    cfg.page_size = 8192;
    streamdb *db = tu_open_cfg(p, &cfg);
    tu_expect_doc(db, "/x/big2", 0, 3, 400000);
    CHECK_OK(db, streamdb_close(db));
    /* and the other way round */
    const char *p4 = tu_path("ps4.db");
    make_db(p4, 4096);
    streamdb_config_init(&cfg);
    cfg.page_size = 8192;
    CHECK_RC(NULL, open_rc(p4, &cfg), STREAMDB_ERR_INCOMPATIBLE);
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f != NULL);
    fwrite(data, 1, len, f);
    fclose(f);
}

static void test_garbage(void) {
    size_t len = 65536;
    void *junk = tu_make(len, 42);
    const char *p = tu_path("garbage.db");
    write_file(p, junk, len);
    CHECK_RC(NULL, open_rc(p, NULL), STREAMDB_ERR_NOT_A_DB);
    const char *p2 = tu_path("garbage-copy.db");
    write_file(p2, junk, len);
    CHECK(same_file(p, p2));
    /* a short junk file and a text file */
    const char *p3 = tu_path("short.db");
    write_file(p3, junk, 100);
    CHECK_RC(NULL, open_rc(p3, NULL), STREAMDB_ERR_NOT_A_DB);
    CHECK(tu_file_size(p3) == 100);
    const char *p4 = tu_path("text.db");
    const char *text = "this is a text file, not a database\n";
    write_file(p4, text, strlen(text));
    CHECK_RC(NULL, open_rc(p4, NULL), STREAMDB_ERR_NOT_A_DB);
    /* 16 pages of zeros is not a database either */
    void *zeros = calloc(1, len * 2);
    const char *p5 = tu_path("zeros.db");
    write_file(p5, zeros, len * 2);
    CHECK_RC(NULL, open_rc(p5, NULL), STREAMDB_ERR_NOT_A_DB);
    free(zeros);
    free(junk);
    /* a directory */
    CHECK(open_rc(tu_dir, NULL) < 0);
}

static void test_truncated(void) {
    const char *p = tu_path("trunc.db");
    make_db(p, 4096);
    long long size = tu_file_size(p);
    REQUIRE(size > 100000);
    long long cuts[] = {100, 4096, 4096 + 100, size / 2, size - 4096, size - 1};
    const char *cp = tu_path("trunc-copy.db");
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        tu_copy_file(p, cp, cuts[i]);
        char wal_src[1100], wal_dst[1100];
        snprintf(wal_src, sizeof wal_src, "%s-wal", p);
        snprintf(wal_dst, sizeof wal_dst, "%s-wal", cp);
        tu_copy_file(wal_src, wal_dst, -1);
        streamdb_config cfg;
        streamdb_config_init(&cfg);
        cfg.page_size = 4096;
        streamdb *db = NULL;
        int rc = streamdb_open(cp, &cfg, &db);
        if (rc != 0) {
            CHECKF(rc == STREAMDB_ERR_CORRUPT || rc == STREAMDB_ERR_NOT_A_DB,
                   "truncated at %lld: open = %d (%s): %s", cuts[i], rc, streamdb_strerror(rc),
                   tu_errmsg(NULL));
            printf("truncated at %lld: open refused: %s\n", cuts[i], streamdb_strerror(rc));
            continue;
        }
        CHECKF(cuts[i] > 4096 + 100, "a file truncated to %lld bytes opened", cuts[i]);
        int corrupt_reads = 0;
        static const char *paths[] = {"/x/small", "/x/big1", "/x/big2"};
        static const size_t lens[] = {100, 400000, 400000};
        for (int k = 0; k < 3; k++) {
            void *d = NULL;
            size_t dl = 0;
            rc = streamdb_get(db, paths[k], 0, &d, &dl);
            if (rc == 0) {
                CHECKF(dl == lens[k] && tu_verify(d, dl, (uint64_t)k + 1, 0) < 0,
                       "truncated at %lld: %s read back wrong bytes", cuts[i], paths[k]);
                streamdb_free(d);
            } else {
                CHECKF(rc == STREAMDB_ERR_CORRUPT,
                       "truncated at %lld: get(%s) = %d (%s): %s", cuts[i], paths[k], rc,
                       streamdb_strerror(rc), tu_errmsg(db));
                corrupt_reads++;
            }
        }
        rc = streamdb_check(db);
        /* Half the file gone cannot pass the check. */
        if (cuts[i] <= size / 2 || corrupt_reads)
            CHECKF(rc == STREAMDB_ERR_CORRUPT, "truncated at %lld: check = %d (%s)", cuts[i], rc,
                   streamdb_strerror(rc));
        printf("truncated at %lld: opened, %d corrupt reads, check: %s\n", cuts[i], corrupt_reads,
               streamdb_strerror(rc));
        streamdb_close(db);
    }
}

static void test_missing_nocreate(void) {
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.create = 0;
    const char *p = tu_path("missing.db");
    int rc = open_rc(p, &cfg);
    CHECKF(rc == STREAMDB_ERR_NOT_FOUND || rc == STREAMDB_ERR_IO, "rc = %d", rc);
    CHECK(tu_file_size(p) < 0);
    cfg.read_only = 1;
    cfg.create = 1;
    rc = open_rc(p, &cfg);
    CHECKF(rc < 0, "read-only open of a missing file = %d", rc);
    CHECK(tu_file_size(p) < 0);
}

/* In a child that cannot write the file (as nobody when run as root). */
static int readonly_child(const char *p) {
    int fails = 0;
#define RC_EXPECT(cond, ...)                                                                   \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "FAIL (read-only child) %s:%d: ", __FILE__, __LINE__);             \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            fails++;                                                                           \
        }                                                                                      \
    } while (0)
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    streamdb *db = NULL;
    int rc = streamdb_open(p, &cfg, &db);
    RC_EXPECT(rc == STREAMDB_ERR_READONLY || rc == STREAMDB_ERR_IO,
              "open for writing of a read-only file = %d (%s): %s", rc, streamdb_strerror(rc),
              tu_errmsg(NULL));
    if (rc == 0) streamdb_close(db);
    cfg.read_only = 1;
    db = NULL;
    rc = streamdb_open(p, &cfg, &db);
    RC_EXPECT(rc == 0, "read-only open = %d (%s): %s", rc, streamdb_strerror(rc), tu_errmsg(NULL));
    if (rc) return fails;
    void *d = NULL;
    size_t dl = 0;
    rc = streamdb_get(db, "/x/big1", 0, &d, &dl);
    RC_EXPECT(rc == 0 && dl == 400000 && tu_verify(d, dl, 2, 0) < 0, "read = %d", rc);
    if (rc == 0) streamdb_free(d);
    char **paths;
    size_t n = 0;
    rc = streamdb_search(db, "/x/", &paths, &n);
    RC_EXPECT(rc == 0 && n == 3, "search = %d, %zu paths", rc, n);
    if (rc == 0) streamdb_free_paths(paths, n);
    rc = tu_put(db, "/x/new", 1, 10);
    RC_EXPECT(rc == STREAMDB_ERR_READONLY, "write = %d", rc);
    rc = tu_put(db, "/x/small", 1, 10);
    RC_EXPECT(rc == STREAMDB_ERR_READONLY, "overwrite = %d", rc);
    rc = streamdb_delete(db, "/x/small");
    RC_EXPECT(rc == STREAMDB_ERR_READONLY, "delete = %d", rc);
    rc = streamdb_begin_transaction(db);
    RC_EXPECT(rc == STREAMDB_ERR_READONLY, "begin = %d", rc);
    streamdb_writer *w = NULL;
    rc = streamdb_writer_begin(db, "/x/w", 4, &w);
    RC_EXPECT(rc == STREAMDB_ERR_READONLY, "writer_begin = %d", rc);
    uint8_t id[16];
    rc = streamdb_get_id_by_path(db, "/x/small", 8, id);
    RC_EXPECT(rc == 0, "get_id = %d", rc);
    rc = streamdb_bind_to_path(db, id, "/x/alias", 8);
    RC_EXPECT(rc == STREAMDB_ERR_READONLY, "bind = %d", rc);
    rc = streamdb_delete_by_id(db, id);
    RC_EXPECT(rc == STREAMDB_ERR_READONLY, "delete_by_id = %d", rc);
    rc = streamdb_check(db);
    RC_EXPECT(rc == 0, "check = %d: %s", rc, tu_errmsg(db));
    rc = streamdb_close(db);
    RC_EXPECT(rc == 0, "close = %d", rc);
    return fails;
}

static void test_read_only(void) {
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/ro", tu_dir);
    REQUIRE(mkdir(dir, 0755) == 0);
    chmod(tu_dir, 0755);
    char p[1200], wal[1300];
    snprintf(p, sizeof p, "%s/ro.db", dir);
    snprintf(wal, sizeof wal, "%s-wal", p);
    make_db(p, 8192);
    const char *copy = tu_path("ro-copy.db");
    tu_copy_file(p, copy, -1);
    chmod(p, 0444);
    chmod(wal, 0444);
    pid_t pid = fork();
    if (pid == 0) {
        if (geteuid() == 0) {
            struct passwd *pw = getpwnam("nobody");
            if (!pw || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
                printf("read-only file: SKIPPED (root, and cannot become nobody)\n");
                _exit(4);
            }
        }
        _exit(readonly_child(p) ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECKF(WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 4),
           "read-only child status %#x", status);
    CHECK(same_file(p, copy));
    chmod(tu_dir, 0700);
    chmod(p, 0600);
}

static void test_locked(void) {
    const char *p = tu_path("locked.db");
    streamdb *db = tu_open(p);
    CHECK_OK(db, tu_put(db, "/l/a", 1, 1000));
    pid_t pid = fork();
    if (pid == 0) {
        streamdb *db2 = NULL;
        int rc = streamdb_open(p, NULL, &db2);
        if (rc != STREAMDB_ERR_LOCKED) {
            fprintf(stderr, "FAIL second process open = %d (%s): %s\n", rc, streamdb_strerror(rc),
                    tu_errmsg(NULL));
            _exit(1);
        }
        /* The parent's handle is unusable in the child. */
        void *d;
        size_t dl;
        rc = streamdb_get(db, "/l/a", 0, &d, &dl);
        if (rc != STREAMDB_ERR_CLOSED) {
            fprintf(stderr, "FAIL child using the parent's handle: get = %d (%s)\n", rc,
                    streamdb_strerror(rc));
            _exit(2);
        }
        rc = tu_put(db, "/l/child", 1, 10);
        if (rc != STREAMDB_ERR_CLOSED) {
            fprintf(stderr, "FAIL child using the parent's handle: write = %d\n", rc);
            _exit(2);
        }
        _exit(0);
    }
    int status = 0;
    uint64_t t0 = tu_now_ns();
    waitpid(pid, &status, 0);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "lock child status %#x", status);
    CHECKF(tu_now_ns() - t0 < 5000000000ull, "the second open waited");
    /* The parent's handle is still fine, and nothing from the child landed. */
    tu_expect_doc(db, "/l/a", 0, 1, 1000);
    void *d;
    size_t dl;
    CHECK_RC(db, streamdb_get(db, "/l/child", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_OK(db, tu_put(db, "/l/b", 2, 2000));
    CHECK_OK(db, streamdb_close(db));

    /* Once closed, another process can open it. */
    pid = fork();
    if (pid == 0) {
        streamdb *db2 = NULL;
        int rc = streamdb_open(p, NULL, &db2);
        if (rc) _exit(1);
        rc = tu_put(db2, "/l/c", 3, 3000);
        if (rc) _exit(2);
        rc = streamdb_close(db2);
        _exit(rc ? 3 : 0);
    }
    waitpid(pid, &status, 0);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "second child status %#x", status);
    db = tu_open(p);
    tu_expect_doc(db, "/l/a", 0, 1, 1000);
    tu_expect_doc(db, "/l/b", 0, 2, 2000);
    tu_expect_doc(db, "/l/c", 0, 3, 3000);
    CHECK_OK(db, streamdb_close(db));
}

/* Overwrites the first n bytes of path with byte b. */
static void stamp(const char *path, size_t n, int b) {
    int fd = open(path, O_WRONLY);
    REQUIRE(fd >= 0);
    uint8_t *z = malloc(n);
    memset(z, b, n);
    REQUIRE(pwrite(fd, z, n, 0) == (ssize_t)n);
    free(z);
    close(fd);
}

/* A create interrupted between its two header writes (slot 1 written, slot 0
 * still a hole, no log yet) opens as the empty database and is finished; any
 * other damaged newest slot without its log stays CORRUPT [F7]. */
static void test_interrupted_create(void) {
    char wal[1100];
    const char *p = tu_path("half.db");
    snprintf(wal, sizeof wal, "%s-wal", p);
    streamdb *db = tu_open(p);
    CHECK_OK(db, streamdb_close(db));
    CHECK(tu_file_size(p) == 2 * 8192);
    stamp(p, 8192, 0);
    unlink(wal);
    /* read-only: the empty database */
    streamdb_config ro;
    streamdb_config_init(&ro);
    ro.read_only = 1;
    db = NULL;
    CHECK_OK(NULL, streamdb_open(p, &ro, &db));
    if (db) {
        char **paths = NULL;
        size_t n = 9;
        CHECK_OK(db, streamdb_search(db, "/", &paths, &n));
        CHECK(n == 0);
        streamdb_free_paths(paths, n);
        CHECK_OK(db, streamdb_close(db));
    }
    /* writable: finished, then used */
    db = tu_open(p);
    CHECK_OK(db, tu_put(db, "/after", 5, 3000));
    CHECK_OK(db, streamdb_close(db));
    db = tu_open(p);
    tu_expect_doc(db, "/after", 0, 5, 3000);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));

    /* slot 0 garbage rather than never written: refused */
    const char *g = tu_path("half-garbage.db");
    snprintf(wal, sizeof wal, "%s-wal", g);
    db = tu_open(g);
    CHECK_OK(db, streamdb_close(db));
    stamp(g, 8192, 0xAB);
    unlink(wal);
    int rc = open_rc(g, NULL);
    CHECKF(rc == STREAMDB_ERR_CORRUPT || rc == STREAMDB_ERR_NOT_A_DB, "garbage slot 0: open = %d", rc);

    /* a database with data whose newest slot is gone with its log: refused */
    const char *d = tu_path("data.db");
    snprintf(wal, sizeof wal, "%s-wal", d);
    db = tu_open(d);
    CHECK_OK(db, tu_put(db, "/one", 1, 500));
    CHECK_OK(db, streamdb_close(db));          /* checkpoint: seq 3 in slot 1 */
    db = tu_open(d);
    CHECK_OK(db, tu_put(db, "/two", 2, 500));
    CHECK_OK(db, streamdb_close(db));          /* checkpoint: seq 4 in slot 0 */
    stamp(d, 8192, 0);
    unlink(wal);
    rc = open_rc(d, NULL);
    CHECKF(rc == STREAMDB_ERR_CORRUPT, "data, slot 0 zeroed, no log: open = %d", rc);
    rc = open_rc(d, &ro);
    CHECKF(rc == STREAMDB_ERR_CORRUPT, "data, slot 0 zeroed, no log, read-only: open = %d", rc);
}

int main(void) {
    tu_init("open_errors");
    test_config();
    test_page_size_mismatch();
    test_garbage();
    test_truncated();
    test_missing_nocreate();
    test_read_only();
    test_locked();
    test_interrupted_create();
    tu_finish();
}
