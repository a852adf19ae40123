// Command realk8s starts real Kubernetes API servers for egressd's tests: one
// etcd, one kube-apiserver per cluster (both built from the upstream Go
// modules pinned in go.mod), the CRDs egressd renders, RBAC, the real
// namespace controller, and a small controller that plays the SMM
// mesh-gateway operator and the Deployment controller. From the outside it
// behaves like tests/kubesim/kubesim: the same options, the same files in
// DIR, DIR/ready written last, and a subset of kubesim's /_sim/ control API
// (on DIR/control.port). See README.md.
//
// Invariants: every process it starts dies with it (SIGTERM, SIGINT, or its
// own death through PR_SET_PDEATHSIG); any failure before "ready" is one
// line on stderr and exit status 1, never a hang (every wait has a deadline).
//
// When you change an option or a file, also change README.md and
// tests/integration/kubelib.py (RealK8s), which drives it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

var istioVersions = []string{"v1", "v1beta1", "v1alpha3"}

type istioSpec struct {
	versions []string // served networking.istio.io versions
	schema   string   // "1.17" or "head": which CRD generation
}

type options struct {
	dir           string
	binDir        string
	clusters      []string
	namespaces    []string
	noSMM         map[string]bool
	istio         map[string]istioSpec
	ports         map[string]int
	operatorDelay time.Duration
	startTimeout  time.Duration
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "realk8s: "+format+"\n", args...)
	runCleanups()
	os.Exit(1)
}

var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

// atExit registers f to run at shutdown, last registered first.
func atExit(f func()) {
	cleanupMu.Lock()
	cleanups = append(cleanups, f)
	cleanupMu.Unlock()
}

func runCleanups() {
	cleanupMu.Lock()
	fs := cleanups
	cleanups = nil
	cleanupMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// perCluster parses NAME=VALUE (one cluster) or VALUE (every cluster).
func perCluster(values []string, names []string, what string) map[string]string {
	out := map[string]string{}
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	for _, v := range values {
		if k, val, ok := strings.Cut(v, "="); ok && known[k] {
			out[k] = val
		} else if ok && !strings.HasPrefix(k, "v") && k != "head" {
			die("%s: unknown cluster in %q", what, v)
		} else {
			for _, n := range names {
				out[n] = v
			}
		}
	}
	return out
}

func parseIstio(spec string) (istioSpec, error) {
	switch spec {
	case "head", "":
		return istioSpec{append([]string(nil), istioVersions...), "head"}, nil
	case "1.17":
		return istioSpec{[]string{"v1beta1", "v1alpha3"}, "1.17"}, nil
	}
	var vs []string
	for _, v := range strings.Split(spec, ",") {
		v = strings.TrimSpace(v)
		found := false
		for _, k := range istioVersions {
			found = found || k == v
		}
		if !found {
			return istioSpec{}, fmt.Errorf("--istio: unknown version %q (use v1, v1beta1, v1alpha3, 1.17 or head)", v)
		}
		vs = append(vs, v)
	}
	gen := "1.17"
	for _, v := range vs {
		if v == "v1" {
			gen = "head"
		}
	}
	return istioSpec{vs, gen}, nil
}

func parseOptions() *options {
	var o options
	var clusters string
	var namespaces, noSMM, istio, istioSchema, ports, serverVersion multi
	var delay float64
	var bookmark float64
	var history int
	self, _ := os.Executable()
	flag.StringVar(&o.dir, "dir", "", "output directory (kubeconfigs, tokens, CA, ready)")
	flag.StringVar(&clusters, "clusters", "", "comma-separated cluster names")
	flag.Var(&namespaces, "namespace", "namespace created in every cluster at start (repeatable)")
	flag.Var(&noSMM, "no-smm", "do not install the IstioMeshGateway CRD in NAME ('all' for every cluster)")
	flag.Var(&istio, "istio", "[NAME=]SPEC: networking.istio.io versions: head (default), 1.17, or a list such as v1alpha3,v1beta1")
	flag.Var(&istioSchema, "istio-schema", "[NAME=]1.17|head: CRD generation (default: head when v1 is served)")
	flag.Var(&ports, "port", "NAME=PORT: fixed loopback port for NAME")
	flag.Var(&serverVersion, "server-version", "accepted for kubesim compatibility and ignored: the server reports the version it was built from")
	flag.Float64Var(&delay, "operator-delay", 0.5, "seconds from Reconciling to Available of the simulated mesh-gateway operator")
	flag.Float64Var(&bookmark, "bookmark-interval", 0, "accepted for kubesim compatibility and ignored: the real watch cache decides")
	flag.IntVar(&history, "history", 0, "accepted for kubesim compatibility and ignored: etcd and the watch cache decide")
	flag.StringVar(&o.binDir, "bin", filepath.Dir(self), "directory of the kube-apiserver and etcd binaries")
	flag.DurationVar(&o.startTimeout, "start-timeout", 120*time.Second, "give up if the servers are not ready within this")
	flag.Parse()
	if flag.NArg() > 0 {
		die("unexpected argument %q", flag.Arg(0))
	}
	if o.dir == "" || clusters == "" {
		die("--dir and --clusters are required")
	}
	seen := map[string]bool{}
	for _, n := range strings.Split(clusters, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if seen[n] {
			die("--clusters needs distinct names (%q twice)", n)
		}
		if strings.ContainsAny(n, "/ \t") {
			die("--clusters: bad name %q", n)
		}
		seen[n] = true
		o.clusters = append(o.clusters, n)
	}
	if len(o.clusters) == 0 {
		die("--clusters needs at least one name")
	}
	o.namespaces = namespaces
	o.noSMM = map[string]bool{}
	for _, n := range noSMM {
		switch {
		case n == "all":
			for _, c := range o.clusters {
				o.noSMM[c] = true
			}
		case seen[n]:
			o.noSMM[n] = true
		default:
			die("--no-smm: unknown cluster %q", n)
		}
	}
	o.istio = map[string]istioSpec{}
	specs := perCluster(istio, o.clusters, "--istio")
	schemas := perCluster(istioSchema, o.clusters, "--istio-schema")
	for _, c := range o.clusters {
		s, err := parseIstio(specs[c])
		if err != nil {
			die("%v", err)
		}
		if g, ok := schemas[c]; ok {
			if g != "1.17" && g != "head" {
				die("--istio-schema must be 1.17 or head, not %q", g)
			}
			s.schema = g
		}
		o.istio[c] = s
	}
	o.ports = map[string]int{}
	for c, p := range perCluster(ports, o.clusters, "--port") {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			die("--port %s=%s: not a port number", c, p)
		}
		o.ports[c] = n
	}
	o.operatorDelay = time.Duration(delay * float64(time.Second))
	abs, err := filepath.Abs(o.dir)
	if err != nil {
		die("--dir: %v", err)
	}
	o.dir = abs
	return &o
}

