/* Offline verification and proofs: read-only, no lock, one streaming pass
 * with constant memory (a frontier and, for --since or prove, one proof
 * collector).
 *
 * The checks, each reported as one line by `egressd ledger verify`:
 *   checkpoint  the checkpoint parses, checkpoint.sig is a valid SSH
 *               signature of it by the key in effect at its size (the
 *               genesis key or the last rotation before it), and that key
 *               is trusted (--pubkey, else the genesis record's key);
 *   records     every record up to the signed size is valid (see
 *               ledger-reader.c), naming the first bad one;
 *   root        the root of the first <size> records is the signed root;
 *   tail        what lies past the signed size: nothing, or what a crash
 *               can leave (a partial line, or one durable record that the
 *               checkpoint its writer signed before appending it covers,
 *               see ledger-writer.c): a warning; a record that no signature
 *               of the ledger's key covers fails (warns with
 *               allow_unsigned_tail), and so does anything else;
 *   since       an older signed checkpoint is a prefix, by an RFC 6962
 *               consistency proof built from the stream and then verified.
 *
 * When you add a check, also touch docs/ledger.md and the man page
 * docs/man/egressd-ledger.1.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/mem.h"
#include "base/str.h"
#include "ledger/ledger-int.h"

static void check(struct ledger_verify_report *rep, const char *name,
                  enum ledger_check_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void check(struct ledger_verify_report *rep, const char *name,
                  enum ledger_check_status st, const char *fmt, ...) {
  struct ledger_check *c;
  va_list ap;

  if (rep->n >= LEDGER_CHECKS_MAX)
    return;
  c = &rep->checks[rep->n++];
  c->name = name;
  c->status = st;
  va_start(ap, fmt);
  str_vformat(c->msg, sizeof(c->msg), fmt, ap);
  va_end(ap);
  if (st == LEDGER_CHECK_FAIL)
    rep->ok = false;
}

static void bad(struct ledger_verify_report *rep, uint64_t index) {
  if (rep->bad_index == LEDGER_INDEX_NONE || index < rep->bad_index)
    rep->bad_index = index;
}

/* A signed checkpoint file and its .sig, both parsed; *sig_ok when the
 * signature is valid (signer in *signer). Problems go to @why. */
struct signed_cp {
  bool parsed, sig_ok;
  struct ledger_checkpoint cp;
  struct ledger_pubkey signer;
  struct buf text, sig;
  struct err why;
};

static void signed_cp_read(const char *cp_path, const char *sig_path, struct signed_cp *s) {
  memset(s, 0, sizeof(*s));
  if (file_read_all(cp_path, CHECKPOINT_MAX, &s->text, &s->why) < 0 ||
      ledger_checkpoint_parse(s->text.data, s->text.len, cp_path, &s->cp, &s->why) < 0)
    return;
  s->parsed = true;
  if (file_read_all(sig_path, SIGNATURE_MAX, &s->sig, &s->why) < 0)
    return;
  s->sig_ok = ledger_sshsig_verify(s->sig.data, s->sig.len, LEDGER_NAMESPACE, s->text.data,
                                   s->text.len, &s->signer, &s->why) == 0;
}

static void signed_cp_dispose(struct signed_cp *s) {
  buf_dispose(&s->text);
  buf_dispose(&s->sig);
}

/* What the stream saw at a given size. */
struct at_size {
  uint64_t size;
  bool reached;
  uint8_t root[LEDGER_HASH_SIZE];
  struct ledger_pubkey key;
  uint64_t key_index;
  char origin[LEDGER_ORIGIN_MAX + 1];
};

static void capture(struct at_size *at, const struct chain *c) {
  if (c->size != at->size)
    return;
  at->reached = true;
  ledger_frontier_root(&c->tree, at->root);
  at->key = c->key;
  at->key_index = c->key_index;
  str_copy(at->origin, sizeof(at->origin), c->origin);
}

