/*
 * torture.h -- the shared harness of the long-run families: a reference
 * model, a deterministic workload generator, and the crash oracle.
 *
 * Model: path -> (content seed, length, version).  Content is tu_fill(seed),
 * so the model never stores bytes.  It records only what was committed; the
 * families keep one model per committed prefix (hist[0] = the initial state,
 * hist[i] = after the i-th commit of the workload).
 *
 * Oracle (after a crash and a reopen): the database must equal hist[j] for
 * some j with required <= j <= attempted, where required counts the commits
 * acknowledged before the last completed sync (every acknowledged commit
 * when sync_commits = 1) and attempted also counts the commit in flight;
 * and streamdb_check must pass.
 */
#ifndef STREAMDB_TORTURE_H
#define STREAMDB_TORTURE_H

#include "../c/testutil.h"
#include "faultvfs.h"

/* ---- model ---- */
typedef struct mdoc { char path[64]; uint64_t seed; size_t len; uint64_t version; } mdoc;
typedef struct model { mdoc *d; size_t n, cap; } model;

static inline long m_find(const model *m, const char *path)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(m->d[mid].path, path);
        if (!c) return (long)mid;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return -(long)lo - 1;
}
static inline void m_put(model *m, const char *path, uint64_t seed, size_t len)
{
    long i = m_find(m, path);
    if (i >= 0) { m->d[i].seed = seed; m->d[i].len = len; m->d[i].version++; return; }
    size_t at = (size_t)(-i - 1);
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->d = realloc(m->d, m->cap * sizeof *m->d);
        if (!m->d) abort();
    }
    memmove(&m->d[at + 1], &m->d[at], (m->n - at) * sizeof *m->d);
    memset(&m->d[at], 0, sizeof *m->d);
    snprintf(m->d[at].path, sizeof m->d[at].path, "%s", path);
    m->d[at].seed = seed; m->d[at].len = len; m->d[at].version = 1;
    m->n++;
}
static inline void m_del(model *m, const char *path)
{
    long i = m_find(m, path);
    if (i < 0) return;
    memmove(&m->d[i], &m->d[i + 1], (m->n - (size_t)i - 1) * sizeof *m->d);
    m->n--;
}
static inline model m_clone(const model *m)
{
    model c = {NULL, m->n, m->n ? m->n : 1};
    c.d = malloc(c.cap * sizeof *c.d);
    if (!c.d) abort();
    if (m->n) memcpy(c.d, m->d, m->n * sizeof *m->d);
    return c;
}
static inline void m_free(model *m) { free(m->d); m->d = NULL; m->n = m->cap = 0; }

/* 0 when db holds exactly the model (paths via a prefix search of "/",
 * content via streamdb_get); else 1 with the first difference in why. */
static inline int m_compare(streamdb *db, const model *m, char *why, size_t whylen)
{
    char **paths = NULL;
    size_t np = 0;
    int rc = streamdb_search_n(db, "/", 1, &paths, &np);
    if (rc) { snprintf(why, whylen, "search = %s: %s", streamdb_strerror(rc), tu_errmsg(db)); return 1; }
    int bad = 0;
    if (np != m->n) {
        snprintf(why, whylen, "%zu paths, model has %zu", np, m->n);
        bad = 1;
    }
    for (size_t i = 0; !bad && i < np; i++) {
        if (strcmp(paths[i], m->d[i].path)) {
            snprintf(why, whylen, "path %zu is %s, model %s", i, paths[i], m->d[i].path);
            bad = 1;
            break;
        }
        void *data = NULL;
        size_t len = 0;
        rc = streamdb_get(db, paths[i], 0, &data, &len);
        if (rc) {
            snprintf(why, whylen, "get(%s) = %s: %s", paths[i], streamdb_strerror(rc), tu_errmsg(db));
            bad = 1;
        } else if (len != m->d[i].len || tu_verify(data, len, m->d[i].seed, 0) >= 0) {
            snprintf(why, whylen, "%s: %zu bytes, model %zu bytes (seed %llu), content %s", paths[i], len,
                     m->d[i].len, (unsigned long long)m->d[i].seed,
                     len == m->d[i].len ? "differs" : "-");
            bad = 1;
        }
        streamdb_free(data);
    }
    streamdb_free_paths(paths, np);
    return bad;
}

/* ---- workload ---- */
enum { OP_PUT, OP_DEL };
typedef struct wop { int kind; char path[64]; uint64_t seed; size_t len; } wop;
enum { ST_TXN, ST_FLUSH, ST_COMPACT };
typedef struct wstep { int kind; int explicit_txn; int nops; wop ops[6]; } wstep;
typedef struct workload { wstep *s; int n; int ncommits; } workload;

static inline uint64_t w_rand(uint64_t *s) { *s += 0x9e3779b97f4a7c15ull; return tu_mix(*s); }

/* A deterministic workload of nsteps steps.  big_pct: percent of puts that
 * are big documents (over 320 KiB = five 64 KiB chunks: the core sends
 * documents that fill five chunks straight to the main file, bypassing the log). */
