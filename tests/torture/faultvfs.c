/* faultvfs.c -- the fault VFS and the power-loss simulator (see faultvfs.h). */
#include "faultvfs.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

/* ======================= fault VFS ======================= */

struct faultvfs {
    streamdb_vfs vfs;
    const streamdb_vfs *inner;
    pthread_mutex_t mu;
    long count[FV_NKINDS];
    long delivered;
    fv_kind kind;
    long at;            /* 0: disarmed */
    fv_fault fault;
    int persistent;
    int eintr_owed;     /* persistent EINTR on open / sync_dir */
};

typedef struct fv_file {
    streamdb_file *inner;
    faultvfs *fv;
    int eintr_owed;     /* persistent EINTR: the retry of a failed call succeeds */
} fv_file;

static const char *kind_names[FV_NKINDS] = {"open", "read", "write", "sync", "truncate", "size", "lock"};
static const char *fault_names[FV_NFAULTS] = {"EIO", "ENOSPC", "short", "EINTR"};
const char *fv_kind_name(fv_kind k) { return k < FV_NKINDS ? kind_names[k] : "?"; }
const char *fv_fault_name(fv_fault f) { return f < FV_NFAULTS ? fault_names[f] : "?"; }

/* Counts a call; returns the fault to apply (-1: none). */
static int fv_tick(faultvfs *fv, fv_kind kind, fv_file *f)
{
    int r = -1;
    pthread_mutex_lock(&fv->mu);
    long c = ++fv->count[kind];
    if (fv->at && fv->kind == kind) {
        if (c == fv->at || (fv->persistent && c > fv->at)) {
            if (fv->fault == FV_EINTR && fv->persistent) {
                /* alternate: fail, then let the retry through (per file;
                 * calls without a file, open and sync_dir, share one flag) */
                int *owed = f ? &f->eintr_owed : &fv->eintr_owed;
                if (*owed) { *owed = 0; }
                else { *owed = 1; r = FV_EINTR; }
            } else {
                r = (int)fv->fault;
            }
            if (r >= 0) fv->delivered++;
        }
    }
    pthread_mutex_unlock(&fv->mu);
    return r;
}

static int fault_errno(int r) { return r == FV_ENOSPC ? ENOSPC : r == FV_EINTR ? EINTR : EIO; }

static int fv_open(const streamdb_vfs *vfs, const char *name, int flags, unsigned mode, streamdb_file **out)
{
    faultvfs *fv = vfs->ctx;
    int r = fv_tick(fv, FV_OPEN, NULL);
    if (r >= 0 && r != FV_SHORT) return fault_errno(r);
    fv_file *f = calloc(1, sizeof *f);
    if (!f) return ENOMEM;
    int rc = fv->inner->open(fv->inner, name, flags, mode, &f->inner);
    if (rc) { free(f); return rc; }
    f->fv = fv;
    *out = (streamdb_file *)(void *)f;
    return 0;
}
static int fv_close(streamdb_file *file)
{
    fv_file *f = (fv_file *)(void *)file;
    int rc = f->fv->inner->close(f->inner);
    free(f);
    return rc;
}
static int fv_read(streamdb_file *file, void *buf, size_t n, uint64_t off, size_t *done)
{
    fv_file *f = (fv_file *)(void *)file;
    int r = fv_tick(f->fv, FV_READ, f);
    if (r == FV_SHORT && n > 1) n = n / 2;
    else if (r >= 0 && r != FV_SHORT) { *done = 0; return fault_errno(r); }
    return f->fv->inner->read(f->inner, buf, n, off, done);
}
static int fv_write(streamdb_file *file, const void *buf, size_t n, uint64_t off, size_t *done)
{
    fv_file *f = (fv_file *)(void *)file;
    int r = fv_tick(f->fv, FV_WRITE, f);
    if (r == FV_SHORT && n > 1) n = n / 2;
    else if (r >= 0 && r != FV_SHORT) { *done = 0; return fault_errno(r); }
    return f->fv->inner->write(f->inner, buf, n, off, done);
}
static int fv_sync(streamdb_file *file)
{
    fv_file *f = (fv_file *)(void *)file;
    int r = fv_tick(f->fv, FV_SYNC, f);
    if (r >= 0 && r != FV_SHORT) return fault_errno(r);
    return f->fv->inner->sync(f->inner);
}
static int fv_truncate(streamdb_file *file, uint64_t size)
{
    fv_file *f = (fv_file *)(void *)file;
    int r = fv_tick(f->fv, FV_TRUNCATE, f);
    if (r >= 0 && r != FV_SHORT) return fault_errno(r);
    return f->fv->inner->truncate(f->inner, size);
}
static int fv_size(streamdb_file *file, uint64_t *size)
{
    fv_file *f = (fv_file *)(void *)file;
    int r = fv_tick(f->fv, FV_SIZE, f);
    if (r >= 0 && r != FV_SHORT) return fault_errno(r);
    return f->fv->inner->size(f->inner, size);
}
static int fv_lock(streamdb_file *file, int exclusive)
{
    fv_file *f = (fv_file *)(void *)file;
    int r = fv_tick(f->fv, FV_LOCK, f);
    if (r >= 0 && r != FV_SHORT) return fault_errno(r);
    return f->fv->inner->lock(f->inner, exclusive);
}
static int fv_map(streamdb_file *file, uint64_t len, const void **addr)
{
    fv_file *f = (fv_file *)(void *)file;
    if (!f->fv->inner->map) return ENOSYS;
    return f->fv->inner->map(f->inner, len, addr);
}
static int fv_unmap(streamdb_file *file, const void *addr, uint64_t len)
{
    fv_file *f = (fv_file *)(void *)file;
    if (!f->fv->inner->unmap) return ENOSYS;
    return f->fv->inner->unmap(f->inner, addr, len);
}
static int fv_exists(const streamdb_vfs *vfs, const char *name, int *exists)
{
    faultvfs *fv = vfs->ctx;
    return fv->inner->exists(fv->inner, name, exists);
}
static int fv_remove(const streamdb_vfs *vfs, const char *name)
{
    faultvfs *fv = vfs->ctx;
    return fv->inner->remove(fv->inner, name);
}
static int fv_sync_dir(const streamdb_vfs *vfs, const char *name)
{
    faultvfs *fv = vfs->ctx;
    int r = fv_tick(fv, FV_SYNC, NULL);
    if (r >= 0 && r != FV_SHORT) return fault_errno(r);
    return fv->inner->sync_dir(fv->inner, name);
}

