/* OpenSSH allowed_signers files (ssh-keygen(1) "ALLOWED SIGNERS") and
 * OpenSSH pattern lists (match.c), the one parser of the daemon: gitsrc/
 * authorises commit signers with it, ledger/ checkpoint signers.
 *
 *   principals [options] keytype base64-key [comment]
 *
 * options (comma-separated, names case-insensitive, values double-quoted,
 * as sshsig.c's sshsigopt_parse reads them):
 *   namespaces="pattern-list" | valid-after="time" | valid-before="time"
 *   no-touch-required | verify-required      (egressd's, for FIDO keys:
 *                                             the names of authorized_keys)
 *   cert-authority                           (refused: no certificates)
 *
 * Invariants: the file is bounded (SSH_SIGNERS_MAX_BYTES); unlike
 * ssh-keygen, which stops at a line it cannot parse, any bad line fails the
 * whole file with "file:line:col: what", so a typo never silently removes a
 * signer (and never silently keeps a later one). Keys are kept parsed
 * (struct ssh_key) and compared canonically. With SSH_SIGNERS_BARE_KEYS a
 * line that starts with a key type is a bare key (a .pub file).
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
#include "ssh/ssh-int.h"

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

int ssh_pattern_list_match(const char *string, const char *list) {
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

int ssh_time_parse(const char *s, int64_t *ret) {
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

static bool name_is(const char *s, size_t n, const char *lit) {
  return n == strlen(lit) && strncasecmp(s, lit, n) == 0;
}

static int parse_options(struct cursor *c, const char *opts, size_t n, struct ssh_signer *e,
                         struct err *err) {
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
    if (!eq && name_is(start, nlen, "cert-authority")) {
      return bad(err, c, start, "%s",
                 "cert-authority is not supported by egressd (certificate signers cannot be "
                 "verified): list each signer's own key instead");
    } else if (!eq && name_is(start, nlen, "no-touch-required")) {
      e->no_touch_required = true;
    } else if (!eq && name_is(start, nlen, "verify-required")) {
      e->verify_required = true;
    } else if (eq && name_is(start, nlen, "namespaces")) {
      if (e->namespaces)
        return bad(err, c, start, "%s", "namespaces given twice");
      if ((r = parse_option_value(c, eq + 1, eq + 1, len - nlen - 1, &e->namespaces, err)) < 0)
        return r;
    } else if (eq && (name_is(start, nlen, "valid-after") || name_is(start, nlen, "valid-before"))) {
      bool after = nlen == 11;
      int64_t t;
      if (after ? e->has_valid_after : e->has_valid_before)
        return bad(err, c, start, "%s",
                   after ? "valid-after given twice" : "valid-before given twice");
      if ((r = parse_option_value(c, eq + 1, eq + 1, len - nlen - 1, &value, err)) < 0)
        return r;
      if (ssh_time_parse(value, &t) < 0) {
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
                 "unknown option '%s' (allowed: namespaces=, valid-after=, valid-before=, "
                 "no-touch-required, verify-required)",
                 name);
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

static void entry_dispose(struct ssh_signer *e) {
  free(e->principals);
  free(e->namespaces);
  ssh_key_free(e->key);
  memset(e, 0, sizeof(*e));
}

static int parse_line(struct cursor *c, unsigned flags, struct ssh_signer *e, struct err *err) {
  const char *tok, *opts = NULL, *type;
  size_t n, opts_len = 0, type_len;
  struct err sub = ERR_INIT;
  int r;

  if ((r = next_token(c, &tok, &n, err)) < 0)
    return r;
  if ((flags & SSH_SIGNERS_BARE_KEYS) && ssh_key_type_known(tok, n)) {
    type = tok; /* a .pub line: type base64 [comment] */
    type_len = n;
  } else {
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
    if (!ssh_key_type_known(tok, n)) {
      opts = tok;
      opts_len = n;
      if ((r = next_token(c, &tok, &n, err)) < 0)
        return r;
      if (n == 0)
        return bad(err, c, tok, "%s", "missing key type");
      if (!ssh_key_type_known(tok, n)) {
        /* name the word that should have been the key type: the one after the
         * options when they look like options, else the one after the principals */
        bool looks_like_opts = memchr(opts, '=', opts_len) || name_is(opts, opts_len,
                                                                      "cert-authority");
        const char *word = looks_like_opts ? tok : opts;
        size_t wn = looks_like_opts ? n : opts_len;
        return bad(err, c, word,
                   "unknown key type '%.*s' (expected ssh-ed25519, ssh-rsa, ecdsa-sha2-..., "
                   "sk-... after the principals and options)",
                   (int)(wn < 60 ? wn : 60), word);
      }
    }
    type = tok;
    type_len = n;
  }
  if (opts && (r = parse_options(c, opts, opts_len, e, err)) < 0)
    return r;
  if ((r = next_token(c, &tok, &n, err)) < 0)
    return r;
  if (n == 0)
    return bad(err, c, tok, "%s", "missing base64 key");
  if (ssh_key_from_text(type, type_len, tok, n, &e->key, &sub) < 0)
    return bad(err, c, tok, "%s", sub.msg);
  if (e->key->type == SSH_KEY_OTHER && strstr(e->key->name, "-cert-v01@"))
    return bad(err, c, type, "%s", "certificate keys are not supported by egressd");
  if ((e->no_touch_required || e->verify_required) && e->key->type != SSH_KEY_SK_ED25519 &&
      e->key->type != SSH_KEY_SK_ECDSA_P256)
    return bad(err, c, opts, "%s is for FIDO keys (sk-ssh-ed25519, sk-ecdsa-sha2-nistp256) only",
               e->verify_required ? "verify-required" : "no-touch-required");
  /* the rest of the line is a comment */
  return 0;
}

