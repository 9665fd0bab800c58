/*
 * test_cold_read.c -- a point read from a cold page cache reads the pages it
 * needs, not the device's read-ahead window around each of them.
 *
 * Tree pages are read through the map.  A fault on a page that is not cached
 * makes the kernel read read_ahead_kb around it (8 MiB on some virtual disks,
 * 128 KiB by default), so before the fix a cold open + get among 1,000,000
 * documents read 30 MB.  The pager now asks for exactly the page before its
 * first touch (map_prefetch in pager.c).
 *
 * Method: a database of 50,000 small documents (about 11 MB) is closed, its
 * files are dropped from the page cache (fdatasync + POSIX_FADV_DONTNEED),
 * and the bytes this process makes the storage layer read (read_bytes of
 * /proc/self/io) are counted across an open and one get.  The pages such a
 * read needs are the meta slot, the log header and a root-to-leaf path in
 * each of the two trees: well under 512 KiB (127-340 KiB here, the same
 * count in every run: it counts pages, not time).
 *
 * Where the count cannot be trusted the test is skipped (exit 77): no
 * /proc/self/io, or a file system whose pages fadvise does not drop (tmpfs),
 * found by a control read of the whole evicted file that must itself be
 * counted.  STREAMDB_COLD_DOCS sets the number of documents.
 *
 * Then the same for 400 documents of 64 KiB, one chunk each, which a point
 * read also takes from the map: the chunk and the tree pages, under 640 KiB.
 * (Without the hints this reads 8-11 MB here, where read_ahead_kb is 8 MiB.
 * Where it is 128 KiB, the default, six faults' read-around comes near the
 * first bound and one fault's stays under the second: there the test may
 * not tell the hints from their absence.)
 */
#include "testutil.h"

static long long read_bytes(void) {
    FILE *f = fopen("/proc/self/io", "r");
    if (!f) return -1;
    char line[128];
    long long v = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "read_bytes:", 11)) v = atoll(line + 11);
    fclose(f);
    return v;
}

static int evict(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    int rc = fdatasync(fd) || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) ? -1 : 0;
    close(fd);
    return rc;
}

static void doc_path(char *p, size_t cap, unsigned i) {
    snprintf(p, cap, "/cold/level%04u/asset%07u", i / 1000, i);
}

/* Evicts the database at dbpath, then opens it and gets path into got (cap
 * bytes), which must equal want (wlen bytes).  Returns the bytes the storage
 * layer read meanwhile, checked against bound. */
static long long cold_get(const char *dbpath, const char *walpath, const streamdb_config *cfg,
                          const char *path, uint8_t *got, size_t cap, const uint8_t *want,
                          size_t wlen, long long bound) {
    REQUIRE(evict(dbpath) == 0 && evict(walpath) == 0);
    long long r0 = read_bytes();
    streamdb *db = tu_open_cfg(dbpath, cfg);
    size_t len = 0;
    CHECK_OK(db, streamdb_get_into(db, path, strlen(path), 0, got, cap, &len));
    long long used = read_bytes() - r0;
    CHECK(len == wlen && !memcmp(got, want, wlen));
    CHECKF(used <= bound, "a cold open + get of %s (%zu bytes) read %lld bytes from the device "
           "(bound %lld; the file is %lld)", path, wlen, used, bound, tu_file_size(dbpath));
    if (getenv("STREAMDB_COLD_VERBOSE")) printf("  %s: %lld bytes\n", path, used);
    CHECK_OK(db, streamdb_close(db));
    return used;
}

int main(void) {
    tu_init("cold_read");
    unsigned ndocs = getenv("STREAMDB_COLD_DOCS") ? (unsigned)atoi(getenv("STREAMDB_COLD_DOCS")) : 50000;
    if (ndocs < 1000) ndocs = 1000;
    const char *dbpath = tu_path("cold.db");
    const char *walpath = tu_path("cold.db-wal");
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.use_mmap = 1;
    streamdb *db = tu_open_cfg(dbpath, &cfg);
    char p[64];
    uint8_t doc[64];
    for (unsigned i = 0; i < ndocs;) {
        REQUIRE_OK(db, streamdb_begin_transaction(db));
        for (unsigned end = i + 5000; i < end && i < ndocs; i++) {
            doc_path(p, sizeof p, i);
            tu_fill(doc, sizeof doc, i, 0);
            REQUIRE_OK(db, streamdb_write_document(db, p, doc, sizeof doc, NULL));
        }
        REQUIRE_OK(db, streamdb_commit_transaction(db));
    }
    CHECK_OK(db, streamdb_close(db));
    long long fsize = tu_file_size(dbpath);

    /* control: is a read of the evicted file counted at all here? */
    REQUIRE(evict(dbpath) == 0 && evict(walpath) == 0);
    long long r0 = read_bytes();
    if (r0 < 0) {
        printf("cold_read: SKIP: no read_bytes in /proc/self/io\n");
        return 77;
    }
    int fd = open(dbpath, O_RDONLY);
    REQUIRE(fd >= 0);
    static uint8_t buf[1 << 20];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
    }
    close(fd);
    long long control = read_bytes() - r0;
    if (control < fsize / 2) {
        printf("cold_read: SKIP: reading the evicted %lld-byte file counted %lld bytes "
               "(the file system keeps its pages, or does not count reads)\n", fsize, control);
        return 77;
    }

    long long worst = 0;
    for (int k = 0; k < 5; k++) {
        unsigned i = (unsigned)(((uint64_t)k * 7919u * 1000003u + 17u) % ndocs);
        doc_path(p, sizeof p, i);
        uint8_t got[128];
        tu_fill(doc, sizeof doc, i, 0);
        long long used = cold_get(dbpath, walpath, &cfg, p, got, sizeof got, doc, sizeof doc,
                                  512 * 1024);
        if (used > worst) worst = used;
    }
    printf("cold_read: %u documents, %lld-byte file; a cold open + get read at most %lld bytes\n",
           ndocs, fsize, worst);

    /* The same for documents of one 64 KiB chunk, which a point read takes
     * from the map too (map_prefetch_once). */
    const char *bigpath = tu_path("big.db");
    const char *bigwal = tu_path("big.db-wal");
    const unsigned nbig = 400;
    db = tu_open_cfg(bigpath, &cfg);
    for (unsigned i = 0; i < nbig;) {
        REQUIRE_OK(db, streamdb_begin_transaction(db));
        for (unsigned end = i + 50; i < end && i < nbig; i++) {
            snprintf(p, sizeof p, "/big/%04u", i);
            REQUIRE_OK(db, tu_put(db, p, 1000000u + i, 65536));
        }
        REQUIRE_OK(db, streamdb_commit_transaction(db));
    }
    CHECK_OK(db, streamdb_close(db));
    long long bsize = tu_file_size(bigpath);
    long long bworst = 0;
    static uint8_t want[65536], got[65536];
    for (int k = 0; k < 5; k++) {
        unsigned i = (unsigned)(((uint64_t)k * 104729u + 31u) % nbig);
        snprintf(p, sizeof p, "/big/%04u", i);
        tu_fill(want, sizeof want, 1000000u + i, 0);
        long long used = cold_get(bigpath, bigwal, &cfg, p, got, sizeof got, want, sizeof want,
                                  640 * 1024);
        if (used > bworst) bworst = used;
    }
    printf("cold_read: %u x 64 KiB, %lld-byte file; a cold open + get read at most %lld bytes\n",
           nbig, bsize, bworst);
    tu_finish();
    return 0;
}
