/* RFC 6962 Merkle tree: leaf and node hashes, the frontier (compact range)
 * that gives the root of a growing log in O(1) amortised time and constant
 * memory, and inclusion/consistency proofs.
 *
 * Proofs are described once, as the ranges of leaves whose MTH they
 * contain (RFC 6962 §2.1.1 PATH and §2.1.2 SUBPROOF, with offsets); the
 * array form and the streaming collector both evaluate those ranges, so
 * `egressd ledger prove` and `verify --since` need O(log n) memory.
 * Verification follows RFC 9162 §2.1.3.2 / §2.1.4.2 literally.
 *
 * When you change the hashing, also touch the RFC 6962 vectors in
 * tests/unit/test-ledger.c and the independent Python check in
 * tests/integration/ledgerlib.py.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/ledger-int.h"

/* SHA-256 through OpenSSL: its assembly (SHA-NI, AVX2) hashes leaves three
 * times faster than libsodium's portable code, and hashing is most of what
 * verifying 100,000 records costs (bench/ledger/). The algorithm is fetched
 * once. */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void) {
  sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
  if (!sha256)
    abort();   /* libcrypto without SHA-256 cannot run egressd at all */
}

static void hash2(const void *a, size_t alen, const void *b, size_t blen,
                  uint8_t out[LEDGER_HASH_SIZE]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();

  pthread_once(&sha256_once, fetch_sha256);
  if (!ctx || !EVP_DigestInit_ex2(ctx, sha256, NULL) || !EVP_DigestUpdate(ctx, a, alen) ||
      !EVP_DigestUpdate(ctx, b, blen) || !EVP_DigestFinal_ex(ctx, out, NULL))
    abort();   /* only on out-of-memory: the one allocator policy of base/mem.c */
  EVP_MD_CTX_free(ctx);
}

void ledger_hash_leaf(const void *data, size_t len, uint8_t out[LEDGER_HASH_SIZE]) {
  static const uint8_t prefix = 0x00;

  hash2(&prefix, 1, data, len, out);
}

void ledger_hash_node(const uint8_t left[LEDGER_HASH_SIZE], const uint8_t right[LEDGER_HASH_SIZE],
                      uint8_t out[LEDGER_HASH_SIZE]) {
  uint8_t in[1 + 2 * LEDGER_HASH_SIZE];

  in[0] = 0x01;
  memcpy(in + 1, left, LEDGER_HASH_SIZE);
  memcpy(in + 1 + LEDGER_HASH_SIZE, right, LEDGER_HASH_SIZE);
  hash2(in, sizeof(in), NULL, 0, out);
}

void ledger_hash_empty(uint8_t out[LEDGER_HASH_SIZE]) { hash2(NULL, 0, NULL, 0, out); }

void ledger_frontier_push(struct ledger_frontier *f, const uint8_t leaf_hash[LEDGER_HASH_SIZE]) {
  uint8_t cur[LEDGER_HASH_SIZE];
  uint64_t s = f->size;
  unsigned level = 0;

  memcpy(cur, leaf_hash, LEDGER_HASH_SIZE);
  /* merge with every complete subtree of the same height, like a carry */
  while (s & 1) {
    ledger_hash_node(f->hashes[level], cur, cur);
    s >>= 1;
    level++;
  }
  memcpy(f->hashes[level], cur, LEDGER_HASH_SIZE);
  f->size++;
}

void ledger_frontier_root(const struct ledger_frontier *f, uint8_t out[LEDGER_HASH_SIZE]) {
  uint8_t acc[LEDGER_HASH_SIZE];
  unsigned level;

  if (f->size == 0) {
    ledger_hash_empty(out);
    return;
  }
  /* the smallest subtree is the right-most; fold leftwards */
  level = (unsigned)__builtin_ctzll(f->size);
  memcpy(acc, f->hashes[level], LEDGER_HASH_SIZE);
  for (level++; level < 64; level++)
    if (f->size >> level & 1)
      ledger_hash_node(f->hashes[level], acc, acc);
  memcpy(out, acc, LEDGER_HASH_SIZE);
}

static void range_root(const uint8_t (*leaves)[LEDGER_HASH_SIZE], uint64_t begin, uint64_t end,
                       uint8_t out[LEDGER_HASH_SIZE]) {
  struct ledger_frontier f;

  f.size = 0;
  for (uint64_t i = begin; i < end; i++)
    ledger_frontier_push(&f, leaves[i]);
  ledger_frontier_root(&f, out);
}

void ledger_tree_root(const uint8_t (*leaves)[LEDGER_HASH_SIZE], uint64_t n,
                      uint8_t out[LEDGER_HASH_SIZE]) {
  range_root(leaves, 0, n, out);
}

