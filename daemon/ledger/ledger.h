/* ledger: the signed, append-only applied-state ledger (docs/ledger.md).
 *
 * A ledger directory holds
 *   ledger.jsonl    one canonical JSON record per line; the exact bytes of a
 *                   line (without its newline) are an RFC 6962 leaf;
 *   checkpoint      "<origin>\n<size>\n<base64 root>\n" (C2SP tlog-checkpoint);
 *   checkpoint.sig  an SSH signature (PROTOCOL.sshsig, namespace
 *                   "egressd-ledger") of the checkpoint, so that
 *                   `ssh-keygen -Y verify -n egressd-ledger` checks it;
 *   ledger.lock     the single-writer lock (fcntl OFD lock; holds the pid).
 *
 * Write order per record: sign the checkpoint that will cover the record
 * and write it as checkpoint.sig.tmp and checkpoint.tmp (fsync both and the
 * directory), append the line and fdatasync it, then rename the signature
 * and the checkpoint into place and fsync the directory. So at most one
 * record lies beyond the signed size after a crash, it is durable only with
 * the signature its writer made for it, and ledger_open() can tell a torn
 * write (trimmed and reported) and a record nobody signed (moved aside to
 * unsigned-record-<index>.jsonl and reported) from damage inside the signed
 * history (refused, naming the first bad record).
 *
 * Hashes, roots and proofs are printed in standard base64 with padding, as in
 * the checkpoint: a record's "prev_root" equals the root line of the
 * checkpoint of size "index".
 *
 * This is a layer-1 module: it never logs. What start-up recovery did comes
 * back in struct ledger_recovery for the daemon to log. libsodium's types
 * stay inside daemon/ledger/.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "doc/doc.h"

#define LEDGER_HASH_SIZE 32
#define LEDGER_RECORD_MAX (1u << 20)   /* bytes of one record line */
#define LEDGER_ORIGIN_MAX 255
#define LEDGER_NAMESPACE "egressd-ledger"
#define LEDGER_ROTATION_NAMESPACE "egressd-ledger-key-rotation"
#define LEDGER_INDEX_NONE UINT64_MAX
#define LEDGER_B64_HASH_SIZE 45        /* base64 of 32 bytes + NUL */
#define LEDGER_FINGERPRINT_SIZE 51     /* "SHA256:" + 43 + NUL */

#define LEDGER_FILE_LOG "ledger.jsonl"
#define LEDGER_FILE_CHECKPOINT "checkpoint"
#define LEDGER_FILE_SIGNATURE "checkpoint.sig"
#define LEDGER_FILE_LOCK "ledger.lock"

/* ---- RFC 6962 Merkle tree (ledger-merkle.c) ---------------------------- */

/* SHA-256(0x00 || data) */
void ledger_hash_leaf(const void *data, size_t len, uint8_t out[LEDGER_HASH_SIZE]);
/* SHA-256(0x01 || left || right) */
void ledger_hash_node(const uint8_t left[LEDGER_HASH_SIZE], const uint8_t right[LEDGER_HASH_SIZE],
                      uint8_t out[LEDGER_HASH_SIZE]);
/* The root of the empty tree: SHA-256("") (RFC 6962, not Go tlog's zeros). */
void ledger_hash_empty(uint8_t out[LEDGER_HASH_SIZE]);

/* The right edge of a growing tree: the roots of its perfect subtrees, one
 * per set bit of size (a "compact range"). O(1) amortised per leaf, 2 KiB of
 * memory for any size; a zeroed struct is the empty tree. */
struct ledger_frontier {
  uint64_t size;
  uint8_t hashes[64][LEDGER_HASH_SIZE];   /* hashes[i]: the subtree of 2^i leaves */
};

void ledger_frontier_push(struct ledger_frontier *f, const uint8_t leaf_hash[LEDGER_HASH_SIZE]);
/* MTH of the leaves pushed so far. */
void ledger_frontier_root(const struct ledger_frontier *f, uint8_t out[LEDGER_HASH_SIZE]);

/* MTH(D[0:n]) of an array of leaf hashes. */
void ledger_tree_root(const uint8_t (*leaves)[LEDGER_HASH_SIZE], uint64_t n,
                      uint8_t out[LEDGER_HASH_SIZE]);

