/*
 * doc.c -- documents: version records, chunk maps, writing and reading.
 *
 * The document tree holds two kinds of keys per document id:
 *   id 'V' ~version (8 bytes, big-endian, inverted)  -> version record
 *   id 'P' path                                      -> (empty)
 * Inverting the version number puts the newest version first, so "the
 * current version" is one seek.  The 'P' keys list the paths bound to the
 * document; the path tree maps each path back to the id.
 *
 * A version's content is inline in its record when it is at most
 * inline_max bytes (P/4, at most 2 KiB).  Larger content is cut into 64 KiB
 * chunks, each stored in a contiguous run of raw pages and described by a
 * 16-byte entry (page, stored length, CRC32C, flags).  Up to four entries
 * live in the record; more go to map pages (a root of leaf-page numbers, and
 * leaves of entries), so reaching chunk i costs two page lookups at most.
 *
 * Invariants:
 *  [D1] a version record's content CRC is the CRC32C of the whole content;
 *  [D2] each chunk's CRC covers exactly its stored bytes;
 *  [D3] every document has at least one path and one version;
 *  [D4] at most versions_to_keep versions of a document exist.
 */
#include "doc/doc.h"
#include "codec/codec.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define MAP_HDR (SDB_PAGE_HDR + 8)

size_t sdb_key_version(uint8_t *key, const uint8_t *id, uint64_t version)
{
    memcpy(key, id, 16);
    key[16] = 'V';
    uint64_t inv = ~version;
    for (int i = 0; i < 8; i++)
        key[17 + i] = (uint8_t)(inv >> (56 - 8 * i));
    return 25;
}

size_t sdb_key_pathref(uint8_t *key, const uint8_t *id, const char *path, size_t len)
{
    memcpy(key, id, 16);
    key[16] = 'P';
    memcpy(key + 17, path, len);
    return 17 + len;
}

static uint32_t per_leaf(const sdb_env *env) { return (env->psize - MAP_HDR) / env->centry; }
static uint32_t per_root(const sdb_env *env) { return (env->psize - MAP_HDR) / 4; }

/* dst: where inline content of at most cap bytes goes instead of r->inl
 * (NULL: always r->inl). */
static int vrec_decode_to(sdb_env *env, const uint8_t *id, const uint8_t *v, size_t vl,
                          sdb_vrec *r, uint8_t *dst, size_t cap)
{
    if (vl < SDB_VREC_HDR)
        return sdb_err(STREAMDB_ERR_CORRUPT, "version record of %zu bytes", vl);
    memcpy(r->id, id, 16);
    r->version = rd64(v);
    r->txnid = rd64(v + 8);
    r->size = rd64(v + 16);
    r->stored = rd64(v + 24);
    r->crc = rd32(v + 32);
    r->flags = rd32(v + 36);
    r->created = rd64(v + 40);
    r->modified = rd64(v + 48);
    r->nchunks = rd32(v + 56);
    r->map_root = rd32(v + 60);
    r->inl_len = vl - SDB_VREC_HDR;
    r->placed = 0;
    if (r->inl_len > sizeof r->inl)
        return sdb_err(STREAMDB_ERR_CORRUPT, "version record too long");
    uint64_t want_chunks = (r->size + SDB_CHUNK - 1) / SDB_CHUNK;
    if (r->flags & SDB_V_INLINE) {
        if (r->inl_len != r->size)
            return sdb_err(STREAMDB_ERR_CORRUPT, "inline record length mismatch");
        if (dst && r->inl_len <= cap) {
            if (r->inl_len)
                memcpy(dst, v + SDB_VREC_HDR, r->inl_len);
            r->inl_len = 0;
            r->placed = 1;
            return 0;
        }
        memcpy(r->inl, v + SDB_VREC_HDR, r->inl_len);
        return 0;
    }
    memcpy(r->inl, v + SDB_VREC_HDR, r->inl_len);
    if (r->nchunks != want_chunks ||
        ((r->flags & SDB_V_MAPPED) ? r->inl_len != 0 || !r->map_root
                                   : r->inl_len != (size_t)r->nchunks * env->centry))
        return sdb_err(STREAMDB_ERR_CORRUPT, "version record chunk count mismatch");
    return 0;
}

static int vrec_decode(sdb_env *env, const uint8_t *id, const uint8_t *v, size_t vl, sdb_vrec *r)
{
    return vrec_decode_to(env, id, v, vl, r, NULL, 0);
}

static size_t vrec_encode(const sdb_vrec *r, uint8_t *v)
{
    wr64(v, r->version);
    wr64(v + 8, r->txnid);
    wr64(v + 16, r->size);
    wr64(v + 24, r->stored);
    wr32(v + 32, r->crc);
    wr32(v + 36, r->flags);
    wr64(v + 40, r->created);
    wr64(v + 48, r->modified);
    wr32(v + 56, r->nchunks);
    wr32(v + 60, r->map_root);
    memcpy(v + SDB_VREC_HDR, r->inl, r->inl_len);
    return SDB_VREC_HDR + r->inl_len;
}

/* The path tree's id for path (no cache). */
static int tree_id(sdb_env *env, const sdb_view *v, const char *path, size_t len, uint8_t *id)
{
    size_t vl = 0;
    int rc = sdb_bt_get(env, v, v->meta.path_root, (const uint8_t *)path, len, id, 16, &vl);
    if (rc == STREAMDB_ERR_NOT_FOUND)
        return sdb_err(rc, "no document at '%.*s'", (int)(len > 200 ? 200 : len), path);
    if (!rc && vl != 16)
        return sdb_err(STREAMDB_ERR_CORRUPT, "path entry with a %zu-byte id", vl);
    return rc;
}

int sdb_doc_by_path(sdb_env *env, const sdb_view *v, const char *path, size_t len, uint8_t *id)
{
    if (!v->w && sdb_pcache_get(env, v, path, len, id, NULL))
        return 0;
    int rc = tree_id(env, v, path, len, id);
    if (!rc && !v->w)
        sdb_pcache_put(env, v, path, len, id, NULL);
    return rc;
}

int sdb_doc_version(sdb_env *env, const sdb_view *v, const uint8_t *id, int64_t version,
                    sdb_vrec *rec)
{
    return sdb_doc_version_to(env, v, id, version, rec, NULL, 0);
}

/* sdb_doc_version_to; *place (may be NULL) learns where a current version
 * (version 0) was found. */
