/*
 * streamdb.h -- the public C API of libstreamdb.
 *
 * StreamDb is an embedded store for binary documents (up to 256 MiB each by
 * default) kept under string paths such as "/levels/3/terrain.bin".  It finds
 * documents by exact path or by path prefix and hands them back whole, by
 * byte range, or as a stream.
 *
 * Design in one paragraph.  One database file of fixed-size pages plus a
 * write-ahead log beside it ("<name>-wal").  Every commit appends its pages to
 * the log and syncs the log once; checkpoints copy the log into the main file.
 * Paths live in a B+tree ordered by path bytes (prefix-compressed leaves), and
 * documents in a second B+tree keyed by a 16-byte id.  Small documents are
 * stored inline in their record; large ones as 64 KiB chunks in contiguous runs
 * of pages, found through a chunk map, each chunk with its own CRC32C.  Every
 * index page carries a CRC32C.  Readers see a snapshot and never wait for the
 * writer; writers are serialised.  docs/design.md and docs/format.md say more.
 *
 * Conventions.
 *  - Every function returns an int: 0 (STREAMDB_OK) on success, a negative
 *    STREAMDB_ERR_* code on failure, and STREAMDB_DONE (1) where a cursor has
 *    nothing more.  streamdb_strerror(code) names a code; streamdb_errmsg(db)
 *    gives the context of the calling thread's last failure on db (path, page,
 *    errno).
 *  - Paths are (pointer, length) in the *_n functions; the functions without
 *    the suffix take a NUL-terminated string.  A path is UTF-8, begins with
 *    '/', has no NUL and no empty segment, and is at most STREAMDB_MAX_PATH
 *    bytes (less on 4 KiB pages: see streamdb_max_path_len).
 *  - Every buffer or array the library hands out has its own free function:
 *    streamdb_free for buffers, streamdb_free_paths for path arrays.
 *  - A version argument (int64_t version) selects what a read sees:
 *    0 = the current version, a negative number counts back (-1 = the previous
 *    version), a positive number names a version exactly.
 *  - Document ids are 16 bytes (a UUID, version 7 layout: time-ordered).  The
 *    first 48 bits are the creation's Unix time in milliseconds, the next 12
 *    (after the version) a sequence number within that millisecond; each id
 *    sorts after every earlier one in the same database, even if the clock
 *    steps back (it then carries the last millisecond used, or the next).
 *
 * The user's obligations.
 *  - Threads: one streamdb handle may be used from many threads at once.
 *    Streams, cursors and writers belong to one thread at a time.
 *  - Transactions are per handle: between streamdb_begin_transaction and
 *    commit/rollback, the thread that began it owns the writer; writes from
 *    other threads wait for it to finish.
 *  - Lifetimes: close every stream, cursor, writer and snapshot before closing
 *    the handle they came from.  streamdb_close refuses (STREAMDB_ERR_BUSY)
 *    while any of them is open, and changes nothing in that case.
 *  - fork: a child must not use a handle opened by its parent; it gets
 *    STREAMDB_ERR_CLOSED if it tries.
 *  - One process at a time may open a database file for writing; others get
 *    STREAMDB_ERR_LOCKED at once.
 */
#ifndef STREAMDB_H
#define STREAMDB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(STREAMDB_BUILDING) && defined(__GNUC__)
#define STREAMDB_API __attribute__((visibility("default")))
#else
#define STREAMDB_API
#endif

#define STREAMDB_VERSION_MAJOR 0
#define STREAMDB_VERSION_MINOR 1
#define STREAMDB_VERSION_PATCH 0
#define STREAMDB_VERSION_STRING "0.1.0"

/* ---- Return codes ------------------------------------------------------ */

