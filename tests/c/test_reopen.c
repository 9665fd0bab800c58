/*
 * test_reopen.c -- everything persists across close and reopen, for every
 * page size from 4096 to 65536: content, versions (current and previous),
 * ids, extra paths, deletions, search results, counts; and a second round of
 * changes after the first reopen.
 */
#include "testutil.h"

static const size_t lens[] = {0, 10, 3000, 70000, 300000, 1500000};
#define NL (sizeof lens / sizeof lens[0])

static void verify(streamdb *db, uint32_t ps, const uint8_t ids[NL][16], int round) {
    CHECK(streamdb_page_size(db) == ps);
    char p[64];
    for (size_t i = 0; i < NL; i++) {
        snprintf(p, sizeof p, "/r/doc%zu", i);
        if (i == 1) {
            void *d;
            size_t dl;
            CHECK_RC(db, streamdb_get(db, p, 0, &d, &dl), STREAMDB_ERR_NOT_FOUND);
            continue;
        }
        /* even docs were overwritten once: current = seed 100+i, previous = seed i */
        if (i % 2 == 0) {
            tu_expect_doc(db, p, 0, 100 + i, lens[NL - 1 - i]);
            tu_expect_doc(db, p, -1, i, lens[i]);
        } else {
            tu_expect_doc(db, p, 0, i, lens[i]);
        }
        uint8_t id[16];
        CHECK_OK(db, streamdb_get_id_by_path(db, p, strlen(p), id));
        CHECK(memcmp(id, ids[i], 16) == 0);
        streamdb_doc_info info;
        CHECK_OK(db, streamdb_stat(db, p, strlen(p), 0, &info));
        CHECK(info.version == (i % 2 == 0 ? 2u : 1u));
    }
    /* /r/alias is a second path of doc3. */
    tu_expect_doc(db, "/r/alias", 0, 3, lens[3]);
    char **paths;
    size_t n;
    CHECK_OK(db, streamdb_list_paths(db, ids[3], &paths, &n));
    CHECK(n == 2);
    streamdb_free_paths(paths, n);
    CHECK_OK(db, streamdb_search(db, "/r/", &paths, &n));
    CHECK(n == NL - 1 + 1 + (round > 0 ? 1 : 0));
    streamdb_free_paths(paths, n);
    uint64_t count;
    CHECK_OK(db, streamdb_count(db, &count));
    CHECK(count == NL - 1 + (round > 0 ? 1 : 0));
    if (round > 0) tu_expect_doc(db, "/r/later", 0, 999, 123456);
}

static void run(uint32_t ps) {
    const char *dbpath = tu_path("reopen-%u.db", ps);
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.page_size = ps;
    streamdb *db = tu_open_cfg(dbpath, &cfg);
    uint8_t ids[NL][16];
    char p[64];
    for (size_t i = 0; i < NL; i++) {
        snprintf(p, sizeof p, "/r/doc%zu", i);
        void *b = tu_make(lens[i], i);
        CHECK_OK(db, streamdb_write_document(db, p, b, lens[i], ids[i]));
        free(b);
    }
    for (size_t i = 0; i < NL; i += 2) {
        snprintf(p, sizeof p, "/r/doc%zu", i);
        CHECK_OK(db, tu_put(db, p, 100 + i, lens[NL - 1 - i]));
    }
    CHECK_OK(db, streamdb_delete(db, "/r/doc1"));
    CHECK_OK(db, streamdb_bind_to_path(db, ids[3], "/r/alias", 8));
    verify(db, ps, (const uint8_t(*)[16])ids, 0);
    CHECK_OK(db, streamdb_close(db)); /* no flush: close must persist */

    db = tu_open_cfg(dbpath, &cfg);
    verify(db, ps, (const uint8_t(*)[16])ids, 0);
    tu_check_db(db);
    CHECK_OK(db, tu_put(db, "/r/later", 999, 123456));
    CHECK_OK(db, streamdb_close(db));

    db = tu_open_cfg(dbpath, &cfg);
    verify(db, ps, (const uint8_t(*)[16])ids, 1);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    /* A reopen with no changes in between changes nothing. */
    db = tu_open_cfg(dbpath, &cfg);
    verify(db, ps, (const uint8_t(*)[16])ids, 1);
    CHECK_OK(db, streamdb_close(db));
    printf("page size %u: ok\n", ps);
}

int main(void) {
    tu_init("reopen");
    for (uint32_t ps = 4096; ps <= 65536; ps *= 2) run(ps);
    tu_finish();
}
