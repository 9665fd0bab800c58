/*
 * test_torn_wal.c -- T7 smoke form (RELIABILITY.md): torn and damaged log
 * tails, judged by docs/format.md [F4].
 *
 * A child commits seven transactions (writes, overwrites, deletes, one with a
 * chunked document) on a checkpointed database, reports the log's size after
 * each commit over a pipe (end[j] = where transaction j's frames end), and
 * _exit()s without closing, so the log ("<db>-wal") keeps every frame.  The
 * parent then copies the database and the log cut at an offset to a scratch
 * pair and opens it, for every byte offset over the last two frames' worth of
 * the log (STREAMDB_TORN_BYTES, default 2 * (4096 + 128)) and for offsets
 * every 997 bytes over the rest.  The oracle:
 *  - the whole log gives all seven transactions;
 *  - a cut inside the newest transaction's frames is a torn tail: the open
 *    succeeds with the first six, and streamdb_check passes;
 *  - a cut below that gives exactly the commits whose frames end before the
 *    cut: a truncated log leaves no trace of what followed (format.md [F4]
 *    says so), so the longest valid prefix is what recovery can give;
 *  - a cut inside the log header may give any committed prefix, never other
 *    data.
 * Then it zeroes or garbles 512-byte spans near the end: damage inside the
 * newest commit is a torn tail; damage below it, with the newest commit frame
 * intact (it records how many frames were acknowledged before it), must make
 * the open fail with STREAMDB_ERR_CORRUPT, never silently drop acknowledged
 * commits.  The scratch pair
 * lives on /dev/shm when there is one (tu_fast_dir): every open and close
 * syncs, and the disk is not what is tested here.
 */
#include <sys/wait.h>

#include "testutil.h"

#define PS 4096
#define NT 7

struct top {
    int txn;
    const char *path;
    int del;
    uint64_t seed;
    size_t len;
};
static const struct top base_ops[] = {
    {0, "/t/base0", 0, 900, 5000},
    {0, "/t/base1", 0, 901, 100000},
    {0, "/t/base2", 0, 902, 50},
};
static const struct top ops[] = {
    {1, "/t/a", 0, 1, 100},
    {2, "/t/b", 0, 2, 20000},   {2, "/t/a", 0, 3, 200},
    {3, "/t/base0", 1, 0, 0},
    {4, "/t/c", 0, 4, 3000},    {4, "/t/d", 0, 5, 50},
    {5, "/t/e", 0, 6, 70000},
    {6, "/t/base1", 0, 7, 10},
    {7, "/t/f", 0, 8, 500},     {7, "/t/c", 1, 0, 0},
};
#define NOPS (sizeof ops / sizeof ops[0])
static const char *universe[] = {"/t/base0", "/t/base1", "/t/base2", "/t/a", "/t/b",
                                 "/t/c",     "/t/d",     "/t/e",     "/t/f"};
#define NU (sizeof universe / sizeof universe[0])

struct st {
    int exists;
    uint64_t seed;
    size_t len;
};

static void apply(const struct top *o, struct st *s) {
    for (size_t u = 0; u < NU; u++)
        if (strcmp(universe[u], o->path) == 0) {
            s[u].exists = !o->del;
            s[u].seed = o->seed;
            s[u].len = o->len;
        }
}

static void state_after(int j, struct st *s) {
    memset(s, 0, sizeof(struct st) * NU);
    for (size_t i = 0; i < 3; i++) apply(&base_ops[i], s);
    for (size_t i = 0; i < NOPS; i++)
        if (ops[i].txn <= j) apply(&ops[i], s);
}

static streamdb_config cfg;

/* Reports where the log's frames end (header + frames).  The file itself is
 * longer: it grows by zero-filled 64 KiB steps. */
static void report_size(int fd, streamdb *db) {
    streamdb_stats st;
    if (streamdb_calculate_statistics(db, &st)) _exit(7);
    long long sz = 64 + (long long)st.wal_frames * (24 + PS);
    if (write(fd, &sz, sizeof sz) != (ssize_t)sizeof sz) _exit(6);
}

