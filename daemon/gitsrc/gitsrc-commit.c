/* Raw commit objects: git's signature split and a bounded header/message
 * parser (tree, parents, author, committer, message, trailers).
 *
 * Invariants: only the bytes given are read (no NUL termination assumed);
 * every input is refused beyond GITSRC_COMMIT_MAX_BYTES; the split follows
 * git's commit.c parse_buffer_signed_by_header() line for line, because the
 * signed payload must be byte-identical to what `git commit -S` signed.
 * When you change the split, also touch docs/signing.md and the crafted
 * cases in tests/unit/test-gitsrc.c and tests/integration/test_gitsrc_verify.py.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "gitsrc/gitsrc-int.h"

#define SIG_HEADER "gpgsig"   /* the signature header of SHA-1 repositories */

static bool line_has_prefix(const char *line, const char *end, const char *prefix) {
  size_t n = strlen(prefix);
  return (size_t)(end - line) >= n && memcmp(line, prefix, n) == 0;
}

int gitsrc_commit_split(const char *raw, size_t len, struct buf *payload, struct buf *signature,
                        unsigned *ret_headers, struct err *err) {
  const char *line = raw, *tail = raw + len;
  bool in_signature = false, saw_signature = false, other_signature = false;
  unsigned headers = 0;

  if (len > GITSRC_COMMIT_MAX_BYTES)
    return err_set_src(err, -E2BIG, ERR_SRC_SIG,
                       "commit object is %zu bytes, larger than the limit of %u bytes", len,
                       GITSRC_COMMIT_MAX_BYTES);
  while (line < tail) {
    const char *sig = NULL;
    const char *next = memchr(line, '\n', (size_t)(tail - line));

    next = next ? next + 1 : tail;
    if (in_signature && line[0] == ' ') {
      sig = line + 1;
    } else if (line_has_prefix(line, next, SIG_HEADER " ")) {
      sig = line + strlen(SIG_HEADER) + 1;
      other_signature = false;
      headers++;
    } else if (line_has_prefix(line, next, "gpgsig")) {
      other_signature = true;
    } else if (other_signature && line[0] != ' ') {
      other_signature = false;
    }
    if (sig) {
      buf_append(signature, sig, (size_t)(next - sig));
      saw_signature = true;
      in_signature = true;
    } else {
      if (line[0] == '\n')
        next = tail; /* end of the header: the rest is the message, verbatim */
      if (!other_signature)
        buf_append(payload, line, (size_t)(next - line));
      in_signature = false;
    }
    line = next;
  }
  if (ret_headers)
    *ret_headers = headers;
  return saw_signature ? 1 : 0;
}

/* --- parsing ------------------------------------------------------------- */

static bool is_hex40(const char *s, size_t n) {
  if (n != GITSRC_OID_HEXSZ)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return true;
}

/* "Name <email> 1767323045 +0000": split into "Name <email>", time, tz. */
static int parse_ident(const char *v, size_t n, char **ret_who, int64_t *ret_time,
                       int *ret_tz) {
  const char *gt = NULL, *p, *end = v + n;
  int64_t t = 0;
  int tz, sign;

  for (p = v; p < end; p++)
    if (*p == '>')
      gt = p;
  if (!gt || !memchr(v, '<', (size_t)(gt - v)) || end - gt < 2 || gt[1] != ' ')
    return -EBADMSG;
  p = gt + 2;
  if (p >= end || *p < '0' || *p > '9')
    return -EBADMSG;
  for (; p < end && *p >= '0' && *p <= '9'; p++) {
    if (t > (INT64_MAX - 9) / 10)
      return -EBADMSG;
    t = t * 10 + (*p - '0');
  }
  if (end - p != 6 || p[0] != ' ' || (p[1] != '+' && p[1] != '-'))
    return -EBADMSG;
  for (int i = 2; i < 6; i++)
    if (p[i] < '0' || p[i] > '9')
      return -EBADMSG;
  sign = p[1] == '-' ? -1 : 1;
  tz = sign * (((p[2] - '0') * 10 + (p[3] - '0')) * 60 + (p[4] - '0') * 10 + (p[5] - '0'));
  *ret_who = xstrndup(v, (size_t)(gt + 1 - v));
  *ret_time = t;
  *ret_tz = tz;
  return 0;
}

