/*
 * gen_corpus.c -- writes the seed corpora of the fuzz targets into
 * <dir>/<target>/ (run by make_corpus.sh).  Seeds are small valid inputs
 * (real database files and logs made by this build of the library, real
 * operation sequences and paths) for the fuzzer to mutate.
 */
#include "fuzz_base.h"

#include <sys/stat.h>

static const char *outdir;

static void emit(const char *target, const char *name, const void *a, size_t al, const void *b, size_t bl)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", outdir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", outdir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    if (al) fwrite(a, 1, al, f);
    if (bl) fwrite(b, 1, bl, f);
    fclose(f);
}

/* A small database (one page of documents) with its live log. */
static void small_db(uint8_t **db, size_t *dbl, uint8_t **wal, size_t *wall, int checkpoint_all)
{
    streamdb_vfs *v = streamdb_vfs_memory_new();
    streamdb_config cfg;
    fz_cfg(&cfg, v);
    streamdb *h = NULL;
    if (streamdb_open("s.db", &cfg, &h)) abort();
    streamdb_write_document(h, "/x", "hello", 5, NULL);
    streamdb_write_document(h, "/y/z", "world!", 6, NULL);
    streamdb_flush(h);
    if (!checkpoint_all) {
        streamdb_write_document(h, "/x", "hello again", 11, NULL);
        streamdb_delete(h, "/y/z");
    }
    *db = fz_get_file(v, "s.db", dbl);
    *wal = fz_get_file(v, "s.db-wal", wall);
    streamdb_close(h);
    streamdb_vfs_memory_free(v);
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]); return 2; }
    outdir = argv[1];
    mkdir(outdir, 0755);
    uint8_t *db, *wal;
    size_t dbl, wall;

    /* ---- open ---- */
    small_db(&db, &dbl, &wal, &wall, 0);
    uint16_t sp = (uint16_t)(dbl / 64);
    uint8_t h[3] = {1, 0, 0};
    emit("open", "db_only", h, 3, db, dbl);
    h[0] = 3; h[1] = (uint8_t)sp; h[2] = (uint8_t)(sp >> 8);
    uint8_t *both = malloc(dbl + wall);
    memcpy(both, db, dbl);
    memcpy(both + dbl, wal, wall);
    emit("open", "db_and_wal", h, 3, both, dbl + wall);
    h[0] = 7;
    emit("open", "db_and_wal_resealed", h, 3, both, dbl + wall);
    h[0] = 3 | 8 | 16;
    emit("open", "db_and_wal_readonly_quick", h, 3, both, dbl + wall);
    h[0] = 2;
    emit("open", "wal_only", h, 3, wal, wall);
    h[0] = 1;
    emit("open", "empty", h, 3, NULL, 0);
    emit("open", "header_pages_only", h, 3, db, dbl < 8192 ? dbl : 8192);
    free(both);
    free(db);
    free(wal);
    small_db(&db, &dbl, &wal, &wall, 1);
    h[0] = 5;
    emit("open", "checkpointed_resealed", h, 3, db, dbl);
    free(db);
    free(wal);

    /* ---- wal ---- */
    fb_build();
    size_t H = fb_walhdr();
    size_t frames = fb_wallen > H ? fb_wallen - H : 0;
    size_t F = 24 + 4096;
    uint8_t w[2] = {0, 0};
    emit("wal", "real_frames", w, 2, fb_wal + H, frames < 6 * F ? frames : 6 * F);
    w[0] = 255;
    emit("wal", "all_real_frames", w, 2, NULL, 0);
    w[0] = 1; w[1] = 1;
    emit("wal", "resealed_after_one", w, 2, fb_wal + H + F, frames > F ? (frames - F < 2 * F ? frames - F : 2 * F) : 0);
    w[0] = 0; w[1] = 3;
    emit("wal", "resealed_folded", w, 2, fb_wal + H, frames < 3 * F ? frames : 3 * F);
    w[0] = 2; w[1] = 0;
    emit("wal", "torn_tail", w, 2, fb_wal + H + 2 * F, frames > 2 * F + 100 ? 100 : 0);

    /* ---- ops: 1 config byte, then 5-byte operations ---- */
    {
        const uint8_t a[] = {0, 0,1,7,100,0, 0,9,8,200,1, 6,1,0,0,0, 7,0,0,0,0, 4,1,0,0,0, 6,1,0,0,0, 11,0,0,0,0, 6,9,0,0,0};
        emit("ops", "put_get_delete_reopen", a, sizeof a, NULL, 0);
        const uint8_t b[] = {9, 8,0,0,0,0, 0,2,3,50,0, 1,3,4,255,2, 4,2,0,0,0, 9,0,0,0,0, 7,1,0,0,0, 8,0,0,0,0, 0,5,5,5,0, 10,0,0,0,0, 6,5,0,0,0, 11,0,0,0,0};
        emit("ops", "transactions", b, sizeof b, NULL, 0);
        const uint8_t c[] = {1, 3,4,1,10,0x80, 3,4,2,20,0x80, 3,4,3,30,0x80, 12,1,0,0,0, 4,4,0,0,0, 12,0,0,0,0, 13,0,0,0,0, 11,0,0,0,0};
        emit("ops", "big_versions_compact", c, sizeof c, NULL, 0);
        const uint8_t d[] = {8, 2,6,9,40,0, 2,7,9,40,1, 2,6,10,250,0, 7,2,0,0,0, 11,0,0,0,0};
        emit("ops", "streaming_writer", d, sizeof d, NULL, 0);
    }

    /* ---- path ---- */
    {
        const char *ps[] = {"/a", "/levels/3/terrain.bin", "/\xc3\xbc/\xe6\x97\xa5\xe6\x9c\xac", "", "a/b", "//",
                            "/a//b", "/a/", "/", "/\xc0\xaf", "/\xed\xa0\x80", "/\xf4\x90\x80\x80", "/\xff",
                            "/..", "/x/../y", "/ trailing space ", "/\x01\x7f"};
        for (size_t i = 0; i < sizeof ps / sizeof *ps; i++) {
            char name[32];
            snprintf(name, sizeof name, "path%02zu", i);
            emit("path", name, ps[i], strlen(ps[i]), NULL, 0);
        }
        emit("path", "nul_inside", "/a\0b", 4, NULL, 0);
        char big[4200];
        big[0] = '/';
        for (size_t i = 1; i < sizeof big; i++) big[i] = (i % 50 == 0) ? '/' : (char)('a' + i % 26);
        emit("path", "long_4000", big, 4000, NULL, 0);
        emit("path", "long_4200", big, 4200, NULL, 0);
    }

    /* ---- chunk: [mode][chunk][len lo][len hi] then (pos lo, pos hi, byte) edits ---- */
    {
        const uint8_t a[] = {0, 0, 0, 0};
        emit("chunk", "untouched", a, sizeof a, NULL, 0);
        const uint8_t b[] = {0, 1, 0, 0, 10, 0, 0xff};
        emit("chunk", "one_byte", b, sizeof b, NULL, 0);
        const uint8_t c[] = {1, 0, 0, 0, 0, 0, 0, 1, 0, 0x41, 200, 3, 7};
        emit("chunk", "resealed_edits", c, sizeof c, NULL, 0);
        const uint8_t d[] = {3, 2, 100, 0, 5, 0, 1};
        emit("chunk", "resealed_short_length", d, sizeof d, NULL, 0);
        const uint8_t e[] = {5, 4, 0, 0, 0, 0, 0};
        emit("chunk", "readonly_resealed_incompressible", e, sizeof e, NULL, 0);
    }
    printf("corpus written to %s\n", outdir);
    return 0;
}
