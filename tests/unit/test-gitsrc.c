/* Unit tests for daemon/gitsrc: the commit splitter and parser, commit
 * signature verdicts (git's rules, revoked keys; the SSH formats themselves
 * are tested once, in test-ssh.c), known_hosts, and the repository functions on real
 * repositories made by git (fetch over file://, trees, history, policies).
 * Signature vectors: tests/data/gitsrc/ (make-vectors.sh regenerates them). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "gitsrc/gitsrc-int.h"
#include "gitsrc/gitsrc.h"
#include "testutil.h"

static char *vec(const char *rel) { return testutil_vector("gitsrc", rel); }

static struct gitsrc_signers *signers_from(const char *text) {
  struct gitsrc_signers *s = NULL;
  struct err err = ERR_INIT;
  ck_assert_ok(gitsrc_signers_parse("allowed_signers", text, strlen(text), &s, &err), &err);
  return s;
}

/* "<principals> <options> <key of file>" */
static char *signers_line(const char *principals, const char *options, const char *pubfile) {
  char *pub = vec(pubfile);
  char *nl = strchr(pub, '\n');
  char *line;
  if (nl)
    *nl = '\0';
  line = xasprintf("%s%s%s %s\n", principals, *options ? " " : "", options, pub);
  free(pub);
  return line;
}

static enum gitsrc_verdict verify_text(const char *commit, const char *signers_text,
                                       struct gitsrc_signer *signer, struct err *err) {
  struct gitsrc_signers *s = signers_from(signers_text);
  enum gitsrc_verdict v = GITSRC_VERDICT_GOOD;
  int r = gitsrc_verify_commit_buffer(commit, strlen(commit), s, signer, &v, err);
  gitsrc_signers_free(s);
  ck_assert_int_eq(r == 0, v == GITSRC_VERDICT_GOOD);
  if (r < 0)
    ck_assert_int_eq(r, -EBADMSG);
  return v;
}

static char *replace(const char *s, const char *from, const char *to) {
  const char *at = strstr(s, from);
  ck_assert_msg(at, "'%s' not in the text", from);
  return xasprintf("%.*s%s%s", (int)(at - s), s, to, at + strlen(from));
}

/* --- splitter ------------------------------------------------------------- */

START_TEST(test_gitsrc_split_drops_all_gpgsig_headers_like_git) {
  const char *raw = "tree 1111111111111111111111111111111111111111\n"
                    "author A <a@x> 1 +0000\n"
                    "committer A <a@x> 1 +0000\n"
                    "gpgsig-sha256 other\n"
                    " other-continued\n"
                    "gpgsig first\n"
                    " second\n"
                    "mergetag object 1\n"
                    " type commit\n"
                    "\n"
                    "message\n"
                    "gpgsig in-body\n"
                    " in-body-continued\n";
  struct buf payload = BUF_INIT, sig = BUF_INIT;
  unsigned headers = 0;
  struct err err = ERR_INIT;

  ck_assert_int_eq(gitsrc_commit_split(raw, strlen(raw), &payload, &sig, &headers, &err), 1);
  ck_assert_uint_eq(headers, 1);
  ck_assert_str_eq(buf_cstr(&sig), "first\nsecond\n");
  ck_assert_str_eq(buf_cstr(&payload), "tree 1111111111111111111111111111111111111111\n"
                                       "author A <a@x> 1 +0000\n"
                                       "committer A <a@x> 1 +0000\n"
                                       "mergetag object 1\n"
                                       " type commit\n"
                                       "\n"
                                       "message\n"
                                       "gpgsig in-body\n"
                                       " in-body-continued\n");
  buf_dispose(&payload);
  buf_dispose(&sig);
}
END_TEST

START_TEST(test_gitsrc_split_ignores_signature_in_message_body) {
  const char *raw = "tree 1111111111111111111111111111111111111111\n\n"
                    "gpgsig -----BEGIN SSH SIGNATURE-----\n -----END SSH SIGNATURE-----\n";
  struct buf payload = BUF_INIT, sig = BUF_INIT;
  unsigned headers = 7;

  ck_assert_int_eq(gitsrc_commit_split(raw, strlen(raw), &payload, &sig, &headers, NULL), 0);
  ck_assert_uint_eq(headers, 0);
  ck_assert_uint_eq(sig.len, 0);
  ck_assert_str_eq(buf_cstr(&payload), raw);
  buf_dispose(&payload);
  buf_dispose(&sig);
}
END_TEST

START_TEST(test_gitsrc_split_refuses_oversized_commit) {
  size_t n = GITSRC_COMMIT_MAX_BYTES + 1;
  char *big = xmalloc(n);
  struct buf payload = BUF_INIT, sig = BUF_INIT;
  struct err err = ERR_INIT;

  memset(big, 'a', n);
  ck_assert_int_eq(gitsrc_commit_split(big, n, &payload, &sig, NULL, &err), -E2BIG);
  ck_assert(strstr(err.msg, "larger than the limit"));
  free(big);
}
END_TEST

/* --- commit parser -------------------------------------------------------- */

