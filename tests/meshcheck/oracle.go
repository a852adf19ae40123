package meshcheck

// The oracle: Istio's fake discovery server (pilot/test/xds) builds the Envoy
// configuration of every proxy of the minimal mesh from the manifests, and
// Istio's traffic simulation (pilot/pkg/simulation) sends a request through
// the client's sidecar and then through the egress gateway the sidecar picked.
// What the simulation does not do, this file does on the same Envoy
// configuration: the transport socket of the chosen cluster (is the hop to
// the gateway mTLS?), the gateway's RBAC filters (rbac.go) and the upstream
// TLS context of the gateway's cluster.

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/structpb"

	meshconfig "istio.io/api/mesh/v1alpha1"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/simulation"
	"istio.io/istio/pilot/test/xds"
	istiocluster "istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config/mesh"
)

const chainSep = "#"

// proxySim is the Envoy configuration of one proxy and Istio's simulation of it.
type proxySim struct {
	name     string
	proxy    *model.Proxy
	sim      *simulation.Simulation
	clusters map[string]*cluster.Cluster
	eds      map[string]*endpoint.ClusterLoadAssignment
	routes   map[string]*route.RouteConfiguration
}

// Oracle holds the fake discovery server of one mesh.
type Oracle struct {
	t        *testing.T
	Mesh     *Mesh
	server   *xds.FakeDiscoveryServer
	sidecars map[string]*proxySim
	gateways map[string]*proxySim // by pod IP
}

// NewOracle starts Istio's fake discovery server on the mesh.
func NewOracle(t *testing.T, m *Mesh) *Oracle {
	mc := mesh.DefaultMeshConfig()
	// SMM 1.17 ships Istio's defaults: outboundTrafficPolicy ALLOW_ANY,
	// enableAutoMtls true, trust domain cluster.local, root namespace
	// istio-system. Spelled out so that a change of Istio's defaults shows.
	// An operator may set the outbound policy mesh-wide to REGISTRY_ONLY.
	mc.TrustDomain = trustDomain
	mc.RootNamespace = rootNamespace
	mc.EnableAutoMtls.Value = true
	mc.OutboundTrafficPolicy.Mode = meshconfig.MeshConfig_OutboundTrafficPolicy_ALLOW_ANY
	if m.OutboundPolicy == "REGISTRY_ONLY" {
		mc.OutboundTrafficPolicy.Mode = meshconfig.MeshConfig_OutboundTrafficPolicy_REGISTRY_ONLY
	}
	s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		ConfigString:           m.IstioYAML(),
		KubernetesObjectString: m.KubeYAML,
		MeshConfig:             mc,
	})
	o := &Oracle{t: t, Mesh: m, server: s, sidecars: map[string]*proxySim{}, gateways: map[string]*proxySim{}}
	return o
}

func (o *Oracle) newProxySim(name string, p *model.Proxy) *proxySim {
	p = o.server.SetupProxy(p)
	sim := simulation.NewSimulation(o.t, o.server, p)
	ps := &proxySim{name: name, proxy: p, sim: sim, clusters: map[string]*cluster.Cluster{},
		eds: map[string]*endpoint.ClusterLoadAssignment{}, routes: map[string]*route.RouteConfiguration{}}
	// Filter chain names are not unique (Istio leaves many empty, and the
	// SNI chains of a gateway share one): number them so that the chain the
	// simulation matched can be found again for its RBAC filters.
	for _, l := range sim.Listeners {
		for j, fc := range l.FilterChains {
			fc.Name = fmt.Sprintf("%s%s%d", fc.Name, chainSep, j)
		}
		if l.DefaultFilterChain != nil {
			l.DefaultFilterChain.Name += chainSep + "default"
		}
	}
	for _, c := range sim.Clusters {
		ps.clusters[c.Name] = c
	}
	for _, cla := range o.server.Endpoints(p) {
		ps.eds[cla.ClusterName] = cla
	}
	for _, r := range sim.Routes {
		ps.routes[r.Name] = r
	}
	return ps
}