/* the largest power of two smaller than n (n >= 2) */
static uint64_t split(uint64_t n) { return (uint64_t)1 << (63 - __builtin_clzll(n - 1)); }

static void add_range(struct proof_ranges *r, uint64_t begin, uint64_t end) {
  /* a proof of a 2^64-leaf tree has at most 64 (inclusion) or 65
   * (consistency) hashes; LEDGER_PROOF_MAX leaves room for both */
  r->begin[r->n] = begin;
  r->end[r->n] = end;
  r->n++;
}

/* RFC 6962 §2.1.1 PATH(m, D[lo:hi]) */
static void path(uint64_t m, uint64_t lo, uint64_t hi, struct proof_ranges *r) {
  uint64_t k;

  if (hi - lo <= 1)
    return;
  k = split(hi - lo);
  if (m < lo + k) {
    path(m, lo, lo + k, r);
    add_range(r, lo + k, hi);
  } else {
    path(m, lo + k, hi, r);
    add_range(r, lo, lo + k);
  }
}

/* RFC 6962 §2.1.2 SUBPROOF(m, D[lo:hi], b), m counted from lo */
static void subproof(uint64_t m, uint64_t lo, uint64_t hi, bool b, struct proof_ranges *r) {
  uint64_t k;

  if (m == hi - lo) {
    if (!b)
      add_range(r, lo, hi);
    return;
  }
  k = split(hi - lo);
  if (m <= k) {
    subproof(m, lo, lo + k, b, r);
    add_range(r, lo + k, hi);
  } else {
    subproof(m - k, lo + k, hi, false, r);
    add_range(r, lo, lo + k);
  }
}

void proof_ranges_inclusion(uint64_t index, uint64_t size, struct proof_ranges *ret) {
  ret->n = 0;
  if (index < size)
    path(index, 0, size, ret);
}

void proof_ranges_consistency(uint64_t m, uint64_t n, struct proof_ranges *ret) {
  ret->n = 0;
  if (m > 0 && m < n)
    subproof(m, 0, n, true, ret);
}

static void eval_ranges(const uint8_t (*leaves)[LEDGER_HASH_SIZE], const struct proof_ranges *r,
                        struct ledger_proof *ret) {
  ret->n = r->n;
  for (size_t i = 0; i < r->n; i++)
    range_root(leaves, r->begin[i], r->end[i], ret->hashes[i]);
}

int ledger_proof_inclusion(const uint8_t (*leaves)[LEDGER_HASH_SIZE], uint64_t size,
                           uint64_t index, struct ledger_proof *ret) {
  struct proof_ranges r;

  if (index >= size)
    return -EINVAL;
  proof_ranges_inclusion(index, size, &r);
  eval_ranges(leaves, &r, ret);
  return 0;
}

int ledger_proof_consistency(const uint8_t (*leaves)[LEDGER_HASH_SIZE], uint64_t m, uint64_t n,
                             struct ledger_proof *ret) {
  struct proof_ranges r;

  if (m == 0 || m > n)
    return -EINVAL;
  proof_ranges_consistency(m, n, &r);
  eval_ranges(leaves, &r, ret);
  return 0;
}

static bool hash_eq(const uint8_t a[LEDGER_HASH_SIZE], const uint8_t b[LEDGER_HASH_SIZE]) {
  return sodium_memcmp(a, b, LEDGER_HASH_SIZE) == 0;
}

