/*
 * sdb.h -- internal declarations shared by the layers of libstreamdb.
 *
 * Layers (one folder each, data flows down only):
 *   api    public verbs, argument checks, errors, config
 *   doc    document records, versions, chunk maps, streams, writers
 *   index  B+trees (path tree, document tree) with prefix-compressed nodes
 *   pager  views, page fetch and cache, allocation and free list, commit,
 *          checkpoint, recovery
 *   wal    the log file format: header, frames, scan
 *   codec  CRC32C
 *   vfs    the file and memory backends
 *
 * The byte layouts are in docs/format.md; the invariants quoted as [Fn] in
 * comments are numbered there.
 */
#ifndef SDB_H
#define SDB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <sys/types.h>

#include "streamdb.h"

typedef uint32_t pgno_t;

#define SDB_HIDDEN __attribute__((visibility("hidden")))

/* ---- fixed format constants (docs/format.md) ---- */
#define SDB_FORMAT_VERSION 1
#define SDB_MAGIC "StreamDb format\0"   /* 16 bytes */
#define SDB_PAGE_HDR 64                 /* every typed page starts with this */
#define SDB_CHUNK 65536u                /* logical chunk size of large documents */
#define SDB_WBUF_MAX SDB_CHUNK          /* one-shot writes up to this size copy into env->wbuf */
#define SDB_CHUNK_ENTRY 16              /* pgno, stored length, crc, flags */
#define SDB_CHUNK_ENTRY_CRYPT 48        /* + nonce (12), tag (16), padding (4) */
#define SDB_FEAT_SNAPPY 1u              /* chunks may be snappy-compressed */
#define SDB_FEAT_CRYPT 2u               /* pages and chunks are AES-256-GCM encrypted */
#define SDB_CHUNK_SNAPPY 1u             /* chunk entry flag */
#define SDB_INLINE_CHUNKS 4             /* chunk entries kept inside the record */
#define SDB_VREC_HDR 64                 /* version record header */
#define SDB_WAL_HDR 64
#define SDB_WAL_HDR_LEN 64
#define SDB_FRAME_HDR 24
#define SDB_FIRST_PAGE 2                /* pages 0 and 1 are the two meta slots */
#define SDB_DIRECT_MIN_CHUNKS 4         /* documents of 5 full chunks (320 KiB) or more bypass the log */
#define SDB_TXN_DIRECT_BYTES (1u << 20) /* ... and so does chunk data past 1 MiB per txn */
#define SDB_WRITEBACK_MIN (1u << 20)   /* direct data handed to the VFS writeback hint: */
#define SDB_WRITEBACK_BYTES (8u << 20) /* ... a quarter of the txn's, within these bounds */
#define SDB_WRITEBACK_GAP (128u << 10) /* a hole up to this size keeps the hint's range going */
#define SDB_WAL_GROW (64u << 10)        /* the log file grows by zero-filled steps this big */
#define SDB_FRESH_DIRECT_BYTES (256u << 10) /* a commit with this much in fresh pages writes them in place */

enum {
    SDB_PT_META = 1,
    SDB_PT_LEAF = 2,
    SDB_PT_BRANCH = 3,
    SDB_PT_FREELIST = 4,
    SDB_PT_MAPROOT = 5,
    SDB_PT_MAPLEAF = 6,
};

/* little-endian helpers */
static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

/* ---- codec ---- */
SDB_HIDDEN uint32_t sdb_crc32c(uint32_t crc, const void *buf, size_t len);
/* The CRC of A||B from crc(A), crc(B) and the length of B. */
SDB_HIDDEN uint32_t sdb_crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);
/* The same for one fixed length of B, from a table made once (4 KiB). */
typedef struct sdb_crc_shift {
    uint32_t t[4][256];
    uint64_t len;
} sdb_crc_shift;
SDB_HIDDEN void sdb_crc32c_shift_init(sdb_crc_shift *s, uint64_t len2);
SDB_HIDDEN uint32_t sdb_crc32c_shift_combine(const sdb_crc_shift *s, uint32_t crc1, uint32_t crc2);
SDB_HIDDEN int sdb_crc32c_select(int impl);   /* tests: 0 table, 1 crc32, 2 fold, -1 best */

