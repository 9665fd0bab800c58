/*
 * btree.c -- B+trees in pages with prefix-compressed nodes.
 *
 * Used for both indexes: the path tree (path -> document id) and the
 * document tree (id + kind + ... -> record).  Keys are byte strings compared
 * with memcmp order, shorter first on a tie.
 *
 * Node layout (after the 64-byte page header; docs/format.md, "Tree pages"):
 *   64  u16 nkeys
 *   66  u16 prefix_len        bytes shared by every key of the node
 *   68  u32 leftmost child    branch pages only; 0 in leaves
 *   72  prefix bytes
 *   ..  u16 offset[nkeys]     page offset of each entry, in key order
 *   ..  entries: u16 suffix_len, u16 value_len, suffix, value
 * In a branch, entry i's value is the u32 page number of the child holding
 * keys >= prefix+suffix_i; keys below the first entry are in the leftmost
 * child.
 *
 * Writers decode a node into full keys, change it, and encode it again into
 * as many pages as it needs (usually one; two on a split; more only when
 * several near-maximal keys meet).  Readers search the encoded page in place.
 *
 * Invariants (checked by sdb_bt_check):
 *  [T1] keys strictly increase within a node and across the tree;
 *  [T2] every key of child i of a branch lies in [key_i, key_{i+1});
 *  [T3] all leaves are at the same depth; no leaf but the root is empty (a
 *       branch may be left by deletes with one child and no key; only the
 *       root collapses into its single child).
 */
#include "sdb.h"

#include <stdlib.h>

#define N_HDR (SDB_PAGE_HDR + 8)

typedef struct ent {
    const uint8_t *k;
    size_t kl;
    const uint8_t *v;
    size_t vl;
} ent;

static int node_n(const uint8_t *p) { return rd16(p + SDB_PAGE_HDR); }
static size_t node_plen(const uint8_t *p) { return rd16(p + SDB_PAGE_HDR + 2); }
static const uint8_t *node_prefix(const uint8_t *p) { return p + N_HDR; }

/* Entry i of a node, bounds-checked against the page (the page CRC is
 * verified, but a bug or quick mode must not read out of bounds). */
static int node_ent(const uint8_t *p, uint32_t psize, int i, const uint8_t **suf, size_t *sl,
                    const uint8_t **val, size_t *vl)
{
    size_t plen = node_plen(p);
    size_t off = rd16(p + N_HDR + plen + 2 * (size_t)i);
    if (off + 4 > psize)
        return STREAMDB_ERR_CORRUPT;
    *sl = rd16(p + off);
    *vl = rd16(p + off + 2);
    if (off + 4 + *sl + *vl > psize)
        return STREAMDB_ERR_CORRUPT;
    *suf = p + off + 4;
    *val = *suf + *sl;
    return 0;
}

static int node_sane(const uint8_t *p, uint32_t psize, pgno_t pgno)
{
    size_t n = node_n(p), plen = node_plen(p);
    if (N_HDR + plen + 2 * n > psize)
        return sdb_err(STREAMDB_ERR_CORRUPT, "tree page %u: %zu keys do not fit", pgno, n);
    return 0;
}

static int keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c)
        return c;
    return al < bl ? -1 : al > bl;
}

/* First entry >= key (n if none); *exact when equal.  The node's prefix is
 * compared once; the binary search then compares suffixes only. */
static int node_lower(const uint8_t *p, uint32_t psize, const uint8_t *key, size_t klen,
                      int *exact, int *err)
{
    int n = node_n(p);
    size_t plen = node_plen(p);
    *exact = 0;
    size_t m = klen < plen ? klen : plen;
    int c = memcmp(key, node_prefix(p), m);
    if (c < 0 || (c == 0 && klen < plen))
        return 0;          /* below every key of the node */
    if (c > 0)
        return n;          /* above every key of the node */
    key += plen;
    klen -= plen;
    const uint8_t *offs = p + N_HDR + plen;
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        /* start loading both entries the next probe may compare against,
         * so that the cache misses of a leaf overlap instead of following
         * each other (a prefetch never faults; a wrong offset costs nothing) */
        if (hi - lo > 2) {
            __builtin_prefetch(p + rd16(offs + 2 * (size_t)((lo + mid) / 2)));
            __builtin_prefetch(p + rd16(offs + 2 * (size_t)((mid + 1 + hi) / 2)));
        }
        size_t off = rd16(offs + 2 * (size_t)mid);
        if (off + 4 > psize || off + 4 + rd16(p + off) > psize) {
            *err = 1;
            return 0;
        }
        size_t sl = rd16(p + off);
        const uint8_t *suf = p + off + 4;
        size_t mm = klen < sl ? klen : sl;
        int r;
        uint64_t ka, kb;
        if (mm >= 8 && (memcpy(&ka, key, 8), memcpy(&kb, suf, 8), ka != kb)) {
            /* most probes differ in the first eight bytes: one compare of
             * two big-endian words instead of a call to memcmp */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            ka = __builtin_bswap64(ka);
            kb = __builtin_bswap64(kb);
#endif
            r = ka < kb ? -1 : 1;
        } else {
            if (mm < 8) {
                /* short suffixes (the tail of a path after the node's
                 * prefix): a few bytes, cheaper inline than a call */
                size_t j = 0;
                while (j < mm && key[j] == suf[j])
                    j++;
                r = j < mm ? (key[j] < suf[j] ? -1 : 1) : 0;
            } else {
                r = memcmp(key, suf, mm);
            }
            if (!r)
                r = klen < sl ? -1 : klen > sl;
        }
        if (r > 0)
            lo = mid + 1;
        else {
            if (r == 0)
                *exact = 1;
            hi = mid;
        }
    }
    return lo;
}

/* node_lower for writers: an append (sequential keys, as both trees get
 * under a batch of new documents) is told by one compare with the node's
 * last key instead of a binary search.  Readers keep the plain search: for
 * a random key the extra compare would only add to it. */
static int node_lower_w(const uint8_t *p, uint32_t psize, const uint8_t *key, size_t klen,
                        int *exact, int *err)
{
    int n = node_n(p);
    size_t plen = node_plen(p);
    const uint8_t *suf, *val;
    size_t sl, vl;
    if (n > 0 && klen >= plen && !memcmp(key, node_prefix(p), plen) &&
        !node_ent(p, psize, n - 1, &suf, &sl, &val, &vl) &&
        keycmp(key + plen, klen - plen, suf, sl) > 0) {
        *exact = 0;
        return n;
    }
    return node_lower(p, psize, key, klen, exact, err);
}

/* Child slot for key in a branch: 0 = leftmost, i+1 = entry i. */
static int branch_slot(const uint8_t *p, uint32_t psize, const uint8_t *key, size_t klen, int *err)
{
    int exact;
    int i = node_lower(p, psize, key, klen, &exact, err);
    return exact ? i + 1 : i;
}

static int branch_slot_w(const uint8_t *p, uint32_t psize, const uint8_t *key, size_t klen,
                         int *err)
{
    int exact;
    int i = node_lower_w(p, psize, key, klen, &exact, err);
    return exact ? i + 1 : i;
}

