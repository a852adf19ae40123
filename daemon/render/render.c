/* The renderer: for each kind in apply order, build the values of each
 * object, apply the kind's template, stamp the ownership labels, check that
 * names do not collide, sort by namespace/name and hand the objects out.
 *
 * Memory: one kind at a time lives in a scratch arena that is reset between
 * kinds, so rendering 10,000 intents never holds every manifest at once.
 *
 * Invariants: the template decides the shape of an object but never its
 * identity (apiVersion, kind, namespace, name are checked after templating)
 * nor its ownership (the labels are set after templating).
 *
 * When you add a rendered kind: enum render_kind and kind_infos, a template
 * in templates/, a builder below, render_repo's pass list, docs/templates.md,
 * the golden files in tests/data/render (and their *.mesh tables), the
 * schema check test, and its CRD schema (tools/gen-crd-schemas.py writes
 * crd-schemas.json for render-crd.c).
 */
#include "render/render.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/strmap.h"
#include "base/vec.h"
#include "render/render-int.h"

static const struct render_kind_info kind_infos[_RENDER_KIND_MAX] = {
    [RENDER_KIND_ISTIO_MESH_GATEWAY] = {"IstioMeshGateway", "servicemesh.cisco.com",
                                        "istiomeshgateways"},
    [RENDER_KIND_GATEWAY] = {"Gateway", "networking.istio.io", "gateways"},
    [RENDER_KIND_SERVICE_ENTRY] = {"ServiceEntry", "networking.istio.io", "serviceentries"},
    [RENDER_KIND_DESTINATION_RULE] = {"DestinationRule", "networking.istio.io",
                                      "destinationrules"},
    [RENDER_KIND_VIRTUAL_SERVICE] = {"VirtualService", "networking.istio.io", "virtualservices"},
    [RENDER_KIND_SIDECAR] = {"Sidecar", "networking.istio.io", "sidecars"},
    [RENDER_KIND_AUTHORIZATION_POLICY] = {"AuthorizationPolicy", "security.istio.io",
                                          "authorizationpolicies"},
    [RENDER_KIND_NETWORK_POLICY] = {"NetworkPolicy", "networking.k8s.io", "networkpolicies"},
};

const struct render_kind_info *render_kind_info(enum render_kind k) {
  return k < _RENDER_KIND_MAX ? &kind_infos[k] : NULL;
}

int render_kind_from_name(const char *kind) {
  for (int k = 0; k < _RENDER_KIND_MAX; k++)
    if (str_eq(kind_infos[k].kind, kind))
      return k;
  return -EINVAL;
}

bool render_istio_version_valid(const char *v) {
  return str_eq(v, "v1") || str_eq(v, "v1beta1") || str_eq(v, "v1alpha3");
}

const char *render_builtin_template(const char *name, size_t *ret_len) {
  for (const struct render_builtin *b = render_builtins; b->name; b++)
    if (strcmp(b->name, name) == 0) {
      if (ret_len)
        *ret_len = b->len;
      return b->text;
    }
  return NULL;
}

enum tmpl_id {
  T_IMGW,
  T_GATEWAY,
  T_SERVICE_ENTRY,
  T_DESTINATION_RULE,
  T_DESTINATION_RULE_TLS,
  T_VIRTUAL_SERVICE,
  T_SIDECAR,
  T_AUTHORIZATION_POLICY,
  T_NETWORK_POLICY,
  _T_MAX,
};

static const char *const tmpl_files[_T_MAX + 1] = {
    "istiomeshgateway.yaml", "gateway.yaml",         "serviceentry.yaml",
    "destinationrule.yaml",  "destinationrule-tls.yaml", "virtualservice.yaml",
    "sidecar.yaml",          "authorizationpolicy.yaml", "networkpolicy.yaml",       NULL,
};

const char *const *render_template_names(void) { return tmpl_files; }

/* Per gateway on this cluster: the intents routed through it. */
struct gwinfo {
  const struct intent_gateway *gw;
  struct ptrvec intents;
  bool enforce;
};

struct rctx {
  const struct intent_repo *repo;
  const struct render_options *opts;
  render_emit_fn emit;
  void *userdata;
  struct diag_list *diags;
  struct err *err;
  const char *net_api, *sec_api;     /* "networking.istio.io/v1beta1" ... */
  struct doc_arena *tmpl_arena;      /* parsed templates, for the whole run */
  struct doc_node *tmpl[_T_MAX];
  bool overridden[_T_MAX];           /* from the config repo: held to the CRD schema */
  struct render_crd *crd;            /* the CRD schemas, in tmpl_arena once needed */
  struct doc_arena *scratch;         /* one object at a time */
  struct doc_arena *jobs_arena;      /* names of the jobs of one kind */
  struct gwinfo *gws;
  size_t n_gws;
  struct strmap gw_by_id;            /* id -> struct gwinfo * */
  struct strmap names;               /* "Kind/ns/name" -> owner text (malloc'd) */
  struct ptrvec owned_names;         /* to free the owner texts */
  struct job *jobs;
  size_t n_jobs, cap_jobs;
  size_t errors_before;
  bool failed;                       /* a problem was reported: emit nothing more */
  int stop;                          /* the callback's error */
};

/* ---- value builders ---- */

static struct doc_node *str(struct rctx *x, const char *s) { return doc_new_str(x->scratch, s); }
static const char *mesh_host(struct rctx *x, const char *host);
static const char *name_host(struct rctx *x, const char *host);
static struct doc_node *num(struct rctx *x, int64_t i) { return doc_new_int(x->scratch, i); }

static void set(struct rctx *x, struct doc_node *m, const char *k, struct doc_node *v) {
  doc_map_set(x->scratch, m, k, v ? v : doc_new_null(x->scratch));
}

static void set_str(struct rctx *x, struct doc_node *m, const char *k, const char *v) {
  set(x, m, k, v ? str(x, v) : NULL);
}

static struct doc_node *map(struct rctx *x) { return doc_new_map(x->scratch); }
static struct doc_node *seq(struct rctx *x) { return doc_new_seq(x->scratch); }
static void push(struct rctx *x, struct doc_node *s, struct doc_node *v) {
  doc_seq_push(x->scratch, s, v);
}

static struct doc_node *port_number(struct rctx *x, int n) {
  struct doc_node *p = map(x);
  set(x, p, "number", num(x, n));
  return p;
}

/* exportTo for objects the gateway must see too: the own namespace and the
 * gateway's. */
static struct doc_node *export_to(struct rctx *x, const char *ns, const char *gw_ns) {
  struct doc_node *s = seq(x);

  push(x, s, str(x, "."));
  if (gw_ns && strcmp(ns, gw_ns) != 0)
    push(x, s, str(x, gw_ns));
  return s;
}

static const char *gateway_fqdn(struct rctx *x, const struct intent_gateway *g) {
  char *s = xasprintf("%s.%s.svc.cluster.local", g->name, g->namespace);
  const char *r = doc_arena_strdup(x->scratch, s);
  free(s);
  return r;
}

/* Object names: "<intent>-<host>[-suffix]", a DNS-1123 subdomain. Hosts are
 * lower-case FQDNs, so the only rule left is the 253-character limit: a
 * longer name is cut and made unique by a hash of the whole. */
