/* Unit tests for daemon/ledger: RFC 6962 vectors and proofs, OpenSSH keys,
 * SSH signatures (byte-identical to ssh-keygen), checkpoints, records, the
 * writer's recovery, tampering and verification.
 *
 * Golden data: tests/data/ledger/ (see its README.md for how it was made). */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "ledger/ledger-int.h"
#include "ledger/ledger.h"
#include "testutil.h"

#define KEY_DIR TEST_DATA_DIR "/ledger/0001-ssh-keygen-key"
#define ORIGIN "egressd/test.example/ledger"
#define COMMIT_A "3f2a1c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b"
#define TREE_A "137465dc8c98c20bb57447835a3a5db96721b30a"

static uint64_t clock_now;

/* 2026-11-27T00:00:00Z, one second per record */
static uint64_t test_clock(void) {
  clock_now += USEC_PER_SEC;
  return clock_now;
}

static void setup(void) {
  ck_assert_int_ge(sodium_init(), 0);
  clock_now = 1795737600ULL * USEC_PER_SEC - USEC_PER_SEC;
}

static void unhex(const char *hex, uint8_t *out, size_t len) {
  size_t n = 0;
  ck_assert_int_eq(sodium_hex2bin(out, len, hex, strlen(hex), NULL, &n, NULL), 0);
  ck_assert_uint_eq(n, len);
}

static struct ledger_key *test_key(void) {
  struct ledger_key *k = NULL;
  struct err e = ERR_INIT;
  ck_assert_ok(ledger_key_load(KEY_DIR "/id_ed25519", &k, &e), &e);
  return k;
}

static char *read_text(const char *dir, const char *name) {
  char *path = path_join(dir, name), *s = testutil_read(path);
  free(path);
  return s;
}

