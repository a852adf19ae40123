/* doc <-> YAML through libyaml: the bounded event-driven parser that builds
 * doc trees with positions, and the block-style emitter.
 *
 * The parser keeps an explicit stack of open collections (no recursion, so
 * the depth limit is the only bound needed). Anchors are remembered per
 * document; an alias is expanded by a deep copy whose nodes count against
 * max_nodes, so "billion laughs" stops at the limit. Duplicate keys are
 * detected with a linear scan for small maps and a hash for large ones, so a
 * hostile map cannot make parsing quadratic.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/mem.h"
#include "base/str.h"
#include "base/strmap.h"
#include "doc/doc.h"

#define TAG_PREFIX "tag:yaml.org,2002:"

/* ---- scalar resolution (YAML 1.2 core schema) ---- */

static bool is_digits(const char *s, size_t len, const char *set) {
  if (!len)
    return false;
  for (size_t i = 0; i < len; i++)
    if (!strchr(set, s[i]) || s[i] == '\0')
      return false;
  return true;
}

static bool is_float_text(const char *s, size_t len) {
  size_t i = 0;
  bool mant = false;

  if (i < len && (s[i] == '-' || s[i] == '+'))
    i++;
  if (len - i == 4 && (strncmp(s + i, ".inf", 4) == 0 || strncmp(s + i, ".Inf", 4) == 0 ||
                       strncmp(s + i, ".INF", 4) == 0))
    return true;
  while (i < len && s[i] >= '0' && s[i] <= '9')
    i++, mant = true;
  if (i < len && s[i] == '.') {
    i++;
    while (i < len && s[i] >= '0' && s[i] <= '9')
      i++, mant = true;
  }
  if (!mant)
    return false;
  if (i < len && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < len && (s[i] == '-' || s[i] == '+'))
      i++;
    if (i >= len || s[i] < '0' || s[i] > '9')
      return false;
    while (i < len && s[i] >= '0' && s[i] <= '9')
      i++;
  }
  return i == len;
}