static int version_seek(sdb_env *env, const sdb_view *v, const uint8_t *id, int64_t version,
                        sdb_vrec *rec, uint8_t *dst, size_t cap, sdb_place *place)
{
    uint8_t key[32];
    sdb_cursor_bt c;
    size_t kl = version > 0 ? sdb_key_version(key, id, (uint64_t)version) : 17;
    if (version <= 0) {
        memcpy(key, id, 16);
        key[16] = 'V';
    }
    int rc = sdb_bt_seek(&c, env, v, v->meta.doc_root, key, kl);
    int64_t skip = version < 0 ? -version : 0;
    while (rc == 0) {
        if (c.klen != 25 || memcmp(c.key, id, 16) || c.key[16] != 'V') {
            rc = STREAMDB_DONE;
            break;
        }
        if (skip-- == 0) {
            /* the caller's buffer is written only for the version asked for */
            int want = version <= 0 || (c.vlen >= 8 && rd64(c.val) == (uint64_t)version);
            rc = vrec_decode_to(env, id, c.val, c.vlen, rec, want ? dst : NULL, cap);
            if (!rc && version > 0 && rec->version != (uint64_t)version)
                rc = STREAMDB_DONE;
            if (!rc && place && version == 0) {
                place->pgno = c.stack[c.depth - 1].pgno;
                place->idx = (uint32_t)c.stack[c.depth - 1].idx;
            }
            sdb_bt_close(&c);
            if (rc == STREAMDB_DONE)
                break;
            return rc;
        }
        rc = sdb_bt_next(&c);
    }
    sdb_bt_close(&c);
    if (rc == STREAMDB_DONE)
        return sdb_err(STREAMDB_ERR_NOT_FOUND, "no such version (%lld) of the document",
                       (long long)version);
    return rc;
}

int sdb_doc_version_to(sdb_env *env, const sdb_view *v, const uint8_t *id, int64_t version,
                       sdb_vrec *rec, uint8_t *dst, size_t cap)
{
    return version_seek(env, v, id, version, rec, dst, cap, NULL);
}

/* A current version read from the place the path cache gave: 0, or
 * STREAMDB_ERR_NOT_FOUND when the place is not that record (the caller then
 * takes the trees), or an error of the page read. */
static int version_at(sdb_env *env, const sdb_view *v, const uint8_t *id, const sdb_place *pl,
                      sdb_vrec *rec, uint8_t *dst, size_t cap)
{
    uint8_t head[17];
    memcpy(head, id, 16);
    head[16] = 'V';
    sdb_page pg;
    const uint8_t *val;
    size_t vl;
    int rc = sdb_bt_entry_at(env, v, pl->pgno, pl->idx, head, 17, 25, &pg, &val, &vl);
    if (rc)
        return rc;
    rc = vrec_decode_to(env, id, val, vl, rec, dst, cap);
    sdb_page_put(env, &pg);
    return rc;
}

int sdb_doc_current_to(sdb_env *env, const sdb_view *v, const char *path, size_t len,
                       sdb_vrec *rec, uint8_t *dst, size_t cap)
{
    uint8_t id[16];
    sdb_place pl;
    int rc, hit = !v->w && sdb_pcache_get(env, v, path, len, id, &pl);
    if (hit && pl.pgno) {
        /* the document tree's descent skipped; anything unexpected at the
         * place (a no-wait read that would block aside) goes the long way,
         * which has the last word */
        rc = version_at(env, v, id, &pl, rec, dst, cap);
        if (rc == 0 || rc == STREAMDB_ERR_WOULDBLOCK)
            return rc;
        sdb_err_clear();
    }
    if (!hit && (rc = tree_id(env, v, path, len, id)) != 0)
        return rc;
    pl.pgno = 0;
    rc = version_seek(env, v, id, 0, rec, dst, cap, &pl);
    if (!rc && !v->w)
        sdb_pcache_put(env, v, path, len, id, &pl);
    return rc;
}

int sdb_doc_versions(sdb_env *env, const sdb_view *v, const uint8_t *id, uint64_t **out,
                     size_t *count)
{
    uint8_t key[17];
    memcpy(key, id, 16);
    key[16] = 'V';
    sdb_cursor_bt c;
    uint64_t *arr = NULL;
    size_t n = 0, cap = 0;
    int rc = sdb_bt_seek(&c, env, v, v->meta.doc_root, key, 17);
    while (rc == 0 && c.klen == 25 && !memcmp(c.key, key, 17)) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            uint64_t *na = sdb_realloc(arr, cap * sizeof *na);
            if (!na) {
                rc = sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
                break;
            }
            arr = na;
        }
        arr[n++] = c.vlen >= 8 ? rd64(c.val) : 0;
        rc = sdb_bt_next(&c);
    }
    sdb_bt_close(&c);
    if (rc < 0) {
        sdb_free(arr);
        return rc;
    }
    if (!n) {
        sdb_free(arr);
        return sdb_err(STREAMDB_ERR_NOT_FOUND, "document has no versions");
    }
    /* oldest first */
    for (size_t i = 0; i < n / 2; i++) {
        uint64_t t = arr[i];
        arr[i] = arr[n - 1 - i];
        arr[n - 1 - i] = t;
    }
    *out = arr;
    *count = n;
    return 0;
}

static void chunk_decode(const sdb_env *env, const uint8_t *e, sdb_chunk *c)
{
    c->pgno = rd32(e);
    c->len = rd32(e + 4);
    c->crc = rd32(e + 8);
    c->flags = rd32(e + 12);
    if (env->centry == SDB_CHUNK_ENTRY_CRYPT) {
        memcpy(c->nonce, e + 16, 12);
        memcpy(c->tag, e + 28, 16);
    }
}

static void chunk_encode(const sdb_env *env, uint8_t *e, const sdb_chunk *c)
{
    memset(e, 0, env->centry);
    wr32(e, c->pgno);
    wr32(e + 4, c->len);
    wr32(e + 8, c->crc);
    wr32(e + 12, c->flags);
    if (env->centry == SDB_CHUNK_ENTRY_CRYPT) {
        memcpy(e + 16, c->nonce, 12);
        memcpy(e + 28, c->tag, 16);
    }
}

/* Additional data of a chunk's encryption: where it lives and what it is. */
static void chunk_aad(uint8_t *aad, const sdb_chunk *c, uint32_t index)
{
    wr32(aad, c->pgno);
    wr32(aad + 4, index);
    wr32(aad + 8, c->len);
    wr32(aad + 12, c->flags);
}

static uint32_t chunk_logical(const sdb_vrec *rec, uint32_t i)
{
    return i + 1 == rec->nchunks ? (uint32_t)(rec->size - (uint64_t)i * SDB_CHUNK) : SDB_CHUNK;
}

