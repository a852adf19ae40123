/* The host config: /etc/egressd/egressd.yaml, never in Git. Where the config
 * repo is and how to reach it, how commits are verified, which clusters this
 * host manages (name -> kubeconfig), and the daemon's own settings. The
 * config repo's Fleet joins these cluster names to labels and waves.
 *
 * One schema (below, and docs/host-config.md), one parser, every problem
 * reported with file:line:col in one pass. Relative paths are resolved
 * against the directory of the config file. Secrets are never in this file:
 * it names files that hold them (token, password, keys).
 *
 * When you add a field, also touch: the schema tables and apply() in
 * hostconfig.c, docs/host-config.md, docs/man/egressd.yaml.5, and
 * docs/examples/egressd.yaml.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "base/diag.h"
#include "base/err.h"

/* Where a daemon's configuration lives on Debian, whatever the install
 * prefix of the binary. */
#define HOSTCONFIG_DEFAULT_PATH "/etc/egressd/egressd.yaml"

enum hostconfig_verify {
  HOSTCONFIG_VERIFY_NONE,
  HOSTCONFIG_VERIFY_HEAD,
  HOSTCONFIG_VERIFY_ALL,
};

struct hostconfig_cluster {
  char *name;
  char *kubeconfig;          /* absolute path */
  char *context;             /* NULL: the kubeconfig's current-context */
  unsigned line, col;        /* where it is defined, for messages */
};

struct hostconfig {
  char *path;                /* the file it was read from */
  struct {
    char *url;
    char *url_shown;         /* url_redact(url): for logs, status and the ledger (W-8) */
    char *ref;               /* default refs/heads/main */
    uint64_t interval_usec;  /* poll interval, default 15s */
    uint64_t timeout_usec;   /* per fetch, default 60s */
    char *ssh_key;           /* private key file (SSH URLs) */
    char *known_hosts;       /* OpenSSH known_hosts (SSH URLs) */
    bool insecure_skip_host_key_check;
    char *token_file;        /* HTTPS token */
    char *username;          /* HTTPS basic auth user */
    char *password_file;     /* HTTPS basic auth password */
    bool allow_rewrite;      /* accept non-fast-forward history */
    uint64_t max_fetch_bytes;
    struct {
      bool enabled;          /* repository.webhook is set (svc/webhook.h) */
      char *listen;          /* "127.0.0.1:9419"; NULL: the socket systemd passes */
      char *secret_file;     /* checked readable at load; read by the server */
    } webhook;
  } repo;
  struct {
    enum hostconfig_verify policy;  /* default all */
    char *allowed_signers;
    char *revoked_keys;             /* KRL or list of keys (gpg.ssh.revocationFile); NULL: none */
  } verify;
  struct hostconfig_cluster *clusters;
  size_t n_clusters;
  struct {
    uint64_t drift_interval_usec;      /* default 30s; the drift check when not watching */
    bool watch;                        /* default true: watch managed objects, correct from events */
    uint64_t resync_interval_usec;     /* default 10m: the full check while watches are up */
    unsigned prune_budget;             /* default 10 */
    uint64_t health_timeout_usec;      /* default 5m */
    uint64_t request_timeout_usec;     /* default 30s */
    uint64_t unreachable_timeout_usec; /* default 10m */
  } sync;
  char *istio_api_version;   /* NULL: per cluster from discovery */
  char *state_dir;           /* default /var/lib/egressd */
  char *runtime_dir;         /* default /run/egressd */
  char *ledger_dir;          /* default <state_dir>/ledger */
  char *ledger_key;          /* default <config dir>/ledger_ed25519 */
  char *ledger_origin;       /* default egressd/<hostname>; with coordination egressd/<identity> */
  char *metrics_textfile;    /* NULL: no metrics file */
  int log_level;             /* syslog priority, default LOG_INFO */
  struct {
    bool enabled;            /* coordination is set: several members, one fleet (svc/coord.h) */
    char *kubeconfig;        /* the coordination (management) cluster */
    char *context;           /* NULL: the kubeconfig's current-context */
    char *namespace;         /* default egressd-system */
    char *identity;          /* default: the host name; a DNS-1123 label */
    bool standby;            /* mode standby (one active member), else sharded */
    uint64_t lease_duration_usec;  /* default 15s */
    uint64_t renew_deadline_usec;  /* default 10s */
    uint64_t retry_period_usec;    /* default 2s */
  } coord;
};

/* Read and check @path. On success *ret is a new config (hostconfig_free).
 * Problems in the file go to @diags and the result is -EINVAL; I/O errors
 * fill @err. */
int hostconfig_load(const char *path, struct hostconfig **ret, struct diag_list *diags,
                    struct err *err);
/* The same from memory; @path names the file in messages and anchors
 * relative paths. */
int hostconfig_parse(const char *path, const char *data, size_t len, struct hostconfig **ret,
                     struct diag_list *diags, struct err *err);
const struct hostconfig_cluster *hostconfig_cluster_find(const struct hostconfig *c,
                                                         const char *name);
const char *hostconfig_verify_name(enum hostconfig_verify v);
void hostconfig_free(struct hostconfig *c);
