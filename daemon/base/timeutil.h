/* Clocks, durations and timestamps. Durations are microseconds (uint64_t),
 * as systemd's usec_t. Wall-clock timestamps are printed as RFC 3339 UTC. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL

uint64_t time_now_mono_usec(void);
uint64_t time_now_real_usec(void);

/* Parse "250ms", "15s", "5m", "1h30m", "2h", "1d", "0": a sequence of
 * <digits><unit> with units ms, s, m, h, d; a bare "0" is zero. Returns 0,
 * -EINVAL or -ERANGE (over 1 year). */
int time_parse_duration(const char *s, uint64_t *ret_usec);
/* "1h2m3s", "4s", "250ms", "0s" */
size_t time_format_duration(char *buf, size_t size, uint64_t usec);

/* "2026-11-27T00:18:13Z" from a real-time clock value in µs. */
size_t time_format_rfc3339(char *buf, size_t size, uint64_t real_usec);
/* Parse "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)" into seconds since the epoch. */
int time_parse_rfc3339(const char *s, int64_t *ret_sec);
