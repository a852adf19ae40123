/* struct diag_list: collected validation problems; see diag.h. */
#include "base/diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"

#define DIAG_DEFAULT_MAX 1000

void diag_add(struct diag_list *l, enum diag_severity sev, const char *file, unsigned line,
              unsigned col, const char *fmt, ...) {
  struct diag *d;
  char msg[1024];
  va_list ap;
  size_t max = l->max ? l->max : DIAG_DEFAULT_MAX;

  if (sev == DIAG_ERROR)
    l->errors++;
  else
    l->warnings++;
  if (l->n >= max) {
    l->truncated = true;
    return;
  }
  va_start(ap, fmt);
  str_vformat(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  l->items = xgrow(l->items, &l->cap, l->n + 1, sizeof(*l->items));
  d = &l->items[l->n++];
  d->severity = sev;
  d->file = xstrdup(file ? file : "");
  d->line = line;
  d->col = col;
  d->msg = xstrdup(msg);
}

static int cmp_diag(const void *a, const void *b) {
  const struct diag *x = a, *y = b;
  int c = strcmp(x->file, y->file);

  if (c)
    return c;
  if (x->line != y->line)
    return x->line < y->line ? -1 : 1;
  if (x->col != y->col)
    return x->col < y->col ? -1 : 1;
  /* qsort is not stable; the message text keeps the order deterministic */
  return strcmp(x->msg, y->msg);
}

void diag_sort(struct diag_list *l) {
  if (l->n > 1)
    qsort(l->items, l->n, sizeof(*l->items), cmp_diag);
}

const char *diag_format(const struct diag *d, char *buf, size_t size) {
  const char *sev = d->severity == DIAG_ERROR ? "error" : "warning";

  if (d->file[0] && d->line)
    str_format(buf, size, "%s:%u:%u: %s: %s", d->file, d->line, d->col, sev, d->msg);
  else if (d->file[0])
    str_format(buf, size, "%s: %s: %s", d->file, sev, d->msg);
  else
    str_format(buf, size, "%s: %s", sev, d->msg);
  return buf;
}

void diag_print(struct diag_list *l, FILE *f, bool color) {
  diag_sort(l);
  for (size_t i = 0; i < l->n; i++) {
    const struct diag *d = &l->items[i];
    const char *sev = d->severity == DIAG_ERROR ? "error" : "warning";
    const char *on = "", *off = "";

    if (color) {
      on = d->severity == DIAG_ERROR ? "\033[1;31m" : "\033[1;35m";
      off = "\033[0m";
    }
    if (d->file[0] && d->line)
      fprintf(f, "%s:%u:%u: %s%s:%s %s\n", d->file, d->line, d->col, on, sev, off, d->msg);
    else if (d->file[0])
      fprintf(f, "%s: %s%s:%s %s\n", d->file, on, sev, off, d->msg);
    else
      fprintf(f, "%s%s:%s %s\n", on, sev, off, d->msg);
  }
  if (l->truncated)
    fprintf(f, "(%zu more problems not shown)\n", l->errors + l->warnings - l->n);
}

void diag_list_dispose(struct diag_list *l) {
  for (size_t i = 0; i < l->n; i++) {
    free(l->items[i].file);
    free(l->items[i].msg);
  }
  free(l->items);
  memset(l, 0, sizeof(*l));
}