#define STREAMDB_OK                 0
#define STREAMDB_DONE               1   /* cursor exhausted (not an error) */
#define STREAMDB_ERR_IO            -1   /* a system call failed; errno in errmsg */
#define STREAMDB_ERR_NOT_FOUND     -2   /* no such path, id or version */
#define STREAMDB_ERR_INVALID       -3   /* bad argument: path, size, config, ... */
#define STREAMDB_ERR_INTERNAL      -4   /* a bug in StreamDb: please report */
#define STREAMDB_ERR_TRANSACTION   -5   /* no transaction / not the owner / finished */
#define STREAMDB_ERR_CORRUPT       -6   /* a checksum or structure check failed */
#define STREAMDB_ERR_LOCKED        -7   /* another process has the database open */
#define STREAMDB_ERR_TOO_LARGE     -8   /* document over max_document_size */
#define STREAMDB_ERR_FULL          -9   /* max_db_size reached, or the disk is full */
#define STREAMDB_ERR_CLOSED       -10   /* handle closed, or used after fork */
#define STREAMDB_ERR_NOMEM        -11   /* an allocation failed */
#define STREAMDB_ERR_BUSY         -12   /* close with open streams/cursors/snapshots */
#define STREAMDB_ERR_READONLY     -13   /* a write on a read-only handle or snapshot */
#define STREAMDB_ERR_INCOMPATIBLE -14   /* file made with other page size / format */
#define STREAMDB_ERR_NOT_A_DB     -15   /* the file is not a StreamDb database */
#define STREAMDB_ERR_FATAL        -16   /* an earlier write or sync failed: reopen */
#define STREAMDB_ERR_CRYPTO       -17   /* wrong key or failed authentication */
#define STREAMDB_ERR_UNSUPPORTED  -18   /* feature not built or not available */
#define STREAMDB_ERR_EXISTS       -19   /* path already bound to another document */
#define STREAMDB_ERR_CANCELLED    -20   /* an asynchronous request was cancelled */
#define STREAMDB_ERR_WOULDBLOCK   -21   /* a STREAMDB_READ_NOWAIT read needs the disk */

#define STREAMDB_MAX_PATH 4096
#define STREAMDB_ID_SIZE 16

/* ---- Types -------------------------------------------------------------- */

typedef struct streamdb streamdb;                /* a database or snapshot handle */
typedef struct streamdb_writer streamdb_writer;  /* a streaming document writer */
typedef struct streamdb_stream streamdb_stream;  /* a document opened for reading */
typedef struct streamdb_cursor streamdb_cursor;  /* a prefix search or listing */
typedef struct streamdb_config streamdb_config;
typedef struct streamdb_vfs streamdb_vfs;
typedef struct streamdb_file streamdb_file;      /* defined by each VFS backend */

/* Log levels for the log callback. */
#define STREAMDB_LOG_ERROR 0
#define STREAMDB_LOG_WARN  1
#define STREAMDB_LOG_INFO  2
typedef void (*streamdb_log_fn)(void *ctx, int level, const char *message);

/*
 * Configuration.  C users fill the struct after streamdb_config_init; FFI
 * users who prefer not to mirror its layout use streamdb_config_new and the
 * by-name setters below.  Zero means "default" for every numeric field.
 */
struct streamdb_config {
    uint32_t page_size;          /* power of two, 4096..65536; default 8192 */
    uint32_t page_cache_size;    /* pages; default 2048 */
    uint64_t max_db_size;        /* bytes; default 8 TiB */
    uint64_t max_document_size;  /* bytes; default 256 MiB */
    uint32_t versions_to_keep;   /* >= 1; default 2 */
    int use_mmap;                /* read the main file through mmap */
    int quick_mode;              /* skip CRC checks on reads (never in recovery) */
    int read_only;               /* open for reading only */
    int create;                  /* create the file if missing (default 1) */
    int use_compression;         /* snappy per chunk (issue 3: not yet built) */
    int has_encryption_key;      /* encryption_key is set (issue 3) */
    uint8_t encryption_key[32];
    uint32_t file_mode;          /* permission bits for new files; default 0600 */
    uint64_t wal_autocheckpoint; /* checkpoint when the log passes this many bytes; default 16 MiB */
    int sync_commits;            /* 1 (default): fsync the log on every commit; 0: on flush only */
    streamdb_log_fn log_fn;      /* may be NULL */
    void *log_ctx;
    const streamdb_vfs *vfs;     /* NULL: the file backend */
    uint32_t async_workers;      /* threads serving async reads and read-ahead; default 2 */
    uint32_t readahead_chunks;   /* 64 KiB chunks a sequential stream of an encrypted or
                                  * compressed document decodes ahead; default 4, 0 off
                                  * (raw chunks: the kernel reads ahead) */
    uint32_t path_cache_size;    /* most paths (of up to 72 bytes) whose document id, and
                                    where its current version lies, are cached: 128 bytes
                                    each, the table doubling from 1,024 while the database
                                    has more than half as many paths as slots; default
                                    131072 (16 MiB at most, at 65,536 paths or more), 0 off */
};