static pgno_t branch_child(const uint8_t *p, uint32_t psize, int slot, int *err)
{
    if (slot == 0)
        return rd32(p + SDB_PAGE_HDR + 4);
    const uint8_t *suf, *val;
    size_t sl, vl;
    if (node_ent(p, psize, slot - 1, &suf, &sl, &val, &vl) || vl != 4) {
        *err = 1;
        return 0;
    }
    return rd32(val);
}

static int get_node(sdb_env *env, const sdb_view *v, pgno_t pgno, sdb_page *pg)
{
    int rc = sdb_page_get(env, v, pgno, 0, pg);
    if (rc)
        return rc;
    int t = pg->data[4];
    if ((t != SDB_PT_LEAF && t != SDB_PT_BRANCH) || node_sane(pg->data, env->psize, pgno)) {
        sdb_page_put(env, pg);
        return sdb_err(STREAMDB_ERR_CORRUPT, "page %u is not a tree page (type %d)", pgno, t);
    }
    return 0;
}

static int corrupt_node(pgno_t pgno)
{
    return sdb_err(STREAMDB_ERR_CORRUPT, "tree page %u: entry out of bounds", pgno);
}

int sdb_bt_get(sdb_env *env, const sdb_view *v, pgno_t root, const uint8_t *key, size_t klen,
               uint8_t *val, size_t valcap, size_t *vlen)
{
    pgno_t p = root;
    for (int depth = 0; p; depth++) {
        if (depth >= SDB_BT_MAXDEPTH)
            return sdb_err(STREAMDB_ERR_CORRUPT, "tree deeper than %d levels", SDB_BT_MAXDEPTH);
        sdb_page pg;
        int rc = get_node(env, v, p, &pg), err = 0;
        if (rc)
            return rc;
        if (pg.data[4] == SDB_PT_BRANCH) {
            int slot = branch_slot(pg.data, env->psize, key, klen, &err);
            pgno_t c = err ? 0 : branch_child(pg.data, env->psize, slot, &err);
            sdb_page_put(env, &pg);
            if (err)
                return corrupt_node(p);
            p = c;
            continue;
        }
        int exact;
        int i = node_lower(pg.data, env->psize, key, klen, &exact, &err);
        if (err) {
            sdb_page_put(env, &pg);
            return corrupt_node(p);
        }
        if (!exact) {
            sdb_page_put(env, &pg);
            return STREAMDB_ERR_NOT_FOUND;
        }
        const uint8_t *suf, *vv;
        size_t sl, vl;
        if (node_ent(pg.data, env->psize, i, &suf, &sl, &vv, &vl)) {
            /* the search bounded the key, not the value */
            sdb_page_put(env, &pg);
            return corrupt_node(p);
        }
        *vlen = vl;
        if (val)
            memcpy(val, vv, vl < valcap ? vl : valcap);
        sdb_page_put(env, &pg);
        return 0;
    }
    return STREAMDB_ERR_NOT_FOUND;
}

/* ---- decode / encode for writers ---- */

typedef struct nodebuf {
    ent *e;
    int n, cap;
    uint8_t *arena;     /* full keys */
    size_t used, acap;
    pgno_t leftmost;
    int leaf;
} nodebuf;

static void nb_free(nodebuf *nb)
{
    sdb_free(nb->e);
    sdb_free(nb->arena);
}

static int nb_reserve(nodebuf *nb, int n)
{
    if (n <= nb->cap)
        return 0;
    int nc = nb->cap ? nb->cap * 2 : 64;
    while (nc < n)
        nc *= 2;
    ent *ne = sdb_realloc(nb->e, nc * sizeof *ne);
    if (!ne)
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    nb->e = ne;
    nb->cap = nc;
    return 0;
}

/* Decodes page into nb.  Keys and values are copied into one arena. */
static int nb_decode(nodebuf *nb, const uint8_t *p, uint32_t psize, pgno_t pgno)
{
    int n = node_n(p);
    size_t plen = node_plen(p);
    memset(nb, 0, sizeof *nb);
    nb->leaf = p[4] == SDB_PT_LEAF;
    nb->leftmost = rd32(p + SDB_PAGE_HDR + 4);
    if (nb_reserve(nb, n + 2))
        return STREAMDB_ERR_NOMEM;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *suf, *val;
        size_t sl, vl;
        if (node_ent(p, psize, i, &suf, &sl, &val, &vl))
            return corrupt_node(pgno);
        total += plen + sl + vl;
    }
    nb->acap = total + 1;
    nb->arena = sdb_malloc(nb->acap);
    if (!nb->arena)
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    uint8_t *a = nb->arena;
    for (int i = 0; i < n; i++) {
        const uint8_t *suf = NULL, *val = NULL;
        size_t sl = 0, vl = 0;
        node_ent(p, psize, i, &suf, &sl, &val, &vl);   /* checked by the loop above */
        memcpy(a, node_prefix(p), plen);
        memcpy(a + plen, suf, sl);
        memcpy(a + plen + sl, val, vl);
        nb->e[i].k = a;
        nb->e[i].kl = plen + sl;
        nb->e[i].v = a + plen + sl;
        nb->e[i].vl = vl;
        a += plen + sl + vl;
    }
    nb->used = total;
    nb->n = n;
    return 0;
}

static size_t lcp(const ent *a, const ent *b)
{
    size_t m = a->kl < b->kl ? a->kl : b->kl, i = 0;
    while (i < m && a->k[i] == b->k[i])
        i++;
    return i;
}

/* The prefix a node of entries [a, b) is encoded with: the bytes all its
 * keys share, but, for a piece split off to the right of other entries (a > 0),
 * no more than it shares with the entry before it.  Any prefix of the keys'
 * common prefix is a valid node prefix; this one leaves room for what comes
 * next.  A page split off by an append holds one or two keys, whose common
 * prefix is nearly the whole key: the next append would not share it and
 * would have to re-encode the page instead of taking the in-place path. */
static size_t piece_plen(const ent *e, int a, int b)
{
    size_t pl = lcp(&e[a], &e[b - 1]);
    if (a > 0) {
        size_t before = lcp(&e[a - 1], &e[a]);
        if (before < pl)
            pl = before;
    }
    return pl;
}

/* Encoded size of entries [a, b), with prefix sums: sums[i] = sum over j < i
 * of (6 + kl + vl). */
static size_t span_fast(const ent *e, const size_t *sums, int a, int b)
{
    if (a >= b)
        return N_HDR;
    size_t pl = piece_plen(e, a, b);
    if (pl > 65535)
        pl = 65535;
    return N_HDR + pl + (sums[b] - sums[a]) - (size_t)(b - a) * pl;
}


/* Encodes entries [a, b) into p with a prefix of pl bytes, which every key
 * of them must share. */
