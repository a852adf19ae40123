/* Resource operations: LIST (paged), GET, server-side APPLY, DELETE, and a
 * raw GET of an API path, each asynchronous with a synchronous wrapper.
 *
 * An operation (struct kube_op) owns at most one HTTP request at a time and
 * completes exactly once, from the loop: its callback runs, then it is
 * freed. Results are parsed into the caller's arena.
 *
 * LIST follows `continue` with limit=page size; an expired continue (410)
 * restarts the list once without it, discarding the pages read so far; all
 * pages together are bounded by opts.max_response_bytes. Items of built-in
 * lists get apiVersion and kind from the list, as client-go's unstructured
 * decoding does, so every item says what it is.
 *
 * When you change a request's query, also touch docs/clusters.md and the
 * request-log assertions of tests/integration/test_kube.py.
 */
#include <errno.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "kube/kube-int.h"

#define SYNC_TIMEOUT_USEC (24ULL * 3600 * 1000000)

/* ------------------------------------------------------------ op plumbing */

static void on_defer(struct kube_timer *t) {
  kube_op_complete((struct kube_op *)((char *)t - offsetof(struct kube_op, defer)));
}

struct kube_op *kube_op_new(struct kube_client *c, struct doc_arena *a, kube_done_fn done,
                            void *ud) {
  struct kube_op *op = xcalloc(1, sizeof(*op));

  op->c = c;
  op->a = a;
  op->done = done;
  op->ud = ud;
  op->started = time_now_mono_usec();
  op->defer.fire = on_defer;
  op->next = c->ops;
  if (c->ops)
    c->ops->prev = op;
  c->ops = op;
  return op;
}

static void op_unlink(struct kube_op *op) {
  if (op->prev)
    op->prev->next = op->next;
  else if (op->c->ops == op)
    op->c->ops = op->next;
  if (op->next)
    op->next->prev = op->prev;
  op->next = op->prev = NULL;
}

void kube_op_free(struct kube_op *op) {
  if (!op)
    return;
  op_unlink(op);
  kube_timer_disarm(op->c->loop, &op->defer);
  if (op->http)
    kube_http_cancel(op->http);
  if (op->state_free)
    op->state_free(op);
  free(op);
}

void kube_op_complete(struct kube_op *op) {
  op_unlink(op);
  kube_timer_disarm(op->c->loop, &op->defer);
  op->res.elapsed_usec = time_now_mono_usec() - op->started;
  if (op->res.r < 0 && !err_isset(&op->res.err))
    err_set(&op->res.err, op->res.r, "cluster %s: request failed", op->c->name);
  if (op->done)
    op->done(op->ud, &op->res);
  op->http = NULL;
  kube_op_free(op);
}

void kube_op_complete_later(struct kube_op *op) { kube_timer_arm(op->c->loop, &op->defer, 0); }

void kube_op_cancel(struct kube_op *op) {
  if (!op)
    return;
  if (op->on_cancel)
    op->on_cancel(op);
  kube_op_free(op);
}

void kube_ops_cancel_all(struct kube_client *c) {
  while (c->watches)
    kube_watch_stop(c->watches);
  kube_discovery_run_cancel(c);
  while (c->ops) {
    c->ops->on_cancel = NULL; /* the discovery run is gone already */
    kube_op_free(c->ops);
  }
}

void kube_op_take_http(struct kube_op *op, const struct kube_http_result *hr) {
  op->http = NULL;
  op->res.status = hr->status;
  op->res.attempts += hr->attempts;
  op->res.rtt_usec = hr->rtt_usec;
  op->res.protocol = hr->protocol;
  op->res.anonymous = hr->anonymous;
  if (hr->r < 0 && !err_isset(&op->res.err)) {
    op->res.r = hr->r;
    op->res.err = *hr->err;
    op->res.failure = hr->failure;
  }
}

static void op_fail(struct kube_op *op, int r, enum kube_failure failure, const struct err *e) {
  if (!err_isset(&op->res.err)) {
    if (e && err_isset(e))
      op->res.err = *e;
    else
      err_set(&op->res.err, r, "cluster %s: request failed", op->c->name);
  }
  op->res.r = op->res.err.code;
  op->res.failure = failure;
}

/* ------------------------------------------------------------ paths */

