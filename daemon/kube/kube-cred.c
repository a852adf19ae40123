/* Credentials: static tokens, token files re-read when they change, basic
 * auth, and exec credential plugins (client.authentication.k8s.io v1 and
 * v1beta1) run without blocking the loop.
 *
 * Exec plugins: posix_spawn(p) with stdin from /dev/null (egressd is never
 * interactive), stdout and stderr on non-blocking pipes watched by the loop,
 * the environment of egressd plus exec.env plus KUBERNETES_EXEC_INFO, a
 * default signal mask and dispositions. Output is bounded (1 MiB), the run
 * is bounded in time (opts.exec_timeout_usec, then SIGKILL). One run per
 * client at a time: requests that need the credential wait for it. The
 * credential is cached until its expirationTimestamp (for the client's life
 * without one); after a 401, kube_auth_invalidate() drops it so the next
 * request runs the plugin again. A 401 with a token file re-reads the file at
 * once (a rotated token), and the request is retried if the token changed.
 *
 * Invariants: a token, a key or the plugin's stdout is held only in buffers
 * that are wiped when dropped (buf_dispose_secret, doc_arena_free_secret);
 * no message quotes them. Waiting requests are resumed from loop callbacks.
 *
 * When you change what a plugin may return, also touch docs/clusters.md
 * ("Exec plugins") and the exec tests in tests/unit/test-kube.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "kube/kube-int.h"


#define REAP_POLL_USEC (10 * 1000ULL)

void kube_cred_dispose(struct kube_cred *cr) {
  buf_dispose_secret(&cr->token);
  buf_dispose(&cr->cert_pem);
  buf_dispose_secret(&cr->key_pem);
  cr->valid = false;
  cr->expires = 0;
}

/* ------------------------------------------------------------ token file */

static void trim(struct buf *b) {
  size_t s = 0, e = b->len;

  while (s < e && strchr(" \t\r\n", b->data[s]))
    s++;
  while (e > s && strchr(" \t\r\n", b->data[e - 1]))
    e--;
  if (s > 0)
    memmove(b->data, b->data + s, e - s);
  mem_wipe(b->data + (e - s), b->len - (e - s));
  b->len = e - s;
  b->data[b->len] = '\0';
}

static int read_token_file(struct kube_auth *a, struct err *err) {
  const struct kube_config *cfg = a->c->cfg;
  struct buf tok = BUF_INIT;
  struct stat st;
  int r;

  if (stat(cfg->token_file, &st) < 0)
    return err_set_errno(err, -errno, "cluster %s: cannot read tokenFile '%s' of user '%s'",
                         a->c->name, cfg->token_file, cfg->user_ref);
  buf_reserve(&tok, (size_t)st.st_size < KUBE_TOKEN_MAX_BYTES ? (size_t)st.st_size + 1 : 4096);
  r = file_read_all(cfg->token_file, KUBE_TOKEN_MAX_BYTES, &tok, err);
  if (r < 0) {
    buf_dispose_secret(&tok);
    err_prefix(err, "cluster %s: tokenFile of user '%s'", a->c->name, cfg->user_ref);
    return r;
  }
  trim(&tok);
  if (tok.len == 0 || memchr(tok.data, '\n', tok.len)) {
    buf_dispose_secret(&tok);
    return err_set_src(err, -EINVAL, ERR_SRC_INPUT,
                       "cluster %s: tokenFile '%s' of user '%s' %s", a->c->name, cfg->token_file,
                       cfg->user_ref, tok.len ? "holds more than one line" : "is empty");
  }
  buf_dispose_secret(&a->cred.token);
  a->cred.token = tok;
  a->cred.valid = true;
  a->cred.generation++;
  a->tf_mtime = st.st_mtim;
  a->tf_size = st.st_size;
  a->tf_ino = st.st_ino;
  return 0;
}

/* Re-read the token file when it changed (stat at most once a second). A
 * file that cannot be read now keeps the token read before, as client-go's
 * cached token source does. */
