package main

// The processes: one etcd shared by every cluster (each kube-apiserver keeps
// its objects under its own key prefix, /registry/NAME), one kube-apiserver
// per cluster, and the files clients read. A cluster's kube-apiserver can be
// stopped and started again on the same port with the same etcd prefix (the
// "unreachable" fault): it comes back with every object it had.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// Users. The clients' tokens (admin, readonly, exec) are checked by the
// TokenReview webhook, so that a test can expire and rotate them as on
// kubesim; realk8s's own identities are in the server's token file.
const (
	adminUser      = "realk8s-admin"
	controllerUser = "realk8s-controller" // realk8s's own requests: left out of the request log
	barrierUser    = "realk8s-barrier"
	viewerUser     = "viewer"
	execUser       = "exec-admin"
)

type fleet struct {
	o          *options
	pki        *pki
	etcdURL    string
	etcdCmd    *exec.Cmd
	etcdExited <-chan struct{}
	clusters   []*cluster
	byName     map[string]*cluster
	webhook    *tokenWebhook
	control    *controlServer
	version    string // the kube-apiserver's gitVersion
	stopping   bool
	mu         sync.Mutex
}

type cluster struct {
	f       *fleet
	name    string
	port    int
	istio   istioSpec
	smm     bool
	ctrlTok string // realk8s's own identity (token file)
	barrier string // the request log's marker requests (token file)

	mu      sync.Mutex
	cmd     *exec.Cmd // the running kube-apiserver; nil while stopped
	exited  chan struct{}
	down    bool         // stopped on purpose (unreachable fault)
	dropper net.Listener // while down with "drop": accepts and closes
	restore *time.Timer

	audit *auditLog
	op    *operator
}

func token(kind string) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return kind + "-" + hex.EncodeToString(b)
}

func newFleet(o *options, p *pki) (*fleet, error) {
	f := &fleet{o: o, pki: p, byName: map[string]*cluster{}}
	for _, n := range o.clusters {
		port := o.ports[n]
		if port == 0 {
			var err error
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		c := &cluster{f: f, name: n, port: port, istio: o.istio[n], smm: !o.noSMM[n],
			ctrlTok: token("controller"), barrier: token("barrier")}
		c.audit = newAuditLog(c, filepath.Join(o.dir, n+"-audit.log"))
		f.clusters = append(f.clusters, c)
		f.byName[n] = c
	}
	return f, nil
}

func (f *fleet) path(name string) string { return filepath.Join(f.o.dir, name) }

// start brings up etcd, the token webhook, every kube-apiserver, the CRDs
// and RBAC, the controllers and the control API, and writes the client files.
func (f *fleet) start(ctx context.Context, deadline time.Time) error {
	if err := f.writeServerFiles(); err != nil {
		return err
	}
	if err := f.startEtcd(deadline); err != nil {
		return err
	}
	var err error
	if f.webhook, err = startTokenWebhook(f); err != nil {
		return err
	}
	if err := f.writeWebhookConfigs(); err != nil {
		return err
	}
	errs := make(chan error, len(f.clusters))
	for _, c := range f.clusters {
		go func(c *cluster) {
			if err := c.startServer(deadline); err != nil {
				errs <- err
				return
			}
			errs <- c.install(ctx, deadline)
		}(c)
	}
	for range f.clusters {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return err
	}
	if f.version, err = f.clusters[0].serverVersion(); err != nil {
		return err
	}
	for _, c := range f.clusters {
		if err := c.startControllers(ctx); err != nil {
			return fmt.Errorf("cluster %s: controllers: %v", c.name, err)
		}
	}
	if f.control, err = startControl(f); err != nil {
		return err
	}
	return f.writeClientFiles()
}

// stop ends every process realk8s started: the kube-apiservers at once,
// then etcd.
func (f *fleet) stop() {
	f.mu.Lock()
	f.stopping = true
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range f.clusters {
		c.mu.Lock()
		cmd, exited := c.cmd, c.exited
		if c.restore != nil {
			c.restore.Stop()
		}
		c.mu.Unlock()
		if cmd != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stopProcess(cmd, exited)
			}()
		}
	}
	wg.Wait()
	if f.etcdCmd != nil {
		stopProcess(f.etcdCmd, f.etcdExited)
	}
}

