/* OpenSSH allowed_signers files (ssh-keygen(1) "ALLOWED SIGNERS") and
 * OpenSSH pattern lists.
 *
 *   principals [options] keytype base64-key [comment]
 *
 * options: cert-authority | namespaces="pattern-list" |
 *          valid-after="time" | valid-before="time"   (comma-separated,
 *          names case-insensitive, values quoted, as sshsig.c parses them).
 *
 * Invariants: the file is bounded (GITSRC_SIGNERS_MAX_BYTES); unlike
 * ssh-keygen, which skips a line it cannot parse, any bad line fails the
 * whole file with "file:line:col: what", so a typo never silently removes a
 * signer. cert-authority is refused explicitly (certificates are not
 * supported). Key blobs are kept as decoded wire bytes and compared exactly.
 * When you change what is accepted, also touch docs/signing.md.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/fileio.h"
#include "base/mem.h"
#include "base/str.h"
#include "gitsrc/gitsrc-int.h"

/* --- pattern lists (ssh match.c semantics) -------------------------------- */

/* '*' and '?' glob, iterative (no exponential backtracking on hostile input). */
static bool match_pattern(const char *s, const char *p, size_t plen) {
  size_t si = 0, pi = 0, star_p = (size_t)-1, star_s = 0, slen = strlen(s);

  while (si < slen) {
    if (pi < plen && (p[pi] == '?' || p[pi] == s[si])) {
      si++;
      pi++;
    } else if (pi < plen && p[pi] == '*') {
      star_p = pi++;
      star_s = si;
    } else if (star_p != (size_t)-1) {
      pi = star_p + 1;
      si = ++star_s;
    } else {
      return false;
    }
  }
  while (pi < plen && p[pi] == '*')
    pi++;
  return pi == plen;
}

int gitsrc_pattern_list_match(const char *string, const char *list) {
  size_t len = strlen(list), i = 0;
  int got_positive = 0;

  while (i < len) {
    bool negated = false;
    size_t start;
    if (list[i] == '!') {
      negated = true;
      i++;
    }
    start = i;
    while (i < len && list[i] != ',')
      i++;
    if (i - start >= 1023) /* ssh's limit for one pattern */
      return 0;
    if (match_pattern(string, list + start, i - start)) {
      if (negated)
        return -1;
      got_positive = 1;
    }
    if (i < len && list[i] == ',')
      i++;
  }
  return got_positive;
}

/* --- times ---------------------------------------------------------------- */

int gitsrc_signers_parse_time(const char *s, int64_t *ret) {
  size_t n = strlen(s);
  bool utc = false;
  int f[6] = {0, 1, 1, 0, 0, 0}; /* Y M D h m s */
  struct tm tm = {0}, check;
  time_t t;

  if (n > 0 && s[n - 1] == 'Z') {
    utc = true;
    n--;
  }
  if (n != 8 && n != 12 && n != 14)
    return -EINVAL;
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return -EINVAL;
  f[0] = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
  for (size_t i = 4, k = 1; i < n; i += 2, k++)
    f[k] = (s[i] - '0') * 10 + (s[i + 1] - '0');
  if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 59)
    return -EINVAL;
  tm.tm_year = f[0] - 1900;
  tm.tm_mon = f[1] - 1;
  tm.tm_mday = f[2];
  tm.tm_hour = f[3];
  tm.tm_min = f[4];
  tm.tm_sec = f[5];
  tm.tm_isdst = -1;
  check = tm;
  t = utc ? timegm(&tm) : mktime(&tm);
  if (t == (time_t)-1 || tm.tm_mday != check.tm_mday || tm.tm_mon != check.tm_mon)
    return -EINVAL; /* e.g. February 30th, normalised away by mktime */
  *ret = (int64_t)t;
  return 0;
}

/* --- the file ------------------------------------------------------------- */

static const char *const key_types[] = {
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
    "ssh-dss-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
};

static bool is_key_type(const char *s, size_t n) {
  for (size_t i = 0; i < ARRAY_SIZE(key_types); i++)
    if (strlen(key_types[i]) == n && memcmp(key_types[i], s, n) == 0)
      return true;
  return false;
}

static bool is_ws(char c) { return c == ' ' || c == '\t'; }

struct cursor {
  const char *name;
  unsigned line;
  const char *line_start;
  const char *p, *end;
};

