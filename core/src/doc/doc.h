/*
 * doc.h -- document records, versions and chunk maps (doc/doc.c).
 */
#ifndef SDB_DOC_H
#define SDB_DOC_H

#include "sdb.h"

#define SDB_V_INLINE 1u
#define SDB_V_MAPPED 2u

/* A decoded version record (docs/format.md, "Version records"). */
typedef struct sdb_vrec {
    uint8_t id[16];
    uint64_t version, txnid, size, stored, created, modified;
    uint32_t crc, flags, nchunks;
    pgno_t map_root;
    uint8_t inl[SDB_VREC_HDR + 2048]; /* inline data or inline chunk entries */
    size_t inl_len;
    int placed;        /* inline content copied to the caller's buffer, not to inl */
} sdb_vrec;

typedef struct sdb_chunk {
    pgno_t pgno;
    uint32_t len;      /* stored bytes */
    uint32_t crc;
    uint32_t flags;    /* SDB_CHUNK_SNAPPY */
    uint8_t nonce[12]; /* encrypted databases */
    uint8_t tag[16];
} sdb_chunk;

/* key builders */
SDB_HIDDEN size_t sdb_key_version(uint8_t *key, const uint8_t *id, uint64_t version);
SDB_HIDDEN size_t sdb_key_pathref(uint8_t *key, const uint8_t *id, const char *path, size_t len);

SDB_HIDDEN int sdb_doc_by_path(sdb_env *env, const sdb_view *v, const char *path, size_t len,
                               uint8_t *id);
/* version: 0 current, < 0 back from current, > 0 exact. */
SDB_HIDDEN int sdb_doc_version(sdb_env *env, const sdb_view *v, const uint8_t *id,
                               int64_t version, sdb_vrec *rec);
/* The same; inline content of at most cap bytes goes straight from the page
 * to dst (rec->placed = 1, rec->inl left empty), saving a copy. */
SDB_HIDDEN int sdb_doc_version_to(sdb_env *env, const sdb_view *v, const uint8_t *id,
                                  int64_t version, sdb_vrec *rec, uint8_t *dst, size_t cap);
/* The current version of the document at path: sdb_doc_by_path, then
 * sdb_doc_version_to, where the path cache can skip both trees. */
SDB_HIDDEN int sdb_doc_current_to(sdb_env *env, const sdb_view *v, const char *path, size_t len,
                                  sdb_vrec *rec, uint8_t *dst, size_t cap);
SDB_HIDDEN int sdb_doc_versions(sdb_env *env, const sdb_view *v, const uint8_t *id,
                                uint64_t **out, size_t *count);
SDB_HIDDEN int sdb_doc_chunk(sdb_env *env, const sdb_view *v, const sdb_vrec *rec, uint32_t i,
                             sdb_chunk *c);
/* Reads chunk i's content (decrypted, decompressed) into buf (64 KiB) or,
 * with SDB_RC_MAP in verify, may point *ptr into the map instead (point
 * reads; streams keep mapped pages out of the resident set).  verify: 0 no
 * CRC check, 1 unless quick mode, 2 always.  GCM tags are always checked. */
#define SDB_RC_MAP 4
SDB_HIDDEN int sdb_doc_read_chunk(sdb_env *env, const sdb_view *v, const sdb_vrec *rec,
                                  uint32_t i, uint8_t *buf, const uint8_t **ptr, uint32_t *len,
                                  int verify);
/* The same, with the CRC32C of the chunk's content in *plain_crc: the
 * verified chunk CRC for raw chunks, computed for transformed ones. */
SDB_HIDDEN int sdb_doc_read_chunk_crc(sdb_env *env, const sdb_view *v, const sdb_vrec *rec,
                                      uint32_t i, uint8_t *buf, const uint8_t **ptr, uint32_t *len,
                                      int verify, uint32_t *plain_crc);
SDB_HIDDEN int sdb_doc_read(sdb_env *env, const sdb_view *v, const sdb_vrec *rec, uint64_t off,
                            uint8_t *buf, size_t len, size_t *nread, int verify);

/* The streaming writer's state (lives inside streamdb_writer). */
typedef struct sdb_docw {
    uint64_t size;
    uint32_t crc;          /* content CRC of the bytes stored in chunks so far */
    uint64_t stored;
    uint8_t *buf;          /* the first chunks, kept until the route is known */
    size_t buflen, bufcap;
    int borrowed;          /* buf is the env's scratch (env->wbuf): never freed here */
    int direct;
    sdb_chunk *chunks;
    uint32_t nchunks, capchunks;
    uint64_t max_size;
    int compress;          /* snappy each chunk (raw when it does not shrink) */
    size_t size_hint;      /* the whole size when known (0: unknown): buf is sized to it */
} sdb_docw;

SDB_HIDDEN int sdb_docw_write(sdb_env *env, sdb_wtxn *w, sdb_docw *d, const uint8_t *data, size_t len);
/* Stores the new version under path (new id when unbound). */
SDB_HIDDEN int sdb_docw_commit(sdb_env *env, sdb_wtxn *w, sdb_docw *d, const char *path,
                               size_t plen, uint8_t *id_out);
SDB_HIDDEN void sdb_docw_free(sdb_docw *d);

SDB_HIDDEN int sdb_doc_bind(sdb_env *env, sdb_wtxn *w, const uint8_t *id, const char *path, size_t plen);
SDB_HIDDEN int sdb_doc_unbind(sdb_env *env, sdb_wtxn *w, const uint8_t *id, const char *path, size_t plen);
SDB_HIDDEN int sdb_doc_delete_id(sdb_env *env, sdb_wtxn *w, const uint8_t *id);
SDB_HIDDEN int sdb_doc_paths(sdb_env *env, const sdb_view *v, const uint8_t *id, char ***out,
                             size_t *count);
SDB_HIDDEN int sdb_doc_check(sdb_env *env, const sdb_view *v);
SDB_HIDDEN int sdb_doc_verify(sdb_env *env, const sdb_view *v, const char *prefix, size_t plen,
                              uint64_t *checked);

#endif