static void encode_pl(uint8_t *p, uint32_t psize, int leaf, pgno_t leftmost, const ent *e, int a,
                      int b, size_t pl)
{
    int n = b - a;
    size_t used = 0;
    for (int i = a; i < b; i++)
        used += 4 + (e[i].kl - pl) + e[i].vl;
    /* zero the header and the gap; entries and offsets overwrite the rest */
    memset(p, 0, N_HDR + pl + 2 * (size_t)n);
    memset(p + N_HDR + pl + 2 * (size_t)n, 0, psize - used - (N_HDR + pl + 2 * (size_t)n));
    p[4] = leaf ? SDB_PT_LEAF : SDB_PT_BRANCH;
    wr16(p + SDB_PAGE_HDR, (uint16_t)n);
    wr16(p + SDB_PAGE_HDR + 2, (uint16_t)pl);
    wr32(p + SDB_PAGE_HDR + 4, leaf ? 0 : leftmost);
    if (n)
        memcpy(p + N_HDR, e[a].k, pl);
    /* entries are packed downward from the end of the page, so an insert
     * that fits only appends an entry and shifts the offset array */
    size_t off = psize;
    for (int i = a; i < b; i++) {
        size_t sl = e[i].kl - pl, sz = 4 + sl + e[i].vl;
        off -= sz;
        wr16(p + N_HDR + pl + 2 * (size_t)(i - a), (uint16_t)off);
        wr16(p + off, (uint16_t)sl);
        wr16(p + off + 2, (uint16_t)e[i].vl);
        memcpy(p + off + 4, e[i].k + pl, sl);
        memcpy(p + off + 4 + sl, e[i].v, e[i].vl);
    }
    wr16(p + 6, (uint16_t)(psize - off));   /* bytes used at the end */
}

static void encode(uint8_t *p, uint32_t psize, int leaf, pgno_t leftmost, const ent *e, int a, int b)
{
    size_t pl = b > a ? piece_plen(e, a, b) : 0;
    encode_pl(p, psize, leaf, leftmost, e, a, b, pl > 65535 ? 65535 : pl);
}

/* Content area start of an encoded node (entries live in [start, psize)). */
static size_t content_start(const uint8_t *p, uint32_t psize) { return psize - rd16(p + 6); }

/*
 * In-place insert or replace in a node when the key shares the node's prefix
 * and the entry fits the free gap: 1 done, 0 the caller must re-encode.  Used
 * for leaves, and for a branch taking the separator of a child that split.
 * Space of replaced or deleted entries is reclaimed by the next re-encode.
 */
static int fast_put(uint8_t *p, uint32_t psize, const uint8_t *key, size_t klen,
                         const uint8_t *val, size_t vlen, int *replaced)
{
    size_t n = node_n(p), pl = node_plen(p);
    if (!n || klen < pl || memcmp(key, node_prefix(p), pl))
        return 0;
    int exact, err = 0;
    int pos = node_lower_w(p, psize, key, klen, &exact, &err);
    if (err)
        return 0;
    size_t sl = klen - pl, sz = 4 + sl + vlen;
    size_t hdr_end = N_HDR + pl + 2 * n + (exact ? 0 : 2);
    size_t start = content_start(p, psize);
    if (start < hdr_end || start - hdr_end < sz || start > psize)
        return 0;
    size_t off = start - sz;
    wr16(p + off, (uint16_t)sl);
    wr16(p + off + 2, (uint16_t)vlen);
    memcpy(p + off + 4, key + pl, sl);
    memcpy(p + off + 4 + sl, val, vlen);
    uint8_t *offs = p + N_HDR + pl;
    if (exact) {
        *replaced = 1;
    } else {
        memmove(offs + 2 * (pos + 1), offs + 2 * pos, 2 * (n - pos));
        wr16(p + SDB_PAGE_HDR, (uint16_t)(n + 1));
    }
    wr16(offs + 2 * pos, (uint16_t)off);
    wr16(p + 6, (uint16_t)(psize - off));
    return 1;
}

/* A split result handed to the parent: (separator, new right page). */
typedef struct split {
    int n;
    uint8_t **keys;
    size_t *klens;
    pgno_t *pages;
} split;

static void split_free(split *s)
{
    for (int i = 0; i < s->n; i++)
        sdb_free(s->keys[i]);
    sdb_free(s->keys);
    sdb_free(s->klens);
    sdb_free(s->pages);
    memset(s, 0, sizeof *s);
}

static int split_push(split *s, const uint8_t *k, size_t kl, pgno_t page)
{
    uint8_t **nk = sdb_realloc(s->keys, (s->n + 1) * sizeof *nk);
    if (nk)
        s->keys = nk;
    size_t *nl = sdb_realloc(s->klens, (s->n + 1) * sizeof *nl);
    if (nl)
        s->klens = nl;
    pgno_t *np = sdb_realloc(s->pages, (s->n + 1) * sizeof *np);
    if (np)
        s->pages = np;
    uint8_t *copy = sdb_malloc(kl ? kl : 1);
    if (!nk || !nl || !np || !copy) {
        sdb_free(copy);
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    }
    memcpy(copy, k, kl);
    s->keys[s->n] = copy;
    s->klens[s->n] = kl;
    s->pages[s->n] = page;
    s->n++;
    return 0;
}

/* How many bytes key shares with the node key of prefix d[N_HDR, +pl) and
 * suffix suf (sl bytes). */
static size_t lcp_node_key(const uint8_t *d, size_t pl, const uint8_t *suf, size_t sl,
                           const uint8_t *key, size_t klen)
{
    size_t c = 0, m = klen < pl ? klen : pl;
    while (c < m && key[c] == d[N_HDR + c])
        c++;
    if (c < pl)
        return c;
    size_t j = 0, m2 = klen - pl < sl ? klen - pl : sl;
    while (j < m2 && key[pl + j] == suf[j])
        j++;
    return pl + j;
}

/*
 * An append that does not fit its leaf d (the dirty copy) even re-encoded:
 * the key alone goes to a new leaf on the right, and the full leaf stays as
 * it is.  That is the split nb_store makes for an append (the last cut that
 * fits keeps every old entry on the left), without decoding the leaf and
 * encoding it again.  The new leaf's prefix is short enough for the next
 * appends to fit it in place.  A leaf with dead space (entries replaced in place) is left to the
 * re-encode, which may make room without a split.  1: done, *np the new
 * leaf, the split in out; 0: not such an append; < 0: an error.
 */
