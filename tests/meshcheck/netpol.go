package meshcheck

// Kubernetes NetworkPolicy, as the CNI enforces it below the mesh: whether a
// client pod may open a connection to a destination (a pod, or an address
// outside the cluster). Istio does not read NetworkPolicies, so this is the
// oracle's own code, kept to the API's documented semantics
// (k8s.io/api/networking/v1): a pod selected by an Egress policy may connect
// only where some egress rule of some such policy allows; rules, peers and
// ports are ORed, a rule needs a matching peer (or none listed) and a
// matching port (or none listed); namespaceSelector and podSelector in one
// peer must both match; an ipBlock matches addresses, never pods here.

import (
	"fmt"
	"net"
	"strings"
)

// npDest is where a connection goes: a pod (namespace and labels) or an
// address outside the cluster (ip).
type npDest struct {
	namespace string
	labels    map[string]string
	ip        string
	port      int
	proto     string // TCP, UDP
}

func (d npDest) String() string {
	if d.namespace != "" {
		return fmt.Sprintf("pod of %s port %d", d.namespace, d.port)
	}
	return fmt.Sprintf("%s:%d", d.ip, d.port)
}

func selectorMatches(sel any, labels map[string]string) bool {
	s, _ := sel.(map[string]any)
	if s == nil {
		return true // absent: all (the caller decides whether absent means all)
	}
	if ml, ok := s["matchLabels"].(map[string]any); ok {
		for k, v := range ml {
			if labels[k] != fmt.Sprint(v) {
				return false
			}
		}
	}
	exprs, _ := s["matchExpressions"].([]any)
	for _, e := range exprs {
		em, _ := e.(map[string]any)
		key, _ := em["key"].(string)
		op, _ := em["operator"].(string)
		vals := toStrings(em["values"])
		v, has := labels[key]
		switch op {
		case "In":
			if !has || !contains(vals, v) {
				return false
			}
		case "NotIn":
			if has && contains(vals, v) {
				return false
			}
		case "Exists":
			if !has {
				return false
			}
		case "DoesNotExist":
			if has {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func peerMatches(policyNS string, peer map[string]any, d npDest) bool {
	if ib, ok := peer["ipBlock"].(map[string]any); ok {
		if d.ip == "" {
			return false
		}
		_, cidr, err := net.ParseCIDR(fmt.Sprint(ib["cidr"]))
		ip := net.ParseIP(d.ip)
		if err != nil || ip == nil || !cidr.Contains(ip) {
			return false
		}
		for _, ex := range toStrings(ib["except"]) {
			if _, c, err := net.ParseCIDR(ex); err == nil && c.Contains(ip) {
				return false
			}
		}
		return true
	}
	if d.namespace == "" {
		return false // selectors choose pods; an outside address is never one
	}
	nsSel, hasNS := peer["namespaceSelector"]
	podSel, hasPod := peer["podSelector"]
	if hasNS {
		if !selectorMatches(nsSel, map[string]string{"kubernetes.io/metadata.name": d.namespace}) {
			return false
		}
	} else if d.namespace != policyNS {
		return false // podSelector alone: pods of the policy's namespace
	}
	return !hasPod || selectorMatches(podSel, d.labels)
}

func portMatches(ports []any, d npDest) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pm, _ := p.(map[string]any)
		proto := "TCP"
		if s, ok := pm["protocol"].(string); ok && s != "" {
			proto = s
		}
		if !strings.EqualFold(proto, d.proto) {
			continue
		}
		port, has := pm["port"]
		if !has {
			return true
		}
		n := toInt(port)
		end := toInt(pm["endPort"])
		if n == d.port || (end > 0 && d.port >= n && d.port <= end) {
			return true
		}
	}
	return false
}

// egressAllowed says whether the NetworkPolicies of the client's namespace
// let it connect to d; when not, which policies selected it.
func (m *Mesh) egressAllowed(c *Client, d npDest) (bool, string) {
	var selecting []string
	for _, np := range m.NetworkPolicies {
		if np.Namespace != c.Namespace {
			continue
		}
		spec, _ := np.Obj["spec"].(map[string]any)
		if !selectorMatches(spec["podSelector"], c.Labels) {
			continue
		}
		types := toStrings(spec["policyTypes"])
		egress, hasEgress := spec["egress"].([]any)
		if !contains(types, "Egress") && !hasEgress {
			continue
		}
		selecting = append(selecting, np.Namespace+"/"+np.Name)
		for _, r := range egress {
			rm, _ := r.(map[string]any)
			ports, _ := rm["ports"].([]any)
			if !portMatches(ports, d) {
				continue
			}
			to, hasTo := rm["to"].([]any)
			if !hasTo || len(to) == 0 {
				return true, ""
			}
			for _, peer := range to {
				pm, _ := peer.(map[string]any)
				if peerMatches(np.Namespace, pm, d) {
					return true, ""
				}
			}
		}
	}
	if len(selecting) == 0 {
		return true, ""
	}
	return false, fmt.Sprintf("NetworkPolicy %s lets no connection reach %s", strings.Join(selecting, ", "), d)
}
