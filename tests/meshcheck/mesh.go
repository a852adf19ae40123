// Package meshcheck is the Istio oracle of egressd: it feeds the objects that
// `egressd render` prints to Istio's own control-plane code (module
// istio.io/istio) and reports what a sidecar and an egress gateway would do
// with a request. See README.md.
//
// This file reads the manifests and builds the minimal mesh they assume: the
// Service and pod the SMM operator makes for each IstioMeshGateway, one
// sidecar workload per client namespace, and the mesh-wide defaults of SMM 1.17.
package meshcheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Addresses of the minimal mesh. Gateway pods and client pods get addresses in
// ranges of their own so that an endpoint address tells which proxy it is.
const (
	gatewayPodNet = "10.244.1."
	clientPodNet  = "10.244.2."
	serviceNet    = "10.96.1."
	// ExternalIP stands for the address a client's DNS lookup of an external
	// host returns (TEST-NET-3; no Istio VIP ever uses it).
	ExternalIP    = "203.0.113.10"
	trustDomain   = "cluster.local"
	rootNamespace = "istio-system"
	clientSA      = "client"
	clientApp     = "client"
	defaultICP    = "cp-v117x.istio-system"
)

// Doc is one document of the manifests stream.
type Doc struct {
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	Obj        map[string]any
	Text       string // the document as it was in the file
	FirstLine  int    // 1-based line of the document's first line in the file
	Lines      int    // number of lines of Text
}

// Group returns the API group of the document.
func (d *Doc) Group() string {
	if i := strings.Index(d.APIVersion, "/"); i >= 0 {
		return d.APIVersion[:i]
	}
	return ""
}

// SvcPort is a port of a gateway Service.
type SvcPort struct {
	Name       string
	Port       int
	Protocol   string
	TargetPort int
}

// MeshGateway is an IstioMeshGateway and what the SMM operator makes of it.
type MeshGateway struct {
	Name, Namespace string
	Type            string // egress or ingress
	Revision        string // istio.io/rev: <icp name>.<icp namespace>
	Ports           []SvcPort
	PodIP           string
	ClusterIP       string
	PodName         string
	Labels          map[string]string
}

// FQDN is the gateway Service's host name.
func (g *MeshGateway) FQDN() string {
	return g.Name + "." + g.Namespace + ".svc." + trustDomain
}

// Client is the sidecar workload of one namespace.
type Client struct {
	Namespace string
	PodIP     string
	PodName   string
	Labels    map[string]string
}

// Principal is the SPIFFE identity the client's sidecar presents over mTLS.
func (c *Client) Principal() string {
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", trustDomain, c.Namespace, clientSA)
}

// Request is one row of the table: a client namespace sending to host:port.
type Request struct {
	From  string
	Host  string
	Port  int
	Proto string // http, tls or tcp
	Why   string // intent, unlisted, intruder, unknown-host, se-port
	// Address is where the client connects: the ServiceEntry's address of a
	// host the mesh knows by address (TCP to an IP); empty: the host's DNS
	// answer, ExternalIP.
	Address string
}

func (r Request) String() string {
	if r.Address != "" {
		return fmt.Sprintf("%s → %s:%d/%s (%s)", r.From, r.Host, r.Port, r.Proto, r.Address)
	}
	return fmt.Sprintf("%s → %s:%d/%s", r.From, r.Host, r.Port, r.Proto)
}

// addressOf is the address of host in the ServiceEntries namespace ns sees
// (its own): the first of spec.addresses, without a /32; "" when none.
func (m *Mesh) addressOf(ns, host string) string {
	for _, d := range m.Istio {
		if d.Kind != "ServiceEntry" || d.Namespace != ns {
			continue
		}
		spec, _ := d.Obj["spec"].(map[string]any)
		if !contains(toStrings(spec["hosts"]), host) {
			continue
		}
		if a := toStrings(spec["addresses"]); len(a) > 0 {
			return strings.TrimSuffix(a[0], "/32")
		}
	}
	return ""
}

