/* Unit tests for daemon/ssh: public keys of every type, SSHSIG verification
 * (every key type, the reserved field, refused algorithms, FIDO flags),
 * allowed_signers, pattern lists, times, and revoked keys (KRLs and lists).
 * Vectors: tests/data/ssh/ (make-vectors.sh regenerates them with ssh-keygen
 * and checks the crafted ones against ssh-keygen -Y verify). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "base/base.h"
#include "ssh/ssh.h"
#include "testutil.h"

#define VEC TEST_DATA_DIR "/ssh/"

static char *vec(const char *rel) { return testutil_vector("ssh", rel); }

/* The key of a .pub vector. */
static struct ssh_key *pub_key(const char *name) {
  char *file = xasprintf("%s.pub", name);
  char *pub = vec(file);
  char *type = pub, *b64 = strchr(pub, ' ') + 1, *end = strchr(b64, ' ');
  struct ssh_key *k = NULL;
  struct err err = ERR_INIT;

  if (!end)
    end = strchr(b64, '\n');
  ck_assert_ok(ssh_key_from_text(type, (size_t)(b64 - 1 - type), b64, (size_t)(end - b64), &k,
                                 &err),
               &err);
  free(pub);
  free(file);
  return k;
}

/* Verify vector @sig_name over the message (or @msg) for @ns. */
static int verify(const char *sig_name, const char *msg, const char *ns,
                  struct ssh_sig_details *d, struct err *err) {
  char *file = xasprintf("%s.sig", sig_name);
  char *armored = vec(file), *message = vec("message");
  struct ssh_sig sig = {0};
  int r = ssh_sig_parse(armored, strlen(armored), &sig, err);

  if (r >= 0) {
    const char *m = msg ? msg : message;
    r = ssh_sig_verify(&sig, m, strlen(m), ns, d, err);
  }
  ssh_sig_dispose(&sig);
  free(armored);
  free(message);
  free(file);
  return r;
}

/* --- keys ------------------------------------------------------------------ */

START_TEST(test_ssh_key_every_type_fingerprints_like_ssh_keygen) {
  static const struct {
    const char *name, *display;
    enum ssh_key_type type;
    unsigned bits;
  } cases[] = {
      {"ed25519", "ED25519", SSH_KEY_ED25519, 256},
      {"rsa2048", "RSA", SSH_KEY_RSA, 2048},
      {"rsa1024", "RSA", SSH_KEY_RSA, 1024},
      {"ecdsa256", "ECDSA", SSH_KEY_ECDSA_P256, 256},
      {"ecdsa384", "ECDSA", SSH_KEY_ECDSA_P384, 384},
      {"ecdsa521", "ECDSA", SSH_KEY_ECDSA_P521, 521},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    struct ssh_key *k = pub_key(cases[i].name), *copy;
    char *file = xasprintf("%s.fingerprint", cases[i].name), *want = vec(file);
    char fp[SSH_FINGERPRINT_SIZE];

    *strchr(want, '\n') = '\0';
    ck_assert_int_eq(k->type, cases[i].type);
    ck_assert_uint_eq(k->bits, cases[i].bits);
    ck_assert_str_eq(ssh_key_type_display(k), cases[i].display);
    ck_assert_str_eq(ssh_key_fingerprint(k, fp), want);
    copy = ssh_key_dup(k);
    ck_assert(ssh_key_equal(k, copy));
    ck_assert_str_eq(ssh_key_fingerprint(copy, fp), want);
    ck_assert(ssh_key_unsupported(k) == NULL || cases[i].bits == 1024);
    ssh_key_free(copy);
    ssh_key_free(k);
    free(file);
    free(want);
  }
}
END_TEST

