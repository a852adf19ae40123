/* Diagnostics: every problem found in one validation pass, each with the
 * file, line and column it concerns (OpenBSD's config parsers report all of
 * them at once; so do we). Printed sorted by file, line, column, in the
 * compiler format "file:line:col: error: message".
 *
 * A struct diag_list is caller-owned; a zeroed one is empty. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum diag_severity {
  DIAG_ERROR,
  DIAG_WARNING,
};

struct diag {
  enum diag_severity severity;
  char *file;          /* owned; may be "" when the problem has no file */
  unsigned line, col;  /* 1-based; 0 when unknown */
  char *msg;           /* owned */
};

struct diag_list {
  struct diag *items;
  size_t n, cap;
  size_t errors, warnings;
  size_t max;          /* stop recording after this many (0: default 1000) */
  bool truncated;      /* some were dropped because of max */
};

void diag_add(struct diag_list *l, enum diag_severity sev, const char *file, unsigned line,
              unsigned col, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define diag_error(l, file, line, col, ...) diag_add((l), DIAG_ERROR, (file), (line), (col), __VA_ARGS__)
#define diag_warning(l, file, line, col, ...) \
  diag_add((l), DIAG_WARNING, (file), (line), (col), __VA_ARGS__)

/* Sort by (file, line, col), stable for equal positions. */
void diag_sort(struct diag_list *l);
/* Print every diagnostic, sorted, one per line. When @color, highlight the
 * severity as compilers do on a terminal. */
void diag_print(struct diag_list *l, FILE *f, bool color);
/* Render one as "file:line:col: error: msg" into @buf. */
const char *diag_format(const struct diag *d, char *buf, size_t size);
void diag_list_dispose(struct diag_list *l);
