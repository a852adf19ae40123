/* libFuzzer target: raw commit objects through the git signature split, the
 * commit parser (headers, identities, trailers) and the whole verification
 * (SSHSIG dearmor/parse and check by daemon/ssh/, allowed_signers
 * authorisation).
 * The input is the commit object; the signers are a fixed ed25519 line. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "gitsrc/gitsrc-int.h"
#include "gitsrc/gitsrc.h"
#include "ssh/ssh.h"
#include "fuzz.h"

static const char signers_text[] =
    "alice@example.com,!x@* namespaces=\"git\",valid-after=\"20200101Z\" ssh-ed25519 "
    "AAAAC3NzaC1lZDI1NTE5AAAAII8y5Own4izt6nGepMZ00OqqjCRaYwxMjrTkx2FgndBs\n"
    "*@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBuMBl0O7Xpy9jyE7IeyAcl4GuPmzcRbpmZOdnjGtJrl\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct gitsrc_signers *signers;
  struct buf payload = BUF_INIT, sig = BUF_INIT;
  struct gitsrc_commit_info ci;
  struct gitsrc_signer signer;
  struct ssh_sig parsed;
  enum gitsrc_verdict verdict;
  unsigned headers;

  if (!signers && gitsrc_signers_parse("fuzz", signers_text, strlen(signers_text), &signers,
                                       NULL) < 0)
    __builtin_trap();
  if (gitsrc_commit_split((const char *)data, size, &payload, &sig, &headers, NULL) == 1 &&
      ssh_sig_parse(sig.data, sig.len, &parsed, NULL) == 0) {
    (void)ssh_sig_verify(&parsed, payload.data, payload.len, "git", NULL, NULL);
    ssh_sig_dispose(&parsed);
  }
  if (gitsrc_commit_parse(data, size, &ci, NULL) == 0) {
    (void)gitsrc_commit_trailer(&ci, "Egressd-Allow-Prune");
    gitsrc_commit_info_dispose(&ci);
  }
  if (gitsrc_verify_commit_buffer(data, size, signers, &signer, &verdict, NULL) == 0 &&
      verdict != GITSRC_VERDICT_GOOD)
    __builtin_trap(); /* a pass must always be a good verdict */
  buf_dispose(&payload);
  buf_dispose(&sig);
  return 0;
}