static int append_split(sdb_env *env, sdb_wtxn *w, const uint8_t *d, const uint8_t *key,
                        size_t klen, const uint8_t *val, size_t vlen, pgno_t *np, split *out)
{
    uint32_t ps = env->psize;
    int n = node_n(d), exact, err = 0;
    size_t pl = node_plen(d);
    if (n < 1 || node_lower_w(d, ps, key, klen, &exact, &err) != n || exact || err)
        return 0;
    size_t live = 0, sl = 0, vl, first = 0;
    const uint8_t *suf = NULL, *vv;
    for (int i = 0; i < n; i++) {
        if (node_ent(d, ps, i, &suf, &sl, &vv, &vl))
            return 0;   /* the re-encode reports it */
        if (i == 0)
            first = lcp_node_key(d, pl, suf, sl, key, klen);
        live += 4 + sl + vl;
    }
    if (live != rd16(d + 6))
        return 0;
    /* the leaf re-encoded with the key (span_fast's sum: its prefix is what
     * the first and the new key share) fits: nb_store splits nothing */
    if (N_HDR + 2 * (size_t)n + live + (size_t)n * pl + 6 + klen + vlen - (size_t)n * first <= ps)
        return 0;
    /* the new leaf's prefix: what the key shares with the full leaf's first
     * key, which the keys after it are likely to share too.  With what it
     * shares with the last key (piece_plen's rule for a piece of a split),
     * the document tree's next append (the next id) missed that prefix and
     * re-encoded the new leaf after each split. */
    size_t c = first;
    uint8_t *nd;
    int rc = sdb_page_new(env, w, np, &nd);
    if (!rc)
        rc = split_push(out, key, klen, *np);
    if (rc)
        return rc;
    ent e = {key, klen, val, vlen};
    encode_pl(nd, ps, 1, 0, &e, 0, 1, c > 65535 ? 65535 : c);
    return 1;
}

/*
 * Writes nb into page pgno, splitting into new pages as needed.  For a
 * branch, the first entry of each new page moves up as the separator and its
 * child becomes the new page's leftmost child.  hint: index of the entry just
 * inserted (an append at the end splits at the end, so sequential inserts
 * fill pages completely).
 */
static int nb_store(sdb_env *env, sdb_wtxn *w, nodebuf *nb, pgno_t pgno, int hint, split *out)
{
    uint32_t ps = env->psize;
    ent *e = nb->e;
    int n = nb->n;
    memset(out, 0, sizeof *out);
    int cuts[256], ncuts = 0;   /* piece boundaries: piece j = [cuts[j-1], cuts[j]) */
    size_t *sums = sdb_malloc((size_t)(n + 1) * sizeof *sums);
    if (!sums)
        return sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    sums[0] = 0;
    for (int i = 0; i < n; i++)
        sums[i + 1] = sums[i] + 6 + e[i].kl + e[i].vl;
#define span_size(e, a, b) span_fast(e, sums, a, b)
    if (span_size(e, 0, n) <= ps) {
        cuts[ncuts++] = n;
    } else {
        /* try one cut: balanced by bytes, or at the end for appends */
        int best = -1;
        size_t total = span_size(e, 0, n), bestd = SIZE_MAX;
        if (hint == n - 1) {
            /* an append: the last cut that fits both sides, found from the
             * end (the left side shrinks and the right grows as the cut
             * moves left, so the first that fits is the one) instead of
             * sizing every cut, which cost a split of a full path-tree
             * leaf some 600 prefix computations */
            for (int c = n - 1; c >= 1; c--) {
                int bstart = nb->leaf ? c : c + 1;
                if (span_size(e, 0, c) > ps)
                    continue;
                if (span_size(e, bstart, n) <= ps)
                    best = c;
                break;
            }
        } else {
            for (int c = 1; c < n; c++) {
                int bstart = nb->leaf ? c : c + 1;  /* branch: entry c moves up */
                size_t l = span_size(e, 0, c), r = span_size(e, bstart, n);
                if (l > ps || r > ps)
                    continue;
                size_t d = l > total / 2 ? l - total / 2 : total / 2 - l;
                if (d < bestd) {
                    bestd = d;
                    best = c;
                }
            }
        }
        if (best > 0) {
            cuts[ncuts++] = best;
            cuts[ncuts++] = n;
        } else {
            /* greedy: as many entries per page as fit */
            int a = 0;
            while (a < n) {
                int b = a + 1;
                while (b < n && span_size(e, a, b + 1) <= ps)
                    b++;
                if (ncuts == 255) {
                    sdb_free(sums);
                    return sdb_err(STREAMDB_ERR_INTERNAL, "node split into too many pages");
                }
                cuts[ncuts++] = b;
                a = nb->leaf ? b : b + 1;
                if (!nb->leaf && a > n)
                    break;
            }
            if (cuts[ncuts - 1] < n)
                cuts[ncuts - 1] = n;
        }
    }
    int start = 0;
    for (int j = 0; j < ncuts; j++) {
        int end = cuts[j];
        pgno_t target = pgno;
        pgno_t leftmost = nb->leftmost;
        int a = start;
        int rc;
        if (j > 0) {
            uint8_t *tmp;
            rc = sdb_page_new(env, w, &target, &tmp);
            if (!rc)
                rc = split_push(out, e[start].k, e[start].kl, target);
            if (rc) {
                sdb_free(sums);
                split_free(out);
                return rc;
            }
            if (!nb->leaf) {
                leftmost = rd32(e[start].v);
                a = start + 1;
            }
        }
        uint8_t *data;
        rc = sdb_page_dirty(env, w, target, &data);
        if (!rc && span_size(e, a, end) > ps)
            rc = sdb_err(STREAMDB_ERR_INTERNAL, "tree node piece does not fit a page");
        if (rc) {
            sdb_free(sums);
            split_free(out);
            return rc;
        }
        encode(data, ps, nb->leaf, leftmost, e, a, end);
        start = end;
    }
    sdb_free(sums);
#undef span_size
    return 0;
}

/* ---- insert ---- */

/* put_rec's no-overwrite mode (sdb_bt_insert): an existing entry is left as
 * it is and its value copied out (at most cap bytes; len gets its length). */
typedef struct keep {
    uint8_t *val;
    size_t cap, len;
} keep;

/* rm: pgno is on the tree's rightmost path (the root, or the last child of a
 * node on it); *rleaf gets pgno when it is a leaf on that path that took the
 * entry without splitting, else stays 0. */
