/* Commit signature verification: the verdict `git verify-commit` would give
 * with gpg.format=ssh and gpg.ssh.allowedSignersFile, computed in process.
 *
 * Git's flow (gpg-interface.c, verify_ssh_signed_buffer) that this mirrors:
 *   1. `ssh-keygen -Y find-principals -Overify-time=<committer time>`: the
 *      first allowed_signers line (file order) whose key is the signature's
 *      key and whose validity window contains the commit time; its principals
 *      field, split at commas, are the candidates.
 *   2. for each candidate, `ssh-keygen -Y verify -n git -I <candidate>`: a
 *      line whose principals pattern-list matches the candidate, with the same
 *      key, whose namespaces= (if any) matches "git" and whose window contains
 *      the commit time; the signature must be for namespace "git" and verify.
 *   The first candidate that passes is the principal git reports.
 *   With gpg.ssh.revocationFile, a revoked key fails step 2 (`-r`).
 * Deliberate differences, all towards refusing: RSA keys under 2048 bits are
 * "unsupported" (ssh-keygen takes 1024); a FIDO signature must show user
 * presence unless the line says no-touch-required, and user verification
 * when it says verify-required (ssh-keygen checks neither); a commit with
 * more than one gpgsig header is refused; an allowed_signers file with a bad
 * line is refused as a whole. Signatures, keys, allowed_signers and revoked
 * keys are daemon/ssh/'s. When you change a rule, also touch docs/signing.md.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "gitsrc/gitsrc-int.h"

static const char *const verdict_names[] = {
    [GITSRC_VERDICT_GOOD] = "good",
    [GITSRC_VERDICT_UNSIGNED] = "unsigned",
    [GITSRC_VERDICT_BAD_SIGNATURE] = "bad-signature",
    [GITSRC_VERDICT_KEY_NOT_ALLOWED] = "key-not-allowed",
    [GITSRC_VERDICT_OUTSIDE_VALIDITY] = "outside-validity",
    [GITSRC_VERDICT_WRONG_NAMESPACE] = "wrong-namespace",
    [GITSRC_VERDICT_UNSUPPORTED] = "unsupported",
    [GITSRC_VERDICT_REVOKED] = "revoked",
};

static const char *const verdict_labels[] = {
    [GITSRC_VERDICT_GOOD] = "good signature",
    [GITSRC_VERDICT_UNSIGNED] = "unsigned",
    [GITSRC_VERDICT_BAD_SIGNATURE] = "bad signature",
    [GITSRC_VERDICT_KEY_NOT_ALLOWED] = "key not allowed",
    [GITSRC_VERDICT_OUTSIDE_VALIDITY] = "outside the validity window",
    [GITSRC_VERDICT_WRONG_NAMESPACE] = "wrong namespace",
    [GITSRC_VERDICT_UNSUPPORTED] = "unsupported",
    [GITSRC_VERDICT_REVOKED] = "key revoked",
};

const char *gitsrc_verdict_name(enum gitsrc_verdict v) {
  return (unsigned)v < ARRAY_SIZE(verdict_names) ? verdict_names[v] : "unknown";
}

int gitsrc_verify_policy_parse(const char *s, enum gitsrc_verify_policy *ret) {
  if (str_eq(s, "none"))
    *ret = GITSRC_VERIFY_NONE;
  else if (str_eq(s, "head"))
    *ret = GITSRC_VERIFY_HEAD;
  else if (str_eq(s, "all"))
    *ret = GITSRC_VERIFY_ALL;
  else
    return -EINVAL;
  return 0;
}

/* Record a negative verdict: "<label>: <detail>", err->reason = name. */
static int refuse(struct err *err, enum gitsrc_verdict *ret_verdict, enum gitsrc_verdict v,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int refuse(struct err *err, enum gitsrc_verdict *ret_verdict, enum gitsrc_verdict v,
                  const char *fmt, ...) {
  char detail[ERR_MSG_MAX];
  va_list ap;

  va_start(ap, fmt);
  str_vformat(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  if (ret_verdict)
    *ret_verdict = v;
  if (err && !err_isset(err)) {
    err_set_src(err, -EBADMSG, ERR_SRC_SIG, "%s: %s", verdict_labels[v], detail);
    str_copy(err->reason, sizeof(err->reason), verdict_names[v]);
  }
  return -EBADMSG;
}

static bool time_ok(const struct ssh_signer *e, int64_t t) { return ssh_signer_valid_at(e, t); }

static void fmt_time(char *buf, size_t size, int64_t t) {
  if (t < 0)
    t = 0;
  time_format_rfc3339(buf, size, (uint64_t)t * USEC_PER_SEC);
}

static int window_refusal(struct err *err, enum gitsrc_verdict *ret_verdict,
                          const struct ssh_signers *signers, const struct ssh_signer *e,
                          int64_t t) {
  char when[40], lim[40];

  fmt_time(when, sizeof(when), t);
  if (e->has_valid_after && t < e->valid_after) {
    fmt_time(lim, sizeof(lim), e->valid_after);
    return refuse(err, ret_verdict, GITSRC_VERDICT_OUTSIDE_VALIDITY,
                  "%s:%u: the key is not valid before %s (valid-after); the commit time is %s",
                  signers->name, e->line, lim, when);
  }
  fmt_time(lim, sizeof(lim), e->valid_before);
  return refuse(err, ret_verdict, GITSRC_VERDICT_OUTSIDE_VALIDITY,
                "%s:%u: the key expired at %s (valid-before); the commit time is %s",
                signers->name, e->line, lim, when);
}

/* Steps 1 and 2 of the file comment; @d: the FIDO flags of the signature. */
static int authorize(const struct ssh_signers *signers, const struct ssh_key *key,
                     const struct ssh_sig_details *d, int64_t t, const char *fingerprint,
                     char *principal, size_t principal_size, enum gitsrc_verdict *ret_verdict,
                     struct err *err) {
  const struct ssh_signer *found = NULL, *expired = NULL, *ns_refused = NULL, *flags_refused = NULL;
  const char *p;

  for (size_t i = 0; i < signers->n && !found; i++) {
    const struct ssh_signer *e = &signers->entries[i];
    if (!ssh_key_equal(e->key, key))
      continue;
    if (time_ok(e, t))
      found = e;
    else if (!expired)
      expired = e;
  }
  if (!found) {
    if (expired)
      return window_refusal(err, ret_verdict, signers, expired, t);
    return refuse(err, ret_verdict, GITSRC_VERDICT_KEY_NOT_ALLOWED,
                  "%s key %s is not in %s", ssh_key_type_display(key), fingerprint,
                  signers->name);
  }
  expired = NULL;
  for (p = found->principals; *p;) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    char *candidate = xstrndup(p, n);

    for (size_t i = 0; i < signers->n; i++) {
      const struct ssh_signer *e = &signers->entries[i];
      if (ssh_pattern_list_match(candidate, e->principals) != 1 || !ssh_key_equal(e->key, key))
        continue;
      if (e->namespaces && ssh_pattern_list_match("git", e->namespaces) != 1) {
        if (!ns_refused)
          ns_refused = e;
        continue;
      }
      if (!time_ok(e, t)) {
        if (!expired)
          expired = e;
        continue;
      }
      if (!ssh_signer_accepts_flags(e, d)) {
        if (!flags_refused)
          flags_refused = e;
        continue;
      }
      str_copy(principal, principal_size, candidate);
      free(candidate);
      return 0;
    }
    free(candidate);
    p += n + (comma ? 1 : 0);
  }
  if (ns_refused)
    return refuse(err, ret_verdict, GITSRC_VERDICT_WRONG_NAMESPACE,
                  "%s:%u: the key is not allowed to sign namespace \"git\" (namespaces=\"%s\")",
                  signers->name, ns_refused->line, ns_refused->namespaces);
  if (expired)
    return window_refusal(err, ret_verdict, signers, expired, t);
  if (flags_refused) {
    bool no_touch = !flags_refused->no_touch_required && !(d->sk_flags & SSH_SK_USER_PRESENCE);
    return refuse(err, ret_verdict, GITSRC_VERDICT_KEY_NOT_ALLOWED,
                  "%s:%u: the FIDO signature (flags 0x%02x) does not show %s", signers->name,
                  flags_refused->line, d->sk_flags,
                  no_touch ? "user presence (a touch); the line would need no-touch-required"
                           : "user verification (PIN), which the line requires (verify-required)");
  }
  return refuse(err, ret_verdict, GITSRC_VERDICT_KEY_NOT_ALLOWED,
                "%s:%u: no principal of this line is allowed with key %s", signers->name,
                found->line, fingerprint);
}

int gitsrc_verify_commit_buffer(const void *raw, size_t len, const struct gitsrc_signers *signers,
                                struct gitsrc_signer *ret_signer,
                                enum gitsrc_verdict *ret_verdict, struct err *err) {
  struct gitsrc_commit_info ci = {0};
  struct ssh_sig sig = {0};
  struct ssh_sig_details details = {0};
  struct buf payload = BUF_INIT, sigtext = BUF_INIT;
  struct err sub = ERR_INIT;
  struct gitsrc_signer signer = {0};
  char fingerprint[SSH_FINGERPRINT_SIZE];
  unsigned headers = 0;
  int r;

  if (len > GITSRC_COMMIT_MAX_BYTES || gitsrc_commit_parse(raw, len, &ci, &sub) < 0) {
    r = refuse(err, ret_verdict, GITSRC_VERDICT_BAD_SIGNATURE, "%s",
               len > GITSRC_COMMIT_MAX_BYTES ? "the commit object is too large" : sub.msg);
    goto out;
  }
  r = gitsrc_commit_split(raw, len, &payload, &sigtext, &headers, &sub);
  if (r == 0) {
    r = refuse(err, ret_verdict, GITSRC_VERDICT_UNSIGNED, "the commit has no gpgsig header");
    goto out;
  }
  if (headers > 1) {
    r = refuse(err, ret_verdict, GITSRC_VERDICT_BAD_SIGNATURE,
               "the commit has %u gpgsig headers; egressd accepts exactly one", headers);
    goto out;
  }
  if (str_has_prefix(buf_cstr(&sigtext), "-----BEGIN PGP SIGNATURE-----") ||
      str_has_prefix(buf_cstr(&sigtext), "-----BEGIN SIGNED MESSAGE-----")) {
    r = refuse(err, ret_verdict, GITSRC_VERDICT_UNSUPPORTED,
               "the commit carries an OpenPGP or X.509 signature; egressd verifies SSH "
               "signatures only (git config gpg.format ssh)");
    goto out;
  }
  if (ssh_sig_parse(sigtext.data, sigtext.len, &sig, &sub) < 0) {
    r = refuse(err, ret_verdict, GITSRC_VERDICT_BAD_SIGNATURE, "%s", sub.msg);
    goto out;
  }
  ssh_key_fingerprint(sig.key, fingerprint);
  r = ssh_sig_verify(&sig, payload.data ? payload.data : "", payload.len, "git", &details, &sub);
  if (r == -EPROTONOSUPPORT) {
    r = refuse(err, ret_verdict, GITSRC_VERDICT_UNSUPPORTED, "%s, key %s", sub.msg, fingerprint);
    goto out;
  } else if (r == -EKEYREJECTED) {
    r = refuse(err, ret_verdict, GITSRC_VERDICT_WRONG_NAMESPACE, "%s", sub.msg);
    goto out;
  } else if (r < 0) {
    r = refuse(err, ret_verdict, GITSRC_VERDICT_BAD_SIGNATURE, "%s (key %s)", sub.msg,
               fingerprint);
    goto out;
  }
  if (ssh_revoked_contains(signers->revoked, sig.key)) {
    r = refuse(err, ret_verdict, GITSRC_VERDICT_REVOKED, "%s key %s is in the revoked keys",
               ssh_key_type_display(sig.key), fingerprint);
    goto out;
  }
  r = authorize(signers->allowed, sig.key, &details, ci.commit_time, fingerprint,
                signer.principal, sizeof(signer.principal), ret_verdict, err);
  if (r < 0)
    goto out;
  str_copy(signer.key_type, sizeof(signer.key_type), ssh_key_type_display(sig.key));
  str_copy(signer.fingerprint, sizeof(signer.fingerprint), fingerprint);
  if (ret_signer)
    *ret_signer = signer;
  if (ret_verdict)
    *ret_verdict = GITSRC_VERDICT_GOOD;
  r = 0;
out:
  ssh_sig_dispose(&sig);
  gitsrc_commit_info_dispose(&ci);
  buf_dispose(&payload);
  buf_dispose(&sigtext);
  return r;
}

static int read_commit_raw(struct gitsrc *src, const struct gitsrc_oid *oid, struct buf *out,
                           struct err *err) {
  git_oid id;
  git_odb *odb = NULL;
  git_odb_object *obj = NULL;
  git_object_t type;
  size_t size;
  int r;

  if (gitsrc_oid_to_git(&id, oid) < 0)
    return err_set(err, -EINVAL, "invalid commit id '%s'", oid->hex);
  if ((r = git_repository_odb(&odb, src->repo)) < 0)
    return gitsrc_git_error(err, r, "cannot open the object database of %s", src->path);
  if ((r = git_odb_read_header(&size, &type, odb, &id)) < 0) {
    r = gitsrc_git_error(err, r, "cannot read commit %s", oid->hex);
    goto out;
  }
  if (type != GIT_OBJECT_COMMIT) {
    r = err_set_src(err, -EINVAL, ERR_SRC_GIT, "%s is a %s, not a commit", oid->hex,
                    git_object_type2string(type));
    goto out;
  }
  if (size > GITSRC_COMMIT_MAX_BYTES || size > src->max_object_bytes) {
    r = err_set_src(err, -E2BIG, ERR_SRC_GIT, "commit %s is %zu bytes, larger than the limit",
                    oid->hex, size);
    goto out;
  }
  if ((r = git_odb_read(&obj, odb, &id)) < 0) {
    r = gitsrc_git_error(err, r, "cannot read commit %s", oid->hex);
    goto out;
  }
  buf_append(out, git_odb_object_data(obj), git_odb_object_size(obj));
  r = 0;
out:
  git_odb_object_free(obj);
  git_odb_free(odb);
  return r;
}

int gitsrc_commit_info(struct gitsrc *src, const struct gitsrc_oid *oid,
                       struct gitsrc_commit_info *ret, struct err *err) {
  struct buf raw = BUF_INIT;
  int r = read_commit_raw(src, oid, &raw, err);

  if (r >= 0)
    r = gitsrc_commit_parse(raw.data, raw.len, ret, err);
  if (r >= 0)
    ret->id = *oid;
  else
    err_prefix(err, "commit %s", oid->hex);
  buf_dispose(&raw);
  return r;
}

int gitsrc_verify_commit(struct gitsrc *src, const struct gitsrc_oid *oid,
                         const struct gitsrc_signers *signers, struct gitsrc_signer *ret_signer,
                         enum gitsrc_verdict *ret_verdict, struct err *err) {
  struct buf raw = BUF_INIT;
  struct gitsrc_signer signer = {0};
  int r = read_commit_raw(src, oid, &raw, err);

  if (r >= 0)
    r = gitsrc_verify_commit_buffer(raw.data, raw.len, signers, &signer, ret_verdict, err);
  buf_dispose(&raw);
  if (r < 0) {
    err_prefix(err, "commit %s", oid->hex);
    return r;
  }
  signer.commit = *oid;
  if (ret_signer)
    *ret_signer = signer;
  return 0;
}

int gitsrc_verify_range(struct gitsrc *src, enum gitsrc_verify_policy policy,
                        const char *allowed_signers_path, const char *revoked_keys_path,
                        const struct gitsrc_oid *last_applied, const struct gitsrc_oid *new_head,
                        struct gitsrc_signer *ret_signer, struct err *err) {
  struct gitsrc_signers *signers = NULL;
  struct gitsrc_signer head_signer = {0};
  git_revwalk *walk = NULL;
  git_oid id, head_id, hide_id;
  size_t total = 0, index = 0;
  git_oid *range = NULL;
  size_t cap = 0;
  int r;

  if (policy == GITSRC_VERIFY_NONE) {
    if (ret_signer)
      memset(ret_signer, 0, sizeof(*ret_signer));
    return 0;
  }
  if (gitsrc_oid_to_git(&head_id, new_head) < 0)
    return err_set(err, -EINVAL, "invalid commit id '%s'", new_head->hex);
  if ((r = gitsrc_signers_load(allowed_signers_path, &signers, err)) < 0)
    return r;
  if (revoked_keys_path && (r = gitsrc_signers_load_revoked(signers, revoked_keys_path, err)) < 0)
    goto out;
  if (policy == GITSRC_VERIFY_ALL && last_applied) {
    if (gitsrc_oid_to_git(&hide_id, last_applied) < 0) {
      r = err_set(err, -EINVAL, "invalid commit id '%s'", last_applied->hex);
      goto out;
    }
    if ((r = git_revwalk_new(&walk, src->repo)) < 0 ||
        (r = git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE)) < 0 ||
        (r = git_revwalk_push(walk, &head_id)) < 0 || (r = git_revwalk_hide(walk, &hide_id)) < 0) {
      r = gitsrc_git_error(err, r, "cannot list the commits from %s to %s", last_applied->hex,
                           new_head->hex);
      goto out;
    }
    while ((r = git_revwalk_next(&id, walk)) == 0) {
      if (total >= GITSRC_VERIFY_MAX_COMMITS) {
        r = err_set_src(err, -E2BIG, ERR_SRC_SIG,
                        "more than %u commits between %s and %s; verify a shorter range",
                        GITSRC_VERIFY_MAX_COMMITS, last_applied->hex, new_head->hex);
        goto out;
      }
      range = xgrow(range, &cap, total + 1, sizeof(*range));
      range[total++] = id;
    }
    if (r != GIT_ITEROVER) {
      r = gitsrc_git_error(err, r, "cannot list the commits from %s to %s", last_applied->hex,
                           new_head->hex);
      goto out;
    }
    for (index = 0; index < total; index++) {
      struct gitsrc_oid oid;
      struct gitsrc_signer signer;
      gitsrc_oid_from_git(&oid, &range[index]);
      r = gitsrc_verify_commit(src, &oid, signers, &signer, NULL, err);
      if (r < 0) {
        err_prefix(err, "policy \"all\": commit %zu of %zu since %.12s", index + 1, total,
                   last_applied->hex);
        goto out;
      }
      if (gitsrc_oid_eq(&oid, new_head))
        head_signer = signer;
    }
    if (total == 0) { /* new_head == last_applied or an ancestor of it */
      r = gitsrc_verify_commit(src, new_head, signers, &head_signer, NULL, err);
      if (r < 0)
        goto out;
    }
  } else {
    r = gitsrc_verify_commit(src, new_head, signers, &head_signer, NULL, err);
    if (r < 0) {
      err_prefix(err, "policy \"%s\"", policy == GITSRC_VERIFY_ALL ? "all" : "head");
      goto out;
    }
  }
  if (ret_signer)
    *ret_signer = head_signer;
  r = 0;
out:
  free(range);
  git_revwalk_free(walk);
  gitsrc_signers_free(signers);
  return r;
}

