/*
 * pager.c -- pages, the log, commits, checkpoints and recovery.
 *
 * Every typed page read goes through sdb_page_get, which finds the newest
 * copy of the page visible to a view: a dirty page of the view's own write
 * transaction, else the newest log frame at or below the view's mark, else
 * the main file.  Verified copies are kept in an LRU cache keyed by
 * (page number, frame number), so a cached page never goes stale: a newer
 * version of the page is a different key.
 *
 * Invariants (numbered as in docs/format.md):
 *  [F5] A commit is durable when its commit frame, and every frame before it,
 *       is synced.  New readers see a commit only once it is durable.
 *  [F6] A checkpoint copies into the main file only frames that every live
 *       reader already sees, syncs the file, then writes the meta slot, then
 *       syncs again.  The log is reset (new salt) only when every frame has
 *       been copied and every reader sees the newest state.
 *  [F9] Pages written through the log may reuse any free page at once:
 *       readers of the old content find it in an older frame or in the main
 *       file, which [F6] does not overwrite while they live.
 *  [F10] Pages written straight to the main file (large document chunks) are
 *       taken only from runs freed by a transaction that every reader has
 *       passed, with no frame of theirs in the log; or from beyond the end of
 *       the file.  They are synced before the commit frame that points to them.
 *  [F11] After a failed write or sync the environment is latched fatal and
 *       refuses every further write until it is reopened.
 */
#include "sdb.h"
#include "codec/codec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define META_MAGIC_OFF 64
#define WAL_MAGIC 0x57424453u
#define MAP_CAP (256ull << 30)

static uint64_t frame_size(const sdb_env *env) { return SDB_FRAME_HDR + (uint64_t)env->psize; }
static uint64_t frame_off(const sdb_env *env, uint32_t idx)
{
    return SDB_WAL_HDR + (uint64_t)idx * frame_size(env);
}

uint64_t sdb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sdb_log(sdb_env *env, int level, const char *fmt, ...)
{
    if (!env->cfg.log_fn)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    env->cfg.log_fn(env->cfg.log_ctx, level, buf);
}

void sdb_killpoint_hit(sdb_env *env, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(env->killpoint, name, n) || (env->killpoint[n] && env->killpoint[n] != ':'))
        return;
    if (--env->killcount > 0)
        return;
    raise(SIGKILL);
}

/* ---- I/O with loops over short transfers and EINTR ---- */

/* Every other VFS call is retried while it reports EINTR, a bounded number of
 * times: a backend that keeps failing that way has failed. */
#define SDB_EINTR_RETRIES 100
#define VFS_CALL(e, call) \
    do { int tries_ = 0; do { (e) = (call); } while ((e) == EINTR && ++tries_ < SDB_EINTR_RETRIES); } while (0)

int sdb_io_read(sdb_env *env, streamdb_file *f, void *buf, size_t n, uint64_t off, const char *what)
{
    uint8_t *p = buf;
    int eintr = 0;
    while (n) {
        size_t done = 0;
        int e = env->vfs->read(f, p, n, off, &done);
        if (e == EINTR && ++eintr < SDB_EINTR_RETRIES)
            continue;
        if (e)
            return sdb_err(STREAMDB_ERR_IO, "read of %s at offset %llu failed: %s", what,
                           (unsigned long long)off, strerror(e));
        if (!done)
            return sdb_err(STREAMDB_ERR_CORRUPT, "%s: unexpected end of file at offset %llu "
                           "(file truncated?)", what, (unsigned long long)off);
        p += done;
        off += done;
        n -= done;
    }
    return 0;
}

int sdb_io_write(sdb_env *env, streamdb_file *f, const void *buf, size_t n, uint64_t off,
                 const char *what)
{
    const uint8_t *p = buf;
    int eintr = 0;
    while (n) {
        size_t done = 0;
        int e = env->vfs->write(f, p, n, off, &done);
        if (e == EINTR && ++eintr < SDB_EINTR_RETRIES)
            continue;
        if (e || !done) {
            atomic_store(&env->fatal, 1);
            if (e == ENOSPC || e == EFBIG || e == EDQUOT)
                return sdb_err(STREAMDB_ERR_FULL, "write of %s at offset %llu failed: %s",
                               what, (unsigned long long)off, strerror(e));
            return sdb_err(STREAMDB_ERR_IO, "write of %s at offset %llu failed: %s", what,
                           (unsigned long long)off, e ? strerror(e) : "no progress");
        }
        p += done;
        off += done;
        n -= done;
    }
    return 0;
}

int sdb_io_sync(sdb_env *env, streamdb_file *f, const char *what)
{
    int e;
    VFS_CALL(e, env->vfs->sync(f));
    if (e) {
        /* [F11] never retry a failed fsync and carry on */
        atomic_store(&env->fatal, 1);
        return sdb_err(STREAMDB_ERR_IO, "sync of %s failed: %s; the handle refuses writes "
                       "until reopened", what, strerror(e));
    }
    return 0;
}

/* ---- page seal and verify ---- */

void sdb_page_seal(uint8_t *page, uint32_t psize, int type, pgno_t pgno, uint64_t txn)
{
    page[4] = (uint8_t)type;
    wr32(page + 8, pgno);
    wr64(page + 16, txn);
    wr32(page, sdb_crc32c(0, page + 4, psize - 4));
}

int sdb_page_seal_env(sdb_env *env, uint8_t *page, int type, pgno_t pgno, uint64_t txn)
{
    if (env->crypt && type != SDB_PT_META) {
        /* the body is encrypted; type, page number and txn are authenticated */
        page[4] = (uint8_t)type;
        wr32(page + 8, pgno);
        wr64(page + 16, txn);
        int rc = sdb_gcm_seal(env->key, page + 4, 20, page + SDB_PAGE_HDR,
                              env->psize - SDB_PAGE_HDR, page + 24, page + 36);
        if (rc)
            return rc;
    }
    sdb_page_seal(page, env->psize, type, pgno, txn);
    return 0;
}

/* Decrypts a verified page in place (encrypted databases, typed pages). */
static int page_open(sdb_env *env, uint8_t *page, pgno_t pgno)
{
    if (!env->crypt || page[4] == SDB_PT_META)
        return 0;
    if (sdb_gcm_open(env->key, page + 4, 20, page + SDB_PAGE_HDR, env->psize - SDB_PAGE_HDR,
                     page + 24, page + 36))
        return sdb_err(STREAMDB_ERR_CRYPTO, "page %u failed authentication (tampered, or "
                       "damaged in quick mode)", pgno);
    return 0;
}

int sdb_page_verify(const uint8_t *page, uint32_t psize, pgno_t pgno, int type)
{
    if (rd32(page) != sdb_crc32c(0, page + 4, psize - 4))
        return sdb_err(STREAMDB_ERR_CORRUPT, "page %u: checksum mismatch", pgno);
    if (rd32(page + 8) != pgno)
        return sdb_err(STREAMDB_ERR_CORRUPT, "page %u: header names page %u", pgno, rd32(page + 8));
    if (type && page[4] != type)
        return sdb_err(STREAMDB_ERR_CORRUPT, "page %u: type %d where %d was expected", pgno,
                       page[4], type);
    return 0;
}

/* ---- meta encoding ---- */

static void meta_encode(const sdb_env *env, const sdb_meta *m, uint8_t *page, pgno_t slot)
{
    memset(page, 0, env->psize);
    memcpy(page + META_MAGIC_OFF, SDB_MAGIC, 16);
    wr32(page + 80, SDB_FORMAT_VERSION);
    wr32(page + 84, env->psize);
    wr32(page + 88, SDB_CHUNK);
    wr32(page + 92, m->features);
    wr64(page + 96, m->txnid);
    wr64(page + 104, m->seq);
    wr32(page + 112, m->npages);
    wr32(page + 116, m->path_root);
    wr32(page + 120, m->doc_root);
    wr32(page + 124, m->free_head);
    wr64(page + 128, m->free_pages);
    wr64(page + 136, m->doc_count);
    wr64(page + 144, m->path_count);
    wr64(page + 152, m->id_clock);
    wr32(page + 160, env->centry);
    wr32(page + 164, m->log_salt);
    wr64(page + 168, m->logical_bytes);
    wr64(page + 176, m->stored_bytes);
    wr32(page + 228, m->acked_frames);
    if (env->crypt) {
        /* key check: 16 zero bytes sealed under the key */
        uint8_t *kc = page + 184;
        memset(kc + 28, 0, 16);
        if (sdb_gcm_seal(env->key, (const uint8_t *)"StreamDb key check", 18, kc + 28, 16, kc,
                         kc + 12))
            memset(kc, 0, 44);   /* no randomness: the open will report a wrong key */
    }
    sdb_page_seal(page, env->psize, SDB_PT_META, slot, m->txnid);
}

static int meta_decode(const sdb_env *env, const uint8_t *page, pgno_t slot, sdb_meta *m)
{
    int rc = sdb_page_verify(page, env->psize, slot, SDB_PT_META);
    if (rc)
        return rc;
    if (memcmp(page + META_MAGIC_OFF, SDB_MAGIC, 16))
        return sdb_err(STREAMDB_ERR_NOT_A_DB, "meta page %u: bad magic", slot);
    uint32_t feat = rd32(page + 92);
    if (rd32(page + 80) != SDB_FORMAT_VERSION || rd32(page + 88) != SDB_CHUNK ||
        (feat & ~(SDB_FEAT_SNAPPY | SDB_FEAT_CRYPT)) ||
        rd32(page + 160) != ((feat & SDB_FEAT_CRYPT) ? SDB_CHUNK_ENTRY_CRYPT : SDB_CHUNK_ENTRY))
        return sdb_err(STREAMDB_ERR_INCOMPATIBLE, "format version %u / features %#x not "
                       "supported by this build", rd32(page + 80), feat);
    m->features = feat;
    memcpy(m->keycheck, page + 184, 44);
    m->logical_bytes = rd64(page + 168);
    m->stored_bytes = rd64(page + 176);
    m->acked_frames = rd32(page + 228);
    m->txnid = rd64(page + 96);
    m->seq = rd64(page + 104);
    m->npages = rd32(page + 112);
    m->path_root = rd32(page + 116);
    m->doc_root = rd32(page + 120);
    m->free_head = rd32(page + 124);
    m->free_pages = rd64(page + 128);
    m->doc_count = rd64(page + 136);
    m->path_count = rd64(page + 144);
    m->id_clock = rd64(page + 152);
    m->log_salt = rd32(page + 164);
    uint64_t maxpages = env->cfg.max_db_size / env->psize;
    if (m->npages < SDB_FIRST_PAGE || (maxpages && m->npages > maxpages + 1) ||
        m->path_root >= m->npages || m->doc_root >= m->npages || m->free_head >= m->npages)
        return sdb_err(STREAMDB_ERR_CORRUPT, "meta page %u: page numbers out of range", slot);
    return 0;
}

/* ---- frame index: pgno -> newest local frame, chained to older ones ---- */

static uint32_t hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352d;
    x ^= x >> 15;
    x *= 0x846ca68b;
    x ^= x >> 16;
    return x;
}

static int fhash_grow(sdb_env *env)
{
    uint32_t ncap = env->fhcap ? env->fhcap * 2 : 1024;
    uint32_t *nk = sdb_calloc(ncap, sizeof *nk), *nv = sdb_calloc(ncap, sizeof *nv);
    if (!nk || !nv) {
        sdb_free(nk);
        sdb_free(nv);
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory growing the log index");
    }
    for (uint32_t i = 0; i < env->fhcap; i++) {
        if (!env->fhash[i])
            continue;
        uint32_t j = hash32(env->fhkey[i]) & (ncap - 1);
        while (nv[j])
            j = (j + 1) & (ncap - 1);
        nk[j] = env->fhkey[i];
        nv[j] = env->fhash[i];
    }
    sdb_free(env->fhkey);
    sdb_free(env->fhash);
    env->fhkey = nk;
    env->fhash = nv;
    env->fhcap = ncap;
    return 0;
}

static uint32_t *fhash_slot(sdb_env *env, pgno_t pgno)
{
    if (!env->fhcap)
        return NULL;
    uint32_t j = hash32(pgno) & (env->fhcap - 1);
    while (env->fhash[j]) {
        if (env->fhkey[j] == pgno)
            return &env->fhash[j];
        j = (j + 1) & (env->fhcap - 1);
    }
    return NULL;
}

/* The log bit of page p (see sdb_page_get): set while the log index holds a
 * frame of p.  Pages past the map have none (they are never read from it). */
static void lbit_put(sdb_env *env, pgno_t p, int on)
{
    if (!env->lbits || !p || (uint64_t)(p + 1) * env->psize > env->maplen)
        return;
    /* release: a reader that sees the bit clear (acquire) also sees the
     * checkpoint's writes of the page into the main file before the reset */
    if (on)
        atomic_fetch_or_explicit(&env->lbits[p / 64], 1ull << (p % 64), memory_order_release);
    else
        atomic_fetch_and_explicit(&env->lbits[p / 64], ~(1ull << (p % 64)), memory_order_release);
}

/* Appends local frame idx (== nframes) for pgno to the index. mu held. */
/* Makes room for extra more frames and one more pending commit, so that the
 * indexing after a commit's frames are in the log cannot fail: an allocation
 * failure must come before the log holds the commit, never after.  mu held. */
static int findex_reserve(sdb_env *env, uint32_t extra)
{
    if (env->nframes + (uint64_t)extra > env->capframes) {
        uint32_t ncap = env->capframes ? env->capframes : 1024;
        while (ncap < env->nframes + (uint64_t)extra)
            ncap *= 2;
        sdb_frame *nf = sdb_realloc(env->frames, ncap * sizeof *nf);
        if (!nf)
            return sdb_err(STREAMDB_ERR_NOMEM, "out of memory growing the log index");
        env->frames = nf;
        env->capframes = ncap;
    }
    while ((env->fhcount + (uint64_t)extra) * 2 > env->fhcap) {
        int rc = fhash_grow(env);
        if (rc)
            return rc;
    }
    if (env->npend == env->cappend) {
        size_t nc = env->cappend ? env->cappend * 2 : 16;
        sdb_pending *np = sdb_realloc(env->pend, nc * sizeof *np);
        if (!np)
            return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
        env->pend = np;
        env->cappend = nc;
    }
    return 0;
}

/* Indexes one more frame.  A commit has reserved the room (it cannot fail
 * then); recovery grows the index frame by frame. */