func (f *fleet) readyText() string {
	var b strings.Builder
	for _, c := range f.clusters {
		fmt.Fprintf(&b, "%s https://127.0.0.1:%d\n", c.name, c.port)
	}
	return b.String()
}

// -- files -------------------------------------------------------------------

const auditPolicy = `# realk8s: log every request of the clients under test with its body
# (the request log of /_sim/requests); realk8s's own and the server's
# loopback requests are not logged.
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: ["system:apiserver", "` + controllerUser + `"]
- level: Request
`

func (f *fleet) writeServerFiles() error {
	var tokens strings.Builder
	for _, c := range f.clusters {
		// token,user,uid,"group1,group2"
		fmt.Fprintf(&tokens, "%s,%s,%s-uid,\"system:masters\"\n", c.ctrlTok, controllerUser, controllerUser)
		fmt.Fprintf(&tokens, "%s,%s,%s-uid\n", c.barrier, barrierUser, barrierUser)
	}
	if err := writeFile(filepath.Join(f.pki.dir, "tokens.csv"), []byte(tokens.String()), 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(f.pki.dir, "audit-policy.yaml"), []byte(auditPolicy), 0o644)
}

func kubeconfig(name, server, ca, user string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Config\npreferences: {}\ncurrent-context: %[1]s\n"+
		"clusters:\n- name: %[1]s\n  cluster:\n    server: %[2]s\n    certificate-authority: %[3]s\n"+
		"contexts:\n- name: %[1]s\n  context:\n    cluster: %[1]s\n    user: %[1]s\n    namespace: default\n"+
		"users:\n- name: %[1]s\n  user:\n%[4]s", name, server, ca, user)
}