#define LEDGER_PROOF_MAX 130
struct ledger_proof {
  size_t n;
  uint8_t hashes[LEDGER_PROOF_MAX][LEDGER_HASH_SIZE];
};

/* RFC 6962 §2.1.1 PATH(index, D[0:size]) and §2.1.2 PROOF(m, D[0:n]) from
 * an array of at least size (n) leaf hashes. -EINVAL when index >= size, or
 * unless 0 < m <= n. */
int ledger_proof_inclusion(const uint8_t (*leaves)[LEDGER_HASH_SIZE], uint64_t size,
                           uint64_t index, struct ledger_proof *ret);
int ledger_proof_consistency(const uint8_t (*leaves)[LEDGER_HASH_SIZE], uint64_t m, uint64_t n,
                             struct ledger_proof *ret);
/* Verify as RFC 9162 §2.1.3.2 and §2.1.4.2 describe: 0, or -EBADMSG when
 * the proof does not lead to @root (the roots). m == n needs an empty proof
 * and equal roots. */
int ledger_proof_verify_inclusion(uint64_t index, uint64_t size,
                                  const uint8_t leaf_hash[LEDGER_HASH_SIZE],
                                  const struct ledger_proof *p,
                                  const uint8_t root[LEDGER_HASH_SIZE]);
int ledger_proof_verify_consistency(uint64_t m, uint64_t n,
                                    const uint8_t old_root[LEDGER_HASH_SIZE],
                                    const uint8_t new_root[LEDGER_HASH_SIZE],
                                    const struct ledger_proof *p);

/* base64 (standard, padded) of a hash into @out (LEDGER_B64_HASH_SIZE). */
const char *ledger_hash_b64(const uint8_t h[LEDGER_HASH_SIZE], char out[LEDGER_B64_HASH_SIZE]);
/* Parse exactly 32 bytes of canonical base64; -EINVAL otherwise. */
int ledger_hash_from_b64(const char *s, size_t len, uint8_t out[LEDGER_HASH_SIZE]);

/* "sha256:<64 hex>" of @data, for apply-intent "manifests_digest": the
 * caller hashes the exact bytes it sends (e.g. the rendered YAML stream). */
#define LEDGER_DIGEST_SIZE 72
void ledger_digest_sha256(const void *data, size_t len, char out[LEDGER_DIGEST_SIZE]);

/* ---- keys (ledger-key.c) ----------------------------------------------- */

/* An ed25519 public key. */
struct ledger_pubkey {
  uint8_t pk[32];
};

/* An ed25519 signing key, held in libsodium's guarded memory and wiped on
 * free. */
struct ledger_key;

/* Load an OpenSSH private key (openssh-key-v1, unencrypted, ssh-ed25519
 * only), as written by `ssh-keygen -t ed25519 -N ''` or `egressd keygen`.
 * -EINVAL with a message for any other key; a passphrase-protected key gets
 * "passphrase-protected keys are not supported; ...". The file is read with
 * a 16 KiB bound; the decoded secret is wiped. */
int ledger_key_load(const char *path, struct ledger_key **ret, struct err *err);
int ledger_key_parse(const char *data, size_t len, const char *name, struct ledger_key **ret,
                     struct err *err);
/* A fresh key from libsodium's CSPRNG; @comment (may be NULL) is stored in
 * the key file and the .pub line. */
int ledger_key_generate(const char *comment, struct ledger_key **ret, struct err *err);
/* The private key file text (openssh-key-v1, 70-column base64 as ssh-keygen
 * writes it). @out holds the secret: release it with buf_dispose_secret(). */
void ledger_key_format_private(const struct ledger_key *k, struct buf *out);
const struct ledger_pubkey *ledger_key_public(const struct ledger_key *k);
const char *ledger_key_comment(const struct ledger_key *k);
void ledger_key_free(struct ledger_key *k);

/* "ssh-ed25519 AAAA...[ comment]" (no newline). */
void ledger_pubkey_format(const struct ledger_pubkey *pk, const char *comment, struct buf *out);
/* Parse "ssh-ed25519 <base64>[ comment]"; other key types are -ENOTSUP. */
int ledger_pubkey_parse(const char *line, size_t len, struct ledger_pubkey *ret, struct err *err);
/* "SHA256:<base64 without padding>" of the key blob, as ssh-keygen -l. */
const char *ledger_pubkey_fingerprint(const struct ledger_pubkey *pk,
                                      char out[LEDGER_FINGERPRINT_SIZE]);
