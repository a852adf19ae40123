/* Loading the config repo: files -> YAML documents -> typed model.
 *
 * Every .yaml and .yml file outside templates/ is parsed (bounded by the doc
 * limits and the fileset limits); each document is dispatched on its kind,
 * checked against the schema tables below, and turned into the structs of
 * intent.h. Strings of the model point into the parsed documents, which the
 * repo's arena keeps alive. Cross-object rules live in intent-check.c.
 *
 * When you add a field: the schema table here, the extraction function, the
 * docs (repo-layout/README.md, docs/config-repo.md) and a test.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "doc/doc-schema.h"
#include "doc/doc.h"
#include "intent/intent-int.h"

const char *const intent_file_suffixes[] = {".yaml", ".yml", NULL};

/* ---- schema tables ---- */

static const struct doc_schema s_str = {DOC_SCHEMA_STR};
static const struct doc_schema s_bool = {DOC_SCHEMA_BOOL};
static const struct doc_schema s_port = {DOC_SCHEMA_INT, "a port number (1-65535)", .min = 1,
                                         .max = 65535};
static const struct doc_schema s_replicas = {DOC_SCHEMA_INT, "a replica count (1-1000)", .min = 1,
                                             .max = 1000};
static const struct doc_schema s_count = {DOC_SCHEMA_INT, "a count (0-1000)", .min = 0,
                                          .max = 1000};
static const struct doc_schema s_parallel = {DOC_SCHEMA_INT, "a count (1-1000)", .min = 1,
                                             .max = 1000};
static const struct doc_schema s_duration = {DOC_SCHEMA_DURATION, "a duration such as 60s"};
static const struct doc_schema s_strmap = {DOC_SCHEMA_STRMAP, "a mapping of strings"};
static const struct doc_schema s_strlist = {DOC_SCHEMA_LIST, "a list of strings", .items = &s_str};
static const struct doc_schema s_hosts = {DOC_SCHEMA_LIST, "a list of host names",
                                          .items = &s_str, .min_items = 1};

static const char *const selector_ops[] = {"In", "NotIn", "Exists", "DoesNotExist", NULL};
static const struct doc_schema s_selector_op = {DOC_SCHEMA_STR, .enum_values = selector_ops};
static const struct doc_schema_field expr_fields[] = {
    {"key", &s_str, true}, {"operator", &s_selector_op, true}, {"values", &s_strlist, false},
    {NULL}};
static const struct doc_schema s_expr = {DOC_SCHEMA_OBJECT, .fields = expr_fields};
static const struct doc_schema s_exprs = {DOC_SCHEMA_LIST, .items = &s_expr};
static const struct doc_schema_field selector_fields[] = {
    {"matchLabels", &s_strmap, false}, {"matchExpressions", &s_exprs, false}, {NULL}};
static const struct doc_schema s_selector = {DOC_SCHEMA_OBJECT, "a label selector",
                                             .fields = selector_fields};

static const struct doc_schema_field meta_ns_fields[] = {{"name", &s_str, true},
                                                         {"namespace", &s_str, true},
                                                         {"labels", &s_strmap, false},
                                                         {"annotations", &s_strmap, false},
                                                         {NULL}};
static const struct doc_schema s_meta_ns = {DOC_SCHEMA_OBJECT, .fields = meta_ns_fields};
static const struct doc_schema_field meta_fields[] = {{"name", &s_str, true},
                                                      {"labels", &s_strmap, false},
                                                      {"annotations", &s_strmap, false},
                                                      {NULL}};
static const struct doc_schema s_meta = {DOC_SCHEMA_OBJECT, .fields = meta_fields};

/* EgressGateway */
static const struct doc_schema_field cp_fields[] = {
    {"name", &s_str, true}, {"namespace", &s_str, true}, {NULL}};
static const struct doc_schema s_cp = {DOC_SCHEMA_OBJECT, .fields = cp_fields};
static const struct doc_schema_field replicas_fields[] = {
    {"min", &s_replicas, false}, {"max", &s_replicas, false}, {NULL}};
static const struct doc_schema s_replicas_obj = {DOC_SCHEMA_OBJECT, .fields = replicas_fields};
static const char *const service_types[] = {"ClusterIP", "NodePort", "LoadBalancer", NULL};
static const struct doc_schema s_service_type = {DOC_SCHEMA_STR, .enum_values = service_types};
static const struct doc_schema_field gw_port_fields[] = {
    {"name", &s_str, true}, {"port", &s_port, true}, {"targetPort", &s_port, false}, {NULL}};
static const struct doc_schema s_gw_port = {DOC_SCHEMA_OBJECT, .fields = gw_port_fields};
static const struct doc_schema s_gw_ports = {DOC_SCHEMA_LIST, .items = &s_gw_port,
                                             .min_items = 1};
