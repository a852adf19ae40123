/* The ledger's names for the SSH wire encoding, base64 and armor, and the
 * ssh-ed25519 key blob: thin adapters over daemon/ssh/ (ssh-wire.c,
 * ssh-key.c), the daemon's one implementation of OpenSSH's formats. The
 * ledger keeps its own names (struct wire, wire_*(), b64_*()) so that the
 * files using them stay unchanged; new code should call ssh_*() directly.
 *
 * Invariants: every reader is bounded by the struct wire it is given (the
 * ssh module checks every length). Only ssh-ed25519 keys become a struct
 * ledger_pubkey: the ledger's signing key stays Ed25519.
 */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "ledger/ledger-int.h"
#include "ssh/ssh.h"

int crypto_ready(struct err *err) {
  if (sodium_init() < 0)
    return err_set(err, -EIO, "cannot initialise libsodium");
  return 0;
}

/* The readers run on a struct ssh_wire view of @w, then move @w as far. */
int wire_u32(struct wire *w, uint32_t *ret) {
  struct ssh_wire s = {w->p, w->n};
  int r = ssh_wire_u32(&s, ret);
  w->p = s.p;
  w->n = s.n;
  return r;
}

int wire_string(struct wire *w, const uint8_t **ret, size_t *ret_len) {
  struct ssh_wire s = {w->p, w->n};
  int r = ssh_wire_string(&s, ret, ret_len);
  w->p = s.p;
  w->n = s.n;
  return r;
}

bool wire_string_is(struct wire *w, const char *lit) {
  struct ssh_wire s = {w->p, w->n};
  bool is = ssh_wire_string_is(&s, lit);
  w->p = s.p;
  w->n = s.n;
  return is;
}

void wire_put_u32(struct buf *b, uint32_t v) { ssh_wire_put_u32(b, v); }
void wire_put_string(struct buf *b, const void *data, size_t len) {
  ssh_wire_put_string(b, data, len);
}
void wire_put_cstr(struct buf *b, const char *s) { ssh_wire_put_cstr(b, s); }

void b64_append(struct buf *out, const void *data, size_t len) { ssh_b64_append(out, data, len); }
void b64_append_wrapped(struct buf *out, const void *data, size_t len, size_t col) {
  ssh_b64_append_wrapped(out, data, len, col);
}
int b64_decode(const char *s, size_t len, const char *ignore, uint8_t **ret, size_t *ret_len) {
  return ssh_b64_decode(s, len, ignore, ret, ret_len);
}

int armor_decode(const char *text, size_t len, const char *label, const char *what,
                 uint8_t **ret, size_t *ret_len, struct err *err) {
  return ssh_armor_decode(text, len, label, what, ret, ret_len, err);
}

const char *wire_printable(const uint8_t *s, size_t len, char *out, size_t size) {
  return ssh_printable(s, len, out, size);
}

void pubkey_blob(const struct ledger_pubkey *pk, struct buf *out) {
  ssh_wire_put_cstr(out, "ssh-ed25519");
  ssh_wire_put_string(out, pk->pk, sizeof(pk->pk));
}

int pubkey_from_blob(const uint8_t *blob, size_t len, struct ledger_pubkey *ret, struct err *err) {
  struct ssh_key *key = NULL;
  int r;

  if ((r = ssh_key_from_blob(blob, len, &key, err)) < 0)
    return r;
  if (key->type != SSH_KEY_ED25519) {
    r = err_set_src(err, -ENOTSUP, ERR_SRC_SIG,
                    "the key is of type '%s'; only ssh-ed25519 keys are supported", key->name);
    ssh_key_free(key);
    return r;
  }
  memcpy(ret->pk, key->pk, sizeof(ret->pk));
  ssh_key_free(key);
  return 0;
}
