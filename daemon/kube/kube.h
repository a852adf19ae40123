/* kube: egressd's Kubernetes client (layer 1; libcurl + OpenSSL adapter).
 *
 * One thread drives every cluster. A struct kube_loop owns one libcurl multi
 * handle; every struct kube_client (one per cluster, built from the
 * operator's kubeconfig) submits its requests to it. Operations are
 * asynchronous: they return at once and later call a completion callback from
 * inside kube_loop_run_once(), never from the call that submitted them. A slow
 * or unreachable cluster never blocks another cluster's requests. Retry
 * backoff, exec-plugin runs and watch reconnects are timers and file
 * descriptors of the loop, never sleep().
 *
 * What the client does for the caller (docs/clusters.md has the user's view):
 *   - kubeconfig as client-go reads it: server with a path prefix, CA file or
 *     data, insecure-skip-tls-verify, tls-server-name, proxy-url,
 *     disable-compression, client certificates (file or data), token,
 *     tokenFile (re-read when it changes), basic auth, impersonation, exec
 *     plugins (client.authentication.k8s.io/v1 and v1beta1) with caching until
 *     expirationTimestamp and one re-run plus one retry after a 401;
 *   - TLS verified by default, HTTP/2 when the server offers it, connection
 *     reuse, connect and total timeouts, a bound on every response;
 *   - retries with jittered exponential backoff for 429 and 5xx honouring
 *     Retry-After (also the plain-text 429 of API Priority and Fairness), and
 *     for connection resets of idempotent requests;
 *   - discovery (aggregated v2 first, the legacy walk as fallback), cached
 *     for the client's lifetime;
 *   - LIST with paging, GET, server-side apply, DELETE with a UID
 *     precondition, WATCH with bookmarks, reconnects and re-list on 410.
 *
 * Errors: every failure fills a struct err whose message starts with
 * "cluster <name>: ". For an HTTP error, err.detail is the HTTP status,
 * err.reason the Status reason ("Conflict") and the message is built from
 * the Status message and details.causes[]; a body that is not a Status (the
 * APF 429, a proxy's HTML page) is quoted as a short sanitised excerpt.
 * Return codes: -ENOENT (404), -EACCES (401, 403, credential failures),
 * -EBUSY (409 Conflict), -EEXIST (409 AlreadyExists), -ESTALE (410),
 * -EINVAL (400, 422, bad arguments, bad kubeconfig), -EAGAIN (429/5xx after
 * the last retry), -ETIMEDOUT, -ECONNREFUSED / -EHOSTUNREACH (unreachable),
 * -EPROTO (TLS), -EBADMSG (a body that does not parse), -EFBIG (a response
 * over the bound), -ECANCELED (the operation was cancelled).
 *
 * Secrets (tokens, passwords, private keys, exec-plugin output) never appear
 * in an error text, even when a server echoes them, and are wiped with
 * sodium_memzero() when dropped. Credentials are never sent over http://: a
 * client for an http:// server with credentials configured is refused.
 *
 * Objects are struct doc_node trees (doc/doc.h) parsed from JSON with bounded
 * limits into an arena the caller passes with each operation. The arena must
 * outlive the operation (until its callback ran or it was cancelled).
 *
 * When you change the public behaviour, also touch docs/clusters.md,
 * docs/man/egressd-clusters.1 and tests/unit/test-kube.c.
 */
#pragma once

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/diag.h"
#include "base/err.h"
#include "doc/doc.h"

struct kube_loop;
struct kube_client;
struct kube_op;
struct kube_watch;

/* ---------------------------------------------------------------- kubeconfig */

enum kube_interactive {
  KUBE_INTERACTIVE_IF_AVAILABLE, /* v1beta1's default; egressd is never interactive */
  KUBE_INTERACTIVE_NEVER,
  KUBE_INTERACTIVE_ALWAYS,       /* refused: egressd has no terminal */
};

struct kube_pair {
  char *name;
  char *value;
};

