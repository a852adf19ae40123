/* A cluster's client: the parsed kubeconfig turned into what every request
 * needs (base URL with the server's path prefix, tls-server-name routing,
 * CA bundle, client certificate, proxy, credentials), and its teardown.
 *
 * Invariants: a client for an http:// server has no credentials (refused
 * here, so nothing is ever sent in the clear); CA, certificate and key are
 * checked with OpenSSL at construction, so a bad file is reported with its
 * name instead of as a handshake failure later; the key is held in a buffer
 * that is wiped on free.
 *
 * When you add a kubeconfig field that changes requests, also touch
 * send_attempt() in kube-http.c.
 */
#include <errno.h>
#include <string.h>

#include "base/fileio.h"
#include "base/mem.h"
#include "base/str.h"
#include "kube/kube-int.h"

void kube_options_init(struct kube_options *o) {
  memset(o, 0, sizeof(*o));
  o->request_timeout_usec = 30 * 1000000ULL;
  o->connect_timeout_usec = 10 * 1000000ULL;
  o->max_response_bytes = 64u << 20;
  o->max_attempts = 6;
  o->backoff_base_usec = 200 * 1000ULL;
  o->backoff_max_usec = 10 * 1000000ULL;
  o->exec_timeout_usec = 60 * 1000000ULL;
  o->list_page_size = 500;
  o->watch_timeout_sec = 300;
  o->user_agent = NULL;
  o->field_manager = NULL;
  o->http2 = true;
}

static void fill_defaults(struct kube_options *o) {
  struct kube_options d;

  kube_options_init(&d);
  if (!o->request_timeout_usec)
    o->request_timeout_usec = d.request_timeout_usec;
  if (!o->connect_timeout_usec)
    o->connect_timeout_usec = d.connect_timeout_usec;
  if (!o->max_response_bytes)
    o->max_response_bytes = d.max_response_bytes;
  if (!o->max_attempts)
    o->max_attempts = d.max_attempts;
  if (!o->backoff_base_usec)
    o->backoff_base_usec = d.backoff_base_usec;
  if (!o->backoff_max_usec)
    o->backoff_max_usec = d.backoff_max_usec;
  if (!o->exec_timeout_usec)
    o->exec_timeout_usec = d.exec_timeout_usec;
  if (!o->list_page_size)
    o->list_page_size = d.list_page_size;
  if (!o->watch_timeout_sec)
    o->watch_timeout_sec = d.watch_timeout_sec;
}

static bool has_credentials(const struct kube_config *cfg) {
  return cfg->token || cfg->token_file || cfg->username || cfg->password || cfg->exec ||
         cfg->client_cert_file || cfg->client_cert_data.len || cfg->client_key_file ||
         cfg->client_key_data.len;
}

static int read_pem(struct kube_client *c, const char *file, const struct buf *data,
                    struct buf *out, bool secret, struct err *err) {
  int r;

  if (data && data->len) {
    buf_append(out, data->data, data->len);
    return 0;
  }
  if (!file)
    return 0;
  if (secret)
    buf_reserve(out, KUBE_PEM_MAX_BYTES / 16); /* typical keys fit: no realloc copies */
  r = file_read_all(file, KUBE_PEM_MAX_BYTES, out, err);
  if (r < 0)
    err_prefix(err, "cluster %s", c->name);
  return r;
}

