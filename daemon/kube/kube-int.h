/* kube: private interfaces between the parts of the module.
 *
 *   kube-config.c     kubeconfig parsing and validation (pure: no I/O but the read)
 *   kube-status.c     Status errors, excerpts, redaction, backoff arithmetic
 *   kube-loop.c       the loop: curl multi, timers, fd watches
 *   kube-cred.c       credentials: files, token file refresh, exec plugins
 *   kube-http.c       one HTTP request: headers, TLS, retries, reauth after 401
 *   kube-client.c     client construction and teardown
 *   kube-discovery.c  aggregated and legacy discovery, lookups
 *   kube-ops.c        LIST, GET, APPLY, DELETE and their sync wrappers
 *   kube-watch.c      WATCH streams, reconnect, re-list on 410
 *
 * libcurl's types appear here and in the .c files only, never in kube.h.
 */
#pragma once

#include <curl/curl.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/strmap.h"
#include "base/vec.h"
#include "kube/kube.h"

#define KUBE_CONFIG_MAX_BYTES (4u << 20)   /* a kubeconfig file */
#define KUBE_PEM_MAX_BYTES (1u << 20)      /* a CA bundle, certificate or key file */
#define KUBE_TOKEN_MAX_BYTES (64u << 10)   /* a token file */
#define KUBE_EXEC_OUT_MAX (1u << 20)       /* an exec plugin's stdout */
#define KUBE_EXEC_ERR_MAX (4u << 10)       /* the part of its stderr kept for messages */
#define KUBE_EXCERPT_MAX 200               /* bytes of a non-Status body quoted in errors */
#define KUBE_TOKEN_STAT_USEC (1 * 1000000ULL) /* a token file is stat()ed at most this often */

/* ------------------------------------------------------------ kube-status.c */

/* Fill @err (if still empty) for an HTTP error response and return the
 * -errno for it (see kube.h). @what is "GET /api/v1/..." and @cluster the
 * client's name. Secrets in @secrets (NULL-terminated; NULL entries and
 * empty strings are skipped) are redacted from the text. */
int kube_status_error(struct err *err, const char *cluster, const char *what, long status,
                      const char *content_type, const char *body, size_t len,
                      const char *const *secrets);
/* The -errno for an HTTP status and Status reason. */
int kube_status_errno(long status, const char *reason);
/* A one-line, printable excerpt of at most @max bytes of @body (tags of an
 * HTML page dropped, control characters and runs of blanks folded). */
void kube_excerpt(const char *body, size_t len, bool html, size_t max, struct buf *out);
/* Replace each secret of @secrets in @text by "[redacted]" as
 * redact_secrets() does (also split by blanks, and pieces of 8 bytes or
 * more; secrets of any length), then the credential of any "Bearer x" /
 * "Basic x". Fold first (kube_excerpt), redact, truncate last. */
void kube_redact(struct buf *text, const char *const *secrets);

/* The wait before retry number @retry (1 for the first retry): exponential
 * from o->backoff_base_usec with jitter (half fixed, half from @rnd), capped
 * at o->backoff_max_usec; a Retry-After of @retry_after_sec (>= 0) replaces
 * the computed wait, capped the same way. Pure, for tests. */
uint64_t kube_backoff_delay(const struct kube_options *o, unsigned retry, int64_t retry_after_sec,
                            uint32_t rnd);

/* Does the media type @ct name @type ("application/json") with every
 * parameter of @params ("g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
 * compared case-insensitively and ignoring blanks? */
bool kube_media_type_is(const char *ct, const char *type, const char *params);

/* Parse a JSON body with the client's bounds into @a. */
int kube_parse_json(struct doc_arena *a, const char *name, const char *data, size_t len,
                    size_t max_bytes, struct doc_node **ret, struct err *err);

/* -------------------------------------------------------------- kube-loop.c */

struct kube_timer {
  uint64_t deadline;            /* monotonic µs */
  void (*fire)(struct kube_timer *t);
  struct kube_timer *next;
  bool armed;
};

struct kube_fdw {
  uint64_t id;                  /* set by kube_fdw_add */
  int fd;
  short events;
  void (*ready)(struct kube_fdw *w, short revents);
  struct kube_fdw *next;
  bool armed;
};

struct kube_http;

