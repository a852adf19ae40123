/* The one rich error object of egressd.
 *
 * Functions return int: >= 0 on success, -errno on failure. When they fail they
 * may also fill a caller-owned struct err with the human message, where in our
 * code, where in the user's input (file:line:col) and the library detail (HTTP
 * status, libgit2 class, OpenSSL reason).
 *
 * Invariant: an err is filled once, at the origin. err_set() on an err that
 * already holds an error keeps the first one, so a caller can never overwrite
 * the cause by accident; callers add context at module boundaries with
 * err_prefix(). Reuse an err across loop iterations with err_clear().
 *
 * Secrets must never be formatted into an err: its text reaches logs, the
 * ledger and `egressd status`.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum err_src {
  ERR_SRC_NONE = 0,
  ERR_SRC_SYS,    /* errno from libc */
  ERR_SRC_YAML,   /* libyaml parse or emit */
  ERR_SRC_INPUT,  /* the user's config repo or host config */
  ERR_SRC_GIT,    /* libgit2 */
  ERR_SRC_HTTP,   /* libcurl transport */
  ERR_SRC_TLS,    /* OpenSSL */
  ERR_SRC_KUBE,   /* a Kubernetes API server's Status */
  ERR_SRC_SIG,    /* signature verification */
  ERR_SRC_LEDGER, /* ledger integrity */
  _ERR_SRC_MAX,
};

#define ERR_MSG_MAX 1024
#define ERR_PATH_MAX 512

struct err {
  int code;                   /* -errno; 0 while empty */
  enum err_src src;
  char msg[ERR_MSG_MAX];      /* one line, no trailing newline */
  /* where in the user's input; file[0] == '\0' when unknown */
  char file[ERR_PATH_MAX];
  unsigned line, col;         /* 1-based; 0 when unknown */
  /* where in our code */
  const char *src_file, *func;
  int src_line;
  long detail;                /* HTTP status, libgit2 class, OpenSSL reason... */
  char reason[64];            /* e.g. a Kubernetes Status reason ("Conflict") */
};

#define ERR_INIT {0}

/* Fill @e (if it is not NULL and still empty) and return @code, which must be
 * negative. printf-style message; the text is truncated to ERR_MSG_MAX. */
int err_set_at(struct err *e, int code, enum err_src src, const char *src_file,
               int src_line, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

#define err_set(e, code, ...) \
  err_set_at((e), (code), ERR_SRC_NONE, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define err_set_src(e, code, src, ...) \
  err_set_at((e), (code), (src), __FILE__, __LINE__, __func__, __VA_ARGS__)
/* errno-style: message followed by ": <strerror(-code)>" */
#define err_set_errno(e, code, ...) \
  err_set_errno_at((e), (code), __FILE__, __LINE__, __func__, __VA_ARGS__)
int err_set_errno_at(struct err *e, int code, const char *src_file, int src_line,
                     const char *func, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Record where in the user's input the error is. Does nothing when @e is NULL
 * or already has a position. */
void err_set_pos(struct err *e, const char *file, unsigned line, unsigned col);

/* Prepend "<context>: " to the message, keeping code, source and position.
 * For module boundaries only. */
void err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void err_clear(struct err *e);
static inline bool err_isset(const struct err *e) { return e && e->code != 0; }

/* Format as "file:line:col: msg" (or just "msg" without a position) into
 * @buf and return @buf. */
const char *err_format(const struct err *e, char *buf, size_t size);

/* Write err_format() + newline to @f prefixed with @prog ("egressd: "). */
void err_print(const struct err *e, FILE *f, const char *prog);
