/* The template engine: a parsed YAML template plus a tree of values gives a
 * new tree. Values enter as nodes (or, inside a longer string, as the text of
 * a scalar), so no value can change the structure of the document: a host
 * named "a: b\n- c" stays one string. See render-int.h for the syntax.
 *
 * Positions: every node and map key of the result keeps the template's
 * file:line:col; a value inserted whole gets its placeholder's position (its
 * inner nodes, built in code, have none). render-crd.c reports at them. */
#include <errno.h>
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "render/render-int.h"

/* Marker for "remove this key or item". */
static struct doc_node absent_node;
#define ABSENT (&absent_node)

struct tctx {
  struct doc_arena *out;
  const struct doc_node *values;
  struct diag_list *diags;
  size_t errors;
};

static const struct doc_node *lookup(const struct doc_node *values, const char *path, size_t len,
                                     bool *found) {
  const struct doc_node *n = values;
  char key[128];
  size_t i = 0;

  *found = false;
  while (i < len) {
    size_t j = i;
    while (j < len && path[j] != '.')
      j++;
    if (j == i || j - i >= sizeof(key) || !doc_is(n, DOC_MAP))
      return NULL;
    memcpy(key, path + i, j - i);
    key[j - i] = '\0';
    {
      const struct doc_pair *p = doc_map_pair(n, key);
      if (!p)
        return NULL;
      n = p->value;
    }
    i = j + 1;
  }
  *found = true;
  return n;
}

static void scalar_text(const struct doc_node *v, struct buf *b) {
  switch (v->type) {
  case DOC_STR:
    buf_append(b, v->u.str.s, v->u.str.len);
    break;
  case DOC_INT:
    buf_printf(b, "%lld", (long long)v->u.i);
    break;
  case DOC_BOOL:
    buf_puts(b, v->u.b ? "true" : "false");
    break;
  case DOC_FLOAT:
    buf_puts(b, v->u.str.s ? v->u.str.s : "0");
    break;
  default:
    break;
  }
}

static struct doc_node *subst_string(struct tctx *t, const struct doc_node *n) {
  const char *s = n->u.str.s;
  size_t len = n->u.str.len;
  struct buf b = BUF_INIT;
  struct doc_node *res;

  /* a whole-scalar placeholder "${path}" takes the value as a node */
  if (len > 3 && s[0] == '$' && s[1] == '{' && s[len - 1] == '}' &&
      !memchr(s + 2, '}', len - 3) && !memchr(s + 2, '$', len - 3)) {
    bool found;
    const struct doc_node *v = lookup(t->values, s + 2, len - 3, &found);
    if (!found) {
      diag_error(t->diags, n->file, n->line, n->col, "template: unknown value '%.*s'",
                 (int)(len - 3), s + 2);
      t->errors++;
      return ABSENT;
    }
    if (!v || v->type == DOC_NULL)
      return ABSENT;
    res = doc_copy(t->out, v);
    if (!res->line) { /* a value built in code: it was written at the placeholder */
      res->file = n->file;
      res->line = n->line;
      res->col = n->col;
    }
    return res;
  }
  if (!memchr(s, '$', len))
    return doc_copy(t->out, n);
  for (size_t i = 0; i < len;) {
    if (s[i] == '$' && i + 2 < len && s[i + 1] == '$' && s[i + 2] == '{') {
      buf_puts(&b, "${");
      i += 3;
    } else if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
      const char *end = memchr(s + i + 2, '}', len - i - 2);
      const struct doc_node *v;
      bool found;

      if (!end) {
        diag_error(t->diags, n->file, n->line, n->col, "template: '${' without a closing '}'");
        t->errors++;
        break;
      }
      v = lookup(t->values, s + i + 2, (size_t)(end - (s + i + 2)), &found);
      if (!found || !v || v->type == DOC_NULL || v->type == DOC_SEQ || v->type == DOC_MAP) {
        diag_error(t->diags, n->file, n->line, n->col,
                   found ? "template: '%.*s' is not a scalar and cannot be part of a string"
                         : "template: unknown value '%.*s'",
                   (int)(end - (s + i + 2)), s + i + 2);
        t->errors++;
        break;
      }
      scalar_text(v, &b);
      i = (size_t)(end - s) + 1;
    } else {
      buf_putc(&b, s[i++]);
    }
  }
  res = doc_new_strn(t->out, buf_cstr(&b), b.len);
  res->file = n->file;
  res->line = n->line;
  res->col = n->col;
  buf_dispose(&b);
  return res;
}

static struct doc_node *apply(struct tctx *t, const struct doc_node *n) {
  struct doc_node *res;

  switch (n->type) {
  case DOC_STR:
    return subst_string(t, n);
  case DOC_SEQ:
    res = doc_new_seq(t->out);
    for (size_t i = 0; i < n->u.seq.n; i++) {
      struct doc_node *item = apply(t, n->u.seq.items[i]);
      if (item != ABSENT)
        doc_seq_push(t->out, res, item);
    }
    break;
  case DOC_MAP:
    res = doc_new_map(t->out);
    for (size_t i = 0; i < n->u.map.n; i++) {
      const struct doc_pair *p = &n->u.map.items[i];
      struct doc_node *v = apply(t, p->value);
      struct doc_pair *last;

      if (v == ABSENT)
        continue;
      doc_map_set(t->out, res, p->key, v);
      /* keep where the key was written: the CRD check of overrides points
       * at it (a parsed template's keys are unique, so it was appended) */
      last = &res->u.map.items[res->u.map.n - 1];
      if (last->value == v) {
        last->line = p->line;
        last->col = p->col;
      }
    }
    break;
  default:
    return doc_copy(t->out, n);
  }
  res->file = n->file;
  res->line = n->line;
  res->col = n->col;
  return res;
}

int render_template_apply(struct doc_arena *out, const struct doc_node *tmpl,
                          const struct doc_node *values, struct doc_node **ret,
                          struct diag_list *diags) {
  struct tctx t = {out, values, diags, 0};
  struct doc_node *res = apply(&t, tmpl);

  if (t.errors)
    return -EINVAL;
  *ret = res == ABSENT ? doc_new_null(out) : res;
  return 0;
}