struct kube_loop {
  CURLM *multi;
  CURLSH *share;                /* DNS cache and TLS sessions */
  struct kube_timer *timers;    /* sorted by deadline */
  struct kube_fdw *fdws;
  size_t n_timers, n_fdws, n_easy;
  size_t n_clients;             /* the connection cache grows with them */
  uint64_t fdw_ids;
  struct ptrvec streams;        /* struct kube_http with stream data to deliver */
  uint64_t rng;                 /* xorshift state for backoff jitter */
  unsigned depth;               /* nesting of run_once (sync wrappers in callbacks) */
};

void kube_timer_arm(struct kube_loop *l, struct kube_timer *t, uint64_t delay_usec);
void kube_timer_disarm(struct kube_loop *l, struct kube_timer *t);
void kube_fdw_add(struct kube_loop *l, struct kube_fdw *w);
void kube_fdw_del(struct kube_loop *l, struct kube_fdw *w);
uint32_t kube_loop_random(struct kube_loop *l);
/* A client joined (+1) or left (-1) @l: the connection cache is sized for
 * them all. */
void kube_loop_clients_changed(struct kube_loop *l, int delta);
/* Run the loop until *@done is set or @timeout_usec passed. */
int kube_loop_run_until(struct kube_loop *l, const bool *done, uint64_t timeout_usec);
/* Called by kube-loop.c for each finished transfer (kube-http.c). */
void kube_http_finished(struct kube_http *h, CURLcode code);
/* Called by kube-loop.c after curl_multi_perform for a stream with data.
 * Returns false when the consumer cancelled the request (it is freed). */
bool kube_http_stream_deliver(struct kube_http *h);

/* -------------------------------------------------------------- kube-cred.c */

/* An exec credential or a static one, as sent. */
struct kube_cred {
  struct buf token;             /* secret; empty when none */
  struct buf cert_pem;          /* from an exec plugin */
  struct buf key_pem;           /* secret */
  int64_t expires;              /* epoch seconds; 0: never */
  uint64_t generation;          /* bumped whenever the credential changes */
  bool valid;
};

struct kube_exec_run;

struct kube_auth {
  struct kube_client *c;
  struct kube_cred cred;        /* the token/exec credential in use */
  /* token file */
  struct timespec tf_mtime;
  off_t tf_size;
  ino_t tf_ino;
  uint64_t tf_checked;          /* monotonic µs of the last stat */
  /* basic auth: "user:password" in base64 */
  struct buf basic;             /* secret */
  /* exec plugin */
  struct kube_exec_run *run;    /* running now; NULL otherwise */
  struct ptrvec waiters;        /* struct kube_http waiting for the plugin */
  struct err exec_err;          /* the last run's failure */
  unsigned exec_runs;
};

/* Load what does not change: client certificate/key and CA files, the token
 * file, basic auth. */
int kube_auth_init(struct kube_auth *a, struct kube_client *c, struct err *err);
void kube_auth_dispose(struct kube_auth *a);
/* Make the credential ready for @h: 0 (ready), 1 (an exec plugin runs; @h
 * is resumed through kube_http_cred_ready), or -errno with @err filled. */
int kube_auth_prepare(struct kube_auth *a, struct kube_http *h, struct err *err);
/* The credential of @generation got a 401: drop it if it is still the
 * current one. Returns whether retrying can help: an exec plugin will run
 * again, or the token file held a new token. */
bool kube_auth_invalidate(struct kube_auth *a, uint64_t generation);
/* Forget a waiter (its request is being cancelled). */
void kube_auth_forget(struct kube_auth *a, struct kube_http *h);
/* Secrets currently held, for redaction (NULL-terminated, at most 8). */
void kube_auth_secrets(const struct kube_auth *a, const char **out, size_t n);

/* The exec plugin runner, exposed for unit tests: run @x for cluster
 * @cluster (with @exec_info as KUBERNETES_EXEC_INFO) in @loop and call @done
 * with the parsed credential or an error. */
struct kube_exec_result {
  int r;
  struct err err;
  struct kube_cred cred;        /* moved out by the callee when it keeps it */
};
int kube_exec_start(struct kube_loop *loop, const char *cluster, const struct kube_exec_config *x,
                    const char *exec_info, uint64_t timeout_usec,
                    void (*done)(void *ud, struct kube_exec_result *res), void *ud,
                    struct kube_exec_run **ret, struct err *err);
void kube_exec_cancel(struct kube_exec_run *run);
/* KUBERNETES_EXEC_INFO for @cfg (ExecCredential JSON, spec.interactive false,
 * spec.cluster when provideClusterInfo). */