static const char *object_name(struct doc_arena *arena, const char *a, const char *b,
                               const char *suffix) {
  char name[300], tail[16];
  size_t n = str_format(name, sizeof(name), "%s-%s%s", a, b, suffix ? suffix : "");

  if (n > 253 || strlen(a) + strlen(b) + (suffix ? strlen(suffix) : 0) + 1 > 253) {
    uint32_t h = 2166136261u;
    char full[600];
    str_format(full, sizeof(full), "%s-%s%s", a, b, suffix ? suffix : "");
    for (const char *p = full; *p; p++)
      h = (h ^ (unsigned char)*p) * 16777619u;
    str_format(tail, sizeof(tail), "-%08x", h);
    name[253 - strlen(tail)] = '\0';
    /* a label may not end in '-' or '.' */
    for (size_t i = strlen(name); i > 0 && (name[i - 1] == '-' || name[i - 1] == '.'); i--)
      name[i - 1] = '\0';
    str_copy(name + strlen(name), sizeof(name) - strlen(name), tail);
  }
  return doc_arena_strdup(arena, name);
}

static struct doc_node *labels_for(struct rctx *x, const char *key, const char *value) {
  struct doc_node *l = map(x);

  set_str(x, l, RENDER_LABEL_MANAGED_BY, RENDER_MANAGER);
  set_str(x, l, RENDER_LABEL_INSTANCE, x->repo->fleet->name);
  if (key)
    set_str(x, l, key, value);
  return l;
}

static struct doc_node *annotations_for(struct rctx *x, const char *source, const char *owner) {
  struct doc_node *a = map(x);

  if (source)
    set_str(x, a, RENDER_ANNOTATION_SOURCE, source);
  set_str(x, a, RENDER_ANNOTATION_OWNER, owner);
  return a;
}

static struct doc_node *base_values(struct rctx *x, struct doc_node *labels,
                                    struct doc_node *annotations) {
  struct doc_node *v = map(x), *api = map(x);

  set_str(x, api, "networking", x->net_api);
  set_str(x, api, "security", x->sec_api);
  set(x, v, "apiVersion", api);
  set(x, v, "labels", labels);
  set(x, v, "annotations", annotations);
  return v;
}

/* ---- jobs: what to render, known before anything is rendered ---- */

/* One object to render. Jobs of a kind are listed (names computed, checked
 * for collisions), sorted by namespace/name, then rendered one at a time in a
 * scratch arena that is reset after each: memory stays flat however many
 * intents the repo has. */
struct job {
  enum tmpl_id tmpl;
  enum render_kind kind;
  const char *ns, *name;
  const struct intent *in;
  const struct intent_gateway *gw;
  size_t host;                       /* VirtualService, TLS DestinationRule */
};

static void add_job(struct rctx *x, enum tmpl_id t, enum render_kind kind, const char *ns,
                    const char *name, const struct intent *in, const struct intent_gateway *gw,
                    size_t host) {
  const struct render_kind_info *ki = &kind_infos[kind];
  char key[600], *owner;
  const char *prev;

  str_format(key, sizeof(key), "%s/%s/%s", ki->kind, ns, name);
  owner = in ? xasprintf("intent %s (%s)", in->id, in->file)
             : xasprintf("gateway %s (%s)", gw->id, gw->file);
  prev = strmap_get(&x->names, key);
  if (prev) {
    const struct intent_pos *at = in ? &in->pos : &gw->pos;
    diag_error(x->diags, at->file, at->line, at->col,
               "%s %s/%s would be rendered twice: by %s and by %s; rename one of them", ki->kind,
               ns, name, prev, owner);
    free(owner);
    x->failed = true;
    return;
  }
  strmap_put(&x->names, key, owner);
  ptrvec_push(&x->owned_names, owner);
  x->jobs = xgrow(x->jobs, &x->cap_jobs, x->n_jobs + 1, sizeof(*x->jobs));
  x->jobs[x->n_jobs++] = (struct job){t, kind, ns, name, in, gw, host};
}

/* A name that lives until the kind is rendered. */
static const char *job_name(struct rctx *x, const char *a, const char *b, const char *suffix) {
  return object_name(x->jobs_arena, a, b, suffix);
}

static bool gateway_has_servers(const struct gwinfo *gi) {
  for (size_t k = 0; k < gi->intents.n; k++) {
    const struct intent *in = gi->intents.items[k];
    for (size_t p = 0; p < in->n_ports; p++)
      for (size_t i = 0; i < gi->gw->n_ports; i++)
        if (gi->gw->ports[i].port == in->ports[p].number)
          return true;
  }
  return false;
}

static bool host_is_ip(const char *host) {
  char ip[16];
  return intent_host_ip(host, ip, sizeof(ip));
}

/* The SNI of the sidecar's mTLS to the gateway for a host, which picks the
 * gateway's server for it: the host (its mesh name), or for a wildcard host
 * the intent's upstream (the Gateway server of "*.example.com" matches it). */
static const char *mtls_sni(struct rctx *x, const struct intent *in, const char *host) {
  return host[0] == '*' && in->upstream ? in->upstream : mesh_host(x, host);
}

/* Does the intent name a host by name (then it has a DNS ServiceEntry)? */
static bool has_named_host(const struct intent *in) {
  for (size_t h = 0; h < in->n_hosts; h++)
    if (!host_is_ip(in->hosts[h]))
      return true;
  return false;
}

static bool on_cluster(struct rctx *x, const struct intent *in) {
  return in->gateway && intent_applies_to(in, x->opts->cluster) &&
         strmap_has(&x->gw_by_id, in->gateway->id);
}

#define SIDECAR_NAME "egressd-registry-only"
#define NETWORK_POLICY_NAME "egressd-egress-only"
#define UPSTREAM_JOB (SIZE_MAX - 1) /* the ServiceEntry of a wildcard intent's upstream */

/* One TLS-origination DestinationRule per gateway and host, in the gateway's
 * namespace; the job names the first intent that originates TLS to it. */
static void plan_origination(struct rctx *x) {
  for (size_t i = 0; i < x->n_gws; i++) {
    const struct gwinfo *gi = &x->gws[i];
    struct strmap done = {0};
    for (size_t k = 0; k < gi->intents.n; k++) {
      const struct intent *in = gi->intents.items[k];
      for (size_t h = 0; in->tls_origination && h < in->n_hosts; h++) {
        if (strmap_has(&done, in->hosts[h]))
          continue;
        strmap_put(&done, in->hosts[h], NULL);
        add_job(x, T_DESTINATION_RULE_TLS, RENDER_KIND_DESTINATION_RULE, gi->gw->namespace,
                job_name(x, gi->gw->name, in->hosts[h], "-tls"), in, gi->gw, h);
      }
    }
    strmap_dispose(&done);
  }
}