START_TEST(test_ssh_key_rsa_non_minimal_mpint_equals_canonical) {
  struct ssh_key *k = pub_key("rsa2048"), *padded = NULL;
  struct buf blob = BUF_INIT;
  struct err err = ERR_INIT;
  char a[SSH_FINGERPRINT_SIZE], b[SSH_FINGERPRINT_SIZE];
  uint8_t e_padded[8] = {0};

  /* e with extra leading zeros, as OpenSSH's bignum reader tolerates */
  memcpy(e_padded + sizeof(e_padded) - k->rsa_e_len, k->rsa_e, k->rsa_e_len);
  ssh_wire_put_cstr(&blob, "ssh-rsa");
  ssh_wire_put_string(&blob, e_padded, sizeof(e_padded));
  ssh_wire_put_u32(&blob, (uint32_t)k->rsa_n_len + 1);
  buf_putc(&blob, 0);
  buf_append(&blob, k->rsa_n, k->rsa_n_len);
  ck_assert_ok(ssh_key_from_blob(blob.data, blob.len, &padded, &err), &err);
  ck_assert(ssh_key_equal(k, padded));
  ck_assert_str_eq(ssh_key_fingerprint(k, a), ssh_key_fingerprint(padded, b));
  ssh_key_free(padded);
  buf_dispose(&blob);
  ssh_key_free(k);
}
END_TEST

START_TEST(test_ssh_key_rejects_malformed_blobs) {
  static const char *const cases[] = {
      "AAAAC3NzaC1lZDI1NTE5", /* ssh-ed25519 without the key */
      "AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7", /* RSA truncated */
      "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAzODQAAAAA", /* curve mismatch */
      "AAAAB3Nvb2JhcmZvbw==", /* unknown type */
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    uint8_t *blob;
    size_t len;
    struct ssh_key *k = NULL;
    struct err err = ERR_INIT;
    ck_assert_int_eq(ssh_b64_decode(cases[i], strlen(cases[i]), NULL, &blob, &len), 0);
    ck_assert_int_eq(ssh_key_from_blob(blob, len, &k, &err), -EBADMSG);
    ck_assert_ptr_null(k);
    free(blob);
  }
}
END_TEST

/* --- signatures ------------------------------------------------------------ */

START_TEST(test_ssh_sig_verifies_every_key_type) {
  static const char *const names[] = {"ed25519",  "rsa2048",  "rsa-sha256",       "ecdsa256",
                                      "ecdsa384", "ecdsa521", "sk-ed25519-up", "sk-ecdsa-up"};
  for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
    struct err err = ERR_INIT;
    struct ssh_sig_details d;
    ck_assert_ok(verify(names[i], NULL, "file", &d, &err), &err);
    ck_assert_int_eq(verify(names[i], "another message\n", "file", NULL, &err), -EBADMSG);
    ck_assert_msg(strstr(err.msg, "does not match"), "%s: %s", names[i], err.msg);
    err_clear(&err);
    ck_assert_int_eq(verify(names[i], NULL, "git", NULL, &err), -EKEYREJECTED);
    ck_assert_str_eq(err.msg, "signature was made for namespace \"file\", not \"git\"");
  }
}
END_TEST

START_TEST(test_ssh_sig_reserved_field_ignored_never_signed) {
  struct err err = ERR_INIT;

  /* OpenSSH: the blob's reserved field is not looked at ... */
  ck_assert_ok(verify("reserved-blob", NULL, "file", NULL, &err), &err);
  /* ... and the signed data always has an empty one */
  ck_assert_int_eq(verify("reserved-signed", NULL, "file", NULL, &err), -EBADMSG);
}
END_TEST

START_TEST(test_ssh_sig_refuses_sha1_and_small_rsa) {
  struct err err = ERR_INIT;

  ck_assert_int_eq(verify("rsa-sha1", NULL, "file", NULL, &err), -EPROTONOSUPPORT);
  ck_assert_msg(strstr(err.msg, "ssh-rsa (SHA-1) is refused"), "%s", err.msg);
  err_clear(&err);
  ck_assert_int_eq(verify("rsa1024", NULL, "file", NULL, &err), -EPROTONOSUPPORT);
  ck_assert_msg(strstr(err.msg, "under 2048 bits"), "%s", err.msg);
}
END_TEST

