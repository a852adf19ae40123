/* Revoked keys, read as `ssh-keygen -Y verify -r FILE` (and so git's
 * gpg.ssh.revocationFile) reads them (sshkey_check_revoked()):
 *
 * - a binary KRL (openssh-portable PROTOCOL.krl) when the file starts with
 *   the magic "SSHKRL\n\0":
 *     u64 magic, u32 format_version (1), u64 krl_version, u64 generated_date,
 *     u64 flags, string reserved, string comment,
 *     then sections: byte type, string data
 *       1 certificates       read and ignored (certificates never verify here)
 *       2 explicit keys      string key_blob ...
 *       3 SHA1 fingerprints  string sha1(key_blob) ...
 *       4 signature          string key, string signature: not checked (a
 *                            KRL only ever removes trust)
 *       5 SHA256 fingerprints string sha256(key_blob) ...
 *     any other section type fails the file, as it fails in ssh-keygen;
 * - otherwise a list of public keys, one "type base64 [comment]" a line
 *   (blank and '#' lines skipped); a line that is not a key fails the file,
 *   as sshkey_in_file() fails.
 * A file that fails to parse revokes nothing and is an error: callers must
 * refuse to verify rather than go on without it.
 * When you change what is read, also touch docs/signing.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "base/mem.h"
#include "base/str.h"
#include "ssh/ssh-int.h"

#define KRL_MAGIC "SSHKRL\n\0"
#define KRL_MAGIC_LEN 8

enum {
  KRL_CERTIFICATES = 1,
  KRL_EXPLICIT_KEY = 2,
  KRL_FINGERPRINT_SHA1 = 3,
  KRL_SIGNATURE = 4,
  KRL_FINGERPRINT_SHA256 = 5,
};

struct ssh_revoked {
  struct ssh_key **keys;
  size_t n_keys, cap_keys;
  uint8_t (*sha1)[20];
  size_t n_sha1, cap_sha1;
  uint8_t (*sha256)[32];
  size_t n_sha256, cap_sha256;
};

void ssh_revoked_free(struct ssh_revoked *rv) {
  if (!rv)
    return;
  for (size_t i = 0; i < rv->n_keys; i++)
    ssh_key_free(rv->keys[i]);
  free(rv->keys);
  free(rv->sha1);
  free(rv->sha256);
  free(rv);
}

static void add_key(struct ssh_revoked *rv, struct ssh_key *key) {
  rv->keys = xgrow(rv->keys, &rv->cap_keys, rv->n_keys + 1, sizeof(*rv->keys));
  rv->keys[rv->n_keys++] = key;
}

static int krl_bad(struct err *err, const char *name, const char *what) {
  return err_set_src(err, -EBADMSG, ERR_SRC_INPUT, "%s: malformed KRL: %s", name, what);
}

/* The strings of a section, each of @want bytes (0: a key blob). */
static int read_entries(struct ssh_revoked *rv, const char *name, const uint8_t *data, size_t len,
                        unsigned type, struct err *err) {
  struct ssh_wire w = {data, len};
  const uint8_t *s;
  size_t n;
  int r;

  while (w.n) {
    if (ssh_wire_string(&w, &s, &n) < 0)
      return krl_bad(err, name, "truncated section");
    if (type == KRL_EXPLICIT_KEY) {
      struct ssh_key *key;
      if ((r = ssh_key_from_blob(s, n, &key, err)) < 0) {
        err_prefix(err, "%s: a key of the KRL", name);
        return -EBADMSG;
      }
      add_key(rv, key);
    } else if (type == KRL_FINGERPRINT_SHA1) {
      if (n != 20)
        return krl_bad(err, name, "a SHA1 fingerprint is not 20 bytes");
      rv->sha1 = xgrow(rv->sha1, &rv->cap_sha1, rv->n_sha1 + 1, sizeof(*rv->sha1));
      memcpy(rv->sha1[rv->n_sha1++], s, 20);
    } else {
      if (n != 32)
        return krl_bad(err, name, "a SHA256 fingerprint is not 32 bytes");
      rv->sha256 = xgrow(rv->sha256, &rv->cap_sha256, rv->n_sha256 + 1, sizeof(*rv->sha256));
      memcpy(rv->sha256[rv->n_sha256++], s, 32);
    }
  }
  return 0;
}

