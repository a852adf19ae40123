/* WATCH: a long-lived stream of events for one collection, kept alive.
 *
 * A watch without a starting resourceVersion first LISTs (paged) and
 * delivers the items as KUBE_WATCH_RELISTED, then watches from the list's
 * resourceVersion with allowWatchBookmarks=true and timeoutSeconds. Every
 * event (bookmarks included) advances the resourceVersion it resumes from.
 *
 * Ends of a stream and what follows:
 *   - clean end (timeoutSeconds elapsed): reconnect at once from the last RV;
 *   - 410 Gone, as an HTTP status or as an ERROR event: re-list, RELISTED;
 *   - a broken connection, a 5xx/429 that outlived the request retries, a
 *     stream that does not parse: reconnect after the jittered backoff;
 *     after opts.max_attempts consecutive failures, FAILED;
 *   - 401 (after the exec plugin's re-run), 403, 404, 400: FAILED at once.
 * A watch that FAILED stays allocated, silent, until kube_watch_stop().
 *
 * Invariants: the consumer's callback may stop the watch (freed after the
 * callback returns); each event's tree lives in its own arena, freed after
 * the callback (doc_copy what you keep).
 *
 * When you change the reconnect rules, also touch kube.h and the watch test
 * of tests/integration/test_kube.py.
 */
#include <errno.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "kube/kube-int.h"

#define MAX_DEPTH 512
#define QUICK_END_USEC (1000 * 1000ULL)

int kube_frame_next(struct kube_frame *f, const char *d, size_t len, size_t *off, size_t *flen) {
  for (size_t i = f->pos; i < len; i++) {
    char ch = d[i];

    if (!f->started) {
      if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
        continue;
      if (ch != '{')
        return -EBADMSG;
      f->started = true;
      f->start = i;
      f->depth = 1;
      continue;
    }
    if (f->in_str) {
      if (f->esc)
        f->esc = false;
      else if (ch == '\\')
        f->esc = true;
      else if (ch == '"')
        f->in_str = false;
      continue;
    }
    switch (ch) {
    case '"':
      f->in_str = true;
      break;
    case '{':
    case '[':
      if (f->depth >= MAX_DEPTH)
        return -EBADMSG;
      if (ch == '[')
        f->arrays[f->depth / 64] |= 1ULL << (f->depth % 64);
      else
        f->arrays[f->depth / 64] &= ~(1ULL << (f->depth % 64));
      f->depth++;
      break;
    case '}':
    case ']': {
      unsigned top = f->depth - 1;
      bool is_array = (f->arrays[top / 64] >> (top % 64)) & 1;
      if (is_array != (ch == ']'))
        return -EBADMSG;
      if (--f->depth == 0) {
        *off = f->start;
        *flen = i + 1 - f->start;
        memset(f, 0, sizeof(*f));
        return 1;
      }
      break;
    }
    default:
      break;
    }
  }
  f->pos = len;
  return 0;
}

struct kube_watch {
  struct kube_client *c;
  char *group, *version, *plural, *namespace;
  char *label_selector, *field_selector;
  unsigned timeout_sec;
  char *rv;
  kube_watch_fn fn;
  void *ud;
  struct kube_http *h;
  struct kube_frame frame;
  struct kube_op *list_op;
  struct doc_arena *list_arena;
  struct kube_timer timer;
  bool timer_relists;           /* what the timer does: re-list or reconnect */
  unsigned failures, connections;
  enum kube_watch_state state;
  uint64_t state_since;         /* mono */
  uint64_t connected_at;
  bool got_event, failed;
  unsigned in_callback;
  bool stop_requested;
  struct err err;
  struct kube_watch *next, *prev;
};

static struct kube_ref ref_of(const struct kube_watch *w) {
  struct kube_ref r = {.group = w->group, .version = w->version, .plural = w->plural,
                       .namespace = w->namespace};
  return r;
}

static void watch_free(struct kube_watch *w) {
  struct kube_client *c = w->c;

  if (w->h)
    kube_http_cancel(w->h);
  if (w->list_op)
    kube_op_cancel(w->list_op);
  doc_arena_free(w->list_arena);
  kube_timer_disarm(c->loop, &w->timer);
  if (w->prev)
    w->prev->next = w->next;
  else if (c->watches == w)
    c->watches = w->next;
  if (w->next)
    w->next->prev = w->prev;
  free(w->group);
  free(w->version);
  free(w->plural);
  free(w->namespace);
  free(w->label_selector);
  free(w->field_selector);
  free(w->rv);
  free(w);
}