START_TEST(test_ssh_sig_fido_flags_and_counter) {
  static const struct {
    const char *name;
    uint8_t flags;
    uint32_t counter;
  } cases[] = {
      {"sk-ed25519-up", 0x01, 41},   {"sk-ed25519-none", 0x00, 42},
      {"sk-ed25519-upuv", 0x05, 43}, {"sk-ecdsa-up", 0x01, 41},
      {"sk-ecdsa-none", 0x00, 42},   {"sk-ecdsa-upuv", 0x05, 43},
  };
  struct ssh_signer plain = {0}, no_touch = {.no_touch_required = true},
                    verify_req = {.verify_required = true};
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    struct ssh_sig_details d = {0};
    struct err err = ERR_INIT;
    bool up = cases[i].flags & SSH_SK_USER_PRESENCE, uv = cases[i].flags & SSH_SK_USER_VERIFIED;
    ck_assert_ok(verify(cases[i].name, NULL, "file", &d, &err), &err);
    ck_assert(d.sk);
    ck_assert_uint_eq(d.sk_flags, cases[i].flags);
    ck_assert_uint_eq(d.sk_counter, cases[i].counter);
    ck_assert_int_eq(ssh_signer_accepts_flags(&plain, &d), up);
    ck_assert(ssh_signer_accepts_flags(&no_touch, &d));
    ck_assert_int_eq(ssh_signer_accepts_flags(&verify_req, &d), up && uv);
  }
}
END_TEST

START_TEST(test_ssh_sig_parse_like_sshsig_dearmor) {
  static const char *const cases[] = {
      "-----BEGIN SSH SIGNATURE-----\n????\n-----END SSH SIGNATURE-----\n",
      "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n",
      "-----BEGIN PGP SIGNATURE-----\n-----END SSH SIGNATURE-----\n",
      "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAg==\n-----END SSH SIGNATURE-----\n",
      "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQAAAP8=\n-----END SSH SIGNATURE-----\n",
      "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n",
  };
  static const char *const why[] = {"base64", "no '-----END", "does not start", "version 2",
                                    "truncated", "does not start with SSHSIG"};
  char *good = vec("ed25519.sig"), *trailing = xasprintf("%snot looked at\n", good);
  struct ssh_sig sig = {0};
  struct err err = ERR_INIT;

  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    err_clear(&err);
    ck_assert_int_eq(ssh_sig_parse(cases[i], strlen(cases[i]), &sig, &err), -EBADMSG);
    ck_assert_msg(strstr(err.msg, why[i]), "case %zu: '%s'", i, err.msg);
  }
  /* as sshsig_dearmor(): text after the footer is ignored */
  ck_assert_ok(ssh_sig_parse(trailing, strlen(trailing), &sig, &err), &err);
  ck_assert_str_eq(sig.hash_alg, "sha512");
  ck_assert_int_eq(sig.key->type, SSH_KEY_ED25519);
  ssh_sig_dispose(&sig);
  free(good);
  free(trailing);
}
END_TEST

START_TEST(test_ssh_sig_sign_ed25519_verifies_and_is_deterministic) {
  uint8_t pk[32], sk[64];
  struct buf a = BUF_INIT, b = BUF_INIT;
  struct ssh_sig sig = {0};
  struct err err = ERR_INIT;

  ck_assert_int_eq(sodium_init() >= 0, 1);
  crypto_sign_keypair(pk, sk);
  ssh_sig_sign_ed25519(sk, "egressd-test", "hello", 5, &a);
  ssh_sig_sign_ed25519(sk, "egressd-test", "hello", 5, &b);
  ck_assert_str_eq(buf_cstr(&a), buf_cstr(&b));
  ck_assert_ok(ssh_sig_parse(a.data, a.len, &sig, &err), &err);
  ck_assert_ok(ssh_sig_verify(&sig, "hello", 5, "egressd-test", NULL, &err), &err);
  ck_assert_int_eq(memcmp(sig.key->pk, pk, 32), 0);
  ssh_sig_dispose(&sig);
  sodium_memzero(sk, sizeof(sk));
  buf_dispose(&a);
  buf_dispose(&b);
}
END_TEST

/* --- allowed_signers --------------------------------------------------------- */

static char *line_for(const char *principals, const char *options, const char *key) {
  char *file = xasprintf("%s.pub", key), *pub = vec(file), *line;
  *strchr(pub, '\n') = '\0';
  line = xasprintf("%s%s%s %s\n", principals, *options ? " " : "", options, pub);
  free(pub);
  free(file);
  return line;
}

