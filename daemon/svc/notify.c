/* sd_notify without libsystemd; see notify.h. Messages are bounded well
 * below systemd's 4096-byte receive buffer. */
#include "svc/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/str.h"

#define NOTIFY_MAX 4000

int notify_send(const char *state) {
  const char *path = getenv("NOTIFY_SOCKET");
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  socklen_t len;
  size_t n;
  int fd, r = 1;

  if (!path || !*path)
    return 0;
  n = strlen(path);
  if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path))
    return -EINVAL;
  memcpy(sa.sun_path, path, n);
  if (path[0] == '@')
    sa.sun_path[0] = '\0'; /* abstract namespace */
  len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/' ? 1 : 0));
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (sendto(fd, state, strnlen(state, NOTIFY_MAX), MSG_NOSIGNAL, (struct sockaddr *)&sa, len) < 0)
    r = -errno;
  close(fd);
  return r;
}

int notify_sendf(const char *fmt, ...) {
  char buf[NOTIFY_MAX];
  va_list ap;

  va_start(ap, fmt);
  str_vformat(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return notify_send(buf);
}

uint64_t notify_watchdog_usec(void) {
  const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
  uint64_t v, p;

  if (!usec || str_to_u64(usec, UINT64_MAX, &v) < 0 || v == 0)
    return 0;
  if (pid && *pid && (str_to_u64(pid, UINT32_MAX, &p) < 0 || p != (uint64_t)getpid()))
    return 0;
  return v;
}
