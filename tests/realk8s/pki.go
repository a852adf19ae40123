package main

// The test PKI, made fresh at every start: one CA signs the serving
// certificate (IP SANs 127.0.0.1 and ::1, so clients verify it without
// insecure flags), the admin client certificate (CN cert-admin, O
// system:masters, as kubesim's) and nothing else; the service-account key
// pair is separate. ECDSA P-256 keeps generation fast.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

type pki struct {
	dir        string // DIR/pki
	caCert     string // DIR/ca.crt (what clients trust)
	serverCert string
	serverKey  string
	clientCert string // pki/client-cert-admin.crt
	clientKey  string
	saKey      string // service-account signing key
	saPub      string
}

type issued struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), mode)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err)
	}
	return n
}

func sign(tmpl *x509.Certificate, parent *issued) (*issued, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(10 * 365 * 24 * time.Hour)
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, signer)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return &issued{cert, key}, der, nil
}

// makePKI writes the CA, serving, client and service-account keys under dir.
func makePKI(dir string) (*pki, error) {
	p := &pki{dir: filepath.Join(dir, "pki"), caCert: filepath.Join(dir, "ca.crt")}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, err
	}
	ca, caDER, err := sign(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "realk8s-ca"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil)
	if err != nil {
		return nil, err
	}
	if err := writePEM(p.caCert, "CERTIFICATE", caDER, 0o644); err != nil {
		return nil, err
	}
	if err := writeKey(filepath.Join(p.dir, "ca.key"), ca.key); err != nil {
		return nil, err
	}

	leaves := []struct {
		tmpl      *x509.Certificate
		cert, key *string
		name      string
	}{
		{&x509.Certificate{
			Subject:     pkix.Name{CommonName: "kube-apiserver"},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("10.96.0.1")},
			// kubesim.test: the name kubesim's certificate carries, for tests of tls-server-name
			DNSNames: []string{"localhost", "kubesim.test", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc.cluster.local"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			KeyUsage:    x509.KeyUsageDigitalSignature,
		}, &p.serverCert, &p.serverKey, "server"},
		{&x509.Certificate{
			Subject:     pkix.Name{CommonName: "cert-admin", Organization: []string{"system:masters"}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			KeyUsage:    x509.KeyUsageDigitalSignature,
		}, &p.clientCert, &p.clientKey, "client-cert-admin"},
	}
	for _, l := range leaves {
		leaf, der, err := sign(l.tmpl, ca)
		if err != nil {
			return nil, err
		}
		*l.cert = filepath.Join(p.dir, l.name+".crt")
		*l.key = filepath.Join(p.dir, l.name+".key")
		if err := writePEM(*l.cert, "CERTIFICATE", der, 0o644); err != nil {
			return nil, err
		}
		if err := writeKey(*l.key, leaf.key); err != nil {
			return nil, err
		}
	}

	sa, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	p.saKey = filepath.Join(p.dir, "sa.key")
	p.saPub = filepath.Join(p.dir, "sa.pub")
	if err := writeKey(p.saKey, sa); err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return nil, err
	}
	return p, writePEM(p.saPub, "PUBLIC KEY", pub, 0o644)
}

// writeFile writes atomically (a temporary file renamed into place), so a
// reader never sees half a file.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
