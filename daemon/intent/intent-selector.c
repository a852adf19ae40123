/* Kubernetes label selectors over Fleet cluster labels (matchLabels AND
 * matchExpressions, as in metav1.LabelSelector), and which clusters an intent
 * or a gateway is rendered on. */
#include <string.h>

#include "intent/intent-int.h"

static const char *label(const struct intent_label *labels, size_t n, const char *key) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(labels[i].key, key) == 0)
      return labels[i].value;
  return NULL;
}

static bool in_values(const struct intent_selector_expr *x, const char *v) {
  for (size_t i = 0; i < x->n_values; i++)
    if (strcmp(x->values[i], v) == 0)
      return true;
  return false;
}

bool intent_selector_matches(const struct intent_selector *sel, const struct intent_label *labels,
                             size_t n_labels) {
  if (!sel || !sel->present)
    return true;
  for (size_t i = 0; i < sel->n_match_labels; i++) {
    const char *v = label(labels, n_labels, sel->match_labels[i].key);
    if (!v || strcmp(v, sel->match_labels[i].value) != 0)
      return false;
  }
  for (size_t i = 0; i < sel->n_exprs; i++) {
    const struct intent_selector_expr *x = &sel->exprs[i];
    const char *v = label(labels, n_labels, x->key);
    switch (x->op) {
    case INTENT_SELECTOR_IN:
      if (!v || !in_values(x, v))
        return false;
      break;
    case INTENT_SELECTOR_NOT_IN:
      if (v && in_values(x, v))
        return false;
      break;
    case INTENT_SELECTOR_EXISTS:
      if (!v)
        return false;
      break;
    case INTENT_SELECTOR_DOES_NOT_EXIST:
      if (v)
        return false;
      break;
    }
  }
  return true;
}

bool intent_applies_to(const struct intent *in, const struct intent_fleet_cluster *cluster) {
  return !cluster || intent_selector_matches(&in->clusters, cluster->labels, cluster->n_labels);
}

bool intent_gateway_applies_to(const struct intent_gateway *gw,
                               const struct intent_fleet_cluster *cluster) {
  return !cluster || intent_selector_matches(&gw->clusters, cluster->labels, cluster->n_labels);
}