static int check_segment(const char *what, const char *s, const char *cluster, struct err *err) {
  if (str_is_empty(s))
    return err_set(err, -EINVAL, "cluster %s: the %s is empty", cluster, what);
  if (strlen(s) > 253 || strchr(s, '/') || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
    return err_set(err, -EINVAL, "cluster %s: '%s' is not a valid %s", cluster, s, what);
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p < 0x21 || *p == 0x7f)
      return err_set(err, -EINVAL, "cluster %s: the %s '%s' contains a blank or control character",
                     cluster, what, s);
  return 0;
}

static void append_segment(struct buf *b, const char *s) {
  char *e = curl_easy_escape(NULL, s, 0);
  buf_putc(b, '/');
  buf_puts(b, e ? e : "");
  curl_free(e);
}

char *kube_ref_path(const struct kube_ref *ref, const char *name, struct err *err,
                    const char *cluster) {
  struct buf b = BUF_INIT;

  if (check_segment("version", ref->version, cluster, err) < 0 ||
      check_segment("resource", ref->plural, cluster, err) < 0 ||
      (!str_is_empty(ref->group) && check_segment("group", ref->group, cluster, err) < 0) ||
      (!str_is_empty(ref->namespace) && check_segment("namespace", ref->namespace, cluster, err) < 0) ||
      (name && check_segment("object name", name, cluster, err) < 0))
    return NULL;
  if (str_is_empty(ref->group)) {
    buf_puts(&b, "/api");
  } else {
    buf_puts(&b, "/apis");
    append_segment(&b, ref->group);
  }
  append_segment(&b, ref->version);
  if (!str_is_empty(ref->namespace)) {
    buf_puts(&b, "/namespaces");
    append_segment(&b, ref->namespace);
  }
  append_segment(&b, ref->plural);
  if (name)
    append_segment(&b, name);
  return buf_detach(&b, NULL);
}

void kube_query_add(struct buf *path, const char *key, const char *value) {
  char *e = curl_easy_escape(NULL, value, 0);
  buf_putc(path, strchr(buf_cstr(path), '?') ? '&' : '?');
  buf_printf(path, "%s=%s", key, e ? e : "");
  curl_free(e);
}

struct kube_ref kube_ref_of(const struct kube_resource *r, const char *namespace) {
  struct kube_ref ref = {.group = r->group, .version = r->version, .plural = r->plural,
                         .namespace = r->namespaced ? namespace : NULL};
  return ref;
}

static int parse_into(struct kube_op *op, const struct kube_http_result *hr, size_t budget,
                      struct doc_node **ret) {
  struct err e = ERR_INIT;
  int r = kube_parse_json(op->a, "response", buf_cstr(hr->body), hr->body->len, budget, ret, &e);

  if (r < 0) {
    struct err wrapped = ERR_INIT;
    err_set_src(&wrapped, r, ERR_SRC_KUBE, "cluster %s: the server's response does not parse: %s",
                op->c->name, e.msg);
    op_fail(op, r, r == -E2BIG ? KUBE_FAIL_BODY : KUBE_FAIL_BODY, &wrapped);
  }
  return r;
}

/* ------------------------------------------------------------ LIST */

struct list_state {
  struct buf base;              /* the collection path */
  char *label_selector, *field_selector;
  unsigned page_size;
  char *cont;
  bool restarted;
  size_t bytes;
  struct doc_node *items;
  const char *rv;
};

static void list_state_free(struct kube_op *op) {
  struct list_state *s = op->state;
  if (!s)
    return;
  buf_dispose(&s->base);
  free(s->label_selector);
  free(s->field_selector);
  free(s->cont);
  free(s);
  op->state = NULL;
}

static void list_page(struct kube_op *op);

static void fill_item_type(struct doc_arena *a, struct doc_node *item, const char *api_version,
                           const char *list_kind) {
  if (!doc_map_get(item, "apiVersion") && api_version)
    doc_map_set(a, item, "apiVersion", doc_new_str(a, api_version));
  if (!doc_map_get(item, "kind") && list_kind && str_has_suffix(list_kind, "List") &&
      strlen(list_kind) > 4)
    doc_map_set(a, item, "kind", doc_new_strn(a, list_kind, strlen(list_kind) - 4));
}