int sdb_doc_chunk(sdb_env *env, const sdb_view *v, const sdb_vrec *rec, uint32_t i, sdb_chunk *c)
{
    if (i >= rec->nchunks)
        return sdb_err(STREAMDB_ERR_INTERNAL, "chunk %u of %u", i, rec->nchunks);
    if (!(rec->flags & SDB_V_MAPPED)) {
        chunk_decode(env, rec->inl + (size_t)i * env->centry, c);
    } else {
        uint32_t pl = per_leaf(env), li = i / pl;
        sdb_page root, leaf;
        int rc = sdb_page_get(env, v, rec->map_root, SDB_PT_MAPROOT, &root);
        if (rc)
            return rc;
        if (li >= rd32(root.data + SDB_PAGE_HDR) || li >= per_root(env)) {
            sdb_page_put(env, &root);
            return sdb_err(STREAMDB_ERR_CORRUPT, "chunk map %u too short", rec->map_root);
        }
        pgno_t lp = rd32(root.data + MAP_HDR + 4 * (size_t)li);
        sdb_page_put(env, &root);
        rc = sdb_page_get(env, v, lp, SDB_PT_MAPLEAF, &leaf);
        if (rc)
            return rc;
        uint32_t k = i % pl;
        if (k >= rd32(leaf.data + SDB_PAGE_HDR)) {
            sdb_page_put(env, &leaf);
            return sdb_err(STREAMDB_ERR_CORRUPT, "chunk map leaf %u too short", lp);
        }
        chunk_decode(env, leaf.data + MAP_HDR + (size_t)k * env->centry, c);
        sdb_page_put(env, &leaf);
    }
    uint32_t want = chunk_logical(rec, i);
    if ((c->flags & ~SDB_CHUNK_SNAPPY) || ((c->flags & SDB_CHUNK_SNAPPY) ? c->len > sdb_compress_bound(want) || !c->len : c->len != want))
        return sdb_err(STREAMDB_ERR_CORRUPT, "chunk %u: stored length %u, flags %#x, for %u "
                       "bytes", i, c->len, c->flags, want);
    return 0;
}

int sdb_doc_read_chunk(sdb_env *env, const sdb_view *v, const sdb_vrec *rec, uint32_t i,
                       uint8_t *buf, const uint8_t **ptr, uint32_t *len, int verify)
{
    return sdb_doc_read_chunk_crc(env, v, rec, i, buf, ptr, len, verify, NULL);
}

int sdb_doc_read_chunk_crc(sdb_env *env, const sdb_view *v, const sdb_vrec *rec, uint32_t i,
                           uint8_t *buf, const uint8_t **ptr, uint32_t *len, int verify,
                           uint32_t *plain_crc)
{
    sdb_chunk c;
    int rc = sdb_doc_chunk(env, v, rec, i, &c);
    if (rc)
        return rc;
    int map_ok = verify & SDB_RC_MAP;
    verify &= ~SDB_RC_MAP;
    int check = verify == 2 || (verify && !atomic_load_explicit(&env->quick, memory_order_relaxed));
    uint32_t logical = chunk_logical(rec, i);
    if (!(c.flags & SDB_CHUNK_SNAPPY) && !env->crypt) {
        const uint8_t *m = NULL;
        rc = sdb_read_chunk(env, v, c.pgno, c.len, buf, map_ok ? &m : NULL);
        *ptr = m ? m : buf;
        if (!rc && check && sdb_crc32c(0, *ptr, c.len) != c.crc)
            rc = sdb_err(STREAMDB_ERR_CORRUPT, "chunk %u of the document (pages %u..%u): "
                         "checksum mismatch", i, c.pgno, c.pgno + (c.len - 1) / env->psize);
        if (plain_crc)
            *plain_crc = c.crc;   /* raw: the stored bytes are the content */
        *len = c.len;
        return rc;
    }
    /* stored bytes -> CRC -> decrypt -> decompress */
    uint8_t *tmp = sdb_malloc(c.len);
    if (!tmp)
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    rc = sdb_read_chunk(env, v, c.pgno, c.len, tmp, NULL);
    if (!rc && check && sdb_crc32c(0, tmp, c.len) != c.crc)
        rc = sdb_err(STREAMDB_ERR_CORRUPT, "chunk %u of the document (pages %u..%u): "
                     "checksum mismatch", i, c.pgno, c.pgno + (c.len - 1) / env->psize);
    if (!rc && env->crypt) {
        uint8_t aad[16];
        chunk_aad(aad, &c, i);
        if (sdb_gcm_open(env->key, aad, sizeof aad, tmp, c.len, c.nonce, c.tag))
            rc = sdb_err(STREAMDB_ERR_CRYPTO, "chunk %u of the document (page %u) failed "
                         "authentication", i, c.pgno);
    }
    if (!rc) {
        if (c.flags & SDB_CHUNK_SNAPPY)
            rc = sdb_uncompress(tmp, c.len, buf, logical);
        else
            memcpy(buf, tmp, logical);
    }
    if (!rc && plain_crc)
        *plain_crc = sdb_crc32c(0, buf, logical);
    sdb_free(tmp);
    *ptr = buf;
    *len = logical;
    return rc;
}

int sdb_doc_read(sdb_env *env, const sdb_view *v, const sdb_vrec *rec, uint64_t off, uint8_t *buf,
                 size_t len, size_t *nread, int verify)
{
    *nread = 0;
    if (off >= rec->size)
        return 0;
    if (len > rec->size - off)
        len = (size_t)(rec->size - off);
    if (rec->flags & SDB_V_INLINE) {
        memcpy(buf, rec->inl + off, len);
        *nread = len;
        return 0;
    }
    uint8_t *tmp = NULL;
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        uint32_t ci = (uint32_t)((off + done) / SDB_CHUNK);
        uint32_t co = (uint32_t)((off + done) % SDB_CHUNK);
        size_t want = len - done;
        const uint8_t *ptr;
        uint32_t clen;
        uint32_t full = ci + 1 == rec->nchunks ? (uint32_t)(rec->size - (uint64_t)ci * SDB_CHUNK) : SDB_CHUNK;
        if (co == 0 && want >= full) {
            /* whole chunk straight into the caller's buffer */
            rc = sdb_doc_read_chunk(env, v, rec, ci, buf + done, &ptr, &clen, verify);
            if (rc)
                break;
            if (ptr != buf + done)
                memcpy(buf + done, ptr, clen);
            done += clen;
            continue;
        }
        if (!tmp && !(tmp = sdb_malloc(SDB_CHUNK))) {
            rc = sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
            break;
        }
        rc = sdb_doc_read_chunk(env, v, rec, ci, tmp, &ptr, &clen, verify);
        if (rc)
            break;
        size_t n = clen - co < want ? clen - co : want;
        memcpy(buf + done, ptr + co, n);
        done += n;
    }
    sdb_free(tmp);
    *nread = done;
    return rc;
}

/* ---- writing ---- */

static int docw_add_chunk(sdb_docw *d, const sdb_chunk *c)
{
    if (d->nchunks == d->capchunks) {
        uint32_t nc = d->capchunks ? d->capchunks * 2 : 16;
        sdb_chunk *n = sdb_realloc(d->chunks, nc * sizeof *n);
        if (!n)
            return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
        d->chunks = n;
        d->capchunks = nc;
    }
    d->chunks[d->nchunks++] = *c;
    return 0;
}