// Mesh is the manifests plus the minimal mesh they assume.
type Mesh struct {
	File     string
	Data     []byte // the manifests file as read
	Docs     []*Doc
	Istio    []*Doc // the documents Istio reads (every IstioMeshGateway dropped)
	Gateways []*MeshGateway
	// NetworkPolicies are kept out of what Istio reads (the CNI enforces them)
	NetworkPolicies []*Doc
	Clients         map[string]*Client
	Unlisted        string // a namespace that no intent names
	// OutboundPolicy is the mesh config's outboundTrafficPolicy.mode:
	// ALLOW_ANY (SMM 1.17 ships Istio's default; "" means it) or REGISTRY_ONLY.
	OutboundPolicy string
	// Intruder is a namespace that no intent names but that routes itself
	// through each gateway as an intent's namespace does (its own copies of
	// the intent's ServiceEntry, gateway DestinationRule and mesh route):
	// only the gateway's AuthorizationPolicy can stop it.
	Intruder string
	// Borrowed are requests of a namespace that has intents through a
	// gateway for a host that only another namespace's intent names, with
	// that intent's objects copied in: the AuthorizationPolicy must tie
	// each namespace to its own hosts.
	Borrowed []Request
	Intents  []Request
	// Extra are ServiceEntry ports that no VirtualService mesh route covers:
	// a client there is not sent to a gateway.
	Extra []Request
	// KubeYAML is the minimal mesh: Namespaces, gateway Services,
	// Deployments, pods and EndpointSlices, client pods.
	KubeYAML string
	// MeshIstioYAML holds the mesh-wide Istio objects SMM ships (the
	// PERMISSIVE PeerAuthentication of the root namespace).
	MeshIstioYAML string
}

// ReadManifests reads a YAML stream as `egressd render` prints it ("-" is
// standard input).
func ReadManifests(path string) ([]byte, []*Doc, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, nil, err
	}
	docs, err := ParseManifests(data)
	return data, docs, err
}

