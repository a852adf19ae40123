/* The webhook doorbell (repository.webhook): a Git forge's push event makes
 * the daemon poll the config repo now instead of at the next interval. The
 * event is only a doorbell: egressd never takes a commit id from it, and
 * the commit it then fetches is verified as every other.
 *
 * Two halves:
 *   - pure functions (webhook.c): parse the head of an HTTP/1.1 request,
 *     judge a whole request (which forge, authentic or not, a push to the
 *     followed ref or not) into a verdict, parse the listen address, a
 *     token bucket, read the secret file. No I/O but the secret file; table
 *     tested (tests/unit/test-webhook.c) and fuzzed (tests/fuzz/fuzz-webhook.c).
 *   - the server (webhook-server.c): its own thread with a poll loop over
 *     the listening socket and its connections, which tells the main loop
 *     through an eventfd. See the file's opening comment for why a thread.
 *
 * Forges and what authenticates them:
 *   GitHub          X-GitHub-Event: push|ping, X-Hub-Signature-256: sha256=<hex HMAC-SHA256>
 *   GitLab          X-Gitlab-Event: Push Hook|Tag Push Hook, X-Gitlab-Token: <secret>
 *   Gitea, Forgejo  X-Gitea-Event / X-Forgejo-Event: push, X-Gitea-Signature /
 *                   X-Forgejo-Signature: <hex HMAC-SHA256>
 *   Bitbucket       X-Event-Key: repo:refs_changed (Server, Data Center), repo:push
 *                   (Cloud), diagnostics:ping; X-Hub-Signature: sha256=<hex>
 * The HMAC is over the body's exact bytes with the secret as key; every
 * comparison is constant-time. The pushed ref is read from the JSON body
 * with doc/ (never by hand): "ref" (GitHub, GitLab, Gitea, Forgejo),
 * changes[].refId (Bitbucket Server), push.changes[].new|old (Cloud).
 *
 * When you add a forge or a result, also touch docs/host-config.md
 * (repository.webhook), docs/daemon.md (the doorbell, the metrics) and the
 * tables of tests/unit/test-webhook.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "base/err.h"

#define WEBHOOK_MAX_HEAD 16384u         /* request line and headers: 431 beyond */
#define WEBHOOK_MAX_HEADERS 100u        /* header lines: 431 beyond */
#define WEBHOOK_MAX_BODY (1u << 20)     /* 413 beyond */
#define WEBHOOK_SECRET_MAX 4096u        /* bytes of the secret file */
#define WEBHOOK_SECRET_MIN 16u          /* bytes of the secret, newline stripped */

enum webhook_forge {
  WEBHOOK_FORGE_NONE,
  WEBHOOK_FORGE_GITHUB,
  WEBHOOK_FORGE_GITLAB,
  WEBHOOK_FORGE_GITEA,
  WEBHOOK_FORGE_FORGEJO,
  WEBHOOK_FORGE_BITBUCKET,
};

/* What became of a request; the label of egressd_webhook_requests_total. */
enum webhook_result {
  WEBHOOK_RESULT_DOORBELL,          /* 202: an authentic push to the followed ref */
  WEBHOOK_RESULT_IGNORED,           /* 200: authentic, but another ref or another event */
  WEBHOOK_RESULT_PING,              /* 200: an authentic ping */
  WEBHOOK_RESULT_UNAUTHORIZED,      /* 401: signature or token missing or wrong */
  WEBHOOK_RESULT_BAD_REQUEST,       /* 400, 404, 405, 411, 415, 417, 505 */
  WEBHOOK_RESULT_TOO_LARGE,         /* 413 */
  WEBHOOK_RESULT_HEADERS_TOO_LARGE, /* 431 */
  WEBHOOK_RESULT_RATE_LIMITED,      /* 429 */
  WEBHOOK_RESULT_TIMEOUT,           /* 408: the request did not arrive in time */
  _WEBHOOK_RESULT_MAX,
};

struct webhook_verdict {
  int status;                  /* HTTP status */
  enum webhook_result result;
  enum webhook_forge forge;
  bool doorbell;               /* an authentic push to the followed ref: poll now */
  unsigned retry_after;        /* 429: seconds */
  char reason[160];            /* one line for the body and the log; never the
                                  secret, a token or a received signature */
  char ref[128];               /* the pushed ref (escaped), for the log; "" if none */
};

/* A header value: points into the buffer the head was parsed from. */
struct webhook_str {
  const char *p;
  size_t len;
};

/* What egressd needs of a request's head. Valid while the buffer lives. */
struct webhook_request {
  size_t head_len;             /* bytes of the head, its empty line included */
  uint64_t content_length;
  bool expect_continue;        /* Expect: 100-continue */
  struct webhook_str content_type, delivery;
  struct webhook_str github_event, gitlab_event, gitea_event, forgejo_event, event_key;
  struct webhook_str hub_signature_256, hub_signature, gitea_signature, forgejo_signature;
  struct webhook_str gitlab_token;
};