START_TEST(test_gitsrc_commit_parse_fields_and_trailers) {
  const char *raw = "tree 2222222222222222222222222222222222222222\n"
                    "parent 3333333333333333333333333333333333333333\n"
                    "parent 4444444444444444444444444444444444444444\n"
                    "author Bob B <bob@x> 1700000000 -0130\n"
                    "committer Carol C <carol@x> 1700000123 +0200\n"
                    "encoding UTF-8\n"
                    "\n"
                    "prod: widen\tegress\n"
                    "\n"
                    "Body text: not a trailer block.\n"
                    "\n"
                    "Egressd-Allow-Prune: 3\n"
                    "Reviewed-by: Dan\n"
                    "  <dan@x>\n"
                    "egressd-allow-prune:   5  \n";
  struct gitsrc_commit_info ci;
  struct err err = ERR_INIT;

  ck_assert_ok(gitsrc_commit_parse(raw, strlen(raw), &ci, &err), &err);
  ck_assert_str_eq(ci.tree.hex, "2222222222222222222222222222222222222222");
  ck_assert_uint_eq(ci.n_parents, 2);
  ck_assert_str_eq(ci.parents[1].hex, "4444444444444444444444444444444444444444");
  ck_assert_str_eq(ci.author, "Bob B <bob@x>");
  ck_assert_str_eq(ci.committer, "Carol C <carol@x>");
  ck_assert(ci.commit_time == 1700000123);
  ck_assert_int_eq(ci.commit_tz_minutes, 120);
  ck_assert(ci.author_time == 1700000000);
  ck_assert_str_eq(ci.summary, "prod: widen?egress");
  ck_assert(!ci.signed_ssh);
  ck_assert_uint_eq(ci.n_trailers, 3);
  ck_assert_str_eq(ci.trailers[1].value, "Dan <dan@x>");
  /* the last one wins, key case-insensitive */
  ck_assert_str_eq(gitsrc_commit_trailer(&ci, "Egressd-Allow-Prune"), "5");
  ck_assert_ptr_null(gitsrc_commit_trailer(&ci, "Body text"));
  gitsrc_commit_info_dispose(&ci);
}
END_TEST

START_TEST(test_gitsrc_commit_parse_no_trailers_in_subject_or_prose) {
  const char *subject_only = "tree 2222222222222222222222222222222222222222\n"
                             "author A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\n"
                             "Fixes: not a trailer, it is the subject\n";
  const char *prose = "tree 2222222222222222222222222222222222222222\n"
                      "author A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\n"
                      "subject\n\nKey: value\nthis line is prose\n";
  struct gitsrc_commit_info ci;
  struct err err = ERR_INIT;

  ck_assert_ok(gitsrc_commit_parse(subject_only, strlen(subject_only), &ci, &err), &err);
  ck_assert_uint_eq(ci.n_trailers, 0);
  gitsrc_commit_info_dispose(&ci);
  ck_assert_ok(gitsrc_commit_parse(prose, strlen(prose), &ci, &err), &err);
  ck_assert_uint_eq(ci.n_trailers, 0);
  gitsrc_commit_info_dispose(&ci);
}
END_TEST

