/* One HTTP request to an API server, from submission to its one completion:
 * credentials, the libcurl easy handle (TLS, HTTP/2, proxy, tls-server-name),
 * bounded response buffering or streaming, and the retry policy.
 *
 * Life of a request: NEW -> (WAIT_CRED while an exec plugin runs) -> ACTIVE
 * (in the multi handle) -> DONE, or -> WAIT_RETRY (a loop timer) -> ACTIVE
 * again. A fresh easy handle is made for each attempt; connections, DNS
 * and TLS sessions are reused through the multi and share handles.
 *
 * Retry policy (docs/clusters.md "Retries"):
 *   - 429, 502, 503, 504, and 500 with Retry-After or reason InternalError:
 *     jittered exponential backoff, Retry-After honoured (capped), at most
 *     opts.max_attempts attempts;
 *   - a broken connection (reset, empty reply, HTTP/2 stream error) of an
 *     idempotent request that is not a stream: the same backoff;
 *   - a connection that could not be made (refused, DNS, connect timeout, a
 *     peer that hangs up during the TLS handshake or on a new connection
 *     before answering) is not retried: an unreachable cluster fails fast;
 *   - 401 with exec-plugin credentials: the plugin runs again and the request
 *     is retried once (outside the attempt budget), as client-go does; with a
 *     token file that changed since it was read, the same with the new token.
 *
 * Invariants: the Authorization header lives only in h->headers and is wiped
 * when the request ends; every error text goes through kube_redact() with
 * the client's secrets; done() runs from the loop, never from submit.
 *
 * When you change the retry policy, also touch kube.h, docs/clusters.md and
 * tests/integration/test_kube.py (the retry tests).
 */
#include <errno.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "kube/kube-int.h"

static const char *method_name(enum kube_method m) {
  switch (m) {
  case KUBE_GET: return "GET";
  case KUBE_PATCH: return "PATCH";
  case KUBE_DELETE: return "DELETE";
  case KUBE_POST: return "POST";
  case KUBE_PUT: return "PUT";
  }
  return "GET";
}

void kube_http_what(const struct kube_http *h, char *buf, size_t size) {
  size_t q = strcspn(h->path, "?");
  str_format(buf, size, "%s %.*s", method_name(h->spec.method), (int)q, h->path);
}

static void wipe_headers(struct curl_slist **list) {
  for (struct curl_slist *s = *list; s; s = s->next)
    if (s->data)
      mem_wipe(s->data, strlen(s->data));
  curl_slist_free_all(*list);
  *list = NULL;
}

static void drop_easy(struct kube_http *h) {
  if (!h->easy)
    return;
  if (h->state == KUBE_H_ACTIVE) {
    curl_multi_remove_handle(h->c->loop->multi, h->easy);
    h->c->loop->n_easy--;
  }
  curl_easy_cleanup(h->easy);
  h->easy = NULL;
  wipe_headers(&h->headers);
}

static void unlink_request(struct kube_http *h) {
  struct kube_client *c = h->c;

  if (h->prev)
    h->prev->next = h->next;
  else if (c->requests == h)
    c->requests = h->next;
  if (h->next)
    h->next->prev = h->prev;
  h->next = h->prev = NULL;
}

static void remove_from_streams(struct kube_http *h) {
  struct ptrvec *v = &h->c->loop->streams;

  if (!h->on_stream_list)
    return;
  for (size_t i = 0; i < v->n; i++)
    if (v->items[i] == h) {
      v->items[i] = v->items[--v->n];
      break;
    }
  h->on_stream_list = false;
}

static void free_request(struct kube_http *h) {
  drop_easy(h);
  kube_timer_disarm(h->c->loop, &h->retry);
  remove_from_streams(h);
  unlink_request(h);
  free(h->path);
  free(h->accept);
  free(h->content_type);
  buf_dispose_secret(&h->body);
  buf_dispose(&h->resp);
  buf_dispose(&h->resp_ct);
  free(h);
}

static void complete(struct kube_http *h, enum kube_failure failure, long status, uint64_t rtt,
                     const char *protocol) {
  struct kube_http_result res = {
      .r = err_isset(&h->err) ? h->err.code : 0,
      .attempts = h->attempt + (h->reauthed ? 1 : 0),
      .err = &h->err,
      .failure = err_isset(&h->err) ? failure : KUBE_FAIL_NONE,
      .status = status,
      .content_type = buf_cstr(&h->resp_ct),
      .body = &h->resp,
      .rtt_usec = rtt,
      .protocol = protocol,
      .anonymous = h->anonymous,
  };

  drop_easy(h);
  h->state = KUBE_H_DONE;
  unlink_request(h);
  h->done(h->ud, &res);
  free_request(h);
}

