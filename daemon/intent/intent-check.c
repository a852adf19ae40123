/* Cross-object rules of the config repo. Runs after every document has been
 * loaded, so it sees the whole repo and reports every problem at once:
 *
 *   names         DNS-1123 (RFC 1035 for gateways: they name a Service)
 *   duplicates    gateways, intents, Fleet clusters, waves
 *   gateways      port names carry the protocol, unique ports, a target port
 *                 below 1024 needs runAsRoot (SMM's non-root gateways)
 *   intents       gateway references, FQDN hosts, ports the gateway serves,
 *                 protocol agreement, TLS origination only for HTTP
 *   fleet         selectors that match no cluster, an intent on a cluster
 *                 its gateway is not deployed to
 *   conflicts     one host and port leaves through one gateway per cluster;
 *                 one host per namespace (one VirtualService per host)
 *
 * Lookups are hashed, so a repo of 10,000 intents checks in linear time.
 * When you add a rule, add its test in tests/unit/test-intent.c with the
 * exact message and position.
 */
#include <stdio.h>
#include <string.h>

#include "base/dns.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/strmap.h"
#include "doc/doc.h"
#include "intent/intent-int.h"

#define E(l, pos, ...) diag_error((l)->diags, (pos).file, (pos).line, (pos).col, __VA_ARGS__)
#define W(l, pos, ...) diag_warning((l)->diags, (pos).file, (pos).line, (pos).col, __VA_ARGS__)

static void check_name(struct load *l, struct intent_pos pos, const char *what, const char *name,
                       const char *(*rule)(const char *)) {
  const char *why = rule(name);
  char shown[128];

  if (why)
    E(l, pos, "%s '%s' %s", what, str_escape(shown, sizeof(shown), name), why);
}

static bool gateway_port_protocol(const char *name, enum intent_protocol *ret) {
  static const struct {
    const char *prefix;
    enum intent_protocol proto;
  } map[] = {{"https", INTENT_PROTOCOL_HTTPS}, {"http", INTENT_PROTOCOL_HTTP},
             {"tls", INTENT_PROTOCOL_TLS}, {"tcp", INTENT_PROTOCOL_TCP}};

  for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
    size_t n = strlen(map[i].prefix);
    if (strncmp(name, map[i].prefix, n) == 0 && (name[n] == '\0' || name[n] == '-')) {
      *ret = map[i].proto;
      return true;
    }
  }
  return false;
}

static struct intent_pos node_pos(const struct doc_node *n) {
  return (struct intent_pos){n->file, n->line, n->col};
}

/* A Kubernetes resource quantity: a decimal number ("0.5", "100", "1e3")
 * with an optional suffix: binary Ki Mi Gi Ti Pi Ei, or decimal n u m k M G
 * T P E ("100m" CPU, "128Mi" memory). */
static bool quantity_ok(const char *s) {
  static const char *const suffixes[] = {"Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k",
                                         "M", "G",  "T",  "P",  "E",  "",   NULL};
  const char *p = s;
  bool digits = false;

  if (*p == '+' || *p == '-')
    p++;
  while (*p >= '0' && *p <= '9')
    p++, digits = true;
  if (*p == '.') {
    p++;
    while (*p >= '0' && *p <= '9')
      p++, digits = true;
  }
  if (!digits)
    return false;
  if ((*p == 'e' || *p == 'E') && p[1] && (p[1] == '+' || p[1] == '-' || (p[1] >= '0' && p[1] <= '9'))) {
    p++;
    if (*p == '+' || *p == '-')
      p++;
    if (!(*p >= '0' && *p <= '9'))
      return false;
    while (*p >= '0' && *p <= '9')
      p++;
    return *p == '\0';
  }
  for (size_t i = 0; suffixes[i]; i++)
    if (strcmp(p, suffixes[i]) == 0)
      return true;
  return false;
}

