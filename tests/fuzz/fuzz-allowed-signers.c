/* libFuzzer target: the allowed_signers parser (options, quotes, times, key
 * blobs of every type) and the OpenSSH pattern-list matcher on every parsed
 * principal and namespace list, in both modes (allowed_signers, and .pub
 * lines for the ledger). Also the known_hosts checker, which shares the
 * formats. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gitsrc/gitsrc-int.h"
#include "gitsrc/gitsrc.h"
#include "ssh/ssh.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const unsigned char key[51] = {0, 0, 0, 11, 's', 's', 'h', '-', 'e', 'd', '2',
                                        '5', '5', '1', '9', 0, 0, 0, 32};
  char *text = malloc(size + 1);

  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  for (unsigned flags = 0; flags <= SSH_SIGNERS_BARE_KEYS; flags += SSH_SIGNERS_BARE_KEYS) {
    struct ssh_signers *s = NULL;
    if (ssh_signers_parse("fuzz", text, size, flags, &s, NULL) != 0)
      continue;
    for (size_t i = 0; i < s->n; i++) {
      const struct ssh_signer *e = &s->entries[i];
      require(e->key && e->line > 0);
      require(e->principals || (flags & SSH_SIGNERS_BARE_KEYS));
      if (e->principals)
        (void)ssh_pattern_list_match("alice@example.com", e->principals);
      if (e->namespaces)
        (void)ssh_pattern_list_match("git", e->namespaces);
      /* the parser must refuse an empty window */
      require(!(e->has_valid_after && e->has_valid_before && e->valid_before <= e->valid_after));
    }
    ssh_signers_free(s);
  }
  /* the input as a pattern list and as known_hosts text */
  (void)ssh_pattern_list_match("alice@example.com", text);
  (void)gitsrc_known_hosts_check("fuzz", text, size, "127.0.0.1", 2222, key, sizeof(key), NULL,
                                 NULL);
  free(text);
  return 0;
}
