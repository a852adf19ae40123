package meshcheck

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// Exit codes of the CLI.
const (
	ExitReached = 0
	ExitDenied  = 1
	ExitError   = 2
)

// Options are the command line.
type Options struct {
	Manifests string
	From      string
	To        string
	Table     bool
	Analyze   string
	PrintMesh bool
	Verbose   bool
	Allow     string // analyzer codes that are reported but do not fail (IST0134,...)
	Outbound  string // the mesh-wide outboundTrafficPolicy: ALLOW_ANY (SMM's default) or REGISTRY_ONLY
}

// Flags registers the CLI flags on fs.
func (o *Options) Flags(fs *flag.FlagSet) {
	fs.StringVar(&o.Manifests, "manifests", "", "the YAML stream `egressd render` printed (- for standard input)")
	fs.StringVar(&o.From, "from", "", "client namespace (default: the namespace of an intent naming the host and port)")
	fs.StringVar(&o.To, "to", "", "HOST:PORT[/http|/tls|/tcp]: the request to send")
	fs.BoolVar(&o.Table, "table", false, "one line for every intent, an unlisted namespace and an unknown host")
	fs.StringVar(&o.Analyze, "analyze", "", "run Istio's analyzers over this manifests file plus the minimal mesh")
	fs.BoolVar(&o.PrintMesh, "print-mesh", false, "print the minimal mesh (Kubernetes objects) added to the manifests, and exit")
	fs.BoolVar(&o.Verbose, "verbose", false, "keep Istio's own logs (on standard error)")
	fs.StringVar(&o.Allow, "allow", "", "with --analyze: analyzer codes (IST0134,...) printed but not failing")
	fs.StringVar(&o.Outbound, "outbound-policy", "ALLOW_ANY",
		"the mesh-wide outboundTrafficPolicy: ALLOW_ANY (SMM 1.17's default) or REGISTRY_ONLY")
}

// Active says the command line asks for something.
func (o *Options) Active() bool {
	return o.Manifests != "" || o.Analyze != "" || o.To != "" || o.Table || o.PrintMesh
}

// Usage is the help text.
const Usage = `usage:
  meshcheck --manifests FILE [--from NS] --to HOST:PORT[/http|/tls|/tcp]
  meshcheck --manifests FILE --table
      (both take --outbound-policy ALLOW_ANY|REGISTRY_ONLY, the mesh-wide default)
  meshcheck --analyze FILE
  meshcheck --manifests FILE --print-mesh

Istio's own control-plane code (istio.io/istio: the fake discovery server and
the traffic simulation of pilot's tests, and istioctl's analyzers) judges the
objects 'egressd render' prints. Each IstioMeshGateway becomes the Service and
pod the SMM operator creates; every client namespace gets a pod with a sidecar.

--to prints one line: the sidecar's listener/route/cluster, the hop to the
gateway (mTLS or plaintext), the gateway's listener/route/cluster and RBAC
decision, and the upstream (plain, passed-through or originated TLS, and
whether the originated TLS verifies the server). /http sends a plain HTTP
request with that Host header, /tls a TLS ClientHello with that SNI, /tcp raw
TCP. Default protocol: the intent's, else http on 80, tls on 443, tcp otherwise.

Exit status: --to: 0 reached, 1 denied or black-holed, 2 error;
--table: 0 printed, 2 error; --analyze: 0 clean, 1 errors or warnings, 2 error.
`

// ParseTo parses HOST:PORT[/proto].
func ParseTo(s string) (host string, port int, proto string, err error) {
	hp, proto, _ := strings.Cut(s, "/")
	h, p, ok := strings.Cut(hp, ":")
	if !ok || h == "" {
		return "", 0, "", fmt.Errorf("--to %q: want HOST:PORT[/http|/tls|/tcp]", s)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, "", fmt.Errorf("--to %q: bad port", s)
	}
	switch proto {
	case "", "http", "tls", "tcp":
	default:
		return "", 0, "", fmt.Errorf("--to %q: protocol must be http, tls or tcp", s)
	}
	return h, port, proto, nil
}

// Run executes the CLI inside a test (Istio's helpers need a *testing.T) and
// returns the exit code.
func Run(t *testing.T, o *Options, stdout, stderr io.Writer) int {
	errf := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "meshcheck: "+format+"\n", args...)
		return ExitError
	}
	if o.Analyze != "" {
		if o.Manifests != "" || o.To != "" || o.Table {
			return errf("--analyze takes no other option")
		}
		m, err := load(o.Analyze)
		if err != nil {
			return errf("%v", err)
		}
		var allow []string
		if o.Allow != "" {
			allow = strings.Split(o.Allow, ",")
		}
		bad, err := Analyze(m, stdout, t.TempDir(), o.Verbose, allow)
		if err != nil {
			return errf("%v", err)
		}
		if bad > 0 {
			return ExitDenied
		}
		fmt.Fprintf(stderr, "meshcheck: no errors or warnings from Istio's analyzers on %s\n", o.Analyze)
		return ExitReached
	}
	if o.Manifests == "" {
		return errf("--manifests FILE is required (see --help)")
	}
	m, err := load(o.Manifests)
	if err != nil {
		return errf("%v", err)
	}
	switch o.Outbound {
	case "", "ALLOW_ANY", "REGISTRY_ONLY":
		m.OutboundPolicy = o.Outbound
	default:
		return errf("--outbound-policy %q: ALLOW_ANY or REGISTRY_ONLY", o.Outbound)
	}
	if o.PrintMesh {
		fmt.Fprint(stdout, m.KubeYAML+"---\n"+m.MeshIstioYAML)
		return ExitReached
	}
	switch {
	case o.Table && o.To != "":
		return errf("--table and --to exclude each other")
	case o.Table:
		oracle := NewOracle(t, m)
		for _, r := range TableRequests(m) {
			fmt.Fprintln(stdout, oracle.Check(r).Line())
		}
		return ExitReached
	case o.To != "":
		host, port, proto, err := ParseTo(o.To)
		if err != nil {
			return errf("%v", err)
		}
		r, err := resolveRequest(m, o.From, host, port, proto)
		if err != nil {
			return errf("%v", err)
		}
		oracle := NewOracle(t, m)
		oc := oracle.Check(r)
		fmt.Fprintln(stdout, oc.Line())
		return oc.Verdict.ExitCode()
	}
	return errf("nothing to do: give --to, --table, --analyze or --print-mesh")
}