faultvfs *fv_new(const streamdb_vfs *inner)
{
    faultvfs *fv = calloc(1, sizeof *fv);
    if (!fv) return NULL;
    fv->inner = inner;
    pthread_mutex_init(&fv->mu, NULL);
    streamdb_vfs v = {1, fv, fv_open, fv_close, fv_read, fv_write, fv_sync, fv_truncate, fv_size,
                      fv_lock, inner->map ? fv_map : NULL, inner->map ? fv_unmap : NULL,
                      fv_exists, fv_remove, fv_sync_dir, NULL};
    fv->vfs = v;
    return fv;
}
void fv_free(faultvfs *fv)
{
    if (!fv) return;
    pthread_mutex_destroy(&fv->mu);
    free(fv);
}
const streamdb_vfs *fv_vfs(faultvfs *fv) { return &fv->vfs; }
void fv_arm(faultvfs *fv, fv_kind kind, long n, fv_fault fault, int persistent)
{
    pthread_mutex_lock(&fv->mu);
    fv->kind = kind;
    fv->at = n;
    fv->fault = fault;
    fv->persistent = persistent;
    pthread_mutex_unlock(&fv->mu);
}
void fv_disarm(faultvfs *fv) { fv_arm(fv, FV_OPEN, 0, FV_EIO, 0); }
long fv_count(faultvfs *fv, fv_kind kind)
{
    pthread_mutex_lock(&fv->mu);
    long c = fv->count[kind];
    pthread_mutex_unlock(&fv->mu);
    return c;
}
long fv_delivered(faultvfs *fv)
{
    pthread_mutex_lock(&fv->mu);
    long c = fv->delivered;
    pthread_mutex_unlock(&fv->mu);
    return c;
}
void fv_reset_counts(faultvfs *fv)
{
    pthread_mutex_lock(&fv->mu);
    memset(fv->count, 0, sizeof fv->count);
    fv->delivered = 0;
    pthread_mutex_unlock(&fv->mu);
}

/* ======================= power-loss simulator ======================= */

typedef struct pl_op {
    int is_trunc;
    uint64_t off;       /* write offset, or truncate size */
    size_t len;
    uint8_t *data;
} pl_op;

typedef struct pl_node {
    char *name;
    uint8_t *durable;
    uint64_t dsize, dcap;
    int entry_durable;  /* the directory entry survives a crash */
    pl_op *ops;
    size_t nops, opcap;
    struct pl_node *next;
} pl_node;