// ParseManifests splits a YAML stream into documents, keeping each document's
// text and line numbers (the analyzers report lines of the file).
func ParseManifests(data []byte) ([]*Doc, error) {
	var docs []*Doc
	var cur []string
	start := 1
	line := 0
	flush := func() error {
		text := strings.Join(cur, "\n")
		n := len(cur)
		first := start
		cur = nil
		start = line + 1
		if strings.TrimSpace(stripComments(text)) == "" {
			return nil
		}
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(text), &obj); err != nil {
			return fmt.Errorf("document at line %d: %v", first, err)
		}
		if obj == nil {
			return nil
		}
		d := &Doc{Obj: obj, Text: text, FirstLine: first, Lines: n}
		d.APIVersion, _ = obj["apiVersion"].(string)
		d.Kind, _ = obj["kind"].(string)
		md, _ := obj["metadata"].(map[string]any)
		d.Name, _ = md["name"].(string)
		d.Namespace, _ = md["namespace"].(string)
		if d.APIVersion == "" || d.Kind == "" || d.Name == "" {
			return fmt.Errorf("document at line %d: apiVersion, kind and metadata.name are required", first)
		}
		if d.Kind == "List" {
			return fmt.Errorf("document at line %d: a v1 List is not supported; render with -o yaml", first)
		}
		docs = append(docs, d)
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1024*1024), 64*1024*1024)
	for sc.Scan() {
		line++
		l := sc.Text()
		if strings.TrimRight(l, " \t") == "---" || strings.HasPrefix(l, "--- ") {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		cur = append(cur, l)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	line++
	if err := flush(); err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, errors.New("no objects in the manifests")
	}
	return docs, nil
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

func isIstioGroup(g string) bool {
	return g == "networking.istio.io" || g == "security.istio.io" || g == "telemetry.istio.io" ||
		g == "extensions.istio.io"
}

// BuildMesh classifies the documents, translates every IstioMeshGateway into
// what the SMM operator creates, derives the intents and adds the client
// workloads.
func BuildMesh(file string, data []byte, docs []*Doc) (*Mesh, error) {
	m := &Mesh{File: file, Data: data, Docs: docs, Clients: map[string]*Client{}}
	for _, d := range docs {
		switch {
		case d.Kind == "IstioMeshGateway" && d.Group() == "servicemesh.cisco.com":
			g, err := meshGateway(d, len(m.Gateways)+1)
			if err != nil {
				return nil, err
			}
			m.Gateways = append(m.Gateways, g)
		case d.Kind == "NetworkPolicy" && d.Group() == "networking.k8s.io":
			// Kubernetes (the CNI) enforces it below the mesh; Istio does not read it
			m.NetworkPolicies = append(m.NetworkPolicies, d)
		case isIstioGroup(d.Group()):
			if d.Namespace == "" {
				return nil, fmt.Errorf("%s %s (line %d) has no metadata.namespace", d.Kind, d.Name, d.FirstLine)
			}
			m.Istio = append(m.Istio, d)
		default:
			return nil, fmt.Errorf("%s %s (line %d): kind %s is neither Istio's nor an IstioMeshGateway",
				d.Kind, d.Name, d.FirstLine, d.APIVersion)
		}
	}
	if err := m.deriveIntents(); err != nil {
		return nil, err
	}
	namespaces := map[string]bool{}
	for _, r := range m.Intents {
		namespaces[r.From] = true
	}
	for _, d := range m.Istio {
		if d.Kind == "Sidecar" {
			namespaces[d.Namespace] = true
		}
	}
	m.Unlisted = "unlisted"
	for i := 1; namespaces[m.Unlisted] || m.hasGatewayNamespace(m.Unlisted); i++ {
		m.Unlisted = fmt.Sprintf("unlisted-%d", i)
	}
	m.Intruder = "intruder"
	for i := 1; namespaces[m.Intruder] || m.hasGatewayNamespace(m.Intruder) || m.Intruder == m.Unlisted; i++ {
		m.Intruder = fmt.Sprintf("intruder-%d", i)
	}
	if err := m.addIntruder(); err != nil {
		return nil, err
	}
	if err := m.addBorrowed(); err != nil {
		return nil, err
	}
	names := sortedKeys(namespaces)
	names = append(names, m.Unlisted, m.Intruder)
	for i, ns := range names {
		m.Clients[ns] = &Client{
			Namespace: ns,
			PodIP:     clientPodNet + strconv.Itoa(i+1),
			PodName:   "client-7c9f8d6b5d-" + fmt.Sprintf("x%04d", i+1),
			Labels: map[string]string{
				"app":                                 clientApp,
				"security.istio.io/tlsMode":           "istio",
				"service.istio.io/canonical-name":     clientApp,
				"service.istio.io/canonical-revision": "latest",
				"istio.io/rev":                        m.revision(),
			},
		}
	}
	m.KubeYAML = m.kubeObjects(names)
	m.MeshIstioYAML = fmt.Sprintf(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: %s
spec:
  mtls:
    mode: PERMISSIVE
`, rootNamespace)
	return m, nil
}

// addIntruder gives the intruder namespace, for the first intent through each
// gateway, what that intent's namespace has to reach the gateway: the
// ServiceEntry of the host, the DestinationRule of the gateway host (the
// mTLS subsets) and the VirtualService's mesh routes, all exported to
// itself only.
func (m *Mesh) addIntruder() error {
	done := map[string]bool{}
	var add []*Doc
	for _, in := range m.Intents {
		gw := m.intentGateway(in)
		if gw == "" || done[gw] {
			continue
		}
		done[gw] = true
		for _, d := range m.routingObjects(in.From, in.Host, gw) {
			c, err := m.intruderCopy(d)
			if err != nil {
				return err
			}
			add = append(add, c)
		}
	}
	m.Istio = append(m.Istio, add...)
	return nil
}

// routingObjects are the objects of namespace ns that send host to the
// gateway whose Service host is gw: its ServiceEntry and VirtualService, and
// the DestinationRule of the gateway.
func (m *Mesh) routingObjects(ns, host, gw string) []*Doc {
	var out []*Doc
	for _, d := range m.Istio {
		if d.Namespace != ns {
			continue
		}
		spec, _ := d.Obj["spec"].(map[string]any)
		switch d.Kind {
		case "ServiceEntry", "VirtualService":
			if contains(toStrings(spec["hosts"]), host) {
				out = append(out, d)
			}
		case "DestinationRule":
			if spec["host"] == gw {
				out = append(out, d)
			}
		}
	}
	return out
}

// addBorrowed copies, per gateway, the objects the first intent of one
// namespace uses to reach the gateway into the namespace of another intent
// through the same gateway (under other names), as a team could.
func (m *Mesh) addBorrowed() error {
	byGateway := map[string][]Request{}
	var order []string
	for _, in := range m.Intents {
		gw := m.intentGateway(in)
		if gw == "" {
			continue
		}
		key := gw + "|" + in.Proto // one borrowed request per gateway and protocol
		if _, ok := byGateway[key]; !ok {
			order = append(order, key)
		}
		byGateway[key] = append(byGateway[key], in)
	}
	var add []*Doc
	for _, key := range order {
		gw, _, _ := strings.Cut(key, "|")
		list := byGateway[key]
		var from, victim *Request
		for i := range list {
			for j := range list {
				if list[i].From != list[j].From && from == nil {
					from, victim = &list[i], &list[j]
				}
			}
		}
		if from == nil {
			continue
		}
		for _, d := range m.routingObjects(victim.From, victim.Host, gw) {
			c, err := m.copyInto(d, from.From, d.Name+"-borrowed-"+victim.Proto)
			if err != nil {
				return err
			}
			add = append(add, c)
		}
		m.Borrowed = append(m.Borrowed, Request{From: from.From, Host: victim.Host, Port: victim.Port,
			Proto: victim.Proto, Why: "borrowed", Address: victim.Address})
	}
	m.Istio = append(m.Istio, add...)
	return nil
}

func (m *Mesh) intruderCopy(d *Doc) (*Doc, error) {
	return m.copyInto(d, m.Intruder, d.Name)
}

// copyInto copies an Istio object into namespace ns under name, exported to
// ns only; a VirtualService keeps only its mesh routes.
func (m *Mesh) copyInto(d *Doc, ns, name string) (*Doc, error) {
	raw, err := yaml.Marshal(d.Obj)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	md, _ := obj["metadata"].(map[string]any)
	md["namespace"] = ns
	md["name"] = name
	delete(md, "labels")
	delete(md, "annotations")
	spec, _ := obj["spec"].(map[string]any)
	spec["exportTo"] = []any{"."}
	if d.Kind == "VirtualService" {
		spec["gateways"] = []any{"mesh"}
		for _, section := range []string{"http", "tls", "tcp"} {
			routes, _ := spec[section].([]any)
			var mesh []any
			for _, r := range routes {
				rm, _ := r.(map[string]any)
				matches, _ := rm["match"].([]any)
				for _, mt := range matches {
					mm, _ := mt.(map[string]any)
					if contains(toStrings(mm["gateways"]), "mesh") {
						mesh = append(mesh, r)
						break
					}
				}
			}
			if len(mesh) > 0 {
				spec[section] = mesh
			} else {
				delete(spec, section)
			}
		}
	}
	text, err := yaml.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return &Doc{APIVersion: d.APIVersion, Kind: d.Kind, Name: name, Namespace: ns, Obj: obj,
		Text: string(text)}, nil
}

func (m *Mesh) hasGatewayNamespace(ns string) bool {
	for _, g := range m.Gateways {
		if g.Namespace == ns {
			return true
		}
	}
	return false
}

func (m *Mesh) revision() string {
	for _, g := range m.Gateways {
		if g.Revision != "" {
			return g.Revision
		}
	}
	return defaultICP
}

// GatewayByIP returns the gateway whose pod has the address.
func (m *Mesh) GatewayByIP(ip string) *MeshGateway {
	for _, g := range m.Gateways {
		if g.PodIP == ip {
			return g
		}
	}
	return nil
}

func meshGateway(d *Doc, n int) (*MeshGateway, error) {
	spec, _ := d.Obj["spec"].(map[string]any)
	if spec == nil {
		return nil, fmt.Errorf("IstioMeshGateway %s/%s has no spec", d.Namespace, d.Name)
	}
	if d.Namespace == "" {
		return nil, fmt.Errorf("IstioMeshGateway %s has no metadata.namespace", d.Name)
	}
	g := &MeshGateway{Name: d.Name, Namespace: d.Namespace, PodIP: gatewayPodNet + strconv.Itoa(n),
		ClusterIP: serviceNet + strconv.Itoa(n)}
	g.Type, _ = spec["type"].(string)
	if g.Type == "" {
		return nil, fmt.Errorf("IstioMeshGateway %s/%s has no spec.type", d.Namespace, d.Name)
	}
	if icp, ok := spec["istioControlPlane"].(map[string]any); ok {
		name, _ := icp["name"].(string)
		ns, _ := icp["namespace"].(string)
		if name != "" {
			g.Revision = name + "." + ns
		}
	}
	svc, _ := spec["service"].(map[string]any)
	ports, _ := svc["ports"].([]any)
	if len(ports) == 0 {
		return nil, fmt.Errorf("IstioMeshGateway %s/%s has no spec.service.ports", d.Namespace, d.Name)
	}
	for _, p := range ports {
		pm, _ := p.(map[string]any)
		sp := SvcPort{Protocol: "TCP"}
		sp.Name, _ = pm["name"].(string)
		sp.Port = toInt(pm["port"])
		if s, ok := pm["protocol"].(string); ok && s != "" {
			sp.Protocol = s
		}
		sp.TargetPort = sp.Port
		switch tp := pm["targetPort"].(type) {
		case nil:
		case string:
			if v, err := strconv.Atoi(tp); err == nil {
				sp.TargetPort = v
			} else {
				return nil, fmt.Errorf("IstioMeshGateway %s/%s: a named targetPort (%q) is not supported", d.Namespace, d.Name, tp)
			}
		default:
			sp.TargetPort = toInt(tp)
		}
		if sp.Port <= 0 || sp.TargetPort <= 0 {
			return nil, fmt.Errorf("IstioMeshGateway %s/%s: bad port %v", d.Namespace, d.Name, pm)
		}
		g.Ports = append(g.Ports, sp)
	}
	// Labels of the pods and the Service selector, as the istio-operator
	// chart sets them (istio-smm.md §1.5); the injection template adds the
	// canonical labels. No security.istio.io/tlsMode: the gateway template
	// does not set it.
	g.Labels = map[string]string{}
	dep, _ := spec["deployment"].(map[string]any)
	for _, key := range []string{"metadata", "podMetadata"} {
		md, _ := dep[key].(map[string]any)
		if l, ok := md["labels"].(map[string]any); ok {
			for k, v := range l {
				g.Labels[k] = fmt.Sprint(v)
			}
		}
	}
	g.Labels["gateway-name"] = g.Name
	g.Labels["gateway-type"] = g.Type
	g.Labels["release"] = "istio-meshgateway"
	if g.Revision != "" {
		g.Labels["istio.io/rev"] = g.Revision
	}
	g.PodName = g.Name + "-6d8f7c9b4-g" + strconv.Itoa(n)
	return g, nil
}

func toInt(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case int64:
		return int(x)
	case float64:
		return int(x)
	case string:
		i, _ := strconv.Atoi(x)
		return i
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// deriveIntents reads the intents back from the VirtualServices: every route
// bound to the mesh gateway (a sidecar) with a port is an intent of the
// VirtualService's namespace. ServiceEntry ports that no such route covers
// are listed apart.
func (m *Mesh) deriveIntents() error {
	seen := map[string]bool{}
	add := func(list *[]Request, r Request) {
		k := fmt.Sprintf("%s|%s|%d", r.From, r.Host, r.Port)
		if seen[k] {
			return
		}
		seen[k] = true
		*list = append(*list, r)
	}
	for _, d := range m.Istio {
		if d.Kind != "VirtualService" {
			continue
		}
		spec, _ := d.Obj["spec"].(map[string]any)
		hosts := toStrings(spec["hosts"])
		vsGateways := toStrings(spec["gateways"])
		if len(vsGateways) == 0 {
			vsGateways = []string{"mesh"}
		}
		for _, section := range []string{"http", "tls", "tcp"} {
			routes, _ := spec[section].([]any)
			for _, r := range routes {
				rm, _ := r.(map[string]any)
				matches, _ := rm["match"].([]any)
				for _, mt := range matches {
					mm, _ := mt.(map[string]any)
					gws := toStrings(mm["gateways"])
					if len(gws) == 0 {
						gws = vsGateways
					}
					if !contains(gws, "mesh") {
						continue
					}
					port := toInt(mm["port"])
					if port == 0 {
						continue
					}
					hs := hosts
					if section == "tls" {
						if s := toStrings(mm["sniHosts"]); len(s) > 0 {
							hs = s
						}
					}
					for _, h := range hs {
						add(&m.Intents, Request{From: d.Namespace, Host: h, Port: port, Proto: section, Why: "intent",
							Address: m.addressOf(d.Namespace, h)})
					}
				}
			}
		}
	}
	for _, d := range m.Istio {
		if d.Kind != "ServiceEntry" {
			continue
		}
		spec, _ := d.Obj["spec"].(map[string]any)
		ports, _ := spec["ports"].([]any)
		for _, h := range toStrings(spec["hosts"]) {
			for _, p := range ports {
				pm, _ := p.(map[string]any)
				proto := "tcp"
				switch strings.ToUpper(fmt.Sprint(pm["protocol"])) {
				case "HTTP", "HTTP2", "GRPC":
					proto = "http"
				case "HTTPS", "TLS":
					proto = "tls"
				}
				add(&m.Extra, Request{From: d.Namespace, Host: h, Port: toInt(pm["number"]), Proto: proto, Why: "se-port"})
			}
		}
	}
	less := func(l []Request) func(i, j int) bool {
		return func(i, j int) bool {
			a, b := l[i], l[j]
			if a.From != b.From {
				return a.From < b.From
			}
			if a.Host != b.Host {
				return a.Host < b.Host
			}
			return a.Port < b.Port
		}
	}
	sort.Slice(m.Intents, less(m.Intents))
	sort.Slice(m.Extra, less(m.Extra))
	return nil
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// IstioYAML is what Istio reads: the manifests without IstioMeshGateways,
// plus the mesh-wide objects.
func (m *Mesh) IstioYAML() string {
	var parts []string
	for _, d := range m.Istio {
		parts = append(parts, strings.TrimSpace(d.Text))
	}
	parts = append(parts, strings.TrimSpace(m.MeshIstioYAML))
	return strings.Join(parts, "\n---\n") + "\n"
}

// AnalyzerFileText is the manifests file with every IstioMeshGateway document
// turned into comment lines, so that the analyzers' line numbers are the
// file's.
func (m *Mesh) AnalyzerFileText() string {
	lines := strings.Split(string(m.Data), "\n")
	for _, d := range m.Docs {
		if d.Kind != "IstioMeshGateway" {
			continue
		}
		for i := d.FirstLine - 1; i < d.FirstLine-1+d.Lines && i < len(lines); i++ {
			lines[i] = "# (IstioMeshGateway: the minimal mesh has its Service and pod)"
		}
	}
	return strings.Join(lines, "\n")
}

// kubeObjects renders the minimal mesh as Kubernetes YAML.
func (m *Mesh) kubeObjects(clientNamespaces []string) string {
	var out []string
	nsDone := map[string]bool{}
	ns := func(name string) {
		if nsDone[name] {
			return
		}
		nsDone[name] = true
		out = append(out, fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels:
    istio.io/rev: %s
`, name, m.revision()))
	}
	ns(rootNamespace)
	for _, g := range m.Gateways {
		ns(g.Namespace)
		out = append(out, gatewayObjects(g)...)
	}
	for _, name := range clientNamespaces {
		ns(name)
		out = append(out, clientPod(m.Clients[name]))
	}
	return strings.Join(out, "---\n")
}

