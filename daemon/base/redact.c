/* Redaction of secrets in text and of credentials in URLs; see redact.h.
 *
 * Invariant: every text that leaves egressd (message, log, status, ledger)
 * and may quote a credential goes through redact_secrets() with the
 * credentials held, or, for a repository URL, through url_redact(). Both
 * rules of redact_secrets() run over the whole text before any cut.
 * When you change the URL rules, scan_url() serves url_redact() and
 * url_secrets() alike: keep them one function.
 */
#include "base/redact.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"

static bool is_blank(unsigned char c) { return c == ' ' || c < 0x20 || c == 0x7f; }

/* Ends a token-like run: blanks, quotes, brackets and the punctuation that
 * separates a credential from its label ("token=", "Bearer:", "a,b"). */
static bool is_delim(unsigned char c) {
  return is_blank(c) || (c && strchr("\"'`,;:()<>[]{}=&?#@\\|!*$^", c));
}

/* Bytes of the text at @p that spell @s (@n bytes), blanks allowed between
 * two of its bytes but not before the first; 0 when @s is not there. */
static size_t match_spread(const char *p, const char *end, const char *s, size_t n) {
  const char *q = p;
  size_t j = 0;

  while (j < n) {
    if (q < end && *q == s[j]) {
      q++;
      j++;
    } else if (j > 0 && q < end && is_blank((unsigned char)*q)) {
      q++;
    } else {
      return 0;
    }
  }
  return (size_t)(q - p);
}

static void replace_text(struct buf *text, struct buf *out) {
  /* wipe the old text: it held the secret */
  mem_wipe(text->data, text->len);
  buf_reset(text);
  buf_append(text, out->data ? out->data : "", out->len);
  buf_dispose_secret(out);
}

void redact_secrets(struct buf *text, const char *const *secrets) {
  struct buf out = BUF_INIT;
  const char *p, *end;

  if (!secrets || !text->len)
    return;
  /* 1. whole secrets, blanks allowed inside; the longest match wins */
  p = text->data;
  end = p + text->len;
  while (p < end) {
    size_t best = 0;

    for (const char *const *s = secrets; *s; s++) {
      size_t n = strlen(*s), m;
      if (n && *p == (*s)[0] && (m = match_spread(p, end, *s, n)) > best)
        best = m;
    }
    if (best) {
      buf_puts(&out, REDACTED);
      p += best;
    } else {
      buf_putc(&out, *p++);
    }
  }
  replace_text(text, &out);

  /* 2. token-like runs that are a piece of a secret */
  p = text->data;
  end = p + text->len;
  while (p < end) {
    const char *run = p, *a, *b;
    bool piece = false;

    if (is_delim((unsigned char)*p)) {
      buf_putc(&out, *p++);
      continue;
    }
    while (p < end && !is_delim((unsigned char)*p))
      p++;
    /* the run without the dots of an ellipsis or a sentence around it */
    for (a = run; a < p && strchr(".-_~+/", *a); a++)
      ;
    for (b = p; b > a && strchr(".-_~+/", b[-1]); b--)
      ;
    if ((size_t)(b - a) >= REDACT_PARTIAL_MIN)
      for (const char *const *s = secrets; *s && !piece; s++)
        piece = memmem(*s, strlen(*s), a, (size_t)(b - a)) != NULL;
    if (piece) {
      buf_append(&out, run, (size_t)(a - run));
      buf_puts(&out, REDACTED);
      buf_append(&out, b, (size_t)(p - b));
    } else {
      buf_append(&out, run, (size_t)(p - run));
    }
  }
  replace_text(text, &out);
}

/* --- URLs ------------------------------------------------------------------- */

/* Call @part for consecutive spans of @url, @secret set on those url_redact()
 * hides. Only "scheme://" URLs have parts; anything else is one plain span. */
static void scan_url(const char *url, void (*part)(void *ud, const char *s, size_t n, bool secret),
                     void *ud) {
  const char *sep = strstr(url, "://"), *auth, *auth_end, *at = NULL, *q;
  bool http;

  /* a scheme is letters, digits, '+', '-', '.' before "://" */
  if (!sep || sep == url || strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.") !=
                                (size_t)(sep - url)) {
    part(ud, url, strlen(url), false);
    return;
  }
  http = (sep - url == 4 && strncasecmp(url, "http", 4) == 0) ||
         (sep - url == 5 && strncasecmp(url, "https", 5) == 0);
  auth = sep + 3;
  auth_end = auth + strcspn(auth, "/?#");
  for (q = auth; q < auth_end; q++)
    if (*q == '@')
      at = q; /* the last '@' ends the userinfo */
  if (at) {
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    part(ud, url, (size_t)(auth - url), false);
    if (colon) {
      /* user:password@ */
      part(ud, auth, (size_t)(colon + 1 - auth), false);
      if (at > colon + 1)
        part(ud, colon + 1, (size_t)(at - colon - 1), true);
    } else if (http && at > auth) {
      part(ud, auth, (size_t)(at - auth), true); /* https://TOKEN@host */
    } else {
      part(ud, auth, (size_t)(at - auth), false);
    }
    q = at;
  } else {
    q = url;
  }
  {
    const char *path_end = auth_end + strcspn(auth_end, "?#");
    part(ud, q, (size_t)(path_end - q), false);
    q = path_end;
  }
  if (*q == '?') {
    q++;
    part(ud, "?", 1, false);
    while (*q && *q != '#') {
      size_t n = strcspn(q, "&;#");
      const char *eq = memchr(q, '=', n);
      if (eq) {
        part(ud, q, (size_t)(eq + 1 - q), false);
        if ((size_t)(eq + 1 - q) < n)
          part(ud, eq + 1, n - (size_t)(eq + 1 - q), true);
      } else if (n) {
        part(ud, q, n, true); /* a bare value: "?TOKEN" */
      }
      q += n;
      if (*q == '&' || *q == ';')
        part(ud, q++, 1, false);
    }
  }
  if (*q == '#') {
    part(ud, "#", 1, false);
    if (q[1])
      part(ud, q + 1, strlen(q + 1), true);
  }
}

static void put_part(void *ud, const char *s, size_t n, bool secret) {
  struct buf *out = ud;

  if (secret)
    buf_puts(out, REDACTED);
  else
    buf_append(out, s, n);
}

char *url_redact(const char *url) {
  struct buf out = BUF_INIT;

  scan_url(url ? url : "", put_part, &out);
  return buf_detach(&out, NULL);
}

struct secret_list {
  char **items;
  size_t n, cap, min_len;
};

static void collect_part(void *ud, const char *s, size_t n, bool secret) {
  struct secret_list *l = ud;

  if (!secret || n < l->min_len || n == 0)
    return;
  l->items = xgrow(l->items, &l->cap, l->n + 2, sizeof(char *));
  l->items[l->n++] = xstrndup(s, n);
  l->items[l->n] = NULL;
}

char **url_secrets(const char *url, size_t min_len) {
  struct secret_list l = {.min_len = min_len};

  l.items = xgrow(NULL, &l.cap, 1, sizeof(char *));
  l.items[0] = NULL;
  scan_url(url ? url : "", collect_part, &l);
  return l.items;
}

void url_secrets_free(char **secrets) {
  if (!secrets)
    return;
  for (char **s = secrets; *s; s++) {
    mem_wipe(*s, strlen(*s));
    free(*s);
  }
  free(secrets);
}
