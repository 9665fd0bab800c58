/*
 * test_writer.c -- the streaming writer: commit makes a new version visible
 * only at commit; abort leaves no trace (no path, no version, no count) and,
 * after a reopen, the same number of used pages as before the writer began.
 * So does a process killed in the middle of a large streaming write (its
 * pages went straight to the file, bypassing the log) or of a transaction.
 * The thread holding a writer gets STREAMDB_ERR_BUSY for any other write
 * rather than deadlocking on itself.
 */
#include <signal.h>
#include <sys/wait.h>

#include "testutil.h"

static int write_pieces(streamdb_writer *w, uint64_t seed, size_t len, size_t piece) {
    unsigned char *buf = malloc(piece);
    size_t off = 0;
    int rc = 0;
    while (off < len && rc == 0) {
        size_t n = piece < len - off ? piece : len - off;
        tu_fill(buf, n, seed, off);
        rc = streamdb_writer_write(w, buf, n);
        off += n;
    }
    free(buf);
    return rc;
}

/* A version-2 backend that records the writeback hints over the file VFS. */
static const streamdb_vfs *wb_inner;
static uint64_t wb_calls, wb_bytes, wb_end, wb_gaps;
static int wb_writeback(streamdb_file *f, uint64_t off, uint64_t len) {
    if (wb_calls && off != wb_end)
        wb_gaps++;
    wb_calls++;
    wb_bytes += len;
    wb_end = off + len;
    return wb_inner->writeback(f, off, len);
}

/* A 40 MiB streamed document hands its direct-written data to the backend's
 * writeback in contiguous ranges of at least 1 MiB as it goes (a quarter of
 * what it wrote so far, up to 8 MiB), and still
 * commits and reads back whole (the hint never stands in for the sync).  A
 * transaction of 100 documents of 64 KiB, whose chunks go direct after the
 * first megabyte, is hinted too, and so is one of 100 documents of 64 KiB
 * and 3 bytes, whose whole chunks skip pages to stay aligned and whose tails
 * fill those holes behind: the range runs over the holes instead of starting
 * anew at each (a hint per document) or dropping what it held (none). */