/* Writes one chunk of content into the main file (direct) or through the
 * log: compressed when that shrinks it, then encrypted, then checksummed. */
static int store_chunk(sdb_env *env, sdb_wtxn *w, sdb_docw *d, const uint8_t *data, uint32_t len,
                       int direct)
{
    sdb_chunk c;
    memset(&c, 0, sizeof c);
    c.len = len;
    uint8_t *tmp = NULL;
    const uint8_t *src = data;
    int rc = 0;
    if (d->compress || env->crypt) {
        tmp = sdb_malloc(sdb_compress_bound(len) > len ? sdb_compress_bound(len) : len);
        if (!tmp)
            return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
        size_t clen = len;
        if (d->compress && (rc = sdb_compress(data, len, tmp, &clen)) != 0) {
            sdb_free(tmp);
            return rc;
        }
        if (d->compress && clen < len) {
            c.len = (uint32_t)clen;
            c.flags = SDB_CHUNK_SNAPPY;
            w->view.meta.features |= SDB_FEAT_SNAPPY;
        } else {
            memcpy(tmp, data, len);   /* raw: random data does not shrink */
        }
        src = tmp;
    }
    uint32_t np = (c.len + env->psize - 1) / env->psize;
    rc = sdb_alloc_run(env, w, np, direct, &c.pgno);
    if (!rc && env->crypt) {
        uint8_t aad[16];
        chunk_aad(aad, &c, d->nchunks);
        rc = sdb_gcm_seal(env->key, aad, sizeof aad, tmp, c.len, c.nonce, c.tag);
    }
    if (rc) {
        sdb_free(tmp);
        return rc;
    }
    c.crc = sdb_crc32c(0, src, c.len);
    /* the content CRC, chunk by chunk in document order: a raw full chunk's
     * own CRC is the CRC of those very bytes, so one combine (a table-free
     * 32x32 product for 64 KiB) stands for a second pass over them */
    if (src == data && len == SDB_CHUNK)
        d->crc = sdb_crc32c_combine(d->crc, c.crc, len);
    else
        d->crc = sdb_crc32c(d->crc, data, len);
    if (direct) {
        /* whole pages, so the file never ends mid-page */
        size_t full = (size_t)np * env->psize;
        if (full != c.len) {
            uint8_t *pad = sdb_calloc(1, full);
            if (!pad) {
                sdb_free(tmp);
                return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
            }
            memcpy(pad, src, c.len);
            rc = sdb_write_direct(env, w, c.pgno, pad, full);
            sdb_free(pad);
        } else {
            rc = sdb_write_direct(env, w, c.pgno, src, c.len);
        }
    } else {
        rc = sdb_put_raw(env, w, c.pgno, src, c.len);
        w->wal_data_bytes += c.len;
    }
    sdb_free(tmp);
    if (!rc)
        rc = docw_add_chunk(d, &c);
    if (!rc)
        d->stored += c.len;
    return rc;
}

int sdb_docw_write(sdb_env *env, sdb_wtxn *w, sdb_docw *d, const uint8_t *data, size_t len)
{
    if (d->size + len > d->max_size || d->size + len < d->size)
        return sdb_err(STREAMDB_ERR_TOO_LARGE, "document exceeds max_document_size (%llu bytes)",
                       (unsigned long long)d->max_size);
    const size_t keep = (size_t)SDB_DIRECT_MIN_CHUNKS * SDB_CHUNK, full = keep + SDB_CHUNK;
    /* every CRC is taken over the core's own copy, never the caller's
     * buffer, which another thread may change between two reads; the
     * content CRC is taken as the chunks are stored (store_chunk), or at
     * the commit of an inline document */
    if (!d->direct) {
        /* room for what this call adds to the buffer: a document of known
         * size gets a buffer of that size, not the full 320 KiB */
        size_t want = d->buflen + (len < full - d->buflen ? len : full - d->buflen);
        if (want > d->bufcap) {
            size_t nc = d->bufcap ? d->bufcap * 2
                                  : (d->size_hint && d->size_hint < full ? d->size_hint : full);
            nc = nc < want ? want : nc > full ? full : nc;
            uint8_t *nb = d->borrowed ? sdb_malloc(nc) : sdb_realloc(d->buf, nc);
            if (!nb)
                return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
            if (d->borrowed && d->buflen)
                memcpy(nb, d->buf, d->buflen);
            d->borrowed = 0;
            d->buf = nb;
            d->bufcap = nc;
        }
    }
    d->size += len;
    while (len) {
        if (!d->direct) {
            size_t n = full - d->buflen < len ? full - d->buflen : len;
            memcpy(d->buf + d->buflen, data, n);
            d->buflen += n;
            data += n;
            len -= n;
            if (d->buflen == full) {
                /* over four chunks: this document bypasses the log [F10] */
                d->direct = 1;
                for (size_t off = 0; off < keep; off += SDB_CHUNK) {
                    int rc = store_chunk(env, w, d, d->buf + off, SDB_CHUNK, 1);
                    if (rc)
                        return rc;
                }
                memmove(d->buf, d->buf + keep, d->buflen - keep);
                d->buflen -= keep;
            }
            continue;
        }
        size_t n = SDB_CHUNK - d->buflen < len ? SDB_CHUNK - d->buflen : len;
        memcpy(d->buf + d->buflen, data, n);
        d->buflen += n;
        data += n;
        len -= n;
        if (d->buflen == SDB_CHUNK) {
            int rc = store_chunk(env, w, d, d->buf, SDB_CHUNK, 1);
            if (rc)
                return rc;
            d->buflen = 0;
        }
    }
    return 0;
}

void sdb_docw_free(sdb_docw *d)
{
    if (!d->borrowed)
        sdb_free(d->buf);
    sdb_free(d->chunks);
    memset(d, 0, sizeof *d);
}

/* Frees the storage of one version. */
static int free_version(sdb_env *env, sdb_wtxn *w, const sdb_vrec *r)
{
    w->view.meta.logical_bytes -= r->size;
    w->view.meta.stored_bytes -= r->stored;
    if (r->flags & SDB_V_INLINE)
        return 0;
    for (uint32_t i = 0; i < r->nchunks; i++) {
        sdb_chunk c;
        int rc = sdb_doc_chunk(env, &w->view, r, i, &c);
        if (!rc)
            rc = sdb_page_free(env, w, c.pgno, (c.len + env->psize - 1) / env->psize);
        if (rc)
            return rc;
    }
    if (r->flags & SDB_V_MAPPED) {
        sdb_page root;
        int rc = sdb_page_get(env, &w->view, r->map_root, SDB_PT_MAPROOT, &root);
        if (rc)
            return rc;
        uint32_t n = rd32(root.data + SDB_PAGE_HDR);
        pgno_t *leaves = sdb_malloc((n + 1) * sizeof *leaves);
        if (!leaves || n > per_root(env)) {
            sdb_page_put(env, &root);
            sdb_free(leaves);
            return leaves ? sdb_err(STREAMDB_ERR_CORRUPT, "bad chunk map") : sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
        }
        for (uint32_t i = 0; i < n; i++)
            leaves[i] = rd32(root.data + MAP_HDR + 4 * (size_t)i);
        sdb_page_put(env, &root);
        for (uint32_t i = 0; !rc && i < n; i++)
            rc = sdb_page_free(env, w, leaves[i], 1);
        sdb_free(leaves);
        if (!rc)
            rc = sdb_page_free(env, w, r->map_root, 1);
        return rc;
    }
    return 0;
}