struct plsim {
    streamdb_vfs vfs;
    streamdb_vfs *mem;  /* the live (volatile) view */
    pthread_mutex_t mu;
    pl_node *nodes;
    long syncs, crash_at;
    int crashed;
};

typedef struct pl_file {
    streamdb_file *inner;
    plsim *pl;
    pl_node *node;
} pl_file;

static uint64_t pl_rng(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static pl_node *pl_find(plsim *pl, const char *name)
{
    for (pl_node *n = pl->nodes; n; n = n->next)
        if (!strcmp(n->name, name)) return n;
    return NULL;
}

static void buf_set_size(uint8_t **buf, uint64_t *size, uint64_t *cap, uint64_t want)
{
    if (want > *cap) {
        uint64_t c = *cap ? *cap : 65536;
        while (c < want) c *= 2;
        uint8_t *b = realloc(*buf, (size_t)c);
        if (!b) abort();
        *buf = b;
        *cap = c;
    }
    if (want > *size) memset(*buf + *size, 0, (size_t)(want - *size));
    *size = want;
}

static void buf_write(uint8_t **buf, uint64_t *size, uint64_t *cap, uint64_t off, const uint8_t *d, size_t n)
{
    if (off + n > *size) buf_set_size(buf, size, cap, off + n);
    memcpy(*buf + off, d, n);
}

static void node_apply(pl_node *nd)
{
    for (size_t i = 0; i < nd->nops; i++) {
        pl_op *o = &nd->ops[i];
        if (o->is_trunc) buf_set_size(&nd->durable, &nd->dsize, &nd->dcap, o->off);
        else buf_write(&nd->durable, &nd->dsize, &nd->dcap, o->off, o->data, o->len);
        free(o->data);
    }
    nd->nops = 0;
}

static void node_push(pl_node *nd, int is_trunc, uint64_t off, const void *data, size_t len)
{
    if (nd->nops == nd->opcap) {
        size_t c = nd->opcap ? nd->opcap * 2 : 16;
        pl_op *o = realloc(nd->ops, c * sizeof *o);
        if (!o) abort();
        nd->ops = o;
        nd->opcap = c;
    }
    pl_op *o = &nd->ops[nd->nops++];
    o->is_trunc = is_trunc;
    o->off = off;
    o->len = len;
    o->data = NULL;
    if (len) {
        o->data = malloc(len);
        if (!o->data) abort();
        memcpy(o->data, data, len);
    }
}

static int pl_open(const streamdb_vfs *vfs, const char *name, int flags, unsigned mode, streamdb_file **out)
{
    plsim *pl = vfs->ctx;
    pthread_mutex_lock(&pl->mu);
    if (pl->crashed) { pthread_mutex_unlock(&pl->mu); return EIO; }
    pl_node *nd = pl_find(pl, name);
    if (!nd && (flags & STREAMDB_VFS_CREATE)) {
        nd = calloc(1, sizeof *nd);
        if (!nd || !(nd->name = strdup(name))) abort();
        nd->next = pl->nodes;
        pl->nodes = nd;
    }
    streamdb_file *in = NULL;
    int rc = pl->mem->open(pl->mem, name, flags, mode, &in);
    if (rc) { pthread_mutex_unlock(&pl->mu); return rc; }
    pl_file *f = calloc(1, sizeof *f);
    if (!f) abort();
    f->inner = in;
    f->pl = pl;
    f->node = nd;
    *out = (streamdb_file *)(void *)f;
    pthread_mutex_unlock(&pl->mu);
    return 0;
}
static int pl_close(streamdb_file *file)
{
    pl_file *f = (pl_file *)(void *)file;
    int rc = f->pl->mem->close(f->inner);
    free(f);
    return rc;
}
static int pl_read(streamdb_file *file, void *buf, size_t n, uint64_t off, size_t *done)
{
    pl_file *f = (pl_file *)(void *)file;
    if (__atomic_load_n(&f->pl->crashed, __ATOMIC_ACQUIRE)) { *done = 0; return EIO; }
    return f->pl->mem->read(f->inner, buf, n, off, done);
}
static int pl_write(streamdb_file *file, const void *buf, size_t n, uint64_t off, size_t *done)
{
    pl_file *f = (pl_file *)(void *)file;
    plsim *pl = f->pl;
    pthread_mutex_lock(&pl->mu);
    if (pl->crashed) { pthread_mutex_unlock(&pl->mu); *done = 0; return EIO; }
    int rc = pl->mem->write(f->inner, buf, n, off, done);
    if (!rc && *done && f->node) node_push(f->node, 0, off, buf, *done);
    pthread_mutex_unlock(&pl->mu);
    return rc;
}
/* Counts a sync; 1 if this one is the crash. */
static int pl_sync_tick(plsim *pl)
{
    if (pl->crashed) return 1;
    pl->syncs++;
    if (pl->crash_at && pl->syncs == pl->crash_at) {
        __atomic_store_n(&pl->crashed, 1, __ATOMIC_RELEASE);
        return 1;
    }
    return 0;
}
static int pl_sync(streamdb_file *file)
{
    pl_file *f = (pl_file *)(void *)file;
    plsim *pl = f->pl;
    pthread_mutex_lock(&pl->mu);
    if (pl_sync_tick(pl)) { pthread_mutex_unlock(&pl->mu); return EIO; }
    if (getenv("PL_DEBUG") && f->node)
        fprintf(stderr, "pl sync %ld: %s (%zu pending ops)\n", pl->syncs, f->node->name, f->node->nops);
    if (f->node) node_apply(f->node);
    pthread_mutex_unlock(&pl->mu);
    return 0;
}
static int pl_truncate(streamdb_file *file, uint64_t size)
{
    pl_file *f = (pl_file *)(void *)file;
    plsim *pl = f->pl;
    pthread_mutex_lock(&pl->mu);
    if (pl->crashed) { pthread_mutex_unlock(&pl->mu); return EIO; }
    int rc = pl->mem->truncate(f->inner, size);
    if (!rc && f->node) node_push(f->node, 1, size, NULL, 0);
    pthread_mutex_unlock(&pl->mu);
    return rc;
}
static int pl_size(streamdb_file *file, uint64_t *size)
{
    pl_file *f = (pl_file *)(void *)file;
    if (__atomic_load_n(&f->pl->crashed, __ATOMIC_ACQUIRE)) return EIO;
    return f->pl->mem->size(f->inner, size);
}
static int pl_lock(streamdb_file *file, int exclusive)
{
    pl_file *f = (pl_file *)(void *)file;
    if (__atomic_load_n(&f->pl->crashed, __ATOMIC_ACQUIRE)) return EIO;
    return f->pl->mem->lock(f->inner, exclusive);
}
static int pl_exists(const streamdb_vfs *vfs, const char *name, int *exists)
{
    plsim *pl = vfs->ctx;
    if (__atomic_load_n(&pl->crashed, __ATOMIC_ACQUIRE)) return EIO;
    return pl->mem->exists(pl->mem, name, exists);
}
static int pl_remove(const streamdb_vfs *vfs, const char *name)
{
    plsim *pl = vfs->ctx;
    pthread_mutex_lock(&pl->mu);
    if (pl->crashed) { pthread_mutex_unlock(&pl->mu); return EIO; }
    /* a removal is treated as durable at once (the simulator does not model
     * undoing unlinks) */
    for (pl_node **pp = &pl->nodes; *pp; pp = &(*pp)->next) {
        if (!strcmp((*pp)->name, name)) {
            pl_node *n = *pp;
            *pp = n->next;
            for (size_t i = 0; i < n->nops; i++) free(n->ops[i].data);
            free(n->ops); free(n->durable); free(n->name); free(n);
            break;
        }
    }
    int rc = pl->mem->remove(pl->mem, name);
    pthread_mutex_unlock(&pl->mu);
    return rc;
}
static int pl_sync_dir(const streamdb_vfs *vfs, const char *name)
{
    (void)name;
    plsim *pl = vfs->ctx;
    pthread_mutex_lock(&pl->mu);
    if (pl_sync_tick(pl)) { pthread_mutex_unlock(&pl->mu); return EIO; }
    for (pl_node *n = pl->nodes; n; n = n->next) n->entry_durable = 1;
    pthread_mutex_unlock(&pl->mu);
    return 0;
}

plsim *pl_new(void)
{
    plsim *pl = calloc(1, sizeof *pl);
    if (!pl) return NULL;
    pl->mem = streamdb_vfs_memory_new();
    pthread_mutex_init(&pl->mu, NULL);
    streamdb_vfs v = {1, pl, pl_open, pl_close, pl_read, pl_write, pl_sync, pl_truncate, pl_size,
                      pl_lock, NULL, NULL, pl_exists, pl_remove, pl_sync_dir, NULL};
    pl->vfs = v;
    return pl;
}
void pl_free(plsim *pl)
{
    if (!pl) return;
    while (pl->nodes) {
        pl_node *n = pl->nodes;
        pl->nodes = n->next;
        for (size_t i = 0; i < n->nops; i++) free(n->ops[i].data);
        free(n->ops); free(n->durable); free(n->name); free(n);
    }
    streamdb_vfs_memory_free(pl->mem);
    pthread_mutex_destroy(&pl->mu);
    free(pl);
}
const streamdb_vfs *pl_vfs(plsim *pl) { return &pl->vfs; }
void pl_crash_at_sync(plsim *pl, long n) { pthread_mutex_lock(&pl->mu); pl->crash_at = n; pthread_mutex_unlock(&pl->mu); }
long pl_syncs(plsim *pl) { pthread_mutex_lock(&pl->mu); long s = pl->syncs; pthread_mutex_unlock(&pl->mu); return s; }
int pl_crashed(plsim *pl) { return __atomic_load_n(&pl->crashed, __ATOMIC_ACQUIRE); }
long pl_pending(plsim *pl)
{
    pthread_mutex_lock(&pl->mu);
    long c = 0;
    for (pl_node *n = pl->nodes; n; n = n->next) c += (long)n->nops;
    pthread_mutex_unlock(&pl->mu);
    return c;
}

streamdb_vfs *pl_crash_image(plsim *pl, int mode, uint64_t seed)
{
    streamdb_vfs *out = streamdb_vfs_memory_new();
    if (!out) abort();
    uint64_t rs = seed;
    pthread_mutex_lock(&pl->mu);
    for (pl_node *nd = pl->nodes; nd; nd = nd->next) {
        if (!nd->entry_durable) continue;
        uint8_t *img = NULL;
        uint64_t isz = 0, icap = 0;
        buf_set_size(&img, &isz, &icap, nd->dsize);
        if (nd->dsize) memcpy(img, nd->durable, (size_t)nd->dsize);
        if (mode != PL_DROP_ALL && nd->nops) {
            size_t *order = malloc(nd->nops * sizeof *order);
            if (!order) abort();
            for (size_t i = 0; i < nd->nops; i++) order[i] = i;
            if (mode == PL_RANDOM && (pl_rng(&rs) & 1)) {   /* reorder */
                for (size_t i = nd->nops; i > 1; i--) {
                    size_t j = (size_t)(pl_rng(&rs) % i);
                    size_t t = order[i - 1]; order[i - 1] = order[j]; order[j] = t;
                }
            }
            /* bias: per crash, one probability of keeping */
            unsigned keep_pct = mode == PL_RANDOM ? (unsigned)(pl_rng(&rs) % 101) : 100;
            for (size_t k = 0; k < nd->nops; k++) {
                pl_op *o = &nd->ops[order[k]];
                unsigned roll = (unsigned)(pl_rng(&rs) % 100);
                if (getenv("PL_DEBUG"))
                    fprintf(stderr, "pl %s op %zu: %s off %llu len %zu: %s\n", nd->name, order[k],
                            o->is_trunc ? "truncate" : "write", (unsigned long long)o->off, o->len,
                            mode == PL_RANDOM && roll >= keep_pct ? "dropped or torn" : "kept");
                if (mode == PL_RANDOM && roll >= keep_pct) {
                    if (pl_rng(&rs) % 3) continue;           /* dropped */
                    if (o->is_trunc) continue;
                    /* torn: a random subset of its 512-byte sectors */
                    uint64_t s0 = o->off / 512, s1 = (o->off + o->len - 1) / 512;
                    for (uint64_t s = s0; s <= s1; s++) {
                        if (pl_rng(&rs) & 1) continue;
                        uint64_t a = s * 512 < o->off ? o->off : s * 512;
                        uint64_t b = (s + 1) * 512 > o->off + o->len ? o->off + o->len : (s + 1) * 512;
                        buf_write(&img, &isz, &icap, a, o->data + (a - o->off), (size_t)(b - a));
                    }
                    continue;
                }
                if (o->is_trunc) buf_set_size(&img, &isz, &icap, o->off);
                else buf_write(&img, &isz, &icap, o->off, o->data, o->len);
            }
            free(order);
        }
        streamdb_file *f = NULL;
        if (out->open(out, nd->name, STREAMDB_VFS_CREATE, 0600, &f)) abort();
        size_t done = 0;
        if (isz && out->write(f, img, (size_t)isz, 0, &done)) abort();
        out->close(f);
        free(img);
    }
    pthread_mutex_unlock(&pl->mu);
    return out;
}