static void verify_checkpoint(const struct ledger_verify_opts *o, const struct signed_cp *cur,
                              const struct at_size *at_cp, const struct at_size *at_end,
                              const char *dir, struct ledger_verify_report *rep) {
  /* when the records stop short of the checkpoint (the records check says
   * why), judge the signature by the last key they establish */
  const struct at_size *at = at_cp->reached ? at_cp : at_end;
  char fp[LEDGER_FINGERPRINT_SIZE], fp2[LEDGER_FINGERPRINT_SIZE];
  const char *principal = NULL;
  char *tmp = path_join(dir, CHECKPOINT_TMP);
  bool pending = access(tmp, F_OK) == 0;

  free(tmp);
  if (!cur->parsed) {
    check(rep, "checkpoint", LEDGER_CHECK_FAIL, "%s", cur->why.msg);
    return;
  }
  if (!cur->sig_ok) {
    check(rep, "checkpoint", LEDGER_CHECK_FAIL, "checkpoint.sig: %s%s", cur->why.msg,
          pending ? " (checkpoint.tmp exists: a checkpoint replacement was interrupted; "
                    "`egressd ledger recover` finishes it)" : "");
    return;
  }
  ledger_pubkey_fingerprint(&cur->signer, fp);
  str_copy(rep->key, sizeof(rep->key), fp);
  if (at->reached && !ledger_pubkey_equal(&cur->signer, &at->key)) {
    check(rep, "checkpoint", LEDGER_CHECK_FAIL, "signed by %s, not by the ledger's key %s "
          "(record %llu): the checkpoint comes from another key", fp,
          ledger_pubkey_fingerprint(&at->key, fp2), (unsigned long long)at->key_index);
    return;
  }
  if (o->trust) {
    if (!ledger_trust_allows(o->trust, &cur->signer, &principal)) {
      check(rep, "checkpoint", LEDGER_CHECK_FAIL, "signed by %s, which the --pubkey file does "
            "not trust for namespace %s", fp, LEDGER_NAMESPACE);
      return;
    }
    check(rep, "checkpoint", LEDGER_CHECK_OK, "size %llu, signed by %s%s%s (trusted by --pubkey)",
          (unsigned long long)cur->cp.size, fp, principal ? ", principal " : "",
          principal ? principal : "");
    return;
  }
  if (!at->reached) {
    check(rep, "checkpoint", LEDGER_CHECK_FAIL, "signed by %s, but no record establishes the "
          "ledger's key", fp);
    return;
  }
  check(rep, "checkpoint", LEDGER_CHECK_OK, "size %llu, signed by %s, the ledger's key (record "
        "%llu); pass --pubkey to pin it", (unsigned long long)cur->cp.size, fp,
        (unsigned long long)at->key_index);
}

/* Which signed pair of the ledger's key covers the one record past the
 * signed size (the chain @c ends with it), if any: the writer signs the
 * checkpoint of a record before appending it, so while an append is in
 * flight, or after a crash cut it short, that is checkpoint.tmp with
 * checkpoint.sig.tmp (or with checkpoint.sig between the two renames); and
 * when the append finished while we read, the checkpoint itself. NULL when
 * nothing signs it: not written by egressd's writer. */
static const char *tail_signed_by(const char *dir, const struct chain *c) {
  static const char *const pairs[][2] = {
      {CHECKPOINT_TMP, SIGNATURE_TMP},
      {CHECKPOINT_TMP, LEDGER_FILE_SIGNATURE},
      {LEDGER_FILE_CHECKPOINT, LEDGER_FILE_SIGNATURE},
  };
  uint8_t root[LEDGER_HASH_SIZE];

  ledger_frontier_root(&c->tree, root);
  for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
    char *cp = path_join(dir, pairs[i][0]), *sig = path_join(dir, pairs[i][1]);
    struct err why = ERR_INIT;
    int r = checkpoint_pair_check(cp, sig, c->origin, c->size, root, &c->key, &why);
    free(cp);
    free(sig);
    if (r == 0)
      return pairs[i][0];
  }
  return NULL;
}

static void verify_tail_record(const struct ledger_verify_opts *o, const struct chain *c,
                               bool torn, struct ledger_verify_report *rep) {
  unsigned long long index = (unsigned long long)c->size - 1;
  const char *by = tail_signed_by(o->dir, c);
  const char *more = torn ? ", and an incomplete last line follows it" : "";

  if (by) {
    check(rep, "tail", LEDGER_CHECK_WARN, "record %llu is past the signed checkpoint, signed by "
          "its writer in %s%s: what an interrupted append leaves; egressd settles it at "
          "start-up", index, by, more);
  } else if (o->allow_unsigned_tail) {
    check(rep, "tail", LEDGER_CHECK_WARN, "record %llu is past the signed checkpoint and nothing "
          "signs it%s; accepted by --allow-unsigned-tail (egressd moves it aside into %s%llu.jsonl "
          "at start-up)", index, more, QUARANTINE_PREFIX, index);
  } else {
    bad(rep, c->size - 1);
    check(rep, "tail", LEDGER_CHECK_FAIL, "record %llu is past the signed checkpoint and no "
          "signature of the ledger's key covers it%s: egressd signs every record before it "
          "appends it, so egressd did not write it (unless an older egressd, which signed after "
          "appending, crashed there); `egressd ledger recover` moves it aside into %s%llu.jsonl; "
          "--allow-unsigned-tail accepts it here", index, more, QUARANTINE_PREFIX, index);
  }
}