/* Did a 403 judge the request as system:anonymous although the kubeconfig
 * gave credentials? The Status message (in @msg, as kube_status_error()
 * wrote it) names the user: 'User "system:anonymous" cannot get path "/api"'. */
static bool took_as_anonymous(const struct kube_client *c, const char *msg) {
  return !str_eq(kube_config_auth_name(c->cfg), "none") &&
         strstr(msg, "User \"system:anonymous\"") != NULL;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud) {
  struct kube_http *h = ud;
  size_t n = size * nmemb, held = h->resp.len - h->stream_used;
  long status = 0;

  if (held + n > h->c->opts.max_response_bytes) {
    h->too_big = true;
    return 0; /* CURLE_WRITE_ERROR */
  }
  buf_append(&h->resp, data, n);
  if (h->spec.stream) {
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300 && !h->on_stream_list) {
      ptrvec_push(&h->c->loop->streams, h);
      h->on_stream_list = true;
    }
  }
  return n;
}

static int add_header(struct curl_slist **list, const char *line) {
  struct curl_slist *n = curl_slist_append(*list, line);
  if (!n)
    return -ENOMEM;
  *list = n;
  return 0;
}

static int build_headers(struct kube_http *h) {
  struct kube_client *c = h->c;
  const struct kube_config *cfg = c->cfg;
  const struct kube_cred *cr = &c->auth.cred;
  struct buf line = BUF_INIT;
  int r = 0;

  buf_printf(&line, "Accept: %s", h->accept ? h->accept : "application/json");
  r |= add_header(&h->headers, buf_cstr(&line));
  if (h->content_type) {
    buf_reset(&line);
    buf_printf(&line, "Content-Type: %s", h->content_type);
    r |= add_header(&h->headers, buf_cstr(&line));
  }
  r |= add_header(&h->headers, "Expect:"); /* no 100-continue round trip for big applies */
  if (c->host_header)
    r |= add_header(&h->headers, c->host_header);
  if (cr->valid && cr->token.len) {
    buf_reset(&line);
    buf_puts(&line, "Authorization: Bearer ");
    buf_append(&line, cr->token.data, cr->token.len);
    r |= add_header(&h->headers, buf_cstr(&line));
  } else if (c->auth.basic.len) {
    buf_reset(&line);
    buf_puts(&line, "Authorization: Basic ");
    buf_append(&line, c->auth.basic.data, c->auth.basic.len);
    r |= add_header(&h->headers, buf_cstr(&line));
  }
  if (cfg->impersonate) {
    buf_reset(&line);
    buf_printf(&line, "Impersonate-User: %s", cfg->impersonate);
    r |= add_header(&h->headers, buf_cstr(&line));
    if (cfg->impersonate_uid) {
      buf_reset(&line);
      buf_printf(&line, "Impersonate-Uid: %s", cfg->impersonate_uid);
      r |= add_header(&h->headers, buf_cstr(&line));
    }
    for (size_t i = 0; i < cfg->n_impersonate_groups; i++) {
      buf_reset(&line);
      buf_printf(&line, "Impersonate-Group: %s", cfg->impersonate_groups[i]);
      r |= add_header(&h->headers, buf_cstr(&line));
    }
    for (size_t i = 0; i < cfg->n_impersonate_extra; i++) {
      char *key = curl_easy_escape(NULL, cfg->impersonate_extra[i].name, 0);
      buf_reset(&line);
      buf_printf(&line, "Impersonate-Extra-%s: %s", key ? key : "", cfg->impersonate_extra[i].value);
      curl_free(key);
      r |= add_header(&h->headers, buf_cstr(&line));
    }
  }
  buf_dispose_secret(&line);
  return r ? -ENOMEM : 0;
}

static int set_blob(CURL *e, CURLoption opt, const struct buf *b) {
  struct curl_blob blob = {.data = b->data, .len = b->len, .flags = CURL_BLOB_COPY};
  return curl_easy_setopt(e, opt, &blob) == CURLE_OK ? 0 : -EINVAL;
}

