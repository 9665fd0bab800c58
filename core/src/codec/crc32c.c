/*
 * crc32c.c -- CRC32C (Castagnoli), the checksum of every page, frame and chunk.
 *
 * On x86-64 CPUs with SSE4.2 the crc32 instruction does 8 bytes per step.
 * It takes three cycles to give its result but can start one per cycle, so
 * a long buffer is cut into three blocks whose CRCs run side by side, and
 * the three registers are then joined: the register after A||B is the
 * register after A moved past |B| zero bytes, XOR the register of B alone
 * (the CRC is linear).  Moving past a fixed number of zeros is a 32x32 bit
 * matrix, applied with four table lookups (one table per byte of the
 * register, built at first use for blocks of 8 KiB, 256 and 64 bytes).
 * Elsewhere a slicing-by-8 table does the work.  The choice is made once,
 * at first use, from cpuid.
 *
 * Where the CPU has AVX-512 and VPCLMULQDQ, buffers of at least CRC_FOLD_MIN
 * bytes are first folded, 256 bytes a step, by carry-less multiplication:
 * the CRC is the remainder of the message polynomial, so any 128-bit piece
 * may be replaced by its product with x^D mod P (D its distance to the piece
 * it is added to) without changing the remainder.  Sixteen 128-bit lanes (four
 * 512-bit registers) fold 2,048 bits ahead each step; what is left is a
 * 256-byte message with the same CRC, which the crc32 instruction finishes
 * with the tail.  The crc32 instruction runs one 8-byte step per cycle on
 * one port; the multiplier does four 128-bit lanes per instruction.
 */
#include "sdb.h"

#include <pthread.h>

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int have_sse42;
static int have_fold;     /* AVX-512F and VPCLMULQDQ */
static int crc_impl = -1; /* tests: 0 table, 1 crc32, 2 fold; -1 the best there is */
#if defined(__x86_64__) && defined(__GNUC__)
static uint64_t fold_k[2];   /* x^(2048+64) and x^2048 mod P, as the multiplier wants them */
#endif
#define CRC_FOLD_MIN 1024u

#define CRC_LONG 8192u   /* block lengths of the three-way loops */
#define CRC_SHORT 256u
#define CRC_TINY 64u
static uint32_t shift_long[4][256], shift_short[4][256], shift_tiny[4][256];

static void zeros_operator(uint32_t *op, uint64_t len);
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec);

/* tab[k][b]: the register byte b at byte k moved past len zero bytes */
static void shift_table(uint32_t tab[4][256], uint64_t len)
{
    uint32_t op[32];
    zeros_operator(op, len);
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++)
            tab[k][b] = gf2_times(op, b << (8 * k));
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The multiplier for x^n in the fold.  Register bit k stands for x^(127-k)
 * of a 128-bit piece (bit 0 of byte 0 comes first and is the highest
 * power), and so does bit i of each 64-bit half, for x^(63-i).  A product
 * of a half and a constant c lands at bit i+j for bit j of c: for that to be
 * x^(127-(i+j)), bit j of c must stand for x^(64-j).  So c holds
 * B = x * (x^(n-1) mod P), which is x^n mod P, has degree 32 at most and no
 * x^0 term: c = the 64-bit reversal of x^(n-1) mod P. */
static uint64_t fold_constant(unsigned n)
{
    uint64_t r = 1;   /* x^0, in normal order: bit m for x^m */
    for (unsigned i = 1; i < n; i++) {
        r <<= 1;
        if (r & (1ull << 32))
            r ^= 0x11EDC6F41ull;   /* P, the Castagnoli polynomial */
    }
    uint64_t c = 0;
    for (int m = 0; m < 64; m++)
        if (r >> m & 1)
            c |= 1ull << (63 - m);
    return c;
}

#endif

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    have_sse42 = __builtin_cpu_supports("sse4.2");
    have_fold = have_sse42 && __builtin_cpu_supports("avx512f") &&
                __builtin_cpu_supports("vpclmulqdq");
    if (have_fold) {
        fold_k[0] = fold_constant(2048 + 64);
        fold_k[1] = fold_constant(2048);
    }
    if (have_sse42) {
        shift_table(shift_long, CRC_LONG);
        shift_table(shift_short, CRC_SHORT);
        shift_table(shift_tiny, CRC_TINY);
    }