/* ---- errors (api/error.c) ---- */
/* Records a formatted message for the calling thread and returns code. */
SDB_HIDDEN int sdb_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
SDB_HIDDEN void sdb_err_clear(void);
#define sdb_err_clear_unless(rc) do { if (!(rc)) sdb_err_clear(); } while (0)

/* ---- the meta record: the root of one committed state ---- */
typedef struct sdb_meta {
    uint64_t txnid;        /* last transaction in this state */
    uint64_t seq;          /* meta slot sequence (checkpoint count) */
    uint32_t npages;       /* pages in the database (slots included) */
    pgno_t path_root;      /* path tree root, 0 when empty */
    pgno_t doc_root;       /* document tree root, 0 when empty */
    pgno_t free_head;      /* first free-list page, 0 when none */
    uint64_t free_pages;   /* pages on the free list */
    uint64_t doc_count;
    uint64_t path_count;
    uint64_t id_clock;     /* last id timestamp issued (ms), keeps ids ordered */
    uint32_t log_salt;     /* meta slots: salt of the log that completes this state */
    uint32_t features;     /* SDB_FEAT_* */
    uint64_t logical_bytes;/* content bytes of every stored version */
    uint64_t stored_bytes; /* their bytes on disk (after compression) */
    uint8_t keycheck[44];  /* encrypted databases: nonce, tag, sealed zeros */
    uint32_t acked_frames; /* commit frames: frames of this log acknowledged before it */
} sdb_meta;

/* A run of free pages, freed by transaction txn. */
typedef struct sdb_run {
    pgno_t start;
    uint32_t count;
    uint64_t txn;
} sdb_run;

typedef struct sdb_env sdb_env;
typedef struct sdb_wtxn sdb_wtxn;

/* A view is what one reader (or the writer) sees.  Readers register their
 * view so that checkpoints and page reuse respect it [F9][F10]. */
typedef struct sdb_view {
    sdb_meta meta;
    uint64_t mark;          /* newest global frame number visible */
    sdb_wtxn *w;            /* the writer's dirty pages, or NULL */
    struct sdb_view *prev, *next;
    int registered;
    int nowait;             /* memory only: STREAMDB_ERR_WOULDBLOCK where I/O is needed */
} sdb_view;

/* A reference to a verified page, held while its bytes are used. */
typedef struct sdb_page {
    const uint8_t *data;
    void *entry;            /* cache entry, NULL for a dirty page */
} sdb_page;

/* ---- page cache entry ---- */
typedef struct sdb_centry {
    pgno_t pgno;
    uint64_t fno;           /* global frame number, 0 = main file copy */
    /* One reference for the cache while the entry is in its hash and LRU
     * (taken and dropped under mu), one per sdb_page holding it (taken under
     * mu, dropped without it); whoever drops the last frees the entry. */
    atomic_uint refs;
    struct sdb_centry *hnext, *lprev, *lnext;
    uint8_t *data;
} sdb_centry;

/* ---- the log's in-memory frame index ---- */
typedef struct sdb_frame {
    pgno_t pgno;
    uint32_t prev;          /* local index + 1 of the previous frame of pgno, 0 none */
} sdb_frame;

typedef struct sdb_pending {  /* appended but not yet durable commit */
    uint64_t fno;
    sdb_meta meta;
    int paths_changed;
} sdb_pending;

/* Heap allocation through the streamdb_set_allocator hooks (util/alloc.c).
 * The core never calls malloc/calloc/realloc/free/strdup directly. */
void *sdb_malloc(size_t n);
void *sdb_calloc(size_t count, size_t size);
void *sdb_realloc(void *p, size_t n);
void sdb_free(void *p);
char *sdb_strdup(const char *s);
void *sdb_table_alloc(size_t n);           /* zeroed; pages lazily backed */
void sdb_table_free(void *p, size_t n);
void sdb_alloc_pin(void);     /* a database opened: hooks frozen */
void sdb_alloc_unpin(void);   /* it closed */

/* The path cache: path -> document id, for views that include the newest
 * change of the path tree, and where the current version's record lay in
 * the document tree of one committed state (pager/pcache.c).  Readers take
 * no lock: each slot is a sequence lock over atomic words. */
#define SDB_PC_WORDS 16                 /* 128-byte slots */
#define SDB_PC_MAXPATH ((SDB_PC_WORDS - 7) * 8)
typedef struct sdb_pslot {
    _Atomic uint64_t w[SDB_PC_WORDS];   /* seq, tag, hash|len, id (2), place, place's txn, path */
} sdb_pslot;