static void refresh_token_file(struct kube_auth *a) {
  uint64_t now = time_now_mono_usec();
  struct stat st;

  if (a->tf_checked && now - a->tf_checked < KUBE_TOKEN_STAT_USEC)
    return;
  a->tf_checked = now;
  if (stat(a->c->cfg->token_file, &st) < 0)
    return;
  if (st.st_ino == a->tf_ino && st.st_size == a->tf_size &&
      st.st_mtim.tv_sec == a->tf_mtime.tv_sec && st.st_mtim.tv_nsec == a->tf_mtime.tv_nsec)
    return;
  (void)read_token_file(a, NULL);
}

/* ------------------------------------------------------------ auth */

int kube_auth_init(struct kube_auth *a, struct kube_client *c, struct err *err) {
  const struct kube_config *cfg = c->cfg;

  a->c = c;
  if (cfg->token) {
    buf_puts(&a->cred.token, cfg->token);
    a->cred.valid = true;
    a->cred.generation = 1;
  } else if (cfg->token_file) {
    int r = read_token_file(a, err);
    if (r < 0)
      return r;
    a->tf_checked = time_now_mono_usec();
  }
  if (cfg->username || cfg->password) {
    struct buf plain = BUF_INIT;
    size_t max;

    buf_printf(&plain, "%s:%s", cfg->username ? cfg->username : "",
               cfg->password ? cfg->password : "");
    max = sodium_base64_ENCODED_LEN(plain.len, sodium_base64_VARIANT_ORIGINAL);
    buf_reserve(&a->basic, max);
    sodium_bin2base64(a->basic.data, max, (const unsigned char *)plain.data, plain.len,
                      sodium_base64_VARIANT_ORIGINAL);
    a->basic.len = strlen(a->basic.data);
    buf_dispose_secret(&plain);
  }
  return 0;
}

void kube_auth_dispose(struct kube_auth *a) {
  if (a->run) {
    kube_exec_cancel(a->run);
    a->run = NULL;
  }
  ptrvec_dispose(&a->waiters);
  kube_cred_dispose(&a->cred);
  buf_dispose_secret(&a->basic);
}

static void on_exec_done(void *ud, struct kube_exec_result *res) {
  struct kube_auth *a = ud;
  struct ptrvec waiters = a->waiters;

  a->run = NULL;
  a->exec_runs++;
  memset(&a->waiters, 0, sizeof(a->waiters));
  if (res->r == 0) {
    uint64_t gen = a->cred.generation + 1;
    kube_cred_dispose(&a->cred);
    a->cred = res->cred;
    memset(&res->cred, 0, sizeof(res->cred));
    a->cred.generation = gen;
    a->cred.valid = true;
    err_clear(&a->exec_err);
  } else {
    a->exec_err = res->err;
  }
  for (size_t i = 0; i < waiters.n; i++)
    kube_http_cred_ready(waiters.items[i], res->r, &res->err);
  ptrvec_dispose(&waiters);
}

int kube_auth_prepare(struct kube_auth *a, struct kube_http *h, struct err *err) {
  struct kube_client *c = a->c;
  const struct kube_config *cfg = c->cfg;
  int r;

  if (cfg->token_file && !cfg->token)
    refresh_token_file(a);
  if (!cfg->exec)
    return 0;
  if (a->cred.valid &&
      (a->cred.expires == 0 || (int64_t)(time_now_real_usec() / 1000000) < a->cred.expires))
    return 0;
  a->cred.valid = false;
  ptrvec_push(&a->waiters, h);
  if (!a->run) {
    struct buf info = BUF_INIT;
    kube_exec_info(cfg, &c->ca_pem, &info);
    r = kube_exec_start(c->loop, c->name, cfg->exec, buf_cstr(&info), c->opts.exec_timeout_usec,
                        on_exec_done, a, &a->run, err);
    buf_dispose_secret(&info);
    if (r < 0) {
      a->waiters.n--;
      return r;
    }
  }
  return 1;
}