int ssh_signers_parse(const char *name, const char *text, size_t len, unsigned flags,
                      struct ssh_signers **ret, struct err *err) {
  struct ssh_signers *s;
  struct cursor c = {.name = name, .line = 0};
  const char *p = text, *end = text + len;

  if (len > SSH_SIGNERS_MAX_BYTES)
    return err_set_src(err, -E2BIG, ERR_SRC_INPUT,
                       "%s is %zu bytes, larger than the limit of %u bytes", name, len,
                       SSH_SIGNERS_MAX_BYTES);
  if (memchr(text, '\0', len))
    return err_set_src(err, -EINVAL, ERR_SRC_INPUT, "%s contains a NUL byte", name);
  s = xcalloc(1, sizeof(*s));
  s->name = xstrdup(name);
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    struct ssh_signer e = {0};
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
      r = parse_line(&c, flags, &e, err);
      if (r < 0) {
        entry_dispose(&e);
        ssh_signers_free(s);
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

int ssh_signers_load(const char *path, unsigned flags, struct ssh_signers **ret,
                     struct err *err) {
  struct buf b = BUF_INIT;
  int r;

  r = file_read_all(path, SSH_SIGNERS_MAX_BYTES, &b, err);
  if (r >= 0)
    r = ssh_signers_parse(path, buf_cstr(&b), b.len, flags, ret, err);
  buf_dispose(&b);
  return r;
}

void ssh_signers_free(struct ssh_signers *s) {
  if (!s)
    return;
  for (size_t i = 0; i < s->n; i++)
    entry_dispose(&s->entries[i]);
  free(s->entries);
  free(s->name);
  free(s);
}

bool ssh_signer_valid_at(const struct ssh_signer *e, int64_t t) {
  return (!e->has_valid_after || t >= e->valid_after) &&
         (!e->has_valid_before || t <= e->valid_before);
}

bool ssh_signer_accepts_flags(const struct ssh_signer *e, const struct ssh_sig_details *d) {
  if (!d || !d->sk)
    return true;
  if (!e->no_touch_required && !(d->sk_flags & SSH_SK_USER_PRESENCE))
    return false;
  if (e->verify_required && !(d->sk_flags & SSH_SK_USER_VERIFIED))
    return false;
  return true;
}
