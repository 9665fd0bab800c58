/*
 * pcache.c -- the path cache: path -> document id, so that a point read that
 * hits it skips the walk down the path tree (a root and a leaf of a few
 * hundred entries: about a quarter of a 1 KiB read, and most of its cache
 * misses on a large tree).
 *
 * A table of 128-byte slots, two-way set associative, holds paths of up to
 * SDB_PC_MAXPATH bytes; longer paths always walk the tree.  The table starts
 * at 1,024 slots and doubles, up to path_cache_size slots, while the database
 * holds more than half as many paths as it has slots; the tables it replaced
 * stay allocated until close (readers may still be probing them; together
 * they are smaller than the current one).
 *
 * No lock on the read path.  Each slot is a sequence lock: a filler claims it
 * by moving its sequence word from even to odd (compare-and-swap; a slot
 * being filled is skipped, never waited for), writes the words, and makes it
 * even again; a reader checks that the sequence was even and unchanged
 * around its loads.  Every word is atomic, so a torn slot is never used and
 * never a data race.
 *
 * Validity: the epoch is the id of the newest commit that changed the path
 * tree (binds, unbinds, deletes, new paths); the pager raises it under the
 * environment mutex in the same step that publishes the commit, before any
 * view can see it.  A slot is tagged with the epoch it was filled under and
 * counts only while that is still the epoch, so raising it forgets every
 * slot at once.  A view older than the epoch neither reads nor fills: its
 * path tree may differ from the cached one.  A view at or past the epoch sees
 * the same path tree as every other such view (no path changed since), so
 * what it reads or fills is right for all of them.  A commit that only
 * writes new versions of existing paths keeps the cache.
 */
#include "sdb.h"

#include <stdint.h>
#include <stdlib.h>

#define W_SEQ 0
#define W_TAG 1    /* epoch + 1 (0: empty) */
#define W_KEY 2    /* hash << 32 | path length */
#define W_ID 3     /* two words */
#define W_PLACE 5  /* leaf page << 16 | entry index of the current version's record */
#define W_PTXN 6   /* txnid + 1 of the state W_PLACE is right for (0: none) */
#define W_PATH 7
#define MIN_SLOTS 1024u

/* The path as zero-padded words (one copy), and their 64-bit hash. */
typedef struct pkey {
    uint64_t w[SDB_PC_WORDS - W_PATH];
    size_t nw;
    uint64_t h;
} pkey;

