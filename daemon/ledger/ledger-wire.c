/* SSH wire encoding (RFC 4251 §5: uint32, string), base64 through libsodium,
 * PEM-style armor as OpenSSH writes it, and the ssh-ed25519 key blob.
 *
 * Invariants: every reader is bounded by the struct wire it is given and
 * never reads past it; lengths are checked before use. When the daemon's
 * gitsrc/ SSHSIG verifier and this file both settle, the lead factors the
 * common wire helpers out (see the report of issue 7).
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "ledger/ledger-int.h"

int crypto_ready(struct err *err) {
  if (sodium_init() < 0)
    return err_set(err, -EIO, "cannot initialise libsodium");
  return 0;
}

int wire_u32(struct wire *w, uint32_t *ret) {
  if (w->n < 4)
    return -EBADMSG;
  *ret = (uint32_t)w->p[0] << 24 | (uint32_t)w->p[1] << 16 | (uint32_t)w->p[2] << 8 | w->p[3];
  w->p += 4;
  w->n -= 4;
  return 0;
}

int wire_string(struct wire *w, const uint8_t **ret, size_t *ret_len) {
  uint32_t len;

  if (wire_u32(w, &len) < 0 || len > w->n)
    return -EBADMSG;
  *ret = w->p;
  *ret_len = len;
  w->p += len;
  w->n -= len;
  return 0;
}

bool wire_string_is(struct wire *w, const char *lit) {
  const uint8_t *s;
  size_t len;

  return wire_string(w, &s, &len) == 0 && len == strlen(lit) && memcmp(s, lit, len) == 0;
}

void wire_put_u32(struct buf *b, uint32_t v) {
  uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  buf_append(b, be, 4);
}

void wire_put_string(struct buf *b, const void *data, size_t len) {
  wire_put_u32(b, (uint32_t)len);
  buf_append(b, data, len);
}

void wire_put_cstr(struct buf *b, const char *s) { wire_put_string(b, s, strlen(s)); }

void b64_append(struct buf *out, const void *data, size_t len) {
  size_t n = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);

  buf_reserve(out, n);
  sodium_bin2base64(out->data + out->len, n, data, len, sodium_base64_VARIANT_ORIGINAL);
  out->len += n - 1;   /* without the NUL sodium writes */
}

void b64_append_wrapped(struct buf *out, const void *data, size_t len, size_t col) {
  struct buf flat = BUF_INIT;

  b64_append(&flat, data, len);
  for (size_t i = 0; i < flat.len; i += col) {
    size_t n = flat.len - i < col ? flat.len - i : col;
    buf_append(out, flat.data + i, n);
    buf_putc(out, '\n');
  }
  /* the flat copy may hold a key */
  buf_dispose_secret(&flat);
}

int b64_decode(const char *s, size_t len, const char *ignore, uint8_t **ret, size_t *ret_len) {
  size_t cap = len / 4 * 3 + 3, n = 0;
  uint8_t *bin = xmalloc(cap ? cap : 1);
  const char *end = NULL;

  if (sodium_base642bin(bin, cap, s, len, ignore, &n, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != s + len) {
    sodium_memzero(bin, cap);
    free(bin);
    return -EINVAL;
  }
  *ret = bin;
  *ret_len = n;
  return 0;
}

static const char *find_line(const char *text, size_t len, const char *line) {
  size_t n = strlen(line);

  for (size_t i = 0; i + n <= len; i++) {
    if ((i == 0 || text[i - 1] == '\n') && memcmp(text + i, line, n) == 0 &&
        (i + n == len || text[i + n] == '\n' || text[i + n] == '\r'))
      return text + i;
  }
  return NULL;
}

int armor_decode(const char *text, size_t len, const char *label, const char *what,
                 uint8_t **ret, size_t *ret_len, struct err *err) {
  char begin[80], end[80];
  const char *b, *e, *body;

  str_format(begin, sizeof(begin), "-----BEGIN %s-----", label);
  str_format(end, sizeof(end), "-----END %s-----", label);
  b = find_line(text, len, begin);
  if (!b)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "%s: no '%s' line", what, begin);
  body = b + strlen(begin);
  e = find_line(body, len - (size_t)(body - text), end);
  if (!e)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "%s: no '%s' line", what, end);
  if (b64_decode(body, (size_t)(e - body), "\r\n", ret, ret_len) < 0)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "%s: the text between the armor lines is not "
                       "base64", what);
  return 0;
}

const char *wire_printable(const uint8_t *s, size_t len, char *out, size_t size) {
  size_t n = 0;

  for (size_t i = 0; i < len && n + 1 < size; i++)
    out[n++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
  out[n] = '\0';
  return out;
}

void pubkey_blob(const struct ledger_pubkey *pk, struct buf *out) {
  wire_put_cstr(out, "ssh-ed25519");
  wire_put_string(out, pk->pk, sizeof(pk->pk));
}

int pubkey_from_blob(const uint8_t *blob, size_t len, struct ledger_pubkey *ret, struct err *err) {
  struct wire w = {blob, len};
  const uint8_t *type, *pk;
  size_t type_len, pk_len;

  if (wire_string(&w, &type, &type_len) < 0)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "malformed public key");
  if (type_len != 11 || memcmp(type, "ssh-ed25519", 11) != 0) {
    char shown[48];
    return err_set_src(err, -ENOTSUP, ERR_SRC_SIG,
                       "the key is of type '%s'; only ssh-ed25519 keys are supported",
                       wire_printable(type, type_len, shown, sizeof(shown)));
  }
  if (wire_string(&w, &pk, &pk_len) < 0 || pk_len != 32 || w.n != 0)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "malformed ssh-ed25519 public key");
  memcpy(ret->pk, pk, 32);
  return 0;
}