static void test_writeback_hint(const char *dbpath) {
    wb_inner = streamdb_vfs_file();
    CHECK(wb_inner->version >= 2 && wb_inner->writeback != NULL);
    streamdb_vfs v = *wb_inner;
    v.writeback = wb_writeback;
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.vfs = &v;
    streamdb *db = tu_open_cfg(dbpath, &cfg);
    streamdb_writer *w = NULL;
    REQUIRE_OK(db, streamdb_writer_begin(db, "/wb/big", 7, &w));
    CHECK_OK(db, write_pieces(w, 77, 40u << 20, 1u << 20));
    /* windows of 1 MiB, growing to a quarter of what was written (8 MiB at
     * most): 1, 1, 1, 1, 1.25, ... */
    CHECKF(wb_calls >= 9 && wb_calls <= 14, "%" PRIu64 " writeback calls for 40 MiB", wb_calls);
    CHECKF(wb_bytes >= (30u << 20) && wb_bytes <= (40u << 20), "%" PRIu64 " bytes hinted", wb_bytes);
    CHECK(wb_gaps == 0);
    CHECK_OK(db, streamdb_writer_commit(w, NULL));
    /* 100 x 64 KiB in one transaction: about 5 MiB direct */
    uint64_t calls0 = wb_calls, bytes0 = wb_bytes;
    REQUIRE_OK(db, streamdb_begin_transaction(db));
    for (int i = 0; i < 100; i++) {
        char p[32];
        snprintf(p, sizeof p, "/wb/f%03d", i);
        REQUIRE_OK(db, tu_put(db, p, 900u + (unsigned)i, 65536));
    }
    CHECKF(wb_calls - calls0 >= 4, "%" PRIu64 " writeback calls for 100 x 64 KiB", wb_calls - calls0);
    CHECKF(wb_bytes - bytes0 >= (4u << 20), "%" PRIu64 " bytes hinted for 100 x 64 KiB",
           wb_bytes - bytes0);
    REQUIRE_OK(db, streamdb_commit_transaction(db));
    /* 100 x (64 KiB + 3) in one transaction: each whole chunk aligned past
     * a hole, each tail in the hole behind it */
    calls0 = wb_calls;
    bytes0 = wb_bytes;
    REQUIRE_OK(db, streamdb_begin_transaction(db));
    for (int i = 0; i < 100; i++) {
        char p[32];
        snprintf(p, sizeof p, "/wb/g%03d", i);
        REQUIRE_OK(db, tu_put(db, p, 1900u + (unsigned)i, 65536 + 3));
    }
    CHECKF(wb_calls - calls0 >= 4 && wb_calls - calls0 <= 30,
           "%" PRIu64 " writeback calls for 100 x (64 KiB + 3)", wb_calls - calls0);
    CHECKF(wb_bytes - bytes0 >= (4u << 20), "%" PRIu64 " bytes hinted for 100 x (64 KiB + 3)",
           wb_bytes - bytes0);
    REQUIRE_OK(db, streamdb_commit_transaction(db));
    for (int i = 0; i < 100; i += 9) {
        char p[32];
        snprintf(p, sizeof p, "/wb/g%03d", i);
        tu_expect_doc(db, p, 0, 1900u + (unsigned)i, 65536 + 3);
    }
    for (int i = 0; i < 100; i += 9) {
        char p[32];
        snprintf(p, sizeof p, "/wb/f%03d", i);
        tu_expect_doc(db, p, 0, 900u + (unsigned)i, 65536);
    }
    CHECK_OK(db, streamdb_close(db));
    /* small documents never reach the hint */
    uint64_t calls = wb_calls;
    db = tu_open_cfg(dbpath, &cfg);
    CHECK_OK(db, tu_put(db, "/wb/small", 5, 3000));
    CHECK(wb_calls == calls);
    CHECK_OK(db, streamdb_close(db));
    db = tu_open(dbpath);
    tu_expect_doc(db, "/wb/big", 0, 77, 40u << 20);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
}

