/*
 * writeback_probe -- is StreamDb's writeback hint worth keeping on this disk?
 *
 * A large document bypasses the log: its chunks go straight into the main
 * file, and every SDB_WRITEBACK_BYTES (8 MiB) of them the pager asks the
 * kernel to start writing them out (sync_file_range with WRITE only), so
 * that the device works while the caller produces the rest and the commit's
 * fdatasync waits for the tail only.  Whether that pays depends on the
 * device.  This program times, in the same run and on the same file system,
 * one big write made durable four ways:
 *
 *   write+fsync    write(2) in 64 KiB pieces, then fsync: the benchmark's
 *                  plain-file peer, and what (e)'s target is measured against
 *   hint 8 MiB     pwrite in 64 KiB pieces, sync_file_range(WRITE) every
 *                  8 MiB, fdatasync: StreamDb's I/O pattern without StreamDb
 *   hint 32 MiB    the same with a window four times as long
 *   hint 8 @16K    hint 8 MiB, the file's first 16 KiB left out: each 64 KiB
 *                  write straddles a 64 KiB boundary of the file, as the
 *                  chunks of a document that starts after a database's
 *                  header pages would unless they are aligned
 *   streamdb       the library itself: a streaming writer, 64 KiB writes,
 *                  commit (chunk CRCs, the log record and its sync included)
 *
 * The variants take turns in a new random order each round.  Before each
 * one the previous file is deleted, an optional burst of other writes runs
 * (--disturb-mib: a file of that size written, fsynced and deleted, as an
 * earlier benchmark leg would leave the disk), and the disk is let settle
 * as streamdb_bench does: sync(), then 4 KiB append+fdatasync probes until
 * the median of the last five is within 1.5x of the quiet latency (5 s at
 * most).  Medians over the rounds are printed with each one's ratio to the
 * plain file (above 1: faster than it).
 *
 *   writeback_probe [--dir DIR] [--rounds N] [--mib N] [--disturb-mib N]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "streamdb.h"

#define PIECE (64u << 10)
#define NVAR 5
#define MAXROUNDS 64

enum { V_FILE, V_HINT8, V_HINT32, V_HINT8_OFF, V_STREAMDB };
static const char *const var_name[NVAR] = {"write+fsync", "hint 8 MiB", "hint 32 MiB", "hint 8 @16K",
                                           "streamdb"};
static const size_t var_window[NVAR] = {0, 8u << 20, 32u << 20, 8u << 20, 0};
static const size_t var_base[NVAR] = {0, 0, 0, 16u << 10, 0};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "writeback_probe: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double t[MAXROUNDS];
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* ---- the settle step (as in streamdb_bench) ---- */

static int probe_fd = -1;
static double quiet;

static double probe_once(void)
{
    static char blk[4096];
    double t0 = now_s();
    if (write(probe_fd, blk, sizeof blk) != (ssize_t)sizeof blk || fdatasync(probe_fd) != 0)
        die("settle probe");
    double dt = now_s() - t0;
    if (lseek(probe_fd, 0, SEEK_END) >= (4 << 20) && ftruncate(probe_fd, 0) == 0)
        lseek(probe_fd, 0, SEEK_SET);
    return dt;
}

static void settle_init(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/settle-probe", dir);
    probe_fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (probe_fd < 0)
        die(p);
    unlink(p);
    sync();
    double v[21];
    for (int i = 0; i < 21; i++)
        v[i] = probe_once();
    quiet = median(v, 21);
}

static void settle(void)
{
    double last[5], t0 = now_s();
    int n = 0;
    sync();
    for (;;) {
        last[n++ % 5] = probe_once();
        if (n >= 5 && median(last, 5) <= 1.5 * quiet)
            return;
        if (now_s() - t0 > 5)
            return;
    }
}

/* ---- the variants ---- */

/* len bytes of data at file offset base (write(2) from the current offset
 * when not positional), with the hint every window bytes (0: never). */
static void write_all(int fd, const uint8_t *data, size_t len, size_t window, int positional,
                      size_t base)
{
    size_t lo = 0;
    for (size_t off = 0; off < len;) {
        size_t n = len - off < PIECE ? len - off : PIECE;
        ssize_t w = positional ? pwrite(fd, data + off, n, (off_t)(base + off)) : write(fd, data + off, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("write");
        }
        off += (size_t)w;
#if defined(__linux__) && defined(SYNC_FILE_RANGE_WRITE)
        if (window && off - lo >= window) {
            (void)sync_file_range(fd, (off_t)(base + lo), (off_t)(off - lo), SYNC_FILE_RANGE_WRITE);
            lo = off;
        }
#else
        (void)lo;
        (void)window;
        (void)base;
#endif
    }
}

