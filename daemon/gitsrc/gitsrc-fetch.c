/* Poll and fetch: the only network I/O of gitsrc.
 *
 * Each poll or fetch runs libgit2 in a short-lived child process (fork, no
 * exec) that reports back through a pipe, because libgit2 1.5 has no
 * network timeouts (GIT_OPT_SET_SERVER_TIMEOUT arrived in 1.7): a remote
 * that accepts and never answers would block the daemon forever. The parent
 * waits at most timeout_sec and then kills the child. Git itself isolates
 * transports the same way (git-remote-http, ssh are child processes).
 * Side benefits: credentials (token, password) are read only in the child
 * and die with it; libgit2's memory use while indexing a pack is bounded by
 * RLIMIT_AS in the child; a crash in a transport library cannot take the
 * daemon down.
 *
 * Invariants:
 *  - the local ref GITSRC_FETCH_REF moves only after a complete, indexed
 *    pack (libgit2 writes the ref last, atomically); a killed child leaves
 *    the previous head intact; stale lock and temporary pack files of a
 *    killed child are removed under the cache's flock;
 *  - one process at a time fetches into a cache directory (flock on
 *    <cache_dir>/egressd.lock; a second one gets -EBUSY);
 *  - HTTP credentials are sent preemptively as a custom Authorization header
 *    (one request per poll, no 401 round trip); a 401 means "rejected";
 *  - credentials never leave for another origin (scheme, host, port) than
 *    the configured URL's: with credentials, libgit2 follows no redirect to
 *    another host (GIT_REMOTE_REDIRECT_NONE), and the origin guard (a
 *    registered socket stream) refuses to connect to any other host:port,
 *    which also covers what libgit2 lets through (same host, other port;
 *    http -> https). A same-origin redirect (a moved path) still works;
 *  - messages quote url_shown (base/redact.h), never the URL itself;
 *  - SSH host keys are checked against known_hosts unless explicitly skipped.
 * The struct gitsrc must not be used by another thread during a call; fork
 * is made from the calling thread and the child touches only libgit2.
 * When you change the child/parent protocol (struct helper_result), both
 * sides are in this file; docs/man/egressd-fetch.1 describes the errors.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <git2/sys/stream.h>
#include <sodium.h>

#include "base/fileio.h"
#include "base/mem.h"
#include "base/redact.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "gitsrc/gitsrc-int.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#define SECRET_FILE_MAX 4096u
#define LOCK_NAME "egressd.lock"

enum op { OP_POLL, OP_FETCH };

/* What the child reports; fixed size, written once (< PIPE_BUF). */
struct helper_result {
  int rc;            /* 0 or -errno */
  int src;           /* enum err_src */
  long detail;
  int changed;       /* poll: remote differs from the local ref */
  char oid[GITSRC_OID_HEXSZ + 1];
  char msg[ERR_MSG_MAX];
};

struct ctx {
  struct gitsrc *src;
  char host[256];
  int port;
  char origin_host[256];   /* http(s) with credentials: the only host:port to connect to */
  char origin_port[8];
  struct err cause;        /* the specific reason a callback aborted */
  bool http_credentials;   /* an Authorization header is sent */
  unsigned ssh_key_tries;
};

/* --- URL bits -------------------------------------------------------------- */

static void parse_port(const char *p, size_t n, int *port) {
  char *num = xstrndup(p, n);
  int v;

  if (str_to_int(num, 1, 65535, &v) == 0)
    *port = v;
  free(num);
}

/* Host and port of an ssh:// or scp-like URL (port 22 when absent). */
static void ssh_host_port(const char *url, char *host, size_t size, int *port) {
  const char *scheme = strstr(url, "://");
  const char *p = scheme ? scheme + 3 : url, *end, *at, *colon;

  *port = 22;
  /* the authority ends at '/' (URL) or at the first ':' outside brackets (scp) */
  end = p + strcspn(p, "/");
  at = memchr(p, '@', (size_t)(end - p));
  if (at)
    p = at + 1;
  if (*p == '[') {
    const char *rb = memchr(p, ']', (size_t)(end - p));
    if (rb) {
      str_format(host, size, "%.*s", (int)(rb - p - 1), p + 1);
      if (scheme && rb + 1 < end && rb[1] == ':')
        parse_port(rb + 2, (size_t)(end - rb - 2), port);
      return;
    }
  }
  colon = memchr(p, ':', (size_t)(end - p));
  str_format(host, size, "%.*s", (int)((colon ? colon : end) - p), p);
  if (scheme && colon)
    parse_port(colon + 1, (size_t)(end - colon - 1), port);
}