static int findex_add(sdb_env *env, pgno_t pgno)
{
    int rc = findex_reserve(env, 1);
    if (rc)
        return rc;
    uint32_t idx = env->nframes++;
    /* the page's log bit is set before any view can see the frame (views
     * take their mark under mu, which the caller holds) */
    lbit_put(env, pgno, 1);
    atomic_store_explicit(&env->nframes_pub, env->nframes, memory_order_release);
    uint32_t *slot = fhash_slot(env, pgno);
    env->frames[idx].pgno = pgno;
    env->frames[idx].prev = slot ? *slot : 0;
    if (slot) {
        *slot = idx + 1;
    } else {
        uint32_t j = hash32(pgno) & (env->fhcap - 1);
        while (env->fhash[j])
            j = (j + 1) & (env->fhcap - 1);
        env->fhkey[j] = pgno;
        env->fhash[j] = idx + 1;
        env->fhcount++;
    }
    return 0;
}

static void findex_clear(sdb_env *env)
{
    /* Clear only the bits of indexed pages: O(frames), not O(map).  Callers
     * hold the checkpoint write lock, and every frame is in the main file. */
    for (uint32_t i = 0; env->lbits && i < env->nframes; i++)
        lbit_put(env, env->frames[i].pgno, 0);
    env->wal_base += env->nframes;
    env->nframes = 0;
    atomic_store_explicit(&env->nframes_pub, 0, memory_order_release);
    if (env->fhcap)
        memset(env->fhash, 0, env->fhcap * sizeof *env->fhash);
    env->fhcount = 0;
}

/* Newest global frame number of pgno at or below mark; 0 = main file. mu held. */
static uint64_t findex_lookup(sdb_env *env, pgno_t pgno, uint64_t mark)
{
    uint32_t *slot = fhash_slot(env, pgno);
    if (!slot)
        return 0;
    uint32_t i = *slot;
    while (i) {
        uint64_t g = env->wal_base + i;
        if (g <= mark)
            return g;
        i = env->frames[i - 1].prev;
    }
    return 0;
}

/* ---- page cache ---- */

static uint32_t ckey(pgno_t pgno, uint64_t fno) { return hash32(pgno ^ hash32((uint32_t)fno ^ (uint32_t)(fno >> 32))); }

static void lru_unlink(sdb_centry *e)
{
    e->lprev->lnext = e->lnext;
    e->lnext->lprev = e->lprev;
}

static void lru_front(sdb_env *env, sdb_centry *e)
{
    e->lnext = env->lru.lnext;
    e->lprev = &env->lru;
    env->lru.lnext->lprev = e;
    env->lru.lnext = e;
}

/* Drops one reference; the last one frees the entry (by then it is out of
 * the hash and the LRU, which hold the cache's own reference). */
static void centry_unref(sdb_centry *e)
{
    /* acq_rel: the holders' reads of the page happen before the free (a
     * standalone acquire fence would do, but ThreadSanitizer does not model
     * fences) */
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) {
        sdb_free(e->data);
        sdb_free(e);
    }
}

