/* Public keys of every type ssh-keygen makes, parsed from their wire blobs
 * (sshkey.c's sshkey_from_blob) and re-encoded canonically, so that two
 * encodings of one key compare equal and fingerprint alike, as OpenSSH's
 * sshkey_equal() and sshkey_fingerprint() see them.
 *
 *   ssh-ed25519                         string(pk[32])
 *   ssh-rsa                             mpint(e) mpint(n)
 *   ecdsa-sha2-nistpN                   string("nistpN") string(Q)
 *   sk-ssh-ed25519@openssh.com          string(pk[32]) string(application)
 *   sk-ecdsa-sha2-nistp256@openssh.com  string("nistp256") string(Q) string(application)
 *
 * Invariants: an ECDSA point is uncompressed and on its curve (checked by
 * OpenSSL when the key is used); RSA moduli are at most SSH_RSA_MAX_BITS;
 * ssh-dss and certificate keys parse by name only (SSH_KEY_OTHER) and never
 * verify. When you add a key type, also touch ssh-sig.c and docs/signing.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "base/mem.h"
#include "base/str.h"
#include "ssh/ssh-int.h"

static const struct {
  const char *name, *display;
  enum ssh_key_type type;
} key_types[] = {
    {"ssh-ed25519", "ED25519", SSH_KEY_ED25519},
    {"ssh-rsa", "RSA", SSH_KEY_RSA},
    {"ecdsa-sha2-nistp256", "ECDSA", SSH_KEY_ECDSA_P256},
    {"ecdsa-sha2-nistp384", "ECDSA", SSH_KEY_ECDSA_P384},
    {"ecdsa-sha2-nistp521", "ECDSA", SSH_KEY_ECDSA_P521},
    {"sk-ssh-ed25519@openssh.com", "ED25519-SK", SSH_KEY_SK_ED25519},
    {"sk-ecdsa-sha2-nistp256@openssh.com", "ECDSA-SK", SSH_KEY_SK_ECDSA_P256},
    {"ssh-dss", "DSA", SSH_KEY_OTHER},
    {"ssh-ed25519-cert-v01@openssh.com", "ED25519-CERT", SSH_KEY_OTHER},
    {"ssh-rsa-cert-v01@openssh.com", "RSA-CERT", SSH_KEY_OTHER},
    {"ssh-dss-cert-v01@openssh.com", "DSA-CERT", SSH_KEY_OTHER},
    {"ecdsa-sha2-nistp256-cert-v01@openssh.com", "ECDSA-CERT", SSH_KEY_OTHER},
    {"ecdsa-sha2-nistp384-cert-v01@openssh.com", "ECDSA-CERT", SSH_KEY_OTHER},
    {"ecdsa-sha2-nistp521-cert-v01@openssh.com", "ECDSA-CERT", SSH_KEY_OTHER},
    {"sk-ssh-ed25519-cert-v01@openssh.com", "ED25519-SK-CERT", SSH_KEY_OTHER},
    {"sk-ecdsa-sha2-nistp256-cert-v01@openssh.com", "ECDSA-SK-CERT", SSH_KEY_OTHER},
};

static int type_index(const uint8_t *name, size_t len) {
  for (size_t i = 0; i < ARRAY_SIZE(key_types); i++)
    if (ssh_bytes_is(name, len, key_types[i].name))
      return (int)i;
  return -1;
}

bool ssh_key_type_known(const char *name, size_t len) {
  return type_index((const uint8_t *)name, len) >= 0;
}

void ssh_key_free(struct ssh_key *key) {
  if (!key)
    return;
  free(key->blob);
  free(key);
}

/* Point the views of @k into its blob, which holds the canonical encoding. */
static void set_views(struct ssh_key *k) {
  struct ssh_wire w = {k->blob, k->blob_len};
  const uint8_t *s;
  size_t n;

  ssh_wire_string(&w, &s, &n); /* the type */
  switch (k->type) {
  case SSH_KEY_ED25519:
  case SSH_KEY_SK_ED25519:
    ssh_wire_string(&w, &k->pk, &k->pk_len);
    break;
  case SSH_KEY_RSA:
    ssh_wire_string(&w, &k->rsa_e, &k->rsa_e_len);
    ssh_wire_string(&w, &k->rsa_n, &k->rsa_n_len);
    /* views of the magnitude, without the sign byte */
    while (k->rsa_e_len && k->rsa_e[0] == 0) {
      k->rsa_e++;
      k->rsa_e_len--;
    }
    while (k->rsa_n_len && k->rsa_n[0] == 0) {
      k->rsa_n++;
      k->rsa_n_len--;
    }
    break;
  case SSH_KEY_ECDSA_P256:
  case SSH_KEY_ECDSA_P384:
  case SSH_KEY_ECDSA_P521:
  case SSH_KEY_SK_ECDSA_P256:
    ssh_wire_string(&w, &s, &n); /* the curve */
    ssh_wire_string(&w, &k->pk, &k->pk_len);
    break;
  case SSH_KEY_OTHER:
    break;
  }
  if (k->type == SSH_KEY_SK_ED25519 || k->type == SSH_KEY_SK_ECDSA_P256)
    ssh_wire_string(&w, &k->application, &k->application_len);
}