START_TEST(test_gitsrc_commit_parse_rejects_malformed_with_line) {
  static const struct {
    const char *raw, *msg;
  } cases[] = {
      {"parent 3333333333333333333333333333333333333333\n\n", "header line 1"},
      {"tree 12\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\n", "bad tree id"},
      {"tree 2222222222222222222222222222222222222222\nauthor A a@x 1 +0000\n\n",
       "header line 2): bad author line"},
      {"tree 2222222222222222222222222222222222222222\nauthor A <a@x> 1 +0000\n\n",
       "missing 'committer'"},
      {"tree 2222222222222222222222222222222222222222\nauthor A <a@x> 1 +0000\n"
       "committer A <a@x> 1 +000\n\n",
       "bad committer line"},
      {"tree 2222222222222222222222222222222222222222", "not terminated"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    struct gitsrc_commit_info ci;
    struct err err = ERR_INIT;
    ck_assert_int_eq(gitsrc_commit_parse(cases[i].raw, strlen(cases[i].raw), &ci, &err),
                     -EBADMSG);
    ck_assert_msg(strstr(err.msg, cases[i].msg), "case %zu: '%s' lacks '%s'", i, err.msg,
                  cases[i].msg);
  }
}
END_TEST

/* --- SSHSIG + verification verdicts --------------------------------------- */

START_TEST(test_gitsrc_verify_good_signature_reports_principal_and_fingerprint) {
  char *commit = vec("0001-signed-ed25519/commit");
  char *signers = vec("0001-signed-ed25519/allowed_signers");
  char *fp = vec("0001-signed-ed25519/fingerprint");
  struct gitsrc_signer signer;
  struct err err = ERR_INIT;

  *strchr(fp, '\n') = '\0';
  ck_assert_int_eq(verify_text(commit, signers, &signer, &err), GITSRC_VERDICT_GOOD);
  ck_assert_str_eq(signer.principal, "alice@example.com");
  ck_assert_str_eq(signer.key_type, "ED25519");
  ck_assert_str_eq(signer.fingerprint, fp);
  free(commit);
  free(signers);
  free(fp);
}
END_TEST

START_TEST(test_gitsrc_verify_tampered_commit_is_bad_signature) {
  char *commit = vec("0001-signed-ed25519/commit");
  char *signers = vec("0001-signed-ed25519/allowed_signers");
  char *tampered = replace(commit, "scale app to 3", "scale app to 4");
  char *tampered_header = replace(commit, "1767323045 +0100\ngpgsig", "1767323046 +0100\ngpgsig");
  struct err err = ERR_INIT;

  ck_assert_int_eq(verify_text(tampered, signers, NULL, &err), GITSRC_VERDICT_BAD_SIGNATURE);
  ck_assert_str_eq(err.reason, "bad-signature");
  ck_assert_msg(strstr(err.msg, "bad signature: the signature does not match the signed data (key SHA256:"), "%s", err.msg);
  err_clear(&err);
  ck_assert_int_eq(verify_text(tampered_header, signers, NULL, &err),
                   GITSRC_VERDICT_BAD_SIGNATURE);
  free(commit);
  free(signers);
  free(tampered);
  free(tampered_header);
}
END_TEST

START_TEST(test_gitsrc_verify_unsigned_and_hidden_signature_are_unsigned) {
  char *commit = vec("0001-signed-ed25519/commit");
  char *signers = vec("0001-signed-ed25519/allowed_signers");
  const char *start = strstr(commit, "gpgsig ");
  const char *end = strstr(commit, "-----END SSH SIGNATURE-----\n") + 28;
  /* move the whole signature header into the message body */
  char *hidden = xasprintf("%.*s\n%.*s%s", (int)(start - commit), commit, (int)(end - start),
                           start, end + 1);
  char *unsigned_ = xasprintf("%.*s%s", (int)(start - commit), commit, end);
  struct err err = ERR_INIT;

  ck_assert(strstr(hidden, "\n\ngpgsig -----BEGIN"));
  ck_assert_int_eq(verify_text(hidden, signers, NULL, &err), GITSRC_VERDICT_UNSIGNED);
  ck_assert_str_eq(err.msg, "unsigned: the commit has no gpgsig header");
  err_clear(&err);
  ck_assert_int_eq(verify_text(unsigned_, signers, NULL, &err), GITSRC_VERDICT_UNSIGNED);
  free(commit);
  free(signers);
  free(hidden);
  free(unsigned_);
}
END_TEST

START_TEST(test_gitsrc_verify_extra_gpgsig_sha256_header_is_ignored_like_git) {
  char *commit = vec("0001-signed-ed25519/commit");
  char *signers = vec("0001-signed-ed25519/allowed_signers");
  char *extra = replace(commit, "gpgsig -----BEGIN",
                        "gpgsig-sha256 junk\n continued junk\ngpgsig -----BEGIN");
  const char *start = strstr(commit, "gpgsig ");
  const char *end = strstr(commit, "-----END SSH SIGNATURE-----\n") + 28;
  char *twice = xasprintf("%.*s%.*s%s", (int)(end - commit), commit, (int)(end - start), start,
                          end);
  struct gitsrc_signer signer;
  struct err err = ERR_INIT;

  ck_assert_int_eq(verify_text(extra, signers, &signer, &err), GITSRC_VERDICT_GOOD);
  ck_assert_str_eq(signer.principal, "alice@example.com");
  /* two gpgsig headers: refused (strict; git would concatenate them) */
  ck_assert_int_eq(verify_text(twice, signers, NULL, &err), GITSRC_VERDICT_BAD_SIGNATURE);
  ck_assert(strstr(err.msg, "2 gpgsig headers"));
  free(commit);
  free(signers);
  free(extra);
  free(twice);
}
END_TEST

START_TEST(test_gitsrc_verify_key_not_allowed) {
  char *commit = vec("0001-signed-ed25519/commit");
  char *bob = signers_line("alice@example.com", "", "0001-signed-ed25519/bob.pub");
  struct err err = ERR_INIT;

  ck_assert_int_eq(verify_text(commit, bob, NULL, &err), GITSRC_VERDICT_KEY_NOT_ALLOWED);
  ck_assert(strstr(err.msg, "key not allowed: ED25519 key SHA256:"));
  ck_assert(strstr(err.msg, "is not in allowed_signers"));
  err_clear(&err);
  ck_assert_int_eq(verify_text(commit, "# nobody\n", NULL, &err), GITSRC_VERDICT_KEY_NOT_ALLOWED);
  free(commit);
  free(bob);
}
END_TEST

START_TEST(test_gitsrc_verify_validity_window_uses_commit_time) {
  /* the vector's committer time is 1767323045 = 2026-01-02T03:04:05Z */
  char *commit = vec("0001-signed-ed25519/commit");
  char *expired = signers_line("alice@example.com", "valid-before=\"20260102030404Z\"",
                               "0001-signed-ed25519/alice.pub");
  char *edge = signers_line("alice@example.com", "valid-before=\"20260102030405Z\"",
                            "0001-signed-ed25519/alice.pub");
  char *future = signers_line("alice@example.com", "Valid-After=\"20260103\"",
                              "0001-signed-ed25519/alice.pub");
  char *window = signers_line("alice@example.com",
                              "valid-after=\"202601010000Z\",valid-before=\"20260201Z\"",
                              "0001-signed-ed25519/alice.pub");
  struct err err = ERR_INIT;

  ck_assert_int_eq(verify_text(commit, expired, NULL, &err), GITSRC_VERDICT_OUTSIDE_VALIDITY);
  ck_assert(strstr(err.msg, "allowed_signers:1: the key expired at 2026-01-02T03:04:04Z"));
  ck_assert(strstr(err.msg, "the commit time is 2026-01-02T03:04:05Z"));
  err_clear(&err);
  ck_assert_int_eq(verify_text(commit, edge, NULL, &err), GITSRC_VERDICT_GOOD);
  ck_assert_int_eq(verify_text(commit, window, NULL, &err), GITSRC_VERDICT_GOOD);
  setenv("TZ", "UTC", 1);
  tzset();
  ck_assert_int_eq(verify_text(commit, future, NULL, &err), GITSRC_VERDICT_OUTSIDE_VALIDITY);
  ck_assert_str_eq(err.reason, "outside-validity");
  free(commit);
  free(expired);
  free(edge);
  free(future);
  free(window);
}
END_TEST

START_TEST(test_gitsrc_verify_namespace_rules) {
  char *commit = vec("0001-signed-ed25519/commit");
  char *file_ns = vec("0003-namespace-file/commit");
  char *signers = vec("0001-signed-ed25519/allowed_signers");
  char *only_file = signers_line("alice@example.com", "namespaces=\"file,ssh*\"",
                                 "0001-signed-ed25519/alice.pub");
  char *glob = signers_line("alice@example.com", "namespaces=\"g?t,file\"",
                            "0001-signed-ed25519/alice.pub");
  struct err err = ERR_INIT;

  ck_assert_int_eq(verify_text(file_ns, signers, NULL, &err), GITSRC_VERDICT_WRONG_NAMESPACE);
  ck_assert(strstr(err.msg, "namespace \"file\", not \"git\""));
  err_clear(&err);
  ck_assert_int_eq(verify_text(commit, only_file, NULL, &err), GITSRC_VERDICT_WRONG_NAMESPACE);
  ck_assert(strstr(err.msg, "not allowed to sign namespace \"git\""));
  ck_assert_int_eq(verify_text(commit, glob, NULL, NULL), GITSRC_VERDICT_GOOD);
  free(commit);
  free(file_ns);
  free(signers);
  free(only_file);
  free(glob);
}
END_TEST

START_TEST(test_gitsrc_verify_rsa_is_good_and_openpgp_unsupported) {
  char *commit = vec("0002-signed-rsa/commit");
  char *signers = vec("0002-signed-rsa/allowed_signers");
  char *pgp = xstrdup("tree 2222222222222222222222222222222222222222\n"
                      "author A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n"
                      "gpgsig -----BEGIN PGP SIGNATURE-----\n \n -----END PGP SIGNATURE-----\n\nm\n");
  struct gitsrc_signer signer;
  struct err err = ERR_INIT;

  ck_assert_int_eq(verify_text(commit, signers, &signer, &err), GITSRC_VERDICT_GOOD);
  ck_assert_str_eq(signer.principal, "carol@example.com");
  ck_assert_str_eq(signer.key_type, "RSA");
  ck_assert_int_eq(verify_text(pgp, signers, NULL, &err), GITSRC_VERDICT_UNSUPPORTED);
  ck_assert(strstr(err.msg, "OpenPGP"));
  free(commit);
  free(signers);
  free(pgp);
}
END_TEST

START_TEST(test_gitsrc_verify_principal_choice_matches_git) {
  char *commit = vec("0001-signed-ed25519/commit");
  char *l1 = signers_line("old@example.com", "valid-before=\"20200101Z\"",
                          "0001-signed-ed25519/alice.pub");
  char *l2 = signers_line("*@example.com,!mallory@example.com", "",
                          "0001-signed-ed25519/alice.pub");
  char *l3 = signers_line("alice@example.com", "", "0001-signed-ed25519/alice.pub");
  char *text = xasprintf("# expired line first, then a pattern line\n\n%s%s%s", l1, l2, l3);
  struct gitsrc_signer signer;
  struct err err = ERR_INIT;

  /* git: find-principals -> first line with the key valid at the commit time
   * (line 2), its first principal "*@example.com" verifies */
  ck_assert_int_eq(verify_text(commit, text, &signer, &err), GITSRC_VERDICT_GOOD);
  ck_assert_str_eq(signer.principal, "*@example.com");
  free(commit);
  free(l1);
  free(l2);
  free(l3);
  free(text);
}
END_TEST

/* --- allowed_signers and revoked keys (parsers: tests/unit/test-ssh.c) ----- */

START_TEST(test_gitsrc_signers_file_is_refused_as_a_whole_on_a_bad_line) {
  char *good = signers_line("alice@example.com", "", "0001-signed-ed25519/alice.pub");
  char *text = xasprintf("%sbob@example.com bogus-option %s", good, good);
  struct gitsrc_signers *s = NULL;
  struct err err = ERR_INIT;

  ck_assert_int_eq(gitsrc_signers_parse("allowed_signers", text, strlen(text), &s, &err),
                   -EINVAL);
  ck_assert_ptr_null(s);
  ck_assert_uint_eq(err.line, 2);
  free(good);
  free(text);
}
END_TEST

START_TEST(test_gitsrc_verify_revoked_key_by_list_and_krl) {
  char *commit = vec("0001-signed-ed25519/commit");
  char *signers = vec("0001-signed-ed25519/allowed_signers");
  char *alice = vec("0001-signed-ed25519/alice.pub"), *bob = vec("0001-signed-ed25519/bob.pub");
  struct gitsrc_signers *s = signers_from(signers);
  struct gitsrc_signer signer;
  enum gitsrc_verdict v = GITSRC_VERDICT_GOOD;
  struct err err = ERR_INIT;

  /* another key revoked: still good */
  ck_assert_ok(gitsrc_signers_set_revoked(s, "revoked", bob, strlen(bob), &err), &err);
  ck_assert_ok(gitsrc_verify_commit_buffer(commit, strlen(commit), s, &signer, &v, &err), &err);
  /* the signer's key revoked */
  ck_assert_ok(gitsrc_signers_set_revoked(s, "revoked", alice, strlen(alice), &err), &err);
  ck_assert_int_eq(gitsrc_verify_commit_buffer(commit, strlen(commit), s, &signer, &v, &err),
                   -EBADMSG);
  ck_assert_int_eq(v, GITSRC_VERDICT_REVOKED);
  ck_assert_str_eq(err.reason, "revoked");
  ck_assert_msg(strstr(err.msg, "key revoked: ED25519 key SHA256:"), "%s", err.msg);
  /* a revocation file that does not parse is an error, not "nothing revoked" */
  err_clear(&err);
  ck_assert_int_eq(gitsrc_signers_set_revoked(s, "revoked", "nonsense\n", 9, &err), -EBADMSG);
  gitsrc_signers_free(s);
  free(commit);
  free(signers);
  free(alice);
  free(bob);
}
END_TEST

/* --- known_hosts ---------------------------------------------------------- */

static unsigned char *pub_blob(const char *file, size_t *len) {
  char *pub = vec(file);
  char *b64 = strchr(pub, ' ') + 1;
  unsigned char *blob;
  *strchr(b64, ' ') = '\0';
  ck_assert_int_eq(ssh_b64_decode(b64, strlen(b64), NULL, &blob, len), 0);
  free(pub);
  return blob;
}

START_TEST(test_gitsrc_known_hosts_plain_hashed_mismatch_missing) {
  char *plain = vec("0004-known-hosts/known_hosts_plain");
  char *hashed = vec("0004-known-hosts/known_hosts_hashed");
  size_t hn, on;
  unsigned char *host = pub_blob("0004-known-hosts/host.pub", &hn);
  unsigned char *other = pub_blob("0004-known-hosts/other.pub", &on);
  char *revoked = xasprintf("@revoked %s", plain);
  char *both = xasprintf("%s%s", plain, revoked);
  struct err err = ERR_INIT;

  ck_assert_int_eq(gitsrc_known_hosts_check("kh", plain, strlen(plain), "127.0.0.1", 2222, host,
                                            hn, NULL, &err), 0);
  ck_assert_int_eq(gitsrc_known_hosts_check("kh", hashed, strlen(hashed), "127.0.0.1", 2222,
                                            host, hn, NULL, &err), 0);
  ck_assert_int_eq(gitsrc_known_hosts_check("kh", hashed, strlen(hashed), "127.0.0.1", 2222,
                                            other, on, NULL, &err), -EKEYREJECTED);
  ck_assert(strstr(err.msg, "the host key of [127.0.0.1]:2222 does not match kh:1"));
  err_clear(&err);
  ck_assert_int_eq(gitsrc_known_hosts_check("kh", plain, strlen(plain), "127.0.0.1", 22, host,
                                            hn, NULL, &err), -ENOKEY);
  ck_assert_str_eq(err.msg, "no host key for 127.0.0.1 in kh");
  err_clear(&err);
  ck_assert_int_eq(gitsrc_known_hosts_check("kh", both, strlen(both), "127.0.0.1", 2222, host,
                                            hn, NULL, &err), -EKEYREJECTED);
  ck_assert(strstr(err.msg, "@revoked in kh:2"));
  free(plain);
  free(hashed);
  free(host);
  free(other);
  free(revoked);
  free(both);
}
END_TEST

/* --- repositories made by git --------------------------------------------- */

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  int r;

  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  r = system(cmd);
  ck_assert_msg(r == 0, "command failed (%d): %s", r, cmd);
}