static void verify_since(const struct ledger_verify_opts *o, const struct signed_cp *old,
                         const struct signed_cp *cur, const struct at_size *at_old,
                         const struct at_size *at_cur, const struct proof_collector *pc,
                         struct ledger_verify_report *rep) {
  char fp[LEDGER_FINGERPRINT_SIZE], fp2[LEDGER_FINGERPRINT_SIZE], b64[LEDGER_B64_HASH_SIZE];
  uint64_t m = old->cp.size, n = cur->cp.size;

  if (!old->parsed || !old->sig_ok) {
    check(rep, "since", LEDGER_CHECK_FAIL, "%s: %s", o->since, old->why.msg);
    return;
  }
  if (m == 0 || m > n) {
    check(rep, "since", LEDGER_CHECK_FAIL, "the older checkpoint has size %llu; it must be "
          "between 1 and the current size %llu", (unsigned long long)m, (unsigned long long)n);
    return;
  }
  if (!str_eq(old->cp.origin, cur->cp.origin)) {
    check(rep, "since", LEDGER_CHECK_FAIL, "the older checkpoint is for origin '%s', not '%s'",
          old->cp.origin, cur->cp.origin);
    return;
  }
  if (!at_old->reached || !at_cur->reached) {
    check(rep, "since", LEDGER_CHECK_FAIL, "the ledger has fewer than %llu valid records",
          (unsigned long long)m);
    return;
  }
  if (!ledger_pubkey_equal(&old->signer, &at_old->key)) {
    check(rep, "since", LEDGER_CHECK_FAIL, "the older checkpoint is signed by %s, not by the key "
          "the ledger had at size %llu (%s)", ledger_pubkey_fingerprint(&old->signer, fp),
          (unsigned long long)m, ledger_pubkey_fingerprint(&at_old->key, fp2));
    return;
  }
  if (m == n) {
    if (memcmp(old->cp.root, cur->cp.root, LEDGER_HASH_SIZE) != 0) {
      bad(rep, n - 1);
      check(rep, "since", LEDGER_CHECK_FAIL, "the older checkpoint has the same size (%llu) but "
            "another root: two different histories were signed", (unsigned long long)m);
    } else {
      check(rep, "since", LEDGER_CHECK_OK, "the older checkpoint is the current one (size %llu)",
            (unsigned long long)m);
    }
    return;
  }
  if (!proof_collector_done(pc) ||
      ledger_proof_verify_consistency(m, n, old->cp.root, cur->cp.root, &pc->proof) < 0) {
    bad(rep, memcmp(at_old->root, old->cp.root, LEDGER_HASH_SIZE) != 0 ? m - 1 : n - 1);
    check(rep, "since", LEDGER_CHECK_FAIL, "the older checkpoint (size %llu, root %s) is not a "
          "prefix of this ledger: the records 0-%llu were changed after it was signed",
          (unsigned long long)m, ledger_hash_b64(old->cp.root, b64), (unsigned long long)m - 1);
    return;
  }
  check(rep, "since", LEDGER_CHECK_OK, "the checkpoint of size %llu is a prefix of size %llu "
        "(consistency proof of %zu hashes verified)", (unsigned long long)m, (unsigned long long)n,
        pc->proof.n);
}