static const struct doc_schema_field service_fields[] = {
    {"type", &s_service_type, false}, {"ports", &s_gw_ports, true}, {NULL}};
static const struct doc_schema s_service = {DOC_SCHEMA_OBJECT, .fields = service_fields};
/* Placement and size of the gateway's pods (dedicated egress nodes): the
 * Kubernetes shapes, handed to the IstioMeshGateway's spec.deployment. */
static const char *const toleration_ops[] = {"Exists", "Equal", NULL};
static const struct doc_schema s_toleration_op = {DOC_SCHEMA_STR, .enum_values = toleration_ops};
static const char *const taint_effects[] = {"NoSchedule", "PreferNoSchedule", "NoExecute", NULL};
static const struct doc_schema s_taint_effect = {DOC_SCHEMA_STR, .enum_values = taint_effects};
static const struct doc_schema s_seconds = {DOC_SCHEMA_INT, "a number of seconds", .min = 0,
                                            .max = 1000000000};
static const struct doc_schema_field toleration_fields[] = {
    {"key", &s_str, false},           {"operator", &s_toleration_op, false},
    {"value", &s_str, false},         {"effect", &s_taint_effect, false},
    {"tolerationSeconds", &s_seconds, false}, {NULL}};
static const struct doc_schema s_toleration = {DOC_SCHEMA_OBJECT, .fields = toleration_fields};
static const struct doc_schema s_tolerations = {DOC_SCHEMA_LIST, .items = &s_toleration};
static const char *const node_ops[] = {"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", NULL};
static const struct doc_schema s_node_op = {DOC_SCHEMA_STR, .enum_values = node_ops};
static const struct doc_schema_field node_req_fields[] = {
    {"key", &s_str, true}, {"operator", &s_node_op, true}, {"values", &s_strlist, false}, {NULL}};
static const struct doc_schema s_node_req = {DOC_SCHEMA_OBJECT, .fields = node_req_fields};
static const struct doc_schema s_node_reqs = {DOC_SCHEMA_LIST, .items = &s_node_req};
static const struct doc_schema_field node_term_fields[] = {
    {"matchExpressions", &s_node_reqs, false}, {"matchFields", &s_node_reqs, false}, {NULL}};
static const struct doc_schema s_node_term = {DOC_SCHEMA_OBJECT, .fields = node_term_fields};
static const struct doc_schema s_node_terms = {DOC_SCHEMA_LIST, .items = &s_node_term,
                                               .min_items = 1};
static const struct doc_schema_field node_selector_fields[] = {
    {"nodeSelectorTerms", &s_node_terms, true}, {NULL}};
static const struct doc_schema s_node_selector_req = {DOC_SCHEMA_OBJECT,
                                                      .fields = node_selector_fields};
static const struct doc_schema s_weight = {DOC_SCHEMA_INT, "a weight (1-100)", .min = 1,
                                           .max = 100};
static const struct doc_schema_field preferred_fields[] = {
    {"weight", &s_weight, true}, {"preference", &s_node_term, true}, {NULL}};
static const struct doc_schema s_preferred = {DOC_SCHEMA_OBJECT, .fields = preferred_fields};
static const struct doc_schema s_preferreds = {DOC_SCHEMA_LIST, .items = &s_preferred};
static const struct doc_schema_field node_affinity_fields[] = {
    {"requiredDuringSchedulingIgnoredDuringExecution", &s_node_selector_req, false},
    {"preferredDuringSchedulingIgnoredDuringExecution", &s_preferreds, false},
    {NULL}};
static const struct doc_schema s_node_affinity = {DOC_SCHEMA_OBJECT, .fields = node_affinity_fields};
static const struct doc_schema s_any_object = {DOC_SCHEMA_ANY, "a mapping"};
static const struct doc_schema_field affinity_fields[] = {{"nodeAffinity", &s_node_affinity, false},
                                                          {"podAffinity", &s_any_object, false},
                                                          {"podAntiAffinity", &s_any_object, false},
                                                          {NULL}};
static const struct doc_schema s_affinity = {DOC_SCHEMA_OBJECT, .fields = affinity_fields};
/* numbers or strings ("1", 1, "100m"): checked in intent-check.c */
static const struct doc_schema s_quantities = {DOC_SCHEMA_ANY,
                                               "a mapping of resource names to quantities"};
static const struct doc_schema_field resources_fields[] = {
    {"requests", &s_quantities, false}, {"limits", &s_quantities, false}, {NULL}};