static void plan_kind(struct rctx *x, enum render_kind kind) {
  switch (kind) {
  case RENDER_KIND_ISTIO_MESH_GATEWAY:
  case RENDER_KIND_GATEWAY:
    for (size_t i = 0; i < x->n_gws; i++) {
      const struct gwinfo *gi = &x->gws[i];
      if (kind == RENDER_KIND_ISTIO_MESH_GATEWAY)
        add_job(x, T_IMGW, kind, gi->gw->namespace, gi->gw->name, NULL, gi->gw, 0);
      else if (gateway_has_servers(gi)) /* a Gateway needs at least one server */
        add_job(x, T_GATEWAY, kind, gi->gw->namespace, gi->gw->name, NULL, gi->gw, 0);
    }
    break;
  case RENDER_KIND_SERVICE_ENTRY:
  case RENDER_KIND_DESTINATION_RULE:
  case RENDER_KIND_VIRTUAL_SERVICE:
    for (size_t i = 0; i < x->repo->n_intents; i++) {
      const struct intent *in = x->repo->intents[i];
      if (!on_cluster(x, in))
        continue;
      if (kind == RENDER_KIND_SERVICE_ENTRY) {
        /* one for the hosts named by name (DNS), one per address (STATIC);
         * a wildcard's (NONE) and its upstream's (DNS, for the gateway) */
        if (has_named_host(in))
          add_job(x, T_SERVICE_ENTRY, kind, in->namespace, in->name, in, NULL, SIZE_MAX);
        if (in->upstream)
          add_job(x, T_SERVICE_ENTRY, kind, in->namespace, job_name(x, in->name, "upstream", NULL),
                  in, NULL, UPSTREAM_JOB);
        for (size_t h = 0; h < in->n_hosts; h++)
          if (host_is_ip(in->hosts[h]))
            add_job(x, T_SERVICE_ENTRY, kind, in->namespace,
                    job_name(x, in->name, in->hosts[h], NULL), in, NULL, h);
        continue;
      }
      if (kind == RENDER_KIND_DESTINATION_RULE)
        add_job(x, T_DESTINATION_RULE, kind, in->namespace,
                job_name(x, in->name, "gateway", NULL), in, NULL, 0);
      for (size_t h = 0; kind == RENDER_KIND_VIRTUAL_SERVICE && h < in->n_hosts; h++)
        add_job(x, T_VIRTUAL_SERVICE, kind, in->namespace,
                job_name(x, in->name, name_host(x, in->hosts[h]), NULL), in, NULL, h);
    }
    if (kind == RENDER_KIND_DESTINATION_RULE)
      plan_origination(x);
    break;
  case RENDER_KIND_SIDECAR:
  case RENDER_KIND_NETWORK_POLICY: {
    /* one per namespace, for its first intent that asks for it */
    bool sidecar = kind == RENDER_KIND_SIDECAR;
    struct strmap done = {0};
    for (size_t i = 0; i < x->repo->n_intents; i++) {
      const struct intent *in = x->repo->intents[i];
      if (!(sidecar ? in->enforce : in->network_policy) || !on_cluster(x, in) ||
          strmap_has(&done, in->namespace))
        continue;
      strmap_put(&done, in->namespace, NULL);
      add_job(x, sidecar ? T_SIDECAR : T_NETWORK_POLICY, kind, in->namespace,
              sidecar ? SIDECAR_NAME : NETWORK_POLICY_NAME, in, NULL, 0);
    }
    strmap_dispose(&done);
    break;
  }
  case RENDER_KIND_AUTHORIZATION_POLICY:
    for (size_t i = 0; i < x->n_gws; i++) {
      const struct gwinfo *gi = &x->gws[i];
      char *name;
      if (!gi->enforce)
        continue;
      name = xasprintf("%s-egressd-allow", gi->gw->name);
      add_job(x, T_AUTHORIZATION_POLICY, kind, gi->gw->namespace,
              doc_arena_strdup(x->jobs_arena, name), NULL, gi->gw, 0);
      free(name);
    }
    break;
  default:
    break;
  }
}

/* ---- values, one builder per template ---- */

/* The labels of the gateway's pods that select them: the SMM chart's two,
 * and the namespace (Istio Gateway selectors span namespaces). */
static struct doc_node *gateway_selector(struct rctx *x, const struct intent_gateway *g) {
  struct doc_node *sel = map(x);

  set_str(x, sel, "gateway-name", g->name);
  set_str(x, sel, "gateway-type", "egress");
  set_str(x, sel, RENDER_LABEL_GATEWAY_NAMESPACE, g->namespace);
  return sel;
}

static struct doc_node *gateway_values(struct rctx *x, const struct intent_gateway *g) {
  struct doc_node *v, *gv = map(x), *cp = map(x), *rep = map(x), *svc = map(x), *ports = seq(x);
  char owner[600];

  str_format(owner, sizeof(owner), "EgressGateway %s", g->id);
  v = base_values(x, labels_for(x, RENDER_LABEL_GATEWAY, g->name),
                  annotations_for(x, g->path, owner));
  set_str(x, gv, "name", g->name);
  set_str(x, gv, "namespace", g->namespace);
  set_str(x, gv, "fqdn", gateway_fqdn(x, g));
  set_str(x, cp, "name", g->cp_name);
  set_str(x, cp, "namespace", g->cp_namespace);
  set(x, gv, "controlPlane", cp);
  /* SMM autoscales only when max > min; otherwise it runs `count` replicas
   * (default 1), so count carries min */
  set(x, rep, "count", num(x, g->replicas_min));
  set(x, rep, "min", num(x, g->replicas_min));
  set(x, rep, "max", num(x, g->replicas_max));
  set(x, gv, "replicas", rep);
  set(x, gv, "runAsRoot", doc_new_bool(x->scratch, g->run_as_root));
  if (g->run_as_root) {
    /* runAsRoot alone keeps the chart's uid 1337; root needs the pod's
     * securityContext too (the istio-operator sample does the same) */
    struct doc_node *sc = map(x);
    set(x, sc, "runAsUser", num(x, 0));
    set(x, sc, "runAsGroup", num(x, 0));
    set(x, sc, "runAsNonRoot", doc_new_bool(x->scratch, false));
    set(x, gv, "securityContext", sc);
  } else {
    set(x, gv, "securityContext", NULL);
  }
  set_str(x, svc, "type", g->service_type);
  for (size_t i = 0; i < g->n_ports; i++) {
    struct doc_node *p = map(x);
    set_str(x, p, "name", g->ports[i].name);
    set(x, p, "port", num(x, g->ports[i].port));
    set_str(x, p, "protocol", "TCP");
    set(x, p, "targetPort", num(x, g->ports[i].target_port));
    push(x, ports, p);
  }
  set(x, svc, "ports", ports);
  set(x, gv, "service", svc);
  set(x, gv, "selector", gateway_selector(x, g));
  {
    struct doc_node *pl = map(x);
    set_str(x, pl, RENDER_LABEL_GATEWAY_NAMESPACE, g->namespace);
    set(x, gv, "podLabels", pl);
  }
  /* dedicated egress nodes: as written in the EgressGateway (checked there) */
  set(x, gv, "nodeSelector", g->node_selector ? doc_copy(x->scratch, g->node_selector) : NULL);
  set(x, gv, "tolerations", g->tolerations ? doc_copy(x->scratch, g->tolerations) : NULL);
  set(x, gv, "affinity", g->affinity ? doc_copy(x->scratch, g->affinity) : NULL);
  set(x, gv, "resources", g->resources ? doc_copy(x->scratch, g->resources) : NULL);
  set(x, gv, "servers", NULL);
  set(x, v, "gateway", gv);
  return v;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A host as a part of an object name: "*.example.com" has no place in one,
 * it is written wildcard.example.com. */
static const char *name_host(struct rctx *x, const char *host) {
  char *s;
  const char *r;

  if (host[0] != '*')
    return host;
  s = xasprintf("wildcard%s", host + 1);
  r = doc_arena_strdup(x->jobs_arena, s);
  free(s);
  return r;
}

/* "<a>-<b>" as a DNS-1123 label (63 characters): an Istio subset name or a
 * Gateway server's port name. Dots become dashes; a longer one is cut and
 * made unique by a hash of the whole. */
static const char *label_name(struct rctx *x, const char *a, const char *b) {
  char name[600], tail[16];
  uint32_t h = 2166136261u;

  str_format(name, sizeof(name), "%s-%s", a, b);
  for (char *p = name; *p; p++)
    if (*p == '.')
      *p = '-';
  if (strlen(name) > 63) {
    for (const char *p = name; *p; p++)
      h = (h ^ (unsigned char)*p) * 16777619u;
    str_format(tail, sizeof(tail), "-%08x", h);
    name[63 - strlen(tail)] = '\0';
    for (size_t i = strlen(name); i > 0 && name[i - 1] == '-'; i--)
      name[i - 1] = '\0';
    str_copy(name + strlen(name), sizeof(name) - strlen(name), tail);
  }
  return doc_arena_strdup(x->scratch, name);
}

/* The name the mesh knows a host by: the host itself, or for an IPv4
 * address (TCP) a name of its own (ip-10-1-2-3.egressd.internal), which the
 * address's ServiceEntry registers. */
static const char *mesh_host(struct rctx *x, const char *host) {
  char ip[16], name[64];

  if (!intent_host_ip(host, ip, sizeof(ip)))
    return host;
  intent_ip_host_name(ip, name, sizeof(name));
  return doc_arena_strdup(x->scratch, name);
}

static struct doc_node *server(struct rctx *x, int number, const char *name, const char *protocol,
                               const char **hosts, size_t n) {
  struct doc_node *srv = map(x), *port = map(x), *hs = seq(x), *tls = map(x);

  set(x, port, "number", num(x, number));
  set_str(x, port, "name", name);
  set_str(x, port, "protocol", protocol);
  set(x, srv, "port", port);
  for (size_t h = 0; h < n; h++)
    push(x, hs, str(x, hosts[h]));
  set(x, srv, "hosts", hs);
  /* sidecars reach the gateway over Istio mTLS: the gateway knows who
   * calls (source.namespaces, principals) and the hop is encrypted */
  set_str(x, tls, "mode", "ISTIO_MUTUAL");
  set(x, srv, "tls", tls);
  return srv;
}

/* The servers of an Istio Gateway: per gateway port, the hosts of the intents
 * on this cluster that use it; ports nobody uses get no server. Every server
 * terminates the sidecars' Istio mTLS (the subset DestinationRules send it
 * with the host as SNI). An HTTP port is one HTTPS server for its hosts (the
 * gateway routes by Host); a TLS port carries the application's own TLS
 * inside the mTLS, which the gateway cannot look into: one server per host,
 * picked by the mTLS SNI, whose tcp route forwards to that host; a TCP port
 * likewise (TCP names no host: the SNI of the mTLS does). */
static struct doc_node *gateway_servers(struct rctx *x, const struct gwinfo *gi) {
  struct doc_node *servers = seq(x);