bool kube_auth_invalidate(struct kube_auth *a, uint64_t generation) {
  const struct kube_config *cfg = a->c->cfg;

  if (cfg->exec) {
    if (a->cred.generation == generation)
      a->cred.valid = false;
    return true;
  }
  if (cfg->token_file && !cfg->token) {
    /* a rotated token file: look now, not at the next second */
    a->tf_checked = 0;
    refresh_token_file(a);
    return a->cred.generation != generation;
  }
  return false;
}

void kube_auth_forget(struct kube_auth *a, struct kube_http *h) {
  for (size_t i = 0; i < a->waiters.n; i++)
    if (a->waiters.items[i] == h) {
      memmove(&a->waiters.items[i], &a->waiters.items[i + 1],
              (a->waiters.n - i - 1) * sizeof(void *));
      a->waiters.n--;
      return;
    }
}

void kube_auth_secrets(const struct kube_auth *a, const char **out, size_t n) {
  const struct kube_config *cfg = a->c->cfg;
  const char *all[] = {
      a->cred.token.len ? buf_cstr(&a->cred.token) : NULL,
      cfg->token,
      cfg->password,
      a->basic.len ? buf_cstr(&a->basic) : NULL,
  };
  size_t k = 0;

  for (size_t i = 0; i < ARRAY_SIZE(all) && k + 1 < n; i++)
    if (all[i] && *all[i]) /* any length: a short secret is hidden too */
      out[k++] = all[i];
  out[k] = NULL;
}

/* ------------------------------------------------------------ PEM checks */

/* How many certificates @pem holds (OpenSSL's PEM reader); -EBADMSG if none. */
int kube_pem_count_certs(const struct buf *pem) {
  BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
  X509 *x;
  int n = 0;

  if (!bio)
    return -ENOMEM;
  while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
    X509_free(x);
    n++;
  }
  ERR_clear_error();
  BIO_free(bio);
  return n > 0 ? n : -EBADMSG;
}

/* Does @key_pem hold a private key matching the first certificate of
 * @cert_pem? 0, -EBADMSG (no key), -EKEYREJECTED (mismatch). */
int kube_pem_check_pair(const struct buf *cert_pem, const struct buf *key_pem) {
  BIO *cb = BIO_new_mem_buf(cert_pem->data, (int)cert_pem->len);
  BIO *kb = BIO_new_mem_buf(key_pem->data, (int)key_pem->len);
  X509 *x = NULL;
  EVP_PKEY *k = NULL;
  int r = 0;

  if (!cb || !kb) {
    r = -ENOMEM;
    goto out;
  }
  x = PEM_read_bio_X509(cb, NULL, NULL, NULL);
  k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
  if (!x)
    r = -EBADMSG;
  else if (!k)
    r = -ENOKEY;
  else if (X509_check_private_key(x, k) != 1)
    r = -EKEYREJECTED;
out:
  ERR_clear_error();
  X509_free(x);
  EVP_PKEY_free(k);
  BIO_free(cb);
  BIO_free(kb);
  return r;
}

/* ------------------------------------------------------------ exec plugin */

struct kube_exec_run {
  struct kube_loop *loop;
  char *cluster;
  const struct kube_exec_config *x;
  pid_t pid;
  struct kube_fdw out_w, err_w;
  struct buf out, errtxt;
  bool too_big;
  uint64_t deadline, timeout;
  struct kube_timer timer;
  void (*done)(void *ud, struct kube_exec_result *res);
  void *ud;
};

static void run_free(struct kube_exec_run *run) {
  if (run->out_w.fd >= 0) {
    kube_fdw_del(run->loop, &run->out_w);
    close(run->out_w.fd);
  }
  if (run->err_w.fd >= 0) {
    kube_fdw_del(run->loop, &run->err_w);
    close(run->err_w.fd);
  }
  kube_timer_disarm(run->loop, &run->timer);
  if (run->pid > 0) {
    kill(run->pid, SIGKILL);
    while (waitpid(run->pid, NULL, 0) < 0 && errno == EINTR)
      ;
  }
  buf_dispose_secret(&run->out);
  buf_dispose_secret(&run->errtxt);
  free(run->cluster);
  free(run);
}

void kube_exec_cancel(struct kube_exec_run *run) {
  if (run)
    run_free(run);
}