// Sidecar returns the simulated sidecar of the client in namespace ns.
func (o *Oracle) Sidecar(ns string) (*proxySim, error) {
	if ps := o.sidecars[ns]; ps != nil {
		return ps, nil
	}
	c := o.Mesh.Clients[ns]
	if c == nil {
		return nil, fmt.Errorf("no client workload in namespace %q (known: %s)", ns, strings.Join(sortedKeys(o.Mesh.Clients), ", "))
	}
	p := &model.Proxy{
		Type:            model.SidecarProxy,
		IPAddresses:     []string{c.PodIP},
		ID:              c.PodName + "." + ns,
		ConfigNamespace: ns,
		Labels:          c.Labels,
		Metadata: &model.NodeMetadata{
			Namespace:      ns,
			Labels:         c.Labels,
			ServiceAccount: clientSA,
			ClusterID:      istiocluster.ID("Kubernetes"),
		},
	}
	ps := o.newProxySim("sidecar "+ns, p)
	o.sidecars[ns] = ps
	return ps, nil
}

// Gateway returns the simulated gateway proxy of g.
func (o *Oracle) Gateway(g *MeshGateway) *proxySim {
	if ps := o.gateways[g.PodIP]; ps != nil {
		return ps
	}
	labels := map[string]string{}
	for k, v := range g.Labels {
		labels[k] = v
	}
	labels["service.istio.io/canonical-name"] = g.Name
	labels["service.istio.io/canonical-revision"] = "latest"
	labels["sidecar.istio.io/inject"] = "true"
	p := &model.Proxy{
		Type:            model.Router,
		IPAddresses:     []string{g.PodIP},
		ID:              g.PodName + "." + g.Namespace,
		ConfigNamespace: g.Namespace,
		Labels:          labels,
		Metadata: &model.NodeMetadata{
			Namespace:       g.Namespace,
			Labels:          labels,
			ServiceAccount:  fmt.Sprintf("spiffe://%s/ns/%s/sa/%s-service-account", trustDomain, g.Namespace, g.Name),
			ClusterID:       istiocluster.ID("Kubernetes"),
			UnprivilegedPod: "true",
		},
	}
	ps := o.newProxySim("gateway "+g.Namespace+"/"+g.Name, p)
	o.gateways[g.PodIP] = ps
	return ps
}

// Verdict of a request.
type Verdict int

const (
	Reached    Verdict = iota
	Denied             // an RBAC filter (AuthorizationPolicy) refused it
	BlackHoled         // sent to BlackHoleCluster (REGISTRY_ONLY) or nowhere
	NoRoute            // no listener, filter chain, virtual host or route took it
	Broken             // forwarded in a way the far end cannot understand
	Misrouted          // leaves the mesh towards another host than the one asked for
	Failed             // the oracle could not tell (an error)
)

var verdictNames = map[Verdict]string{
	Reached: "REACHED", Denied: "DENIED", BlackHoled: "BLACK-HOLED", NoRoute: "NO ROUTE",
	Broken: "BROKEN", Misrouted: "MISROUTED", Failed: "ERROR",
}

func (v Verdict) String() string { return verdictNames[v] }

// ExitCode of the verdict for --to.
func (v Verdict) ExitCode() int {
	switch v {
	case Reached:
		return ExitReached
	case Failed:
		return ExitError
	}
	return ExitDenied
}

// Outcome is what happened to one request, hop by hop.
type Outcome struct {
	Req      Request
	Sidecar  string // the sidecar's listener/route/cluster
	Hop      string // how the sidecar talks to the next hop
	Gateway  string // the gateway's listener/route/cluster and RBAC decision
	Upstream string // where the last proxy sends the request
	Verdict  Verdict
	Reason   string
}