  for (size_t i = 0; i < gi->gw->n_ports; i++) {
    const struct intent_gateway_port *gp = &gi->gw->ports[i];
    struct strmap seen = {0};
    const char **hosts = NULL;
    size_t n = 0, cap = 0;

    for (size_t k = 0; k < gi->intents.n; k++) {
      const struct intent *in = gi->intents.items[k];
      bool uses = false;
      for (size_t p = 0; p < in->n_ports && !uses; p++)
        uses = in->ports[p].number == gp->port;
      for (size_t h = 0; uses && h < in->n_hosts; h++) {
        const char *mh = mesh_host(x, in->hosts[h]);
        if (!strmap_has(&seen, mh)) {
          strmap_put(&seen, mh, NULL);
          hosts = xgrow(hosts, &cap, n + 1, sizeof(*hosts));
          hosts[n++] = mh;
        }
      }
    }
    strmap_dispose(&seen);
    if (n)
      qsort(hosts, n, sizeof(*hosts), cmp_str);
    if (n && gp->protocol == INTENT_PROTOCOL_HTTP) {
      push(x, servers, server(x, gp->port, gp->name, "HTTPS", hosts, n));
    } else {
      for (size_t h = 0; h < n; h++)
        push(x, servers,
             server(x, gp->port, label_name(x, gp->name, name_host(x, hosts[h])), "TLS", &hosts[h], 1));
    }
    free(hosts);
  }
  return servers;
}

static struct doc_node *intent_values(struct rctx *x, const struct intent *in) {
  char owner[600];
  struct doc_node *v, *iv = map(x), *hosts = seq(x);

  str_format(owner, sizeof(owner), "EgressIntent %s", in->id);
  v = base_values(x, labels_for(x, RENDER_LABEL_INTENT, in->name),
                  annotations_for(x, in->path, owner));
  set_str(x, iv, "name", in->name);
  set_str(x, iv, "namespace", in->namespace);
  for (size_t h = 0; h < in->n_hosts; h++)
    push(x, hosts, str(x, in->hosts[h]));
  set(x, iv, "hosts", hosts);
  set(x, iv, "exportTo", export_to(x, in->namespace, in->gateway->namespace));
  set_str(x, iv, "gateway", in->gateway->id);
  set(x, v, "intent", iv);
  return v;
}

static const char *proto_lower(enum intent_protocol p) {
  return p == INTENT_PROTOCOL_HTTP    ? "http"
         : p == INTENT_PROTOCOL_HTTPS ? "https"
         : p == INTENT_PROTOCOL_TCP   ? "tcp"
                                      : "tls";
}

static void se_port(struct rctx *x, struct doc_node *ports, const struct intent_port *ip) {
  struct doc_node *e = map(x);
  char name[32];

  str_format(name, sizeof(name), "%s-%d", proto_lower(ip->protocol), ip->number);
  set(x, e, "number", num(x, ip->number));
  set_str(x, e, "name", name);
  set_str(x, e, "protocol", intent_protocol_name(ip->protocol));
  /* the external host listens elsewhere (TLS origination: 443): Istio sends
   * to the endpoint's targetPort, and the mesh knows only the port it routes */
  if (ip->target_port != ip->number)
    set(x, e, "targetPort", num(x, ip->target_port));
  push(x, ports, e);
}

/* The subset of the gateway's DestinationRule for one host of an intent. */
static const char *subset_name(struct rctx *x, const struct intent *in, const char *host) {
  return label_name(x, in->name, name_host(x, host));
}

/* The two routes of one port: mesh -> the gateway's Service (the host's
 * subset: mTLS with the host as SNI), gateway -> the host. An HTTP port
 * gets http routes; a TLS port a tls route in the mesh (by SNI, the
 * application's TLS) and a tcp route at the gateway (which sees only the
 * mTLS it terminated, and forwards what is inside); a TCP port tcp routes
 * (in the mesh by port, or by the address for a host given by address).
 * @written is the host as the intent has it. */
static void routes(struct rctx *x, struct doc_node *http, struct doc_node *tls_routes,
                   struct doc_node *tcp, const struct intent *in, const struct intent_port *p,
                   const char *written, const char *gwref, const char *gw_fqdn) {
  bool tls = p->protocol != INTENT_PROTOCOL_HTTP;
  const char *host = mesh_host(x, written);
  char ip[16];

  for (int hop = 0; hop < 2; hop++) {
    struct doc_node *rt = map(x), *match = seq(x), *m = map(x), *gws = seq(x);
    struct doc_node *route = seq(x), *dest = map(x), *d = map(x);

    push(x, gws, str(x, hop == 0 ? "mesh" : gwref));
    set(x, m, "gateways", gws);
    set(x, m, "port", num(x, p->number));
    if (tls && hop == 0 && p->protocol != INTENT_PROTOCOL_TCP) {
      struct doc_node *sni = seq(x);
      push(x, sni, str(x, host));
      set(x, m, "sniHosts", sni);
    } else if (hop == 0 && intent_host_ip(written, ip, sizeof(ip))) {
      struct doc_node *subnets = seq(x);
      char *cidr = xasprintf("%s/32", ip);
      push(x, subnets, str(x, doc_arena_strdup(x->scratch, cidr)));
      free(cidr);
      set(x, m, "destinationSubnets", subnets);
    }
    push(x, match, m);
    set(x, rt, "match", match);
    if (hop == 0) {
      set_str(x, d, "host", gw_fqdn);
      set_str(x, d, "subset", subset_name(x, in, written));
    } else {
      /* the ServiceEntry maps the port to targetPort; a wildcard's names all
       * go to the intent's upstream */
      set_str(x, d, "host", written[0] == '*' && in->upstream ? in->upstream : host);
    }
    set(x, d, "port", port_number(x, p->number));
    set(x, dest, "destination", d);
    push(x, route, dest);
    set(x, rt, "route", route);
    push(x,
         !tls                                             ? http
         : hop == 0 && p->protocol != INTENT_PROTOCOL_TCP ? tls_routes
                                                          : tcp,
         rt);
  }
}

/* The intent's ServiceEntry of its named hosts (resolution DNS: the gateway
 * resolves them), or (j->host) that of one address: its own host name, the
 * address as the mesh's address for it (so a sidecar routes it by address)
 * and as the one endpoint (resolution STATIC). */
static struct doc_node *service_entry_values(struct rctx *x, const struct job *j) {
  const struct intent *in = j->in;
  struct doc_node *v = intent_values(x, in), *se = map(x), *ports = seq(x), *hosts = seq(x);