int ledger_proof_verify_inclusion(uint64_t index, uint64_t size,
                                  const uint8_t leaf_hash[LEDGER_HASH_SIZE],
                                  const struct ledger_proof *p,
                                  const uint8_t root[LEDGER_HASH_SIZE]) {
  uint64_t fn = index, sn;
  uint8_t r[LEDGER_HASH_SIZE];

  if (index >= size || p->n > LEDGER_PROOF_MAX)
    return -EBADMSG;
  sn = size - 1;
  memcpy(r, leaf_hash, LEDGER_HASH_SIZE);
  for (size_t i = 0; i < p->n; i++) {
    if (sn == 0)
      return -EBADMSG;
    if ((fn & 1) || fn == sn) {
      ledger_hash_node(p->hashes[i], r, r);
      if (!(fn & 1))
        do {
          fn >>= 1;
          sn >>= 1;
        } while (!(fn & 1) && fn != 0);
    } else {
      ledger_hash_node(r, p->hashes[i], r);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && hash_eq(r, root) ? 0 : -EBADMSG;
}

int ledger_proof_verify_consistency(uint64_t m, uint64_t n,
                                    const uint8_t old_root[LEDGER_HASH_SIZE],
                                    const uint8_t new_root[LEDGER_HASH_SIZE],
                                    const struct ledger_proof *p) {
  uint8_t fr[LEDGER_HASH_SIZE], sr[LEDGER_HASH_SIZE];
  uint64_t fn, sn;
  size_t i;

  if (m > n || p->n > LEDGER_PROOF_MAX)
    return -EBADMSG;
  if (m == n)
    return p->n == 0 && hash_eq(old_root, new_root) ? 0 : -EBADMSG;
  if (m == 0)   /* the empty tree is a prefix of every tree */
    return p->n == 0 ? 0 : -EBADMSG;
  if (p->n == 0)
    return -EBADMSG;
  /* when m is a power of two the old root is the first node of the path
   * (RFC 9162: "prepend first_hash to path") */
  fn = m - 1;
  sn = n - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  if ((m & (m - 1)) == 0) {
    memcpy(fr, old_root, LEDGER_HASH_SIZE);
    i = 0;
  } else {
    memcpy(fr, p->hashes[0], LEDGER_HASH_SIZE);
    i = 1;
  }
  memcpy(sr, fr, LEDGER_HASH_SIZE);
  for (; i < p->n; i++) {
    if (sn == 0)
      return -EBADMSG;
    if ((fn & 1) || fn == sn) {
      ledger_hash_node(p->hashes[i], fr, fr);
      ledger_hash_node(p->hashes[i], sr, sr);
      if (!(fn & 1))
        do {
          fn >>= 1;
          sn >>= 1;
        } while (!(fn & 1) && fn != 0);
    } else {
      ledger_hash_node(sr, p->hashes[i], sr);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return hash_eq(fr, old_root) && hash_eq(sr, new_root) && sn == 0 ? 0 : -EBADMSG;
}

static int cmp_begin(const struct proof_ranges *r, size_t a, size_t b) {
  return r->begin[a] < r->begin[b] ? -1 : r->begin[a] > r->begin[b];
}

void proof_collector_init(struct proof_collector *c, const struct proof_ranges *r) {
  c->ranges = *r;
  c->next = 0;
  c->frontier.size = 0;
  c->proof.n = r->n;
  for (size_t i = 0; i < r->n; i++)
    c->order[i] = i;
  /* insertion sort: at most LEDGER_PROOF_MAX ranges */
  for (size_t i = 1; i < r->n; i++)
    for (size_t j = i; j > 0 && cmp_begin(r, c->order[j - 1], c->order[j]) > 0; j--) {
      size_t t = c->order[j];
      c->order[j] = c->order[j - 1];
      c->order[j - 1] = t;
    }
}

void proof_collector_push(struct proof_collector *c, uint64_t index,
                          const uint8_t leaf[LEDGER_HASH_SIZE]) {
  size_t cur;

  if (c->next >= c->ranges.n)
    return;
  cur = c->order[c->next];
  if (index < c->ranges.begin[cur] || index >= c->ranges.end[cur])
    return;
  ledger_frontier_push(&c->frontier, leaf);
  if (index + 1 == c->ranges.end[cur]) {
    ledger_frontier_root(&c->frontier, c->proof.hashes[cur]);
    c->frontier.size = 0;
    c->next++;
  }
}

bool proof_collector_done(const struct proof_collector *c) { return c->next == c->ranges.n; }

const char *ledger_hash_b64(const uint8_t h[LEDGER_HASH_SIZE], char out[LEDGER_B64_HASH_SIZE]) {
  return sodium_bin2base64(out, LEDGER_B64_HASH_SIZE, h, LEDGER_HASH_SIZE,
                           sodium_base64_VARIANT_ORIGINAL);
}

int ledger_hash_from_b64(const char *s, size_t len, uint8_t out[LEDGER_HASH_SIZE]) {
  char again[LEDGER_B64_HASH_SIZE];
  size_t n = 0;
  const char *end = NULL;

  if (len != LEDGER_B64_HASH_SIZE - 1)
    return -EINVAL;
  if (sodium_base642bin(out, LEDGER_HASH_SIZE, s, len, NULL, &n, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      n != LEDGER_HASH_SIZE || end != s + len)
    return -EINVAL;
  /* canonical: the unused bits of the last character must be zero */
  ledger_hash_b64(out, again);
  return memcmp(again, s, len) == 0 ? 0 : -EINVAL;
}

void ledger_digest_sha256(const void *data, size_t len, char out[LEDGER_DIGEST_SIZE]) {
  uint8_t h[crypto_hash_sha256_BYTES];

  crypto_hash_sha256(h, data, len);
  memcpy(out, "sha256:", 7);
  sodium_bin2hex(out + 7, LEDGER_DIGEST_SIZE - 7, h, sizeof(h));
}
