/* struct err: filled once at the origin of a failure; see err.h for the rules. */
#include "base/err.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "base/str.h"

int err_set_at(struct err *e, int code, enum err_src src, const char *src_file,
               int src_line, const char *func, const char *fmt, ...) {
  va_list ap;

  if (code >= 0)
    code = -EIO; /* a bug in the caller; never report success as failure */
  if (!e || e->code != 0)
    return code;
  e->code = code;
  e->src = src;
  e->src_file = src_file;
  e->src_line = src_line;
  e->func = func;
  va_start(ap, fmt);
  str_vformat(e->msg, sizeof(e->msg), fmt, ap);
  va_end(ap);
  return code;
}

int err_set_errno_at(struct err *e, int code, const char *src_file, int src_line,
                     const char *func, const char *fmt, ...) {
  va_list ap;
  size_t n;

  if (code >= 0)
    code = -EIO;
  if (!e || e->code != 0)
    return code;
  e->code = code;
  e->src = ERR_SRC_SYS;
  e->src_file = src_file;
  e->src_line = src_line;
  e->func = func;
  va_start(ap, fmt);
  str_vformat(e->msg, sizeof(e->msg), fmt, ap);
  va_end(ap);
  n = strlen(e->msg);
  str_format(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(-code));
  return code;
}

void err_set_pos(struct err *e, const char *file, unsigned line, unsigned col) {
  if (!e || e->file[0] || !file)
    return;
  str_copy(e->file, sizeof(e->file), file);
  e->line = line;
  e->col = col;
}

void err_prefix(struct err *e, const char *fmt, ...) {
  char ctx[ERR_MSG_MAX], old[ERR_MSG_MAX];
  va_list ap;

  if (!e || e->code == 0)
    return;
  va_start(ap, fmt);
  str_vformat(ctx, sizeof(ctx), fmt, ap);
  va_end(ap);
  str_copy(old, sizeof(old), e->msg);
  str_format(e->msg, sizeof(e->msg), "%s: %s", ctx, old);
}

void err_clear(struct err *e) {
  if (e)
    memset(e, 0, sizeof(*e));
}

const char *err_format(const struct err *e, char *buf, size_t size) {
  if (!e || e->code == 0) {
    str_copy(buf, size, "no error");
  } else if (e->file[0] && e->line) {
    str_format(buf, size, "%s:%u:%u: %s", e->file, e->line, e->col, e->msg);
  } else if (e->file[0]) {
    str_format(buf, size, "%s: %s", e->file, e->msg);
  } else {
    str_copy(buf, size, e->msg);
  }
  return buf;
}

void err_print(const struct err *e, FILE *f, const char *prog) {
  char text[ERR_MSG_MAX + ERR_PATH_MAX + 32];

  fprintf(f, "%s%s\n", prog ? prog : "", err_format(e, text, sizeof(text)));
}