  /* only the ports the mesh routes: an extra port (the external one of TLS
   * origination) would let a sidecar reach it around the gateway */
  for (size_t p = 0; p < in->n_ports; p++)
    se_port(x, ports, &in->ports[p]);
  set_str(x, se, "name", j->name);
  set(x, se, "exportTo", export_to(x, in->namespace, in->gateway->namespace));
  if (j->host == UPSTREAM_JOB) {
    /* for the gateway only: a sidecar that saw it could reach it directly */
    struct doc_node *gw_only = seq(x);
    push(x, hosts, str(x, in->upstream));
    push(x, gw_only, str(x, str_eq(in->namespace, in->gateway->namespace) ? "." : in->gateway->namespace));
    set(x, se, "exportTo", gw_only);
    set_str(x, se, "resolution", "DNS");
    set(x, se, "addresses", NULL);
    set(x, se, "endpoints", NULL);
  } else if (j->host == SIZE_MAX) {
    bool wildcard = false;
    for (size_t h = 0; h < in->n_hosts; h++)
      if (!host_is_ip(in->hosts[h])) {
        push(x, hosts, str(x, in->hosts[h]));
        wildcard |= in->hosts[h][0] == '*';
      }
    /* a wildcard cannot be resolved: the sidecars of the intent's namespace
     * route it by name (NONE), the gateway sends it to the upstream */
    set_str(x, se, "resolution", wildcard ? "NONE" : "DNS");
    if (wildcard)
      set(x, se, "exportTo", export_to(x, in->namespace, NULL));
    set(x, se, "addresses", NULL);
    set(x, se, "endpoints", NULL);
  } else {
    char ip[16];
    struct doc_node *addrs = seq(x), *eps = seq(x), *ep = map(x);
    intent_host_ip(in->hosts[j->host], ip, sizeof(ip));
    push(x, hosts, str(x, mesh_host(x, in->hosts[j->host])));
    push(x, addrs, str(x, doc_arena_strdup(x->scratch, ip)));
    set_str(x, ep, "address", doc_arena_strdup(x->scratch, ip));
    push(x, eps, ep);
    set_str(x, se, "resolution", "STATIC");
    set(x, se, "addresses", addrs);
    set(x, se, "endpoints", eps);
  }
  set(x, se, "hosts", hosts);
  set(x, se, "ports", ports);
  set(x, v, "serviceEntry", se);
  return v;
}

static struct doc_node *destination_rule_values(struct rctx *x, const struct job *j) {
  const struct intent *in = j->in;
  struct doc_node *v = intent_values(x, in), *dr = map(x);

  struct doc_node *subsets = seq(x);

  set_str(x, dr, "name", j->name);
  set_str(x, dr, "namespace", in->namespace);
  set_str(x, dr, "host", gateway_fqdn(x, in->gateway));
  /* one subset per host: the sidecar's mTLS to the gateway carries the host
   * as SNI, which picks the gateway's server (and filter chain) for it */
  for (size_t h = 0; h < in->n_hosts; h++) {
    struct doc_node *sub = map(x), *tp = map(x), *pls = seq(x);
    for (size_t p = 0; p < in->n_ports; p++) {
      struct doc_node *pl = map(x), *t = map(x);
      set(x, pl, "port", port_number(x, in->ports[p].number));
      set_str(x, t, "mode", "ISTIO_MUTUAL");
      set_str(x, t, "sni", mtls_sni(x, in, in->hosts[h]));
      set(x, pl, "tls", t);
      push(x, pls, pl);
    }
    set_str(x, sub, "name", subset_name(x, in, in->hosts[h]));
    set(x, tp, "portLevelSettings", pls);
    set(x, sub, "trafficPolicy", tp);
    push(x, subsets, sub);
  }
  set(x, dr, "subsets", subsets);
  set(x, dr, "exportTo", export_to(x, in->namespace, NULL));
  set(x, v, "destinationRule", dr);
  return v;
}

/* The DestinationRule with which the gateway originates TLS to one host: in
 * the gateway's namespace and seen only there (a sidecar that saw it would
 * originate TLS itself), one per gateway and host for every intent that
 * originates TLS to it (validation made them agree on ports and CA). The
 * server is verified: its certificate against the CA, its name against the
 * host. */
static struct doc_node *tls_values(struct rctx *x, const struct job *j) {
  const struct gwinfo *gi = strmap_get(&x->gw_by_id, j->gw->id);
  const char *host = j->in->hosts[j->host];
  struct doc_node *v, *tls = map(x), *pls = seq(x), *local = seq(x);
  struct buf owners = BUF_INIT;
  size_t n = 0;

  buf_puts(&owners, "EgressIntent");
  for (size_t k = 0; k < gi->intents.n; k++) {
    const struct intent *in = gi->intents.items[k];
    bool has = false;
    if (!in->tls_origination)
      continue;
    for (size_t h = 0; h < in->n_hosts && !has; h++)
      has = str_eq(in->hosts[h], host);
    if (!has)
      continue;
    buf_printf(&owners, "%s%s", n++ ? ", " : " ", in->id);
    for (size_t p = 0; p < in->n_ports; p++) {
      struct doc_node *pl, *t, *san;
      bool dup = false;
      for (size_t q = 0; q < doc_len(pls); q++)
        dup |= doc_path(pls->u.seq.items[q], "port.number")->u.i == in->ports[p].number;
      if (dup)
        continue;
      pl = map(x);
      t = map(x);
      san = seq(x);
      set(x, pl, "port", port_number(x, in->ports[p].number));
      set_str(x, t, "mode", "SIMPLE");
      set_str(x, t, "sni", host);
      if (in->credential_name)
        set_str(x, t, "credentialName", in->credential_name);
      else
        set_str(x, t, "caCertificates",
                in->ca_certificates ? in->ca_certificates : INTENT_DEFAULT_CA);
      push(x, san, str(x, host));
      set(x, t, "subjectAltNames", san);
      set(x, pl, "tls", t);
      push(x, pls, pl);
    }
  }
  v = base_values(x, labels_for(x, RENDER_LABEL_GATEWAY, j->gw->name),
                  annotations_for(x, j->in->path, buf_cstr(&owners)));
  buf_dispose(&owners);
  set_str(x, tls, "name", j->name);
  set_str(x, tls, "namespace", j->gw->namespace);
  set_str(x, tls, "host", host);
  set_str(x, tls, "sni", host);
  push(x, local, str(x, "."));
  set(x, tls, "exportTo", local);
  set(x, tls, "portLevelSettings", pls);
  set(x, v, "tls", tls);
  return v;
}

static struct doc_node *virtual_service_values(struct rctx *x, const struct job *j) {
  const struct intent *in = j->in;
  const struct intent_gateway *g = in->gateway;
  const char *written = in->hosts[j->host], *host = mesh_host(x, written), *gwref;
  const char *fqdn = gateway_fqdn(x, g);
  struct doc_node *v = intent_values(x, in), *vs = map(x), *gws = seq(x);
  struct doc_node *http = seq(x), *tls = seq(x), *tcp = seq(x);