static int write_map(sdb_env *env, sdb_wtxn *w, const sdb_docw *d, pgno_t *root_out)
{
    uint32_t pl = per_leaf(env), nleaves = (d->nchunks + pl - 1) / pl;
    if (nleaves > per_root(env))
        return sdb_err(STREAMDB_ERR_TOO_LARGE, "document needs more chunks than a map holds");
    pgno_t root;
    uint8_t *rd;
    int rc = sdb_page_new(env, w, &root, &rd);
    if (rc)
        return rc;
    rd[4] = SDB_PT_MAPROOT;
    wr32(rd + SDB_PAGE_HDR, nleaves);
    wr32(rd + SDB_PAGE_HDR + 4, d->nchunks);
    for (uint32_t l = 0; l < nleaves; l++) {
        pgno_t lp;
        uint8_t *ld;
        rc = sdb_page_new(env, w, &lp, &ld);
        if (rc)
            return rc;
        /* page_new may have grown the dirty table: find the root again */
        rc = sdb_page_dirty(env, w, root, &rd);
        if (rc)
            return rc;
        wr32(rd + MAP_HDR + 4 * (size_t)l, lp);
        ld[4] = SDB_PT_MAPLEAF;
        uint32_t first = l * pl, n = d->nchunks - first < pl ? d->nchunks - first : pl;
        wr32(ld + SDB_PAGE_HDR, n);
        wr32(ld + SDB_PAGE_HDR + 4, first);
        for (uint32_t k = 0; k < n; k++)
            chunk_encode(env, ld + MAP_HDR + (size_t)k * env->centry, &d->chunks[first + k]);
    }
    *root_out = root;
    return 0;
}

static void new_id(sdb_env *env, sdb_wtxn *w, uint64_t now_ns, uint8_t *id)
{
    /* UUID version 7 (RFC 9562): a 48-bit ms timestamp, a 12-bit sequence
     * number in rand_a (its method 1), then random bits.  Ids only increase:
     * the clock in the meta is the last id's millisecond, and an id in that
     * millisecond takes the next sequence number, or, when this process has
     * not numbered that millisecond (after a reopen) or has used all 4,096,
     * the next millisecond.  So the timestamp is the wall clock's unless more
     * than 4,096 ids a millisecond are made or the clock steps back; when it
     * stepped one millisecond per id, a batch of 100,000 documents took ids
     * 100 seconds ahead.  now_ns is the caller's clock reading: one per
     * document (a clock read was 3% of a batch of 1 KiB inserts when each use
     * took its own). */
    uint64_t ms = now_ns / 1000000, clock = w->view.meta.id_clock;
    uint32_t seq = 0;
    if (ms <= clock) {
        if (env->id_ms == clock && env->id_seq < 0xfff) {
            ms = clock;
            seq = env->id_seq + 1;
        } else {
            ms = clock + 1;
        }
    }
    w->view.meta.id_clock = ms;
    env->id_ms = ms;
    env->id_seq = seq;
    uint8_t rnd[10];
    uint64_t x = now_ns ^ ((uint64_t)(uintptr_t)w << 17) ^ w->txnid * 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 10; i++) {
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdull;
        x ^= x >> 29;
        rnd[i] = (uint8_t)x;
    }
    for (int i = 0; i < 6; i++)
        id[i] = (uint8_t)(ms >> (40 - 8 * i));
    memcpy(id + 6, rnd, 10);
    id[6] = (uint8_t)(0x70 | seq >> 8);
    id[7] = (uint8_t)seq;
    id[8] = (uint8_t)(0x80 | (id[8] & 0x3f));
}

/* Deletes versions beyond versions_to_keep (newest first order). */
static int prune_versions(sdb_env *env, sdb_wtxn *w, const uint8_t *id, uint32_t keep)
{
    uint8_t key[17];
    memcpy(key, id, 16);
    key[16] = 'V';
    sdb_cursor_bt c;
    uint64_t *old = NULL;
    size_t n = 0, cap = 0;
    uint32_t seen = 0;
    int rc = sdb_bt_seek(&c, env, &w->view, w->view.meta.doc_root, key, 17);
    while (rc == 0 && c.klen == 25 && !memcmp(c.key, key, 17)) {
        if (++seen > keep) {
            if (n == cap) {
                cap = cap ? cap * 2 : 4;
                uint64_t *no = sdb_realloc(old, cap * sizeof *no);
                if (!no) {
                    rc = sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
                    break;
                }
                old = no;
            }
            old[n++] = rd64(c.val);
        }
        rc = sdb_bt_next(&c);
    }
    sdb_bt_close(&c);
    if (rc < 0) {
        sdb_free(old);
        return rc;
    }
    rc = 0;
    if (n)
        SDB_KILLPOINT(env, "versions.before_reclaim");
    for (size_t i = 0; !rc && i < n; i++) {
        sdb_vrec r;
        rc = sdb_doc_version(env, &w->view, id, (int64_t)old[i], &r);
        if (!rc)
            rc = free_version(env, w, &r);
        uint8_t k[25];
        if (!rc)
            rc = sdb_bt_del(env, w, &w->view.meta.doc_root, k, sdb_key_version(k, id, old[i]));
    }
    sdb_free(old);
    return rc;
}