/* Host (brackets of an IPv6 literal removed) and port (the scheme's default
 * when absent) of an http(s):// URL, as libgit2 hands them to a stream. */
static void http_host_port(const char *url, char *host, size_t hsize, char *port, size_t psize) {
  const char *p = strstr(url, "://") + 3, *end, *at, *colon;

  end = p + strcspn(p, "/?#");
  for (at = end; at > p && at[-1] != '@'; at--)
    ;
  p = at; /* after the last '@' of the authority, if any */
  if (*p == '[') {
    const char *rb = memchr(p, ']', (size_t)(end - p));
    if (rb) {
      str_format(host, hsize, "%.*s", (int)(rb - p - 1), p + 1);
      colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
      goto port;
    }
  }
  colon = memchr(p, ':', (size_t)(end - p));
  str_format(host, hsize, "%.*s", (int)((colon ? colon : end) - p), p);
port:
  if (colon && colon + 1 < end)
    str_format(port, psize, "%.*s", (int)(end - colon - 1), colon + 1);
  else
    str_copy(port, psize, str_has_prefix(url, "https://") ? "443" : "80");
}

/* --- the origin guard (child only) ------------------------------------------ */

/* libgit2 creates every HTTP connection, plain or under TLS, through the
 * GIT_STREAM_STANDARD stream; registering ours is the one place that sees the
 * host and port of each connection before a byte, and so before any
 * credential, is sent. libgit2 1.5 exports no way to wrap its own socket
 * stream, hence the small socket stream below. The struct ctx is global
 * because a stream constructor has no payload; only the single-threaded
 * fetch helper process registers it. */
static struct ctx *guard_ctx;

struct guarded_stream {
  git_stream parent;
  int fd;
  char *host, *port;
};

static int gs_connect(git_stream *stream) {
  struct guarded_stream *st = (struct guarded_stream *)stream;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
  int rc = getaddrinfo(st->host, st->port, &hints, &ai), e = ECONNREFUSED;

  if (rc != 0) {
    git_error_set(GIT_ERROR_NET, "failed to resolve address for %s: %s", st->host,
                  gai_strerror(rc));
    return -1;
  }
  for (struct addrinfo *a = ai; a && st->fd < 0; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      e = errno;
      continue;
    }
    while ((rc = connect(fd, a->ai_addr, a->ai_addrlen)) < 0 && errno == EINTR)
      ;
    if (rc == 0) {
      st->fd = fd;
    } else {
      e = errno;
      close(fd);
    }
  }
  freeaddrinfo(ai);
  if (st->fd < 0) {
    git_error_set(GIT_ERROR_NET, "failed to connect to %s: %s", st->host, strerror(e));
    return -1;
  }
  return 0;
}

static ssize_t gs_read(git_stream *stream, void *data, size_t len) {
  struct guarded_stream *st = (struct guarded_stream *)stream;
  ssize_t n;

  while ((n = recv(st->fd, data, len, 0)) < 0 && errno == EINTR)
    ;
  if (n < 0)
    git_error_set(GIT_ERROR_NET, "error receiving socket data: %s", strerror(errno));
  return n;
}

static ssize_t gs_write(git_stream *stream, const char *data, size_t len, int flags) {
  struct guarded_stream *st = (struct guarded_stream *)stream;
  size_t off = 0;

  while (off < len) {
    ssize_t n = send(st->fd, data + off, len - off, flags | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      git_error_set(GIT_ERROR_NET, "error sending data: %s", strerror(errno));
      return -1;
    }
    off += (size_t)n;
  }
  return (ssize_t)off;
}

static int gs_close(git_stream *stream) {
  struct guarded_stream *st = (struct guarded_stream *)stream;

  if (st->fd >= 0)
    close(st->fd);
  st->fd = -1;
  return 0;
}