static void on_list_page(void *ud, const struct kube_http_result *hr) {
  struct kube_op *op = ud;
  struct list_state *s = op->state;
  struct doc_node *page = NULL, *items;
  const char *cont;
  size_t budget = op->c->opts.max_response_bytes;

  if (hr->r < 0 && hr->status == 410 && s->cont && !s->restarted) {
    /* the continue token expired: read the whole list again, once */
    op->http = NULL;
    op->res.attempts += hr->attempts;
    s->restarted = true;
    xfree(s->cont);
    s->bytes = 0;
    s->items = doc_new_seq(op->a);
    list_page(op);
    return;
  }
  kube_op_take_http(op, hr);
  if (hr->r < 0) {
    kube_op_complete(op);
    return;
  }
  s->bytes += hr->body->len;
  if (s->bytes > budget) {
    struct err e = ERR_INIT;
    err_set_src(&e, -EFBIG, ERR_SRC_KUBE,
                "cluster %s: the list is larger than the limit of %zu bytes", op->c->name, budget);
    op_fail(op, -EFBIG, KUBE_FAIL_BODY, &e);
    kube_op_complete(op);
    return;
  }
  if (parse_into(op, hr, budget, &page) < 0) {
    kube_op_complete(op);
    return;
  }
  items = doc_map_get(page, "items");
  if (!doc_is(page, DOC_MAP) || (items && !doc_is(items, DOC_SEQ) && !doc_is(items, DOC_NULL))) {
    struct err e = ERR_INIT;
    err_set_src(&e, -EBADMSG, ERR_SRC_KUBE, "cluster %s: the server's answer to a LIST is not a list",
                op->c->name);
    op_fail(op, -EBADMSG, KUBE_FAIL_BODY, &e);
    kube_op_complete(op);
    return;
  }
  for (size_t i = 0; doc_is(items, DOC_SEQ) && i < items->u.seq.n; i++) {
    struct doc_node *item = items->u.seq.items[i];
    if (!doc_is(item, DOC_MAP))
      continue;
    fill_item_type(op->a, item, doc_map_str(page, "apiVersion"), doc_map_str(page, "kind"));
    doc_seq_push(op->a, s->items, item);
  }
  s->rv = doc_path_str(page, "metadata.resourceVersion");
  cont = doc_path_str(page, "metadata.continue");
  free(s->cont);
  s->cont = str_is_empty(cont) ? NULL : xstrdup(cont);
  if (s->cont) {
    list_page(op);
    return;
  }
  op->res.object = s->items;
  op->res.resource_version = s->rv;
  kube_op_complete(op);
}

static void list_page(struct kube_op *op) {
  struct list_state *s = op->state;
  struct buf path = BUF_INIT;
  char limit[32];
  struct kube_http_spec spec = {.method = KUBE_GET};
  struct err e = ERR_INIT;

  buf_append(&path, s->base.data, s->base.len);
  str_format(limit, sizeof(limit), "%u", s->page_size);
  kube_query_add(&path, "limit", limit);
  if (s->label_selector)
    kube_query_add(&path, "labelSelector", s->label_selector);
  if (s->field_selector)
    kube_query_add(&path, "fieldSelector", s->field_selector);
  if (s->cont)
    kube_query_add(&path, "continue", s->cont);
  spec.path = buf_cstr(&path);
  op->http = kube_http_submit(op->c, &spec, on_list_page, op, &e);
  buf_dispose(&path);
  if (!op->http) {
    op_fail(op, e.code, KUBE_FAIL_LOCAL, &e);
    kube_op_complete_later(op);
  }
}

int kube_client_list(struct kube_client *c, const struct kube_ref *ref,
                     const struct kube_list_options *lo, struct doc_arena *a, kube_done_fn done,
                     void *userdata, struct kube_op **ret_op, struct err *err) {
  char *path = kube_ref_path(ref, NULL, err, c->name);
  struct kube_op *op;
  struct list_state *s;

  if (!path)
    return err->code;
  op = kube_op_new(c, a, done, userdata);
  s = xcalloc(1, sizeof(*s));
  buf_puts(&s->base, path);
  free(path);
  s->label_selector = lo && !str_is_empty(lo->label_selector) ? xstrdup(lo->label_selector) : NULL;
  s->field_selector = lo && !str_is_empty(lo->field_selector) ? xstrdup(lo->field_selector) : NULL;
  s->page_size = lo && lo->page_size ? lo->page_size : c->opts.list_page_size;
  s->items = doc_new_seq(a);
  op->state = s;
  op->state_free = list_state_free;
  list_page(op);
  if (ret_op)
    *ret_op = op;
  return 0;
}

/* ------------------------------------------------------------ GET */

static void on_object(void *ud, const struct kube_http_result *hr) {
  struct kube_op *op = ud;
  struct doc_node *obj = NULL;

  kube_op_take_http(op, hr);
  if (hr->r == 0 && parse_into(op, hr, op->c->opts.max_response_bytes, &obj) == 0) {
    op->res.object = obj;
    op->res.created = hr->status == 201;
  }
  kube_op_complete(op);
}

