/* gitsrc: the config repository as egressd sees it (layer 1).
 *
 * - A bare copy of the config repo in the state directory, polled cheaply
 *   (one ref advertisement) and fetched one ref at a time, with size bounds
 *   and a hard timeout.
 * - Commits and trees read straight from the object database into memory
 *   (no work tree).
 * - SSH-signed commits (git's gpg.format=ssh) verified without git or
 *   ssh-keygen: raw commit split as git splits it, SSHSIG checked and the
 *   key authorised by an OpenSSH allowed_signers file (daemon/ssh/).
 *
 * No libgit2, libsodium or OpenSSL type appears here. Functions return >= 0
 * on success and -errno on failure with @err filled (struct err, base/err.h);
 * they never log. Secrets (tokens, passwords, private keys) are read only in
 * the short-lived fetch helper process and never reach an err.
 *
 * docs/signing.md is the user-facing description of the verification rules.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/fileset.h"

#define GITSRC_OID_HEXSZ 40
#define GITSRC_DEFAULT_REF "refs/heads/main"
/* The local ref the fetched head is stored under (in the bare cache repo). */
#define GITSRC_FETCH_REF "refs/egressd/remote"

/* Defaults for the bounds of struct gitsrc_opts (0 selects them). */
#define GITSRC_DEFAULT_MAX_PACK_BYTES (256ull << 20)
#define GITSRC_DEFAULT_MAX_OBJECT_BYTES (8ull << 20)
#define GITSRC_DEFAULT_TIMEOUT_SEC 60u
/* Bounds of the parsers (each input is refused beyond them). */
#define GITSRC_COMMIT_MAX_BYTES (1u << 20)          /* one raw commit object */
#define GITSRC_SIGNERS_MAX_BYTES (1u << 20)         /* an allowed_signers file */
#define GITSRC_KNOWN_HOSTS_MAX_BYTES (4u << 20)     /* a known_hosts file */
#define GITSRC_VERIFY_MAX_COMMITS 10000u            /* commits checked by policy "all" */

/* A commit or tree id: 40 lowercase hex digits (SHA-1 repositories). */
struct gitsrc_oid {
  char hex[GITSRC_OID_HEXSZ + 1];
};

/* Parse 40 hex digits (any case) into @ret. -EINVAL otherwise. */
int gitsrc_oid_parse(const char *hex, struct gitsrc_oid *ret);
bool gitsrc_oid_eq(const struct gitsrc_oid *a, const struct gitsrc_oid *b);

/* How a token from token_file is sent over HTTP(S). */
enum gitsrc_token_auth {
  /* HTTP basic with the token as the password and `username` (default
   * "x-access-token") as the user: what GitHub, GitLab, Gitea and Bitbucket
   * accept for personal/deploy tokens. */
  GITSRC_TOKEN_BASIC = 0,
  /* "Authorization: Bearer <token>" (Azure DevOps, OAuth-fronted servers). */
  GITSRC_TOKEN_BEARER,
};

/* Filled by the daemon's host-config parser. Strings are borrowed for the
 * duration of gitsrc_open(), which copies them. */
struct gitsrc_opts {
  const char *url;            /* file://, git://, http(s)://, ssh:// or scp-like user@host:path */
  const char *ref;            /* NULL: GITSRC_DEFAULT_REF */
  const char *cache_dir;      /* the bare repository itself; created if missing */
  /* HTTP(S) credentials; sent preemptively (one request per poll). */
  const char *token_file;     /* a token, one line */
  enum gitsrc_token_auth token_auth;
  const char *username;       /* basic user (with password_file or a basic token); ssh user fallback */
  const char *password_file;  /* basic password, one line */
  const char *ca_file;        /* HTTPS: PEM CA bundle instead of the system store */
  /* SSH */
  const char *ssh_key;        /* private key file (OpenSSH format, no passphrase) */
  const char *ssh_known_hosts; /* NULL: ~/.ssh/known_hosts, then /etc/ssh/ssh_known_hosts */
  bool ssh_insecure_skip_host_key_check;
  /* history */
  bool allow_rewrite;         /* accept a new head that does not descend from the last applied */
  /* bounds; 0 selects the defaults above */
  uint64_t max_pack_bytes;    /* bytes received by one fetch */
  uint64_t max_object_bytes;  /* one blob or commit read from the object database */
  unsigned timeout_sec;       /* one poll or fetch, connection to completion */
};