int ledger_verify(const struct ledger_verify_opts *o, struct ledger_verify_report *rep,
                  struct err *err) {
  char *cp_path = path_join(o->dir, LEDGER_FILE_CHECKPOINT),
       *sig_path = path_join(o->dir, LEDGER_FILE_SIGNATURE), *since_sig = NULL;
  struct signed_cp cur, old = {0};
  struct at_size at_cur = {0}, at_old = {0}, at_end = {0};
  struct proof_collector *pc = xcalloc(1, sizeof(*pc));
  struct proof_ranges ranges = {0};
  struct ledger_reader *reader = NULL;
  struct ledger_record record;
  struct err rerr = ERR_INIT;
  char b64[LEDGER_B64_HASH_SIZE], b64_signed[LEDGER_B64_HASH_SIZE];
  uint64_t valid, n;
  int r, k;

  memset(rep, 0, sizeof(*rep));
  rep->ok = true;
  rep->bad_index = LEDGER_INDEX_NONE;
  r = ledger_reader_open(o->dir, &reader, err);
  if (r < 0)
    goto out;
  signed_cp_read(cp_path, sig_path, &cur);
  n = cur.parsed ? cur.cp.size : UINT64_MAX;
  rep->signed_size = cur.parsed ? cur.cp.size : 0;
  at_cur.size = n;
  if (o->since) {
    since_sig = xasprintf("%s.sig", o->since);
    signed_cp_read(o->since, since_sig, &old);
    at_old.size = old.parsed ? old.cp.size : UINT64_MAX;
    if (old.parsed && cur.parsed && old.cp.size > 0 && old.cp.size < n)
      proof_ranges_consistency(old.cp.size, n, &ranges);
  }
  proof_collector_init(pc, &ranges);

  while ((k = ledger_reader_next(reader, &record, &rerr)) > 0) {
    const struct chain *c = reader_chain(reader);
    proof_collector_push(pc, c->size - 1, reader_leaf(reader));
    capture(&at_cur, c);
    capture(&at_old, c);
  }
  if (k < 0 && k != -EBADMSG && k != -ENODATA) {
    r = err_set_errno(err, k, "cannot read the ledger in '%s'", o->dir);
    goto out;
  }
  valid = reader_chain(reader)->size;
  rep->records = valid;
  at_end.size = valid;
  capture(&at_end, reader_chain(reader));
  at_end.reached = reader_chain(reader)->have_key;

  verify_checkpoint(o, &cur, &at_cur, &at_end, o->dir, rep);

  /* records up to the signed size */
  if (cur.parsed && valid < n) {
    if (k == 0) {
      bad(rep, valid);
      check(rep, "records", LEDGER_CHECK_FAIL, "record %llu is missing: the file ends after %llu "
            "records but the signed checkpoint covers %llu (records %llu-%llu were removed)",
            (unsigned long long)valid, (unsigned long long)valid, (unsigned long long)n,
            (unsigned long long)valid, (unsigned long long)n - 1);
    } else {
      bad(rep, ledger_reader_bad_index(reader));
      check(rep, "records", LEDGER_CHECK_FAIL, "%s", rerr.msg);
    }
  } else if (!cur.parsed && k != 0) {
    bad(rep, ledger_reader_bad_index(reader));
    check(rep, "records", LEDGER_CHECK_FAIL, "%s", rerr.msg);
  } else {
    check(rep, "records", LEDGER_CHECK_OK, "%llu records: canonical lines, indexes, prev_root "
          "chain, record schema, intents and key rotations", (unsigned long long)(cur.parsed ? n
                                                                                   : valid));
  }

  /* the root */
  if (cur.parsed && at_cur.reached) {
    if (memcmp(at_cur.root, cur.cp.root, LEDGER_HASH_SIZE) != 0) {
      bad(rep, n - 1);
      check(rep, "root", LEDGER_CHECK_FAIL, "record %llu was altered, or the checkpoint "
            "replaced: the root of records 0-%llu is %s, the checkpoint says %s",
            (unsigned long long)n - 1, (unsigned long long)n - 1,
            ledger_hash_b64(at_cur.root, b64), ledger_hash_b64(cur.cp.root, b64_signed));
    } else if (!str_eq(at_cur.origin, cur.cp.origin)) {
      check(rep, "root", LEDGER_CHECK_FAIL, "the checkpoint's origin '%s' is not the ledger's "
            "'%s'", cur.cp.origin, at_cur.origin);
    } else {
      check(rep, "root", LEDGER_CHECK_OK, "records 0-%llu hash to the signed root %s",
            (unsigned long long)n - 1, ledger_hash_b64(at_cur.root, b64));
    }
  }

  /* past the signed size */
  if (cur.parsed && valid >= n) {
    if (k == -EBADMSG) {
      bad(rep, ledger_reader_bad_index(reader));
      check(rep, "tail", LEDGER_CHECK_FAIL, "%s (past the signed size, but a complete line: not a "
            "torn write)", rerr.msg);
    } else if (valid > n + 1) {
      bad(rep, n + 1);
      check(rep, "tail", LEDGER_CHECK_FAIL, "%llu records follow the signed checkpoint; egressd "
            "signs after every record, so at most one can be unsigned",
            (unsigned long long)(valid - n));
    } else if (valid == n + 1) {
      verify_tail_record(o, reader_chain(reader), k == -ENODATA, rep);
    } else if (k == -ENODATA) {
      check(rep, "tail", LEDGER_CHECK_WARN, "an incomplete last line: what an interrupted append "
            "leaves; egressd settles it at start-up");
    } else {
      check(rep, "tail", LEDGER_CHECK_OK, "nothing past the signed checkpoint");
    }
  }

  if (o->since)
    verify_since(o, &old, &cur, &at_old, &at_cur, pc, rep);
  r = 0;
out:
  ledger_reader_free(reader);
  signed_cp_dispose(&cur);
  signed_cp_dispose(&old);
  free(pc);
  free(cp_path);
  free(sig_path);
  free(since_sig);
  return r;
}

