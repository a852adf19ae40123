/* OpenSSH known_hosts checking for the SSH transport. libgit2 1.5 hands the
 * server's host key to the certificate callback but reads no known_hosts
 * file itself, so egressd checks it here (sshd(8) "SSH_KNOWN_HOSTS FILE
 * FORMAT"):
 *
 *   [@revoked|@cert-authority] hostpatterns keytype base64-key [comment]
 *
 * hostpatterns is a comma-separated pattern-list (case-insensitive, '!'
 * negation) or a hashed entry "|1|base64(salt)|base64(HMAC-SHA1(salt, name))";
 * name is "host" on port 22 and "[host]:port" otherwise.
 * Invariants: the text is bounded by the caller (GITSRC_KNOWN_HOSTS_MAX_BYTES);
 * a malformed line is skipped, as ssh does; @cert-authority lines are
 * ignored (host certificates are not supported), @revoked wins over a match.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/mem.h"
#include "base/str.h"
#include "gitsrc/gitsrc-int.h"

static bool is_ws(char c) { return c == ' ' || c == '\t'; }

static const char *token(const char **p, const char *end, size_t *len) {
  const char *start;

  while (*p < end && is_ws(**p))
    (*p)++;
  start = *p;
  while (*p < end && !is_ws(**p))
    (*p)++;
  *len = (size_t)(*p - start);
  return start;
}

static bool hashed_match(const char *pat, size_t n, const char *name) {
  const char *sep;
  unsigned char *salt = NULL, *hash = NULL, mac[EVP_MAX_MD_SIZE];
  size_t salt_len = 0, hash_len = 0;
  unsigned int mac_len = 0;
  bool ok = false;

  if (n < 4 || memcmp(pat, "|1|", 3) != 0)
    return false;
  pat += 3;
  n -= 3;
  sep = memchr(pat, '|', n);
  if (!sep)
    return false;
  if (ssh_b64_decode(pat, (size_t)(sep - pat), NULL, &salt, &salt_len) == 0 &&
      ssh_b64_decode(sep + 1, n - (size_t)(sep - pat) - 1, NULL, &hash, &hash_len) == 0 &&
      salt_len == 20 && hash_len == 20 &&
      HMAC(EVP_sha1(), salt, (int)salt_len, (const unsigned char *)name, strlen(name), mac,
           &mac_len) != NULL &&
      mac_len == 20 && CRYPTO_memcmp(mac, hash, 20) == 0)
    ok = true;
  free(salt);
  free(hash);
  return ok;
}

static bool host_match(const char *pat, size_t n, const char *name_lower) {
  char *list;
  bool ok;

  if (n > 0 && pat[0] == '|')
    return hashed_match(pat, n, name_lower);
  list = xstrndup(pat, n);
  for (char *c = list; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  ok = ssh_pattern_list_match(name_lower, list) == 1;
  free(list);
  return ok;
}

int gitsrc_known_hosts_check(const char *file, const char *text, size_t len, const char *host,
                             int port, const unsigned char *key, size_t key_len,
                             const unsigned char *sha256, struct err *err) {
  const char *p = text, *end = text + len;
  char *name;
  bool matched = false, known = false;
  unsigned line = 0, revoked_line = 0, known_line = 0;

  if (len > GITSRC_KNOWN_HOSTS_MAX_BYTES)
    return err_set_src(err, -E2BIG, ERR_SRC_INPUT, "%s is larger than %u bytes", file,
                       GITSRC_KNOWN_HOSTS_MAX_BYTES);
  name = port > 0 && port != 22 ? xasprintf("[%s]:%d", host, port) : xstrdup(host);
  for (char *c = name; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  while (p < end && !revoked_line) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *q = p, *hosts, *type, *b64;
    size_t hn, tn, bn;
    bool revoked = false, ca = false;
    unsigned char *blob = NULL;
    size_t blob_len = 0;

    if (!eol)
      eol = end;
    line++;
    hosts = token(&q, eol, &hn);
    if (hn == 0 || hosts[0] == '#')
      goto next;
    if (hosts[0] == '@') {
      if (hn == 8 && memcmp(hosts, "@revoked", 8) == 0)
        revoked = true;
      else if (hn == 15 && memcmp(hosts, "@cert-authority", 15) == 0)
        ca = true;
      else
        goto next;
      hosts = token(&q, eol, &hn);
    }
    type = token(&q, eol, &tn);
    b64 = token(&q, eol, &bn);
    if (hn == 0 || tn == 0 || bn == 0 || ca || !host_match(hosts, hn, name))
      goto next;
    if (bn > 2 * SSH_KEY_MAX_BLOB || ssh_b64_decode(b64, bn, NULL, &blob, &blob_len) < 0)
      goto next;
    {
      char blob_type[64];
      ssh_blob_type(blob, blob_len, blob_type, sizeof(blob_type));
      if (strlen(blob_type) != tn || memcmp(blob_type, type, tn) != 0) {
        free(blob); /* the written type and the key disagree: a broken line */
        goto next;
      }
    }
    {
      bool same;
      if (key) {
        same = blob_len == key_len && memcmp(blob, key, key_len) == 0;
      } else {
        unsigned char d[32];
        unsigned int dn = 0;
        same = EVP_Digest(blob, blob_len, d, &dn, EVP_sha256(), NULL) == 1 && dn == 32 &&
               memcmp(d, sha256, 32) == 0;
      }
      if (same && revoked)
        revoked_line = line;
      else if (same && !revoked)
        matched = true;
      else if (!revoked && !known) {
        known = true;
        known_line = line;
      }
    }
    free(blob);
  next:
    p = eol < end ? eol + 1 : end;
  }
  if (revoked_line) {
    err_set_src(err, -EKEYREJECTED, ERR_SRC_INPUT,
                "the host key of %s is marked @revoked in %s:%u", name, file, revoked_line);
  } else if (!matched && known) {
    err_set_src(err, -EKEYREJECTED, ERR_SRC_INPUT,
                "the host key of %s does not match %s:%u: the server may have been replaced "
                "or someone is intercepting the connection",
                name, file, known_line);
  } else if (!matched) {
    err_set_src(err, -ENOKEY, ERR_SRC_INPUT, "no host key for %s in %s", name, file);
  }
  free(name);
  if (revoked_line || !matched)
    return revoked_line || known ? -EKEYREJECTED : -ENOKEY;
  return 0;
}
