/* render: a loaded config repo -> the Kubernetes/Istio objects of one cluster
 * (or of the whole fleet). Layer 2: no I/O, no logging.
 *
 * What is rendered (DESIGN.md §3, docs/templates.md):
 *   per EgressGateway   IstioMeshGateway; Istio Gateway (when intents use it)
 *   per EgressIntent    ServiceEntry; DestinationRule (gateway subset);
 *                       per host: VirtualService, and with tlsOrigination a
 *                       DestinationRule originating TLS
 *   enforcement         Sidecar (REGISTRY_ONLY) per source namespace;
 *                       AuthorizationPolicy per gateway
 *
 * Each object comes from a YAML template (built in, or the config repo's
 * templates/<name>.yaml) into which values enter as parsed nodes, never as
 * text: no intent value can add a key or a document. Output is
 * deterministic and in apply order (render_kind_rank), then namespace/name.
 * Every object carries app.kubernetes.io/managed-by: egressd, the instance
 * label egressd.io/instance: <Fleet name>, and annotations naming its source.
 */
#pragma once

#include <stdbool.h>

#include "base/diag.h"
#include "base/err.h"
#include "doc/doc.h"
#include "intent/intent.h"

#define RENDER_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define RENDER_LABEL_INSTANCE "egressd.io/instance"
#define RENDER_LABEL_INTENT "egressd.io/intent"
#define RENDER_LABEL_GATEWAY "egressd.io/gateway"
/* on the gateway's pods (IstioMeshGateway podMetadata), so that an Istio
 * Gateway selects its own gateway's pods and not those of a same-named
 * gateway in another namespace (Gateway selectors span namespaces) */
#define RENDER_LABEL_GATEWAY_NAMESPACE "egressd.io/gateway-namespace"
#define RENDER_ANNOTATION_SOURCE "egressd.io/source"
#define RENDER_ANNOTATION_OWNER "egressd.io/owner"
#define RENDER_MANAGER "egressd"

/* The kinds egressd renders, in apply order. Deletions go in reverse. */
enum render_kind {
  RENDER_KIND_ISTIO_MESH_GATEWAY,
  RENDER_KIND_GATEWAY,
  RENDER_KIND_SERVICE_ENTRY,
  RENDER_KIND_DESTINATION_RULE,
  RENDER_KIND_VIRTUAL_SERVICE,
  RENDER_KIND_SIDECAR,
  RENDER_KIND_AUTHORIZATION_POLICY,
  RENDER_KIND_NETWORK_POLICY,   /* networking.k8s.io/v1, opt-in per enforcing namespace */
  _RENDER_KIND_MAX,
};

struct render_kind_info {
  const char *kind;        /* "VirtualService" */
  const char *group;       /* "networking.istio.io" */
  const char *plural;      /* "virtualservices" */
};
const struct render_kind_info *render_kind_info(enum render_kind k);
/* The kind whose Kind name is @kind, or -EINVAL. */
int render_kind_from_name(const char *kind);

struct render_options {
  /* networking.istio.io version: v1, v1beta1 (default) or v1alpha3;
   * security.istio.io follows (v1 for v1, else v1beta1). */
  const char *istio_api_version;
  /* Render for this Fleet cluster (its selectors apply); NULL renders every
   * intent and gateway of the repo. */
  const struct intent_fleet_cluster *cluster;
};

struct render_object {
  enum render_kind kind;
  const char *api_version; /* "networking.istio.io/v1beta1" */
  const char *namespace;
  const char *name;
  const struct intent *intent;           /* the source, or NULL */
  const struct intent_gateway *gateway;  /* the source, or NULL */
  bool adopt;              /* the intent allows taking over an existing object */
  struct doc_node *object; /* the manifest; valid during the callback only */
};

/* Called once per object in order; return < 0 to stop rendering (the value
 * is returned by render_repo). Copy what must outlive the call. */
typedef int (*render_emit_fn)(void *userdata, const struct render_object *obj);

/* Render @repo (@emit NULL: only check it). Problems (a broken template
 * override, objects whose names
 * collide) go to @diags and make the result -EINVAL; nothing is emitted after
 * the first such problem is found in a kind, but all kinds are checked. */
int render_repo(const struct intent_repo *repo, const struct render_options *opts,
                render_emit_fn emit, void *userdata, struct diag_list *diags, struct err *err);

/* Is @v a networking.istio.io version egressd renders? */
bool render_istio_version_valid(const char *v);

/* The names of the templates (NULL-terminated): what a config repo may
 * override under templates/. */
const char *const *render_template_names(void);

/* The built-in template named @name ("virtualservice.yaml"), or NULL. */
const char *render_builtin_template(const char *name, size_t *ret_len);