int sdb_docw_commit(sdb_env *env, sdb_wtxn *w, sdb_docw *d, const char *path, size_t plen,
                    uint8_t *id_out)
{
    /* the record and its encoding live in the writer's scratch (the caller
     * holds the writer lock), allocated once: a malloc and free of each
     * for every document were 4% of a batch of 1 KiB inserts.  Only the
     * fields are cleared; inl holds inl_len bytes that are always written
     * before use, and zeroing all 2 KiB of it cost more than the rest of a
     * small document's record */
    if (!env->wvrec)
        env->wvrec = sdb_malloc(sizeof *env->wvrec);
    if (!env->wval)
        env->wval = sdb_malloc(sizeof env->wvrec->inl + SDB_VREC_HDR);
    if (!env->wvrec || !env->wval)
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    sdb_vrec *r = env->wvrec;
    uint8_t *val = env->wval;
    memset(r, 0, offsetof(sdb_vrec, inl));
    r->inl_len = 0;
    int rc = 0;
    if (!d->direct && d->size <= env->inline_max) {
        r->flags = SDB_V_INLINE;
        d->crc = d->size ? sdb_crc32c(0, d->buf, d->size) : 0;
        if (d->size)
            memcpy(r->inl, d->buf, d->size);
        r->inl_len = d->size;
        r->stored = d->size;
    } else {
        /* remaining buffered chunks: through the log if the document is small,
         * unless this transaction already logged a lot of chunk data: then
         * one more sync of the main file is cheaper than writing it twice */
        int direct = d->direct || w->wal_data_bytes >= SDB_TXN_DIRECT_BYTES;
        for (size_t off = 0; !rc && off < d->buflen; off += SDB_CHUNK) {
            uint32_t n = d->buflen - off < SDB_CHUNK ? (uint32_t)(d->buflen - off) : SDB_CHUNK;
            rc = store_chunk(env, w, d, d->buf + off, n, direct);
        }
        if (!rc && d->nchunks <= SDB_INLINE_CHUNKS) {
            for (uint32_t i = 0; i < d->nchunks; i++)
                chunk_encode(env, r->inl + (size_t)i * env->centry, &d->chunks[i]);
            r->inl_len = (size_t)d->nchunks * env->centry;
        } else if (!rc) {
            rc = write_map(env, w, d, &r->map_root);
            r->flags = SDB_V_MAPPED;
        }
        r->nchunks = d->nchunks;
        r->stored = d->stored;
    }
    r->size = d->size;
    r->crc = d->crc;
    r->txnid = w->txnid;
    w->view.meta.logical_bytes += r->size;
    w->view.meta.stored_bytes += r->stored;
    r->modified = sdb_now_ns();
    uint8_t id[16];
    int exists = 0;
    if (!rc) {
        /* bind the path to a new id unless it is bound already: one descent
         * of the path tree (a lookup before the put was 5% of a batch of new
         * 1 KiB documents); the id clock moves only for an id that is used */
        uint64_t clock = w->view.meta.id_clock, id_ms = env->id_ms;
        uint32_t id_seq = env->id_seq;
        uint8_t cur[16];
        size_t vl = 0;
        new_id(env, w, r->modified, id);
        rc = sdb_bt_insert(env, w, &w->view.meta.path_root, (const uint8_t *)path, plen, id, 16,
                           cur, sizeof cur, &vl);
        if (rc == STREAMDB_ERR_EXISTS) {
            w->view.meta.id_clock = clock;
            env->id_ms = id_ms;
            env->id_seq = id_seq;
            exists = 1;
            rc = vl == 16 ? 0 : sdb_err(STREAMDB_ERR_CORRUPT, "path entry of %zu bytes", vl);
            memcpy(id, cur, 16);
        }
    }
    if (!rc && exists) {
        sdb_vrec *cur = sdb_malloc(sizeof *cur);
        rc = cur ? sdb_doc_version(env, &w->view, id, 0, cur) : sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
        if (!rc) {
            r->version = cur->version + 1;
            r->created = cur->created;
        }
        sdb_free(cur);
    } else if (!rc) {
        r->version = 1;
        r->created = r->modified;
        uint8_t key[STREAMDB_MAX_PATH + 32];
        w->paths_changed = 1;
        rc = sdb_bt_put(env, w, &w->view.meta.doc_root, key,
                        sdb_key_pathref(key, id, path, plen), (const uint8_t *)"", 0, NULL);
        if (!rc) {
            w->view.meta.doc_count++;
            w->view.meta.path_count++;
        }
    }
    if (!rc) {
        uint8_t key[25];
        size_t vl = vrec_encode(r, val);
        rc = sdb_bt_put(env, w, &w->view.meta.doc_root, key, sdb_key_version(key, id, r->version),
                        val, vl, NULL);
    }
    /* a new document has one version: nothing to prune */
    if (!rc && exists)
        rc = prune_versions(env, w, id, env->cfg.versions_to_keep);
    if (!rc && id_out)
        memcpy(id_out, id, 16);
    return rc;
}

/* ---- paths ---- */

static int has_version(sdb_env *env, const sdb_view *v, const uint8_t *id)
{
    sdb_vrec *r = sdb_malloc(sizeof *r);
    if (!r)
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    int rc = sdb_doc_version(env, v, id, 0, r);
    sdb_free(r);
    if (rc == STREAMDB_ERR_NOT_FOUND)
        return sdb_err(rc, "no document with that id");
    return rc;
}

int sdb_doc_bind(sdb_env *env, sdb_wtxn *w, const uint8_t *id, const char *path, size_t plen)
{
    int rc = has_version(env, &w->view, id);
    if (rc)
        return rc;
    uint8_t cur[16];
    size_t vl;
    rc = sdb_bt_get(env, &w->view, w->view.meta.path_root, (const uint8_t *)path, plen, cur, 16, &vl);
    if (rc == 0)
        return memcmp(cur, id, 16) ? sdb_err(STREAMDB_ERR_EXISTS, "'%.*s' is bound to another "
                                             "document", (int)(plen > 200 ? 200 : plen), path) : 0;
    if (rc != STREAMDB_ERR_NOT_FOUND)
        return rc;
    uint8_t key[STREAMDB_MAX_PATH + 32];
    w->failed = 1;   /* from here on, a failure leaves the transaction half-done */
    w->paths_changed = 1;
        rc = sdb_bt_put(env, w, &w->view.meta.path_root, (const uint8_t *)path, plen, id, 16, NULL);
    if (!rc)
        rc = sdb_bt_put(env, w, &w->view.meta.doc_root, key, sdb_key_pathref(key, id, path, plen),
                        (const uint8_t *)"", 0, NULL);
    if (!rc) {
        w->view.meta.path_count++;
        w->failed = 0;
    }
    return rc;
}

static int any_path(sdb_env *env, const sdb_view *v, const uint8_t *id, int *found)
{
    uint8_t key[17];
    memcpy(key, id, 16);
    key[16] = 'P';
    sdb_cursor_bt c;
    int rc = sdb_bt_seek(&c, env, v, v->meta.doc_root, key, 17);
    *found = rc == 0 && c.klen >= 17 && !memcmp(c.key, key, 17);
    sdb_bt_close(&c);
    return rc < 0 ? rc : 0;
}

static int remove_versions(sdb_env *env, sdb_wtxn *w, const uint8_t *id)
{
    int rc = prune_versions(env, w, id, 0);
    if (!rc)
        w->view.meta.doc_count--;
    return rc;
}

