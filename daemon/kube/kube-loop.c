/* The loop: one libcurl multi handle for every cluster, plus timers (retry
 * backoff, deferred completions, watch reconnects) and file descriptors
 * (exec plugins' pipes, the caller's own descriptors), all waited for in one
 * curl_multi_poll().
 *
 * Invariants: user callbacks never run inside a libcurl callback (libcurl
 * forbids calling the multi API from there): write callbacks only buffer,
 * and data and completions are delivered after curl_multi_perform()
 * returned. A timer or fd watch may be disarmed, and its owner freed, by any
 * callback; dispatch re-checks that it is still registered before calling it.
 *
 * When you add a kind of pending work, count it in kube_loop_pending() so
 * kube_loop_run_until_idle() waits for it; when you add a state of a
 * request, tell kube_op_on_the_wire() whether it may be reaching the server
 * (a daemon stop waits only for those).
 */
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <string.h>

#include "base/mem.h"
#include "base/timeutil.h"
#include "kube/kube-int.h"

/* see kube_loop_new() and kube_loop_clients_changed() */
#define KUBE_LOOP_MAX_CACHED_CONNECTIONS 64
#define KUBE_LOOP_CACHED_PER_CLIENT 8
#define KUBE_LOOP_MAX_HOST_CONNECTIONS 16