/* What the API server would refuse in the placement fields, found now. */
static void check_placement_fields(struct load *l, const struct intent_gateway *g) {
  static const char *const lists[] = {"requests", "limits"};

  for (size_t r = 0; g->resources && r < ARRAY_SIZE(lists); r++) {
    const struct doc_node *m = doc_map_get(g->resources, lists[r]);
    if (m && !doc_is(m, DOC_MAP)) {
      E(l, node_pos(m), "resources.%s must be a mapping of resource names to quantities",
        lists[r]);
      continue;
    }
    for (size_t i = 0; m && i < m->u.map.n; i++) {
      const struct doc_node *v = m->u.map.items[i].value;
      bool ok = (doc_is(v, DOC_INT) && v->u.i >= 0) ||
                (doc_is(v, DOC_FLOAT) && v->u.str.f >= 0) ||
                (doc_is(v, DOC_STR) && quantity_ok(v->u.str.s));
      if (!ok)
        E(l, node_pos(v),
          "resources.%s.%s: %s%s%s is not a Kubernetes quantity; write a number with an optional "
          "suffix, such as 100m (CPU) or 128Mi (memory)",
          lists[r], m->u.map.items[i].key, doc_is(v, DOC_STR) ? "'" : "",
          doc_is(v, DOC_STR) ? v->u.str.s : "the value", doc_is(v, DOC_STR) ? "'" : "");
    }
  }
  for (size_t i = 0; doc_is(g->tolerations, DOC_SEQ) && i < g->tolerations->u.seq.n; i++) {
    const struct doc_node *t = g->tolerations->u.seq.items[i];
    const char *op = doc_map_str(t, "operator"), *key = doc_map_str(t, "key");
    bool exists = str_eq(op, "Exists");
    if (exists && doc_map_get(t, "value"))
      E(l, node_pos(t), "toleration %zu: operator Exists matches any value; remove value", i + 1);
    if (!exists && (!key || !*key))
      E(l, node_pos(t),
        "toleration %zu: without a key the operator must be Exists (it then tolerates every taint)",
        i + 1);
    if (doc_map_get(t, "tolerationSeconds") && !str_eq(doc_map_str(t, "effect"), "NoExecute"))
      E(l, node_pos(t), "toleration %zu: tolerationSeconds applies only to effect NoExecute", i + 1);
  }
}

static void check_gateway(struct load *l, struct intent_gateway *g) {
  struct intent_pos at = g->pos;

  check_name(l, at, "gateway name", g->name, dns_rfc1035_label_check);
  check_name(l, at, "namespace", g->namespace, dns_label_check);
  if (g->cp_name)
    check_name(l, at, "control plane name", g->cp_name, dns_subdomain_check);
  if (g->cp_namespace)
    check_name(l, at, "control plane namespace", g->cp_namespace, dns_label_check);
  if (g->replicas_max < g->replicas_min)
    E(l, at, "gateway %s: replicas.max (%d) is below replicas.min (%d)", g->id, g->replicas_max,
      g->replicas_min);
  check_placement_fields(l, g);
  for (size_t i = 0; i < g->n_ports; i++) {
    struct intent_gateway_port *p = &g->ports[i];
    const char *why = dns_label_check(p->name);

    if (why)
      E(l, p->pos, "gateway port name '%s' %s", p->name, why);
    else if (!gateway_port_protocol(p->name, &p->protocol))
      E(l, p->pos,
        "gateway port name '%s' does not say its protocol; name it http, http-<suffix>, https, "
        "https-<suffix>, tls, tls-<suffix>, tcp or tcp-<suffix> (Istio selects the protocol from "
        "the name)",
        p->name);
    if (!g->run_as_root && p->target_port < 1024)
      E(l, p->pos,
        "targetPort %d is below 1024 but the gateway runs as non-root and cannot bind it; use "
        "a targetPort above 1024 (for example %d) or set spec.runAsRoot: true",
        p->target_port, p->target_port + 8000 < 65536 ? p->target_port + 8000 : 8080);
    for (size_t j = 0; j < i; j++) {
      if (g->ports[j].port == p->port)
        E(l, p->pos, "gateway %s has port %d twice (also at line %u)", g->id, p->port,
          g->ports[j].pos.line);
      else if (strcmp(g->ports[j].name, p->name) == 0)
        E(l, p->pos, "gateway %s has port name '%s' twice (also at line %u)", g->id, p->name,
          g->ports[j].pos.line);
      else if (g->ports[j].target_port == p->target_port)
        E(l, p->pos, "gateway %s maps two ports to targetPort %d (also at line %u)", g->id,
          p->target_port, g->ports[j].pos.line);
    }
  }
}

static const struct intent_gateway_port *gateway_port(const struct intent_gateway *g, int port) {
  for (size_t i = 0; i < g->n_ports; i++)
    if (g->ports[i].port == port)
      return &g->ports[i];
  return NULL;
}

