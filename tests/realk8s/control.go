package main

// The test-facing side of realk8s: the /_sim/ control API (a subset of
// kubesim's, on DIR/control.port, plain HTTP on loopback, admin token of any
// cluster), the request log read from each kube-apiserver's audit log, and
// the TokenReview webhook that makes exec-plugin tokens expire on demand.
//
// Supported: GET/DELETE /_sim/requests, POST /_sim/faults {"unreachable":
// "refuse"|"drop"[, "duration_ms"]} (the server is stopped; for "drop" a
// listener on its port accepts and closes connections), GET/DELETE /_sim/faults, POST /_sim/operator,
// POST /_sim/tokens {"expire": "admin"|"readonly"|"exec"}, POST /_sim/compact
// (etcd compaction, then the cluster's kube-apiserver restarts: its watch
// cache starts at the present, so an older watch or continue gets 410, as
// after an API-server restart). Every other
// fault of kubesim (status codes, latency, resets, "drop") is an emulator
// feature: 501 with a message that says so. Select the cluster with
// ?cluster=NAME (default: the first).

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

type controlServer struct {
	f    *fleet
	port int
}

func startControl(f *fleet) (*controlServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &controlServer{f: f, port: l.Addr().(*net.TCPAddr).Port}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	atExit(func() { srv.Close() })
	return s, nil
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *controlServer) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	return s.f.webhook.isAdmin(tok)
}

func (s *controlServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		reply(w, 401, map[string]string{"message": "realk8s control: an admin token of a cluster is required"})
		return
	}
	c := s.f.clusters[0]
	if name := r.URL.Query().Get("cluster"); name != "" {
		if c = s.f.byName[name]; c == nil {
			reply(w, 404, map[string]string{"message": fmt.Sprintf("no cluster %q", name)})
			return
		}
	}
	var body map[string]any
	if r.Method == "POST" {
		data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil && len(data) > 0 {
			err = json.Unmarshal(data, &body)
		}
		if err != nil {
			reply(w, 400, map[string]string{"message": "bad JSON body: " + err.Error()})
			return
		}
	}
	what := strings.TrimPrefix(r.URL.Path, "/_sim/")
	switch {
	case what == "requests" && r.Method == "GET":
		since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
		items, last, err := c.audit.since(since)
		if err != nil {
			reply(w, 500, map[string]string{"message": err.Error()})
			return
		}
		reply(w, 200, map[string]any{"items": items, "last": last})
	case what == "requests" && r.Method == "DELETE":
		last, err := c.audit.clear()
		if err != nil {
			reply(w, 500, map[string]string{"message": err.Error()})
			return
		}
		reply(w, 200, map[string]any{"last": last})
	case what == "faults" && r.Method == "POST":
		s.fault(w, c, body)
	case what == "faults" && r.Method == "GET":
		reply(w, 200, map[string]any{"faults": []any{}, "unreachable": c.downMode()})
	case what == "faults" && r.Method == "DELETE":
		if err := c.restartServer(); err != nil {
			reply(w, 500, map[string]string{"message": err.Error()})
			return
		}
		reply(w, 200, map[string]any{"faults": []any{}})
	case what == "operator" && r.Method == "POST":
		ns, _ := body["namespace"].(string)
		name, _ := body["name"].(string)
		fail, _ := body["fail"].(string)
		if name == "" || c.op == nil {
			reply(w, 400, map[string]string{"message": `expected {"namespace": NS, "name": NAME, "fail": MESSAGE|null} or {..., "ignore": BOOL}`})
			return
		}
		if ignore, ok := body["ignore"].(bool); ok {
			c.op.setIgnored(ns, name, ignore)
			reply(w, 200, map[string]any{"namespace": ns, "name": name, "ignore": ignore})
			return
		}
		c.op.setFailure(ns, name, fail)
		reply(w, 200, map[string]any{"namespace": ns, "name": name, "fail": body["fail"]})
	case what == "tokens" && r.Method == "POST":
		kind, _ := body["expire"].(string)
		if kind != "admin" && kind != "readonly" && kind != "exec" {
			reply(w, 400, map[string]string{"message": `expected {"expire": "admin"|"readonly"|"exec", "rotate": bool}`})
			return
		}
		rotate, ok := body["rotate"].(bool)
		if !ok {
			rotate = kind != "exec" // as kubesim: a plugin's token is renewed by its next run
		}
		tok, err := s.f.webhook.expire(c, kind, rotate)
		if err != nil {
			reply(w, 500, map[string]string{"message": err.Error()})
			return
		}
		reply(w, 200, map[string]any{"expired": kind, "token": tok})
	case what == "compact" && r.Method == "POST":
		rev, err := s.f.compact()
		if err == nil {
			err = c.restartFresh()
		}
		if err != nil {
			reply(w, 500, map[string]string{"message": err.Error()})
			return
		}
		reply(w, 200, map[string]any{"compacted": rev})
	default:
		reply(w, 501, map[string]string{"message": fmt.Sprintf(
			"realk8s: %s /_sim/%s is an emulator feature (tests/kubesim); a real API server has no such control", r.Method, what)})
	}
}