int ledger_prove(const char *dir, uint64_t index, uint64_t size, struct ledger_proof *ret,
                 uint8_t leaf_hash[LEDGER_HASH_SIZE], uint8_t root[LEDGER_HASH_SIZE],
                 uint64_t *ret_size, struct err *err) {
  struct ledger_checkpoint cp = {0};
  struct proof_collector *pc = NULL;
  struct proof_ranges ranges;
  struct ledger_reader *reader = NULL;
  struct ledger_record record;
  struct buf text = BUF_INIT;
  bool have_cp = false, have_leaf = false, have_root = false;
  char *cp_path = path_join(dir, LEDGER_FILE_CHECKPOINT);
  int r, k;

  if (size == 0 || index < size) {
    r = file_read_all(cp_path, CHECKPOINT_MAX, &text, err);
    if (r >= 0)
      r = ledger_checkpoint_parse(text.data, text.len, cp_path, &cp, err);
    if (r < 0 && size == 0)
      goto out;
    err_clear(err);
    have_cp = r >= 0;
  }
  if (size == 0)
    size = cp.size;
  if (index >= size) {
    r = err_set_src(err, -ERANGE, ERR_SRC_LEDGER, "record %llu is not in a tree of %llu records",
                    (unsigned long long)index, (unsigned long long)size);
    goto out;
  }
  r = ledger_reader_open(dir, &reader, err);
  if (r < 0)
    goto out;
  pc = xcalloc(1, sizeof(*pc));
  proof_ranges_inclusion(index, size, &ranges);
  proof_collector_init(pc, &ranges);
  while ((k = ledger_reader_next(reader, &record, err)) > 0) {
    const struct chain *c = reader_chain(reader);
    proof_collector_push(pc, c->size - 1, reader_leaf(reader));
    if (c->size - 1 == index) {
      memcpy(leaf_hash, reader_leaf(reader), LEDGER_HASH_SIZE);
      have_leaf = true;
    }
    if (c->size == size) {
      ledger_frontier_root(&c->tree, root);
      have_root = true;
      break;
    }
  }
  if (!have_root) {
    if (k < 0)
      r = k;
    else
      r = err_set_src(err, -ERANGE, ERR_SRC_LEDGER, "the ledger has %llu records, fewer than %llu",
                      (unsigned long long)reader_chain(reader)->size, (unsigned long long)size);
    goto out;
  }
  if (have_cp && cp.size == size && memcmp(cp.root, root, LEDGER_HASH_SIZE) != 0) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_LEDGER, "the ledger does not match its checkpoint; "
                    "run `egressd ledger verify`");
    goto out;
  }
  if (!have_leaf || !proof_collector_done(pc)) {   /* every leaf went through it: a bug */
    r = err_set(err, -EIO, "the proof of record %llu is incomplete", (unsigned long long)index);
    goto out;
  }
  *ret = pc->proof;
  *ret_size = size;
  r = 0;
out:
  ledger_reader_free(reader);
  buf_dispose(&text);
  free(pc);
  free(cp_path);
  return r;
}
