/*
 * pcache.c -- the path cache: path -> document id, LRU of path_cache_size
 * entries (0: off).  A point read that hits it skips the walk down the path tree.
 *
 * Validity: entries describe the path tree as of the newest commit that
 * changed it (epoch).  Such a commit clears the cache when it becomes
 * visible; a view older than the epoch neither reads nor fills the cache.
 * A commit that only writes new versions of existing paths keeps it.
 */
#include "sdb.h"

#include <stdlib.h>

static uint32_t phash(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

void sdb_pcache_init(sdb_env *env, uint32_t cap)
{
    sdb_pcache *c = &env->pcache;
    pthread_mutex_init(&c->mu, NULL);
    c->cap = cap;
    c->lru.lnext = c->lru.lprev = &c->lru;
    if (!cap)
        return;
    c->hcap = 1;
    while (c->hcap < cap * 2)
        c->hcap *= 2;
    c->hash = sdb_calloc(c->hcap, sizeof *c->hash);
    if (!c->hash)
        c->cap = 0;   /* no cache: every lookup walks the tree */
}

static void unlink_entry(sdb_pcache *c, sdb_pcentry *e)
{
    sdb_pcentry **pp = &c->hash[e->hash & (c->hcap - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    e->lprev->lnext = e->lnext;
    e->lnext->lprev = e->lprev;
    c->n--;
    sdb_free(e);
}

static void clear_all(sdb_pcache *c)
{
    while (c->lru.lnext != &c->lru)
        unlink_entry(c, c->lru.lnext);
}

void sdb_pcache_destroy(sdb_env *env)
{
    sdb_pcache *c = &env->pcache;
    if (c->hash)
        clear_all(c);
    sdb_free(c->hash);
    c->hash = NULL;
    pthread_mutex_destroy(&c->mu);
}

int sdb_pcache_get(sdb_env *env, const sdb_view *v, const char *path, size_t len, uint8_t *id)
{
    sdb_pcache *c = &env->pcache;
    if (!c->cap)
        return 0;
    uint32_t h = phash(path, len);
    int found = 0;
    pthread_mutex_lock(&c->mu);
    if (v->meta.txnid >= c->epoch) {
        for (sdb_pcentry *e = c->hash[h & (c->hcap - 1)]; e; e = e->hnext) {
            if (e->hash == h && e->len == len && !memcmp(e->path, path, len)) {
                memcpy(id, e->id, 16);
                /* most recent first */
                e->lprev->lnext = e->lnext;
                e->lnext->lprev = e->lprev;
                e->lnext = c->lru.lnext;
                e->lprev = &c->lru;
                c->lru.lnext->lprev = e;
                c->lru.lnext = e;
                found = 1;
                break;
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    atomic_fetch_add_explicit(found ? &c->hits : &c->misses, 1, memory_order_relaxed);
    return found;
}

void sdb_pcache_put(sdb_env *env, const sdb_view *v, const char *path, size_t len, const uint8_t *id)
{
    sdb_pcache *c = &env->pcache;
    if (!c->cap)
        return;
    sdb_pcentry *e = sdb_malloc(sizeof *e + len);
    if (!e)
        return;
    e->hash = phash(path, len);
    e->len = len;
    memcpy(e->path, path, len);
    memcpy(e->id, id, 16);
    pthread_mutex_lock(&c->mu);
    if (v->meta.txnid < c->epoch) {
        /* this view is older than the newest path change: its answer may be stale */
        pthread_mutex_unlock(&c->mu);
        sdb_free(e);
        return;
    }
    for (sdb_pcentry *o = c->hash[e->hash & (c->hcap - 1)]; o; o = o->hnext)
        if (o->hash == e->hash && o->len == len && !memcmp(o->path, path, len)) {
            pthread_mutex_unlock(&c->mu);
            sdb_free(e);
            return;
        }
    e->hnext = c->hash[e->hash & (c->hcap - 1)];
    c->hash[e->hash & (c->hcap - 1)] = e;
    e->lnext = c->lru.lnext;
    e->lprev = &c->lru;
    c->lru.lnext->lprev = e;
    c->lru.lnext = e;
    if (++c->n > c->cap)
        unlink_entry(c, c->lru.lprev);
    pthread_mutex_unlock(&c->mu);
}

void sdb_pcache_invalidate(sdb_env *env, uint64_t txnid)
{
    sdb_pcache *c = &env->pcache;
    pthread_mutex_lock(&c->mu);
    if (c->hash)
        clear_all(c);
    if (txnid > c->epoch)
        c->epoch = txnid;
    pthread_mutex_unlock(&c->mu);
}
