/* The ledger's single writer: lock, start-up recovery, crash-safe append,
 * key rotation.
 *
 * Write protocol for one record (the order is the guarantee):
 *   1. check the line as any reader will (ledger_record_parse, chain_check);
 *   2. sign the checkpoint that covers it (size + 1, the root with its leaf)
 *      and write it as checkpoint.sig.tmp and checkpoint.tmp, each fsynced,
 *      then fsync the directory: "the pending pair";
 *   3. append "<line>\n" with O_APPEND and fdatasync it;
 *   4. rename the signature, rename the checkpoint, fsync the directory.
 * Why sign before appending: recovery must never sign a record it cannot
 * prove this writer wrote. Anyone who can write ledger.jsonl can append a
 * record with a valid-looking prev_root chain; only the holder of the key
 * can make the pending pair. So a record past the signed size is durable
 * only together with its writer's signature (step 2 is durable before step
 * 3 begins), and recovery installs that signature instead of making one.
 * The pending pair is the checkpoint itself, so the on-disk format is
 * unchanged (no MAC field, no extra file kind) and the proof is checkable
 * with the public key alone (`egressd ledger verify` reports it).
 * Crash states and what ledger_open() does with them:
 *   - a partial line after the last record: beyond the signed size, trimmed;
 *   - a durable record the checkpoint does not cover yet: at most one (the
 *     checkpoint is replaced after every record); when the pending pair
 *     signs it, the pair is renamed into place (step 4 finished); when
 *     nothing of this ledger's key signs it, it was not written by this
 *     protocol: it is moved to unsigned-record-<index>.jsonl (quarantine,
 *     kept for the operator) and cut from ledger.jsonl, never signed;
 *   - checkpoint.sig.tmp present otherwise: step 2 or 3 did not finish,
 *     both temporary files are dropped and the old pair stays;
 *   - checkpoint.tmp alone: the signature was renamed, the checkpoint was
 *     not; the rename is finished.
 * Anything else inside the signed size is damage: ledger_open() refuses,
 * naming the first bad record, and changes nothing.
 *
 * A ledger written by an egressd that signed after appending stays
 * readable: only a record such a writer left unsigned by a crash is moved
 * aside instead of signed (docs/ledger.md, "Crash safety").
 *
 * One writer: an fcntl OFD write lock on ledger.lock, which also holds the
 * holder's pid for the error message of the next one.
 *
 * When you change the protocol, also touch docs/ledger.md ("Crash safety"),
 * ledger-verify.c (the tail check), the crash test
 * (tests/integration/test_ledger_crash.py) and the recovery unit tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "ledger/ledger-int.h"

struct ledger {
  char *dir, *log_path, *cp_path, *sig_path, *cp_tmp, *sig_tmp, *lock_path;
  int log_fd, lock_fd;
  struct ledger_key *key;
  struct ledger_key *next_key;   /* during ledger_rotate_key() */
  struct chain chain;
  uint64_t log_end;              /* bytes of ledger.jsonl */
  bool failed;
  uint64_t (*clock)(void);
};

static void ledger_free(struct ledger *l) {
  if (!l)
    return;
  if (l->log_fd >= 0)
    close(l->log_fd);
  if (l->lock_fd >= 0)
    close(l->lock_fd);   /* releases the OFD lock */
  ledger_key_free(l->key);
  ledger_key_free(l->next_key);
  chain_dispose(&l->chain);
  free(l->dir);
  free(l->log_path);
  free(l->cp_path);
  free(l->sig_path);
  free(l->cp_tmp);
  free(l->sig_tmp);
  free(l->lock_path);
  free(l);
}

void ledger_close(struct ledger *l) { ledger_free(l); }

uint64_t ledger_size(const struct ledger *l) { return l->chain.size; }
bool ledger_broken(const struct ledger *l) { return l->failed; }
const char *ledger_last_intent_commit(const struct ledger *l, const char **ret_repo) {
  if (ret_repo)
    *ret_repo = l->chain.last_intent_repo;
  return l->chain.last_intent_commit;
}
const char *ledger_origin(const struct ledger *l) { return l->chain.origin; }
void ledger_root(const struct ledger *l, uint8_t out[LEDGER_HASH_SIZE]) {
  ledger_frontier_root(&l->chain.tree, out);
}