/* Where a document's current version record is in one view's state: entry
 * idx of leaf pgno of its document tree (pgno 0: unknown). */
typedef struct sdb_place {
    pgno_t pgno;
    uint32_t idx;
} sdb_place;

typedef struct sdb_ptable {
    struct sdb_ptable *retired;         /* the tables this one replaced */
    uint64_t mask;                      /* slots - 1 */
    sdb_pslot *slots;                   /* in mem, aligned to 128 bytes */
    void *mem;
    size_t memlen;
} sdb_ptable;

typedef struct sdb_pcache {
    _Atomic(sdb_ptable *) table;        /* NULL until the first fill */
    _Atomic uint64_t epoch;             /* txn of the newest path-tree change visible */
    uint32_t cap;                       /* most slots (0: off) */
    pthread_mutex_t grow;               /* one table swap at a time */
    atomic_uint_fast64_t hits, misses;
} sdb_pcache;

/* ---- the worker pool (api/async.c) ---- */
typedef struct sdb_job {
    struct sdb_job *next;
    void (*run)(struct sdb_job *);     /* on a worker thread */
    void (*cancel)(struct sdb_job *);  /* dropped from the queue before it ran */
} sdb_job;

typedef struct sdb_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;      /* workers wait for jobs */
    pthread_cond_t idle;      /* shutdown waits for running jobs */
    sdb_job *head, *tail;
    pthread_t threads[64];
    int nthreads, running, stopping, inited;
    uint64_t queued;
} sdb_pool;

SDB_HIDDEN int sdb_async_submit(sdb_env *env, sdb_job *j);
SDB_HIDDEN int sdb_async_remove(sdb_env *env, sdb_job *j);   /* 1: removed before it ran */
SDB_HIDDEN void sdb_async_shutdown(sdb_env *env);
SDB_HIDDEN uint64_t sdb_async_pending(sdb_env *env);
SDB_HIDDEN void sdb_async_init(sdb_env *env);
SDB_HIDDEN void sdb_async_destroy(sdb_env *env);

struct sdb_env {
    streamdb_config cfg;
    const streamdb_vfs *vfs;
    streamdb_file *dbf;
    streamdb_file *walf;
    char *path;
    char *walpath;
    uint32_t psize;
    sdb_crc_shift *body_shift;   /* combine over psize - 4 bytes (the writer's; made at its first commit) */
    int slot0_blank;       /* read_slots: header slot 0 is all zeros */
    size_t max_path;
    size_t inline_max;
    uint32_t centry;              /* chunk entry size: 16, or 48 with encryption */
    int crypt;                    /* encrypted database: key below */
    uint8_t key[32];
    pid_t pid;
    int readonly;
    atomic_int fatal;             /* latched after a failed write or sync */
    atomic_int quick;

    pthread_mutex_t mu;           /* frame index, readers, committed state, cache */
    pthread_rwlock_t ckpt;        /* readers shared; checkpoint/reset exclusive */
    pthread_mutex_t wlock;        /* the single writer */
    pthread_mutex_t smu;          /* group commit */
    pthread_cond_t scond;
    int syncing;

    /* committed state (mu) */
    sdb_meta meta;                /* newest durable commit: what new readers see */
    uint64_t durable;             /* newest visible global frame number */
    uint64_t synced_txn;          /* newest transaction known to be on disk */
    sdb_run *runs;                /* free list of the newest appended state (wlock) */
    size_t nruns, capruns;

    /* log (frame index under mu; file appends under wlock) */
    uint64_t wal_base;            /* global number of frame 0 of this log = base + 1 */
    uint32_t wal_salt;
    uint32_t wal_cksum;           /* running checksum after the last frame */
    uint64_t wal_fsize;           /* the log file's size: frames below it overwrite, not append */
    uint32_t slot_salt[2];        /* the log salt each header slot names (0: slot invalid) */
    sdb_frame *frames;
    uint32_t nframes, capframes;
    uint32_t *fhash;              /* pgno -> local index + 1, open addressing */
    uint32_t *fhkey;
    uint32_t fhcap, fhcount;
    sdb_pending *pend;
    size_t npend, cappend;
    sdb_meta wmeta;               /* state after the last appended commit (wlock) */