/* Run the consumer; false when it stopped the watch (which is now freed). */
static bool deliver(struct kube_watch *w, enum kube_watch_type type, struct doc_node *obj,
                    const struct err *err) {
  struct kube_watch_event ev = {.type = type, .object = obj, .resource_version = w->rv, .err = err};

  w->in_callback++;
  w->fn(w->ud, &ev);
  w->in_callback--;
  if (w->stop_requested && w->in_callback == 0) {
    watch_free(w);
    return false;
  }
  return !w->stop_requested;
}

static void set_state(struct kube_watch *w, enum kube_watch_state s) {
  if (w->state != s || !w->state_since) {
    w->state = s;
    w->state_since = time_now_mono_usec();
  }
}

static void set_rv(struct kube_watch *w, const char *rv) {
  if (str_is_empty(rv))
    return;
  free(w->rv);
  w->rv = xstrdup(rv);
}

static void connect_stream(struct kube_watch *w);
static void relist(struct kube_watch *w);

static void fail_for_good(struct kube_watch *w, const struct err *err) {
  w->failed = true;
  set_state(w, KUBE_WATCH_STATE_FAILED);
  w->err = *err;
  (void)deliver(w, KUBE_WATCH_FAILED, NULL, &w->err);
}

/* A connection or list failed: back off and try again, or give up. */
static void after_failure(struct kube_watch *w, const struct err *err, bool relist_next) {
  struct kube_client *c = w->c;

  w->failures++;
  if (w->failures >= c->opts.max_attempts) {
    struct err e = *err;
    size_t len = strlen(e.msg);
    str_format(e.msg + len, sizeof(e.msg) - len, " (watch gave up after %u failed attempts)",
               w->failures);
    fail_for_good(w, &e);
    return;
  }
  w->timer_relists = relist_next;
  set_state(w, KUBE_WATCH_STATE_BACKOFF);
  kube_timer_arm(c->loop, &w->timer,
                 kube_backoff_delay(&c->opts, w->failures, -1, kube_loop_random(c->loop)));
}

static bool permanent(long status) {
  return status == 400 || status == 401 || status == 403 || status == 404 || status == 405 ||
         status == 422;
}

static void on_timer(struct kube_timer *t) {
  struct kube_watch *w = (struct kube_watch *)((char *)t - offsetof(struct kube_watch, timer));

  if (w->timer_relists)
    relist(w);
  else
    connect_stream(w);
}

/* An ERROR event: 410 re-lists; anything else is a failed connection. */
static void on_error_event(struct kube_watch *w, const char *frame, size_t len,
                           const struct doc_node *status) {
  const struct doc_node *code = doc_map_get(status, "code");
  long st = doc_is(code, DOC_INT) ? (long)code->u.i : 500;
  struct err e = ERR_INIT;
  char what[300];
  const char *secrets[9];

  kube_http_cancel(w->h);
  w->h = NULL;
  if (st == 410 || str_eq(doc_map_str(status, "reason"), "Expired") ||
      str_eq(doc_map_str(status, "reason"), "Gone")) {
    relist(w);
    return;
  }
  str_format(what, sizeof(what), "WATCH %s", w->plural);
  kube_auth_secrets(&w->c->auth, secrets, ARRAY_SIZE(secrets));
  kube_status_error(&e, w->c->name, what, st, "application/json", frame, len, secrets);
  if (permanent(st))
    fail_for_good(w, &e);
  else
    after_failure(w, &e, false);
}