struct gitsrc;

/* Initialise libgit2 once per process (thread-safe, idempotent). Every
 * gitsrc_open*() calls it; the CLI and daemon may call it early. */
int gitsrc_global_init(struct err *err);

/* Create or open the bare repository in opts->cache_dir and configure its
 * remote "origin" (URL and fetch refspec updated when they changed). Checks
 * the options (URL scheme, no password inside the URL, credential files for
 * the transport, no credentials over plain http://) but does not touch the
 * network. Messages quote the URL through url_redact() (base/redact.h). *ret is untouched on
 * failure. -EINVAL bad options, -ENOTDIR/-EEXIST cache_dir not a bare repo. */
int gitsrc_open(const struct gitsrc_opts *opts, struct gitsrc **ret, struct err *err);

/* Open an existing repository (work tree or bare, searching upwards from
 * @path like git) for reading and verification only; poll and fetch fail
 * with -EINVAL on it. */
int gitsrc_open_local(const char *path, struct gitsrc **ret, struct err *err);

void gitsrc_free(struct gitsrc *src);

/* The cheap check: one connection, the remote's ref advertisement, nothing
 * downloaded. *ret_remote is the remote's ref, *ret_changed tells whether it
 * differs from GITSRC_FETCH_REF (true when nothing was fetched yet).
 * -ENOENT the remote has no such ref, -ETIMEDOUT, -EACCES credentials
 * rejected, -ECONNREFUSED/-EIO transport failures, -EPERM host key rejected. */
int gitsrc_poll(struct gitsrc *src, struct gitsrc_oid *ret_remote, bool *ret_changed,
                struct err *err);

/* Fetch opts->ref into GITSRC_FETCH_REF (forced: the local ref follows the
 * remote, history checks are gitsrc_check_history()'s job). At most
 * max_pack_bytes are received (-EFBIG past that) within timeout_sec
 * (-ETIMEDOUT). On any failure GITSRC_FETCH_REF and every object it reaches
 * are left as they were. */
int gitsrc_fetch(struct gitsrc *src, struct gitsrc_oid *ret_head, struct err *err);

/* Local state: the head last fetched. -ENOENT before the first fetch. */
int gitsrc_fetched_head(struct gitsrc *src, struct gitsrc_oid *ret, struct err *err);

/* Resolve a revision ("HEAD", "main~2", an oid, a ref) to a commit id. */
int gitsrc_resolve(struct gitsrc *src, const char *rev, struct gitsrc_oid *ret, struct err *err);

/* Does @descendant have @ancestor in its history? A commit counts as its own
 * descendant. Returns 1 yes, 0 no, -errno (e.g. a commit is missing). */
int gitsrc_is_descendant(struct gitsrc *src, const struct gitsrc_oid *ancestor,
                         const struct gitsrc_oid *descendant, struct err *err);

/* The rewrite refusal. 0: @new_head descends from @last_applied (or
 * @last_applied is NULL); 1: it does not, but opts->allow_rewrite accepts it;
 * -ESTALE: it does not and rewrites are refused; the message names both
 * commits and the setting that allows it. */
int gitsrc_check_history(struct gitsrc *src, const struct gitsrc_oid *last_applied,
                         const struct gitsrc_oid *new_head, struct err *err);

/* --- commits --------------------------------------------------------------- */

struct gitsrc_trailer {
  char *key;     /* as written ("Egressd-Allow-Prune") */
  char *value;   /* trimmed, continuation lines joined with a space */
};

struct gitsrc_commit_info {
  struct gitsrc_oid id;        /* empty hex when parsed from a buffer */
  struct gitsrc_oid tree;
  struct gitsrc_oid *parents;
  size_t n_parents;
  char *author;                /* "Name <email>" */
  int64_t author_time;
  char *committer;
  int64_t commit_time;         /* seconds since the epoch */
  int commit_tz_minutes;       /* east of UTC */
  char *message;               /* the raw message (may be any encoding) */
  char *summary;               /* first line; control bytes and invalid UTF-8 as '?' */
  struct gitsrc_trailer *trailers; /* the message's trailer block, in order */
  size_t n_trailers;
  bool signed_ssh;             /* has a gpgsig header holding an SSH signature */
};