static int submit_simple(struct kube_client *c, const struct kube_http_spec *spec,
                         struct doc_arena *a, kube_done_fn done, void *userdata,
                         void (*on_done)(void *ud, const struct kube_http_result *hr),
                         struct kube_op **ret_op, struct err *err) {
  struct kube_op *op = kube_op_new(c, a, done, userdata);

  op->http = kube_http_submit(c, spec, on_done, op, err);
  if (!op->http) {
    kube_op_free(op);
    return err_isset(err) ? err->code : -EINVAL;
  }
  if (ret_op)
    *ret_op = op;
  return 0;
}

int kube_client_get(struct kube_client *c, const struct kube_ref *ref, const char *name,
                    struct doc_arena *a, kube_done_fn done, void *userdata,
                    struct kube_op **ret_op, struct err *err) {
  char *path = kube_ref_path(ref, name ? name : "", err, c->name);
  struct kube_http_spec spec = {.method = KUBE_GET};
  int r;

  if (!path)
    return err->code;
  spec.path = path;
  r = submit_simple(c, &spec, a, done, userdata, on_object, ret_op, err);
  free(path);
  return r;
}

int kube_client_get_path(struct kube_client *c, const char *path, struct doc_arena *a,
                         kube_done_fn done, void *userdata, struct kube_op **ret_op,
                         struct err *err) {
  struct kube_http_spec spec = {.method = KUBE_GET, .path = path};

  if (!path || path[0] != '/' || strstr(path, "/../") || str_has_suffix(path, "/..") ||
      strpbrk(path, " \t\r\n#"))
    return err_set(err, -EINVAL, "cluster %s: '%s' is not an API path", c->name, path ? path : "");
  return submit_simple(c, &spec, a, done, userdata, on_object, ret_op, err);
}

/* ------------------------------------------------------------ APPLY */

/* Send @obj as the JSON body of @spec to @path (taken over), answered with
 * the stored object. */
static int submit_object(struct kube_client *c, struct kube_http_spec *spec, struct buf *path,
                         const struct doc_node *obj, struct doc_arena *a, kube_done_fn done,
                         void *userdata, struct kube_op **ret_op, struct err *err) {
  struct buf body = BUF_INIT;
  int r;

  doc_emit_json(obj, &body, 0);
  spec->path = buf_cstr(path);
  spec->body = body.data;
  spec->body_len = body.len;
  r = submit_simple(c, spec, a, done, userdata, on_object, ret_op, err);
  buf_dispose(path);
  buf_dispose(&body);
  return r;
}

int kube_client_apply(struct kube_client *c, const struct kube_ref *ref,
                      const struct doc_node *obj, unsigned flags, struct doc_arena *a,
                      kube_done_fn done, void *userdata, struct kube_op **ret_op,
                      struct err *err) {
  const char *api_version = doc_map_str(obj, "apiVersion"), *kind = doc_map_str(obj, "kind");
  const char *name = doc_path_str(obj, "metadata.name");
  const char *obj_ns = doc_path_str(obj, "metadata.namespace");
  const char *ns = !str_is_empty(ref->namespace) ? ref->namespace : obj_ns;
  struct kube_ref r2 = *ref;
  struct kube_http_spec spec = {.method = KUBE_PATCH,
                                .content_type = "application/apply-patch+yaml"};
  struct buf path = BUF_INIT;
  char want[300];
  char *p;

  if (!doc_is(obj, DOC_MAP) || str_is_empty(api_version) || str_is_empty(kind) ||
      str_is_empty(name))
    return err_set(err, -EINVAL,
                   "cluster %s: an object to apply needs apiVersion, kind and metadata.name",
                   c->name);
  str_format(want, sizeof(want), "%s%s%s", str_is_empty(ref->group) ? "" : ref->group,
             str_is_empty(ref->group) ? "" : "/", ref->version ? ref->version : "");
  if (strcmp(api_version, want) != 0)
    return err_set(err, -EINVAL,
                   "cluster %s: %s %s has apiVersion %s, but is applied to %s %s", c->name, kind,
                   name, api_version, want, ref->plural ? ref->plural : "");
  if (!str_is_empty(ref->namespace) && !str_is_empty(obj_ns) && strcmp(ref->namespace, obj_ns) != 0)
    return err_set(err, -EINVAL,
                   "cluster %s: %s %s is in namespace %s, but is applied to namespace %s", c->name,
                   kind, name, obj_ns, ref->namespace);
  r2.namespace = ns;
  p = kube_ref_path(&r2, name, err, c->name);
  if (!p)
    return err->code;
  buf_puts(&path, p);
  free(p);
  kube_query_add(&path, "fieldManager", c->field_manager);
  kube_query_add(&path, "force", flags & KUBE_APPLY_FORCE ? "true" : "false");
  kube_query_add(&path, "fieldValidation", "Strict");
  if (flags & KUBE_APPLY_DRY_RUN)
    kube_query_add(&path, "dryRun", "All");
  return submit_object(c, &spec, &path, obj, a, done, userdata, ret_op, err);
}