struct kube_exec_config {
  char *api_version;            /* client.authentication.k8s.io/v1 or /v1beta1 */
  char *command;                /* resolved against the kubeconfig's folder if it has a '/' */
  char **args;
  size_t n_args;
  struct kube_pair *env;        /* added to (and overriding) egressd's environment */
  size_t n_env;
  char *install_hint;           /* NULL when not given */
  bool provide_cluster_info;
  enum kube_interactive interactive;
};

/* The parts of one kubeconfig that egressd uses: the selected context, its
 * cluster and its user. Paths are absolute (relative ones are resolved
 * against the kubeconfig's own folder). Fields marked secret are wiped by
 * kube_config_free(). */
struct kube_config {
  char *path;                   /* the kubeconfig file */
  char *context;                /* the context in use */
  char *cluster_ref;            /* context.cluster */
  char *user_ref;               /* context.user; NULL: no credentials */
  char *namespace;              /* context.namespace, default "default" */

  char *server;                 /* as written, path prefix included */
  char *ca_file;
  struct buf ca_data;           /* decoded certificate-authority-data (PEM) */
  bool insecure_skip_tls_verify;
  char *tls_server_name;
  char *proxy_url;              /* secret: may hold proxy credentials */
  bool disable_compression;
  char *exec_cluster_config;    /* JSON of the client.authentication.k8s.io/exec extension */

  char *client_cert_file;
  char *client_key_file;
  struct buf client_cert_data;  /* decoded PEM */
  struct buf client_key_data;   /* decoded PEM; secret */
  char *token;                  /* secret */
  char *token_file;
  char *username;
  char *password;               /* secret */
  char *impersonate;            /* as */
  char *impersonate_uid;        /* as-uid */
  char **impersonate_groups;    /* as-groups */
  size_t n_impersonate_groups;
  struct kube_pair *impersonate_extra; /* as-user-extra, one pair per value */
  size_t n_impersonate_extra;
  struct kube_exec_config *exec;
};

/* Parse a kubeconfig of @len bytes named @path and select @context (NULL: its
 * current-context). Only the selected context, its cluster and its user are
 * checked, as client-go does; everything client-go refuses is refused here
 * with the file, line and field named. Every problem goes to @diags (when
 * not NULL; unknown fields are warnings there) and the first also to @err.
 * Returns 0, -EINVAL (a problem), -E2BIG/-EBADMSG/-EILSEQ (unparsable).
 * Referenced files are not read here (kube_client_new reads them). */
int kube_config_parse(const char *path, const char *data, size_t len, const char *context,
                      struct kube_config **ret, struct diag_list *diags, struct err *err);
/* Read @path (at most 4 MiB) and kube_config_parse() it. */
int kube_config_load(const char *path, const char *context, struct kube_config **ret,
                     struct diag_list *diags, struct err *err);
/* Free @c, wiping its secrets. NULL is fine. */
void kube_config_free(struct kube_config *c);
/* How the user authenticates, for messages: "bearer token", "token file",
 * "client certificate", "bearer token + client certificate", "basic auth",
 * "exec plugin", "none". */
const char *kube_config_auth_name(const struct kube_config *c);

/* ------------------------------------------------------------------ options */

struct kube_options {
  uint64_t request_timeout_usec;   /* one attempt of a request; default 30 s */
  uint64_t connect_timeout_usec;   /* TCP connect + TLS handshake; default 10 s */
  size_t max_response_bytes;       /* one response, and all pages of one LIST; default 64 MiB */
  unsigned max_attempts;           /* attempts of one request, the first included; default 6 */
  uint64_t backoff_base_usec;      /* first retry wait; default 200 ms */
  uint64_t backoff_max_usec;       /* cap of one wait, Retry-After included; default 10 s */
  uint64_t exec_timeout_usec;      /* one exec-plugin run; default 60 s */
  unsigned list_page_size;         /* LIST limit=; default 500 */
  unsigned watch_timeout_sec;      /* server-side timeoutSeconds of one watch; default 300 */
  const char *user_agent;          /* default "egressd/<version>" */
  const char *field_manager;       /* default "egressd" */
  bool http2;                      /* offer h2 by ALPN; default true */
};