static int send_attempt(struct kube_http *h) {
  struct kube_client *c = h->c;
  const struct kube_cred *cr = &c->auth.cred;
  struct buf url = BUF_INIT;
  CURL *e;
  int r = 0;

  h->attempt++;
  buf_reset(&h->resp);
  buf_reset(&h->resp_ct);
  h->stream_used = 0;
  h->too_big = false;
  h->errbuf[0] = '\0';
  e = h->easy = curl_easy_init();
  if (!e)
    return err_set_src(&h->err, -ENOMEM, ERR_SRC_HTTP, "cluster %s: cannot create a request",
                       c->name);
  if (build_headers(h) < 0) {
    drop_easy(h);
    return err_set_src(&h->err, -ENOMEM, ERR_SRC_HTTP, "cluster %s: out of memory", c->name);
  }
  h->cred_gen = cr->generation;
  buf_puts(&url, c->base_url);
  buf_puts(&url, h->path);
  curl_easy_setopt(e, CURLOPT_URL, buf_cstr(&url));
  buf_dispose(&url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)h);
  curl_easy_setopt(e, CURLOPT_SHARE, c->loop->share);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, c->https ? "https" : "http");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
  curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                   c->opts.http2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->opts.connect_timeout_usec / 1000));
  if (h->spec.timeout_usec)
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(h->spec.timeout_usec / 1000));
  else if (!h->spec.stream)
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(c->opts.request_timeout_usec / 1000));
  if (!c->cfg->disable_compression)
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
  if (c->connect_to)
    curl_easy_setopt(e, CURLOPT_CONNECT_TO, c->connect_to);
  if (c->proxy)
    curl_easy_setopt(e, CURLOPT_PROXY, c->proxy);
  if (c->https) {
    if (c->cfg->insecure_skip_tls_verify) {
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (c->ca_pem.len) {
      /* the kubeconfig's CA only, as client-go: no system store next to it */
      r |= set_blob(e, CURLOPT_CAINFO_BLOB, &c->ca_pem);
      curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
      curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    }
    if (cr->valid && cr->cert_pem.len) {
      r |= set_blob(e, CURLOPT_SSLCERT_BLOB, &cr->cert_pem);
      r |= set_blob(e, CURLOPT_SSLKEY_BLOB, &cr->key_pem);
    } else if (c->cert_pem.len) {
      r |= set_blob(e, CURLOPT_SSLCERT_BLOB, &c->cert_pem);
      r |= set_blob(e, CURLOPT_SSLKEY_BLOB, &c->key_pem);
    }
    curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
  }
  switch (h->spec.method) {
  case KUBE_GET:
    break;
  case KUBE_PATCH:
  case KUBE_DELETE:
  case KUBE_POST:
  case KUBE_PUT:
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method_name(h->spec.method));
    if (h->body.len || h->spec.method != KUBE_DELETE) {
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, buf_cstr(&h->body));
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->body.len);
    }
    break;
  }
  if (r) {
    drop_easy(h);
    return err_set_src(&h->err, -EINVAL, ERR_SRC_TLS,
                       "cluster %s: libcurl refused the TLS settings (CA or client certificate)",
                       c->name);
  }
  if (curl_multi_add_handle(c->loop->multi, e) != CURLM_OK) {
    drop_easy(h);
    return err_set_src(&h->err, -EIO, ERR_SRC_HTTP, "cluster %s: cannot start a request", c->name);
  }
  c->loop->n_easy++;
  h->state = KUBE_H_ACTIVE;
  return 0;
}

/* Fail from the loop, not from the caller's stack. */
static void fail_later(struct kube_http *h, enum kube_failure failure) {
  h->state = KUBE_H_DONE;
  h->retry_failure = failure;
  kube_timer_arm(h->c->loop, &h->retry, 0);
}

static void start_attempt(struct kube_http *h) {
  int r;

  r = kube_auth_prepare(&h->c->auth, h, &h->err);
  if (r == 1) {
    h->state = KUBE_H_WAIT_CRED;
    return;
  }
  if (r < 0) {
    fail_later(h, KUBE_FAIL_AUTH);
    return;
  }
  if (send_attempt(h) < 0)
    fail_later(h, KUBE_FAIL_LOCAL);
}

