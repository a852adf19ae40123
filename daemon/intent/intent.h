/* intent: the config-repo model. A checkout (or a Git tree) of the config
 * repo holds YAML documents of three kinds under apiVersion egressd.io/v1:
 *
 *   EgressGateway  an SMM egress gateway (IstioMeshGateway + Istio Gateway)
 *   EgressIntent   "namespace N may reach hosts H on ports P through gateway G"
 *   Fleet          the clusters (name, labels) and the rollout waves
 *
 * intent_repo_load() parses every *.yaml / *.yml file of a fileset (except
 * under templates/, which holds template overrides for render/), checks
 * structure (unknown fields, types, required fields), meaning (DNS names,
 * FQDNs, ports, protocols, references, conflicts, selectors) and reports
 * every problem at once as file:line:col diagnostics. Layer 2: no I/O, no
 * logging. The field reference is repo-layout/README.md and
 * docs/config-repo.md; when you add a field, also touch those, the schema
 * tables in intent-load.c and tests/unit/test-intent.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/diag.h"
#include "base/err.h"
#include "base/fileset.h"
#include "base/strmap.h"

#define INTENT_API_VERSION "egressd.io/v1"

/* The CA bundle of the istio-proxy image: what TLS origination verifies the
 * external server against unless the intent names another CA. */
#define INTENT_DEFAULT_CA "/etc/ssl/certs/ca-certificates.crt"

struct doc_node;

struct intent_pos {
  const char *file;        /* borrowed from the repo */
  uint32_t line, col;
};

struct intent_label {
  const char *key, *value;
};

enum intent_selector_op {
  INTENT_SELECTOR_IN,
  INTENT_SELECTOR_NOT_IN,
  INTENT_SELECTOR_EXISTS,
  INTENT_SELECTOR_DOES_NOT_EXIST,
};

struct intent_selector_expr {
  struct intent_pos pos;
  const char *key;
  enum intent_selector_op op;
  const char **values;
  size_t n_values;
};

/* A Kubernetes label selector. An absent selector matches everything. */
struct intent_selector {
  bool present;
  struct intent_label *match_labels;
  size_t n_match_labels;
  struct intent_selector_expr *exprs;
  size_t n_exprs;
  struct intent_pos pos;
};

enum intent_protocol {
  INTENT_PROTOCOL_HTTP,
  INTENT_PROTOCOL_HTTPS,   /* TLS from the app, passed through by SNI */
  INTENT_PROTOCOL_TLS,     /* the same on the wire; any TLS protocol */
  INTENT_PROTOCOL_TCP,     /* opaque TCP (databases, SMTP): routed by port, or by address */
};

struct intent_gateway_port {
  const char *name;        /* http, http-*, https, https-*, tls, tls-* */
  int port;                /* service port */
  int target_port;         /* container port; defaults to port */
  enum intent_protocol protocol;  /* from the name */
  struct intent_pos pos;
};

struct intent_gateway {
  const char *name, *namespace;
  const char *id;          /* "namespace/name" */
  const char *cp_name, *cp_namespace;
  int replicas_min, replicas_max;
  bool run_as_root;
  const char *service_type;
  /* where and how big the gateway's pods are (dedicated egress nodes): as
   * written (checked), for the IstioMeshGateway's spec.deployment; NULL when
   * absent */
  const struct doc_node *node_selector, *tolerations, *affinity, *resources;
  struct intent_gateway_port *ports;
  size_t n_ports;
  struct intent_selector clusters;
  struct intent_pos pos;   /* the document */
  const char *file;        /* as named in messages */
  const char *path;        /* relative to the repo root, for annotations */
};

struct intent_port {
  int number;              /* the port the application connects to */
  enum intent_protocol protocol;
  int target_port;         /* the port on the external host */
  struct intent_pos pos;
};