static char *sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sh_out(const char *fmt, ...) {
  char cmd[8192], line[256] = "";
  va_list ap;
  FILE *p;

  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  ck_assert_ptr_nonnull(fgets(line, sizeof(line), p));
  ck_assert_int_eq(pclose(p), 0);
  line[strcspn(line, "\n")] = '\0';
  return xstrdup(line);
}

#define GIT "GIT_CONFIG_NOSYSTEM=1 HOME=%s git -C %s/up -c user.name=T -c user.email=t@x "

/* An upstream repo with: intent.yaml, sub/gw.yaml, .github/ci.yaml (hidden),
 * link -> intent.yaml (symlink), big.bin. Returns the tmpdir. */
static char *make_upstream(void) {
  char *dir = testutil_tmpdir();
  sh("git init -q -b main %s/up", dir);
  testutil_write(dir, "up/intent.yaml", "kind: EgressIntent\n");
  testutil_write(dir, "up/sub/gw.yaml", "kind: EgressGateway\n");
  testutil_write(dir, "up/.github/ci.yaml", "on: push\n");
  testutil_write(dir, "up/notes.txt", "not yaml\n");
  sh("ln -s intent.yaml %s/up/link.yaml", dir);
  sh(GIT "add -A && " GIT "commit -q -m 'first' -m 'Egressd-Allow-Prune: 4'", dir, dir, dir,
     dir);
  return dir;
}

