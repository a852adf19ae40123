/* The webhook doorbell's pure half (see webhook.h): the HTTP/1.1 request
 * head, the verdict on a whole request, the listen address, the token
 * bucket, and reading the secret file. Nothing here touches a socket or
 * logs; webhook-server.c does, with these.
 *
 * Invariants:
 *   - A request is authenticated before anything of its body is looked at
 *     (no JSON is parsed for a stranger), and an unauthenticated client
 *     learns only which header was missing or that it did not match.
 *   - Every comparison with the secret is constant-time (CRYPTO_memcmp),
 *     over fixed-size digests, so neither the content nor the length of
 *     the secret leaks through timing. Copies of the secret and of digests
 *     keyed by it are wiped.
 *   - A verdict's reason is one line and never carries the secret, a token
 *     or a received signature; the pushed ref (after authentication) is
 *     kept apart, escaped, for the log.
 *   - The head is parsed strictly (RFC 9112): one request per connection,
 *     POST with Content-Length only, no Transfer-Encoding, no obsolete line
 *     folding, no repeated Content-Length or forge header, no control
 *     characters in values. Ambiguity is a 400, never a guess.
 *
 * When you change what a forge sends or how it signs, also touch the table
 * in tests/unit/test-webhook.c and the corpus in tests/fuzz/corpus/webhook/.
 */
#include "svc/webhook.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "base/mem.h"
#include "base/str.h"
#include "doc/doc.h"

#define SHA256_HEX_LEN 64

/* ---- verdicts ---- */

static void verdict(struct webhook_verdict *v, int status, enum webhook_result result,
                    const char *reason) {
  v->status = status;
  v->result = result;
  v->doorbell = false;
  str_copy(v->reason, sizeof(v->reason), reason);
}

static int refuse(struct webhook_verdict *v, int status, enum webhook_result result,
                  const char *reason) {
  verdict(v, status, result, reason);
  return -EBADMSG;
}

const char *webhook_forge_name(enum webhook_forge f) {
  switch (f) {
  case WEBHOOK_FORGE_GITHUB:
    return "GitHub";
  case WEBHOOK_FORGE_GITLAB:
    return "GitLab";
  case WEBHOOK_FORGE_GITEA:
    return "Gitea";
  case WEBHOOK_FORGE_FORGEJO:
    return "Forgejo";
  case WEBHOOK_FORGE_BITBUCKET:
    return "Bitbucket";
  case WEBHOOK_FORGE_NONE:
    break;
  }
  return "unknown";
}

const char *webhook_result_name(enum webhook_result r) {
  static const char *const names[_WEBHOOK_RESULT_MAX] = {
      [WEBHOOK_RESULT_DOORBELL] = "doorbell",
      [WEBHOOK_RESULT_IGNORED] = "ignored",
      [WEBHOOK_RESULT_PING] = "ping",
      [WEBHOOK_RESULT_UNAUTHORIZED] = "unauthorized",
      [WEBHOOK_RESULT_BAD_REQUEST] = "bad_request",
      [WEBHOOK_RESULT_TOO_LARGE] = "too_large",
      [WEBHOOK_RESULT_HEADERS_TOO_LARGE] = "headers_too_large",
      [WEBHOOK_RESULT_RATE_LIMITED] = "rate_limited",
      [WEBHOOK_RESULT_TIMEOUT] = "timeout",
  };
  return r < _WEBHOOK_RESULT_MAX ? names[r] : "?";
}

static const char *status_phrase(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 202:
    return "Accepted";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 411:
    return "Length Required";
  case 413:
    return "Content Too Large";
  case 415:
    return "Unsupported Media Type";
  case 417:
    return "Expectation Failed";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Error";
  }
}

void webhook_response(const struct webhook_verdict *v, struct buf *out) {
  buf_reset(out);
  buf_printf(out,
             "HTTP/1.1 %d %s\r\n"
             "Content-Type: text/plain; charset=utf-8\r\n"
             "Content-Length: %zu\r\n"
             "Cache-Control: no-store\r\n"
             "Connection: close\r\n",
             v->status, status_phrase(v->status), strlen(v->reason) + 1);
  if (v->status == 429)
    buf_printf(out, "Retry-After: %u\r\n", v->retry_after ? v->retry_after : 1);
  if (v->status == 405)
    buf_puts(out, "Allow: POST\r\n");
  buf_printf(out, "\r\n%s\n", v->reason);
}

