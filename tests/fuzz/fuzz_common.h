/*
 * fuzz_common.h -- shared helpers of the libFuzzer targets (T9 of
 * RELIABILITY.md): a CRC32C for re-sealing pages and log frames after the
 * fuzzer changed them (so hostile content gets past the checksums and
 * reaches the decoders), memory-VFS file helpers, base databases built once
 * per process, and "read everything" over an opened database.
 *
 * Each target defines LLVMFuzzerTestOneInput.  Built with clang and
 * -DSTREAMDB_FUZZ=ON they link libFuzzer; the replay driver (replay_main.c)
 * links the same functions with a plain main() and runs every corpus file,
 * as a ctest test.
 */
#ifndef STREAMDB_FUZZ_COMMON_H
#define STREAMDB_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streamdb.h"

/* A failed oracle: print and abort, which libFuzzer reports as a crash. */
#define FZ_ASSERT(cond, ...)                                                    \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "fuzz oracle failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
            abort();                                                            \
        }                                                                       \
    } while (0)

/* ---- CRC32C (Castagnoli, reflected 0x82F63B78), initial value 0 as in format.md ---- */
static uint32_t fz_crc_table[256];
static void fz_crc_init(void)
{
    if (fz_crc_table[1]) return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
        fz_crc_table[i] = c;
    }
}
static uint32_t fz_crc32c(uint32_t crc, const void *buf, size_t n)
{
    fz_crc_init();
    const uint8_t *p = buf;
    crc = ~crc;
    while (n--) crc = fz_crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}
static inline uint32_t fz_rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static inline void fz_wr32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }

/* Is this P-byte page a typed page whose CRC is right? */
static inline int fz_page_sealed(const uint8_t *pg, uint32_t P)
{
    return pg[4] >= 1 && pg[4] <= 6 && fz_rd32(pg) == fz_crc32c(0, pg + 4, P - 4);
}
/* Re-seals every page of buf that claims a page type (1..6). */
static inline void fz_reseal_pages(uint8_t *buf, size_t len, uint32_t P)
{
    for (size_t off = 0; off + P <= len; off += P)
        if (buf[off + 4] >= 1 && buf[off + 4] <= 6) fz_wr32(buf + off, fz_crc32c(0, buf + off + 4, P - 4));
}

/* ---- memory VFS files ---- */
static inline void fz_put_file(streamdb_vfs *v, const char *name, const void *data, size_t len)
{
    streamdb_file *f = NULL;
    if (v->open(v, name, STREAMDB_VFS_CREATE, 0600, &f)) abort();
    v->truncate(f, 0);
    size_t done = 0;
    if (len && v->write(f, data, len, 0, &done)) abort();
    v->close(f);
}
/* malloc'd copy of a file (NULL, *len = 0 when missing). */
static inline uint8_t *fz_get_file(streamdb_vfs *v, const char *name, size_t *len)
{
    streamdb_file *f = NULL;
    *len = 0;
    if (v->open(v, name, 0, 0600, &f)) return NULL;
    uint64_t sz = 0;
    v->size(f, &sz);
    uint8_t *b = malloc(sz ? (size_t)sz : 1);
    size_t done = 0;
    if (sz) v->read(f, b, (size_t)sz, 0, &done);
    v->close(f);
    *len = (size_t)sz;
    return b;
}

/* Deterministic document content. */
static inline void fz_fill(uint8_t *b, size_t n, uint32_t seed, int compressible)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        if (compressible) b[i] = (uint8_t)("streamdb save game level "[(i + seed) % 25] ^ ((i / 4096) & 3));
        else { x ^= x << 13; x ^= x >> 17; x ^= x << 5; b[i] = (uint8_t)x; }
    }
}

/* Set by a target that opened the database in quick mode: reads then skip
 * the CRC checks by design (streamdb.h), so returned bytes need not match
 * the content CRC of a hostile record. */
static int fz_quick;

/* Reads everything a database offers; results are not compared (the file is
 * hostile) but every call must return, and no call may crash.  Data that is
 * returned must be consistent with its own metadata (outside quick mode). */
static inline void fz_exercise(streamdb *db)
{
    char **paths = NULL;
    size_t n = 0;
    if (streamdb_search(db, "/", &paths, &n) == 0) {
        for (size_t i = 0; i < n && i < 64; i++) {
            size_t pl = strlen(paths[i]);
            void *data = NULL;
            size_t len = 0;
            int rc = streamdb_get(db, paths[i], 0, &data, &len);
            streamdb_doc_info info;
            int rs = streamdb_stat(db, paths[i], pl, 0, &info);
            if (rc == 0 && rs == 0)
                FZ_ASSERT(info.size == len, "get gave %zu bytes, stat says %llu", len, (unsigned long long)info.size);
            if (rc == 0 && len > 0 && rs == 0 && !fz_quick && !getenv("FUZZ_LENIENT_CONTENT_CRC"))
                FZ_ASSERT(fz_crc32c(0, data, len) == (uint32_t)info.crc32c,
                          "get returned bytes that do not match the content CRC (%s)", paths[i]);
            streamdb_free(data);
            data = NULL;
            streamdb_get(db, paths[i], -1, &data, &len);
            streamdb_free(data);
            uint64_t *vers = NULL;
            size_t nv = 0;
            if (streamdb_versions(db, paths[i], pl, &vers, &nv) == 0) streamdb_free(vers);
            streamdb_stream *s = NULL;
            if (streamdb_stream_open(db, paths[i], pl, 0, &s) == 0) {
                uint8_t buf[8192];
                size_t got = 0;
                for (int k = 0; k < 64 && streamdb_stream_read(s, buf, sizeof buf, &got) == 0 && got; k++) {}
                uint64_t pos;
                streamdb_stream_seek(s, 100000, 0, &pos);
                streamdb_stream_read(s, buf, 100, &got);
                streamdb_stream_close(s);
            }
            uint8_t id[16];
            if (streamdb_get_id_by_path(db, paths[i], pl, id) == 0) {
                char **p2 = NULL;
                size_t n2 = 0;
                if (streamdb_list_paths(db, id, &p2, &n2) == 0) streamdb_free_paths(p2, n2);
            }
        }
        streamdb_free_paths(paths, n);
    }
    if (streamdb_list(db, "/", 1, &paths, &n) == 0) streamdb_free_paths(paths, n);
    uint64_t c;
    streamdb_count(db, &c);
    streamdb_stats st;
    streamdb_calculate_statistics(db, &st);
    streamdb_check(db);
    uint64_t checked;
    streamdb_verify(db, "/", 1, &checked);
}

static inline void fz_cfg(streamdb_config *cfg, streamdb_vfs *v)
{
    streamdb_config_init(cfg);
    cfg->vfs = v;
    cfg->page_size = 4096;
    cfg->page_cache_size = 64;
    cfg->async_workers = 1;
    cfg->readahead_chunks = 0;
    /* An application that opens files it does not trust bounds them: a
     * hostile log may name pages up to max_db_size, and the checkpoint then
     * grows the main file that far (sparse on disk, but real memory in the
     * memory VFS the harness uses).  With the 8 TiB default, ASan aborts on
     * the allocation instead of returning NULL. */
    cfg->max_db_size = 64ull << 20;
}

#endif