func load(path string) (*Mesh, error) {
	data, docs, err := ReadManifests(path)
	if err != nil {
		return nil, err
	}
	return BuildMesh(path, data, docs)
}

func resolveRequest(m *Mesh, from, host string, port int, proto string) (Request, error) {
	r := Request{From: from, Host: host, Port: port, Proto: proto}
	namers := map[string]string{} // namespace -> protocol of its intent
	for _, in := range append(append([]Request{}, m.Intents...), m.Extra...) {
		if in.Host == host && in.Port == port && m.Clients[in.From] != nil {
			if _, ok := namers[in.From]; !ok {
				namers[in.From] = in.Proto
			}
		}
	}
	if r.From == "" {
		switch len(namers) {
		case 0:
			return r, errors.New("no intent names " + host + ":" + strconv.Itoa(port) + "; say --from NS")
		case 1:
			r.From = sortedKeys(namers)[0]
		default:
			return r, fmt.Errorf("the intents of %s name %s:%d; say --from NS", strings.Join(sortedKeys(namers), ", "), host, port)
		}
	}
	if m.Clients[r.From] == nil {
		return r, fmt.Errorf("--from %q: the minimal mesh has clients in %s only", r.From, strings.Join(sortedKeys(m.Clients), ", "))
	}
	if r.Proto == "" {
		r.Proto = namers[r.From]
	}
	if r.Proto == "" {
		switch port {
		case 80:
			r.Proto = "http"
		case 443:
			r.Proto = "tls"
		default:
			r.Proto = "tcp"
		}
	}
	return r, nil
}

// TableRequests lists the rows of --table: every intent; the unlisted
// namespace (plain) and the intruder (routed through the gateway like the
// intent's namespace) trying the first intent of each gateway; a namespace
// of a gateway trying another namespace's host through it (borrowed); an unknown host from
// every intent namespace; and ServiceEntry ports no mesh route covers.
func TableRequests(m *Mesh) []Request {
	out := append([]Request{}, m.Intents...)
	firstPerGateway := map[string]bool{}
	for _, in := range m.Intents {
		gw := m.intentGateway(in)
		if firstPerGateway[gw] {
			continue
		}
		firstPerGateway[gw] = true
		out = append(out, Request{From: m.Unlisted, Host: in.Host, Port: in.Port, Proto: in.Proto, Why: "unlisted",
			Address: in.Address})
		out = append(out, Request{From: m.Intruder, Host: in.Host, Port: in.Port, Proto: in.Proto, Why: "intruder",
			Address: in.Address})
	}
	out = append(out, m.Borrowed...)
	seen := map[string]bool{}
	for _, in := range m.Intents {
		if seen[in.From] {
			continue
		}
		seen[in.From] = true
		out = append(out, Request{From: in.From, Host: "unknown.example.com", Port: 443, Proto: "tls", Why: "unknown-host"})
	}
	covered := map[string]bool{}
	for _, in := range m.Intents {
		covered[fmt.Sprintf("%s|%s|%d", in.From, in.Host, in.Port)] = true
	}
	for _, e := range m.Extra {
		// ServiceEntries of a namespace without clients (the gateway's
		// own) are for the gateway, not for a sidecar.
		if m.Clients[e.From] == nil {
			continue
		}
		if !covered[fmt.Sprintf("%s|%s|%d", e.From, e.Host, e.Port)] {
			out = append(out, e)
		}
	}
	return out
}

// intentGateway names the gateway host an intent's mesh route goes to (from
// the VirtualService), to pick one unlisted row per gateway.
func (m *Mesh) intentGateway(r Request) string {
	for _, d := range m.Istio {
		if d.Kind != "VirtualService" || d.Namespace != r.From {
			continue
		}
		spec, _ := d.Obj["spec"].(map[string]any)
		if !contains(toStrings(spec["hosts"]), r.Host) {
			continue
		}
		for _, section := range []string{"http", "tls", "tcp"} {
			routes, _ := spec[section].([]any)
			for _, rt := range routes {
				rm, _ := rt.(map[string]any)
				dests, _ := rm["route"].([]any)
				for _, dd := range dests {
					dm, _ := dd.(map[string]any)
					dest, _ := dm["destination"].(map[string]any)
					if h, _ := dest["host"].(string); strings.HasSuffix(h, ".svc."+trustDomain) {
						return h
					}
				}
			}
		}
	}
	return ""
}