/* mu held */
static void cache_detach(sdb_env *env, sdb_centry *e)
{
    sdb_centry **pp = &env->chash[ckey(e->pgno, e->fno) & (env->chcap - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(e);
    env->ncached--;
    centry_unref(e);   /* the cache's reference: freed now, or by the last holder */
}

static void cache_evict(sdb_env *env)
{
    sdb_centry *e = env->lru.lprev;
    while (env->ncached > env->cache_cap && e != &env->lru) {
        sdb_centry *prev = e->lprev;
        /* only the cache's reference left; a new one needs mu, held here */
        if (atomic_load_explicit(&e->refs, memory_order_relaxed) == 1) {
            cache_detach(env, e);
            atomic_fetch_add(&env->evictions, 1);
        }
        e = prev;
    }
}

/* Drops the main-file copies of every page that has frames in the log
 * (before a log reset) -- mu held, ckpt held exclusively. */
static void cache_drop_main_copies(sdb_env *env)
{
    for (uint32_t b = 0; env->chash && b < env->chcap; b++) {
        sdb_centry *e = env->chash[b];
        while (e) {
            sdb_centry *next = e->hnext;
            if (e->fno == 0 && fhash_slot(env, e->pgno))
                cache_detach(env, e);
            e = next;
        }
    }
}

/* ---- verified main-file pages served straight from the map ----
 * With use_mmap (and no encryption) a typed page that lives only in the main
 * file is checked once, then read in place: no copy, no cache entry, no
 * system call.  A checkpoint or a direct write that changes the page clears
 * its bit first; no reader can be reading it then ([F6], [F10]). */
static int vbit_test(sdb_env *env, pgno_t p)
{
    return (atomic_load_explicit(&env->vbits[p / 64], memory_order_relaxed) >> (p % 64)) & 1;
}

static void vbit_set(sdb_env *env, pgno_t p)
{
    atomic_fetch_or_explicit(&env->vbits[p / 64], 1ull << (p % 64), memory_order_relaxed);
}

/* In quick mode a page's bit means "header checked" (otherwise every read
 * of it would take mu, and a no-wait read would ask mincore each time).
 * Leaving quick mode clears every bit (sdb_vbits_reset); a reader that sees
 * it end just after setting its bit clears the bit itself.  Sequentially
 * consistent: either the reader's load sees quick mode off, or the reset's
 * clearing comes after the reader's bit. */
static void vbit_set_quick(sdb_env *env, pgno_t p)
{
    uint64_t hw = atomic_load_explicit(&env->vbits_quick_hw, memory_order_relaxed);
    while (hw <= p / 64 &&
           !atomic_compare_exchange_weak(&env->vbits_quick_hw, &hw, (uint64_t)p / 64 + 1))
        ;
    atomic_fetch_or(&env->vbits[p / 64], 1ull << (p % 64));
    if (!atomic_load(&env->quick))
        atomic_fetch_and(&env->vbits[p / 64], ~(1ull << (p % 64)));
}

void sdb_vbits_reset(sdb_env *env)
{
    if (!env->vbits)
        return;
    /* bits set in quick mode lie below the high-water mark (a reader that
     * raises it after this load sees quick mode off and clears its bit) */
    uint64_t words = atomic_load(&env->vbits_quick_hw);
    if (words > env->bitslen / sizeof *env->vbits)
        words = env->bitslen / sizeof *env->vbits;
    for (uint64_t i = 0; i < words; i++)
        atomic_store(&env->vbits[i], 0);
}

static void vbit_clear(sdb_env *env, pgno_t p, uint32_t n)
{
    if (!env->vbits)
        return;
    for (uint32_t i = 0; i < n; i++) {
        pgno_t q = p + i;
        if ((uint64_t)q * env->psize >= env->maplen)
            break;
        atomic_fetch_and_explicit(&env->vbits[q / 64], ~(1ull << (q % 64)), memory_order_relaxed);
    }
}

static void map_prefetch_once(sdb_env *env, pgno_t pgno, const uint8_t *m, size_t len);

static int read_main(sdb_env *env, pgno_t pgno, uint8_t *buf, size_t len)
{
    uint64_t off = (uint64_t)pgno * env->psize;
    if (env->map && off + len <= env->maplen) {
        pthread_mutex_lock(&env->mu);
        uint64_t fsz = env->file_size;
        pthread_mutex_unlock(&env->mu);
        if (off + len <= fsz) {
            map_prefetch_once(env, pgno, env->map + off, len);
            memcpy(buf, env->map + off, len);
            return 0;
        }
        return sdb_err(STREAMDB_ERR_CORRUPT, "page %u is beyond the end of the file", pgno);
    }
    return sdb_io_read(env, env->dbf, buf, len, off, env->path);
}

static int read_frame_page(sdb_env *env, uint64_t g, uint8_t *buf)
{
    uint32_t idx = (uint32_t)(g - env->wal_base - 1);
    return sdb_io_read(env, env->walf, buf, env->psize, frame_off(env, idx) + SDB_FRAME_HDR,
                       env->walpath);
}

static sdb_dirty *dirty_find(sdb_wtxn *w, pgno_t pgno)
{
    if (!w->dcap)
        return NULL;
    for (sdb_dirty *d = w->dhash[hash32(pgno) & (w->dcap - 1)]; d; d = d->next)
        if (d->pgno == pgno)
            return d;
    return NULL;
}

/* A STREAMDB_READ_NOWAIT read that would need the disk [streamdb.h]. */
static int would_block(pgno_t pgno)
{
    return sdb_err(STREAMDB_ERR_WOULDBLOCK, "page %u is not in memory (STREAMDB_READ_NOWAIT)", pgno);
}

/* Whether the kernel holds every page of [m, m+len) of the map, so that
 * touching them cannot fault to the disk.  Asked only by no-wait reads, and
 * only before a page's first check (afterwards its bit says it was read).
 * Where it cannot tell, the answer is yes: the read then behaves like any
 * other map read. */
static int map_resident(const uint8_t *m, size_t len)
{
#ifdef __linux__
    long osz = sysconf(_SC_PAGESIZE);   /* glibc: from the auxiliary vector, no system call */
    if (osz <= 0)
        return 1;
    uintptr_t a = (uintptr_t)m & ~(uintptr_t)(osz - 1);
    uintptr_t end = (uintptr_t)m + len;
    unsigned char vec[64];
    while (a < end) {
        size_t np = (size_t)((end - a + (uintptr_t)osz - 1) / (uintptr_t)osz);
        if (np > sizeof vec)
            np = sizeof vec;
        if (mincore((void *)a, np * (size_t)osz, vec) != 0)
            return 1;
        for (size_t i = 0; i < np; i++)
            if (!(vec[i] & 1))
                return 0;
        a += np * (uintptr_t)osz;
    }
#else
    (void)m;
    (void)len;
#endif
    return 1;
}

/* Before the first touch of mapped pages that are not in memory, asks the
 * kernel for exactly them.  A fault on a page that is not cached reads
 * around it, read_ahead_kb of the device (8 MiB on this project's virtual
 * disks, 128 KiB by default): right for a file read in order, wrong for tree
 * pages, which a point read takes one at a time from all over the file.  A
 * cold point read among 1,000,000 documents faulted in 30 MB that way (28 ms,
 * against 1.2 ms for SQLite, which reads with pread).  MADV_WILLNEED starts
 * the read of the range alone; the fault that follows waits for it and reads
 * nothing more.  Called only where a page is checked for the first time, so
 * warm reads never pay for the two system calls. */
static void map_prefetch(const uint8_t *m, size_t len)
{
#if defined(__linux__) && defined(MADV_WILLNEED)
    long osz = sysconf(_SC_PAGESIZE);
    if (osz <= 0 || map_resident(m, len))
        return;
    uintptr_t a = (uintptr_t)m & ~(uintptr_t)(osz - 1);
    (void)madvise((void *)a, (size_t)((uintptr_t)m + len - a), MADV_WILLNEED);   /* a hint */
#else
    (void)m;
    (void)len;
#endif
}

int sdb_page_get(sdb_env *env, const sdb_view *v, pgno_t pgno, int type, sdb_page *out)
{
    if (v->w) {
        sdb_dirty *d = dirty_find(v->w, pgno);
        if (d) {
            if (type && d->data[4] != type)
                return sdb_err(STREAMDB_ERR_CORRUPT, "page %u: type %d where %d was expected",
                               pgno, d->data[4], type);
            out->data = d->data;
            out->entry = NULL;
            return 0;
        }
    }
    if (pgno < SDB_FIRST_PAGE || pgno >= v->meta.npages)
        return sdb_err(STREAMDB_ERR_CORRUPT, "reference to page %u outside the database "
                       "(%u pages)", pgno, v->meta.npages);
    /* The map fast path takes no lock.  A page with no frame in the log
     * index (its bit in lbits clear) has its newest copy for this view in the
     * main file: findex_add sets the bit under mu before any view can take a
     * mark that covers the frame, and only the log reset clears it, under the
     * checkpoint's write lock, once every frame is in the main file.  A
     * checkpoint copies only pages with frames (bit set), and only frames
     * every registered view already sees [F6]; a direct write [F10] takes
     * pages no registered view reaches.  So none of the pages this view reads
     * from the map can change while it is registered.  A frame appended by a
     * newer commit may set the bit meanwhile: that only sends the read down
     * the slow path, which finds no frame at or below this view's mark and
     * reads the same main-file copy.  The lock below serialises the slow path
     * with the reset. */
    if (env->vbits && (uint64_t)(pgno + 1) * env->psize <= env->maplen &&
        (!atomic_load_explicit(&env->nframes_pub, memory_order_acquire) ||
         !((atomic_load_explicit(&env->lbits[pgno / 64], memory_order_acquire) >> (pgno % 64)) & 1))) {
        /* this page has no frame in the log: the main file's copy is the one */
        const uint8_t *m = env->map + (uint64_t)pgno * env->psize;
        int quick = atomic_load_explicit(&env->quick, memory_order_relaxed);
        int rc = 0;
        if (!vbit_test(env, pgno)) {
            if (v->nowait && !map_resident(m, env->psize))
                return would_block(pgno);
            pthread_mutex_lock(&env->mu);
            uint64_t fsz = env->file_size;
            pthread_mutex_unlock(&env->mu);
            if ((uint64_t)(pgno + 1) * env->psize > fsz) {
                rc = sdb_err(STREAMDB_ERR_CORRUPT, "page %u is beyond the end of the file", pgno);
            } else {
                map_prefetch(m, env->psize);
                if (quick) {
                    rc = rd32(m + 8) != pgno ? sdb_err(STREAMDB_ERR_CORRUPT, "page %u: bad header", pgno) : 0;
                    if (!rc)
                        vbit_set_quick(env, pgno);
                } else if (!(rc = sdb_page_verify(m, env->psize, pgno, 0))) {
                    vbit_set(env, pgno);
                }
            }
            atomic_fetch_add_explicit(&env->misses, 1, memory_order_relaxed);
        } else {
            atomic_fetch_add_explicit(&env->hits, 1, memory_order_relaxed);
        }
        if (!rc && type && m[4] != type)
            rc = sdb_err(STREAMDB_ERR_CORRUPT, "page %u: type %d where %d was expected", pgno,
                         m[4], type);
        if (rc)
            return rc;
        out->data = m;
        out->entry = NULL;
        return 0;
    }
    /* A cached copy is private and immutable, and a frame number names one
     * image for good (numbers are not reused after a log reset); the reset
     * clears the frame index and drops the main-file copies in one step under
     * mu.  So a hit needs mu only.  A miss reads the log or the main file
     * under the checkpoint's read lock, which keeps the log from being reset
     * and rewritten under the read, and looks the frame up again under it. */
    pthread_mutex_lock(&env->mu);
    uint64_t g = findex_lookup(env, pgno, v->mark);
    uint32_t b = ckey(pgno, g) & (env->chcap - 1);
    for (sdb_centry *e = env->chash[b]; e; e = e->hnext) {
        if (e->pgno == pgno && e->fno == g) {
            atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
            lru_unlink(e);
            lru_front(env, e);
            pthread_mutex_unlock(&env->mu);
            atomic_fetch_add_explicit(&env->hits, 1, memory_order_relaxed);
            if (type && e->data[4] != type)
                goto wrong_type;
            out->data = e->data;
            out->entry = e;
            return 0;
        wrong_type:
            out->data = e->data;
            out->entry = e;
            sdb_page_put(env, out);
            return sdb_err(STREAMDB_ERR_CORRUPT, "page %u: type %d where %d was expected",
                           pgno, e->data[4], type);
        }
    }
    pthread_mutex_unlock(&env->mu);
    if (v->nowait) {
        /* only a main-file copy the map holds in memory: a frame is a pread,
         * and so is a page past the map */
        if (g || !env->map || (uint64_t)(pgno + 1) * env->psize > env->maplen ||
            !map_resident(env->map + (uint64_t)pgno * env->psize, env->psize) ||
            pthread_rwlock_tryrdlock(&env->ckpt) != 0)
            return would_block(pgno);
    } else {
        pthread_rwlock_rdlock(&env->ckpt);
    }
    atomic_fetch_add_explicit(&env->misses, 1, memory_order_relaxed);
    pthread_mutex_lock(&env->mu);
    /* a reset may have come in between (for a no-wait read g was 0 and
     * stays 0: frames past this view's mark are not its own) */
    g = findex_lookup(env, pgno, v->mark);
    pthread_mutex_unlock(&env->mu);
    b = ckey(pgno, g) & (env->chcap - 1);
    sdb_centry *e = sdb_calloc(1, sizeof *e);
    uint8_t *data = sdb_malloc(env->psize);
    if (!e || !data) {
        sdb_free(e);
        sdb_free(data);
        pthread_rwlock_unlock(&env->ckpt);
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory reading page %u", pgno);
    }
    int rc = g ? read_frame_page(env, g, data) : read_main(env, pgno, data, env->psize);
    pthread_rwlock_unlock(&env->ckpt);
    int loaded_quick = atomic_load(&env->quick);
    if (!rc) {
        if (loaded_quick) {
            if (rd32(data + 8) != pgno || (type && data[4] != type))
                rc = sdb_err(STREAMDB_ERR_CORRUPT, "page %u: bad header", pgno);
        } else {
            rc = sdb_page_verify(data, env->psize, pgno, type);
        }
        if (!rc)
            rc = page_open(env, data, pgno);
    }
    if (rc) {
        sdb_free(e);
        sdb_free(data);
        return rc;
    }
    e->pgno = pgno;
    e->fno = g;
    e->data = data;
    atomic_init(&e->refs, 2);   /* the cache's and the caller's */
    pthread_mutex_lock(&env->mu);
    /* another thread may have loaded the same version meanwhile */
    for (sdb_centry *o = env->chash[b]; o; o = o->hnext) {
        if (o->pgno == pgno && o->fno == g) {
            atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
            pthread_mutex_unlock(&env->mu);
            sdb_free(e);
            sdb_free(data);
            out->data = o->data;
            out->entry = o;
            return 0;
        }
    }
    if (loaded_quick && !atomic_load(&env->quick)) {
        /* only header-checked, and quick mode has ended (sdb_cache_drop_all
         * ran or waits for mu): the caller's copy, not the cache's */
        pthread_mutex_unlock(&env->mu);
        atomic_store(&e->refs, 1);
        out->data = data;
        out->entry = e;
        return 0;
    }
    e->hnext = env->chash[b];
    env->chash[b] = e;
    lru_front(env, e);
    env->ncached++;
    cache_evict(env);
    pthread_mutex_unlock(&env->mu);
    out->data = data;
    out->entry = e;
    return 0;
}

/* Leaving quick mode: forgets every cached page, some of which were only
 * header-checked.  A load that began in quick mode and inserts after this
 * sees the mode off (under mu) and keeps its copy out of the cache. */
void sdb_cache_drop_all(sdb_env *env)
{
    pthread_mutex_lock(&env->mu);
    for (uint32_t b = 0; env->chash && b < env->chcap; b++)
        while (env->chash[b])
            cache_detach(env, env->chash[b]);
    pthread_mutex_unlock(&env->mu);
}

void sdb_page_put(sdb_env *env, sdb_page *p)
{
    sdb_centry *e = p->entry;
    p->entry = NULL;
    p->data = NULL;
    if (e)
        centry_unref(e);   /* no lock: see sdb_centry.refs */
}

/* The kernel copies file pages into user memory with `rep movsb`, which some
 * x86 cores run several times slower when the destination lies 1 to 63 bytes
 * past the source modulo 4 KiB (glibc's memmove avoids `rep movsb` at those
 * distances for the same reason: Avoid_Short_Distance_REP_MOVSB).  The usual
 * victim is a buffer from malloc's mmap path, 16 bytes past a page boundary:
 * on this project's AMD EPYC machine a warm 64 KiB pread into one ran at 1.5
 * GB/s, against 6.5 GB/s into the same buffer 64 bytes further on.  So a read
 * of chunk data into such a buffer goes through a bounce buffer placed at a
 * distance that is a multiple of 64, and one memcpy (which takes care of its
 * own distances). */
static int short_distance(const void *dst, uint64_t off)
{
    return (uint32_t)(((uintptr_t)dst - (uintptr_t)off) & 4095u) - 1u < 63u;
}

static int read_data(sdb_env *env, streamdb_file *f, uint8_t *buf, size_t len, uint64_t off,
                     const char *what)
{
    if (len < 4096 || !short_distance(buf, off))
        return sdb_io_read(env, f, buf, len, off, what);
    size_t piece = len < SDB_CHUNK ? len : SDB_CHUNK;
    uint8_t *raw = sdb_malloc(piece + 64);
    if (!raw)
        return sdb_io_read(env, f, buf, len, off, what);   /* slower, still right */
    uint8_t *b = raw + (((uintptr_t)off - (uintptr_t)raw) & 63u);
    int rc = 0;
    for (size_t done = 0; done < len && !rc; done += piece) {
        size_t n = len - done < piece ? len - done : piece;
        if (!(rc = sdb_io_read(env, f, b, n, off + done, what)))
            memcpy(buf + done, b, n);
    }
    sdb_free(raw);
    return rc;
}

/* A chunk read from the map is the same case as a tree page (map_prefetch):
 * a cold 64 KiB chunk would fault in read_ahead_kb around its first page.
 * So is a page copied out of the map into the page cache (read_main, where
 * the checked-once bitmap does not apply).  Neither has a checked-once bit,
 * and a residency test costs a system call (a microsecond for 16 pages) on
 * every warm read, so tbits remembers which chunks and pages this handle has
 * already asked for (by first page) and only the first read asks.  The bit
 * is only a hint: pages the kernel evicted since are read as before, through
 * the fault and its read-around. */
static void map_prefetch_once(sdb_env *env, pgno_t pgno, const uint8_t *m, size_t len)
{
    if (!env->tbits || (uint64_t)pgno >= env->bitslen * 8)
        return;
    uint64_t bit = 1ull << (pgno % 64);
    if (atomic_load_explicit(&env->tbits[pgno / 64], memory_order_relaxed) & bit)
        return;
    atomic_fetch_or_explicit(&env->tbits[pgno / 64], bit, memory_order_relaxed);
    map_prefetch(m, len);
}

int sdb_read_chunk(sdb_env *env, const sdb_view *v, pgno_t pgno, uint32_t len, uint8_t *buf,
                   const uint8_t **mapped)
{
    if (mapped)
        *mapped = NULL;
    uint32_t npages = (len + env->psize - 1) / env->psize;
    if (pgno < SDB_FIRST_PAGE || (uint64_t)pgno + npages > v->meta.npages)
        return sdb_err(STREAMDB_ERR_CORRUPT, "chunk at page %u (+%u) outside the database",
                       pgno, npages);
    int rc = 0;
    if (!v->nowait)
        pthread_rwlock_rdlock(&env->ckpt);
    else if (pthread_rwlock_tryrdlock(&env->ckpt) != 0)
        return would_block(pgno);   /* a checkpoint is resetting the log */
    /* Which pages of the run live in the log (or this txn's dirty set)? */
    int any_log = 0;
    pthread_mutex_lock(&env->mu);
    if (env->fhcount)
        for (uint32_t i = 0; i < npages && !any_log; i++)
            any_log = findex_lookup(env, pgno + i, v->mark) != 0;
    pthread_mutex_unlock(&env->mu);
    if (v->w && v->w->ndirty)
        for (uint32_t i = 0; i < npages && !any_log; i++)
            any_log = dirty_find(v->w, pgno + i) != NULL;
    uint64_t off = (uint64_t)pgno * env->psize;
    if (!any_log) {
        /* A point read may take the chunk from the map (the pages of a
         * version the view sees do not change while it is registered): a
         * memcpy from mapped pages costs a third of a pread's copy here.
         * Streams read with pread straight into the caller's buffer: one copy
         * either way, and no mapped pages left in the resident set. */
        if ((mapped || v->nowait) && env->map && off + len <= env->maplen) {
            pthread_mutex_lock(&env->mu);
            uint64_t fsz = env->file_size;
            pthread_mutex_unlock(&env->mu);
            if (off + len <= fsz && (!v->nowait || map_resident(env->map + off, len))) {
                if (!v->nowait)
                    map_prefetch_once(env, pgno, env->map + off, len);
                if (mapped)
                    *mapped = env->map + off;
                else
                    memcpy(buf, env->map + off, len);   /* no-wait: no pread */
                pthread_rwlock_unlock(&env->ckpt);
                return 0;
            }
        }
        if (v->nowait) {
            pthread_rwlock_unlock(&env->ckpt);
            return would_block(pgno);
        }
        rc = read_data(env, env->dbf, buf, len, off, env->path);
        pthread_rwlock_unlock(&env->ckpt);
        return rc;
    }
    for (uint32_t i = 0; i < npages && !rc; i++) {
        uint32_t n = (i + 1 == npages) ? len - i * env->psize : env->psize;
        sdb_dirty *d = v->w ? dirty_find(v->w, pgno + i) : NULL;
        if (!d && v->nowait) {
            rc = would_block(pgno + i);   /* a frame in the log: pread */
            break;
        }
        if (d) {
            memcpy(buf + (size_t)i * env->psize, d->data, n);
            continue;
        }
        pthread_mutex_lock(&env->mu);
        uint64_t g = findex_lookup(env, pgno + i, v->mark);
        pthread_mutex_unlock(&env->mu);
        if (g) {
            uint32_t idx = (uint32_t)(g - env->wal_base - 1);
            rc = read_data(env, env->walf, buf + (size_t)i * env->psize, n,
                           frame_off(env, idx) + SDB_FRAME_HDR, env->walpath);
        } else {
            rc = read_data(env, env->dbf, buf + (size_t)i * env->psize, n,
                           off + (uint64_t)i * env->psize, env->path);
        }
    }
    pthread_rwlock_unlock(&env->ckpt);
    return rc;
}

/* ---- readers ---- */

void sdb_view_begin(sdb_env *env, sdb_view *v)
{
    pthread_mutex_lock(&env->mu);
    v->meta = env->meta;
    v->mark = env->durable;
    v->w = NULL;
    v->nowait = 0;
    v->next = env->readers.next;
    v->prev = &env->readers;
    env->readers.next->prev = v;
    env->readers.next = v;
    v->registered = 1;
    env->nreaders++;
    pthread_mutex_unlock(&env->mu);
}

void sdb_view_end(sdb_env *env, sdb_view *v)
{
    if (!v->registered)
        return;
    pthread_mutex_lock(&env->mu);
    v->prev->next = v->next;
    v->next->prev = v->prev;
    v->registered = 0;
    env->nreaders--;
    pthread_mutex_unlock(&env->mu);
}

/* mu held */
static void oldest_reader(sdb_env *env, uint64_t *txn, uint64_t *mark)
{
    *txn = UINT64_MAX;
    *mark = UINT64_MAX;
    for (sdb_view *v = env->readers.next; v != &env->readers; v = v->next) {
        if (v->meta.txnid < *txn)
            *txn = v->meta.txnid;
        if (v->mark < *mark)
            *mark = v->mark;
    }
}

uint64_t sdb_oldest_reader_txn(sdb_env *env)
{
    uint64_t t, m;
    pthread_mutex_lock(&env->mu);
    oldest_reader(env, &t, &m);
    pthread_mutex_unlock(&env->mu);
    return t == UINT64_MAX ? 0 : t;
}

/* ---- free runs ---- */

static int runs_reserve(sdb_run **runs, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need)
        ncap *= 2;
    sdb_run *n = sdb_realloc(*runs, ncap * sizeof *n);
    if (!n)
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory growing the free list");
    *runs = n;
    *cap = ncap;
    return 0;
}

/* Inserts [start, start+count) freed by txn, merging neighbours. */
static int runs_add(sdb_wtxn *w, pgno_t start, uint32_t count, uint64_t txn)
{
    size_t lo = 0, hi = w->nruns;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (w->runs[mid].start < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0) {
        sdb_run *p = &w->runs[lo - 1];
        if (p->start + p->count > start)
            return sdb_err(STREAMDB_ERR_CORRUPT, "page %u freed twice", start);
        if (p->start + p->count == start) {
            p->count += count;
            if (txn > p->txn)
                p->txn = txn;
            if (lo < w->nruns && p->start + p->count == w->runs[lo].start) {
                p->count += w->runs[lo].count;
                if (w->runs[lo].txn > p->txn)
                    p->txn = w->runs[lo].txn;
                memmove(&w->runs[lo], &w->runs[lo + 1], (w->nruns - lo - 1) * sizeof *w->runs);
                w->nruns--;
            }
            return 0;
        }
    }
    if (lo < w->nruns) {
        sdb_run *n = &w->runs[lo];
        if (start + count > n->start)
            return sdb_err(STREAMDB_ERR_CORRUPT, "page %u freed twice", n->start);
        if (start + count == n->start) {
            n->start = start;
            n->count += count;
            if (txn > n->txn)
                n->txn = txn;
            return 0;
        }
    }
    int rc = runs_reserve(&w->runs, &w->capruns, w->nruns + 1);
    if (rc)
        return rc;
    memmove(&w->runs[lo + 1], &w->runs[lo], (w->nruns - lo) * sizeof *w->runs);
    w->runs[lo].start = start;
    w->runs[lo].count = count;
    w->runs[lo].txn = txn;
    w->nruns++;
    return 0;
}

static void runs_take(sdb_wtxn *w, size_t i, pgno_t start, uint32_t count)
{
    sdb_run *r = &w->runs[i];
    if (start == r->start) {
        r->start += count;
        r->count -= count;
        if (!r->count) {
            memmove(&w->runs[i], &w->runs[i + 1], (w->nruns - i - 1) * sizeof *w->runs);
            w->nruns--;
        }
    } else if (start + count == r->start + r->count) {
        r->count -= count;
    } else {
        /* split: caller guarantees capacity for one more run */
        sdb_run tail = {start + count, r->start + r->count - (start + count), r->txn};
        r->count = start - r->start;
        memmove(&w->runs[i + 2], &w->runs[i + 1], (w->nruns - i - 1) * sizeof *w->runs);
        w->runs[i + 1] = tail;
        w->nruns++;
    }
}

static int extend(sdb_env *env, sdb_wtxn *w, uint32_t count, pgno_t *start)
{
    uint64_t maxpages = env->cfg.max_db_size / env->psize;
    uint64_t np = (uint64_t)w->view.meta.npages + count;
    if (np > maxpages || np > 0xFFFFFFF0ull)
        return sdb_err(STREAMDB_ERR_FULL, "database would exceed max_db_size (%llu bytes)",
                       (unsigned long long)env->cfg.max_db_size);
    *start = w->view.meta.npages;
    w->view.meta.npages = (uint32_t)np;
    return 0;
}

/* ---- write transactions ---- */

/* The environments whose writer lock this thread holds: a second write from
 * the same thread would wait for itself forever. */
static __thread sdb_env *tls_held[8];

static int held(sdb_env *env);

static void held_add(sdb_env *env)
{
    for (int i = 0; i < 8; i++)
        if (!tls_held[i]) {
            tls_held[i] = env;
            return;
        }
}

static void held_del(sdb_env *env)
{
    for (int i = 0; i < 8; i++)
        if (tls_held[i] == env) {
            tls_held[i] = NULL;
            return;
        }
}

int sdb_wlock_held(sdb_env *env) { return held(env); }

static int held(sdb_env *env)
{
    for (int i = 0; i < 8; i++)
        if (tls_held[i] == env)
            return 1;
    return 0;
}

static void wlock_release(sdb_env *env)
{
    held_del(env);
    pthread_mutex_unlock(&env->wlock);
}

int sdb_wtxn_begin(sdb_env *env, sdb_wtxn **out)
{
    *out = NULL;
    if (atomic_load(&env->fatal))
        return sdb_err(STREAMDB_ERR_FATAL, "an earlier write or sync failed; reopen the database");
    if (held(env))
        return sdb_err(STREAMDB_ERR_BUSY, "this thread already holds the writer (a streaming "
                       "writer is open): commit or abort it first");
    pthread_mutex_lock(&env->wlock);
    if (atomic_load(&env->fatal)) {
        pthread_mutex_unlock(&env->wlock);
        return sdb_err(STREAMDB_ERR_FATAL, "an earlier write or sync failed; reopen the database");
    }
    sdb_wtxn *w = sdb_calloc(1, sizeof *w);
    if (!w || runs_reserve(&w->runs, &w->capruns, env->nruns + 4)) {
        if (w)
            sdb_free(w->runs);
        sdb_free(w);
        pthread_mutex_unlock(&env->wlock);
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory starting a transaction");
    }
    if (env->nruns)
        memcpy(w->runs, env->runs, env->nruns * sizeof *w->runs);
    w->nruns = env->nruns;
    pthread_mutex_lock(&env->mu);
    w->view.meta = env->wmeta;
    w->view.mark = env->wal_base + env->nframes;
    pthread_mutex_unlock(&env->mu);
    w->view.w = w;
    w->base_npages = w->view.meta.npages;
    w->txnid = w->view.meta.txnid + 1;
    held_add(env);
    *out = w;
    return 0;
}

/* Dirty-page buffers are kept for the next transaction, up to 4 MiB, under
 * the writer lock: a batch allocates and frees hundreds of them, and malloc
 * would hand that memory back to the kernel and fault it in again each time. */
#define DPOOL_BYTES (4u << 20)

static void dirty_release(sdb_env *env, sdb_dirty *d)
{
    if ((uint64_t)(env->ndpool + 1) * env->psize > DPOOL_BYTES) {
        sdb_free(d->data);
        sdb_free(d);
        return;
    }
    d->next = env->dpool;
    env->dpool = d;
    env->ndpool++;
}

static void dpool_free(sdb_env *env)
{
    while (env->dpool) {
        sdb_dirty *d = env->dpool;
        env->dpool = d->next;
        sdb_free(d->data);
        sdb_free(d);
    }
    env->ndpool = 0;
}

static void wtxn_free(sdb_env *env, sdb_wtxn *w)
{
    for (uint32_t b = 0; b < w->dcap; b++) {
        sdb_dirty *d = w->dhash[b];
        while (d) {
            sdb_dirty *n = d->next;
            dirty_release(env, d);
            d = n;
        }
    }
    sdb_free(w->dhash);
    sdb_free(w->runs);
    sdb_free(w);
}

void sdb_wtxn_abort(sdb_env *env, sdb_wtxn *w)
{
    wtxn_free(env, w);
    wlock_release(env);
}

static int dirty_add(sdb_env *env, sdb_wtxn *w, pgno_t pgno, uint8_t **data)
{
    if ((w->ndirty + 1) * 2 > w->dcap) {
        uint32_t ncap = w->dcap ? w->dcap * 2 : 64;
        sdb_dirty **nh = sdb_calloc(ncap, sizeof *nh);
        if (!nh)
            return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
        for (uint32_t b = 0; b < w->dcap; b++) {
            sdb_dirty *d = w->dhash[b];
            while (d) {
                sdb_dirty *n = d->next;
                uint32_t j = hash32(d->pgno) & (ncap - 1);
                d->next = nh[j];
                nh[j] = d;
                d = n;
            }
        }
        sdb_free(w->dhash);
        w->dhash = nh;
        w->dcap = ncap;
    }
    sdb_dirty *d = env->dpool;
    if (d) {
        env->dpool = d->next;
        env->ndpool--;
    } else {
        d = sdb_malloc(sizeof *d);
        uint8_t *buf = sdb_malloc(env->psize);
        if (!d || !buf) {
            sdb_free(d);
            sdb_free(buf);
            return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
        }
        d->data = buf;
    }
    d->pgno = pgno;
    d->raw = 0;
    uint32_t j = hash32(pgno) & (w->dcap - 1);
    d->next = w->dhash[j];
    w->dhash[j] = d;
    w->ndirty++;
    *data = d->data;
    return 0;
}

static void dirty_remove(sdb_env *env, sdb_wtxn *w, pgno_t pgno)
{
    if (!w->dcap)
        return;
    sdb_dirty **pp = &w->dhash[hash32(pgno) & (w->dcap - 1)];
    for (; *pp; pp = &(*pp)->next) {
        if ((*pp)->pgno == pgno) {
            sdb_dirty *d = *pp;
            *pp = d->next;
            dirty_release(env, d);
            w->ndirty--;
            return;
        }
    }
}

int sdb_page_dirty(sdb_env *env, sdb_wtxn *w, pgno_t pgno, uint8_t **data)
{
    sdb_dirty *d = dirty_find(w, pgno);
    if (d) {
        *data = d->data;
        return 0;
    }
    sdb_page p;
    int rc = sdb_page_get(env, &w->view, pgno, 0, &p);
    if (rc)
        return rc;
    uint8_t *buf;
    rc = dirty_add(env, w, pgno, &buf);
    if (!rc)
        memcpy(buf, p.data, env->psize);
    sdb_page_put(env, &p);
    *data = buf;
    return rc;
}

int sdb_page_new(sdb_env *env, sdb_wtxn *w, pgno_t *pgno, uint8_t **data)
{
    pgno_t p = 0;
    int rc;
    if (w->nruns) {
        p = w->runs[0].start;
        runs_take(w, 0, p, 1);
        w->view.meta.free_pages--;
    } else if ((rc = extend(env, w, 1, &p))) {
        return rc;
    }
    rc = dirty_add(env, w, p, data);
    if (rc)
        return rc;
    memset(*data, 0, env->psize);
    *pgno = p;
    return 0;
}

int sdb_page_free(sdb_env *env, sdb_wtxn *w, pgno_t pgno, uint32_t count)
{
    if (pgno < SDB_FIRST_PAGE || (uint64_t)pgno + count > w->view.meta.npages)
        return sdb_err(STREAMDB_ERR_CORRUPT, "free of pages %u+%u outside the database", pgno, count);
    for (uint32_t i = 0; i < count && w->ndirty; i++)
        dirty_remove(env, w, pgno + i);
    int rc = runs_reserve(&w->runs, &w->capruns, w->nruns + 2);
    if (!rc)
        rc = runs_add(w, pgno, count, w->txnid);
    if (!rc)
        w->view.meta.free_pages += count;
    return rc;
}

int sdb_alloc_run(sdb_env *env, sdb_wtxn *w, uint32_t count, int direct, pgno_t *start)
{
    uint64_t t, m;
    pthread_mutex_lock(&env->mu);
    oldest_reader(env, &t, &m);
    /* durable (not only visible: with sync_commits=0 a commit may still be
     * lost, and with it the freeing of these pages) */
    uint64_t limit = env->synced_txn;
    if (t < limit)
        limit = t;
    if (!direct)
        limit = UINT64_MAX;   /* [F9] log-written pages may reuse any free page */
    int rc = runs_reserve(&w->runs, &w->capruns, w->nruns + 2);
    for (size_t i = 0; !rc && i < w->nruns; i++) {
        sdb_run *r = &w->runs[i];
        if (r->count < count || r->txn > limit)
            continue;
        /* [F10] no page of the run may have a frame in the log */
        pgno_t s = r->start;
        for (uint32_t k = 0; k < count && s + count <= r->start + r->count; k++) {
            if (direct && (fhash_slot(env, s + k) || dirty_find(w, s + k))) {
                s = s + k + 1;
                k = (uint32_t)-1;
            }
        }
        if (s + count <= r->start + r->count) {
            pthread_mutex_unlock(&env->mu);
            runs_take(w, i, s, count);
            w->view.meta.free_pages -= count;
            *start = s;
            return 0;
        }
    }
    pthread_mutex_unlock(&env->mu);
    if (rc)
        return rc;
    /* A direct run of whole 64 KiB chunks past the end starts on a chunk
     * boundary of the file, so that each chunk write covers whole 64 KiB-
     * aligned ranges of the page cache, which the kernel can hold as one
     * large folio each.  On ext4 under Linux 6.18, 256 MiB written so took a
     * third less time than the same writes 16 KiB off the boundary
     * (writeback_probe in bench/).  Shorter runs (a compressed chunk, a
     * document's tail, a small document stored direct late in a big
     * transaction) are not aligned: each would leave a gap.  The pages
     * skipped go to the free list tagged with transaction 0: no state ever
     * held them, so any allocation, a direct one in this same transaction
     * too, may take them (the next short runs fill them). */
    uint32_t align = env->psize < SDB_CHUNK ? SDB_CHUNK / env->psize : 1;
    uint32_t gap = direct && count % align == 0 ? (align - w->view.meta.npages % align) % align : 0;
    if (gap) {
        pgno_t g = 0;
        if ((rc = extend(env, w, gap + count, &g)) != 0)
            return rc;
        if ((rc = runs_add(w, g, gap, 0)) != 0)
            return rc;
        w->view.meta.free_pages += gap;
        *start = g + gap;
        return 0;
    }
    return extend(env, w, count, start);
}

int sdb_put_raw(sdb_env *env, sdb_wtxn *w, pgno_t pgno, const uint8_t *buf, size_t len)
{
    for (size_t off = 0; off < len; off += env->psize, pgno++) {
        uint8_t *data;
        sdb_dirty *d = dirty_find(w, pgno);
        if (d) {
            data = d->data;
        } else {
            int rc = dirty_add(env, w, pgno, &data);
            if (rc)
                return rc;
            d = dirty_find(w, pgno);
        }
        d->raw = 1;
        size_t n = len - off < env->psize ? len - off : env->psize;
        memcpy(data, buf + off, n);
        memset(data + n, 0, env->psize - n);
    }
    return 0;
}

/* Forgets cached main-file copies of pages [pgno, pgno+n) before they are
 * written in place: a page cut off by a compaction and created again past the
 * end may still have its old copy cached (entries with a frame are dropped at
 * the log reset; these have none). */
static void cache_drop_main_range(sdb_env *env, pgno_t pgno, uint32_t n)
{
    pthread_mutex_lock(&env->mu);
    for (uint32_t i = 0; env->ncached && i < n; i++) {
        sdb_centry *e = env->chash[ckey(pgno + i, 0) & (env->chcap - 1)];
        while (e) {
            sdb_centry *next = e->hnext;
            if (e->pgno == pgno + i && e->fno == 0)
                cache_detach(env, e);
            e = next;
        }
    }
    pthread_mutex_unlock(&env->mu);
}

int sdb_write_direct(sdb_env *env, sdb_wtxn *w, pgno_t pgno, const void *buf, size_t len)
{
    uint64_t off = (uint64_t)pgno * env->psize;
    uint32_t np = (uint32_t)((len + env->psize - 1) / env->psize);
    vbit_clear(env, pgno, np);
    cache_drop_main_range(env, pgno, np);
    int rc = sdb_io_write(env, env->dbf, buf, len, off, env->path);
    if (rc)
        return rc;
    w->direct_written = 1;
    /* Every megabyte or few of direct data, ask the backend to start
     * writing it out: the device works while the caller produces the rest,
     * and the commit's sync waits for the tail only.  [wb_lo, wb_hi)
     * covers the direct writes not yet handed over, holes included (the
     * pages an aligned chunk skipped, a tree page, a short chunk that went
     * into a hole behind): writeback of a range starts only its dirty pages.
     * A write more than SDB_WRITEBACK_GAP away hands over the range so far
     * and starts a new one.  With 8 MiB and a range that restarted at every
     * hole (without handing over what it held), a transaction of 100
     * documents of 64 KiB (5 MiB direct) never reached the hint and its
     * commit's sync waited for all of it.  A fixed 1 MiB window made that
     * workload, (f), a third faster, and a 256 MiB document 7% slower than
     * 8 MiB did; the window that grows serves both. */
    if (env->vfs->version >= 2 && env->vfs->writeback) {
        uint64_t end = off + len;
        /* the window: a quarter of the transaction's direct data so far */
        w->wb_total += len;
        uint64_t win = w->wb_total / 4;
        if (win < SDB_WRITEBACK_MIN)
            win = SDB_WRITEBACK_MIN;
        if (win > SDB_WRITEBACK_BYTES)
            win = SDB_WRITEBACK_BYTES;
        if (w->wb_hi > w->wb_lo &&
            (end + SDB_WRITEBACK_GAP < w->wb_lo || off > w->wb_hi + SDB_WRITEBACK_GAP)) {
            (void)env->vfs->writeback(env->dbf, w->wb_lo, w->wb_hi - w->wb_lo);
            w->wb_lo = w->wb_hi;
        }
        if (w->wb_hi == w->wb_lo) {
            w->wb_lo = off;
            w->wb_hi = end;
        } else {
            w->wb_lo = off < w->wb_lo ? off : w->wb_lo;
            w->wb_hi = end > w->wb_hi ? end : w->wb_hi;
        }
        if (w->wb_hi - w->wb_lo >= win) {
            (void)env->vfs->writeback(env->dbf, w->wb_lo, w->wb_hi - w->wb_lo);
            w->wb_lo = w->wb_hi;
        }
    }
    pthread_mutex_lock(&env->mu);
    if (off + len > env->file_size)
        env->file_size = off + len;
    pthread_mutex_unlock(&env->mu);
    return 0;
}

/* ---- free-list persistence ---- */

#define FL_HDR (SDB_PAGE_HDR + 8)

static uint32_t fl_per_page(const sdb_env *env) { return (env->psize - FL_HDR) / 16; }

/* Loads the free list of state m into runs (at open). */
static int freelist_load(sdb_env *env, const sdb_view *v, sdb_run **runs, size_t *nruns,
                         size_t *cap)
{
    *nruns = 0;
    pgno_t p = v->meta.free_head;
    uint32_t hops = 0;
    while (p) {
        if (++hops > v->meta.npages)
            return sdb_err(STREAMDB_ERR_CORRUPT, "free list loops");
        sdb_page pg;
        int rc = sdb_page_get(env, v, p, SDB_PT_FREELIST, &pg);
        if (rc)
            return rc;
        uint32_t next = rd32(pg.data + SDB_PAGE_HDR), n = rd32(pg.data + SDB_PAGE_HDR + 4);
        if (n > fl_per_page(env)) {
            sdb_page_put(env, &pg);
            return sdb_err(STREAMDB_ERR_CORRUPT, "free-list page %u: bad count", p);
        }
        rc = runs_reserve(runs, cap, *nruns + n + 1);
        for (uint32_t i = 0; !rc && i < n; i++) {
            const uint8_t *e = pg.data + FL_HDR + i * 16;
            sdb_run r = {rd32(e), rd32(e + 4), rd64(e + 8)};
            if (r.start < SDB_FIRST_PAGE || !r.count ||
                (uint64_t)r.start + r.count > v->meta.npages ||
                (*nruns && (*runs)[*nruns - 1].start + (*runs)[*nruns - 1].count > r.start))
                rc = sdb_err(STREAMDB_ERR_CORRUPT, "free-list page %u: bad run", p);
            else
                (*runs)[(*nruns)++] = r;
        }
        sdb_page_put(env, &pg);
        if (rc)
            return rc;
        p = next;
    }
    return 0;
}

/* Frees the old chain and writes the working free list into new pages. */
static int freelist_store(sdb_env *env, sdb_wtxn *w)
{
    pgno_t p = w->view.meta.free_head;
    uint32_t hops = 0;
    while (p) {
        if (++hops > w->view.meta.npages)
            return sdb_err(STREAMDB_ERR_CORRUPT, "free list loops");
        sdb_page pg;
        int rc = sdb_page_get(env, &w->view, p, SDB_PT_FREELIST, &pg);
        if (rc)
            return rc;
        pgno_t next = rd32(pg.data + SDB_PAGE_HDR);
        sdb_page_put(env, &pg);
        rc = sdb_page_free(env, w, p, 1);
        if (rc)
            return rc;
        p = next;
    }
    /* The chain pages are taken from the list they describe; taking a page
     * never adds a run, so the number needed only falls. */
    uint32_t per = fl_per_page(env);
    pgno_t *pages = NULL;
    uint32_t have = 0, cap = 0;
    int rc = 0;
    while (!rc && (uint64_t)have * per < w->nruns) {
        if (have == cap) {
            cap = cap ? cap * 2 : 8;
            pgno_t *np = sdb_realloc(pages, cap * sizeof *np);
            if (!np) {
                rc = sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
                break;
            }
            pages = np;
        }
        uint8_t *data;
        rc = sdb_page_new(env, w, &pages[have], &data);
        if (!rc) {
            have++;
        }
    }
    if (rc) {
        sdb_free(pages);
        return rc;
    }
    /* sdb_page_new counted each taken page out of free_pages already */
    size_t r = 0;
    for (uint32_t i = 0; i < have; i++) {
        uint8_t *data;
        rc = sdb_page_dirty(env, w, pages[i], &data);
        if (rc)
            break;
        memset(data, 0, env->psize);
        uint32_t n = 0;
        while (r < w->nruns && n < per) {
            uint8_t *e = data + FL_HDR + n * 16;
            wr32(e, w->runs[r].start);
            wr32(e + 4, w->runs[r].count);
            wr64(e + 8, w->runs[r].txn);
            n++;
            r++;
        }
        wr32(data + SDB_PAGE_HDR, i + 1 < have ? pages[i + 1] : 0);
        wr32(data + SDB_PAGE_HDR + 4, n);
        data[4] = SDB_PT_FREELIST;
    }
    if (!rc)
        w->view.meta.free_head = have ? pages[0] : 0;
    sdb_free(pages);
    return rc;
}

/* ---- commit ---- */

static int cmp_pgno(const void *a, const void *b)
{
    pgno_t x = (*(sdb_dirty *const *)a)->pgno, y = (*(sdb_dirty *const *)b)->pgno;
    return x < y ? -1 : x > y;
}

static int runs_equal(const sdb_env *env, const sdb_wtxn *w)
{
    return env->nruns == w->nruns &&
           (!w->nruns || !memcmp(env->runs, w->runs, w->nruns * sizeof *w->runs));
}

/* Waits until frame g is durable, syncing the log if nobody else is. */
static int group_sync(sdb_env *env, uint64_t g)
{
    int rc = 0;
    pthread_mutex_lock(&env->smu);
    for (;;) {
        pthread_mutex_lock(&env->mu);
        uint64_t durable = env->durable;
        uint64_t appended = env->wal_base + env->nframes;
        pthread_mutex_unlock(&env->mu);
        if (durable >= g)
            break;
        if (atomic_load(&env->fatal)) {
            rc = sdb_err(STREAMDB_ERR_FATAL, "the log could not be synced; reopen the database");
            break;
        }
        if (env->syncing) {
            pthread_cond_wait(&env->scond, &env->smu);
            continue;
        }
        env->syncing = 1;
        pthread_mutex_unlock(&env->smu);
        rc = env->cfg.sync_commits ? sdb_io_sync(env, env->walf, env->walpath) : 0;
        pthread_mutex_lock(&env->smu);
        env->syncing = 0;
        if (!rc) {
            /* publish every commit up to what this sync covered [F5] */
            pthread_mutex_lock(&env->mu);
            size_t k = 0;
            while (k < env->npend && env->pend[k].fno <= appended)
                k++;
            if (k) {
                for (size_t q = 0; q < k; q++)
                    if (env->pend[q].paths_changed)
                        sdb_pcache_invalidate(env, env->pend[q].meta.txnid);
                env->meta = env->pend[k - 1].meta;
                env->durable = env->pend[k - 1].fno;
                if (env->cfg.sync_commits)
                    env->synced_txn = env->meta.txnid;
                memmove(env->pend, env->pend + k, (env->npend - k) * sizeof *env->pend);
                env->npend -= k;
            }
            pthread_mutex_unlock(&env->mu);
        }
        pthread_cond_broadcast(&env->scond);
        if (rc)
            break;
    }
    pthread_mutex_unlock(&env->smu);
    return rc;
}

/* Before a commit's frames run past the end of the log file, the file grows
 * by a zero-filled step of SDB_WAL_GROW (PostgreSQL fills its WAL segments
 * the same way).  The commit that grows the file pays for one append; the
 * commits after it overwrite blocks already allocated, and their fdatasync
 * need not commit a new file size to the journal.  Zeros never pass for a
 * frame: a salt is never 0 [F3].  A failed fill fails the commit like a
 * failed frame write (a full disk is STREAMDB_ERR_FULL). */
static int wal_grow(sdb_env *env, uint64_t end)
{
    static const uint8_t zeros[65536];
    if (end <= env->wal_fsize)
        return 0;
    uint64_t to = (end + SDB_WAL_GROW - 1) / SDB_WAL_GROW * SDB_WAL_GROW;
    for (uint64_t off = env->wal_fsize; off < to;) {
        size_t n = to - off < sizeof zeros ? (size_t)(to - off) : sizeof zeros;
        int rc = sdb_io_write(env, env->walf, zeros, n, off, env->walpath);
        if (rc)
            return rc;
        off += n;
    }
    env->wal_fsize = to;
    return 0;
}

/* [F10] Pages past the end of the state the transaction started from
 * (fresh from extending the file, and so in no reader's state and with no
 * frame in the log) are written in place rather than through the log, when
 * a commit has at least SDB_FRESH_DIRECT_BYTES of them (env->fresh_direct): a batch of new
 * documents then writes its new leaves once, where the log would write them
 * twice (frame, then checkpoint).  They are synced with the transaction's
 * other in-place data before the commit frame is written [F10]; a commit that
 * never lands leaves them past its state's end, unreachable.  Smaller commits
 * keep to the log: one sync, not two; so do commits with sync_commits off,
 * which sync nothing.  The pages written are taken out of
 * list (sorted by page number); buf (cap bytes) stages contiguous runs. */
static int write_fresh_pages(sdb_env *env, sdb_wtxn *w, sdb_dirty **list, size_t *n,
                             uint8_t *buf, size_t cap)
{
    size_t first = *n;
    while (first > 0 && list[first - 1]->pgno >= w->base_npages)
        first--;
    if (!env->cfg.sync_commits || first == *n ||
        (uint64_t)(*n - first) * env->psize < env->fresh_direct)
        return 0;
    pthread_mutex_lock(&env->mu);
    for (size_t i = first; i < *n; i++)
        if (fhash_slot(env, list[i]->pgno)) {
            pthread_mutex_unlock(&env->mu);
            return 0;   /* cannot happen while npages only grows; the log is always safe */
        }
    pthread_mutex_unlock(&env->mu);
    size_t per = cap / env->psize, run = 0;
    pgno_t start = 0;
    for (size_t i = first; i < *n; i++) {
        sdb_dirty *d = list[i];
        if (!d->raw) {
            int rc = sdb_page_seal_env(env, d->data, d->data[4], d->pgno, w->txnid);
            if (rc)
                return rc;
        }
        if (run && (d->pgno != start + run || run == per)) {
            int rc = sdb_write_direct(env, w, start, buf, run * env->psize);
            if (rc)
                return rc;
            run = 0;
        }
        if (!run)
            start = d->pgno;
        memcpy(buf + run * env->psize, d->data, env->psize);
        run++;
    }
    int rc = run ? sdb_write_direct(env, w, start, buf, run * env->psize) : 0;
    if (!rc)
        *n = first;
    return rc;
}

int sdb_wtxn_commit(sdb_env *env, sdb_wtxn *w)
{
    int rc = 0;
    if (w->failed) {
        sdb_wtxn_abort(env, w);
        return sdb_err(STREAMDB_ERR_TRANSACTION, "the transaction had a failed operation and "
                       "was rolled back");
    }
    if (!w->ndirty && runs_equal(env, w) && !w->direct_written &&
        !memcmp(&w->view.meta, &env->wmeta, sizeof w->view.meta)) {
        sdb_wtxn_abort(env, w);   /* nothing to write */
        return 0;
    }
    if (!runs_equal(env, w))
        rc = freelist_store(env, w);
    if (rc)
        goto fail;
    w->view.meta.txnid = w->txnid;
    /* Dirty pages by page number; frames are appended in that order. */
    sdb_dirty **list = sdb_malloc((w->ndirty + 1) * sizeof *list);
    size_t fsz = frame_size(env), batch_max = 64, nb = 0;
    uint8_t *buf = sdb_malloc(batch_max * fsz);
    uint8_t *metapage = sdb_malloc(env->psize);
    if (!list || !buf || !metapage) {
        sdb_free(list);
        sdb_free(buf);
        sdb_free(metapage);
        rc = sdb_err(STREAMDB_ERR_NOMEM, "out of memory committing");
        goto fail;
    }
    size_t n = 0;
    for (uint32_t b = 0; b < w->dcap; b++)
        for (sdb_dirty *d = w->dhash[b]; d; d = d->next)
            list[n++] = d;
    qsort(list, n, sizeof *list, cmp_pgno);
    rc = write_fresh_pages(env, w, list, &n, buf, batch_max * fsz);
    if (!rc && w->direct_written) {
        SDB_KILLPOINT(env, "commit.before_data_sync");
        /* [F10] data written in place is durable before anything points to it */
        rc = sdb_io_sync(env, env->dbf, env->path);
    }
    if (rc) {
        sdb_free(list);
        sdb_free(buf);
        sdb_free(metapage);
        goto fail;
    }
    /* the commit frame records how many frames were already acknowledged:
     * recovery then tells damage under them from a torn tail [F4] */
    pthread_mutex_lock(&env->mu);
    w->view.meta.acked_frames = env->cfg.sync_commits ? (uint32_t)(env->durable - env->wal_base) : 0;
    rc = findex_reserve(env, (uint32_t)n + 1);
    pthread_mutex_unlock(&env->mu);
    if (rc) {
        sdb_free(list);
        sdb_free(buf);
        sdb_free(metapage);
        goto fail;
    }
    meta_encode(env, &w->view.meta, metapage, 0);
    uint32_t first = env->nframes;  /* stable: only the writer appends */
    uint32_t cksum = env->wal_cksum;

    uint64_t woff = frame_off(env, first);
    if (!env->body_shift || env->body_shift->len != env->psize - 4u) {
        sdb_free(env->body_shift);
        if ((env->body_shift = sdb_malloc(sizeof *env->body_shift)) != NULL)
            sdb_crc32c_shift_init(env->body_shift, env->psize - 4u);
    }
    const sdb_crc_shift *shift = env->body_shift;   /* NULL (out of memory): the long way */
    rc = wal_grow(env, woff + (n + 1) * fsz);
    for (size_t i = 0; i <= n && !rc; i++) {
        uint8_t *f = buf + nb * fsz;
        const uint8_t *page;
        pgno_t pgno;
        if (i < n) {
            pgno = list[i]->pgno;
            uint8_t *d = list[i]->data;
            if (!list[i]->raw) { /* typed page: seal it; raw chunk pages are covered by the chunk CRC */
                rc = sdb_page_seal_env(env, d, d[4], pgno, w->txnid);
                if (rc)
                    break;
            }
            page = d;
        } else {
            pgno = 0;
            page = metapage;
        }
        wr32(f, pgno);
        wr32(f + 4, i == n ? 1 : 0);
        wr64(f + 8, w->txnid);
        wr32(f + 16, env->wal_salt);
        memcpy(f + SDB_FRAME_HDR, page, env->psize);
        cksum = sdb_crc32c(cksum, f, 20);
        if (i < n && !list[i]->raw && shift) {
            /* just sealed: its first four bytes are the CRC of the rest, so
             * the running checksum moves past the body by that CRC */
            cksum = sdb_crc32c(cksum, f + SDB_FRAME_HDR, 4);
            cksum = sdb_crc32c_shift_combine(shift, cksum, rd32(f + SDB_FRAME_HDR));
        } else {
            cksum = sdb_crc32c(cksum, f + SDB_FRAME_HDR, env->psize);
        }
        wr32(f + 20, cksum);
        if (++nb == batch_max || i == n) {
            if (i == n)
                SDB_KILLPOINT(env, "commit.before_commit_frame");
            rc = sdb_io_write(env, env->walf, buf, nb * fsz, woff, env->walpath);
            woff += nb * fsz;
            nb = 0;
        }
    }
    sdb_free(buf);
    sdb_free(metapage);
    if (rc) {
        sdb_free(list);
        goto fail;
    }
    /* Index the frames and hand the state to the next writer. */
    pthread_mutex_lock(&env->mu);
    for (size_t i = 0; i <= n && !rc; i++)
        rc = findex_add(env, i < n ? list[i]->pgno : 0);   /* room reserved: cannot fail */
    sdb_free(list);
    uint64_t g = env->wal_base + env->nframes;
    if (!rc) {
        env->pend[env->npend].fno = g;
        env->pend[env->npend].meta = w->view.meta;
        env->pend[env->npend].paths_changed = w->paths_changed;
        env->npend++;
        env->wmeta = w->view.meta;
        env->wal_cksum = cksum;
    }
    pthread_mutex_unlock(&env->mu);
    if (rc) {
        atomic_store(&env->fatal, 1);  /* the in-memory index no longer matches the log */
        goto fail;
    }
    /* swap in the free list */
    sdb_run *old = env->runs;
    env->runs = w->runs;
    env->nruns = w->nruns;
    env->capruns = w->capruns;
    w->runs = old;
    wtxn_free(env, w);
    wlock_release(env);
    SDB_KILLPOINT(env, "commit.before_log_sync");
    rc = group_sync(env, g);
    if (!rc)
        SDB_KILLPOINT(env, "commit.after_log_sync");
    return rc;

fail:
    sdb_wtxn_abort(env, w);
    return rc;
}

/* ---- checkpoint ---- */

static int write_meta_slot(sdb_env *env, const sdb_meta *m)
{
    uint8_t *page = sdb_malloc(env->psize);
    if (!page)
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    sdb_meta mm = *m;
    pgno_t slot = (pgno_t)(mm.seq & 1);
    meta_encode(env, &mm, page, slot);
    int rc = sdb_io_write(env, env->dbf, page, env->psize, (uint64_t)slot * env->psize, env->path);
    sdb_free(page);
    if (!rc)
        rc = sdb_io_sync(env, env->dbf, env->path);
    env->slot_salt[slot] = rc ? 0 : mm.log_salt;
    return rc;
}

static uint32_t fresh_salt(void)
{
    uint32_t s = 0;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != sizeof s)
        s = (uint32_t)(sdb_now_ns() ^ ((uint64_t)getpid() << 16));
    return s ? s : 1;
}