// freePort asks the kernel for an unused loopback port. The port is free
// when this returns; a server started right after binds it (a race with
// other programs is possible and shows as a clear start failure).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func main() {
	t0 := time.Now()
	o := parseOptions()
	quietKlog()
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		die("%v", err)
	}
	ready := filepath.Join(o.dir, "ready")
	if err := os.Remove(ready); err != nil && !errors.Is(err, os.ErrNotExist) {
		die("%v", err)
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(o.binDir, b)); err != nil {
			die("%s not found in %s: build it with tests/realk8s/build.sh %s", b, o.binDir, o.binDir)
		}
	}
	for c, p := range o.ports {
		if !portFree(p) {
			die("port %d for cluster %s is in use", p, c)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "realk8s: %v: stopping\n", s)
		runCleanups()
		os.Remove(ready)
		os.Exit(0)
	}()
	deadline := time.Now().Add(o.startTimeout)

	p, err := makePKI(o.dir)
	if err != nil {
		die("making the PKI: %v", err)
	}
	fleet, err := newFleet(o, p)
	if err != nil {
		die("%v", err)
	}
	atExit(fleet.stop) // cleanups run last registered first: controllers and servers stop before the processes
	atExit(cancel)
	if err := fleet.start(ctx, deadline); err != nil {
		die("%v", err)
	}
	if err := writeFile(ready, []byte(fleet.readyText()), 0o644); err != nil {
		die("%v", err)
	}
	var urls []string
	for _, c := range fleet.clusters {
		urls = append(urls, fmt.Sprintf("%s=https://127.0.0.1:%d", c.name, c.port))
	}
	sort.Strings(urls)
	fmt.Fprintf(os.Stderr, "realk8s: %d cluster(s) ready in %.1f s (kube-apiserver %s): %s\n",
		len(fleet.clusters), time.Since(t0).Seconds(), fleet.version, strings.Join(urls, ", "))
	select {} // the signal handler exits
}

// quietKlog keeps client-go's and the namespace controller's informational
// logging out of realk8s's stderr; errors still reach it.
func quietKlog() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	fs.Set("logtostderr", "false")
	fs.Set("alsologtostderr", "false")
	fs.Set("stderrthreshold", "ERROR")
	klog.SetOutput(io.Discard)
}