static const struct doc_schema s_resources = {DOC_SCHEMA_OBJECT, .fields = resources_fields};
static const struct doc_schema_field gw_spec_fields[] = {{"controlPlane", &s_cp, true},
                                                         {"replicas", &s_replicas_obj, false},
                                                         {"runAsRoot", &s_bool, false},
                                                         {"service", &s_service, true},
                                                         {"nodeSelector", &s_strmap, false},
                                                         {"tolerations", &s_tolerations, false},
                                                         {"affinity", &s_affinity, false},
                                                         {"resources", &s_resources, false},
                                                         {"clusters", &s_selector, false},
                                                         {NULL}};
static const struct doc_schema s_gw_spec = {DOC_SCHEMA_OBJECT, .fields = gw_spec_fields};

/* EgressIntent */
static const char *const protocols[] = {"HTTP", "HTTPS", "TLS", "TCP", NULL};
static const struct doc_schema s_protocol = {DOC_SCHEMA_STR, .enum_values = protocols};
static const struct doc_schema_field port_fields[] = {{"number", &s_port, true},
                                                      {"protocol", &s_protocol, true},
                                                      {"targetPort", &s_port, false},
                                                      {NULL}};
static const struct doc_schema s_intent_port = {DOC_SCHEMA_OBJECT, .fields = port_fields};
static const struct doc_schema s_intent_ports = {DOC_SCHEMA_LIST, .items = &s_intent_port,
                                                 .min_items = 1};
static const struct doc_schema_field intent_spec_fields[] = {{"gateway", &s_str, true},
                                                             {"hosts", &s_hosts, true},
                                                             {"ports", &s_intent_ports, true},
                                                             {"upstream", &s_str, false},
                                                             {"tlsOrigination", &s_bool, false},
                                                             {"caCertificates", &s_str, false},
                                                             {"credentialName", &s_str, false},
                                                             {"enforce", &s_bool, false},
                                                             {"networkPolicy", &s_bool, false},
                                                             {"adopt", &s_bool, false},
                                                             {"clusters", &s_selector, false},
                                                             {NULL}};
static const struct doc_schema s_intent_spec = {DOC_SCHEMA_OBJECT, .fields = intent_spec_fields};

/* Fleet */
static const struct doc_schema_field fleet_cluster_fields[] = {
    {"name", &s_str, true}, {"labels", &s_strmap, false}, {NULL}};
static const struct doc_schema s_fleet_cluster = {DOC_SCHEMA_OBJECT, .fields = fleet_cluster_fields};
static const struct doc_schema s_fleet_clusters = {DOC_SCHEMA_LIST, .items = &s_fleet_cluster,
                                                   .min_items = 1};
static const struct doc_schema_field wave_fields[] = {{"name", &s_str, true},
                                                      {"selector", &s_selector, true},
                                                      {"maxParallel", &s_parallel, false},
                                                      {"maxFailures", &s_count, false},
                                                      {"bake", &s_duration, false},
                                                      {NULL}};
static const struct doc_schema s_wave = {DOC_SCHEMA_OBJECT, .fields = wave_fields};
static const struct doc_schema s_waves = {DOC_SCHEMA_LIST, .items = &s_wave};
static const struct doc_schema_field rollout_fields[] = {{"waves", &s_waves, false}, {NULL}};
static const struct doc_schema s_rollout = {DOC_SCHEMA_OBJECT, .fields = rollout_fields};
static const struct doc_schema_field fleet_spec_fields[] = {
    {"clusters", &s_fleet_clusters, true}, {"rollout", &s_rollout, false}, {NULL}};
static const struct doc_schema s_fleet_spec = {DOC_SCHEMA_OBJECT, .fields = fleet_spec_fields};

#define TOP_FIELDS(meta, spec)                                                               \
  {                                                                                          \
    {"apiVersion", &s_str, true}, {"kind", &s_str, true}, {"metadata", &meta, true},         \
        {"spec", &spec, true}, {NULL}                                                        \
  }
static const struct doc_schema_field gw_top[] = TOP_FIELDS(s_meta_ns, s_gw_spec);
static const struct doc_schema_field intent_top[] = TOP_FIELDS(s_meta_ns, s_intent_spec);
static const struct doc_schema_field fleet_top[] = TOP_FIELDS(s_meta, s_fleet_spec);
static const struct doc_schema s_gw_doc = {DOC_SCHEMA_OBJECT, .fields = gw_top};
static const struct doc_schema s_intent_doc = {DOC_SCHEMA_OBJECT, .fields = intent_top};
static const struct doc_schema s_fleet_doc = {DOC_SCHEMA_OBJECT, .fields = fleet_top};

static const char *const kinds[] = {"EgressGateway", "EgressIntent", "Fleet", NULL};