static void finish(struct kube_exec_run *run, int status, bool timed_out) {
  struct kube_exec_result res = {0};
  const char *cmd = run->x->command;

  run->pid = 0;
  if (timed_out) {
    res.r = err_set_src(&res.err, -ETIMEDOUT, ERR_SRC_INPUT,
                        "cluster %s: exec plugin '%s' did not finish within %llus", run->cluster,
                        cmd, (unsigned long long)(run->timeout / 1000000));
  } else if (run->too_big) {
    res.r = err_set_src(&res.err, -EFBIG, ERR_SRC_INPUT,
                        "cluster %s: exec plugin '%s' printed more than %u bytes", run->cluster,
                        cmd, KUBE_EXEC_OUT_MAX);
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    struct buf last = BUF_INIT, ex = BUF_INIT;
    const char *secrets[] = {NULL};
    const char *text = buf_cstr(&run->errtxt);
    size_t len = run->errtxt.len;

    /* quote the last non-empty line of stderr: usually the reason */
    while (len > 0 && strchr(" \t\r\n", text[len - 1]))
      len--;
    {
      size_t start = len;
      while (start > 0 && text[start - 1] != '\n')
        start--;
      buf_append(&last, text + start, len - start);
    }
    kube_redact(&last, secrets);
    kube_excerpt(last.data ? last.data : "", last.len, false, KUBE_EXCERPT_MAX, &ex);
    if (WIFEXITED(status))
      res.r = err_set_src(&res.err, -EACCES, ERR_SRC_INPUT,
                          "cluster %s: exec plugin '%s' failed with exit status %d%s%s%s",
                          run->cluster, cmd, WEXITSTATUS(status), ex.len ? ": \"" : "",
                          buf_cstr(&ex), ex.len ? "\"" : "");
    else
      res.r = err_set_src(&res.err, -EACCES, ERR_SRC_INPUT,
                          "cluster %s: exec plugin '%s' was killed by signal %d", run->cluster, cmd,
                          WTERMSIG(status));
    buf_dispose_secret(&last);
    buf_dispose_secret(&ex);
  } else {
    res.r = kube_exec_parse_output(run->cluster, run->x, buf_cstr(&run->out), run->out.len,
                                   &res.cred, &res.err);
  }
  run->done(run->ud, &res);
  kube_cred_dispose(&res.cred);
  run_free(run);
}

static void try_reap(struct kube_exec_run *run) {
  int status = 0;
  pid_t p;

  if (run->out_w.fd >= 0 || run->err_w.fd >= 0)
    return; /* output still open: the timeout timer runs */
  do
    p = waitpid(run->pid, &status, WNOHANG);
  while (p < 0 && errno == EINTR);
  if (p == run->pid || p < 0) {
    finish(run, p < 0 ? 0 : status, false);
    return;
  }
  /* closed its output but still running: poll briefly, up to the deadline */
  kube_timer_arm(run->loop, &run->timer, REAP_POLL_USEC);
}