static void on_retry_timer(struct kube_timer *t) {
  struct kube_http *h = (struct kube_http *)((char *)t - offsetof(struct kube_http, retry));

  if (h->state == KUBE_H_DONE) {
    complete(h, h->retry_failure, 0, 0, NULL);
    return;
  }
  start_attempt(h);
}

void kube_http_cred_ready(struct kube_http *h, int r, const struct err *err) {
  if (h->state != KUBE_H_WAIT_CRED)
    return;
  if (r < 0) {
    if (err && err_isset(err))
      h->err = *err;
    else
      err_set_src(&h->err, r, ERR_SRC_HTTP, "cluster %s: cannot obtain credentials", h->c->name);
    fail_later(h, KUBE_FAIL_AUTH);
    return;
  }
  if (send_attempt(h) < 0)
    fail_later(h, KUBE_FAIL_LOCAL);
}

struct kube_http *kube_http_submit(struct kube_client *c, const struct kube_http_spec *spec,
                                   void (*done)(void *ud, const struct kube_http_result *res),
                                   void *ud, struct err *err) {
  struct kube_http *h;

  if (!spec->path || spec->path[0] != '/') {
    err_set(err, -EINVAL, "cluster %s: request path must start with '/'", c->name);
    return NULL;
  }
  h = xcalloc(1, sizeof(*h));
  h->c = c;
  h->spec = *spec;
  h->path = xstrdup(spec->path);
  h->accept = spec->accept ? xstrdup(spec->accept) : NULL;
  h->content_type = spec->content_type ? xstrdup(spec->content_type) : NULL;
  if (spec->body_len)
    buf_append(&h->body, spec->body, spec->body_len);
  h->spec.path = h->path;
  h->spec.accept = h->accept;
  h->spec.content_type = h->content_type;
  h->spec.body = NULL;
  h->done = done;
  h->ud = ud;
  h->retry.fire = on_retry_timer;
  h->submitted = time_now_mono_usec();
  h->next = c->requests;
  if (c->requests)
    c->requests->prev = h;
  c->requests = h;
  start_attempt(h);
  return h;
}

void kube_http_cancel(struct kube_http *h) {
  if (!h)
    return;
  if (h->state == KUBE_H_WAIT_CRED)
    kube_auth_forget(&h->c->auth, h);
  if (h->delivering) {
    /* inside our own data callback: free after it returns */
    h->cancelled = true;
    drop_easy(h);
    kube_timer_disarm(h->c->loop, &h->retry);
    h->state = KUBE_H_DONE;
    return;
  }
  free_request(h);
}

bool kube_http_stream_deliver(struct kube_http *h) {
  if (!h->data || h->cancelled || h->resp.len == h->stream_used)
    return !h->cancelled;
  h->delivering = true;
  h->data(h->ud, h);
  h->delivering = false;
  if (h->cancelled) {
    free_request(h);
    return false;
  }
  /* drop what the consumer has taken */
  if (h->stream_used > 0 && h->stream_used == h->resp.len) {
    buf_reset(&h->resp);
    h->stream_used = 0;
  } else if (h->stream_used > (64u << 10)) {
    memmove(h->resp.data, h->resp.data + h->stream_used, h->resp.len - h->stream_used);
    buf_truncate(&h->resp, h->resp.len - h->stream_used);
    h->stream_used = 0;
  }
  return true;
}

static bool is_tls_error(CURLcode code, const char *errbuf) {
  switch (code) {
  case CURLE_SSL_CONNECT_ERROR:
    /* a peer that hangs up during the handshake is a transport problem */
    return !(strstr(errbuf, "reset") || strstr(errbuf, "SSL_ERROR_SYSCALL") ||
             strstr(errbuf, "unexpected eof") || strstr(errbuf, "Connection refused"));
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_USE_SSL_FAILED:
    return true;
  default:
    return false;
  }
}

static bool is_reset(CURLcode code) {
  switch (code) {
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_SSL_CONNECT_ERROR:
    return true;
  default:
    return false;
  }
}

/* Is this error response worth another attempt? */
static bool retryable_status(const struct kube_http *h, long status, curl_off_t retry_after) {
  struct doc_arena *a;
  struct doc_node *st = NULL;
  bool internal;

  if (status == 429 || status == 502 || status == 503 || status == 504)
    return true;
  if (status != 500)
    return false;
  if (retry_after > 0)
    return true;
  /* a 500 with reason InternalError (etcd trouble) is transient; an empty
   * reason (e.g. SSA's "field not declared in schema") is not */
  a = doc_arena_new();
  internal = kube_parse_json(a, "response", buf_cstr(&h->resp), h->resp.len, h->resp.len + 1, &st,
                             NULL) == 0 &&
             (str_eq(doc_map_str(st, "reason"), "InternalError") ||
              str_eq(doc_map_str(st, "reason"), "ServerTimeout"));
  doc_arena_free(a);
  return internal;
}