/* Fill @o with the defaults above. */
void kube_options_init(struct kube_options *o);

/* --------------------------------------------------------------------- loop */

/* Make a loop (one libcurl multi handle). Returns 0 or -ENOMEM. */
int kube_loop_new(struct kube_loop **ret, struct err *err);
/* Free the loop. Every client of the loop must be freed first. NULL is fine. */
void kube_loop_free(struct kube_loop *loop);

/* Make progress: wait at most @max_wait_usec for network activity, a due
 * timer, an exec plugin's output or one of @extra (poll(2) semantics: fd and
 * events in, revents out; the caller's signalfd, timerfd, notify socket),
 * then run what became ready, including completion callbacks. Returns the
 * number of @extra descriptors with revents set (>= 0), or -errno. Returns
 * early when anything happened, so the caller's own timers still fire. */
int kube_loop_run_once(struct kube_loop *loop, uint64_t max_wait_usec, struct pollfd *extra,
                       size_t n_extra);

/* Run until no request, timer or exec plugin is pending (watches count as
 * pending) or @timeout_usec passed: 0, or -ETIMEDOUT. For CLI commands. */
int kube_loop_run_until_idle(struct kube_loop *loop, uint64_t timeout_usec);

/* Requests in flight, retry timers and exec plugins running (for tests). */
size_t kube_loop_pending(const struct kube_loop *loop);

/* ------------------------------------------------------------------- client */

/* Make the client of cluster @name (egressd's name for it, used in every
 * message) from the kubeconfig @kubeconfig_path, context @context (NULL: the
 * current-context), with @opts (NULL: the defaults; copied). Reads the
 * kubeconfig and the files it names (CA, certificate, key, token file); does
 * no network I/O (the exec plugin runs before the first request). Returns 0,
 * -EINVAL (a bad kubeconfig, a refused combination), or the -errno of a file.
 * Problems of the kubeconfig are all added to @diags when it is not NULL. */
int kube_client_new(struct kube_loop *loop, const char *name, const char *kubeconfig_path,
                    const char *context, const struct kube_options *opts,
                    struct kube_client **ret, struct diag_list *diags, struct err *err);
/* The same from a parsed config, which the client takes over (even on
 * failure, when it is freed). */
int kube_client_new_take(struct kube_loop *loop, const char *name, struct kube_config *cfg,
                         const struct kube_options *opts, struct kube_client **ret,
                         struct err *err);
/* Cancel everything the client has in flight (no callbacks run) and free it,
 * wiping its credentials. Must not be called from one of its own callbacks.
 * NULL is fine. */
void kube_client_free(struct kube_client *c);

const char *kube_client_name(const struct kube_client *c);
const struct kube_config *kube_client_config(const struct kube_client *c);
/* The context's namespace ("default" when it names none). */
const char *kube_client_namespace(const struct kube_client *c);

/* ------------------------------------------------------------------- results */

/* Why a request failed, for callers that branch (the fleet's "unreachable"
 * state, `clusters check`). */
enum kube_failure {
  KUBE_FAIL_NONE,
  KUBE_FAIL_CONNECT,    /* name resolution, refused, connect timeout */
  KUBE_FAIL_TLS,        /* handshake or certificate verification */
  KUBE_FAIL_AUTH,       /* 401/403, or the credentials could not be obtained */
  KUBE_FAIL_TIMEOUT,    /* the request (after connecting) took too long */
  KUBE_FAIL_TRANSPORT,  /* connection reset, HTTP/2 stream error, ... */
  KUBE_FAIL_HTTP,       /* any other HTTP error status */
  KUBE_FAIL_BODY,       /* a response that does not parse or is too large */
  KUBE_FAIL_LOCAL,      /* on our side: bad arguments, cancelled */
};