void kube_exec_info(const struct kube_config *cfg, const struct buf *ca_pem, struct buf *out);
/* Parse an ExecCredential printed by a plugin. */
int kube_exec_parse_output(const char *cluster, const struct kube_exec_config *x,
                           const char *data, size_t len, struct kube_cred *out, struct err *err);
void kube_cred_dispose(struct kube_cred *cr);
/* Certificates in a PEM bundle (>= 1), or -EBADMSG when there is none. */
int kube_pem_count_certs(const struct buf *pem);
/* Does @key_pem hold the private key of @cert_pem's first certificate? 0,
 * -EBADMSG (no certificate), -ENOKEY (no key), -EKEYREJECTED (mismatch). */
int kube_pem_check_pair(const struct buf *cert_pem, const struct buf *key_pem);

/* -------------------------------------------------------------- kube-http.c */

enum kube_method {
  KUBE_GET,
  KUBE_PATCH,
  KUBE_DELETE,
  KUBE_POST,
  KUBE_PUT,
};

struct kube_http_result {
  int r;
  unsigned attempts;
  const struct err *err;
  enum kube_failure failure;
  long status;
  const char *content_type;     /* "" when none */
  const struct buf *body;
  uint64_t rtt_usec;
  const char *protocol;
  bool anonymous;               /* 403 to system:anonymous though credentials were sent */
};

struct kube_http_spec {
  enum kube_method method;
  const char *path;             /* below the server prefix, query included */
  const char *accept;           /* NULL: application/json */
  const char *content_type;     /* with a body */
  const void *body;
  size_t body_len;
  bool stream;                  /* deliver data as it arrives (watch); no total timeout */
  uint64_t timeout_usec;        /* 0: the client's request timeout */
};

struct kube_http {
  struct kube_client *c;
  struct kube_http_spec spec;   /* path, accept, content_type, body are owned copies */
  char *path, *accept, *content_type;
  struct buf body;
  CURL *easy;
  struct curl_slist *headers;   /* holds the Authorization header: wiped */
  struct buf resp;
  struct buf resp_ct;
  size_t stream_used;           /* bytes of resp already consumed by the stream parser */
  char errbuf[CURL_ERROR_SIZE];
  unsigned attempt;
  bool reauthed, too_big, on_stream_list, cancelled, delivering, anonymous;
  enum kube_failure retry_failure; /* of a failure delivered from the loop */
  uint64_t cred_gen;
  uint64_t submitted;
  struct kube_timer retry;
  struct err err;
  enum { KUBE_H_NEW, KUBE_H_WAIT_CRED, KUBE_H_ACTIVE, KUBE_H_WAIT_RETRY, KUBE_H_DONE } state;
  void (*done)(void *ud, const struct kube_http_result *res);
  /* stream: called from the loop with new data (resp from stream_used on);
   * it advances stream_used past what it consumed and may cancel @h */
  void (*data)(void *ud, struct kube_http *h);
  void *ud;
  struct kube_http *next, *prev; /* the client's list */
};

/* Submit a request; @done runs from the loop (never from here). Returns the
 * request (owned by the client until done ran) or NULL with @err filled. */
struct kube_http *kube_http_submit(struct kube_client *c, const struct kube_http_spec *spec,
                                   void (*done)(void *ud, const struct kube_http_result *res),
                                   void *ud, struct err *err);
/* Cancel: no callback runs; the request is freed. */
void kube_http_cancel(struct kube_http *h);
/* The credential became ready (r == 0) or failed for a waiting request. */
void kube_http_cred_ready(struct kube_http *h, int r, const struct err *err);
/* "GET /apis/..." for messages (the path without its query). */
void kube_http_what(const struct kube_http *h, char *buf, size_t size);

/* ------------------------------------------------------------ kube-client.c */

struct kube_discovery;
struct disco_run;

struct kube_client {
  struct kube_loop *loop;
  bool counted;                 /* in loop->n_clients */
  char *name;
  struct kube_config *cfg;
  struct kube_options opts;
  char *user_agent, *field_manager;
  char *base_url;               /* scheme://host[:port][/prefix], no trailing '/' */
  char *host_header;            /* "Host: ..." when tls-server-name rewrites the URL */
  struct curl_slist *connect_to;
  bool https;
  struct buf ca_pem;            /* CA bundle (file or data) */
  struct buf cert_pem, key_pem; /* static client certificate; key_pem secret */
  char *proxy;                  /* the proxy URL for libcurl (socks5 -> socks5h) */
  struct kube_auth auth;
  struct kube_http *requests;   /* in flight */
  struct kube_discovery *disco;
  struct disco_run *disco_run;  /* discovery in progress */
  struct kube_op *ops;          /* operations in flight */
  struct kube_watch *watches;
};