STREAMDB_API void streamdb_config_init(streamdb_config *cfg);
STREAMDB_API streamdb_config *streamdb_config_new(void);
STREAMDB_API void streamdb_config_free(streamdb_config *cfg);
/* Set a numeric field by its name ("page_size", "use_mmap", ...).
 * STREAMDB_ERR_INVALID for an unknown name. */
STREAMDB_API int streamdb_config_set(streamdb_config *cfg, const char *name, uint64_t value);
STREAMDB_API int streamdb_config_set_key(streamdb_config *cfg, const void *key, size_t key_len);
STREAMDB_API int streamdb_config_set_log(streamdb_config *cfg, streamdb_log_fn fn, void *ctx);
STREAMDB_API int streamdb_config_set_vfs(streamdb_config *cfg, const streamdb_vfs *vfs);

/* ---- Errors and version --------------------------------------------------- */

STREAMDB_API const char *streamdb_version(void);
STREAMDB_API const char *streamdb_strerror(int code);
/* The calling thread's last error message for db (or for the last failed
 * streamdb_open when db is NULL).  Valid until this thread's next call. */
STREAMDB_API const char *streamdb_errmsg(const streamdb *db);

/* ---- Open and close -------------------------------------------------------- */

/* cfg may be NULL for all defaults.  On failure *out is NULL. */
STREAMDB_API int streamdb_open(const char *path, const streamdb_config *cfg, streamdb **out);
/* Checkpoints (unless read-only), releases the file lock and frees db.
 * Also closes a snapshot handle.  NULL is a no-op. */
STREAMDB_API int streamdb_close(streamdb *db);
STREAMDB_API uint32_t streamdb_page_size(const streamdb *db);
STREAMDB_API size_t streamdb_max_path_len(const streamdb *db);

/* ---- Writing documents ----------------------------------------------------- */

/* Writes a new version of the document at path (creating it, with a new id,
 * if the path is unbound).  id_out (16 bytes) may be NULL. */
STREAMDB_API int streamdb_write_document(streamdb *db, const char *path,
                                         const void *data, size_t len, uint8_t *id_out);
STREAMDB_API int streamdb_write_document_n(streamdb *db, const char *path, size_t path_len,
                                           const void *data, size_t len, uint8_t *id_out);

/* Streaming writer: begin, write chunks, then commit or abort (either frees
 * the writer).  Nothing is visible until commit; abort leaves no trace.  The
 * writer holds the write lock from begin to commit/abort (outside an explicit
 * transaction): other threads' writes wait, and other writes from the same
 * thread get STREAMDB_ERR_BUSY rather than waiting for themselves. */
STREAMDB_API int streamdb_writer_begin(streamdb *db, const char *path, size_t path_len,
                                       streamdb_writer **out);
STREAMDB_API int streamdb_writer_write(streamdb_writer *w, const void *data, size_t len);
STREAMDB_API int streamdb_writer_commit(streamdb_writer *w, uint8_t *id_out);
/* Overrides the database's use_compression for this document (before the
 * first write): 1 compress each chunk with snappy, 0 store raw. */
STREAMDB_API int streamdb_writer_set_compression(streamdb_writer *w, int on);
STREAMDB_API void streamdb_writer_abort(streamdb_writer *w);

/* ---- Reading documents ----------------------------------------------------- */

/* The whole document into a buffer the library allocates (free with
 * streamdb_free).  A zero-length document gives a non-NULL buffer. */
STREAMDB_API int streamdb_get(streamdb *db, const char *path, int64_t version,
                              void **data_out, size_t *len_out);
STREAMDB_API int streamdb_get_n(streamdb *db, const char *path, size_t path_len, int64_t version,
                                void **data_out, size_t *len_out);