static void pkey_make(pkey *k, const char *p, size_t n)
{
    k->nw = (n + 7) / 8;
    k->w[k->nw - 1] = 0;
    memcpy(k->w, p, n);
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (size_t i = 0; i < k->nw; i++) {
        h = (h ^ k->w[i]) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    h *= 0x94D049BB133111EBull;
    k->h = h ^ (h >> 29);
}

void sdb_pcache_init(sdb_env *env, uint32_t cap)
{
    sdb_pcache *c = &env->pcache;
    pthread_mutex_init(&c->grow, NULL);
    atomic_init(&c->table, NULL);
    atomic_init(&c->epoch, 0);
    /* the largest power of two within cap, at least one 2-way set */
    uint32_t slots = cap ? 2 : 0;
    while (cap && slots <= cap / 2 && slots < (1u << 30))
        slots *= 2;
    c->cap = slots;
}

void sdb_pcache_destroy(sdb_env *env)
{
    sdb_pcache *c = &env->pcache;
    sdb_ptable *t = atomic_load(&c->table);
    while (t) {
        sdb_ptable *next = t->retired;
        sdb_table_free(t->mem, t->memlen);
        sdb_free(t);
        t = next;
    }
    atomic_store(&c->table, NULL);
    pthread_mutex_destroy(&c->grow);
}

/* The table to fill for a database of npaths paths: the current one, or a
 * bigger one swapped in (NULL when the cache is off or memory is short). */
static sdb_ptable *table_for(sdb_pcache *c, uint64_t npaths)
{
    sdb_ptable *t = atomic_load_explicit(&c->table, memory_order_acquire);
    uint64_t slots = t ? t->mask + 1 : 0;
    if (t && (slots >= c->cap || npaths * 2 <= slots))
        return t;
    uint64_t want = MIN_SLOTS;
    while (want < npaths * 2 && want < c->cap)
        want *= 2;
    if (want > c->cap)
        want = c->cap;
    if (want <= slots)
        return t;
    /* zero pages, backed only as slots are filled */
    sdb_ptable *n = sdb_calloc(1, sizeof *n);
    size_t memlen = want * sizeof(sdb_pslot) + 128;
    void *mem = n ? sdb_table_alloc(memlen) : NULL;
    if (!mem) {
        sdb_free(n);
        return t;   /* keep what there is */
    }
    n->mem = mem;
    n->memlen = memlen;
    n->slots = (sdb_pslot *)(((uintptr_t)mem + 127) & ~(uintptr_t)127);
    n->mask = want - 1;
    pthread_mutex_lock(&c->grow);
    sdb_ptable *cur = atomic_load_explicit(&c->table, memory_order_acquire);
    if (cur && cur->mask + 1 >= want) {
        pthread_mutex_unlock(&c->grow);
        sdb_table_free(n->mem, n->memlen);
        sdb_free(n);
        return cur;
    }
    n->retired = cur;
    atomic_store_explicit(&c->table, n, memory_order_release);
    pthread_mutex_unlock(&c->grow);
    return n;
}

int sdb_pcache_get(sdb_env *env, const sdb_view *v, const char *path, size_t len, uint8_t *id,
                   sdb_place *place)
{
    if (place)
        place->pgno = 0;
    sdb_pcache *c = &env->pcache;
    sdb_ptable *t = atomic_load_explicit(&c->table, memory_order_acquire);
    if (!t || !len || len > SDB_PC_MAXPATH)
        return 0;
    uint64_t e = atomic_load_explicit(&c->epoch, memory_order_acquire);
    if (v->meta.txnid < e)
        return 0;
    pkey pk;
    pkey_make(&pk, path, len);
    uint64_t h = pk.h;
    uint64_t key = (h & 0xFFFFFFFF00000000ull) | len;
    sdb_pslot *set = &t->slots[h & t->mask & ~(uint64_t)1];
    size_t nw = pk.nw;
    for (int way = 0; way < 2; way++) {
        sdb_pslot *s = &set[way];
        uint64_t s1 = atomic_load_explicit(&s->w[W_SEQ], memory_order_acquire);
        if ((s1 & 1) || atomic_load_explicit(&s->w[W_TAG], memory_order_relaxed) != e + 1 ||
            atomic_load_explicit(&s->w[W_KEY], memory_order_relaxed) != key)
            continue;
        size_t k = 0;
        while (k < nw &&
               atomic_load_explicit(&s->w[W_PATH + k], memory_order_relaxed) == pk.w[k])
            k++;
        uint64_t a = atomic_load_explicit(&s->w[W_ID], memory_order_relaxed);
        uint64_t b = atomic_load_explicit(&s->w[W_ID + 1], memory_order_relaxed);
        uint64_t pl = atomic_load_explicit(&s->w[W_PLACE], memory_order_relaxed);
        uint64_t pt = atomic_load_explicit(&s->w[W_PTXN], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (k < nw || atomic_load_explicit(&s->w[W_SEQ], memory_order_relaxed) != s1)
            continue;
        memcpy(id, &a, 8);
        memcpy(id + 8, &b, 8);
        if (place && pt == v->meta.txnid + 1) {
            /* a place is right only in the state it was found in: every
             * commit has its own txnid, and a page of that state's tree is
             * neither freed nor reused while a view of it is open */
            place->pgno = (pgno_t)(pl >> 16);
            place->idx = (uint32_t)(pl & 0xFFFF);
        }
        atomic_fetch_add_explicit(&c->hits, 1, memory_order_relaxed);
        return 1;
    }
    atomic_fetch_add_explicit(&c->misses, 1, memory_order_relaxed);
    return 0;
}

void sdb_pcache_put(sdb_env *env, const sdb_view *v, const char *path, size_t len, const uint8_t *id,
                    const sdb_place *place)
{
    sdb_pcache *c = &env->pcache;
    if (!c->cap || !len || len > SDB_PC_MAXPATH)
        return;
    uint64_t e = atomic_load_explicit(&c->epoch, memory_order_acquire);
    if (v->meta.txnid < e)
        return;   /* this view is older than the newest path change */
    sdb_ptable *t = table_for(c, v->meta.path_count);
    if (!t)
        return;
    pkey pk;
    pkey_make(&pk, path, len);
    uint64_t h = pk.h;
    sdb_pslot *set = &t->slots[h & t->mask & ~(uint64_t)1];
    /* the way that holds this path already (a new place for it), else an
     * empty or stale way, else the one the hash's next bit names */
    uint64_t key = (h & 0xFFFFFFFF00000000ull) | len;
    int way = (int)((h >> 32) & 1), live[2];
    for (int w = 0; w < 2; w++)
        live[w] = atomic_load_explicit(&set[w].w[W_TAG], memory_order_relaxed) == e + 1;
    if (live[0] && atomic_load_explicit(&set[0].w[W_KEY], memory_order_relaxed) == key)
        way = 0;
    else if (live[1] && atomic_load_explicit(&set[1].w[W_KEY], memory_order_relaxed) == key)
        way = 1;
    else if (!live[0] || !live[1])
        way = live[0];
    sdb_pslot *s = &set[way];
    uint64_t s1 = atomic_load_explicit(&s->w[W_SEQ], memory_order_relaxed);
    if ((s1 & 1) || !atomic_compare_exchange_strong_explicit(&s->w[W_SEQ], &s1, s1 + 1,
                                                             memory_order_acquire,
                                                             memory_order_relaxed))
        return;   /* another thread is filling it */
    atomic_thread_fence(memory_order_release);
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    atomic_store_explicit(&s->w[W_TAG], e + 1, memory_order_relaxed);
    atomic_store_explicit(&s->w[W_KEY], key, memory_order_relaxed);
    atomic_store_explicit(&s->w[W_ID], a, memory_order_relaxed);
    atomic_store_explicit(&s->w[W_ID + 1], b, memory_order_relaxed);
    int placed = place && place->pgno && place->idx <= 0xFFFF;   /* in v's state */
    atomic_store_explicit(&s->w[W_PLACE], placed ? (uint64_t)place->pgno << 16 | place->idx : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&s->w[W_PTXN], placed ? v->meta.txnid + 1 : 0, memory_order_relaxed);
    for (size_t k = 0; k < pk.nw; k++)
        atomic_store_explicit(&s->w[W_PATH + k], pk.w[k], memory_order_relaxed);
    atomic_store_explicit(&s->w[W_SEQ], s1 + 2, memory_order_release);
}

void sdb_pcache_invalidate(sdb_env *env, uint64_t txnid)
{
    /* callers hold env->mu: one writer of the epoch at a time */
    sdb_pcache *c = &env->pcache;
    if (txnid > atomic_load_explicit(&c->epoch, memory_order_relaxed))
        atomic_store_explicit(&c->epoch, txnid, memory_order_release);
}