static void child(const char *dbpath, int fd) {
    streamdb *db = NULL;
    if (streamdb_open(dbpath, &cfg, &db)) _exit(2);
    report_size(fd, db);
    for (int t = 1; t <= NT; t++) {
        int n = 0;
        for (size_t i = 0; i < NOPS; i++) n += ops[i].txn == t;
        if (n > 1 && streamdb_begin_transaction(db)) _exit(3);
        for (size_t i = 0; i < NOPS; i++) {
            if (ops[i].txn != t) continue;
            int rc = ops[i].del ? streamdb_delete(db, ops[i].path)
                                : tu_put(db, ops[i].path, ops[i].seed, ops[i].len);
            if (rc) {
                fprintf(stderr, "child: txn %d %s: %d %s\n", t, ops[i].path, rc, tu_errmsg(db));
                _exit(4);
            }
        }
        if (n > 1 && streamdb_commit_transaction(db)) _exit(5);
        report_size(fd, db);
    }
    _exit(0); /* no close: close would checkpoint the log away */
}

/* The prefix j whose state the database holds, or -1 (details in why). */
static int which_prefix(streamdb *db, char *why, size_t cap) {
    struct st have[NU];
    for (size_t u = 0; u < NU; u++) {
        void *d = NULL;
        size_t dl = 0;
        int rc = streamdb_get(db, universe[u], 0, &d, &dl);
        have[u].exists = rc == 0;
        have[u].len = dl;
        have[u].seed = (uint64_t)-1;
        if (rc != 0 && rc != STREAMDB_ERR_NOT_FOUND) {
            snprintf(why, cap, "get %s = %d (%s): %s", universe[u], rc, streamdb_strerror(rc),
                     tu_errmsg(db));
            return -1;
        }
        if (rc == 0) {
            /* identify the content among the seeds that path ever had */
            for (size_t i = 0; i < NOPS + 3; i++) {
                const struct top *o = i < 3 ? &base_ops[i] : &ops[i - 3];
                if (!o->del && strcmp(o->path, universe[u]) == 0 && o->len == dl &&
                    tu_verify(d, dl, o->seed, 0) < 0)
                    have[u].seed = o->seed;
            }
            streamdb_free(d);
            if (have[u].seed == (uint64_t)-1) {
                snprintf(why, cap, "%s holds %zu bytes that no transaction wrote", universe[u], dl);
                return -1;
            }
        }
    }
    for (int j = 0; j <= NT; j++) {
        struct st want[NU];
        state_after(j, want);
        size_t u;
        for (u = 0; u < NU; u++) {
            if (want[u].exists != have[u].exists) break;
            if (want[u].exists && (want[u].seed != have[u].seed || want[u].len != have[u].len)) break;
        }
        if (u == NU) return j;
    }
    snprintf(why, cap, "the state matches no prefix of the committed transactions");
    return -1;
}

static char orig_db[1100], orig_wal[1100], t_db[1100], t_wal[1100];

#define OPEN_CORRUPT (-2)

/* Opens the scratch pair: the prefix it holds, OPEN_CORRUPT when the open
 * refused with STREAMDB_ERR_CORRUPT, or -1 after reporting anything else. */
static int try_open(const char *what, long long off) {
    streamdb *db = NULL;
    int rc = streamdb_open(t_db, &cfg, &db);
    if (rc == STREAMDB_ERR_CORRUPT) return OPEN_CORRUPT;
    if (rc) {
        TU_FAIL("%s at %lld: open = %d (%s): %s", what, off, rc, streamdb_strerror(rc),
                tu_errmsg(NULL));
        return -1;
    }
    char why[400];
    int j = which_prefix(db, why, sizeof why);
    if (j < 0) TU_FAIL("%s at %lld: %s", what, off, why);
    rc = streamdb_check(db);
    if (rc) {
        TU_FAIL("%s at %lld: check = %d (%s): %s", what, off, rc, streamdb_strerror(rc),
                tu_errmsg(db));
        j = -1;
    }
    rc = streamdb_close(db);
    if (rc) TU_FAIL("%s at %lld: close = %d: %s", what, off, rc, tu_errmsg(db));
    return j;
}