/* ---- helpers ---- */

static struct intent_pos pos_of(const struct doc_node *n) {
  struct intent_pos p = {NULL, 0, 0};

  if (n) {
    p.file = n->file;
    p.line = n->line;
    p.col = n->col;
  }
  return p;
}

static const char *str_or(const struct doc_node *n, const char *key, const char *dflt) {
  const char *s = doc_map_str(n, key);
  return s ? s : dflt;
}

static int int_or(const struct doc_node *n, const char *key, int dflt) {
  struct doc_node *v = doc_map_get(n, key);
  return doc_is(v, DOC_INT) ? (int)v->u.i : dflt;
}

static bool bool_or(const struct doc_node *n, const char *key, bool dflt) {
  struct doc_node *v = doc_map_get(n, key);
  return doc_is(v, DOC_BOOL) ? v->u.b : dflt;
}

static void *arena_array(struct doc_arena *a, size_t n, size_t size) {
  return doc_arena_alloc(a, (n ? n : 1) * size);
}

static void labels_of(struct doc_arena *a, const struct doc_node *map, struct intent_label **ret,
                      size_t *ret_n) {
  size_t n = 0;
  struct intent_label *l;

  *ret = NULL;
  *ret_n = 0;
  if (!doc_is(map, DOC_MAP))
    return;
  l = arena_array(a, map->u.map.n, sizeof(*l));
  for (size_t i = 0; i < map->u.map.n; i++) {
    const struct doc_pair *p = &map->u.map.items[i];
    if (!doc_is(p->value, DOC_STR))
      continue;
    l[n].key = p->key;
    l[n].value = p->value->u.str.s;
    n++;
  }
  *ret = l;
  *ret_n = n;
}

void intent_selector_parse(struct doc_arena *a, const struct doc_node *n,
                           struct intent_selector *sel) {
  const struct doc_node *exprs = doc_map_get(n, "matchExpressions");

  memset(sel, 0, sizeof(*sel));
  if (!doc_is(n, DOC_MAP))
    return;
  sel->present = true;
  sel->pos = pos_of(n);
  labels_of(a, doc_map_get(n, "matchLabels"), &sel->match_labels, &sel->n_match_labels);
  if (!doc_is(exprs, DOC_SEQ))
    return;
  sel->exprs = arena_array(a, exprs->u.seq.n, sizeof(*sel->exprs));
  for (size_t i = 0; i < exprs->u.seq.n; i++) {
    const struct doc_node *e = exprs->u.seq.items[i], *vals = doc_map_get(e, "values");
    const char *op = doc_map_str(e, "operator");
    struct intent_selector_expr *x;

    if (!doc_map_str(e, "key") || !op ||
        !(str_eq(op, "In") || str_eq(op, "NotIn") || str_eq(op, "Exists") ||
          str_eq(op, "DoesNotExist")))
      continue; /* the schema check reported it; guessing would add noise */
    x = &sel->exprs[sel->n_exprs++];
    x->key = doc_map_str(e, "key");
    x->pos = pos_of(e);
    x->op = str_eq(op, "NotIn")          ? INTENT_SELECTOR_NOT_IN
            : str_eq(op, "Exists")       ? INTENT_SELECTOR_EXISTS
            : str_eq(op, "DoesNotExist") ? INTENT_SELECTOR_DOES_NOT_EXIST
                                         : INTENT_SELECTOR_IN;
    if (doc_is(vals, DOC_SEQ)) {
      x->values = arena_array(a, vals->u.seq.n, sizeof(*x->values));
      for (size_t j = 0; j < vals->u.seq.n; j++)
        if (doc_is(vals->u.seq.items[j], DOC_STR))
          x->values[x->n_values++] = vals->u.seq.items[j]->u.str.s;
    }
  }
}

static const char *id_of(struct doc_arena *a, const char *ns, const char *name) {
  size_t nl = strlen(ns), ml = strlen(name);
  char *s = doc_arena_alloc(a, nl + ml + 2);

  memcpy(s, ns, nl);
  s[nl] = '/';
  memcpy(s + nl + 1, name, ml + 1);
  return s;
}

/* -1 for anything but HTTP, HTTPS, TLS (the schema check reported it). */
static int protocol_of(const char *s) {
  if (str_eq(s, "HTTPS"))
    return INTENT_PROTOCOL_HTTPS;
  if (str_eq(s, "TLS"))
    return INTENT_PROTOCOL_TLS;
  if (str_eq(s, "HTTP"))
    return INTENT_PROTOCOL_HTTP;
  if (str_eq(s, "TCP"))
    return INTENT_PROTOCOL_TCP;
  return -1;
}