  if (strcmp(g->namespace, in->namespace) == 0) {
    gwref = g->name;
  } else {
    char *s = xasprintf("%s/%s", g->namespace, g->name);
    gwref = doc_arena_strdup(x->scratch, s);
    free(s);
  }
  push(x, gws, str(x, gwref));
  push(x, gws, str(x, "mesh"));
  for (size_t p = 0; p < in->n_ports; p++)
    routes(x, http, tls, tcp, in, &in->ports[p], written, gwref, fqdn);
  set_str(x, vs, "name", j->name);
  set_str(x, vs, "namespace", in->namespace);
  set_str(x, vs, "host", host);
  set(x, vs, "gateways", gws);
  set(x, vs, "exportTo", export_to(x, in->namespace, g->namespace));
  set(x, vs, "http", doc_len(http) ? http : NULL);
  set(x, vs, "tls", doc_len(tls) ? tls : NULL);
  set(x, vs, "tcp", doc_len(tcp) ? tcp : NULL);
  set(x, v, "virtualService", vs);
  return v;
}

static struct doc_node *sidecar_values(struct rctx *x, const struct job *j) {
  const struct intent *in = j->in;
  struct buf owners = BUF_INIT;
  struct doc_node *v, *sc = map(x);
  size_t n = 0;

  buf_puts(&owners, "EgressIntent");
  for (size_t k = 0; k < x->repo->n_intents; k++) {
    const struct intent *o = x->repo->intents[k];
    if (o->enforce && strcmp(o->namespace, in->namespace) == 0 && on_cluster(x, o))
      buf_printf(&owners, "%s%s", n++ ? ", " : " ", o->id);
  }
  v = base_values(x, labels_for(x, NULL, NULL), annotations_for(x, in->path, buf_cstr(&owners)));
  buf_dispose(&owners);
  set_str(x, sc, "name", j->name);
  set_str(x, sc, "namespace", in->namespace);
  set(x, v, "sidecar", sc);
  return v;
}

/* The port the gateway pod receives a Service port on: Istio matches
 * AuthorizationPolicy ports against it, not the Service port. */
static int gateway_target_port(const struct intent_gateway *g, int port) {
  for (size_t q = 0; q < g->n_ports; q++)
    if (g->ports[q].port == port)
      return g->ports[q].target_port;
  return port;
}

static struct doc_node *str_seq_unique(struct rctx *x, struct doc_node *s, const char *v) {
  for (size_t i = 0; i < doc_len(s); i++)
    if (str_eq(s->u.seq.items[i]->u.str.s, v))
      return s;
  push(x, s, str(x, v));
  return s;
}

/* The rules for one source namespace (intents [from, to) of the gateway,
 * adjacent as intents are sorted by id): it may reach its own hosts on its
 * own ports and nothing else. HTTP: one rule whose operations pair each
 * gateway port with the Host headers of that port. TLS (the application's
 * own, inside the mTLS): one rule per gateway port matching the mTLS SNI,
 * which the subset DestinationRule sets to the host. The source namespace
 * is the peer's mTLS identity. */
static void namespace_rules(struct rctx *x, const struct intent_gateway *g, struct doc_node *rules,
                            const struct ptrvec *intents, size_t from, size_t to) {
  const char *ns = ((const struct intent *)intents->items[from])->namespace;
  struct doc_node *http_to = seq(x);

  for (size_t i = 0; i < g->n_ports; i++) {
    const struct intent_gateway_port *gp = &g->ports[i];
    struct doc_node *hosts = seq(x);
    char port[16];

    for (size_t k = from; k < to; k++) {
      const struct intent *in = intents->items[k];
      for (size_t p = 0; p < in->n_ports; p++) {
        if (in->ports[p].number != gp->port)
          continue;
        for (size_t h = 0; h < in->n_hosts; h++) {
          /* TLS and TCP: the mTLS SNI; HTTP: the Host header, with its port too */
          str_seq_unique(x, hosts, in->ports[p].protocol == INTENT_PROTOCOL_HTTP
                                       ? mesh_host(x, in->hosts[h])
                                       : mtls_sni(x, in, in->hosts[h]));
          if (in->ports[p].protocol == INTENT_PROTOCOL_HTTP) {
            char *hp = xasprintf("%s:%d", in->hosts[h], in->ports[p].number);
            str_seq_unique(x, hosts, doc_arena_strdup(x->scratch, hp));
            free(hp);
          }
        }
      }
    }
    if (!doc_len(hosts))
      continue;
    str_format(port, sizeof(port), "%d", gateway_target_port(g, gp->port));
    if (gp->protocol == INTENT_PROTOCOL_HTTP) {
      struct doc_node *op = map(x), *opv = map(x), *pl = seq(x);
      push(x, pl, str(x, port));
      set(x, opv, "ports", pl);
      set(x, opv, "hosts", hosts);
      set(x, op, "operation", opv);
      push(x, http_to, op);
    } else {
      struct doc_node *rule = map(x), *tov = seq(x), *op = map(x), *opv = map(x), *pl = seq(x);
      struct doc_node *when = seq(x), *cond = map(x);
      push(x, pl, str(x, port));
      set(x, opv, "ports", pl);
      set(x, op, "operation", opv);
      push(x, tov, op);
      set(x, rule, "from", NULL);
      set(x, rule, "to", tov);
      set_str(x, cond, "key", "connection.sni");
      set(x, cond, "values", hosts);
      push(x, when, cond);
      set(x, rule, "when", when);
      push(x, rules, rule);
    }
  }
  if (doc_len(http_to)) {
    struct doc_node *rule = map(x);
    set(x, rule, "from", NULL);
    set(x, rule, "to", http_to);
    push(x, rules, rule);
  }
  /* every rule of this namespace: from its mTLS identity */
  for (size_t r = 0; r < doc_len(rules); r++) {
    struct doc_node *rule = rules->u.seq.items[r], *fromv, *src, *source, *nss;
    if (doc_map_get(rule, "from") && !doc_is(doc_map_get(rule, "from"), DOC_NULL))
      continue;
    fromv = seq(x);
    src = map(x);
    source = map(x);
    nss = seq(x);
    push(x, nss, str(x, ns));
    set(x, source, "namespaces", nss);
    set(x, src, "source", source);
    push(x, fromv, src);
    doc_map_set(x->scratch, rule, "from", fromv);
  }
}

/* ALLOW rules for every intent routed through the gateway, enforcing or not
 * (an ALLOW policy refuses what no rule matches, and the gateway serves
 * both): each source namespace to its own hosts and ports. */
static struct doc_node *authorization_policy_values(struct rctx *x, const struct job *j) {
  const struct gwinfo *gi = strmap_get(&x->gw_by_id, j->gw->id);
  const struct intent_gateway *g = j->gw;
  struct doc_node *v, *ap = map(x), *rules = seq(x);
  char owner[600];