static void resolve_gateway(struct load *l, struct intent *in) {
  const char *ref = in->gateway_ref, *slash = strchr(ref, '/');
  char ns[256], name[256];
  const struct intent_pos at = in->pos;

  if (slash) {
    if ((size_t)(slash - ref) >= sizeof(ns) || strlen(slash + 1) >= sizeof(name)) {
      E(l, at, "gateway reference '%s' is too long", ref);
      return;
    }
    memcpy(ns, ref, (size_t)(slash - ref));
    ns[slash - ref] = '\0';
    str_copy(name, sizeof(name), slash + 1);
  } else {
    str_copy(ns, sizeof(ns), in->namespace);
    str_copy(name, sizeof(name), ref);
  }
  {
    char key[600];
    str_format(key, sizeof(key), "%s/%s", ns, name);
    in->gateway = strmap_get(&l->repo->gateway_index, key);
  }
  if (!in->gateway) {
    const struct intent_gateway *elsewhere = NULL;
    for (size_t i = 0; i < l->repo->n_gateways; i++)
      if (strcmp(l->repo->gateways[i]->name, name) == 0)
        elsewhere = l->repo->gateways[i];
    if (elsewhere && !slash)
      E(l, at,
        "intent %s: no EgressGateway '%s' in namespace '%s'; did you mean '%s' (write the "
        "namespace: gateway: %s)?",
        in->id, name, ns, elsewhere->id, elsewhere->id);
    else
      E(l, at, "intent %s: no EgressGateway '%s/%s' in the config repo", in->id, ns, name);
  }
}

