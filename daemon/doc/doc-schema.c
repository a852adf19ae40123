/* Structural checks of doc trees against static schema tables; see
 * doc-schema.h. Recursion depth is bounded by the parser's depth limit.
 *
 * When you add a schema kind, also touch: check() below, kind_name() and the
 * tests in tests/unit/test-doc.c. */
#include "doc/doc-schema.h"

#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"

/* lower-case, without '_' and '-': "sni_hosts" and "sniHosts" normalise alike */
static size_t normalise(const char *in, char *out, size_t size) {
  size_t n = 0;

  for (; *in && n + 1 < size; in++)
    if (*in != '_' && *in != '-')
      out[n++] = (*in >= 'A' && *in <= 'Z') ? (char)(*in | 0x20) : *in;
  out[n] = '\0';
  return n;
}

unsigned doc_schema_distance(const char *a, const char *b, unsigned cap) {
  char na[65], nb[65];
  size_t la, lb;
  unsigned prev[65], cur[65];

  if (strlen(a) > 64 || strlen(b) > 64)
    return cap + 1;
  la = normalise(a, na, sizeof(na));
  lb = normalise(b, nb, sizeof(nb));
  for (size_t j = 0; j <= lb; j++)
    prev[j] = (unsigned)j;
  for (size_t i = 1; i <= la; i++) {
    unsigned best;
    cur[0] = (unsigned)i;
    best = cur[0];
    for (size_t j = 1; j <= lb; j++) {
      unsigned del = prev[j] + 1, ins = cur[j - 1] + 1;
      unsigned rep = prev[j - 1] + (na[i - 1] == nb[j - 1] ? 0 : 1);
      cur[j] = del < ins ? del : ins;
      if (rep < cur[j])
        cur[j] = rep;
      if (cur[j] < best)
        best = cur[j];
    }
    if (best > cap)
      return cap + 1;
    memcpy(prev, cur, (lb + 1) * sizeof(unsigned));
  }
  return prev[lb];
}

static const char *kind_name(const struct doc_schema *s) {
  if (s->what)
    return s->what;
  switch (s->kind) {
  case DOC_SCHEMA_STR:
  case DOC_SCHEMA_DURATION:
    return "a string";
  case DOC_SCHEMA_INT:
    return "an integer";
  case DOC_SCHEMA_BOOL:
    return "a boolean (true or false)";
  case DOC_SCHEMA_OBJECT:
  case DOC_SCHEMA_STRMAP:
    return "a mapping";
  case DOC_SCHEMA_LIST:
    return "a list";
  case DOC_SCHEMA_ANY:
    return "a value";
  }
  return "a value";
}

static void got(const struct doc_node *n, char *buf, size_t size) {
  if (n->type == DOC_STR)
    str_format(buf, size, "the string \"%.40s%s\"", n->u.str.s, n->u.str.len > 40 ? "..." : "");
  else if (n->type == DOC_INT)
    str_format(buf, size, "the integer %lld", (long long)n->u.i);
  else if (n->type == DOC_BOOL)
    str_format(buf, size, "%s", n->u.b ? "true" : "false");
  else
    str_format(buf, size, "%s", doc_type_name(n->type));
}

static size_t type_error(const struct doc_node *n, const struct doc_schema *s, const char *path,
                         struct diag_list *d) {
  char g[96];

  got(n, g, sizeof(g));
  diag_error(d, n->file, n->line, n->col, "%s must be %s, not %s", *path ? path : "the value",
             kind_name(s), g);
  return 1;
}

static const char *suggest(const struct doc_schema_field *fields, const char *key) {
  const char *best = NULL;
  unsigned best_d = 3;

  for (const struct doc_schema_field *f = fields; f->name; f++) {
    unsigned dist = doc_schema_distance(key, f->name, 2);
    if (dist < best_d) {
      best_d = dist;
      best = f->name;
    }
  }
  return best;
}

/* The field path grows and shrinks in one buffer as the walk descends:
 * no allocation per field when nothing is wrong. */
static void push_key(struct buf *path, const char *key) {
  if (path->len)
    buf_putc(path, '.');
  buf_puts(path, key);
}