/* ------------------------------------------------------- POST and PUT */

/* Create (POST to the collection) or replace (PUT to the object) @obj as it
 * is: its metadata.resourceVersion, when set, is the server's precondition. */
static int write_whole(struct kube_client *c, enum kube_method method,
                       const struct kube_ref *ref, const struct doc_node *obj,
                       struct doc_arena *a, kube_done_fn done, void *userdata,
                       struct kube_op **ret_op, struct err *err) {
  const char *name = doc_path_str(obj, "metadata.name");
  struct kube_http_spec spec = {.method = method, .content_type = "application/json"};
  struct buf path = BUF_INIT;
  char *p;

  if (!doc_is(obj, DOC_MAP) || str_is_empty(doc_map_str(obj, "apiVersion")) ||
      str_is_empty(doc_map_str(obj, "kind")) || str_is_empty(name))
    return err_set(err, -EINVAL,
                   "cluster %s: an object to write needs apiVersion, kind and metadata.name",
                   c->name);
  p = kube_ref_path(ref, method == KUBE_PUT ? name : NULL, err, c->name);
  if (!p)
    return err->code;
  buf_puts(&path, p);
  free(p);
  kube_query_add(&path, "fieldManager", c->field_manager);
  kube_query_add(&path, "fieldValidation", "Strict");
  return submit_object(c, &spec, &path, obj, a, done, userdata, ret_op, err);
}

int kube_client_create(struct kube_client *c, const struct kube_ref *ref,
                       const struct doc_node *obj, struct doc_arena *a, kube_done_fn done,
                       void *userdata, struct kube_op **ret_op, struct err *err) {
  return write_whole(c, KUBE_POST, ref, obj, a, done, userdata, ret_op, err);
}

int kube_client_update(struct kube_client *c, const struct kube_ref *ref,
                       const struct doc_node *obj, struct doc_arena *a, kube_done_fn done,
                       void *userdata, struct kube_op **ret_op, struct err *err) {
  return write_whole(c, KUBE_PUT, ref, obj, a, done, userdata, ret_op, err);
}

/* ------------------------------------------------------------ DELETE */

static void on_delete(void *ud, const struct kube_http_result *hr) {
  struct kube_op *op = ud;
  struct doc_node *obj = NULL;

  if (hr->r < 0 && hr->status == 404) {
    /* already gone: what the caller wanted */
    op->http = NULL;
    op->res.status = 404;
    op->res.attempts += hr->attempts;
    op->res.rtt_usec = hr->rtt_usec;
    op->res.protocol = hr->protocol;
    op->res.gone = true;
    kube_op_complete(op);
    return;
  }
  kube_op_take_http(op, hr);
  if (hr->r == 0 && hr->body->len && parse_into(op, hr, op->c->opts.max_response_bytes, &obj) == 0) {
    op->res.object = obj;
    op->res.finalizing = hr->status == 202 ||
                         (!str_eq(doc_map_str(obj, "kind"), "Status") &&
                          doc_path(obj, "metadata.deletionTimestamp") != NULL);
  }
  kube_op_complete(op);
}