STREAMDB_API void streamdb_free(void *p);
/* The whole document into the caller's buffer, checked end to end like
 * streamdb_get, with no allocation.  *len_out is the document's size; when
 * it exceeds cap nothing is copied and the call still returns STREAMDB_OK
 * (as snprintf does): call again with *len_out bytes.  The document may
 * change between the two calls, so check *len_out again.  On error nothing
 * is promised about buf. */
STREAMDB_API int streamdb_get_into(streamdb *db, const char *path, size_t path_len,
                                   int64_t version, void *buf, size_t cap, size_t *len_out);

/* Flags of streamdb_get_into_flags. */
#define STREAMDB_READ_NOWAIT 1u
/* streamdb_get_into with flags.  STREAMDB_READ_NOWAIT serves the read from
 * memory only: the map, the page cache and the caller's own transaction.
 * Where it would have to read a file (a page missing from the cache, a chunk
 * read with pread, a mapped page the kernel does not hold), or wait for a
 * checkpoint to reset the log, it returns STREAMDB_ERR_WOULDBLOCK at once,
 * with *len_out 0 and the database and its counters untouched (buf, as on
 * any error, may hold part of the document); the same call without the flag
 * then does the read.  It takes only the library's short in-memory locks, which are never
 * held across I/O, so a caller may make it where blocking is not allowed: a
 * game's frame, or the Python binding with the GIL held.  A mapped page the
 * kernel evicts after its first check may still fault in, as in LMDB. */
STREAMDB_API int streamdb_get_into_flags(streamdb *db, const char *path, size_t path_len,
                                         int64_t version, unsigned flags, void *buf, size_t cap,
                                         size_t *len_out);

/* ---- Memory ------------------------------------------------------------------
 *
 * Every heap allocation of the library goes through these hooks (the codec
 * libraries, snappy and OpenSSL, keep their own).  They are process-wide and
 * may be set only while no database is open (STREAMDB_ERR_BUSY otherwise; an
 * open racing with the call waits for it) and no buffer, configuration or
 * memory VFS the library allocated is still held: set them once, at start.
 * NULL restores malloc/realloc/free.  A hook that returns NULL makes the
 * operation fail with STREAMDB_ERR_NOMEM; the database stays usable and
 * unchanged.  realloc_fn is never called with a NULL pointer or a zero size,
 * malloc_fn never with a zero size. */
typedef struct streamdb_allocator {
    void *(*malloc_fn)(size_t size, void *ctx);
    void *(*realloc_fn)(void *ptr, size_t size, void *ctx);
    void (*free_fn)(void *ptr, void *ctx);
    void *ctx;
} streamdb_allocator;
STREAMDB_API int streamdb_set_allocator(const streamdb_allocator *alloc);

/* Up to len bytes from offset into buf; *nread < len only at the end. */
STREAMDB_API int streamdb_read(streamdb *db, const char *path, int64_t version, uint64_t offset,
                               void *buf, size_t len, size_t *nread);
STREAMDB_API int streamdb_read_n(streamdb *db, const char *path, size_t path_len, int64_t version,
                                 uint64_t offset, void *buf, size_t len, size_t *nread);

/* A stream reads one version of one document as of its opening, whatever is
 * written afterwards.  whence: 0 = SEEK_SET, 1 = SEEK_CUR, 2 = SEEK_END. */
STREAMDB_API int streamdb_stream_open(streamdb *db, const char *path, size_t path_len,
                                      int64_t version, streamdb_stream **out);
STREAMDB_API int streamdb_stream_read(streamdb_stream *s, void *buf, size_t len, size_t *nread);
STREAMDB_API int streamdb_stream_seek(streamdb_stream *s, int64_t offset, int whence,
                                      uint64_t *pos_out);
STREAMDB_API int streamdb_stream_tell(streamdb_stream *s, uint64_t *pos_out);
STREAMDB_API int streamdb_stream_size(streamdb_stream *s, uint64_t *size_out);
STREAMDB_API void streamdb_stream_close(streamdb_stream *s);

