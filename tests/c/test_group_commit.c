/*
 * test_group_commit.c -- durable commits from several threads share log
 * syncs (group commit): 4 threads each commit STREAMDB_GROUP_COMMITS
 * (default 60) single-document transactions through a VFS that counts syncs;
 * every commit must be there afterwards, and the log must have been synced
 * fewer times than there were commits.  A single thread's commits are
 * counted too: there each commit costs exactly its own sync (the default
 * sync_commits = 1 promise), no more than a couple per commit.
 */
#include <pthread.h>

#include "testutil.h"

#define NT 4

static const streamdb_vfs *inner;
static atomic_long syncs;

static int c_open(const streamdb_vfs *v, const char *name, int flags, unsigned mode, streamdb_file **out) {
    (void)v;
    return inner->open(inner, name, flags, mode, out);
}
/* Each sync takes at least 2 ms, as on a disk, so the result does not
 * depend on TMPDIR being tmpfs (where a sync is nearly free). */
static int c_sync(streamdb_file *f) {
    atomic_fetch_add(&syncs, 1);
    usleep(2000);
    return inner->sync(f);
}
static int c_exists(const streamdb_vfs *v, const char *name, int *e) {
    (void)v;
    return inner->exists(inner, name, e);
}
static int c_remove(const streamdb_vfs *v, const char *name) {
    (void)v;
    return inner->remove(inner, name);
}
static int c_sync_dir(const streamdb_vfs *v, const char *name) {
    (void)v;
    atomic_fetch_add(&syncs, 1);
    return inner->sync_dir(inner, name);
}

static streamdb *g_db;
static long per_thread;

static void *committer(void *arg) {
    int t = (int)(intptr_t)arg;
    char p[32];
    for (long i = 0; i < per_thread; i++) {
        snprintf(p, sizeof p, "/g/t%d/%04ld", t, i);
        int rc = tu_put(g_db, p, (uint64_t)(t * 100000 + i), 500);
        if (rc) {
            TU_FAIL("thread %d commit %ld = %d (%s): %s", t, i, rc, streamdb_strerror(rc), tu_errmsg(g_db));
            break;
        }
    }
    return NULL;
}

int main(void) {
    tu_init("group_commit");
    per_thread = tu_env_long("STREAMDB_GROUP_COMMITS", 60);
    inner = streamdb_vfs_file();
    /* The file functions take the inner backend's files as they are: only
     * open (to pass the inner vfs), the syncs and the name functions wrap. */
    streamdb_vfs v = *inner;
    v.open = c_open;
    v.sync = c_sync;
    v.exists = c_exists;
    v.remove = c_remove;
    v.sync_dir = c_sync_dir;
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    cfg.vfs = &v;
    cfg.wal_autocheckpoint = 64u << 20; /* no checkpoint syncs in the count */
    const char *dbpath = tu_path("group.db");
    streamdb *db = g_db = tu_open_cfg(dbpath, &cfg);

    /* One thread: about one sync per commit. */
    long before = atomic_load(&syncs);
    per_thread = tu_env_long("STREAMDB_GROUP_COMMITS", 60);
    committer((void *)(intptr_t)9);
    long single = atomic_load(&syncs) - before;
    printf("1 thread: %ld commits, %ld syncs\n", per_thread, single);
    CHECKF(single >= per_thread, "%ld syncs for %ld durable commits", single, per_thread);
    CHECKF(single <= 2 * per_thread, "%ld syncs for %ld commits", single, per_thread);

    /* Four threads: fewer syncs than commits. */
    before = atomic_load(&syncs);
    pthread_t th[NT];
    for (intptr_t t = 0; t < NT; t++) pthread_create(&th[t], NULL, committer, (void *)t);
    for (int t = 0; t < NT; t++) pthread_join(th[t], NULL);
    long shared = atomic_load(&syncs) - before;
    long commits = NT * per_thread;
    printf("%d threads: %ld commits, %ld syncs\n", NT, commits, shared);
    CHECKF(shared < commits, "%ld syncs for %ld concurrent commits: no group commit", shared, commits);

    CHECK_OK(db, streamdb_close(db));
    db = tu_open(dbpath);
    char p[32];
    for (int t = 0; t < NT; t++)
        for (long i = 0; i < per_thread; i++) {
            snprintf(p, sizeof p, "/g/t%d/%04ld", t, i);
            tu_expect_doc(db, p, 0, (uint64_t)(t * 100000 + i), 500);
        }
    uint64_t count = 0;
    CHECK_OK(db, streamdb_count(db, &count));
    CHECK(count == (uint64_t)(commits + per_thread));
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    tu_finish();
}
