/* The rules that tie records together, checked record by record in one
 * pass with bounded state: the index is the position, prev_root is the root
 * of the records before, record 0 and only record 0 is the genesis, a
 * key-rotation is signed by the key it replaces, and an apply-result closes
 * an open apply-intent of the same cluster.
 *
 * Open intents are kept in index order (they are appended in order); a
 * closed one is marked and the array is compacted when half of it is
 * closed, so closing is O(log n) and the whole scan stays O(n).
 *
 * When you add a rule, also touch docs/ledger.md ("What verify checks") and
 * tests/unit/test-ledger.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "ledger/ledger-int.h"

void chain_dispose(struct chain *c) {
  for (size_t i = 0; i < c->n_intents; i++) {
    free(c->intents[i].cluster);
    free(c->intents[i].commit);
  }
  free(c->intents);
  free(c->result_commit_owned);
  free(c->last_intent_repo);
  free(c->last_intent_commit);
  memset(c, 0, sizeof(*c));
}

static struct open_intent *find_intent(const struct chain *c, uint64_t index) {
  size_t lo = 0, hi = c->n_intents;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (c->intents[mid].index == index)
      return c->intents[mid].closed ? NULL : &c->intents[mid];
    if (c->intents[mid].index < index)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

size_t chain_open_intents(const struct chain *c) { return c->n_intents - c->n_closed; }

static int check_rotation(const struct chain *c, const struct ledger_record *r, struct err *err) {
  const char *pub = doc_map_str(r->object, "public_key");
  const char *sig = doc_map_str(r->object, "signature");
  struct ledger_pubkey new_key, signer;
  struct buf msg = BUF_INIT;
  struct err serr = ERR_INIT;
  char fp[LEDGER_FINGERPRINT_SIZE];
  int ret;

  if (ledger_pubkey_parse(pub, strlen(pub), &new_key, NULL) < 0)
    return err_set(err, -EBADMSG, "'public_key' is not an ssh-ed25519 key");
  if (ledger_pubkey_equal(&new_key, &c->key))
    return err_set(err, -EBADMSG, "the key rotation names the current key");
  rotation_message(c->origin, r->index, r->prev_root, pub, &msg);
  ret = ledger_sshsig_verify(sig, strlen(sig), LEDGER_ROTATION_NAMESPACE, msg.data, msg.len,
                             &signer, &serr);
  buf_dispose(&msg);
  if (ret < 0)
    return err_set(err, -EBADMSG, "the key rotation's signature is not valid: %s", serr.msg);
  if (!ledger_pubkey_equal(&signer, &c->key))
    return err_set(err, -EBADMSG, "the key rotation is signed by %s, not by the key it replaces "
                   "(record %llu)", ledger_pubkey_fingerprint(&signer, fp),
                   (unsigned long long)c->key_index);
  return 0;
}

int chain_check(const struct chain *c, const struct ledger_record *r, enum chain_fault *fault,
                struct err *err) {
  uint8_t root[LEDGER_HASH_SIZE];

  *fault = CHAIN_FAULT_INDEX;
  if (r->index != c->size)
    return err_set(err, -EBADMSG, "line %llu holds record %llu where record %llu belongs: a "
                   "record was deleted, inserted or moved",
                   (unsigned long long)c->size + 1, (unsigned long long)r->index,
                   (unsigned long long)c->size);
  *fault = CHAIN_FAULT_PREV_ROOT;
  ledger_frontier_root(&c->tree, root);
  if (memcmp(root, r->prev_root, LEDGER_HASH_SIZE) != 0)
    return err_set(err, -EBADMSG, "prev_root does not match the records before it");
  *fault = CHAIN_FAULT_RULE;
  if ((r->index == 0) != (r->type == LEDGER_TYPE_GENESIS))
    return err_set(err, -EBADMSG, r->index == 0 ? "the first record is not a genesis record"
                                                : "a genesis record after the first record");
  switch (r->type) {
  case LEDGER_TYPE_APPLY_INTENT:
    if (chain_open_intents(c) >= OPEN_INTENTS_MAX)
      return err_set(err, -EBADMSG, "more than %d apply-intents without a result", OPEN_INTENTS_MAX);
    break;
  case LEDGER_TYPE_APPLY_RESULT: {
    uint64_t intent = (uint64_t)doc_map_get(r->object, "intent")->u.i;
    const struct open_intent *oi = find_intent(c, intent);
    const char *cluster = doc_map_str(r->object, "cluster");
    if (!oi)
      return err_set(err, -EBADMSG, "apply-result for intent %llu, which is not an apply-intent "
                     "awaiting its result", (unsigned long long)intent);
    if (!str_eq(oi->cluster, cluster))
      return err_set(err, -EBADMSG, "apply-result for cluster '%s' closes intent %llu of cluster "
                     "'%s'", cluster, (unsigned long long)intent, oi->cluster);
    break;
  }
  case LEDGER_TYPE_KEY_ROTATION:
    return check_rotation(c, r, err);
  default:
    break;
  }
  *fault = CHAIN_OK;
  return 0;
}

static void compact(struct chain *c) {
  size_t w = 0;

  for (size_t i = 0; i < c->n_intents; i++) {
    if (c->intents[i].closed) {
      free(c->intents[i].cluster);
      free(c->intents[i].commit);
    } else {
      c->intents[w++] = c->intents[i];
    }
  }
  c->n_intents = w;
  c->n_closed = 0;
}

void chain_accept(struct chain *c, const struct ledger_record *r,
                  const uint8_t leaf[LEDGER_HASH_SIZE]) {
  const char *s;

  c->result_commit = NULL;
  switch (r->type) {
  case LEDGER_TYPE_GENESIS:
    s = doc_map_str(r->object, "public_key");
    ledger_pubkey_parse(s, strlen(s), &c->key, NULL);
    c->have_key = true;
    c->key_index = r->index;
    str_copy(c->origin, sizeof(c->origin), doc_map_str(r->object, "origin"));
    break;
  case LEDGER_TYPE_KEY_ROTATION:
    s = doc_map_str(r->object, "public_key");
    ledger_pubkey_parse(s, strlen(s), &c->key, NULL);
    c->key_index = r->index;
    break;
  case LEDGER_TYPE_APPLY_INTENT:
    c->intents = xgrow(c->intents, &c->cap_intents, c->n_intents + 1, sizeof(*c->intents));
    c->intents[c->n_intents++] = (struct open_intent){
        .index = r->index,
        .cluster = xstrdup(doc_map_str(r->object, "cluster")),
        .commit = xstrdup(doc_map_str(r->object, "commit")),
    };
    free(c->last_intent_repo);
    free(c->last_intent_commit);
    c->last_intent_repo = xstrdup(doc_map_str(r->object, "repo"));
    c->last_intent_commit = xstrdup(doc_map_str(r->object, "commit"));
    break;
  case LEDGER_TYPE_APPLY_RESULT: {
    struct open_intent *oi = find_intent(c, (uint64_t)doc_map_get(r->object, "intent")->u.i);
    oi->closed = true;
    c->n_closed++;
    free(c->result_commit_owned);
    c->result_commit_owned = xstrdup(oi->commit);
    c->result_commit = c->result_commit_owned;
    if (c->n_closed > 16 && c->n_closed * 2 > c->n_intents)
      compact(c);
    break;
  }
  default:
    break;
  }
  ledger_frontier_push(&c->tree, leaf);
  c->size++;
}
