/* libFuzzer target: the allowed_signers parser (options, quotes, times, key
 * blobs) and the OpenSSH pattern-list matcher on every parsed principal and
 * namespace list. Also the known_hosts checker, which shares the formats. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gitsrc/gitsrc-int.h"
#include "gitsrc/gitsrc.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct gitsrc_signers *s = NULL;
  char *text = malloc(size + 1);
  static const unsigned char key[51] = {0, 0, 0, 11, 's', 's', 'h', '-', 'e', 'd', '2',
                                        '5', '5', '1', '9', 0, 0, 0, 32};

  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  if (gitsrc_signers_parse("fuzz", text, size, &s, NULL) == 0) {
    for (size_t i = 0; i < s->n; i++) {
      (void)gitsrc_pattern_list_match("alice@example.com", s->entries[i].principals);
      if (s->entries[i].namespaces)
        (void)gitsrc_pattern_list_match("git", s->entries[i].namespaces);
      if (s->entries[i].has_valid_after && s->entries[i].has_valid_before &&
          s->entries[i].valid_before <= s->entries[i].valid_after)
        __builtin_trap(); /* the parser must refuse an empty window */
    }
    gitsrc_signers_free(s);
  }
  /* the input as a pattern list and as known_hosts text */
  (void)gitsrc_pattern_list_match("alice@example.com", text);
  (void)gitsrc_known_hosts_check("fuzz", text, size, "127.0.0.1", 2222, key, sizeof(key), NULL,
                                 NULL);
  free(text);
  return 0;
}
