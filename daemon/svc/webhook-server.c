/* The webhook doorbell's server (see webhook.h): one thread with a poll
 * loop over the listening socket and at most WEBHOOK_MAX_CONNS connections.
 * A verdict that is a doorbell sets a flag and writes the eventfd the main
 * loop polls; the main loop then polls the config repo at once (after the
 * poll in progress, if one is).
 *
 * Why a thread and not the main loop's poll: the main loop also appends to
 * the ledger and writes state.json with fsync, and waits on nothing but
 * its deadline (at most a second); an answer to a forge (GitHub gives up
 * after 10 seconds) should not wait for those, and the work a request
 * costs (an HMAC over up to 1 MiB, a JSON parse) and whatever a stranger's
 * connections do should never delay the clusters' requests or the
 * watchdog ping. The thread shares with the main loop only the counters
 * (atomics), the secret and the followed ref (a mutex, taken by a reload),
 * and the doorbell (a flag and the eventfd).
 *
 * Bounds, so no client holds anything for long: WEBHOOK_MAX_CONNS
 * connections (the listener is not polled while they are all taken; the
 * kernel's backlog holds the next ones), READ_USEC for the whole request
 * (head and body: a client sending a byte a second is cut with a 408),
 * WRITE_USEC for the answer and the lingering close after it, the
 * WEBHOOK_MAX_HEAD and WEBHOOK_MAX_BODY of webhook.c, and a token bucket
 * over the requests whose head parsed (429 with Retry-After). One request
 * per connection (Connection: close). The head buffer, which holds
 * GitLab's token, is wiped when a connection closes.
 *
 * Log lines are rate-limited (a bucket of their own), one line per request
 * at most: doorbells and pings at info, refusals at info, bad signatures at
 * warning, other refs at debug. They name the forge, the delivery id and the
 * peer address, never a secret or a received signature.
 */
#include "svc/webhook.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "svc/hostconfig.h"

#define WEBHOOK_MAX_CONNS 16
#define READ_USEC (10 * USEC_PER_SEC)
#define WRITE_USEC (5 * USEC_PER_SEC)
#define LINGER_USEC (2 * USEC_PER_SEC)
#define STATS_WAKE_USEC USEC_PER_SEC   /* counters alone wake the main loop at most this often */
#define REQUEST_BURST 20.0
#define REQUEST_PER_SEC 5.0
#define LOG_BURST 20.0
#define LOG_PER_SEC (1.0 / 3.0)

enum conn_state { CONN_FREE, CONN_HEAD, CONN_BODY, CONN_WRITE, CONN_LINGER };

struct conn {
  enum conn_state state;
  int fd;
  uint64_t deadline;           /* mono */
  char peer[64];
  char head[WEBHOOK_MAX_HEAD];
  size_t head_len;
  struct webhook_request req;
  char *body;
  size_t body_len;
  char out[512];               /* the answer: no allocation is left after the verdict */
  size_t out_len, out_off;
};

struct webhook_server {
  pthread_t thread;
  bool started;
  int listen_fd;
  bool activated;              /* the socket came from systemd */
  char address[80];
  int efd;                     /* to the main loop */
  int wake;                    /* to the thread: stop */
  atomic_bool stop, doorbell, changed;
  _Atomic unsigned long requests[_WEBHOOK_RESULT_MAX];
  _Atomic uint64_t last_doorbell;
  pthread_mutex_t lock;        /* secret, ref */
  struct buf secret;
  char *ref;
  /* the thread's own */
  struct conn conns[WEBHOOK_MAX_CONNS];
  size_t n_conns;
  struct webhook_bucket bucket, log_bucket;
  unsigned long log_suppressed;
  bool doorbell_pending, stats_pending;
  uint64_t next_stats_wake;
  uint64_t accept_paused_until;  /* out of descriptors: the listener rests a second */
};

/* ---- socket activation ---- */

