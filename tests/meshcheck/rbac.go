package meshcheck

// Envoy RBAC, evaluated on the RBAC filters Istio generated for the gateway's
// matched filter chain (AuthorizationPolicy → envoy.filters.network.rbac for
// TCP chains, envoy.filters.http.rbac in the HTTP connection manager). Istio's
// simulation stops at the cluster; this evaluates the filters with Envoy's
// semantics for the matchers Istio emits, and refuses (an error, never a
// guess) any matcher it does not know.

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	httprbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netrbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

const (
	typeNetRBAC  = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
	typeHTTPRBAC = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
	typeHCM      = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)

// rbacAttrs are the connection and request attributes RBAC sees.
type rbacAttrs struct {
	destPort  uint32
	destIP    string
	sourceIP  string
	principal string // the peer's URI SAN; empty on a plaintext connection
	sni       string
	http      bool
	headers   map[string]string
}

type rbacDecision struct {
	allowed bool
	text    string // long form, for the gateway column
	short   string // for the verdict
}

type rbacFilter struct {
	name  string
	rules *rbacv3.RBAC
}

// chainRBACFilters lists the enforcing RBAC filters of a filter chain in order.
func chainRBACFilters(fc *listener.FilterChain, http bool) ([]rbacFilter, error) {
	var out []rbacFilter
	for _, f := range fc.GetFilters() {
		switch f.GetTypedConfig().GetTypeUrl() {
		case typeNetRBAC:
			r := &netrbac.RBAC{}
			if err := f.GetTypedConfig().UnmarshalTo(r); err != nil {
				return nil, err
			}
			if r.Rules != nil {
				out = append(out, rbacFilter{name: f.Name, rules: r.Rules})
			}
		case typeHCM:
			if !http {
				continue
			}
			h := &hcm.HttpConnectionManager{}
			if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
				return nil, err
			}
			for _, hf := range h.HttpFilters {
				if hf.GetTypedConfig().GetTypeUrl() != typeHTTPRBAC {
					continue
				}
				r := &httprbac.RBAC{}
				if err := hf.GetTypedConfig().UnmarshalTo(r); err != nil {
					return nil, err
				}
				if r.Rules != nil {
					out = append(out, rbacFilter{name: hf.Name, rules: r.Rules})
				}
			}
		}
	}
	return out, nil
}

var policyNameRE = regexp.MustCompile(`^ns\[([^\]]*)\]-policy\[([^\]]*)\]-rule\[(\d+)\]$`)

// policyRef turns Istio's RBAC policy name into AuthorizationPolicy ns/name rule N.
func policyRef(name string) (ap, rule string) {
	if m := policyNameRE.FindStringSubmatch(name); m != nil {
		return m[1] + "/" + m[2], m[3]
	}
	return name, ""
}

func apNames(policies map[string]*rbacv3.Policy) string {
	set := map[string]bool{}
	for n := range policies {
		ap, _ := policyRef(n)
		set[ap] = true
	}
	names := sortedKeys(set)
	return strings.Join(names, ", ")
}

func evalChainRBAC(fc *listener.FilterChain, a rbacAttrs) (*rbacDecision, error) {
	filters, err := chainRBACFilters(fc, a.http)
	if err != nil {
		return nil, err
	}
	if len(filters) == 0 {
		return &rbacDecision{allowed: true, text: "allowed (no RBAC filter: no AuthorizationPolicy selects the gateway)"}, nil
	}
	peer := "peer " + a.principal
	if a.principal == "" {
		peer = "peer has no mTLS identity (plaintext hop)"
	}
	var allowedBy []string
	for _, f := range filters {
		r := f.rules
		names := sortedKeys(r.Policies)
		var matched []string
		for _, n := range names {
			ok, err := policyMatches(r.Policies[n], a)
			if err != nil {
				return nil, fmt.Errorf("%s policy %s: %v", f.name, n, err)
			}
			if ok {
				matched = append(matched, n)
			}
		}
		switch r.Action {
		case rbacv3.RBAC_ALLOW:
			if len(matched) == 0 {
				d := &rbacDecision{allowed: false}
				d.short = fmt.Sprintf("AuthorizationPolicy %s: ALLOW, no rule matched", apNames(r.Policies))
				d.text = fmt.Sprintf("DENIED by %s (action ALLOW, %d rules of AuthorizationPolicy %s, none matched; %s)",
					f.name, len(r.Policies), apNames(r.Policies), peer)
				return d, nil
			}
			ap, rule := policyRef(matched[0])
			allowedBy = append(allowedBy, fmt.Sprintf("AuthorizationPolicy %s rule %s (%s)", ap, rule, f.name))
		case rbacv3.RBAC_DENY:
			if len(matched) > 0 {
				ap, rule := policyRef(matched[0])
				d := &rbacDecision{allowed: false}
				d.short = fmt.Sprintf("AuthorizationPolicy %s: DENY rule %s matched", ap, rule)
				d.text = fmt.Sprintf("DENIED by %s (action DENY: AuthorizationPolicy %s rule %s matched; %s)", f.name, ap, rule, peer)
				return d, nil
			}
		case rbacv3.RBAC_LOG:
		default:
			return nil, fmt.Errorf("%s: unsupported RBAC action %v", f.name, r.Action)
		}
	}
	sort.Strings(allowedBy)
	text := "allowed"
	if len(allowedBy) > 0 {
		text += " by " + strings.Join(allowedBy, ", ")
	} else {
		text += " (no DENY policy matched)"
	}
	return &rbacDecision{allowed: true, text: text + "; " + peer}, nil
}