static void check_intent(struct load *l, struct intent *in) {
  check_name(l, in->pos, "intent name", in->name, dns_label_check);
  check_name(l, in->pos, "namespace", in->namespace, dns_label_check);
  if (in->gateway_ref)
    resolve_gateway(l, in); /* else the schema check reported it missing */
  for (size_t i = 0; i < in->n_hosts; i++) {
    const char *h = in->hosts[i], *why;
    char shown[300], ip[16];
    const char *slash = strchr(h, '/');

    if (intent_host_ip(h, ip, sizeof(ip))) {
      for (size_t p = 0; p < in->n_ports; p++)
        if (in->ports[p].protocol != INTENT_PROTOCOL_TCP) {
          E(l, in->host_pos[i],
            "host '%s' is an address, which only TCP can reach (a TLS SNI and an HTTP Host name a "
            "host): give every port of intent %s protocol TCP, or name the host",
            h, in->id);
          break;
        }
      continue;
    }
    if (slash && slash > h) {
      char first[64];
      str_copy(first, sizeof(first), h);
      first[slash - h < (ptrdiff_t)sizeof(first) ? slash - h : 0] = '\0';
      if (intent_host_ip(first, ip, sizeof(ip))) {
        E(l, in->host_pos[i],
          "host '%s' is an address range; an egress gateway connects to one address it knows (the "
          "client's original destination does not reach it), so list the addresses one by one "
          "(%s)",
          h, ip);
        continue;
      }
    }
    why = dns_host_check(h);
    if (why)
      E(l, in->host_pos[i], "host '%s' %s", str_escape(shown, sizeof(shown), h), why);
    else if (h[0] == '*' && (in->n_hosts > 1 || !in->upstream))
      E(l, in->host_pos[i],
        "host '%s' is a wildcard; an egress gateway forwards to one resolvable host: give the "
        "intent that one host as upstream (the server that hosts every name the wildcard "
        "covers, such as www.%s), with the wildcard its only host, or list the hosts",
        h, h + 2);
    for (size_t j = 0; j < i; j++)
      if (strcmp(in->hosts[j], h) == 0)
        E(l, in->host_pos[i], "host '%s' is listed twice in intent %s", h, in->id);
  }
  if (in->upstream) {
    const char *why = dns_host_check(in->upstream);
    if (!(in->n_hosts == 1 && in->hosts[0][0] == '*'))
      E(l, in->upstream_pos,
        "upstream is where the gateway sends the names of a wildcard host; intent %s has %s",
        in->id, in->n_hosts == 1 ? "no wildcard host" : "more than one host (a wildcard is alone)");
    else if (why || in->upstream[0] == '*')
      E(l, in->upstream_pos, "upstream '%s' %s", in->upstream,
        why ? why : "is a wildcard; name the one server");
    else if (!dns_host_covers(in->hosts[0], in->upstream))
      E(l, in->upstream_pos,
        "upstream '%s' is not one of the names '%s' covers; the gateway must reach a server of "
        "those names",
        in->upstream, in->hosts[0]);
    for (size_t p = 0; p < in->n_ports; p++)
      if (in->ports[p].protocol == INTENT_PROTOCOL_TCP)
        E(l, in->ports[p].pos,
          "a wildcard host needs a protocol that names the host (HTTP, TLS); TCP names none");
    if (in->tls_origination)
      E(l, in->upstream_pos,
        "tlsOrigination cannot serve a wildcard host: the gateway would open TLS to the upstream "
        "for every name, with the upstream's name as SNI, whatever name the application asked "
        "for; originate TLS per named host instead");
  }
  if (in->network_policy && !in->enforce)
    E(l, in->network_policy_pos,
      "networkPolicy locks the namespace down below the mesh, which only enforce: true asks for; "
      "set enforce: true on intent %s too",
      in->id);
  if ((in->ca_certificates || in->credential_name) && !in->tls_origination)
    E(l, in->ca_pos,
      "%s says how the gateway verifies the server it originates TLS to, but intent %s does "
      "not originate TLS (tlsOrigination: true)",
      in->ca_certificates ? "caCertificates" : "credentialName", in->id);
  if (in->ca_certificates && in->credential_name)
    E(l, in->ca_pos,
      "caCertificates and credentialName both name the CA to verify against; give one (a file in "
      "the gateway pod, or a Secret with ca.crt in the gateway's namespace)");
  if (in->ca_certificates && in->ca_certificates[0] != '/')
    E(l, in->ca_pos, "caCertificates '%s' must be an absolute path in the gateway pod (for "
      "example " INTENT_DEFAULT_CA ")", in->ca_certificates);
  if (in->credential_name) {
    const char *why = dns_subdomain_check(in->credential_name);
    if (why)
      E(l, in->ca_pos, "credentialName '%s' %s (it names a Secret)", in->credential_name, why);
  }
  for (size_t i = 0; i < in->n_ports; i++) {
    const struct intent_port *p = &in->ports[i];
    const struct intent_gateway_port *gp;

    for (size_t j = 0; j < i; j++)
      if (in->ports[j].number == p->number)
        E(l, p->pos, "port %d is listed twice in intent %s", p->number, in->id);
    if (in->tls_origination && p->protocol != INTENT_PROTOCOL_HTTP)
      E(l, p->pos,
        "tlsOrigination: the application speaks plain HTTP and the gateway originates TLS, so "
        "every port must be HTTP, not %s",
        intent_protocol_name(p->protocol));
    if (!in->gateway)
      continue;
    gp = gateway_port(in->gateway, p->number);
    if (!gp)
      E(l, p->pos,
        "gateway %s has no service port %d; add it to the gateway's spec.service.ports (for "
        "example {name: %s-%d, port: %d, targetPort: %d})",
        in->gateway->id, p->number,
        p->protocol == INTENT_PROTOCOL_HTTP  ? "http"
        : p->protocol == INTENT_PROTOCOL_TCP ? "tcp"
                                             : "tls",
        p->number, p->number, p->number < 1024 ? p->number + 8000 : p->number);
    else if (!intent_protocol_compatible(p->protocol, gp->protocol))
      E(l, p->pos,
        "port %d is %s here but gateway %s serves it as %s (port '%s'); use another port or "
        "another gateway",
        p->number, intent_protocol_name(p->protocol), in->gateway->id,
        intent_protocol_name(gp->protocol), gp->name);
  }
}

/* In and NotIn need values, Exists and DoesNotExist take none (as in
 * Kubernetes label selectors). */
static bool check_selector(struct load *l, const struct intent_selector *sel) {
  bool ok = true;

  for (size_t i = 0; i < sel->n_exprs; i++) {
    const struct intent_selector_expr *x = &sel->exprs[i];
    bool wants = x->op == INTENT_SELECTOR_IN || x->op == INTENT_SELECTOR_NOT_IN;
    if (wants && !x->n_values) {
      E(l, x->pos, "selector expression on '%s': %s needs at least one value", x->key,
        x->op == INTENT_SELECTOR_IN ? "In" : "NotIn");
      ok = false;
    } else if (!wants && x->n_values) {
      E(l, x->pos, "selector expression on '%s': %s takes no values", x->key,
        x->op == INTENT_SELECTOR_EXISTS ? "Exists" : "DoesNotExist");
      ok = false;
    }
  }
  return ok;
}