static void on_data(void *ud, struct kube_http *h) {
  struct kube_watch *w = ud;
  size_t off, flen;
  int r;

  for (;;) {
    const char *data = h->resp.data + h->stream_used;
    size_t len = h->resp.len - h->stream_used;
    struct doc_arena *a;
    struct doc_node *ev = NULL, *obj;
    const char *type;
    enum kube_watch_type t;
    struct err e = ERR_INIT;
    bool alive;

    r = kube_frame_next(&w->frame, data, len, &off, &flen);
    if (r == 0)
      return;
    if (r < 0) {
      err_set_src(&e, -EBADMSG, ERR_SRC_KUBE,
                  "cluster %s: WATCH %s: the stream is not a sequence of JSON events", w->c->name,
                  w->plural);
      kube_http_cancel(h);
      w->h = NULL;
      after_failure(w, &e, false);
      return;
    }
    a = doc_arena_new();
    if (kube_parse_json(a, "watch event", data + off, flen, w->c->opts.max_response_bytes, &ev,
                        &e) < 0 ||
        !doc_is(doc_map_get(ev, "object"), DOC_MAP) || !doc_map_str(ev, "type")) {
      struct err e2 = ERR_INIT;
      err_set_src(&e2, -EBADMSG, ERR_SRC_KUBE, "cluster %s: WATCH %s: an event does not parse: %s",
                  w->c->name, w->plural, err_isset(&e) ? e.msg : "no type or object");
      doc_arena_free(a);
      kube_http_cancel(h);
      w->h = NULL;
      after_failure(w, &e2, false);
      return;
    }
    h->stream_used += off + flen;
    type = doc_map_str(ev, "type");
    obj = doc_map_get(ev, "object");
    if (strcmp(type, "ERROR") == 0) {
      /* the frame text is the Status the server sent */
      struct buf frame = BUF_INIT;
      doc_emit_json(obj, &frame, 0);
      on_error_event(w, frame.data, frame.len, obj);
      buf_dispose(&frame);
      doc_arena_free(a);
      return;
    }
    if (strcmp(type, "ADDED") == 0)
      t = KUBE_WATCH_ADDED;
    else if (strcmp(type, "MODIFIED") == 0)
      t = KUBE_WATCH_MODIFIED;
    else if (strcmp(type, "DELETED") == 0)
      t = KUBE_WATCH_DELETED;
    else if (strcmp(type, "BOOKMARK") == 0)
      t = KUBE_WATCH_BOOKMARK;
    else {
      doc_arena_free(a); /* an event type from the future: skip it */
      continue;
    }
    set_rv(w, doc_path_str(obj, "metadata.resourceVersion"));
    w->got_event = true;
    w->failures = 0;
    alive = deliver(w, t, obj, NULL);
    doc_arena_free(a);
    if (!alive)
      return; /* stopped: the stream was cancelled by kube_watch_stop */
  }
}

static void on_end(void *ud, const struct kube_http_result *hr) {
  struct kube_watch *w = ud;
  bool quick = time_now_mono_usec() - w->connected_at < QUICK_END_USEC;

  w->h = NULL;
  if (hr->r == 0) {
    /* timeoutSeconds elapsed (or the server closed the stream cleanly) */
    if (w->got_event || !quick) {
      w->failures = 0;
      connect_stream(w);
    } else {
      struct err e = ERR_INIT;
      err_set_src(&e, -ECONNRESET, ERR_SRC_KUBE,
                  "cluster %s: WATCH %s: the server ended the stream at once", w->c->name,
                  w->plural);
      after_failure(w, &e, false);
    }
    return;
  }
  if (hr->status == 410) {
    relist(w);
    return;
  }
  if (permanent(hr->status))
    fail_for_good(w, hr->err);
  else
    after_failure(w, hr->err, false);
}

static void connect_stream(struct kube_watch *w) {
  struct kube_ref ref = ref_of(w);
  struct kube_http_spec spec = {.method = KUBE_GET, .stream = true};
  struct buf path = BUF_INIT;
  struct err e = ERR_INIT;
  char num[32];
  char *base = kube_ref_path(&ref, NULL, &e, w->c->name);

  if (!base) {
    fail_for_good(w, &e);
    return;
  }
  buf_puts(&path, base);
  free(base);
  kube_query_add(&path, "watch", "true");
  kube_query_add(&path, "allowWatchBookmarks", "true");
  if (w->rv)
    kube_query_add(&path, "resourceVersion", w->rv);
  str_format(num, sizeof(num), "%u", w->timeout_sec);
  kube_query_add(&path, "timeoutSeconds", num);
  if (w->label_selector)
    kube_query_add(&path, "labelSelector", w->label_selector);
  if (w->field_selector)
    kube_query_add(&path, "fieldSelector", w->field_selector);
  spec.path = buf_cstr(&path);
  /* the server ends the stream after timeoutSeconds; this is the backstop */
  spec.timeout_usec = ((uint64_t)w->timeout_sec + 60) * 1000000ULL;
  memset(&w->frame, 0, sizeof(w->frame));
  w->got_event = false;
  w->connected_at = time_now_mono_usec();
  w->h = kube_http_submit(w->c, &spec, on_end, w, &e);
  buf_dispose(&path);
  if (!w->h) {
    fail_for_good(w, &e);
    return;
  }
  w->h->data = on_data;
  w->connections++;
  set_state(w, KUBE_WATCH_STATE_WATCHING);
}

