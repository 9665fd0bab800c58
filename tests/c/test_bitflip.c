/*
 * test_bitflip.c -- T8 smoke form (RELIABILITY.md): one flipped bit.
 *
 * A database with chunked, inline and mid-sized documents is flushed and
 * closed.  For STREAMDB_BITFLIP_COUNT offsets (default 300) spread over the
 * whole file, a child process copies it, flips one bit, opens the copy and
 * reads everything: whole gets, a range read, a stream, a prefix search and
 * streamdb_check.  Every read must give the right bytes or
 * STREAMDB_ERR_CORRUPT; the open may refuse with CORRUPT or NOT_A_DB; nothing
 * may crash, hang or return wrong bytes.  A child per flip keeps a crash from
 * hiding the rest and names the offset.  Most of the file is document data
 * under a CRC, so most flips must be detected.
 */
#include <signal.h>
#include <sys/wait.h>

#include "testutil.h"

#define NDOCS 8
static const size_t lens[NDOCS] = {300000, 300000, 150000, 70000, 5000, 900, 100, 0};

static void path_of(char *b, int i) { snprintf(b, 32, "/f/doc%d", i); }

enum { CLEAN = 0, DETECTED = 1, WRONG = 2, SETUP = 3 };

static int child(const char *orig, const char *copy, long long off, int bit) {
    if (tu_copy_file(orig, copy, -1) != 0) return SETUP;
    int fd = open(copy, O_RDWR);
    unsigned char c;
    if (fd < 0 || pread(fd, &c, 1, off) != 1) return SETUP;
    c ^= (unsigned char)(1u << bit);
    if (pwrite(fd, &c, 1, off) != 1) return SETUP;
    close(fd);
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    tu_codec(&cfg);
    cfg.page_size = 4096;
    streamdb *db = NULL;
    int rc = streamdb_open(copy, &cfg, &db);
    if (rc == STREAMDB_ERR_CORRUPT || rc == STREAMDB_ERR_NOT_A_DB || rc == STREAMDB_ERR_CRYPTO) return DETECTED;
    if (rc) {
        fprintf(stderr, "flip at %lld bit %d: open = %d (%s): %s\n", off, bit, rc,
                streamdb_strerror(rc), tu_errmsg(NULL));
        return WRONG;
    }
    int detected = 0, wrong = 0;
    char p[32];
    for (int i = 0; i < NDOCS; i++) {
        path_of(p, i);
        void *d = NULL;
        size_t dl = 0;
        rc = streamdb_get(db, p, 0, &d, &dl);
        if (rc == STREAMDB_ERR_CORRUPT || rc == STREAMDB_ERR_CRYPTO) detected = 1;
        else if (rc) {
            fprintf(stderr, "flip at %lld bit %d: get %s = %d (%s): %s\n", off, bit, p, rc,
                    streamdb_strerror(rc), tu_errmsg(db));
            wrong = 1;
        } else {
            if (dl != lens[i] || tu_verify(d, dl, (uint64_t)i, 0) >= 0) {
                fprintf(stderr, "flip at %lld bit %d: get %s returned WRONG BYTES\n", off, bit, p);
                wrong = 1;
            }
            streamdb_free(d);
        }
        /* a range in the middle, and a stream over the tail */
        if (lens[i] > 1000) {
            unsigned char buf[1000];
            size_t n = 0;
            rc = streamdb_read(db, p, 0, lens[i] / 2, buf, sizeof buf, &n);
            if (rc == STREAMDB_ERR_CORRUPT || rc == STREAMDB_ERR_CRYPTO) detected = 1;
            else if (rc || n != sizeof buf || tu_verify(buf, n, (uint64_t)i, lens[i] / 2) >= 0) {
                fprintf(stderr, "flip at %lld bit %d: read %s = %d, wrong result\n", off, bit, p, rc);
                wrong = 1;
            }
            streamdb_stream *s = NULL;
            rc = streamdb_stream_open(db, p, strlen(p), 0, &s);
            if (rc == STREAMDB_ERR_CORRUPT || rc == STREAMDB_ERR_CRYPTO) detected = 1;
            else if (rc) wrong = 1;
            else {
                uint64_t pos = 0;
                int64_t start = lens[i] > 70000 ? (int64_t)(lens[i] - 70000) : 0;
                rc = streamdb_stream_seek(s, start, 0, &pos);
                if (rc || pos != (uint64_t)start) wrong = 1;
                static unsigned char sb[70000];
                size_t n2 = 0;
                rc = streamdb_stream_read(s, sb, sizeof sb, &n2);
                if (rc == STREAMDB_ERR_CORRUPT || rc == STREAMDB_ERR_CRYPTO) detected = 1;
                else if (rc || tu_verify(sb, n2, (uint64_t)i, pos) >= 0 || pos + n2 > lens[i]) {
                    fprintf(stderr, "flip at %lld bit %d: stream %s = %d, wrong result\n", off, bit, p, rc);
                    wrong = 1;
                }
                streamdb_stream_close(s);
            }
        }
    }
    char **paths;
    size_t n = 0;
    rc = streamdb_search(db, "/f/", &paths, &n);
    if (rc == STREAMDB_ERR_CORRUPT || rc == STREAMDB_ERR_CRYPTO) detected = 1;
    else if (rc || n != NDOCS) {
        fprintf(stderr, "flip at %lld bit %d: search = %d with %zu paths\n", off, bit, rc, n);
        wrong = 1;
    } else {
        for (size_t k = 0; k < n; k++) {
            path_of(p, (int)k);
            if (strcmp(paths[k], p) != 0) {
                fprintf(stderr, "flip at %lld bit %d: search gave %s\n", off, bit, paths[k]);
                wrong = 1;
            }
        }
    }
    if (rc == 0) streamdb_free_paths(paths, n);
    rc = streamdb_check(db);
    if (rc == STREAMDB_ERR_CORRUPT || rc == STREAMDB_ERR_CRYPTO) detected = 1;
    else if (rc) wrong = 1;
    /* A read that detected corruption should make the check fail too. */
    if (detected && rc == 0) {
        fprintf(stderr, "flip at %lld bit %d: reads saw corruption but check passed\n", off, bit);
        wrong = 1;
    }
    streamdb_close(db);
    return wrong ? WRONG : detected ? DETECTED : CLEAN;
}

