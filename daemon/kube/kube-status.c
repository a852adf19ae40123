/* Errors from API-server responses, and the small pure helpers around them.
 *
 * A failed response becomes one struct err: "cluster <name>: <METHOD> <path>:
 * HTTP <code> <reason>: <message> (<field>: <cause>; ...)". The Status
 * (metav1.Status) gives reason, message and details.causes; any other body
 * (API Priority and Fairness' text/plain 429, a proxy's HTML page) is quoted
 * as a short excerpt with tags dropped and control characters folded, as
 * client-go's transformUnstructuredResponseError does.
 *
 * Invariant: no secret reaches an err. Every text built from a server's
 * answer goes through kube_redact() with the client's current secrets
 * (redact_secrets(), base/redact.h: whole, split by blanks, or a piece),
 * and any "Bearer x"/"Basic x" credential is masked whatever it is. A text
 * is folded as it will be shown first, redacted second, cut to size last.
 *
 * When you change the message format, also touch tests/unit/test-kube.c and
 * docs/clusters.md ("Errors").
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "base/mem.h"
#include "base/redact.h"
#include "base/str.h"
#include "kube/kube-int.h"


int kube_status_errno(long status, const char *reason) {
  switch (status) {
  case 400:
  case 422:
    return -EINVAL;
  case 401:
  case 403:
    return -EACCES;
  case 404:
    return -ENOENT;
  case 405:
  case 415:
    return -EOPNOTSUPP;
  case 409:
    return str_eq(reason, "AlreadyExists") ? -EEXIST : -EBUSY;
  case 410:
    return -ESTALE;
  case 413:
    return -EFBIG;
  case 429:
    return -EAGAIN;
  case 504:
    return -ETIMEDOUT;
  default:
    return status >= 500 ? -EAGAIN : -EPROTO;
  }
}

static const char *status_text(long status) {
  switch (status) {
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 413: return "Request Entity Too Large";
  case 415: return "Unsupported Media Type";
  case 422: return "Unprocessable Entity";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "error";
  }
}

void kube_excerpt(const char *body, size_t len, bool html, size_t max, struct buf *out) {
  size_t start = out->len;
  bool in_tag = false, blank = true;

  for (size_t i = 0; i < len && out->len - start < max; i++) {
    unsigned char ch = (unsigned char)body[i];

    if (html && ch == '<') {
      in_tag = true;
      continue;
    }
    if (in_tag) {
      if (ch == '>') {
        in_tag = false;
        ch = ' ';
      } else {
        continue;
      }
    }
    if (ch < 0x20 || ch == 0x7f)
      ch = ' ';
    if (ch >= 0x80) {
      /* keep whole, valid UTF-8 sequences only */
      size_t bad = 0, n = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : 2;
      if (i + n <= len && out->len - start + n <= max && str_valid_utf8(body + i, n, &bad)) {
        buf_append(out, body + i, n);
        i += n - 1;
        blank = false;
      } else {
        buf_putc(out, '?');
      }
      continue;
    }
    if (ch == ' ') {
      if (blank)
        continue;
      blank = true;
    } else {
      blank = false;
    }
    buf_putc(out, (char)ch);
  }
  while (out->len > start && out->data[out->len - 1] == ' ')
    buf_truncate(out, out->len - 1);
}

