/* SSH signatures (openssh-portable PROTOCOL.sshsig, sshsig.c): parse and
 * verify for every key type of ssh-key.c, sign with ssh-ed25519.
 *
 *   blob   = "SSHSIG" u32(version) string(publickey) string(namespace)
 *            string(reserved) string(hash_algorithm) string(signature)
 *   signed = "SSHSIG" string(namespace) string("") string(hash_algorithm)
 *            string(H(message))
 *
 * The reserved field of the blob is read and ignored: OpenSSH always signs
 * an empty one and never looks at the blob's (sshsig_wrap_verify), so a
 * signature verifies here exactly when ssh-keygen -Y verify accepts it.
 * The signature encodings (RFC 8709, RFC 8332, RFC 5656, PROTOCOL.u2f):
 *   ssh-ed25519      string("ssh-ed25519") string(sig[64])
 *   RSA              string("rsa-sha2-256" | "rsa-sha2-512") string(s)
 *                    ("ssh-rsa", SHA-1, is refused as sshsig.c refuses it)
 *   ECDSA            string(key type) string(mpint(r) mpint(s))
 *   FIDO keys        the above for the base type, then byte(flags)
 *                    u32(counter); what the authenticator signed is
 *                    SHA256(application) || flags || counter || SHA256(signed)
 * Ed25519 is checked with libsodium, RSA and ECDSA with OpenSSL.
 * When you change what verifies, also touch docs/signing.md and
 * tests/integration/test_ssh_keys.py (the parity matrix against ssh-keygen).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <sodium.h>

#include "base/mem.h"
#include "base/str.h"
#include "ssh/ssh-int.h"

#define MAGIC "SSHSIG"
#define MAGIC_LEN 6
#define ARMOR_BEGIN "-----BEGIN SSH SIGNATURE-----\n"
#define ARMOR_END "\n-----END SSH SIGNATURE-----"

static int sig_bad(struct err *err, const char *msg) {
  return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "%s", msg);
}

int ssh_sig_parse(const char *armored, size_t len, struct ssh_sig *ret, struct err *err) {
  struct ssh_sig s = {0};
  const char *body, *end = NULL;
  const uint8_t *key, *reserved, *alg;
  size_t key_len, reserved_len, alg_len, n;
  struct ssh_wire w;
  uint32_t version;
  int r;

  if (len > SSH_SIG_MAX_ARMOR)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG,
                       "signature is %zu bytes, larger than the limit of %u bytes", len,
                       SSH_SIG_MAX_ARMOR);
  /* sshsig_dearmor(): the header starts the text, the footer follows a
   * newline, and whatever comes after the footer is not looked at */
  if (len < strlen(ARMOR_BEGIN) || memcmp(armored, ARMOR_BEGIN, strlen(ARMOR_BEGIN)) != 0)
    return sig_bad(err, "signature does not start with '-----BEGIN SSH SIGNATURE-----'");
  body = armored + strlen(ARMOR_BEGIN) - 1; /* the footer's newline may be the header's */
  for (const char *p = body; (size_t)(armored + len - p) >= strlen(ARMOR_END); p++)
    if (memcmp(p, ARMOR_END, strlen(ARMOR_END)) == 0) {
      end = p;
      break;
    }
  if (!end)
    return sig_bad(err, "signature has no '-----END SSH SIGNATURE-----' line");
  n = (size_t)(end - body);
  if (ssh_b64_decode(body, n, " \t\r\n\v\f", &s.blob, &s.blob_len) < 0)
    return sig_bad(err, "signature is not valid base64");
  w = (struct ssh_wire){s.blob, s.blob_len};
  if (w.n < MAGIC_LEN || memcmp(w.p, MAGIC, MAGIC_LEN) != 0) {
    r = sig_bad(err, "signature blob does not start with SSHSIG");
    goto fail;
  }
  w.p += MAGIC_LEN;
  w.n -= MAGIC_LEN;
  if (ssh_wire_u32(&w, &version) < 0) {
    r = sig_bad(err, "truncated SSHSIG blob");
    goto fail;
  }
  if (version > 1) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_SIG, "unsupported SSHSIG version %u (1 is)", version);
    goto fail;
  }
  if (ssh_wire_string(&w, &key, &key_len) < 0 ||
      ssh_wire_string(&w, &s.namespace_, &s.namespace_len) < 0 ||
      ssh_wire_string(&w, &reserved, &reserved_len) < 0 ||
      ssh_wire_string(&w, &alg, &alg_len) < 0 ||
      ssh_wire_string(&w, &s.signature, &s.signature_len) < 0) {
    r = sig_bad(err, "truncated SSHSIG blob");
    goto fail;
  }
  if (w.n != 0) {
    r = sig_bad(err, "trailing bytes after the SSHSIG blob");
    goto fail;
  }
  if (memchr(s.namespace_, '\0', s.namespace_len) || memchr(alg, '\0', alg_len)) {
    r = sig_bad(err, "NUL byte in the SSHSIG namespace or hash algorithm");
    goto fail;
  }
  if (!ssh_bytes_is(alg, alg_len, "sha512") && !ssh_bytes_is(alg, alg_len, "sha256")) {
    char shown[32];
    r = err_set_src(err, -EBADMSG, ERR_SRC_SIG,
                    "unsupported SSHSIG hash algorithm '%s' (sha256 and sha512 are)",
                    ssh_printable(alg, alg_len, shown, sizeof(shown)));
    goto fail;
  }
  str_format(s.hash_alg, sizeof(s.hash_alg), "%.*s", (int)alg_len, (const char *)alg);
  if ((r = ssh_key_from_blob(key, key_len, &s.key, err)) < 0) {
    err_prefix(err, "the signature's key");
    goto fail;
  }
  *ret = s;
  return 0;