START_TEST(test_ssh_signers_parse_options_and_comments) {
  char *a = line_for("alice@example.com,bob@example.com",
                     "NAMESPACES=\"git,file\",valid-after=\"20250101\"", "ed25519");
  char *b = line_for("\"carol@example.com\"", "", "ecdsa384");
  char *c = line_for("dave@example.com", "verify-required,No-Touch-Required", "sk-ecdsa");
  char *text = xasprintf("# comment\n   \n%s\t%s%s", a, b, c);
  struct ssh_signers *s = NULL;
  struct err err = ERR_INIT;

  ck_assert_ok(ssh_signers_parse("allowed_signers", text, strlen(text), 0, &s, &err), &err);
  ck_assert_uint_eq(s->n, 3);
  ck_assert_str_eq(s->entries[0].principals, "alice@example.com,bob@example.com");
  ck_assert_str_eq(s->entries[0].namespaces, "git,file");
  ck_assert(s->entries[0].has_valid_after && !s->entries[0].has_valid_before);
  ck_assert_uint_eq(s->entries[0].line, 3);
  ck_assert_str_eq(s->entries[1].principals, "carol@example.com");
  ck_assert_int_eq(s->entries[1].key->type, SSH_KEY_ECDSA_P384);
  ck_assert(s->entries[2].verify_required && s->entries[2].no_touch_required);
  ck_assert_int_eq(s->entries[2].key->type, SSH_KEY_SK_ECDSA_P256);
  ssh_signers_free(s);
  free(a);
  free(b);
  free(c);
  free(text);
}
END_TEST

START_TEST(test_ssh_signers_errors_name_file_line_col) {
  static const struct {
    const char *options, *want;
  } cases[] = {
      {"cert-authority", "allowed_signers:2:7: cert-authority is not supported"},
      {"namespaces=git", "allowed_signers:2:18: option value must be in double quotes"},
      {"valid-before=\"2026\"", "allowed_signers:2:20: invalid time '2026'"},
      {"valid-after=\"20260230Z\"", "invalid time '20260230Z'"},
      {"verify-required", "allowed_signers:2:7: verify-required is for FIDO keys"},
      {"no-touch-required", "allowed_signers:2:7: no-touch-required is for FIDO keys"},
      {"touch-required", "allowed_signers:2:7: unknown option 'touch-required'"},
      {"namespaces=\"git", "allowed_signers:2:7: unterminated quote"},
      {"valid-after=\"20260101Z\",valid-before=\"20250101Z\"", "not after valid-after"},
      {"namespaces=\"a\",namespaces=\"b\"", "namespaces given twice"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    char *line = line_for("a@x", cases[i].options, "ed25519");
    char *text = xasprintf("# first line\n  %s", line);
    struct ssh_signers *s = NULL;
    struct err err = ERR_INIT;
    char msg[1024];

    ck_assert_int_eq(ssh_signers_parse("allowed_signers", text, strlen(text), 0, &s, &err),
                     -EINVAL);
    ck_assert_ptr_null(s);
    err_format(&err, msg, sizeof(msg));
    ck_assert_msg(strstr(msg, cases[i].want), "case %zu: '%s' lacks '%s'", i, msg,
                  cases[i].want);
    free(line);
    free(text);
  }
}
END_TEST

START_TEST(test_ssh_signers_rejects_bad_keys) {
  char *pub = vec("ed25519.pub");
  char *mislabelled = xasprintf("a@x ssh-rsa %s", strchr(pub, ' ') + 1);
  const char *cases[] = {"a@x ssh-ed25519 not*base64\n", "a@x ssh-ed2551 AAAA\n", "a@x\n",
                         mislabelled, "a@x ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7 short\n"};
  const char *want[] = {"1:17: the key is not valid base64", "unknown key type 'ssh-ed2551'",
                        "missing key", "not 'ssh-rsa' as written before it",
                        "malformed ssh-rsa public key"};

  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    struct ssh_signers *s = NULL;
    struct err err = ERR_INIT;
    char msg[1024];
    ck_assert_int_eq(ssh_signers_parse("f", cases[i], strlen(cases[i]), 0, &s, &err), -EINVAL);
    err_format(&err, msg, sizeof(msg));
    ck_assert_msg(strstr(msg, want[i]), "case %zu: '%s'", i, msg);
  }
  free(pub);
  free(mislabelled);
}
END_TEST