void kube_redact(struct buf *text, const char *const *secrets) {
  static const char *const schemes[] = {"bearer ", "basic ", NULL};
  struct buf out = BUF_INIT;
  const char *p, *end;

  /* the known secrets first (split and partial echoes too, base/redact.h),
   * then whatever follows a "Bearer "/"Basic " */
  redact_secrets(text, secrets);
  p = buf_cstr(text);
  end = p + text->len;
  while (p < end) {
    size_t skip = 0;

    for (const char *const *s = schemes; *s && !skip; s++) {
      size_t n = strlen(*s), tok;
      if ((size_t)(end - p) < n || strncasecmp(p, *s, n) != 0 ||
          (p > text->data && isalnum((unsigned char)p[-1])))
        continue;
      buf_append(&out, p, n);
      if (strncmp(p + n, REDACTED, strlen(REDACTED)) == 0) {
        skip = n; /* redacted already */
        continue;
      }
      tok = strcspn(p + n, " \t\r\n\"',;)]}");
      if (tok)
        buf_puts(&out, REDACTED);
      skip = n + tok;
    }
    if (skip) {
      p += skip;
      continue;
    }
    buf_putc(&out, *p++);
  }
  mem_wipe(text->data, text->len);
  buf_reset(text);
  buf_append(text, out.data ? out.data : "", out.len);
  buf_dispose_secret(&out);
}

bool kube_media_type_is(const char *ct, const char *type, const char *params) {
  size_t tl = strlen(type);
  const char *p;

  if (!ct)
    return false;
  while (*ct == ' ')
    ct++;
  if (strncasecmp(ct, type, tl) != 0 || (ct[tl] && ct[tl] != ';' && ct[tl] != ' '))
    return false;
  /* every wanted parameter must appear among the response's */
  for (p = params; p && *p;) {
    size_t wl = strcspn(p, ";");
    bool found = false;

    for (const char *q = strchr(ct, ';'); q; q = strchr(q + 1, ';')) {
      const char *r = q + 1;
      size_t hl;
      while (*r == ' ')
        r++;
      hl = strcspn(r, "; ");
      if (hl == wl && strncasecmp(r, p, wl) == 0) {
        found = true;
        break;
      }
    }
    if (!found)
      return false;
    p += wl;
    if (*p == ';')
      p++;
  }
  return true;
}

int kube_parse_json(struct doc_arena *a, const char *name, const char *data, size_t len,
                    size_t max_bytes, struct doc_node **ret, struct err *err) {
  struct doc_limits lim = doc_limits_default;

  lim.max_bytes = max_bytes;
  lim.max_docs = 1;
  lim.max_scalar = max_bytes < lim.max_scalar ? max_bytes : lim.max_scalar;
  return doc_parse_one(a, name, data, len, &lim, ret, err);
}

static void append_causes(struct buf *msg, const struct doc_node *causes, const char *message) {
  bool first = true;

  if (!doc_is(causes, DOC_SEQ))
    return;
  for (size_t i = 0; i < causes->u.seq.n && i < 20; i++) {
    const struct doc_node *c = causes->u.seq.items[i];
    const char *field = doc_map_str(c, "field"), *cm = doc_map_str(c, "message");
    struct buf one = BUF_INIT;

    if (str_is_empty(cm) && str_is_empty(field))
      continue;
    if (!str_is_empty(field))
      buf_printf(&one, "%s: %s", field, str_is_empty(cm) ? "(no message)" : cm);
    else
      buf_puts(&one, cm);
    /* the Status message usually repeats its causes; say each thing once */
    if (message && (strstr(message, buf_cstr(&one)) || (!field && strstr(message, cm)))) {
      buf_dispose(&one);
      continue;
    }
    buf_puts(msg, first ? " (" : "; ");
    buf_append(msg, one.data, one.len);
    first = false;
    buf_dispose(&one);
  }
  if (!first)
    buf_putc(msg, ')');
}