/* The socket systemd passed (sd_listen_fds(3), without libsystemd): the one
 * named "webhook" in LISTEN_FDNAMES, or the only one. Returns the fd, -1
 * when there is none for this process, or -errno with @err. The variables
 * are left in place (other threads may read the environment); children see
 * another pid in LISTEN_PID and ignore them, and every passed fd is made
 * close-on-exec. */
static int systemd_socket(struct err *err) {
  const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
  const char *names = getenv("LISTEN_FDNAMES");
  uint64_t pid, n;
  int fd = -1, type = 0, listening = 0;
  socklen_t len = sizeof(int);

  if (!pid_s || !fds_s || str_to_u64(pid_s, UINT32_MAX, &pid) < 0 ||
      pid != (uint64_t)getpid() || str_to_u64(fds_s, 1024, &n) < 0 || n == 0)
    return -1;
  for (uint64_t i = 0; i < n; i++) {
    int flags = fcntl(3 + (int)i, F_GETFD);
    if (flags >= 0)
      fcntl(3 + (int)i, F_SETFD, flags | FD_CLOEXEC);
  }
  if (names) {
    const char *p = names;
    for (uint64_t i = 0; i < n && p; i++) {
      const char *end = strchr(p, ':');
      size_t k = end ? (size_t)(end - p) : strlen(p);
      if (k == 7 && memcmp(p, "webhook", 7) == 0) {
        fd = 3 + (int)i;
        break;
      }
      p = end ? end + 1 : NULL;
    }
  }
  if (fd < 0 && n == 1)
    fd = 3;
  if (fd < 0)
    return -1;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM ||
      (len = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0) ||
      !listening)
    return err_set(err, -ENOTSOCK, "the socket systemd passed for the webhook (fd %d) is not a "
                                   "listening stream socket (ListenStream= in the .socket unit)",
                   fd);
  return fd;
}

static void format_address(const struct sockaddr_storage *ss, char *buf, size_t size,
                           bool with_port) {
  char host[INET6_ADDRSTRLEN] = "?";

  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    if (with_port)
      str_format(buf, size, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
    else
      str_copy(buf, size, host);
  } else if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    if (with_port)
      str_format(buf, size, "%s:%u", host, (unsigned)ntohs(a->sin_port));
    else
      str_copy(buf, size, host);
  } else {
    str_copy(buf, size, ss->ss_family == AF_UNIX ? "a local socket" : "?");
  }
}

static int listen_on(const char *listen_s, struct err *err) {
  struct sockaddr_storage ss;
  socklen_t len;
  const char *why;
  int fd, one = 1;

  if (webhook_listen_parse(listen_s, &ss, &len, &why) < 0)
    return err_set(err, -EINVAL, "repository.webhook.listen '%s' %s", listen_s, why);
  fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return err_set_errno(err, -errno, "cannot create the webhook socket");
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (ss.ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0) {
    int r = err_set_errno(err, -errno, "cannot listen on %s for the webhook", listen_s);
    close(fd);
    return r;
  }
  return fd;
}

/* ---- connections ---- */

static void conn_close(struct webhook_server *s, struct conn *c) {
  if (c->state == CONN_FREE)
    return;
  close(c->fd);
  mem_wipe(c->head, c->head_len); /* GitLab's token is in it */
  free(c->body);
  memset(&c->req, 0, sizeof(c->req));
  c->body = NULL;
  c->body_len = c->head_len = c->out_len = c->out_off = 0;
  c->fd = -1;
  c->state = CONN_FREE;
  s->n_conns--;
}

/* Tell the main loop what this turn of the loop counted, as its last step
 * before poll(): a doorbell makes the Git worker fork its fetch helper at
 * once, and gitsrc's child (fork without exec) must not inherit a lock
 * this thread holds mid-request (an allocator's, OpenSSL's). Counters alone
 * wake it at most every STATS_WAKE_USEC. */