// Line is the one-line report of an outcome.
func (oc *Outcome) Line() string {
	v := oc.Verdict.String()
	if oc.Reason != "" {
		v += " (" + oc.Reason + ")"
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	return fmt.Sprintf("%s | sidecar: %s | hop: %s | gateway: %s | upstream: %s | %s",
		oc.Req, dash(oc.Sidecar), dash(oc.Hop), dash(oc.Gateway), dash(oc.Upstream), v)
}

// probeName is the name a request for host sends: the host, or for a
// wildcard host (*.example.com) a name it covers, probe.example.com.
func probeName(host string) string {
	if strings.HasPrefix(host, "*.") {
		return "probe" + host[1:]
	}
	return host
}

// covers says whether host pattern (a name, or *.example.com) covers name.
func covers(pattern, name string) bool {
	if strings.HasPrefix(pattern, "*.") {
		return strings.HasSuffix(name, pattern[1:]) && len(name) > len(pattern)-1
	}
	return pattern == name
}

// external is a request's destination outside the cluster, as a
// NetworkPolicy sees it.
func external(r Request) npDest {
	ip := ExternalIP
	if r.Address != "" {
		ip = r.Address
	}
	return npDest{ip: ip, port: r.Port, proto: "TCP"}
}

func clientCall(r Request) (simulation.Call, error) {
	c := simulation.Call{Address: ExternalIP, Port: r.Port, CallMode: simulation.CallModeOutbound}
	if r.Address != "" {
		c.Address = r.Address
	}
	switch r.Proto {
	case "http":
		c.Protocol = simulation.HTTP
		c.HostHeader = probeName(r.Host)
	case "tls":
		c.Protocol = simulation.TCP
		c.TLS = simulation.TLS
		c.Sni = probeName(r.Host)
	case "tcp":
		c.Protocol = simulation.TCP
	default:
		return c, fmt.Errorf("unknown protocol %q (want http, tls or tcp)", r.Proto)
	}
	return c, nil
}

// run sends one call through the proxy with Istio's simulation. (Istio's
// helpers report a broken configuration through t.Fatal: the CLI then exits 2
// with the test log.)
func (ps *proxySim) run(c simulation.Call) simulation.Result {
	return ps.sim.Run(c)
}

// Check sends the request through the mesh.
func (o *Oracle) Check(r Request) *Outcome {
	oc := &Outcome{Req: r}
	end := func(v Verdict, reason string) *Outcome {
		oc.Verdict, oc.Reason = v, reason
		return oc
	}
	fail := func(err error) *Outcome { return end(Failed, err.Error()) }
	side, err := o.Sidecar(r.From)
	if err != nil {
		return fail(err)
	}
	call, err := clientCall(r)
	if err != nil {
		return fail(err)
	}
	res := side.run(call)
	oc.Sidecar = describeResult(res)
	if res.Error != nil {
		return end(NoRoute, "sidecar: "+res.Error.Error())
	}
	fc := findFilterChain(side.sim.Listeners, res)
	clusterName, how, err := side.pickCluster(res, fc, call)
	if err != nil {
		return fail(err)
	}
	if how != "" {
		oc.Sidecar += " " + how
	}
	if res.ClusterMatched != "" && clusterName != res.ClusterMatched {
		return fail(fmt.Errorf("sidecar: the simulation picked %s, the configuration read back %s", res.ClusterMatched, clusterName))
	}
	switch clusterName {
	case "":
		if res.VirtualHostMatched == "block_all" {
			// REGISTRY_ONLY's virtual host for HTTP to hosts not in the registry
			return end(BlackHoled, "sidecar: block_all, direct response 502, REGISTRY_ONLY")
		}
		return end(NoRoute, "sidecar: no cluster")
	case "BlackHoleCluster":
		reason := "sidecar: BlackHoleCluster"
		if side.proxy.SidecarScope != nil && side.proxy.SidecarScope.OutboundTrafficPolicy != nil &&
			side.proxy.SidecarScope.OutboundTrafficPolicy.Mode.String() == "REGISTRY_ONLY" {
			reason += ", REGISTRY_ONLY"
		}
		return end(BlackHoled, reason)
	case "PassthroughCluster":
		oc.Hop = "direct to the original destination, no gateway (ALLOW_ANY passthrough)"
		oc.Upstream = fmt.Sprintf("%s:%d as sent by the app", r.Host, r.Port)
		if ok, why := o.Mesh.egressAllowed(o.Mesh.Clients[r.From], external(r)); !ok {
			return end(Denied, why)
		}
		return end(Reached, "bypasses the egress gateway")
	}
	c := side.clusters[clusterName]
	if c == nil {
		return fail(fmt.Errorf("sidecar: cluster %s not in the sidecar's clusters", clusterName))
	}
	ep, epErr := side.firstEndpoint(c)
	if epErr != nil {
		oc.Hop = epErr.Error()
		return end(BlackHoled, "sidecar: "+epErr.Error())
	}
	ts, auto := transportSocketFor(c, ep.lb)
	hop, err := describeTLS(ts, auto)
	if err != nil {
		return fail(err)
	}
	g := o.Mesh.GatewayByIP(ep.host)
	if g == nil {
		// The sidecar goes straight to the external host.
		oc.Hop = "direct, no gateway"
		up, broken, err := upstreamText(c, ep, hop, r.Proto == "tls")
		if err != nil {
			return fail(err)
		}
		oc.Upstream = up
		if broken != "" {
			return end(Broken, broken)
		}
		if h := clusterHost(clusterName); !covers(r.Host, h) {
			return end(Misrouted, fmt.Sprintf("sent to %s, not %s", h, r.Host))
		}
		if ok, why := o.Mesh.egressAllowed(o.Mesh.Clients[r.From], external(r)); !ok {
			return end(Denied, why)
		}
		return end(Reached, "bypasses the egress gateway")
	}
	// below the mesh: may the client pod connect to the gateway pod at all?
	if ok, why := o.Mesh.egressAllowed(o.Mesh.Clients[r.From],
		npDest{namespace: g.Namespace, labels: g.PodLabels(), port: ep.port, proto: "TCP"}); !ok {
		return end(Denied, why)
	}
	oc.Hop = hop.summary + fmt.Sprintf(" to %s (%s:%d)", g.FQDN(), ep.host, ep.port)
	gw := o.Gateway(g)
	gcall := simulation.Call{Address: g.PodIP, Port: ep.port, CallMode: simulation.CallModeGateway}
	switch hop.mode {
	case "mtls":
		gcall.TLS = simulation.MTLS
		gcall.Sni = hop.sni
		gcall.Protocol = simulation.TCP
	case "tls":
		// The sidecar originates TLS of its own (a DestinationRule
		// SIMPLE or MUTUAL towards the gateway).
		gcall.TLS = simulation.TLS
		gcall.Sni = hop.sni
		gcall.Protocol = simulation.TCP
	default:
		switch r.Proto {
		case "tls":
			gcall.Protocol = simulation.TCP
			gcall.TLS = simulation.TLS
			gcall.Sni = probeName(r.Host)
		case "tcp":
			gcall.Protocol = simulation.TCP
		}
	}
	if r.Proto == "http" {
		gcall.Protocol = simulation.HTTP
		gcall.HostHeader = probeName(r.Host)
	}
	gres := gw.run(gcall)
	oc.Gateway = g.Namespace + "/" + g.Name + " " + describeResult(gres)
	if gres.Error != nil {
		reason := "gateway: " + gres.Error.Error()
		if hop.mode == "mtls" && errors.Is(gres.Error, simulation.ErrProtocolError) {
			reason += " (mTLS sent to a listener that does not terminate it)"
		}
		if hop.mode == "plain" && errors.Is(gres.Error, simulation.ErrTLSError) {
			reason += " (plaintext sent to a listener that terminates TLS)"
		}
		return end(NoRoute, reason)
	}
	gfc := findFilterChain(gw.sim.Listeners, gres)
	// RBAC: the gateway's filters decide before the request is forwarded.
	attrs := rbacAttrs{
		destPort: uint32(ep.port),
		destIP:   g.PodIP,
		sni:      gcall.Sni,
		sourceIP: o.Mesh.Clients[r.From].PodIP,
	}
	if hop.mode == "mtls" {
		attrs.principal = o.Mesh.Clients[r.From].Principal()
	}
	if gcall.Protocol == simulation.HTTP {
		attrs.http = true
		attrs.headers = map[string]string{":authority": probeName(r.Host), ":path": "/", ":method": "GET", "host": probeName(r.Host)}
	}
	dec, err := evalChainRBAC(gfc, attrs)
	if err != nil {
		return fail(fmt.Errorf("gateway RBAC: %v", err))
	}
	oc.Gateway += "; " + dec.text
	gclusterName, ghow, err := gw.pickCluster(gres, gfc, gcall)
	if err != nil {
		return fail(err)
	}
	if ghow != "" {
		oc.Gateway += " " + ghow
	}
	if gres.ClusterMatched != "" && gclusterName != gres.ClusterMatched {
		return fail(fmt.Errorf("gateway: the simulation picked %s, the configuration read back %s", gres.ClusterMatched, gclusterName))
	}
	var up, broken string
	verdict, reason := Reached, ""
	switch gclusterName {
	case "":
		verdict, reason = NoRoute, "gateway: no cluster"
	case "BlackHoleCluster":
		verdict, reason = BlackHoled, "gateway: BlackHoleCluster"
	case "PassthroughCluster":
		up = "original destination (PassthroughCluster)"
	default:
		gc := gw.clusters[gclusterName]
		if gc == nil {
			return fail(fmt.Errorf("gateway: cluster %s not in the gateway's clusters", gclusterName))
		}
		gep, gepErr := gw.firstEndpoint(gc)
		if gepErr != nil {
			verdict, reason = BlackHoled, "gateway: "+gepErr.Error()
			break
		}
		gts, gauto := transportSocketFor(gc, gep.lb)
		ginfo, err := describeTLS(gts, gauto)
		if err != nil {
			return fail(err)
		}
		up, broken, err = upstreamText(gc, gep, ginfo, r.Proto == "tls")
		if err != nil {
			return fail(err)
		}
		if broken != "" {
			verdict, reason = Broken, broken
		} else if h := clusterHost(gclusterName); !covers(r.Host, h) {
			verdict, reason = Misrouted, fmt.Sprintf("the gateway sends it to %s, not %s", h, r.Host)
		} else if h != r.Host {
			reason = fmt.Sprintf("every name of %s goes to %s", r.Host, h)
		}
	}
	if !dec.allowed {
		// Denied before it is forwarded; the upstream is still shown, as
		// the cluster the gateway would use.
		if up != "" {
			oc.Upstream = "not sent (RBAC); would be " + up
		}
		return end(Denied, "gateway RBAC: "+dec.short)
	}
	oc.Upstream = up
	return end(verdict, reason)
}

// clusterHost is the service host name of an outbound cluster name
// (outbound|port|subset|host).
func clusterHost(name string) string {
	_, _, h, _ := model.ParseSubsetKey(name)
	return string(h)
}

// upstreamText describes where a proxy's cluster sends the request and with
// which TLS. appTLS says the bytes are the app's own TLS: a cluster that
// originates TLS around them breaks the connection.
func upstreamText(c *cluster.Cluster, ep *pickedEndpoint, info *tlsInfo, appTLS bool) (text, broken string, err error) {
	t := info.summary
	switch info.mode {
	case "plain":
		if appTLS {
			t = "plain TCP carrying the app's own TLS (passthrough)"
		} else {
			t = "plaintext"
		}
	case "tls":
		t += "; " + verifyText(info, c)
		if appTLS {
			broken = "the app's TLS is wrapped in a second TLS session the server does not expect"
		}
	case "mtls":
		if appTLS {
			t += " around the app's TLS"
		}
	}
	return fmt.Sprintf("%s:%d %s", ep.host, ep.port, t), broken, nil
}

func describeResult(r simulation.Result) string {
	var parts []string
	if r.ListenerMatched != "" {
		parts = append(parts, "listener "+r.ListenerMatched)
	}
	if name, _, _ := strings.Cut(r.FilterChainMatched, chainSep); name != "" {
		parts = append(parts, "chain "+name)
	}
	if r.RouteConfigMatched != "" {
		rt := "route " + r.RouteConfigMatched
		if r.VirtualHostMatched != "" {
			rt += "/" + r.VirtualHostMatched
		}
		if r.RouteMatched != "" {
			rt += "/" + r.RouteMatched
		}
		parts = append(parts, rt)
	}
	if r.ClusterMatched != "" {
		parts = append(parts, "→ "+r.ClusterMatched)
	}
	if r.Error != nil {
		parts = append(parts, "error: "+r.Error.Error())
	}
	return strings.Join(parts, " ")
}

func findFilterChain(ls []*listener.Listener, r simulation.Result) *listener.FilterChain {
	for _, l := range ls {
		if l.Name != r.ListenerMatched {
			continue
		}
		for _, fc := range l.FilterChains {
			if fc.Name == r.FilterChainMatched {
				return fc
			}
		}
		if l.DefaultFilterChain != nil && l.DefaultFilterChain.Name == r.FilterChainMatched {
			return l.DefaultFilterChain
		}
	}
	return nil
}

// pickCluster returns the cluster the proxy sends to. The simulation names it
// for a plain route and a plain TCP proxy; a weighted route, a direct
// response or a redirect is read from the configuration here.
func (ps *proxySim) pickCluster(res simulation.Result, fc *listener.FilterChain, c simulation.Call) (string, string, error) {
	if fc == nil {
		return res.ClusterMatched, "", nil
	}
	for _, f := range fc.Filters {
		switch f.GetTypedConfig().GetTypeUrl() {
		case "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager":
			h := &hcm.HttpConnectionManager{}
			if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
				return "", "", err
			}
			rc := h.GetRouteConfig()
			if rc == nil {
				rc = ps.routes[h.GetRds().GetRouteConfigName()]
			}
			if rc == nil {
				return "", "", fmt.Errorf("route configuration %q not found", h.GetRds().GetRouteConfigName())
			}
			var vh *route.VirtualHost
			for _, v := range rc.VirtualHosts {
				if v.Name == res.VirtualHostMatched {
					vh = v
				}
			}
			if vh == nil {
				return res.ClusterMatched, "", nil
			}
			for _, rt := range vh.Routes {
				if !pathMatches(rt.GetMatch(), "/") {
					continue
				}
				switch a := rt.GetAction().(type) {
				case *route.Route_Route:
					if wc := a.Route.GetWeightedClusters(); wc != nil {
						return heaviest(wc), "(weighted)", nil
					}
					return a.Route.GetCluster(), "", nil
				case *route.Route_DirectResponse:
					return "", fmt.Sprintf("(direct response %d)", a.DirectResponse.GetStatus()), nil
				case *route.Route_Redirect:
					return "", "(redirect)", nil
				}
				return "", "", fmt.Errorf("route %q: unsupported action %T", rt.Name, rt.GetAction())
			}
			return "", "(no route matched /)", nil
		case "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy":
			t := &tcpproxy.TcpProxy{}
			if err := f.GetTypedConfig().UnmarshalTo(t); err != nil {
				return "", "", err
			}
			if wc := t.GetWeightedClusters(); wc != nil && len(wc.Clusters) > 0 {
				best := wc.Clusters[0]
				for _, x := range wc.Clusters {
					if x.Weight > best.Weight {
						best = x
					}
				}
				return best.Name, "(weighted)", nil
			}
			return t.GetCluster(), "", nil
		}
	}
	return res.ClusterMatched, "", nil
}