/* Parse a raw commit object (bounded by GITSRC_COMMIT_MAX_BYTES). -EBADMSG
 * with the line when it is not a well-formed commit. */
int gitsrc_commit_parse(const void *raw, size_t len, struct gitsrc_commit_info *ret,
                        struct err *err);
/* Read commit @oid from the object database and parse it. */
int gitsrc_commit_info(struct gitsrc *src, const struct gitsrc_oid *oid,
                       struct gitsrc_commit_info *ret, struct err *err);
void gitsrc_commit_info_dispose(struct gitsrc_commit_info *info);
/* The value of the last trailer named @key (case-insensitive, as git), or
 * NULL. E.g. gitsrc_commit_trailer(&info, "Egressd-Allow-Prune"). */
const char *gitsrc_commit_trailer(const struct gitsrc_commit_info *info, const char *key);

/* Every blob of the commit's tree into @out (initialised by the caller with
 * its limits), paths relative to the repository root, read straight from the
 * object database. Same selection rule as fileset_load_dir(): entries whose
 * name starts with '.' are skipped with their subtrees, symbolic links and
 * submodules (gitlinks) are skipped, and when @suffixes is not NULL only
 * files ending in one of them are read. A blob over max_object_bytes or the
 * fileset limits fails with -E2BIG before it is loaded. */
int gitsrc_tree_read(struct gitsrc *src, const struct gitsrc_oid *commit,
                     const char *const *suffixes, struct fileset *out, struct err *err);

/* --- signatures ------------------------------------------------------------ */

/* Parsed OpenSSH allowed_signers file (ssh-keygen(1) ALLOWED SIGNERS) and,
 * optionally, the revoked keys (git's gpg.ssh.revocationFile). */
struct gitsrc_signers;

/* Parse @len bytes of allowed_signers text; @name is used in errors
 * ("name:line:col: ..."). Strict: a malformed line, an unknown option or
 * `cert-authority` (unsupported) fails the whole file (-EINVAL) instead of
 * stopping there as ssh-keygen does, so a typo never silently drops a
 * signer. See ssh_signers_parse() (daemon/ssh/ssh.h). */
int gitsrc_signers_parse(const char *name, const char *text, size_t len,
                         struct gitsrc_signers **ret, struct err *err);
int gitsrc_signers_load(const char *path, struct gitsrc_signers **ret, struct err *err);
/* Add the revoked keys of a KRL or a list of public keys (what
 * `ssh-keygen -Y verify -r` reads); a key found there never verifies.
 * -EBADMSG when the file does not parse (see ssh_revoked_parse()). */
int gitsrc_signers_set_revoked(struct gitsrc_signers *signers, const char *name, const void *data,
                               size_t len, struct err *err);
int gitsrc_signers_load_revoked(struct gitsrc_signers *signers, const char *path,
                                struct err *err);
size_t gitsrc_signers_count(const struct gitsrc_signers *signers);
void gitsrc_signers_free(struct gitsrc_signers *signers);

enum gitsrc_verdict {
  GITSRC_VERDICT_GOOD = 0,
  GITSRC_VERDICT_UNSIGNED,         /* no gpgsig header */
  GITSRC_VERDICT_BAD_SIGNATURE,    /* malformed signature or it does not match the commit */
  GITSRC_VERDICT_KEY_NOT_ALLOWED,  /* the key is not in allowed_signers */
  GITSRC_VERDICT_OUTSIDE_VALIDITY, /* valid-after/valid-before exclude the commit time */
  GITSRC_VERDICT_WRONG_NAMESPACE,  /* signed for another namespace, or namespaces= excludes "git" */
  GITSRC_VERDICT_UNSUPPORTED,      /* ssh-rsa SHA-1, RSA < 2048 bits, DSA, certificates, OpenPGP/X.509 */
  GITSRC_VERDICT_REVOKED,          /* the key is in the revoked keys */
};

/* "good", "unsigned", "bad-signature", "key-not-allowed",
 * "outside-validity", "wrong-namespace", "unsupported", "revoked". */
const char *gitsrc_verdict_name(enum gitsrc_verdict v);

enum gitsrc_verify_policy {
  GITSRC_VERIFY_NONE = 0,  /* nothing checked */
  GITSRC_VERIFY_HEAD,      /* the new head is signed by an allowed signer */
  GITSRC_VERIFY_ALL,       /* every commit since the last applied one, merges included */
};