static int put_rec(sdb_env *env, sdb_wtxn *w, pgno_t pgno, int depth, const uint8_t *key,
                   size_t klen, const uint8_t *val, size_t vlen, int *replaced, keep *kp,
                   int rm, pgno_t *rleaf, split *out)
{
    memset(out, 0, sizeof *out);   /* every return leaves a valid (maybe empty) split */
    if (depth >= SDB_BT_MAXDEPTH)
        return sdb_err(STREAMDB_ERR_CORRUPT, "tree deeper than %d levels", SDB_BT_MAXDEPTH);
    sdb_page pg;
    int rc = get_node(env, &w->view, pgno, &pg), err = 0;
    if (rc)
        return rc;
    if (pg.data[4] == SDB_PT_LEAF) {
        uint8_t *d;
        if (kp) {
            /* looked up in the clean page: a key that is there already
             * dirties nothing (an append is told by one compare) */
            int exact;
            int i = node_lower_w(pg.data, env->psize, key, klen, &exact, &err);
            const uint8_t *suf, *vv;
            size_t sl, vl;
            if (!err && exact && node_ent(pg.data, env->psize, i, &suf, &sl, &vv, &vl))
                err = 1;
            if (!err && exact) {
                kp->len = vl;
                if (kp->val)
                    memcpy(kp->val, vv, vl < kp->cap ? vl : kp->cap);
            }
            if (err || exact) {
                sdb_page_put(env, &pg);
                return err ? corrupt_node(pgno) : STREAMDB_ERR_EXISTS;
            }
        }
        sdb_page_put(env, &pg);
        rc = sdb_page_dirty(env, w, pgno, &d);
        if (rc)
            return rc;
        memset(out, 0, sizeof *out);
        if (fast_put(d, env->psize, key, klen, val, vlen, replaced)) {
            if (rm)
                *rleaf = pgno;
            return 0;
        }
        pgno_t np;
        rc = append_split(env, w, d, key, klen, val, vlen, &np, out);
        if (rc) {
            /* the new leaf follows the full one: the rightmost, if that was */
            if (rc > 0 && rm)
                *rleaf = np;
            return rc < 0 ? rc : 0;
        }
        pg.data = d;   /* decode the dirty copy below (no cache entry to put) */
        pg.entry = NULL;
    }
    int slot = 0;
    pgno_t child = 0;
    split sub;
    memset(&sub, 0, sizeof sub);
    if (pg.data[4] == SDB_PT_BRANCH) {
        /* descend first: the branch is decoded only if the child split */
        slot = branch_slot_w(pg.data, env->psize, key, klen, &err);
        child = err ? 0 : branch_child(pg.data, env->psize, slot, &err);
        int last = slot == node_n(pg.data);
        sdb_page_put(env, &pg);
        if (err)
            return corrupt_node(pgno);
        rc = put_rec(env, w, child, depth + 1, key, klen, val, vlen, replaced, kp, rm && last,
                     rleaf, &sub);
        if (rc || !sub.n) {
            split_free(&sub);
            memset(out, 0, sizeof *out);
            return rc;
        }
        if (sub.n == 1) {
            /* one new child: its separator goes in place, right after the
             * child it split from, when it fits (most splits) */
            uint8_t *d, cb[4];
            rc = sdb_page_dirty(env, w, pgno, &d);
            if (rc) {
                split_free(&sub);
                return rc;
            }
            int exact, e2 = 0, dummy;
            int at = node_lower_w(d, env->psize, sub.keys[0], sub.klens[0], &exact, &e2);
            wr32(cb, sub.pages[0]);
            if (!e2 && !exact && at == slot &&
                fast_put(d, env->psize, sub.keys[0], sub.klens[0], cb, 4, &dummy)) {
                split_free(&sub);
                return 0;
            }
        }
        rc = get_node(env, &w->view, pgno, &pg);
        if (rc) {
            split_free(&sub);
            return rc;
        }
    }
    nodebuf nb;
    rc = nb_decode(&nb, pg.data, env->psize, pgno);
    sdb_page_put(env, &pg);
    if (rc) {
        nb_free(&nb);
        split_free(&sub);
        return rc;
    }
    int pos;
    if (nb.leaf) {
        int lo = 0, hi = nb.n;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (keycmp(nb.e[mid].k, nb.e[mid].kl, key, klen) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        pos = lo;
        if (pos < nb.n && !keycmp(nb.e[pos].k, nb.e[pos].kl, key, klen)) {
            *replaced = 1;
            nb.e[pos].v = val;
            nb.e[pos].vl = vlen;
        } else {
            memmove(&nb.e[pos + 1], &nb.e[pos], (nb.n - pos) * sizeof *nb.e);
            nb.e[pos].k = key;
            nb.e[pos].kl = klen;
            nb.e[pos].v = val;
            nb.e[pos].vl = vlen;
            nb.n++;
        }
    } else {
        rc = nb_reserve(&nb, nb.n + sub.n + 1);
        uint8_t (*cbuf)[4] = sdb_malloc(sub.n * 4 + 1);
        if (rc || !cbuf) {
            sdb_free(cbuf);
            nb_free(&nb);
            split_free(&sub);
            return rc ? rc : sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
        }
        /* new children go right after the child we descended into (slot) */
        pos = slot;
        memmove(&nb.e[pos + sub.n], &nb.e[pos], (nb.n - pos) * sizeof *nb.e);
        for (int i = 0; i < sub.n; i++) {
            wr32(cbuf[i], sub.pages[i]);
            nb.e[pos + i].k = sub.keys[i];
            nb.e[pos + i].kl = sub.klens[i];
            nb.e[pos + i].v = cbuf[i];
            nb.e[pos + i].vl = 4;
        }
        nb.n += sub.n;
        rc = nb_store(env, w, &nb, pgno, pos + sub.n - 1 == nb.n - 1 ? nb.n - 1 : pos, out);
        sdb_free(cbuf);
        split_free(&sub);
        nb_free(&nb);
        return rc;
    }
    rc = nb_store(env, w, &nb, pgno, pos, out);
    nb_free(&nb);
    if (!rc && rm && !out->n)
        *rleaf = pgno;   /* re-encoded in place, not split */
    return rc;
}

/* Which of the transaction's rightmost-leaf slots serves the tree at root
 * (-1: none; only the two trees of the meta have one). */
static int rleaf_slot(sdb_wtxn *w, const pgno_t *root)
{
    return root == &w->view.meta.path_root ? 0 : root == &w->view.meta.doc_root ? 1 : -1;
}

/*
 * An append without a descent: a key above every key of the tree's rightmost
 * leaf belongs in that leaf (it covers everything from its separator up), so
 * when the entry fits there it goes in with no branch visited.  1: done;
 * 0: not an append to that leaf, or it does not fit (the caller descends);
 * < 0: an error.  The leaf is known rightmost because only a full descent
 * names it (put_rec's rleaf) and it stays rightmost until it splits (put_rec
 * then names no leaf) or an entry is deleted (sdb_bt_del forgets it).  The
 * page is looked at before it is dirtied, so a key that does not append
 * dirties nothing here.
 */
static int bt_append(sdb_env *env, sdb_wtxn *w, pgno_t leaf, const uint8_t *key, size_t klen,
                     const uint8_t *val, size_t vlen)
{
    sdb_page pg;
    int rc = get_node(env, &w->view, leaf, &pg), err = 0, exact = 0;
    if (rc)
        return rc;
    int append = pg.data[4] == SDB_PT_LEAF && node_n(pg.data) > 0 &&
                 node_lower_w(pg.data, env->psize, key, klen, &exact, &err) == node_n(pg.data) &&
                 !exact && !err;
    sdb_page_put(env, &pg);
    if (!append)
        return 0;
    uint8_t *d;
    if ((rc = sdb_page_dirty(env, w, leaf, &d)))
        return rc;
    int replaced = 0;
    return fast_put(d, env->psize, key, klen, val, vlen, &replaced);
}

static int bt_put(sdb_env *env, sdb_wtxn *w, pgno_t *root, const uint8_t *key, size_t klen,
                  const uint8_t *val, size_t vlen, int *replaced, keep *kp)
{
    int dummy;
    if (!replaced)
        replaced = &dummy;
    *replaced = 0;
    if (klen + vlen + 6 + N_HDR > env->psize || vlen > 65535 || klen > 65535)
        return sdb_err(STREAMDB_ERR_INTERNAL, "tree entry of %zu bytes too large", klen + vlen);
    int rc;
    if (!*root) {
        uint8_t *data;
        pgno_t p;
        rc = sdb_page_new(env, w, &p, &data);
        if (rc)
            return rc;
        ent e = {key, klen, val, vlen};
        encode(data, env->psize, 1, 0, &e, 0, 1);
        *root = p;
        return 0;
    }
    int rs = rleaf_slot(w, root);
    if (rs >= 0 && w->rleaf[rs].leaf && w->rleaf[rs].root == *root) {
        rc = bt_append(env, w, w->rleaf[rs].leaf, key, klen, val, vlen);
        if (rc) {
            if (rc < 0)
                w->rleaf[rs].leaf = 0;
            return rc < 0 ? rc : 0;
        }
    }
    split s;
    pgno_t rl = 0;
    rc = put_rec(env, w, *root, 0, key, klen, val, vlen, replaced, kp, 1, &rl, &s);
    if (rs >= 0 && rc != STREAMDB_ERR_EXISTS) {
        /* after a split of the root, *root changes below: the slot then names
         * an old root and goes unused until a descent from the new one */
        w->rleaf[rs].root = *root;
        w->rleaf[rs].leaf = rc ? 0 : rl;
    }
    if (rc || !s.n) {
        split_free(&s);
        return rc;
    }
    /* the root split: a new root above it */
    nodebuf nb;
    memset(&nb, 0, sizeof nb);
    nb.leftmost = *root;
    rc = nb_reserve(&nb, s.n);
    uint8_t (*cbuf)[4] = sdb_malloc(s.n * 4 + 1);
    if (!rc && cbuf) {
        for (int i = 0; i < s.n; i++) {
            wr32(cbuf[i], s.pages[i]);
            nb.e[i] = (ent){s.keys[i], s.klens[i], cbuf[i], 4};
        }
        nb.n = s.n;
        pgno_t np;
        uint8_t *data;
        rc = sdb_page_new(env, w, &np, &data);
        split up = {0};
        if (!rc)
            rc = nb_store(env, w, &nb, np, nb.n - 1, &up);
        if (!rc && up.n) {
            /* a root with many near-maximal separators: grow once more */
            split_free(&up);
            rc = sdb_err(STREAMDB_ERR_INTERNAL, "root split overflow");
        }
        if (!rc)
            *root = np;
    } else if (!rc) {
        rc = sdb_err(STREAMDB_ERR_NOMEM, "out of memory");
    }
    sdb_free(cbuf);
    nb_free(&nb);
    split_free(&s);
    return rc;
}

int sdb_bt_put(sdb_env *env, sdb_wtxn *w, pgno_t *root, const uint8_t *key, size_t klen,
               const uint8_t *val, size_t vlen, int *replaced)
{
    return bt_put(env, w, root, key, klen, val, vlen, replaced, NULL);
}

int sdb_bt_insert(sdb_env *env, sdb_wtxn *w, pgno_t *root, const uint8_t *key, size_t klen,
                  const uint8_t *val, size_t vlen, uint8_t *old, size_t oldcap, size_t *oldlen)
{
    keep k = {old, oldcap, 0};
    int rc = bt_put(env, w, root, key, klen, val, vlen, NULL, &k);
    if (rc == STREAMDB_ERR_EXISTS && oldlen)
        *oldlen = k.len;
    return rc;
}

/* ---- delete ---- */

/* *emptied: the node at pgno has no entries left (and was freed). */
static int del_rec(sdb_env *env, sdb_wtxn *w, pgno_t pgno, int depth, const uint8_t *key,
                   size_t klen, int *emptied, pgno_t *only_child)
{
    *emptied = 0;
    *only_child = 0;
    if (depth >= SDB_BT_MAXDEPTH)
        return sdb_err(STREAMDB_ERR_CORRUPT, "tree deeper than %d levels", SDB_BT_MAXDEPTH);
    sdb_page pg;
    int rc = get_node(env, &w->view, pgno, &pg), err = 0;
    if (rc)
        return rc;
    if (pg.data[4] == SDB_PT_LEAF) {
        int exact;
        int i = node_lower(pg.data, env->psize, key, klen, &exact, &err);
        if (err || !exact) {
            sdb_page_put(env, &pg);
            return err ? corrupt_node(pgno) : STREAMDB_ERR_NOT_FOUND;
        }
        int n = node_n(pg.data);
        sdb_page_put(env, &pg);
        if (n > 1) {
            /* drop the offset slot; the entry's bytes wait for a re-encode */
            uint8_t *d;
            rc = sdb_page_dirty(env, w, pgno, &d);
            if (rc)
                return rc;
            uint8_t *offs = d + N_HDR + node_plen(d);
            memmove(offs + 2 * i, offs + 2 * (i + 1), 2 * (size_t)(n - i - 1));
            wr16(d + SDB_PAGE_HDR, (uint16_t)(n - 1));
            return 0;
        }
        rc = sdb_page_get(env, &w->view, pgno, 0, &pg);
        if (rc)
            return rc;
        nodebuf nb;
        rc = nb_decode(&nb, pg.data, env->psize, pgno);
        sdb_page_put(env, &pg);
        if (!rc) {
            memmove(&nb.e[i], &nb.e[i + 1], (nb.n - i - 1) * sizeof *nb.e);
            nb.n--;
            if (nb.n == 0) {
                *emptied = 1;
                rc = sdb_page_free(env, w, pgno, 1);
            } else {
                uint8_t *data;
                rc = sdb_page_dirty(env, w, pgno, &data);
                if (!rc)
                    encode(data, env->psize, 1, 0, nb.e, 0, nb.n);
            }
        }
        nb_free(&nb);
        return rc;
    }
    int slot = branch_slot(pg.data, env->psize, key, klen, &err);
    pgno_t child = err ? 0 : branch_child(pg.data, env->psize, slot, &err);
    sdb_page_put(env, &pg);
    if (err)
        return corrupt_node(pgno);
    int cemptied;
    pgno_t conly;   /* always 0: only the root collapses */
    rc = del_rec(env, w, child, depth + 1, key, klen, &cemptied, &conly);
    if (rc || !cemptied)
        return rc;
    rc = get_node(env, &w->view, pgno, &pg);
    if (rc)
        return rc;
    nodebuf nb;
    rc = nb_decode(&nb, pg.data, env->psize, pgno);
    sdb_page_put(env, &pg);
    if (rc) {
        nb_free(&nb);
        return rc;
    }
    /* remove the emptied child's slot */
    if (slot == 0) {
        if (nb.n == 0) {
            *emptied = 1;
            nb_free(&nb);
            return sdb_page_free(env, w, pgno, 1);
        }
        nb.leftmost = rd32(nb.e[0].v);
        memmove(&nb.e[0], &nb.e[1], (nb.n - 1) * sizeof *nb.e);
    } else {
        memmove(&nb.e[slot - 1], &nb.e[slot], (nb.n - slot) * sizeof *nb.e);
    }
    nb.n--;
    if (nb.n == 0 && depth == 0) {
        /* a root with one child left: the child becomes the root (every
         * leaf moves up one level, so they stay at one depth [T3]) */
        *only_child = nb.leftmost;
        nb_free(&nb);
        return sdb_page_free(env, w, pgno, 1);
    }
    /* below the root, a branch left with one child keeps it, with no key:
     * linking the parent to the child instead would shorten this subtree
     * alone and put its leaves one level above the others' [T3] */
    uint8_t *data;
    rc = sdb_page_dirty(env, w, pgno, &data);
    if (!rc)
        encode(data, env->psize, 0, nb.leftmost, nb.e, 0, nb.n);
    nb_free(&nb);
    return rc;
}

int sdb_bt_del(sdb_env *env, sdb_wtxn *w, pgno_t *root, const uint8_t *key, size_t klen)
{
    if (!*root)
        return STREAMDB_ERR_NOT_FOUND;
    /* a delete may empty, merge or free the rightmost leaf: forget it */
    w->rleaf[0].leaf = w->rleaf[1].leaf = 0;
    int emptied;
    pgno_t only;
    int rc = del_rec(env, w, *root, 0, key, klen, &emptied, &only);
    if (rc)
        return rc;
    if (emptied)
        *root = 0;
    else if (only)
        *root = only;
    return 0;
}

/* ---- cursors ---- */

static int cur_load(sdb_cursor_bt *c)
{
    /* copy the current entry's key; value points into the held leaf */
    const uint8_t *suf, *val;
    size_t sl, vl;
    int i = c->stack[c->depth - 1].idx;
    const uint8_t *p = c->leaf.data;
    if (node_ent(p, c->env->psize, i, &suf, &sl, &val, &vl))
        return corrupt_node(c->stack[c->depth - 1].pgno);
    size_t plen = node_plen(p);
    if (plen + sl >= sizeof c->key)
        return corrupt_node(c->stack[c->depth - 1].pgno);
    if (i + 8 < c->nkeys)   /* entries lie downward in the page: ask ahead */
        __builtin_prefetch(p + rd16(p + N_HDR + plen + 2 * (size_t)(i + 8)));
    if (c->valid && c->key_from_leaf) {
        /* the previous key came from this leaf, so it has the same prefix
         * and the order is the suffixes' order; only the suffix is copied */
        size_t ol = c->klen - plen, m = ol < sl ? ol : sl;
        int r = 0;
        for (size_t j = 0; j < m && !r; j++)
            r = (int)suf[j] - (int)c->key[plen + j];
        if (!r)
            r = sl > ol ? 1 : -1;
        if (r <= 0)
            return sdb_err(STREAMDB_ERR_CORRUPT, "tree page %u: keys out of order",
                           c->stack[c->depth - 1].pgno);
        memcpy(c->key + plen, suf, sl);
        c->klen = plen + sl;
        c->key[c->klen] = 0;
        c->val = val;
        c->vlen = vl;
        return 0;
    }
    if (c->valid) {
        /* advancing: keys must strictly increase.  A damaged or hostile
         * tree that reaches a subtree twice would otherwise be walked again
         * and again (exponentially many entries from a few pages). */
        size_t ol = c->klen, m = ol < plen ? ol : plen;
        int r = memcmp(node_prefix(p), c->key, m);
        if (!r && ol > plen) {
            size_t m2 = ol - plen < sl ? ol - plen : sl;
            r = memcmp(suf, c->key + plen, m2);
            if (!r)
                r = sl > ol - plen ? 1 : -1;   /* equal prefixes: longer is greater */
        } else if (!r) {
            r = plen + sl > ol ? 1 : -1;
        }
        if (r <= 0)
            return sdb_err(STREAMDB_ERR_CORRUPT, "tree page %u: keys out of order",
                           c->stack[c->depth - 1].pgno);
    }
    memcpy(c->key, node_prefix(p), plen);
    memcpy(c->key + plen, suf, sl);
    c->klen = plen + sl;
    c->key[c->klen] = 0;
    c->val = val;
    c->vlen = vl;
    c->valid = 1;
    c->key_from_leaf = 1;
    return 0;
}

int sdb_bt_entry_at(sdb_env *env, const sdb_view *v, pgno_t pgno, uint32_t idx,
                    const uint8_t *head, size_t hl, size_t klen, sdb_page *pg,
                    const uint8_t **val, size_t *vlen)
{
    int rc = get_node(env, v, pgno, pg);
    if (rc)
        return rc;
    const uint8_t *p = pg->data, *suf;
    size_t plen = node_plen(p), sl;
    if (p[4] != SDB_PT_LEAF || hl > klen || idx >= (uint32_t)node_n(p) ||
        node_ent(p, env->psize, (int)idx, &suf, &sl, val, vlen) || plen + sl != klen)
        goto not_it;
    /* head against the node's prefix, then against the suffix */
    size_t m = hl < plen ? hl : plen;
    if (memcmp(head, node_prefix(p), m) || (hl > plen && memcmp(head + plen, suf, hl - plen)))
        goto not_it;
    return 0;
not_it:
    sdb_page_put(env, pg);
    return STREAMDB_ERR_NOT_FOUND;
}

void sdb_bt_leaf_prefix(const sdb_cursor_bt *c, const uint8_t **prefix, size_t *len)
{
    *prefix = node_prefix(c->leaf.data);
    *len = node_plen(c->leaf.data);
}

/* From stack[depth-1] (a branch at slot idx), descend leftmost to a leaf. */
static int cur_descend(sdb_cursor_bt *c, pgno_t p)
{
    for (;;) {
        if (c->depth >= SDB_BT_MAXDEPTH)
            return sdb_err(STREAMDB_ERR_CORRUPT, "tree deeper than %d levels", SDB_BT_MAXDEPTH);
        sdb_page pg;
        int rc = get_node(c->env, c->view, p, &pg), err = 0;
        if (rc)
            return rc;
        c->stack[c->depth].pgno = p;
        c->stack[c->depth].idx = 0;
        c->depth++;
        if (pg.data[4] == SDB_PT_LEAF) {
            c->leaf = pg;
            c->key_from_leaf = 0;
            c->leafseq++;
            c->nkeys = node_n(pg.data);
            if (!c->nkeys) {
                /* only an empty root leaf is empty: emptied nodes are freed */
                sdb_page_put(c->env, &c->leaf);
                c->depth--;
                return corrupt_node(p);
            }
            return 0;
        }
        pgno_t ch = branch_child(pg.data, c->env->psize, 0, &err);
        sdb_page_put(c->env, &pg);
        if (err)
            return corrupt_node(p);
        p = ch;
    }
}

/* Moves to the next leaf entry when idx ran past the end of the leaf. */
static int cur_fix(sdb_cursor_bt *c)
{
    while (c->stack[c->depth - 1].idx >= c->nkeys) {
        sdb_page_put(c->env, &c->leaf);
        c->depth--;
        /* climb to a branch with a next child */
        for (;;) {
            if (c->depth == 0) {
                c->valid = 0;
                return STREAMDB_DONE;
            }
            sdb_page pg;
            pgno_t bp = c->stack[c->depth - 1].pgno;
            int rc = get_node(c->env, c->view, bp, &pg), err = 0;
            if (rc)
                return rc;
            int slot = ++c->stack[c->depth - 1].idx;
            if (slot <= node_n(pg.data)) {
                pgno_t ch = branch_child(pg.data, c->env->psize, slot, &err);
                sdb_page_put(c->env, &pg);
                if (err)
                    return corrupt_node(bp);
                rc = cur_descend(c, ch);
                if (rc)
                    return rc;
                break;
            }
            sdb_page_put(c->env, &pg);
            c->depth--;
        }
    }
    return cur_load(c);
}

int sdb_bt_seek(sdb_cursor_bt *c, sdb_env *env, const sdb_view *v, pgno_t root,
                const uint8_t *key, size_t klen)
{
    c->env = env;
    c->view = v;
    c->root = root;
    c->depth = 0;
    c->valid = 0;
    c->key_from_leaf = 0;
    c->leaf.data = NULL;
    c->leaf.entry = NULL;
    if (!root)
        return STREAMDB_DONE;
    pgno_t p = root;
    for (;;) {
        if (c->depth >= SDB_BT_MAXDEPTH)
            return sdb_err(STREAMDB_ERR_CORRUPT, "tree deeper than %d levels", SDB_BT_MAXDEPTH);
        sdb_page pg;
        int rc = get_node(env, v, p, &pg), err = 0;
        if (rc)
            return rc;
        c->stack[c->depth].pgno = p;
        if (pg.data[4] == SDB_PT_LEAF) {
            int exact;
            c->stack[c->depth].idx = node_lower(pg.data, env->psize, key, klen, &exact, &err);
            c->depth++;
            c->leaf = pg;
            c->leafseq++;
            c->nkeys = node_n(pg.data);
            if (err) {
                sdb_bt_close(c);
                return corrupt_node(p);
            }
            rc = cur_fix(c);
            if (rc)
                sdb_bt_close(c);
            return rc;
        }
        int slot = branch_slot(pg.data, env->psize, key, klen, &err);
        pgno_t ch = err ? 0 : branch_child(pg.data, env->psize, slot, &err);
        sdb_page_put(env, &pg);
        if (err)
            return corrupt_node(p);
        c->stack[c->depth].idx = slot;
        c->depth++;
        p = ch;
    }
}

int sdb_bt_next(sdb_cursor_bt *c)
{
    if (!c->valid)
        return STREAMDB_DONE;
    c->stack[c->depth - 1].idx++;
    int rc = cur_fix(c);
    if (rc)
        sdb_bt_close(c);
    return rc;
}

void sdb_bt_close(sdb_cursor_bt *c)
{
    if (c->leaf.entry || c->leaf.data)
        sdb_page_put(c->env, &c->leaf);
    c->valid = 0;
    c->depth = 0;
}

/* ---- integrity walk ---- */

typedef struct chk {
    sdb_env *env;
    const sdb_view *v;
    uint8_t *owner;
    uint64_t n;
    int leaf_depth;
    int (*visit)(void *, const uint8_t *, size_t, const uint8_t *, size_t);
    void *ctx;
    uint8_t *last;
    size_t lastl;
    int have_last;
} chk;

static int chk_rec(chk *k, pgno_t p, int depth, const uint8_t *lo, size_t lol, const uint8_t *hi,
                   size_t hil)
{
    sdb_env *env = k->env;
    if (depth >= SDB_BT_MAXDEPTH)
        return sdb_err(STREAMDB_ERR_CORRUPT, "tree deeper than %d levels", SDB_BT_MAXDEPTH);
    if (p >= k->v->meta.npages || p < SDB_FIRST_PAGE)
        return sdb_err(STREAMDB_ERR_CORRUPT, "tree points at page %u outside the database", p);
    if (k->owner[p])
        return sdb_err(STREAMDB_ERR_CORRUPT, "page %u is used twice (tree)", p);
    k->owner[p] = 1;
    sdb_page pg;
    int rc = get_node(env, k->v, p, &pg);
    if (rc)
        return rc;
    nodebuf nb;
    rc = nb_decode(&nb, pg.data, env->psize, p);
    sdb_page_put(env, &pg);
    if (rc) {
        nb_free(&nb);
        return rc;
    }
    if (nb.n == 0 && (nb.leaf ? depth > 0 : 0))
        rc = sdb_err(STREAMDB_ERR_CORRUPT, "tree page %u is empty", p);
    for (int i = 0; !rc && i < nb.n; i++) {
        if ((i > 0 && keycmp(nb.e[i - 1].k, nb.e[i - 1].kl, nb.e[i].k, nb.e[i].kl) >= 0) ||
            (lo && keycmp(nb.e[i].k, nb.e[i].kl, lo, lol) < 0) ||
            (hi && keycmp(nb.e[i].k, nb.e[i].kl, hi, hil) >= 0))
            rc = sdb_err(STREAMDB_ERR_CORRUPT, "tree page %u: keys out of order", p);
    }
    if (!rc && nb.leaf) {
        if (k->leaf_depth < 0)
            k->leaf_depth = depth;
        else if (k->leaf_depth != depth)
            rc = sdb_err(STREAMDB_ERR_CORRUPT, "tree leaves at depths %d and %d", k->leaf_depth, depth);
        for (int i = 0; !rc && i < nb.n; i++) {
            k->n++;
            if (k->visit)
                rc = k->visit(k->ctx, nb.e[i].k, nb.e[i].kl, nb.e[i].v, nb.e[i].vl);
        }
    } else if (!rc) {
        for (int i = 0; !rc && i <= nb.n; i++) {
            if (i > 0 && nb.e[i - 1].vl != 4) {
                rc = corrupt_node(p);
                break;
            }
            pgno_t ch = i == 0 ? nb.leftmost : rd32(nb.e[i - 1].v);
            const uint8_t *clo = i == 0 ? lo : nb.e[i - 1].k;
            size_t clol = i == 0 ? lol : nb.e[i - 1].kl;
            const uint8_t *chi = i < nb.n ? nb.e[i].k : hi;
            size_t chil = i < nb.n ? nb.e[i].kl : hil;
            rc = chk_rec(k, ch, depth + 1, clo, clol, chi, chil);
        }
    }
    nb_free(&nb);
    return rc;
}

int sdb_bt_check(sdb_env *env, const sdb_view *v, pgno_t root, uint8_t *owner, uint64_t *nentries,
                 int (*visit)(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl),
                 void *ctx)
{
    chk k = {env, v, owner, 0, -1, visit, ctx, NULL, 0, 0};
    int rc = root ? chk_rec(&k, root, 0, NULL, 0, NULL, 0) : 0;
    *nentries = k.n;
    return rc;
}