  str_format(owner, sizeof(owner), "EgressGateway %s", g->id);
  v = base_values(x, labels_for(x, RENDER_LABEL_GATEWAY, g->name),
                  annotations_for(x, g->path, owner));
  set_str(x, ap, "name", j->name);
  set_str(x, ap, "namespace", g->namespace);
  set(x, ap, "selector", gateway_selector(x, g));
  for (size_t k = 0; k < gi->intents.n;) {
    const struct intent *first = gi->intents.items[k];
    size_t end = k;
    while (end < gi->intents.n &&
           str_eq(((const struct intent *)gi->intents.items[end])->namespace, first->namespace))
      end++;
    namespace_rules(x, g, rules, &gi->intents, k, end);
    k = end;
  }
  set(x, ap, "rules", rules);
  set(x, v, "authorizationPolicy", ap);
  return v;
}

/* An egress rule of a NetworkPolicy: to the pods with pod_labels in namespace
 * ns, on ports. */
static struct doc_node *np_rule(struct rctx *x, const char *ns, struct doc_node *pod_labels,
                                struct doc_node *ports) {
  struct doc_node *rule = map(x), *to = seq(x), *peer = map(x), *nsel = map(x), *nsl = map(x);
  struct doc_node *psel = map(x);
  set_str(x, nsl, "kubernetes.io/metadata.name", ns);
  set(x, nsel, "matchLabels", nsl);
  set(x, peer, "namespaceSelector", nsel);
  set(x, psel, "matchLabels", pod_labels);
  set(x, peer, "podSelector", psel);
  push(x, to, peer);
  set(x, rule, "to", to);
  set(x, rule, "ports", ports);
  return rule;
}

static struct doc_node *np_port(struct rctx *x, const char *protocol, int port) {
  struct doc_node *p = map(x);
  set_str(x, p, "protocol", protocol);
  set(x, p, "port", num(x, port));
  return p;
}

/* The NetworkPolicy of a namespace that opted in (networkPolicy: true on an
 * enforcing intent): its pods may open connections only to the egress
 * gateways its intents use (on their target ports), to the cluster DNS, and
 * to the control plane (istiod's xDS, 15012) the sidecars need. Kubernetes
 * enforces it below the mesh, so a pod without a sidecar, or traffic that
 * bypasses it, still cannot leave another way. NetworkPolicies add up: the
 * namespace's own policies can allow more. */
static struct doc_node *network_policy_values(struct rctx *x, const struct job *j) {
  const struct intent *in = j->in;
  struct buf owners = BUF_INIT;
  struct doc_node *v, *np = map(x), *egress = seq(x);
  struct strmap gws = {0}, cps = {0};
  size_t n = 0;

  buf_puts(&owners, "EgressIntent");
  for (size_t k = 0; k < x->repo->n_intents; k++) {
    const struct intent *o = x->repo->intents[k];
    const struct intent_gateway *g = o->gateway;
    struct doc_node *ports;
    if (!str_eq(o->namespace, in->namespace) || !on_cluster(x, o))
      continue;
    if (o->network_policy)
      buf_printf(&owners, "%s%s", n++ ? ", " : " ", o->id);
    if (strmap_has(&gws, g->id))
      continue;
    strmap_put(&gws, g->id, NULL);
    ports = seq(x);
    /* every port of the gateway this namespace's intents use, as the pod has it */
    for (size_t q = 0; q < g->n_ports; q++) {
      bool used = false;
      for (size_t k2 = 0; k2 < x->repo->n_intents && !used; k2++) {
        const struct intent *u = x->repo->intents[k2];
        if (u->gateway != g || !str_eq(u->namespace, in->namespace) || !on_cluster(x, u))
          continue;
        for (size_t p = 0; p < u->n_ports && !used; p++)
          used = u->ports[p].number == g->ports[q].port;
      }
      if (used)
        push(x, ports, np_port(x, "TCP", g->ports[q].target_port));
    }
    push(x, egress, np_rule(x, g->namespace, gateway_selector(x, g), ports));
    if (g->cp_namespace)
      strmap_put(&cps, g->cp_namespace, &cps); /* to do (any non-NULL value) */
  }
  {
    /* the cluster DNS */
    struct doc_node *ml = map(x), *ports = seq(x);
    set_str(x, ml, "k8s-app", "kube-dns");
    push(x, ports, np_port(x, "UDP", 53));
    push(x, ports, np_port(x, "TCP", 53));
    push(x, egress, np_rule(x, "kube-system", ml, ports));
  }
  for (size_t k = 0; k < x->repo->n_intents; k++) {
    /* the control planes of those gateways, in a stable order */
    const struct intent *o = x->repo->intents[k];
    const struct intent_gateway *g = o->gateway;
    struct doc_node *ml, *ports;
    if (!str_eq(o->namespace, in->namespace) || !on_cluster(x, o) || !g->cp_namespace ||
        strmap_get(&cps, g->cp_namespace) == NULL)
      continue;
    strmap_put(&cps, g->cp_namespace, NULL);
    ml = map(x);
    ports = seq(x);
    set_str(x, ml, "app", "istiod");
    push(x, ports, np_port(x, "TCP", 15012));
    push(x, egress, np_rule(x, g->cp_namespace, ml, ports));
  }
  strmap_dispose(&gws);
  strmap_dispose(&cps);
  v = base_values(x, labels_for(x, NULL, NULL), annotations_for(x, in->path, buf_cstr(&owners)));
  buf_dispose(&owners);
  set_str(x, np, "name", j->name);
  set_str(x, np, "namespace", in->namespace);
  set(x, np, "egress", egress);
  set(x, v, "networkPolicy", np);
  return v;
}

static struct doc_node *job_values(struct rctx *x, const struct job *j) {
  struct doc_node *v;

