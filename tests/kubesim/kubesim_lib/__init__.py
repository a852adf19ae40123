"""kubesim: a Kubernetes 1.32 API-server emulator for egressd's tests.

Modules: util (JSON, time, Status errors), schema (structural schemas,
resource registry, pruning, defaulting, validation), fieldset (SMD-style
field sets, merge, compare), ssa (managedFields, apply and update), store
(objects, resourceVersion, watch events), discovery (discovery and OpenAPI
documents), faults, operator (IstioMeshGateway simulation), certs, server
(HTTP handlers, auth, control API) and main (CLI).
"""
