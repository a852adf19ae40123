/* plan: what it takes to make one cluster match the rendered objects.
 * Layer 2: pure functions over doc trees; no I/O, no logging.
 *
 * Drift is judged on the fields egressd sets, never on the whole object:
 *   - every field of the desired object must be in the live object with the
 *     same value (maps compare by key, so fields the API server defaults,
 *     other managers' fields and the operator's status are not drift; lists
 *     compare as wholes, element by element, as the atomic lists of the Istio
 *     CRDs are replaced whole by server-side apply);
 *   - every field the live object's managedFields say egressd applied must
 *     still be desired (a field egressd stopped rendering must be removed,
 *     which a server-side apply does).
 *
 * Prune safety lives here as rules the plan enforces (DESIGN.md §4.5):
 * only objects in the caller's inventory are deleted, with their UID as a
 * precondition; an empty render never deletes; more deletions than the
 * budget need an explicit allowance. Objects that carry egressd's labels
 * but are not in the inventory are reported, never deleted.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "base/strmap.h"
#include "doc/doc.h"

enum plan_action {
  PLAN_CREATE,     /* desired, not live (the applier checks for an unlabelled look-alike) */
  PLAN_UPDATE,     /* desired and live differ on egressd's fields */
  PLAN_UNCHANGED,
  PLAN_DELETE,     /* live, in the inventory, no longer desired */
  PLAN_ORPHAN,     /* live with egressd's labels but not in the inventory: left alone */
  PLAN_HELD,       /* would be deleted, but a prune safety rule holds it back */
  _PLAN_ACTION_MAX,
};

const char *plan_action_name(enum plan_action a);

/* One object the caller wants (desired) or found (live). */
struct plan_input {
  const char *kind;          /* "VirtualService" */
  const char *api_version;   /* "networking.istio.io/v1beta1" */
  const char *namespace;
  const char *name;
  int rank;                  /* apply order of the kind (render_kind) */
  bool adopt;                /* desired only: may take over an unlabelled object */
  const struct doc_node *object;
};

struct plan_item {
  enum plan_action action;
  const char *kind, *api_version, *namespace, *name;   /* borrowed from the inputs */
  int rank;
  bool adopt;
  const struct doc_node *desired;   /* NULL for DELETE and ORPHAN */
  const struct doc_node *live;      /* NULL for CREATE */
  const char *uid;                  /* of the live object */
  char **drift;                     /* UPDATE: the field paths that differ */
  size_t n_drift;
};

struct plan_options {
  const char *manager;       /* field manager, default "egressd" */
  unsigned prune_budget;     /* deletions allowed without an allowance */
  unsigned prune_allowance;  /* from the commit (Egressd-Allow-Prune: N); 0 = none */
  /* "Kind/namespace/name" -> uid (char *) of what egressd created here; NULL
   * means no inventory yet, so nothing is deleted */
  const struct strmap *inventory;
};

struct plan {
  struct plan_item *items;   /* creates/updates/unchanged in apply order, then deletes in
                                reverse order, then held deletions and orphans */
  size_t n;
  size_t count[_PLAN_ACTION_MAX];
  /* set when deletions were held back; the message says why and what to do */
  bool prune_refused;
  char prune_refused_why[512];
};

/* Compare and order. @desired and @live may be in any order; duplicates are
 * a caller bug. Deletions that break a safety rule are not planned: they
 * become PLAN_HELD items and plan->prune_refused says why (the rest of the
 * plan stands). Returns 0, or -EINVAL for an input without kind or name. */
int plan_build(const struct plan_input *desired, size_t n_desired, const struct plan_input *live,
               size_t n_live, const struct plan_options *opts, struct plan *ret, struct err *err);
void plan_dispose(struct plan *p);

/* Do the live object's egressd-owned fields and values match @desired?
 * Fills *ret_paths (malloc'd strings, caller frees with plan_paths_free) with
 * up to 32 differing paths such as "spec.http[1].route" when not NULL.
 * Returns true when there is no drift. */
bool plan_object_in_sync(const struct doc_node *desired, const struct doc_node *live,
                         const char *manager, char ***ret_paths, size_t *ret_n);
void plan_paths_free(char **paths, size_t n);

/* The part of @live an operator should compare with @desired: the fields
 * desired sets plus the fields @manager owns, without server bookkeeping
 * (managedFields, resourceVersion, uid, generation, creationTimestamp,
 * status). Built in @a. */
struct doc_node *plan_live_projection(struct doc_arena *a, const struct doc_node *desired,
                                      const struct doc_node *live, const char *manager);

/* "Kind/namespace/name", the key of inventories and reports; malloc'd. */
char *plan_key(const char *kind, const char *ns, const char *name);