/* A port field the schema check accepted: an integer in 1-65535, or absent
 * when @optional. Values the check rejected are left out of the model so
 * they do not cause a second, derived error. */
static bool port_ok(const struct doc_node *n, const char *key, bool optional) {
  const struct doc_node *v = doc_map_get(n, key);

  if (!v)
    return optional;
  return doc_is(v, DOC_INT) && v->u.i >= 1 && v->u.i <= 65535;
}

/* ---- per kind ---- */

static void load_gateway(struct load *l, const struct doc_node *doc) {
  struct doc_arena *a = l->repo->arena;
  const struct doc_node *meta = doc_map_get(doc, "metadata"), *spec = doc_map_get(doc, "spec");
  const struct doc_node *ports = doc_path(spec, "service.ports");
  struct intent_gateway *g;

  if (!doc_map_str(meta, "name") || !doc_map_str(meta, "namespace") || !doc_is(spec, DOC_MAP))
    return;
  g = doc_arena_alloc(a, sizeof(*g));
  g->name = doc_map_str(meta, "name");
  g->namespace = doc_map_str(meta, "namespace");
  g->id = id_of(a, g->namespace, g->name);
  g->pos = pos_of(doc);
  g->file = doc->file;
  g->path = doc->file + l->prefix_len;
  g->cp_name = doc_map_str(doc_map_get(spec, "controlPlane"), "name");
  g->cp_namespace = doc_map_str(doc_map_get(spec, "controlPlane"), "namespace");
  g->replicas_min = int_or(doc_map_get(spec, "replicas"), "min", 1);
  g->replicas_max = int_or(doc_map_get(spec, "replicas"), "max", g->replicas_min);
  g->run_as_root = bool_or(spec, "runAsRoot", false);
  g->service_type = str_or(doc_map_get(spec, "service"), "type", "ClusterIP");
  g->node_selector = doc_map_get(spec, "nodeSelector");
  g->tolerations = doc_map_get(spec, "tolerations");
  g->affinity = doc_map_get(spec, "affinity");
  g->resources = doc_map_get(spec, "resources");
  intent_selector_parse(a, doc_map_get(spec, "clusters"), &g->clusters);
  if (doc_is(ports, DOC_SEQ)) {
    g->ports = arena_array(a, ports->u.seq.n, sizeof(*g->ports));
    for (size_t i = 0; i < ports->u.seq.n; i++) {
      const struct doc_node *p = ports->u.seq.items[i];
      struct intent_gateway_port *gp;
      if (!doc_map_str(p, "name") || !port_ok(p, "port", false) || !port_ok(p, "targetPort", true))
        continue;
      gp = &g->ports[g->n_ports++];
      gp->name = doc_map_str(p, "name");
      gp->port = int_or(p, "port", 0);
      gp->target_port = int_or(p, "targetPort", gp->port);
      gp->pos = pos_of(p);
    }
  }
  l->gateways = xgrow(l->gateways, &l->cap_gateways, l->n_gateways + 1, sizeof(*l->gateways));
  l->gateways[l->n_gateways++] = g;
}

