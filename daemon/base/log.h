/* Logging for the orchestration layers (apply/, fleet/, svc/, cli/). Layers
 * 0-2 never log: they return errors.
 *
 * Where the output goes, decided once by log_open():
 *   - journald's native protocol (structured fields CLUSTER=, COMMIT=,
 *     OBJECT=, PRIORITY=) when stderr is the journal (JOURNAL_STREAM matches)
 *     or when forced, and the journal socket accepts datagrams;
 *   - otherwise stderr: "<N>message" lines when stderr is the journal (the
 *     native protocol refused an entry; journald parses the prefix), else
 *     plain lines, "egressd: warning: ..." (the level named for errors and
 *     warnings, in colour on a terminal unless NO_COLOR is set).
 * Never pass a secret (token, key) to a log call; quote user input in '...'.
 */
#pragma once

#include <stdbool.h>
#include <syslog.h>

enum log_target {
  LOG_TARGET_AUTO,    /* journal if stderr is connected to it, else stderr */
  LOG_TARGET_JOURNAL, /* native protocol; falls back to stderr if unavailable */
  LOG_TARGET_STDERR,  /* stderr: "<N>" prefixes if it is the journal, else plain lines */
  LOG_TARGET_CONSOLE, /* plain lines even when stderr is the journal */
};

/* Structured context of one message; any member may be NULL. */
struct log_ctx {
  const char *cluster;
  const char *commit;
  const char *object;   /* "Kind namespace/name" */
};

void log_open(enum log_target target, const char *journal_socket);
void log_set_max_level(int level);   /* LOG_DEBUG .. LOG_ERR; default LOG_INFO */
int log_get_max_level(void);
bool log_uses_journal(void);

/* Emit one message at syslog priority @prio. Returns 0 (so callers can write
 * `return log_x(...), r` patterns without surprise). */
void log_ctx_emit(int prio, const struct log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(...) log_ctx_emit(LOG_ERR, NULL, __VA_ARGS__)
#define log_warning(...) log_ctx_emit(LOG_WARNING, NULL, __VA_ARGS__)
#define log_notice(...) log_ctx_emit(LOG_NOTICE, NULL, __VA_ARGS__)
#define log_info(...) log_ctx_emit(LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) log_ctx_emit(LOG_DEBUG, NULL, __VA_ARGS__)