bool ledger_pubkey_equal(const struct ledger_pubkey *a, const struct ledger_pubkey *b);

/* Keys trusted to sign checkpoints, from a .pub file or an allowed_signers
 * file (`principals [options] ssh-ed25519 <base64> [comment]`; the options
 * namespaces=, valid-after=, valid-before= are honoured, cert-authority lines
 * and other key types are skipped). At least one usable key is required. */
struct ledger_trust;
int ledger_trust_load(const char *path, struct ledger_trust **ret, struct err *err);
int ledger_trust_parse(const char *data, size_t len, const char *name, uint64_t now_usec,
                       struct ledger_trust **ret, struct err *err);
/* Is @pk trusted for namespace "egressd-ledger"? *ret_principal (may be
 * NULL) gets the first matching principal, borrowed from @t. */
bool ledger_trust_allows(const struct ledger_trust *t, const struct ledger_pubkey *pk,
                         const char **ret_principal);
size_t ledger_trust_count(const struct ledger_trust *t);
void ledger_trust_free(struct ledger_trust *t);

/* ---- SSH signatures (ledger-sshsig.c, PROTOCOL.sshsig) ------------------ */

/* Armored SSHSIG of @msg (hash sha512), byte-identical to
 * `ssh-keygen -Y sign -n <namespace>` with the same key. Appended to @out. */
void ledger_sshsig_sign(const struct ledger_key *k, const char *ns, const void *msg, size_t len,
                        struct buf *out);
/* Check an armored SSHSIG over @msg for namespace @ns. On success
 * *ret_signer gets the signing key (the caller decides whether to trust
 * it). -EBADMSG (malformed, 64 KiB bound), -ENOTSUP (not ssh-ed25519, or a
 * hash other than sha512/sha256), -EPERM (wrong namespace or bad signature). */
int ledger_sshsig_verify(const char *armored, size_t armored_len, const char *ns, const void *msg,
                         size_t len, struct ledger_pubkey *ret_signer, struct err *err);

/* ---- checkpoints (ledger-checkpoint.c) ---------------------------------- */

struct ledger_checkpoint {
  char origin[LEDGER_ORIGIN_MAX + 1];
  uint64_t size;
  uint8_t root[LEDGER_HASH_SIZE];
};

/* "<origin>\n<size>\n<base64 root>\n", appended to @out. */
void ledger_checkpoint_format(const struct ledger_checkpoint *c, struct buf *out);
/* Parse exactly that (no extension lines, no leading zeros, canonical
 * base64, at most 1 KiB); -EBADMSG naming @name and the line otherwise. */
int ledger_checkpoint_parse(const char *text, size_t len, const char *name,
                            struct ledger_checkpoint *ret, struct err *err);
/* Is @origin a valid log origin (1-255 bytes of printable ASCII, no space,
 * no '+')? -EINVAL with a message otherwise. */
int ledger_origin_check(const char *origin, struct err *err);

/* ---- records (ledger-record.c) ----------------------------------------- */

enum ledger_type {
  LEDGER_TYPE_GENESIS,
  LEDGER_TYPE_APPLY_INTENT,
  LEDGER_TYPE_APPLY_RESULT,
  LEDGER_TYPE_DRIFT,
  LEDGER_TYPE_PRUNE,
  LEDGER_TYPE_KEY_ROTATION,
  LEDGER_TYPE_ROLLOUT,          /* an operator's act on a rollout (pause, resume) */
  LEDGER_TYPE_LEASE,            /* coordination: this member took, lost or gave up a lease */
  _LEDGER_TYPE_MAX,
};

/* "genesis", "apply-intent", "apply-result", "drift", "prune", "key-rotation",
 * "rollout" */
const char *ledger_type_name(enum ledger_type t);
int ledger_type_from_name(const char *name, enum ledger_type *ret);

/* A parsed record. Strings and nodes are borrowed from the arena (or the
 * reader) that produced it. */