struct intent {
  const char *name, *namespace;
  const char *id;          /* "namespace/name" */
  const char *gateway_ref; /* as written: "name" or "namespace/name" */
  struct intent_gateway *gateway;  /* resolved; NULL when invalid */
  const char **hosts;
  struct intent_pos *host_pos;
  size_t n_hosts;
  struct intent_port *ports;
  size_t n_ports;
  /* with a wildcard host (*.example.com): the one server that hosts every
   * name the wildcard covers, where the gateway sends it all (istio.io's
   * wildcard egress for a single hosting server) */
  const char *upstream;
  struct intent_pos upstream_pos;
  bool tls_origination;
  /* with tls_origination: how the gateway verifies the external server. At
   * most one is set; neither means the system CA bundle of the gateway pod
   * (INTENT_DEFAULT_CA). The server's name is always checked (SAN = host). */
  const char *ca_certificates;     /* a CA file in the gateway pod */
  const char *credential_name;     /* a Secret (ca.crt) in the gateway's namespace */
  struct intent_pos ca_pos;
  bool enforce;
  bool network_policy;     /* with enforce: the namespace's Kubernetes NetworkPolicy too */
  struct intent_pos network_policy_pos;
  bool adopt;              /* take over same-named objects egressd did not create */
  struct intent_selector clusters;
  struct intent_pos pos;
  const char *file;        /* as named in messages */
  const char *path;        /* relative to the repo root, for annotations */
};

struct intent_fleet_cluster {
  const char *name;
  struct intent_label *labels;
  size_t n_labels;
  struct intent_pos pos;
};

struct intent_wave {
  const char *name;
  struct intent_selector selector;
  unsigned max_parallel;   /* default 1 */
  unsigned max_failures;   /* default 0 */
  uint64_t bake_usec;      /* default 60s */
  struct intent_pos pos;
};

struct intent_fleet {
  const char *name;        /* also the instance label of rendered objects */
  struct intent_fleet_cluster *clusters;
  size_t n_clusters;
  struct intent_wave *waves;
  size_t n_waves;
  struct intent_pos pos;
};

struct intent_repo {
  struct intent_gateway **gateways;   /* sorted by id */
  size_t n_gateways;
  struct intent **intents;            /* sorted by id */
  size_t n_intents;
  struct intent_fleet *fleet;         /* never NULL after a successful load */
  struct fileset *templates;          /* templates/<name>.yaml overrides; may be empty */
  /* private */
  struct doc_arena *arena;
  struct strmap gateway_index;
};

/* The file names a config repo is read from (for fileset_load_dir() and
 * gitsrc_tree_read()): NULL-terminated. */
extern const char *const intent_file_suffixes[];

struct intent_load_options {
  const char *root_name;   /* prefix for file names in messages ("" or "repo/") */
  /* the names of the templates under templates/ that mean something (from
   * render_template_names()); others get a warning. NULL: accept any. */
  const char *const *known_templates;
};

/* Load and check the config repo in @fs. On success *ret is a new repo
 * (intent_repo_free). Every problem goes to @diags (sorted later by the
 * caller); the result is then -EINVAL and *ret is untouched. Warnings alone
 * do not fail. @err is for internal failures only. The repo keeps pointers
 * into @fs only for the templates fileset, which it copies. */
int intent_repo_load(struct fileset *fs, const struct intent_load_options *opts,
                     struct intent_repo **ret, struct diag_list *diags, struct err *err);
void intent_repo_free(struct intent_repo *r);

const struct intent_gateway *intent_repo_gateway(const struct intent_repo *r, const char *ns,
                                                 const char *name);
const struct intent_fleet_cluster *intent_fleet_cluster_find(const struct intent_fleet *f,
                                                             const char *name);

/* Does @sel match a cluster with @labels? An absent selector matches. */
bool intent_selector_matches(const struct intent_selector *sel, const struct intent_label *labels,
                             size_t n_labels);

/* Should @in / @gw be rendered on @cluster? NULL cluster: yes (render all). */
bool intent_applies_to(const struct intent *in, const struct intent_fleet_cluster *cluster);
bool intent_gateway_applies_to(const struct intent_gateway *gw,
                               const struct intent_fleet_cluster *cluster);

const char *intent_protocol_name(enum intent_protocol p);

/* Is @host an IPv4 address ("10.1.2.3", or "10.1.2.3/32")? Then @ret (at
 * least 16 bytes) gets the address alone. An intent may name an address
 * for TCP ports only; the mesh knows it by intent_ip_host_name(). */
bool intent_host_ip(const char *host, char *ret, size_t size);
/* The mesh host name that stands for an IPv4 address: ip-10-1-2-3.egressd.internal. */
void intent_ip_host_name(const char *ip, char *ret, size_t size);
/* Do an intent port of protocol @intent_proto and a gateway port of
 * @gateway_proto carry the same kind of traffic (HTTP, or TLS by SNI)? */
bool intent_protocol_compatible(enum intent_protocol intent_proto,
                                enum intent_protocol gateway_proto);