static long long end_[NT + 1]; /* log size after open (0) and after commit j */

/* The commits whose frames all end at or before off. */
static int whole_before(long long off) {
    int k = 0;
    while (k < NT && end_[k + 1] <= off) k++;
    return k;
}

/* What [F4] demands when the log is damaged from offset off on: cut (the
 * log truncated there) or a span overwritten in place. */
static void judge(const char *what, long long off, int j, int cut) {
    if (j == -1) return; /* reported already */
    if (cut && off >= end_[0] && off < end_[NT - 1]) {
        CHECKF(j == whole_before(off), "%s at %lld: got %s %d, wanted the longest valid prefix %d",
               what, off, j == OPEN_CORRUPT ? "CORRUPT" : "prefix", j, whole_before(off));
        return;
    }
    if (off >= end_[NT]) {
        CHECKF(j == NT, "%s at %lld (whole log): %s", what, off,
               j == OPEN_CORRUPT ? "open = CORRUPT" : "a shorter prefix");
        if (j >= 0 && j != NT) fprintf(stderr, "     prefix %d\n", j);
    } else if (off >= end_[NT - 1]) {
        CHECKF(j == NT - 1 || (j == NT && strcmp(what, "zeroed") == 0),
               "%s at %lld, inside the newest commit (a torn tail): got %s %d, wanted prefix %d",
               what, off, j == OPEN_CORRUPT ? "CORRUPT" : "prefix", j, NT - 1);
    } else if (off >= end_[0]) {
        CHECKF(j == OPEN_CORRUPT,
               "%s at %lld, inside acknowledged commits (before %lld): got prefix %d, wanted "
               "STREAMDB_ERR_CORRUPT (acknowledged commits dropped silently)",
               what, off, end_[NT - 1], j);
    }
    /* below end_[0]: the log header; any prefix (checked by try_open) or CORRUPT */
}