void ledger_recovery_dispose(struct ledger_recovery *rec) {
  if (!rec)
    return;
  free(rec->quarantine_path);
  for (size_t i = 0; i < rec->n_interrupted; i++)
    free(rec->interrupted[i].cluster);
  free(rec->interrupted);
  memset(rec, 0, sizeof(*rec));
}

/* ---- lock ---- */

static int take_lock(struct ledger *l, struct err *err) {
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  char pid[32];

  l->lock_fd = open(l->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (l->lock_fd < 0)
    return err_set_errno(err, -errno, "cannot open the lock file '%s'", l->lock_path);
  if (fcntl(l->lock_fd, F_OFD_SETLK, &fl) < 0) {
    ssize_t n;
    int e = errno;

    if (e != EAGAIN && e != EACCES)
      return err_set_errno(err, -e, "cannot lock '%s'", l->lock_path);
    n = pread(l->lock_fd, pid, sizeof(pid) - 1, 0);
    pid[n > 0 ? n : 0] = '\0';
    pid[strcspn(pid, "\n")] = '\0';
    if (pid[0])
      return err_set_src(err, -EBUSY, ERR_SRC_LEDGER, "the ledger in '%s' is in use by another "
                         "writer (pid %s); only one egressd may write a ledger", l->dir, pid);
    return err_set_src(err, -EBUSY, ERR_SRC_LEDGER, "the ledger in '%s' is in use by another "
                       "writer; only one egressd may write a ledger", l->dir);
  }
  str_format(pid, sizeof(pid), "%ld\n", (long)getpid());
  if (ftruncate(l->lock_fd, 0) < 0 || pwrite(l->lock_fd, pid, strlen(pid), 0) < 0)
    return err_set_errno(err, -errno, "cannot write the lock file '%s'", l->lock_path);
  return 0;
}

/* ---- checkpoint ---- */

/* Write @data to @path and fsync it; the caller renames it into place. Not
 * file_write_atomic(): the two files of a checkpoint are renamed as one
 * step whose temporary names recovery must know. */
static int write_synced(const char *path, const void *data, size_t len, struct err *err) {
  /* never opens what is there (a FIFO would block, a symlink redirect) */
  int fd = file_create_fresh(path, 0644, err), r;

  if (fd < 0)
    return fd;
  r = fd_write_all(fd, data, len);
  if (r < 0)
    err_set_errno(err, r, "cannot write '%s'", path);
  else if (fsync(fd) < 0)
    r = err_set_errno(err, -errno, "cannot sync '%s'", path);
  if (close(fd) < 0 && r >= 0)
    r = err_set_errno(err, -errno, "cannot close '%s'", path);
  return r;
}

/* Step 2 of the protocol: sign the checkpoint of the records so far plus
 * the leaf @leaf with @key and make the pair durable, directory entries
 * included, before the record is appended. */
static int write_pending(struct ledger *l, const struct ledger_key *key, const char *origin,
                         const uint8_t leaf[LEDGER_HASH_SIZE], struct err *err) {
  struct ledger_frontier *tree = xmalloc(sizeof(*tree));
  struct ledger_checkpoint cp;
  struct buf text = BUF_INIT, sig = BUF_INIT;
  int r;

  *tree = l->chain.tree;
  ledger_frontier_push(tree, leaf);
  str_copy(cp.origin, sizeof(cp.origin), origin);
  cp.size = l->chain.size + 1;
  ledger_frontier_root(tree, cp.root);
  ledger_checkpoint_format(&cp, &text);
  ledger_sshsig_sign(key, LEDGER_NAMESPACE, text.data, text.len, &sig);
  r = write_synced(l->sig_tmp, sig.data, sig.len, err);
  if (r >= 0)
    r = write_synced(l->cp_tmp, text.data, text.len, err);
  if (r >= 0)
    r = dir_fsync_parent(l->cp_path, err);
  buf_dispose(&text);
  buf_dispose(&sig);
  free(tree);
  return r;
}

/* Step 4: the pending pair becomes the checkpoint. */
static int install_pending(struct ledger *l, struct err *err) {
  if (rename(l->sig_tmp, l->sig_path) < 0)
    return err_set_errno(err, -errno, "cannot rename '%s'", l->sig_tmp);
  if (rename(l->cp_tmp, l->cp_path) < 0)
    return err_set_errno(err, -errno, "cannot rename '%s'", l->cp_tmp);
  return dir_fsync_parent(l->cp_path, err);
}

/* Remove the pending pair; false when a file could not be removed. */
static bool drop_pending(struct ledger *l) {
  bool ok = !(unlink(l->sig_tmp) < 0 && errno != ENOENT);
  return !(unlink(l->cp_tmp) < 0 && errno != ENOENT) && ok;
}

/* ---- append ---- */

static int append_record(struct ledger *l, enum ledger_type type, const struct doc_node *fields,
                         uint64_t *ret_index, struct err *err) {
  struct doc_arena *a = doc_arena_new();
  struct buf line = BUF_INIT;
  struct ledger_record rec;
  struct err why = ERR_INIT;
  enum chain_fault fault;
  uint8_t root[LEDGER_HASH_SIZE], leaf[LEDGER_HASH_SIZE];
  char time[32];
  uint64_t index = l->chain.size;
  int r;

  time_format_rfc3339(time, sizeof(time), l->clock());
  ledger_frontier_root(&l->chain.tree, root);
  r = ledger_record_format(index, time, type, root, fields, &line, err);
  if (r < 0)
    goto out;
  /* exactly the checks a reader makes, before a byte is written */
  if (ledger_record_parse(a, line.data, line.len, &rec, &why) < 0 ||
      chain_check(&l->chain, &rec, &fault, &why) < 0) {
    r = err_set_src(err, -EINVAL, ERR_SRC_LEDGER, "cannot append this %s record: %s",
                    ledger_type_name(type), why.msg);
    goto out;
  }
  ledger_hash_leaf(line.data, line.len, leaf);
  /* a key-rotation record is covered by the new key's checkpoint; the
   * genesis record names the origin */
  r = write_pending(l, type == LEDGER_TYPE_KEY_ROTATION ? l->next_key : l->key,
                    type == LEDGER_TYPE_GENESIS ? doc_map_str(rec.object, "origin")
                                                : l->chain.origin,
                    leaf, err);
  if (r < 0) {
    if (!drop_pending(l))
      l->failed = true;
    goto out;
  }
  buf_putc(&line, '\n');
  r = fd_write_all(l->log_fd, line.data, line.len);
  if (r < 0) {
    err_set_errno(err, r, "cannot append to '%s'", l->log_path);
    /* take back a partial line and its signature; if that fails, recovery
     * will */
    if (ftruncate(l->log_fd, (off_t)l->log_end) < 0 || !drop_pending(l))
      l->failed = true;
    goto out;
  }
  if (fdatasync(l->log_fd) < 0) {
    /* after a failed fdatasync the page cache state is unknown (PostgreSQL's
     * "fsyncgate"): stop writing until a reopen re-reads the file */
    r = err_set_errno(err, -errno, "cannot sync '%s'", l->log_path);
    l->failed = true;
    goto out;
  }
  l->log_end += line.len;
  chain_accept(&l->chain, &rec, leaf);
  if (type == LEDGER_TYPE_KEY_ROTATION) {
    /* from this record on, checkpoints are signed by the new key */
    ledger_key_free(l->key);
    l->key = l->next_key;
    l->next_key = NULL;
  }
  r = install_pending(l, err);
  if (r < 0) {
    l->failed = true;
    goto out;
  }
  if (ret_index)
    *ret_index = index;
out:
  buf_dispose(&line);
  doc_arena_free(a);
  return r;
}

static int usable(const struct ledger *l, struct err *err) {
  if (l->failed)
    return err_set_src(err, -EIO, ERR_SRC_LEDGER, "the ledger in '%s' had a write failure; "
                       "close and reopen it to recover", l->dir);
  return 0;
}

int ledger_append(struct ledger *l, enum ledger_type type, const struct doc_node *fields,
                  uint64_t *ret_index, struct err *err) {
  int r = usable(l, err);

  if (r < 0)
    return r;
  if (type == LEDGER_TYPE_GENESIS || type == LEDGER_TYPE_KEY_ROTATION || type >= _LEDGER_TYPE_MAX)
    return err_set(err, -EINVAL, "%s records are written by the ledger itself",
                   ledger_type_name(type));
  return append_record(l, type, fields, ret_index, err);
}

int ledger_rotate_key(struct ledger *l, const struct ledger_key *new_key, uint64_t *ret_index,
                      struct err *err) {
  struct doc_arena *a;
  struct doc_node *fields;
  struct buf pub = BUF_INIT, msg = BUF_INIT, sig = BUF_INIT;
  uint8_t root[LEDGER_HASH_SIZE];
  int r = usable(l, err);

  if (r < 0)
    return r;
  if (ledger_pubkey_equal(ledger_key_public(new_key), ledger_key_public(l->key)))
    return err_set(err, -EINVAL, "the new key is the ledger's current key");
  a = doc_arena_new();
  ledger_pubkey_format(ledger_key_public(new_key), NULL, &pub);
  ledger_frontier_root(&l->chain.tree, root);
  rotation_message(l->chain.origin, l->chain.size, root, pub.data, &msg);
  ledger_sshsig_sign(l->key, LEDGER_ROTATION_NAMESPACE, msg.data, msg.len, &sig);
  fields = doc_new_map(a);
  doc_map_set(a, fields, "public_key", doc_new_str(a, pub.data));
  doc_map_set(a, fields, "signature", doc_new_str(a, sig.data));
  l->next_key = key_dup(new_key);
  r = append_record(l, LEDGER_TYPE_KEY_ROTATION, fields, ret_index, err);
  ledger_key_free(l->next_key);
  l->next_key = NULL;
  buf_dispose(&pub);
  buf_dispose(&msg);
  buf_dispose(&sig);
  doc_arena_free(a);
  return r;
}

/* ---- open and recover ---- */

static int genesis(struct ledger *l, const struct ledger_open_opts *o, struct err *err) {
  struct doc_arena *a = doc_arena_new();
  struct doc_node *fields = doc_new_map(a);
  struct buf pub = BUF_INIT;
  char host[256] = "", *origin;
  int r;

  if (o->host)
    str_copy(host, sizeof(host), o->host);
  else if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
    str_copy(host, sizeof(host), "localhost");
  origin = o->origin ? xstrdup(o->origin) : xasprintf("egressd/%s/ledger", host);
  r = ledger_origin_check(origin, err);
  if (r < 0) {
    err_prefix(err, "cannot create the ledger");
    goto out;
  }
  ledger_pubkey_format(ledger_key_public(l->key), NULL, &pub);
  doc_map_set(a, fields, "origin", doc_new_str(a, origin));
  doc_map_set(a, fields, "public_key", doc_new_str(a, pub.data));
  doc_map_set(a, fields, "host", doc_new_str(a, host));
  doc_map_set(a, fields, "version", doc_new_int(a, 1));
  r = append_record(l, LEDGER_TYPE_GENESIS, fields, NULL, err);
out:
  free(origin);
  buf_dispose(&pub);
  doc_arena_free(a);
  return r;
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

/* The checkpoint recovery must check: the renamed signature with the
 * not-yet-renamed checkpoint.tmp when a replacement stopped between its two
 * renames, else the installed pair. */
static int read_checkpoint(struct ledger *l, bool *have, struct buf *text, struct buf *sig,
                           bool *pending_rename, struct err *err) {
  const char *cp_path = l->cp_path;
  int r;

  *pending_rename = !exists(l->sig_tmp) && exists(l->cp_tmp);
  if (*pending_rename)
    cp_path = l->cp_tmp;
  r = file_read_all(cp_path, CHECKPOINT_MAX, text, err);
  if (r == -ENOENT) {
    err_clear(err);
    *have = false;
    if (exists(l->sig_path))
      return err_set_src(err, -EBADMSG, ERR_SRC_LEDGER, "'%s' exists without '%s'", l->sig_path,
                         l->cp_path);
    return 0;
  }
  if (r < 0)
    return r;
  r = file_read_all(l->sig_path, SIGNATURE_MAX, sig, err);
  if (r == -ENOENT)
    return err_set_src(err, -EBADMSG, ERR_SRC_LEDGER, "'%s' is missing: the checkpoint is not "
                       "signed", l->sig_path);
  *have = r >= 0;
  return r;
}

static int damaged(struct err *err, const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int damaged(struct err *err, const char *dir, const char *fmt, ...) {
  char msg[ERR_MSG_MAX];
  va_list ap;

  va_start(ap, fmt);
  str_vformat(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return err_set_src(err, -EBADMSG, ERR_SRC_LEDGER, "ledger '%s' is damaged inside its signed "
                     "history: %s; egressd changes nothing and stops (see `egressd ledger verify "
                     "--dir %s` and docs/ledger.md, \"When verification fails\")",
                     dir, msg, dir);
}

/* What examine() decided recovery does past the signed size. */
struct tail_plan {
  bool trim;                     /* cut a torn last line */
  bool install;                  /* install the pending pair: it signs the unsigned record */
  bool quarantine;               /* move everything from quarantine_at on aside */
  uint64_t quarantine_at;        /* byte offset just after the last signed record */
};

/* Scan every record and check the checkpoint; decide what recovery may do.
 * Nothing is written here. */
static int examine(struct ledger *l, struct ledger_recovery *rec, struct tail_plan *plan,
                   struct err *err) {
  struct buf text = BUF_INIT, sig = BUF_INIT;
  struct ledger_checkpoint cp = {0};
  struct ledger_reader *reader = NULL;
  struct ledger_record record;
  struct ledger_pubkey key_at_cp = {0}, signer;
  struct err rerr = ERR_INIT, serr = ERR_INIT;
  uint8_t root_at_cp[LEDGER_HASH_SIZE];
  char origin_at_cp[LEDGER_ORIGIN_MAX + 1] = "", fp1[LEDGER_FINGERPRINT_SIZE],
                                               fp2[LEDGER_FINGERPRINT_SIZE];
  bool have_cp = false, pending_rename = false, at_cp = false;
  uint64_t valid, signed_end = 0;
  int r, k;

  memset(plan, 0, sizeof(*plan));
  r = read_checkpoint(l, &have_cp, &text, &sig, &pending_rename, err);
  if (r < 0)
    goto out;
  if (have_cp) {
    r = ledger_checkpoint_parse(text.data, text.len, l->cp_path, &cp, err);
    if (r < 0)
      goto out;
    if (cp.size == 0) {
      r = damaged(err, l->dir, "the checkpoint covers no records (egressd never signs an "
                  "empty ledger)");
      goto out;
    }
  }
  r = reader_open_fd(l->log_fd, l->log_path, &reader);
  if (r < 0) {
    r = err_set_errno(err, r, "cannot read '%s'", l->log_path);
    goto out;
  }
  while ((k = ledger_reader_next(reader, &record, &rerr)) > 0) {
    const struct chain *c = reader_chain(reader);
    if (have_cp && c->size == cp.size) {
      at_cp = true;
      ledger_frontier_root(&c->tree, root_at_cp);
      key_at_cp = c->key;
      str_copy(origin_at_cp, sizeof(origin_at_cp), c->origin);
      signed_end = reader_end(reader);
    }
  }
  valid = reader_chain(reader)->size;
  if (k < 0 && k != -EBADMSG && k != -ENODATA) {
    r = err_set_errno(err, k, "cannot read '%s'", l->log_path);
    goto out;
  }
  if (have_cp) {
    if (valid < cp.size) {
      if (k == 0)
        r = damaged(err, l->dir, "record %llu is missing: the file ends after %llu records but "
                    "the signed checkpoint covers %llu (records %llu-%llu were removed)",
                    (unsigned long long)valid, (unsigned long long)valid,
                    (unsigned long long)cp.size, (unsigned long long)valid,
                    (unsigned long long)cp.size - 1);
      else
        r = damaged(err, l->dir, "%s", rerr.msg);
      goto out;
    }
    if (!at_cp || memcmp(root_at_cp, cp.root, LEDGER_HASH_SIZE) != 0) {
      r = damaged(err, l->dir, "record %llu was altered, or the checkpoint replaced: the root of "
                  "records 0-%llu is not the signed root", (unsigned long long)cp.size - 1,
                  (unsigned long long)cp.size - 1);
      goto out;
    }
    if (!str_eq(origin_at_cp, cp.origin)) {
      r = damaged(err, l->dir, "the checkpoint's origin '%s' is not the ledger's '%s'", cp.origin,
                  origin_at_cp);
      goto out;
    }
    if (ledger_sshsig_verify(sig.data, sig.len, LEDGER_NAMESPACE, text.data, text.len, &signer,
                             &serr) < 0) {
      r = damaged(err, l->dir, "checkpoint.sig does not sign the checkpoint: %s", serr.msg);
      goto out;
    }
    if (!ledger_pubkey_equal(&signer, &key_at_cp)) {
      r = damaged(err, l->dir, "the checkpoint is signed by %s, not by the ledger's key %s",
                  ledger_pubkey_fingerprint(&signer, fp1), ledger_pubkey_fingerprint(&key_at_cp, fp2));
      goto out;
    }
    rec->signed_size = cp.size;
  } else if (valid > 1 || (valid == 1 && k == -EBADMSG)) {
    r = damaged(err, l->dir, "'%s' is missing but the ledger has %llu records", l->cp_path,
                (unsigned long long)valid);
    goto out;
  }
  /* beyond the signed size */
  if (k == -EBADMSG) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_LEDGER, "ledger '%s': %s; it lies beyond the signed "
                    "size (%llu records) but is a complete line, not a torn write: egressd "
                    "stops; inspect it and remove it by hand if it is garbage", l->dir, rerr.msg,
                    (unsigned long long)rec->signed_size);
    goto out;
  }
  if (valid > rec->signed_size + 1) {
    r = damaged(err, l->dir, "%llu records follow the signed checkpoint (size %llu); egressd "
                "signs after every record, so at most one can be unsigned",
                (unsigned long long)(valid - rec->signed_size),
                (unsigned long long)rec->signed_size);
    goto out;
  }
  if (valid == rec->signed_size + 1) {
    /* one record past the signed size: this writer's only when the pending
     * pair signs exactly the records present with the key in effect */
    const struct chain *c = reader_chain(reader);
    uint8_t root[LEDGER_HASH_SIZE];

    ledger_frontier_root(&c->tree, root);
    if (exists(l->sig_tmp) && checkpoint_pair_check(l->cp_tmp, l->sig_tmp, c->origin, valid, root,
                                                    &c->key, &serr) == 0) {
      plan->install = true;
    } else {
      plan->quarantine = true;
      plan->quarantine_at = signed_end;
    }
  }
  if (k == -ENODATA && !plan->quarantine) {
    plan->trim = true;
    rec->trimmed_offset = reader_end(reader);
    rec->trimmed_bytes = reader_tail_bytes(reader);
  }
  reader_take_chain(reader, &l->chain);
  l->log_end = reader_end(reader);   /* the torn tail, if any, is cut here */
  if (l->chain.have_key && !ledger_pubkey_equal(&l->chain.key, ledger_key_public(l->key))) {
    r = err_set_src(err, -EKEYREJECTED, ERR_SRC_LEDGER, "the signing key %s is not the key of "
                    "ledger '%s' (%s, record %llu); use the key that signs it",
                    ledger_pubkey_fingerprint(ledger_key_public(l->key), fp1), l->dir,
                    ledger_pubkey_fingerprint(&l->chain.key, fp2),
                    (unsigned long long)l->chain.key_index);
    goto out;
  }
  rec->checkpoint_completed = pending_rename;
  rec->checkpoint_discarded = !plan->install && exists(l->sig_tmp);
  r = 0;
out:
  ledger_reader_free(reader);
  buf_dispose(&text);
  buf_dispose(&sig);
  return r;
}

/* Move what lies from @offset to the end of ledger.jsonl (one record
 * nothing signs, and whatever follows it) to unsigned-record-<index>.jsonl
 * next to it, durably, then cut it from the ledger. The operator decides
 * what it was; egressd never signs it. */
static int quarantine(struct ledger *l, struct ledger_recovery *rec, uint64_t offset,
                      struct err *err) {
  struct stat st;
  char name[96], *path = NULL;
  uint8_t *data = NULL;
  uint64_t index = l->chain.size - 1, len;
  int fd = -1, r = 0;

  if (fstat(l->log_fd, &st) < 0)
    return err_set_errno(err, -errno, "cannot stat '%s'", l->log_path);
  if ((uint64_t)st.st_size < offset || (uint64_t)st.st_size - offset > 2 * (LEDGER_RECORD_MAX + 1))
    return err_set_src(err, -EBADMSG, ERR_SRC_LEDGER, "ledger '%s': %llu bytes past the signed "
                       "records, more than one record can be", l->dir,
                       (unsigned long long)((uint64_t)st.st_size - offset));
  len = (uint64_t)st.st_size - offset;
  data = xmalloc(len + 1);
  for (uint64_t got = 0; got < len;) {
    ssize_t n = pread(l->log_fd, data + got, len - got, (off_t)(offset + got));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      r = err_set_errno(err, n < 0 ? -errno : -EIO, "cannot read '%s'", l->log_path);
      goto out;
    }
    got += (uint64_t)n;
  }
  for (unsigned n = 0; n < 100 && fd < 0; n++) {
    if (n == 0)
      str_format(name, sizeof(name), QUARANTINE_PREFIX "%llu.jsonl", (unsigned long long)index);
    else
      str_format(name, sizeof(name), QUARANTINE_PREFIX "%llu.%u.jsonl", (unsigned long long)index,
                 n);
    free(path);
    path = path_join(l->dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno != EEXIST) {
      r = err_set_errno(err, -errno, "cannot create '%s'", path);
      goto out;
    }
  }
  if (fd < 0) {
    r = err_set_src(err, -EEXIST, ERR_SRC_LEDGER, "ledger '%s': 100 files %s%llu.*.jsonl exist "
                    "already; look at them and move them away", l->dir, QUARANTINE_PREFIX,
                    (unsigned long long)index);
    goto out;
  }
  if ((r = fd_write_all(fd, data, len)) < 0) {
    err_set_errno(err, r, "cannot write '%s'", path);
    goto out;
  }
  if (fsync(fd) < 0) {
    r = err_set_errno(err, -errno, "cannot sync '%s'", path);
    goto out;
  }
  if ((r = dir_fsync_parent(path, err)) < 0)
    goto out;
  if (ftruncate(l->log_fd, (off_t)offset) < 0 || fsync(l->log_fd) < 0) {
    r = err_set_errno(err, -errno, "cannot cut the unsigned record from '%s'", l->log_path);
    goto out;
  }
  l->log_end = offset;
  rec->quarantined = true;
  rec->quarantined_index = index;
  rec->quarantined_bytes = len;
  rec->quarantine_path = path;
  path = NULL;
out:
  if (fd >= 0)
    close(fd);
  free(data);
  free(path);
  return r;
}

static int close_interrupted(struct ledger *l, struct ledger_recovery *rec, struct err *err) {
  size_t n = 0;
  uint64_t *open = NULL;
  int r = 0;

  /* collect first: appending results changes the open set */
  open = xmalloc((chain_open_intents(&l->chain) + 1) * sizeof(*open));
  for (size_t i = 0; i < l->chain.n_intents; i++)
    if (!l->chain.intents[i].closed)
      open[n++] = l->chain.intents[i].index;
  if (n)
    rec->interrupted = xcalloc(n, sizeof(*rec->interrupted));
  for (size_t i = 0; i < n && r >= 0; i++) {
    struct doc_arena *a = doc_arena_new();
    const struct open_intent *oi = NULL;
    struct ledger_apply_result res = {0};
    uint64_t index;

    for (size_t j = 0; j < l->chain.n_intents; j++)
      if (l->chain.intents[j].index == open[i] && !l->chain.intents[j].closed)
        oi = &l->chain.intents[j];
    res.intent = open[i];
    res.cluster = oi->cluster;
    res.outcome = "interrupted";
    res.error = "egressd stopped before it recorded the result; found at start-up";
    rec->interrupted[rec->n_interrupted].cluster = xstrdup(oi->cluster);
    rec->interrupted[rec->n_interrupted].intent = open[i];
    r = append_record(l, LEDGER_TYPE_APPLY_RESULT, ledger_fields_apply_result(a, &res), &index,
                      err);
    if (r >= 0)
      rec->interrupted[rec->n_interrupted].result = index;
    rec->n_interrupted++;
    doc_arena_free(a);
  }
  free(open);
  return r;
}

static int recover(struct ledger *l, const struct ledger_open_opts *o, struct ledger_recovery *rec,
                   struct err *err) {
  struct tail_plan plan;
  int r;

  r = examine(l, rec, &plan, err);
  if (r < 0)
    return r;
  /* from here on every step is one that a crash may interrupt and the next
   * start-up finishes */
  if (plan.quarantine) {
    r = quarantine(l, rec, plan.quarantine_at, err);
    if (r < 0)
      return r;
    /* the records are now the signed ones: check them again from the
     * start, which also settles any pending pair */
    chain_dispose(&l->chain);
    r = examine(l, rec, &plan, err);
    if (r < 0)
      return r;
    if (plan.quarantine || plan.install)   /* the file changed under the lock: a bug */
      return err_set(err, -EIO, "ledger '%s' still has an unsigned record after moving it "
                     "aside", l->dir);
  }
  if (rec->checkpoint_completed) {
    if (rename(l->cp_tmp, l->cp_path) < 0)
      return err_set_errno(err, -errno, "cannot rename '%s'", l->cp_tmp);
    r = dir_fsync_parent(l->cp_path, err);
    if (r < 0)
      return r;
  } else if (rec->checkpoint_discarded) {
    if (!drop_pending(l))
      return err_set_errno(err, -errno, "cannot remove the temporary checkpoint files in '%s'",
                           l->dir);
    r = dir_fsync_parent(l->cp_path, err);
    if (r < 0)
      return r;
  }
  if (plan.install) {
    r = install_pending(l, err);
    if (r < 0)
      return r;
    rec->pending_installed = true;
  }
  if (plan.trim) {
    if (ftruncate(l->log_fd, (off_t)rec->trimmed_offset) < 0 || fsync(l->log_fd) < 0)
      return err_set_errno(err, -errno, "cannot trim the torn tail of '%s'", l->log_path);
    l->log_end = rec->trimmed_offset;
  }
  if (l->chain.size == 0) {
    if (!o->create)
      return err_set_src(err, -ENOENT, ERR_SRC_LEDGER, "the ledger in '%s' has no records",
                         l->dir);
    r = genesis(l, o, err);
    if (r < 0)
      return r;
    rec->created = true;
  }
  r = close_interrupted(l, rec, err);
  rec->size = l->chain.size;
  return r;
}

int ledger_open(const struct ledger_open_opts *o, struct ledger **ret, struct ledger_recovery *rec,
                struct err *err) {
  struct ledger_recovery local = {0};
  struct ledger *l;
  struct stat st;
  int r;

  if (!o || str_is_empty(o->dir) || !o->key)
    return err_set(err, -EINVAL, "ledger_open() needs a directory and a key");
  r = crypto_ready(err);
  if (r < 0)
    return r;
  if (o->create) {
    r = dir_make_all(o->dir, 0700, err);
    if (r < 0)
      return r;
  }
  if (stat(o->dir, &st) < 0)
    return err_set_errno(err, -errno, "no ledger in '%s'", o->dir);
  if (!S_ISDIR(st.st_mode))
    return err_set(err, -ENOTDIR, "'%s' is not a directory", o->dir);

  l = xcalloc(1, sizeof(*l));
  l->log_fd = l->lock_fd = -1;
  l->dir = xstrdup(o->dir);
  l->log_path = path_join(o->dir, LEDGER_FILE_LOG);
  l->cp_path = path_join(o->dir, LEDGER_FILE_CHECKPOINT);
  l->sig_path = path_join(o->dir, LEDGER_FILE_SIGNATURE);
  l->cp_tmp = path_join(o->dir, CHECKPOINT_TMP);
  l->sig_tmp = path_join(o->dir, SIGNATURE_TMP);
  l->lock_path = path_join(o->dir, LEDGER_FILE_LOCK);
  l->key = key_dup(o->key);
  l->clock = o->clock ? o->clock : time_now_real_usec;

  r = take_lock(l, err);
  if (r < 0)
    goto fail;
  l->log_fd = open(l->log_path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
  if (l->log_fd < 0 && errno == ENOENT && o->create && !exists(l->cp_path)) {
    l->log_fd = open(l->log_path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                     0644);
    if (l->log_fd >= 0 && (r = dir_fsync_parent(l->log_path, err)) < 0)
      goto fail;
  }
  if (l->log_fd < 0) {
    if (errno == ENOENT && exists(l->cp_path))
      r = damaged(err, l->dir, "'%s' is missing but a signed checkpoint exists", l->log_path);
    else if (errno == ENOENT)
      r = err_set_src(err, -ENOENT, ERR_SRC_LEDGER, "no ledger in '%s' (no %s)", l->dir,
                      LEDGER_FILE_LOG);
    else
      r = err_set_errno(err, -errno, "cannot open '%s'", l->log_path);
    goto fail;
  }
  r = recover(l, o, &local, err);
  if (r < 0)
    goto fail;
  if (rec)
    *rec = local;
  else
    ledger_recovery_dispose(&local);
  *ret = l;
  return 0;
fail:
  ledger_recovery_dispose(&local);
  ledger_free(l);
  return r;
}