static char *sanitize_line(const char *s, size_t n) {
  struct buf b = BUF_INIT;
  size_t i = 0;

  while (i < n) {
    size_t bad;
    if (str_valid_utf8(s + i, n - i, &bad)) {
      bad = n - i;
    }
    /* copy the valid run, replacing control characters */
    for (size_t k = 0; k < bad; k++) {
      unsigned char c = (unsigned char)s[i + k];
      buf_putc(&b, (c < 0x20 || c == 0x7f) ? '?' : (char)c);
    }
    i += bad;
    if (i < n) {
      buf_putc(&b, '?');
      i++;
    }
  }
  {
    char *text = buf_detach(&b, NULL);
    return text ? text : xstrdup("");
  }
}

static bool is_token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* Trailers: the last paragraph of the message, when it is not the first
 * (the subject) and every line in it is "Token: value" or a continuation
 * line starting with whitespace. Git's interpret-trailers is more lenient
 * (25% trailer lines suffice); egressd reads only well-formed blocks. */
static void parse_trailers(struct gitsrc_commit_info *ci) {
  const char *msg = ci->message;
  size_t n = strlen(msg), start, first_para_end;
  const char *p;
  size_t cap = 0;

  while (n > 0 && (msg[n - 1] == '\n' || is_space(msg[n - 1])))
    n--;
  /* find the start of the last paragraph: after the last blank line */
  start = 0;
  first_para_end = n;
  for (size_t i = 0; i < n; i++) {
    if (msg[i] != '\n')
      continue;
    size_t j = i + 1;
    while (j < n && is_space(msg[j]))
      j++;
    if (j < n && msg[j] == '\n') {
      if (first_para_end == n)
        first_para_end = i;
      start = j + 1;
    }
  }
  if (start == 0 || start >= n || first_para_end == n)
    return;
  /* validate every line */
  for (p = msg + start; p < msg + n;) {
    const char *eol = memchr(p, '\n', (size_t)(msg + n - p));
    const char *q = p;
    if (!eol)
      eol = msg + n;
    if (!is_space(*p)) {
      while (q < eol && is_token_char(*q))
        q++;
      if (q == p)
        return;
      while (q < eol && is_space(*q))
        q++;
      if (q >= eol || *q != ':')
        return;
    } else if (p == msg + start) {
      return; /* a continuation line cannot open the block */
    }
    p = eol < msg + n ? eol + 1 : eol;
  }
  for (p = msg + start; p < msg + n;) {
    const char *eol = memchr(p, '\n', (size_t)(msg + n - p));
    if (!eol)
      eol = msg + n;
    if (is_space(*p)) {
      /* continuation: join to the previous value with one space */
      struct gitsrc_trailer *t = &ci->trailers[ci->n_trailers - 1];
      const char *v = p, *ve = eol;
      while (v < ve && is_space(*v))
        v++;
      while (ve > v && is_space(ve[-1]))
        ve--;
      char *joined = xasprintf("%s %.*s", t->value, (int)(ve - v), v);
      free(t->value);
      t->value = joined;
    } else {
      const char *k = p, *ke = p, *v, *ve = eol;
      while (is_token_char(*ke))
        ke++;
      v = (const char *)memchr(ke, ':', (size_t)(eol - ke)) + 1;
      while (v < ve && is_space(*v))
        v++;
      while (ve > v && is_space(ve[-1]))
        ve--;
      ci->trailers = xgrow(ci->trailers, &cap, ci->n_trailers + 1, sizeof(*ci->trailers));
      ci->trailers[ci->n_trailers].key = xstrndup(k, (size_t)(ke - k));
      ci->trailers[ci->n_trailers].value = xstrndup(v, (size_t)(ve - v));
      ci->n_trailers++;
    }
    p = eol < msg + n ? eol + 1 : eol;
  }
}

static int bad_commit(struct err *err, unsigned line, const char *what) {
  return err_set_src(err, -EBADMSG, ERR_SRC_GIT, "malformed commit object (header line %u): %s",
                     line, what);
}