static void on_list(void *ud, const struct kube_result *res) {
  struct kube_watch *w = ud;
  struct doc_arena *a = w->list_arena;

  w->list_op = NULL;
  w->list_arena = NULL;
  if (res->r < 0) {
    struct err e = res->err;
    doc_arena_free(a);
    if (permanent(res->status))
      fail_for_good(w, &e);
    else
      after_failure(w, &e, true);
    return;
  }
  set_rv(w, res->resource_version);
  w->failures = 0;
  if (!deliver(w, KUBE_WATCH_RELISTED, res->object, NULL)) {
    doc_arena_free(a);
    return;
  }
  doc_arena_free(a);
  connect_stream(w);
}

static void relist(struct kube_watch *w) {
  struct kube_ref ref = ref_of(w);
  struct kube_list_options lo = {.label_selector = w->label_selector,
                                 .field_selector = w->field_selector};
  struct err e = ERR_INIT;

  xfree(w->rv);
  set_state(w, KUBE_WATCH_STATE_LISTING);
  w->list_arena = doc_arena_new();
  if (kube_client_list(w->c, &ref, &lo, w->list_arena, on_list, w, &w->list_op, &e) < 0) {
    doc_arena_free(w->list_arena);
    w->list_arena = NULL;
    fail_for_good(w, &e);
  }
}

int kube_client_watch(struct kube_client *c, const struct kube_ref *ref,
                      const struct kube_watch_options *wo, kube_watch_fn fn, void *userdata,
                      struct kube_watch **ret, struct err *err) {
  struct kube_watch *w;
  char *check = kube_ref_path(ref, NULL, err, c->name);

  if (!check)
    return err->code;
  free(check);
  w = xcalloc(1, sizeof(*w));
  w->c = c;
  w->group = xstrdup(ref->group ? ref->group : "");
  w->version = xstrdup(ref->version);
  w->plural = xstrdup(ref->plural);
  w->namespace = str_is_empty(ref->namespace) ? NULL : xstrdup(ref->namespace);
  w->label_selector = wo && !str_is_empty(wo->label_selector) ? xstrdup(wo->label_selector) : NULL;
  w->field_selector = wo && !str_is_empty(wo->field_selector) ? xstrdup(wo->field_selector) : NULL;
  w->timeout_sec = wo && wo->timeout_sec ? wo->timeout_sec : c->opts.watch_timeout_sec;
  w->fn = fn;
  w->ud = userdata;
  w->timer.fire = on_timer;
  w->next = c->watches;
  if (c->watches)
    c->watches->prev = w;
  c->watches = w;
  if (wo && !str_is_empty(wo->resource_version)) {
    w->rv = xstrdup(wo->resource_version);
    /* start from the loop, so no event arrives before this returns */
    w->timer_relists = false;
    set_state(w, KUBE_WATCH_STATE_WATCHING);
    kube_timer_arm(c->loop, &w->timer, 0);
  } else {
    w->timer_relists = true;
    set_state(w, KUBE_WATCH_STATE_LISTING);
    kube_timer_arm(c->loop, &w->timer, 0);
  }
  *ret = w;
  return 0;
}

void kube_watch_stop(struct kube_watch *w) {
  if (!w)
    return;
  if (w->in_callback) {
    w->stop_requested = true;
    if (w->h) {
      kube_http_cancel(w->h);
      w->h = NULL;
    }
    if (w->list_op) {
      kube_op_cancel(w->list_op);
      w->list_op = NULL;
    }
    kube_timer_disarm(w->c->loop, &w->timer);
    return;
  }
  watch_free(w);
}

unsigned kube_watch_connections(const struct kube_watch *w) { return w->connections; }

const char *kube_watch_state_name(enum kube_watch_state s) {
  switch (s) {
  case KUBE_WATCH_STATE_LISTING:
    return "listing";
  case KUBE_WATCH_STATE_WATCHING:
    return "watching";
  case KUBE_WATCH_STATE_BACKOFF:
    return "backing off";
  case KUBE_WATCH_STATE_FAILED:
    return "failed";
  }
  return "unknown";
}

enum kube_watch_state kube_watch_state(const struct kube_watch *w, uint64_t *since) {
  if (since)
    *since = w->state_since;
  return w->state;
}