func (f *fleet) writeWebhookConfigs() error {
	for _, c := range f.clusters {
		text := kubeconfig("realk8s-token-webhook",
			fmt.Sprintf("https://127.0.0.1:%d/authenticate/%s", f.webhook.port, c.name), f.pki.caCert, "    {}\n")
		if err := writeFile(filepath.Join(f.pki.dir, "webhook-"+c.name+".kubeconfig"), []byte(text), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// writeClientFiles writes what kubesim writes: NAME.kubeconfig (admin
// token), NAME-readonly.kubeconfig, NAME-cert.kubeconfig, NAME-exec.kubeconfig
// with its plugin, NAME.port (the webhook wrote NAME.token,
// NAME-readonly.token and the exec credential); and control.port for the
// /_sim/ control API.
func (f *fleet) writeClientFiles() error {
	ca := f.pki.caCert
	for _, c := range f.clusters {
		server := fmt.Sprintf("https://127.0.0.1:%d", c.port)
		plugin := f.path(c.name + "-exec-plugin")
		files := []struct {
			name, text string
			mode       os.FileMode
		}{
			{c.name + "-exec-plugin", fmt.Sprintf("#!/bin/sh\n# realk8s exec credential plugin for cluster %s: prints the current\n"+
				"# ExecCredential that realk8s keeps in %s-exec-credential.json.\n"+
				"echo \"$(date +%%s) $$\" >> '%s'\ncat '%s'\n",
				c.name, c.name, f.path(c.name+"-exec.log"), f.webhook.credentialFile(c)), 0o755},
			{c.name + ".kubeconfig", kubeconfig(c.name, server, ca, "    token: "+f.webhook.current(c, "admin")+"\n"), 0o600},
			{c.name + "-readonly.kubeconfig", kubeconfig(c.name, server, ca, "    token: "+f.webhook.current(c, "readonly")+"\n"), 0o600},
			{c.name + "-cert.kubeconfig", kubeconfig(c.name, server, ca,
				"    client-certificate: "+f.pki.clientCert+"\n    client-key: "+f.pki.clientKey+"\n"), 0o600},
			{c.name + "-exec.kubeconfig", kubeconfig(c.name, server, ca, "    exec:\n"+
				"      apiVersion: client.authentication.k8s.io/v1\n      command: "+plugin+"\n"+
				"      interactiveMode: Never\n      provideClusterInfo: false\n"), 0o600},
			{c.name + ".port", fmt.Sprintf("%d\n", c.port), 0o644},
		}
		for _, fl := range files {
			if err := writeFile(f.path(fl.name), []byte(fl.text), fl.mode); err != nil {
				return err
			}
		}
	}
	return writeFile(f.path("control.port"), []byte(fmt.Sprintf("%d\n", f.control.port)), 0o644)
}

// -- processes ---------------------------------------------------------------

// Children die with realk8s through PR_SET_PDEATHSIG, which Linux ties to
// the thread that forked them, not the process: they are all forked from one
// goroutine locked to its own thread, which lives as long as realk8s.
type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

var spawnCh = make(chan spawnReq)

func init() {
	go func() {
		runtime.LockOSThread() // never unlocked: the thread stays until exit
		for r := range spawnCh {
			r.done <- r.cmd.Start()
		}
	}()
}

// spawn starts a child that dies with realk8s and writes its output to
// logPath.
func spawn(bin string, args []string, logPath string) (*exec.Cmd, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	done := make(chan error)
	spawnCh <- spawnReq{cmd, done}
	if err := <-done; err != nil {
		return nil, err
	}
	return cmd, nil
}

// stopProcess sends SIGTERM, then SIGKILL after 3 s (test servers: nothing
// to save), and waits until the process is gone.
func stopProcess(cmd *exec.Cmd, exited <-chan struct{}) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(3 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

func lastLines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startEtcd starts etcd on free ports. freePort's port can be taken by
// another process before etcd binds it (tests run in parallel): etcd then
// exits at start with "address already in use", and it is tried again on
// other ports, from an empty data directory.
func (f *fleet) startEtcd(deadline time.Time) error {
	for attempt := 1; ; attempt++ {
		again, err := f.startEtcdOnce(deadline)
		if err == nil || !again || attempt == 5 {
			return err
		}
		os.RemoveAll(f.path("etcd"))
	}
}

func (f *fleet) startEtcdOnce(deadline time.Time) (again bool, err error) {
	client, err := freePort()
	if err != nil {
		return false, err
	}
	peer, err := freePort()
	if err != nil {
		return false, err
	}
	f.etcdURL = fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	logPath := f.path("etcd.log")
	cmd, err := spawn(filepath.Join(f.o.binDir, "etcd"), []string{
		"--name=realk8s", "--data-dir=" + f.path("etcd"),
		"--listen-client-urls=" + f.etcdURL, "--advertise-client-urls=" + f.etcdURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=realk8s=" + peerURL,
		// test data: losing it in a power cut is fine, waiting for fsync is not
		"--unsafe-no-fsync", "--log-level=warn", "--quota-backend-bytes=4294967296",
	}, logPath)
	if err != nil {
		return false, fmt.Errorf("starting etcd: %v", err)
	}
	var healthy atomic.Bool
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		close(exited)
		f.mu.Lock()
		stopping := f.stopping
		f.mu.Unlock()
		if !stopping && healthy.Load() {
			die("etcd exited: %v\n%s", err, lastLines(logPath, 20))
		}
	}()
	f.etcdCmd, f.etcdExited = cmd, exited
	for time.Now().Before(deadline) {
		resp, err := http.Get(f.etcdURL + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if bytes.Contains(body, []byte(`"health":"true"`)) {
				healthy.Store(true)
				select {
				case <-exited: // it died between the answer and now
					return false, fmt.Errorf("etcd exited at start:\n%s", lastLines(logPath, 20))
				default:
				}
				return false, nil
			}
		}
		select {
		case <-exited:
			log := lastLines(logPath, 20)
			return strings.Contains(log, "address already in use"), fmt.Errorf("etcd exited at start:\n%s", log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false, fmt.Errorf("etcd not healthy in time:\n%s", lastLines(logPath, 20))
}

func (c *cluster) apiserverArgs() []string {
	f := c.f
	p := f.pki
	return []string{
		"--etcd-servers=" + f.etcdURL,
		"--etcd-prefix=/registry/" + c.name,
		fmt.Sprintf("--secure-port=%d", c.port),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--tls-cert-file=" + p.serverCert,
		"--tls-private-key-file=" + p.serverKey,
		"--client-ca-file=" + p.caCert,
		"--token-auth-file=" + filepath.Join(p.dir, "tokens.csv"),
		"--authentication-token-webhook-config-file=" + filepath.Join(p.dir, "webhook-"+c.name+".kubeconfig"),
		"--authentication-token-webhook-version=v1",
		"--authentication-token-webhook-cache-ttl=0s", // an expired exec token is refused at once
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.saPub,
		"--service-account-signing-key-file=" + p.saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--audit-policy-file=" + filepath.Join(p.dir, "audit-policy.yaml"),
		"--audit-log-path=" + c.audit.path,
		"--audit-log-format=json",
		"--audit-log-mode=blocking",
		"--audit-log-maxsize=0",
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--cert-dir=" + filepath.Join(p.dir, "cert-"+c.name),
	}
}

// startServer starts (or restarts) the cluster's kube-apiserver and waits
// until /readyz answers ok.
func (c *cluster) startServer(deadline time.Time) error {
	c.f.mu.Lock()
	stopping := c.f.stopping
	c.f.mu.Unlock()
	if stopping {
		return fmt.Errorf("cluster %s: realk8s is stopping", c.name)
	}
	logPath := c.f.path(c.name + "-apiserver.log")
	cmd, err := spawn(filepath.Join(c.f.o.binDir, "kube-apiserver"), c.apiserverArgs(), logPath)
	if err != nil {
		return fmt.Errorf("cluster %s: starting kube-apiserver: %v", c.name, err)
	}
	exited := make(chan struct{})
	c.mu.Lock()
	c.cmd, c.exited, c.down = cmd, exited, false
	c.mu.Unlock()
	go func() {
		err := cmd.Wait()
		close(exited)
		c.mu.Lock()
		expected := c.cmd != cmd || c.down
		c.mu.Unlock()
		c.f.mu.Lock()
		stopping := c.f.stopping
		c.f.mu.Unlock()
		if !expected && !stopping {
			die("cluster %s: kube-apiserver exited: %v\n%s", c.name, err, lastLines(logPath, 20))
		}
	}()
	return c.waitReady(deadline, exited, logPath)
}

func (c *cluster) httpClient() *http.Client {
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(c.f.pki.caCert); err == nil {
		pool.AppendCertsFromPEM(pem)
	}
	return &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
}

func (c *cluster) waitReady(deadline time.Time, exited <-chan struct{}, logPath string) error {
	hc := c.httpClient()
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", c.port)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+c.ctrlTok)
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && bytes.HasPrefix(body, []byte("ok")) {
				return nil
			}
		}
		select {
		case <-exited:
			msg := lastLines(logPath, 20)
			if strings.Contains(msg, "address already in use") {
				return fmt.Errorf("cluster %s: port %d is in use", c.name, c.port)
			}
			return fmt.Errorf("cluster %s: kube-apiserver exited at start:\n%s", c.name, msg)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("cluster %s: kube-apiserver not ready in time:\n%s", c.name, lastLines(logPath, 20))
}

// stopServer stops the kube-apiserver on purpose: its port refuses
// connections until restartServer.
func (c *cluster) stopServer() {
	c.mu.Lock()
	if c.down || c.cmd == nil {
		c.mu.Unlock()
		return
	}
	c.down = true
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	stopProcess(cmd, exited)
}

// dropConnections listens on the stopped server's port and closes every
// connection at once (the "drop" fault: reachable, but no TLS handshake).
func (c *cluster) dropConnections() error {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", c.port))
	if err != nil {
		return fmt.Errorf("cluster %s: drop: %v", c.name, err)
	}
	c.mu.Lock()
	c.dropper = l
	c.mu.Unlock()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	return nil
}

func (c *cluster) downMode() any {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.down && c.dropper != nil:
		return "drop"
	case c.down:
		return "refuse"
	}
	return nil
}

func (c *cluster) restartServer() error {
	c.mu.Lock()
	if c.restore != nil {
		c.restore.Stop()
		c.restore = nil
	}
	if c.dropper != nil {
		c.dropper.Close()
		c.dropper = nil
	}
	down := c.down
	c.mu.Unlock()
	if !down {
		return nil
	}
	return c.startServer(time.Now().Add(c.f.o.startTimeout))
}

// restartFresh restarts a running kube-apiserver (its watch cache is
// rebuilt from etcd's present).
func (c *cluster) restartFresh() error {
	c.stopServer()
	return c.restartServer()
}

func (c *cluster) isDown() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.down
}

// restConfig is how realk8s itself talks to the cluster: as realk8s-controller,
// which the audit policy leaves out of the request log.
func (c *cluster) restConfig() *rest.Config {
	return &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", c.port),
		BearerToken:     c.ctrlTok,
		TLSClientConfig: rest.TLSClientConfig{CAFile: c.f.pki.caCert},
		UserAgent:       "realk8s",
		WarningHandler:  rest.NoWarnings{},
		QPS:             200,
		Burst:           400,
	}
}