/* Metadata of one version of a document. */
typedef struct streamdb_doc_info {
    uint8_t id[16];
    uint64_t version;       /* monotonically numbered from 1 */
    uint64_t size;          /* logical bytes */
    uint64_t stored_size;   /* bytes on disk for the content */
    uint64_t crc32c;        /* CRC32C of the whole content */
    uint64_t created_ns;    /* UNIX time in ns of the document's first version */
    uint64_t modified_ns;   /* UNIX time in ns of this version */
    uint64_t flags;         /* STREAMDB_DOC_* */
} streamdb_doc_info;
#define STREAMDB_DOC_INLINE 1u      /* content stored inside the record */
#define STREAMDB_DOC_COMPRESSED 2u  /* at least one chunk is stored compressed */

STREAMDB_API int streamdb_stat(streamdb *db, const char *path, size_t path_len, int64_t version,
                               streamdb_doc_info *info);
/* The readable version numbers of the document at path, oldest first. */
STREAMDB_API int streamdb_versions(streamdb *db, const char *path, size_t path_len,
                                   uint64_t **versions_out, size_t *count_out);

/* ---- Search and listing -------------------------------------------------------- */

/* Every path that starts with prefix, in byte order.  The cursor sees the
 * database as of its opening. */
STREAMDB_API int streamdb_search_open(streamdb *db, const char *prefix, size_t prefix_len,
                                      streamdb_cursor **out);
/* One directory level under prefix: each distinct "prefix + name" that is a
 * document is returned as is, and each "prefix + name/" that has documents
 * below it is returned once, with its trailing '/'. */
STREAMDB_API int streamdb_list_open(streamdb *db, const char *prefix, size_t prefix_len,
                                    streamdb_cursor **out);
/* 0 and the next path (valid until the next call on c), or STREAMDB_DONE. */
STREAMDB_API int streamdb_cursor_next(streamdb_cursor *c, const char **path, size_t *path_len);
STREAMDB_API void streamdb_cursor_close(streamdb_cursor *c);

/* Array forms: *paths_out holds *count_out NUL-terminated strings. */
STREAMDB_API int streamdb_search(streamdb *db, const char *prefix, char ***paths_out,
                                 size_t *count_out);
STREAMDB_API int streamdb_search_n(streamdb *db, const char *prefix, size_t prefix_len,
                                   char ***paths_out, size_t *count_out);
STREAMDB_API int streamdb_list(streamdb *db, const char *prefix, size_t prefix_len,
                               char ***paths_out, size_t *count_out);
STREAMDB_API void streamdb_free_paths(char **paths, size_t count);
/* Number of documents (distinct ids) in the database. */
STREAMDB_API int streamdb_count(streamdb *db, uint64_t *count_out);

/* ---- Documents with several paths ----------------------------------------------- */

STREAMDB_API int streamdb_get_id_by_path(streamdb *db, const char *path, size_t path_len,
                                         uint8_t *id_out);
/* Binds path to the document id.  STREAMDB_ERR_EXISTS when the path is bound
 * to another document; binding a path to its own document is a no-op. */
STREAMDB_API int streamdb_bind_to_path(streamdb *db, const uint8_t *id, const char *path,
                                       size_t path_len);
/* Unbinds path from id; the document is removed when no path is left. */
STREAMDB_API int streamdb_unbind_path(streamdb *db, const uint8_t *id, const char *path,
                                      size_t path_len);
STREAMDB_API int streamdb_list_paths(streamdb *db, const uint8_t *id, char ***paths_out,
                                     size_t *count_out);
/* Unbinds path; the document is removed when no path is left. */
STREAMDB_API int streamdb_delete(streamdb *db, const char *path);
STREAMDB_API int streamdb_delete_n(streamdb *db, const char *path, size_t path_len);
/* Removes the document and all its paths. */
STREAMDB_API int streamdb_delete_by_id(streamdb *db, const uint8_t *id);
/* Reads by id rather than path. */
STREAMDB_API int streamdb_get_by_id(streamdb *db, const uint8_t *id, int64_t version,
                                    void **data_out, size_t *len_out);

/* ---- Transactions, snapshots, maintenance ------------------------------------- */

/* Groups writes into one atomic, durable commit.  Nested begin is
 * STREAMDB_ERR_TRANSACTION. */
STREAMDB_API int streamdb_begin_transaction(streamdb *db);
STREAMDB_API int streamdb_commit_transaction(streamdb *db);
STREAMDB_API int streamdb_rollback_transaction(streamdb *db);