static void wake_main(struct webhook_server *s, uint64_t now) {
  uint64_t one = 1;

  if (!s->doorbell_pending && (!s->stats_pending || now < s->next_stats_wake))
    return;
  atomic_store(&s->changed, true);
  if (s->doorbell_pending)
    atomic_store(&s->doorbell, true);
  s->doorbell_pending = s->stats_pending = false;
  s->next_stats_wake = now + STATS_WAKE_USEC;
  if (write(s->efd, &one, sizeof(one)) < 0) {
    /* EAGAIN: the counter is already far from zero, the main loop will wake */
  }
}

static void log_verdict(struct webhook_server *s, const struct conn *c,
                        const struct webhook_verdict *v, uint64_t now) {
  char delivery[80] = "", id[72], suppressed[64] = "";
  const char *forge = webhook_forge_name(v->forge);
  int prio = v->doorbell || v->result == WEBHOOK_RESULT_PING ? LOG_INFO
             : v->result == WEBHOOK_RESULT_UNAUTHORIZED     ? LOG_WARNING
             : v->result == WEBHOOK_RESULT_IGNORED          ? LOG_DEBUG
                                                            : LOG_INFO;

  if (prio > log_get_max_level())
    return;
  if (webhook_bucket_take(&s->log_bucket, now) != 0) {
    s->log_suppressed++;
    return;
  }
  if (s->log_suppressed)
    str_format(suppressed, sizeof(suppressed), " (%lu similar lines suppressed)",
               s->log_suppressed);
  s->log_suppressed = 0;
  if (c->req.delivery.p) {
    char raw[65];
    size_t n = c->req.delivery.len < sizeof(raw) - 1 ? c->req.delivery.len : sizeof(raw) - 1;
    memcpy(raw, c->req.delivery.p, n);
    raw[n] = '\0';
    str_format(delivery, sizeof(delivery), " (delivery %s)", str_escape(id, sizeof(id), raw));
  }
  if (v->doorbell)
    log_ctx_emit(prio, NULL, "webhook: %s push to %s%s from %s: polling the config repo now%s",
                 forge, v->ref, delivery, c->peer, suppressed);
  else if (v->result == WEBHOOK_RESULT_IGNORED && v->ref[0])
    log_ctx_emit(prio, NULL, "webhook: %s push to %s%s from %s ignored: not the followed ref%s",
                 forge, v->ref, delivery, c->peer, suppressed);
  else
    log_ctx_emit(prio, NULL, "webhook: %s request%s from %s: %d %s%s",
                 v->forge == WEBHOOK_FORGE_NONE ? "a" : forge, delivery, c->peer, v->status,
                 v->reason, suppressed);
}

/* Count, log and start answering @v. */
static void answer(struct webhook_server *s, struct conn *c, const struct webhook_verdict *v,
                   uint64_t now) {
  atomic_fetch_add(&s->requests[v->result], 1);
  if (v->doorbell)
    atomic_store(&s->last_doorbell, time_now_real_usec());
  log_verdict(s, c, v, now);
  s->stats_pending = true;
  s->doorbell_pending |= v->doorbell;
  {
    struct buf b = BUF_INIT;
    webhook_response(v, &b);
    c->out_len = b.len < sizeof(c->out) ? b.len : sizeof(c->out); /* reasons are short */
    memcpy(c->out, b.data, c->out_len);
    buf_dispose(&b);
  }
  c->out_off = 0;
  c->state = CONN_WRITE;
  c->deadline = now + WRITE_USEC;
}

static void judge(struct webhook_server *s, struct conn *c, uint64_t now) {
  struct webhook_verdict v;

  pthread_mutex_lock(&s->lock);
  webhook_judge(&c->req, c->body, c->body_len, (const uint8_t *)s->secret.data, s->secret.len,
                s->ref, &v);
  pthread_mutex_unlock(&s->lock);
  free(c->body);
  c->body = NULL;
  answer(s, c, &v, now);
}