/* The salt of the log that replaces the current one.  A reset log reuses its
 * file, so its tail may hold frames of earlier generations: a salt above the
 * current one cannot equal theirs (short of 2^32 resets), where a random salt
 * could, once in 2^32 resets.  It also differs from the salt either header
 * slot names: a reset interrupted after its slot write leaves a slot naming
 * salt+1 over the old log, and the next log must not take that salt, or the
 * stale slot would pass for a valid fallback with it [F7]. */
static uint32_t next_log_salt(const sdb_env *env)
{
    uint32_t s = env->wal_salt;
    do
        s++;
    while (!s || s == env->slot_salt[0] || s == env->slot_salt[1]);
    return s;
}

/* Writes a new log header (salt env->wal_salt) and syncs it.  The frames
 * after it are stale from then on [F3].  With shrink, or when the file has
 * grown past what the autocheckpoint needs, the file is cut back; otherwise
 * it is kept, so that the next commits overwrite blocks the file system has
 * already allocated: their fdatasync then flushes data only, where an append
 * also has to commit the file's new size to the journal. */
static int wal_write_header(sdb_env *env, int shrink)
{
    uint8_t h[SDB_WAL_HDR];
    memset(h, 0, sizeof h);
    wr32(h, WAL_MAGIC);
    wr32(h + 4, SDB_FORMAT_VERSION);
    wr32(h + 8, env->psize);
    wr32(h + 12, env->wal_salt);
    wr32(h + 16, sdb_crc32c(0, h, 16));
    int rc = sdb_io_write(env, env->walf, h, sizeof h, 0, env->walpath);
    uint64_t keep = env->cfg.wal_autocheckpoint + SDB_WAL_GROW;
    if (shrink || env->wal_fsize < SDB_WAL_HDR)
        keep = SDB_WAL_HDR;
    if (!rc && env->wal_fsize != keep && (shrink || env->wal_fsize > keep)) {
        /* Cutting the log to a length that keeps frames: the new header must
         * be on disk first.  Otherwise a crash could keep the cut and lose the
         * header write, leaving the old log (whose salt the open still trusts)
         * with its newest commits cut off: an older state than the header
         * slot's.  A cut to the bare header needs no such order. */
        if (keep > SDB_WAL_HDR)
            rc = sdb_io_sync(env, env->walf, env->walpath);
        int e = 0;
        if (!rc)
            VFS_CALL(e, env->vfs->truncate(env->walf, keep));
        if (e) {
            atomic_store(&env->fatal, 1);
            rc = sdb_err(STREAMDB_ERR_IO, "truncate of %s failed: %s", env->walpath, strerror(e));
        } else if (!rc) {
            env->wal_fsize = keep;
        }
    }
    if (!rc)
        rc = sdb_io_sync(env, env->walf, env->walpath);
    env->wal_cksum = env->wal_salt;
    return rc;
}