struct kube_result {
  int r;                        /* 0, or -errno with err filled */
  struct err err;
  enum kube_failure failure;
  long status;                  /* HTTP status of the last response; 0 when none */
  /* GET, APPLY: the object. LIST: a sequence of every item of every page, each
   * with apiVersion and kind (filled from the list for built-in kinds).
   * DELETE: the server's answer (a Status, or the object while finalizers
   * run). Raw GET: the body. NULL on failure. In the operation's arena. */
  struct doc_node *object;
  const char *resource_version; /* LIST: metadata.resourceVersion of the list */
  bool created;                 /* APPLY: 201, the object did not exist */
  bool gone;                    /* DELETE: 404, the object was already gone */
  bool finalizing;              /* DELETE: accepted, finalizers still to run */
  unsigned attempts;            /* HTTP requests made (every page and retry) */
  uint64_t elapsed_usec;        /* submit to completion */
  uint64_t rtt_usec;            /* last attempt: request sent to first response byte */
  const char *protocol;         /* "HTTP/2", "HTTP/1.1" of the last response; NULL */
  /* KUBE_FAIL_AUTH with 403: the server ignored the credentials sent (an
   * authentication it does not support, such as basic auth since Kubernetes
   * 1.19) and judged the request as system:anonymous */
  bool anonymous;
};

/* Completion callback: runs once, from inside kube_loop_run_once(). @res is
 * valid during the call only (the objects stay in the operation's arena). */
typedef void (*kube_done_fn)(void *userdata, const struct kube_result *res);

/* Cancel an operation that has not completed: its callback will not run. An
 * operation handle is valid until its callback has started. */
void kube_op_cancel(struct kube_op *op);
/* Whether a request of @op is on the wire (handed to libcurl, not yet
 * answered): false while it waits for credentials or sleeps before a retry.
 * A stop can cancel an operation that is not on the wire and lose nothing
 * the server may have seen. */
bool kube_op_on_the_wire(const struct kube_op *op);

/* ----------------------------------------------------------------- discovery */

struct kube_resource {
  const char *group;            /* "" for the core group */
  const char *kind;
  const char *plural;
  bool namespaced;
  const char *version;          /* the preferred version that serves the kind */
  const char *const *versions;  /* every served version, the server's preference first */
  size_t n_versions;
};

/* Discover the API (aggregated discovery v2 when the response Content-Type
 * says so, else the legacy walk of /api and /apis). Done once per client:
 * later calls complete from the cache with no request. @done receives no
 * object. Returns 0 (submitted) or -errno. */
int kube_client_discover(struct kube_client *c, kube_done_fn done, void *userdata,
                         struct kube_op **ret_op, struct err *err);
/* Whether discovery has completed successfully. */
bool kube_client_discovered(const struct kube_client *c);
/* Forget the cached discovery (the next kube_client_discover asks again). */
void kube_client_discovery_reset(struct kube_client *c);
/* Whether the server answered with aggregated discovery. */
bool kube_discovery_aggregated(const struct kube_client *c);

/* Find @kind of @group ("" for core), served at @version (NULL: any version).
 * On success *ret points into the client's cache. -ENOENT with the precise
 * message "cluster prod-eu does not serve servicemesh.cisco.com/v1alpha1
 * IstioMeshGateway; is Service Mesh Manager installed?" when it is not
 * served; -EAGAIN when discovery has not run or the group's discovery failed
 * (stale aggregated API). */
int kube_discovery_find(const struct kube_client *c, const char *group, const char *version,
                        const char *kind, const struct kube_resource **ret, struct err *err);
/* Find a resource by a user's name for it: "Kind", "plural", "singular"
 * (lower-case kind), optionally followed by ".group" ("vs" short names are
 * not supported). */
int kube_discovery_resolve(const struct kube_client *c, const char *name,
                           const struct kube_resource **ret, struct err *err);

enum {
  KUBE_ISTIO_V1 = 1 << 0,
  KUBE_ISTIO_V1BETA1 = 1 << 1,
  KUBE_ISTIO_V1ALPHA3 = 1 << 2,
};
/* Which networking.istio.io versions the cluster serves (KUBE_ISTIO_* bits). */
unsigned kube_discovery_istio_versions(const struct kube_client *c);
/* The one to use: v1 over v1beta1 over v1alpha3; NULL when none is served. */
const char *kube_discovery_istio_version(const struct kube_client *c);
/* Whether Service Mesh Manager's IstioMeshGateway CRD
 * (servicemesh.cisco.com/v1alpha1) is installed. */
