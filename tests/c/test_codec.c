/*
 * test_codec.c -- compression and encryption (issue 3).
 *
 *  - a document half compressible, half random: stored smaller than its
 *    size, the random half stored raw; range reads across chunk borders;
 *    the per-document override; statistics of logical against stored bytes;
 *  - encryption: no plaintext (content or paths) anywhere in the files; a
 *    wrong key, a missing key and a key for a plain database fail at open;
 *    a tampered byte in a chunk or an index page is an error, never data,
 *    in quick mode too; identical content written many times, across
 *    reopens, never gives two identical ciphertexts (no repeated nonce);
 *  - compressed + encrypted together survive reopen and streamdb_check.
 */
#include "testutil.h"

static const uint8_t KEY[32] = "0123456789abcdef0123456789ABCDEF";

static streamdb_config cfg_for(int compress, int encrypt)
{
    streamdb_config c;
    streamdb_config_init(&c);
    c.use_compression = compress;
    if (encrypt)
        streamdb_config_set_key(&c, KEY, 32);
    return c;
}

/* Half compressible (a repeating text), half random. */
static uint8_t *half_and_half(size_t n)
{
    uint8_t *b = tu_make(n, 77);   /* random */
    const char *text = "level terrain mesh texture ";
    for (size_t i = 0; i < n / 2; i++)
        b[i] = (uint8_t)text[i % strlen(text)];
    return b;
}

static void test_compression(void)
{
    const char *p = tu_path("comp.sdb");
    streamdb_config c = cfg_for(1, 0);
    streamdb *db = tu_open_cfg(p, &c);
    size_t n = 4 * 1024 * 1024 + 12345;
    uint8_t *data = half_and_half(n);
    CHECK_OK(db, streamdb_write_document(db, "/mixed", data, n, NULL));

    streamdb_doc_info info;
    CHECK_OK(db, streamdb_stat(db, "/mixed", 6, 0, &info));
    CHECK(info.size == n);
    /* the text half shrinks a lot, the random half not at all */
    CHECKF(info.stored_size < n * 3 / 4 && info.stored_size > n / 2,
           "stored %llu of %zu", (unsigned long long)info.stored_size, n);
    CHECK(info.flags & STREAMDB_DOC_COMPRESSED);

    uint64_t logical = 0, stored = 0;
    CHECK_OK(db, streamdb_get_stat(db, "logical_bytes", &logical));
    CHECK_OK(db, streamdb_get_stat(db, "stored_bytes", &stored));
    CHECK(logical == n && stored == info.stored_size);

    /* per-document override: the same bytes stored raw */
    streamdb_writer *w;
    REQUIRE_OK(db, streamdb_writer_begin(db, "/raw", 4, &w));
    CHECK_OK(db, streamdb_writer_set_compression(w, 0));
    CHECK_OK(db, streamdb_writer_write(w, data, n));
    CHECK_OK(db, streamdb_writer_commit(w, NULL));
    CHECK_OK(db, streamdb_stat(db, "/raw", 4, 0, &info));
    CHECK(info.stored_size == n && !(info.flags & STREAMDB_DOC_COMPRESSED));
    /* setting it after the first write is refused */
    REQUIRE_OK(db, streamdb_writer_begin(db, "/late", 5, &w));
    CHECK_OK(db, streamdb_writer_write(w, "x", 1));
    CHECK_RC(db, streamdb_writer_set_compression(w, 1), STREAMDB_ERR_INVALID);
    streamdb_writer_abort(w);

    /* range reads that cross chunk borders and the compressible/random border */
    uint64_t offs[] = {0, 65535, 65536, 131000, n / 2 - 100, n / 2 + 70000, n - 10};
    uint8_t buf[200000];
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        size_t got = 0;
        CHECK_OK(db, streamdb_read(db, "/mixed", 0, offs[i], buf, sizeof buf, &got));
        size_t want = n - offs[i] < sizeof buf ? n - offs[i] : sizeof buf;
        CHECKF(got == want && !memcmp(buf, data + offs[i], got), "range at %llu",
               (unsigned long long)offs[i]);
    }
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));

    db = tu_open_cfg(p, &c);
    void *d;
    size_t dl;
    CHECK_OK(db, streamdb_get(db, "/mixed", 0, &d, &dl));
    CHECK(dl == n && !memcmp(d, data, n));
    streamdb_free(d);
    uint64_t verified = 0;
    CHECK_OK(db, streamdb_verify(db, "/", 1, &verified));
    CHECK(verified == 2);
    CHECK_OK(db, streamdb_close(db));

    /* the database remembers it holds compressed chunks: opening it without
     * use_compression still reads them */
    streamdb_config plain = cfg_for(0, 0);
    db = tu_open_cfg(p, &plain);
    CHECK_OK(db, streamdb_get(db, "/mixed", 0, &d, &dl));
    CHECK(dl == n && !memcmp(d, data, n));
    streamdb_free(d);
    CHECK_OK(db, streamdb_close(db));
    free(data);
}

