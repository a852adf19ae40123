/* Name rules of Kubernetes and Istio, as pure string checks. Each returns
 * NULL when @s is valid, else a short reason a user can act on. */
#pragma once

#include <stdbool.h>

/* DNS-1123 label: 1-63 of [a-z0-9-], starting and ending alphanumeric.
 * Kubernetes namespaces, label-like names, Istio Gateway names. */
const char *dns_label_check(const char *s);
/* RFC 1035 label: a DNS-1123 label that starts with a letter (Service
 * names, hence IstioMeshGateway names). */
const char *dns_rfc1035_label_check(const char *s);
/* DNS-1123 subdomain as Kubernetes checks it (IsDNS1123Subdomain): at most
 * 253 characters, dot-separated parts of [a-z0-9-] that start and end
 * alphanumeric (Kubernetes does not bound each part to 63). Most object
 * names. */
const char *dns_subdomain_check(const char *s);
/* An external host for Istio: a fully qualified domain name (at least two
 * labels, the last not all-numeric), lower-case, optionally with a wildcard
 * as the whole first label ("*.example.com"); at most 253 characters; a
 * trailing dot is not allowed. */
const char *dns_host_check(const char *s);
/* Does host pattern @pattern ("*.example.com" or a plain name) cover the
 * plain host @host? A wildcard covers names with one or more labels in its
 * place (as Istio matches "*.example.com": a.example.com, a.b.example.com),
 * not the bare domain. */
bool dns_host_covers(const char *pattern, const char *host);
