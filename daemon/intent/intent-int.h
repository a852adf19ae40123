/* Private to daemon/intent/. */
#pragma once

#include "doc/doc.h"
#include "intent/intent.h"

/* State of one intent_repo_load() call. */
struct load {
  struct intent_repo *repo;
  struct diag_list *diags;
  const struct intent_load_options *opts;
  size_t prefix_len;       /* of the file names in messages: strip for ->path */
  struct intent_gateway **gateways;
  size_t n_gateways, cap_gateways;
  struct intent **intents;
  size_t n_intents, cap_intents;
};

void intent_selector_parse(struct doc_arena *a, const struct doc_node *n,
                           struct intent_selector *sel);
/* The cross-object rules: names, references, ports, conflicts, selectors.
 * Fills repo->gateway_index and intent->gateway. */
void intent_repo_check(struct load *l);
