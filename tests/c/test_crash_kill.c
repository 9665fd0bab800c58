/*
 * test_crash_kill.c -- T4 smoke form (RELIABILITY.md): real process crashes.
 *
 * A child opens the database and commits in a loop: single writes (small,
 * chunked, some through the streaming writer), deletes, and transactions of
 * 2-4 operations.  Before each commit it sends an INTENT record over a pipe
 * and after the commit returns success an ACK record.  The parent SIGKILLs it
 * at a random moment (during open and recovery too), reopens the database
 * and checks that the state equals the model after every acknowledged commit,
 * or that plus the one in-flight commit (all of it or none of it), that the
 * prefix search lists exactly the live paths, and that streamdb_check passes.
 * The same database carries over to the next round, so recovery of recovered
 * databases is exercised too.
 *
 * STREAMDB_CRASH_ITERS rounds (default 30); STREAMDB_CRASH_SEED replays a run.
 */
#include <signal.h>
#include <sys/wait.h>

#include "testutil.h"

#define NPATHS 40
#define MAXOPS 4

struct op {
    int32_t path;
    int32_t del;
    uint64_t seed;
    uint64_t len;
};
struct rec {
    uint32_t type; /* 1 intent, 2 ack, 3 child error */
    uint32_t txn;
    uint32_t nops;
    uint32_t pad;
    struct op ops[MAXOPS];
};

struct state {
    int exists;
    uint64_t seed, len;
};

static struct state model[NPATHS];

static void path_of(char *b, int p) { snprintf(b, 32, "/c/p%02d", p); }

static uint64_t rnd_next(uint64_t *r) { return tu_mix((*r)++); }

static size_t pick_len(uint64_t *r) {
    uint64_t x = rnd_next(r) % 100;
    if (x < 60) return 10 + rnd_next(r) % 3000;
    if (x < 90) return 3000 + rnd_next(r) % 150000;
    return 150000 + rnd_next(r) % 1400000;
}

static int do_write(streamdb *db, const char *path, uint64_t seed, size_t len, int streaming) {
    if (!streaming) return tu_put(db, path, seed, len);
    streamdb_writer *w = NULL;
    int rc = streamdb_writer_begin(db, path, strlen(path), &w);
    if (rc) return rc;
    unsigned char buf[65536];
    for (size_t off = 0; off < len && rc == 0; off += sizeof buf) {
        size_t n = len - off < sizeof buf ? len - off : sizeof buf;
        tu_fill(buf, n, seed, off);
        rc = streamdb_writer_write(w, buf, n);
    }
    if (rc) {
        streamdb_writer_abort(w);
        return rc;
    }
    return streamdb_writer_commit(w, NULL);
}

static void send_rec(int fd, const struct rec *r) {
    if (write(fd, r, sizeof *r) != (ssize_t)sizeof *r) _exit(5);
}

static void child(const char *dbpath, int fd, uint64_t rnd, uint32_t first_txn) {
    streamdb_config cfg;
    streamdb_config_init(&cfg);
    tu_codec(&cfg);
    cfg.wal_autocheckpoint = 256u << 10; /* checkpoints get killed too */
    streamdb *db = NULL;
    int rc = streamdb_open(dbpath, &cfg, &db);
    struct rec r;
    memset(&r, 0, sizeof r);
    if (rc) {
        r.type = 3;
        r.txn = (uint32_t)-rc;
        send_rec(fd, &r);
        _exit(3);
    }
    char path[32];
    for (uint32_t t = first_txn;; t++) {
        memset(&r, 0, sizeof r);
        r.type = 1;
        r.txn = t;
        uint64_t kind = rnd_next(&rnd) % 10;
        r.nops = kind < 8 ? 1 : 2 + (uint32_t)(rnd_next(&rnd) % (MAXOPS - 1));
        int used[NPATHS] = {0};
        for (uint32_t i = 0; i < r.nops; i++) {
            int p;
            do p = (int)(rnd_next(&rnd) % NPATHS); while (used[p]);
            used[p] = 1;
            struct op *o = &r.ops[i];
            o->path = p;
            o->del = model[p].exists && rnd_next(&rnd) % 6 == 0;
            o->seed = ((uint64_t)t << 8) | i;
            o->len = o->del ? 0 : pick_len(&rnd);
        }
        send_rec(fd, &r);
        int multi = r.nops > 1;
        if (multi && (rc = streamdb_begin_transaction(db)) != 0) break;
        for (uint32_t i = 0; i < r.nops && rc == 0; i++) {
            struct op *o = &r.ops[i];
            path_of(path, o->path);
            if (o->del) rc = streamdb_delete(db, path);
            else rc = do_write(db, path, o->seed, o->len, o->len > 100000 && (o->seed & 256));
        }
        if (rc) break;
        if (multi && (rc = streamdb_commit_transaction(db)) != 0) break;
        for (uint32_t i = 0; i < r.nops; i++) {
            struct op *o = &r.ops[i];
            model[o->path].exists = !o->del;
            model[o->path].seed = o->seed;
            model[o->path].len = o->len;
        }
        r.type = 2;
        send_rec(fd, &r);
    }
    fprintf(stderr, "child: commit failed: %d (%s): %s\n", rc, streamdb_strerror(rc), tu_errmsg(db));
    memset(&r, 0, sizeof r);
    r.type = 3;
    r.txn = (uint32_t)-rc;
    send_rec(fd, &r);
    _exit(4);
}