static struct gitsrc *open_cache(const char *dir, const char *sub, struct gitsrc_opts *o) {
  struct gitsrc *src = NULL;
  struct err err = ERR_INIT;
  char *url = xasprintf("file://%s/up", dir);
  char *cache = xasprintf("%s/%s", dir, sub);
  struct gitsrc_opts def = {0};

  if (!o)
    o = &def;
  o->url = url;
  o->cache_dir = cache;
  ck_assert_ok(gitsrc_open(o, &src, &err), &err);
  free(url);
  free(cache);
  return src;
}

START_TEST(test_gitsrc_fetch_file_poll_unchanged_then_changed) {
  char *dir = make_upstream();
  struct gitsrc *src = open_cache(dir, "cache", NULL);
  struct gitsrc_oid remote, head, fetched;
  bool changed = false;
  struct err err = ERR_INIT;
  char *up_head = sh_out("git -C %s/up rev-parse HEAD", dir);

  ck_assert_int_eq(gitsrc_fetched_head(src, &fetched, &err), -ENOENT);
  err_clear(&err);
  ck_assert_ok(gitsrc_poll(src, &remote, &changed, &err), &err);
  ck_assert(changed);
  ck_assert_str_eq(remote.hex, up_head);
  ck_assert_ok(gitsrc_fetch(src, &head, &err), &err);
  ck_assert_str_eq(head.hex, up_head);
  ck_assert_ok(gitsrc_fetched_head(src, &fetched, &err), &err);
  ck_assert_str_eq(fetched.hex, up_head);
  ck_assert_ok(gitsrc_poll(src, &remote, &changed, &err), &err);
  ck_assert(!changed);
  /* a new upstream commit is seen by poll and fetched */
  testutil_write(dir, "up/intent.yaml", "kind: EgressIntent # 2\n");
  sh(GIT "commit -q -am second", dir, dir);
  free(up_head);
  up_head = sh_out("git -C %s/up rev-parse HEAD", dir);
  ck_assert_ok(gitsrc_poll(src, &remote, &changed, &err), &err);
  ck_assert(changed);
  ck_assert_str_eq(remote.hex, up_head);
  ck_assert_ok(gitsrc_fetch(src, &head, &err), &err);
  ck_assert_str_eq(head.hex, up_head);
  gitsrc_free(src);
  /* the cache is a bare repository with the remote configured */
  free(up_head);
  up_head = sh_out("git --git-dir=%s/cache config remote.origin.fetch", dir);
  ck_assert_str_eq(up_head, "+refs/heads/main:refs/egressd/remote");
  free(up_head);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(test_gitsrc_fetch_failure_keeps_last_good_commit) {
  char *dir = make_upstream();
  struct gitsrc *src = open_cache(dir, "cache", NULL);
  struct gitsrc_opts o = {.ref = "refs/heads/missing"};
  struct gitsrc *bad;
  struct gitsrc_oid head, after;
  bool changed;
  struct err err = ERR_INIT;

  ck_assert_ok(gitsrc_fetch(src, &head, &err), &err);
  gitsrc_free(src);
  bad = open_cache(dir, "cache", &o);
  ck_assert_int_eq(gitsrc_poll(bad, &after, &changed, &err), -ENOENT);
  ck_assert(strstr(err.msg, "has no ref refs/heads/missing"));
  err_clear(&err);
  ck_assert_int_eq(gitsrc_fetch(bad, &after, &err), -ENOENT);
  ck_assert_ok(gitsrc_fetched_head(bad, &after, &err), &err);
  ck_assert_str_eq(after.hex, head.hex);
  gitsrc_free(bad);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(test_gitsrc_fetch_pack_bound_aborts) {
  char *dir = make_upstream();
  struct gitsrc_opts o = {.max_pack_bytes = 64};
  struct gitsrc *src;
  struct gitsrc_oid head;
  struct err err = ERR_INIT;

  sh("head -c 200000 /dev/urandom > %s/up/big.bin && " GIT "add big.bin && " GIT
     "commit -q -m big", dir, dir, dir, dir, dir);
  src = open_cache(dir, "cache", &o);
  ck_assert_int_eq(gitsrc_fetch(src, &head, &err), -EFBIG);
  ck_assert(strstr(err.msg, "exceeded max_pack_bytes"));
  err_clear(&err);
  ck_assert_int_eq(gitsrc_fetched_head(src, &head, &err), -ENOENT);
  gitsrc_free(src);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(test_gitsrc_open_validates_options) {
  static const struct {
    struct gitsrc_opts o;
    const char *want;
  } cases[] = {
      {{.url = "", .cache_dir = "/tmp/x"}, "URL is empty"},
      {{.url = "ftp://h/r", .cache_dir = "/tmp/x"}, "unsupported repository URL"},
      {{.url = "https://u:secret@h/r", .cache_dir = "/tmp/x"}, "contains a password"},
      {{.url = "https://h/r", .cache_dir = "/tmp/x", .ref = "main"}, "invalid ref 'main'"},
      {{.url = "ssh://git@h/r", .cache_dir = "/tmp/x"}, "needs ssh_key"},
      {{.url = "git://h/r", .cache_dir = "/tmp/x", .token_file = "/etc/hostname"},
       "are for http(s):// URLs"},
      {{.url = "https://h/r", .cache_dir = "/tmp/x", .password_file = "/etc/hostname"},
       "needs a username"},
      {{.url = "http://127.0.0.1/r", .cache_dir = "/tmp/x", .token_file = "/etc/hostname"},
       "refusing to send the token of token_file over plain http:// to 'http://127.0.0.1/r'"},
      {{.url = "http://h/r?token=secret", .cache_dir = "/tmp/x", .username = "u",
        .password_file = "/etc/hostname"},
       "the password of password_file over plain http:// to 'http://h/r?token=[redacted]'"},
      {{.url = "https://h/r", .cache_dir = "/tmp/x", .token_file = "/nonexistent/t"},
       "cannot read token_file '/nonexistent/t'"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    struct gitsrc *src = NULL;
    struct err err = ERR_INIT;
    ck_assert_int_lt(gitsrc_open(&cases[i].o, &src, &err), 0);
    ck_assert_ptr_null(src);
    ck_assert_msg(strstr(err.msg, cases[i].want), "case %zu: '%s'", i, err.msg);
    ck_assert(!strstr(err.msg, "secret"));
  }
}
END_TEST

START_TEST(test_gitsrc_open_refuses_foreign_cache_dir) {
  char *dir = testutil_tmpdir();
  struct gitsrc_opts o = {.url = "file:///nonexistent"};
  struct gitsrc *src = NULL;
  struct err err = ERR_INIT;
  char *cache = xasprintf("%s/c", dir);

  testutil_write(dir, "c/precious.txt", "x");
  o.cache_dir = cache;
  ck_assert_int_eq(gitsrc_open(&o, &src, &err), -EEXIST);
  ck_assert(strstr(err.msg, "is neither a bare git repository nor empty"));
  free(cache);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(test_gitsrc_tree_read_skips_hidden_links_and_filters) {
  char *dir = make_upstream();
  struct gitsrc *src = open_cache(dir, "cache", NULL);
  const char *const yaml[] = {".yaml", NULL};
  struct gitsrc_oid head;
  struct fileset fs;
  struct fileset_limits small = fileset_limits_default;
  struct err err = ERR_INIT;

  ck_assert_ok(gitsrc_fetch(src, &head, &err), &err);
  fileset_init(&fs, NULL);
  ck_assert_ok(gitsrc_tree_read(src, &head, NULL, &fs, &err), &err);
  fileset_sort(&fs);
  ck_assert_uint_eq(fs.n, 3); /* intent.yaml, notes.txt, sub/gw.yaml */
  ck_assert_str_eq(fs.items[0].path, "intent.yaml");
  ck_assert_str_eq(fs.items[0].data, "kind: EgressIntent\n");
  ck_assert_str_eq(fs.items[1].path, "notes.txt");
  ck_assert_str_eq(fs.items[2].path, "sub/gw.yaml");
  fileset_dispose(&fs);
  fileset_init(&fs, NULL);
  ck_assert_ok(gitsrc_tree_read(src, &head, yaml, &fs, &err), &err);
  ck_assert_uint_eq(fs.n, 2);
  fileset_dispose(&fs);
  small.max_file_bytes = 10;
  fileset_init(&fs, &small);
  ck_assert_int_eq(gitsrc_tree_read(src, &head, NULL, &fs, &err), -E2BIG);
  ck_assert(strstr(err.msg, "'intent.yaml' in commit"));
  ck_assert(strstr(err.msg, "is 19 bytes, larger than the limit of 10 bytes"));
  fileset_dispose(&fs);
  gitsrc_free(src);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(test_gitsrc_commit_info_reads_trailer_from_odb) {
  char *dir = make_upstream();
  struct gitsrc *src = open_cache(dir, "cache", NULL);
  struct gitsrc_oid head;
  struct gitsrc_commit_info ci;
  struct err err = ERR_INIT;
  char *tree = sh_out("git -C %s/up rev-parse HEAD^{tree}", dir);

  ck_assert_ok(gitsrc_fetch(src, &head, &err), &err);
  ck_assert_ok(gitsrc_commit_info(src, &head, &ci, &err), &err);
  ck_assert_str_eq(ci.id.hex, head.hex);
  ck_assert_str_eq(ci.tree.hex, tree);
  ck_assert_str_eq(ci.summary, "first");
  ck_assert_str_eq(ci.author, "T <t@x>");
  ck_assert_str_eq(gitsrc_commit_trailer(&ci, "egressd-allow-prune"), "4");
  gitsrc_commit_info_dispose(&ci);
  free(tree);
  gitsrc_free(src);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(test_gitsrc_history_rewrite_refused_unless_allowed) {
  char *dir = make_upstream();
  struct gitsrc *src = open_cache(dir, "cache", NULL), *lenient;
  struct gitsrc_opts allow = {.allow_rewrite = true};
  struct gitsrc_oid first, second, rewritten;
  struct err err = ERR_INIT;

  ck_assert_ok(gitsrc_fetch(src, &first, &err), &err);
  sh(GIT "commit -q --allow-empty -m second", dir, dir);
  ck_assert_ok(gitsrc_fetch(src, &second, &err), &err);
  ck_assert_int_eq(gitsrc_is_descendant(src, &first, &second, &err), 1);
  ck_assert_int_eq(gitsrc_is_descendant(src, &second, &first, &err), 0);
  ck_assert_int_eq(gitsrc_is_descendant(src, &second, &second, &err), 1);
  ck_assert_int_eq(gitsrc_check_history(src, &first, &second, &err), 0);
  ck_assert_int_eq(gitsrc_check_history(src, NULL, &second, &err), 0);
  /* force-push a different second commit */
  sh(GIT "reset -q --hard HEAD~1 && " GIT "commit -q --allow-empty -m other", dir, dir, dir,
     dir);
  ck_assert_ok(gitsrc_fetch(src, &rewritten, &err), &err);
  ck_assert_int_eq(gitsrc_check_history(src, &second, &rewritten, &err), -ESTALE);
  ck_assert(strstr(err.msg, "history was rewritten upstream"));
  ck_assert(strstr(err.msg, rewritten.hex));
  ck_assert(strstr(err.msg, second.hex));
  gitsrc_free(src);
  lenient = open_cache(dir, "cache", &allow);
  ck_assert_int_eq(gitsrc_check_history(lenient, &second, &rewritten, &err), 1);
  gitsrc_free(lenient);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(test_gitsrc_verify_range_all_names_unsigned_commit_in_middle) {
  char *dir = make_upstream();
  struct gitsrc *src;
  struct gitsrc_oid base, head, middle;
  struct gitsrc_signer signer;
  struct err err = ERR_INIT;
  char *signers = xasprintf("%s/allowed_signers", dir);
  char *mid;

  sh("ssh-keygen -q -t ed25519 -N '' -C k -f %s/key && printf 'ops@example.com %%s\\n' \"$(cat "
     "%s/key.pub)\" > %s",
     dir, dir, signers);
#define SIGNED GIT "-c gpg.format=ssh -c user.signingkey=%s/key commit -q -S --allow-empty -m "
  sh(SIGNED "s1", dir, dir, dir);
  base = (struct gitsrc_oid){{0}};
  {
    char *b = sh_out("git -C %s/up rev-parse HEAD", dir);
    gitsrc_oid_parse(b, &base);
    free(b);
  }
  sh(SIGNED "s2", dir, dir, dir);
  sh(GIT "commit -q --allow-empty -m unsigned-middle", dir, dir);
  mid = sh_out("git -C %s/up rev-parse HEAD", dir);
  gitsrc_oid_parse(mid, &middle);
  sh(SIGNED "s3", dir, dir, dir);
  src = open_cache(dir, "cache", NULL);
  ck_assert_ok(gitsrc_fetch(src, &head, &err), &err);
  /* head is signed: policy head passes */
  ck_assert_ok(gitsrc_verify_range(src, GITSRC_VERIFY_HEAD, signers, NULL, &base, &head, &signer, &err),
               &err);
  ck_assert_str_eq(signer.principal, "ops@example.com");
  ck_assert_str_eq(signer.commit.hex, head.hex);
  /* the same with the signing key revoked by a KRL (verify.revokedKeys) */
  {
    char *krl = xasprintf("%s/revoked.krl", dir);
    sh("ssh-keygen -q -k -f %s %s/key.pub", krl, dir);
    ck_assert_int_eq(gitsrc_verify_range(src, GITSRC_VERIFY_HEAD, signers, krl, &base, &head,
                                         &signer, &err),
                     -EBADMSG);
    ck_assert_str_eq(err.reason, "revoked");
    err_clear(&err);
    ck_assert_int_eq(gitsrc_verify_range(src, GITSRC_VERIFY_HEAD, signers, "/nonexistent", &base,
                                         &head, &signer, &err),
                     -ENOENT);
    err_clear(&err);
    free(krl);
  }
  /* policy all: the unsigned commit in the middle is named */
  ck_assert_int_eq(
      gitsrc_verify_range(src, GITSRC_VERIFY_ALL, signers, NULL, &base, &head, &signer, &err),
      -EBADMSG);
  ck_assert_msg(strstr(err.msg, "commit 2 of 3"), "%s", err.msg);
  ck_assert_msg(strstr(err.msg, mid), "%s", err.msg);
  ck_assert_str_eq(err.reason, "unsigned");
  err_clear(&err);
  /* from the unsigned commit on, everything is signed */
  ck_assert_ok(
      gitsrc_verify_range(src, GITSRC_VERIFY_ALL, signers, NULL, &middle, &head, &signer, &err), &err);
  /* none checks nothing, not even the file */
  ck_assert_ok(gitsrc_verify_range(src, GITSRC_VERIFY_NONE, "/nonexistent", NULL, NULL, &middle,
                                   &signer, &err), &err);
  ck_assert_str_eq(signer.principal, "");
  /* head policy on the unsigned commit */
  ck_assert_int_eq(
      gitsrc_verify_range(src, GITSRC_VERIFY_HEAD, signers, NULL, NULL, &middle, &signer, &err),
      -EBADMSG);
  gitsrc_free(src);
  free(mid);
  free(signers);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(test_gitsrc_verify_policy_parse) {
  enum gitsrc_verify_policy p = GITSRC_VERIFY_HEAD;
  ck_assert_int_eq(gitsrc_verify_policy_parse("all", &p), 0);
  ck_assert_int_eq(p, GITSRC_VERIFY_ALL);
  ck_assert_int_eq(gitsrc_verify_policy_parse("none", &p), 0);
  ck_assert_int_eq(p, GITSRC_VERIFY_NONE);
  ck_assert_int_eq(gitsrc_verify_policy_parse("HEAD", &p), -EINVAL);
  ck_assert_str_eq(gitsrc_verdict_name(GITSRC_VERDICT_OUTSIDE_VALIDITY), "outside-validity");
}
END_TEST

static Suite *gitsrc_suite(void) {
  Suite *s = suite_create("gitsrc");
  TCase *tc = tcase_create("gitsrc");

  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_gitsrc_split_drops_all_gpgsig_headers_like_git);
  tcase_add_test(tc, test_gitsrc_split_ignores_signature_in_message_body);
  tcase_add_test(tc, test_gitsrc_split_refuses_oversized_commit);
  tcase_add_test(tc, test_gitsrc_commit_parse_fields_and_trailers);
  tcase_add_test(tc, test_gitsrc_commit_parse_no_trailers_in_subject_or_prose);
  tcase_add_test(tc, test_gitsrc_commit_parse_rejects_malformed_with_line);
  tcase_add_test(tc, test_gitsrc_verify_good_signature_reports_principal_and_fingerprint);
  tcase_add_test(tc, test_gitsrc_verify_tampered_commit_is_bad_signature);
  tcase_add_test(tc, test_gitsrc_verify_unsigned_and_hidden_signature_are_unsigned);
  tcase_add_test(tc, test_gitsrc_verify_extra_gpgsig_sha256_header_is_ignored_like_git);
  tcase_add_test(tc, test_gitsrc_verify_key_not_allowed);
  tcase_add_test(tc, test_gitsrc_verify_validity_window_uses_commit_time);
  tcase_add_test(tc, test_gitsrc_verify_namespace_rules);
  tcase_add_test(tc, test_gitsrc_verify_rsa_is_good_and_openpgp_unsupported);
  tcase_add_test(tc, test_gitsrc_verify_principal_choice_matches_git);
  tcase_add_test(tc, test_gitsrc_signers_file_is_refused_as_a_whole_on_a_bad_line);
  tcase_add_test(tc, test_gitsrc_verify_revoked_key_by_list_and_krl);
  tcase_add_test(tc, test_gitsrc_known_hosts_plain_hashed_mismatch_missing);
  tcase_add_test(tc, test_gitsrc_fetch_file_poll_unchanged_then_changed);
  tcase_add_test(tc, test_gitsrc_fetch_failure_keeps_last_good_commit);
  tcase_add_test(tc, test_gitsrc_fetch_pack_bound_aborts);
  tcase_add_test(tc, test_gitsrc_open_validates_options);
  tcase_add_test(tc, test_gitsrc_open_refuses_foreign_cache_dir);
  tcase_add_test(tc, test_gitsrc_tree_read_skips_hidden_links_and_filters);
  tcase_add_test(tc, test_gitsrc_commit_info_reads_trailer_from_odb);
  tcase_add_test(tc, test_gitsrc_history_rewrite_refused_unless_allowed);
  tcase_add_test(tc, test_gitsrc_verify_range_all_names_unsigned_commit_in_middle);
  tcase_add_test(tc, test_gitsrc_verify_policy_parse);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return testutil_run(gitsrc_suite()); }