/* Called with wlock held and no transaction open. */
int sdb_checkpoint(sdb_env *env, int force)
{
    if (env->readonly || atomic_load(&env->fatal))
        return 0;
    pthread_mutex_lock(&env->mu);
    uint64_t appended = env->wal_base + env->nframes;
    uint64_t durable = env->durable;
    uint64_t rt, rm;
    oldest_reader(env, &rt, &rm);
    pthread_mutex_unlock(&env->mu);
    if (!env->nframes)
        return 0;
    if (durable < appended) {
        /* a commit is still waiting for its sync: make it durable first */
        int rc = group_sync(env, appended);
        if (rc)
            return rc;
        durable = appended;
    }
    uint64_t limit = rm < durable ? rm : durable;
    if (limit <= env->wal_base)
        return 0;   /* readers still need every frame of this log */
    if (!env->cfg.sync_commits && limit > env->ckpt_done) {
        /* commits did not sync the log: it must be durable before the main
         * file is overwritten from it, or a power cut mixes states */
        int rc = sdb_io_sync(env, env->walf, env->walpath);
        if (rc)
            return rc;
    }
    uint32_t nlocal = (uint32_t)(limit - env->wal_base);
    /* frames below ckpt_done were copied by an earlier (partial) checkpoint:
     * a reader that pins the log costs each checkpoint only the new frames */
    uint32_t done_local = env->ckpt_done > env->wal_base ? (uint32_t)(env->ckpt_done - env->wal_base) : 0;
    uint64_t want;
    uint32_t next_salt;
    if (nlocal <= done_local) {
        /* everything up to limit is in the file already */
        if (limit < appended)
            return 0;
        /* a reader that pinned the log has gone: reset it, after a header
         * slot that names the new log [F7] */
        sdb_meta m = env->wmeta;
        m.seq = env->meta.seq + 1;
        next_salt = next_log_salt(env);
        m.log_salt = next_salt;
        want = (uint64_t)m.npages * env->psize;
        int rc = write_meta_slot(env, &m);
        if (rc)
            return rc;
        pthread_mutex_lock(&env->mu);
        env->meta.seq = m.seq;
        env->wmeta.seq = m.seq;
        pthread_mutex_unlock(&env->mu);
        goto reset;
    }
    /* newest frame <= limit of each page: walk the frames backwards */
    uint8_t *seen = sdb_calloc((size_t)env->wmeta.npages / 8 + 1, 1);
    uint8_t *page = sdb_malloc(env->psize);
    if (!seen || !page) {
        sdb_free(seen);
        sdb_free(page);
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory in checkpoint");
    }
    int rc = 0;
    sdb_meta meta = {0};
    int have_meta = 0;
    for (uint32_t i = nlocal; i-- > done_local && !rc;) {
        pgno_t p = env->frames[i].pgno;
        if (p == 0) {
            if (!have_meta) {
                rc = sdb_io_read(env, env->walf, page, env->psize,
                                 frame_off(env, i) + SDB_FRAME_HDR, env->walpath);
                if (!rc)
                    rc = meta_decode(env, page, 0, &meta);
                have_meta = 1;
            }
            continue;
        }
        if (p >= env->wmeta.npages || (seen[p / 8] & (1 << (p % 8))))
            continue;
        seen[p / 8] |= (uint8_t)(1 << (p % 8));
        vbit_clear(env, p, 1);
        rc = sdb_io_read(env, env->walf, page, env->psize, frame_off(env, i) + SDB_FRAME_HDR,
                         env->walpath);
        if (!rc)
            rc = sdb_io_write(env, env->dbf, page, env->psize, (uint64_t)p * env->psize, env->path);
    }
    sdb_free(seen);
    sdb_free(page);
    if (!rc && !have_meta)
        rc = sdb_err(STREAMDB_ERR_INTERNAL, "checkpoint found no commit frame");
    if (rc)
        return rc;
    /* the file covers every page of the state (pages never written are holes) */
    want = (uint64_t)meta.npages * env->psize;
    pthread_mutex_lock(&env->mu);
    uint64_t fsz = env->file_size;
    pthread_mutex_unlock(&env->mu);
    if (fsz < want) {
        int e;
        VFS_CALL(e, env->vfs->truncate(env->dbf, want));
        if (e) {
            atomic_store(&env->fatal, 1);
            return sdb_err(STREAMDB_ERR_IO, "extending %s failed: %s", env->path, strerror(e));
        }
        fsz = want;
    }
    SDB_KILLPOINT(env, "checkpoint.before_file_sync");
    rc = sdb_io_sync(env, env->dbf, env->path);
    if (rc)
        return rc;
    SDB_KILLPOINT(env, "checkpoint.before_meta");
    meta.seq = env->meta.seq + 1;
    /* The slot names the log that completes it: the fresh one when this
     * checkpoint resets the log, else the current one.  An older slot is a
     * valid fallback only while that log is still in place [F7]. */
    next_salt = limit == appended ? next_log_salt(env) : env->wal_salt;
    meta.log_salt = next_salt;
    rc = write_meta_slot(env, &meta);
    if (rc)
        return rc;
    pthread_mutex_lock(&env->mu);
    env->meta.seq = meta.seq;
    env->wmeta.seq = meta.seq;
    if (fsz > env->file_size)
        env->file_size = fsz;
    if (meta.txnid > env->synced_txn)
        env->synced_txn = meta.txnid;   /* in the synced main file now */
    pthread_mutex_unlock(&env->mu);
    env->checkpoints++;
    env->ckpt_done = limit;
    if (limit < appended)
        return 0;   /* partial: a reader still needs the newest frames */
reset:
    SDB_KILLPOINT(env, "checkpoint.before_log_reset");
    /* [F6] every frame copied and seen by every reader: reset the log */
    pthread_rwlock_wrlock(&env->ckpt);
    pthread_mutex_lock(&env->mu);
    oldest_reader(env, &rt, &rm);
    int ok = rm >= appended || rm == UINT64_MAX;
    if (ok) {
        cache_drop_main_copies(env);
        findex_clear(env);
    }
    pthread_mutex_unlock(&env->mu);
    if (ok) {
        env->wal_salt = next_salt;
        rc = wal_write_header(env, force);
        /* shrink the main file back to the state: drops aborted direct writes */
        if (!rc && env->file_size > want) {
            int e;
        VFS_CALL(e, env->vfs->truncate(env->dbf, want));
            if (!e) {
                pthread_mutex_lock(&env->mu);
                env->file_size = want;
                pthread_mutex_unlock(&env->mu);
            }
        }
    }
    pthread_rwlock_unlock(&env->ckpt);
    return rc;
}