static size_t check(const struct doc_node *n, const struct doc_schema *s, struct buf *pathbuf,
                    struct diag_list *d) {
  size_t errors = 0, mark = pathbuf->len;
  const char *path = buf_cstr(pathbuf);

  if (!n)
    return 0;
  switch (s->kind) {
  case DOC_SCHEMA_ANY:
    return 0;
  case DOC_SCHEMA_STR:
    if (n->type != DOC_STR)
      return type_error(n, s, path, d);
    if (s->enum_values) {
      struct buf allowed = BUF_INIT;
      for (const char *const *v = s->enum_values; *v; v++)
        if (strcmp(*v, n->u.str.s) == 0)
          return 0;
      for (const char *const *v = s->enum_values; *v; v++)
        buf_printf(&allowed, "%s%s", v == s->enum_values ? "" : ", ", *v);
      diag_error(d, n->file, n->line, n->col, "%s: '%s' is not one of %s", path, n->u.str.s,
                 buf_cstr(&allowed));
      buf_dispose(&allowed);
      return 1;
    }
    return 0;
  case DOC_SCHEMA_DURATION: {
    uint64_t usec;
    if (n->type != DOC_STR)
      return type_error(n, s, path, d);
    if (time_parse_duration(n->u.str.s, &usec) < 0) {
      diag_error(d, n->file, n->line, n->col,
                 "%s: '%s' is not a duration; write it as 30s, 5m, 1h30m or 250ms", path,
                 n->u.str.s);
      return 1;
    }
    return 0;
  }
  case DOC_SCHEMA_INT:
    if (n->type != DOC_INT)
      return type_error(n, s, path, d);
    if ((s->min || s->max) && (n->u.i < s->min || n->u.i > s->max)) {
      diag_error(d, n->file, n->line, n->col, "%s: %lld is out of range %lld-%lld", path,
                 (long long)n->u.i, (long long)s->min, (long long)s->max);
      return 1;
    }
    return 0;
  case DOC_SCHEMA_BOOL:
    if (n->type != DOC_BOOL)
      return type_error(n, s, path, d);
    return 0;
  case DOC_SCHEMA_STRMAP:
    if (n->type != DOC_MAP)
      return type_error(n, s, path, d);
    for (size_t i = 0; i < n->u.map.n; i++) {
      const struct doc_pair *p = &n->u.map.items[i];
      if (p->value->type != DOC_STR) {
        char g[96];
        got(p->value, g, sizeof(g));
        diag_error(d, p->value->file, p->value->line, p->value->col,
                   "%s.%s must be a string, not %s; quote it", path, p->key, g);
        errors++;
      }
    }
    return errors;
  case DOC_SCHEMA_LIST:
    if (n->type != DOC_SEQ)
      return type_error(n, s, path, d);
    if (n->u.seq.n < s->min_items) {
      diag_error(d, n->file, n->line, n->col, "%s must have at least %zu item%s", path,
                 s->min_items, s->min_items == 1 ? "" : "s");
      errors++;
    }
    for (size_t i = 0; i < n->u.seq.n; i++) {
      buf_printf(pathbuf, "[%zu]", i);
      errors += check(n->u.seq.items[i], s->items, pathbuf, d);
      buf_truncate(pathbuf, mark);
    }
    return errors;
  case DOC_SCHEMA_OBJECT:
    if (n->type != DOC_MAP)
      return type_error(n, s, path, d);
    for (size_t i = 0; i < n->u.map.n; i++) {
      const struct doc_pair *p = &n->u.map.items[i];
      const struct doc_schema_field *f;

      for (f = s->fields; f->name; f++)
        if (strcmp(f->name, p->key) == 0)
          break;
      if (!f->name) {
        const char *sug = suggest(s->fields, p->key);
        if (sug)
          diag_error(d, n->file, p->line, p->col, "unknown field '%s' in %s; did you mean '%s'?",
                     p->key, *path ? path : "the document", sug);
        else
          diag_error(d, n->file, p->line, p->col, "unknown field '%s' in %s", p->key,
                     *path ? path : "the document");
        errors++;
        continue;
      }
      push_key(pathbuf, p->key);
      if (p->value->type == DOC_NULL && f->schema->kind != DOC_SCHEMA_ANY) {
        diag_error(d, n->file, p->line, p->col, "%s has no value; give it %s or remove it",
                   buf_cstr(pathbuf), kind_name(f->schema));
        errors++;
      } else {
        errors += check(p->value, f->schema, pathbuf, d);
      }
      buf_truncate(pathbuf, mark);
      path = buf_cstr(pathbuf); /* the buffer may have moved */
    }
    for (const struct doc_schema_field *f = s->fields; f->name; f++) {
      if (f->required && !doc_map_get(n, f->name)) {
        diag_error(d, n->file, n->line, n->col, "missing required field '%s'%s%s", f->name,
                   *path ? " in " : "", path);
        errors++;
      }
    }
    return errors;
  }
  return errors;
}

size_t doc_schema_check(const struct doc_node *n, const struct doc_schema *s, const char *path,
                        struct diag_list *diags) {
  struct buf pathbuf = BUF_INIT;
  size_t errors;

  buf_puts(&pathbuf, path ? path : "");
  errors = check(n, s, &pathbuf, diags);
  buf_dispose(&pathbuf);
  return errors;
}