/* Parse "none" | "head" | "all". -EINVAL otherwise. */
int gitsrc_verify_policy_parse(const char *s, enum gitsrc_verify_policy *ret);

/* Who signed a verified commit: for the ledger and `egressd status`. */
struct gitsrc_signer {
  struct gitsrc_oid commit;
  char principal[256];    /* as git reports it: the allowed_signers principal */
  char key_type[32];      /* "ED25519", "RSA", "ECDSA", "ED25519-SK", "ECDSA-SK" */
  char fingerprint[64];   /* "SHA256:" + unpadded base64, as ssh-keygen prints */
};

/* Verify one raw commit object against @signers, as `git verify-commit`
 * with gpg.ssh.allowedSignersFile does (validity windows checked at the
 * committer time of the commit). Returns 0 when good (*ret_signer filled,
 * its commit id left empty); -EBADMSG when not verified, with *ret_verdict
 * (if not NULL) saying why, err->reason = gitsrc_verdict_name() and the
 * message the detail. Usable without a repository (unit tests, fuzzing). */
int gitsrc_verify_commit_buffer(const void *raw, size_t len, const struct gitsrc_signers *signers,
                                struct gitsrc_signer *ret_signer,
                                enum gitsrc_verdict *ret_verdict, struct err *err);

/* Verify commit @oid of the repository. Same contract as
 * gitsrc_verify_commit_buffer(); *ret_signer->commit is set. */
int gitsrc_verify_commit(struct gitsrc *src, const struct gitsrc_oid *oid,
                         const struct gitsrc_signers *signers, struct gitsrc_signer *ret_signer,
                         enum gitsrc_verdict *ret_verdict, struct err *err);

/* Apply @policy to the commits from @last_applied (exclusive; NULL on the
 * first sync) to @new_head: HEAD checks @new_head; ALL checks every commit
 * reachable from @new_head and not from @last_applied, oldest first (with no
 * @last_applied, ALL checks @new_head only: there is no applied history to
 * start from). Loads @allowed_signers_path and, when not NULL,
 * @revoked_keys_path (neither read for NONE). On success
 * *ret_signer describes @new_head's signer (empty for NONE). -EBADMSG names
 * the first offending commit and why; err->reason holds the verdict name.
 * -E2BIG over GITSRC_VERIFY_MAX_COMMITS commits. */
int gitsrc_verify_range(struct gitsrc *src, enum gitsrc_verify_policy policy,
                        const char *allowed_signers_path, const char *revoked_keys_path,
                        const struct gitsrc_oid *last_applied, const struct gitsrc_oid *new_head,
                        struct gitsrc_signer *ret_signer, struct err *err);

/* The daemon's whole rule for taking @new_head, shared with `egressd
 * verify-commit --since` so that both judge alike: @new_head must descend
 * from every commit of @floors (the commits already applied: the rollback
 * floor; none on the first sync), as gitsrc_check_history() decides (so
 * opts->allow_rewrite relaxes it), then gitsrc_verify_range() from
 * @floors[0] (put the newest first). An ancestor of a floor is refused as a
 * rollback, naming both commits. *ret_stage (may be NULL) gets "history" or
 * "verify": the check that failed. Returns 0; 1 when only allow_rewrite let
 * it pass; -ESTALE (rollback or rewrite), -ENOENT (a floor is not in the
 * repository) or gitsrc_verify_range()'s errors. */
int gitsrc_head_check(struct gitsrc *src, enum gitsrc_verify_policy policy,
                      const char *allowed_signers_path, const char *revoked_keys_path,
                      const struct gitsrc_oid *floors, size_t n_floors,
                      const struct gitsrc_oid *new_head, struct gitsrc_signer *ret_signer,
                      const char **ret_stage, struct err *err);

/* --- diffs ------------------------------------------------------------------ */

/* Append to @out the unified diff (git's format, 3 lines of context) that
 * turns @old_text into @new_text, with "--- a/<old_name>" and
 * "+++ b/<new_name>" headers; nothing when they are equal. */
int gitsrc_diff_text(const char *old_text, size_t old_len, const char *old_name,
                     const char *new_text, size_t new_len, const char *new_name, struct buf *out,
                     struct err *err);