int sdb_compact(sdb_env *env)
{
    /* Moves nothing: gives back the free run that ends at the end of the file. */
    sdb_wtxn *w;
    int rc = sdb_wtxn_begin(env, &w);
    if (rc)
        return rc;
    /* The checkpoint moves the state's pages, not the state: w stays valid. */
    rc = sdb_checkpoint(env, 1);
    if (!rc && (env->nframes || env->nreaders))
        rc = sdb_err(STREAMDB_ERR_BUSY, "compact needs every reader closed");
    if (rc || !w->nruns ||
        w->runs[w->nruns - 1].start + w->runs[w->nruns - 1].count != w->view.meta.npages) {
        sdb_wtxn_abort(env, w);
        return rc;
    }
    uint32_t cut = w->runs[w->nruns - 1].count;
    w->view.meta.npages -= cut;
    w->view.meta.free_pages -= cut;
    w->nruns--;
    rc = freelist_store(env, w);
    if (rc) {
        sdb_wtxn_abort(env, w);
        return rc;
    }
    rc = sdb_wtxn_commit(env, w);
    if (rc)
        return rc;
    SDB_KILLPOINT(env, "compact.before_truncate");
    pthread_mutex_lock(&env->wlock);
    rc = sdb_checkpoint(env, 1);
    pthread_mutex_unlock(&env->wlock);
    if (rc == STREAMDB_ERR_NOMEM) {
        /* the cut is committed; the file shrinks at the next checkpoint */
        sdb_log(env, STREAMDB_LOG_WARN, "compact: checkpoint deferred (%s)", streamdb_errmsg(NULL));
        rc = 0;
    }
    return rc;
}