bool kube_discovery_has_smm(const struct kube_client *c);

/* --------------------------------------------------------- resource operations */

/* A collection: /api/v1/... for group "" else /apis/<group>/<version>/...,
 * namespaced when @namespace is set (NULL or "": cluster-scoped, or every
 * namespace for a namespaced kind). */
struct kube_ref {
  const char *group;
  const char *version;
  const char *plural;
  const char *namespace;
};

/* A reference to @r at its preferred version in @namespace. */
struct kube_ref kube_ref_of(const struct kube_resource *r, const char *namespace);

struct kube_list_options {
  const char *label_selector;   /* NULL: none */
  const char *field_selector;   /* NULL: none */
  unsigned page_size;           /* 0: the client's list_page_size */
};

/* LIST every item (following `continue`; restarting once without it when the
 * server answers 410 Expired). */
int kube_client_list(struct kube_client *c, const struct kube_ref *ref,
                     const struct kube_list_options *lo, struct doc_arena *a, kube_done_fn done,
                     void *userdata, struct kube_op **ret_op, struct err *err);
/* GET one object (-ENOENT when it does not exist). */
int kube_client_get(struct kube_client *c, const struct kube_ref *ref, const char *name,
                    struct doc_arena *a, kube_done_fn done, void *userdata,
                    struct kube_op **ret_op, struct err *err);
/* GET an API path below the server's prefix ("/version"); the body is parsed
 * as JSON. */
int kube_client_get_path(struct kube_client *c, const char *path, struct doc_arena *a,
                         kube_done_fn done, void *userdata, struct kube_op **ret_op,
                         struct err *err);

enum {
  KUBE_APPLY_FORCE = 1 << 0,    /* force=true: take over conflicting fields */
  KUBE_APPLY_DRY_RUN = 1 << 1,  /* dryRun=All: nothing is persisted */
};
/* Server-side apply @obj (apiVersion, kind, metadata.name, and for a
 * namespaced kind metadata.namespace or ref->namespace): PATCH with
 * application/apply-patch+yaml, a JSON body, fieldManager, force and
 * fieldValidation=Strict. The result is the live object; created tells 201.
 * A conflict is -EBUSY with the conflicting fields in the message. */
int kube_client_apply(struct kube_client *c, const struct kube_ref *ref,
                      const struct doc_node *obj, unsigned flags, struct doc_arena *a,
                      kube_done_fn done, void *userdata, struct kube_op **ret_op,
                      struct err *err);

/* Create @obj (POST; -EEXIST when the name is taken) or replace it (PUT;
 * -ENOENT when it does not exist, -EBUSY when its metadata.resourceVersion is
 * not the current one: the server's optimistic concurrency). The result is
 * the stored object. For objects egressd owns whole, such as its Leases. */
int kube_client_create(struct kube_client *c, const struct kube_ref *ref,
                       const struct doc_node *obj, struct doc_arena *a, kube_done_fn done,
                       void *userdata, struct kube_op **ret_op, struct err *err);
int kube_client_update(struct kube_client *c, const struct kube_ref *ref,
                       const struct doc_node *obj, struct doc_arena *a, kube_done_fn done,
                       void *userdata, struct kube_op **ret_op, struct err *err);

enum kube_propagation {
  KUBE_PROPAGATION_BACKGROUND,
  KUBE_PROPAGATION_FOREGROUND,
  KUBE_PROPAGATION_ORPHAN,
};
struct kube_delete_options {
  const char *uid;              /* precondition; NULL: none */
  enum kube_propagation propagation;
  bool dry_run;
};
/* DELETE one object. 404 is success with gone set; a changed UID is -EBUSY
 * (the server's Conflict). */
int kube_client_delete(struct kube_client *c, const struct kube_ref *ref, const char *name,
                       const struct kube_delete_options *dopt, struct doc_arena *a,
                       kube_done_fn done, void *userdata, struct kube_op **ret_op,
                       struct err *err);