func labelsYAML(l map[string]string, indent string) string {
	var b strings.Builder
	for _, k := range sortedKeys(l) {
		fmt.Fprintf(&b, "%s%s: %q\n", indent, k, l[k])
	}
	return b.String()
}

// PodLabels are the labels of the gateway's pod.
func (g *MeshGateway) PodLabels() map[string]string {
	podLabels := map[string]string{}
	for k, v := range g.Labels {
		podLabels[k] = v
	}
	podLabels["sidecar.istio.io/inject"] = "true"
	podLabels["service.istio.io/canonical-name"] = g.Name
	podLabels["service.istio.io/canonical-revision"] = "latest"
	return podLabels
}

func gatewayObjects(g *MeshGateway) []string {
	sel := map[string]string{}
	for k, v := range g.Labels {
		sel[k] = v
	}
	podLabels := g.PodLabels()
	var svcPorts, cPorts, epPorts strings.Builder
	for _, p := range g.Ports {
		fmt.Fprintf(&svcPorts, "  - name: %s\n    port: %d\n    protocol: %s\n    targetPort: %d\n", p.Name, p.Port, p.Protocol, p.TargetPort)
		fmt.Fprintf(&cPorts, "    - containerPort: %d\n      protocol: %s\n", p.TargetPort, p.Protocol)
		fmt.Fprintf(&epPorts, "- name: %s\n  port: %d\n  protocol: %s\n", p.Name, p.TargetPort, p.Protocol)
	}
	status := fmt.Sprintf(`{"initContainers":null,"containers":["istio-proxy"],"volumes":["istio-envoy","istio-data","istio-podinfo","istio-token","istiod-ca-cert"],"imagePullSecrets":null,"revision":"%s"}`, g.Revision)
	svc := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %s
  namespace: %s
  labels:
%sspec:
  type: ClusterIP
  clusterIP: %s
  selector:
%s  ports:
%s`, g.Name, g.Namespace, labelsYAML(g.Labels, "    "), g.ClusterIP, labelsYAML(sel, "    "), svcPorts.String())
	dep := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
  namespace: %s
  labels:
%sspec:
  replicas: 1
  selector:
    matchLabels:
%s  template:
    metadata:
      labels:
%s    spec:
      serviceAccountName: %s-service-account
      containers:
      - name: istio-proxy
        image: docker.io/istio/proxyv2:1.17.8
        ports:
%s`, g.Name, g.Namespace, labelsYAML(g.Labels, "    "), labelsYAML(sel, "      "), labelsYAML(podLabels, "        "),
		g.Name, indent(cPorts.String(), "    "))
	pod := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
  labels:
