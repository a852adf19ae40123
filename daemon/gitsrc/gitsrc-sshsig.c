/* SSHSIG (openssh PROTOCOL.sshsig) parsing and Ed25519 verification.
 *
 * The armored signature from a commit's gpgsig header is dearmored with
 * libsodium's base64, parsed strictly (every length checked against what is
 * left, no trailing bytes) and, for ssh-ed25519 keys, verified with
 * crypto_sign_verify_detached() over
 *   "SSHSIG" || string(namespace) || string(reserved) || string(hash) || string(H(msg)).
 * Other key types are parsed (to name them) but never verified: libsodium
 * cannot check RSA or ECDSA, and an unverifiable signature must never pass.
 * When you change the accepted formats, also touch docs/signing.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "base/mem.h"
#include "base/str.h"
#include "gitsrc/gitsrc-int.h"

#define ARMOR_BEGIN "-----BEGIN SSH SIGNATURE-----"
#define ARMOR_END "-----END SSH SIGNATURE-----"
#define SSHSIG_MAGIC "SSHSIG"

/* A reader over SSH wire data: uint32 big-endian, string = uint32 len || bytes. */
struct wire {
  const unsigned char *p;
  size_t left;
};

static int wire_u32(struct wire *w, uint32_t *ret) {
  if (w->left < 4)
    return -EBADMSG;
  *ret = (uint32_t)w->p[0] << 24 | (uint32_t)w->p[1] << 16 | (uint32_t)w->p[2] << 8 | w->p[3];
  w->p += 4;
  w->left -= 4;
  return 0;
}

static int wire_string(struct wire *w, const unsigned char **ret, size_t *ret_len) {
  uint32_t n;

  if (wire_u32(w, &n) < 0 || n > w->left)
    return -EBADMSG;
  *ret = w->p;
  *ret_len = n;
  w->p += n;
  w->left -= n;
  return 0;
}

static bool bytes_eq(const unsigned char *p, size_t n, const char *s) {
  return n == strlen(s) && memcmp(p, s, n) == 0;
}

static void copy_name(char *dst, size_t size, const unsigned char *p, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n && k + 1 < size; i++)
    dst[k++] = (p[i] >= 0x21 && p[i] < 0x7f) ? (char)p[i] : '?';
  dst[k] = '\0';
}

void gitsrc_sshkey_blob_type(const unsigned char *blob, size_t len, char *out, size_t size) {
  struct wire w = {blob, len};
  const unsigned char *t;
  size_t tn;

  out[0] = '\0';
  if (wire_string(&w, &t, &tn) == 0)
    copy_name(out, size, t, tn);
}