fail:
  ssh_sig_dispose(&s);
  return r;
}

void ssh_sig_dispose(struct ssh_sig *sig) {
  if (!sig)
    return;
  ssh_key_free(sig->key);
  free(sig->blob);
  memset(sig, 0, sizeof(*sig));
}

/* ---- OpenSSL: RSA and ECDSA ---- */

static EVP_PKEY *pkey_from_params(const char *alg, OSSL_PARAM_BLD *bld) {
  OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
  EVP_PKEY *pkey = NULL;

  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    pkey = NULL;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return pkey;
}

static EVP_PKEY *pkey_rsa(const struct ssh_key *k) {
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  BIGNUM *n = BN_bin2bn(k->rsa_n, (int)k->rsa_n_len, NULL);
  BIGNUM *e = BN_bin2bn(k->rsa_e, (int)k->rsa_e_len, NULL);
  EVP_PKEY *pkey = NULL;

  if (bld && n && e && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1)
    pkey = pkey_from_params("RSA", bld);
  BN_free(n);
  BN_free(e);
  OSSL_PARAM_BLD_free(bld);
  return pkey;
}

static EVP_PKEY *pkey_ec(const struct ssh_key *k) {
  const char *group = k->bits == 384 ? "P-384" : k->bits == 521 ? "P-521" : "P-256";
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  EVP_PKEY *pkey = NULL;
  EVP_PKEY_CTX *check;

  if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, k->pk, k->pk_len) == 1)
    pkey = pkey_from_params("EC", bld);
  OSSL_PARAM_BLD_free(bld);
  /* the point must be on the curve and of the group's order
   * (OpenSSH's sshkey_ec_validate_public) */
  check = pkey ? EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL) : NULL;
  if (pkey && (!check || EVP_PKEY_public_check(check) != 1)) {
    EVP_PKEY_free(pkey);
    pkey = NULL;
  }
  EVP_PKEY_CTX_free(check);
  return pkey;
}

/* 1 verified, 0 not. */
static int evp_verify(EVP_PKEY *pkey, const EVP_MD *md, const uint8_t *sig, size_t sig_len,
                      const void *data, size_t len) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pkey) == 1 &&
           EVP_DigestVerify(ctx, sig, sig_len, data, len) == 1;

  EVP_MD_CTX_free(ctx);
  return ok;
}