struct ledger_record {
  uint64_t index;
  const char *time;                  /* RFC 3339 UTC */
  enum ledger_type type;
  uint8_t prev_root[LEDGER_HASH_SIZE];
  const struct doc_node *object;     /* the whole record (a map) */
  const char *line;                  /* the exact leaf bytes */
  size_t len;
};

/* The ledger's own keys, which callers' fields must not use. */
bool ledger_key_is_reserved(const char *key);

/* Serialise one record line (no newline) to @out: the leading keys
 * "index", "time", "type", "prev_root" in that order, then the caller's
 * fields sorted by key, nested maps sorted by key, no spaces (docs/ledger.md
 * "Canonical form"). Fails with -EINVAL when @fields is not a map, uses a
 * reserved key, or the line would exceed LEDGER_RECORD_MAX. */
int ledger_record_format(uint64_t index, const char *time, enum ledger_type type,
                         const uint8_t prev_root[LEDGER_HASH_SIZE], const struct doc_node *fields,
                         struct buf *out, struct err *err);
/* Parse and check one line: valid JSON (through doc_parse_one, bounded),
 * canonical (serialising it again gives the same bytes), the leading keys
 * well-formed, and the type's fields as docs/ledger-record.schema.json says.
 * -EBADMSG with the reason; the chain rules (index, prev_root, intents) are
 * the reader's. */
int ledger_record_parse(struct doc_arena *a, const char *line, size_t len,
                        struct ledger_record *ret, struct err *err);

/* Typed builders for the record types callers append. Every string is
 * copied into @a; NULL optional strings are left out of the record. */
struct ledger_object {
  const char *api_version;          /* optional */
  const char *kind;
  const char *namespace;            /* NULL for cluster-scoped objects */
  const char *name;
  /* apply-intent: "create" | "update" | "delete" | "unchanged"
   * apply-result: the action that was attempted
   * drift:        "reapplied" | "reported"                                  */
  const char *action;
  /* apply-result: "ok" | "failed" | "skipped"
   * prune:        "deleted" | "gone" | "failed" | "skipped"                 */
  const char *outcome;
  const char *resource_version;     /* apply-result, optional */
  const char *uid;                  /* apply-result, prune; optional */
  const char *change;               /* drift: "modified" | "deleted" */
  const char *const *fields;        /* drift: changed field paths, optional */
  size_t n_fields;
  const char *error;                /* optional */
};

struct ledger_apply_intent {
  const char *cluster, *repo, *ref, *commit, *tree;
  const char *signer_principal;     /* NULL: unsigned (allowed by policy) */
  const char *signer_key;           /* "SHA256:..." fingerprint */
  const char *manifests_digest;     /* ledger_digest_sha256() */
  const struct ledger_object *actions;
  size_t n_actions;
};

struct ledger_apply_result {
  uint64_t intent;                  /* index of the apply-intent */
  const char *cluster;
  const char *outcome;              /* "ok" | "partial" | "failed" | "interrupted" */
  const char *error;                /* optional */
  const struct ledger_object *objects;
  size_t n_objects;
};

/* drift and prune */
struct ledger_change {
  const char *cluster, *commit;
  const struct ledger_object *objects;
  size_t n_objects;
};

/* rollout: an operator paused or resumed the rollout of @target */
struct ledger_rollout_act {
  const char *action;               /* "pause" | "resume" */
  const char *target;               /* the commit being rolled out */
  const char *state;                /* the rollout's state before: "running", "halted"... */
  const char *actor;                /* who asked, e.g. "uid 0 pid 1234"; optional */
};

struct doc_node *ledger_fields_apply_intent(struct doc_arena *a, const struct ledger_apply_intent *in);
struct doc_node *ledger_fields_rollout(struct doc_arena *a, const struct ledger_rollout_act *in);
/* lease: coordination (several members, one fleet) */
struct ledger_lease_act {
  const char *action;               /* "acquired" | "lost" | "released" */
  const char *lease;                /* the Lease's name, e.g. egressd-cluster-prod-eu */
  const char *identity;             /* this member */
  const char *cluster;              /* the cluster it guards; NULL: the whole fleet (standby) */
  const char *reason;               /* optional: why it was lost or released */
};
struct doc_node *ledger_fields_lease(struct doc_arena *a, const struct ledger_lease_act *in);
struct doc_node *ledger_fields_apply_result(struct doc_arena *a, const struct ledger_apply_result *in);
struct doc_node *ledger_fields_drift(struct doc_arena *a, const struct ledger_change *in);
struct doc_node *ledger_fields_prune(struct doc_arena *a, const struct ledger_change *in);