static void check_fleet(struct load *l) {
  struct intent_fleet *f = l->repo->fleet;

  /* the Fleet's name is the instance label of every object egressd makes */
  check_name(l, f->pos, "Fleet name", f->name, dns_label_check);
  for (size_t i = 0; i < f->n_clusters; i++) {
    check_name(l, f->clusters[i].pos, "cluster name", f->clusters[i].name, dns_label_check);
    for (size_t j = 0; j < i; j++)
      if (strcmp(f->clusters[j].name, f->clusters[i].name) == 0)
        E(l, f->clusters[i].pos, "cluster '%s' is listed twice in the Fleet (also at line %u)",
          f->clusters[i].name, f->clusters[j].pos.line);
  }
  for (size_t i = 0; i < f->n_waves; i++) {
    struct intent_wave *w = &f->waves[i];
    bool any = false;

    check_name(l, w->pos, "wave name", w->name, dns_label_check);
    if (!check_selector(l, &w->selector))
      continue; /* "matches no cluster" would only repeat the problem */
    for (size_t j = 0; j < i; j++)
      if (strcmp(f->waves[j].name, w->name) == 0)
        E(l, w->pos, "wave '%s' is defined twice (also at line %u)", w->name,
          f->waves[j].pos.line);
    for (size_t c = 0; c < f->n_clusters && !any; c++)
      any = intent_selector_matches(&w->selector, f->clusters[c].labels, f->clusters[c].n_labels);
    if (!any)
      E(l, w->selector.present ? w->selector.pos : w->pos,
        "the selector of wave '%s' matches no cluster of the Fleet", w->name);
  }
}

/* Does @sel match at least one fleet cluster? */
static bool matches_some(const struct intent_fleet *f, const struct intent_selector *sel) {
  if (!sel->present)
    return true;
  for (size_t c = 0; c < f->n_clusters; c++)
    if (intent_selector_matches(sel, f->clusters[c].labels, f->clusters[c].n_labels))
      return true;
  return false;
}

static const char *str_or(const char *s, const char *dflt) { return s ? s : dflt; }

/* What a (host, port) means at the gateway: the protocol the application
 * speaks, whether the gateway originates TLS, the external port and the CA.
 * Intents that send one host and port through one gateway must agree on it:
 * Istio merges the gateway's routes of a host from every namespace (by
 * creation time), so one namespace would silently get the other's route.
 * Returns NULL when they agree, else what differs. */
static const char *meaning_differs(const struct intent *a, const struct intent_port *pa,
                                   const struct intent *b, const struct intent_port *pb) {
  if (!intent_protocol_compatible(pa->protocol, pb->protocol))
    return "the protocol (plain HTTP, TLS from the application, or TCP)";
  if (a->tls_origination != b->tls_origination)
    return "TLS origination (one originates TLS at the gateway, the other does not)";
  if (pa->target_port != pb->target_port)
    return "the port on the external host (targetPort)";
  if (a->tls_origination &&
      (!str_eq(str_or(a->ca_certificates, ""), str_or(b->ca_certificates, "")) ||
       !str_eq(str_or(a->credential_name, ""), str_or(b->credential_name, ""))))
    return "the CA the gateway verifies the server with (caCertificates, credentialName)";
  return NULL;
}

/* TCP to a host name is routed by port alone: a TCP connection names no host
 * (a host given by address is routed by the address). So in one namespace a
 * port that goes to a host name over TCP goes nowhere else. Called for each
 * (intent, host, port) of a round; @by_port maps "ns|port" to the first
 * claim (malloc'd "tcp|<id>|<host>|<line>" or "other|<id>|<host>|<line>"). */
