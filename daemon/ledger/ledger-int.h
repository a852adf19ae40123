/* ledger internals shared by the parts of daemon/ledger/; not for other
 * modules. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "ledger/ledger.h"

#define CHECKPOINT_TMP "checkpoint.tmp"
#define SIGNATURE_TMP "checkpoint.sig.tmp"
#define CHECKPOINT_MAX 1024          /* bytes of a checkpoint file */
#define SIGNATURE_MAX (64u * 1024u)  /* bytes of an armored SSH signature */
#define OPEN_INTENTS_MAX 65536       /* apply-intents awaiting their result */
#define QUARANTINE_PREFIX "unsigned-record-" /* + <index>[.<n>].jsonl, see ledger-writer.c */

/* libsodium must be initialised before its CSPRNG and guarded memory; every
 * entry point that needs them calls this (idempotent). */
int crypto_ready(struct err *err);

/* ---- SSH wire encoding (RFC 4251 §5) and base64 (ledger-wire.c) ---- */

struct wire {
  const uint8_t *p;
  size_t n;
};

int wire_u32(struct wire *w, uint32_t *ret);
/* An SSH string: uint32 length then the bytes; borrowed from the input. */
int wire_string(struct wire *w, const uint8_t **ret, size_t *ret_len);
/* Read a string and require it to equal @lit. */
bool wire_string_is(struct wire *w, const char *lit);
void wire_put_u32(struct buf *b, uint32_t v);
void wire_put_string(struct buf *b, const void *data, size_t len);
void wire_put_cstr(struct buf *b, const char *s);

/* Standard base64 with padding (libsodium), appended to @out. */
void b64_append(struct buf *out, const void *data, size_t len);
/* The same, with a newline after every @col characters and at the end. */
void b64_append_wrapped(struct buf *out, const void *data, size_t len, size_t col);
/* Decode standard padded base64 of @len characters, skipping the characters
 * in @ignore (NULL: none). *ret is malloc'd (wipe it when it held a secret).
 * -EINVAL when the text is not base64 throughout. */
int b64_decode(const char *s, size_t len, const char *ignore, uint8_t **ret, size_t *ret_len);
/* The body between "-----BEGIN <label>-----" and "-----END <label>-----"
 * lines, decoded. -EBADMSG naming @what when the armor is missing or broken. */
int armor_decode(const char *text, size_t len, const char *label, const char *what,
                 uint8_t **ret, size_t *ret_len, struct err *err);

/* Untrusted bytes made printable ('?' for the rest) for a message. */
const char *wire_printable(const uint8_t *s, size_t len, char *out, size_t size);

/* The ssh-ed25519 public key blob: string("ssh-ed25519") string(pk). */
void pubkey_blob(const struct ledger_pubkey *pk, struct buf *out);
int pubkey_from_blob(const uint8_t *blob, size_t len, struct ledger_pubkey *ret, struct err *err);

/* ---- keys ---- */

struct ledger_key *key_dup(const struct ledger_key *k);
/* Ed25519 signature of @msg (64 bytes). */
/* An armored SSHSIG by @k (ssh_sig_sign_ed25519; the secret key stays in
 * ledger-key.c). */
void key_sshsig_sign(const struct ledger_key *k, const char *ns, const void *msg, size_t len,
                     struct buf *out);

/* ---- checkpoints ---- */

/* Does the pair @cp_path + @sig_path sign exactly (@origin, @size, @root)
 * with @key? 0 yes; -ENOENT a file is missing; -EBADMSG otherwise, with the
 * reason in @why. Used for the checkpoint the writer signs before it appends
 * a record (ledger-writer.c), by recovery and by verify. */
int checkpoint_pair_check(const char *cp_path, const char *sig_path, const char *origin,
                          uint64_t size, const uint8_t root[LEDGER_HASH_SIZE],
                          const struct ledger_pubkey *key, struct err *why);

/* ---- Merkle proofs as ranges (ledger-merkle.c) ----
 * Every hash of an RFC 6962 inclusion or consistency proof is MTH(D[a:b])
 * for a range [a, b) of leaves, and the ranges of one proof are disjoint.
 * So a proof can be computed from an array of leaf hashes, or while
 * streaming the leaves with one frontier and O(log n) memory. */

