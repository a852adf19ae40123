#!/bin/sh
# Regenerate the vectors of tests/unit/test-ssh.c with the real tools: keys
# and signatures from ssh-keygen, KRLs from ssh-keygen -k, and the
# signatures ssh-keygen cannot make (FIDO keys, ssh-rsa SHA-1, a non-empty
# reserved field) from tests/integration/sshsiglib.py, each of them then
# checked (or refused) by ssh-keygen -Y verify here. Only public keys are kept.
# Usage: tests/data/ssh/make-vectors.sh   (from anywhere; rewrites this directory)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
lib=$(cd "$here/../../integration" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'the message\n' > "$here/message"

for k in ed25519:ed25519: rsa2048:rsa:2048 rsa1024:rsa:1024 ecdsa256:ecdsa:256 \
         ecdsa384:ecdsa:384 ecdsa521:ecdsa:521; do
  name=${k%%:*}; rest=${k#*:}; type=${rest%%:*}; bits=${rest#*:}
  ssh-keygen -q -t "$type" ${bits:+-b "$bits"} -N '' -C "$name" -f "$tmp/$name"
  cp "$tmp/$name.pub" "$here/$name.pub"
  ssh-keygen -lf "$tmp/$name.pub" | awk '{print $2}' > "$here/$name.fingerprint"
  ssh-keygen -q -Y sign -n file -f "$tmp/$name" < "$here/message" > "$here/$name.sig"
done

# signatures made in Python, each checked against ssh-keygen's verdict
/usr/bin/python3 - "$tmp" "$here" "$lib" <<'PY'
import subprocess, sys
tmp, here, lib = sys.argv[1:4]
sys.path.insert(0, lib)
import sshsiglib as s
msg = open(here + "/message", "rb").read()

def out(name, key, want_ok, **kw):
    sig = s.sshsig(key, msg, "file", **kw)
    open(here + "/" + name + ".sig", "w").write(sig)
    open(tmp + "/as", "w").write("x " + key.public_line() + "\n")
    ok = subprocess.run(["ssh-keygen", "-q", "-Y", "verify", "-f", tmp + "/as", "-I", "x",
                         "-n", "file", "-s", here + "/" + name + ".sig"],
                        stdin=open(here + "/message"),
                        stderr=subprocess.DEVNULL).returncode == 0
    assert ok == want_ok, (name, ok)

ed = s.Key.load(tmp + "/ed25519")
rsa = s.Key.load(tmp + "/rsa2048")
out("reserved-blob", ed, True, reserved_blob=b"ignored by OpenSSH")
out("reserved-signed", ed, False, reserved_blob=b"x", reserved_signed=b"x")
out("rsa-sha1", rsa, False, rsa_alg="ssh-rsa")
out("rsa-sha256", rsa, True, rsa_alg="rsa-sha2-256", hash_alg="sha256")
for kind in ("sk-ed25519", "sk-ecdsa"):
    k = s.Key.generate(kind)
    open(here + "/" + kind + ".pub", "w").write(k.public_line(kind) + "\n")
    out(kind + "-up", k, True, sk_flags=s.SK_USER_PRESENCE, counter=41)
    out(kind + "-none", k, True, sk_flags=0, counter=42)
    out(kind + "-upuv", k, True, sk_flags=s.SK_USER_PRESENCE | s.SK_USER_VERIFIED, counter=43)
PY

# revocation: a KRL of explicit keys, a KRL of a SHA256 fingerprint, a list
ssh-keygen -q -k -f "$here/explicit.krl" "$tmp/rsa2048.pub" "$tmp/ecdsa256.pub"
printf 'hash: %s\n' "$(cat "$here/ed25519.fingerprint")" > "$tmp/spec"
ssh-keygen -q -k -f "$here/sha256.krl" "$tmp/spec"
{ echo '# revoked'; echo; cat "$tmp/ecdsa384.pub"; } > "$here/revoked.list"
echo "vectors written to $here"