static void gs_free(git_stream *stream) {
  struct guarded_stream *st = (struct guarded_stream *)stream;

  gs_close(stream);
  free(st->host);
  free(st->port);
  free(st);
}

static int gs_new(git_stream **out, const char *host, const char *port) {
  struct ctx *c = guard_ctx;
  struct guarded_stream *st;

  if (strcasecmp(host, c->origin_host) != 0 || strcmp(port, c->origin_port) != 0) {
    char *target = xasprintf(strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
    err_set_src(&c->cause, -EPERM, ERR_SRC_INPUT,
                "%s redirected to %s, another origin (scheme, host or port); egressd sends "
                "credentials only to the origin of the configured URL and stopped before "
                "connecting: if the repository moved, configure its new URL",
                c->src->url_shown, target);
    git_error_set(GIT_ERROR_NET, "refusing to connect to %s: another origin", target);
    free(target);
    return -1;
  }
  st = xcalloc(1, sizeof(*st));
  st->fd = -1;
  st->host = xstrdup(host);
  st->port = xstrdup(port);
  st->parent.version = GIT_STREAM_VERSION;
  st->parent.connect = gs_connect;
  st->parent.read = gs_read;
  st->parent.write = gs_write;
  st->parent.close = gs_close;
  st->parent.free = gs_free;
  *out = &st->parent;
  return 0;
}

static int origin_guard_install(struct ctx *c, struct err *err) {
  git_stream_registration reg = {.version = GIT_STREAM_VERSION, .init = gs_new};

  http_host_port(c->src->url, c->origin_host, sizeof(c->origin_host), c->origin_port,
                 sizeof(c->origin_port));
  guard_ctx = c;
  if (git_stream_register(GIT_STREAM_STANDARD, &reg) < 0)
    return gitsrc_git_error(err, -1, "cannot install the origin check for %s", c->src->url_shown);
  return 0;
}

/* --- secrets --------------------------------------------------------------- */

/* Read a one-line secret; trailing newline and spaces removed. The caller
 * wipes @out with buf_dispose_secret(). */
static int read_secret(const char *what, const char *path, struct buf *out, struct err *err) {
  int r = file_read_all(path, SECRET_FILE_MAX, out, err);

  if (r < 0)
    return r;
  while (out->len > 0 && (out->data[out->len - 1] == '\n' || out->data[out->len - 1] == '\r' ||
                          out->data[out->len - 1] == ' ' || out->data[out->len - 1] == '\t'))
    out->data[--out->len] = '\0';
  if (out->len == 0)
    return err_set_src(err, -EINVAL, ERR_SRC_INPUT, "%s '%s' is empty", what, path);
  for (size_t i = 0; i < out->len; i++)
    if ((unsigned char)out->data[i] < 0x20 || out->data[i] == 0x7f)
      /* never quote the secret itself */
      return err_set_src(err, -EINVAL, ERR_SRC_INPUT,
                         "%s '%s' contains a control character or more than one line", what,
                         path);
  return 0;
}

/* "Authorization: Basic base64(user:secret)" or "...: Bearer token". */
static int auth_header(struct gitsrc *src, struct buf *header, struct err *err) {
  struct buf secret = BUF_INIT, pair = BUF_INIT;
  const char *file = src->token_file ? src->token_file : src->password_file;
  const char *what = src->token_file ? "token_file" : "password_file";
  int r;

  if ((r = read_secret(what, file, &secret, err)) < 0)
    goto out;
  if (src->token_file && src->token_auth == GITSRC_TOKEN_BEARER) {
    buf_puts(header, "Authorization: Bearer ");
    buf_append(header, secret.data, secret.len);
  } else {
    const char *user = src->username ? src->username : "x-access-token";
    size_t b64_len;
    if (strchr(user, ':')) {
      r = err_set_src(err, -EINVAL, ERR_SRC_INPUT, "the username must not contain ':'");
      goto out;
    }
    buf_puts(&pair, user);
    buf_putc(&pair, ':');
    buf_append(&pair, secret.data, secret.len);
    b64_len = sodium_base64_ENCODED_LEN(pair.len, sodium_base64_VARIANT_ORIGINAL);
    buf_puts(header, "Authorization: Basic ");
    buf_reserve(header, b64_len);
    sodium_bin2base64(header->data + header->len, b64_len, (const unsigned char *)pair.data,
                      pair.len, sodium_base64_VARIANT_ORIGINAL);
    header->len += strlen(header->data + header->len);
  }
  r = 0;
out:
  buf_dispose_secret(&secret);
  buf_dispose_secret(&pair);
  return r;
}

/* --- libgit2 callbacks (child only) ---------------------------------------- */

static int credentials_cb(git_credential **out, const char *url, const char *username_from_url,
                          unsigned int allowed, void *payload) {
  struct ctx *c = payload;
  struct gitsrc *src = c->src;
  const char *user = username_from_url && *username_from_url ? username_from_url
                     : src->username                         ? src->username
                                                             : "git";
  (void)url;
  if ((allowed & GIT_CREDENTIAL_SSH_KEY) && src->ssh_key) {
    if (c->ssh_key_tries++ > 0) {
      err_set_src(&c->cause, -EACCES, ERR_SRC_GIT,
                  "the SSH server %s rejected the key ssh_key '%s' for user '%s'", c->host,
                  src->ssh_key, user);
      return GIT_EAUTH;
    }
    return git_credential_ssh_key_new(out, user, NULL, src->ssh_key, NULL);
  }
  if (allowed & GIT_CREDENTIAL_USERNAME)
    return git_credential_username_new(out, user);
  if (allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) {
    if (c->http_credentials)
      err_set_src(&c->cause, -EACCES, ERR_SRC_GIT,
                  "the server %s rejected the credentials from %s '%s' (HTTP 401)", src->url_shown,
                  src->token_file ? "token_file" : "password_file",
                  src->token_file ? src->token_file : src->password_file);
    else
      err_set_src(&c->cause, -EACCES, ERR_SRC_GIT,
                  "the server %s requires authentication (HTTP 401); set token_file, or "
                  "username and password_file",
                  src->url_shown);
    return GIT_EAUTH;
  }
  err_set_src(&c->cause, -EACCES, ERR_SRC_GIT,
              "the server %s asks for a kind of authentication egressd does not offer",
              src->url_shown);
  return GIT_EAUTH;
}

static int check_known_hosts(struct ctx *c, const git_cert_hostkey *hk, struct err *err) {
  const char *files[3] = {NULL, NULL, NULL};
  char *home_file = NULL;
  const unsigned char *key = NULL;
  size_t key_len = 0;
  int r = -ENOKEY;
  bool any_file = false;
  struct buf tried = BUF_INIT;

  if (hk->type & GIT_CERT_SSH_RAW) {
    key = (const unsigned char *)hk->hostkey;
    key_len = hk->hostkey_len;
  } else if (!(hk->type & GIT_CERT_SSH_SHA256)) {
    return err_set_src(err, -EPERM, ERR_SRC_GIT,
                       "the SSH transport gave neither the host key nor its SHA-256");
  }
  if (c->src->ssh_known_hosts) {
    files[0] = c->src->ssh_known_hosts;
  } else {
    const char *home = getenv("HOME");
    if (home && *home)
      files[0] = home_file = xasprintf("%s/.ssh/known_hosts", home);
    files[files[0] ? 1 : 0] = "/etc/ssh/ssh_known_hosts";
  }
  for (size_t i = 0; i < ARRAY_SIZE(files) && files[i]; i++) {
    struct buf text = BUF_INIT;
    struct err sub = ERR_INIT;
    int fr = file_read_all(files[i], GITSRC_KNOWN_HOSTS_MAX_BYTES, &text, &sub);

    if (fr == -ENOENT && !c->src->ssh_known_hosts) {
      buf_dispose(&text);
      continue;
    }
    if (fr < 0) {
      r = err_set_src(err, fr, ERR_SRC_INPUT, "%s", sub.msg);
      buf_dispose(&text);
      break;
    }
    any_file = true;
    buf_printf(&tried, "%s%s", tried.len ? ", " : "", files[i]);
    r = gitsrc_known_hosts_check(files[i], buf_cstr(&text), text.len, c->host, c->port, key,
                                 key_len, hk->hash_sha256, &sub);
    buf_dispose(&text);
    if (r == 0 || r == -EKEYREJECTED) {
      if (r < 0)
        err_set_src(err, -EPERM, ERR_SRC_INPUT, "%s", sub.msg);
      break;
    }
  }
  if (r == -ENOKEY) {
    char name[300];
    str_format(name, sizeof(name), c->port != 22 ? "[%s]:%d" : "%s", c->host, c->port);
    r = err_set_src(err, -EPERM, ERR_SRC_INPUT,
                    any_file ? "no host key for %s in %s; add it (ssh-keyscan) to ssh_known_hosts"
                             : "no host key for %s: no known_hosts file (%s); set ssh_known_hosts",
                    name, any_file ? buf_cstr(&tried) : "~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts");
  }
  buf_dispose(&tried);
  free(home_file);
  return r < 0 ? -EPERM : 0;
}

static int certificate_cb(git_cert *cert, int valid, const char *host, void *payload) {
  struct ctx *c = payload;
  const git_cert_hostkey *hk;
  struct err sub = ERR_INIT;
  char fp[64] = "", type[64] = "";

  (void)host;
  if (cert->cert_type != GIT_CERT_HOSTKEY_LIBSSH2)
    return GIT_PASSTHROUGH; /* X.509: libgit2 verified it against the CA store */
  (void)valid; /* libgit2 1.5 reads no known_hosts: its "valid" means nothing here */
  if (c->src->ssh_insecure_skip_host_key_check)
    return 0;
  hk = (const git_cert_hostkey *)cert;
  if (check_known_hosts(c, hk, &sub) == 0)
    return 0;
  if (hk->type & GIT_CERT_SSH_RAW) {
    ssh_blob_fingerprint(hk->hostkey, hk->hostkey_len, fp);
    ssh_blob_type(hk->hostkey, hk->hostkey_len, type, sizeof(type));
  }
  err_set_src(&c->cause, -EPERM, ERR_SRC_INPUT, "SSH host key check failed: %s (the server %s:%d offered %s key %s)",
              sub.msg, c->host, c->port, type[0] ? type : "a", fp[0] ? fp : "(unknown)");
  return GIT_ECERTIFICATE;
}

static int progress_cb(const git_indexer_progress *st, void *payload) {
  struct ctx *c = payload;

  if (st->received_bytes > c->src->max_pack_bytes) {
    err_set_src(&c->cause, -EFBIG, ERR_SRC_GIT,
                "the fetch from %s exceeded max_pack_bytes: %zu bytes received, the limit is "
                "%llu bytes",
                c->src->url_shown, st->received_bytes, (unsigned long long)c->src->max_pack_bytes);
    return -1;
  }
  return 0;
}

/* A failed libgit2 transport call: the callbacks' cause first, then libgit2. */
static int transport_error(struct ctx *c, int gitrc, struct err *err, const char *what) {
  const git_error *ge = git_error_last();
  const char *m = ge && ge->message ? ge->message : "";

  if (err_isset(&c->cause)) {
    *err = c->cause;
    return c->cause.code;
  }
  if (c->http_credentials && str_has_prefix(m, "cannot redirect from '")) {
    /* GIT_REMOTE_REDIRECT_NONE: "cannot redirect from 'a' to 'b'" */
    const char *to = strstr(m, "' to '");
    return err_set_src(err, -EPERM, ERR_SRC_INPUT,
                       "%s redirected to %s%s, another origin (scheme, host or port); egressd "
                       "sends credentials only to the origin of the configured URL and stopped "
                       "before connecting: if the repository moved, configure its new URL",
                       c->src->url_shown, to ? "'" : "", to ? to + 6 : "another host");
  }
  if (strstr(m, "Connection refused"))
    return err_set_src(err, -ECONNREFUSED, ERR_SRC_GIT, "%s %s: %s", what, c->src->url_shown, m);
  if (gitrc == GIT_EAUTH || strstr(m, "401") || strstr(m, "authentication")) {
    if (c->http_credentials)
      return err_set_src(err, -EACCES, ERR_SRC_GIT,
                         "the server %s rejected the credentials from %s '%s' (%s)", c->src->url_shown,
                         c->src->token_file ? "token_file" : "password_file",
                         c->src->token_file ? c->src->token_file : c->src->password_file, m);
    return err_set_src(err, -EACCES, ERR_SRC_GIT, "%s %s: authentication failed: %s", what,
                       c->src->url_shown, m);
  }
  if (strstr(m, "403") || strstr(m, "404"))
    return err_set_src(err, -ENOENT, ERR_SRC_GIT, "%s %s: %s", what, c->src->url_shown, m);
  return gitsrc_git_error(err, gitrc, "%s %s", what, c->src->url_shown);
}

/* --- the child ------------------------------------------------------------- */

static int find_ref(struct ctx *c, git_remote *remote, git_oid *ret, struct err *err) {
  const git_remote_head **heads;
  size_t n;
  int r = git_remote_ls(&heads, &n, remote);

  if (r < 0)
    return transport_error(c, r, err, "cannot list the refs of");
  for (size_t i = 0; i < n; i++)
    if (strcmp(heads[i]->name, c->src->ref) == 0) {
      *ret = heads[i]->oid;
      return 0;
    }
  return err_set_src(err, -ENOENT, ERR_SRC_GIT, "%s has no ref %s (it advertises %zu refs)",
                     c->src->url_shown, c->src->ref, n);
}

static int child_run(struct gitsrc *src, enum op op, struct helper_result *res, struct err *err) {
  struct ctx c = {.src = src};
  git_repository *repo = NULL;
  git_remote *remote = NULL;
  git_remote_callbacks cbs;
  git_remote_connect_options co;
  git_strarray headers = {NULL, 0};
  struct buf header = BUF_INIT;
  char *header_str = NULL;
  git_oid remote_oid, local_oid;
  int r;

  if (src->ca_file && git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, src->ca_file, NULL) < 0)
    return gitsrc_git_error(err, -1, "cannot use ca_file '%s'", src->ca_file);
  git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
  if ((r = git_repository_open_bare(&repo, src->cache_dir)) < 0)
    return gitsrc_git_error(err, r, "cannot open cache repository '%s'", src->cache_dir);
  if ((r = git_remote_lookup(&remote, repo, "origin")) < 0) {
    r = gitsrc_git_error(err, r, "no remote 'origin' in '%s'", src->cache_dir);
    goto out;
  }
  if (!str_has_prefix(src->url, "http") && !str_has_prefix(src->url, "git://") &&
      !str_has_prefix(src->url, "file://") && src->url[0] != '/')
    ssh_host_port(src->url, c.host, sizeof(c.host), &c.port); /* ssh:// or user@host:path */
  if ((src->token_file || src->password_file) && str_has_prefix(src->url, "http")) {
    if ((r = auth_header(src, &header, err)) < 0)
      goto out;
    header_str = header.data;
    headers.strings = &header_str;
    headers.count = 1;
    c.http_credentials = true;
  }
  git_remote_init_callbacks(&cbs, GIT_REMOTE_CALLBACKS_VERSION);
  cbs.credentials = credentials_cb;
  cbs.certificate_check = certificate_cb;
  cbs.transfer_progress = progress_cb;
  cbs.payload = &c;
  git_remote_connect_options_init(&co, GIT_REMOTE_CONNECT_OPTIONS_VERSION);
  co.callbacks = cbs;
  co.custom_headers = headers;
  if (c.http_credentials) {
    co.follow_redirects = GIT_REMOTE_REDIRECT_NONE; /* no other host, at any stage */
    if ((r = origin_guard_install(&c, err)) < 0)
      goto out;
  }
  if ((r = git_remote_connect_ext(remote, GIT_DIRECTION_FETCH, &co)) < 0) {
    r = transport_error(&c, r, err, "cannot connect to");
    goto out;
  }
  if ((r = find_ref(&c, remote, &remote_oid, err)) < 0)
    goto out;
  git_oid_tostr(res->oid, sizeof(res->oid), &remote_oid);
  r = git_reference_name_to_id(&local_oid, repo, GITSRC_FETCH_REF);
  res->changed = r < 0 || !git_oid_equal(&local_oid, &remote_oid);
  if (op == OP_FETCH) {
    git_fetch_options fo;
    char *spec = xasprintf("+%s:%s", src->ref, GITSRC_FETCH_REF);
    git_strarray specs = {&spec, 1};

    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    fo.callbacks = cbs;
    fo.prune = GIT_FETCH_NO_PRUNE;
    fo.update_fetchhead = 0;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    fo.custom_headers = headers;
    fo.follow_redirects = co.follow_redirects;
    r = git_remote_download(remote, &specs, &fo);
    if (r < 0) {
      r = transport_error(&c, r, err, "cannot fetch from");
    } else if ((r = git_remote_update_tips(remote, &cbs, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE,
                                           "egressd: fetch")) < 0) {
      r = gitsrc_git_error(err, r, "cannot update %s in '%s'", GITSRC_FETCH_REF, src->cache_dir);
    } else if ((r = git_reference_name_to_id(&local_oid, repo, GITSRC_FETCH_REF)) < 0 ||
               !git_oid_equal(&local_oid, &remote_oid)) {
      r = err_set_src(err, -EIO, ERR_SRC_GIT,
                      "fetched %s from %s but %s does not point at the advertised commit %s",
                      src->ref, src->url_shown, GITSRC_FETCH_REF, res->oid);
    }
    free(spec);
    if (r < 0)
      goto out;
  }
  git_remote_disconnect(remote);
  r = 0;
out:
  buf_dispose_secret(&header);
  git_remote_free(remote);
  git_repository_free(repo);
  return r;
}