/* A read-only handle that sees db as it is now, whatever is committed later.
 * Every read function accepts it; write functions return
 * STREAMDB_ERR_READONLY.  Close it with streamdb_close or
 * streamdb_snapshot_close (STREAMDB_ERR_BUSY while streams, cursors or
 * snapshots opened from it are still open).  A snapshot keeps the log from
 * being reset while it lives: close it when done. */
STREAMDB_API int streamdb_snapshot(streamdb *db, streamdb **snap_out);
STREAMDB_API int streamdb_snapshot_close(streamdb *snap);

/* Makes everything committed durable and checkpoints the log into the file. */
STREAMDB_API int streamdb_flush(streamdb *db);
/* Quick mode skips CRC checks on reads (never in recovery); turning it on
 * logs a warning through the log callback. */
STREAMDB_API int streamdb_set_quick_mode(streamdb *db, int on);

typedef struct streamdb_stats {
    uint64_t page_size;
    uint64_t total_pages;      /* pages in the database, headers included */
    uint64_t free_pages;       /* pages on the free list */
    uint64_t document_count;
    uint64_t path_count;
    uint64_t wal_bytes;        /* current size of the log */
    uint64_t wal_frames;
    uint64_t live_readers;     /* snapshots, streams and cursors now open */
    uint64_t oldest_reader_txn;/* txn id the oldest reader sees (0: none) */
    uint64_t last_txn;         /* id of the last committed transaction */
    uint64_t checkpoints;      /* checkpoints done by this handle */
    uint64_t file_bytes;       /* size of the main file */
} streamdb_stats;
STREAMDB_API int streamdb_calculate_statistics(streamdb *db, streamdb_stats *out);

typedef struct streamdb_cache_stats {
    uint64_t hits;
    uint64_t misses;
    uint64_t prefetch_hits;
    uint64_t evictions;
    uint64_t cached_pages;
    uint64_t capacity_pages;
} streamdb_cache_stats;
STREAMDB_API int streamdb_get_cache_stats(streamdb *db, streamdb_cache_stats *out);

/* Full integrity walk: page CRCs, tree order, chunk CRCs, free-space
 * accounting (every page owned once).  STREAMDB_ERR_CORRUPT with the first
 * problem in errmsg. */
STREAMDB_API int streamdb_check(streamdb *db);
/* Checkpoints, then gives free pages at the end of the file back to the OS. */
STREAMDB_API int streamdb_compact(streamdb *db);

/* Re-reads every document whose path starts with prefix (all versions) and
 * checks each chunk and the whole content against their CRC32C, whatever
 * quick mode says.  *checked_out (may be NULL) counts the versions read.
 * STREAMDB_ERR_CORRUPT names the first damaged document in errmsg. */
STREAMDB_API int streamdb_verify(streamdb *db, const char *prefix, size_t prefix_len,
                                 uint64_t *checked_out);

/* A named statistic: "logical_bytes" and "stored_bytes" (content, all
 * versions), "prefetch_hits", "async_pending", "path_cache_hits" and
 * "path_cache_misses" (lookups of the path cache), and every field of
 * streamdb_stats and streamdb_cache_stats by its name.  STREAMDB_ERR_INVALID
 * for an unknown name. */
STREAMDB_API int streamdb_get_stat(streamdb *db, const char *name, uint64_t *value);

/* Build features: STREAMDB_FEATURE_* bits. */
#define STREAMDB_FEATURE_COMPRESSION 1
#define STREAMDB_FEATURE_ENCRYPTION  2
STREAMDB_API int streamdb_features(void);

/* ---- Asynchronous reads ------------------------------------------------------ */

/*
 * A small pool of worker threads owned by the handle (config.async_workers,
 * started at the first request) serves whole-document reads.  Two forms:
 *  - a callback, called on a worker thread with the result; data (free it
 *    with streamdb_free) is NULL unless rc == 0;
 *  - a future, for callers that poll (game loops) or cannot take callbacks
 *    (FFI): ready / wait / result.
 * A request sees the database as of its submission.  streamdb_close waits
 * for requests in flight and cancels queued ones (their callbacks run with
 * STREAMDB_ERR_CANCELLED); requests made after close fail with
 * STREAMDB_ERR_CLOSED.  Free every future with streamdb_future_free (which
 * cancels it if it is still pending), before or after closing the handle.
 */
