/* Clocks, durations and RFC 3339 timestamps; see timeutil.h. */
#include "base/timeutil.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "base/str.h"

static uint64_t now(clockid_t id) {
  struct timespec ts;

  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t time_now_mono_usec(void) { return now(CLOCK_MONOTONIC); }
uint64_t time_now_real_usec(void) { return now(CLOCK_REALTIME); }

int time_parse_duration(const char *s, uint64_t *ret_usec) {
  const uint64_t limit = 366ULL * 24 * 3600 * USEC_PER_SEC;
  uint64_t total = 0;
  const char *p = s;

  if (!s || !*s)
    return -EINVAL;
  if (strcmp(s, "0") == 0) {
    *ret_usec = 0;
    return 0;
  }
  while (*p) {
    uint64_t v = 0, mult;
    bool digits = false;

    while (*p >= '0' && *p <= '9') {
      v = v * 10 + (uint64_t)(*p - '0');
      if (v > limit)
        return -ERANGE;
      p++;
      digits = true;
    }
    if (!digits)
      return -EINVAL;
    if (strncmp(p, "ms", 2) == 0) {
      mult = USEC_PER_MSEC;
      p += 2;
    } else if (*p == 's') {
      mult = USEC_PER_SEC;
      p++;
    } else if (*p == 'm') {
      mult = 60 * USEC_PER_SEC;
      p++;
    } else if (*p == 'h') {
      mult = 3600 * USEC_PER_SEC;
      p++;
    } else if (*p == 'd') {
      mult = 86400 * USEC_PER_SEC;
      p++;
    } else {
      return -EINVAL;
    }
    if (v > limit / mult)
      return -ERANGE;
    total += v * mult;
    if (total > limit)
      return -ERANGE;
  }
  *ret_usec = total;
  return 0;
}

size_t time_format_duration(char *buf, size_t size, uint64_t usec) {
  uint64_t s = usec / USEC_PER_SEC, h = s / 3600, m = (s / 60) % 60;
  size_t n = 0;

  if (usec < USEC_PER_SEC)
    return str_format(buf, size, "%llums", (unsigned long long)(usec / USEC_PER_MSEC));
  s %= 60;
  if (h)
    n += str_format(buf + n, size - n, "%lluh", (unsigned long long)h);
  if (m)
    n += str_format(buf + n, size - n, "%llum", (unsigned long long)m);
  if (s || (!h && !m))
    n += str_format(buf + n, size - n, "%llus", (unsigned long long)s);
  return n;
}

size_t time_format_rfc3339(char *buf, size_t size, uint64_t real_usec) {
  time_t t = (time_t)(real_usec / USEC_PER_SEC);
  struct tm tm;

  gmtime_r(&t, &tm);
  return strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int digits(const char **p, int n, int *ret) {
  int v = 0;

  for (int i = 0; i < n; i++) {
    if ((*p)[i] < '0' || (*p)[i] > '9')
      return -EINVAL;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *ret = v;
  return 0;
}

/* days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant) */
static int64_t days_from_civil(int64_t y, int m, int d) {
  int64_t era, yoe, doy, doe;

  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int time_parse_rfc3339(const char *s, int64_t *ret_sec) {
  int Y, M, D, h, m, sec, oh = 0, om = 0, sign = 0;
  const char *p = s;

  if (!s || digits(&p, 4, &Y) < 0 || *p++ != '-' || digits(&p, 2, &M) < 0 ||
      *p++ != '-' || digits(&p, 2, &D) < 0 || (*p != 'T' && *p != 't' && *p != ' '))
    return -EINVAL;
  p++;
  if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &m) < 0 || *p++ != ':' ||
      digits(&p, 2, &sec) < 0)
    return -EINVAL;
  if (*p == '.') {
    p++;
    if (*p < '0' || *p > '9')
      return -EINVAL;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    sign = *p == '+' ? 1 : -1;
    p++;
    if (digits(&p, 2, &oh) < 0 || *p++ != ':' || digits(&p, 2, &om) < 0)
      return -EINVAL;
  } else {
    return -EINVAL;
  }
  if (*p || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60 || oh > 23 ||
      om > 59)
    return -EINVAL;
  *ret_sec = days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + sec -
             sign * (oh * 3600 + om * 60);
  return 0;
}