int sdb_doc_unbind(sdb_env *env, sdb_wtxn *w, const uint8_t *id, const char *path, size_t plen)
{
    uint8_t cur[16];
    size_t vl;
    int rc = sdb_bt_get(env, &w->view, w->view.meta.path_root, (const uint8_t *)path, plen, cur, 16, &vl);
    if (rc == STREAMDB_ERR_NOT_FOUND || (!rc && memcmp(cur, id, 16)))
        return sdb_err(STREAMDB_ERR_NOT_FOUND, "'%.*s' is not bound to that document",
                       (int)(plen > 200 ? 200 : plen), path);
    if (rc)
        return rc;
    w->failed = 1;
    uint8_t key[STREAMDB_MAX_PATH + 32];
    w->paths_changed = 1;
        rc = sdb_bt_del(env, w, &w->view.meta.path_root, (const uint8_t *)path, plen);
    if (!rc)
        rc = sdb_bt_del(env, w, &w->view.meta.doc_root, key, sdb_key_pathref(key, id, path, plen));
    if (!rc)
        w->view.meta.path_count--;
    int found = 1;
    if (!rc)
        rc = any_path(env, &w->view, id, &found);
    if (!rc && !found)
        rc = remove_versions(env, w, id);
    if (!rc)
        w->failed = 0;
    return rc;
}

int sdb_doc_paths(sdb_env *env, const sdb_view *v, const uint8_t *id, char ***out, size_t *count)
{
    uint8_t key[17];
    memcpy(key, id, 16);
    key[16] = 'P';
    sdb_cursor_bt c;
    char **arr = NULL;
    size_t n = 0, cap = 0;
    int rc = sdb_bt_seek(&c, env, v, v->meta.doc_root, key, 17);
    while (rc == 0 && c.klen >= 17 && !memcmp(c.key, key, 17)) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            char **na = sdb_realloc(arr, cap * sizeof *na);
            if (!na) {
                rc = sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
                break;
            }
            arr = na;
        }
        arr[n] = sdb_malloc(c.klen - 17 + 1);
        if (!arr[n]) {
            rc = sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(arr[n], c.key + 17, c.klen - 17);
        arr[n][c.klen - 17] = 0;
        n++;
        rc = sdb_bt_next(&c);
    }
    sdb_bt_close(&c);
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            sdb_free(arr[i]);
        sdb_free(arr);
        return rc;
    }
    *out = arr;
    *count = n;
    return 0;
}

int sdb_doc_delete_id(sdb_env *env, sdb_wtxn *w, const uint8_t *id)
{
    int rc = has_version(env, &w->view, id);
    if (rc)
        return rc;
    char **paths;
    size_t n;
    rc = sdb_doc_paths(env, &w->view, id, &paths, &n);
    if (rc)
        return rc;
    w->failed = 1;
    uint8_t key[STREAMDB_MAX_PATH + 32];
    for (size_t i = 0; !rc && i < n; i++) {
        size_t pl = strlen(paths[i]);
        w->paths_changed = 1;
        rc = sdb_bt_del(env, w, &w->view.meta.path_root, (const uint8_t *)paths[i], pl);
        if (!rc)
            rc = sdb_bt_del(env, w, &w->view.meta.doc_root, key, sdb_key_pathref(key, id, paths[i], pl));
        if (!rc)
            w->view.meta.path_count--;
    }
    for (size_t i = 0; i < n; i++)
        sdb_free(paths[i]);
    sdb_free(paths);
    if (!rc)
        rc = remove_versions(env, w, id);
    if (!rc)
        w->failed = 0;
    return rc;
}

/* ---- integrity ---- */

typedef struct dchk {
    sdb_env *env;
    const sdb_view *v;
    uint8_t *owner;
    uint64_t docs, paths_in_doc;
    uint8_t last_id[16];
    int have_last;
    uint64_t last_version;
    uint64_t logical, stored;
} dchk;

static int own_pages(dchk *k, pgno_t p, uint32_t n, const char *what)
{
    if (p < SDB_FIRST_PAGE || (uint64_t)p + n > k->v->meta.npages)
        return sdb_err(STREAMDB_ERR_CORRUPT, "%s at page %u outside the database", what, p);
    for (uint32_t i = 0; i < n; i++) {
        if (k->owner[p + i])
            return sdb_err(STREAMDB_ERR_CORRUPT, "page %u is used twice (%s)", p + i, what);
        k->owner[p + i] = 2;
    }
    return 0;
}

static int doc_visit(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl)
{
    dchk *k = ctx;
    sdb_env *env = k->env;
    if (kl < 17)
        return sdb_err(STREAMDB_ERR_CORRUPT, "document key of %zu bytes", kl);
    if (!k->have_last || memcmp(k->last_id, key, 16)) {
        memcpy(k->last_id, key, 16);
        k->have_last = 1;
        k->docs++;
        k->last_version = 0;
    }
    if (key[16] == 'P') {
        k->paths_in_doc++;
        uint8_t id[16];
        size_t l;
        int rc = sdb_bt_get(env, k->v, k->v->meta.path_root, key + 17, kl - 17, id, 16, &l);
        if (rc || memcmp(id, key, 16))
            return sdb_err(STREAMDB_ERR_CORRUPT, "path '%.*s' is not bound back to its document",
                           (int)(kl - 17 > 200 ? 200 : kl - 17), key + 17);
        return 0;
    }
    if (key[16] != 'V' || kl != 25)
        return sdb_err(STREAMDB_ERR_CORRUPT, "unknown document key kind %d", key[16]);
    sdb_vrec *r = sdb_malloc(sizeof *r);
    if (!r)
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    int rc = vrec_decode(env, key, val, vl, r);
    if (!rc) {
        k->logical += r->size;
        k->stored += r->stored;
    }
    uint64_t kv = 0;
    for (int i = 0; i < 8; i++)
        kv = kv << 8 | key[17 + i];
    if (!rc && r->version != ~kv)
        rc = sdb_err(STREAMDB_ERR_CORRUPT, "version record under the wrong key");
    if (!rc && (r->flags & SDB_V_MAPPED)) {
        rc = own_pages(k, r->map_root, 1, "chunk map");
        sdb_page root;
        if (!rc)
            rc = sdb_page_get(env, k->v, r->map_root, SDB_PT_MAPROOT, &root);
        if (!rc) {
            uint32_t n = rd32(root.data + SDB_PAGE_HDR);
            for (uint32_t i = 0; !rc && i < n && i < per_root(env); i++)
                rc = own_pages(k, rd32(root.data + MAP_HDR + 4 * (size_t)i), 1, "chunk map");
            sdb_page_put(env, &root);
        }
    }
    /* read the whole content: chunk CRCs [D2] and the content CRC [D1] */
    uint32_t crc = 0;
    if (!rc && (r->flags & SDB_V_INLINE)) {
        crc = sdb_crc32c(0, r->inl, r->size);
    } else if (!rc) {
        uint8_t *buf = sdb_malloc(SDB_CHUNK);
        if (!buf)
            rc = sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
        for (uint32_t i = 0; !rc && i < r->nchunks; i++) {
            sdb_chunk c;
            rc = sdb_doc_chunk(env, k->v, r, i, &c);
            if (!rc)
                rc = own_pages(k, c.pgno, (c.len + env->psize - 1) / env->psize, "chunk");
            const uint8_t *ptr = NULL;
            uint32_t len = 0;
            if (!rc)
                rc = sdb_doc_read_chunk(env, k->v, r, i, buf, &ptr, &len, 2);
            if (!rc)
                crc = sdb_crc32c(crc, ptr, len);
        }
        sdb_free(buf);
    }
    if (!rc && crc != r->crc)
        rc = sdb_err(STREAMDB_ERR_CORRUPT, "document version %llu: content checksum mismatch",
                     (unsigned long long)r->version);
    sdb_free(r);
    return rc;
}