typedef struct streamdb_future streamdb_future;
typedef void (*streamdb_get_cb)(void *ctx, int rc, void *data, size_t len);

STREAMDB_API int streamdb_get_async(streamdb *db, const char *path, size_t path_len,
                                    int64_t version, streamdb_get_cb cb, void *ctx);
STREAMDB_API int streamdb_get_future(streamdb *db, const char *path, size_t path_len,
                                     int64_t version, streamdb_future **out);
/* 1 when the result is ready (or the request was cancelled), else 0. */
STREAMDB_API int streamdb_future_ready(streamdb_future *f);
/* Waits up to timeout_ms (< 0: forever).  0 when ready, STREAMDB_ERR_BUSY on timeout. */
STREAMDB_API int streamdb_future_wait(streamdb_future *f, int64_t timeout_ms);
/* The request's result code; on 0, hands over the data (free with
 * streamdb_free; a second call gets STREAMDB_ERR_INVALID).  The message of a
 * failure is in *errmsg_out when non-NULL (valid until the future is freed).
 * STREAMDB_ERR_BUSY if not ready yet. */
STREAMDB_API int streamdb_future_result(streamdb_future *f, void **data_out, size_t *len_out,
                                        const char **errmsg_out);
/* Cancels a pending request: 0 if it will not run (result CANCELLED),
 * STREAMDB_ERR_BUSY if it is already running or done. */
STREAMDB_API int streamdb_future_cancel(streamdb_future *f);
STREAMDB_API void streamdb_future_free(streamdb_future *f);

/* ---- I/O backends (VFS) ------------------------------------------------------ */

/*
 * Every file operation goes through a VFS.  Functions return 0 or a positive
 * errno value.  read and write may transfer fewer bytes than asked (*done <
 * n); the core loops.  EINTR is retried by the core.  A read past the end of
 * the file returns 0 with *done short.  map may be NULL (no mmap).
 */
#define STREAMDB_VFS_CREATE   1
#define STREAMDB_VFS_READONLY 2
struct streamdb_vfs {
    int version;   /* 1, or 2 with writeback */
    void *ctx;     /* the backend's own state */
    int (*open)(const streamdb_vfs *vfs, const char *name, int flags, unsigned mode,
                streamdb_file **out);
    int (*close)(streamdb_file *f);
    int (*read)(streamdb_file *f, void *buf, size_t n, uint64_t off, size_t *done);
    int (*write)(streamdb_file *f, const void *buf, size_t n, uint64_t off, size_t *done);
    int (*sync)(streamdb_file *f);
    int (*truncate)(streamdb_file *f, uint64_t size);
    int (*size)(streamdb_file *f, uint64_t *size);
    int (*lock)(streamdb_file *f, int exclusive);  /* non-blocking; EWOULDBLOCK if held */
    int (*map)(streamdb_file *f, uint64_t len, const void **addr);
    int (*unmap)(streamdb_file *f, const void *addr, uint64_t len);
    int (*exists)(const streamdb_vfs *vfs, const char *name, int *exists);
    int (*remove)(const streamdb_vfs *vfs, const char *name);
    int (*sync_dir)(const streamdb_vfs *vfs, const char *name); /* directory holding name */
    /* version 2: start writing [off, off+len) to the device and return
     * without waiting.  A hint the core gives while it writes a large
     * document, so that the commit's sync has less left to do; it never
     * replaces sync, and its errors are ignored (sync reports them).  May be
     * NULL.  Backends of version 1 do not have this field. */
    int (*writeback)(streamdb_file *f, uint64_t off, uint64_t len);
};

/* The POSIX file backend (pread/pwrite/fdatasync/flock/mmap). */
STREAMDB_API const streamdb_vfs *streamdb_vfs_file(void);
/* An in-memory backend: files live as long as the vfs object. */
STREAMDB_API streamdb_vfs *streamdb_vfs_memory_new(void);
STREAMDB_API void streamdb_vfs_memory_free(streamdb_vfs *vfs);

#ifdef __cplusplus
}
#endif
#endif /* STREAMDB_H */
