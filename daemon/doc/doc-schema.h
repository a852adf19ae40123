/* Declarative structural checks of a doc tree: the types, known fields,
 * required fields, enums and integer ranges of a configuration format,
 * written as static tables, checked in one pass that reports every problem
 * with its position.
 *
 * Used by the config-repo model (intent/) and the host config (svc/). The
 * semantic rules (DNS names, FQDNs, cross references) stay with those
 * modules; this layer answers "is it shaped right".
 *
 * Messages name the field path ("spec.ports[1].number") and suggest the
 * closest known field for a typo ("unknown field 'sni_hosts'; did you mean
 * 'sniHosts'?").
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "base/diag.h"
#include "doc/doc.h"

enum doc_schema_kind {
  DOC_SCHEMA_ANY,      /* anything */
  DOC_SCHEMA_STR,      /* a string (enum_values restricts it) */
  DOC_SCHEMA_INT,      /* an integer in [min, max] */
  DOC_SCHEMA_BOOL,
  DOC_SCHEMA_DURATION, /* a string such as "15s" (time_parse_duration) */
  DOC_SCHEMA_OBJECT,   /* a mapping with the known fields below */
  DOC_SCHEMA_LIST,     /* a sequence of items */
  DOC_SCHEMA_STRMAP,   /* a mapping of string keys to string values (labels) */
};

struct doc_schema;

struct doc_schema_field {
  const char *name;
  const struct doc_schema *schema;
  bool required;
};

struct doc_schema {
  enum doc_schema_kind kind;
  const char *what;                        /* "a port number"; NULL: from the kind */
  const struct doc_schema_field *fields;   /* OBJECT: terminated by {NULL} */
  const struct doc_schema *items;          /* LIST */
  const char *const *enum_values;          /* STR: NULL-terminated, or NULL */
  int64_t min, max;                        /* INT (both 0: no range) */
  size_t min_items;                        /* LIST */
};

/* Check @n against @s. @path names @n in messages ("spec", "" for a root).
 * @file is used for positions of nodes built without one. Returns the number
 * of errors added to @diags. A NULL @n is "missing" and reports nothing (the
 * caller's parent reports missing required fields). */
size_t doc_schema_check(const struct doc_node *n, const struct doc_schema *s, const char *path,
                        struct diag_list *diags);

/* Levenshtein distance with a cap (for "did you mean"); exposed for tests. */
unsigned doc_schema_distance(const char *a, const char *b, unsigned cap);