static int parse_krl(struct ssh_revoked *rv, const char *name, const uint8_t *data, size_t len,
                     struct err *err) {
  struct ssh_wire w = {data + KRL_MAGIC_LEN, len - KRL_MAGIC_LEN};
  const uint8_t *s;
  size_t n;
  uint32_t format;
  uint64_t u64;
  bool signed_ = false;
  int r;

  if (ssh_wire_u32(&w, &format) < 0)
    return krl_bad(err, name, "truncated header");
  if (format != 1)
    return err_set_src(err, -EBADMSG, ERR_SRC_INPUT,
                       "%s: unsupported KRL format version %u (1 is)", name, format);
  if (ssh_wire_u64(&w, &u64) < 0 || ssh_wire_u64(&w, &u64) < 0 || ssh_wire_u64(&w, &u64) < 0 ||
      ssh_wire_string(&w, &s, &n) < 0 || ssh_wire_string(&w, &s, &n) < 0)
    return krl_bad(err, name, "truncated header");
  while (w.n) {
    uint8_t type;
    if (ssh_wire_u8(&w, &type) < 0 || ssh_wire_string(&w, &s, &n) < 0)
      return krl_bad(err, name, "truncated section");
    if (signed_ && type != KRL_SIGNATURE)
      return krl_bad(err, name, "a section follows the signature");
    switch (type) {
    case KRL_CERTIFICATES:
      break;
    case KRL_EXPLICIT_KEY:
    case KRL_FINGERPRINT_SHA1:
    case KRL_FINGERPRINT_SHA256:
      if ((r = read_entries(rv, name, s, n, type, err)) < 0)
        return r;
      break;
    case KRL_SIGNATURE:
      signed_ = true;
      break;
    default:
      return err_set_src(err, -EBADMSG, ERR_SRC_INPUT,
                         "%s: unsupported KRL section type %u (ssh-keygen refuses it too)", name,
                         type);
    }
  }
  return 0;
}

static int parse_list(struct ssh_revoked *rv, const char *name, const char *text, size_t len,
                      struct err *err) {
  unsigned line = 0;

  for (size_t off = 0; off < len;) {
    const char *p = text + off, *nl = memchr(p, '\n', len - off);
    size_t n = nl ? (size_t)(nl - p) : len - off, i = 0, type_start, type_len, b64_start;
    struct ssh_key *key;
    struct err sub = ERR_INIT;

    off += n + (nl ? 1 : 0);
    line++;
    if (n && p[n - 1] == '\r')
      n--;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
      i++;
    if (i == n || p[i] == '#')
      continue;
    type_start = i;
    while (i < n && p[i] != ' ' && p[i] != '\t')
      i++;
    type_len = i - type_start;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
      i++;
    b64_start = i;
    while (i < n && p[i] != ' ' && p[i] != '\t')
      i++;
    if (memchr(p, '\0', n) ||
        ssh_key_from_text(p + type_start, type_len, p + b64_start, i - b64_start, &key, &sub) < 0) {
      err_set_src(err, -EBADMSG, ERR_SRC_INPUT,
                  "not a public key line (expected 'type base64 [comment]', or a KRL made by "
                  "ssh-keygen -k): %s",
                  sub.msg[0] ? sub.msg : "NUL byte");
      err_set_pos(err, name, line, (unsigned)type_start + 1);
      return -EBADMSG;
    }
    add_key(rv, key);
  }
  return 0;
}

int ssh_revoked_parse(const char *name, const void *data, size_t len, struct ssh_revoked **ret,
                      struct err *err) {
  struct ssh_revoked *rv;
  int r;

  if (len > SSH_REVOKED_MAX_BYTES)
    return err_set_src(err, -E2BIG, ERR_SRC_INPUT,
                       "%s is %zu bytes, larger than the limit of %u bytes", name, len,
                       SSH_REVOKED_MAX_BYTES);
  rv = xcalloc(1, sizeof(*rv));
  if (len >= KRL_MAGIC_LEN && memcmp(data, KRL_MAGIC, KRL_MAGIC_LEN) == 0)
    r = parse_krl(rv, name, data, len, err);
  else
    r = parse_list(rv, name, data, len, err);
  if (r < 0) {
    ssh_revoked_free(rv);
    return r;
  }
  *ret = rv;
  return 0;
}

int ssh_revoked_load(const char *path, struct ssh_revoked **ret, struct err *err) {
  struct buf b = BUF_INIT;
  int r;

  r = file_read_all(path, SSH_REVOKED_MAX_BYTES, &b, err);
  if (r >= 0)
    r = ssh_revoked_parse(path, b.data ? b.data : "", b.len, ret, err);
  buf_dispose(&b);
  return r;
}

bool ssh_revoked_contains(const struct ssh_revoked *rv, const struct ssh_key *key) {
  uint8_t h1[20], h256[32];

  if (!rv || !key)
    return false;
  for (size_t i = 0; i < rv->n_keys; i++)
    if (ssh_key_equal(rv->keys[i], key))
      return true;
  if (rv->n_sha1) {
    ssh_sha1(key->blob, key->blob_len, h1);
    for (size_t i = 0; i < rv->n_sha1; i++)
      if (memcmp(rv->sha1[i], h1, sizeof(h1)) == 0)
        return true;
  }
  if (rv->n_sha256) {
    ssh_sha256(key->blob, key->blob_len, h256);
    for (size_t i = 0; i < rv->n_sha256; i++)
      if (memcmp(rv->sha256[i], h256, sizeof(h256)) == 0)
        return true;
  }
  return false;
}

size_t ssh_revoked_count(const struct ssh_revoked *rv) {
  return rv ? rv->n_keys + rv->n_sha1 + rv->n_sha256 : 0;
}