static void load_intent(struct load *l, const struct doc_node *doc) {
  struct doc_arena *a = l->repo->arena;
  const struct doc_node *meta = doc_map_get(doc, "metadata"), *spec = doc_map_get(doc, "spec");
  const struct doc_node *hosts = doc_map_get(spec, "hosts"), *ports = doc_map_get(spec, "ports");
  struct intent *in;

  if (!doc_map_str(meta, "name") || !doc_map_str(meta, "namespace") || !doc_is(spec, DOC_MAP))
    return;
  in = doc_arena_alloc(a, sizeof(*in));
  in->name = doc_map_str(meta, "name");
  in->namespace = doc_map_str(meta, "namespace");
  in->id = id_of(a, in->namespace, in->name);
  in->pos = pos_of(doc);
  in->file = doc->file;
  in->path = doc->file + l->prefix_len;
  in->gateway_ref = doc_map_str(spec, "gateway");
  in->tls_origination = bool_or(spec, "tlsOrigination", false);
  in->upstream = doc_map_str(spec, "upstream");
  in->upstream_pos = doc_map_get(spec, "upstream") ? pos_of(doc_map_get(spec, "upstream")) : in->pos;
  in->ca_certificates = doc_map_str(spec, "caCertificates");
  in->credential_name = doc_map_str(spec, "credentialName");
  {
    const struct doc_node *ca = doc_map_get(spec, "caCertificates");
    if (!ca)
      ca = doc_map_get(spec, "credentialName");
    in->ca_pos = ca ? pos_of(ca) : in->pos;
  }
  in->enforce = bool_or(spec, "enforce", false);
  in->network_policy = bool_or(spec, "networkPolicy", false);
  if (doc_map_get(spec, "networkPolicy"))
    in->network_policy_pos = pos_of(doc_map_get(spec, "networkPolicy"));
  in->adopt = bool_or(spec, "adopt", false);
  intent_selector_parse(a, doc_map_get(spec, "clusters"), &in->clusters);
  if (doc_is(hosts, DOC_SEQ)) {
    in->hosts = arena_array(a, hosts->u.seq.n, sizeof(*in->hosts));
    in->host_pos = arena_array(a, hosts->u.seq.n, sizeof(*in->host_pos));
    for (size_t i = 0; i < hosts->u.seq.n; i++) {
      const struct doc_node *h = hosts->u.seq.items[i];
      if (!doc_is(h, DOC_STR))
        continue;
      in->host_pos[in->n_hosts] = pos_of(h);
      in->hosts[in->n_hosts++] = h->u.str.s;
    }
  }
  if (doc_is(ports, DOC_SEQ)) {
    in->ports = arena_array(a, ports->u.seq.n, sizeof(*in->ports));
    for (size_t i = 0; i < ports->u.seq.n; i++) {
      const struct doc_node *p = ports->u.seq.items[i];
      struct intent_port *ip;
      if (!port_ok(p, "number", false) || !port_ok(p, "targetPort", true) ||
          protocol_of(doc_map_str(p, "protocol")) < 0)
        continue;
      ip = &in->ports[in->n_ports++];
      ip->number = int_or(p, "number", 0);
      ip->protocol = (enum intent_protocol)protocol_of(doc_map_str(p, "protocol"));
      ip->target_port = int_or(p, "targetPort", in->tls_origination ? 443 : ip->number);
      ip->pos = pos_of(p);
    }
  }
  l->intents = xgrow(l->intents, &l->cap_intents, l->n_intents + 1, sizeof(*l->intents));
  l->intents[l->n_intents++] = in;
}

static void load_fleet(struct load *l, const struct doc_node *doc) {
  struct doc_arena *a = l->repo->arena;
  const struct doc_node *meta = doc_map_get(doc, "metadata"), *spec = doc_map_get(doc, "spec");
  const struct doc_node *clusters = doc_map_get(spec, "clusters");
  const struct doc_node *waves = doc_path(spec, "rollout.waves");
  struct intent_fleet *f;

  if (!doc_map_str(meta, "name") || !doc_is(spec, DOC_MAP))
    return;
  if (l->repo->fleet) {
    diag_error(l->diags, doc->file, doc->line, doc->col,
               "a second Fleet '%s'; the config repo has exactly one (the first is '%s' at "
               "%s:%u)",
               doc_map_str(meta, "name"), l->repo->fleet->name, l->repo->fleet->pos.file,
               l->repo->fleet->pos.line);
    return;
  }
  f = doc_arena_alloc(a, sizeof(*f));
  f->name = doc_map_str(meta, "name");
  f->pos = pos_of(doc);
  if (doc_is(clusters, DOC_SEQ)) {
    f->clusters = arena_array(a, clusters->u.seq.n, sizeof(*f->clusters));
    for (size_t i = 0; i < clusters->u.seq.n; i++) {
      const struct doc_node *c = clusters->u.seq.items[i];
      struct intent_fleet_cluster *fc;
      if (!doc_map_str(c, "name"))
        continue;
      fc = &f->clusters[f->n_clusters++];
      fc->name = doc_map_str(c, "name");
      fc->pos = pos_of(doc_map_get(c, "name"));
      labels_of(a, doc_map_get(c, "labels"), &fc->labels, &fc->n_labels);
    }
  }
  if (doc_is(waves, DOC_SEQ)) {
    f->waves = arena_array(a, waves->u.seq.n, sizeof(*f->waves));
    for (size_t i = 0; i < waves->u.seq.n; i++) {
      const struct doc_node *w = waves->u.seq.items[i];
      const char *bake = doc_map_str(w, "bake");
      struct intent_wave *wv;
      if (!doc_map_str(w, "name"))
        continue;
      wv = &f->waves[f->n_waves++];
      wv->name = doc_map_str(w, "name");
      wv->pos = pos_of(doc_map_get(w, "name"));
      intent_selector_parse(a, doc_map_get(w, "selector"), &wv->selector);
      wv->max_parallel = (unsigned)int_or(w, "maxParallel", 1);
      wv->max_failures = (unsigned)int_or(w, "maxFailures", 0);
      wv->bake_usec = 60 * USEC_PER_SEC;
      if (bake)
        time_parse_duration(bake, &wv->bake_usec);
    }
  }
  l->repo->fleet = f;
}