func heaviest(wc *route.WeightedCluster) string {
	if len(wc.Clusters) == 0 {
		return ""
	}
	best := wc.Clusters[0]
	for _, x := range wc.Clusters {
		if x.GetWeight().GetValue() > best.GetWeight().GetValue() {
			best = x
		}
	}
	return best.Name
}

func pathMatches(m *route.RouteMatch, path string) bool {
	switch pt := m.GetPathSpecifier().(type) {
	case *route.RouteMatch_Prefix:
		return strings.HasPrefix(path, pt.Prefix)
	case *route.RouteMatch_PathSeparatedPrefix:
		return strings.HasPrefix(path, pt.PathSeparatedPrefix)
	case *route.RouteMatch_Path:
		return path == pt.Path
	case *route.RouteMatch_SafeRegex:
		re, err := regexp.Compile("^(?:" + pt.SafeRegex.GetRegex() + ")$")
		return err == nil && re.MatchString(path)
	case nil:
		return true
	}
	return false
}

type pickedEndpoint struct {
	host string
	port int
	lb   *endpoint.LbEndpoint
}

// firstEndpoint returns the first endpoint of a cluster: from EDS, or from the
// cluster's own load assignment (DNS clusters).
func (ps *proxySim) firstEndpoint(c *cluster.Cluster) (*pickedEndpoint, error) {
	cla := c.GetLoadAssignment()
	if c.GetType() == cluster.Cluster_EDS {
		name := c.Name
		if sn := c.GetEdsClusterConfig().GetServiceName(); sn != "" {
			name = sn
		}
		cla = ps.eds[name]
	}
	if c.GetType() == cluster.Cluster_ORIGINAL_DST {
		return &pickedEndpoint{host: "original destination", lb: &endpoint.LbEndpoint{}}, nil
	}
	var eps []*endpoint.LbEndpoint
	for _, l := range cla.GetEndpoints() {
		eps = append(eps, l.LbEndpoints...)
	}
	if len(eps) == 0 {
		return nil, fmt.Errorf("cluster %s has no endpoints", c.Name)
	}
	ep := eps[0]
	sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
	if sa == nil {
		return nil, fmt.Errorf("cluster %s: endpoint without a socket address (%v)", c.Name, ep.GetEndpoint().GetAddress())
	}
	return &pickedEndpoint{host: sa.GetAddress(), port: int(sa.GetPortValue()), lb: ep}, nil
}

