/*
 * torture_powerloss.c -- T3 (simulated power loss) and T6 (forget unsynced
 * data) of RELIABILITY.md.
 *
 * A seeded workload (puts of small, chunked and big (> 256 KiB, bypassing the
 * log) documents, deletes, multi-write transactions, flushes, compactions)
 * runs on the power-loss simulator.  A dry run counts its syncs S; then for
 * every k in 1..S the workload is run again and the simulator crashes at the
 * k-th sync.  From each crash several disk images are built: every pending
 * write kept, every pending write dropped (T6), and R random images where
 * each pending write is kept, dropped or torn at 512-byte sectors and the
 * writes may be reordered.  Each image is opened; the oracle requires the
 * state to equal the model after some prefix of the commits that includes
 * every commit acknowledged before the last completed sync, and
 * streamdb_check to pass.  Both sync_commits = 1 and 0 are run.
 *
 * Environment: TORTURE_SCALE (default 1: smoke) multiplies seeds, steps and
 * random images; TORTURE_SEED fixes the first seed (printed on failure).
 */
#include "torture.h"

static long points, lost, integrity;

static void cfg_for(streamdb_config *cfg, const streamdb_vfs *vfs, int sync_commits)
{
    streamdb_config_init(cfg);
    cfg->page_size = 4096;
    cfg->wal_autocheckpoint = 96 * 1024;
    cfg->sync_commits = sync_commits;
    cfg->vfs = vfs;
    cfg->async_workers = 1;
}

/* Runs the workload until the crash (crash_at = 0: never).  Returns the
 * number of syncs seen; *acked / *synced as w_run. */
static long run_until(plsim *pl, const workload *w, int sync_commits, int *acked, int *synced)
{
    streamdb_config cfg;
    cfg_for(&cfg, pl_vfs(pl), sync_commits);
    streamdb *db = NULL;
    *acked = *synced = 0;
    int rc = streamdb_open("pl.db", &cfg, &db);
    if (rc == 0) {
        w_run(db, w, sync_commits, acked, synced, NULL, NULL);
        int crc = streamdb_close(db);
        if (crc == 0 && !pl_crashed(pl)) *synced = *acked;   /* close checkpoints */
        if (crc && !pl_crashed(pl))
            fprintf(stderr, "close without crash = %s\n", streamdb_strerror(crc));
    } else if (!pl_crashed(pl)) {
        fprintf(stderr, "open without crash = %s: %s\n", streamdb_strerror(rc), tu_errmsg(NULL));
    }
    return pl_syncs(pl);
}

static void verify_image(streamdb_vfs *img, const model *hist, int ncommits, int lo, int hi,
                         int sync_commits, const char *label)
{
    points++;
    streamdb_config cfg;
    cfg_for(&cfg, img, sync_commits);
    streamdb *db = NULL;
    int rc = streamdb_open("pl.db", &cfg, &db);
    if (rc) {
        integrity++;
        fprintf(stderr, "FAIL %s: reopen = %s: %s\n", label, streamdb_strerror(rc), tu_errmsg(NULL));
        return;
    }
    char why[700];
    int j = w_match(db, hist, lo, hi, why, sizeof why);
    if (j < 0) {
        char tmp[700];
        int older = w_match(db, hist, 0, lo - 1 < 0 ? 0 : lo - 1, tmp, sizeof tmp);
        if (lo > 0 && older >= 0) {
            lost++;
            fprintf(stderr, "FAIL %s: state is prefix %d, but %d commits were acknowledged and synced\n",
                    label, older, lo);
        } else {
            integrity++;
            fprintf(stderr, "FAIL %s: state matches no prefix in [%d,%d] (%s)\n", label, lo, hi, why);
        }
    }
    rc = streamdb_check(db);
    if (rc) {
        integrity++;
        fprintf(stderr, "FAIL %s: streamdb_check = %s: %s\n", label, streamdb_strerror(rc), tu_errmsg(db));
    }
    rc = streamdb_close(db);
    if (rc) {
        integrity++;
        fprintf(stderr, "FAIL %s: close after recovery = %s: %s\n", label, streamdb_strerror(rc), tu_errmsg(db));
    }
    (void)ncommits;
}

int main(void)
{
    /* [F10] on every commit that has a fresh page, not only on batches of
     * 256 KiB: these workloads' transactions are small */
    setenv("STREAMDB_TEST_FRESH_DIRECT", "1", 0);
    tu_init("torture_powerloss");
    long scale = t_scale();
    uint64_t seed0 = t_seed();
    int nsteps = 14 + 4 * (int)(scale > 4 ? 4 : scale);
    int randoms = (int)(2 * scale);
    long k_only = tu_env_long("TORTURE_K", 0);          /* replay one crash point */
    int nseeds = k_only ? 1 : scale == 1 ? 3 : (int)scale;   /* a replay pins its seed */
    for (int si = 0; si < nseeds * 2; si++) {
        uint64_t seed = seed0 + (uint64_t)(si / 2);
        int sync_commits = (si % 2) == 0;
        long only_sync = tu_env_long("TORTURE_SYNC_COMMITS", 0);   /* 1: only 1, 2: only 0 */
        if ((only_sync == 1 && !sync_commits) || (only_sync == 2 && sync_commits)) continue;
        workload w = w_make(seed, nsteps, (int)tu_env_long("TORTURE_BIG_PCT", 9) - 1);
        model *hist = w_history(&w, NULL);
        plsim *dry = pl_new();
        int acked, synced;
        long S = run_until(dry, &w, sync_commits, &acked, &synced);
        pl_free(dry);
        if (acked != w.ncommits) {
            fprintf(stderr, "FAIL seed %llu: the dry run acknowledged %d of %d commits\n",
                    (unsigned long long)seed, acked, w.ncommits);
            integrity++;
        }
        for (long k = 1; k <= S; k++) {
            if (k_only && k != k_only) continue;
            plsim *pl = pl_new();
            pl_crash_at_sync(pl, k);
            run_until(pl, &w, sync_commits, &acked, &synced);
            int hi = acked + 1 > w.ncommits ? w.ncommits : acked + 1;
            for (int v = 0; v < 2 + randoms; v++) {
                int mode = v == 0 ? PL_KEEP_ALL : v == 1 ? PL_DROP_ALL : PL_RANDOM;
                uint64_t iseed = tu_mix(seed ^ ((uint64_t)k << 20) ^ (uint64_t)v);
                char label[200];
                snprintf(label, sizeof label,
                         "TORTURE_SEED=%llu sync_commits=%d TORTURE_K=%ld image %d (mode %d, seed %llu; "
                         "acked %d, synced %d)",
                         (unsigned long long)seed, sync_commits, k, v, mode, (unsigned long long)iseed,
                         acked, synced);
                streamdb_vfs *img = pl_crash_image(pl, mode, iseed);
                verify_image(img, hist, w.ncommits, synced, hi, sync_commits, label);
                streamdb_vfs_memory_free(img);
            }
            pl_free(pl);
        }
        w_history_free(hist, w.ncommits);
        w_free(&w);
    }
    t_figure("T3 power loss", points, lost, integrity);
    if (lost || integrity) tu_failures = 1;
    tu_finish();
}