/* mpint(r) mpint(s) of an ECDSA signature, as DER for OpenSSL. */
static int ecdsa_der(const uint8_t *blob, size_t len, uint8_t **ret, size_t *ret_len) {
  struct ssh_wire w = {blob, len};
  const uint8_t *r, *s;
  size_t rn, sn;
  ECDSA_SIG *es;
  BIGNUM *br, *bs;
  unsigned char *der = NULL;
  int der_len;

  if (ssh_wire_string(&w, &r, &rn) < 0 || ssh_wire_string(&w, &s, &sn) < 0 || w.n != 0 ||
      rn > 67 || sn > 67 || (rn && (r[0] & 0x80)) || (sn && (s[0] & 0x80)))
    return -EBADMSG;
  es = ECDSA_SIG_new();
  br = BN_bin2bn(r, (int)rn, NULL);
  bs = BN_bin2bn(s, (int)sn, NULL);
  if (!es || !br || !bs || ECDSA_SIG_set0(es, br, bs) != 1) {
    BN_free(br);
    BN_free(bs);
    ECDSA_SIG_free(es);
    return -ENOMEM;
  }
  der_len = i2d_ECDSA_SIG(es, &der);
  ECDSA_SIG_free(es);
  if (der_len <= 0)
    return -ENOMEM;
  *ret = xmalloc((size_t)der_len);
  memcpy(*ret, der, (size_t)der_len);
  *ret_len = (size_t)der_len;
  OPENSSL_free(der);
  return 0;
}

static const EVP_MD *ecdsa_md(const struct ssh_key *k) {
  return k->bits == 384 ? EVP_sha384() : k->bits == 521 ? EVP_sha512() : EVP_sha256();
}

/* ---- verification ---- */

static int mismatch(struct err *err) {
  return sig_bad(err, "the signature does not match the signed data");
}

static int verify_rsa(const struct ssh_key *k, struct ssh_wire *w, const struct buf *data,
                      struct err *err) {
  const uint8_t *alg, *s;
  size_t alg_len, s_len, mod_len = k->rsa_n_len;
  uint8_t *padded;
  const EVP_MD *md;
  EVP_PKEY *pkey;
  int ok;

  if (ssh_wire_string(w, &alg, &alg_len) < 0 || ssh_wire_string(w, &s, &s_len) < 0 || w->n != 0)
    return sig_bad(err, "malformed RSA signature");
  if (ssh_bytes_is(alg, alg_len, "rsa-sha2-512"))
    md = EVP_sha512();
  else if (ssh_bytes_is(alg, alg_len, "rsa-sha2-256"))
    md = EVP_sha256();
  else if (ssh_bytes_is(alg, alg_len, "ssh-rsa"))
    return err_set_src(err, -EPROTONOSUPPORT, ERR_SRC_SIG,
                       "RSA signature algorithm ssh-rsa (SHA-1) is refused, as ssh-keygen refuses "
                       "it; sign with a current ssh-keygen (rsa-sha2-512)");
  else {
    char shown[48];
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "unknown RSA signature algorithm '%s'",
                       ssh_printable(alg, alg_len, shown, sizeof(shown)));
  }
  if (s_len == 0 || s_len > mod_len)
    return sig_bad(err, "malformed RSA signature (longer than the modulus)");
  /* OpenSSH left-pads a short signature to the modulus length */
  padded = xcalloc(1, mod_len);
  memcpy(padded + (mod_len - s_len), s, s_len);
  pkey = pkey_rsa(k);
  if (!pkey) {
    free(padded);
    return err_set_src(err, -EBADMSG, ERR_SRC_TLS, "cannot load the RSA public key");
  }
  ok = evp_verify(pkey, md, padded, mod_len, data->data, data->len);
  EVP_PKEY_free(pkey);
  free(padded);
  return ok ? 0 : mismatch(err);
}