// transportSocketFor applies Envoy's transport_socket_matches: the first
// match whose criteria are all in the endpoint's
// "envoy.transport_socket_match" metadata, else the cluster's socket. auto
// says the socket came from a match (Istio's auto mTLS).
func transportSocketFor(c *cluster.Cluster, ep *endpoint.LbEndpoint) (*core.TransportSocket, string) {
	md := ep.GetMetadata().GetFilterMetadata()["envoy.transport_socket_match"]
	for _, m := range c.TransportSocketMatches {
		if structSubset(m.GetMatch(), md) {
			return m.TransportSocket, m.Name
		}
	}
	return c.TransportSocket, ""
}

func structSubset(want, have *structpb.Struct) bool {
	for k, v := range want.GetFields() {
		hv, ok := have.GetFields()[k]
		if !ok || hv.String() != v.String() {
			return false
		}
	}
	return true
}

type tlsInfo struct {
	mode    string // plain, mtls (Istio mutual TLS), tls (other TLS)
	sni     string
	ctx     *tlsv3.UpstreamTlsContext
	summary string
}

func describeTLS(ts *core.TransportSocket, match string) (*tlsInfo, error) {
	if ts == nil || ts.GetTypedConfig() == nil ||
		ts.GetTypedConfig().GetTypeUrl() == "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer" {
		s := "plaintext"
		if match != "" {
			s += " (auto mTLS: endpoint not labelled security.istio.io/tlsMode=istio)"
		} else {
			s += " (no TLS in the cluster)"
		}
		return &tlsInfo{mode: "plain", summary: s}, nil
	}
	if ts.GetTypedConfig().GetTypeUrl() != "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext" {
		return nil, fmt.Errorf("unsupported transport socket %s", ts.GetTypedConfig().GetTypeUrl())
	}
	ctx := &tlsv3.UpstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
		return nil, err
	}
	info := &tlsInfo{ctx: ctx, sni: ctx.GetSni()}
	common := ctx.GetCommonTlsContext()
	certs := common.GetTlsCertificateSdsSecretConfigs()
	validationSDS := common.GetCombinedValidationContext().GetValidationContextSdsSecretConfig().GetName()
	if validationSDS == "" {
		validationSDS = common.GetValidationContextSdsSecretConfig().GetName()
	}
	if len(certs) > 0 && certs[0].GetName() == "default" && validationSDS == "ROOTCA" {
		info.mode = "mtls"
		how := "ISTIO_MUTUAL from a DestinationRule"
		if match != "" {
			how = "ISTIO_MUTUAL by auto mTLS"
		}
		info.summary = fmt.Sprintf("mTLS (%s, sni %s)", how, ctx.GetSni())
		return info, nil
	}
	info.mode = "tls"
	kind := "SIMPLE"
	if len(certs) > 0 || len(common.GetTlsCertificates()) > 0 {
		kind = "MUTUAL"
	}
	sni := ctx.GetSni()
	if sni == "" {
		sni = "(none)"
	}
	info.summary = fmt.Sprintf("TLS originated (%s, sni %s)", kind, sni)
	return info, nil
}