/* An SSH mpint as OpenSSH's sshbuf_get_bignum2_bytes_direct() takes it:
 * not negative, at most SSH_RSA_MAX_BITS, leading zeros dropped. */
static int get_mpint(struct ssh_wire *w, const uint8_t **ret, size_t *ret_len) {
  const uint8_t *d;
  size_t n;

  if (ssh_wire_string(w, &d, &n) < 0)
    return -EBADMSG;
  if (n && (d[0] & 0x80))
    return -EBADMSG;
  if (n > SSH_RSA_MAX_BITS / 8 + 1 || (n == SSH_RSA_MAX_BITS / 8 + 1 && d[0] != 0))
    return -EBADMSG;
  while (n && d[0] == 0) {
    d++;
    n--;
  }
  *ret = d;
  *ret_len = n;
  return 0;
}

static void put_mpint(struct buf *b, const uint8_t *d, size_t n) {
  bool pad = n && (d[0] & 0x80);
  ssh_wire_put_u32(b, (uint32_t)(n + pad));
  if (pad)
    buf_putc(b, 0);
  buf_append(b, d, n);
}

static unsigned bits_of(const uint8_t *d, size_t n) {
  unsigned bits;
  if (n == 0)
    return 0;
  bits = (unsigned)(n - 1) * 8;
  for (uint8_t top = d[0]; top; top >>= 1)
    bits++;
  return bits;
}

static int malformed(struct err *err, const char *type) {
  return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "malformed %s public key", type);
}

int ssh_key_from_blob(const void *blob, size_t len, struct ssh_key **ret, struct err *err) {
  struct ssh_wire w = {blob, len};
  const uint8_t *name, *a, *b, *app = NULL;
  size_t name_len, a_len, b_len, app_len = 0;
  struct buf canon = BUF_INIT;
  struct ssh_key *k;
  char shown[64];
  int ti;

  if (len > SSH_KEY_MAX_BLOB)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "public key is %zu bytes, larger than %u",
                       len, SSH_KEY_MAX_BLOB);
  if (ssh_wire_string(&w, &name, &name_len) < 0)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "malformed public key");
  ti = type_index(name, name_len);
  if (ti < 0)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "unknown public key type '%s'",
                       ssh_printable(name, name_len, shown, sizeof(shown)));
  k = xcalloc(1, sizeof(*k));
  k->type = key_types[ti].type;
  str_copy(k->name, sizeof(k->name), key_types[ti].name);
  ssh_wire_put_cstr(&canon, k->name);
  switch (k->type) {
  case SSH_KEY_ED25519:
  case SSH_KEY_SK_ED25519:
    if (ssh_wire_string(&w, &a, &a_len) < 0 || a_len != crypto_sign_PUBLICKEYBYTES)
      goto bad;
    ssh_wire_put_string(&canon, a, a_len);
    k->bits = 256;
    break;
  case SSH_KEY_RSA:
    if (get_mpint(&w, &a, &a_len) < 0 || get_mpint(&w, &b, &b_len) < 0 || a_len == 0 ||
        b_len == 0)
      goto bad;
    put_mpint(&canon, a, a_len);
    put_mpint(&canon, b, b_len);
    k->bits = bits_of(b, b_len);
    break;
  case SSH_KEY_ECDSA_P256:
  case SSH_KEY_ECDSA_P384:
  case SSH_KEY_ECDSA_P521:
  case SSH_KEY_SK_ECDSA_P256: {
    static const char *const curves[] = {"nistp256", "nistp384", "nistp521"};
    static const unsigned bits[] = {256, 384, 521};
    size_t ci = k->type == SSH_KEY_ECDSA_P384 ? 1 : k->type == SSH_KEY_ECDSA_P521 ? 2 : 0;
    size_t coord = (bits[ci] + 7) / 8;
    if (!ssh_wire_string_is(&w, curves[ci]) || ssh_wire_string(&w, &a, &a_len) < 0 ||
        a_len != 1 + 2 * coord || a[0] != 0x04)
      goto bad;
    ssh_wire_put_cstr(&canon, curves[ci]);
    ssh_wire_put_string(&canon, a, a_len);
    k->bits = bits[ci];
    break;
  }
  case SSH_KEY_OTHER:
    /* kept as given: compared and fingerprinted, never verified */
    buf_reset(&canon);
    buf_append(&canon, blob, len);
    w.n = 0;
    break;
  }
  if (k->type == SSH_KEY_SK_ED25519 || k->type == SSH_KEY_SK_ECDSA_P256) {
    if (ssh_wire_string(&w, &app, &app_len) < 0)
      goto bad;
    ssh_wire_put_string(&canon, app, app_len);
  }
  if (w.n != 0)
    goto bad;
  k->blob = (uint8_t *)buf_detach(&canon, &k->blob_len);
  set_views(k);
  *ret = k;
  return 0;
