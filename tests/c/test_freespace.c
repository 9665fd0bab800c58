/*
 * test_freespace.c -- freed pages are reused: writing, overwriting and
 * deleting documents over and over keeps the file within a bound of the live
 * data; streamdb_compact gives the free tail back to the OS; the integrity
 * check passes throughout and after a reopen.
 */
#include "testutil.h"

int main(void) {
    tu_init("freespace");
    const char *dbpath = tu_path("fs.db");
    streamdb *db = tu_open(dbpath);
    int rounds = (int)tu_env_long("STREAMDB_FREESPACE_ROUNDS", 40);
    const size_t big = 2u << 20, mid = 500000;
    char p[32], prev[32] = "";
    long long max_file = 0;
    for (int r = 0; r < rounds; r++) {
        CHECK_OK(db, tu_put(db, "/fs/a", (uint64_t)r, big));
        snprintf(p, sizeof p, "/fs/b%d", r);
        CHECK_OK(db, tu_put(db, p, 1000u + (unsigned)r, mid));
        if (prev[0]) CHECK_OK(db, streamdb_delete(db, prev));
        strcpy(prev, p);
        /* small documents come and go too */
        for (int k = 0; k < 20; k++) {
            char sp[32];
            snprintf(sp, sizeof sp, "/fs/s%d", k);
            if ((r + k) % 2) CHECK_OK(db, tu_put(db, sp, (uint64_t)(r * 100 + k), 3000));
            else {
                int rc = streamdb_delete(db, sp);
                CHECKF(rc == 0 || rc == STREAMDB_ERR_NOT_FOUND, "delete %s = %d", sp, rc);
            }
        }
        if (r % 10 == 9) {
            CHECK_OK(db, streamdb_flush(db));
            tu_check_db(db);
        }
        long long fs = tu_file_size(dbpath);
        if (fs > max_file) max_file = fs;
    }
    CHECK_OK(db, streamdb_flush(db));
    streamdb_stats st;
    CHECK_OK(db, streamdb_calculate_statistics(db, &st));
    /* Live: /fs/a twice (current + previous) + one /fs/b + 10 small = ~4.6 MiB.
     * Without reuse the file would pass 100 MiB. */
    long long bound = 16ll << 20;
    CHECKF(max_file < bound, "file reached %lld bytes, bound %lld", max_file, bound);
    CHECKF(st.file_bytes < (uint64_t)bound, "file_bytes %" PRIu64, st.file_bytes);
    printf("%d rounds: file peaked at %lld bytes; %" PRIu64 " of %" PRIu64 " pages free\n", rounds,
           max_file, st.free_pages, st.total_pages);
    tu_expect_doc(db, "/fs/a", 0, (uint64_t)rounds - 1, big);
    tu_expect_doc(db, "/fs/a", -1, (uint64_t)rounds - 2, big);
    tu_expect_doc(db, prev, 0, 1000u + (unsigned)rounds - 1, mid);
    tu_check_db(db);

    /* compact: a big document written and deleted leaves a free tail. */
    size_t huge = (size_t)tu_env_long("STREAMDB_COMPACT_MB", 20) << 20;
    long long before = tu_file_size(dbpath);
    CHECK_OK(db, tu_put(db, "/fs/huge", 77, huge));
    CHECK_OK(db, streamdb_flush(db));
    long long with_huge = tu_file_size(dbpath);
    CHECKF(with_huge >= before + (long long)huge / 2, "file %lld -> %lld with a %zu byte doc",
           before, with_huge, huge);
    CHECK_OK(db, streamdb_delete(db, "/fs/huge"));
    CHECK_OK(db, streamdb_flush(db));
    CHECK_OK(db, streamdb_compact(db));
    long long after = tu_file_size(dbpath);
    CHECKF(after <= with_huge - (long long)huge / 2, "compact: %lld -> %lld bytes", with_huge, after);
    CHECK_OK(db, streamdb_calculate_statistics(db, &st));
    CHECK(st.file_bytes == (uint64_t)after);
    CHECK(st.total_pages * st.page_size <= (uint64_t)after + st.page_size);
    printf("compact: %lld -> %lld bytes\n", with_huge, after);
    tu_expect_doc(db, "/fs/a", 0, (uint64_t)rounds - 1, big);
    tu_check_db(db);
    /* writing after a compact works and reuses/extends correctly */
    CHECK_OK(db, tu_put(db, "/fs/after", 5, 3u << 20));
    tu_expect_doc(db, "/fs/after", 0, 5, 3u << 20);
    CHECK_OK(db, streamdb_close(db));

    db = tu_open(dbpath);
    tu_expect_doc(db, "/fs/a", 0, (uint64_t)rounds - 1, big);
    tu_expect_doc(db, "/fs/after", 0, 5, 3u << 20);
    void *d;
    size_t dl;
    CHECK_RC(db, streamdb_get(db, "/fs/huge", 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    tu_finish();
}
