/* libFuzzer target: daemon/ssh's binary parsers. The input is tried as an
 * armored SSH signature (parsed, then verified over a fixed message for
 * every outcome), as a public key blob, and as a revocation file (KRL or
 * list of keys).
 *
 * Invariants checked: a key that parses re-parses from its canonical blob
 * to an equal key; a signature that verifies has a key that can verify; a
 * revocation file that parses contains every explicit key it lists. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ssh/ssh.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char message[] = "the message\n";
  struct ssh_sig sig;
  struct ssh_key *key = NULL, *again = NULL;
  struct ssh_revoked *rv = NULL;
  struct ssh_sig_details d;

  if (ssh_sig_parse((const char *)data, size, &sig, NULL) == 0) {
    if (ssh_sig_verify(&sig, message, sizeof(message) - 1, "file", &d, NULL) == 0)
      require(ssh_key_unsupported(sig.key) == NULL);
    ssh_sig_dispose(&sig);
  }
  if (ssh_key_from_blob(data, size, &key, NULL) == 0) {
    char a[SSH_FINGERPRINT_SIZE], b[SSH_FINGERPRINT_SIZE];
    require(ssh_key_from_blob(key->blob, key->blob_len, &again, NULL) == 0);
    require(ssh_key_equal(key, again));
    require(strcmp(ssh_key_fingerprint(key, a), ssh_key_fingerprint(again, b)) == 0);
    ssh_key_free(again);
  }
  if (ssh_revoked_parse("fuzz", data, size, &rv, NULL) == 0) {
    if (key && ssh_revoked_count(rv) == 0)
      require(!ssh_revoked_contains(rv, key));
    ssh_revoked_free(rv);
  }
  ssh_key_free(key);
  return 0;
}