    /* main file */
    uint64_t file_size;
    const uint8_t *map;
    uint64_t maplen;
    _Atomic uint64_t *vbits;      /* mmap: main-file pages whose CRC was checked */
    _Atomic uint64_t vbits_quick_hw; /* words below which quick mode has set bits */
    _Atomic uint64_t *lbits;      /* mmap: pages with a frame in the log index */
    _Atomic uint64_t *tbits;      /* mmap: pages and first pages of chunks read from the map (a hint:
                                   * those have had their read asked for; see map_prefetch) */
    size_t bitslen;               /* bytes of each of the three bitmaps */
    atomic_uint nframes_pub;      /* frames in the index (0: every page is in the file) */

    /* readers (mu) */
    sdb_view readers;             /* list head */
    uint64_t nreaders;

    /* page cache (mu) */
    sdb_centry **chash;
    uint32_t chcap;
    sdb_centry lru;               /* list head: lnext is most recent */
    uint32_t ncached, cache_cap;
    atomic_uint_fast64_t hits, misses, evictions;
    uint64_t checkpoints;
    uint64_t ckpt_done;           /* global frame number copied into the main file (wlock) */

    /* transaction owner */
    sdb_wtxn *txn;                /* the explicit transaction: its owner thread only */
    atomic_int txn_open;          /* an explicit transaction is open (any thread may ask) */

    atomic_int children;          /* open streams, cursors, writers, snapshots */
    struct sdb_pool pool;         /* async reads and read-ahead */
    sdb_pcache pcache;
    char *killpoint;              /* tests: STREAMDB_KILLPOINT=name[:n] */
    uint64_t fresh_direct;        /* [F10] fresh-page threshold; tests: STREAMDB_TEST_FRESH_DIRECT */
    struct sdb_dirty *dpool;      /* spare dirty-page buffers (writer lock) */
    uint32_t ndpool;
    /* doc.c, new_id (writer lock): the last sequence number given to an id
     * of millisecond id_ms in this process (valid while id_ms is nonzero) */
    uint64_t id_ms;
    uint32_t id_seq;
    /* the writer's scratch (writer lock), kept from one document to the
     * next instead of allocated and freed for each: the version record
     * sdb_docw_commit builds and its encoding, and the copy a one-shot write
     * takes of a document of up to SDB_WBUF_MAX bytes */
    struct sdb_vrec *wvrec;
    uint8_t *wval;
    uint8_t *wbuf;
    long killcount;
    atomic_uint_fast64_t prefetch_hits;
};

/* ---- the write transaction ---- */
typedef struct sdb_dirty {
    pgno_t pgno;
    int raw;                      /* chunk data: no page header to seal */
    struct sdb_dirty *next;
    uint8_t *data;
} sdb_dirty;

struct sdb_wtxn {
    sdb_view view;                /* base state + dirty pages */
    sdb_dirty **dhash;
    uint32_t dcap, ndirty;
    sdb_run *runs;                /* working copy of the free list */
    size_t nruns, capruns;
    uint64_t txnid;
    int direct_written;           /* main file holds unsynced chunk data */
    uint64_t wb_lo, wb_hi;        /* direct-written range not yet handed to writeback */
    uint64_t wb_total;            /* direct bytes this transaction wrote */
    pgno_t base_npages;           /* npages of the state this transaction started from */
    int paths_changed;            /* the path tree changed: the path cache must forget */
    uint64_t wal_data_bytes;      /* chunk data this transaction sent through the log */
    int failed;                   /* an operation failed: commit refused */
    /* btree.c: the rightmost leaf of the path tree [0] and the document tree
     * [1] while root is theirs, where a batch of new documents appends
     * without a descent (leaf 0: none known; see bt_append) */
    struct { pgno_t root, leaf; } rleaf[2];
};

/* ---- pager (pager/pager.c) ---- */
SDB_HIDDEN int sdb_env_open(const char *path, const streamdb_config *cfg, sdb_env **out);
SDB_HIDDEN int sdb_env_close(sdb_env *env);

SDB_HIDDEN void sdb_view_begin(sdb_env *env, sdb_view *v);   /* registers */
SDB_HIDDEN void sdb_vbits_reset(sdb_env *env);   /* leaving quick mode */
SDB_HIDDEN void sdb_cache_drop_all(sdb_env *env); /* leaving quick mode */
SDB_HIDDEN void sdb_view_end(sdb_env *env, sdb_view *v);