bad:
  buf_dispose(&canon);
  ssh_key_free(k);
  return malformed(err, key_types[ti].name);
}

int ssh_key_from_text(const char *type, size_t type_len, const char *b64, size_t b64_len,
                      struct ssh_key **ret, struct err *err) {
  struct ssh_key *k = NULL;
  uint8_t *blob;
  size_t blob_len;
  char shown[64];
  int r;

  if (!ssh_key_type_known(type, type_len))
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "unknown key type '%s'",
                       ssh_printable((const uint8_t *)type, type_len, shown, sizeof(shown)));
  if (b64_len > SSH_KEY_MAX_BLOB * 2 || ssh_b64_decode(b64, b64_len, NULL, &blob, &blob_len) < 0)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "the key is not valid base64");
  r = ssh_key_from_blob(blob, blob_len, &k, err);
  free(blob);
  if (r < 0)
    return r;
  if (strlen(k->name) != type_len || memcmp(k->name, type, type_len) != 0) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_SIG,
                    "the key's blob is of type '%s', not '%s' as written before it", k->name,
                    ssh_printable((const uint8_t *)type, type_len, shown, sizeof(shown)));
    ssh_key_free(k);
    return r;
  }
  *ret = k;
  return 0;
}

struct ssh_key *ssh_key_dup(const struct ssh_key *key) {
  struct ssh_key *k = xcalloc(1, sizeof(*k));

  *k = *key;
  k->blob = xmalloc(key->blob_len ? key->blob_len : 1);
  memcpy(k->blob, key->blob, key->blob_len);
  set_views(k);
  return k;
}

bool ssh_key_equal(const struct ssh_key *a, const struct ssh_key *b) {
  return a && b && a->blob_len == b->blob_len && memcmp(a->blob, b->blob, a->blob_len) == 0;
}

void ssh_blob_type(const void *blob, size_t len, char *out, size_t size) {
  struct ssh_wire w = {blob, len};
  const uint8_t *t;
  size_t tn;

  out[0] = '\0';
  if (ssh_wire_string(&w, &t, &tn) == 0 && tn > 0)
    ssh_printable(t, tn, out, size);
}

const char *ssh_key_fingerprint(const struct ssh_key *key, char out[SSH_FINGERPRINT_SIZE]) {
  return ssh_blob_fingerprint(key->blob, key->blob_len, out);
}

const char *ssh_blob_fingerprint(const void *blob, size_t len, char out[SSH_FINGERPRINT_SIZE]) {
  uint8_t h[32];

  ssh_sha256(blob, len, h);
  memcpy(out, "SHA256:", 7);
  sodium_bin2base64(out + 7, SSH_FINGERPRINT_SIZE - 7, h, sizeof(h),
                    sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
  return out;
}

const char *ssh_key_type_display(const struct ssh_key *key) {
  int ti = type_index((const uint8_t *)key->name, strlen(key->name));
  return ti >= 0 ? key_types[ti].display : "unknown";
}

const char *ssh_key_unsupported(const struct ssh_key *key) {
  if (key->type == SSH_KEY_OTHER)
    return strstr(key->name, "-cert-v01@") ? "certificate keys are not supported"
                                           : "DSA keys are not supported";
  if (key->type == SSH_KEY_RSA && key->bits < SSH_RSA_MIN_BITS)
    return "RSA keys under 2048 bits are refused";
  return NULL;
}
