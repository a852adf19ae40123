/* SSH wire encoding (RFC 4251 §5: byte, uint32, uint64, string), base64
 * through libsodium, and PEM-style armor as OpenSSH writes it.
 *
 * Invariants: every reader is bounded by the struct ssh_wire it is given and
 * never reads past it; lengths are checked before use. Nothing here knows
 * about keys or signatures (ssh-key.c, ssh-sig.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "base/mem.h"
#include "base/str.h"
#include "ssh/ssh-int.h"

int ssh_crypto_ready(struct err *err) {
  if (sodium_init() < 0)
    return err_set(err, -EIO, "cannot initialise libsodium");
  return 0;
}

void ssh_sha256(const void *data, size_t len, uint8_t out[32]) {
  unsigned int n = 0;

  if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
    abort(); /* OpenSSL without SHA-256: nothing sensible to do */
}

void ssh_sha1(const void *data, size_t len, uint8_t out[20]) {
  unsigned int n = 0;

  if (EVP_Digest(data, len, out, &n, EVP_sha1(), NULL) != 1 || n != 20)
    abort();
}

int ssh_wire_u8(struct ssh_wire *w, uint8_t *ret) {
  if (w->n < 1)
    return -EBADMSG;
  *ret = w->p[0];
  w->p++;
  w->n--;
  return 0;
}

int ssh_wire_u32(struct ssh_wire *w, uint32_t *ret) {
  if (w->n < 4)
    return -EBADMSG;
  *ret = (uint32_t)w->p[0] << 24 | (uint32_t)w->p[1] << 16 | (uint32_t)w->p[2] << 8 | w->p[3];
  w->p += 4;
  w->n -= 4;
  return 0;
}

int ssh_wire_u64(struct ssh_wire *w, uint64_t *ret) {
  uint32_t hi, lo;

  if (w->n < 8)
    return -EBADMSG;
  ssh_wire_u32(w, &hi);
  ssh_wire_u32(w, &lo);
  *ret = (uint64_t)hi << 32 | lo;
  return 0;
}

int ssh_wire_string(struct ssh_wire *w, const uint8_t **ret, size_t *ret_len) {
  struct ssh_wire save = *w;
  uint32_t len;

  if (ssh_wire_u32(w, &len) < 0 || len > w->n) {
    *w = save;
    return -EBADMSG;
  }
  *ret = w->p;
  *ret_len = len;
  w->p += len;
  w->n -= len;
  return 0;
}

bool ssh_wire_string_is(struct ssh_wire *w, const char *lit) {
  const uint8_t *s;
  size_t len;

  return ssh_wire_string(w, &s, &len) == 0 && ssh_bytes_is(s, len, lit);
}

void ssh_wire_put_u32(struct buf *b, uint32_t v) {
  uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  buf_append(b, be, 4);
}

void ssh_wire_put_string(struct buf *b, const void *data, size_t len) {
  ssh_wire_put_u32(b, (uint32_t)len);
  buf_append(b, data, len);
}

void ssh_wire_put_cstr(struct buf *b, const char *s) { ssh_wire_put_string(b, s, strlen(s)); }

const char *ssh_printable(const uint8_t *s, size_t len, char *out, size_t size) {
  size_t n = 0;

  for (size_t i = 0; i < len && n + 1 < size; i++)
    out[n++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
  out[n] = '\0';
  return out;
}

void ssh_b64_append(struct buf *out, const void *data, size_t len) {
  size_t n = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);

  buf_reserve(out, n);
  sodium_bin2base64(out->data + out->len, n, data, len, sodium_base64_VARIANT_ORIGINAL);
  out->len += n - 1; /* without the NUL sodium writes */
}

void ssh_b64_append_wrapped(struct buf *out, const void *data, size_t len, size_t col) {
  struct buf flat = BUF_INIT;

  ssh_b64_append(&flat, data, len);
  for (size_t i = 0; i < flat.len; i += col) {
    size_t n = flat.len - i < col ? flat.len - i : col;
    buf_append(out, flat.data + i, n);
    buf_putc(out, '\n');
  }
  buf_dispose_secret(&flat); /* the flat copy may hold a private key */
}

int ssh_b64_decode(const char *s, size_t len, const char *ignore, uint8_t **ret, size_t *ret_len) {
  size_t cap = len / 4 * 3 + 3, n = 0;
  uint8_t *bin = xmalloc(cap);
  const char *end = NULL;

  if (sodium_init() < 0 ||
      sodium_base642bin(bin, cap, s, len, ignore, &n, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
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

int ssh_armor_decode(const char *text, size_t len, const char *label, const char *what,
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
  if (ssh_b64_decode(body, (size_t)(e - body), "\r\n", ret, ret_len) < 0)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG,
                       "%s: the text between the armor lines is not base64", what);
  return 0;
}