/* Parse the head of an HTTP/1.1 request from the @len bytes received so
 * far. Returns 1 when the head is complete and acceptable (*req filled,
 * pointing into @data; the body starts at req->head_len), 0 when more bytes
 * are needed, -EBADMSG when the request is refused (*v filled: 400, 405,
 * 411, 413, 417, 431, 505). Only POST with a Content-Length of at most
 * WEBHOOK_MAX_BODY is acceptable; Transfer-Encoding is refused. */
int webhook_head_parse(const char *data, size_t len, struct webhook_request *req,
                       struct webhook_verdict *v);

/* Judge a request whose head parsed and whose body (@body_len ==
 * req->content_length bytes) arrived, for the secret @secret and the
 * followed ref @ref (a full ref name). Always fills *v. */
void webhook_judge(const struct webhook_request *req, const char *body, size_t body_len,
                   const uint8_t *secret, size_t secret_len, const char *ref,
                   struct webhook_verdict *v);

/* Both of the above over one buffer holding a whole request (tests, the
 * fuzzer): a head that does not end or a body shorter than its
 * Content-Length is a 400. */
void webhook_request_judge(const char *data, size_t len, const uint8_t *secret,
                           size_t secret_len, const char *ref, struct webhook_verdict *v);

/* "GitHub", "GitLab", ...; "unknown" for NONE. */
const char *webhook_forge_name(enum webhook_forge f);
/* The metrics label: "doorbell", "ignored", "ping", "unauthorized",
 * "bad_request", "too_large", "headers_too_large", "rate_limited",
 * "timeout". */
const char *webhook_result_name(enum webhook_result r);

/* The whole HTTP response for @v (status line, Content-Type, Content-Length,
 * Connection: close, Retry-After for a 429, Allow for a 405, then the
 * reason and a newline), replacing @out's content. */
void webhook_response(const struct webhook_verdict *v, struct buf *out);

/* Parse repository.webhook.listen: "A.B.C.D:PORT" or "[IPv6]:PORT", literal
 * addresses only (no names: nothing is resolved), port 1-65535. Returns 0
 * with the socket address, or -EINVAL with *why (a static phrase). */
int webhook_listen_parse(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len,
                         const char **why);

/* A token bucket: @burst requests at once, @per_sec on average. */
struct webhook_bucket {
  double tokens, burst, per_sec;
  uint64_t last_usec;          /* monotonic, of the last take */
  bool primed;                 /* false: full at the first take */
};
void webhook_bucket_init(struct webhook_bucket *b, double burst, double per_sec);
/* Take a token at @now_usec: 0 when taken, else the whole seconds (at
 * least 1) until one is there, for Retry-After. */
unsigned webhook_bucket_take(struct webhook_bucket *b, uint64_t now_usec);

/* Read the secret file @path into @ret (replacing its content): a regular
 * file of at most WEBHOOK_SECRET_MAX bytes, trailing CR and LF stripped, at
 * least WEBHOOK_SECRET_MIN bytes left. Every copy but @ret is wiped; the
 * caller disposes of @ret with buf_dispose_secret(). Returns 0, or -errno
 * with @err naming the file (never its content). */
int webhook_secret_load(const char *path, struct buf *ret, struct err *err);

/* ------------------------------------------------------------- the server */

struct hostconfig;
struct webhook_server;

struct webhook_stats {
  unsigned long requests[_WEBHOOK_RESULT_MAX];
  uint64_t last_doorbell;      /* real time, µs; 0: none yet */
};

/* Start the server for hc->repo.webhook: on the socket systemd passed
 * (LISTEN_FDS for this pid, the one named "webhook", or the only one),
 * else on hc->repo.webhook.listen; reads the secret file. Its thread starts
 * with the caller's signal mask (block signals first). Returns 0, or
 * -errno with @err (no listen address and no socket passed, the address
 * in use, the secret file unreadable). */
int webhook_server_start(const struct hostconfig *hc, struct webhook_server **ret,
                         struct err *err);
/* Stop the thread, close the connections and the socket, wipe the secret.
 * NULL is fine. */
void webhook_server_stop(struct webhook_server *s);
/* At a reload: follow @ref and take over @secret (read with
 * webhook_secret_load(); @secret is left empty, the old one is wiped). */
void webhook_server_update(struct webhook_server *s, const char *ref, struct buf *secret);
/* Readable (POLLIN) when a doorbell rang or a counter moved (at most about
 * once a second for counters alone). */
int webhook_server_fd(const struct webhook_server *s);
/* Reset the fd; returns whether a doorbell rang since the last call, and
 * sets *changed when any counter moved. */
bool webhook_server_take(struct webhook_server *s, bool *changed);
/* The counters (atomics: any thread). */
void webhook_server_stats(const struct webhook_server *s, struct webhook_stats *ret);
/* The address listened on ("127.0.0.1:9419", "[::1]:9419"), for status. */
const char *webhook_server_address(const struct webhook_server *s);
/* Whether the socket came from systemd (socket activation). */
bool webhook_server_activated(const struct webhook_server *s);