/* ---- the head ---- */

static bool is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool span_is(struct webhook_str s, const char *lit) {
  size_t n = strlen(lit);
  return s.p && s.len == n && memcmp(s.p, lit, n) == 0;
}

static bool span_is_nocase(struct webhook_str s, const char *lit) {
  size_t n = strlen(lit);
  return s.p && s.len == n && strncasecmp(s.p, lit, n) == 0;
}

/* The request line: "POST /path HTTP/1.1". */
static int request_line(const char *p, size_t n, struct webhook_verdict *v) {
  size_t m = 0, t, tn;

  while (m < n && is_tchar((unsigned char)p[m]))
    m++;
  if (m == 0 || m >= n || p[m] != ' ')
    return refuse(v, 400, WEBHOOK_RESULT_BAD_REQUEST, "malformed request line");
  t = m + 1;
  tn = 0;
  while (t + tn < n && p[t + tn] != ' ') {
    unsigned char c = (unsigned char)p[t + tn];
    if (c <= 0x20 || c == 0x7f)
      return refuse(v, 400, WEBHOOK_RESULT_BAD_REQUEST, "malformed request target");
    tn++;
  }
  if (tn == 0 || t + tn >= n)
    return refuse(v, 400, WEBHOOK_RESULT_BAD_REQUEST, "malformed request line");
  if (n - (t + tn + 1) != 8 || memcmp(p + t + tn + 1, "HTTP/", 5) != 0)
    return refuse(v, 400, WEBHOOK_RESULT_BAD_REQUEST, "malformed request line");
  if (memcmp(p + t + tn + 1, "HTTP/1.1", 8) != 0)
    return refuse(v, 505, WEBHOOK_RESULT_BAD_REQUEST, "only HTTP/1.1 is served");
  if (p[t] != '/')
    return refuse(v, 400, WEBHOOK_RESULT_BAD_REQUEST, "the request target must be a path");
  if (m != 4 || memcmp(p, "POST", 4) != 0)
    return refuse(v, 405, WEBHOOK_RESULT_BAD_REQUEST, "only POST is served: a forge's webhook "
                                                      "delivers its events with POST");
  return 0;
}

/* The headers egressd reads; each may appear once. */
static struct webhook_str *header_slot(struct webhook_request *req, const char *name, size_t n) {
  static const struct {
    const char *name;
    size_t off;
  } slots[] = {
      {"content-type", offsetof(struct webhook_request, content_type)},
      {"x-github-event", offsetof(struct webhook_request, github_event)},
      {"x-gitlab-event", offsetof(struct webhook_request, gitlab_event)},
      {"x-gitea-event", offsetof(struct webhook_request, gitea_event)},
      {"x-forgejo-event", offsetof(struct webhook_request, forgejo_event)},
      {"x-event-key", offsetof(struct webhook_request, event_key)},
      {"x-hub-signature-256", offsetof(struct webhook_request, hub_signature_256)},
      {"x-hub-signature", offsetof(struct webhook_request, hub_signature)},
      {"x-gitea-signature", offsetof(struct webhook_request, gitea_signature)},
      {"x-forgejo-signature", offsetof(struct webhook_request, forgejo_signature)},
      {"x-gitlab-token", offsetof(struct webhook_request, gitlab_token)},
  };
  for (size_t i = 0; i < ARRAY_SIZE(slots); i++)
    if (strlen(slots[i].name) == n && strncasecmp(slots[i].name, name, n) == 0)
      return (struct webhook_str *)(void *)((char *)req + slots[i].off);
  return NULL;
}