func policyMatches(p *rbacv3.Policy, a rbacAttrs) (bool, error) {
	if p.GetCondition() != nil || p.GetCheckedCondition() != nil {
		return false, fmt.Errorf("CEL conditions are not supported")
	}
	// a policy matches when any permission and any principal match
	if ok, err := anyMatch(p.Permissions, a, permissionMatches); err != nil || !ok {
		return false, err
	}
	return anyMatch(p.Principals, a, principalMatches)
}

// allMatch and anyMatch are Envoy's and_rules/and_ids and or_rules/or_ids;
// an error (a matcher meshcheck does not know) ends the evaluation.
func allMatch[T any](xs []T, a rbacAttrs, f func(T, rbacAttrs) (bool, error)) (bool, error) {
	for _, x := range xs {
		ok, err := f(x, a)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func anyMatch[T any](xs []T, a rbacAttrs, f func(T, rbacAttrs) (bool, error)) (bool, error) {
	for _, x := range xs {
		ok, err := f(x, a)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func permissionMatches(p *rbacv3.Permission, a rbacAttrs) (bool, error) {
	switch r := p.GetRule().(type) {
	case *rbacv3.Permission_Any:
		return r.Any, nil
	case *rbacv3.Permission_AndRules:
		return allMatch(r.AndRules.Rules, a, permissionMatches)
	case *rbacv3.Permission_OrRules:
		return anyMatch(r.OrRules.Rules, a, permissionMatches)
	case *rbacv3.Permission_NotRule:
		ok, err := permissionMatches(r.NotRule, a)
		return !ok, err
	case *rbacv3.Permission_DestinationPort:
		return r.DestinationPort == a.destPort, nil
	case *rbacv3.Permission_DestinationPortRange:
		return int64(a.destPort) >= int64(r.DestinationPortRange.Start) && int64(a.destPort) < int64(r.DestinationPortRange.End), nil
	case *rbacv3.Permission_DestinationIp:
		return cidrContains(r.DestinationIp, a.destIP)
	case *rbacv3.Permission_RequestedServerName:
		return stringMatches(r.RequestedServerName, a.sni)
	case *rbacv3.Permission_Header:
		if !a.http {
			return false, nil
		}
		return headerMatches(r.Header, a.headers)
	case *rbacv3.Permission_UrlPath:
		if !a.http {
			return false, nil
		}
		return stringMatches(r.UrlPath.GetPath(), a.headers[":path"])
	}
	return false, fmt.Errorf("unsupported RBAC permission %T", p.GetRule())
}

func principalMatches(p *rbacv3.Principal, a rbacAttrs) (bool, error) {
	switch r := p.GetIdentifier().(type) {
	case *rbacv3.Principal_Any:
		return r.Any, nil
	case *rbacv3.Principal_AndIds:
		return allMatch(r.AndIds.Ids, a, principalMatches)
	case *rbacv3.Principal_OrIds:
		return anyMatch(r.OrIds.Ids, a, principalMatches)
	case *rbacv3.Principal_NotId:
		ok, err := principalMatches(r.NotId, a)
		return !ok, err
	case *rbacv3.Principal_Authenticated_:
		// Needs a peer certificate: never matches on a plaintext connection.
		if a.principal == "" {
			return false, nil
		}
		if r.Authenticated.GetPrincipalName() == nil {
			return true, nil
		}
		return stringMatches(r.Authenticated.GetPrincipalName(), a.principal)
	case *rbacv3.Principal_FilterState:
		if r.FilterState.GetKey() != "io.istio.peer_principal" {
			return false, fmt.Errorf("unsupported filter state key %q", r.FilterState.GetKey())
		}
		if a.principal == "" {
			return false, nil // no peer certificate, no filter state
		}
		sm := r.FilterState.GetStringMatch()
		if sm == nil {
			return false, fmt.Errorf("unsupported filter state matcher %T", r.FilterState.GetMatcher())
		}
		return stringMatches(sm, a.principal)
	case *rbacv3.Principal_DirectRemoteIp:
		return cidrContains(r.DirectRemoteIp, a.sourceIP)
	case *rbacv3.Principal_RemoteIp:
		return cidrContains(r.RemoteIp, a.sourceIP)
	case *rbacv3.Principal_SourceIp:
		return cidrContains(r.SourceIp, a.sourceIP)
	case *rbacv3.Principal_Header:
		if !a.http {
			return false, nil
		}
		return headerMatches(r.Header, a.headers)
	case *rbacv3.Principal_UrlPath:
		if !a.http {
			return false, nil
		}
		return stringMatches(r.UrlPath.GetPath(), a.headers[":path"])
	}
	return false, fmt.Errorf("unsupported RBAC principal %T", p.GetIdentifier())
}

func cidrContains(c *core.CidrRange, ip string) (bool, error) {
	if ip == "" {
		return false, nil
	}
	pfx, err := netip.ParsePrefix(fmt.Sprintf("%s/%d", c.GetAddressPrefix(), c.GetPrefixLen().GetValue()))
	if err != nil {
		return false, err
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false, err
	}
	return pfx.Contains(addr), nil
}

func stringMatches(m *matcher.StringMatcher, s string) (bool, error) {
	if m == nil {
		return true, nil
	}
	v := s
	ic := m.GetIgnoreCase()
	eq := func(x string) string {
		if ic {
			return strings.ToLower(x)
		}
		return x
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcher.StringMatcher_Exact:
		return eq(v) == eq(p.Exact), nil
	case *matcher.StringMatcher_Prefix:
		return strings.HasPrefix(eq(v), eq(p.Prefix)), nil
	case *matcher.StringMatcher_Suffix:
		return strings.HasSuffix(eq(v), eq(p.Suffix)), nil
	case *matcher.StringMatcher_Contains:
		return strings.Contains(eq(v), eq(p.Contains)), nil
	case *matcher.StringMatcher_SafeRegex:
		re, err := regexp.Compile("^(?:" + p.SafeRegex.GetRegex() + ")$")
		if err != nil {
			return false, err
		}
		return re.MatchString(v), nil
	}
	return false, fmt.Errorf("unsupported string matcher %T", m.GetMatchPattern())
}

func stringMatcherText(m *matcher.StringMatcher) string {
	switch p := m.GetMatchPattern().(type) {
	case *matcher.StringMatcher_Exact:
		return p.Exact
	case *matcher.StringMatcher_Prefix:
		return p.Prefix + "*"
	case *matcher.StringMatcher_Suffix:
		return "*" + p.Suffix
	case *matcher.StringMatcher_Contains:
		return "*" + p.Contains + "*"
	case *matcher.StringMatcher_SafeRegex:
		return "~" + p.SafeRegex.GetRegex()
	}
	return fmt.Sprint(m)
}

func headerMatches(h *route.HeaderMatcher, headers map[string]string) (bool, error) {
	v, present := headers[strings.ToLower(h.GetName())]
	if !present && h.GetTreatMissingHeaderAsEmpty() {
		present, v = true, ""
	}
	var ok bool
	var err error
	switch p := h.GetHeaderMatchSpecifier().(type) {
	case *route.HeaderMatcher_PresentMatch:
		ok = present == p.PresentMatch
	case *route.HeaderMatcher_ExactMatch:
		ok = present && v == p.ExactMatch
	case *route.HeaderMatcher_PrefixMatch:
		ok = present && strings.HasPrefix(v, p.PrefixMatch)
	case *route.HeaderMatcher_SuffixMatch:
		ok = present && strings.HasSuffix(v, p.SuffixMatch)
	case *route.HeaderMatcher_ContainsMatch:
		ok = present && strings.Contains(v, p.ContainsMatch)
	case *route.HeaderMatcher_SafeRegexMatch:
		var re *regexp.Regexp
		re, err = regexp.Compile("^(?:" + p.SafeRegexMatch.GetRegex() + ")$")
		ok = err == nil && present && re.MatchString(v)
	case *route.HeaderMatcher_StringMatch:
		if present {
			ok, err = stringMatches(p.StringMatch, v)
		}
	case nil:
		ok = present
	default:
		return false, fmt.Errorf("unsupported header matcher %T", h.GetHeaderMatchSpecifier())
	}
	if err != nil {
		return false, err
	}
	if h.GetInvertMatch() {
		ok = !ok
	}
	return ok, nil
}
