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
 * Signing and verification are daemon/ssh/'s (ssh_sig_sign_ed25519,
 * ssh_sig_parse/ssh_sig_verify), shared with gitsrc/'s commit signatures;
 * the secret key is handed over only inside ledger-key.c, where it lives.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "ledger/ledger-int.h"
#include "ssh/ssh.h"

void ledger_sshsig_sign(const struct ledger_key *k, const char *ns, const void *msg, size_t len,
                        struct buf *out) {
  key_sshsig_sign(k, ns, msg, len, out);
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