static inline workload w_make(uint64_t seed, int nsteps, int big_pct)
{
    workload w = {calloc((size_t)nsteps, sizeof(wstep)), nsteps, 0};
    if (!w.s) abort();
    model m = {0};
    uint64_t rs = seed;
    for (int i = 0; i < nsteps; i++) {
        wstep *st = &w.s[i];
        uint64_t r = w_rand(&rs) % 100;
        if (i > 2 && r < 6) { st->kind = ST_FLUSH; continue; }
        if (i > 2 && r < 10) { st->kind = ST_COMPACT; continue; }
        st->kind = ST_TXN;
        w.ncommits++;
        st->explicit_txn = (w_rand(&rs) % 3) == 0;
        st->nops = st->explicit_txn ? 1 + (int)(w_rand(&rs) % 5) : 1;
        for (int k = 0; k < st->nops; k++) {
            wop *o = &st->ops[k];
            /* deletes only of paths that exist at that point */
            if (m.n && w_rand(&rs) % 5 == 0) {
                o->kind = OP_DEL;
                snprintf(o->path, sizeof o->path, "%s", m.d[w_rand(&rs) % m.n].path);
                m_del(&m, o->path);
                continue;
            }
            o->kind = OP_PUT;
            unsigned p = (unsigned)(w_rand(&rs) % 12);
            snprintf(o->path, sizeof o->path, p < 6 ? "/a/doc%u" : p < 10 ? "/b/c/%u" : "/z%u", p);
            o->seed = w_rand(&rs);
            unsigned sz = (unsigned)(w_rand(&rs) % 100);
            if ((int)sz < big_pct) o->len = 320 * 1024 + 1 + (size_t)(w_rand(&rs) % 200000);
            else if (sz < 60) o->len = (size_t)(w_rand(&rs) % 2000);
            else if (sz < 90) o->len = 2000 + (size_t)(w_rand(&rs) % 30000);
            else o->len = 60000 + (size_t)(w_rand(&rs) % 140000);
            m_put(&m, o->path, o->seed, o->len);
        }
    }
    m_free(&m);
    return w;
}
static inline void w_free(workload *w) { free(w->s); w->s = NULL; }

/* hist[0..ncommits]: the model after each commit (caller frees). */
static inline model *w_history(const workload *w, const model *initial)
{
    model *h = calloc((size_t)w->ncommits + 1, sizeof *h);
    if (!h) abort();
    h[0] = initial ? m_clone(initial) : (model){0};
    int c = 0;
    for (int i = 0; i < w->n; i++) {
        const wstep *st = &w->s[i];
        if (st->kind != ST_TXN) continue;
        h[c + 1] = m_clone(&h[c]);
        for (int k = 0; k < st->nops; k++) {
            if (st->ops[k].kind == OP_PUT) m_put(&h[c + 1], st->ops[k].path, st->ops[k].seed, st->ops[k].len);
            else m_del(&h[c + 1], st->ops[k].path);
        }
        c++;
    }
    return h;
}
static inline void w_history_free(model *h, int ncommits)
{
    for (int i = 0; i <= ncommits; i++) m_free(&h[i]);
    free(h);
}

/* Runs the workload on db.  *acked counts commits that returned success,
 * *synced the commits known durable (acked with sync_commits = 1, or acked
 * before a successful flush).  Stops at the first failure and returns its
 * code (0 when all succeeded).  on_ack (may be NULL) is called after each
 * acknowledged commit. */
static inline int w_run(streamdb *db, const workload *w, int sync_commits, int *acked, int *synced,
                        void (*on_ack)(void *ctx, int acked), void *ctx)
{
    *acked = 0;
    *synced = 0;
    for (int i = 0; i < w->n; i++) {
        const wstep *st = &w->s[i];
        int rc = 0;
        if (st->kind == ST_FLUSH || st->kind == ST_COMPACT) {
            rc = st->kind == ST_FLUSH ? streamdb_flush(db) : streamdb_compact(db);
            if (rc) return rc;
            *synced = *acked;
            continue;
        }
        if (st->explicit_txn && (rc = streamdb_begin_transaction(db))) return rc;
        for (int k = 0; k < st->nops && !rc; k++) {
            const wop *o = &st->ops[k];
            if (o->kind == OP_PUT) rc = tu_put(db, o->path, o->seed, o->len);
            else rc = streamdb_delete(db, o->path);
        }
        if (st->explicit_txn) {
            if (rc) { streamdb_rollback_transaction(db); return rc; }
            rc = streamdb_commit_transaction(db);
        }
        if (rc) return rc;
        (*acked)++;
        if (sync_commits) *synced = *acked;
        if (on_ack) on_ack(ctx, *acked);
    }
    return 0;
}

/* The oracle: finds j in [lo, hi] with db == hist[j]; -1 (and why) if none. */
static inline int w_match(streamdb *db, const model *hist, int lo, int hi, char *why, size_t whylen)
{
    char tmp[512];
    why[0] = 0;
    for (int j = hi; j >= lo; j--) {
        if (!m_compare(db, &hist[j], tmp, sizeof tmp)) return j;
        if (j == hi) snprintf(why, whylen, "vs prefix %d: %s", j, tmp);
    }
    return -1;
}

/* The family's figure line. */
static inline void t_figure(const char *family, long points, long lost, long integrity)
{
    printf("%s: %ld points tried, %ld acknowledged writes lost, %ld integrity failures, 0 sanitizer reports%s\n",
           family, points, lost, integrity,
#if defined(__SANITIZE_ADDRESS__)
           " (run under ASan: completed)"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
           " (run under ASan: completed)"
#else
           " (not an ASan build)"
#endif
#else
           " (not an ASan build)"
#endif
    );
    fflush(stdout);
}

static inline long t_scale(void) { return tu_env_long("TORTURE_SCALE", 1); }
static inline uint64_t t_seed(void)
{
    const char *s = getenv("TORTURE_SEED");
    if (s && *s) return strtoull(s, NULL, 0);
    return 0x5eed0000ull + (uint64_t)time(NULL);
}

#endif