static long long find_bytes(const char *file, const void *needle, size_t nlen)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
    size_t got = fread(b, 1, (size_t)sz, f);
    fclose(f);
    long long at = -1;
    for (size_t i = 0; i + nlen <= got; i++)
        if (!memcmp(b + i, needle, nlen)) {
            at = (long long)i;
            break;
        }
    free(b);
    return at;
}

static void test_encryption_basics(void)
{
    const char *p = tu_path("enc.sdb");
    char wal[1100];
    snprintf(wal, sizeof wal, "%s-wal", p);
    streamdb_config c = cfg_for(0, 1);
    streamdb *db = tu_open_cfg(p, &c);
    const char *secret = "TOP-SECRET-SAVEGAME-MARKER";
    char small[600], path[100];
    for (int i = 0; i < 20; i++)
        snprintf(small + i * 27, 28, "%s|", secret);
    size_t bign = 300000;
    uint8_t *big = malloc(bign);
    for (size_t i = 0; i < bign; i++)
        big[i] = (uint8_t)secret[i % strlen(secret)];
    snprintf(path, sizeof path, "/players/secret-path-name/save");
    CHECK_OK(db, streamdb_write_document(db, path, small, strlen(small), NULL));
    CHECK_OK(db, streamdb_write_document(db, "/big", big, bign, NULL));
    /* while the data is still in the log */
    CHECK(find_bytes(p, secret, strlen(secret)) < 0);
    CHECK(find_bytes(wal, secret, strlen(secret)) < 0);
    CHECK(find_bytes(wal, "secret-path-name", 16) < 0);
    CHECK_OK(db, streamdb_close(db));
    /* and after the checkpoint */
    CHECK(find_bytes(p, secret, strlen(secret)) < 0);
    CHECK(find_bytes(p, "secret-path-name", 16) < 0);

    streamdb_config wrong = c;
    wrong.encryption_key[5] ^= 1;
    streamdb *x = NULL;
    CHECK(streamdb_open(p, &wrong, &x) == STREAMDB_ERR_CRYPTO && x == NULL);
    streamdb_config nokey = cfg_for(0, 0);
    CHECK(streamdb_open(p, &nokey, &x) == STREAMDB_ERR_CRYPTO && x == NULL);
    /* a key for a plain database */
    const char *plainp = tu_path("plain.sdb");
    db = tu_open_cfg(plainp, &nokey);
    CHECK_OK(db, streamdb_close(db));
    CHECK(streamdb_open(plainp, &c, &x) == STREAMDB_ERR_CRYPTO && x == NULL);

    db = tu_open_cfg(p, &c);
    void *d;
    size_t dl;
    CHECK_OK(db, streamdb_get(db, path, 0, &d, &dl));
    CHECK(dl == strlen(small) && !memcmp(d, small, dl));
    streamdb_free(d);
    CHECK_OK(db, streamdb_get(db, "/big", 0, &d, &dl));
    CHECK(dl == bign && !memcmp(d, big, dl));
    streamdb_free(d);
    tu_check_db(db);
    CHECK_OK(db, streamdb_close(db));
    free(big);
}

/* Flips one byte of the file at off, then checks that reading everything
 * gives an error or the right bytes, never wrong bytes, with and without
 * quick mode. */
static void tamper_and_read(const char *p, const streamdb_config *c, long long off,
                            const uint8_t *big, size_t bign, int *detected)
{
    int fd = open(p, O_RDWR);
    uint8_t b;
    REQUIRE(pread(fd, &b, 1, off) == 1);
    b ^= 0x5a;
    REQUIRE(pwrite(fd, &b, 1, off) == 1);
    for (int quick = 0; quick < 2; quick++) {
        streamdb *db = NULL;
        int rc = streamdb_open(p, c, &db);
        if (rc) {
            CHECKF(rc == STREAMDB_ERR_CORRUPT || rc == STREAMDB_ERR_CRYPTO, "open = %d", rc);
            (*detected)++;
            continue;
        }
        streamdb_set_quick_mode(db, quick);
        void *d = NULL;
        size_t dl = 0;
        rc = streamdb_get(db, "/big", 0, &d, &dl);
        if (rc == 0)
            CHECKF(dl == bign && !memcmp(d, big, bign), "wrong bytes returned (quick=%d)", quick);
        else {
            CHECKF(rc == STREAMDB_ERR_CORRUPT || rc == STREAMDB_ERR_CRYPTO ||
                   rc == STREAMDB_ERR_NOT_FOUND, "get = %d (%s)", rc, tu_errmsg(db));
            (*detected)++;
        }
        streamdb_free(d);
        streamdb_close(db);
    }
    b ^= 0x5a;
    REQUIRE(pwrite(fd, &b, 1, off) == 1);
    close(fd);
}