// verifyText says whether the originated TLS verifies the server: a CA to
// check the chain and a subject alt name (or auto SAN validation) to check
// the name.
func verifyText(info *tlsInfo, c *cluster.Cluster) string {
	common := info.ctx.GetCommonTlsContext()
	var ca string
	var sans []string
	addSANs := func(v *tlsv3.CertificateValidationContext) {
		if v == nil {
			return
		}
		if v.GetTrustedCa() != nil {
			ca = "inline/file CA"
		}
		for _, m := range v.GetMatchSubjectAltNames() {
			sans = append(sans, stringMatcherText(m))
		}
		for _, m := range v.GetMatchTypedSubjectAltNames() {
			sans = append(sans, stringMatcherText(m.GetMatcher()))
		}
	}
	switch vc := common.GetValidationContextType().(type) {
	case *tlsv3.CommonTlsContext_ValidationContext:
		addSANs(vc.ValidationContext)
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		addSANs(vc.CombinedValidationContext.GetDefaultValidationContext())
		if n := vc.CombinedValidationContext.GetValidationContextSdsSecretConfig().GetName(); n != "" {
			ca = n
			if n == "file-root:system" {
				ca = "system roots (file-root:system)"
			}
		}
	case *tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig:
		ca = vc.ValidationContextSdsSecretConfig.GetName()
	}
	autoSAN := false
	if raw := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]; raw != nil {
		po := &upstreamhttp.HttpProtocolOptions{}
		if raw.UnmarshalTo(po) == nil && po.GetUpstreamHttpProtocolOptions().GetAutoSanValidation() {
			autoSAN = true
		}
	}
	switch {
	case ca == "":
		return "server NOT verified (no CA in the upstream TLS context)"
	case len(sans) == 0 && !autoSAN:
		return fmt.Sprintf("server NOT verified: CA %s but no subjectAltNames (any certificate that CA signed is accepted)", ca)
	case len(sans) == 0:
		return fmt.Sprintf("server verified: CA %s, SAN from the Host header (auto_san_validation)", ca)
	}
	return fmt.Sprintf("server verified: CA %s, SAN %s", ca, strings.Join(sans, ","))
}