static const struct doc_schema *schema_of(const char *kind) {
  if (str_eq(kind, "EgressGateway"))
    return &s_gw_doc;
  if (str_eq(kind, "EgressIntent"))
    return &s_intent_doc;
  if (str_eq(kind, "Fleet"))
    return &s_fleet_doc;
  return NULL;
}

static void load_document(struct load *l, const struct doc_node *doc) {
  const struct doc_pair *av = doc_map_pair(doc, "apiVersion"), *kp = doc_map_pair(doc, "kind");
  const char *api = doc_map_str(doc, "apiVersion"), *kind = doc_map_str(doc, "kind");
  const struct doc_schema *s;
  if (doc->type == DOC_NULL)
    return; /* an empty document, e.g. a trailing "---" */
  if (doc->type != DOC_MAP) {
    diag_error(l->diags, doc->file, doc->line, doc->col,
               "a document must be a mapping with apiVersion, kind, metadata and spec, not %s",
               doc_type_name(doc->type));
    return;
  }
  if (!av || !kp) {
    diag_error(l->diags, doc->file, doc->line, doc->col,
               "missing required field '%s'; every document needs apiVersion: %s and a kind "
               "(EgressGateway, EgressIntent or Fleet)",
               !av ? "apiVersion" : "kind", INTENT_API_VERSION);
    return;
  }
  if (!api || strcmp(api, INTENT_API_VERSION) != 0) {
    diag_error(l->diags, doc->file, av->value->line, av->value->col,
               "apiVersion must be %s%s%s%s; Kubernetes manifests do not belong in the config repo "
               "(to change what egressd renders, override a template under templates/)",
               INTENT_API_VERSION, api ? ", not '" : "", api ? api : "", api ? "'" : "");
    return;
  }
  s = schema_of(kind);
  if (!s) {
    const char *best = NULL;
    unsigned best_d = 4;
    for (const char *const *k = kinds; *k && kind; k++) {
      unsigned d = doc_schema_distance(kind, *k, 3);
      if (d < best_d) {
        best_d = d;
        best = *k;
      }
    }
    if (best)
      diag_error(l->diags, doc->file, kp->value->line, kp->value->col,
                 "unknown kind '%s'; did you mean '%s'? (egressd.io/v1 has EgressGateway, "
                 "EgressIntent and Fleet)",
                 kind, best);
    else
      diag_error(l->diags, doc->file, kp->value->line, kp->value->col,
                 "unknown kind '%s'; egressd.io/v1 has EgressGateway, EgressIntent and Fleet",
                 kind ? kind : "");
    return;
  }
  /* Structural problems are reported, and the document is still loaded as
   * far as it can be (the extractors skip what is missing or mistyped), so
   * the semantic problems of the same file show up in the same run. */
  doc_schema_check(doc, s, "", l->diags);
  if (s == &s_gw_doc)
    load_gateway(l, doc);
  else if (s == &s_intent_doc)
    load_intent(l, doc);
  else
    load_fleet(l, doc);
}

static bool is_config_file(const char *path) {
  return !str_has_prefix(path, "templates/") &&
         (str_has_suffix(path, ".yaml") || str_has_suffix(path, ".yml"));
}

static int cmp_gateway(const void *a, const void *b) {
  return strcmp((*(struct intent_gateway *const *)a)->id, (*(struct intent_gateway *const *)b)->id);
}

static int cmp_intent(const void *a, const void *b) {
  return strcmp((*(struct intent *const *)a)->id, (*(struct intent *const *)b)->id);
}

