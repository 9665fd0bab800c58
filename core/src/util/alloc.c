/*
 * alloc.c -- every heap allocation of the core goes through here, so that an
 * application (or the T2 torture family) can install its own allocator with
 * streamdb_set_allocator().  The hooks are process-wide, like SQLite's
 * SQLITE_CONFIG_MALLOC: a buffer handed to the caller is released with
 * streamdb_free() whichever handle produced it.  They may be changed only
 * while no database is open, so a block is always freed by the allocator that
 * made it.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sdb.h"

static void *libc_malloc(size_t n, void *ctx) { (void)ctx; return malloc(n); }
static void *libc_realloc(void *p, size_t n, void *ctx) { (void)ctx; return realloc(p, n); }
static void libc_free(void *p, void *ctx) { (void)ctx; free(p); }

static streamdb_allocator g_alloc = { libc_malloc, libc_realloc, libc_free, NULL };
/* Databases open; -1 while streamdb_set_allocator installs hooks, so that
 * an open racing with it waits rather than allocating with the old hooks
 * and freeing with the new ones. */
static atomic_int g_open_handles;

void sdb_alloc_pin(void) {
    for (;;) {
        int v = atomic_load(&g_open_handles);
        if (v >= 0 && atomic_compare_exchange_weak(&g_open_handles, &v, v + 1))
            return;
        if (v < 0)
            sched_yield();
    }
}
void sdb_alloc_unpin(void) { atomic_fetch_sub(&g_open_handles, 1); }

STREAMDB_API int streamdb_set_allocator(const streamdb_allocator *a) {
    if (a && (!a->malloc_fn || !a->realloc_fn || !a->free_fn)) return STREAMDB_ERR_INVALID;
    int zero = 0;
    if (!atomic_compare_exchange_strong(&g_open_handles, &zero, -1)) return STREAMDB_ERR_BUSY;
    if (a) {
        g_alloc = *a;
    } else {
        g_alloc.malloc_fn = libc_malloc;
        g_alloc.realloc_fn = libc_realloc;
        g_alloc.free_fn = libc_free;
        g_alloc.ctx = NULL;
    }
    atomic_store(&g_open_handles, 0);
    return STREAMDB_OK;
}

void *sdb_malloc(size_t n) {
    return g_alloc.malloc_fn(n ? n : 1, g_alloc.ctx);
}

void *sdb_calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    size_t n = count * size;
    void *p = g_alloc.malloc_fn(n ? n : 1, g_alloc.ctx);
    if (p) memset(p, 0, n);
    return p;
}

void *sdb_realloc(void *p, size_t n) {
    if (!p) return sdb_malloc(n);
    return g_alloc.realloc_fn(p, n ? n : 1, g_alloc.ctx);
}

void sdb_free(void *p) {
    if (p) g_alloc.free_fn(p, g_alloc.ctx);
}

char *sdb_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = sdb_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Large zeroed tables (the page bitmaps over the map, the path cache).  With
 * libc's allocator they come straight from an anonymous mapping: zero pages
 * that cost neither time nor memory until touched, whatever malloc's mmap
 * threshold has drifted to (calloc would memset them, touching every page).
 * Hooks installed with streamdb_set_allocator get them, zeroed, through the
 * hooks.  Hooks cannot change while a database is open, so a table is freed
 * the way it was made. */
void *sdb_table_alloc(size_t n) {
    if (g_alloc.malloc_fn != libc_malloc) return sdb_calloc(1, n);
    void *p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void sdb_table_free(void *p, size_t n) {
    if (!p) return;
    if (g_alloc.malloc_fn != libc_malloc) {
        sdb_free(p);
        return;
    }
    munmap(p, n ? n : 1);
}