static void write_text(const char *dir, const char *name, const char *text, size_t len) {
  char *path = path_join(dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(fd_write_all(fd, text, len), 0);
  close(fd);
  free(path);
}

/* ---- RFC 6962 ---- */

static const char *const ct_leaves[] = {
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f"};
static const char *const ct_roots[] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};

static void ct_leaf_hashes(uint8_t leaves[8][LEDGER_HASH_SIZE]) {
  for (size_t i = 0; i < 8; i++) {
    uint8_t data[16];
    size_t len = strlen(ct_leaves[i]) / 2;
    unhex(ct_leaves[i], data, len);
    ledger_hash_leaf(data, len, leaves[i]);
  }
}

START_TEST(test_ledger_rfc6962_roots_match_reference_vectors) {
  uint8_t leaves[8][LEDGER_HASH_SIZE], want[LEDGER_HASH_SIZE], got[LEDGER_HASH_SIZE];
  struct ledger_frontier f = {0};

  ct_leaf_hashes(leaves);
  for (uint64_t n = 0; n <= 8; n++) {
    unhex(ct_roots[n], want, sizeof(want));
    ledger_frontier_root(&f, got);
    ck_assert_msg(memcmp(got, want, 32) == 0, "frontier root of size %llu", (unsigned long long)n);
    ledger_tree_root((const uint8_t(*)[LEDGER_HASH_SIZE])leaves, n, got);
    ck_assert_msg(memcmp(got, want, 32) == 0, "array root of size %llu", (unsigned long long)n);
    if (n < 8)
      ledger_frontier_push(&f, leaves[n]);
  }
}
END_TEST

struct proof_vector {
  uint64_t a, b;        /* inclusion: index, size; consistency: m, n */
  const char *hashes[4];
};

/* certificate-transparency-go merkle/log_verifier_test.go */
static const struct proof_vector inclusion_vectors[] = {
    {0, 1, {NULL}},
    {0, 8, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {5, 8, {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {1, 5, {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};
static const struct proof_vector consistency_vectors[] = {
    {1, 1, {NULL}},
    {1, 8, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6, 8, {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2, 5, {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
};

static void expect_proof(const struct ledger_proof *p, const struct proof_vector *v) {
  size_t n = 0;
  while (n < 4 && v->hashes[n])
    n++;
  ck_assert_uint_eq(p->n, n);
  for (size_t i = 0; i < n; i++) {
    uint8_t h[LEDGER_HASH_SIZE];
    unhex(v->hashes[i], h, sizeof(h));
    ck_assert_msg(memcmp(p->hashes[i], h, 32) == 0, "(%llu, %llu) hash %zu",
                  (unsigned long long)v->a, (unsigned long long)v->b, i);
  }
}

START_TEST(test_ledger_rfc6962_proofs_match_reference_vectors) {
  uint8_t leaves[8][LEDGER_HASH_SIZE], root[LEDGER_HASH_SIZE], old_root[LEDGER_HASH_SIZE];
  const uint8_t(*L)[LEDGER_HASH_SIZE] = (const uint8_t(*)[LEDGER_HASH_SIZE])leaves;
  struct ledger_proof p;

  ct_leaf_hashes(leaves);
  for (size_t i = 0; i < ARRAY_SIZE(inclusion_vectors); i++) {
    const struct proof_vector *v = &inclusion_vectors[i];
    ck_assert_int_eq(ledger_proof_inclusion(L, v->b, v->a, &p), 0);
    expect_proof(&p, v);
    unhex(ct_roots[v->b], root, sizeof(root));
    ck_assert_int_eq(ledger_proof_verify_inclusion(v->a, v->b, leaves[v->a], &p, root), 0);
    ck_assert_int_eq(ledger_proof_verify_inclusion(v->a, v->b * 2, leaves[v->a], &p, root),
                     -EBADMSG);
  }
  for (size_t i = 0; i < ARRAY_SIZE(consistency_vectors); i++) {
    const struct proof_vector *v = &consistency_vectors[i];
    ck_assert_int_eq(ledger_proof_consistency(L, v->a, v->b, &p), 0);
    expect_proof(&p, v);
    unhex(ct_roots[v->a], old_root, sizeof(old_root));
    unhex(ct_roots[v->b], root, sizeof(root));
    ck_assert_int_eq(ledger_proof_verify_consistency(v->a, v->b, old_root, root, &p), 0);
    if (p.n)
      ck_assert_int_eq(ledger_proof_verify_consistency(v->a, v->b, root, old_root, &p), -EBADMSG);
  }
}
END_TEST

/* The RFC 6962 definitions, written directly (recursion over hashes), to
 * check the range-based implementation for every (m, n). */
static uint64_t ref_split(uint64_t n) {
  uint64_t k = 1;
  while (k * 2 < n)
    k *= 2;
  return k;
}

static void ref_mth(const uint8_t (*d)[LEDGER_HASH_SIZE], uint64_t n, uint8_t out[32]) {
  uint8_t l[32], r[32];
  uint64_t k;

  if (n == 0) {
    ledger_hash_empty(out);
    return;
  }
  if (n == 1) {
    memcpy(out, d[0], 32);
    return;
  }
  k = ref_split(n);
  ref_mth(d, k, l);
  ref_mth(d + k, n - k, r);
  ledger_hash_node(l, r, out);
}

static void ref_path(uint64_t m, const uint8_t (*d)[LEDGER_HASH_SIZE], uint64_t n,
                     struct ledger_proof *p) {
  uint64_t k;

  if (n <= 1)
    return;
  k = ref_split(n);
  if (m < k) {
    ref_path(m, d, k, p);
    ref_mth(d + k, n - k, p->hashes[p->n++]);
  } else {
    ref_path(m - k, d + k, n - k, p);
    ref_mth(d, k, p->hashes[p->n++]);
  }
}

static void ref_subproof(uint64_t m, const uint8_t (*d)[LEDGER_HASH_SIZE], uint64_t n, bool b,
                         struct ledger_proof *p) {
  uint64_t k;

  if (m == n) {
    if (!b)
      ref_mth(d, n, p->hashes[p->n++]);
    return;
  }
  k = ref_split(n);
  if (m <= k) {
    ref_subproof(m, d, k, b, p);
    ref_mth(d + k, n - k, p->hashes[p->n++]);
  } else {
    ref_subproof(m - k, d + k, n - k, false, p);
    ref_mth(d, k, p->hashes[p->n++]);
  }
}

START_TEST(test_ledger_proofs_for_every_size_match_rfc_definitions) {
  enum { N = 33 };
  static uint8_t leaves[N][LEDGER_HASH_SIZE];
  const uint8_t(*L)[LEDGER_HASH_SIZE] = (const uint8_t(*)[LEDGER_HASH_SIZE])leaves;
  struct ledger_proof p, want;
  struct ledger_frontier f = {0};
  uint8_t roots[N + 1][LEDGER_HASH_SIZE], got[LEDGER_HASH_SIZE];

  for (int i = 0; i < N; i++) {
    char data[16];
    str_format(data, sizeof(data), "leaf %d", i);
    ledger_hash_leaf(data, strlen(data), leaves[i]);
  }
  for (uint64_t n = 0; n <= N; n++) {
    ref_mth(L, n, roots[n]);
    ledger_frontier_root(&f, got);
    ck_assert_msg(memcmp(got, roots[n], 32) == 0, "root of %llu", (unsigned long long)n);
    if (n < N)
      ledger_frontier_push(&f, leaves[n]);
  }
  for (uint64_t n = 1; n <= N; n++) {
    for (uint64_t i = 0; i < n; i++) {
      struct proof_collector c;
      struct proof_ranges r;

      want.n = 0;
      ref_path(i, L, n, &want);
      ck_assert_int_eq(ledger_proof_inclusion(L, n, i, &p), 0);
      ck_assert_uint_eq(p.n, want.n);
      ck_assert(memcmp(p.hashes, want.hashes, p.n * 32) == 0);
      ck_assert_int_eq(ledger_proof_verify_inclusion(i, n, leaves[i], &p, roots[n]), 0);
      if (n > 1)
        ck_assert_int_eq(ledger_proof_verify_inclusion(i ^ 1, n, leaves[i], &p, roots[n]),
                         -EBADMSG);
      if (p.n) {
        p.hashes[p.n - 1][0] ^= 1;
        ck_assert_int_eq(ledger_proof_verify_inclusion(i, n, leaves[i], &p, roots[n]), -EBADMSG);
      }
      /* the streaming collector gives the same proof */
      proof_ranges_inclusion(i, n, &r);
      proof_collector_init(&c, &r);
      for (uint64_t j = 0; j < n; j++)
        proof_collector_push(&c, j, leaves[j]);
      ck_assert(proof_collector_done(&c));
      ck_assert(memcmp(c.proof.hashes, want.hashes, want.n * 32) == 0);
    }
    for (uint64_t m = 1; m <= n; m++) {
      want.n = 0;
      if (m < n)
        ref_subproof(m, L, n, true, &want);
      ck_assert_int_eq(ledger_proof_consistency(L, m, n, &p), 0);
      ck_assert_uint_eq(p.n, want.n);
      ck_assert(memcmp(p.hashes, want.hashes, p.n * 32) == 0);
      ck_assert_int_eq(ledger_proof_verify_consistency(m, n, roots[m], roots[n], &p), 0);
      if (p.n) {
        ck_assert_int_eq(ledger_proof_verify_consistency(m, n, roots[m], roots[n - 1], &p),
                         -EBADMSG);
        p.hashes[0][5] ^= 0x80;
        ck_assert_int_eq(ledger_proof_verify_consistency(m, n, roots[m], roots[n], &p), -EBADMSG);
      }
    }
  }
  ck_assert_int_eq(ledger_proof_inclusion(L, 4, 4, &p), -EINVAL);
  ck_assert_int_eq(ledger_proof_consistency(L, 0, 4, &p), -EINVAL);
}
END_TEST

START_TEST(test_ledger_hash_b64_is_canonical) {
  uint8_t h[32], back[32];
  char b64[LEDGER_B64_HASH_SIZE];
  char text[] = "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=";

  unhex(ct_roots[8], h, 32);
  ck_assert_str_eq(ledger_hash_b64(h, b64), text);
  ck_assert_int_eq(ledger_hash_from_b64(text, strlen(text), back), 0);
  ck_assert(memcmp(h, back, 32) == 0);
  text[42] = 'h';   /* 'g' -> 'h': the same bytes with non-zero unused bits */
  ck_assert_int_eq(ledger_hash_from_b64(text, strlen(text), back), -EINVAL);
  ck_assert_int_eq(ledger_hash_from_b64(text, 40, back), -EINVAL);
}
END_TEST

/* ---- keys and SSH signatures ---- */

START_TEST(test_ledger_sshsig_matches_ssh_keygen_byte_for_byte) {
  struct ledger_key *k = test_key();
  char *cp = read_text(KEY_DIR, "checkpoint"), *sig = read_text(KEY_DIR, "checkpoint.sig");
  char *pub = read_text(KEY_DIR, "id_ed25519.pub");
  struct buf ours = BUF_INIT, line = BUF_INIT;
  struct ledger_pubkey signer;
  struct err e = ERR_INIT;

  ck_assert_str_eq(ledger_key_comment(k), "ledger-test@egressd");
  ledger_pubkey_format(ledger_key_public(k), ledger_key_comment(k), &line);
  buf_putc(&line, '\n');
  ck_assert_str_eq(buf_cstr(&line), pub);
  ledger_sshsig_sign(k, LEDGER_NAMESPACE, cp, strlen(cp), &ours);
  ck_assert_str_eq(buf_cstr(&ours), sig);
  ck_assert_ok(ledger_sshsig_verify(sig, strlen(sig), LEDGER_NAMESPACE, cp, strlen(cp), &signer,
                                    &e), &e);
  ck_assert(ledger_pubkey_equal(&signer, ledger_key_public(k)));
  /* another text, another namespace */
  cp[strlen(cp) - 2] ^= 1;
  ck_assert_int_eq(ledger_sshsig_verify(sig, strlen(sig), LEDGER_NAMESPACE, cp, strlen(cp), NULL,
                                        &e), -EPERM);
  ck_assert_msg(strstr(e.msg, "does not match") != NULL, "%s", e.msg);
  cp[strlen(cp) - 2] ^= 1;
  err_clear(&e);
  ck_assert_int_eq(ledger_sshsig_verify(sig, strlen(sig), "git", cp, strlen(cp), NULL, &e),
                   -EPERM);
  ck_assert_str_eq(e.msg, "the signature is for another namespace, not 'git'");
  err_clear(&e);
  ck_assert_int_eq(ledger_sshsig_verify("garbage", 7, LEDGER_NAMESPACE, cp, strlen(cp), NULL, &e),
                   -EBADMSG);
  buf_dispose(&ours);
  buf_dispose(&line);
  free(cp);
  free(sig);
  free(pub);
  ledger_key_free(k);
}
END_TEST

START_TEST(test_ledger_key_generated_round_trips_through_openssh_format) {
  struct ledger_key *k = NULL, *back = NULL;
  struct buf text = BUF_INIT;
  struct err e = ERR_INIT;
  char fp1[LEDGER_FINGERPRINT_SIZE], fp2[LEDGER_FINGERPRINT_SIZE];

  ck_assert_ok(ledger_key_generate("unit@test", &k, &e), &e);
  ledger_key_format_private(k, &text);
  ck_assert(str_has_prefix(buf_cstr(&text), "-----BEGIN OPENSSH PRIVATE KEY-----\n"));
  ck_assert(str_has_suffix(buf_cstr(&text), "\n-----END OPENSSH PRIVATE KEY-----\n"));
  /* 70-column lines, as ssh-keygen */
  ck_assert_uint_eq((size_t)(strchr(text.data + 36, '\n') - (text.data + 36)), 70);
  ck_assert_ok(ledger_key_parse(text.data, text.len, "mem", &back, &e), &e);
  ck_assert(ledger_pubkey_equal(ledger_key_public(k), ledger_key_public(back)));
  ck_assert_str_eq(ledger_key_comment(back), "unit@test");
  ck_assert_str_eq(ledger_pubkey_fingerprint(ledger_key_public(k), fp1),
                   ledger_pubkey_fingerprint(ledger_key_public(back), fp2));
  ck_assert_uint_eq(strlen(fp1), 50);
  buf_dispose_secret(&text);
  ledger_key_free(k);
  ledger_key_free(back);
}
END_TEST

START_TEST(test_ledger_key_rejects_passphrase_rsa_and_damaged_keys) {
  struct ledger_key *k = NULL;
  struct err e = ERR_INIT;
  char *good = read_text(KEY_DIR, "id_ed25519");
  struct buf copy = BUF_INIT;
  char *p;

  ck_assert_int_eq(ledger_key_load(TEST_DATA_DIR "/ledger/0002-passphrase-key/id_ed25519", &k, &e),
                   -EINVAL);
  ck_assert_msg(strstr(e.msg, "passphrase-protected keys are not supported; create one with "
                              "`ssh-keygen -t ed25519 -N ''` or `egressd keygen`") != NULL,
                "%s", e.msg);
  err_clear(&e);
  ck_assert_int_eq(ledger_key_load(TEST_DATA_DIR "/ledger/0003-rsa-key/id_rsa", &k, &e), -EINVAL);
  ck_assert_msg(strstr(e.msg, "is a ssh-rsa key; the ledger needs an ssh-ed25519 key") != NULL,
                "%s", e.msg);
  err_clear(&e);
  ck_assert_int_eq(ledger_key_parse("hello", 5, "x", &k, &e), -EINVAL);
  ck_assert_msg(strstr(e.msg, "is not an OpenSSH private key") != NULL, "%s", e.msg);
  /* a damaged body: one base64 character of the private half changed */
  buf_puts(&copy, good);
  p = strstr(copy.data, "\n") + 1 + 200;
  *p = *p == 'A' ? 'B' : 'A';
  err_clear(&e);
  ck_assert_int_eq(ledger_key_parse(copy.data, copy.len, "x", &k, &e), -EINVAL);
  ck_assert_ptr_null(k);
  buf_dispose_secret(&copy);
  free(good);
}
END_TEST

START_TEST(test_ledger_trust_reads_pub_and_allowed_signers) {
  char *pub = read_text(KEY_DIR, "id_ed25519.pub");
  struct ledger_key *k = test_key(), *other = NULL;
  struct ledger_trust *t = NULL;
  struct buf text = BUF_INIT, other_pub = BUF_INIT;
  struct err e = ERR_INIT;
  const char *principal = NULL;
  uint64_t now = 1795737600ULL * USEC_PER_SEC;   /* 2026-11-27 */

  ck_assert_ok(ledger_key_generate(NULL, &other, &e), &e);
  ledger_pubkey_format(ledger_key_public(other), NULL, &other_pub);

  /* a .pub file */
  ck_assert_ok(ledger_trust_parse(pub, strlen(pub), "id.pub", now, &t, &e), &e);
  ck_assert(ledger_trust_allows(t, ledger_key_public(k), &principal));
  ck_assert_ptr_null(principal);
  ck_assert(!ledger_trust_allows(t, ledger_key_public(other), NULL));
  ledger_trust_free(t);

  /* allowed_signers: options honoured, other key types skipped */
  buf_printf(&text, "# comment\n\n"
                    "ops@example.com namespaces=\"git,file\" %s\n"
                    "rsa@example.com ssh-rsa "
                    "AAAAB3NzaC1yc2EAAAADAQABAAABAQDXHa+2nie1KtiCPtgajJGCJh6+1VWG"
                    "hDB5Fi6gkooA4qnjwn85zY7Zzi+1EZarqiP/nVM6R6LQTU1n8OgCUPes4yVz"
                    "cNHireawOox2izkVERcK6qtk5MSH82Z3CURn6lNeFI+66IRt3xQsAsskAB3E"
                    "Q2pqqS8CVMoGgR+YBEqLewWZVVudYYZVm9VyVziFtL0H75UPOl4WUFKSwwhC"
                    "hXeLHUMS4zRXnvJ+u7ku1yOKfoMcVSCnyejTinRZj8QLQYjWNgic9FEbBrxg"
                    "aYwPwvbDLp2S9Px9umG+fzERqztuCMBGN4S/XDTzps2ifCYlxY6dh+o1LpSu"
                    "EcU/F2fYenFt"
                    " rsa\n"
                    "old@example.com valid-before=\"20200101\" %s\n"
                    "ledger@example.com,audit@example.com namespaces=\"egressd-*\" %s\n",
             pub, buf_cstr(&other_pub), pub);
  ck_assert_ok(ledger_trust_parse(text.data, text.len, "allowed_signers", now, &t, &e), &e);
  ck_assert_uint_eq(ledger_trust_count(t), 1);
  ck_assert(ledger_trust_allows(t, ledger_key_public(k), &principal));
  ck_assert_str_eq(principal, "ledger@example.com,audit@example.com");
  ck_assert(!ledger_trust_allows(t, ledger_key_public(other), NULL));
  ledger_trust_free(t);

  /* nothing usable, with the reason */
  buf_reset(&text);
  buf_printf(&text, "ops@example.com namespaces=\"git\" %s", pub);
  ck_assert_int_eq(ledger_trust_parse(text.data, text.len, "as", now, &t, &e), -ENOKEY);
  ck_assert_msg(strstr(e.msg, "namespaces=\"git\" does not include egressd-ledger") != NULL, "%s",
                e.msg);
  /* syntax errors carry the line */
  buf_reset(&text);
  buf_printf(&text, "\nops@example.com bogus-option %s", pub);
  err_clear(&e);
  ck_assert_int_eq(ledger_trust_parse(text.data, text.len, "as", now, &t, &e), -EINVAL);
  ck_assert_uint_eq(e.line, 2);
  ck_assert_msg(strstr(e.msg, "unknown option 'bogus-option'") == e.msg, "%s", e.msg);
  buf_dispose(&text);
  buf_dispose(&other_pub);
  ledger_key_free(k);
  ledger_key_free(other);
  free(pub);
}
END_TEST

/* ---- checkpoints ---- */

START_TEST(test_ledger_checkpoint_format_and_strict_parse) {
  struct ledger_checkpoint c = {.origin = ORIGIN, .size = 8}, back;
  struct buf text = BUF_INIT;
  struct err e = ERR_INIT;
  static const char *const bad[] = {
      ORIGIN "\n08\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
      ORIGIN "\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\nextension\n",
      ORIGIN "\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",
      "egressd test\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
      ORIGIN "\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyh=\n",
      ORIGIN "\n-8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
  };
  /* found by fuzz-ledger: a NUL inside the size line */
  static const char nul_in_size[] = ORIGIN "\n8\0\0c\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n";

  unhex(ct_roots[8], c.root, 32);
  ledger_checkpoint_format(&c, &text);
  ck_assert_str_eq(buf_cstr(&text), ORIGIN "\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n");
  ck_assert_ok(ledger_checkpoint_parse(text.data, text.len, "checkpoint", &back, &e), &e);
  ck_assert_str_eq(back.origin, ORIGIN);
  ck_assert_uint_eq(back.size, 8);
  ck_assert(memcmp(back.root, c.root, 32) == 0);
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    err_clear(&e);
    ck_assert_msg(ledger_checkpoint_parse(bad[i], strlen(bad[i]), "checkpoint", &back, &e) ==
                      -EBADMSG, "accepted bad checkpoint %zu", i);
    ck_assert_str_eq(e.file, "checkpoint");
  }
  err_clear(&e);
  ck_assert_int_eq(ledger_checkpoint_parse(nul_in_size, sizeof(nul_in_size) - 1, "checkpoint",
                                           &back, &e), -EBADMSG);
  ck_assert_uint_eq(e.line, 2);
  err_clear(&e);
  ledger_checkpoint_parse(bad[0], strlen(bad[0]), "checkpoint", &back, &e);
  ck_assert_uint_eq(e.line, 2);
  buf_dispose(&text);
}
END_TEST

/* ---- records ---- */

static struct doc_node *intent_fields(struct doc_arena *a, const char *cluster) {
  static const struct ledger_object actions[] = {
      {.kind = "ServiceEntry", .namespace = "smm-demo", .name = "httpbin", .action = "create"},
      {.kind = "VirtualService", .namespace = "smm-demo", .name = "httpbin", .action = "update"},
  };
  char digest[LEDGER_DIGEST_SIZE];
  struct ledger_apply_intent in = {
      .cluster = cluster,
      .repo = "ssh://git@git.example.com/platform/egress.git",
      .ref = "refs/heads/main",
      .commit = COMMIT_A,
      .tree = TREE_A,
      .signer_principal = "alice@example.com",
      .signer_key = "SHA256:R5bJbz6ZTWYlq6lWJ5Zbk6NCk1RKDaNw9DRYOBlzmZs",
      .manifests_digest = digest,
      .actions = actions,
      .n_actions = ARRAY_SIZE(actions),
  };

  ledger_digest_sha256("kind: ServiceEntry\n", 19, digest);
  return ledger_fields_apply_intent(a, &in);
}

static struct doc_node *result_fields(struct doc_arena *a, uint64_t intent, const char *cluster) {
  static const struct ledger_object objects[] = {
      {.kind = "ServiceEntry", .namespace = "smm-demo", .name = "httpbin", .action = "create",
       .outcome = "ok", .resource_version = "1042", .uid = "7b0c1f5e-1d2a-4c33-9f5e-6a7b8c9d0e1f"},
  };
  struct ledger_apply_result in = {.intent = intent, .cluster = cluster, .outcome = "ok",
                                   .objects = objects, .n_objects = 1};
  return ledger_fields_apply_result(a, &in);
}

START_TEST(test_ledger_record_canonical_bytes) {
  struct doc_arena *a = doc_arena_new();
  struct buf line = BUF_INIT;
  struct ledger_record rec;
  struct err e = ERR_INIT;
  uint8_t root[32];

  unhex(ct_roots[0], root, 32);
  ck_assert_ok(ledger_record_format(1, "2026-11-27T00:00:01Z", LEDGER_TYPE_APPLY_RESULT, root,
                                    result_fields(a, 0, "prod-eu"), &line, &e), &e);
  ck_assert_str_eq(buf_cstr(&line),
                   "{\"index\":1,\"time\":\"2026-11-27T00:00:01Z\",\"type\":\"apply-result\","
                   "\"prev_root\":\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\","
                   "\"cluster\":\"prod-eu\",\"intent\":0,\"objects\":[{\"action\":\"create\","
                   "\"kind\":\"ServiceEntry\",\"name\":\"httpbin\",\"namespace\":\"smm-demo\","
                   "\"outcome\":\"ok\",\"resource_version\":\"1042\","
                   "\"uid\":\"7b0c1f5e-1d2a-4c33-9f5e-6a7b8c9d0e1f\"}],\"outcome\":\"ok\"}");
  ck_assert_ok(ledger_record_parse(a, line.data, line.len, &rec, &e), &e);
  ck_assert_uint_eq(rec.index, 1);
  ck_assert_int_eq(rec.type, LEDGER_TYPE_APPLY_RESULT);
  ck_assert_str_eq(rec.time, "2026-11-27T00:00:01Z");
  ck_assert(memcmp(rec.prev_root, root, 32) == 0);
  ck_assert_str_eq(doc_map_str(rec.object, "cluster"), "prod-eu");
  buf_dispose(&line);
  doc_arena_free(a);
}
END_TEST

START_TEST(test_ledger_record_strings_round_trip_escapes_and_utf8) {
  static const char *const fields[] = {"metadata.annotations[\"caf\xc3\xa9\"]",
                                       "quote \" backslash \\ tab \t newline \n end"};
  struct ledger_object obj = {.kind = "VirtualService", .name = "r\xc3\xa9sum\xc3\xa9",
                              .change = "modified", .fields = fields, .n_fields = 2,
                              .action = "reported"};
  struct ledger_change ch = {.cluster = "prod-eu", .commit = COMMIT_A, .objects = &obj,
                             .n_objects = 1};
  struct doc_arena *a = doc_arena_new();
  struct buf line = BUF_INIT;
  struct ledger_record rec;
  struct err e = ERR_INIT;
  uint8_t root[32] = {0};
  const struct doc_node *o;

  ck_assert_ok(ledger_record_format(7, "2026-11-27T00:00:07Z", LEDGER_TYPE_DRIFT, root,
                                    ledger_fields_drift(a, &ch), &line, &e), &e);
  ck_assert_ptr_nonnull(strstr(buf_cstr(&line), "\"name\":\"r\xc3\xa9sum\xc3\xa9\""));
  ck_assert_ptr_nonnull(strstr(buf_cstr(&line), "\"quote \\\" backslash \\\\ tab \\t newline \\n "
                                                "end\""));
  ck_assert_ok(ledger_record_parse(a, line.data, line.len, &rec, &e), &e);
  o = doc_map_get(rec.object, "objects")->u.seq.items[0];
  ck_assert_str_eq(doc_map_str(o, "name"), "r\xc3\xa9sum\xc3\xa9");
  ck_assert_str_eq(doc_map_get(o, "fields")->u.seq.items[1]->u.str.s, fields[1]);
  /* an escape the writer never uses is not canonical, though valid JSON */
  buf_reset(&line);
  buf_puts(&line, "{\"index\":0,\"time\":\"2026-11-27T00:00:01Z\",\"type\":\"drift\",\"prev_root\":"
                  "\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"cluster\":\"caf\\u00e9\","
                  "\"commit\":\"" COMMIT_A "\",\"objects\":[]}");
  ck_assert_int_eq(ledger_record_parse(a, line.data, line.len, &rec, &e), -EBADMSG);
  ck_assert_msg(strstr(e.msg, "not in canonical form") != NULL, "%s", e.msg);
  buf_dispose(&line);
  doc_arena_free(a);
}
END_TEST

START_TEST(test_ledger_record_parse_rejects_what_the_writer_never_writes) {
  static const struct {
    const char *line, *why;
  } cases[] = {
      {"{\"index\":0, \"time\":\"2026-11-27T00:00:01Z\",\"type\":\"drift\",\"prev_root\":"
       "\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"cluster\":\"a\",\"commit\":\"" COMMIT_A
       "\",\"objects\":[]}", "not in canonical form at column 12"},
      {"{\"index\":0,\"time\":\"2026-11-27T00:00:01Z\",\"type\":\"drift\",\"prev_root\":"
       "\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"commit\":\"" COMMIT_A
       "\",\"cluster\":\"a\",\"objects\":[]}", "not in canonical form"},
      {"{\"time\":\"2026-11-27T00:00:01Z\",\"index\":0,\"type\":\"drift\",\"prev_root\":"
       "\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"}",
       "does not begin with the keys index, time, type, prev_root"},
      {"{\"index\":0,\"time\":\"2026-11-27T00:00:01Z\",\"type\":\"drift\",\"prev_root\":"
       "\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"cluster\":\"a\",\"commit\":\"" COMMIT_A
       "\",\"objects\":[],\"zebra\":1}", "unknown field 'zebra'"},
      {"{\"index\":0,\"time\":\"2026-11-27T00:00:01Z\",\"type\":\"drift\",\"prev_root\":"
       "\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"cluster\":\"a\",\"commit\":\"XYZ\","
       "\"objects\":[]}", "'commit' is not a Git object id"},
      {"{\"index\":0,\"time\":\"2026-11-27T00:00:01Z\",\"type\":\"drift\",\"prev_root\":"
       "\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\",\"cluster\":\"a\",\"commit\":\"" COMMIT_A
       "\"}", "missing required field 'objects'"},
      {"{\"index\":0,\"time\":\"2026-11-27 00:00:01Z\",\"type\":\"drift\",\"prev_root\":"
       "\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"}", "'time' is not an RFC 3339 UTC time"},
      {"{\"index\":0,\"time\":\"2026-11-27T00:00:01Z\",\"type\":\"audit\",\"prev_root\":"
       "\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"}", "unknown record type"},
      {"{index: 0, time: 2026-11-27T00:00:01Z, type: drift, prev_root: x}",
       "'prev_root' is not the base64"},
      {"{\"index\":0,\"index\":1}", "not valid JSON"},
      {"[1,2]", "not a JSON object"},
      {"{\"index\":0,\"time\":", "not valid JSON"},
  };
  struct doc_arena *a = doc_arena_new();
  struct ledger_record rec;

  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    struct err e = ERR_INIT;
    ck_assert_msg(ledger_record_parse(a, cases[i].line, strlen(cases[i].line), &rec, &e) ==
                      -EBADMSG, "case %zu accepted", i);
    ck_assert_msg(strstr(e.msg, cases[i].why) != NULL, "case %zu: '%s' lacks '%s'", i, e.msg,
                  cases[i].why);
  }
  doc_arena_free(a);
}
END_TEST

START_TEST(test_ledger_record_format_refuses_reserved_keys_and_huge_records) {
  struct doc_arena *a = doc_arena_new();
  struct doc_node *f = doc_new_map(a);
  struct buf line = BUF_INIT, big = BUF_INIT;
  struct err e = ERR_INIT;
  uint8_t root[32] = {0};

  doc_map_set(a, f, "prev_root", doc_new_str(a, "mine"));
  ck_assert_int_eq(ledger_record_format(0, "2026-11-27T00:00:01Z", LEDGER_TYPE_DRIFT, root, f,
                                        &line, &e), -EINVAL);
  ck_assert_str_eq(e.msg, "field 'prev_root' is the ledger's own; choose another name");
  ck_assert(ledger_key_is_reserved("index") && !ledger_key_is_reserved("cluster"));
  f = doc_new_map(a);
  buf_reserve(&big, LEDGER_RECORD_MAX + 1);
  memset(big.data, 'x', LEDGER_RECORD_MAX);
  big.len = LEDGER_RECORD_MAX;
  doc_map_set(a, f, "cluster", doc_new_strn(a, big.data, big.len));
  err_clear(&e);
  ck_assert_int_eq(ledger_record_format(0, "2026-11-27T00:00:01Z", LEDGER_TYPE_DRIFT, root, f,
                                        &line, &e), -EINVAL);
  ck_assert_msg(strstr(e.msg, "the limit is 1048576") != NULL, "%s", e.msg);
  ck_assert_uint_eq(line.len, 0);
  buf_dispose(&big);
  buf_dispose(&line);
  doc_arena_free(a);
}
END_TEST

/* A drift record of a cluster with many objects (the fleet benchmark's
 * 4,026 per cluster made apply-result records of more than 65,536 nodes,
 * which the writer formatted and then refused to parse back): any record
 * within LEDGER_RECORD_MAX bytes round-trips. */
START_TEST(test_ledger_record_of_many_objects_round_trips) {
  enum { N = 8000 };
  struct doc_arena *a = doc_arena_new();
  struct ledger_object *objs = xcalloc(N, sizeof(*objs));
  char(*names)[16] = xcalloc(N, sizeof(*names));
  static const char *const fields[] = {"spec.hosts[0]"};
  struct ledger_change ch = {"c1", COMMIT_A, objs, N};
  struct ledger_record rec;
  struct buf line = BUF_INIT;
  struct err e = ERR_INIT;
  uint8_t root[32] = {0};

  for (size_t i = 0; i < N; i++) {
    snprintf(names[i], sizeof(names[i]), "o%zu", i);
    objs[i] = (struct ledger_object){.api_version = "v1", .kind = "K", .namespace = "n",
                                     .name = names[i], .action = "reapplied",
                                     .change = "modified", .fields = fields, .n_fields = 1};
  }
  ck_assert_ok(ledger_record_format(0, "2026-11-27T00:00:01Z", LEDGER_TYPE_DRIFT, root,
                                    ledger_fields_drift(a, &ch), &line, &e), &e);
  ck_assert_uint_le(line.len, LEDGER_RECORD_MAX);
  ck_assert_ok(ledger_record_parse(a, line.data, line.len, &rec, &e), &e);
  ck_assert_uint_eq(doc_len(doc_map_get(rec.object, "objects")), N);
  buf_dispose(&line);
  free(names);
  free(objs);
  doc_arena_free(a);
}
END_TEST

/* ---- the writer ---- */

static struct ledger *open_ledger(const char *dir, const struct ledger_key *k, bool create,
                                  struct ledger_recovery *rec) {
  struct ledger_open_opts o = {.dir = dir, .key = k, .create = create, .origin = ORIGIN,
                               .host = "test.example", .clock = test_clock};
  struct ledger *l = NULL;
  struct err e = ERR_INIT;

  ck_assert_ok(ledger_open(&o, &l, rec, &e), &e);
  return l;
}

static int try_open(const char *dir, const struct ledger_key *k, struct ledger_recovery *rec,
                    struct err *e) {
  struct ledger_open_opts o = {.dir = dir, .key = k, .clock = test_clock};
  struct ledger *l = NULL;
  int r = ledger_open(&o, &l, rec, e);
  ledger_close(l);
  return r;
}

static uint64_t append_intent(struct ledger *l, const char *cluster) {
  struct doc_arena *a = doc_arena_new();
  struct err e = ERR_INIT;
  uint64_t idx = LEDGER_INDEX_NONE;

  ck_assert_ok(ledger_append(l, LEDGER_TYPE_APPLY_INTENT, intent_fields(a, cluster), &idx, &e), &e);
  doc_arena_free(a);
  return idx;
}

static uint64_t append_result(struct ledger *l, uint64_t intent, const char *cluster) {
  struct doc_arena *a = doc_arena_new();
  struct err e = ERR_INIT;
  uint64_t idx = LEDGER_INDEX_NONE;

  ck_assert_ok(ledger_append(l, LEDGER_TYPE_APPLY_RESULT, result_fields(a, intent, cluster), &idx,
                             &e), &e);
  doc_arena_free(a);
  return idx;
}

/* genesis + @pairs intent/result pairs */
static char *make_ledger(unsigned pairs) {
  char *dir = testutil_tmpdir(), *ldir = path_join(dir, "ledger");
  struct ledger_key *k = test_key();
  struct ledger *l = open_ledger(ldir, k, true, NULL);

  for (unsigned i = 0; i < pairs; i++)
    append_result(l, append_intent(l, i % 2 ? "prod-us" : "prod-eu"), i % 2 ? "prod-us" : "prod-eu");
  ledger_close(l);
  ledger_key_free(k);
  free(dir);
  return ldir;
}

static void remove_ledger(char *ldir) {
  char *parent = path_dirname(ldir);
  testutil_rmrf(parent);
  free(parent);
  free(ldir);
}

static struct ledger_verify_report verify(const char *dir, const struct ledger_trust *trust,
                                          const char *since) {
  struct ledger_verify_opts o = {.dir = dir, .trust = trust, .since = since};
  struct ledger_verify_report rep;
  struct err e = ERR_INIT;

  ck_assert_ok(ledger_verify(&o, &rep, &e), &e);
  return rep;
}

static const struct ledger_check *find_check(const struct ledger_verify_report *rep,
                                             const char *name) {
  for (size_t i = 0; i < rep->n; i++)
    if (str_eq(rep->checks[i].name, name))
      return &rep->checks[i];
  ck_abort_msg("no check '%s'", name);
  return NULL;
}

START_TEST(test_ledger_create_writes_golden_files) {
  char *dir = make_ledger(1), *got, *want;
  static const char *const files[] = {"ledger.jsonl", "checkpoint", "checkpoint.sig"};

  for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
    got = read_text(dir, files[i]);
    want = read_text(TEST_DATA_DIR "/ledger/0004-golden-ledger", files[i]);
    ck_assert_ptr_nonnull(got);
    ck_assert_ptr_nonnull(want);
    ck_assert_msg(str_eq(got, want), "%s differs from the golden copy:\n%s", files[i], got);
    free(got);
    free(want);
  }
  remove_ledger(dir);
}
END_TEST

START_TEST(test_ledger_append_checks_before_writing) {
  char *dir = make_ledger(0), *before, *after;
  struct ledger_key *k = test_key();
  struct ledger *l = open_ledger(dir, k, false, NULL);
  struct doc_arena *a = doc_arena_new();
  struct doc_node *f;
  struct err e = ERR_INIT;
  uint64_t idx;

  before = read_text(dir, "ledger.jsonl");
  ck_assert_int_eq(ledger_append(l, LEDGER_TYPE_APPLY_RESULT, result_fields(a, 0, "prod-eu"), &idx,
                                 &e), -EINVAL);
  ck_assert_str_eq(e.msg, "cannot append this apply-result record: apply-result for intent 0, "
                          "which is not an apply-intent awaiting its result");
  idx = append_intent(l, "prod-eu");
  err_clear(&e);
  ck_assert_int_eq(ledger_append(l, LEDGER_TYPE_APPLY_RESULT, result_fields(a, idx, "prod-us"),
                                 NULL, &e), -EINVAL);
  ck_assert_msg(strstr(e.msg, "closes intent 1 of cluster 'prod-eu'") != NULL, "%s", e.msg);
  f = intent_fields(a, "prod-eu");
  doc_map_set(a, f, "commit", doc_new_str(a, "HEAD"));
  err_clear(&e);
  ck_assert_int_eq(ledger_append(l, LEDGER_TYPE_APPLY_INTENT, f, NULL, &e), -EINVAL);
  ck_assert_msg(strstr(e.msg, "'commit' is not a Git object id") != NULL, "%s", e.msg);
  f = intent_fields(a, "prod-eu");
  doc_map_set(a, f, "note", doc_new_str(a, "bad \x7f control"));
  err_clear(&e);
  ck_assert_int_eq(ledger_append(l, LEDGER_TYPE_APPLY_INTENT, f, NULL, &e), -EINVAL);
  err_clear(&e);
  ck_assert_int_eq(ledger_append(l, LEDGER_TYPE_GENESIS, f, NULL, &e), -EINVAL);
  ck_assert_uint_eq(ledger_size(l), 2);
  after = read_text(dir, "ledger.jsonl");
  ck_assert_uint_eq(strlen(after), strlen(before) + strlen(strchr(after, '\n') + 1));
  ck_assert_uint_eq(append_result(l, idx, "prod-eu"), 2);
  ledger_close(l);
  ck_assert(verify(dir, NULL, NULL).ok);
  free(before);
  free(after);
  doc_arena_free(a);
  ledger_key_free(k);
  remove_ledger(dir);
}
END_TEST

START_TEST(test_ledger_second_writer_gets_busy_with_pid) {
  char *dir = make_ledger(0), pid[32];
  struct ledger_key *k = test_key();
  struct ledger *l = open_ledger(dir, k, false, NULL);
  struct err e = ERR_INIT;

  ck_assert_int_eq(try_open(dir, k, NULL, &e), -EBUSY);
  str_format(pid, sizeof(pid), "(pid %ld)", (long)getpid());
  ck_assert_msg(strstr(e.msg, pid) != NULL, "%s", e.msg);
  ledger_close(l);
  err_clear(&e);
  ck_assert_ok(try_open(dir, k, NULL, &e), &e);
  ledger_key_free(k);
  remove_ledger(dir);
}
END_TEST

START_TEST(test_ledger_recovery_trims_torn_tail_beyond_signed_size) {
  char *dir = make_ledger(1), *before = read_text(dir, "ledger.jsonl"), *after;
  struct buf torn = BUF_INIT;
  struct ledger_key *k = test_key();
  struct ledger_recovery rec;
  struct ledger_verify_report rep;
  struct ledger *l;

  buf_puts(&torn, before);
  buf_puts(&torn, "{\"index\":3,\"time\":\"2026-11");
  write_text(dir, "ledger.jsonl", torn.data, torn.len);
  rep = verify(dir, NULL, NULL);
  ck_assert(rep.ok);   /* a warning, not a failure */
  ck_assert_int_eq(find_check(&rep, "tail")->status, LEDGER_CHECK_WARN);
  ck_assert_msg(strstr(find_check(&rep, "tail")->msg, "an incomplete last line") != NULL, "%s",
                find_check(&rep, "tail")->msg);
  l = open_ledger(dir, k, false, &rec);
  ck_assert_uint_eq(rec.trimmed_bytes, strlen("{\"index\":3,\"time\":\"2026-11"));
  ck_assert_uint_eq(rec.trimmed_offset, strlen(before));
  ck_assert(!rec.pending_installed && !rec.quarantined && !rec.created);
  ck_assert_uint_eq(rec.size, 3);
  ledger_recovery_dispose(&rec);
  ledger_close(l);
  after = read_text(dir, "ledger.jsonl");
  ck_assert_str_eq(after, before);
  buf_dispose(&torn);
  free(before);
  free(after);
  ledger_key_free(k);
  remove_ledger(dir);
}
END_TEST

START_TEST(test_ledger_recovery_installs_the_checkpoint_signed_before_the_record) {
  char *dir = make_ledger(1), *cp = read_text(dir, "checkpoint"), *sig = read_text(dir, "checkpoint.sig");
  char *new_cp, *new_sig, *cp_after, *repo = NULL;
  const char *commit, *intent_repo = NULL;
  struct ledger_key *k = test_key();
  struct ledger_recovery rec;
  struct ledger *l = open_ledger(dir, k, false, NULL);
  struct ledger_verify_report rep;

  append_intent(l, "prod-eu");
  commit = ledger_last_intent_commit(l, &intent_repo);
  ck_assert_str_eq(commit, COMMIT_A);
  ck_assert_str_eq(intent_repo, "ssh://git@git.example.com/platform/egress.git");
  repo = xstrdup(intent_repo);
  ledger_close(l);
  /* the crash between the append and the renames: the record is durable,
   * the checkpoint egressd signed for it is still the pending pair */
  new_cp = read_text(dir, "checkpoint");
  new_sig = read_text(dir, "checkpoint.sig");
  write_text(dir, "checkpoint.tmp", new_cp, strlen(new_cp));
  write_text(dir, "checkpoint.sig.tmp", new_sig, strlen(new_sig));
  write_text(dir, "checkpoint", cp, strlen(cp));
  write_text(dir, "checkpoint.sig", sig, strlen(sig));
  rep = verify(dir, NULL, NULL);
  ck_assert(rep.ok);
  ck_assert_int_eq(find_check(&rep, "tail")->status, LEDGER_CHECK_WARN);
  ck_assert_msg(strstr(find_check(&rep, "tail")->msg, "record 3 is past the signed checkpoint, "
                       "signed by its writer in checkpoint.tmp") != NULL, "%s",
                find_check(&rep, "tail")->msg);
  l = open_ledger(dir, k, false, &rec);
  ck_assert(rec.pending_installed && !rec.quarantined && !rec.checkpoint_discarded);
  ck_assert_uint_eq(rec.signed_size, 3);
  /* ... and the intent it left open gets its "interrupted" result */
  ck_assert_uint_eq(rec.n_interrupted, 1);
  ck_assert_uint_eq(rec.interrupted[0].intent, 3);
  ck_assert_uint_eq(rec.interrupted[0].result, 4);
  ck_assert_str_eq(rec.interrupted[0].cluster, "prod-eu");
  ck_assert_uint_eq(rec.size, 5);
  /* the ledger read at open knows the last applied commit too */
  commit = ledger_last_intent_commit(l, &intent_repo);
  ck_assert_str_eq(commit, COMMIT_A);
  ck_assert_str_eq(intent_repo, repo);
  ledger_recovery_dispose(&rec);
  ledger_close(l);
  cp_after = read_text(dir, "checkpoint");
  ck_assert(str_has_prefix(cp_after, ORIGIN "\n5\n"));
  ck_assert_ptr_null(read_text(dir, "checkpoint.tmp"));
  rep = verify(dir, NULL, NULL);
  ck_assert(rep.ok);
  ck_assert_int_eq(find_check(&rep, "tail")->status, LEDGER_CHECK_OK);
  free(cp);
  free(sig);
  free(new_cp);
  free(new_sig);
  free(cp_after);
  free(repo);
  ledger_key_free(k);
  remove_ledger(dir);
}
END_TEST

/* W-3: anyone who can write ledger.jsonl can append a record whose index
 * and prev_root chain are right; without the key there is no signature of
 * it. verify fails, and recovery moves it aside instead of signing it. */
START_TEST(test_ledger_recovery_never_signs_a_record_nobody_signed) {
  char *dir = make_ledger(1), *cp = read_text(dir, "checkpoint"), *sig = read_text(dir, "checkpoint.sig");
  char *before = read_text(dir, "ledger.jsonl"), *forged, *after, *moved, *cp_after;
  struct ledger_key *k = test_key();
  struct ledger_recovery rec;
  struct ledger *l = open_ledger(dir, k, false, NULL);
  struct ledger_verify_opts vo = {.dir = dir, .allow_unsigned_tail = true};
  struct ledger_verify_report rep;
  struct err e = ERR_INIT;

  /* a well-formed record 3, chained to records 0-2: made here with the
   * writer, then its signature thrown away, which leaves exactly what a
   * forger without the key can write */
  append_intent(l, "prod-eu");
  ledger_close(l);
  forged = read_text(dir, "ledger.jsonl");
  write_text(dir, "checkpoint", cp, strlen(cp));
  write_text(dir, "checkpoint.sig", sig, strlen(sig));
  rep = verify(dir, NULL, NULL);
  ck_assert(!rep.ok);
  ck_assert_int_eq(find_check(&rep, "tail")->status, LEDGER_CHECK_FAIL);
  ck_assert_msg(strstr(find_check(&rep, "tail")->msg, "record 3 is past the signed checkpoint and "
                       "no signature of the ledger's key covers it") != NULL, "%s",
                find_check(&rep, "tail")->msg);
  ck_assert_uint_eq(rep.bad_index, 3);
  /* asked to accept it: a warning */
  ck_assert_ok(ledger_verify(&vo, &rep, &e), &e);
  ck_assert(rep.ok);
  ck_assert_int_eq(find_check(&rep, "tail")->status, LEDGER_CHECK_WARN);
  /* a stale pending pair of another size proves nothing either */
  write_text(dir, "checkpoint.tmp", cp, strlen(cp));
  write_text(dir, "checkpoint.sig.tmp", sig, strlen(sig));
  l = open_ledger(dir, k, false, &rec);
  ck_assert(rec.quarantined && !rec.pending_installed);
  ck_assert_uint_eq(rec.quarantined_index, 3);
  ck_assert_uint_eq(rec.quarantined_bytes, strlen(forged) - strlen(before));
  ck_assert_msg(str_has_suffix(rec.quarantine_path, "/unsigned-record-3.jsonl"), "%s",
                rec.quarantine_path);
  /* nothing of it stays: no "interrupted" result for the forged intent */
  ck_assert_uint_eq(rec.n_interrupted, 0);
  ck_assert_uint_eq(rec.size, 3);
  ck_assert_uint_eq(ledger_size(l), 3);
  ledger_recovery_dispose(&rec);
  ledger_close(l);
  after = read_text(dir, "ledger.jsonl");
  ck_assert_str_eq(after, before);
  moved = read_text(dir, "unsigned-record-3.jsonl");
  ck_assert_str_eq(moved, forged + strlen(before));
  cp_after = read_text(dir, "checkpoint");
  ck_assert_str_eq(cp_after, cp);   /* never signed */
  ck_assert_ptr_null(read_text(dir, "checkpoint.tmp"));
  rep = verify(dir, NULL, NULL);
  ck_assert(rep.ok);
  ck_assert_int_eq(find_check(&rep, "tail")->status, LEDGER_CHECK_OK);
  /* the same again: the quarantine file is not overwritten */
  write_text(dir, "ledger.jsonl", forged, strlen(forged));
  l = open_ledger(dir, k, false, &rec);
  ck_assert_msg(str_has_suffix(rec.quarantine_path, "/unsigned-record-3.1.jsonl"), "%s",
                rec.quarantine_path);
  ledger_recovery_dispose(&rec);
  ledger_close(l);
  free(cp);
  free(sig);
  free(before);
  free(forged);
  free(after);
  free(moved);
  free(cp_after);
  ledger_key_free(k);
  remove_ledger(dir);
}
END_TEST

START_TEST(test_ledger_recovery_finishes_or_drops_checkpoint_replacement) {
  char *dir = make_ledger(1), *old_cp = read_text(dir, "checkpoint"), *new_cp, *got;
  char *old_sig = read_text(dir, "checkpoint.sig");
  struct ledger_key *k = test_key();
  struct ledger_recovery rec;
  struct ledger *l = open_ledger(dir, k, false, NULL);
  struct err e = ERR_INIT;

  append_result(l, append_intent(l, "prod-eu"), "prod-eu");
  ledger_close(l);
  new_cp = read_text(dir, "checkpoint");
  /* stopped between the two renames: new signature, old checkpoint */
  write_text(dir, "checkpoint.tmp", new_cp, strlen(new_cp));
  write_text(dir, "checkpoint", old_cp, strlen(old_cp));
  ck_assert(!verify(dir, NULL, NULL).ok);
  ck_assert_ok(try_open(dir, k, &rec, &e), &e);
  ck_assert(rec.checkpoint_completed && !rec.pending_installed);
  ledger_recovery_dispose(&rec);
  got = read_text(dir, "checkpoint");
  ck_assert_str_eq(got, new_cp);
  free(got);
  ck_assert(verify(dir, NULL, NULL).ok);
  /* stopped before the first rename: the temporary files are dropped */
  write_text(dir, "checkpoint.sig.tmp", old_sig, 10);
  write_text(dir, "checkpoint.tmp", old_cp, strlen(old_cp));
  ck_assert_ok(try_open(dir, k, &rec, &e), &e);
  ck_assert(rec.checkpoint_discarded && !rec.checkpoint_completed);
  ledger_recovery_dispose(&rec);
  got = read_text(dir, "checkpoint.tmp");
  ck_assert_ptr_null(got);
  got = read_text(dir, "checkpoint");
  ck_assert_str_eq(got, new_cp);
  free(got);
  free(old_cp);
  free(old_sig);
  free(new_cp);
  ledger_key_free(k);
  remove_ledger(dir);
}
END_TEST

START_TEST(test_ledger_recovery_refuses_unexplained_data_and_wrong_key) {
  char *dir = make_ledger(1), *text = read_text(dir, "ledger.jsonl"), *after;
  struct ledger_key *k = test_key(), *other = NULL;
  struct buf more = BUF_INIT;
  struct err e = ERR_INIT;

  /* a complete but invalid line beyond the signed size is not a torn write */
  buf_puts(&more, text);
  buf_puts(&more, "{\"index\":3}\n");
  write_text(dir, "ledger.jsonl", more.data, more.len);
  ck_assert_int_eq(try_open(dir, k, NULL, &e), -EBADMSG);
  ck_assert_msg(strstr(e.msg, "record 3 (line 4)") && strstr(e.msg, "not a torn write"), "%s",
                e.msg);
  after = read_text(dir, "ledger.jsonl");
  ck_assert_str_eq(after, more.data);   /* nothing changed */
  free(after);
  write_text(dir, "ledger.jsonl", text, strlen(text));
  ck_assert_ok(ledger_key_generate(NULL, &other, &e), &e);
  err_clear(&e);
  ck_assert_int_eq(try_open(dir, other, NULL, &e), -EKEYREJECTED);
  ck_assert_msg(strstr(e.msg, "is not the key of ledger") != NULL, "%s", e.msg);
  err_clear(&e);
  ck_assert_ok(try_open(dir, k, NULL, &e), &e);
  buf_dispose(&more);
  free(text);
  ledger_key_free(k);
  ledger_key_free(other);
  remove_ledger(dir);
}
END_TEST

START_TEST(test_ledger_missing_ledger_without_create_is_enoent) {
  char *dir = testutil_tmpdir();
  struct ledger_key *k = test_key();
  struct err e = ERR_INIT;

  ck_assert_int_eq(try_open(dir, k, NULL, &e), -ENOENT);
  ck_assert_msg(strstr(e.msg, "no ledger in") != NULL, "%s", e.msg);
  ledger_key_free(k);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST

/* ---- tampering ---- */

static char **lines_of(char *text, size_t *n) {
  char **v = NULL;
  size_t cap = 0;

  *n = 0;
  for (char *p = text; *p;) {
    char *nl = strchr(p, '\n');
    v = xgrow(v, &cap, *n + 1, sizeof(*v));
    v[(*n)++] = p;
    if (!nl)
      break;
    *nl = '\0';
    p = nl + 1;
  }
  return v;
}

static void write_lines(const char *dir, char **lines, size_t n) {
  struct buf b = BUF_INIT;
  for (size_t i = 0; i < n; i++)
    buf_printf(&b, "%s\n", lines[i]);
  write_text(dir, "ledger.jsonl", b.data, b.len);
  buf_dispose(&b);
}

enum tamper { FLIP_BODY, FLIP_PREV_ROOT, DELETE_LINE, SWAP_LINES, TRUNCATE_LINES, TRUNCATE_MID };

static void tamper(const char *dir, enum tamper how, size_t k) {
  char *text = read_text(dir, "ledger.jsonl"), *p;
  size_t n;
  char **lines = lines_of(text, &n), *t;

  switch (how) {
  case FLIP_BODY:
    p = strstr(lines[k], "git.example.com");
    ck_assert_ptr_nonnull(p);
    p[4] = 'd';   /* git.example.com -> git.dxample.com */
    write_lines(dir, lines, n);
    break;
  case FLIP_PREV_ROOT:
    p = strstr(lines[k], "\"prev_root\":\"");
    p[13 + 10] = p[13 + 10] == 'A' ? 'B' : 'A';
    write_lines(dir, lines, n);
    break;
  case DELETE_LINE:
    memmove(&lines[k], &lines[k + 1], (n - k - 1) * sizeof(*lines));
    write_lines(dir, lines, n - 1);
    break;
  case SWAP_LINES:
    t = lines[k];
    lines[k] = lines[k + 1];
    lines[k + 1] = t;
    write_lines(dir, lines, n);
    break;
  case TRUNCATE_LINES:
    write_lines(dir, lines, k);
    break;
  case TRUNCATE_MID: {
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < k; i++)
      buf_printf(&b, "%s\n", lines[i]);
    buf_append(&b, lines[k], strlen(lines[k]) / 2);
    write_text(dir, "ledger.jsonl", b.data, b.len);
    buf_dispose(&b);
    break;
  }
  }
  free(lines);
  free(text);
}

static void expect_tamper_detected(enum tamper how, size_t k, uint64_t want_index,
                                   const char *check_name, const char *want_text) {
  char *dir = make_ledger(5);   /* records 0-10 */
  struct ledger_key *key = test_key();
  struct ledger_verify_report rep;
  struct err e = ERR_INIT;
  char want[64];

  ck_assert(verify(dir, NULL, NULL).ok);
  tamper(dir, how, k);
  rep = verify(dir, NULL, NULL);
  ck_assert_msg(!rep.ok, "tamper %d not detected", how);
  ck_assert_uint_eq(rep.bad_index, want_index);
  ck_assert_int_eq(find_check(&rep, check_name)->status, LEDGER_CHECK_FAIL);
  ck_assert_msg(strstr(find_check(&rep, check_name)->msg, want_text) != NULL, "tamper %d: '%s'",
                how, find_check(&rep, check_name)->msg);
  /* start-up refuses as well, naming the same record */
  ck_assert_int_eq(try_open(dir, key, NULL, &e), -EBADMSG);
  str_format(want, sizeof(want), "record %llu", (unsigned long long)want_index);
  ck_assert_msg(strstr(e.msg, want) != NULL, "open: '%s' lacks '%s'", e.msg, want);
  ledger_key_free(key);
  remove_ledger(dir);
}

START_TEST(test_ledger_tamper_flipped_byte_in_middle_record_names_it) {
  expect_tamper_detected(FLIP_BODY, 5, 5, "records",
                         "record 5 (line 6) was altered: its hash no longer matches the prev_root "
                         "of record 6");
}
END_TEST

START_TEST(test_ledger_tamper_flipped_prev_root_names_its_record) {
  expect_tamper_detected(FLIP_PREV_ROOT, 5, 5, "records",
                         "record 5 (line 6): its prev_root was altered (record 6 confirms");
}
END_TEST

START_TEST(test_ledger_tamper_deleted_line_names_the_missing_record) {
  expect_tamper_detected(DELETE_LINE, 4, 4, "records",
                         "line 5 holds record 5 where record 4 belongs");
}
END_TEST

START_TEST(test_ledger_tamper_reordered_pair_names_the_first) {
  expect_tamper_detected(SWAP_LINES, 6, 6, "records",
                         "line 7 holds record 7 where record 6 belongs");
}
END_TEST

START_TEST(test_ledger_tamper_truncation_inside_signed_size_names_first_missing) {
  expect_tamper_detected(TRUNCATE_LINES, 7, 7, "records",
                         "record 7 is missing: the file ends after 7 records but the signed "
                         "checkpoint covers 11 (records 7-10 were removed)");
  expect_tamper_detected(TRUNCATE_MID, 9, 9, "records", "record 9 (line 10) is incomplete");
}
END_TEST

START_TEST(test_ledger_tamper_last_record_fails_the_root) {
  char *dir = make_ledger(5), *text = read_text(dir, "ledger.jsonl");
  struct ledger_verify_report rep;
  char *p = strstr(strrchr(text, '{'), "\"1042\"");

  p[1] = '9';
  write_text(dir, "ledger.jsonl", text, strlen(text));
  rep = verify(dir, NULL, NULL);
  ck_assert(!rep.ok);
  ck_assert_uint_eq(rep.bad_index, 10);
  ck_assert_msg(strstr(find_check(&rep, "root")->msg, "record 10 was altered") != NULL, "%s",
                find_check(&rep, "root")->msg);
  free(text);
  remove_ledger(dir);
}
END_TEST

START_TEST(test_ledger_tamper_checkpoint_from_another_key) {
  char *dir = make_ledger(2), *cp = read_text(dir, "checkpoint");
  struct ledger_key *other = NULL, *k = test_key();
  struct ledger_verify_report rep;
  struct buf sig = BUF_INIT, pub = BUF_INIT;
  struct ledger_trust *trust = NULL;
  struct err e = ERR_INIT;

  ck_assert_ok(ledger_key_generate(NULL, &other, &e), &e);
  ledger_sshsig_sign(other, LEDGER_NAMESPACE, cp, strlen(cp), &sig);
  write_text(dir, "checkpoint.sig", sig.data, sig.len);
  rep = verify(dir, NULL, NULL);
  ck_assert(!rep.ok);
  ck_assert_msg(strstr(find_check(&rep, "checkpoint")->msg, "not by the ledger's key") &&
                    strstr(find_check(&rep, "checkpoint")->msg, "(record 0)"),
                "%s", find_check(&rep, "checkpoint")->msg);
  ck_assert_int_eq(try_open(dir, k, NULL, &e), -EBADMSG);
  ck_assert_msg(strstr(e.msg, "the checkpoint is signed by") != NULL, "%s", e.msg);
  /* pinned with --pubkey: the other key is not trusted even with a
   * consistent genesis */
  ledger_pubkey_format(ledger_key_public(other), NULL, &pub);
  ck_assert_ok(ledger_trust_parse(pub.data, pub.len, "other.pub", 0, &trust, &e), &e);
  rep = verify(dir, trust, NULL);
  ck_assert(!rep.ok);
  ledger_trust_free(trust);
  buf_dispose(&sig);
  buf_dispose(&pub);
  free(cp);
  ledger_key_free(other);
  ledger_key_free(k);
  remove_ledger(dir);
}
END_TEST

/* ---- verification with a pinned key, --since, proofs, rotation ---- */

START_TEST(test_ledger_verify_with_pubkey_and_since) {
  char *dir = make_ledger(2), *old_cp_path = path_join(dir, "../old-checkpoint"), *sig_path;
  char *cp = read_text(dir, "checkpoint"), *sig = read_text(dir, "checkpoint.sig");
  char *pub = read_text(KEY_DIR, "id_ed25519.pub");
  struct ledger_key *k = test_key();
  struct ledger_trust *trust = NULL;
  struct ledger_verify_report rep;
  struct ledger *l;
  struct err e = ERR_INIT;

  sig_path = xasprintf("%s.sig", old_cp_path);
  write_text("", old_cp_path, cp, strlen(cp));
  write_text("", sig_path, sig, strlen(sig));
  l = open_ledger(dir, k, false, NULL);
  append_result(l, append_intent(l, "prod-eu"), "prod-eu");
  ledger_close(l);
  ck_assert_ok(ledger_trust_parse(pub, strlen(pub), "id.pub", 0, &trust, &e), &e);
  rep = verify(dir, trust, old_cp_path);
  ck_assert_msg(rep.ok, "%s / %s", rep.checks[0].msg, rep.n > 4 ? rep.checks[4].msg : "");
  ck_assert_int_eq(find_check(&rep, "since")->status, LEDGER_CHECK_OK);
  ck_assert_msg(strstr(find_check(&rep, "since")->msg, "the checkpoint of size 5 is a prefix of "
                                                       "size 7") != NULL,
                "%s", find_check(&rep, "since")->msg);
  ck_assert_uint_eq(rep.records, 7);
  ck_assert_uint_eq(rep.signed_size, 7);
  ck_assert_uint_eq(rep.bad_index, LEDGER_INDEX_NONE);
  /* history rewritten after the old checkpoint was signed: the same key
   * signs a ledger whose record 1 is for another cluster */
  testutil_rmrf(dir);
  l = open_ledger(dir, k, true, NULL);
  append_result(l, append_intent(l, "canary"), "canary");
  append_result(l, append_intent(l, "prod-eu"), "prod-eu");
  append_result(l, append_intent(l, "prod-eu"), "prod-eu");
  ledger_close(l);
  ck_assert(verify(dir, trust, NULL).ok);
  rep = verify(dir, trust, old_cp_path);
  ck_assert(!rep.ok);
  ck_assert_int_eq(find_check(&rep, "since")->status, LEDGER_CHECK_FAIL);
  ck_assert_msg(strstr(find_check(&rep, "since")->msg, "is not a prefix") != NULL, "%s",
                find_check(&rep, "since")->msg);
  ledger_trust_free(trust);
  unlink(old_cp_path);
  unlink(sig_path);
  free(old_cp_path);
  free(sig_path);
  free(cp);
  free(sig);
  free(pub);
  ledger_key_free(k);
  remove_ledger(dir);
}
END_TEST

START_TEST(test_ledger_prove_inclusion_against_signed_root) {
  char *dir = make_ledger(4), *cp_text = read_text(dir, "checkpoint");
  struct ledger_checkpoint cp;
  struct ledger_proof p;
  uint8_t leaf[32], root[32];
  uint64_t size;
  struct err e = ERR_INIT;
  struct ledger_reader *r = NULL;
  struct ledger_record rec;

  ck_assert_ok(ledger_checkpoint_parse(cp_text, strlen(cp_text), "cp", &cp, &e), &e);
  ck_assert_uint_eq(cp.size, 9);
  for (uint64_t i = 0; i < 9; i++) {
    ck_assert_ok(ledger_prove(dir, i, 0, &p, leaf, root, &size, &e), &e);
    ck_assert_uint_eq(size, 9);
    ck_assert(memcmp(root, cp.root, 32) == 0);
    ck_assert_int_eq(ledger_proof_verify_inclusion(i, 9, leaf, &p, cp.root), 0);
  }
  /* the leaf is the hash of the exact line */
  ck_assert_ok(ledger_reader_open(dir, &r, &e), &e);
  ck_assert_int_eq(ledger_reader_next(r, &rec, &e), 1);
  ck_assert_int_eq(ledger_reader_next(r, &rec, &e), 1);
  ck_assert_ok(ledger_prove(dir, 1, 4, &p, leaf, root, &size, &e), &e);
  {
    uint8_t h[32];
    ledger_hash_leaf(rec.line, rec.len, h);
    ck_assert(memcmp(h, leaf, 32) == 0);
  }
  ck_assert_int_eq(ledger_proof_verify_inclusion(1, 4, leaf, &p, root), 0);
  ck_assert_int_eq(ledger_prove(dir, 9, 0, &p, leaf, root, &size, &e), -ERANGE);
  err_clear(&e);
  ck_assert_int_eq(ledger_prove(dir, 1, 12, &p, leaf, root, &size, &e), -ERANGE);
  ledger_reader_free(r);
  free(cp_text);
  remove_ledger(dir);
}
END_TEST

START_TEST(test_ledger_reader_gives_records_and_intent_commits) {
  char *dir = make_ledger(2);
  struct ledger_reader *r = NULL;
  struct ledger_record rec;
  struct err e = ERR_INIT;
  static const enum ledger_type want[] = {LEDGER_TYPE_GENESIS, LEDGER_TYPE_APPLY_INTENT,
                                          LEDGER_TYPE_APPLY_RESULT, LEDGER_TYPE_APPLY_INTENT,
                                          LEDGER_TYPE_APPLY_RESULT};
  size_t n = 0;
  int k;

  ck_assert_ok(ledger_reader_open(dir, &r, &e), &e);
  while ((k = ledger_reader_next(r, &rec, &e)) > 0) {
    ck_assert_uint_eq(rec.index, n);
    ck_assert_int_eq(rec.type, want[n]);
    if (rec.type == LEDGER_TYPE_APPLY_RESULT)
      ck_assert_str_eq(ledger_reader_intent_commit(r), COMMIT_A);
    else
      ck_assert_ptr_null(ledger_reader_intent_commit(r));
    n++;
  }
  ck_assert_int_eq(k, 0);
  ck_assert_uint_eq(n, 5);
  ledger_reader_free(r);
  remove_ledger(dir);
}
END_TEST

START_TEST(test_ledger_key_rotation_is_signed_by_old_key) {
  char *dir = make_ledger(1), *text, *line;
  struct ledger_key *k = test_key(), *next = NULL;
  struct ledger *l = open_ledger(dir, k, false, NULL);
  struct ledger_verify_report rep;
  struct ledger_trust *trust = NULL;
  struct buf pub = BUF_INIT;
  struct err e = ERR_INIT;
  uint64_t idx;

  ck_assert_ok(ledger_key_generate("next", &next, &e), &e);
  ck_assert_int_eq(ledger_rotate_key(l, k, &idx, &e), -EINVAL);
  err_clear(&e);
  ck_assert_ok(ledger_rotate_key(l, next, &idx, &e), &e);
  ck_assert_uint_eq(idx, 3);
  append_intent(l, "prod-eu");
  ledger_close(l);
  text = read_text(dir, "ledger.jsonl");
  line = strstr(text, "\"type\":\"key-rotation\"");
  ck_assert_ptr_nonnull(line);
  ck_assert_ptr_nonnull(strstr(line, "\"signature\":\"-----BEGIN SSH SIGNATURE-----\\n"));
  /* the checkpoint is now signed by the new key */
  ledger_pubkey_format(ledger_key_public(next), NULL, &pub);
  ck_assert_ok(ledger_trust_parse(pub.data, pub.len, "next.pub", 0, &trust, &e), &e);
  rep = verify(dir, trust, NULL);
  ck_assert_msg(rep.ok, "%s", rep.checks[0].msg);
  ck_assert_int_eq(try_open(dir, k, NULL, &e), -EKEYREJECTED);
  ck_assert_msg(strstr(e.msg, "record 3") != NULL, "%s", e.msg);
  err_clear(&e);
  ck_assert_ok(try_open(dir, next, NULL, &e), &e);   /* closes the intent of record 4 */
  /* a forged rotation (signed by the new key itself) is refused */
  {
    char *t2 = read_text(dir, "ledger.jsonl");
    size_t n;
    char **lines = lines_of(t2, &n);
    struct doc_arena *a = doc_arena_new();
    struct ledger_record rec;
    struct buf msg = BUF_INIT, sig = BUF_INIT, forged = BUF_INIT;
    struct doc_node *f = doc_new_map(a);
    uint8_t prev[32];

    ck_assert_ok(ledger_record_parse(a, lines[3], strlen(lines[3]), &rec, &e), &e);
    memcpy(prev, rec.prev_root, 32);
    rotation_message(ORIGIN, 3, prev, doc_map_str(rec.object, "public_key"), &msg);
    ledger_sshsig_sign(next, LEDGER_ROTATION_NAMESPACE, msg.data, msg.len, &sig);
    doc_map_set(a, f, "public_key", doc_new_str(a, doc_map_str(rec.object, "public_key")));
    doc_map_set(a, f, "signature", doc_new_str(a, sig.data));
    ck_assert_ok(ledger_record_format(3, rec.time, LEDGER_TYPE_KEY_ROTATION, prev, f, &forged, &e),
                 &e);
    lines[3] = forged.data;
    write_lines(dir, lines, n);
    rep = verify(dir, NULL, NULL);
    ck_assert(!rep.ok);
    ck_assert_uint_eq(rep.bad_index, 3);
    ck_assert_msg(strstr(find_check(&rep, "records")->msg, "not by the key it replaces") != NULL,
                  "%s", find_check(&rep, "records")->msg);
    buf_dispose(&msg);
    buf_dispose(&sig);
    buf_dispose(&forged);
    doc_arena_free(a);
    free(lines);
    free(t2);
  }
  ledger_trust_free(trust);
  buf_dispose(&pub);
  free(text);
  ledger_key_free(k);
  ledger_key_free(next);
  remove_ledger(dir);
}
END_TEST

static Suite *ledger_suite(void) {
  Suite *s = suite_create("ledger");
  TCase *tc = tcase_create("ledger");

  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_ledger_rfc6962_roots_match_reference_vectors);
  tcase_add_test(tc, test_ledger_rfc6962_proofs_match_reference_vectors);
  tcase_add_test(tc, test_ledger_proofs_for_every_size_match_rfc_definitions);
  tcase_add_test(tc, test_ledger_hash_b64_is_canonical);
  tcase_add_test(tc, test_ledger_sshsig_matches_ssh_keygen_byte_for_byte);
  tcase_add_test(tc, test_ledger_key_generated_round_trips_through_openssh_format);
  tcase_add_test(tc, test_ledger_key_rejects_passphrase_rsa_and_damaged_keys);
  tcase_add_test(tc, test_ledger_trust_reads_pub_and_allowed_signers);
  tcase_add_test(tc, test_ledger_checkpoint_format_and_strict_parse);
  tcase_add_test(tc, test_ledger_record_canonical_bytes);
  tcase_add_test(tc, test_ledger_record_strings_round_trip_escapes_and_utf8);
  tcase_add_test(tc, test_ledger_record_parse_rejects_what_the_writer_never_writes);
  tcase_add_test(tc, test_ledger_record_format_refuses_reserved_keys_and_huge_records);
  tcase_add_test(tc, test_ledger_record_of_many_objects_round_trips);
  tcase_add_test(tc, test_ledger_create_writes_golden_files);
  tcase_add_test(tc, test_ledger_append_checks_before_writing);
  tcase_add_test(tc, test_ledger_second_writer_gets_busy_with_pid);
  tcase_add_test(tc, test_ledger_recovery_trims_torn_tail_beyond_signed_size);
  tcase_add_test(tc, test_ledger_recovery_installs_the_checkpoint_signed_before_the_record);
  tcase_add_test(tc, test_ledger_recovery_never_signs_a_record_nobody_signed);
  tcase_add_test(tc, test_ledger_recovery_finishes_or_drops_checkpoint_replacement);
  tcase_add_test(tc, test_ledger_recovery_refuses_unexplained_data_and_wrong_key);
  tcase_add_test(tc, test_ledger_missing_ledger_without_create_is_enoent);
  tcase_add_test(tc, test_ledger_tamper_flipped_byte_in_middle_record_names_it);
  tcase_add_test(tc, test_ledger_tamper_flipped_prev_root_names_its_record);
  tcase_add_test(tc, test_ledger_tamper_deleted_line_names_the_missing_record);
  tcase_add_test(tc, test_ledger_tamper_reordered_pair_names_the_first);
  tcase_add_test(tc, test_ledger_tamper_truncation_inside_signed_size_names_first_missing);
  tcase_add_test(tc, test_ledger_tamper_last_record_fails_the_root);
  tcase_add_test(tc, test_ledger_tamper_checkpoint_from_another_key);
  tcase_add_test(tc, test_ledger_verify_with_pubkey_and_since);
  tcase_add_test(tc, test_ledger_prove_inclusion_against_signed_root);
  tcase_add_test(tc, test_ledger_reader_gives_records_and_intent_commits);
  tcase_add_test(tc, test_ledger_key_rotation_is_signed_by_old_key);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return testutil_run(ledger_suite()); }
