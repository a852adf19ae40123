/* The service manager notification protocol (sd_notify(3)), written
 * directly: one AF_UNIX datagram of "VAR=value" lines to $NOTIFY_SOCKET
 * (a leading '@' is an abstract socket). No libsystemd: the protocol is
 * systemd's stable interface and the library would pull in half a dozen
 * compression and crypto libraries for 60 lines of code. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Send @state ("READY=1\nSTATUS=..."). Returns 1 when sent, 0 when there is
 * no NOTIFY_SOCKET (not under a service manager), -errno on failure. */
int notify_send(const char *state);
int notify_sendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval systemd asked for (WATCHDOG_USEC, honouring
 * WATCHDOG_PID), or 0 when there is none. Ping at half of it. */
uint64_t notify_watchdog_usec(void);
