/*
 * vfs_memory.c -- an in-memory backend.  Files are named byte arrays owned by
 * the vfs object and survive close/reopen for as long as the object lives,
 * so tests can reopen a database without touching the disk.  Locks are
 * advisory counters per file, like flock between handles of one process.
 */
#include "sdb.h"

#include <errno.h>
#include <stdlib.h>

typedef struct mem_node {
    char *name;
    uint8_t *data;
    uint64_t size, cap;
    int lock_ex, lock_sh;
    struct mem_node *next;
} mem_node;

typedef struct mem_vfs {
    streamdb_vfs vfs;
    pthread_mutex_t mu;
    mem_node *files;
} mem_vfs;

struct streamdb_file {
    mem_vfs *m;
    mem_node *n;
    int locked;   /* 0 none, 1 shared, 2 exclusive */
};

static mem_node *find(mem_vfs *m, const char *name)
{
    for (mem_node *n = m->files; n; n = n->next)
        if (!strcmp(n->name, name))
            return n;
    return NULL;
}

static int m_open(const streamdb_vfs *vfs, const char *name, int flags, unsigned mode,
                  streamdb_file **out)
{
    mem_vfs *m = vfs->ctx;
    pthread_mutex_lock(&m->mu);
    mem_node *n = find(m, name);
    if (!n) {
        if (!(flags & STREAMDB_VFS_CREATE)) {
            pthread_mutex_unlock(&m->mu);
            return ENOENT;
        }
        n = sdb_calloc(1, sizeof *n);
        if (!n || !(n->name = sdb_strdup(name))) {
            sdb_free(n);
            pthread_mutex_unlock(&m->mu);
            return ENOMEM;
        }
        n->next = m->files;
        m->files = n;
    }
    streamdb_file *f = sdb_calloc(1, sizeof *f);
    pthread_mutex_unlock(&m->mu);
    if (!f)
        return ENOMEM;
    f->m = m;
    f->n = n;
    *out = f;
    return 0;
}

static int m_close(streamdb_file *f)
{
    pthread_mutex_lock(&f->m->mu);
    if (f->locked == 2)
        f->n->lock_ex = 0;
    else if (f->locked == 1)
        f->n->lock_sh--;
    pthread_mutex_unlock(&f->m->mu);
    sdb_free(f);
    return 0;
}

static int m_read(streamdb_file *f, void *buf, size_t n, uint64_t off, size_t *done)
{
    pthread_mutex_lock(&f->m->mu);
    mem_node *nd = f->n;
    size_t k = 0;
    if (off < nd->size)
        k = (size_t)((nd->size - off) < n ? nd->size - off : n);
    memcpy(buf, nd->data + off, k);
    pthread_mutex_unlock(&f->m->mu);
    *done = k;
    return 0;
}

static int grow(mem_node *nd, uint64_t size)
{
    if (size <= nd->cap)
        return 0;
    uint64_t cap = nd->cap ? nd->cap : 65536;
    while (cap < size)
        cap *= 2;
    uint8_t *d = sdb_realloc(nd->data, (size_t)cap);
    if (!d)
        return ENOMEM;
    memset(d + nd->cap, 0, (size_t)(cap - nd->cap));
    nd->data = d;
    nd->cap = cap;
    return 0;
}

static int m_write(streamdb_file *f, const void *buf, size_t n, uint64_t off, size_t *done)
{
    pthread_mutex_lock(&f->m->mu);
    mem_node *nd = f->n;
    int rc = grow(nd, off + n);
    if (!rc) {
        if (off > nd->size)
            memset(nd->data + nd->size, 0, (size_t)(off - nd->size));
        memcpy(nd->data + off, buf, n);
        if (off + n > nd->size)
            nd->size = off + n;
        *done = n;
    } else {
        *done = 0;
    }
    pthread_mutex_unlock(&f->m->mu);
    return rc;
}

static int m_sync(streamdb_file *f) { return 0; }

static int m_truncate(streamdb_file *f, uint64_t size)
{
    pthread_mutex_lock(&f->m->mu);
    mem_node *nd = f->n;
    int rc = grow(nd, size);
    if (!rc) {
        if (size > nd->size)
            memset(nd->data + nd->size, 0, (size_t)(size - nd->size));
        nd->size = size;
    }
    pthread_mutex_unlock(&f->m->mu);
    return rc;
}

static int m_size(streamdb_file *f, uint64_t *size)
{
    pthread_mutex_lock(&f->m->mu);
    *size = f->n->size;
    pthread_mutex_unlock(&f->m->mu);
    return 0;
}

static int m_lock(streamdb_file *f, int exclusive)
{
    int rc = 0;
    pthread_mutex_lock(&f->m->mu);
    mem_node *nd = f->n;
    if (exclusive) {
        if (nd->lock_ex || nd->lock_sh)
            rc = EWOULDBLOCK;
        else {
            nd->lock_ex = 1;
            f->locked = 2;
        }
    } else {
        if (nd->lock_ex)
            rc = EWOULDBLOCK;
        else {
            nd->lock_sh++;
            f->locked = 1;
        }
    }
    pthread_mutex_unlock(&f->m->mu);
    return rc;
}

static int m_exists(const streamdb_vfs *vfs, const char *name, int *exists)
{
    mem_vfs *m = vfs->ctx;
    pthread_mutex_lock(&m->mu);
    *exists = find(m, name) != NULL;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int m_remove(const streamdb_vfs *vfs, const char *name)
{
    mem_vfs *m = vfs->ctx;
    pthread_mutex_lock(&m->mu);
    for (mem_node **pp = &m->files; *pp; pp = &(*pp)->next) {
        if (!strcmp((*pp)->name, name)) {
            mem_node *n = *pp;
            *pp = n->next;
            sdb_free(n->name);
            sdb_free(n->data);
            sdb_free(n);
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int m_sync_dir(const streamdb_vfs *vfs, const char *name) { return 0; }

STREAMDB_API streamdb_vfs *streamdb_vfs_memory_new(void)
{
    mem_vfs *m = sdb_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    streamdb_vfs v = {1, m, m_open, m_close, m_read, m_write, m_sync, m_truncate, m_size,
                      m_lock, NULL, NULL, m_exists, m_remove, m_sync_dir, NULL};
    m->vfs = v;
    return &m->vfs;
}

STREAMDB_API void streamdb_vfs_memory_free(streamdb_vfs *vfs)
{
    if (!vfs)
        return;
    mem_vfs *m = vfs->ctx;
    while (m->files) {
        mem_node *n = m->files;
        m->files = n->next;
        sdb_free(n->name);
        sdb_free(n->data);
        sdb_free(n);
    }
    pthread_mutex_destroy(&m->mu);
    sdb_free(m);
}
