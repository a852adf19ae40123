"""The CA, server and client certificates, made once per start with openssl(1).

EC P-256 keys keep generation fast (well under the 2 s start budget).
"""
import os
import subprocess

OPENSSL = "openssl"


def _run(args, cwd):
    subprocess.run([OPENSSL] + args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_pki(d, server_names=("localhost", "kubesim.test"), clients=(("cert-admin", "system:masters"),)):
    """Write ca.crt/ca.key, server.crt/key and client-<cn>.crt/key under d; return the paths."""
    os.makedirs(d, exist_ok=True)
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run(["req", "-x509"] + curve + ["-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
                                     "-subj", "/CN=kubesim-ca", "-addext", "basicConstraints=critical,CA:TRUE",
                                     "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    san = ",".join(["IP:127.0.0.1", "IP:::1"] + ["DNS:%s" % n for n in server_names])
    _run(["req", "-x509"] + curve + ["-keyout", "server.key", "-out", "server.crt", "-days", "3650",
                                     "-subj", "/CN=kube-apiserver", "-CA", "ca.crt", "-CAkey", "ca.key",
                                     "-addext", "subjectAltName=" + san,
                                     "-addext", "extendedKeyUsage=serverAuth",
                                     "-addext", "basicConstraints=critical,CA:FALSE"], d)
    out = {"ca": os.path.join(d, "ca.crt"), "server_crt": os.path.join(d, "server.crt"),
           "server_key": os.path.join(d, "server.key"), "clients": {}}
    for cn, org in clients:
        subj = "/O=%s/CN=%s" % (org, cn) if org else "/CN=%s" % cn
        _run(["req", "-x509"] + curve + ["-keyout", "client-%s.key" % cn, "-out", "client-%s.crt" % cn,
                                         "-days", "3650", "-subj", subj, "-CA", "ca.crt", "-CAkey", "ca.key",
                                         "-addext", "extendedKeyUsage=clientAuth",
                                         "-addext", "basicConstraints=critical,CA:FALSE"], d)
        out["clients"][cn] = (os.path.join(d, "client-%s.crt" % cn), os.path.join(d, "client-%s.key" % cn))
    os.chmod(os.path.join(d, "ca.key"), 0o600)
    return out