static int verify_ecdsa(const struct ssh_key *k, const uint8_t *inner, size_t inner_len,
                        const void *data, size_t len, const EVP_MD *md, struct err *err) {
  uint8_t *der = NULL;
  size_t der_len = 0;
  EVP_PKEY *pkey;
  int ok;

  if (ecdsa_der(inner, inner_len, &der, &der_len) < 0)
    return sig_bad(err, "malformed ECDSA signature");
  pkey = pkey_ec(k);
  if (!pkey) {
    free(der);
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG,
                       "the ECDSA public key is not a point of its curve");
  }
  ok = evp_verify(pkey, md, der, der_len, data, len);
  EVP_PKEY_free(pkey);
  free(der);
  return ok ? 0 : mismatch(err);
}

/* PROTOCOL.u2f: what a FIDO authenticator signed for @data. */
static void sk_signed(const struct ssh_key *k, uint8_t flags, uint32_t counter,
                      const struct buf *data, struct buf *out) {
  uint8_t app_hash[32], msg_hash[32];

  ssh_sha256(k->application, k->application_len, app_hash);
  ssh_sha256(data->data, data->len, msg_hash);
  buf_append(out, app_hash, sizeof(app_hash));
  buf_putc(out, (char)flags);
  ssh_wire_put_u32(out, counter);
  buf_append(out, msg_hash, sizeof(msg_hash));
}

static int verify_blob(const struct ssh_key *k, const uint8_t *sigblob, size_t sig_len,
                       const struct buf *data, struct ssh_sig_details *d, struct err *err) {
  struct ssh_wire w = {sigblob, sig_len};
  const uint8_t *type, *inner;
  size_t type_len, inner_len;
  struct buf sk = BUF_INIT;
  char shown[64];
  int r;

  if (k->type == SSH_KEY_RSA)
    return verify_rsa(k, &w, data, err);
  if (ssh_wire_string(&w, &type, &type_len) < 0 || ssh_wire_string(&w, &inner, &inner_len) < 0)
    return sig_bad(err, "malformed signature");
  if (!ssh_bytes_is(type, type_len, k->name)) {
    if (k->type == SSH_KEY_SK_ECDSA_P256 &&
        ssh_bytes_is(type, type_len, "webauthn-sk-ecdsa-sha2-nistp256@openssh.com"))
      return err_set_src(err, -EPROTONOSUPPORT, ERR_SRC_SIG,
                         "webauthn signatures are not supported (ssh-keygen never makes them)");
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG,
                       "the signature is of type '%s' but the key is %s",
                       ssh_printable(type, type_len, shown, sizeof(shown)), k->name);
  }
  if (k->type == SSH_KEY_SK_ED25519 || k->type == SSH_KEY_SK_ECDSA_P256) {
    if (ssh_wire_u8(&w, &d->sk_flags) < 0 || ssh_wire_u32(&w, &d->sk_counter) < 0)
      return sig_bad(err, "malformed FIDO signature (no flags and counter)");
    d->sk = true;
  }
  if (w.n != 0)
    return sig_bad(err, "trailing bytes after the signature");
  switch (k->type) {
  case SSH_KEY_ED25519:
  case SSH_KEY_SK_ED25519:
    if (inner_len != crypto_sign_BYTES)
      return sig_bad(err, "malformed Ed25519 signature");
    if (k->type == SSH_KEY_SK_ED25519)
      sk_signed(k, d->sk_flags, d->sk_counter, data, &sk);
    else
      buf_append(&sk, data->data, data->len);
    r = crypto_sign_verify_detached(inner, (const uint8_t *)sk.data, sk.len, k->pk) == 0
            ? 0
            : mismatch(err);
    break;
  case SSH_KEY_ECDSA_P256:
  case SSH_KEY_ECDSA_P384:
  case SSH_KEY_ECDSA_P521:
    r = verify_ecdsa(k, inner, inner_len, data->data, data->len, ecdsa_md(k), err);
    break;
  case SSH_KEY_SK_ECDSA_P256:
    sk_signed(k, d->sk_flags, d->sk_counter, data, &sk);
    r = verify_ecdsa(k, inner, inner_len, sk.data, sk.len, EVP_sha256(), err);
    break;
  default:
    r = err_set_src(err, -EPROTONOSUPPORT, ERR_SRC_SIG, "%s keys cannot verify", k->name);
    break;
  }
  buf_dispose(&sk);
  return r;
}