/* ------------------------------------------------------------- kube-ops.c */

/* An operation: one or more HTTP requests (LIST pages, discovery's walk)
 * behind one completion callback. */
struct kube_op {
  struct kube_client *c;
  struct doc_arena *a;
  kube_done_fn done;
  void *ud;
  struct kube_result res;
  struct kube_http *http;       /* the request in flight (one at a time, but discovery) */
  struct kube_timer defer;      /* completion from the loop for cached answers */
  uint64_t started;
  int kind;                     /* enum op_kind in kube-ops.c */
  void *state;                  /* the kind's own state */
  void (*state_free)(struct kube_op *op);
  void (*on_cancel)(struct kube_op *op);
  struct kube_op *next, *prev;
};

struct kube_op *kube_op_new(struct kube_client *c, struct doc_arena *a, kube_done_fn done,
                            void *ud);
/* Free without a callback (state_free runs; no on_cancel). */
void kube_op_free(struct kube_op *op);
/* Cancel every operation and watch of @c (client teardown). */
void kube_ops_cancel_all(struct kube_client *c);
/* Complete @op now (from the loop): run its callback, then free it. */
void kube_op_complete(struct kube_op *op);
/* Complete @op from the loop at the next iteration (cached answers). */
void kube_op_complete_later(struct kube_op *op);
/* Fill op->res from an HTTP result (status, timings, error). */
void kube_op_take_http(struct kube_op *op, const struct kube_http_result *hr);
/* Path of a collection or object; NULL with @err on a bad name. */
char *kube_ref_path(const struct kube_ref *ref, const char *name, struct err *err,
                    const char *cluster);
/* Append "&key=value" (or "?key=value" for the first) with value escaped. */
void kube_query_add(struct buf *path, const char *key, const char *value);

/* ------------------------------------------------------- kube-discovery.c */

void kube_discovery_free(struct kube_discovery *d);
/* Parse an aggregated discovery document (APIGroupDiscoveryList) into @d. */
int kube_discovery_parse_aggregated(struct kube_discovery *d, const struct doc_node *list,
                                    struct err *err);
/* Parse the legacy documents. */
int kube_discovery_parse_resource_list(struct kube_discovery *d, const char *group,
                                       const char *version, const struct doc_node *list,
                                       struct err *err);
struct kube_discovery *kube_discovery_new(const char *cluster);
/* Stop a discovery in progress (client teardown); its waiters are not
 * completed. */
void kube_discovery_run_cancel(struct kube_client *c);
/* Record a group-version as failed (a stale aggregated API). */
void kube_discovery_mark_failed(struct kube_discovery *d, const char *group, const char *version,
                                const char *why);
/* Order versions of @group by the server's preference (legacy APIGroup). */
void kube_discovery_set_group_order(struct kube_discovery *d, const char *group,
                                    const char *const *versions, size_t n, const char *preferred);
/* Finish building: compute preferred versions. */
void kube_discovery_seal(struct kube_discovery *d);
int kube_discovery_find_in(const struct kube_discovery *d, const char *cluster, const char *group,
                           const char *version, const char *kind,
                           const struct kube_resource **ret, struct err *err);
unsigned kube_discovery_istio_in(const struct kube_discovery *d);

/* ------------------------------------------------------------ kube-watch.c */

/* The frame scanner of a watch stream: the events are JSON objects one
 * after another (client-go's streaming decoder does not rely on newlines or
 * chunk boundaries, neither does this). The scanner tracks strings, escapes
 * and nesting only to find where an object ends; the object itself is parsed
 * by doc/. State survives between calls, so data is scanned once. */
struct kube_frame {
  size_t pos;                   /* where scanning resumes, from the data start */
  size_t start;                 /* where the current object starts */
  unsigned depth;
  uint64_t arrays[8];           /* bit d set: nesting level d is a '[' (512 levels) */
  bool started, in_str, esc;
};
/* Find the next complete object in @data of @len bytes: 1 with *off and
 * *flen set (the scanner is then reset: the caller drops off + flen bytes
 * before the next call), 0 when more data is needed, -EBADMSG when the
 * stream is not a sequence of JSON objects (brackets that do not match,
 * nesting deeper than 512). */
int kube_frame_next(struct kube_frame *f, const char *data, size_t len, size_t *off,
                    size_t *flen);