static void on_timer(struct kube_timer *t) {
  struct kube_exec_run *run = (struct kube_exec_run *)((char *)t - offsetof(struct kube_exec_run, timer));
  int status = 0;
  pid_t p;

  do
    p = waitpid(run->pid, &status, WNOHANG);
  while (p < 0 && errno == EINTR);
  if (p == run->pid && run->out_w.fd < 0 && run->err_w.fd < 0) {
    finish(run, status, false);
    return;
  }
  if (time_now_mono_usec() >= run->deadline) {
    if (p != run->pid) {
      kill(run->pid, SIGKILL);
      while (waitpid(run->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    }
    finish(run, 0, true);
    return;
  }
  {
    uint64_t now = time_now_mono_usec(), left = run->deadline - now;
    kube_timer_arm(run->loop, &run->timer, left < REAP_POLL_USEC ? left : REAP_POLL_USEC);
  }
}

static void read_output(struct kube_exec_run *run, struct kube_fdw *w, bool is_stdout) {
  struct buf *b = is_stdout ? &run->out : &run->errtxt;
  size_t max = is_stdout ? KUBE_EXEC_OUT_MAX : KUBE_EXEC_ERR_MAX;
  char chunk[16384];

  for (;;) {
    ssize_t n = read(w->fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (n <= 0) {
      kube_fdw_del(run->loop, w);
      close(w->fd);
      w->fd = -1;
      break;
    }
    if (is_stdout && (run->too_big || b->len + (size_t)n > max)) {
      /* over the bound: stop the plugin, drain to EOF, keep nothing */
      if (!run->too_big)
        kill(run->pid, SIGKILL);
      run->too_big = true;
      buf_dispose_secret(b);
      continue;
    }
    if (!is_stdout && b->len + (size_t)n > max) {
      buf_append(b, chunk, max - b->len); /* stderr: keep the start only */
      continue;
    }
    buf_append(b, chunk, (size_t)n);
  }
  sodium_memzero(chunk, sizeof(chunk));
  try_reap(run);
}

static void on_stdout(struct kube_fdw *w, short revents) {
  (void)revents;
  read_output((struct kube_exec_run *)((char *)w - offsetof(struct kube_exec_run, out_w)), w, true);
}

static void on_stderr(struct kube_fdw *w, short revents) {
  (void)revents;
  read_output((struct kube_exec_run *)((char *)w - offsetof(struct kube_exec_run, err_w)), w, false);
}

static char *env_entry(const char *name, const char *value) {
  return xasprintf("%s=%s", name, value);
}

static bool env_overridden(const char *entry, const struct kube_exec_config *x) {
  size_t n = strcspn(entry, "=");

  if (n == strlen("KUBERNETES_EXEC_INFO") && strncmp(entry, "KUBERNETES_EXEC_INFO", n) == 0)
    return true;
  for (size_t i = 0; i < x->n_env; i++)
    if (strlen(x->env[i].name) == n && strncmp(entry, x->env[i].name, n) == 0)
      return true;
  return false;
}

static void free_strv(char **v, bool wipe) {
  if (!v)
    return;
  for (char **p = v; *p; p++) {
    if (wipe)
      sodium_memzero(*p, strlen(*p));
    free(*p);
  }
  free(v);
}

int kube_exec_start(struct kube_loop *loop, const char *cluster, const struct kube_exec_config *x,
                    const char *exec_info, uint64_t timeout_usec,
                    void (*done)(void *ud, struct kube_exec_result *res), void *ud,
                    struct kube_exec_run **ret, struct err *err) {
  int outp[2] = {-1, -1}, errp[2] = {-1, -1};
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none, all;
  char **argv = NULL, **envp = NULL;
  size_t n_env = 0, k = 0;
  struct buf default_info = BUF_INIT;
  struct kube_exec_run *run;
  pid_t pid;
  int r;

  if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
    r = err_set_errno(err, -errno, "cluster %s: cannot make a pipe for the exec plugin", cluster);
    goto fail;
  }
  (void)fcntl(outp[0], F_SETFL, O_NONBLOCK);
  (void)fcntl(errp[0], F_SETFL, O_NONBLOCK);

  argv = xcalloc(x->n_args + 2, sizeof(*argv));
  argv[0] = xstrdup(x->command);
  for (size_t i = 0; i < x->n_args; i++)
    argv[i + 1] = xstrdup(x->args[i]);
  for (char **e = environ; e && *e; e++)
    n_env++;
  envp = xcalloc(n_env + x->n_env + 2, sizeof(*envp));
  for (char **e = environ; e && *e; e++)
    if (!env_overridden(*e, x))
      envp[k++] = xstrdup(*e);
  for (size_t i = 0; i < x->n_env; i++)
    envp[k++] = env_entry(x->env[i].name, x->env[i].value);
  if (!exec_info) {
    /* without provideClusterInfo: spec.interactive only */
    buf_printf(&default_info,
               "{\"kind\":\"ExecCredential\",\"apiVersion\":\"%s\",\"spec\":{\"interactive\":false}}",
               x->api_version);
    exec_info = buf_cstr(&default_info);
  }
  envp[k++] = env_entry("KUBERNETES_EXEC_INFO", exec_info);
  buf_dispose(&default_info);

  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
  posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
  posix_spawnattr_init(&attr);
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  r = strchr(x->command, '/') ? posix_spawn(&pid, x->command, &fa, &attr, argv, envp)
                              : posix_spawnp(&pid, x->command, &fa, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  free_strv(argv, false);
  argv = NULL;
  free_strv(envp, true);
  envp = NULL;
  if (r != 0) {
    if (r == ENOENT)
      r = err_set_src(err, -ENOENT, ERR_SRC_INPUT, "cluster %s: exec plugin '%s' not found%s%s",
                      cluster, x->command, x->install_hint ? ": " : "",
                      x->install_hint ? x->install_hint : "");
    else
      r = err_set_errno(err, -r, "cluster %s: cannot run exec plugin '%s'", cluster, x->command);
    if (err)
      for (char *p = err->msg; *p; p++)
        if (*p == '\n' || *p == '\t')
          *p = ' ';
    goto fail;
  }
  close(outp[1]);
  close(errp[1]);
  run = xcalloc(1, sizeof(*run));
  run->loop = loop;
  run->cluster = xstrdup(cluster);
  run->x = x;
  run->pid = pid;
  run->done = done;
  run->ud = ud;
  run->timeout = timeout_usec;
  run->deadline = time_now_mono_usec() + timeout_usec;
  run->out_w = (struct kube_fdw){.fd = outp[0], .events = POLLIN, .ready = on_stdout};
  run->err_w = (struct kube_fdw){.fd = errp[0], .events = POLLIN, .ready = on_stderr};
  run->timer.fire = on_timer;
  kube_fdw_add(loop, &run->out_w);
  kube_fdw_add(loop, &run->err_w);
  kube_timer_arm(loop, &run->timer, timeout_usec);
  *ret = run;
  return 0;

fail:
  for (int i = 0; i < 2; i++) {
    if (outp[i] >= 0)
      close(outp[i]);
    if (errp[i] >= 0)
      close(errp[i]);
  }
  free_strv(argv, false);
  free_strv(envp, true);
  return r;
}

void kube_exec_info(const struct kube_config *cfg, const struct buf *ca_pem, struct buf *out) {
  struct doc_arena *a = doc_arena_new();
  struct doc_node *root = doc_new_map(a), *spec = doc_new_map(a);

  doc_map_set(a, root, "kind", doc_new_str(a, "ExecCredential"));
  doc_map_set(a, root, "apiVersion", doc_new_str(a, cfg->exec->api_version));
  doc_map_set(a, root, "spec", spec);
  if (cfg->exec->provide_cluster_info) {
    struct doc_node *cl = doc_new_map(a);
    doc_map_set(a, cl, "server", doc_new_str(a, cfg->server ? cfg->server : ""));
    if (cfg->tls_server_name)
      doc_map_set(a, cl, "tls-server-name", doc_new_str(a, cfg->tls_server_name));
    if (cfg->insecure_skip_tls_verify)
      doc_map_set(a, cl, "insecure-skip-tls-verify", doc_new_bool(a, true));
    if (ca_pem && ca_pem->len) {
      size_t max = sodium_base64_ENCODED_LEN(ca_pem->len, sodium_base64_VARIANT_ORIGINAL);
      char *b64 = xmalloc(max);
      sodium_bin2base64(b64, max, (const unsigned char *)ca_pem->data, ca_pem->len,
                        sodium_base64_VARIANT_ORIGINAL);
      doc_map_set(a, cl, "certificate-authority-data", doc_new_str(a, b64));
      free(b64);
    }
    if (cfg->proxy_url)
      doc_map_set(a, cl, "proxy-url", doc_new_str(a, cfg->proxy_url));
    if (cfg->disable_compression)
      doc_map_set(a, cl, "disable-compression", doc_new_bool(a, true));
    if (cfg->exec_cluster_config) {
      struct doc_node *conf = NULL;
      if (kube_parse_json(a, "extension", cfg->exec_cluster_config,
                          strlen(cfg->exec_cluster_config), KUBE_CONFIG_MAX_BYTES, &conf, NULL) == 0)
        doc_map_set(a, cl, "config", conf);
    }
    doc_map_set(a, spec, "cluster", cl);
  }
  doc_map_set(a, spec, "interactive", doc_new_bool(a, false));
  doc_emit_json(root, out, 0);
  doc_arena_free_secret(a);
}

int kube_exec_parse_output(const char *cluster, const struct kube_exec_config *x,
                           const char *data, size_t len, struct kube_cred *out, struct err *err) {
  struct doc_arena *a = doc_arena_new();
  struct doc_node *root = NULL, *status;
  const char *v, *token, *cert, *key, *exp;
  struct kube_cred cr = {0};
  int r;

  r = kube_parse_json(a, "exec plugin output", data, len, KUBE_EXEC_OUT_MAX, &root, NULL);
  if (r < 0 || !doc_is(root, DOC_MAP)) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_INPUT,
                    "cluster %s: exec plugin '%s' did not print an ExecCredential JSON object",
                    cluster, x->command);
    goto out;
  }
  v = doc_map_str(root, "apiVersion");
  if (!str_eq(v, x->api_version)) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_INPUT,
                    "cluster %s: exec plugin '%s' is configured to use API version %s, plugin "
                    "returned version %s",
                    cluster, x->command, x->api_version, v ? v : "(none)");
    goto out;
  }
  if (!str_eq(doc_map_str(root, "kind"), "ExecCredential")) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_INPUT,
                    "cluster %s: exec plugin '%s' returned kind '%s', not ExecCredential", cluster,
                    x->command, doc_map_str(root, "kind") ? doc_map_str(root, "kind") : "(none)");
    goto out;
  }
  status = doc_map_get(root, "status");
  if (!doc_is(status, DOC_MAP)) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_INPUT, "cluster %s: exec plugin '%s' returned no status",
                    cluster, x->command);
    goto out;
  }
  token = doc_map_str(status, "token");
  cert = doc_map_str(status, "clientCertificateData");
  key = doc_map_str(status, "clientKeyData");
  exp = doc_map_str(status, "expirationTimestamp");
  if (str_is_empty(cert) != str_is_empty(key)) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_INPUT,
                    "cluster %s: exec plugin '%s' returned %s without %s", cluster, x->command,
                    str_is_empty(cert) ? "clientKeyData" : "clientCertificateData",
                    str_is_empty(cert) ? "clientCertificateData" : "clientKeyData");
    goto out;
  }
  if (str_is_empty(token) && str_is_empty(cert)) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_INPUT,
                    "cluster %s: exec plugin '%s' returned neither a token nor a client "
                    "certificate",
                    cluster, x->command);
    goto out;
  }
  if (!str_is_empty(exp) && time_parse_rfc3339(exp, &cr.expires) < 0) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_INPUT,
                    "cluster %s: exec plugin '%s' returned an expirationTimestamp that is not "
                    "RFC 3339: '%s'",
                    cluster, x->command, exp);
    goto out;
  }
  if (!str_is_empty(token)) {
    if (strpbrk(token, "\r\n")) {
      r = err_set_src(err, -EBADMSG, ERR_SRC_INPUT,
                      "cluster %s: exec plugin '%s' returned a token with a line break", cluster,
                      x->command);
      goto out;
    }
    buf_puts(&cr.token, token);
  }
  if (!str_is_empty(cert)) {
    buf_puts(&cr.cert_pem, cert);
    buf_puts(&cr.key_pem, key);
    r = kube_pem_check_pair(&cr.cert_pem, &cr.key_pem);
    if (r < 0) {
      r = err_set_src(err, -EBADMSG, ERR_SRC_INPUT,
                      "cluster %s: exec plugin '%s' returned a client certificate and key that %s",
                      cluster, x->command,
                      r == -EKEYREJECTED ? "do not match" : "are not valid PEM");
      kube_cred_dispose(&cr);
      goto out;
    }
  }
  cr.valid = true;
  *out = cr;
  r = 0;
out:
  doc_arena_free_secret(a);
  return r;
}