/* Synchronous wrappers: submit, then run the loop (other clients' requests
 * and callbacks progress too) until this operation completes. Fill @res
 * (its err included) and return res->r; @err gets a copy of res->err. */
int kube_client_discover_sync(struct kube_client *c, struct kube_result *res, struct err *err);
int kube_client_list_sync(struct kube_client *c, const struct kube_ref *ref,
                          const struct kube_list_options *lo, struct doc_arena *a,
                          struct kube_result *res, struct err *err);
int kube_client_get_sync(struct kube_client *c, const struct kube_ref *ref, const char *name,
                         struct doc_arena *a, struct kube_result *res, struct err *err);
int kube_client_apply_sync(struct kube_client *c, const struct kube_ref *ref,
                           const struct doc_node *obj, unsigned flags, struct doc_arena *a,
                           struct kube_result *res, struct err *err);
int kube_client_delete_sync(struct kube_client *c, const struct kube_ref *ref,
                            const char *name, const struct kube_delete_options *dopt,
                            struct doc_arena *a, struct kube_result *res, struct err *err);

/* -------------------------------------------------------------------- watch */

enum kube_watch_type {
  KUBE_WATCH_ADDED,
  KUBE_WATCH_MODIFIED,
  KUBE_WATCH_DELETED,
  KUBE_WATCH_BOOKMARK,          /* object holds only metadata.resourceVersion */
  KUBE_WATCH_RELISTED,          /* object is every current item (a sequence): replace your view */
  KUBE_WATCH_FAILED,            /* the watch stopped; err says why; no more events */
};

struct kube_watch_event {
  enum kube_watch_type type;
  struct doc_node *object;      /* valid during the callback only: doc_copy() what you keep */
  const char *resource_version; /* the RV the watch resumes from after this event */
  const struct err *err;        /* KUBE_WATCH_FAILED */
};

typedef void (*kube_watch_fn)(void *userdata, const struct kube_watch_event *ev);

struct kube_watch_options {
  const char *label_selector;
  const char *field_selector;
  /* Start after this RV; NULL: LIST first (delivered as KUBE_WATCH_RELISTED),
   * then watch from the list's RV. */
  const char *resource_version;
  unsigned timeout_sec;         /* 0: the client's watch_timeout_sec */
};

/* Watch a collection: allowWatchBookmarks=true, resourceVersion, timeoutSeconds.
 * When the server ends the stream (timeoutSeconds) or the connection breaks,
 * the watch reconnects from the last RV it delivered; on 410 Gone (an HTTP
 * 410 or an ERROR event) it re-lists and delivers KUBE_WATCH_RELISTED. After
 * max_attempts consecutive failed connections, or a permanent error (401
 * after a credential refresh, 403, 404), it delivers KUBE_WATCH_FAILED and
 * stops. Returns 0 (started) or -errno. */
int kube_client_watch(struct kube_client *c, const struct kube_ref *ref,
                      const struct kube_watch_options *wo, kube_watch_fn fn, void *userdata,
                      struct kube_watch **ret, struct err *err);
/* Stop and free a watch (no more callbacks). May be called from its own
 * callback. NULL is fine. */
void kube_watch_stop(struct kube_watch *w);
/* Connections the watch has opened so far (1 + reconnects). */
unsigned kube_watch_connections(const struct kube_watch *w);

enum kube_watch_state {
  KUBE_WATCH_STATE_LISTING,     /* the LIST before the stream (start, after 410 Gone) */
  KUBE_WATCH_STATE_WATCHING,    /* a stream is open or being opened */
  KUBE_WATCH_STATE_BACKOFF,     /* waiting to reconnect after a failure */
  KUBE_WATCH_STATE_FAILED,      /* gave up (KUBE_WATCH_FAILED was delivered) */
};
const char *kube_watch_state_name(enum kube_watch_state s);
/* What the watch is doing; *@since (may be NULL) gets when it started doing
 * it (time_now_mono_usec()). */
enum kube_watch_state kube_watch_state(const struct kube_watch *w, uint64_t *since);
