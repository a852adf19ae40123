/* SSH signatures (openssh-portable PROTOCOL.sshsig) with ssh-ed25519 keys:
 * what `ssh-keygen -Y sign` writes and `ssh-keygen -Y verify` checks.
 *
 *   blob   = "SSHSIG" u32(1) string(publickey) string(namespace)
 *            string(reserved) string(hash_algorithm) string(signature)
 *   signed = "SSHSIG" string(namespace) string(reserved)
 *            string(hash_algorithm) string(H(message))
 *
 * Ed25519 signatures are deterministic, so ledger_sshsig_sign() output is
 * byte-identical to ssh-keygen's for the same key and message; the unit
 * tests hold a signature made by ssh-keygen to prove it. The armor is
 * base64 wrapped at 70 columns, as ssh-keygen's sshbuf_dtob64() writes it.
 *
 * When you change this, also touch gitsrc/'s commit-signature verifier
 * (same wire format; to be shared once both settle).
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "ledger/ledger-int.h"

#define MAGIC "SSHSIG"
#define MAGIC_LEN 6
#define ARMOR_LABEL "SSH SIGNATURE"

static void signed_data(const char *ns, const char *hash_alg, const uint8_t *digest,
                        size_t digest_len, struct buf *out) {
  buf_append(out, MAGIC, MAGIC_LEN);
  wire_put_cstr(out, ns);
  wire_put_cstr(out, "");
  wire_put_cstr(out, hash_alg);
  wire_put_string(out, digest, digest_len);
}

void ledger_sshsig_sign(const struct ledger_key *k, const char *ns, const void *msg, size_t len,
                        struct buf *out) {
  uint8_t digest[crypto_hash_sha512_BYTES], sig[crypto_sign_BYTES];
  struct buf data = BUF_INIT, blob = BUF_INIT, pub = BUF_INIT, sigblob = BUF_INIT;

  crypto_hash_sha512(digest, msg, len);
  signed_data(ns, "sha512", digest, sizeof(digest), &data);
  key_sign(k, data.data, data.len, sig);

  pubkey_blob(ledger_key_public(k), &pub);
  wire_put_cstr(&sigblob, "ssh-ed25519");
  wire_put_string(&sigblob, sig, sizeof(sig));
  buf_append(&blob, MAGIC, MAGIC_LEN);
  wire_put_u32(&blob, 1);
  wire_put_string(&blob, pub.data, pub.len);
  wire_put_cstr(&blob, ns);
  wire_put_cstr(&blob, "");
  wire_put_cstr(&blob, "sha512");
  wire_put_string(&blob, sigblob.data, sigblob.len);

  buf_puts(out, "-----BEGIN " ARMOR_LABEL "-----\n");
  b64_append_wrapped(out, blob.data, blob.len, 70);
  buf_puts(out, "-----END " ARMOR_LABEL "-----\n");
  buf_dispose(&data);
  buf_dispose(&blob);
  buf_dispose(&pub);
  buf_dispose(&sigblob);
}

static bool bytes_is(const uint8_t *s, size_t len, const char *lit) {
  return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

int ledger_sshsig_verify(const char *armored, size_t armored_len, const char *ns, const void *msg,
                         size_t len, struct ledger_pubkey *ret_signer, struct err *err) {
  uint8_t *blob = NULL, digest[crypto_hash_sha512_BYTES];
  size_t blob_len = 0, digest_len;
  struct wire w, sw;
  const uint8_t *pub, *sig_ns, *reserved, *alg, *sigblob, *sig;
  size_t pub_len, ns_len, reserved_len, alg_len, sigblob_len, sig_len;
  struct ledger_pubkey signer;
  struct buf data = BUF_INIT;
  uint32_t version;
  int r;

  r = crypto_ready(err);
  if (r < 0)
    return r;
  if (armored_len > SIGNATURE_MAX)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "the signature is larger than %u bytes",
                       SIGNATURE_MAX);
  r = armor_decode(armored, armored_len, ARMOR_LABEL, "the signature", &blob, &blob_len, err);
  if (r < 0)
    return r;
  w = (struct wire){blob, blob_len};
  if (w.n < MAGIC_LEN || memcmp(w.p, MAGIC, MAGIC_LEN) != 0) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_SIG, "not an SSH signature (no SSHSIG magic)");
    goto out;
  }
  w.p += MAGIC_LEN;
  w.n -= MAGIC_LEN;
  if (wire_u32(&w, &version) < 0 || wire_string(&w, &pub, &pub_len) < 0 ||
      wire_string(&w, &sig_ns, &ns_len) < 0 || wire_string(&w, &reserved, &reserved_len) < 0 ||
      wire_string(&w, &alg, &alg_len) < 0 || wire_string(&w, &sigblob, &sigblob_len) < 0 ||
      w.n != 0) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_SIG, "malformed SSH signature");
    goto out;
  }
  if (version != 1) {
    r = err_set_src(err, -ENOTSUP, ERR_SRC_SIG, "SSH signature version %u is not supported",
                    version);
    goto out;
  }
  r = pubkey_from_blob(pub, pub_len, &signer, err);
  if (r < 0)
    goto out;
  if (!bytes_is(sig_ns, ns_len, ns)) {
    r = err_set_src(err, -EPERM, ERR_SRC_SIG, "the signature is for another namespace, not '%s'",
                    ns);
    goto out;
  }
  if (bytes_is(alg, alg_len, "sha512")) {
    crypto_hash_sha512(digest, msg, len);
    digest_len = crypto_hash_sha512_BYTES;
  } else if (bytes_is(alg, alg_len, "sha256")) {
    crypto_hash_sha256(digest, msg, len);
    digest_len = crypto_hash_sha256_BYTES;
  } else {
    r = err_set_src(err, -ENOTSUP, ERR_SRC_SIG, "the signature uses an unsupported hash "
                    "(sha512 and sha256 are)");
    goto out;
  }
  sw = (struct wire){sigblob, sigblob_len};
  if (!wire_string_is(&sw, "ssh-ed25519") || wire_string(&sw, &sig, &sig_len) < 0 ||
      sig_len != crypto_sign_BYTES || sw.n != 0) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_SIG, "malformed ssh-ed25519 signature");
    goto out;
  }
  /* the signed data carries the signature's own (ignored) reserved field */
  buf_append(&data, MAGIC, MAGIC_LEN);
  wire_put_string(&data, sig_ns, ns_len);
  wire_put_string(&data, reserved, reserved_len);
  wire_put_string(&data, alg, alg_len);
  wire_put_string(&data, digest, digest_len);
  if (crypto_sign_verify_detached(sig, (const uint8_t *)data.data, data.len, signer.pk) != 0) {
    char fp[LEDGER_FINGERPRINT_SIZE];
    r = err_set_src(err, -EPERM, ERR_SRC_SIG, "the signature by %s does not match the signed text",
                    ledger_pubkey_fingerprint(&signer, fp));
    goto out;
  }
  if (ret_signer)
    *ret_signer = signer;
  r = 0;
out:
  buf_dispose(&data);
  free(blob);
  return r;
}
