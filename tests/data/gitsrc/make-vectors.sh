#!/bin/sh
# Regenerate the signature test vectors of tests/unit/test-gitsrc.c with the
# real tools: keys from ssh-keygen, commits signed by git (gpg.format=ssh).
# Only public keys are kept; the private keys live in a temporary directory.
# Usage: tests/data/gitsrc/make-vectors.sh   (from anywhere; rewrites 0001-0004)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export GIT_CONFIG_NOSYSTEM=1 HOME="$tmp"
ssh-keygen -q -t ed25519 -N '' -C alice -f "$tmp/alice"
ssh-keygen -q -t ed25519 -N '' -C bob -f "$tmp/bob"
ssh-keygen -q -t rsa -b 2048 -N '' -C carol -f "$tmp/carol"

git init -q -b main "$tmp/repo"
cd "$tmp/repo"
git config user.name 'Alice Admin'
git config user.email alice@example.com
printf 'kind: EgressIntent\n' > intent.yaml
git add intent.yaml
export GIT_AUTHOR_DATE='1767323045 +0100' GIT_COMMITTER_DATE='1767323045 +0100'
git -c gpg.format=ssh -c user.signingkey="$tmp/alice" commit -q -S \
  -m 'prod: scale app to 3' -m 'Egressd-Allow-Prune: 2'

d="$here/0001-signed-ed25519"; mkdir -p "$d"
git cat-file commit HEAD > "$d/commit"
cp "$tmp/alice.pub" "$d/alice.pub"; cp "$tmp/bob.pub" "$d/bob.pub"
ssh-keygen -lf "$tmp/alice.pub" | awk '{print $2}' > "$d/fingerprint"
printf 'alice@example.com %s\n' "$(cat "$tmp/alice.pub")" > "$d/allowed_signers"

d="$here/0002-signed-rsa"; mkdir -p "$d"
git -c gpg.format=ssh -c user.signingkey="$tmp/carol" commit -q -S --allow-empty -m 'rsa signed'
git cat-file commit HEAD > "$d/commit"
printf 'carol@example.com %s\n' "$(cat "$tmp/carol.pub")" > "$d/allowed_signers"

# the payload of 0001 signed for namespace "file" instead of "git"
d="$here/0003-namespace-file"; mkdir -p "$d"
git cat-file commit HEAD~1 | sed '/^gpgsig /,/^ -----END SSH SIGNATURE-----$/d' > "$tmp/payload"
ssh-keygen -q -Y sign -n file -f "$tmp/alice" "$tmp/payload"
{ sed -n '1,3p' "$tmp/payload"
  sed '1s/^/gpgsig /; 2,$s/^/ /' "$tmp/payload.sig"
  sed -n '4,$p' "$tmp/payload"; } > "$d/commit"

# known_hosts: the ed25519 key of 0001 as a host key, plain and hashed
d="$here/0004-known-hosts"; mkdir -p "$d"
printf '[127.0.0.1]:2222 %s\n' "$(cut -d' ' -f1-2 "$tmp/alice.pub")" > "$tmp/kh"
cp "$tmp/kh" "$d/known_hosts_plain"
ssh-keygen -q -H -f "$tmp/kh" >/dev/null 2>&1
cp "$tmp/kh" "$d/known_hosts_hashed"
cp "$tmp/alice.pub" "$d/host.pub"; cp "$tmp/bob.pub" "$d/other.pub"
echo "vectors written to $here"
