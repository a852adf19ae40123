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
 * Verification is daemon/ssh/'s (ssh_sig_parse/ssh_sig_verify), shared with
 * gitsrc/'s commit signatures; signing stays here because the secret key
 * never leaves struct ledger_key (ledger-key.c).
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "ledger/ledger-int.h"
#include "ssh/ssh.h"

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

int ledger_sshsig_verify(const char *armored, size_t armored_len, const char *ns, const void *msg,
                         size_t len, struct ledger_pubkey *ret_signer, struct err *err) {
  struct ssh_sig sig = {0};
  struct err sub = ERR_INIT;
  char fp[SSH_FINGERPRINT_SIZE];
  int r;

  r = crypto_ready(err);
  if (r < 0)
    return r;
  if (armored_len > SIGNATURE_MAX)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "the signature is larger than %u bytes",
                       SIGNATURE_MAX);
  /* daemon/ssh/ reads and checks it as ssh-keygen -Y verify does (W-7:
   * the blob's reserved field is ignored, an empty one is signed) */
  if (ssh_sig_parse(armored, armored_len, &sig, &sub) < 0)
    return err_set_src(err, -EBADMSG, ERR_SRC_SIG, "malformed SSH signature: %s", sub.msg);
  if (sig.key->type != SSH_KEY_ED25519) {
    r = err_set_src(err, -ENOTSUP, ERR_SRC_SIG,
                    "the key is of type '%s'; only ssh-ed25519 keys are supported", sig.key->name);
    goto out;
  }
  r = ssh_sig_verify(&sig, msg, len, ns, NULL, &sub);
  if (r == -EKEYREJECTED) {
    r = err_set_src(err, -EPERM, ERR_SRC_SIG, "the signature is for another namespace, not '%s'",
                    ns);
    goto out;
  }
  if (r < 0) {
    r = err_set_src(err, -EPERM, ERR_SRC_SIG, "the signature by %s does not match the signed text",
                    ssh_key_fingerprint(sig.key, fp));
    goto out;
  }
  if (ret_signer)
    memcpy(ret_signer->pk, sig.key->pk, sizeof(ret_signer->pk));
  r = 0;
out:
  ssh_sig_dispose(&sig);
  return r;
}