static bool is_delivery_header(const char *name, size_t n) {
  static const char *const names[] = {"x-github-delivery", "x-gitea-delivery",
                                      "x-forgejo-delivery", "x-gitlab-event-uuid",
                                      "x-request-id", "x-request-uuid"};
  for (size_t i = 0; i < ARRAY_SIZE(names); i++)
    if (strlen(names[i]) == n && strncasecmp(names[i], name, n) == 0)
      return true;
  return false;
}

struct framing {
  unsigned lengths;            /* Content-Length headers seen */
  bool length_ok, length_big, transfer_encoding, expect_other;
};

/* One header line (without its line end). */
static int header_line(const char *p, size_t n, struct webhook_request *req, struct framing *f,
                       struct webhook_verdict *v) {
  size_t colon = 0, vs, ve;
  struct webhook_str value, *slot;

  if (p[0] == ' ' || p[0] == '\t')
    return refuse(v, 400, WEBHOOK_RESULT_BAD_REQUEST, "obsolete line folding in the headers");
  while (colon < n && is_tchar((unsigned char)p[colon]))
    colon++;
  if (colon == 0 || colon >= n || p[colon] != ':')
    return refuse(v, 400, WEBHOOK_RESULT_BAD_REQUEST, "malformed header line");
  vs = colon + 1;
  ve = n;
  while (vs < ve && (p[vs] == ' ' || p[vs] == '\t'))
    vs++;
  while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
    ve--;
  for (size_t i = vs; i < ve; i++) {
    unsigned char c = (unsigned char)p[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return refuse(v, 400, WEBHOOK_RESULT_BAD_REQUEST, "a control character in a header value");
  }
  value = (struct webhook_str){p + vs, ve - vs};
  if (colon == 14 && strncasecmp(p, "content-length", 14) == 0) {
    uint64_t len = 0;
    f->lengths++;
    f->length_ok = value.len > 0;
    for (size_t i = 0; i < value.len && f->length_ok; i++) {
      if (value.p[i] < '0' || value.p[i] > '9')
        f->length_ok = false;
      else if (len > WEBHOOK_MAX_BODY)
        f->length_big = true; /* keep going: only digits are valid */
      else
        len = len * 10 + (uint64_t)(value.p[i] - '0');
    }
    if (len > WEBHOOK_MAX_BODY)
      f->length_big = true;
    req->content_length = len;
    return 0;
  }
  if (colon == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
    f->transfer_encoding = true;
    return 0;
  }
  if (colon == 6 && strncasecmp(p, "expect", 6) == 0) {
    if (span_is_nocase(value, "100-continue"))
      req->expect_continue = true;
    else
      f->expect_other = true;
    return 0;
  }
  if (is_delivery_header(p, colon)) {
    if (!req->delivery.p)
      req->delivery = value;
    return 0;
  }
  slot = header_slot(req, p, colon);
  if (slot) {
    if (slot->p)
      return refuse(v, 400, WEBHOOK_RESULT_BAD_REQUEST, "a webhook header is repeated");
    *slot = value;
  }
  return 0;
}

int webhook_head_parse(const char *data, size_t len, struct webhook_request *req,
                       struct webhook_verdict *v) {
  struct framing f = {0};
  size_t pos = 0, lines = 0;
  int r;

  memset(req, 0, sizeof(*req));
  memset(v, 0, sizeof(*v));
  /* a method starts with a token character; TLS, SSH or binary junk does
   * not, and is refused at its first byte rather than at the deadline */
  if (len > 0 && !is_tchar((unsigned char)data[0]))
    return refuse(v, 400, WEBHOOK_RESULT_BAD_REQUEST,
                  "not an HTTP request (plain HTTP/1.1 only; TLS belongs to a proxy in front)");
  for (;;) {
    const char *nl = memchr(data + pos, '\n', len - pos);
    size_t n;

    if (!nl) {
      if (len >= WEBHOOK_MAX_HEAD)
        return refuse(v, 431, WEBHOOK_RESULT_HEADERS_TOO_LARGE, "the request head is too large");
      return 0;
    }
    n = (size_t)(nl - (data + pos));
    if ((size_t)(nl - data) + 1 > WEBHOOK_MAX_HEAD)
      return refuse(v, 431, WEBHOOK_RESULT_HEADERS_TOO_LARGE, "the request head is too large");
    if (n > 0 && data[pos + n - 1] == '\r')
      n--;
    if (lines == 0) {
      if ((r = request_line(data + pos, n, v)) < 0)
        return r;
    } else if (n == 0) {
      req->head_len = (size_t)(nl - data) + 1;
      break;
    } else if (lines > WEBHOOK_MAX_HEADERS) {
      return refuse(v, 431, WEBHOOK_RESULT_HEADERS_TOO_LARGE, "too many header lines");
    } else if ((r = header_line(data + pos, n, req, &f, v)) < 0) {
      return r;
    }
    if (memchr(data + pos, '\0', n))
      return refuse(v, 400, WEBHOOK_RESULT_BAD_REQUEST, "a NUL byte in the request head");
    lines++;
    pos = (size_t)(nl - data) + 1;
  }
  if (f.transfer_encoding)
    return refuse(v, f.lengths ? 400 : 411, WEBHOOK_RESULT_BAD_REQUEST,
                  f.lengths ? "both Transfer-Encoding and Content-Length"
                            : "Transfer-Encoding is not served: send the body with Content-Length");
  if (f.lengths == 0)
    return refuse(v, 411, WEBHOOK_RESULT_BAD_REQUEST, "Content-Length is required");
  if (f.lengths > 1 || !f.length_ok)
    return refuse(v, 400, WEBHOOK_RESULT_BAD_REQUEST,
                  f.lengths > 1 ? "Content-Length is repeated" : "malformed Content-Length");
  if (f.length_big)
    return refuse(v, 413, WEBHOOK_RESULT_TOO_LARGE, "the body is larger than 1 MiB");
  if (f.expect_other)
    return refuse(v, 417, WEBHOOK_RESULT_BAD_REQUEST, "only Expect: 100-continue is served");
  return 1;
}

/* ---- authentication ---- */

static int unhex(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* A hex SHA-256 HMAC, after @prefix ("sha256=" or ""), into @mac. */
static bool signature_parse(struct webhook_str sig, const char *prefix, uint8_t mac[32]) {
  size_t pl = strlen(prefix);

  if (sig.len != pl + SHA256_HEX_LEN || strncasecmp(sig.p, prefix, pl) != 0)
    return false;
  for (size_t i = 0; i < 32; i++) {
    int hi = unhex(sig.p[pl + 2 * i]), lo = unhex(sig.p[pl + 2 * i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    mac[i] = (uint8_t)(hi << 4 | lo);
  }
  return true;
}

static bool hmac_matches(const uint8_t want[32], const uint8_t *secret, size_t secret_len,
                         const char *body, size_t body_len) {
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;
  bool ok;

  if (secret_len > WEBHOOK_SECRET_MAX ||
      !HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)body, body_len, mac,
            &mac_len) ||
      mac_len != 32) {
    mem_wipe(mac, sizeof(mac));
    return false;
  }
  ok = CRYPTO_memcmp(mac, want, 32) == 0;
  mem_wipe(mac, sizeof(mac));
  return ok;
}

/* GitLab sends the secret itself: compare digests, so that the time taken
 * depends on neither the secret's content nor its length. */
static bool token_matches(struct webhook_str token, const uint8_t *secret, size_t secret_len) {
  uint8_t a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  bool ok;

  SHA256((const unsigned char *)token.p, token.len, a);
  SHA256(secret, secret_len, b);
  ok = CRYPTO_memcmp(a, b, sizeof(a)) == 0;
  mem_wipe(a, sizeof(a));
  mem_wipe(b, sizeof(b));
  return ok;
}

/* 0 when authentic; else fills *v with the 401. */
static int authenticate(const struct webhook_request *req, enum webhook_forge forge,
                        const char *body, size_t body_len, const uint8_t *secret,
                        size_t secret_len, struct webhook_verdict *v) {
  struct webhook_str sig = {0};
  const char *name = "", *prefix = "";
  uint8_t want[32];
  bool ok;

  switch (forge) {
  case WEBHOOK_FORGE_GITLAB:
    if (!req->gitlab_token.p)
      return refuse(v, 401, WEBHOOK_RESULT_UNAUTHORIZED,
                    "missing X-Gitlab-Token (set the webhook's secret token)");
    if (!token_matches(req->gitlab_token, secret, secret_len))
      return refuse(v, 401, WEBHOOK_RESULT_UNAUTHORIZED,
                    "X-Gitlab-Token does not match the secret");
    return 0;
  case WEBHOOK_FORGE_GITHUB:
    sig = req->hub_signature_256, name = "X-Hub-Signature-256", prefix = "sha256=";
    break;
  case WEBHOOK_FORGE_GITEA:
    sig = req->gitea_signature, name = "X-Gitea-Signature";
    break;
  case WEBHOOK_FORGE_FORGEJO:
    sig = req->forgejo_signature.p ? req->forgejo_signature : req->gitea_signature;
    name = "X-Forgejo-Signature";
    break;
  case WEBHOOK_FORGE_BITBUCKET:
    sig = req->hub_signature, name = "X-Hub-Signature", prefix = "sha256=";
    break;
  case WEBHOOK_FORGE_NONE:
    return refuse(v, 400, WEBHOOK_RESULT_BAD_REQUEST, "no forge event header");
  }
  if (!sig.p) {
    char why[sizeof(v->reason)];
    str_format(why, sizeof(why), "missing %s (set the webhook's secret)", name);
    return refuse(v, 401, WEBHOOK_RESULT_UNAUTHORIZED, why);
  }
  if (!signature_parse(sig, prefix, want)) {
    char why[sizeof(v->reason)];
    str_format(why, sizeof(why), "malformed %s (want %s64 hex digits of HMAC-SHA256)", name,
               prefix);
    return refuse(v, 401, WEBHOOK_RESULT_UNAUTHORIZED, why);
  }
  ok = hmac_matches(want, secret, secret_len, body, body_len);
  mem_wipe(want, sizeof(want));
  if (!ok) {
    char why[sizeof(v->reason)];
    str_format(why, sizeof(why), "%s does not match the secret", name);
    return refuse(v, 401, WEBHOOK_RESULT_UNAUTHORIZED, why);
  }
  return 0;
}

/* ---- the body ---- */

static enum webhook_forge forge_of(const struct webhook_request *req) {
  /* Forgejo also sends Gitea's headers, Gitea GitHub's: most specific first */
  if (req->forgejo_event.p)
    return WEBHOOK_FORGE_FORGEJO;
  if (req->gitea_event.p)
    return WEBHOOK_FORGE_GITEA;
  if (req->gitlab_event.p)
    return WEBHOOK_FORGE_GITLAB;
  if (req->event_key.p)
    return WEBHOOK_FORGE_BITBUCKET;
  if (req->github_event.p)
    return WEBHOOK_FORGE_GITHUB;
  return WEBHOOK_FORGE_NONE;
}

enum event_kind { EVENT_OTHER, EVENT_PUSH, EVENT_PING };

static enum event_kind event_of(const struct webhook_request *req, enum webhook_forge forge) {
  switch (forge) {
  case WEBHOOK_FORGE_GITHUB:
    return span_is(req->github_event, "push")   ? EVENT_PUSH
           : span_is(req->github_event, "ping") ? EVENT_PING
                                                : EVENT_OTHER;
  case WEBHOOK_FORGE_GITEA:
  case WEBHOOK_FORGE_FORGEJO: {
    struct webhook_str e = forge == WEBHOOK_FORGE_GITEA ? req->gitea_event : req->forgejo_event;
    return span_is(e, "push") ? EVENT_PUSH : span_is(e, "ping") ? EVENT_PING : EVENT_OTHER;
  }
  case WEBHOOK_FORGE_GITLAB:
    return span_is(req->gitlab_event, "Push Hook") || span_is(req->gitlab_event, "Tag Push Hook")
               ? EVENT_PUSH
               : EVENT_OTHER;
  case WEBHOOK_FORGE_BITBUCKET:
    return span_is(req->event_key, "repo:refs_changed") || span_is(req->event_key, "repo:push")
               ? EVENT_PUSH
           : span_is(req->event_key, "diagnostics:ping") ? EVENT_PING
                                                         : EVENT_OTHER;
  case WEBHOOK_FORGE_NONE:
    break;
  }
  return EVENT_OTHER;
}

static bool json_media_type(struct webhook_str ct) {
  size_t n = 0;

  if (!ct.p)
    return true; /* no Content-Type: the body must still parse as JSON */
  while (n < ct.len && ct.p[n] != ';' && ct.p[n] != ' ' && ct.p[n] != '\t')
    n++;
  return n == 16 && strncasecmp(ct.p, "application/json", 16) == 0;
}

struct ref_match {
  const char *ref;             /* the followed ref */
  bool matched;
  char seen[128];              /* the first ref of the push, escaped */
};

static void saw(struct ref_match *m, const char *pushed) {
  if (!m->seen[0] || (!m->matched && str_eq(pushed, m->ref)))
    str_escape(m->seen, sizeof(m->seen), pushed);
  if (str_eq(pushed, m->ref))
    m->matched = true;
}

/* Bitbucket Cloud names a branch or tag by its short name and type. */
static void saw_cloud(struct ref_match *m, const struct doc_node *side) {
  const char *type = doc_map_str(side, "type"), *name = doc_map_str(side, "name");
  const char *prefix = str_eq(type, "branch") ? "refs/heads/" : str_eq(type, "tag") ? "refs/tags/"
                                                                                   : NULL;
  char full[512];

  if (!prefix || !name || str_format(full, sizeof(full), "%s%s", prefix, name) >= sizeof(full) - 1)
    return;
  saw(m, full);
}

/* The refs a push event names; false when it names none. */
static bool pushed_refs(const struct webhook_request *req, enum webhook_forge forge,
                        const struct doc_node *root, struct ref_match *m) {
  const struct doc_node *changes;
  bool any = false;

  if (forge != WEBHOOK_FORGE_BITBUCKET) {
    const char *ref = doc_map_str(root, "ref");
    if (!ref)
      return false;
    saw(m, ref);
    return true;
  }
  if (span_is(req->event_key, "repo:push")) {
    changes = doc_path(root, "push.changes");
    for (size_t i = 0; doc_is(changes, DOC_SEQ) && i < changes->u.seq.n; i++) {
      const struct doc_node *c = changes->u.seq.items[i];
      /* a deleted branch has no "new": its "old" names it */
      const struct doc_node *side = doc_is(doc_map_get(c, "new"), DOC_MAP) ? doc_map_get(c, "new")
                                                                           : doc_map_get(c, "old");
      if (doc_is(side, DOC_MAP)) {
        saw_cloud(m, side);
        any = true;
      }
    }
    return any;
  }
  changes = doc_map_get(root, "changes");
  for (size_t i = 0; doc_is(changes, DOC_SEQ) && i < changes->u.seq.n; i++) {
    const struct doc_node *c = changes->u.seq.items[i];
    const char *ref = doc_map_str(c, "refId");
    if (!ref)
      ref = doc_path_str(c, "ref.id");
    if (ref) {
      saw(m, ref);
      any = true;
    }
  }
  return any;
}

void webhook_judge(const struct webhook_request *req, const char *body, size_t body_len,
                   const uint8_t *secret, size_t secret_len, const char *ref,
                   struct webhook_verdict *v) {
  struct doc_limits lim = doc_limits_default;
  struct ref_match m = {.ref = ref};
  struct doc_arena *a;
  struct doc_node *root = NULL;
  struct err err = ERR_INIT;
  enum event_kind kind;

  memset(v, 0, sizeof(*v));
  v->forge = forge_of(req);
  if (v->forge == WEBHOOK_FORGE_NONE) {
    verdict(v, 400, WEBHOOK_RESULT_BAD_REQUEST,
            "no webhook event header (X-GitHub-Event, X-Gitlab-Event, X-Gitea-Event, "
            "X-Forgejo-Event or X-Event-Key)");
    return;
  }
  if (body_len != req->content_length) {
    verdict(v, 400, WEBHOOK_RESULT_BAD_REQUEST, "the body is shorter than its Content-Length");
    return;
  }
  if (!secret || !secret_len) {
    verdict(v, 401, WEBHOOK_RESULT_UNAUTHORIZED, "no secret to check the request against");
    return;
  }
  if (authenticate(req, v->forge, body, body_len, secret, secret_len, v) < 0)
    return;
  /* authentic from here on */
  kind = event_of(req, v->forge);
  if (kind == EVENT_PING) {
    verdict(v, 200, WEBHOOK_RESULT_PING, "pong: the secret matches");
    return;
  }
  if (kind == EVENT_OTHER) {
    verdict(v, 200, WEBHOOK_RESULT_IGNORED, "ignored: not a push event");
    return;
  }
  if (!json_media_type(req->content_type)) {
    verdict(v, 415, WEBHOOK_RESULT_BAD_REQUEST,
            "the body must be application/json (the webhook's content type setting)");
    return;
  }
  lim.max_bytes = WEBHOOK_MAX_BODY;
  lim.max_docs = 1;
  lim.max_depth = 64;
  lim.max_nodes = 200000;
  a = doc_arena_new();
  /* JSON is YAML to doc/, but YAML is not JSON: only an object is taken */
  while (body_len && (*body == ' ' || *body == '\t' || *body == '\r' || *body == '\n'))
    body++, body_len--;
  if (!body_len || *body != '{' ||
      doc_parse_one(a, "body", body, body_len, &lim, &root, &err) < 0 || !doc_is(root, DOC_MAP)) {
    verdict(v, 400, WEBHOOK_RESULT_BAD_REQUEST, "the body is not a JSON object");
  } else if (!pushed_refs(req, v->forge, root, &m)) {
    verdict(v, 400, WEBHOOK_RESULT_BAD_REQUEST, "a push event that names no ref");
  } else if (m.matched) {
    verdict(v, 202, WEBHOOK_RESULT_DOORBELL, "accepted: polling the config repo");
    v->doorbell = true;
  } else {
    verdict(v, 200, WEBHOOK_RESULT_IGNORED, "ignored: not the followed ref");
  }
  str_copy(v->ref, sizeof(v->ref), m.seen);
  doc_arena_free(a);
}

void webhook_request_judge(const char *data, size_t len, const uint8_t *secret,
                           size_t secret_len, const char *ref, struct webhook_verdict *v) {
  struct webhook_request req;
  int r = webhook_head_parse(data, len, &req, v);

  if (r < 0)
    return;
  if (r == 0) {
    verdict(v, 400, WEBHOOK_RESULT_BAD_REQUEST, "the request head does not end");
    return;
  }
  if (len - req.head_len < req.content_length) {
    verdict(v, 400, WEBHOOK_RESULT_BAD_REQUEST, "the body is shorter than its Content-Length");
    return;
  }
  webhook_judge(&req, data + req.head_len, (size_t)req.content_length, secret, secret_len, ref,
                v);
}

/* ---- the listen address ---- */

int webhook_listen_parse(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len,
                         const char **why) {
  char host[64];
  const char *colon;
  uint64_t port;
  size_t hn;

  *why = NULL;
  if (!s || !*s) {
    *why = "is empty; write ADDRESS:PORT, e.g. 127.0.0.1:9419";
    return -EINVAL;
  }
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close[1] != ':') {
      *why = "is not [IPv6]:PORT";
      return -EINVAL;
    }
    hn = (size_t)(close - s - 1);
    colon = close + 1;
    if (hn == 0 || hn >= sizeof(host)) {
      *why = "does not hold an IPv6 address between [ and ]";
      return -EINVAL;
    }
    memcpy(host, s + 1, hn);
  } else {
    colon = strrchr(s, ':');
    if (!colon) {
      *why = "has no port; write ADDRESS:PORT, e.g. 127.0.0.1:9419";
      return -EINVAL;
    }
    if (strchr(s, ':') != colon) {
      *why = "has more than one ':'; write an IPv6 address in brackets, e.g. [::1]:9419";
      return -EINVAL;
    }
    hn = (size_t)(colon - s);
    if (hn == 0) {
      *why = "has no address; write 0.0.0.0:PORT to listen on every IPv4 address";
      return -EINVAL;
    }
    if (hn >= sizeof(host)) {
      *why = "is not an IPv4 address and port";
      return -EINVAL;
    }
    memcpy(host, s, hn);
  }
  host[hn] = '\0';
  if (str_to_u64(colon + 1, 65535, &port) < 0 || port == 0) {
    *why = "has no port from 1 to 65535 after the last ':'";
    return -EINVAL;
  }
  memset(ret, 0, sizeof(*ret));
  if (s[0] == '[') {
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ret;
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) {
      *why = "does not hold an IPv6 address between [ and ] (names are not resolved)";
      return -EINVAL;
    }
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *ret_len = sizeof(*a6);
  } else {
    struct sockaddr_in *a4 = (struct sockaddr_in *)ret;
    if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) {
      *why = "is not an IPv4 address and port (names are not resolved; [IPv6]:PORT for IPv6)";
      return -EINVAL;
    }
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *ret_len = sizeof(*a4);
  }
  return 0;
}