int kube_loop_new(struct kube_loop **ret, struct err *err) {
  static bool global_done;
  struct kube_loop *l;

  if (!global_done) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      return err_set_src(err, -ENOMEM, ERR_SRC_HTTP, "cannot initialise libcurl");
    if (sodium_init() < 0)
      return err_set(err, -ENOMEM, "cannot initialise libsodium");
    global_done = true;
  }
  l = xcalloc(1, sizeof(*l));
  l->multi = curl_multi_init();
  l->share = curl_share_init();
  if (!l->multi || !l->share) {
    kube_loop_free(l);
    return err_set_src(err, -ENOMEM, ERR_SRC_HTTP, "cannot create the libcurl multi handle");
  }
  curl_multi_setopt(l->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  /* Keep idle connections for the next drift check instead of a TLS
   * handshake each time (the default cache follows the handles in use, so it
   * empties when the loop goes idle), and never open more than a few
   * connections to one API server: over HTTP/1.1 every request in flight
   * needs its own, and a burst must queue, not exhaust the descriptors. */
  curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, (long)KUBE_LOOP_MAX_CACHED_CONNECTIONS);
  curl_multi_setopt(l->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)KUBE_LOOP_MAX_HOST_CONNECTIONS);
  curl_share_setopt(l->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(l->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  while (l->rng == 0)
    randombytes_buf(&l->rng, sizeof(l->rng));
  *ret = l;
  return 0;
}

/* Over HTTP/1.1 every request in flight has a connection of its own, and a
 * cluster's job keeps up to 8 writes (or its LISTs) in flight: a cache
 * smaller than what all clusters use at once closes connections the next
 * request of the same cluster then opens again, with a TLS handshake (a
 * rollout of 100 clusters made one connection per request with a cache of
 * 64). Over HTTP/2 a cluster needs one connection whatever the size. Idle
 * connections still close after libcurl's CURLOPT_MAXAGE_CONN (118 s). */
void kube_loop_clients_changed(struct kube_loop *l, int delta) {
  size_t want;

  if (delta < 0 && l->n_clients == 0)
    return;
  l->n_clients = delta < 0 ? l->n_clients - 1 : l->n_clients + 1;
  want = l->n_clients * KUBE_LOOP_CACHED_PER_CLIENT;
  if (want < KUBE_LOOP_MAX_CACHED_CONNECTIONS)
    want = KUBE_LOOP_MAX_CACHED_CONNECTIONS;
  curl_multi_setopt(l->multi, CURLMOPT_MAXCONNECTS, (long)want);
}

void kube_loop_free(struct kube_loop *l) {
  if (!l)
    return;
  /* clients remove their handles, timers and fds when freed */
  if (l->multi)
    curl_multi_cleanup(l->multi);
  if (l->share)
    curl_share_cleanup(l->share);
  ptrvec_dispose(&l->streams);
  free(l);
}

uint32_t kube_loop_random(struct kube_loop *l) {
  /* xorshift64*: jitter needs spread, not secrecy */
  l->rng ^= l->rng >> 12;
  l->rng ^= l->rng << 25;
  l->rng ^= l->rng >> 27;
  return (uint32_t)((l->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

void kube_timer_arm(struct kube_loop *l, struct kube_timer *t, uint64_t delay_usec) {
  struct kube_timer **pp;

  kube_timer_disarm(l, t);
  t->deadline = time_now_mono_usec() + delay_usec;
  for (pp = &l->timers; *pp && (*pp)->deadline <= t->deadline; pp = &(*pp)->next)
    ;
  t->next = *pp;
  *pp = t;
  t->armed = true;
  l->n_timers++;
}

void kube_timer_disarm(struct kube_loop *l, struct kube_timer *t) {
  if (!t->armed)
    return;
  for (struct kube_timer **pp = &l->timers; *pp; pp = &(*pp)->next)
    if (*pp == t) {
      *pp = t->next;
      break;
    }
  t->next = NULL;
  t->armed = false;
  l->n_timers--;
}

void kube_fdw_add(struct kube_loop *l, struct kube_fdw *w) {
  if (w->armed)
    return;
  w->id = ++l->fdw_ids;
  w->next = l->fdws;
  l->fdws = w;
  w->armed = true;
  l->n_fdws++;
}

void kube_fdw_del(struct kube_loop *l, struct kube_fdw *w) {
  if (!w->armed)
    return;
  for (struct kube_fdw **pp = &l->fdws; *pp; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  w->next = NULL;
  w->armed = false;
  l->n_fdws--;
}

size_t kube_loop_pending(const struct kube_loop *l) {
  return l->n_easy + l->n_timers + l->n_fdws;
}

static unsigned fire_timers(struct kube_loop *l) {
  uint64_t now = time_now_mono_usec();
  unsigned fired = 0;

  /* Fire what is due now; timers armed by these callbacks with no delay run
   * on the next pass (the bound keeps a misbehaving re-arm from spinning). */
  while (l->timers && l->timers->deadline <= now && fired < 10000) {
    struct kube_timer *t = l->timers;
    kube_timer_disarm(l, t);
    fired++;
    t->fire(t);
  }
  return fired;
}

static short to_curl_events(short ev) {
  short out = 0;
  if (ev & POLLIN)
    out |= CURL_WAIT_POLLIN;
  if (ev & POLLPRI)
    out |= CURL_WAIT_POLLPRI;
  if (ev & POLLOUT)
    out |= CURL_WAIT_POLLOUT;
  return out;
}

static short from_curl_events(short ev) {
  short out = 0;
  if (ev & CURL_WAIT_POLLIN)
    out |= POLLIN;
  if (ev & CURL_WAIT_POLLPRI)
    out |= POLLPRI;
  if (ev & CURL_WAIT_POLLOUT)
    out |= POLLOUT;
  return out;
}

/* The watch registered under @id, if it still is (its owner may have been
 * freed by an earlier callback of this pass). */
static struct kube_fdw *fdw_by_id(const struct kube_loop *l, uint64_t id) {
  for (struct kube_fdw *x = l->fdws; x; x = x->next)
    if (x->id == id)
      return x;
  return NULL;
}

static void drain_streams(struct kube_loop *l) {
  while (l->streams.n > 0) {
    struct kube_http *h = l->streams.items[--l->streams.n];
    h->on_stream_list = false;
    (void)kube_http_stream_deliver(h);
  }
}

static void drain_done(struct kube_loop *l) {
  CURLMsg *msg;
  int left;

  while ((msg = curl_multi_info_read(l->multi, &left)) != NULL) {
    CURL *easy = msg->easy_handle;
    CURLcode code = msg->data.result;
    struct kube_http *h = NULL;

    if (msg->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&h);
    /* a stream's last bytes are delivered before its end */
    if (h && h->on_stream_list) {
      for (size_t i = 0; i < l->streams.n; i++)
        if (l->streams.items[i] == h) {
          l->streams.items[i] = l->streams.items[--l->streams.n];
          break;
        }
      h->on_stream_list = false;
      if (!kube_http_stream_deliver(h))
        continue; /* the consumer cancelled it: freed */
    }
    if (h)
      kube_http_finished(h, code);
  }
}

int kube_loop_run_once(struct kube_loop *l, uint64_t max_wait_usec, struct pollfd *extra,
                       size_t n_extra) {
  struct curl_waitfd stack[16], *w = stack;
  uint64_t snap[16], *fdws = snap;
  size_t n = 0, n_fd = 0;
  uint64_t wait = max_wait_usec, now;
  unsigned progress;
  int running, ready = 0, ms;
  CURLMcode mc;

  l->depth++;
  progress = fire_timers(l);
  now = time_now_mono_usec();
  if (progress)
    wait = 0;
  else if (l->timers)
    wait = l->timers->deadline <= now ? 0
           : l->timers->deadline - now < wait ? l->timers->deadline - now : wait;

  if (n_extra + l->n_fdws > ARRAY_SIZE(stack))
    w = xcalloc(n_extra + l->n_fdws, sizeof(*w));
  if (l->n_fdws > ARRAY_SIZE(snap))
    fdws = xcalloc(l->n_fdws, sizeof(*fdws));
  for (size_t i = 0; i < n_extra; i++) {
    w[n].fd = extra[i].fd;
    w[n].events = to_curl_events(extra[i].events);
    w[n].revents = 0;
    extra[i].revents = 0;
    n++;
  }
  for (struct kube_fdw *f = l->fdws; f; f = f->next) {
    w[n].fd = f->fd;
    w[n].events = to_curl_events(f->events);
    w[n].revents = 0;
    fdws[n_fd++] = f->id;
    n++;
  }
  ms = wait >= (uint64_t)INT_MAX * 1000 ? INT_MAX : (int)((wait + 999) / 1000);
  mc = curl_multi_poll(l->multi, n ? w : NULL, (unsigned)n, ms, NULL);
  if (mc != CURLM_OK) {
    if (w != stack)
      free(w);
    if (fdws != snap)
      free(fdws);
    l->depth--;
    return -EIO;
  }
  for (size_t i = 0; i < n_extra; i++) {
    extra[i].revents = from_curl_events(w[i].revents);
    if (extra[i].revents)
      ready++;
  }
  for (size_t i = 0; i < n_fd; i++) {
    short rev = from_curl_events(w[n_extra + i].revents);
    struct kube_fdw *f = rev ? fdw_by_id(l, fdws[i]) : NULL;
    /* libcurl reports a hang-up as readable; the owner then reads EOF */
    if (f)
      f->ready(f, rev);
  }
  if (w != stack)
    free(w);
  if (fdws != snap)
    free(fdws);

  curl_multi_perform(l->multi, &running);
  drain_streams(l);
  drain_done(l);
  fire_timers(l);
  l->depth--;
  return ready;
}

bool kube_op_on_the_wire(const struct kube_op *op) {
  /* WAIT_RETRY is the backoff sleep between two attempts (or a failure
   * about to be delivered); NEW and WAIT_CRED have sent nothing yet */
  return op && op->http && op->http->state == KUBE_H_ACTIVE;
}

int kube_loop_run_until(struct kube_loop *l, const bool *done, uint64_t timeout_usec) {
  uint64_t deadline = time_now_mono_usec() + timeout_usec;

  while (!*done) {
    uint64_t now = time_now_mono_usec();
    int r;

    if (now >= deadline)
      return -ETIMEDOUT;
    if (kube_loop_pending(l) == 0)
      return -EIO; /* nothing can complete it: a bug */
    r = kube_loop_run_once(l, deadline - now, NULL, 0);
    if (r < 0)
      return r;
  }
  return 0;
}

int kube_loop_run_until_idle(struct kube_loop *l, uint64_t timeout_usec) {
  uint64_t deadline = time_now_mono_usec() + timeout_usec;

  while (kube_loop_pending(l) > 0) {
    uint64_t now = time_now_mono_usec();
    int r;

    if (now >= deadline)
      return -ETIMEDOUT;
    r = kube_loop_run_once(l, deadline - now, NULL, 0);
    if (r < 0)
      return r;
  }
  return 0;
}