/* The head is complete: rate, then the body. */
static void head_done(struct webhook_server *s, struct conn *c, uint64_t now) {
  struct webhook_verdict v = {0};
  size_t extra = c->head_len - c->req.head_len;
  unsigned wait = webhook_bucket_take(&s->bucket, now);

  if (wait) {
    v.status = 429;
    v.result = WEBHOOK_RESULT_RATE_LIMITED;
    v.retry_after = wait;
    str_copy(v.reason, sizeof(v.reason), "too many webhook requests; retry later");
    answer(s, c, &v, now);
    return;
  }
  if (c->req.expect_continue && extra == 0) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) !=
        (ssize_t)(sizeof(cont) - 1)) {
      conn_close(s, c);
      return;
    }
  }
  c->body = xmalloc(c->req.content_length + 1);
  if (extra > c->req.content_length)
    extra = (size_t)c->req.content_length; /* pipelined bytes: one request per connection */
  memcpy(c->body, c->head + c->req.head_len, extra);
  c->body_len = extra;
  c->state = CONN_BODY;
  if (c->body_len == c->req.content_length)
    judge(s, c, now);
}

static void read_head(struct webhook_server *s, struct conn *c, uint64_t now) {
  struct webhook_verdict v;
  ssize_t n = recv(c->fd, c->head + c->head_len, sizeof(c->head) - c->head_len, 0);
  int r;

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    conn_close(s, c); /* gone before a whole head: nothing to answer */
    return;
  }
  /* parse again only when a line may have ended (or the buffer is full) */
  if (c->head_len > 0 && !memchr(c->head + c->head_len, '\n', (size_t)n) &&
      c->head_len + (size_t)n < sizeof(c->head)) {
    c->head_len += (size_t)n;
    return;
  }
  c->head_len += (size_t)n;
  r = webhook_head_parse(c->head, c->head_len, &c->req, &v);
  if (r < 0)
    answer(s, c, &v, now);
  else if (r > 0)
    head_done(s, c, now);
}

static void read_body(struct webhook_server *s, struct conn *c, uint64_t now) {
  ssize_t n = recv(c->fd, c->body + c->body_len, (size_t)c->req.content_length - c->body_len, 0);

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    conn_close(s, c);
    return;
  }
  c->body_len += (size_t)n;
  if (c->body_len == c->req.content_length)
    judge(s, c, now);
}

static void write_answer(struct webhook_server *s, struct conn *c, uint64_t now) {
  ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                   MSG_NOSIGNAL | MSG_DONTWAIT);

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    conn_close(s, c);
    return;
  }
  c->out_off += (size_t)n;
  if (c->out_off < c->out_len)
    return;
  /* lingering close: read what the client still sends (a body refused
   * before it was read), so that closing does not reset the connection
   * before the answer reached the client */
  shutdown(c->fd, SHUT_WR);
  c->state = CONN_LINGER;
  if (c->deadline > now + LINGER_USEC)
    c->deadline = now + LINGER_USEC;
}

static void linger(struct webhook_server *s, struct conn *c) {
  char sink[4096];
  ssize_t n = recv(c->fd, sink, sizeof(sink), 0);

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0)
    conn_close(s, c);
}

static void expire(struct webhook_server *s, struct conn *c, uint64_t now) {
  struct webhook_verdict v = {0};

  if (c->state != CONN_HEAD && c->state != CONN_BODY) {
    conn_close(s, c);
    return;
  }
  if (c->head_len == 0) {
    conn_close(s, c); /* connected and sent nothing: not a request */
    return;
  }
  v.status = 408;
  v.result = WEBHOOK_RESULT_TIMEOUT;
  str_copy(v.reason, sizeof(v.reason), "the request did not arrive within 10 seconds");
  answer(s, c, &v, now);
  /* a slow client gets the answer only if it reads it at once */
  write_answer(s, c, now);
  if (c->state != CONN_FREE)
    conn_close(s, c);
}