static void signed_data(const char *namespace_, const char *hash_alg, const uint8_t *digest,
                        size_t digest_len, struct buf *out) {
  buf_append(out, MAGIC, MAGIC_LEN);
  ssh_wire_put_cstr(out, namespace_);
  ssh_wire_put_string(out, "", 0); /* reserved: always empty, as OpenSSH signs */
  ssh_wire_put_cstr(out, hash_alg);
  ssh_wire_put_string(out, digest, digest_len);
}

int ssh_sig_verify(const struct ssh_sig *sig, const void *msg, size_t len, const char *namespace_,
                   struct ssh_sig_details *ret_details, struct err *err) {
  struct ssh_sig_details d = {0};
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  struct buf data = BUF_INIT;
  const char *why;
  int r;

  if ((r = ssh_crypto_ready(err)) < 0)
    return r;
  if (!ssh_bytes_is(sig->namespace_, sig->namespace_len, namespace_)) {
    char ns[64];
    return err_set_src(err, -EKEYREJECTED, ERR_SRC_SIG,
                       "signature was made for namespace \"%s\", not \"%s\"",
                       ssh_printable(sig->namespace_, sig->namespace_len, ns, sizeof(ns)),
                       namespace_);
  }
  if ((why = ssh_key_unsupported(sig->key)))
    return err_set_src(err, -EPROTONOSUPPORT, ERR_SRC_SIG, "%s (%s, %u bits)", why,
                       sig->key->name, sig->key->bits);
  if (EVP_Digest(msg, len, digest, &digest_len,
                 strcmp(sig->hash_alg, "sha256") == 0 ? EVP_sha256() : EVP_sha512(),
                 NULL) != 1)
    return err_set_src(err, -EIO, ERR_SRC_TLS, "cannot compute %s of the message", sig->hash_alg);
  signed_data(namespace_, sig->hash_alg, digest, digest_len, &data);
  r = verify_blob(sig->key, sig->signature, sig->signature_len, &data, &d, err);
  buf_dispose(&data);
  if (r < 0)
    return r;
  if (ret_details)
    *ret_details = d;
  return 0;
}

void ssh_sig_sign_ed25519(const uint8_t sk[64], const char *namespace_, const void *msg,
                          size_t len, struct buf *out) {
  uint8_t digest[crypto_hash_sha512_BYTES], sig[crypto_sign_BYTES];
  struct buf data = BUF_INIT, blob = BUF_INIT, pub = BUF_INIT, sigblob = BUF_INIT;

  crypto_hash_sha512(digest, msg, len);
  signed_data(namespace_, "sha512", digest, sizeof(digest), &data);
  crypto_sign_detached(sig, NULL, (const uint8_t *)data.data, data.len, sk);

  ssh_wire_put_cstr(&pub, "ssh-ed25519");
  ssh_wire_put_string(&pub, sk + 32, 32); /* libsodium's secret key ends with the public */
  ssh_wire_put_cstr(&sigblob, "ssh-ed25519");
  ssh_wire_put_string(&sigblob, sig, sizeof(sig));
  buf_append(&blob, MAGIC, MAGIC_LEN);
  ssh_wire_put_u32(&blob, 1);
  ssh_wire_put_string(&blob, pub.data, pub.len);
  ssh_wire_put_cstr(&blob, namespace_);
  ssh_wire_put_string(&blob, "", 0);
  ssh_wire_put_cstr(&blob, "sha512");
  ssh_wire_put_string(&blob, sigblob.data, sigblob.len);

  buf_puts(out, "-----BEGIN SSH SIGNATURE-----\n");
  ssh_b64_append_wrapped(out, blob.data, blob.len, 70);
  buf_puts(out, "-----END SSH SIGNATURE-----\n");
  buf_dispose(&data);
  buf_dispose(&blob);
  buf_dispose(&pub);
  buf_dispose(&sigblob);
}