int main(void) {
    tu_init("torn_wal");
    streamdb_config_init(&cfg);
    tu_codec(&cfg);
    cfg.page_size = PS;
    cfg.wal_autocheckpoint = 64u << 20;
    const char *dbpath = tu_path("torn.db");
    streamdb *db = tu_open_cfg(dbpath, &cfg);
    for (size_t i = 0; i < 3; i++) CHECK_OK(db, tu_put(db, base_ops[i].path, base_ops[i].seed, base_ops[i].len));
    CHECK_OK(db, streamdb_close(db));

    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        child(dbpath, pfd[1]);
    }
    close(pfd[1]);
    for (int j = 0; j <= NT; j++)
        REQUIRE(read(pfd[0], &end_[j], sizeof end_[j]) == (ssize_t)sizeof end_[j]);
    close(pfd[0]);
    int status;
    waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    snprintf(orig_db, sizeof orig_db, "%s/orig.db", tu_dir);
    snprintf(orig_wal, sizeof orig_wal, "%s/orig.db-wal", tu_dir);
    const char *scratch = tu_fast_dir();
    snprintf(t_db, sizeof t_db, "%s/t.db", scratch);
    snprintf(t_wal, sizeof t_wal, "%s/t.db-wal", scratch);
    char wal[1100];
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    REQUIRE(tu_copy_file(dbpath, orig_db, -1) == 0);
    /* The log as the child left it (frames, then the zero fill of the
     * file's last growth step) holds every commit. */
    long long whole = tu_file_size(wal);
    REQUIRE(whole >= end_[NT]);
    REQUIRE(tu_copy_file(orig_db, t_db, -1) == 0);
    REQUIRE(tu_copy_file(wal, t_wal, -1) == 0);
    CHECKF(try_open("whole log", whole) == NT, "the log with its zero fill (%lld bytes)", whole);
    /* The damage below is done to the frames: the copy ends where they do. */
    REQUIRE(tu_copy_file(wal, orig_wal, end_[NT]) == 0);
    long long W = tu_file_size(orig_wal);
    printf("log: %lld bytes after %d unchecked-pointed transactions; commits end at", W, NT);
    for (int j = 0; j <= NT; j++) printf(" %lld", end_[j]);
    printf("\n");
    REQUIRE(W > PS);
    REQUIRE(end_[NT] == W);
    for (int j = 1; j <= NT; j++) REQUIRE(end_[j] > end_[j - 1]);

    long long span = tu_env_long("STREAMDB_TORN_BYTES", 2 * (PS + 128));
    long long step = tu_env_long("STREAMDB_TORN_STEP", 1);
    long long lo = W - span < 0 ? 0 : W - span;
    int prev = -1, fails = 0, tried = 0, corrupt = 0, tails = 0;
    uint64_t t0 = tu_now_ns();
    long long off = 0;
    while (off <= W) {
        REQUIRE(tu_copy_file(orig_db, t_db, -1) == 0);
        REQUIRE(tu_copy_file(orig_wal, t_wal, off) == 0);
        int j = try_open("log cut", off);
        tried++;
        judge("log cut", off, j, 1);
        if (j == OPEN_CORRUPT) corrupt++;
        else if (j == NT - 1) tails++;
        if (j == -1 && ++fails > 10) {
            TU_FAIL("too many failures; stopping");
            break;
        }
        if (j >= 0) {
            if (j < prev) TU_FAIL("log cut at %lld gives prefix %d, a shorter cut gave %d", off, j, prev);
            prev = j;
        }
        /* coarse below the fine span, every byte (or step) in it, and W itself */
        long long next = off < lo ? off + 997 : off + step;
        if (off < lo && next > lo) next = lo;
        if (off < W && next > W) next = W;
        off = next == off ? W + 1 : next;
    }
    printf("%d cuts in %.1f s: %d torn tails of the newest commit, %d refused as CORRUPT\n",
           tried, (tu_now_ns() - t0) / 1e9, tails, corrupt);
    CHECKF(tails > 0, "no cut fell inside the newest commit");

    /* Zero or garble 512-byte spans near the end of the log; the last one
     * (5 * PS back) lies under acknowledged commits with the newest commit
     * frame intact. */
    static const long long back[] = {512, 1024, 2048, PS, PS + 512, PS + 2048, 3 * PS, 5 * PS};
    unsigned char junk[512];
    int garbled = 0;
    for (size_t b = 0; b < sizeof back / sizeof back[0]; b++) {
        long long pos = W - back[b];
        if (pos < 0) continue;
        for (int mode = 0; mode < 2; mode++) {
            REQUIRE(tu_copy_file(orig_db, t_db, -1) == 0);
            REQUIRE(tu_copy_file(orig_wal, t_wal, -1) == 0);
            if (mode == 0) memset(junk, 0, sizeof junk);
            else tu_fill(junk, sizeof junk, (uint64_t)pos, 0);
            int fd = open(t_wal, O_WRONLY);
            REQUIRE(fd >= 0);
            REQUIRE(pwrite(fd, junk, sizeof junk, pos) == (ssize_t)sizeof junk);
            close(fd);
            const char *what = mode ? "garbled" : "zeroed";
            int j = try_open(what, pos);
            if (pos + 512 > W - (24 + PS) && pos < end_[NT - 1]) {
                /* the span reaches the newest commit frame: the record of
                 * what was acknowledged is gone too; the longest valid prefix */
                CHECKF(j == OPEN_CORRUPT || j == whole_before(pos), "%s at %lld: got %d", what,
                       pos, j);
            } else {
                judge(what, pos, j, 0);
            }
            if (j == OPEN_CORRUPT) corrupt++;
            garbled++;
        }
    }
    CHECKF(corrupt > 0, "no damage under an acknowledged commit was reported as CORRUPT");
    printf("%d torn-tail points tried, %d failures\n", tried + garbled, atomic_load(&tu_failures));
    tu_finish();
}