static void accept_all(struct webhook_server *s, uint64_t now) {
  while (s->n_conns < WEBHOOK_MAX_CONNS) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    struct conn *c = NULL;

    if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
      continue;
    if (fd < 0) {
      /* EAGAIN: all taken. Anything else (EMFILE, ENFILE, ENOBUFS) would
       * leave the listener readable and the loop spinning: rest a second */
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        if (!s->accept_paused_until)
          log_warning("webhook: cannot accept a connection: %s; retrying every second",
                      strerror(errno));
        s->accept_paused_until = now + USEC_PER_SEC;
      } else {
        s->accept_paused_until = 0;
      }
      return;
    }
    for (size_t i = 0; i < WEBHOOK_MAX_CONNS && !c; i++)
      if (s->conns[i].state == CONN_FREE)
        c = &s->conns[i];
    c->fd = fd;
    c->state = CONN_HEAD;
    c->deadline = now + READ_USEC;
    format_address(&ss, c->peer, sizeof(c->peer), false);
    s->n_conns++;
  }
}

static void *serve(void *arg) {
  struct webhook_server *s = arg;

  while (!atomic_load(&s->stop)) {
    struct pollfd p[2 + WEBHOOK_MAX_CONNS];
    struct conn *which[2 + WEBHOOK_MAX_CONNS];
    uint64_t now = time_now_mono_usec(), next = now + 60 * USEC_PER_SEC;
    size_t np = 0;
    int timeout;

    p[np] = (struct pollfd){s->wake, POLLIN, 0};
    which[np++] = NULL;
    p[np] = (struct pollfd){s->n_conns < WEBHOOK_MAX_CONNS && now >= s->accept_paused_until
                                ? s->listen_fd
                                : -1,
                            POLLIN, 0};
    which[np++] = NULL;
    if (now < s->accept_paused_until && s->accept_paused_until < next)
      next = s->accept_paused_until;
    for (size_t i = 0; i < WEBHOOK_MAX_CONNS; i++) {
      struct conn *c = &s->conns[i];
      if (c->state == CONN_FREE)
        continue;
      p[np] = (struct pollfd){c->fd, c->state == CONN_WRITE ? POLLOUT : POLLIN, 0};
      which[np++] = c;
      if (c->deadline < next)
        next = c->deadline;
    }
    if (s->stats_pending && s->next_stats_wake < next)
      next = s->next_stats_wake;
    timeout = next <= now ? 0 : (int)((next - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
    if (poll(p, np, timeout) < 0 && errno != EINTR) {
      log_error("webhook: poll failed: %s; the webhook stops serving", strerror(errno));
      break;
    }
    now = time_now_mono_usec();
    if (p[0].revents & POLLIN) {
      uint64_t v;
      if (read(s->wake, &v, sizeof(v)) < 0) {
        /* EAGAIN: nothing to reset */
      }
    }
    for (size_t i = 2; i < np; i++) {
      struct conn *c = which[i];
      short re = p[i].revents;
      if (c->state == CONN_FREE)
        continue;
      if (re & (POLLIN | POLLOUT | POLLHUP | POLLERR)) {
        switch (c->state) {
        case CONN_HEAD:
          read_head(s, c, now);
          break;
        case CONN_BODY:
          read_body(s, c, now);
          break;
        case CONN_WRITE:
          write_answer(s, c, now);
          break;
        case CONN_LINGER:
          linger(s, c);
          break;
        case CONN_FREE:
          break;
        }
      }
      if (c->state != CONN_FREE && now >= c->deadline)
        expire(s, c, now);
    }
    if (p[1].revents & POLLIN)
      accept_all(s, now);
    wake_main(s, now);
  }
  for (size_t i = 0; i < WEBHOOK_MAX_CONNS; i++)
    conn_close(s, &s->conns[i]);
  return NULL;
}

/* ---- the main thread's side ---- */

int webhook_server_start(const struct hostconfig *hc, struct webhook_server **ret,
                         struct err *err) {
  struct webhook_server *s = xcalloc(1, sizeof(*s));
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  int r, fd, flags;

  s->listen_fd = s->efd = s->wake = -1;
  for (size_t i = 0; i < WEBHOOK_MAX_CONNS; i++)
    s->conns[i].fd = -1;
  pthread_mutex_init(&s->lock, NULL);
  s->ref = xstrdup(hc->repo.ref);
  webhook_bucket_init(&s->bucket, REQUEST_BURST, REQUEST_PER_SEC);
  webhook_bucket_init(&s->log_bucket, LOG_BURST, LOG_PER_SEC);
  if ((r = webhook_secret_load(hc->repo.webhook.secret_file, &s->secret, err)) < 0)
    goto fail;
  fd = systemd_socket(err);
  if (fd < -1) {
    r = fd;
    goto fail;
  }
  if (fd >= 0) {
    s->activated = true;
    /* the description is shared with systemd's copy, which never accepts
     * on it (Accept=no) */
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
      r = err_set_errno(err, -errno, "cannot make the webhook socket non-blocking");
      goto fail;
    }
  } else if (!hc->repo.webhook.listen) {
    r = err_set(err, -EINVAL, "repository.webhook has no listen address and systemd passed no "
                              "socket named 'webhook' (see egressd-webhook.socket in "
                              "docs/systemd.md)");
    goto fail;
  } else if ((fd = listen_on(hc->repo.webhook.listen, err)) < 0) {
    r = fd;
    goto fail;
  }
  s->listen_fd = fd;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
    format_address(&ss, s->address, sizeof(s->address), true);
  else
    str_copy(s->address, sizeof(s->address), "?");
  s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  s->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->efd < 0 || s->wake < 0) {
    r = err_set_errno(err, -errno, "cannot create an eventfd");
    goto fail;
  }
  if ((r = pthread_create(&s->thread, NULL, serve, s)) != 0) {
    r = err_set_errno(err, -r, "cannot start the webhook thread");
    goto fail;
  }
  s->started = true;
  *ret = s;
  return 0;
fail:
  webhook_server_stop(s);
  return r;
}