/* Seconds for variant v to write len bytes of data to path, durably. */
static double run_variant(int v, const char *path, const uint8_t *data, size_t len)
{
    if (v == V_STREAMDB) {
        streamdb *db;
        streamdb_writer *w;
        int rc = streamdb_open(path, NULL, &db);
        if (rc)
            return fprintf(stderr, "open %s: %s\n", path, streamdb_strerror(rc)), exit(1), 0;
        settle();   /* the open's own syncs are not the write's */
        double t0 = now_s();
        rc = streamdb_writer_begin(db, "/big", 4, &w);
        for (size_t off = 0; !rc && off < len; off += PIECE)
            rc = streamdb_writer_write(w, data + off, len - off < PIECE ? len - off : PIECE);
        rc = rc ? (streamdb_writer_abort(w), rc) : streamdb_writer_commit(w, NULL);
        double dt = now_s() - t0;
        if (rc)
            return fprintf(stderr, "write: %s\n", streamdb_errmsg(db)), exit(1), 0;
        streamdb_close(db);
        return dt;
    }
    settle();
    double t0 = now_s();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die(path);
    write_all(fd, data, len, var_window[v], v != V_FILE, var_base[v]);
    if ((v == V_FILE ? fsync(fd) : fdatasync(fd)) != 0)
        die("fsync");
    close(fd);
    return now_s() - t0;
}

static void remove_db(const char *path)
{
    char p[4200];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
}

static void disturb(const char *dir, const uint8_t *data, size_t len, size_t mib)
{
    if (!mib)
        return;
    char p[4096];
    snprintf(p, sizeof p, "%s/disturb", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die(p);
    for (size_t done = 0; done < mib << 20; done += len)
        write_all(fd, data, len < (mib << 20) - done ? len : (mib << 20) - done, 0, 0, 0);
    if (fsync(fd) != 0)
        die("fsync");
    close(fd);
    unlink(p);
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int rounds = 9;
    size_t mib = 256, disturb_mib = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mib") && i + 1 < argc)
            mib = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--disturb-mib") && i + 1 < argc)
            disturb_mib = (size_t)atol(argv[++i]);
        else {
            fprintf(stderr, "usage: writeback_probe [--dir DIR] [--rounds N] [--mib N] "
                            "[--disturb-mib N]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAXROUNDS || mib < 1 || mib > 4096) {
        fprintf(stderr, "writeback_probe: --rounds 1..%d, --mib 1..4096\n", MAXROUNDS);
        return 2;
    }
    char tmpl[] = "/tmp/writeback_probe.XXXXXX";
    int own_dir = !dir;
    if (own_dir && !(dir = mkdtemp(tmpl)))
        die("mkdtemp");
    size_t len = mib << 20;
    uint8_t *data = malloc(len);
    if (!data)
        die("malloc");
    uint64_t x = 0x243F6A8885A308D3ull;
    for (size_t i = 0; i + 8 <= len; i += 8) {   /* incompressible */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(data + i, &x, 8);
    }
    settle_init(dir);
    printf("writeback_probe: %zu MiB, %d rounds, disturbance %zu MiB, dir %s\n"
           "disk when quiet: %.0f us per 4 KiB append + fdatasync\n",
           mib, rounds, disturb_mib, dir, quiet * 1e6);
    double t[NVAR][MAXROUNDS];
    char path[4096];
    unsigned seed = 12345;
    for (int r = 0; r < rounds; r++) {
        int order[NVAR];
        for (int i = 0; i < NVAR; i++)
            order[i] = i;
        for (int i = NVAR - 1; i > 0; i--) {
            int j = (int)(rand_r(&seed) % (unsigned)(i + 1)), s = order[i];
            order[i] = order[j];
            order[j] = s;
        }
        for (int k = 0; k < NVAR; k++) {
            int v = order[k];
            snprintf(path, sizeof path, "%s/v%d", dir, v);
            remove_db(path);
            disturb(dir, data, len, disturb_mib);
            t[v][r] = run_variant(v, path, data, len);
            fprintf(stderr, "  round %d: %-12s %.3f s\n", r + 1, var_name[v], t[v][r]);
        }
    }
    double base = median(t[0], rounds);
    printf("\n%-12s %10s %10s %10s %12s %s\n", "variant", "median s", "min s", "max s", "GB/s", "vs write+fsync");
    for (int v = 0; v < NVAR; v++) {
        double m = median(t[v], rounds), lo = t[v][0], hi = t[v][0];
        for (int r = 1; r < rounds; r++) {
            lo = t[v][r] < lo ? t[v][r] : lo;
            hi = t[v][r] > hi ? t[v][r] : hi;
        }
        printf("%-12s %10.3f %10.3f %10.3f %12.2f %.2fx\n", var_name[v], m, lo, hi, len / m / 1e9,
               base / m);
    }
    for (int v = 0; v < NVAR; v++) {
        snprintf(path, sizeof path, "%s/v%d", dir, v);
        remove_db(path);
    }
    close(probe_fd);
    if (own_dir)
        rmdir(dir);
    free(data);
    return 0;
}