static void limit_memory(const struct gitsrc *src) {
#ifndef UNDER_ASAN
  /* libgit2 inflates objects while indexing; a small pack can expand to a
   * huge blob. Errors are ignored (e.g. setrlimit filtered by the unit's
   * SystemCallFilter): the limit is a second line of defence. */
  uint64_t limit = (1ull << 30) + 4 * src->max_pack_bytes;
  struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
  (void)setrlimit(RLIMIT_AS, &rl);
#else
  (void)src;
#endif
}

static void __attribute__((noreturn)) child_main(struct gitsrc *src, enum op op, int fd) {
  struct helper_result res;
  struct err err = ERR_INIT;
  int r;

  memset(&res, 0, sizeof(res));
  (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  limit_memory(src);
  r = child_run(src, op, &res, &err);
  res.rc = r < 0 ? r : 0;
  if (r < 0) {
    /* a libgit2 message may quote the URL: hide its credentials (W-8) */
    char **secrets = url_secrets(src->url, REDACT_PARTIAL_MIN);
    struct buf msg = BUF_INIT;

    buf_puts(&msg, err.msg[0] ? err.msg : "fetch helper failed");
    redact_secrets(&msg, (const char *const *)secrets);
    res.src = (int)err.src;
    res.detail = err.detail;
    str_copy(res.msg, sizeof(res.msg), buf_cstr(&msg));
    buf_dispose_secret(&msg);
    url_secrets_free(secrets);
  }
  (void)fd_write_all(fd, &res, sizeof(res));
  _exit(0);
}

/* --- the parent ------------------------------------------------------------ */

/* Remove what a killed child may have left: the ref lock and libgit2's
 * temporary pack files. Safe because we hold the cache's flock. */
static void cleanup_after_kill(struct gitsrc *src) {
  char *lock = xasprintf("%s/%s.lock", src->cache_dir, GITSRC_FETCH_REF);
  char *packdir = xasprintf("%s/objects/pack", src->cache_dir);
  DIR *d;
  struct dirent *de;

  (void)unlink(lock);
  if ((d = opendir(packdir))) {
    while ((de = readdir(d)))
      if (str_has_prefix(de->d_name, "pack_git2_") || str_has_prefix(de->d_name, "tmp_")) {
        char *p = xasprintf("%s/%s", packdir, de->d_name);
        (void)unlink(p);
        free(p);
      }
    closedir(d);
  }
  free(lock);
  free(packdir);
}

static int run_helper(struct gitsrc *src, enum op op, struct helper_result *res, struct err *err) {
  char *lock_path;
  int lock_fd, pipefd[2], status = 0, r = 0;
  size_t got = 0;
  uint64_t deadline;
  pid_t pid;
  bool killed = false;

  if (src->local_only)
    return err_set(err, -EINVAL, "'%s' was opened without a remote", src->path);
  lock_path = xasprintf("%s/%s", src->cache_dir, LOCK_NAME);
  lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock_fd < 0) {
    r = err_set_errno(err, -errno, "cannot open '%s'", lock_path);
    free(lock_path);
    return r;
  }
  if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
    r = errno == EWOULDBLOCK
            ? err_set(err, -EBUSY, "another egressd process is fetching into '%s'", src->cache_dir)
            : err_set_errno(err, -errno, "cannot lock '%s'", lock_path);
    goto out_lock;
  }
  if (pipe2(pipefd, O_CLOEXEC) < 0) {
    r = err_set_errno(err, -errno, "cannot create a pipe");
    goto out_lock;
  }
  pid = fork();
  if (pid < 0) {
    r = err_set_errno(err, -errno, "cannot start the fetch helper process");
    close(pipefd[0]);
    close(pipefd[1]);
    goto out_lock;
  }
  if (pid == 0) {
    close(pipefd[0]);
    child_main(src, op, pipefd[1]);
  }
  close(pipefd[1]);
  deadline = time_now_mono_usec() + (uint64_t)src->timeout_sec * USEC_PER_SEC;
  while (got < sizeof(*res)) {
    uint64_t now = time_now_mono_usec();
    struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
    ssize_t n;
    int pr;

    if (now >= deadline) {
      killed = true;
      break;
    }
    pr = poll(&pfd, 1, (int)((deadline - now + 999) / 1000));
    if (pr < 0 && errno == EINTR)
      continue;
    if (pr < 0) {
      r = err_set_errno(err, -errno, "cannot wait for the fetch helper");
      killed = true;
      break;
    }
    if (pr == 0)
      continue; /* the deadline check above ends the loop */
    n = read(pipefd[0], (char *)res + got, sizeof(*res) - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(pipefd[0]);
  if (killed)
    (void)kill(pid, SIGKILL);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (killed) {
    cleanup_after_kill(src);
    if (r == 0)
      r = err_set_src(err, -ETIMEDOUT, ERR_SRC_GIT,
                      "%s %s did not complete within %u seconds (timeout); the last fetched "
                      "commit is unchanged",
                      op == OP_POLL ? "polling" : "fetching from", src->url_shown, src->timeout_sec);
  } else if (got < sizeof(*res)) {
    cleanup_after_kill(src);
    if (WIFSIGNALED(status))
      r = err_set_src(err, -EIO, ERR_SRC_GIT, "the fetch helper for %s died with signal %d",
                      src->url_shown, WTERMSIG(status));
    else
      r = err_set_src(err, -EIO, ERR_SRC_GIT, "the fetch helper for %s exited without an answer",
                      src->url_shown);
  } else if (res->rc < 0) {
    res->msg[sizeof(res->msg) - 1] = '\0';
    r = err_set_src(err, res->rc, (enum err_src)res->src, "%s", res->msg);
    if (err && err->detail == 0)
      err->detail = res->detail;
  }
out_lock:
  close(lock_fd); /* releases the flock */
  free(lock_path);
  return r;
}

int gitsrc_poll(struct gitsrc *src, struct gitsrc_oid *ret_remote, bool *ret_changed,
                struct err *err) {
  struct helper_result res;
  int r;

  memset(&res, 0, sizeof(res));
  r = run_helper(src, OP_POLL, &res, err);
  if (r < 0)
    return r;
  res.oid[GITSRC_OID_HEXSZ] = '\0';
  if (gitsrc_oid_parse(res.oid, ret_remote) < 0)
    return err_set(err, -EIO, "the fetch helper returned no commit id");
  *ret_changed = res.changed != 0;
  return 0;
}

int gitsrc_fetch(struct gitsrc *src, struct gitsrc_oid *ret_head, struct err *err) {
  struct helper_result res;
  int r;

  memset(&res, 0, sizeof(res));
  r = run_helper(src, OP_FETCH, &res, err);
  if (r < 0)
    return r;
  res.oid[GITSRC_OID_HEXSZ] = '\0';
  if (gitsrc_oid_parse(res.oid, ret_head) < 0)
    return err_set(err, -EIO, "the fetch helper returned no commit id");
  return 0;
}
