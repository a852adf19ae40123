/* Bounded string helpers; see str.h. */
#include "base/str.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

size_t str_copy(char *dst, size_t size, const char *src) {
  size_t n = strlen(src);

  if (size) {
    size_t c = n < size - 1 ? n : size - 1;
    memcpy(dst, src, c);
    dst[c] = '\0';
  }
  return n;
}

size_t str_vformat(char *dst, size_t size, const char *fmt, va_list ap) {
  int n;

  if (!size)
    return 0;
  n = vsnprintf(dst, size, fmt, ap);
  if (n < 0) {
    dst[0] = '\0';
    return 0;
  }
  return (size_t)n < size ? (size_t)n : size - 1;
}

size_t str_format(char *dst, size_t size, const char *fmt, ...) {
  va_list ap;
  size_t n;

  va_start(ap, fmt);
  n = str_vformat(dst, size, fmt, ap);
  va_end(ap);
  return n;
}

bool str_eq(const char *a, const char *b) {
  if (!a || !b)
    return a == b;
  return strcmp(a, b) == 0;
}

bool str_has_prefix(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

bool str_has_any_suffix(const char *s, const char *const *suffixes) {
  if (!suffixes)
    return true;
  for (; *suffixes; suffixes++)
    if (str_has_suffix(s, *suffixes))
      return true;
  return false;
}

bool str_is_empty(const char *s) { return !s || !*s; }

const char *str_chr(const char *s, char c) { return strchr(s, c); }

int str_to_u64(const char *s, uint64_t max, uint64_t *ret) {
  uint64_t v = 0;
  const char *p = s;

  if (!s || !*s)
    return -EINVAL;
  for (; *p; p++) {
    unsigned d;
    if (*p < '0' || *p > '9')
      return -EINVAL;
    d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -ERANGE;
    v = v * 10 + d;
  }
  if (v > max)
    return -ERANGE;
  *ret = v;
  return 0;
}

int str_to_i64(const char *s, int64_t min, int64_t max, int64_t *ret) {
  uint64_t mag;
  bool neg = false;
  int64_t v;
  int r;

  if (!s)
    return -EINVAL;
  if (*s == '-' || *s == '+') {
    neg = *s == '-';
    s++;
  }
  r = str_to_u64(s, (uint64_t)INT64_MAX + (neg ? 1u : 0u), &mag);
  if (r < 0)
    return r;
  if (neg)
    v = mag == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)mag;
  else
    v = (int64_t)mag;
  if (v < min || v > max)
    return -ERANGE;
  *ret = v;
  return 0;
}

int str_to_int(const char *s, int min, int max, int *ret) {
  int64_t v;
  int r = str_to_i64(s, min, max, &v);

  if (r < 0)
    return r;
  *ret = (int)v;
  return 0;
}

bool str_valid_utf8(const char *s, size_t len, size_t *bad_off) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;

  while (i < len) {
    unsigned char c = p[i];
    uint32_t cp;
    size_t n, k;

    if (c == 0)
      goto bad;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      cp = c & 0x07;
    } else {
      goto bad;
    }
    if (len - i <= n)
      goto bad;
    for (k = 1; k <= n; k++) {
      if ((p[i + k] & 0xc0) != 0x80)
        goto bad;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      goto bad;
    i += n + 1;
  }
  return true;
bad:
  if (bad_off)
    *bad_off = i;
  return false;
}

const char *str_escape(char *buf, size_t size, const char *s) {
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;

  if (!size)
    return buf;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[5];
    size_t len;

    if (c == '\n')
      len = str_format(esc, sizeof(esc), "\\n");
    else if (c == '\t')
      len = str_format(esc, sizeof(esc), "\\t");
    else if (c < 0x20 || c == 0x7f) {
      esc[0] = '\\', esc[1] = 'x', esc[2] = hex[c >> 4], esc[3] = hex[c & 15], esc[4] = '\0';
      len = 4;
    } else {
      esc[0] = (char)c, esc[1] = '\0';
      len = 1;
    }
    if (n + len + 4 > size) {
      str_copy(buf + n, size - n, size - n > 3 ? "..." : "");
      return buf;
    }
    memcpy(buf + n, esc, len);
    n += len;
  }
  buf[n] = '\0';
  return buf;
}