/* ---- the token bucket ---- */

void webhook_bucket_init(struct webhook_bucket *b, double burst, double per_sec) {
  memset(b, 0, sizeof(*b));
  b->burst = burst;
  b->per_sec = per_sec;
}

unsigned webhook_bucket_take(struct webhook_bucket *b, uint64_t now_usec) {
  double wait;
  unsigned secs;

  if (!b->primed) {
    b->primed = true;
    b->tokens = b->burst;
  } else if (now_usec > b->last_usec) {
    b->tokens += (double)(now_usec - b->last_usec) / 1e6 * b->per_sec;
    if (b->tokens > b->burst)
      b->tokens = b->burst;
  }
  if (now_usec > b->last_usec)
    b->last_usec = now_usec;
  if (b->tokens >= 1.0) {
    b->tokens -= 1.0;
    return 0;
  }
  wait = (1.0 - b->tokens) / b->per_sec;
  if (wait >= 3600.0)
    return 3600;
  secs = (unsigned)wait;
  if ((double)secs < wait) /* rounded up */
    secs++;
  return secs ? secs : 1;
}

/* ---- the secret ---- */

int webhook_secret_load(const char *path, struct buf *ret, struct err *err) {
  char data[WEBHOOK_SECRET_MAX + 1];
  struct stat st;
  size_t n = 0;
  int fd, rc = 0;

  /* O_NONBLOCK: a FIFO planted at the path must not hang the daemon */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return err_set_errno(err, -errno, "cannot open the webhook secret file '%s'", path);
  if (fstat(fd, &st) < 0) {
    rc = err_set_errno(err, -errno, "cannot stat the webhook secret file '%s'", path);
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = err_set(err, -EINVAL, "the webhook secret file '%s' is not a regular file", path);
    goto out;
  }
  for (;;) {
    ssize_t k = read(fd, data + n, sizeof(data) - n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0) {
      rc = err_set_errno(err, -errno, "cannot read the webhook secret file '%s'", path);
      goto out;
    }
    if (k == 0)
      break;
    n += (size_t)k;
    if (n > WEBHOOK_SECRET_MAX) {
      rc = err_set(err, -EFBIG, "the webhook secret file '%s' is larger than %u bytes", path,
                   WEBHOOK_SECRET_MAX);
      goto out;
    }
  }
  while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
    n--;
  if (n < WEBHOOK_SECRET_MIN) {
    rc = err_set(err, -EINVAL,
                 "the webhook secret in '%s' is shorter than %u bytes (make one with: openssl "
                 "rand -hex 32)",
                 path, WEBHOOK_SECRET_MIN);
    goto out;
  }
  buf_dispose_secret(ret);
  buf_append(ret, data, n);
out:
  mem_wipe(data, sizeof(data));
  close(fd);
  return rc;
}