static void check_tcp_port(struct load *l, struct strmap *by_port, struct strmap *reported,
                           const struct intent *in, size_t h, const struct intent_port *p) {
  char key[300], ip[16], claim[700], pair[900];
  bool tcp_name = p->protocol == INTENT_PROTOCOL_TCP && !intent_host_ip(in->hosts[h], ip, sizeof(ip));
  const char *prev;

  if ((p->protocol == INTENT_PROTOCOL_TCP && !tcp_name) || strchr(in->hosts[h], '/'))
    return; /* by address (a range is refused on its own) */
  str_format(key, sizeof(key), "%s|%d", in->namespace, p->number);
  str_format(claim, sizeof(claim), "%s|%s|%s|%s:%u", tcp_name ? "tcp" : "other", in->id,
             in->hosts[h], in->file, p->pos.line);
  prev = strmap_get(by_port, key);
  if (!prev) {
    strmap_put(by_port, key, xstrdup(claim));
    return;
  }
  if (!tcp_name && str_has_prefix(prev, "other|"))
    return;
  {
    char other_id[300], other_host[300], other_at[400];
    const char *a = strchr(prev, '|') + 1, *b = strchr(a, '|'), *c = strchr(b + 1, '|');
    str_copy(other_id, sizeof(other_id), a);
    other_id[b - a < (ptrdiff_t)sizeof(other_id) ? b - a : 0] = '\0';
    str_copy(other_host, sizeof(other_host), b + 1);
    other_host[c - b - 1 < (ptrdiff_t)sizeof(other_host) ? c - b - 1 : 0] = '\0';
    str_copy(other_at, sizeof(other_at), c + 1);
    if (str_eq(other_host, in->hosts[h]))
      return; /* the same host on that port: not ambiguous */
    str_format(pair, sizeof(pair), "tcp|%s|%s", key, in->hosts[h]);
    if (strmap_has(reported, pair))
      return;
    strmap_put(reported, pair, NULL);
    E(l, p->pos,
      "port %d of namespace '%s' goes to '%s' here and to '%s' in intent %s (%s); TCP to a host "
      "name is routed by port alone (a TCP connection names no host), so one port can go to one "
      "such host per namespace: use another port, or the host's address",
      p->number, in->namespace, in->hosts[h], other_host, other_id, other_at);
  }
}

/* One (host, port) leaves through one gateway per cluster, with one meaning;
 * one host per namespace. Checked per Fleet cluster, each conflict reported
 * once. */
static void check_conflicts(struct load *l) {
  const struct intent_fleet *f = l->repo->fleet;
  struct strmap reported = {0};
  size_t rounds = f->n_clusters;
  bool selective = false;

  for (size_t i = 0; i < l->repo->n_intents && !selective; i++)
    selective = l->repo->intents[i]->clusters.present;
  if (!selective)
    rounds = 1; /* every intent is on every cluster: one round sees it all */
  for (size_t c = 0; c < rounds; c++) {
    const struct intent_fleet_cluster *cl = selective ? &f->clusters[c] : NULL;
    struct strmap by_host_port = {0}, by_ns_host = {0}, by_ns_port = {0};

    for (size_t i = 0; i < l->repo->n_intents; i++) {
      struct intent *in = l->repo->intents[i];
      if (!in->gateway || !intent_applies_to(in, cl))
        continue;
      for (size_t h = 0; h < in->n_hosts; h++) {
        char key[700];
        struct intent *other;

        str_format(key, sizeof(key), "%s/%s", in->namespace, in->hosts[h]);
        other = strmap_put(&by_ns_host, key, in);
        if (other && other != in) {
          char pair[600];
          str_format(pair, sizeof(pair), "ns|%s|%s|%s", other->id, in->id, in->hosts[h]);
          if (!strmap_has(&reported, pair)) {
            strmap_put(&reported, pair, NULL);
            E(l, in->host_pos[h],
              "host '%s' is already claimed in namespace '%s' by intent %s (%s:%u); one intent "
              "per host and namespace, so merge the two",
              in->hosts[h], in->namespace, other->id, other->file, other->pos.line);
          }
        }
        for (size_t p = 0; p < in->n_ports; p++) {
          check_tcp_port(l, &by_ns_port, &reported, in, h, &in->ports[p]);
          str_format(key, sizeof(key), "%s:%d", in->hosts[h], in->ports[p].number);
          other = strmap_get(&by_host_port, key);
          if (!other) {
            strmap_put(&by_host_port, key, in);
          } else if (other->gateway == in->gateway && other != in) {
            const struct intent_port *op = NULL;
            const char *what;
            for (size_t q = 0; q < other->n_ports && !op; q++)
              if (other->ports[q].number == in->ports[p].number)
                op = &other->ports[q];
            what = op ? meaning_differs(other, op, in, &in->ports[p]) : NULL;
            if (what) {
              char pair[600];
              str_format(pair, sizeof(pair), "mean|%s|%s|%s", other->id, in->id, key);
              if (!strmap_has(&reported, pair)) {
                strmap_put(&reported, pair, NULL);
                E(l, in->ports[p].pos,
                  "host '%s' port %d goes through gateway %s here and in intent %s (%s:%u), but "
                  "the two differ in %s; Istio merges one gateway's routes of a host, so one "
                  "namespace would get the other's: make them agree or use another gateway",
                  in->hosts[h], in->ports[p].number, in->gateway->id, other->id, other->file,
                  op->pos.line, what);
              }
            }
          } else if (other->gateway != in->gateway) {
            char pair[600];
            str_format(pair, sizeof(pair), "gw|%s|%s|%s", other->id, in->id, key);
            if (!strmap_has(&reported, pair)) {
              strmap_put(&reported, pair, NULL);
              E(l, in->host_pos[h],
                "host '%s' port %d goes through gateway %s here, but intent %s (%s:%u) already "
                "sends it through gateway %s%s%s; a host and port can leave through one gateway "
                "per cluster",
                in->hosts[h], in->ports[p].number, in->gateway->id, other->id, other->file,
                other->pos.line, other->gateway->id, cl ? " on cluster " : "",
                cl ? cl->name : "");
            }
          }
        }
      }
    }
    strmap_dispose(&by_host_port);
    strmap_dispose(&by_ns_host);
    strmap_dispose_free(&by_ns_port);
  }
  strmap_dispose(&reported);
}