#endif
}

static uint32_t crc_soft(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc;
        crc = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
              crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
              crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
              crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

static uint32_t crc_shift(const uint32_t tab[4][256], uint64_t c)
{
    return tab[0][c & 0xff] ^ tab[1][(c >> 8) & 0xff] ^ tab[2][(c >> 16) & 0xff] ^
           tab[3][(c >> 24) & 0xff];
}

#if defined(__x86_64__) && defined(__GNUC__)

/* The three-way loop of one block length. */
#define CRC_THREE(BLK, TAB)                                                   \
    while (n >= 3 * (size_t)(BLK)) {                                          \
        uint64_t c1 = 0, c2 = 0;                                              \
        const uint8_t *end = p + (BLK);                                       \
        do {                                                                  \
            uint64_t a, b, d;                                                 \
            memcpy(&a, p, 8);                                                 \
            memcpy(&b, p + (BLK), 8);                                         \
            memcpy(&d, p + 2 * (size_t)(BLK), 8);                             \
            c = __builtin_ia32_crc32di(c, a);                                 \
            c1 = __builtin_ia32_crc32di(c1, b);                               \
            c2 = __builtin_ia32_crc32di(c2, d);                               \
            p += 8;                                                           \
        } while (p < end);                                                    \
        c = crc_shift(TAB, c) ^ c1;                                           \
        c = crc_shift(TAB, c) ^ c2;                                           \
        p += 2 * (size_t)(BLK);                                               \
        n -= 3 * (size_t)(BLK);                                               \
    }

__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
    uint64_t c = crc;
    while (n && ((uintptr_t)p & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        n--;
    }
    CRC_THREE(CRC_LONG, shift_long)
    CRC_THREE(CRC_SHORT, shift_short)
    CRC_THREE(CRC_TINY, shift_tiny)
    while (n >= 32) {
        uint64_t a, b, d, e;
        memcpy(&a, p, 8); memcpy(&b, p + 8, 8); memcpy(&d, p + 16, 8); memcpy(&e, p + 24, 8);
        c = __builtin_ia32_crc32di(c, a);
        c = __builtin_ia32_crc32di(c, b);
        c = __builtin_ia32_crc32di(c, d);
        c = __builtin_ia32_crc32di(c, e);
        p += 32;
        n -= 32;
    }
    while (n >= 8) {
        uint64_t a;
        memcpy(&a, p, 8);
        c = __builtin_ia32_crc32di(c, a);
        p += 8;
        n -= 8;
    }
    while (n--)
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return (uint32_t)c;
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Folds n >= 256 bytes (see the top of the file) and returns the register
 * after them, starting from register crc. */
__attribute__((target("sse4.2,avx512f,vpclmulqdq")))
static uint32_t crc_fold(uint32_t crc, const uint8_t *p, size_t n)
{
    const __m512i k = _mm512_set_epi64((long long)fold_k[1], (long long)fold_k[0],
                                       (long long)fold_k[1], (long long)fold_k[0],
                                       (long long)fold_k[1], (long long)fold_k[0],
                                       (long long)fold_k[1], (long long)fold_k[0]);
    /* the register is the first 32 bits of the message added in */
    __m512i a0 = _mm512_xor_si512(_mm512_loadu_si512((const void *)p),
                                  _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)crc)));
    __m512i a1 = _mm512_loadu_si512((const void *)(p + 64));
    __m512i a2 = _mm512_loadu_si512((const void *)(p + 128));
    __m512i a3 = _mm512_loadu_si512((const void *)(p + 192));
    p += 256;
    n -= 256;
#define CRC_FOLD_STEP(a, off)                                                    \
    a = _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(a, k, 0x00),           \
                                  _mm512_clmulepi64_epi128(a, k, 0x11),           \
                                  _mm512_loadu_si512((const void *)(p + (off))), 0x96)
    while (n >= 256) {
        CRC_FOLD_STEP(a0, 0);
        CRC_FOLD_STEP(a1, 64);
        CRC_FOLD_STEP(a2, 128);
        CRC_FOLD_STEP(a3, 192);
        p += 256;
        n -= 256;
    }