static bool eq(const char *s, size_t len, const char *lit) {
  return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

enum doc_type doc_resolve_plain(const char *s, size_t len) {
  if (len == 0 || eq(s, len, "~") || eq(s, len, "null") || eq(s, len, "Null") ||
      eq(s, len, "NULL"))
    return DOC_NULL;
  if (eq(s, len, "true") || eq(s, len, "True") || eq(s, len, "TRUE") || eq(s, len, "false") ||
      eq(s, len, "False") || eq(s, len, "FALSE"))
    return DOC_BOOL;
  if (len > 2 && s[0] == '0' && s[1] == 'x' && is_digits(s + 2, len - 2, "0123456789abcdefABCDEF"))
    return DOC_INT;
  if (len > 2 && s[0] == '0' && s[1] == 'o' && is_digits(s + 2, len - 2, "01234567"))
    return DOC_INT;
  if (is_digits(s + (s[0] == '-' || s[0] == '+'), len - (s[0] == '-' || s[0] == '+'),
                "0123456789"))
    return DOC_INT;
  if (eq(s, len, ".nan") || eq(s, len, ".NaN") || eq(s, len, ".NAN") || is_float_text(s, len))
    return DOC_FLOAT;
  return DOC_STR;
}

/* Would a YAML 1.1 reader (go-yaml v2, PyYAML, kubectl's older paths) type this
 * plain text as something else than a string? Such strings are quoted on
 * output so every reader agrees. */
static bool yaml11_special(const char *s, size_t len) {
  static const char *const words[] = {"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
                                      "on", "On", "ON", "off", "Off", "OFF", "="};
  for (size_t i = 0; i < ARRAY_SIZE(words); i++)
    if (eq(s, len, words[i]))
      return true;
  /* 1_000, 0b101, 1:20 (sexagesimal), 0777 */
  if (len && is_digits(s, len, "0123456789_:.+-") && strpbrk(s, "0123456789"))
    return true;
  if (len > 2 && s[0] == '0' && s[1] == 'b')
    return true;
  return false;
}

/* ---- parser ---- */

struct frame {
  struct doc_node *node;
  const char *anchor;          /* anchor of this collection, registered on close */
  /* maps: the pending key (NULL while waiting for a key) */
  const char *key;
  uint32_t key_line, key_col;
  struct strmap keys;          /* only for big maps */
};

struct anchor {
  const char *name;
  struct doc_node *node;
};

struct parser {
  struct doc_arena *a;
  const char *file;
  const struct doc_limits *lim;
  struct diag_list *diags;
  struct err *err;
  size_t nodes;
  struct frame *stack;
  size_t depth, stack_cap;
  struct anchor *anchors;
  size_t n_anchors, cap_anchors;
};

static int fail(struct parser *p, int code, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(struct parser *p, int code, unsigned line, unsigned col, const char *fmt, ...) {
  char msg[ERR_MSG_MAX];
  va_list ap;

  va_start(ap, fmt);
  str_vformat(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  err_set_src(p->err, code, ERR_SRC_YAML, "%s", msg);
  err_set_pos(p->err, p->file, line, col);
  return code;
}

static struct doc_node *new_node(struct parser *p, enum doc_type t, const yaml_mark_t *m) {
  struct doc_node *n;

  if (++p->nodes > p->lim->max_nodes)
    return NULL;
  n = doc_arena_alloc(p->a, sizeof(*n));
  n->type = t;
  n->line = (uint32_t)m->line + 1;
  n->col = (uint32_t)m->column + 1;
  n->file = p->file;
  return n;
}

static int node_limit(struct parser *p, const yaml_mark_t *m) {
  return fail(p, -E2BIG, (unsigned)m->line + 1, (unsigned)m->column + 1,
              "too many YAML nodes (limit %zu); aliases count once per use", p->lim->max_nodes);
}

/* Deep copy for alias expansion, counting nodes against the limit. */
static struct doc_node *copy_counted(struct parser *p, const struct doc_node *n) {
  size_t c = doc_count(n);

  if (c > p->lim->max_nodes || p->nodes + c > p->lim->max_nodes)
    return NULL;
  p->nodes += c;
  return doc_copy(p->a, n);
}

static void register_anchor(struct parser *p, const char *name, struct doc_node *n) {
  if (!name)
    return;
  /* a later anchor of the same name shadows the earlier one (YAML spec) */
  p->anchors = xgrow(p->anchors, &p->cap_anchors, p->n_anchors + 1, sizeof(*p->anchors));
  p->anchors[p->n_anchors].name = name;
  p->anchors[p->n_anchors].node = n;
  p->n_anchors++;
}

static struct doc_node *find_anchor(struct parser *p, const char *name) {
  for (size_t i = p->n_anchors; i-- > 0;)
    if (strcmp(p->anchors[i].name, name) == 0)
      return p->anchors[i].node;
  return NULL;
}

/* Add a finished value to the open collection (or make it the root). */
static int add_value(struct parser *p, struct doc_node *v, struct doc_node **root,
                     const char *key_text, size_t key_len) {
  struct frame *f;

  if (p->depth == 0) {
    *root = v;
    return 0;
  }
  f = &p->stack[p->depth - 1];
  if (f->node->type == DOC_SEQ) {
    doc_seq_push(p->a, f->node, v);
    return 0;
  }
  if (!f->key) {
    /* this value is a key */
    if (v->type == DOC_SEQ || v->type == DOC_MAP)
      return fail(p, -EBADMSG, v->line, v->col, "a mapping key must be a scalar, not %s",
                  doc_type_name(v->type));
    f->key = key_text ? doc_arena_strndup(p->a, key_text, key_len) : "";
    if (key_text && memchr(key_text, '\0', key_len))
      return fail(p, -EBADMSG, v->line, v->col, "a mapping key contains a NUL byte");
    f->key_line = v->line;
    f->key_col = v->col;
    return 0;
  } else {
    struct doc_node *m = f->node;
    size_t dup_idx = SIZE_MAX;

    if (m->u.map.n >= 16) {
      void *slot;
      if (strmap_size(&f->keys) == 0)
        for (size_t i = 0; i < m->u.map.n; i++)
          strmap_put(&f->keys, m->u.map.items[i].key, (void *)(uintptr_t)(i + 1));
      slot = strmap_get(&f->keys, f->key);
      if (slot)
        dup_idx = (size_t)(uintptr_t)slot - 1;
    } else {
      const struct doc_pair *pr = doc_map_pair(m, f->key);
      if (pr)
        dup_idx = (size_t)(pr - m->u.map.items);
    }
    if (dup_idx != SIZE_MAX) {
      struct doc_pair *first = &m->u.map.items[dup_idx];
      if (!p->diags)
        return fail(p, -EBADMSG, f->key_line, f->key_col, "duplicate key '%s' (first at line %u)",
                    f->key, first->line);
      diag_error(p->diags, p->file, f->key_line, f->key_col,
                 "duplicate key '%s' (first defined at line %u, column %u); remove one of them",
                 f->key, first->line, first->col);
      /* the later value wins, as in most YAML readers */
      first->value = v;
    } else {
      struct doc_pair *pr;
      size_t idx = m->u.map.n;
      /* append without doc_map_set's scan: the key is known to be new */
      if (m->u.map.n == m->u.map.cap) {
        size_t c = m->u.map.cap ? m->u.map.cap * 2 : 4;
        struct doc_pair *items = doc_arena_alloc(p->a, c * sizeof(*items));
        if (m->u.map.n)
          memcpy(items, m->u.map.items, m->u.map.n * sizeof(*items));
        m->u.map.items = items;
        m->u.map.cap = c;
      }
      pr = &m->u.map.items[m->u.map.n++];
      pr->key = f->key;
      pr->line = f->key_line;
      pr->col = f->key_col;
      pr->value = v;
      if (strmap_size(&f->keys))
        strmap_put(&f->keys, f->key, (void *)(uintptr_t)(idx + 1));
    }
    f->key = NULL;
    return 0;
  }
}

static int scalar(struct parser *p, const yaml_event_t *ev, struct doc_node **out) {
  const char *s = (const char *)ev->data.scalar.value;
  size_t len = ev->data.scalar.length;
  const char *tag = (const char *)ev->data.scalar.tag;
  const yaml_mark_t *m = &ev->start_mark;
  enum doc_type t;
  struct doc_node *n;

  if (len > p->lim->max_scalar)
    return fail(p, -E2BIG, (unsigned)m->line + 1, (unsigned)m->column + 1,
                "scalar of %zu bytes exceeds the limit of %zu", len, p->lim->max_scalar);
  if (tag && strcmp(tag, "!") != 0) {
    if (!str_has_prefix(tag, TAG_PREFIX))
      return fail(p, -EBADMSG, (unsigned)m->line + 1, (unsigned)m->column + 1,
                  "unsupported YAML tag '%s'", tag);
    tag += strlen(TAG_PREFIX);
    if (strcmp(tag, "str") == 0)
      t = DOC_STR;
    else if (strcmp(tag, "int") == 0)
      t = DOC_INT;
    else if (strcmp(tag, "float") == 0)
      t = DOC_FLOAT;
    else if (strcmp(tag, "bool") == 0)
      t = DOC_BOOL;
    else if (strcmp(tag, "null") == 0)
      t = DOC_NULL;
    else
      return fail(p, -EBADMSG, (unsigned)m->line + 1, (unsigned)m->column + 1,
                  "unsupported YAML tag '!!%s'", tag);
    if (t != DOC_STR && doc_resolve_plain(s, len) != t && !(t == DOC_FLOAT &&
                                                            doc_resolve_plain(s, len) == DOC_INT))
      return fail(p, -EBADMSG, (unsigned)m->line + 1, (unsigned)m->column + 1,
                  "'%.*s' is not a valid !!%s", (int)(len > 64 ? 64 : len), s, tag);
  } else if (tag || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
    t = DOC_STR;
  } else {
    t = doc_resolve_plain(s, len);
  }
  n = new_node(p, t, m);
  if (!n)
    return node_limit(p, m);
  switch (t) {
  case DOC_NULL:
    break;
  case DOC_BOOL:
    n->u.b = s[0] == 't' || s[0] == 'T';
    break;
  case DOC_INT: {
    char text[32];
    uint64_t u;
    int64_t v;
    int r;

    if (len >= sizeof(text))
      r = -ERANGE;
    else {
      memcpy(text, s, len);
      text[len] = '\0';
      if (len > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'o')) {
        unsigned base = text[1] == 'x' ? 16 : 8;
        u = 0;
        r = 0;
        for (const char *d = text + 2; *d; d++) {
          unsigned dv = *d <= '9' ? (unsigned)(*d - '0') : (unsigned)((*d | 0x20) - 'a' + 10);
          if (u > (UINT64_MAX - dv) / base) {
            r = -ERANGE;
            break;
          }
          u = u * base + dv;
        }
        if (r == 0 && u > INT64_MAX)
          r = -ERANGE;
        v = (int64_t)u;
      } else {
        r = str_to_i64(text, INT64_MIN, INT64_MAX, &v);
      }
    }
    if (r < 0) {
      /* too big for int64: keep it as a number */
      n->type = DOC_FLOAT;
      n->u.str.s = doc_arena_strndup(p->a, s, len);
      n->u.str.len = len;
      n->u.str.f = strtod(n->u.str.s, NULL);
    } else {
      n->u.i = v;
    }
    break;
  }
  case DOC_FLOAT: {
    const char *txt = doc_arena_strndup(p->a, s, len);
    const char *d = txt + (txt[0] == '-' || txt[0] == '+');
    n->u.str.s = txt;
    n->u.str.len = len;
    if (strcmp(d, ".nan") == 0 || strcmp(d, ".NaN") == 0 || strcmp(d, ".NAN") == 0)
      n->u.str.f = NAN;
    else if (d[0] == '.' && (d[1] == 'i' || d[1] == 'I'))
      n->u.str.f = txt[0] == '-' ? -INFINITY : INFINITY;
    else
      n->u.str.f = strtod(txt, NULL);
    break;
  }
  case DOC_STR:
    n->u.str.s = doc_arena_strndup(p->a, s, len);
    n->u.str.len = len;
    break;
  default:
    break;
  }
  *out = n;
  return 0;
}

static void line_col_of(const char *data, size_t off, unsigned *line, unsigned *col) {
  unsigned l = 1, c = 1;

  for (size_t i = 0; i < off; i++) {
    if (data[i] == '\n') {
      l++;
      c = 1;
    } else if (((unsigned char)data[i] & 0xc0) != 0x80) {
      c++;
    }
  }
  *line = l;
  *col = c;
}

static void free_stack(struct parser *p) {
  for (size_t i = 0; i < p->depth; i++)
    strmap_dispose(&p->stack[i].keys);
  free(p->stack);
  free(p->anchors);
}

int doc_parse(struct doc_arena *a, const char *file, const char *data, size_t len,
              const struct doc_limits *lim, struct doc_node ***ret_docs, size_t *ret_n,
              struct diag_list *diags, struct err *err) {
  struct parser p = {.a = a, .lim = lim ? lim : &doc_limits_default, .diags = diags, .err = err};
  yaml_parser_t yp;
  struct doc_node **docs = NULL, *root = NULL;
  size_t n_docs = 0, cap_docs = 0;
  size_t bad;
  bool done = false;
  int r = 0;

  p.file = doc_arena_strdup(a, file ? file : "<input>");
  if (len > p.lim->max_bytes)
    return fail(&p, -E2BIG, 0, 0, "input of %zu bytes exceeds the limit of %zu bytes", len,
                p.lim->max_bytes);
  if (!str_valid_utf8(data, len, &bad)) {
    unsigned l, c;
    line_col_of(data, bad, &l, &c);
    return fail(&p, -EILSEQ, l, c, "invalid UTF-8 (or a NUL byte) at byte offset %zu", bad);
  }
  if (!yaml_parser_initialize(&yp))
    return fail(&p, -ENOMEM, 0, 0, "cannot initialise the YAML parser");
  yaml_parser_set_input_string(&yp, (const unsigned char *)data, len);
  yaml_parser_set_encoding(&yp, YAML_UTF8_ENCODING);

  while (!done) {
    yaml_event_t ev;
    struct doc_node *n = NULL;
    const yaml_mark_t *m;

    if (!yaml_parser_parse(&yp, &ev)) {
      const char *ctx = yp.context;
      unsigned l = (unsigned)yp.problem_mark.line + 1, c = (unsigned)yp.problem_mark.column + 1;
      if (yp.error == YAML_READER_ERROR)
        line_col_of(data, yp.problem_offset < len ? yp.problem_offset : len, &l, &c);
      if (ctx)
        r = fail(&p, -EBADMSG, l, c, "YAML syntax error: %s (%s that starts at line %u, column %u)",
                 yp.problem ? yp.problem : "unknown problem", ctx,
                 (unsigned)yp.context_mark.line + 1, (unsigned)yp.context_mark.column + 1);
      else
        r = fail(&p, -EBADMSG, l, c, "YAML syntax error: %s",
                 yp.problem ? yp.problem : "unknown problem");
      break;
    }
    m = &ev.start_mark;
    switch (ev.type) {
    case YAML_STREAM_END_EVENT:
      done = true;
      break;
    case YAML_DOCUMENT_START_EVENT:
      root = NULL;
      p.n_anchors = 0;
      if (n_docs >= p.lim->max_docs)
        r = fail(&p, -E2BIG, (unsigned)m->line + 1, (unsigned)m->column + 1,
                 "more than %zu YAML documents", p.lim->max_docs);
      break;
    case YAML_DOCUMENT_END_EVENT:
      if (!root) {
        root = new_node(&p, DOC_NULL, m);
        if (!root) {
          r = node_limit(&p, m);
          break;
        }
      }
      docs = xgrow(docs, &cap_docs, n_docs + 1, sizeof(*docs));
      docs[n_docs++] = root;
      break;
    case YAML_ALIAS_EVENT: {
      const char *name = (const char *)ev.data.alias.anchor;
      struct doc_node *target = find_anchor(&p, name);
      if (!target) {
        r = fail(&p, -EBADMSG, (unsigned)m->line + 1, (unsigned)m->column + 1,
                 "unknown alias '*%s'", name);
        break;
      }
      n = copy_counted(&p, target);
      if (!n) {
        r = node_limit(&p, m);
        break;
      }
      n->line = (uint32_t)m->line + 1;
      n->col = (uint32_t)m->column + 1;
      r = add_value(&p, n, &root, n->type == DOC_STR ? n->u.str.s : name,
                    n->type == DOC_STR ? n->u.str.len : strlen(name));
      break;
    }
    case YAML_SCALAR_EVENT:
      r = scalar(&p, &ev, &n);
      if (r < 0)
        break;
      register_anchor(&p, ev.data.scalar.anchor
                              ? doc_arena_strdup(a, (const char *)ev.data.scalar.anchor)
                              : NULL,
                      n);
      r = add_value(&p, n, &root, (const char *)ev.data.scalar.value, ev.data.scalar.length);
      break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
      bool is_map = ev.type == YAML_MAPPING_START_EVENT;
      const char *anchor = (const char *)(is_map ? ev.data.mapping_start.anchor
                                                 : ev.data.sequence_start.anchor);
      const char *tag = (const char *)(is_map ? ev.data.mapping_start.tag
                                              : ev.data.sequence_start.tag);
      struct frame *f;

      if (tag && strcmp(tag, is_map ? TAG_PREFIX "map" : TAG_PREFIX "seq") != 0 &&
          strcmp(tag, "!") != 0) {
        r = fail(&p, -EBADMSG, (unsigned)m->line + 1, (unsigned)m->column + 1,
                 "unsupported YAML tag '%s'", tag);
        break;
      }
      if (p.depth >= p.lim->max_depth) {
        r = fail(&p, -E2BIG, (unsigned)m->line + 1, (unsigned)m->column + 1,
                 "nesting deeper than %u levels", p.lim->max_depth);
        break;
      }
      n = new_node(&p, is_map ? DOC_MAP : DOC_SEQ, m);
      if (!n) {
        r = node_limit(&p, m);
        break;
      }
      p.stack = xgrow(p.stack, &p.stack_cap, p.depth + 1, sizeof(*p.stack));
      f = &p.stack[p.depth++];
      memset(f, 0, sizeof(*f));
      f->node = n;
      f->anchor = anchor ? doc_arena_strdup(a, anchor) : NULL;
      break;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
      struct frame f = p.stack[--p.depth];
      strmap_dispose(&f.keys);
      register_anchor(&p, f.anchor, f.node);
      r = add_value(&p, f.node, &root, NULL, 0);
      break;
    }
    default:
      break;
    }
    yaml_event_delete(&ev);
    if (r < 0)
      break;
  }
  yaml_parser_delete(&yp);
  free_stack(&p);
  if (r < 0) {
    free(docs);
    return r;
  }
  /* hand the array over to the arena so the caller frees nothing */
  *ret_docs = doc_arena_alloc(a, (n_docs ? n_docs : 1) * sizeof(*docs));
  if (n_docs)
    memcpy(*ret_docs, docs, n_docs * sizeof(*docs));
  *ret_n = n_docs;
  free(docs);
  return 0;
}

int doc_parse_one(struct doc_arena *a, const char *file, const char *data, size_t len,
                  const struct doc_limits *lim, struct doc_node **ret, struct err *err) {
  struct doc_node **docs;
  size_t n;
  int r;

  r = doc_parse(a, file, data, len, lim, &docs, &n, NULL, err);
  if (r < 0)
    return r;
  if (n != 1 || docs[0]->type == DOC_NULL) {
    err_set_src(err, -EBADMSG, ERR_SRC_YAML, "expected exactly one document, found %s",
                n == 0 || (n == 1 && docs[0]->type == DOC_NULL) ? "none" : "several");
    err_set_pos(err, file, 0, 0);
    return -EBADMSG;
  }
  *ret = docs[0];
  return 0;
}

/* ---- emitter ---- */

static int write_handler(void *data, unsigned char *buffer, size_t size) {
  buf_append(data, buffer, size);
  return 1;
}

static int emit_event(yaml_emitter_t *e, yaml_event_t *ev, struct err *err) {
  if (!yaml_emitter_emit(e, ev))
    return err_set_src(err, -EINVAL, ERR_SRC_YAML, "YAML emitter: %s",
                       e->problem ? e->problem : "unknown error");
  return 0;
}

/* libyaml's event constructors take non-const pointers but only copy them. */
static yaml_char_t *unconst(const char *s) {
  yaml_char_t *p;
  memcpy(&p, &s, sizeof(p));
  return p;
}

static int emit_scalar(yaml_emitter_t *e, const char *s, size_t len, bool quote, struct err *err) {
  yaml_event_t ev;
  yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;

  if (quote)
    style = YAML_SINGLE_QUOTED_SCALAR_STYLE;
  else if (memchr(s, '\n', len))
    style = YAML_LITERAL_SCALAR_STYLE;
  yaml_scalar_event_initialize(&ev, NULL, NULL, unconst(s), (int)len, !quote, 1, style);
  return emit_event(e, &ev, err);
}

static int emit_node(yaml_emitter_t *e, const struct doc_node *n, struct err *err) {
  yaml_event_t ev;
  char text[64];
  int r;

  if (!n)
    return emit_scalar(e, "null", 4, false, err);
  switch (n->type) {
  case DOC_NULL:
    return emit_scalar(e, "null", 4, false, err);
  case DOC_BOOL:
    return emit_scalar(e, n->u.b ? "true" : "false", n->u.b ? 4 : 5, false, err);
  case DOC_INT:
    str_format(text, sizeof(text), "%lld", (long long)n->u.i);
    return emit_scalar(e, text, strlen(text), false, err);
  case DOC_FLOAT:
    if (n->u.str.s)
      return emit_scalar(e, n->u.str.s, n->u.str.len, false, err);
    str_format(text, sizeof(text), "%.17g", n->u.str.f);
    return emit_scalar(e, text, strlen(text), false, err);
  case DOC_STR: {
    bool quote = doc_resolve_plain(n->u.str.s, n->u.str.len) != DOC_STR ||
                 yaml11_special(n->u.str.s, n->u.str.len);
    return emit_scalar(e, n->u.str.s, n->u.str.len, quote, err);
  }
  case DOC_SEQ:
    yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                         n->u.seq.n ? YAML_BLOCK_SEQUENCE_STYLE
                                                    : YAML_FLOW_SEQUENCE_STYLE);
    if ((r = emit_event(e, &ev, err)) < 0)
      return r;
    for (size_t i = 0; i < n->u.seq.n; i++)
      if ((r = emit_node(e, n->u.seq.items[i], err)) < 0)
        return r;
    yaml_sequence_end_event_initialize(&ev);
    return emit_event(e, &ev, err);
  case DOC_MAP:
    yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                        n->u.map.n ? YAML_BLOCK_MAPPING_STYLE
                                                   : YAML_FLOW_MAPPING_STYLE);
    if ((r = emit_event(e, &ev, err)) < 0)
      return r;
    for (size_t i = 0; i < n->u.map.n; i++) {
      const struct doc_pair *p = &n->u.map.items[i];
      size_t klen = strlen(p->key);
      bool quote = doc_resolve_plain(p->key, klen) != DOC_STR || yaml11_special(p->key, klen);
      if ((r = emit_scalar(e, p->key, klen, quote, err)) < 0 ||
          (r = emit_node(e, p->value, err)) < 0)
        return r;
    }
    yaml_mapping_end_event_initialize(&ev);
    return emit_event(e, &ev, err);
  }
  return 0;
}