int main(void) {
    tu_init("writer");
    test_writeback_hint(tu_path("writeback.db"));
    const char *dbpath = tu_path("writer.db");
    streamdb *db = tu_open(dbpath);

    /* Commit: invisible before, visible after, with the id returned. */
    streamdb_writer *w = NULL;
    REQUIRE_OK(db, streamdb_writer_begin(db, "/w/a", 4, &w));
    CHECK_OK(db, write_pieces(w, 1, 3u << 20, 100000));
    uint8_t id[16], id2[16];
    CHECK_OK(db, streamdb_writer_commit(w, id));
    tu_expect_doc(db, "/w/a", 0, 1, 3u << 20);
    CHECK_OK(db, streamdb_get_id_by_path(db, "/w/a", 4, id2));
    CHECK(memcmp(id, id2, 16) == 0);
    CHECK_OK(db, tu_put(db, "/w/small", 2, 500));
    CHECK_OK(db, streamdb_flush(db));
    CHECK_OK(db, streamdb_close(db));

    db = tu_open(dbpath);
    uint64_t used0 = tu_used_pages(db), count0 = 0;
    CHECK_OK(db, streamdb_count(db, &count0));

    /* Abort of a new document. */
    REQUIRE_OK(db, streamdb_writer_begin(db, "/w/aborted", 10, &w));
    CHECK_OK(db, write_pieces(w, 3, 5u << 20, 65536));
    void *d = NULL;
    size_t dl = 0;
    CHECK_RC(db, streamdb_get(db, "/w/aborted", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    streamdb_writer_abort(w);
    CHECK_RC(db, streamdb_get(db, "/w/aborted", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);

    /* Abort of a new version of an existing document: the old one stays
     * current and the version count does not move. */
    REQUIRE_OK(db, streamdb_writer_begin(db, "/w/a", 4, &w));
    CHECK_OK(db, write_pieces(w, 4, 2u << 20, 77777));
    streamdb_writer_abort(w);
    tu_expect_doc(db, "/w/a", 0, 1, 3u << 20);
    streamdb_doc_info info;
    CHECK_OK(db, streamdb_stat(db, "/w/a", 4, 0, &info));
    CHECK(info.version == 1);
    CHECK_RC(db, streamdb_get(db, "/w/a", -1, &d, &dl), STREAMDB_ERR_NOT_FOUND);

    /* Abort right after begin, and of a small (inline-sized) document. */
    REQUIRE_OK(db, streamdb_writer_begin(db, "/w/none", 7, &w));
    streamdb_writer_abort(w);
    REQUIRE_OK(db, streamdb_writer_begin(db, "/w/tiny", 7, &w));
    CHECK_OK(db, streamdb_writer_write(w, "tiny", 4));
    streamdb_writer_abort(w);
    CHECK_RC(db, streamdb_get(db, "/w/tiny", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);

    char **paths = NULL;
    size_t n = 0;
    CHECK_OK(db, streamdb_search(db, "/w/", &paths, &n));
    CHECK(n == 2);
    streamdb_free_paths(paths, n);
    uint64_t count1 = 0;
    CHECK_OK(db, streamdb_count(db, &count1));
    CHECK(count1 == count0);
    tu_check_db(db);
    CHECK_OK(db, streamdb_flush(db));
    CHECK_OK(db, streamdb_close(db));

    db = tu_open(dbpath);
    uint64_t used1 = tu_used_pages(db);
    CHECKF(used1 == used0, "used pages %" PRIu64 " after aborts, %" PRIu64 " before", used1,
           used0);
    tu_check_db(db);

    /* The writer still works after aborts, and a committed overwrite is a
     * new version with the old one as previous. */
    REQUIRE_OK(db, streamdb_writer_begin(db, "/w/a", 4, &w));
    CHECK_OK(db, write_pieces(w, 5, 1000000, 4096));
    CHECK_OK(db, streamdb_writer_commit(w, NULL));
    tu_expect_doc(db, "/w/a", 0, 5, 1000000);
    tu_expect_doc(db, "/w/a", -1, 1, 3u << 20);
    CHECK_OK(db, streamdb_stat(db, "/w/a", 4, 0, &info));
    CHECK(info.version == 2);

    CHECK_OK(db, streamdb_close(db));

    /* A writer inside a transaction that is rolled back leaves no trace
     * either, in pages too. */
    db = tu_open(dbpath);
    uint64_t used2 = tu_used_pages(db);
    CHECK_OK(db, streamdb_begin_transaction(db));
    REQUIRE_OK(db, streamdb_writer_begin(db, "/w/intx", 7, &w));
    CHECK_OK(db, write_pieces(w, 6, 1500000, 50000)); /* over 4 chunks: bypasses the log */
    CHECK_OK(db, streamdb_writer_commit(w, NULL));
    CHECK_OK(db, tu_put(db, "/w/intx2", 7, 300));
    CHECK_OK(db, streamdb_rollback_transaction(db));
    CHECK_RC(db, streamdb_get(db, "/w/intx", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    CHECK_RC(db, streamdb_get(db, "/w/intx2", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    db = tu_open(dbpath);
    CHECK_RC(db, streamdb_get(db, "/w/intx", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    uint64_t used3 = tu_used_pages(db);
    CHECKF(used3 == used2, "used pages %" PRIu64 " after rollback, %" PRIu64 " before", used3,
           used2);
    tu_expect_doc(db, "/w/a", 0, 5, 1000000);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));

    /* The thread holding a writer cannot start another write (it would wait
     * for itself): each attempt is STREAMDB_ERR_BUSY, and the writer still
     * commits.  alarm() turns a self-deadlock into a failure. */
    db = tu_open(dbpath);
    alarm(60);
    REQUIRE_OK(db, streamdb_writer_begin(db, "/w/held", 7, &w));
    CHECK_OK(db, streamdb_writer_write(w, "held", 4));
    CHECK_RC(db, tu_put(db, "/w/other", 1, 10), STREAMDB_ERR_BUSY);
    streamdb_writer *w2 = NULL;
    CHECK_RC(db, streamdb_writer_begin(db, "/w/other", 8, &w2), STREAMDB_ERR_BUSY);
    CHECK_RC(db, streamdb_begin_transaction(db), STREAMDB_ERR_BUSY);
    CHECK_RC(db, streamdb_delete(db, "/w/small"), STREAMDB_ERR_BUSY);
    CHECK_OK(db, streamdb_writer_commit(w, NULL));
    alarm(0);
    CHECK_OK(db, streamdb_get(db, "/w/held", 0, &d, &dl));
    CHECK(dl == 4);
    streamdb_free(d);
    CHECK_RC(db, streamdb_get(db, "/w/other", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    tu_expect_doc(db, "/w/small", 0, 2, 500);
    CHECK_OK(db, streamdb_delete(db, "/w/held"));
    CHECK_OK(db, streamdb_close(db));

    /* A process killed while a writer has streamed 12 MB of an uncommitted
     * document, and one killed inside an uncommitted transaction. */
    for (int mode = 0; mode < 2; mode++) {
        db = tu_open(dbpath);
        uint64_t used_before = tu_used_pages(db);
        uint64_t count_before = 0;
        CHECK_OK(db, streamdb_count(db, &count_before));
        CHECK_OK(db, streamdb_close(db));
        int pfd[2];
        REQUIRE(pipe(pfd) == 0);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            streamdb *cdb = NULL;
            if (streamdb_open(dbpath, NULL, &cdb)) _exit(2);
            if (mode == 0) {
                streamdb_writer *cw = NULL;
                if (streamdb_writer_begin(cdb, "/w/killed", 9, &cw)) _exit(3);
                if (write_pieces(cw, 8, 12u << 20, 1u << 20)) _exit(4);
            } else {
                if (streamdb_begin_transaction(cdb)) _exit(3);
                if (tu_put(cdb, "/w/killed", 8, 3u << 20)) _exit(4);
                if (tu_put(cdb, "/w/killed2", 9, 1000)) _exit(4);
                if (streamdb_delete(cdb, "/w/small")) _exit(4);
            }
            if (write(pfd[1], "k", 1) != 1) _exit(5);
            for (;;) pause();
        }
        close(pfd[1]);
        char c;
        CHECK(read(pfd[0], &c, 1) == 1);
        close(pfd[0]);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status));
        db = tu_open(dbpath);
        CHECK_RC(db, streamdb_get(db, "/w/killed", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
        CHECK_RC(db, streamdb_get(db, "/w/killed2", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
        tu_expect_doc(db, "/w/small", 0, 2, 500);
        uint64_t count_after = 0;
        CHECK_OK(db, streamdb_count(db, &count_after));
        CHECK(count_after == count_before);
        uint64_t used_after = tu_used_pages(db);
        CHECKF(used_after == used_before,
               "killed %s: used pages %" PRIu64 " after recovery, %" PRIu64 " before",
               mode ? "transaction" : "writer", used_after, used_before);
        tu_check_db(db);
        /* the space is really reusable: a document of the same size fits
         * without growing the file much */
        long long size0 = tu_file_size(dbpath);
        if (mode == 0) {
            streamdb_writer *w2 = NULL;
            CHECK_OK(db, streamdb_writer_begin(db, "/w/reuse", 8, &w2));
            CHECK_OK(db, write_pieces(w2, 10, 12u << 20, 1u << 20));
            CHECK_OK(db, streamdb_writer_commit(w2, NULL));
            CHECK_OK(db, streamdb_flush(db));
            CHECKF(tu_file_size(dbpath) <= size0 + (1 << 20), "file %lld -> %lld", size0,
                   tu_file_size(dbpath));
            CHECK_OK(db, streamdb_delete(db, "/w/reuse"));
        }
        CHECK_OK(db, streamdb_close(db));
    }
    tu_finish();
}