static void schedule_retry(struct kube_http *h, curl_off_t retry_after) {
  uint64_t delay = kube_backoff_delay(&h->c->opts, h->attempt,
                                      retry_after > 0 ? (int64_t)retry_after : -1,
                                      kube_loop_random(h->c->loop));
  drop_easy(h);
  h->state = KUBE_H_WAIT_RETRY;
  kube_timer_arm(h->c->loop, &h->retry, delay);
}

static void secrets_of(const struct kube_client *c, const char **out, size_t n) {
  kube_auth_secrets(&c->auth, out, n);
}

void kube_http_finished(struct kube_http *h, CURLcode code) {
  struct kube_client *c = h->c;
  long status = 0;
  curl_off_t retry_after = 0, pre = 0, start = 0;
  long version = 0;
  const char *ct = NULL, *protocol = NULL, *secrets[9];
  char what[256];
  uint64_t rtt;
  bool idempotent = h->spec.method != KUBE_POST;

  curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(h->easy, CURLINFO_CONTENT_TYPE, &ct);
  curl_easy_getinfo(h->easy, CURLINFO_RETRY_AFTER, &retry_after);
  curl_easy_getinfo(h->easy, CURLINFO_PRETRANSFER_TIME_T, &pre);
  curl_easy_getinfo(h->easy, CURLINFO_STARTTRANSFER_TIME_T, &start);
  curl_easy_getinfo(h->easy, CURLINFO_HTTP_VERSION, &version);
  buf_reset(&h->resp_ct);
  if (ct)
    buf_puts(&h->resp_ct, ct);
  rtt = start > pre ? (uint64_t)(start - pre) : 0;
  protocol = version == CURL_HTTP_VERSION_2_0 ? "HTTP/2"
             : version == CURL_HTTP_VERSION_1_1 ? "HTTP/1.1"
             : version == CURL_HTTP_VERSION_1_0 ? "HTTP/1.0"
                                                : NULL;
  kube_http_what(h, what, sizeof(what));
  secrets_of(c, secrets, ARRAY_SIZE(secrets));

  if (code == CURLE_OK && status >= 200 && status < 300) {
    complete(h, KUBE_FAIL_NONE, status, rtt, protocol);
    return;
  }
  if (code == CURLE_OK) {
    if (status == 401 && !h->reauthed && kube_auth_invalidate(&c->auth, h->cred_gen)) {
      /* client-go: re-run the plugin, then this request once more (also
       * when a token file was rotated under us) */
      h->reauthed = true;
      drop_easy(h);
      h->attempt--; /* outside the retry budget */
      start_attempt(h);
      return;
    }
    if (retryable_status(h, status, retry_after) && h->attempt < c->opts.max_attempts &&
        !(h->spec.stream && h->stream_used)) {
      schedule_retry(h, retry_after);
      return;
    }
    kube_status_error(&h->err, c->name, what, status, ct, buf_cstr(&h->resp), h->resp.len, secrets);
    if (status == 401) {
      size_t len = strlen(h->err.msg);
      str_format(h->err.msg + len, sizeof(h->err.msg) - len,
                 " (the credentials of user '%s' in %s were not accepted)",
                 c->cfg->user_ref ? c->cfg->user_ref : "(none)", c->cfg->path);
    } else if (status == 403 && took_as_anonymous(c, h->err.msg)) {
      /* A credential no authenticator handles is not refused: the request
       * goes on as system:anonymous and fails authorization. */
      size_t len = strlen(h->err.msg);
      const char *auth = kube_config_auth_name(c->cfg);
      h->anonymous = true;
      str_format(h->err.msg + len, sizeof(h->err.msg) - len,
                 " (the server ignored the %s of user '%s' in %s and treated the request as "
                 "anonymous%s)",
                 auth, c->cfg->user_ref ? c->cfg->user_ref : "(none)", c->cfg->path,
                 str_eq(auth, "basic auth")
                     ? "; Kubernetes has not accepted basic auth since 1.19: use a token or a "
                       "client certificate"
                     : "");
    }
    if (h->attempt > 1 && (status == 429 || status >= 500)) {
      size_t len = strlen(h->err.msg);
      str_format(h->err.msg + len, sizeof(h->err.msg) - len, " (after %u attempts)", h->attempt);
    }
    complete(h, status == 401 || status == 403 ? KUBE_FAIL_AUTH : KUBE_FAIL_HTTP, status, rtt,
             protocol);
    return;
  }

  /* transport errors */
  if (code == CURLE_WRITE_ERROR && h->too_big) {
    err_set_src(&h->err, -EFBIG, ERR_SRC_HTTP,
                "cluster %s: %s: the response is larger than the limit of %zu bytes", c->name, what,
                c->opts.max_response_bytes);
    complete(h, KUBE_FAIL_BODY, status, rtt, protocol);
    return;
  }
  {
    curl_off_t connect_t = 0, app_t = 0;
    bool connected;
    enum kube_failure failure;
    int err_code;
    struct buf text = BUF_INIT;
    char detail[CURL_ERROR_SIZE + 64];

    long connects = 0;

    curl_easy_getinfo(h->easy, CURLINFO_CONNECT_TIME_T, &connect_t);
    curl_easy_getinfo(h->easy, CURLINFO_APPCONNECT_TIME_T, &app_t);
    curl_easy_getinfo(h->easy, CURLINFO_NUM_CONNECTS, &connects);
    /* a reused connection (no connect for this transfer) was connected */
    connected = connects == 0 || (connect_t > 0 && (!c->https || app_t > 0));
    str_copy(detail, sizeof(detail), h->errbuf[0] ? h->errbuf : curl_easy_strerror(code));
    if (code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY ||
        code == CURLE_COULDNT_CONNECT) {
      failure = KUBE_FAIL_CONNECT;
      err_code = code == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EHOSTUNREACH;
    } else if (code == CURLE_OPERATION_TIMEDOUT && !connected) {
      failure = KUBE_FAIL_CONNECT;
      err_code = -ETIMEDOUT;
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
      failure = KUBE_FAIL_TIMEOUT;
      err_code = -ETIMEDOUT;
    } else if (is_tls_error(code, h->errbuf)) {
      failure = KUBE_FAIL_TLS;
      err_code = -EPROTO;
    } else if (is_reset(code) &&
               (!connected || (code == CURLE_GOT_NOTHING && status == 0 && connects > 0))) {
      /* hung up during the handshake, or closed a new connection cleanly
       * without any answer: the server turns connections away; as
       * unreachable, no retry. (A reset mid-response is retried below; a
       * reused connection that died is retried by libcurl itself.) */
      failure = KUBE_FAIL_CONNECT;
      err_code = -ECONNRESET;
    } else {
      failure = KUBE_FAIL_TRANSPORT;
      err_code = -ECONNRESET;
    }
    if (failure == KUBE_FAIL_TRANSPORT && is_reset(code) && idempotent && !h->spec.stream &&
        h->attempt < c->opts.max_attempts) {
      schedule_retry(h, 0);
      return;
    }
    buf_printf(&text, "cluster %s: %s: %s", c->name, what, detail);
    if (failure == KUBE_FAIL_CONNECT && err_code == -ECONNRESET)
      buf_puts(&text, " (the server closed the connection without answering)");
    else if (failure == KUBE_FAIL_CONNECT && code == CURLE_OPERATION_TIMEDOUT)
      buf_printf(&text, " (no connection within the connect timeout of %llus)",
                 (unsigned long long)(c->opts.connect_timeout_usec / 1000000));
    else if (failure == KUBE_FAIL_TLS)
      buf_printf(&text, " (check certificate-authority%s of cluster '%s' in %s)",
                 c->cfg->tls_server_name ? " and tls-server-name" : "", c->cfg->cluster_ref,
                 c->cfg->path);
    if (h->attempt > 1)
      buf_printf(&text, " (after %u attempts)", h->attempt);
    kube_redact(&text, secrets);
    err_set_src(&h->err, err_code, failure == KUBE_FAIL_TLS ? ERR_SRC_TLS : ERR_SRC_HTTP, "%s",
                buf_cstr(&text));
    h->err.detail = (long)code;
    buf_dispose(&text);
    complete(h, failure, status, rtt, protocol);
  }
}
