/* Logging sinks: journald native protocol or stderr; see log.h.
 *
 * The journal protocol (systemd.journal-fields(7), "Native Journal Protocol"):
 * one datagram per entry to /run/systemd/journal/socket, "KEY=value\n" lines;
 * a value containing a newline is sent as "KEY\n" + little-endian 64-bit
 * length + bytes + "\n". Entries too large for a datagram are rare here
 * (messages are bounded) and fall back to stderr. */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/str.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static struct {
  int max_level;
  int journal_fd;           /* -1: stderr */
  struct sockaddr_un addr;
  socklen_t addr_len;
  bool journal_stream;      /* stderr is the journal: "<N>" prefixes there */
  bool color;               /* a terminal, and NO_COLOR unset */
  bool opened;
} L = {LOG_INFO, -1, {0}, 0, false, false, false};

static bool stderr_is_journal(void) {
  const char *e = getenv("JOURNAL_STREAM"), *colon;
  char dev_s[32];
  uint64_t dev, ino;
  struct stat st;

  if (!e || !(colon = strchr(e, ':')) || (size_t)(colon - e) >= sizeof(dev_s))
    return false;
  memcpy(dev_s, e, (size_t)(colon - e));
  dev_s[colon - e] = '\0';
  if (str_to_u64(dev_s, UINT64_MAX, &dev) < 0 || str_to_u64(colon + 1, UINT64_MAX, &ino) < 0)
    return false;
  if (fstat(STDERR_FILENO, &st) < 0)
    return false;
  return (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
}

void log_open(enum log_target target, const char *journal_socket) {
  const char *path = journal_socket ? journal_socket : JOURNAL_SOCKET;

  if (L.journal_fd >= 0)
    close(L.journal_fd);
  L.journal_fd = -1;
  L.journal_stream = target != LOG_TARGET_CONSOLE && stderr_is_journal();
  /* https://no-color.org: set and not empty */
  L.color = isatty(STDERR_FILENO) == 1 && !(getenv("NO_COLOR") && *getenv("NO_COLOR"));
  L.opened = true;
  if (target == LOG_TARGET_JOURNAL || (target == LOG_TARGET_AUTO && L.journal_stream)) {
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && strlen(path) < sizeof(L.addr.sun_path)) {
      L.addr.sun_family = AF_UNIX;
      str_copy(L.addr.sun_path, sizeof(L.addr.sun_path), path);
      L.addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
      L.journal_fd = fd;
    } else if (fd >= 0) {
      close(fd);
    }
  }
}

void log_set_max_level(int level) { L.max_level = level; }
int log_get_max_level(void) { return L.max_level; }
bool log_uses_journal(void) { return L.journal_fd >= 0; }

static void field(struct buf *b, const char *key, const char *value) {
  if (!value)
    return;
  if (strchr(value, '\n')) {
    uint64_t n = strlen(value);
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
      le[i] = (unsigned char)(n >> (8 * i));
    buf_puts(b, key);
    buf_putc(b, '\n');
    buf_append(b, le, sizeof(le));
    buf_puts(b, value);
    buf_putc(b, '\n');
  } else {
    buf_printf(b, "%s=%s\n", key, value);
  }
}

static int send_journal(int prio, const struct log_ctx *ctx, const char *msg) {
  struct buf b = BUF_INIT;
  char p[4];
  ssize_t n;

  str_format(p, sizeof(p), "%d", prio);
  field(&b, "PRIORITY", p);
  field(&b, "SYSLOG_IDENTIFIER", "egressd");
  field(&b, "MESSAGE", msg);
  if (ctx) {
    field(&b, "CLUSTER", ctx->cluster);
    field(&b, "COMMIT", ctx->commit);
    field(&b, "OBJECT", ctx->object);
  }
  n = sendto(L.journal_fd, b.data, b.len, MSG_NOSIGNAL, (struct sockaddr *)&L.addr, L.addr_len);
  buf_dispose(&b);
  return n < 0 ? -errno : 0;
}

static const char *prio_name(int prio) {
  switch (prio) {
  case LOG_EMERG:
  case LOG_ALERT:
  case LOG_CRIT:
  case LOG_ERR:
    return "error";
  case LOG_WARNING:
    return "warning";
  case LOG_NOTICE:
    return "notice";
  case LOG_INFO:
    return "info";
  default:
    return "debug";
  }
}

void log_ctx_emit(int prio, const struct log_ctx *ctx, const char *fmt, ...) {
  char msg[2048], where[512] = "";
  va_list ap;
  int saved = errno;

  if (prio > L.max_level)
    return;
  if (!L.opened)
    log_open(LOG_TARGET_AUTO, NULL);
  va_start(ap, fmt);
  str_vformat(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (L.journal_fd >= 0 && send_journal(prio, ctx, msg) == 0) {
    errno = saved;
    return;
  }
  /* On stderr the structured fields become a readable prefix. */
  if (ctx && (ctx->cluster || ctx->object)) {
    size_t n = 0;
    if (ctx->cluster)
      n += str_format(where + n, sizeof(where) - n, "cluster %s: ", ctx->cluster);
    if (ctx->object)
      str_format(where + n, sizeof(where) - n, "%s: ", ctx->object);
  }
  if (L.journal_stream) {
    /* the native protocol refused it: journald parses the prefix */
    fprintf(stderr, "<%d>%s%s\n", prio, where, msg);
  } else if (prio <= LOG_WARNING) {
    const char *on = !L.color ? "" : prio <= LOG_ERR ? "\033[1;31m" : "\033[1;33m";
    fprintf(stderr, "egressd: %s%s%s: %s%s\n", on, prio_name(prio), L.color ? "\033[0m" : "",
            where, msg);
  } else {
    fprintf(stderr, "egressd: %s%s\n", where, msg);
  }
  errno = saved;
}