int doc_emit_yaml_stream(const struct doc_node *const *docs, size_t n, struct buf *out,
                         struct err *err) {
  yaml_emitter_t e;
  yaml_event_t ev;
  int r = 0;

  if (!yaml_emitter_initialize(&e))
    return err_set(err, -ENOMEM, "cannot initialise the YAML emitter");
  yaml_emitter_set_output(&e, write_handler, out);
  yaml_emitter_set_unicode(&e, 1);
  yaml_emitter_set_width(&e, -1);
  yaml_emitter_set_indent(&e, 2);
  yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
  if ((r = emit_event(&e, &ev, err)) < 0)
    goto out;
  for (size_t i = 0; i < n; i++) {
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    if ((r = emit_event(&e, &ev, err)) < 0 || (r = emit_node(&e, docs[i], err)) < 0)
      goto out;
    yaml_document_end_event_initialize(&ev, 1);
    if ((r = emit_event(&e, &ev, err)) < 0)
      goto out;
  }
  yaml_stream_end_event_initialize(&ev);
  r = emit_event(&e, &ev, err);
  if (r == 0 && !yaml_emitter_flush(&e))
    r = err_set_src(err, -EIO, ERR_SRC_YAML, "YAML emitter: cannot flush");
out:
  yaml_emitter_delete(&e);
  return r;
}

int doc_emit_yaml(const struct doc_node *n, struct buf *out, struct err *err) {
  const struct doc_node *const one[1] = {n};
  return doc_emit_yaml_stream(one, 1, out, err);
}