static void test_tamper(void)
{
    const char *p = tu_path("tamper.sdb");
    streamdb_config c = cfg_for(1, 1);
    streamdb *db = tu_open_cfg(p, &c);
    size_t bign = 200000;
    uint8_t *big = half_and_half(bign);
    CHECK_OK(db, streamdb_write_document(db, "/big", big, bign, NULL));
    for (int i = 0; i < 50; i++) {
        char path[64];
        snprintf(path, sizeof path, "/idx/%04d", i);
        CHECK_OK(db, tu_put(db, path, (uint64_t)i, 100));
    }
    CHECK_OK(db, streamdb_close(db));
    long long size = tu_file_size(p);
    uint32_t ps = 8192;
    int detected = 0, tried = 0;
    /* one byte in every page after the header slots, at a few offsets */
    for (long long page = 2; page * ps < size; page++) {
        long long offs[] = {100, ps / 2, ps - 1};
        for (int k = 0; k < 3; k++) {
            tamper_and_read(p, &c, page * ps + offs[k], big, bign, &detected);
            tried += 2;   /* read with and without quick mode */
        }
    }
    printf("tamper: %d reads of a tampered file, %d detected, the rest read the right bytes "
           "(tampered padding), 0 wrong bytes returned\n", tried, detected);
    CHECK(detected > 0);
    free(big);
}

/* Identical content under many paths and overwrites, across reopens: with a
 * fresh nonce per encryption, no two chunk ciphertexts may be equal. */
static void test_nonces(void)
{
    const char *p = tu_path("nonce.sdb");
    streamdb_config c = cfg_for(0, 1);
    c.versions_to_keep = 1000;
    size_t n = 65536;   /* one whole chunk: one page run per copy */
    uint8_t *same = tu_make(n, 5);
    for (int round = 0; round < 4; round++) {
        streamdb *db = tu_open_cfg(p, &c);
        for (int i = 0; i < 25; i++) {
            char path[64];
            snprintf(path, sizeof path, "/copy/%d", i % 10);   /* new paths and overwrites */
            CHECK_OK(db, streamdb_write_document(db, path, same, n, NULL));
        }
        CHECK_OK(db, streamdb_close(db));
    }
    /* every 8 KiB page of chunk data must differ from every other */
    FILE *f = fopen(p, "rb");
    REQUIRE(f);
    size_t pages = (size_t)(tu_file_size(p) / 8192);
    uint8_t *all = malloc(pages * 8192);
    REQUIRE(fread(all, 8192, pages, f) == pages);
    fclose(f);
    int dup = 0;
    uint64_t *h = malloc(pages * sizeof *h);
    for (size_t i = 0; i < pages; i++) {
        uint64_t x = 1469598103934665603ull;
        for (size_t k = 0; k < 8192; k++)
            x = (x ^ all[i * 8192 + k]) * 1099511628211ull;
        h[i] = x;
    }
    size_t nonzero = 0;
    for (size_t i = 2; i < pages; i++) {
        int zero = 1;
        for (size_t k = 0; k < 8192 && zero; k++)
            zero = all[i * 8192 + k] == 0;
        if (zero)
            continue;
        nonzero++;
        for (size_t j = i + 1; j < pages; j++)
            if (h[i] == h[j] && !memcmp(all + i * 8192, all + j * 8192, 8192))
                dup++;
    }
    printf("nonces: 100 writes of identical content, %zu pages compared, %d identical\n",
           nonzero, dup);
    CHECK(dup == 0);
    CHECK(nonzero >= 100 * 8);
    free(h);
    free(all);
    free(same);
}

int main(void)
{
    tu_init("codec");
    int f = streamdb_features();
    if (!(f & STREAMDB_FEATURE_COMPRESSION) || !(f & STREAMDB_FEATURE_ENCRYPTION)) {
        /* a build without the codecs must say so, not pretend */
        streamdb_config c = cfg_for(!(f & STREAMDB_FEATURE_COMPRESSION), !(f & STREAMDB_FEATURE_ENCRYPTION));
        streamdb *db = NULL;
        CHECK(streamdb_open(tu_path("x.sdb"), &c, &db) == STREAMDB_ERR_UNSUPPORTED);
        printf("codec: built without %s; only the refusal was tested\n",
               !(f & STREAMDB_FEATURE_COMPRESSION) ? "compression" : "encryption");
        tu_finish();
    }
    test_compression();
    test_encryption_basics();
    test_tamper();
    test_nonces();
    tu_finish();
}