void webhook_server_stop(struct webhook_server *s) {
  if (!s)
    return;
  if (s->started) {
    uint64_t one = 1;
    atomic_store(&s->stop, true);
    if (write(s->wake, &one, sizeof(one)) < 0) {
      /* the counter cannot overflow here */
    }
    pthread_join(s->thread, NULL);
  }
  if (s->listen_fd >= 0)
    close(s->listen_fd);
  if (s->efd >= 0)
    close(s->efd);
  if (s->wake >= 0)
    close(s->wake);
  pthread_mutex_destroy(&s->lock);
  buf_dispose_secret(&s->secret);
  free(s->ref);
  free(s);
}

void webhook_server_update(struct webhook_server *s, const char *ref, struct buf *secret) {
  pthread_mutex_lock(&s->lock);
  free(s->ref);
  s->ref = xstrdup(ref);
  buf_dispose_secret(&s->secret);
  s->secret = *secret;
  *secret = (struct buf)BUF_INIT;
  pthread_mutex_unlock(&s->lock);
}

int webhook_server_fd(const struct webhook_server *s) { return s->efd; }

bool webhook_server_take(struct webhook_server *s, bool *changed) {
  uint64_t v;

  if (read(s->efd, &v, sizeof(v)) < 0) {
    /* EAGAIN: nothing new */
  }
  *changed = atomic_exchange(&s->changed, false);
  return atomic_exchange(&s->doorbell, false);
}

void webhook_server_stats(const struct webhook_server *s, struct webhook_stats *ret) {
  memset(ret, 0, sizeof(*ret));
  for (size_t i = 0; i < _WEBHOOK_RESULT_MAX; i++)
    ret->requests[i] = atomic_load(&s->requests[i]);
  ret->last_doorbell = atomic_load(&s->last_doorbell);
}

const char *webhook_server_address(const struct webhook_server *s) { return s->address; }

bool webhook_server_activated(const struct webhook_server *s) { return s->activated; }