START_TEST(test_ssh_signers_bare_keys_only_when_asked) {
  char *pub = vec("rsa2048.pub");
  struct ssh_signers *s = NULL;
  struct err err = ERR_INIT;

  ck_assert_ok(ssh_signers_parse("id.pub", pub, strlen(pub), SSH_SIGNERS_BARE_KEYS, &s, &err),
               &err);
  ck_assert_uint_eq(s->n, 1);
  ck_assert_ptr_null(s->entries[0].principals);
  ck_assert_int_eq(s->entries[0].key->type, SSH_KEY_RSA);
  ssh_signers_free(s);
  s = NULL;
  /* in an allowed_signers file the key type is a principal, then "AAAA..." no type */
  ck_assert_int_eq(ssh_signers_parse("as", pub, strlen(pub), 0, &s, &err), -EINVAL);
  free(pub);
}
END_TEST

START_TEST(test_ssh_time_formats) {
  int64_t t = 0;

  ck_assert_int_eq(ssh_time_parse("20200101Z", &t), 0);
  ck_assert(t == 1577836800);
  ck_assert_int_eq(ssh_time_parse("202001011230Z", &t), 0);
  ck_assert(t == 1577836800 + 12 * 3600 + 30 * 60);
  ck_assert_int_eq(ssh_time_parse("20200101123059Z", &t), 0);
  ck_assert(t == 1577836800 + 12 * 3600 + 30 * 60 + 59);
  setenv("TZ", "UTC+2", 1); /* POSIX: two hours west of UTC */
  tzset();
  ck_assert_int_eq(ssh_time_parse("20200101", &t), 0);
  ck_assert(t == 1577836800 + 2 * 3600);
  ck_assert_int_eq(ssh_time_parse("2020010", &t), -EINVAL);
  ck_assert_int_eq(ssh_time_parse("2020010112", &t), -EINVAL);
  ck_assert_int_eq(ssh_time_parse("20201301Z", &t), -EINVAL);
  ck_assert_int_eq(ssh_time_parse("2020-1-01", &t), -EINVAL);
  ck_assert_int_eq(ssh_time_parse("20210229Z", &t), -EINVAL);
}
END_TEST

START_TEST(test_ssh_pattern_list_matches_like_ssh) {
  ck_assert_int_eq(ssh_pattern_list_match("alice@example.com", "*@example.com"), 1);
  ck_assert_int_eq(ssh_pattern_list_match("alice@example.com", "bob@x,alice@*"), 1);
  ck_assert_int_eq(ssh_pattern_list_match("evil@example.com", "*@example.com,!evil@*"), -1);
  ck_assert_int_eq(ssh_pattern_list_match("alice@example.org", "*@example.com"), 0);
  ck_assert_int_eq(ssh_pattern_list_match("git", "g?t"), 1);
  ck_assert_int_eq(ssh_pattern_list_match("git", "gi"), 0);
  ck_assert_int_eq(ssh_pattern_list_match("Git", "git"), 0);
  ck_assert_int_eq(ssh_pattern_list_match("", "*"), 1);
  ck_assert_int_eq(ssh_pattern_list_match("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
                                          "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*c"),
                   0);
}
END_TEST

/* --- revoked keys ------------------------------------------------------------ */

static struct ssh_revoked *revoked_from(const char *file) {
  char *path = xasprintf(VEC "%s", file);
  struct ssh_revoked *rv = NULL;
  struct err err = ERR_INIT;
  ck_assert_ok(ssh_revoked_load(path, &rv, &err), &err);
  free(path);
  return rv;
}

START_TEST(test_ssh_revoked_krl_and_list_as_ssh_keygen) {
  static const struct {
    const char *file;
    const char *revoked[3], *not_revoked[3];
  } cases[] = {
      /* ssh-keygen -k rsa2048.pub ecdsa256.pub */
      {"explicit.krl", {"rsa2048", "ecdsa256"}, {"ed25519", "ecdsa384", "sk-ed25519"}},
      /* ssh-keygen -k with "hash: SHA256:..." of ed25519 */
      {"sha256.krl", {"ed25519"}, {"rsa2048", "ecdsa256", "sk-ecdsa"}},
      /* a list of keys: ecdsa384.pub */
      {"revoked.list", {"ecdsa384"}, {"ed25519", "rsa2048", "ecdsa521"}},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    struct ssh_revoked *rv = revoked_from(cases[i].file);
    for (size_t j = 0; j < 3 && cases[i].revoked[j]; j++) {
      struct ssh_key *k = pub_key(cases[i].revoked[j]);
      ck_assert_msg(ssh_revoked_contains(rv, k), "%s: %s", cases[i].file, cases[i].revoked[j]);
      ssh_key_free(k);
    }
    for (size_t j = 0; j < 3 && cases[i].not_revoked[j]; j++) {
      struct ssh_key *k = pub_key(cases[i].not_revoked[j]);
      ck_assert_msg(!ssh_revoked_contains(rv, k), "%s: %s", cases[i].file,
                    cases[i].not_revoked[j]);
      ssh_key_free(k);
    }
    ssh_revoked_free(rv);
  }
}
END_TEST