int gitsrc_commit_parse(const void *raw_, size_t len, struct gitsrc_commit_info *ret,
                        struct err *err) {
  const char *raw = raw_, *line = raw, *tail = raw + len;
  struct gitsrc_commit_info ci = {0};
  size_t cap = 0;
  unsigned lineno = 0;
  bool have_tree = false, have_author = false, have_committer = false;
  int r = 0, tz;

  if (len > GITSRC_COMMIT_MAX_BYTES)
    return err_set_src(err, -E2BIG, ERR_SRC_GIT,
                       "commit object is %zu bytes, larger than the limit of %u bytes", len,
                       GITSRC_COMMIT_MAX_BYTES);
  if (memchr(raw, '\0', len))
    return err_set_src(err, -EBADMSG, ERR_SRC_GIT, "malformed commit object: contains a NUL byte");
  while (line < tail) {
    const char *eol = memchr(line, '\n', (size_t)(tail - line));
    const char *sp, *v;
    size_t key_len, vlen;

    lineno++;
    if (!eol) {
      r = bad_commit(err, lineno, "header not terminated by a newline");
      goto fail;
    }
    if (line == eol) { /* empty line: the message follows */
      line = eol + 1;
      break;
    }
    if (line[0] == ' ') { /* continuation of a multi-line header (gpgsig, mergetag) */
      if (lineno == 1) {
        r = bad_commit(err, lineno, "continuation line before any header");
        goto fail;
      }
      line = eol + 1;
      continue;
    }
    sp = memchr(line, ' ', (size_t)(eol - line));
    key_len = sp ? (size_t)(sp - line) : (size_t)(eol - line);
    v = sp ? sp + 1 : eol;
    vlen = (size_t)(eol - v);
    if (lineno == 1 && !(key_len == 4 && memcmp(line, "tree", 4) == 0)) {
      r = bad_commit(err, lineno, "the first header is not 'tree'");
      goto fail;
    }
    if (key_len == 4 && memcmp(line, "tree", 4) == 0) {
      if (have_tree || !is_hex40(v, vlen)) {
        r = bad_commit(err, lineno, have_tree ? "two 'tree' headers" : "bad tree id");
        goto fail;
      }
      memcpy(ci.tree.hex, v, GITSRC_OID_HEXSZ);
      have_tree = true;
    } else if (key_len == 6 && memcmp(line, "parent", 6) == 0) {
      if (have_author || !is_hex40(v, vlen)) {
        r = bad_commit(err, lineno, have_author ? "'parent' after 'author'" : "bad parent id");
        goto fail;
      }
      ci.parents = xgrow(ci.parents, &cap, ci.n_parents + 1, sizeof(*ci.parents));
      memset(&ci.parents[ci.n_parents], 0, sizeof(ci.parents[0]));
      memcpy(ci.parents[ci.n_parents++].hex, v, GITSRC_OID_HEXSZ);
    } else if (key_len == 6 && memcmp(line, "author", 6) == 0) {
      if (have_author || parse_ident(v, vlen, &ci.author, &ci.author_time, &tz) < 0) {
        r = bad_commit(err, lineno, have_author ? "two 'author' headers" : "bad author line");
        goto fail;
      }
      have_author = true;
    } else if (key_len == 9 && memcmp(line, "committer", 9) == 0) {
      if (have_committer ||
          parse_ident(v, vlen, &ci.committer, &ci.commit_time, &ci.commit_tz_minutes) < 0) {
        r = bad_commit(err, lineno,
                       have_committer ? "two 'committer' headers" : "bad committer line");
        goto fail;
      }
      have_committer = true;
    } else if (key_len == 6 && memcmp(line, "gpgsig", 6) == 0) {
      if (vlen >= 29 && memcmp(v, "-----BEGIN SSH SIGNATURE-----", 29) == 0)
        ci.signed_ssh = true;
    }
    line = eol + 1;
  }
  if (!have_tree || !have_author || !have_committer) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_GIT, "malformed commit object: missing '%s' header",
                    !have_tree ? "tree" : !have_author ? "author" : "committer");
    goto fail;
  }
  if (line > tail)
    line = tail;
  ci.message = xstrndup(line, (size_t)(tail - line));
  {
    const char *nl = memchr(ci.message, '\n', strlen(ci.message));
    size_t n = nl ? (size_t)(nl - ci.message) : strlen(ci.message);
    ci.summary = sanitize_line(ci.message, n);
  }
  parse_trailers(&ci);
  *ret = ci;
  return 0;
fail:
  gitsrc_commit_info_dispose(&ci);
  return r;
}

void gitsrc_commit_info_dispose(struct gitsrc_commit_info *info) {
  if (!info)
    return;
  free(info->parents);
  free(info->author);
  free(info->committer);
  free(info->message);
  free(info->summary);
  for (size_t i = 0; i < info->n_trailers; i++) {
    free(info->trailers[i].key);
    free(info->trailers[i].value);
  }
  free(info->trailers);
  memset(info, 0, sizeof(*info));
}

const char *gitsrc_commit_trailer(const struct gitsrc_commit_info *info, const char *key) {
  for (size_t i = info->n_trailers; i > 0; i--)
    if (strcasecmp(info->trailers[i - 1].key, key) == 0)
      return info->trailers[i - 1].value;
  return NULL;
}