SDB_HIDDEN int sdb_page_get(sdb_env *env, const sdb_view *v, pgno_t pgno, int type, sdb_page *out);
SDB_HIDDEN void sdb_page_put(sdb_env *env, sdb_page *p);
/* Reads the raw bytes of a chunk run into buf, from the main file (pread)
 * or page by page from the log where frames hold them.  With mapped non-NULL,
 * a run wholly in the main file and inside the map is not read: *mapped
 * points at it there (valid while v is registered); otherwise *mapped = NULL. */
SDB_HIDDEN int sdb_read_chunk(sdb_env *env, const sdb_view *v, pgno_t pgno, uint32_t len,
                              uint8_t *buf, const uint8_t **mapped);

SDB_HIDDEN int sdb_wtxn_begin(sdb_env *env, sdb_wtxn **out);
SDB_HIDDEN int sdb_wlock_held(sdb_env *env);   /* this thread holds the writer */
SDB_HIDDEN int sdb_wtxn_commit(sdb_env *env, sdb_wtxn *w);
SDB_HIDDEN void sdb_wtxn_abort(sdb_env *env, sdb_wtxn *w);
/* A writable copy of pgno (typed page: header initialised by caller). */
SDB_HIDDEN int sdb_page_dirty(sdb_env *env, sdb_wtxn *w, pgno_t pgno, uint8_t **data);
/* A new page for the log path; contents zeroed. */
SDB_HIDDEN int sdb_page_new(sdb_env *env, sdb_wtxn *w, pgno_t *pgno, uint8_t **data);
SDB_HIDDEN int sdb_page_free(sdb_env *env, sdb_wtxn *w, pgno_t pgno, uint32_t count);
/* count contiguous free pages; direct: for data written straight into the
 * main file [F10], else for pages written through the log [F9]. */