int kube_client_delete(struct kube_client *c, const struct kube_ref *ref, const char *name,
                       const struct kube_delete_options *dopt, struct doc_arena *a,
                       kube_done_fn done, void *userdata, struct kube_op **ret_op,
                       struct err *err) {
  static const char *const policies[] = {"Background", "Foreground", "Orphan"};
  struct doc_arena *tmp;
  struct doc_node *o;
  struct kube_http_spec spec = {.method = KUBE_DELETE, .content_type = "application/json"};
  struct buf path = BUF_INIT, body = BUF_INIT;
  char *p = kube_ref_path(ref, name ? name : "", err, c->name);
  int r;

  if (!p)
    return err->code;
  buf_puts(&path, p);
  free(p);
  if (dopt && dopt->dry_run)
    kube_query_add(&path, "dryRun", "All");
  tmp = doc_arena_new();
  o = doc_new_map(tmp);
  doc_map_set(tmp, o, "kind", doc_new_str(tmp, "DeleteOptions"));
  doc_map_set(tmp, o, "apiVersion", doc_new_str(tmp, "v1"));
  doc_map_set(tmp, o, "propagationPolicy",
              doc_new_str(tmp, policies[dopt && dopt->propagation <= KUBE_PROPAGATION_ORPHAN
                                            ? dopt->propagation
                                            : KUBE_PROPAGATION_BACKGROUND]));
  if (dopt && !str_is_empty(dopt->uid)) {
    struct doc_node *pre = doc_new_map(tmp);
    doc_map_set(tmp, pre, "uid", doc_new_str(tmp, dopt->uid));
    doc_map_set(tmp, o, "preconditions", pre);
  }
  doc_emit_json(o, &body, 0);
  doc_arena_free(tmp);
  spec.path = buf_cstr(&path);
  spec.body = body.data;
  spec.body_len = body.len;
  r = submit_simple(c, &spec, a, done, userdata, on_delete, ret_op, err);
  buf_dispose(&path);
  buf_dispose(&body);
  return r;
}

/* ------------------------------------------------------------ sync wrappers */

struct sync {
  bool done;
  struct kube_result *res;
};

static void on_sync(void *ud, const struct kube_result *res) {
  struct sync *s = ud;
  *s->res = *res;
  s->done = true;
}

static int finish_sync(struct kube_client *c, int r, struct kube_op *op, struct sync *s,
                       struct kube_result *res, struct err *err) {
  if (r < 0) {
    memset(res, 0, sizeof(*res));
    res->r = r;
    res->failure = KUBE_FAIL_LOCAL;
    if (err_isset(err))
      res->err = *err;
    return r;
  }
  r = kube_loop_run_until(c->loop, &s->done, SYNC_TIMEOUT_USEC);
  if (r < 0 && !s->done) {
    kube_op_cancel(op);
    memset(res, 0, sizeof(*res));
    res->r = r;
    res->failure = KUBE_FAIL_LOCAL;
    err_set(&res->err, r, "cluster %s: the request did not complete", c->name);
  }
  if (res->r < 0 && err && !err_isset(err))
    *err = res->err;
  return res->r;
}

int kube_client_discover_sync(struct kube_client *c, struct kube_result *res, struct err *err) {
  struct sync s = {.res = res};
  struct kube_op *op = NULL;
  int r = kube_client_discover(c, on_sync, &s, &op, err);
  return finish_sync(c, r, op, &s, res, err);
}

int kube_client_list_sync(struct kube_client *c, const struct kube_ref *ref,
                          const struct kube_list_options *lo, struct doc_arena *a,
                          struct kube_result *res, struct err *err) {
  struct sync s = {.res = res};
  struct kube_op *op = NULL;
  int r = kube_client_list(c, ref, lo, a, on_sync, &s, &op, err);
  return finish_sync(c, r, op, &s, res, err);
}

int kube_client_get_sync(struct kube_client *c, const struct kube_ref *ref, const char *name,
                         struct doc_arena *a, struct kube_result *res, struct err *err) {
  struct sync s = {.res = res};
  struct kube_op *op = NULL;
  int r = kube_client_get(c, ref, name, a, on_sync, &s, &op, err);
  return finish_sync(c, r, op, &s, res, err);
}

int kube_client_apply_sync(struct kube_client *c, const struct kube_ref *ref,
                           const struct doc_node *obj, unsigned flags, struct doc_arena *a,
                           struct kube_result *res, struct err *err) {
  struct sync s = {.res = res};
  struct kube_op *op = NULL;
  int r = kube_client_apply(c, ref, obj, flags, a, on_sync, &s, &op, err);
  return finish_sync(c, r, op, &s, res, err);
}

int kube_client_delete_sync(struct kube_client *c, const struct kube_ref *ref,
                            const char *name, const struct kube_delete_options *dopt,
                            struct doc_arena *a, struct kube_result *res, struct err *err) {
  struct sync s = {.res = res};
  struct kube_op *op = NULL;
  int r = kube_client_delete(c, ref, name, dopt, a, on_sync, &s, &op, err);
  return finish_sync(c, r, op, &s, res, err);
}