/* 1: path p holds s (or is absent when !s->exists). */
static int path_matches(streamdb *db, int p, const struct state *s, char *why, size_t whycap) {
    char path[32];
    path_of(path, p);
    void *d = NULL;
    size_t dl = 0;
    int rc = streamdb_get(db, path, 0, &d, &dl);
    int ok;
    if (rc == STREAMDB_ERR_NOT_FOUND) {
        ok = !s->exists;
        if (!ok) snprintf(why, whycap, "%s missing", path);
    } else if (rc != 0) {
        ok = 0;
        snprintf(why, whycap, "%s: get = %d (%s): %s", path, rc, streamdb_strerror(rc), tu_errmsg(db));
    } else {
        ok = s->exists && dl == s->len && tu_verify(d, dl, s->seed, 0) < 0;
        if (!ok)
            snprintf(why, whycap, "%s: %zu bytes, wanted %s%" PRIu64 " bytes of seed %" PRIx64, path,
                     dl, s->exists ? "" : "absent, not ", s->len, s->seed);
    }
    streamdb_free(d);
    return ok;
}

int main(void) {
    tu_init("crash_kill");
    long iters = tu_env_long("STREAMDB_CRASH_ITERS", 30);
    long max_ms = tu_env_long("STREAMDB_CRASH_MAX_MS", 250);
    uint64_t seed = (uint64_t)tu_env_long("STREAMDB_CRASH_SEED", (long)(time(NULL) ^ getpid()));
    printf("seed %" PRIu64 " (STREAMDB_CRASH_SEED to replay), %ld rounds\n", seed, iters);
    const char *dbpath = tu_path("crash.db");
    uint64_t rnd = seed;
    /* Create the database first: a crash while creating it is another test. */
    streamdb *db0 = tu_open(dbpath);
    CHECK_OK(db0, streamdb_close(db0));
    uint32_t next_txn = 1;
    long lost = 0, integrity = 0, acked_total = 0, inflight_landed = 0, child_errors = 0;

    for (long it = 0; it < iters; it++) {
        int pfd[2];
        REQUIRE(pipe(pfd) == 0);
        fcntl(pfd[0], F_SETPIPE_SZ, 1 << 20);
        uint64_t child_rnd = rnd_next(&rnd);
        long delay_us = (long)(rnd_next(&rnd) % (uint64_t)(max_ms * 1000));
        fflush(NULL);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(pfd[0]);
            child(dbpath, pfd[1], child_rnd, next_txn);
        }
        close(pfd[1]);
        usleep((useconds_t)delay_us);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);

        /* Replay the records. */
        struct rec r, pending;
        memset(&pending, 0, sizeof pending);
        int have_pending = 0;
        long acked = 0;
        ssize_t n;
        while ((n = read(pfd[0], &r, sizeof r)) == (ssize_t)sizeof r) {
            if (r.type == 1) {
                pending = r;
                have_pending = 1;
            } else if (r.type == 2) {
                if (!have_pending || pending.txn != r.txn) {
                    TU_FAIL("round %ld: ack of txn %u without its intent", it, r.txn);
                    continue;
                }
                for (uint32_t i = 0; i < r.nops; i++) {
                    struct op *o = &r.ops[i];
                    model[o->path].exists = !o->del;
                    model[o->path].seed = o->seed;
                    model[o->path].len = o->len;
                }
                have_pending = 0;
                acked++;
                next_txn = r.txn + 1;
            } else if (r.type == 3) {
                TU_FAIL("round %ld: the child failed with %d (%s)", it, -(int)r.txn,
                        streamdb_strerror(-(int)r.txn));
                child_errors++;
            }
        }
        close(pfd[0]);
        if (have_pending) next_txn = pending.txn + 1;
        acked_total += acked;

        /* The state after the in-flight commit, if it landed. */
        struct state after[NPATHS];
        memcpy(after, model, sizeof after);
        if (have_pending)
            for (uint32_t i = 0; i < pending.nops; i++) {
                struct op *o = &pending.ops[i];
                after[o->path].exists = !o->del;
                after[o->path].seed = o->seed;
                after[o->path].len = o->len;
            }

        streamdb *db = NULL;
        streamdb_config vcfg;
        streamdb_config_init(&vcfg);
        tu_codec(&vcfg);
        int rc = streamdb_open(dbpath, &vcfg, &db);
        if (rc) {
            TU_FAIL("round %ld (seed %" PRIu64 "): reopen after kill = %d (%s): %s", it, seed, rc,
                    streamdb_strerror(rc), tu_errmsg(NULL));
            integrity++;
            break;
        }
        int match_before = 1, match_after = have_pending;
        char why_before[300] = "", why_after[300] = "";
        for (int p = 0; p < NPATHS; p++) {
            char w[300];
            int touched = 0;
            if (have_pending)
                for (uint32_t i = 0; i < pending.nops; i++) touched |= pending.ops[i].path == p;
            if (!touched) {
                if (!path_matches(db, p, &model[p], w, sizeof w)) {
                    match_before = match_after = 0;
                    if (!why_before[0]) snprintf(why_before, sizeof why_before, "%s", w);
                    lost++;
                }
                continue;
            }
            if (match_before && !path_matches(db, p, &model[p], w, sizeof w)) {
                match_before = 0;
                snprintf(why_before, sizeof why_before, "%s", w);
            }
            if (match_after && !path_matches(db, p, &after[p], w, sizeof w)) {
                match_after = 0;
                snprintf(why_after, sizeof why_after, "%s", w);
            }
        }
        if (!match_before && !match_after) {
            TU_FAIL("round %ld (seed %" PRIu64 ", killed after %ld us, %ld acks): the state is "
                    "neither before nor after the in-flight commit:\n     before: %s\n     after: %s",
                    it, seed, delay_us, acked, why_before, have_pending ? why_after : "(no commit in flight)");
            integrity++;
        } else if (match_after && !match_before) {
            memcpy(model, after, sizeof model);
            inflight_landed++;
        }
        /* The prefix search lists exactly the live paths. */
        char **paths;
        size_t np = 0, live = 0;
        for (int p = 0; p < NPATHS; p++) live += model[p].exists;
        rc = streamdb_search(db, "/c/", &paths, &np);
        if (rc || np != live) {
            TU_FAIL("round %ld: search = %d with %zu paths, %zu live", it, rc, np, live);
            integrity++;
        }
        if (rc == 0) streamdb_free_paths(paths, np);
        rc = streamdb_check(db);
        if (rc) {
            TU_FAIL("round %ld (seed %" PRIu64 "): check = %d (%s): %s", it, seed, rc,
                    streamdb_strerror(rc), tu_errmsg(db));
            integrity++;
        }
        rc = streamdb_close(db);
        if (rc) TU_FAIL("round %ld: close = %d: %s", it, rc, tu_errmsg(db));
    }
    printf("%ld points tried, %ld acknowledged writes lost, %ld integrity failures "
           "(%ld commits acknowledged, %ld in-flight commits landed, %ld child errors)\n",
           iters, lost, integrity, acked_total, inflight_landed, child_errors);
    CHECKF(acked_total > iters, "too few commits acknowledged (%ld) to mean anything", acked_total);
    tu_finish();
}