static void check_placement(struct load *l) {
  const struct intent_fleet *f = l->repo->fleet;


  for (size_t i = 0; i < l->repo->n_gateways; i++) {
    const struct intent_gateway *g = l->repo->gateways[i];
    if (!check_selector(l, &g->clusters))
      continue;
    if (!matches_some(f, &g->clusters))
      E(l, g->clusters.pos, "the cluster selector of gateway %s matches no cluster of the Fleet",
        g->id);
  }
  for (size_t i = 0; i < l->repo->n_intents; i++) {
    const struct intent *in = l->repo->intents[i];
    if (!check_selector(l, &in->clusters))
      continue;
    if (!matches_some(f, &in->clusters)) {
      E(l, in->clusters.pos, "the cluster selector of intent %s matches no cluster of the Fleet",
        in->id);
      continue;
    }
    if (!in->gateway)
      continue;
    for (size_t c = 0; c < f->n_clusters; c++) {
      const struct intent_fleet_cluster *cl = &f->clusters[c];
      if (intent_applies_to(in, cl) && !intent_gateway_applies_to(in->gateway, cl)) {
        E(l, in->clusters.present ? in->clusters.pos : in->pos,
          "intent %s applies to cluster '%s' but its gateway %s is not deployed there (see the "
          "gateway's spec.clusters)",
          in->id, cl->name, in->gateway->id);
        break;
      }
    }
  }
}

void intent_repo_check(struct load *l) {
  struct intent_repo *r = l->repo;

  for (size_t i = 0; i < r->n_gateways; i++) {
    struct intent_gateway *g = r->gateways[i];
    struct intent_gateway *first = strmap_get(&r->gateway_index, g->id);
    if (first) {
      E(l, g->pos, "EgressGateway %s is defined twice (first at %s:%u)", g->id, first->file,
        first->pos.line);
      continue;
    }
    strmap_put(&r->gateway_index, g->id, g);
    check_gateway(l, g);
  }
  for (size_t i = 0; i < r->n_intents; i++) {
    if (i > 0 && strcmp(r->intents[i - 1]->id, r->intents[i]->id) == 0) {
      E(l, r->intents[i]->pos, "EgressIntent %s is defined twice (first at %s:%u)",
        r->intents[i]->id, r->intents[i - 1]->file, r->intents[i - 1]->pos.line);
      continue;
    }
    check_intent(l, r->intents[i]);
  }
  if (!r->fleet) {
    diag_error(l->diags, "", 0, 0,
               "the config repo has no Fleet; add one (kind: Fleet) that lists the clusters and "
               "their labels, see repo-layout/README.md");
    return;
  }
  check_fleet(l);
  check_placement(l);
  check_conflicts(l);
}