/* ---- open, recovery, close ---- */

static __thread char env_fallback_why[256];

static int read_slots(sdb_env *env, uint64_t fsize, sdb_meta *out, int *fallback)
{
    uint8_t *page = sdb_malloc(65536);
    if (!page)
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    if (fsize < 512) {
        sdb_free(page);
        return sdb_err(STREAMDB_ERR_NOT_A_DB, "%s is not a StreamDb database (%llu bytes)",
                       env->path, (unsigned long long)fsize);
    }
    int rc = sdb_io_read(env, env->dbf, page, 512, 0, env->path);
    if (rc) {
        sdb_free(page);
        return rc;
    }
    if (memcmp(page + META_MAGIC_OFF, SDB_MAGIC, 16)) {
        /* slot 0 may be torn, or never written (a create interrupted between
         * its two header writes): try slot 1 at the configured page size, or
         * at each page size when none is configured */
        int found = 0;
        for (uint32_t ps = 4096; ps <= 65536 && !found; ps *= 2) {
            if (env->cfg.page_size && ps != env->cfg.page_size)
                continue;
            if (fsize < 2ull * ps)
                break;
            int r1 = sdb_io_read(env, env->dbf, page, 512, ps, env->path);
            if (r1 == STREAMDB_ERR_IO) {
                sdb_free(page);
                return r1;
            }
            found = !r1 && !memcmp(page + META_MAGIC_OFF, SDB_MAGIC, 16) && rd32(page + 84) == ps;
        }
        if (!found) {
            sdb_free(page);
            return sdb_err(STREAMDB_ERR_NOT_A_DB, "%s is not a StreamDb database", env->path);
        }
    }
    uint32_t ps = rd32(page + 84);
    if (ps < 4096 || ps > 65536 || (ps & (ps - 1))) {
        sdb_free(page);
        return sdb_err(STREAMDB_ERR_CORRUPT, "%s: header gives page size %u", env->path, ps);
    }
    if (env->cfg.page_size && ps != env->cfg.page_size) {
        sdb_free(page);
        return sdb_err(STREAMDB_ERR_INCOMPATIBLE, "%s was made with page size %u, the "
                       "configuration asks for %u", env->path, ps, env->cfg.page_size);
    }
    env->psize = ps;
    if (fsize < 2ull * ps) {
        sdb_free(page);
        return sdb_err(STREAMDB_ERR_CORRUPT, "%s is truncated (%llu bytes)", env->path,
                       (unsigned long long)fsize);
    }
    sdb_meta m[2];
    int ok[2];
    char why[256] = "";
    for (int s = 0; s < 2; s++) {
        int r = sdb_io_read(env, env->dbf, page, ps, (uint64_t)s * ps, env->path);
        if (r == STREAMDB_ERR_IO) {
            sdb_free(page);
            return r;   /* the disk failed: not a damaged slot */
        }
        ok[s] = !r && !meta_decode(env, page, (pgno_t)s, &m[s]);
        env->slot_salt[s] = ok[s] ? m[s].log_salt : 0;
        if (!ok[s] && !why[0])
            snprintf(why, sizeof why, "%s", streamdb_errmsg(NULL));
        if (s == 0 && !r && !ok[0]) {
            size_t z = 0;
            while (z < ps && !page[z])
                z++;
            env->slot0_blank = z == ps;
        }
    }
    sdb_free(page);
    if (!ok[0] && !ok[1])
        return sdb_err(STREAMDB_ERR_CORRUPT, "%s: both header slots are damaged (%s)", env->path, why);
    int s = (ok[0] && ok[1]) ? (m[1].seq > m[0].seq) : ok[1];
    *out = m[s];
    *fallback = !(ok[0] && ok[1]);
    if (*fallback)
        snprintf(env_fallback_why, sizeof env_fallback_why, "%s", why);
    sdb_err_clear();
    return 0;
}

/* Scans the log and indexes every frame up to the last valid commit. */
static int wal_recover(sdb_env *env, int fresh_db, int *have_meta, sdb_meta *meta)
{
    *have_meta = 0;
    uint64_t wsize;
    int e;
        VFS_CALL(e, env->vfs->size(env->walf, &wsize));
    if (e)
        return sdb_err(STREAMDB_ERR_IO, "stat of %s failed: %s", env->walpath, strerror(e));
    uint8_t h[SDB_WAL_HDR];
    int valid = 0;
    if (wsize >= SDB_WAL_HDR_LEN && !sdb_io_read(env, env->walf, h, SDB_WAL_HDR_LEN, 0, env->walpath) &&
        rd32(h) == WAL_MAGIC && rd32(h + 16) == sdb_crc32c(0, h, 16)) {
        if (rd32(h + 8) != env->psize)
            return sdb_err(STREAMDB_ERR_INCOMPATIBLE, "%s has page size %u, the database %u",
                           env->walpath, rd32(h + 8), env->psize);
        valid = 1;
    }
    sdb_err_clear();
    if (!valid || fresh_db) {
        /* a new database never adopts a log left behind by an older file */
        if (env->readonly)
            return 0;
        if (!fresh_db)
            env->wal_salt = fresh_salt();
        env->wal_fsize = wsize;
        return wal_write_header(env, 1);
    }
    env->wal_salt = rd32(h + 12);
    uint32_t cksum = env->wal_salt, last_ok_cksum = cksum;
    size_t fsz = frame_size(env);
    uint8_t *f = sdb_malloc(fsz);
    if (!f)
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    uint32_t i = 0, ncommit = 0;
    pgno_t *pg = NULL;
    uint32_t cap = 0;
    int rc = 0;
    for (;; i++) {
        uint64_t off = frame_off(env, i);
        if (off + fsz > wsize)
            break;
        if (sdb_io_read(env, env->walf, f, fsz, off, env->walpath))
            break;
        if (rd32(f + 16) != env->wal_salt)
            break;
        uint32_t c = sdb_crc32c(cksum, f, 20);
        c = sdb_crc32c(c, f + SDB_FRAME_HDR, env->psize);
        if (c != rd32(f + 20))
            break;   /* torn or stale: the end of the log [F4] */
        cksum = c;
        if (i == cap) {
            cap = cap ? cap * 2 : 1024;
            pgno_t *np = sdb_realloc(pg, cap * sizeof *np);
            if (!np) {
                rc = sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
                break;
            }
            pg = np;
        }
        pg[i] = rd32(f);
        if (rd32(f + 4) & 1) {
            sdb_meta m;
            if (pg[i] != 0 || meta_decode(env, f + SDB_FRAME_HDR, 0, &m)) {
                rc = sdb_err(STREAMDB_ERR_CORRUPT, "%s: commit frame %u is damaged", env->walpath, i);
                break;
            }
            *meta = m;
            *have_meta = 1;
            ncommit = i + 1;
            last_ok_cksum = cksum;
        }
    }
    /* Past the break, a commit frame of this log (right salt, intact meta page)
     * that names more acknowledged frames than survived means the damage is
     * under an acknowledged commit: corruption, not a torn tail. */
    for (uint32_t k = i + 1; !rc; k++) {
        uint64_t off = frame_off(env, k);
        if (off + fsz > wsize)
            break;
        sdb_meta m;
        if (sdb_io_read(env, env->walf, f, fsz, off, env->walpath) || rd32(f + 16) != env->wal_salt ||
            !(rd32(f + 4) & 1) || rd32(f) != 0 || meta_decode(env, f + SDB_FRAME_HDR, 0, &m))
            continue;
        if (m.acked_frames > ncommit)
            rc = sdb_err(STREAMDB_ERR_CORRUPT, "%s: frame %u is damaged, but a later commit "
                         "records %u frames as acknowledged: committed data would be lost",
                         env->walpath, i, m.acked_frames);
    }
    sdb_err_clear_unless(rc);
    sdb_free(f);
    pthread_mutex_lock(&env->mu);
    for (uint32_t k = 0; !rc && k < ncommit; k++)
        rc = findex_add(env, pg[k]);
    pthread_mutex_unlock(&env->mu);
    sdb_free(pg);
    if (rc)
        return rc;
    env->wal_cksum = last_ok_cksum;
    uint64_t end = frame_off(env, ncommit);
    env->wal_fsize = wsize;
    if (!env->readonly && wsize > end) {
        /* drop the torn or uncommitted tail so new frames follow the last commit */
        VFS_CALL(e, env->vfs->truncate(env->walf, end));
        if (e)
            return sdb_err(STREAMDB_ERR_IO, "truncate of %s failed: %s", env->walpath, strerror(e));
        env->wal_fsize = end;
        rc = sdb_io_sync(env, env->walf, env->walpath);
    }
    return rc;
}

static int env_validate_config(streamdb_config *c)
{
    if (!c->page_size)
        c->page_size = 8192;
    if (c->page_size < 4096 || c->page_size > 65536 || (c->page_size & (c->page_size - 1)))
        return sdb_err(STREAMDB_ERR_INVALID, "page_size %u is not a power of two from 4096 "
                       "to 65536", c->page_size);
    if (!c->page_cache_size)
        c->page_cache_size = 2048;
    if (!c->max_db_size)
        c->max_db_size = 8ull << 40;
    if (!c->max_document_size)
        c->max_document_size = 256ull << 20;
    if (!c->versions_to_keep)
        c->versions_to_keep = 2;
    if (c->versions_to_keep > 1000)
        return sdb_err(STREAMDB_ERR_INVALID, "versions_to_keep %u is over 1000", c->versions_to_keep);
    if (!c->file_mode)
        c->file_mode = 0600;
    if (!c->wal_autocheckpoint)
        c->wal_autocheckpoint = 16ull << 20;
    if (c->max_db_size < 64ull * c->page_size)
        return sdb_err(STREAMDB_ERR_INVALID, "max_db_size %llu is under 64 pages",
                       (unsigned long long)c->max_db_size);
    if (c->use_compression && !sdb_have_snappy())
        return sdb_err(STREAMDB_ERR_UNSUPPORTED, "not built with compression (libsnappy)");
    if (c->has_encryption_key && !sdb_have_crypto())
        return sdb_err(STREAMDB_ERR_UNSUPPORTED, "not built with encryption");
    if (!c->async_workers)
        c->async_workers = 2;
    if (c->async_workers > 64)
        return sdb_err(STREAMDB_ERR_INVALID, "async_workers %u is over 64", c->async_workers);
    if (c->readahead_chunks > 64)
        return sdb_err(STREAMDB_ERR_INVALID, "readahead_chunks %u is over 64", c->readahead_chunks);
    return 0;
}

static void env_free(sdb_env *env)
{
    dpool_free(env);
    if (env->wbuf)
        explicit_bzero(env->wbuf, SDB_WBUF_MAX);   /* the last document written */
    sdb_free(env->wbuf);
    sdb_free(env->wvrec);
    sdb_free(env->wval);
    sdb_free(env->body_shift);
    sdb_async_shutdown(env);
    sdb_async_destroy(env);
    sdb_pcache_destroy(env);
    if (env->map)
        env->vfs->unmap(env->dbf, env->map, env->maplen);
    sdb_table_free((void *)env->vbits, env->bitslen);
    sdb_table_free((void *)env->lbits, env->bitslen);
    sdb_table_free((void *)env->tbits, env->bitslen);
    if (env->walf)
        env->vfs->close(env->walf);
    if (env->dbf)
        env->vfs->close(env->dbf);
    for (uint32_t b = 0; env->chash && b < env->chcap; b++) {
        sdb_centry *e = env->chash[b];
        while (e) {
            sdb_centry *n = e->hnext;
            sdb_free(e->data);
            sdb_free(e);
            e = n;
        }
    }
    sdb_free(env->chash);
    sdb_free(env->frames);
    sdb_free(env->fhash);
    sdb_free(env->fhkey);
    sdb_free(env->pend);
    sdb_free(env->runs);
    sdb_free(env->path);
    sdb_free(env->walpath);
    sdb_free(env->killpoint);
    pthread_mutex_destroy(&env->mu);
    pthread_rwlock_destroy(&env->ckpt);
    pthread_mutex_destroy(&env->wlock);
    pthread_mutex_destroy(&env->smu);
    pthread_cond_destroy(&env->scond);
    explicit_bzero(env->cfg.encryption_key, sizeof env->cfg.encryption_key);
    explicit_bzero(env->key, sizeof env->key);
    sdb_free(env);
}