  switch (j->tmpl) {
  case T_IMGW:
    return gateway_values(x, j->gw);
  case T_GATEWAY:
    v = gateway_values(x, j->gw);
    doc_map_set(x->scratch, doc_map_get(v, "gateway"), "servers",
                gateway_servers(x, strmap_get(&x->gw_by_id, j->gw->id)));
    return v;
  case T_SERVICE_ENTRY:
    return service_entry_values(x, j);
  case T_DESTINATION_RULE:
    return destination_rule_values(x, j);
  case T_DESTINATION_RULE_TLS:
    return tls_values(x, j);
  case T_VIRTUAL_SERVICE:
    return virtual_service_values(x, j);
  case T_SIDECAR:
    return sidecar_values(x, j);
  case T_AUTHORIZATION_POLICY:
    return authorization_policy_values(x, j);
  case T_NETWORK_POLICY:
    return network_policy_values(x, j);
  default:
    return NULL;
  }
}

/* ---- rendering one job ---- */

static void render_job(struct rctx *x, const struct job *j) {
  const struct render_kind_info *ki = &kind_infos[j->kind];
  const char *want_api = j->kind == RENDER_KIND_ISTIO_MESH_GATEWAY ? "servicemesh.cisco.com/v1alpha1"
                         : j->kind == RENDER_KIND_AUTHORIZATION_POLICY ? x->sec_api
                         : j->kind == RENDER_KIND_NETWORK_POLICY       ? "networking.k8s.io/v1"
                                                                      : x->net_api;
  const struct doc_node *tm = x->tmpl[j->tmpl], *want;
  struct doc_node *values, *obj, *meta, *labels, *annotations;
  struct render_object o;
  int r;

  if (!tm)
    return; /* the template failed to load; already reported */
  values = job_values(x, j);
  if (render_template_apply(x->scratch, tm, values, &obj, x->diags) < 0) {
    x->failed = true;
    return;
  }
  meta = doc_map_get(obj, "metadata");
  if (!str_eq(doc_map_str(obj, "apiVersion"), want_api) ||
      !str_eq(doc_map_str(obj, "kind"), ki->kind) || !str_eq(doc_map_str(meta, "name"), j->name) ||
      !str_eq(doc_map_str(meta, "namespace"), j->ns)) {
    const char *k = doc_map_str(obj, "kind"), *ns = doc_map_str(meta, "namespace");
    const char *nm = doc_map_str(meta, "name"), *av = doc_map_str(obj, "apiVersion");
    diag_error(x->diags, tm->file, tm->line, tm->col,
               "template %s must render %s %s/%s (apiVersion %s); it renders %s %s/%s (apiVersion "
               "%s): a template may shape an object but not rename or move it",
               tmpl_files[j->tmpl], ki->kind, j->ns, j->name, want_api, k ? k : "?",
               ns ? ns : "?", nm ? nm : "?", av ? av : "?");
    x->failed = true;
    return;
  }
  /* ownership is not up to the template */
  labels = doc_map_get(meta, "labels");
  if (!doc_is(labels, DOC_MAP)) {
    labels = map(x);
    doc_map_set(x->scratch, meta, "labels", labels);
  }
  want = doc_map_get(values, "labels");
  for (size_t i = 0; i < doc_len(want); i++)
    doc_map_set(x->scratch, labels, want->u.map.items[i].key,
                doc_copy(x->scratch, want->u.map.items[i].value));
  /* nor are the annotations that say where an object comes from */
  annotations = doc_map_get(meta, "annotations");
  if (!doc_is(annotations, DOC_MAP)) {
    annotations = map(x);
    doc_map_set(x->scratch, meta, "annotations", annotations);
  }
  want = doc_map_get(values, "annotations");
  for (size_t i = 0; i < doc_len(want); i++)
    doc_map_set(x->scratch, annotations, want->u.map.items[i].key,
                doc_copy(x->scratch, want->u.map.items[i].value));
  /* an override may add any field: hold it to the CRD, as the server will */
  if (x->overridden[j->tmpl] &&
      render_crd_check(&x->crd, x->tmpl_arena, want_api, ki->kind, obj, x->diags) != 0)
    x->failed = true;
  if (x->failed || x->stop)
    return; /* keep checking, but hand out nothing after a problem */
  o = (struct render_object){
      .kind = j->kind,
      .api_version = want_api,
      .namespace = j->ns,
      .name = j->name,
      .intent = j->in,
      .gateway = j->gw,
      .adopt = j->in && j->in->adopt,
      .object = obj,
  };
  r = x->emit ? x->emit(x->userdata, &o) : 0;
  if (r < 0)
    x->stop = r;
}

static int cmp_job(const void *a, const void *b) {
  const struct job *p = a, *q = b;
  int c = strcmp(p->ns, q->ns);
  return c ? c : strcmp(p->name, q->name);
}

static void render_kind(struct rctx *x, enum render_kind kind) {
  x->n_jobs = 0;
  doc_arena_reset(x->jobs_arena);
  plan_kind(x, kind);
  if (x->n_jobs)
    qsort(x->jobs, x->n_jobs, sizeof(*x->jobs), cmp_job);
  for (size_t i = 0; i < x->n_jobs && !x->stop; i++) {
    render_job(x, &x->jobs[i]);
    doc_arena_reset(x->scratch);
  }
}

/* ---- driver ---- */

static int load_templates(struct rctx *x) {
  int bad = 0;

  for (int t = 0; t < _T_MAX; t++) {
    const struct fileset_entry *ov =
        x->repo->templates ? fileset_get(x->repo->templates, tmpl_files[t]) : NULL;
    const char *text;
    size_t len;
    char *name;
    struct err e = ERR_INIT;

    if (ov) {
      text = ov->data;
      len = ov->len;
      name = xasprintf("templates/%s", tmpl_files[t]);
      x->overridden[t] = true;
    } else {
      text = render_builtin_template(tmpl_files[t], &len);
      name = xasprintf("(built-in) templates/%s", tmpl_files[t]);
      if (!text) {
        free(name);
        return err_set(x->err, -ENOENT, "built-in template %s is missing", tmpl_files[t]);
      }
    }
    if (doc_parse_one(x->tmpl_arena, name, text, len, NULL, &x->tmpl[t], &e) < 0) {
      diag_error(x->diags, e.file[0] ? e.file : name, e.line, e.col, "%s", e.msg);
      x->tmpl[t] = NULL;
      bad++;
    } else if (!doc_is(x->tmpl[t], DOC_MAP)) {
      diag_error(x->diags, name, 1, 1, "a template must be one YAML mapping (a manifest)");
      x->tmpl[t] = NULL;
      bad++;
    }
    free(name);
  }
  return bad ? -EINVAL : 0;
}

static void collect_gateways(struct rctx *x) {
  x->gws = xcalloc(x->repo->n_gateways ? x->repo->n_gateways : 1, sizeof(*x->gws));
  for (size_t i = 0; i < x->repo->n_gateways; i++) {
    const struct intent_gateway *g = x->repo->gateways[i];
    if (!intent_gateway_applies_to(g, x->opts->cluster))
      continue;
    x->gws[x->n_gws].gw = g;
    strmap_put(&x->gw_by_id, g->id, &x->gws[x->n_gws]);
    x->n_gws++;
  }
  for (size_t i = 0; i < x->repo->n_intents; i++) {
    const struct intent *in = x->repo->intents[i];
    struct gwinfo *gi;
    if (!in->gateway || !intent_applies_to(in, x->opts->cluster) ||
        !(gi = strmap_get(&x->gw_by_id, in->gateway->id)))
      continue;
    ptrvec_push(&gi->intents, (void *)(uintptr_t)in);
    gi->enforce |= in->enforce;
  }
}

int render_repo(const struct intent_repo *repo, const struct render_options *opts,
                render_emit_fn emit, void *userdata, struct diag_list *diags, struct err *err) {
  struct render_options dflt = {0};
  struct rctx x = {.repo = repo, .opts = opts ? opts : &dflt, .emit = emit,
                   .userdata = userdata, .diags = diags, .err = err};
  const char *v = x.opts->istio_api_version ? x.opts->istio_api_version : "v1beta1";
  char net[64], sec[64];
  int r;

  if (!render_istio_version_valid(v))
    return err_set(err, -EINVAL, "unknown Istio API version '%s'; use v1, v1beta1 or v1alpha3", v);
  if (!repo->fleet)
    return err_set(err, -EINVAL, "the config repo has no Fleet");
  str_format(net, sizeof(net), "networking.istio.io/%s", v);
  str_format(sec, sizeof(sec), "security.istio.io/%s", str_eq(v, "v1") ? "v1" : "v1beta1");
  x.net_api = net;
  x.sec_api = sec;
  x.errors_before = diags->errors;
  x.tmpl_arena = doc_arena_new();
  x.scratch = doc_arena_new();
  x.jobs_arena = doc_arena_new();
  r = load_templates(&x);
  if (r < 0 && err_isset(err))
    goto out;
  x.failed = r < 0;
  collect_gateways(&x);

  for (int k = 0; k < _RENDER_KIND_MAX && !x.stop; k++)
    render_kind(&x, (enum render_kind)k);

  if (x.stop)
    r = x.stop;
  else if (x.failed || diags->errors > x.errors_before)
    r = -EINVAL;
  else
    r = 0;
out:
  for (size_t i = 0; i < x.n_gws; i++)
    ptrvec_dispose(&x.gws[i].intents);
  free(x.gws);
  free(x.jobs);
  strmap_dispose(&x.gw_by_id);
  strmap_dispose(&x.names);
  ptrvec_dispose_all(&x.owned_names, free);
  doc_arena_free(x.scratch);
  doc_arena_free(x.jobs_arena);
  doc_arena_free(x.tmpl_arena);
  return r;
}