int intent_repo_load(struct fileset *fs, const struct intent_load_options *opts,
                     struct intent_repo **ret, struct diag_list *diags, struct err *err) {
  struct intent_repo *repo = xcalloc(1, sizeof(*repo));
  const char *prefix = opts && opts->root_name ? opts->root_name : "";
  struct load l = {.repo = repo, .diags = diags, .opts = opts, .prefix_len = strlen(prefix)};
  size_t before = diags->errors;
  int r;

  repo->arena = doc_arena_new();
  repo->templates = xcalloc(1, sizeof(*repo->templates));
  fileset_init(repo->templates, NULL);
  fileset_sort(fs);
  for (size_t i = 0; i < fs->n; i++) {
    const struct fileset_entry *e = &fs->items[i];
    struct doc_node **docs;
    size_t n;
    struct err perr = ERR_INIT;
    char *name;

    if (str_has_prefix(e->path, "templates/")) {
      const char *tname = e->path + strlen("templates/");
      bool known = !opts || !opts->known_templates;
      for (const char *const *t = opts ? opts->known_templates : NULL; t && *t && !known; t++)
        known = strcmp(*t, tname) == 0;
      if (!known) {
        char *shown = xasprintf("%s%s", prefix, e->path);
        diag_warning(diags, shown, 0, 0,
                     "not a template egressd renders, so it is ignored (the templates are named "
                     "after what they render: see docs/templates.md)");
        free(shown);
        continue;
      }
      if ((r = fileset_add(repo->templates, tname, e->data, e->len, err)) < 0)
        goto fail;
      continue;
    }
    if (!is_config_file(e->path))
      continue;
    name = xasprintf("%s%s", prefix, e->path);
    r = doc_parse(repo->arena, name, e->data, e->len, NULL, &docs, &n, diags, &perr);
    free(name);
    if (r < 0) {
      diag_error(diags, perr.file, perr.line, perr.col, "%s", perr.msg);
      continue;
    }
    for (size_t j = 0; j < n; j++)
      load_document(&l, docs[j]);
  }
  repo->gateways = l.gateways;
  repo->n_gateways = l.n_gateways;
  repo->intents = l.intents;
  repo->n_intents = l.n_intents;
  if (repo->n_gateways)
    qsort(repo->gateways, repo->n_gateways, sizeof(*repo->gateways), cmp_gateway);
  if (repo->n_intents)
    qsort(repo->intents, repo->n_intents, sizeof(*repo->intents), cmp_intent);
  intent_repo_check(&l);
  if (diags->errors > before) {
    intent_repo_free(repo);
    return -EINVAL;
  }
  *ret = repo;
  return 0;
fail:
  free(l.gateways);
  free(l.intents);
  repo->gateways = NULL;
  repo->intents = NULL;
  intent_repo_free(repo);
  return r;
}

void intent_repo_free(struct intent_repo *r) {
  if (!r)
    return;
  free(r->gateways);
  free(r->intents);
  if (r->templates) {
    fileset_dispose(r->templates);
    free(r->templates);
  }
  strmap_dispose(&r->gateway_index);
  doc_arena_free(r->arena);
  free(r);
}

const struct intent_gateway *intent_repo_gateway(const struct intent_repo *r, const char *ns,
                                                 const char *name) {
  char key[600];

  str_format(key, sizeof(key), "%s/%s", ns, name);
  return strmap_get(&r->gateway_index, key);
}

const struct intent_fleet_cluster *intent_fleet_cluster_find(const struct intent_fleet *f,
                                                             const char *name) {
  for (size_t i = 0; f && i < f->n_clusters; i++)
    if (strcmp(f->clusters[i].name, name) == 0)
      return &f->clusters[i];
  return NULL;
}

const char *intent_protocol_name(enum intent_protocol p) {
  switch (p) {
  case INTENT_PROTOCOL_HTTP:
    return "HTTP";
  case INTENT_PROTOCOL_HTTPS:
    return "HTTPS";
  case INTENT_PROTOCOL_TLS:
    return "TLS";
  case INTENT_PROTOCOL_TCP:
    return "TCP";
  }
  return "?";
}

/* HTTP, TLS (HTTPS is TLS on the wire) and TCP each need a gateway port of
 * their own kind. */
static int protocol_class(enum intent_protocol p) {
  return p == INTENT_PROTOCOL_HTTP ? 0 : p == INTENT_PROTOCOL_TCP ? 2 : 1;
}

bool intent_protocol_compatible(enum intent_protocol a, enum intent_protocol b) {
  return protocol_class(a) == protocol_class(b);
}

bool intent_host_ip(const char *host, char *ret, size_t size) {
  unsigned parts = 0, value = 0, digits = 0;
  const char *p = host;

  for (;; p++) {
    if (*p >= '0' && *p <= '9') {
      value = value * 10 + (unsigned)(*p - '0');
      if (++digits > 3 || value > 255)
        return false;
    } else if (*p == '.' || *p == '\0' || *p == '/') {
      if (!digits)
        return false;
      parts++;
      value = digits = 0;
      if (*p != '.')
        break;
    } else {
      return false;
    }
  }
  if (parts != 4 || (*p == '/' && strcmp(p, "/32") != 0))
    return false;
  if ((size_t)(p - host) + 1 > size)
    return false;
  memcpy(ret, host, (size_t)(p - host));
  ret[p - host] = '\0';
  return true;
}

void intent_ip_host_name(const char *ip, char *ret, size_t size) {
  char dashed[16];
  size_t i;

  for (i = 0; ip[i] && i < sizeof(dashed) - 1; i++)
    dashed[i] = ip[i] == '.' ? '-' : ip[i];
  dashed[i] = '\0';
  str_format(ret, size, "ip-%s.egressd.internal", dashed);
}