int sdb_env_open(const char *path, const streamdb_config *cfg, sdb_env **out)
{
    *out = NULL;
    sdb_env *env = sdb_calloc(1, sizeof *env);
    if (!env)
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    if (cfg)
        env->cfg = *cfg;
    else
        streamdb_config_init(&env->cfg);
    pthread_mutex_init(&env->mu, NULL);
    pthread_rwlock_init(&env->ckpt, NULL);
    pthread_mutex_init(&env->wlock, NULL);
    pthread_mutex_init(&env->smu, NULL);
    pthread_cond_init(&env->scond, NULL);
    env->readers.next = env->readers.prev = &env->readers;
    env->lru.lnext = env->lru.lprev = &env->lru;
    sdb_async_init(env);
    sdb_pcache_init(env, env->cfg.path_cache_size);
    const char *kp = getenv("STREAMDB_KILLPOINT");
    if (kp && *kp) {
        env->killpoint = sdb_strdup(kp);
        const char *colon = env->killpoint ? strchr(env->killpoint, ':') : NULL;
        env->killcount = colon ? atol(colon + 1) : 1;
    }
    /* tests: STREAMDB_TEST_FRESH_DIRECT=bytes lowers the threshold of [F10],
     * so that the crash families' small transactions take that path too */
    const char *fd = getenv("STREAMDB_TEST_FRESH_DIRECT");
    env->fresh_direct = fd && atol(fd) > 0 ? (uint64_t)atol(fd) : SDB_FRESH_DIRECT_BYTES;
    env->pid = getpid();
    int rc = env_validate_config(&env->cfg);
    if (rc) {
        env_free(env);
        return rc;
    }
    int page_size_set = cfg && cfg->page_size;
    env->vfs = env->cfg.vfs ? env->cfg.vfs : streamdb_vfs_file();
    env->readonly = env->cfg.read_only;
    atomic_store(&env->quick, env->cfg.quick_mode);
    size_t plen = strlen(path);
    env->path = sdb_strdup(path);
    env->walpath = sdb_malloc(plen + 5);
    if (!env->path || !env->walpath) {
        env_free(env);
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    }
    memcpy(env->walpath, path, plen);
    memcpy(env->walpath + plen, "-wal", 5);

    int exists = 0;
    int e;
    VFS_CALL(e, env->vfs->exists(env->vfs, path, &exists));
    if (e) {
        env_free(env);
        return sdb_err(STREAMDB_ERR_IO, "stat of %s failed: %s", path, strerror(e));
    }
    if (!exists && (env->readonly || !env->cfg.create)) {
        rc = sdb_err(STREAMDB_ERR_NOT_FOUND, "%s does not exist%s", path,
                     env->readonly ? " (read-only open does not create)" : "");
        env_free(env);
        return rc;
    }
    VFS_CALL(e, env->vfs->open(env->vfs, path, (env->readonly ? STREAMDB_VFS_READONLY : 0) |
                       (exists ? 0 : STREAMDB_VFS_CREATE), env->cfg.file_mode, &env->dbf));
    if (e) {
        if (e == EACCES || e == EROFS || e == EPERM)
            rc = sdb_err(STREAMDB_ERR_READONLY, "cannot open %s for %s: %s", path,
                         env->cfg.read_only ? "reading" : "writing (try read_only)", strerror(e));
        else
            rc = sdb_err(e == ENOENT ? STREAMDB_ERR_NOT_FOUND : e == ENOMEM ? STREAMDB_ERR_NOMEM :
                         STREAMDB_ERR_IO, "open of %s "
                         "failed: %s", path, strerror(e));
        env_free(env);
        return rc;
    }
    VFS_CALL(e, env->vfs->lock(env->dbf, !env->readonly));
    if (e) {
        env_free(env);
        if (e == EWOULDBLOCK || e == EAGAIN)
            return sdb_err(STREAMDB_ERR_LOCKED, "%s is open in another process", path);
        return sdb_err(STREAMDB_ERR_IO, "lock of %s failed: %s", path, strerror(e));
    }
    uint64_t fsize;
    VFS_CALL(e, env->vfs->size(env->dbf, &fsize));
    if (e) {
        env_free(env);
        return sdb_err(STREAMDB_ERR_IO, "stat of %s failed: %s", path, strerror(e));
    }
    sdb_meta meta;
    int fallback = 0, fsize_was_zero = fsize == 0;
    if (fsize == 0) {
        if (env->readonly) {
            env_free(env);
            return sdb_err(STREAMDB_ERR_NOT_A_DB, "%s is empty", path);
        }
        /* a new database: both slots, synced, then the directory */
        env->psize = env->cfg.page_size;
        memset(&meta, 0, sizeof meta);
        env->crypt = env->cfg.has_encryption_key;
        env->centry = env->crypt ? SDB_CHUNK_ENTRY_CRYPT : SDB_CHUNK_ENTRY;
        if (env->crypt)
            memcpy(env->key, env->cfg.encryption_key, 32);
        meta.features = (env->cfg.use_compression ? SDB_FEAT_SNAPPY : 0) |
                        (env->crypt ? SDB_FEAT_CRYPT : 0);
        meta.npages = SDB_FIRST_PAGE;
        meta.seq = 1;
        env->wal_salt = fresh_salt();
        meta.log_salt = env->wal_salt;
        rc = write_meta_slot(env, &meta);
        meta.seq = 2;
        if (!rc)
            rc = write_meta_slot(env, &meta);
        if (!rc) {
            VFS_CALL(e, env->vfs->sync_dir(env->vfs, path));
            if (e)
                rc = sdb_err(e == ENOMEM ? STREAMDB_ERR_NOMEM : STREAMDB_ERR_IO,
                             "sync of the directory of %s failed: %s", path,
                             strerror(e));
        }
        fsize = 2ull * env->psize;
        if (rc) {
            /* nothing was ever committed: leave an empty file, which the next
             * open initialises again, rather than half a header */
            VFS_CALL(e, env->vfs->truncate(env->dbf, 0));
            env_free(env);
            return rc;
        }
    } else {
        if (!page_size_set)
            env->cfg.page_size = 0;  /* take the file's */
        rc = read_slots(env, fsize, &meta, &fallback);
        env->cfg.page_size = env->psize;
        if (rc) {
            env_free(env);
            return rc;
        }
        env->crypt = (meta.features & SDB_FEAT_CRYPT) != 0;
        env->centry = env->crypt ? SDB_CHUNK_ENTRY_CRYPT : SDB_CHUNK_ENTRY;
        if (env->crypt && !env->cfg.has_encryption_key)
            rc = sdb_err(STREAMDB_ERR_CRYPTO, "%s is encrypted: open it with its key", path);
        else if (!env->crypt && env->cfg.has_encryption_key)
            rc = sdb_err(STREAMDB_ERR_CRYPTO, "%s is not encrypted: open it without a key", path);
        else if (env->crypt && !sdb_have_crypto())
            rc = sdb_err(STREAMDB_ERR_UNSUPPORTED, "%s is encrypted and this build has no "
                         "encryption", path);
        else if ((meta.features & SDB_FEAT_SNAPPY) && !sdb_have_snappy())
            rc = sdb_err(STREAMDB_ERR_UNSUPPORTED, "%s uses compression and this build has no "
                         "snappy", path);
        if (!rc && env->crypt) {
            memcpy(env->key, env->cfg.encryption_key, 32);
            uint8_t kc[44];
            memcpy(kc, meta.keycheck, 44);
            static const uint8_t zero[16];
            if (sdb_gcm_open(env->key, (const uint8_t *)"StreamDb key check", 18, kc + 28, 16,
                             kc, kc + 12) || memcmp(kc + 28, zero, 16))
                rc = sdb_err(STREAMDB_ERR_CRYPTO, "wrong encryption key for %s", path);
        }
        if (rc) {
            env_free(env);
            return rc;
        }
        if (fsize < (uint64_t)meta.npages * env->psize) {
            rc = sdb_err(STREAMDB_ERR_CORRUPT, "%s is truncated: %llu bytes where the header "
                         "names %u pages of %u", path, (unsigned long long)fsize, meta.npages,
                         env->psize);
            env_free(env);
            return rc;
        }
    }
    env->file_size = fsize;
    env->max_path = env->psize >= 8192 ? STREAMDB_MAX_PATH : env->psize - 128;
    env->inline_max = env->psize / 4 < 2048 ? env->psize / 4 : 2048;
    env->cache_cap = env->cfg.page_cache_size;
    env->chcap = 1;
    while (env->chcap < env->cache_cap * 2)
        env->chcap *= 2;
    env->chash = sdb_calloc(env->chcap, sizeof *env->chash);
    if (!env->chash) {
        env_free(env);
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    }

    /* the log */
    int wexists = 0;
    VFS_CALL(e, env->vfs->exists(env->vfs, env->walpath, &wexists));
    if (e) {
        rc = sdb_err(STREAMDB_ERR_IO, "stat of %s failed: %s", env->walpath, strerror(e));
        env_free(env);
        return rc;
    }
    if (wexists || !env->readonly) {
        VFS_CALL(e, env->vfs->open(env->vfs, env->walpath, (env->readonly ? STREAMDB_VFS_READONLY : 0) |
                           STREAMDB_VFS_CREATE * !env->readonly, env->cfg.file_mode, &env->walf));
        if (e) {
            rc = sdb_err(e == ENOMEM ? STREAMDB_ERR_NOMEM : STREAMDB_ERR_IO, "open of %s failed: %s",
                         env->walpath, strerror(e));
            env_free(env);
            return rc;
        }
        if (!wexists) {
            VFS_CALL(e, env->vfs->sync_dir(env->vfs, env->walpath));
            if (e) {
                rc = sdb_err(e == ENOMEM ? STREAMDB_ERR_NOMEM : STREAMDB_ERR_IO,
                             "sync of the directory of %s failed: %s", env->walpath, strerror(e));
                env_free(env);
                return rc;
            }
        }
        int have = 0;
        sdb_meta wm;
        rc = wal_recover(env, fsize_was_zero, &have, &wm);
        if (rc) {
            env_free(env);
            return rc;
        }
        /* The one fallback without its log: a create interrupted between
         * its two header writes leaves slot 0 never written (all zeros),
         * slot 1 the pristine empty state, no log, and nothing else. */
        int interrupted_create = fallback && env->slot0_blank && !wexists && meta.seq == 1 &&
                                 meta.txnid == 0 && meta.npages == SDB_FIRST_PAGE &&
                                 fsize == 2ull * env->psize;
        if (interrupted_create && !env->readonly) {
            sdb_meta m2 = meta;
            m2.seq = meta.seq + 1;
            m2.log_salt = env->wal_salt;   /* the log just created */
            rc = write_meta_slot(env, &m2);
            if (rc) {
                env_free(env);
                return rc;
            }
            meta = m2;
            sdb_log(env, STREAMDB_LOG_WARN, "%s: finished a create that was interrupted "
                    "between its two header writes (the database is empty)", path);
        } else if (fallback && env->wal_salt != meta.log_salt) {
            env_free(env);
            return sdb_err(STREAMDB_ERR_CORRUPT, "%s: the newest header slot is damaged (%s) "
                           "and the log has moved past the older one", path, env_fallback_why);
        }
        if (have) {
            wm.seq = meta.seq;
            meta = wm;
        }
    } else if (fallback && !(env->slot0_blank && meta.seq == 1 && meta.txnid == 0 &&
                             meta.npages == SDB_FIRST_PAGE)) {
        /* read-only and no log: the log that completes the older slot is
         * gone, so it cannot be trusted [F7] */
        env_free(env);
        return sdb_err(STREAMDB_ERR_CORRUPT, "%s: the newest header slot is damaged (%s) and "
                       "there is no log to complete the older one", path, env_fallback_why);
    }
    env->meta = meta;
    env->wmeta = meta;
    env->durable = env->wal_base + env->nframes;
    env->synced_txn = meta.txnid;   /* what recovery found is on disk */

    if (env->cfg.use_mmap && env->vfs->map) {
        env->maplen = env->cfg.max_db_size < MAP_CAP ? env->cfg.max_db_size : MAP_CAP;
        e = env->vfs->map(env->dbf, env->maplen, (const void **)&env->map);
        if (e) {
            env->map = NULL;
            sdb_log(env, STREAMDB_LOG_WARN, "mmap of %s failed (%s); reading with pread", path,
                    strerror(e));
        } else if (!env->crypt) {
            /* one bit per mappable page; the table's pages are backed only as used */
            env->bitslen = (env->maplen / env->psize / 64 + 1) * sizeof *env->vbits;
            env->vbits = sdb_table_alloc(env->bitslen);
            env->lbits = sdb_table_alloc(env->bitslen);
            env->tbits = sdb_table_alloc(env->bitslen);   /* NULL: no chunk hints */
            if (!env->vbits || !env->lbits) {
                sdb_table_free((void *)env->vbits, env->bitslen);
                sdb_table_free((void *)env->lbits, env->bitslen);
                env->vbits = env->lbits = NULL;   /* no fast path: every read takes the cache */
            }
            /* the frames recovery indexed before the map existed */
            for (uint32_t i = 0; env->lbits && i < env->nframes; i++)
                lbit_put(env, env->frames[i].pgno, 1);
        }
    }
    /* the free list of the newest state */
    sdb_view v = {.meta = meta, .mark = env->durable};
    rc = freelist_load(env, &v, &env->runs, &env->nruns, &env->capruns);
    if (rc) {
        env_free(env);
        return rc;
    }
    if (env->cfg.quick_mode)
        sdb_log(env, STREAMDB_LOG_WARN, "quick mode is on: page and chunk checksums are not "
                "verified on reads, so corruption can go undetected");
    *out = env;
    return 0;
}

int sdb_env_close(sdb_env *env)
{
    int rc = 0;
    sdb_async_shutdown(env);   /* in-flight reads finish; queued ones are cancelled */
    if (!env->readonly && !atomic_load(&env->fatal)) {
        pthread_mutex_lock(&env->wlock);
        rc = sdb_checkpoint(env, 1);
        pthread_mutex_unlock(&env->wlock);
    }
    env_free(env);
    return rc;
}

int sdb_check_pages(sdb_env *env, const sdb_view *v, uint8_t *owner)
{
    /* free list: every run page owned once; the chain pages too */
    sdb_run *runs = NULL;
    size_t n = 0, cap = 0;
    int rc = freelist_load(env, v, &runs, &n, &cap);
    uint64_t total = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        for (uint32_t k = 0; k < runs[i].count; k++) {
            pgno_t p = runs[i].start + k;
            if (owner[p]) {
                rc = sdb_err(STREAMDB_ERR_CORRUPT, "page %u is both free and in use", p);
                break;
            }
            owner[p] = 4;
        }
        total += runs[i].count;
    }
    sdb_free(runs);
    if (!rc && total != v->meta.free_pages)
        rc = sdb_err(STREAMDB_ERR_CORRUPT, "free list holds %llu pages, the header says %llu",
                     (unsigned long long)total, (unsigned long long)v->meta.free_pages);
    for (pgno_t p = v->meta.free_head; !rc && p;) {
        if (owner[p]) {
            rc = sdb_err(STREAMDB_ERR_CORRUPT, "free-list page %u owned twice", p);
            break;
        }
        owner[p] = 5;
        sdb_page pg;
        rc = sdb_page_get(env, v, p, SDB_PT_FREELIST, &pg);
        if (rc)
            break;
        p = rd32(pg.data + SDB_PAGE_HDR);
        sdb_page_put(env, &pg);
    }
    return rc;
}