int gitsrc_base64_decode(const char *b64, size_t len, unsigned char **ret, size_t *ret_len) {
  size_t max = len / 4 * 3 + 3, n = 0;
  unsigned char *bin = xmalloc(max + 1);

  if (sodium_base642bin(bin, max, b64, len, NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
    free(bin);
    return -EINVAL;
  }
  *ret = bin;
  *ret_len = n;
  return 0;
}

int gitsrc_sshsig_parse(const char *armored, size_t len, struct gitsrc_sshsig *ret,
                        struct err *err) {
  struct gitsrc_sshsig s = {0};
  const char *begin, *end, *body, *p;
  const unsigned char *str;
  size_t max, n, strn;
  uint32_t version;
  struct wire w;

  if (len > GITSRC_SSHSIG_MAX_ARMOR)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG,
                       "signature is %zu bytes, larger than the limit of %u bytes", len,
                       GITSRC_SSHSIG_MAX_ARMOR);
  begin = armored;
  if (len < strlen(ARMOR_BEGIN) || memcmp(begin, ARMOR_BEGIN, strlen(ARMOR_BEGIN)) != 0)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG,
                       "signature does not start with '" ARMOR_BEGIN "'");
  body = begin + strlen(ARMOR_BEGIN);
  end = NULL;
  for (p = body; (size_t)(armored + len - p) >= strlen(ARMOR_END); p++)
    if (memcmp(p, ARMOR_END, strlen(ARMOR_END)) == 0) {
      end = p;
      break;
    }
  if (!end)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "signature has no '" ARMOR_END "' line");
  for (p = end + strlen(ARMOR_END); p < armored + len; p++)
    if (*p != '\n' && *p != '\r' && *p != ' ' && *p != '\t')
      return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "text after the end of the signature");
  max = (size_t)(end - body) / 4 * 3 + 3;
  s.blob = xmalloc(max + 1);
  if (sodium_base642bin(s.blob, max, body, (size_t)(end - body), "\r\n\t ", &n, NULL,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    free(s.blob);
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "signature is not valid base64");
  }
  s.blob_len = n;
  w.p = s.blob;
  w.left = n;
  if (w.left < 6 || memcmp(w.p, SSHSIG_MAGIC, 6) != 0) {
    gitsrc_sshsig_dispose(&s);
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "signature blob does not start with SSHSIG");
  }
  w.p += 6;
  w.left -= 6;
  if (wire_u32(&w, &version) < 0 || version != 1) {
    gitsrc_sshsig_dispose(&s);
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "unsupported SSHSIG version");
  }
  if (wire_string(&w, &s.pubkey, &s.pubkey_len) < 0 ||
      wire_string(&w, &s.namespace_, &s.namespace_len) < 0 ||
      wire_string(&w, &s.reserved, &s.reserved_len) < 0 || wire_string(&w, &str, &strn) < 0 ||
      wire_string(&w, &s.signature, &s.signature_len) < 0) {
    gitsrc_sshsig_dispose(&s);
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "truncated SSHSIG blob");
  }
  if (w.left != 0) {
    gitsrc_sshsig_dispose(&s);
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "trailing bytes after the SSHSIG blob");
  }
  if (s.pubkey_len > GITSRC_SSHKEY_MAX_BLOB || s.namespace_len == 0) {
    gitsrc_sshsig_dispose(&s);
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG,
                       s.namespace_len == 0 ? "SSHSIG namespace is empty"
                                            : "SSHSIG public key is too large");
  }
  if (!bytes_eq(str, strn, "sha512") && !bytes_eq(str, strn, "sha256")) {
    char alg[32];
    copy_name(alg, sizeof(alg), str, strn);
    gitsrc_sshsig_dispose(&s);
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "unsupported SSHSIG hash algorithm '%s'", alg);
  }
  copy_name(s.hash_alg, sizeof(s.hash_alg), str, strn);
  gitsrc_sshkey_blob_type(s.pubkey, s.pubkey_len, s.key_type, sizeof(s.key_type));
  if (!s.key_type[0]) {
    gitsrc_sshsig_dispose(&s);
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "malformed public key in the signature");
  }
  *ret = s;
  return 0;
}

void gitsrc_sshsig_dispose(struct gitsrc_sshsig *sig) {
  if (!sig)
    return;
  free(sig->blob);
  memset(sig, 0, sizeof(*sig));
}