/* Split the server URL; set base_url, and the tls-server-name routing. */
static int setup_url(struct kube_client *c, struct err *err) {
  const struct kube_config *cfg = c->cfg;
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
  struct buf base = BUF_INIT;
  size_t plen;
  int r = 0;

  if (!u)
    return err_set(err, -ENOMEM, "cluster %s: out of memory", c->name);
  if (!cfg->server || curl_url_set(u, CURLUPART_URL, cfg->server, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
    r = err_set_src(err, -EINVAL, ERR_SRC_INPUT, "cluster %s: server '%s' in %s is not a URL",
                    c->name, cfg->server ? cfg->server : "", cfg->path);
    goto out;
  }
  c->https = strcmp(scheme, "https") == 0;
  if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
    port = NULL;
  if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
    path = NULL;
  plen = path ? strlen(path) : 0;
  while (plen > 0 && path[plen - 1] == '/')
    plen--;
  if (!c->https && has_credentials(cfg)) {
    r = err_set_src(err, -EINVAL, ERR_SRC_INPUT,
                    "cluster %s: refusing to send the credentials of user '%s' over plain http:// "
                    "to %s (client-go would silently drop them); use an https:// server in %s",
                    c->name, cfg->user_ref ? cfg->user_ref : "", cfg->server, cfg->path);
    goto out;
  }
  if (cfg->tls_server_name && c->https) {
    /* Connect to the server's address, but speak TLS (SNI and certificate
     * check) to tls-server-name: libcurl takes both from the URL host, so
     * the URL names tls-server-name and CONNECT_TO routes it. */
    const char *p = port ? port : "443";
    char *route = xasprintf("%s:%s:%s:%s", cfg->tls_server_name, p, host, p);
    struct curl_slist *l = curl_slist_append(NULL, route);
    free(route);
    if (!l) {
      r = err_set(err, -ENOMEM, "cluster %s: out of memory", c->name);
      goto out;
    }
    c->connect_to = l;
    c->host_header = port ? xasprintf("Host: %s:%s", host, port) : xasprintf("Host: %s", host);
    buf_printf(&base, "https://%s:%s", cfg->tls_server_name, p);
  } else {
    buf_printf(&base, "%s://%s", scheme, host);
    if (port)
      buf_printf(&base, ":%s", port);
  }
  buf_append(&base, path ? path : "", plen);
  c->base_url = buf_detach(&base, NULL);
out:
  buf_dispose(&base);
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_free(path);
  curl_url_cleanup(u);
  return r;
}

static int setup_tls(struct kube_client *c, struct err *err) {
  const struct kube_config *cfg = c->cfg;
  int r;

  r = read_pem(c, cfg->ca_file, &cfg->ca_data, &c->ca_pem, false, err);
  if (r < 0)
    return r;
  if (c->ca_pem.len && kube_pem_count_certs(&c->ca_pem) < 0)
    return err_set_src(err, -EINVAL, ERR_SRC_INPUT,
                       "cluster %s: %s of cluster '%s' in %s holds no PEM certificate", c->name,
                       cfg->ca_file ? cfg->ca_file : "certificate-authority-data", cfg->cluster_ref,
                       cfg->path);
  r = read_pem(c, cfg->client_cert_file, &cfg->client_cert_data, &c->cert_pem, false, err);
  if (r < 0)
    return r;
  r = read_pem(c, cfg->client_key_file, &cfg->client_key_data, &c->key_pem, true, err);
  if (r < 0)
    return r;
  if (c->cert_pem.len) {
    const char *cert = cfg->client_cert_file ? cfg->client_cert_file : "client-certificate-data";
    const char *key = cfg->client_key_file ? cfg->client_key_file : "client-key-data";
    r = kube_pem_check_pair(&c->cert_pem, &c->key_pem);
    if (r == -EBADMSG)
      return err_set_src(err, -EINVAL, ERR_SRC_INPUT,
                         "cluster %s: %s of user '%s' in %s holds no PEM certificate", c->name,
                         cert, cfg->user_ref, cfg->path);
    if (r == -ENOKEY)
      return err_set_src(err, -EINVAL, ERR_SRC_INPUT,
                         "cluster %s: %s of user '%s' in %s holds no PEM private key", c->name, key,
                         cfg->user_ref, cfg->path);
    if (r == -EKEYREJECTED)
      return err_set_src(err, -EINVAL, ERR_SRC_INPUT,
                         "cluster %s: the client key (%s) of user '%s' in %s does not match its "
                         "certificate (%s)",
                         c->name, key, cfg->user_ref, cfg->path, cert);
    if (r < 0)
      return err_set(err, r, "cluster %s: cannot check the client certificate", c->name);
  }
  if (cfg->proxy_url) {
    c->proxy = str_has_prefix(cfg->proxy_url, "socks5://")
                   ? xasprintf("socks5h://%s", cfg->proxy_url + strlen("socks5://"))
                   : xstrdup(cfg->proxy_url);
  }
  return 0;
}

int kube_client_new_take(struct kube_loop *loop, const char *name, struct kube_config *cfg,
                         const struct kube_options *opts, struct kube_client **ret,
                         struct err *err) {
  struct kube_client *c;
  int r;

  if (str_is_empty(name)) {
    kube_config_free(cfg);
    return err_set(err, -EINVAL, "a cluster needs a name");
  }
  c = xcalloc(1, sizeof(*c));
  c->loop = loop;
  c->name = xstrdup(name);
  c->cfg = cfg;
  if (opts)
    c->opts = *opts;
  else
    kube_options_init(&c->opts);
  fill_defaults(&c->opts);
  c->user_agent = c->opts.user_agent ? xstrdup(c->opts.user_agent)
                                     : xstrdup("egressd/" EGRESSD_VERSION);
  c->field_manager = c->opts.field_manager ? xstrdup(c->opts.field_manager) : xstrdup("egressd");
  c->opts.user_agent = c->user_agent;
  c->opts.field_manager = c->field_manager;
  r = setup_url(c, err);
  if (r >= 0)
    r = setup_tls(c, err);
  if (r >= 0)
    r = kube_auth_init(&c->auth, c, err);
  if (r < 0) {
    kube_client_free(c);
    return r;
  }
  kube_loop_clients_changed(loop, +1);
  c->counted = true;
  *ret = c;
  return 0;
}

int kube_client_new(struct kube_loop *loop, const char *name, const char *kubeconfig_path,
                    const char *context, const struct kube_options *opts,
                    struct kube_client **ret, struct diag_list *diags, struct err *err) {
  struct kube_config *cfg = NULL;
  int r;

  r = kube_config_load(kubeconfig_path, context, &cfg, diags, err);
  if (r < 0) {
    err_prefix(err, "cluster %s", name);
    return r;
  }
  return kube_client_new_take(loop, name, cfg, opts, ret, err);
}

void kube_client_free(struct kube_client *c) {
  if (!c)
    return;
  kube_ops_cancel_all(c);
  while (c->requests)
    kube_http_cancel(c->requests);
  if (c->counted)
    kube_loop_clients_changed(c->loop, -1);
  if (c->auth.c)
    kube_auth_dispose(&c->auth);
  kube_discovery_free(c->disco);
  kube_config_free(c->cfg);
  free(c->name);
  free(c->user_agent);
  free(c->field_manager);
  free(c->base_url);
  free(c->host_header);
  curl_slist_free_all(c->connect_to);
  buf_dispose(&c->ca_pem);
  buf_dispose(&c->cert_pem);
  buf_dispose_secret(&c->key_pem);
  if (c->proxy) {
    mem_wipe(c->proxy, strlen(c->proxy));
    free(c->proxy);
  }
  free(c);
}

const char *kube_client_name(const struct kube_client *c) { return c->name; }
const struct kube_config *kube_client_config(const struct kube_client *c) { return c->cfg; }
const char *kube_client_namespace(const struct kube_client *c) {
  return c->cfg->namespace ? c->cfg->namespace : "default";
}