/* ---- the writer (ledger-writer.c) --------------------------------------- */

struct ledger;

struct ledger_open_opts {
  const char *dir;
  const struct ledger_key *key;  /* copied; must be the ledger's current key */
  bool create;                   /* make the directory and the genesis record */
  const char *origin;            /* for create; NULL: "egressd/<hostname>/ledger" */
  const char *host;              /* for create; NULL: gethostname() */
  uint64_t (*clock)(void);       /* real-time µs; NULL: time_now_real_usec (tests) */
};

struct ledger_interrupted {
  uint64_t intent;               /* the apply-intent left without a result */
  uint64_t result;               /* the "interrupted" apply-result appended */
  char *cluster;
};

/* What ledger_open() found and did, for the daemon to log. */
struct ledger_recovery {
  bool created;                  /* a new ledger with its genesis record */
  bool checkpoint_completed;     /* a checkpoint replacement cut short was finished */
  bool checkpoint_discarded;     /* an unfinished new checkpoint was dropped */
  uint64_t trimmed_bytes;        /* torn tail removed beyond the signed size */
  uint64_t trimmed_offset;       /* ... from this byte offset */
  /* a durable record past the checkpoint was covered by the checkpoint its
   * writer signed before appending it (checkpoint.tmp), now installed */
  bool pending_installed;
  /* a record past the checkpoint that no signature of this ledger's key
   * covers (not written by egressd, or by a version before the signed
   * checkpoint.tmp): moved to quarantine_path and cut from ledger.jsonl,
   * never signed */
  bool quarantined;
  uint64_t quarantined_index;
  uint64_t quarantined_bytes;
  char *quarantine_path;
  uint64_t signed_size;          /* checkpoint size found at open */
  uint64_t size;                 /* records after recovery */
  struct ledger_interrupted *interrupted;
  size_t n_interrupted;
};

/* Open (and with opts->create, create) the ledger in opts->dir as its single
 * writer, then recover: finish or drop an interrupted checkpoint
 * replacement, check every record and the checkpoint, trim a torn tail
 * beyond the signed size, install the checkpoint the writer signed for a
 * durable record past the signed size, or move such a record aside when
 * nothing of this ledger's key signs it (it is never signed here), and
 * append an "interrupted" apply-result for every apply-intent without a
 * result.
 *
 * Errors: -EBUSY (another writer holds the lock; the message names its pid),
 * -EBADMSG with ERR_SRC_LEDGER (damage inside the signed size, a checkpoint
 * that does not match, unexplained data after the last record; the message
 * names the first bad record and nothing is changed), -EKEYREJECTED (the key
 * is not the ledger's current key), -ENOENT (no ledger and !create), or the
 * errno of a failed I/O. @rec (may be NULL) is filled on success; release it
 * with ledger_recovery_dispose(). */
int ledger_open(const struct ledger_open_opts *opts, struct ledger **ret,
                struct ledger_recovery *rec, struct err *err);
void ledger_recovery_dispose(struct ledger_recovery *rec);

/* Append one record of @type (apply-intent, apply-result, drift or prune)
 * with the caller's @fields (a map, e.g. from ledger_fields_*()), fdatasync
 * it and sign the new checkpoint. The record is checked exactly as a reader
 * will check it before anything is written (-EINVAL: a reserved key, a
 * schema violation, a result for no open intent, a line over
 * LEDGER_RECORD_MAX). *ret_index (may be NULL) gets its index.
 *
 * An I/O failure after the write began (-EIO, -ENOSPC...) marks the ledger
 * failed: every later append returns -EIO, and the caller must close and
 * reopen it (recovery then settles the tail). */
int ledger_append(struct ledger *l, enum ledger_type type, const struct doc_node *fields,
                  uint64_t *ret_index, struct err *err);

/* Append a key-rotation record carrying @new_key's public key and an SSH
 * signature of the rotation by the current key (namespace
 * "egressd-ledger-key-rotation"), then sign checkpoints with @new_key from
 * this record on. -EINVAL when @new_key is the current key. */