int kube_status_error(struct err *err, const char *cluster, const char *what, long status,
                      const char *content_type, const char *body, size_t len,
                      const char *const *secrets) {
  struct buf msg = BUF_INIT;
  struct doc_arena *a = NULL;
  struct doc_node *st = NULL;
  const char *reason = NULL, *message = NULL;
  char text[ERR_MSG_MAX];
  int code;

  if (len > 0 && (kube_media_type_is(content_type, "application/json", NULL) ||
                  (len > 0 && body[0] == '{'))) {
    a = doc_arena_new();
    if (kube_parse_json(a, "response", body, len, len + 1, &st, NULL) < 0 ||
        !str_eq(doc_map_str(st, "kind"), "Status"))
      st = NULL;
  }
  buf_printf(&msg, "cluster %s: %s: HTTP %ld", cluster, what, status);
  if (st) {
    reason = doc_map_str(st, "reason");
    message = doc_map_str(st, "message");
    buf_printf(&msg, " %s", !str_is_empty(reason) ? reason : status_text(status));
    if (!str_is_empty(message))
      buf_printf(&msg, ": %s", message);
    append_causes(&msg, doc_path(st, "details.causes"), message);
  } else {
    buf_printf(&msg, " %s", status_text(status));
    if (len > 0) {
      /* Fold the body as it will be shown, then redact, then cut: a secret
       * broken by newlines or tags is whole again (and found) once folded,
       * and no cut can leave a prefix of it. The excerpt is folded a little
       * past KUBE_EXCERPT_MAX, far enough to hold any secret that starts
       * before the cut (folding leaves at most one blank between two of
       * its bytes). */
      struct buf ex = BUF_INIT;
      size_t longest = 0;
      bool html = kube_media_type_is(content_type, "text/html", NULL) ||
                  (len > 5 && strncasecmp(body, "<html", 5) == 0) ||
                  (len > 9 && strncasecmp(body, "<!doctype", 9) == 0);
      for (const char *const *s = secrets; s && *s; s++)
        if (strlen(*s) > longest)
          longest = strlen(*s);
      kube_excerpt(body, len, html, KUBE_EXCERPT_MAX + 2 * longest + 8, &ex);
      kube_redact(&ex, secrets);
      if (ex.len > KUBE_EXCERPT_MAX) {
        size_t cut = KUBE_EXCERPT_MAX;
        while (cut > 0 && ((unsigned char)ex.data[cut] & 0xc0) == 0x80)
          cut--;
        mem_wipe(ex.data + cut, ex.len - cut);
        buf_truncate(&ex, cut);
        buf_puts(&ex, "...");
      }
      if (ex.len)
        buf_printf(&msg, ": server said \"%s\"", buf_cstr(&ex));
      buf_dispose_secret(&ex);
    }
  }
  for (size_t i = 0; i < msg.len; i++)
    if ((unsigned char)msg.data[i] < 0x20 || msg.data[i] == 0x7f)
      msg.data[i] = ' '; /* an err is one line */
  kube_redact(&msg, secrets);
  if (msg.len >= sizeof(text)) {
    /* cut on a character boundary: an err holds valid UTF-8 */
    size_t cut = sizeof(text) - 1;
    while (cut > 0 && ((unsigned char)msg.data[cut] & 0xc0) == 0x80)
      cut--;
    buf_truncate(&msg, cut);
  }
  str_copy(text, sizeof(text), buf_cstr(&msg));
  code = kube_status_errno(status, reason);
  if (err && !err_isset(err)) {
    err_set_src(err, code, ERR_SRC_KUBE, "%s", text);
    err->detail = status;
    if (!str_is_empty(reason) && strlen(reason) < sizeof(err->reason) &&
        strspn(reason, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") == strlen(reason))
      str_copy(err->reason, sizeof(err->reason), reason);
  }
  mem_wipe(text, sizeof(text));
  buf_dispose_secret(&msg);
  doc_arena_free_secret(a);
  return code;
}

uint64_t kube_backoff_delay(const struct kube_options *o, unsigned retry, int64_t retry_after_sec,
                            uint32_t rnd) {
  uint64_t cap = o->backoff_max_usec, d;

  if (retry_after_sec >= 0) {
    d = (uint64_t)retry_after_sec > cap / 1000000 ? cap : (uint64_t)retry_after_sec * 1000000;
    return d;
  }
  d = o->backoff_base_usec;
  for (unsigned i = 1; i < retry && d < cap; i++)
    d *= 2;
  if (d > cap)
    d = cap;
  /* "equal jitter": half of the wait is fixed, the other half random */
  return d / 2 + (uint64_t)rnd % (d / 2 + 1);
}