static int bad(struct err *err, const struct cursor *c, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(struct err *err, const struct cursor *c, const char *at, const char *fmt, ...) {
  char msg[512];
  va_list ap;

  va_start(ap, fmt);
  str_vformat(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  err_set_src(err, -EINVAL, ERR_SRC_INPUT, "%s", msg);
  err_set_pos(err, c->name, c->line, (unsigned)(at - c->line_start) + 1);
  return -EINVAL;
}

/* One whitespace-delimited token; a token may contain double-quoted parts
 * with spaces inside (as ssh's strdelim and option parser allow). */
static int next_token(struct cursor *c, const char **ret, size_t *ret_len, struct err *err) {
  const char *start;
  bool quoted = false;

  while (c->p < c->end && is_ws(*c->p))
    c->p++;
  start = c->p;
  while (c->p < c->end && (quoted || !is_ws(*c->p))) {
    if (*c->p == '"')
      quoted = !quoted;
    c->p++;
  }
  if (quoted)
    return bad(err, c, start, "%s", "unterminated quote");
  *ret = start;
  *ret_len = (size_t)(c->p - start);
  return 0;
}

static int parse_option_value(struct cursor *c, const char *at, const char *v, size_t n,
                              char **ret, struct err *err) {
  if (n < 2 || v[0] != '"' || v[n - 1] != '"')
    return bad(err, c, at, "%s", "option value must be in double quotes");
  if (memchr(v + 1, '"', n - 2))
    return bad(err, c, at, "%s", "stray double quote in option value");
  *ret = xstrndup(v + 1, n - 2);
  return 0;
}

static int parse_options(struct cursor *c, const char *opts, size_t n,
                         struct gitsrc_signers_entry *e, struct err *err) {
  const char *p = opts, *end = opts + n;

  while (p < end) {
    const char *start = p, *eq;
    bool quoted = false;
    size_t len, nlen;
    char *value = NULL;
    int r;

    while (p < end && (quoted || *p != ',')) {
      if (*p == '"')
        quoted = !quoted;
      p++;
    }
    len = (size_t)(p - start);
    eq = memchr(start, '=', len);
    nlen = eq ? (size_t)(eq - start) : len;
    if (nlen == 14 && strncasecmp(start, "cert-authority", 14) == 0 && !eq) {
      return bad(err, c, start, "%s",
                 "cert-authority is not supported by egressd (certificate signers cannot be "
                 "verified): list each signer's own ssh-ed25519 key instead");
    } else if (eq && nlen == 10 && strncasecmp(start, "namespaces", 10) == 0) {
      if (e->namespaces)
        return bad(err, c, start, "%s", "namespaces given twice");
      if ((r = parse_option_value(c, eq + 1, eq + 1, len - nlen - 1, &e->namespaces, err)) < 0)
        return r;
    } else if (eq && ((nlen == 11 && strncasecmp(start, "valid-after", 11) == 0) ||
                      (nlen == 12 && strncasecmp(start, "valid-before", 12) == 0))) {
      bool after = nlen == 11;
      int64_t t;
      if (after ? e->has_valid_after : e->has_valid_before)
        return bad(err, c, start, "%s", after ? "valid-after given twice" : "valid-before given twice");
      if ((r = parse_option_value(c, eq + 1, eq + 1, len - nlen - 1, &value, err)) < 0)
        return r;
      if (gitsrc_signers_parse_time(value, &t) < 0) {
        r = bad(err, c, eq + 1,
                "invalid time '%s' (expected YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z])", value);
        free(value);
        return r;
      }
      free(value);
      if (after) {
        e->has_valid_after = true;
        e->valid_after = t;
      } else {
        e->has_valid_before = true;
        e->valid_before = t;
      }
    } else {
      char name[64];
      str_format(name, sizeof(name), "%.*s", (int)(nlen < 60 ? nlen : 60), start);
      return bad(err, c, start,
                 "unknown option '%s' (allowed: namespaces=, valid-after=, valid-before=)", name);
    }
    if (p < end)
      p++; /* the comma */
    if (p == end && p[-1] == ',')
      return bad(err, c, p - 1, "%s", "trailing comma in options");
  }
  if (e->has_valid_after && e->has_valid_before && e->valid_before <= e->valid_after)
    return bad(err, c, opts, "%s", "valid-before is not after valid-after");
  return 0;
}

static void entry_dispose(struct gitsrc_signers_entry *e) {
  free(e->principals);
  free(e->namespaces);
  free(e->key);
  memset(e, 0, sizeof(*e));
}

static int parse_line(struct cursor *c, struct gitsrc_signers_entry *e, struct err *err) {
  const char *tok, *opts = NULL, *type;
  size_t n, opts_len = 0, type_len;
  char blob_type[64];
  int r;

  if ((r = next_token(c, &tok, &n, err)) < 0)
    return r;
  if (n >= 2 && tok[0] == '"' && tok[n - 1] == '"') { /* a quoted principals list */
    tok++;
    n -= 2;
  }
  if (n == 0 || memchr(tok, '"', n))
    return bad(err, c, tok, "%s", "bad principals field");
  e->principals = xstrndup(tok, n);
  if ((r = next_token(c, &tok, &n, err)) < 0)
    return r;
  if (n == 0)
    return bad(err, c, tok, "%s", "missing key after the principals");
  if (!is_key_type(tok, n)) {
    opts = tok;
    opts_len = n;
    if ((r = next_token(c, &tok, &n, err)) < 0)
      return r;
    if (n == 0)
      return bad(err, c, tok, "%s", "missing key type");
    if (!is_key_type(tok, n)) {
      /* name the word that should have been the key type: the one after the
       * options when they look like options, else the one after the principals */
      bool looks_like_opts = memchr(opts, '=', opts_len) ||
                             (opts_len == 14 && strncasecmp(opts, "cert-authority", 14) == 0);
      const char *word = looks_like_opts ? tok : opts;
      size_t wn = looks_like_opts ? n : opts_len;
      return bad(err, c, word,
                 "unknown key type '%.*s' (expected ssh-ed25519, ssh-rsa, ecdsa-sha2-... "
                 "after the principals and options)",
                 (int)(wn < 60 ? wn : 60), word);
    }
  }
  type = tok;
  type_len = n;
  str_format(e->key_type, sizeof(e->key_type), "%.*s", (int)type_len, type);
  if (opts && (r = parse_options(c, opts, opts_len, e, err)) < 0)
    return r;
  if ((r = next_token(c, &tok, &n, err)) < 0)
    return r;
  if (n == 0)
    return bad(err, c, tok, "%s", "missing base64 key");
  if (n > GITSRC_SSHKEY_MAX_BLOB * 2 || gitsrc_base64_decode(tok, n, &e->key, &e->key_len) < 0)
    return bad(err, c, tok, "%s", "the key is not valid base64");
  gitsrc_sshkey_blob_type(e->key, e->key_len, blob_type, sizeof(blob_type));
  if (strcmp(blob_type, e->key_type) != 0)
    return bad(err, c, tok, "the key's blob is of type '%s', not the type written before it",
               blob_type);
  if (strstr(e->key_type, "-cert-v01@openssh.com"))
    return bad(err, c, type, "%s", "certificate keys are not supported by egressd");
  /* the rest of the line is a comment */
  return 0;
}

int gitsrc_signers_parse(const char *name, const char *text, size_t len,
                         struct gitsrc_signers **ret, struct err *err) {
  struct gitsrc_signers *s;
  struct cursor c = {.name = name, .line = 0};
  const char *p = text, *end = text + len;

  if (len > GITSRC_SIGNERS_MAX_BYTES)
    return err_set_src(err, -E2BIG, ERR_SRC_INPUT,
                       "%s is %zu bytes, larger than the limit of %u bytes", name, len,
                       GITSRC_SIGNERS_MAX_BYTES);
  if (memchr(text, '\0', len))
    return err_set_src(err, -EINVAL, ERR_SRC_INPUT, "%s contains a NUL byte", name);
  s = xcalloc(1, sizeof(*s));
  s->name = xstrdup(name);
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    struct gitsrc_signers_entry e = {0};
    const char *q;
    int r;

    if (!eol)
      eol = end;
    c.line++;
    c.line_start = p;
    c.p = p;
    c.end = eol;
    if (c.end > c.p && c.end[-1] == '\r')
      c.end--;
    for (q = c.p; q < c.end && is_ws(*q); q++)
      ;
    if (q < c.end && *q != '#') {
      e.line = c.line;
      r = parse_line(&c, &e, err);
      if (r < 0) {
        entry_dispose(&e);
        gitsrc_signers_free(s);
        return r;
      }
      s->entries = xgrow(s->entries, &s->cap, s->n + 1, sizeof(*s->entries));
      s->entries[s->n++] = e;
    }
    p = eol < end ? eol + 1 : end;
  }
  *ret = s;
  return 0;
}

int gitsrc_signers_load(const char *path, struct gitsrc_signers **ret, struct err *err) {
  struct buf b = BUF_INIT;
  int r;

  r = file_read_all(path, GITSRC_SIGNERS_MAX_BYTES, &b, err);
  if (r >= 0)
    r = gitsrc_signers_parse(path, buf_cstr(&b), b.len, ret, err);
  buf_dispose(&b);
  return r;
}

size_t gitsrc_signers_count(const struct gitsrc_signers *signers) {
  return signers ? signers->n : 0;
}

void gitsrc_signers_free(struct gitsrc_signers *s) {
  if (!s)
    return;
  for (size_t i = 0; i < s->n; i++)
    entry_dispose(&s->entries[i]);
  free(s->entries);
  free(s->name);
  free(s);
}
