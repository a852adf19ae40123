package meshcheck

// The oracle's own tests: it must tell right from wrong. testdata/ holds the
// current rendering of the example repo (three Istio API versions, two
// clusters) and a hand-fixed variant (testdata/prod-eu-fixed.yaml, its header
// lists the fixes). The current rendering must come out with every enforced
// intent denied at the gateway; the fixed one with every intent reached over
// mTLS and a namespace the AuthorizationPolicy does not list denied.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const enforcedGateway = "egress-shared.egress-system.svc.cluster.local"

func loadFile(t *testing.T, path string) *Mesh {
	t.Helper()
	data, docs, err := ReadManifests(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := BuildMesh(path, data, docs)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func loadText(t *testing.T, name, text string) *Mesh {
	t.Helper()
	docs, err := ParseManifests([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	m, err := BuildMesh(name, []byte(text), docs)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// table runs every row of --table and returns the outcomes by row.
func table(t *testing.T, m *Mesh) map[string]*Outcome {
	t.Helper()
	o := NewOracle(t, m)
	out := map[string]*Outcome{}
	for _, r := range TableRequests(m) {
		oc := o.Check(r)
		if oc.Verdict == Failed {
			t.Fatalf("%s", oc.Line())
		}
		out[r.String()] = oc
	}
	return out
}

func viaEnforcedGateway(m *Mesh, r Request) bool {
	return r.Why == "intent" && m.intentGateway(r) == enforcedGateway
}

func row(t *testing.T, rows map[string]*Outcome, key string) *Outcome {
	t.Helper()
	oc := rows[key]
	if oc == nil {
		keys := sortedKeys(rows)
		t.Fatalf("no row %q; rows: %s", key, strings.Join(keys, "; "))
	}
	return oc
}

func TestCurrentRendering(t *testing.T) {
	for _, f := range []string{"prod-eu.v1beta1.yaml", "prod-eu.v1.yaml", "prod-eu.v1alpha3.yaml", "prod-us.v1beta1.yaml"} {
		t.Run(f, func(t *testing.T) {
			m := loadFile(t, filepath.Join("testdata", f))
			rows := table(t, m)
			n := 0
			for _, r := range m.Intents {
				oc := rows[r.String()]
				if !viaEnforcedGateway(m, r) {
					continue
				}
				n++
				// Finding 1: plaintext hop, so source.namespaces never matches.
				if oc.Verdict != Denied || !strings.Contains(oc.Reason, "egress-system/egress-shared-egressd-allow") {
					t.Errorf("want denied by the AuthorizationPolicy: %s", oc.Line())
				}
				if !strings.HasPrefix(oc.Hop, "plaintext") {
					t.Errorf("want a plaintext hop: %s", oc.Line())
				}
			}
			if n < 5 {
				t.Errorf("only %d intents through %s", n, enforcedGateway)
			}
			oc := row(t, rows, "smm-demo → httpbin.org:80/http")
			if oc.Verdict != Reached || oc.Upstream != "httpbin.org:80 plaintext" || !strings.Contains(oc.Gateway, "no RBAC filter") {
				t.Errorf("httpbin via egress-demo: %s", oc.Line())
			}
			oc = row(t, rows, "payments → unknown.example.com:443/tls")
			if oc.Verdict != BlackHoled || !strings.Contains(oc.Reason, "REGISTRY_ONLY") {
				t.Errorf("REGISTRY_ONLY in payments: %s", oc.Line())
			}
			oc = row(t, rows, "ci → unknown.example.com:443/tls")
			if oc.Verdict != Reached || !strings.Contains(oc.Sidecar, "PassthroughCluster") {
				t.Errorf("ALLOW_ANY in ci: %s", oc.Line())
			}
			oc = row(t, rows, "unlisted → "+m.Intents[0].Host+":443/tls")
			if oc.Verdict != Reached || !strings.Contains(oc.Reason, "bypasses") {
				t.Errorf("unlisted namespace: %s", oc.Line())
			}
			// Finding 8: TLS origination does not verify the server.
			oc = row(t, rows, "news → edition.cnn.com:80/http")
			if !strings.Contains(oc.Upstream, "edition.cnn.com:443 TLS originated") || !strings.Contains(oc.Upstream, "server NOT verified") {
				t.Errorf("TLS origination: %s", oc.Line())
			}
			// Finding 4 and the DestinationRule exported to news: the
			// sidecar reaches edition.cnn.com:443 itself and wraps the
			// app's TLS in its own.
			oc = row(t, rows, "news → edition.cnn.com:443/tls")
			if oc.Verdict != Broken || oc.Hop != "direct, no gateway" {
				t.Errorf("news to edition.cnn.com:443: %s", oc.Line())
			}
		})
	}
}

// The three API versions render the same objects: the oracle must say the same.
func TestAPIVersionsAgree(t *testing.T) {
	var want string
	for _, f := range []string{"prod-eu.v1beta1.yaml", "prod-eu.v1.yaml", "prod-eu.v1alpha3.yaml"} {
		m := loadFile(t, filepath.Join("testdata", f))
		o := NewOracle(t, m)
		var b strings.Builder
		for _, r := range TableRequests(m) {
			b.WriteString(o.Check(r).Line() + "\n")
		}
		if want == "" {
			want = b.String()
		} else if b.String() != want {
			t.Errorf("%s: table differs from v1beta1's:\n%s\nwant:\n%s", f, b.String(), want)
		}
	}
}

func TestFixedRendering(t *testing.T) {
	m := loadFile(t, "testdata/prod-eu-fixed.yaml")
	rows := table(t, m)
	for _, r := range m.Intents {
		oc := rows[r.String()]
		if r.From == "intruder" {
			if oc.Verdict != Denied || !strings.Contains(oc.Gateway, "peer spiffe://cluster.local/ns/intruder/sa/client") {
				t.Errorf("intruder must be denied at the gateway: %s", oc.Line())
			}
			continue
		}
		if oc.Verdict != Reached {
			t.Errorf("want reached: %s", oc.Line())
		}
		if viaEnforcedGateway(m, r) || r.From == "news" {
			if !strings.HasPrefix(oc.Hop, "mTLS (ISTIO_MUTUAL from a DestinationRule, sni "+r.Host+")") {
				t.Errorf("want an mTLS hop with SNI %s: %s", r.Host, oc.Line())
			}
			if !strings.Contains(oc.Gateway, "allowed by AuthorizationPolicy egress-system/egress-shared-egressd-allow") {
				t.Errorf("want allowed by the AuthorizationPolicy: %s", oc.Line())
			}
			if !strings.HasPrefix(oc.Upstream, r.Host+":") {
				t.Errorf("want upstream %s: %s", r.Host, oc.Line())
			}
		}
	}
	oc := row(t, rows, "news → edition.cnn.com:80/http")
	if !strings.Contains(oc.Upstream, "server verified: CA file-root:/etc/ssl/certs/ca-certificates.crt, SAN edition.cnn.com") {
		t.Errorf("TLS origination must verify: %s", oc.Line())
	}
	if _, ok := rows["news → edition.cnn.com:443/tls"]; ok {
		t.Errorf("news still sees port 443 of edition.cnn.com")
	}
}

// Half a fix: the DestinationRules ask for mTLS but the Gateway still serves
// plain HTTP and passes TLS through; the gateway cannot take the traffic.
func TestHalfFix(t *testing.T) {
	fixed, err := os.ReadFile("testdata/prod-eu-fixed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := os.ReadFile("testdata/prod-eu.v1beta1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pick := func(data []byte, keep bool) []string {
		docs, err := ParseManifests(data)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range docs {
			isGW := d.Kind == "Gateway" && d.Name == "egress-shared"
			if isGW == keep {
				out = append(out, d.Text)
			}
		}
		return out
	}
	docs := append(pick(fixed, false), pick(cur, true)...)
	m := loadText(t, "half-fix.yaml", strings.Join(docs, "\n---\n"))
	rows := table(t, m)
	for _, key := range []string{"payments → api.stripe.com:443/tls", "ci → github.com:80/http"} {
		oc := row(t, rows, key)
		if oc.Verdict != NoRoute || !strings.HasPrefix(oc.Hop, "mTLS") || !strings.Contains(oc.Reason, "gateway:") {
			t.Errorf("%s: want the gateway unable to take mTLS: %s", key, oc.Line())
		}
	}
}

// One ISTIO_MUTUAL TLS server for all the hosts on 443 instead of one per
// host: the gateway's one filter chain takes the first tcp route, so every
// host goes to the same upstream.
func TestOneTLSServerForAllHosts(t *testing.T) {
	data, err := os.ReadFile("testdata/prod-eu-fixed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := ParseManifests(data)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, d := range docs {
		if d.Kind != "Gateway" || d.Name != "egress-shared" {
			parts = append(parts, d.Text)
			continue
		}
		parts = append(parts, `apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata:
  name: egress-shared
  namespace: egress-system
spec:
  selector:
    gateway-name: egress-shared
    gateway-type: egress
  servers:
  - port: {number: 80, name: https-80-mtls, protocol: HTTPS}
    hosts: [api.github.com, edition.cnn.com, github.com]
    tls: {mode: ISTIO_MUTUAL}
  - port: {number: 443, name: tls-443, protocol: TLS}
    hosts: [api.github.com, api.stripe.com, checkout-live.adyen.com, events.pagerduty.com, github.com, pal-live.adyen.com, s3.eu-central-1.amazonaws.com]
    tls: {mode: ISTIO_MUTUAL}`)
	}
	m := loadText(t, "one-server.yaml", strings.Join(parts, "\n---\n"))
	rows := table(t, m)
	misrouted := 0
	for _, r := range m.Intents {
		oc := rows[r.String()]
		if r.Port != 443 || r.From == "intruder" {
			continue
		}
		if oc.Verdict == Misrouted {
			misrouted++
		} else if oc.Verdict != Reached {
			t.Errorf("%s", oc.Line())
		}
	}
	if misrouted < 6 {
		t.Errorf("want the 443 intents but one misrouted, got %d", misrouted)
	}
}

func TestAnalyze(t *testing.T) {
	for _, tc := range []struct {
		file string
		bad  int
		want string
	}{
		{"testdata/prod-eu.v1beta1.yaml", 1, "Warning [IST0129] (DestinationRule news/cnn-edition.cnn.com-tls testdata/prod-eu.v1beta1.yaml:370)"},
		{"testdata/prod-eu.v1alpha3.yaml", 1, "IST0129"},
		{"testdata/prod-eu.v1.yaml", 1, "IST0129"},
		{"testdata/prod-eu-fixed.yaml", 0, ""},
	} {
		m := loadFile(t, tc.file)
		var out bytes.Buffer
		bad, err := Analyze(m, &out, t.TempDir(), false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if bad != tc.bad || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%s: %d errors/warnings, want %d with %q:\n%s", tc.file, bad, tc.bad, tc.want, out.String())
		}
	}
	// A Gateway selecting no pod: the analyzers see the minimal mesh.
	data, err := os.ReadFile("testdata/prod-eu.v1beta1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := loadText(t, "bad.yaml", strings.Replace(string(data), "gateway-name: egress-demo\n", "gateway-name: egress-nowhere\n", 1))
	var out bytes.Buffer
	if _, err := Analyze(m, &out, t.TempDir(), false, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `Error [IST0101] (Gateway smm-demo/egress-demo bad.yaml:121) Referenced selector not found: "gateway-name=egress-nowhere,gateway-type=egress"`) {
		t.Errorf("want IST0101 for the Gateway selector:\n%s", out.String())
	}
}

func TestCLIExitCodes(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		code int
		out  string
	}{
		{Options{Manifests: "testdata/prod-eu.v1beta1.yaml", To: "httpbin.org:80"}, ExitReached, "smm-demo → httpbin.org:80/http"},
		{Options{Manifests: "testdata/prod-eu.v1beta1.yaml", To: "api.stripe.com:443/tls"}, ExitDenied, "payments → api.stripe.com:443/tls"},
		{Options{Manifests: "testdata/prod-eu.v1beta1.yaml", From: "payments", To: "unknown.example.com:443/tls"}, ExitDenied, "BLACK-HOLED"},
		{Options{Manifests: "testdata/prod-eu-fixed.yaml", From: "payments", To: "api.stripe.com:443"}, ExitReached, "REACHED"},
		{Options{Manifests: "testdata/prod-eu-fixed.yaml", To: "api.stripe.com:443"}, ExitError, ""}, // payments and intruder
		{Options{Manifests: "testdata/prod-eu-fixed.yaml", From: "intruder", To: "api.stripe.com:443"}, ExitDenied, "DENIED"},
		{Options{Manifests: "testdata/prod-eu.v1beta1.yaml", To: "unknown.example.com:443"}, ExitError, ""},
		{Options{Manifests: "testdata/prod-eu.v1beta1.yaml", To: "httpbin.org"}, ExitError, ""},
		{Options{Manifests: "testdata/prod-eu.v1beta1.yaml", From: "nowhere", To: "httpbin.org:80"}, ExitError, ""},
		{Options{Manifests: "testdata/missing.yaml", To: "httpbin.org:80"}, ExitError, ""},
		{Options{Manifests: "testdata/prod-eu.v1beta1.yaml", Table: true}, ExitReached, "unlisted → "},
		{Options{Manifests: "testdata/prod-eu.v1beta1.yaml", From: "unlisted", To: "httpbin.org:80"}, ExitReached, "bypasses"},
		{Options{Manifests: "testdata/prod-eu.v1beta1.yaml", From: "unlisted", To: "httpbin.org:80", Outbound: "REGISTRY_ONLY"},
			ExitDenied, "BLACK-HOLED (sidecar: block_all"},
		{Options{Manifests: "testdata/prod-eu.v1beta1.yaml", Table: true, Outbound: "DENY"}, ExitError, ""},
		{Options{Analyze: "testdata/prod-eu.v1beta1.yaml"}, ExitDenied, "IST0129"},
		{Options{Analyze: "testdata/prod-eu-fixed.yaml"}, ExitReached, ""},
	} {
		var out, errb bytes.Buffer
		o := tc.o
		code := Run(t, &o, &out, &errb)
		if code != tc.code || !strings.Contains(out.String(), tc.out) {
			t.Errorf("%+v: exit %d, want %d; stdout %q; stderr %q", tc.o, code, tc.code, out.String(), errb.String())
		}
		if tc.o.To != "" && code != ExitError && strings.Count(out.String(), "\n") != 1 {
			t.Errorf("%+v: want one line, got %q", tc.o, out.String())
		}
	}
}

// With the egressd binary built, judge what it renders now for every cluster
// and API version (not only the copies in testdata): the oracle must give an
// answer for every row (no ERROR), and the same answers for the three API
// versions. What the answers are is the renderer's business: they change when
// it is fixed.
func TestEgressdRender(t *testing.T) {
	bin := os.Getenv("EGRESSD") // ctest gives the binary under test
	if bin == "" {
		var err error
		if bin, err = filepath.Abs("../../build/daemon/cli/egressd"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("egressd not built at %s (set EGRESSD)", bin)
	}
	for _, cluster := range []string{"canary", "prod-eu", "prod-us"} {
		var want string
		for _, api := range []string{"v1beta1", "v1", "v1alpha3"} {
			out, err := exec.Command(bin, "render", "../../repo-layout/example", "--cluster", cluster, "--istio-api", api).Output()
			if err != nil {
				t.Fatalf("egressd render %s %s: %v", cluster, api, err)
			}
			m := loadText(t, cluster+"."+api+".yaml", string(out))
			rows := table(t, m) // fails on ERROR
			var b strings.Builder
			for _, r := range TableRequests(m) {
				b.WriteString(rows[r.String()].Line() + "\n")
			}
			if want == "" {
				want = b.String()
			} else if b.String() != want {
				t.Errorf("%s %s: table differs from v1beta1's:\n%s\nwant:\n%s", cluster, api, b.String(), want)
			}
		}
	}
}

// The NetworkPolicy of tests/data/render/0004-networkpolicy lets payments'
// pods reach the gateway pod on its target ports; with a wrong port the
// oracle finds the connection refused below the mesh.
func TestNetworkPolicyIsEnforcedBelowTheMesh(t *testing.T) {
	data, err := os.ReadFile("../data/render/0004-networkpolicy/c1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	stripe := "payments → api.stripe.com:443/tls"
	rows := table(t, loadText(t, "np.yaml", string(data)))
	if oc := row(t, rows, stripe); oc.Verdict != Reached {
		t.Errorf("with the rendered NetworkPolicy: %s", oc.Line())
	}
	bad := strings.Replace(string(data), "port: 8443\n", "port: 9443\n", 1)
	if bad == string(data) {
		t.Fatal("the golden has no NetworkPolicy port 8443")
	}
	rows = table(t, loadText(t, "np-bad.yaml", bad))
	oc := row(t, rows, stripe)
	if oc.Verdict != Denied || !strings.Contains(oc.Reason, "NetworkPolicy payments/egressd-egress-only") {
		t.Errorf("with the gateway's port wrong in the NetworkPolicy: %s", oc.Line())
	}
	// the gateway's other port is still allowed
	if oc := row(t, rows, "payments → ip-10-20-30-40.egressd.internal:5432/tcp (10.20.30.40)"); oc.Verdict != Reached {
		t.Errorf("TCP through the gateway: %s", oc.Line())
	}
}

// With the mesh-wide outbound policy REGISTRY_ONLY (what docs/security-model.md
// advises for namespaces without enforce), the example's rendering still
// reaches every intent, and a namespace no intent names reaches nothing: TLS
// to BlackHoleCluster, HTTP to the block_all virtual host's 502. Under SMM's
// default ALLOW_ANY the same rows bypass the gateway.
func TestMeshWideRegistryOnly(t *testing.T) {
	m := loadFile(t, "../data/render/0001-example/prod-eu.yaml")
	allowAny := table(t, m)
	m = loadFile(t, "../data/render/0001-example/prod-eu.yaml")
	m.OutboundPolicy = "REGISTRY_ONLY"
	rows := table(t, m)
	for _, in := range m.Intents {
		if oc := row(t, rows, in.String()); oc.Verdict != Reached || !strings.Contains(oc.Hop, "mTLS") {
			t.Errorf("intent under REGISTRY_ONLY: %s", oc.Line())
		}
	}
	for _, key := range []string{"unlisted → httpbin.org:80/http", "unlisted → events.pagerduty.com:443/tls",
		"ci → unknown.example.com:443/tls"} {
		if oc := row(t, rows, key); oc.Verdict != BlackHoled || !strings.Contains(oc.Reason, "REGISTRY_ONLY") {
			t.Errorf("REGISTRY_ONLY: %s", oc.Line())
		}
		if oc := row(t, allowAny, key); oc.Verdict != Reached || !strings.Contains(oc.Reason, "bypasses") {
			t.Errorf("ALLOW_ANY: %s", oc.Line())
		}
	}
}