/* Shared by the daemon's Git worker and `egressd verify-commit --since`:
 * one code path, one verdict. */
int gitsrc_head_check(struct gitsrc *src, enum gitsrc_verify_policy policy,
                      const char *allowed_signers_path, const char *revoked_keys_path,
                      const struct gitsrc_oid *floors, size_t n_floors,
                      const struct gitsrc_oid *new_head, struct gitsrc_signer *ret_signer,
                      const char **ret_stage, struct err *err) {
  int r, rewritten = 0;

  if (ret_stage)
    *ret_stage = "history";
  for (size_t i = 0; i < n_floors; i++) {
    struct err scratch = ERR_INIT;

    /* a rollback says so: "not a descendant" alone reads like a rewrite */
    if (!src->allow_rewrite && !gitsrc_oid_eq(&floors[i], new_head) &&
        gitsrc_is_descendant(src, new_head, &floors[i], &scratch) == 1)
      return err_set_src(err, -ESTALE, ERR_SRC_GIT,
                         "%s is not a descendant of applied %s but an ancestor of it: a "
                         "rollback, refused (to undo a change, commit a revert on top of "
                         "%.12s)", new_head->hex, floors[i].hex, floors[i].hex);
    r = gitsrc_check_history(src, &floors[i], new_head, err);
    if (r < 0)
      return r;
    rewritten |= r == 1;
  }
  if (ret_stage)
    *ret_stage = "verify";
  r = gitsrc_verify_range(src, policy, allowed_signers_path, revoked_keys_path,
                          n_floors ? &floors[0] : NULL, new_head, ret_signer, err);
  return r < 0 ? r : rewritten;
}
