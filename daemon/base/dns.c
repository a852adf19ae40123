/* Kubernetes/Istio name rules; see dns.h. The messages end up in
 * "file:line:col: error: ..." lines, so they say what is wrong, not just
 * that something is. */
#include "base/dns.h"

#include <stdbool.h>
#include <string.h>

static bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

static const char *label_max(const char *s, size_t len, size_t max) {
  if (len == 0)
    return "is empty";
  if (len > max)
    return "is longer than 63 characters";
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z')
      return "must be lower case";
    if (!alnum(c) && c != '-')
      return "may contain only lower-case letters, digits and '-'";
  }
  if (!alnum(s[0]) || !alnum(s[len - 1]))
    return "must start and end with a letter or digit";
  return NULL;
}

static const char *label(const char *s, size_t len) { return label_max(s, len, 63); }

const char *dns_label_check(const char *s) { return label(s, strlen(s)); }

const char *dns_rfc1035_label_check(const char *s) {
  const char *why = label(s, strlen(s));

  if (why)
    return why;
  if (!(s[0] >= 'a' && s[0] <= 'z'))
    return "must start with a letter (it names a Kubernetes Service)";
  return NULL;
}

const char *dns_subdomain_check(const char *s) {
  size_t n = strlen(s);

  if (n == 0)
    return "is empty";
  if (n > 253)
    return "is longer than 253 characters";
  for (const char *p = s;;) {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    /* Kubernetes (IsDNS1123Subdomain) bounds only the whole name, not each part */
    const char *why = label_max(p, len, 253);
    if (why)
      return len == 0 ? "has an empty part between dots" : why;
    if (!dot)
      return NULL;
    p = dot + 1;
  }
}

const char *dns_host_check(const char *s) {
  size_t n = strlen(s), labels = 0;
  const char *p = s, *last = s;
  bool numeric = true;

  if (n == 0)
    return "is empty";
  if (n > 253)
    return "is longer than 253 characters";
  if (s[n - 1] == '.')
    return "must not end with a dot";
  if (strcmp(s, "*") == 0)
    return "is a bare wildcard; name the hosts";
  if (s[0] == '*') {
    if (s[1] != '.')
      return "may use a wildcard only as the whole first label (*.example.com)";
    p = s + 2;
  }
  if (strchr(p, '*'))
    return "may use a wildcard only as the whole first label (*.example.com)";
  for (;;) {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    const char *why = label(p, len);
    if (why)
      return len == 0 ? "has an empty label between dots" : why;
    labels++;
    last = p;
    if (!dot)
      break;
    p = dot + 1;
  }
  if (labels < 2)
    return "is not fully qualified; write the full domain name (api.example.com)";
  for (const char *q = last; *q; q++)
    if (!(*q >= '0' && *q <= '9'))
      numeric = false;
  if (numeric)
    return "has an all-numeric top-level domain; IP addresses are not external hosts here";
  return NULL;
}

bool dns_host_covers(const char *pattern, const char *host) {
  size_t np, nh;

  if (pattern[0] != '*' || pattern[1] != '.')
    return strcmp(pattern, host) == 0;
  np = strlen(pattern + 1); /* ".example.com" */
  nh = strlen(host);
  return nh > np && strcmp(host + nh - np, pattern + 1) == 0 && host[0] != '.';
}