int main(void) {
    tu_init("bitflip");
    long count = tu_env_long("STREAMDB_BITFLIP_COUNT", 300);
    uint64_t seed = (uint64_t)tu_env_long("STREAMDB_BITFLIP_SEED", (long)(time(NULL) ^ getpid()));
    printf("seed %" PRIu64 " (STREAMDB_BITFLIP_SEED to replay)\n", seed);
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    tu_codec(&cfg);
    cfg.page_size = 4096;
    const char *orig = tu_path("flip.db");
    streamdb *db = tu_open_cfg(orig, &cfg);
    char p[32];
    for (int i = 0; i < NDOCS; i++) {
        path_of(p, i);
        CHECK_OK(db, tu_put(db, p, (uint64_t)i, lens[i]));
    }
    CHECK_OK(db, streamdb_flush(db));
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    long long size = tu_file_size(orig);
    REQUIRE(size > 0);
    printf("file: %lld bytes\n", size);
    const char *copy = tu_path("flip-copy.db");

    long clean = 0, detected = 0, wrong = 0, crashed = 0;
    uint64_t r = seed;
    for (long k = 0; k < count; k++) {
        long long stride = size / count;
        long long off = k * stride + (long long)(tu_mix(r++) % (uint64_t)(stride ? stride : 1));
        if (off >= size) off = size - 1;
        int bit = (int)(tu_mix(r++) % 8);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(30);
            _exit(child(orig, copy, off, bit));
        }
        int status;
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status)) {
            TU_FAIL("flip at %lld bit %d: the reader died with signal %d", off, bit, WTERMSIG(status));
            crashed++;
        } else if (WEXITSTATUS(status) == WRONG) {
            TU_FAIL("flip at %lld bit %d: a wrong result (see above)", off, bit);
            wrong++;
        } else if (WEXITSTATUS(status) == DETECTED) detected++;
        else if (WEXITSTATUS(status) == CLEAN) clean++;
        else {
            TU_FAIL("flip at %lld: child status %d", off, WEXITSTATUS(status));
            wrong++;
        }
    }
    printf("%ld points tried, %ld wrong results, %ld crashes; %ld detected, %ld harmless\n",
           count, wrong, crashed, detected, clean);
    CHECKF(detected * 2 >= count, "only %ld of %ld flips were detected", detected, count);
    tu_finish();
}