START_TEST(test_ssh_revoked_refuses_what_ssh_keygen_refuses) {
  char *path = xasprintf(VEC "explicit.krl");
  char *krl = testutil_read(path); /* binary, but NUL-terminated after its end */
  size_t len = 0;
  struct ssh_revoked *rv = NULL;
  struct err err = ERR_INIT;
  char *copy;
  FILE *f = fopen(path, "rb");

  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  len = (size_t)ftell(f);
  fclose(f);
  copy = xmalloc(len + 5);
  memcpy(copy, krl, len);
  /* a section type ssh-keygen does not know (9, empty) */
  memcpy(copy + len, "\x09\x00\x00\x00\x00", 5);
  ck_assert_int_eq(ssh_revoked_parse("k", copy, len + 5, &rv, &err), -EBADMSG);
  ck_assert_msg(strstr(err.msg, "unsupported KRL section type 9"), "%s", err.msg);
  /* cut short */
  err_clear(&err);
  ck_assert_int_eq(ssh_revoked_parse("k", copy, len - 3, &rv, &err), -EBADMSG);
  ck_assert_msg(strstr(err.msg, "malformed KRL"), "%s", err.msg);
  /* format version 2 */
  memcpy(copy, krl, len);
  copy[11] = 2;
  err_clear(&err);
  ck_assert_int_eq(ssh_revoked_parse("k", copy, len, &rv, &err), -EBADMSG);
  ck_assert_msg(strstr(err.msg, "format version 2"), "%s", err.msg);
  /* a list with a line that is not a key */
  err_clear(&err);
  ck_assert_int_eq(ssh_revoked_parse("list", "# ok\nfrom=\"x\" ssh-ed25519 AAAA\n", 31, &rv, &err),
                   -EBADMSG);
  ck_assert_uint_eq(err.line, 2);
  /* an empty file revokes nothing */
  ck_assert_ok(ssh_revoked_parse("empty", "", 0, &rv, &err), &err);
  ck_assert_uint_eq(ssh_revoked_count(rv), 0);
  ssh_revoked_free(rv);
  free(copy);
  free(krl);
  free(path);
}
END_TEST

static Suite *ssh_suite(void) {
  Suite *s = suite_create("ssh");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_ssh_key_every_type_fingerprints_like_ssh_keygen);
  tcase_add_test(tc, test_ssh_key_rsa_non_minimal_mpint_equals_canonical);
  tcase_add_test(tc, test_ssh_key_rejects_malformed_blobs);
  tcase_add_test(tc, test_ssh_sig_verifies_every_key_type);
  tcase_add_test(tc, test_ssh_sig_reserved_field_ignored_never_signed);
  tcase_add_test(tc, test_ssh_sig_refuses_sha1_and_small_rsa);
  tcase_add_test(tc, test_ssh_sig_fido_flags_and_counter);
  tcase_add_test(tc, test_ssh_sig_parse_like_sshsig_dearmor);
  tcase_add_test(tc, test_ssh_sig_sign_ed25519_verifies_and_is_deterministic);
  tcase_add_test(tc, test_ssh_signers_parse_options_and_comments);
  tcase_add_test(tc, test_ssh_signers_errors_name_file_line_col);
  tcase_add_test(tc, test_ssh_signers_rejects_bad_keys);
  tcase_add_test(tc, test_ssh_signers_bare_keys_only_when_asked);
  tcase_add_test(tc, test_ssh_time_formats);
  tcase_add_test(tc, test_ssh_pattern_list_matches_like_ssh);
  tcase_add_test(tc, test_ssh_revoked_krl_and_list_as_ssh_keygen);
  tcase_add_test(tc, test_ssh_revoked_refuses_what_ssh_keygen_refuses);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return testutil_run(ssh_suite()); }