func (s *controlServer) fault(w http.ResponseWriter, c *cluster, body map[string]any) {
	mode, has := body["unreachable"]
	if !has || len(body) > 2 {
		reply(w, 501, map[string]string{"message": "realk8s: injected responses, latency and resets are emulator features (tests/kubesim); only {\"unreachable\": \"refuse\"|\"drop\"} is supported"})
		return
	}
	switch mode {
	case nil:
		if err := c.restartServer(); err != nil {
			reply(w, 500, map[string]string{"message": err.Error()})
			return
		}
	case "refuse", "drop":
		c.stopServer()
		if mode == "drop" {
			if err := c.dropConnections(); err != nil {
				reply(w, 500, map[string]string{"message": err.Error()})
				return
			}
		}
		if ms, ok := body["duration_ms"].(float64); ok {
			c.mu.Lock()
			c.restore = time.AfterFunc(time.Duration(ms)*time.Millisecond, func() {
				if err := c.restartServer(); err != nil {
					die("%v", err)
				}
			})
			c.mu.Unlock()
		}
	default:
		reply(w, 400, map[string]string{"message": fmt.Sprintf("unreachable must be \"refuse\", \"drop\" or null, not %v", mode)})
		return
	}
	reply(w, 200, map[string]any{"unreachable": mode})
}

