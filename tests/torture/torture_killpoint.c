/*
 * torture_killpoint.c -- T5 of RELIABILITY.md: named kill points.
 *
 * The core honours STREAMDB_KILLPOINT=name[:n] at open: it SIGKILLs itself
 * the n-th time it reaches the point.  For every point below and n = 1, 2,
 * ... (until the point is no longer reached, or TORTURE_SCALE * 3), a child
 * opens a database on disk (the file VFS, /dev/shm when present), runs a
 * seeded workload (puts incl. big documents that bypass the log, overwrites
 * past versions_to_keep, deletes, transactions, flushes, compactions) and
 * reports each acknowledged commit over a pipe.  The parent reopens the
 * files and requires (as T4): every acknowledged commit present, the one in
 * flight all or nothing, streamdb_check passing.  Every point must be
 * reached at least once.
 */
#include "torture.h"

#include <signal.h>
#include <sys/wait.h>

static const char *points_list[] = {
    "commit.before_data_sync", "commit.before_commit_frame", "commit.before_log_sync",
    "commit.after_log_sync", "checkpoint.before_file_sync", "checkpoint.before_meta",
    "checkpoint.before_log_reset", "compact.before_truncate", "versions.before_reclaim",
};
#define NPOINTS (sizeof points_list / sizeof *points_list)

static long points, lost, integrity;

static void cfg_for(streamdb_config *cfg)
{
    streamdb_config_init(cfg);
    cfg->page_size = 4096;
    cfg->wal_autocheckpoint = 64 * 1024;
    cfg->async_workers = 1;
}

static int ack_fd = -1;
static void on_ack(void *ctx, int acked)
{
    (void)ctx;
    int32_t v = acked;
    if (write(ack_fd, &v, sizeof v) != sizeof v) _exit(3);
}

int main(void)
{
    /* [F10] on every commit that has a fresh page, not only on batches of
     * 256 KiB: these workloads' transactions are small */
    setenv("STREAMDB_TEST_FRESH_DIRECT", "1", 0);
    tu_init("torture_killpoint");
    long scale = t_scale();
    uint64_t seed = getenv("TORTURE_SEED") ? t_seed() : 11;
    long maxn = tu_env_long("TORTURE_KILL_MAXN", 3 * scale);
    workload w = w_make(seed, 36, 12);
    /* make sure compaction has free pages at the end: delete everything
     * before the last compaction step */
    model *hist = w_history(&w, NULL);
    const char *dir = tu_fast_dir();
    int reached[NPOINTS] = {0};
    const char *only = getenv("TORTURE_POINT");
    for (size_t p = 0; p < NPOINTS; p++) {
        if (only && strcmp(only, points_list[p])) continue;
        for (long n = tu_env_long("TORTURE_KILL_N", 1); n <= maxn; n++) {
            char dbpath[600], walpath[620];
            snprintf(dbpath, sizeof dbpath, "%s/kp.db", dir);
            snprintf(walpath, sizeof walpath, "%s/kp.db-wal", dir);
            unlink(dbpath);
            unlink(walpath);
            int pfd[2];
            if (pipe(pfd)) { perror("pipe"); return 2; }
            fflush(NULL);
            pid_t pid = fork();
            if (pid == 0) {
                close(pfd[0]);
                ack_fd = pfd[1];
                char kp[200];
                snprintf(kp, sizeof kp, "%s:%ld", points_list[p], n);
                setenv("STREAMDB_KILLPOINT", kp, 1);
                streamdb_config cfg;
                cfg_for(&cfg);
                streamdb *db = NULL;
                if (streamdb_open(dbpath, &cfg, &db)) _exit(4);
                int a, s;
                int rc = w_run(db, &w, 1, &a, &s, on_ack, NULL);
                if (rc) { fprintf(stderr, "child: workload = %s: %s\n", streamdb_strerror(rc), streamdb_errmsg(db)); _exit(5); }
                /* a few extra operations that reach the rarer points */
                rc = streamdb_compact(db);
                if (rc) _exit(6);
                if (streamdb_close(db)) _exit(7);
                _exit(0);
            }
            close(pfd[1]);
            int32_t v, acked = 0;
            while (read(pfd[0], &v, sizeof v) == sizeof v) acked = v;
            close(pfd[0]);
            int status = 0;
            waitpid(pid, &status, 0);
            char label[300];
            snprintf(label, sizeof label, "TORTURE_SEED=%llu TORTURE_POINT=%s TORTURE_KILL_N=%ld (acked %d)",
                     (unsigned long long)seed, points_list[p], n, acked);
            if (WIFEXITED(status)) {
                if (WEXITSTATUS(status) != 0) {
                    integrity++;
                    fprintf(stderr, "FAIL %s: the child exited with %d\n", label, WEXITSTATUS(status));
                }
                break;   /* the point was not reached n times */
            }
            if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
                integrity++;
                fprintf(stderr, "FAIL %s: the child died of signal %d\n", label, WTERMSIG(status));
                break;
            }
            reached[p]++;
            points++;
            streamdb_config cfg;
            cfg_for(&cfg);
            streamdb *db = NULL;
            int rc = streamdb_open(dbpath, &cfg, &db);
            if (rc) {
                integrity++;
                fprintf(stderr, "FAIL %s: reopen = %s: %s\n", label, streamdb_strerror(rc), tu_errmsg(NULL));
                continue;
            }
            int hi = acked + 1 > w.ncommits ? w.ncommits : acked + 1;
            char why[700];
            if (w_match(db, hist, acked, hi, why, sizeof why) < 0) {
                char t[700];
                int older = acked > 0 ? w_match(db, hist, 0, acked - 1, t, sizeof t) : -1;
                if (older >= 0) lost++; else integrity++;
                fprintf(stderr, "FAIL %s: %s: %s\n", label,
                        older >= 0 ? "acknowledged commits lost" : "state is no prefix", why);
            }
            rc = streamdb_check(db);
            if (rc) {
                integrity++;
                fprintf(stderr, "FAIL %s: check = %s: %s\n", label, streamdb_strerror(rc), tu_errmsg(db));
            }
            streamdb_close(db);
        }
    }
    for (size_t p = 0; p < NPOINTS; p++) {
        if (only && strcmp(only, points_list[p])) continue;
        printf("  %-30s reached and killed %d time(s)\n", points_list[p], reached[p]);
        if (!reached[p]) {
            integrity++;
            fprintf(stderr, "FAIL kill point %s was never reached\n", points_list[p]);
        }
    }
    w_history_free(hist, w.ncommits);
    w_free(&w);
    t_figure("T5 kill points", points, lost, integrity);
    if (lost || integrity) tu_failures = 1;
    tu_finish();
}