#undef CRC_FOLD_STEP
    uint8_t rest[256];
    _mm512_storeu_si512((void *)rest, a0);
    _mm512_storeu_si512((void *)(rest + 64), a1);
    _mm512_storeu_si512((void *)(rest + 128), a2);
    _mm512_storeu_si512((void *)(rest + 192), a3);
    return crc_hw(crc_hw(0, rest, sizeof rest), p, n);
}
#endif

uint32_t sdb_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
#if defined(__x86_64__) && defined(__GNUC__)
    if (crc_impl < 0) {
        if (have_fold && len >= CRC_FOLD_MIN)
            return ~crc_fold(crc, buf, len);
        if (have_sse42)
            return ~crc_hw(crc, buf, len);
    } else if (crc_impl == 2 && have_fold && len >= 256) {
        return ~crc_fold(crc, buf, len);
    } else if (crc_impl >= 1 && have_sse42) {
        return ~crc_hw(crc, buf, len);
    }
#endif
    return ~crc_soft(crc, buf, len);
}

/* Tests: use only implementation impl (0 table, 1 crc32 instruction, 2 the
 * fold, on every length it takes), or the best (-1).  Returns whether this
 * CPU has it. */
int sdb_crc32c_select(int impl)
{
    pthread_once(&crc_once, crc_init);
    crc_impl = impl;
    return impl <= 0 || (impl == 1 && have_sse42) || (impl == 2 && have_fold);
}

/*
 * Combining: the CRC of A||B from crc(A), crc(B) and len(B), by applying
 * len(B) zero bytes to crc(A) as a linear operator over GF(2).  A whole-
 * document read uses it to check the content CRC of raw chunks from their
 * already verified chunk CRCs, without a second pass over the bytes.
 */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
    uint32_t sum = 0;
    for (int i = 0; vec; i++, vec >>= 1)
        if (vec & 1)
            sum ^= mat[i];
    return sum;
}

static void gf2_square(uint32_t *sq, const uint32_t *mat)
{
    for (int n = 0; n < 32; n++)
        sq[n] = gf2_times(mat, mat[n]);
}

/* op = the operator that appends len zero bytes */
static void zeros_operator(uint32_t *op, uint64_t len)
{
    uint32_t one[32], sq[32], acc[32];
    /* one zero bit */
    one[0] = 0x82F63B78u;
    for (int n = 1; n < 32; n++)
        one[n] = 1u << (n - 1);
    gf2_square(sq, one);      /* two bits */
    gf2_square(one, sq);      /* four bits */
    gf2_square(sq, one);      /* one byte */
    for (int n = 0; n < 32; n++)
        acc[n] = 1u << n;     /* identity */
    while (len) {
        if (len & 1) {
            uint32_t t[32];
            for (int n = 0; n < 32; n++)
                t[n] = gf2_times(sq, acc[n]);
            memcpy(acc, t, sizeof t);
        }
        len >>= 1;
        if (len) {
            uint32_t t[32];
            gf2_square(t, sq);
            memcpy(sq, t, sizeof t);
        }
    }
    memcpy(op, acc, sizeof acc);
}

static uint32_t op_chunk[32];
static pthread_once_t op_once = PTHREAD_ONCE_INIT;
static void op_init(void) { zeros_operator(op_chunk, 65536); }

uint32_t sdb_crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2)
{
    if (!len2)
        return crc1;
    if (len2 == 65536) {
        pthread_once(&op_once, op_init);
        return gf2_times(op_chunk, crc1) ^ crc2;
    }
    uint32_t op[32];
    zeros_operator(op, len2);
    return gf2_times(op, crc1) ^ crc2;
}

/* A combine for one fixed len2, by table: four lookups instead of a matrix
 * product.  The writer uses it for the log frame's running checksum over a
 * page it has just sealed: the page's own CRC is the CRC of its body, so the
 * frame checksum follows from it without a second pass over the page. */
void sdb_crc32c_shift_init(sdb_crc_shift *s, uint64_t len2)
{
    shift_table(s->t, len2);
    s->len = len2;
}

uint32_t sdb_crc32c_shift_combine(const sdb_crc_shift *s, uint32_t crc1, uint32_t crc2)
{
    return crc_shift(s->t, crc1) ^ crc2;
}