%s  annotations:
    inject.istio.io/templates: gateway
    sidecar.istio.io/inject: "true"
    sidecar.istio.io/status: '%s'
spec:
  serviceAccountName: %s-service-account
  containers:
  - name: istio-proxy
    image: docker.io/istio/proxyv2:1.17.8
    args: ["proxy", "router"]
    ports:
%sstatus:
  phase: Running
  podIP: %s
  podIPs:
  - ip: %s
  conditions:
  - type: Ready
    status: "True"
`, g.PodName, g.Namespace, labelsYAML(podLabels, "    "), status, g.Name, cPorts.String(), g.PodIP, g.PodIP)
	eps := fmt.Sprintf(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %s-abcde
  namespace: %s
  labels:
    kubernetes.io/service-name: %s
addressType: IPv4
endpoints:
- addresses:
  - %s
  conditions:
    ready: true
  targetRef:
    kind: Pod
    name: %s
    namespace: %s
ports:
%s`, g.Name, g.Namespace, g.Name, g.PodIP, g.PodName, g.Namespace, epPorts.String())
	sa := fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: %s-service-account
  namespace: %s
`, g.Name, g.Namespace)
	return []string{sa, svc, dep, pod, eps}
}

func indent(s, pre string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(pre + l + "\n")
	}
	return b.String()
}

func clientPod(c *Client) string {
	status := fmt.Sprintf(`{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy","istio-data","istio-podinfo","istio-token","istiod-ca-cert"],"imagePullSecrets":null,"revision":"%s"}`, c.Labels["istio.io/rev"])
	return fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: %s
  namespace: %s
---
apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
  labels:
%s  annotations:
    sidecar.istio.io/status: '%s'
spec:
  serviceAccountName: %s
  initContainers:
  - name: istio-init
    image: docker.io/istio/proxyv2:1.17.8
  containers:
  - name: app
    image: curlimages/curl
  - name: istio-proxy
    image: docker.io/istio/proxyv2:1.17.8
    args: ["proxy", "sidecar"]
status:
  phase: Running
  podIP: %s
  podIPs:
  - ip: %s
  conditions:
  - type: Ready
    status: "True"
`, clientSA, c.Namespace, c.PodName, c.Namespace, labelsYAML(c.Labels, "    "), status, clientSA, c.PodIP, c.PodIP)
}
