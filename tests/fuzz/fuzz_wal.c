/*
 * fuzz_wal.c -- the log reader and recovery: a valid database plus a log
 * that starts with the real log header (its salt) and K real
 * frames, followed by the fuzz bytes.
 *
 * Input: [K u8][mode u8][bytes].  mode & 1: the bytes are cut into frames
 * (24 + 4096 bytes) which get the log's salt and a correct chained checksum,
 * and their page images are re-sealed when they claim a page type, so
 * hostile pages and meta frames pass the log's checks and reach recovery and
 * the page decoders; mode & 2: each frame's page number is folded into the
 * database's page range.  Oracle: no crash, no hang; whatever opens can be
 * read and checked.
 */
#include "fuzz_base.h"

#define P 4096
#define FRAME (24 + P)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    fb_build();
    size_t H = fb_walhdr();
    uint32_t nreal = fb_wallen > H ? (uint32_t)((fb_wallen - H) / FRAME) : 0;
    uint32_t keep = data[0] % (nreal + 1);
    uint8_t mode = data[1];
    data += 2;
    size -= 2;
    size_t head = H + (size_t)keep * FRAME;
    if (head > fb_wallen) head = fb_wallen;
    size_t wl = head + size;
    uint8_t *wal = malloc(wl ? wl : 1);
    memcpy(wal, fb_wal, head);
    memcpy(wal + head, data, size);
    if (mode & 1) {
        uint32_t salt = fz_rd32(fb_wal + 12);
        uint32_t prev = keep ? fz_rd32(wal + H + (size_t)(keep - 1) * FRAME + 20) : salt;
        uint32_t npages = (uint32_t)(fb_dblen / P) + 4;
        for (size_t off = head; off + FRAME <= wl; off += FRAME) {
            uint8_t *f = wal + off;
            if (mode & 2) fz_wr32(f, fz_rd32(f) % npages);
            fz_wr32(f + 16, salt);
            uint8_t *pg = f + 24;
            if (pg[4] >= 1 && pg[4] <= 6) fz_wr32(pg, fz_crc32c(0, pg + 4, P - 4));
            uint32_t c = fz_crc32c(prev, f, 20);
            c = fz_crc32c(c, pg, P);
            fz_wr32(f + 20, c);
            prev = c;
        }
    }
    streamdb_vfs *v = streamdb_vfs_memory_new();
    fz_put_file(v, "w.db", fb_db, fb_dblen);
    fz_put_file(v, "w.db-wal", wal, wl);
    free(wal);
    streamdb_config cfg;
    fz_cfg(&cfg, v);
    cfg.create = 0;
    streamdb *db = NULL;
    if (streamdb_open("w.db", &cfg, &db) == 0) {
        fz_exercise(db);
        streamdb_write_document(db, "/after", "y", 1, NULL);
        streamdb_close(db);
    }
    streamdb_vfs_memory_free(v);
    return 0;
}