static void put_string(struct buf *b, const void *p, size_t n) {
  unsigned char len[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
  buf_append(b, len, 4);
  buf_append(b, p, n);
}

int gitsrc_sshsig_verify(const struct gitsrc_sshsig *sig, const void *msg, size_t len,
                         const char *namespace_, struct err *err) {
  const unsigned char *t, *pk, *sigtype, *sigbytes;
  size_t tn, pkn, sigtypen, sigbytesn;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  const EVP_MD *md;
  struct buf signed_data = BUF_INIT;
  struct wire w;
  int r;

  if (strcmp(sig->key_type, "ssh-ed25519") != 0)
    return err_set_src(err, -EPROTONOSUPPORT, ERR_SRC_SIG,
                       "unsupported key type %s (%s): egressd verifies ssh-ed25519 keys only",
                       gitsrc_sshkey_type_display(sig->key_type), sig->key_type);
  if (!bytes_eq(sig->namespace_, sig->namespace_len, namespace_)) {
    char ns[64];
    copy_name(ns, sizeof(ns), sig->namespace_, sig->namespace_len);
    return err_set_src(err, -EKEYREJECTED, ERR_SRC_SIG,
                       "signature was made for namespace \"%s\", not \"%s\"", ns, namespace_);
  }
  w = (struct wire){sig->pubkey, sig->pubkey_len};
  if (wire_string(&w, &t, &tn) < 0 || wire_string(&w, &pk, &pkn) < 0 || w.left != 0 ||
      pkn != crypto_sign_PUBLICKEYBYTES)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "malformed ssh-ed25519 public key");
  w = (struct wire){sig->signature, sig->signature_len};
  if (wire_string(&w, &sigtype, &sigtypen) < 0 || wire_string(&w, &sigbytes, &sigbytesn) < 0 ||
      w.left != 0 || !bytes_eq(sigtype, sigtypen, "ssh-ed25519") ||
      sigbytesn != crypto_sign_BYTES)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "malformed ssh-ed25519 signature");
  md = strcmp(sig->hash_alg, "sha512") == 0 ? EVP_sha512() : EVP_sha256();
  if (EVP_Digest(msg, len, digest, &digest_len, md, NULL) != 1)
    return err_set_src(err, -EIO, ERR_SRC_TLS, "cannot compute %s of the commit", sig->hash_alg);
  buf_append(&signed_data, SSHSIG_MAGIC, 6);
  put_string(&signed_data, sig->namespace_, sig->namespace_len);
  put_string(&signed_data, sig->reserved, sig->reserved_len);
  put_string(&signed_data, sig->hash_alg, strlen(sig->hash_alg));
  put_string(&signed_data, digest, digest_len);
  if (sodium_init() < 0) {
    buf_dispose(&signed_data);
    return err_set_src(err, -EIO, ERR_SRC_SIG, "cannot initialise libsodium");
  }
  r = crypto_sign_verify_detached(sigbytes, (const unsigned char *)signed_data.data,
                                  signed_data.len, pk);
  buf_dispose(&signed_data);
  if (r != 0)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG,
                       "bad signature: it does not match the commit's content");
  return 0;
}

void gitsrc_sshkey_fingerprint(const unsigned char *blob, size_t len, char *out, size_t size) {
  unsigned char digest[32];
  char b64[64];
  unsigned int n = 0;

  if (EVP_Digest(blob, len, digest, &n, EVP_sha256(), NULL) != 1 || n != sizeof(digest)) {
    str_copy(out, size, "SHA256:?");
    return;
  }
  sodium_bin2base64(b64, sizeof(b64), digest, sizeof(digest),
                    sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
  str_format(out, size, "SHA256:%s", b64);
}

const char *gitsrc_sshkey_type_display(const char *type) {
  static const struct {
    const char *name, *display;
  } names[] = {
      {"ssh-ed25519", "ED25519"},
      {"ssh-rsa", "RSA"},
      {"ssh-dss", "DSA"},
      {"ecdsa-sha2-nistp256", "ECDSA"},
      {"ecdsa-sha2-nistp384", "ECDSA"},
      {"ecdsa-sha2-nistp521", "ECDSA"},
      {"sk-ssh-ed25519@openssh.com", "ED25519-SK"},
      {"sk-ecdsa-sha2-nistp256@openssh.com", "ECDSA-SK"},
      {"ssh-ed25519-cert-v01@openssh.com", "ED25519-CERT"},
      {"ssh-rsa-cert-v01@openssh.com", "RSA-CERT"},
      {"ecdsa-sha2-nistp256-cert-v01@openssh.com", "ECDSA-CERT"},
  };
  for (size_t i = 0; i < ARRAY_SIZE(names); i++)
    if (strcmp(type, names[i].name) == 0)
      return names[i].display;
  return "unknown";
}