static int path_visit(void *ctx, const uint8_t *key, size_t kl, const uint8_t *val, size_t vl)
{
    dchk *k = ctx;
    if (vl != 16)
        return sdb_err(STREAMDB_ERR_CORRUPT, "path entry with a %zu-byte id", vl);
    uint8_t dk[STREAMDB_MAX_PATH + 32];
    if (kl > STREAMDB_MAX_PATH)
        return sdb_err(STREAMDB_ERR_CORRUPT, "path of %zu bytes", kl);
    size_t l;
    int rc = sdb_bt_get(k->env, k->v, k->v->meta.doc_root, dk,
                        sdb_key_pathref(dk, val, (const char *)key, kl), NULL, 0, &l);
    if (rc == STREAMDB_ERR_NOT_FOUND)
        return sdb_err(STREAMDB_ERR_CORRUPT, "path '%.*s' has no document",
                       (int)(kl > 200 ? 200 : kl), key);
    return rc;
}

int sdb_doc_check(sdb_env *env, const sdb_view *v)
{
    uint8_t *owner = sdb_calloc(v->meta.npages + 1, 1);
    if (!owner)
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    owner[0] = owner[1] = 9;
    dchk k = {env, v, owner, 0, 0, {0}, 0, 0, 0, 0};
    uint64_t npaths = 0, ndoc = 0;
    int rc = sdb_bt_check(env, v, v->meta.path_root, owner, &npaths, path_visit, &k);
    if (!rc)
        rc = sdb_bt_check(env, v, v->meta.doc_root, owner, &ndoc, doc_visit, &k);
    if (!rc && npaths != v->meta.path_count)
        rc = sdb_err(STREAMDB_ERR_CORRUPT, "%llu paths in the tree, the header says %llu",
                     (unsigned long long)npaths, (unsigned long long)v->meta.path_count);
    if (!rc && k.paths_in_doc != npaths)
        rc = sdb_err(STREAMDB_ERR_CORRUPT, "%llu path back-references for %llu paths",
                     (unsigned long long)k.paths_in_doc, (unsigned long long)npaths);
    if (!rc && k.docs != v->meta.doc_count)
        rc = sdb_err(STREAMDB_ERR_CORRUPT, "%llu documents in the tree, the header says %llu",
                     (unsigned long long)k.docs, (unsigned long long)v->meta.doc_count);
    if (!rc && (k.logical != v->meta.logical_bytes || k.stored != v->meta.stored_bytes))
        rc = sdb_err(STREAMDB_ERR_CORRUPT, "content adds up to %llu/%llu bytes (logical/stored), "
                     "the header says %llu/%llu", (unsigned long long)k.logical,
                     (unsigned long long)k.stored, (unsigned long long)v->meta.logical_bytes,
                     (unsigned long long)v->meta.stored_bytes);
    if (!rc)
        rc = sdb_check_pages(env, v, owner);
    for (pgno_t p = SDB_FIRST_PAGE; !rc && p < v->meta.npages; p++)
        if (!owner[p])
            rc = sdb_err(STREAMDB_ERR_CORRUPT, "page %u is neither used nor free (leaked)", p);
    sdb_free(owner);
    return rc;
}

/* Re-reads every version of every document under prefix, checking chunk CRCs
 * and the content CRC (quick mode is the caller's to switch off). */
int sdb_doc_verify(sdb_env *env, const sdb_view *v, const char *prefix, size_t plen,
                   uint64_t *checked)
{
    *checked = 0;
    sdb_cursor_bt c;
    uint8_t *buf = sdb_malloc(SDB_CHUNK);
    sdb_vrec *r = sdb_malloc(sizeof *r);
    char *path = sdb_malloc(STREAMDB_MAX_PATH + 1);
    if (!buf || !r || !path) {
        sdb_free(buf);
        sdb_free(r);
        sdb_free(path);
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    }
    int rc = sdb_bt_seek(&c, env, v, v->meta.path_root, (const uint8_t *)prefix, plen);
    while (rc == 0 && c.klen >= plen && !memcmp(c.key, prefix, plen)) {
        size_t kl = c.klen;
        uint8_t id[16];
        if (c.vlen != 16 || kl > STREAMDB_MAX_PATH) {
            rc = sdb_err(STREAMDB_ERR_CORRUPT, "path entry with a %zu-byte id", c.vlen);
            break;
        }
        memcpy(path, c.key, kl);
        path[kl] = 0;
        memcpy(id, c.val, 16);
        uint64_t *vers = NULL;
        size_t nv = 0;
        rc = sdb_doc_versions(env, v, id, &vers, &nv);
        for (size_t i = 0; !rc && i < nv; i++) {
            rc = sdb_doc_version(env, v, id, (int64_t)vers[i], r);
            uint32_t crc = 0;
            if (!rc && (r->flags & SDB_V_INLINE))
                crc = sdb_crc32c(0, r->inl, r->size);
            for (uint32_t k = 0; !rc && !(r->flags & SDB_V_INLINE) && k < r->nchunks; k++) {
                const uint8_t *ptr = NULL;
                uint32_t len = 0;
                rc = sdb_doc_read_chunk(env, v, r, k, buf, &ptr, &len, 2);
                if (!rc)
                    crc = sdb_crc32c(crc, ptr, len);
            }
            if (!rc && crc != r->crc)
                rc = sdb_err(STREAMDB_ERR_CORRUPT, "content checksum mismatch");
            if (rc && rc != STREAMDB_ERR_NOMEM) {
                char why[512];
                snprintf(why, sizeof why, "%s", streamdb_errmsg(NULL));
                rc = sdb_err(rc, "'%s' version %llu: %s", path, (unsigned long long)vers[i], why);
            }
            if (!rc)
                (*checked)++;
        }
        sdb_free(vers);
        if (rc)
            break;
        rc = sdb_bt_next(&c);
    }
    sdb_bt_close(&c);
    sdb_free(buf);
    sdb_free(r);
    sdb_free(path);
    return rc == STREAMDB_DONE ? 0 : rc;
}