// compact compacts etcd to its current revision, as kube-apiserver does
// every five minutes: a list continue from before it gets 410. (Watches are
// served from the watch cache, whose window the caller empties by
// restarting the server: restartFresh.)
func (f *fleet) compact() (int64, error) {
	var st struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	resp, err := http.Post(f.etcdURL+"/v3/maintenance/status", "application/json", strings.NewReader("{}"))
	if err != nil {
		return 0, err
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	rev, _ := strconv.ParseInt(st.Header.Revision, 10, 64)
	resp, err = http.Post(f.etcdURL+"/v3/kv/compaction", "application/json",
		strings.NewReader(fmt.Sprintf(`{"revision": "%d", "physical": true}`, rev)))
	if err != nil {
		return 0, err
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("etcd compaction: %s %s", resp.Status, msg)
	}
	return rev, nil
}

// -- the request log ----------------------------------------------------------

// An entry of /_sim/requests, with kubesim's field names. Headers the audit
// log does not record (Content-Type, Accept) are absent.
type logEntry struct {
	Seq        int64   `json:"seq"`
	Time       string  `json:"time"`
	Method     string  `json:"method"`
	Path       string  `json:"path"`
	Query      string  `json:"query"`
	Verb       string  `json:"verb"`
	Status     int     `json:"status"`
	UserAgent  string  `json:"user_agent"`
	User       string  `json:"user"`
	Auth       string  `json:"auth"`
	Body       *string `json:"body"`
	Watch      bool    `json:"watch"`
	DurationMS int64   `json:"duration_ms"`
	auditID    string
}

type auditEvent struct {
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	RequestURI string `json:"requestURI"`
	Verb       string `json:"verb"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	UserAgent      string `json:"userAgent"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestObject            json.RawMessage `json:"requestObject"`
	RequestReceivedTimestamp time.Time       `json:"requestReceivedTimestamp"`
	StageTimestamp           time.Time       `json:"stageTimestamp"`
}

type auditLog struct {
	c       *cluster
	path    string
	mu      sync.Mutex
	offset  int64
	partial []byte
	entries []logEntry
	byID    map[string]int
	seq     int64
	barrier int
}

func newAuditLog(c *cluster, path string) *auditLog {
	return &auditLog{c: c, path: path, byID: map[string]int{}}
}

var verbMethod = map[string]string{"get": "GET", "list": "GET", "watch": "GET", "create": "POST",
	"update": "PUT", "patch": "PATCH", "delete": "DELETE", "deletecollection": "DELETE"}

func authOf(user string, status int) string {
	switch {
	case status == 401:
		return "invalid"
	case user == "cert-admin":
		return "cert"
	case user == execUser:
		return "exec"
	case user == "system:anonymous":
		return "anonymous"
	}
	return "token"
}

// read consumes new audit lines. A watch is logged when its response
// starts (as kubesim logs it when its headers are sent); other requests
// when they complete.
func (a *auditLog) read() (barriers map[string]bool, err error) {
	barriers = map[string]bool{}
	f, err := os.Open(a.path)
	if err != nil {
		if os.IsNotExist(err) {
			return barriers, nil
		}
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(a.offset, io.SeekStart); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	a.offset += int64(len(data))
	data = append(a.partial, data...)
	end := bytes.LastIndexByte(data, '\n')
	if end < 0 {
		a.partial = data
		return barriers, nil
	}
	a.partial = append([]byte(nil), data[end+1:]...)
	sc := bufio.NewScanner(bytes.NewReader(data[:end+1]))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var ev auditEvent
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		if strings.HasPrefix(ev.UserAgent, "realk8s-barrier/") {
			barriers[ev.UserAgent] = true
			continue
		}
		status := 0
		if ev.ResponseStatus != nil {
			status = ev.ResponseStatus.Code
		}
		if i, seen := a.byID[ev.AuditID]; seen {
			// the ResponseComplete of a watch logged at ResponseStarted
			a.entries[i].DurationMS = ev.StageTimestamp.Sub(ev.RequestReceivedTimestamp).Milliseconds()
			continue
		}
		if ev.Stage != "ResponseStarted" && ev.Stage != "ResponseComplete" {
			continue
		}
		path, query, _ := strings.Cut(ev.RequestURI, "?")
		method := verbMethod[ev.Verb]
		if method == "" {
			method = strings.ToUpper(ev.Verb) // non-resource requests carry the HTTP method
		}
		e := logEntry{Time: ev.RequestReceivedTimestamp.UTC().Format(time.RFC3339), Method: method, Path: path,
			Query: query, Verb: ev.Verb, Status: status, UserAgent: ev.UserAgent, User: ev.User.Username,
			Auth: authOf(ev.User.Username, status), Watch: ev.Verb == "watch", auditID: ev.AuditID,
			DurationMS: ev.StageTimestamp.Sub(ev.RequestReceivedTimestamp).Milliseconds()}
		if len(ev.RequestObject) > 0 && string(ev.RequestObject) != "null" {
			b := string(ev.RequestObject)
			if len(b) > 64<<10 {
				b = b[:64<<10]
			}
			e.Body = &b
		}
		a.seq++
		e.Seq = a.seq
		if ev.Stage == "ResponseStarted" {
			a.byID[ev.AuditID] = len(a.entries)
		}
		a.entries = append(a.entries, e)
	}
	return barriers, nil
}

// sync makes the log current: a request the caller saw answered is in the
// log when this returns. It sends a marker request and reads the audit log
// until the marker's own line is there (the server writes a request's line
// as its response completes, before a later request's).
func (a *auditLog) sync() error {
	a.barrier++
	ua := fmt.Sprintf("realk8s-barrier/%d", a.barrier)
	if a.c.isDown() {
		_, err := a.read() // a stopped server writes nothing more
		return err
	}
	req, _ := http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d/version", a.c.port), nil)
	req.Header.Set("Authorization", "Bearer "+a.c.barrier)
	req.Header.Set("User-Agent", ua)
	resp, err := a.c.httpClient().Do(req)
	if err != nil {
		_, rerr := a.read()
		if rerr != nil {
			return rerr
		}
		return nil // the server went away meanwhile: what it wrote is all there is
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		seen, err := a.read()
		if err != nil {
			return err
		}
		if seen[ua] {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster %s: the audit log %s did not show the marker request", a.c.name, filepath.Base(a.path))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (a *auditLog) since(since int64) ([]logEntry, int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.sync(); err != nil {
		return nil, 0, err
	}
	out := []logEntry{}
	for _, e := range a.entries {
		if e.Seq > since {
			out = append(out, e)
		}
	}
	return out, a.seq, nil
}

func (a *auditLog) clear() (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.sync(); err != nil {
		return 0, err
	}
	a.entries = nil
	a.byID = map[string]int{}
	return a.seq, nil
}

// -- client tokens through a TokenReview webhook ---------------------------------

// tokenWebhook authenticates the clients' bearer tokens for every cluster
// (kube-apiserver --authentication-token-webhook-config-file, no cache):
// admin (realk8s-admin, system:masters), readonly (viewer) and the exec
// plugin's (exec-admin, system:masters). As on kubesim, a test may expire a
// kind of token and issue a new one; an expired exec token is refused once
// and the plugin's next run gets a fresh one.
type tokenWebhook struct {
	f       *fleet
	port    int
	mu      sync.Mutex
	valid   map[string]issuedToken
	expired map[string]issuedToken
	lastOK  map[string]time.Time // when the webhook last accepted a token
}

// kube-apiserver keeps a token it has accepted for 10 s whatever the
// webhook's cache TTL says (the authenticator's TokenSuccessCacheTTL, no
// flag): an expired token is refused only once that has passed.
const serverTokenCache = 10 * time.Second

type issuedToken struct {
	cluster, kind string
}

var tokenUsers = map[string]map[string]any{
	"admin":    {"username": adminUser, "uid": adminUser + "-uid", "groups": []string{"system:masters"}},
	"readonly": {"username": viewerUser, "uid": viewerUser + "-uid"},
	"exec":     {"username": execUser, "uid": execUser + "-uid", "groups": []string{"system:masters"}},
}

func startTokenWebhook(f *fleet) (*tokenWebhook, error) {
	cert, err := tls.LoadX509KeyPair(f.pki.serverCert, f.pki.serverKey)
	if err != nil {
		return nil, err
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		return nil, err
	}
	wh := &tokenWebhook{f: f, port: l.Addr().(*net.TCPAddr).Port,
		valid: map[string]issuedToken{}, expired: map[string]issuedToken{}, lastOK: map[string]time.Time{}}
	for _, c := range f.clusters {
		for _, kind := range []string{"admin", "readonly", "exec"} {
			if _, err := wh.rotate(c, kind); err != nil {
				return nil, err
			}
		}
	}
	srv := &http.Server{Handler: wh, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	atExit(func() { srv.Close() })
	return wh, nil
}

func (wh *tokenWebhook) credentialFile(c *cluster) string {
	return wh.f.path(c.name + "-exec-credential.json")
}

// rotate issues a new token of kind for c and writes it where clients read
// it: NAME.token, NAME-readonly.token, or the ExecCredential the plugin
// prints (valid one hour). Called with wh.mu held or before serving.
func (wh *tokenWebhook) rotate(c *cluster, kind string) (string, error) {
	t := token(kind)
	path, data := wh.f.path(c.name+".token"), []byte(t)
	switch kind {
	case "exec":
		cred := map[string]any{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
			"status": map[string]any{"token": t,
				"expirationTimestamp": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}
		data, _ = json.Marshal(cred)
		path = wh.credentialFile(c)
	case "readonly":
		path = wh.f.path(c.name + "-readonly.token")
	}
	if err := writeFile(path, append(data, '\n'), 0o600); err != nil {
		return "", err
	}
	wh.valid[t] = issuedToken{c.name, kind}
	return t, nil
}

// current is the newest valid token of kind for c.
func (wh *tokenWebhook) current(c *cluster, kind string) string {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	for t, it := range wh.valid {
		if it.cluster == c.name && it.kind == kind {
			return t
		}
	}
	return ""
}

func (wh *tokenWebhook) isAdmin(t string) bool {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	return wh.valid[t].kind == "admin"
}

// expire refuses c's tokens of kind from now on and returns once the server
// refuses them too (its own cache of accepted tokens has run out).
func (wh *tokenWebhook) expire(c *cluster, kind string, rotate bool) (any, error) {
	wh.mu.Lock()
	var until time.Time
	for t, it := range wh.valid {
		if it.cluster == c.name && it.kind == kind {
			delete(wh.valid, t)
			wh.expired[t] = it
			if ok := wh.lastOK[t].Add(serverTokenCache + 100*time.Millisecond); ok.After(until) {
				until = ok
			}
		}
	}
	var tok any
	var err error
	if rotate {
		tok, err = wh.rotate(c, kind)
	}
	wh.mu.Unlock()
	time.Sleep(time.Until(until)) // the server's cache: a duration, not an event to wait for
	return tok, err
}

func (wh *tokenWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/authenticate/")
	c := wh.f.byName[name]
	var review struct {
		APIVersion string `json:"apiVersion"`
		Spec       struct {
			Token string `json:"token"`
		} `json:"spec"`
	}
	if c == nil || json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&review) != nil {
		http.Error(w, "bad TokenReview", 400)
		return
	}
	status := map[string]any{"authenticated": false}
	wh.mu.Lock()
	if it, ok := wh.valid[review.Spec.Token]; ok && it.cluster == name {
		status = map[string]any{"authenticated": true, "user": tokenUsers[it.kind]}
		wh.lastOK[review.Spec.Token] = time.Now()
	} else if it, ok := wh.expired[review.Spec.Token]; ok && it.cluster == name && it.kind == "exec" {
		// the plugin's credential expired: its next run gets a fresh one
		delete(wh.expired, review.Spec.Token)
		fresh := true
		for _, v := range wh.valid {
			fresh = fresh && !(v.cluster == name && v.kind == "exec")
		}
		if fresh {
			wh.rotate(c, "exec")
		}
	}
	wh.mu.Unlock()
	reply(w, 200, map[string]any{"apiVersion": review.APIVersion, "kind": "TokenReview", "status": status})
}