SDB_HIDDEN int sdb_alloc_run(sdb_env *env, sdb_wtxn *w, uint32_t count, int direct, pgno_t *start);
/* Raw (untyped) chunk pages written through the log. */
SDB_HIDDEN int sdb_put_raw(sdb_env *env, sdb_wtxn *w, pgno_t pgno, const uint8_t *buf, size_t len);
SDB_HIDDEN int sdb_write_direct(sdb_env *env, sdb_wtxn *w, pgno_t pgno, const void *buf, size_t len);
SDB_HIDDEN int sdb_checkpoint(sdb_env *env, int force);
SDB_HIDDEN int sdb_compact(sdb_env *env);
SDB_HIDDEN int sdb_check_pages(sdb_env *env, const sdb_view *v, uint8_t *owner);
SDB_HIDDEN void sdb_log(sdb_env *env, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
SDB_HIDDEN uint64_t sdb_oldest_reader_txn(sdb_env *env);

/* ---- B+tree (index/btree.c) ---- */
typedef struct sdb_bt_frame {
    pgno_t pgno;
    int idx;
} sdb_bt_frame;

#define SDB_BT_MAXDEPTH 24
typedef struct sdb_cursor_bt {
    sdb_env *env;
    const sdb_view *view;
    pgno_t root;
    int depth;
    sdb_bt_frame stack[SDB_BT_MAXDEPTH];
    sdb_page leaf;
    int nkeys;
    uint8_t key[STREAMDB_MAX_PATH + 64];   /* the current key, NUL-terminated */
    size_t klen;
    const uint8_t *val;
    size_t vlen;
    int valid;
    int key_from_leaf;   /* key[0, leaf prefix) was copied from the current leaf */
    uint64_t leafseq;    /* counts the leaves the cursor has stood on (sdb_bt_leaf_prefix) */
} sdb_cursor_bt;

SDB_HIDDEN int sdb_bt_get(sdb_env *env, const sdb_view *v, pgno_t root, const uint8_t *key,
                          size_t klen, uint8_t *val, size_t valcap, size_t *vlen);
SDB_HIDDEN int sdb_bt_put(sdb_env *env, sdb_wtxn *w, pgno_t *root, const uint8_t *key, size_t klen,
                          const uint8_t *val, size_t vlen, int *replaced);
/* sdb_bt_put that never replaces: STREAMDB_ERR_EXISTS (no message set, no
 * page dirtied) when key is there, with its value copied to old (at most
 * oldcap bytes) and its length in *oldlen; 0 once inserted.  One descent
 * where a lookup and then a put took two. */
SDB_HIDDEN int sdb_bt_insert(sdb_env *env, sdb_wtxn *w, pgno_t *root, const uint8_t *key,
                             size_t klen, const uint8_t *val, size_t vlen, uint8_t *old,
                             size_t oldcap, size_t *oldlen);
SDB_HIDDEN int sdb_bt_del(sdb_env *env, sdb_wtxn *w, pgno_t *root, const uint8_t *key, size_t klen);
SDB_HIDDEN int sdb_bt_seek(sdb_cursor_bt *c, sdb_env *env, const sdb_view *v, pgno_t root,
                           const uint8_t *key, size_t klen);
SDB_HIDDEN int sdb_bt_next(sdb_cursor_bt *c);
SDB_HIDDEN void sdb_bt_close(sdb_cursor_bt *c);
/* Entry idx of leaf pgno when its key is head (hl bytes) and then klen - hl
 * bytes more: 0, with *val pointing into *pg (the caller puts it);
 * STREAMDB_ERR_NOT_FOUND when the page or entry is not that; or an error. */
SDB_HIDDEN int sdb_bt_entry_at(sdb_env *env, const sdb_view *v, pgno_t pgno, uint32_t idx,
                               const uint8_t *head, size_t hl, size_t klen, sdb_page *pg,
                               const uint8_t **val, size_t *vlen);
/* The prefix every key of the cursor's current leaf shares (valid cursor). */
SDB_HIDDEN void sdb_bt_leaf_prefix(const sdb_cursor_bt *c, const uint8_t **prefix, size_t *len);
SDB_HIDDEN int sdb_bt_check(sdb_env *env, const sdb_view *v, pgno_t root, uint8_t *owner,
                            uint64_t *nentries,
                            int (*visit)(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl),
                            void *ctx);

/* ---- named kill points for crash tests (RELIABILITY.md T5) ----
 * With STREAMDB_KILLPOINT=name[:n] in the environment at open, the process
 * kills itself with SIGKILL the n-th time (default 1st) it reaches the point
 * called name.  Without the variable this is one pointer test. */
SDB_HIDDEN void sdb_killpoint_hit(sdb_env *env, const char *name);
#define SDB_KILLPOINT(env, name) do { if ((env)->killpoint) sdb_killpoint_hit(env, name); } while (0)

/* ---- path cache (pager/pcache.c) ---- */
SDB_HIDDEN void sdb_pcache_init(sdb_env *env, uint32_t cap);
SDB_HIDDEN void sdb_pcache_destroy(sdb_env *env);
/* 1 and the id on a hit; *place (may be NULL) is filled when the slot
 * knows where the current version lies in the view's own state, else its
 * pgno is 0. */
SDB_HIDDEN int sdb_pcache_get(sdb_env *env, const sdb_view *v, const char *path, size_t len,
                              uint8_t *id, sdb_place *place);
/* place: NULL or where the current version lies in v's own state (the slot
 * is tagged with v's txnid). */
SDB_HIDDEN void sdb_pcache_put(sdb_env *env, const sdb_view *v, const char *path, size_t len,
                               const uint8_t *id, const sdb_place *place);
/* A commit that changed the path tree became visible: forget everything. */
SDB_HIDDEN void sdb_pcache_invalidate(sdb_env *env, uint64_t txnid);

/* ---- small utilities ---- */
SDB_HIDDEN uint64_t sdb_now_ns(void);
SDB_HIDDEN int sdb_io_read(sdb_env *env, streamdb_file *f, void *buf, size_t n, uint64_t off,
                           const char *what);
SDB_HIDDEN int sdb_io_write(sdb_env *env, streamdb_file *f, const void *buf, size_t n, uint64_t off,
                            const char *what);
SDB_HIDDEN int sdb_io_sync(sdb_env *env, streamdb_file *f, const char *what);
SDB_HIDDEN void sdb_page_seal(uint8_t *page, uint32_t psize, int type, pgno_t pgno, uint64_t txn);
/* Seals a typed page of env: encrypts its body first when env is encrypted. */
SDB_HIDDEN int sdb_page_seal_env(sdb_env *env, uint8_t *page, int type, pgno_t pgno, uint64_t txn);
SDB_HIDDEN int sdb_page_verify(const uint8_t *page, uint32_t psize, pgno_t pgno, int type);

#endif
