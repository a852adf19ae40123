/* libFuzzer target: the ledger's SSH parsers: OpenSSH private keys
 * (openssh-key-v1), public key lines, allowed_signers / .pub trust files,
 * and armored SSH signatures (PROTOCOL.sshsig) over a fixed checkpoint.
 *
 * Invariant checked: a private key that parses, written out again, parses
 * to the same public key. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "ledger/ledger.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char checkpoint[] = "egressd/test.example/ledger\n3\n"
                                   "7miYRNP4PsWxEv3hjJPNOcRo9XLgwRZUotX/Eoqx84s=\n";
  const char *text = (const char *)data;
  struct ledger_key *k = NULL, *again = NULL;
  struct ledger_trust *t = NULL;
  struct ledger_pubkey pk;
  struct buf out = BUF_INIT;

  if (ledger_key_parse(text, size, "fuzz", &k, NULL) == 0) {
    ledger_key_format_private(k, &out);
    if (ledger_key_parse(out.data, out.len, "again", &again, NULL) != 0 ||
        !ledger_pubkey_equal(ledger_key_public(k), ledger_key_public(again)))
      __builtin_trap();
    buf_dispose_secret(&out);
    ledger_key_free(again);
    ledger_key_free(k);
  }
  if (ledger_trust_parse(text, size, "fuzz", 1795737600ULL * 1000000ULL, &t, NULL) == 0) {
    if (ledger_trust_count(t) == 0)
      __builtin_trap();
    ledger_trust_free(t);
  }
  (void)ledger_pubkey_parse(text, size, &pk, NULL);
  (void)ledger_sshsig_verify(text, size, LEDGER_NAMESPACE, checkpoint, sizeof(checkpoint) - 1,
                             &pk, NULL);
  return 0;
}