struct proof_ranges {
  size_t n;
  uint64_t begin[LEDGER_PROOF_MAX], end[LEDGER_PROOF_MAX];   /* in proof order */
};

void proof_ranges_inclusion(uint64_t index, uint64_t size, struct proof_ranges *ret);
void proof_ranges_consistency(uint64_t m, uint64_t n, struct proof_ranges *ret);

/* Fills the proof's hashes while the leaves stream past. */
struct proof_collector {
  struct proof_ranges ranges;
  size_t order[LEDGER_PROOF_MAX];   /* range indexes sorted by begin */
  size_t next;                      /* position in order[] of the range to fill */
  struct ledger_frontier frontier;  /* of the range being filled */
  struct ledger_proof proof;
};

void proof_collector_init(struct proof_collector *c, const struct proof_ranges *r);
/* Leaves must be pushed in order from index 0. */
void proof_collector_push(struct proof_collector *c, uint64_t index,
                          const uint8_t leaf[LEDGER_HASH_SIZE]);
bool proof_collector_done(const struct proof_collector *c);

/* ---- records ---- */

/* Limits for parsing one record line with doc_parse_one(). */
extern const struct doc_limits record_limits;

/* Serialise from parts: the pairs of @pairs (n of them) are the fields. */
int record_format_pairs(uint64_t index, const char *time, enum ledger_type type,
                        const uint8_t prev_root[LEDGER_HASH_SIZE], const struct doc_pair *pairs,
                        size_t n, struct buf *out, struct err *err);
/* The message a key-rotation record's signature covers. */
void rotation_message(const char *origin, uint64_t index, const uint8_t prev_root[LEDGER_HASH_SIZE],
                      const char *public_key, struct buf *out);

/* ---- the chain: rules across records (ledger-chain.c) ---- */

struct open_intent {
  uint64_t index;
  char *cluster;
  char *commit;
  bool closed;
};

/* The state a reader carries from record to record. */
struct chain {
  uint64_t size;                    /* records accepted */
  struct ledger_frontier tree;
  bool have_key;
  struct ledger_pubkey key;         /* signs checkpoints of the current size */
  uint64_t key_index;               /* record that established it */
  char origin[LEDGER_ORIGIN_MAX + 1];
  struct open_intent *intents;      /* ascending index; closed ones pending compaction */
  size_t n_intents, cap_intents, n_closed;
  const char *result_commit;        /* commit of the intent the last result closed */
  char *result_commit_owned;
  char *last_intent_repo;           /* "repo" and "commit" of the last apply-intent */
  char *last_intent_commit;
};

enum chain_fault {
  CHAIN_OK,
  CHAIN_FAULT_INDEX,       /* index is not the position */
  CHAIN_FAULT_PREV_ROOT,   /* prev_root is not the root of the records before */
  CHAIN_FAULT_RULE,        /* genesis/rotation/intent rules */
};

void chain_dispose(struct chain *c);
/* Check @r as the next record; nothing changes. -EBADMSG with *fault set. */
int chain_check(const struct chain *c, const struct ledger_record *r, enum chain_fault *fault,
                struct err *err);
/* Accept @r (checked) with its leaf hash. */
void chain_accept(struct chain *c, const struct ledger_record *r,
                  const uint8_t leaf[LEDGER_HASH_SIZE]);
/* The open intents in index order (closed ones skipped by the caller). */
size_t chain_open_intents(const struct chain *c);

/* ---- reader internals (ledger-reader.c) ---- */

int reader_open_fd(int fd, const char *name, struct ledger_reader **ret);
const struct chain *reader_chain(const struct ledger_reader *r);
/* Move the chain state out (the reader is then done). */
void reader_take_chain(struct ledger_reader *r, struct chain *out);
/* Byte offset just after the last record returned (its newline). */
uint64_t reader_end(const struct ledger_reader *r);
const uint8_t *reader_leaf(const struct ledger_reader *r);
/* After -ENODATA: the bytes of the incomplete last line. After -EBADMSG:
 * whether the bad record was a complete line. */
uint64_t reader_tail_bytes(const struct ledger_reader *r);