int ledger_rotate_key(struct ledger *l, const struct ledger_key *new_key, uint64_t *ret_index,
                      struct err *err);

/* The "repo" and "commit" of the last apply-intent in the ledger: the last
 * commit egressd began to write to a cluster (the daemon's rollback floor
 * when state.json does not know a newer one). NULL when there is none;
 * borrowed until the next append or ledger_close(). */
const char *ledger_last_intent_commit(const struct ledger *l, const char **ret_repo);

uint64_t ledger_size(const struct ledger *l);
/* A write failed in a way only a reopen settles (an fdatasync error, a
 * checkpoint rename that failed): ledger_append() answers -EIO until the
 * ledger is closed and opened again, whose recovery settles the tail. */
bool ledger_broken(const struct ledger *l);
void ledger_root(const struct ledger *l, uint8_t out[LEDGER_HASH_SIZE]);
const char *ledger_origin(const struct ledger *l);
/* Release the lock and free; NULL is fine. */
void ledger_close(struct ledger *l);

/* ---- reading, verifying, proving (ledger-reader.c, ledger-verify.c) ----- */

/* Stream the records of a ledger directory, checking each as the writer and
 * the verifier do (parse, canonical form, index, prev_root chain, intents,
 * key rotations). No lock is taken; a record being appended may show as an
 * incomplete last line. */
struct ledger_reader;

int ledger_reader_open(const char *dir, struct ledger_reader **ret, struct err *err);
/* 1 with *ret filled (valid until the next call), 0 at the end of the
 * records, -EBADMSG (ERR_SRC_LEDGER) at the first bad record, named by index
 * in the message and in ledger_reader_bad_index(). An incomplete last line
 * is -ENODATA. */
int ledger_reader_next(struct ledger_reader *r, struct ledger_record *ret, struct err *err);
/* For an apply-result just returned: the commit of its intent (or NULL). */
const char *ledger_reader_intent_commit(const struct ledger_reader *r);
uint64_t ledger_reader_bad_index(const struct ledger_reader *r);
void ledger_reader_free(struct ledger_reader *r);

enum ledger_check_status {
  LEDGER_CHECK_OK,
  LEDGER_CHECK_WARN,
  LEDGER_CHECK_FAIL,
};

#define LEDGER_CHECKS_MAX 8
struct ledger_check {
  const char *name;                 /* "checkpoint", "records", "root", "tail", "since" */
  enum ledger_check_status status;
  char msg[ERR_MSG_MAX];
};

struct ledger_verify_opts {
  const char *dir;
  const struct ledger_trust *trust; /* NULL: trust the genesis record's key */
  const char *since;                /* an older checkpoint file (its signature: <since>.sig) */
  /* a complete record past the signed size that no signature covers is a
   * warning instead of a failure */
  bool allow_unsigned_tail;
};

struct ledger_verify_report {
  struct ledger_check checks[LEDGER_CHECKS_MAX];
  size_t n;
  bool ok;                          /* every check OK or WARN */
  uint64_t records;                 /* valid records read */
  uint64_t signed_size;             /* size of the checkpoint */
  uint64_t bad_index;               /* first bad record, LEDGER_INDEX_NONE if none */
  char key[LEDGER_FINGERPRINT_SIZE];/* fingerprint of the checkpoint's signer */
};

/* Verify a ledger directory offline, in one pass with constant memory:
 * every leaf, the root against the signed checkpoint, the signature against
 * the trusted key (or the key the records establish), and with opts->since
 * that the older checkpoint is a prefix (an RFC 6962 consistency proof built
 * while streaming, then verified). Returns 0 when it could run (the verdict
 * is in @rep), or -errno when it could not (unreadable directory). */
int ledger_verify(const struct ledger_verify_opts *opts, struct ledger_verify_report *rep,
                  struct err *err);

/* An inclusion proof of record @index in the tree of @size records (0: the
 * signed checkpoint's size), built while streaming the ledger; the leaf hash
 * and root are returned too. -ERANGE when index >= size or size exceeds the
 * records present. */
int ledger_prove(const char *dir, uint64_t index, uint64_t size, struct ledger_proof *ret,
                 uint8_t leaf_hash[LEDGER_HASH_SIZE], uint8_t root[LEDGER_HASH_SIZE],
                 uint64_t *ret_size, struct err *err);
