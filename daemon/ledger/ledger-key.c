/* The ledger signing key: OpenSSH private keys (openssh-key-v1, PROTOCOL.key
 * in openssh-portable), public key lines, fingerprints, and the trusted keys
 * of a .pub or allowed_signers file (ssh-keygen(1) ALLOWED SIGNERS), read by
 * daemon/ssh/'s one allowed_signers parser (the one gitsrc/ uses).
 *
 * Invariants: secret key bytes live only in sodium_malloc'd memory (struct
 * ledger_key) or in buffers wiped before they are freed; no message ever
 * quotes key material other than public keys and fingerprints. Only
 * unencrypted ssh-ed25519 keys are accepted: a passphrase needs a human at
 * start-up, which a daemon does not have.
 *
 * When you change the private key layout, also touch `egressd keygen`
 * (daemon/cli/cmd-keygen.c) and the ssh-keygen interop tests.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/fileio.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "ledger/ledger-int.h"
#include "ssh/ssh.h"

#define KEY_FILE_MAX (16u * 1024u)
#define COMMENT_MAX 255
#define AUTH_MAGIC "openssh-key-v1"   /* followed by a NUL */

struct ledger_key {
  uint8_t sk[crypto_sign_SECRETKEYBYTES];   /* seed || public key */
  struct ledger_pubkey pub;
  char comment[COMMENT_MAX + 1];
};

static const char passphrase_hint[] =
    "passphrase-protected keys are not supported; create one with "
    "`ssh-keygen -t ed25519 -N ''` or `egressd keygen`";

static struct ledger_key *key_alloc(void) {
  struct ledger_key *k = sodium_malloc(sizeof(*k));

  if (!k)
    abort();   /* out of (lockable) memory: the one allocator policy of base/mem.c */
  sodium_memzero(k, sizeof(*k));
  return k;
}

void ledger_key_free(struct ledger_key *k) {
  if (k)
    sodium_free(k);   /* wipes */
}

struct ledger_key *key_dup(const struct ledger_key *k) {
  struct ledger_key *c = key_alloc();

  memcpy(c, k, sizeof(*c));
  return c;
}

const struct ledger_pubkey *ledger_key_public(const struct ledger_key *k) { return &k->pub; }
const char *ledger_key_comment(const struct ledger_key *k) { return k->comment; }

void key_sshsig_sign(const struct ledger_key *k, const char *ns, const void *msg, size_t len,
                     struct buf *out) {
  ssh_sig_sign_ed25519(k->sk, ns, msg, len, out);
}

static void set_comment(struct ledger_key *k, const char *s, size_t len) {
  size_t n = 0;

  /* a comment is one printable line; anything else is dropped */
  for (size_t i = 0; i < len && n < COMMENT_MAX; i++)
    if ((unsigned char)s[i] >= 0x20 && s[i] != 0x7f)
      k->comment[n++] = s[i];
  k->comment[n] = '\0';
}

int ledger_key_generate(const char *comment, struct ledger_key **ret, struct err *err) {
  struct ledger_key *k;
  int r = crypto_ready(err);

  if (r < 0)
    return r;
  k = key_alloc();
  crypto_sign_keypair(k->pub.pk, k->sk);
  set_comment(k, comment ? comment : "", comment ? strlen(comment) : 0);
  *ret = k;
  return 0;
}

static bool bytes_is(const uint8_t *s, size_t len, const char *lit) {
  return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/* Parse the decoded openssh-key-v1 blob into @k. */
static int parse_blob(const uint8_t *blob, size_t len, const char *name, struct ledger_key *k,
                      struct err *err) {
  struct wire w = {blob, len}, priv, pubw;
  const uint8_t *cipher, *kdf, *kdfopts, *pubblob, *privblob, *type, *pk, *sk, *comment;
  size_t cipher_len, kdf_len, kdfopts_len, pub_len, priv_len, type_len, pk_len, sk_len,
      comment_len;
  uint32_t nkeys, check1, check2;
  uint8_t derived_pk[crypto_sign_PUBLICKEYBYTES], derived_sk[crypto_sign_SECRETKEYBYTES];
  char shown[48];
  int r;

  if (len < sizeof(AUTH_MAGIC) || memcmp(blob, AUTH_MAGIC, sizeof(AUTH_MAGIC)) != 0)
    return err_set_src(err, -EINVAL, ERR_SRC_SIG, "'%s' is not an OpenSSH private key (no %s "
                       "magic)", name, AUTH_MAGIC);
  w.p += sizeof(AUTH_MAGIC);
  w.n -= sizeof(AUTH_MAGIC);
  if (wire_string(&w, &cipher, &cipher_len) < 0 || wire_string(&w, &kdf, &kdf_len) < 0 ||
      wire_string(&w, &kdfopts, &kdfopts_len) < 0 || wire_u32(&w, &nkeys) < 0)
    return err_set_src(err, -EINVAL, ERR_SRC_SIG, "'%s': truncated OpenSSH private key", name);
  if (!bytes_is(cipher, cipher_len, "none") || !bytes_is(kdf, kdf_len, "none"))
    return err_set_src(err, -EINVAL, ERR_SRC_SIG, "'%s': %s", name, passphrase_hint);
  if (nkeys != 1)
    return err_set_src(err, -EINVAL, ERR_SRC_SIG, "'%s' holds %u keys; the ledger needs a file "
                       "with exactly one", name, nkeys);
  if (wire_string(&w, &pubblob, &pub_len) < 0 || wire_string(&w, &privblob, &priv_len) < 0 ||
      w.n != 0)
    return err_set_src(err, -EINVAL, ERR_SRC_SIG, "'%s': malformed OpenSSH private key", name);
  pubw = (struct wire){pubblob, pub_len};
  if (wire_string(&pubw, &type, &type_len) < 0)
    return err_set_src(err, -EINVAL, ERR_SRC_SIG, "'%s': malformed public key", name);
  if (!bytes_is(type, type_len, "ssh-ed25519"))
    return err_set_src(err, -EINVAL, ERR_SRC_SIG, "'%s' is a %s key; the ledger needs an "
                       "ssh-ed25519 key (ssh-keygen -t ed25519 -N '' or egressd keygen)", name,
                       wire_printable(type, type_len, shown, sizeof(shown)));
  r = pubkey_from_blob(pubblob, pub_len, &k->pub, err);
  if (r < 0) {
    err_prefix(err, "'%s'", name);
    return -EINVAL;
  }

  /* the private section: checkints, the key again, the comment, padding */
  priv = (struct wire){privblob, priv_len};
  if (priv_len % 8 != 0 || wire_u32(&priv, &check1) < 0 || wire_u32(&priv, &check2) < 0)
    return err_set_src(err, -EINVAL, ERR_SRC_SIG, "'%s': malformed private section", name);
  if (check1 != check2)
    return err_set_src(err, -EINVAL, ERR_SRC_SIG, "'%s': the private section does not check "
                       "out (corrupt, or encrypted: %s)", name, passphrase_hint);
  if (!wire_string_is(&priv, "ssh-ed25519") || wire_string(&priv, &pk, &pk_len) < 0 ||
      pk_len != 32 || wire_string(&priv, &sk, &sk_len) < 0 || sk_len != 64 ||
      wire_string(&priv, &comment, &comment_len) < 0)
    return err_set_src(err, -EINVAL, ERR_SRC_SIG, "'%s': malformed ssh-ed25519 private key", name);
  for (size_t i = 0; i < priv.n; i++)
    if (priv.p[i] != (uint8_t)(i + 1))
      return err_set_src(err, -EINVAL, ERR_SRC_SIG, "'%s': bad padding in the private section",
                         name);
  if (memcmp(pk, k->pub.pk, 32) != 0 || memcmp(sk + 32, pk, 32) != 0)
    return err_set_src(err, -EINVAL, ERR_SRC_SIG, "'%s': the private and public halves of the "
                       "key differ", name);
  /* the seed must really produce this public key */
  crypto_sign_seed_keypair(derived_pk, derived_sk, sk);
  sodium_memzero(derived_sk, sizeof(derived_sk));
  if (memcmp(derived_pk, pk, 32) != 0)
    return err_set_src(err, -EINVAL, ERR_SRC_SIG, "'%s': the private key does not match its "
                       "public key", name);
  memcpy(k->sk, sk, 64);
  set_comment(k, (const char *)comment, comment_len);
  return 0;
}

int ledger_key_parse(const char *data, size_t len, const char *name, struct ledger_key **ret,
                     struct err *err) {
  struct ledger_key *k;
  uint8_t *blob = NULL;
  size_t blob_len = 0;
  int r;

  r = crypto_ready(err);
  if (r < 0)
    return r;
  if (len > KEY_FILE_MAX)
    return err_set_src(err, -EINVAL, ERR_SRC_SIG, "'%s' is larger than %u bytes; not a key", name,
                       KEY_FILE_MAX);
  if (!memmem(data, len, "-----BEGIN OPENSSH PRIVATE KEY-----", 35)) {
    if (memmem(data, len, "ENCRYPTED", 9))
      return err_set_src(err, -EINVAL, ERR_SRC_SIG, "'%s': %s", name, passphrase_hint);
    return err_set_src(err, -EINVAL, ERR_SRC_SIG, "'%s' is not an OpenSSH private key; create one "
                       "with `ssh-keygen -t ed25519 -N ''` or `egressd keygen`", name);
  }
  r = armor_decode(data, len, "OPENSSH PRIVATE KEY", name, &blob, &blob_len, err);
  if (r < 0)
    return -EINVAL;
  k = key_alloc();
  r = parse_blob(blob, blob_len, name, k, err);
  sodium_memzero(blob, blob_len);
  free(blob);
  if (r < 0) {
    ledger_key_free(k);
    return r;
  }
  *ret = k;
  return 0;
}

int ledger_key_load(const char *path, struct ledger_key **ret, struct err *err) {
  struct buf text = BUF_INIT;
  int r;

  r = file_read_all(path, KEY_FILE_MAX, &text, err);
  if (r >= 0)
    r = ledger_key_parse(text.data ? text.data : "", text.len, path, ret, err);
  buf_dispose_secret(&text);
  return r;
}

void ledger_key_format_private(const struct ledger_key *k, struct buf *out) {
  struct buf blob = BUF_INIT, priv = BUF_INIT, pub = BUF_INIT;
  uint32_t check = randombytes_random();

  pubkey_blob(&k->pub, &pub);
  wire_put_u32(&priv, check);
  wire_put_u32(&priv, check);
  wire_put_cstr(&priv, "ssh-ed25519");
  wire_put_string(&priv, k->pub.pk, 32);
  wire_put_string(&priv, k->sk, 64);
  wire_put_cstr(&priv, k->comment);
  for (uint8_t pad = 1; priv.len % 8 != 0; pad++)
    buf_putc(&priv, (char)pad);

  buf_append(&blob, AUTH_MAGIC, sizeof(AUTH_MAGIC));
  wire_put_cstr(&blob, "none");
  wire_put_cstr(&blob, "none");
  wire_put_cstr(&blob, "");
  wire_put_u32(&blob, 1);
  wire_put_string(&blob, pub.data, pub.len);
  wire_put_string(&blob, priv.data, priv.len);

  buf_puts(out, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
  b64_append_wrapped(out, blob.data, blob.len, 70);
  buf_puts(out, "-----END OPENSSH PRIVATE KEY-----\n");
  buf_dispose_secret(&priv);
  buf_dispose_secret(&blob);
  buf_dispose(&pub);
}

void ledger_pubkey_format(const struct ledger_pubkey *pk, const char *comment, struct buf *out) {
  struct buf blob = BUF_INIT;

  pubkey_blob(pk, &blob);
  buf_puts(out, "ssh-ed25519 ");
  b64_append(out, blob.data, blob.len);
  if (!str_is_empty(comment)) {
    buf_putc(out, ' ');
    buf_puts(out, comment);
  }
  buf_dispose(&blob);
}

static size_t token(const char *s, size_t len, size_t *pos, const char **ret) {
  size_t start;
  bool quoted = false;

  while (*pos < len && (s[*pos] == ' ' || s[*pos] == '\t'))
    (*pos)++;
  start = *pos;
  while (*pos < len && (quoted || (s[*pos] != ' ' && s[*pos] != '\t'))) {
    if (s[*pos] == '"')
      quoted = !quoted;
    (*pos)++;
  }
  *ret = s + start;
  return *pos - start;
}

static int parse_key_tokens(const char *type, size_t type_len, const char *b64, size_t b64_len,
                            struct ledger_pubkey *ret, struct err *err) {
  struct ssh_key *key = NULL;
  char shown[48];

  if (type_len != 11 || memcmp(type, "ssh-ed25519", 11) != 0)
    return err_set_src(err, -ENOTSUP, ERR_SRC_SIG, "a %s key; only ssh-ed25519 keys can sign the "
                       "ledger", wire_printable((const uint8_t *)type, type_len, shown,
                                                sizeof(shown)));
  if (ssh_key_from_text(type, type_len, b64, b64_len, &key, err) < 0)
    return -EINVAL;
  memcpy(ret->pk, key->pk, sizeof(ret->pk));
  ssh_key_free(key);
  return 0;
}

int ledger_pubkey_parse(const char *line, size_t len, struct ledger_pubkey *ret, struct err *err) {
  const char *type, *b64;
  size_t pos = 0, type_len, b64_len;

  while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
    len--;
  type_len = token(line, len, &pos, &type);
  b64_len = token(line, len, &pos, &b64);
  if (!type_len || !b64_len)
    return err_set_src(err, -EINVAL, ERR_SRC_SIG, "not a public key line "
                       "(expected 'ssh-ed25519 AAAA... [comment]')");
  return parse_key_tokens(type, type_len, b64, b64_len, ret, err);
}

const char *ledger_pubkey_fingerprint(const struct ledger_pubkey *pk,
                                      char out[LEDGER_FINGERPRINT_SIZE]) {
  struct buf blob = BUF_INIT;

  pubkey_blob(pk, &blob);
  ssh_blob_fingerprint(blob.data, blob.len, out);
  buf_dispose(&blob);
  return out;
}

bool ledger_pubkey_equal(const struct ledger_pubkey *a, const struct ledger_pubkey *b) {
  return sodium_memcmp(a->pk, b->pk, sizeof(a->pk)) == 0;
}

/* ---- trusted keys: .pub and allowed_signers files ---- */

struct trust_entry {
  struct ledger_pubkey pk;
  char *principals;   /* NULL for a .pub line */
};

struct ledger_trust {
  struct trust_entry *items;
  size_t n, cap;
};

void ledger_trust_free(struct ledger_trust *t) {
  if (!t)
    return;
  for (size_t i = 0; i < t->n; i++)
    free(t->items[i].principals);
  free(t->items);
  free(t);
}

size_t ledger_trust_count(const struct ledger_trust *t) { return t ? t->n : 0; }

bool ledger_trust_allows(const struct ledger_trust *t, const struct ledger_pubkey *pk,
                         const char **ret_principal) {
  for (size_t i = 0; t && i < t->n; i++)
    if (ledger_pubkey_equal(&t->items[i].pk, pk)) {
      if (ret_principal)
        *ret_principal = t->items[i].principals;
      return true;
    }
  return false;
}

static void fmt_time(char *out, size_t size, int64_t t) {
  time_format_rfc3339(out, size, (uint64_t)(t < 0 ? 0 : t) * USEC_PER_SEC);
}

int ledger_trust_parse(const char *data, size_t len, const char *name, uint64_t now_usec,
                       struct ledger_trust **ret, struct err *err) {
  int64_t now = (int64_t)(now_usec / USEC_PER_SEC);
  struct ssh_signers *signers = NULL;
  struct ledger_trust *t;
  char why[256] = "", when[40];
  size_t skipped = 0;
  int r;

  /* one parser, one behaviour (ssh-signers.c): a bad line fails the file */
  if ((r = ssh_signers_parse(name, data, len, SSH_SIGNERS_BARE_KEYS, &signers, err)) < 0)
    return r;
  t = xcalloc(1, sizeof(*t));
  for (size_t i = 0; i < signers->n; i++) {
    const struct ssh_signer *e = &signers->entries[i];
    if (e->key->type != SSH_KEY_ED25519) {
      str_format(why, sizeof(why), "line %u: a %s key", e->line, e->key->name);
    } else if (e->namespaces && ssh_pattern_list_match(LEDGER_NAMESPACE, e->namespaces) != 1) {
      str_format(why, sizeof(why), "line %u: namespaces=\"%s\" does not include %s", e->line,
                 e->namespaces, LEDGER_NAMESPACE);
    } else if (!ssh_signer_valid_at(e, now)) {
      bool early = e->has_valid_after && now < e->valid_after;
      fmt_time(when, sizeof(when), early ? e->valid_after : e->valid_before);
      str_format(why, sizeof(why), "line %u: %s=%s excludes the current time", e->line,
                 early ? "valid-after" : "valid-before", when);
    } else {
      t->items = xgrow(t->items, &t->cap, t->n + 1, sizeof(*t->items));
      memcpy(t->items[t->n].pk.pk, e->key->pk, sizeof(t->items[t->n].pk.pk));
      t->items[t->n].principals = e->principals ? xstrdup(e->principals) : NULL;
      t->n++;
      continue;
    }
    skipped++;
  }
  ssh_signers_free(signers);
  if (t->n == 0) {
    ledger_trust_free(t);
    if (skipped)
      return err_set_src(err, -ENOKEY, ERR_SRC_INPUT, "'%s' has no usable ssh-ed25519 key for "
                         "namespace %s (%zu skipped; last: %s)", name, LEDGER_NAMESPACE, skipped,
                         why);
    return err_set_src(err, -ENOKEY, ERR_SRC_INPUT, "'%s' has no public key", name);
  }
  *ret = t;
  return 0;
}

int ledger_trust_load(const char *path, struct ledger_trust **ret, struct err *err) {
  struct buf text = BUF_INIT;
  int r;

  r = crypto_ready(err);
  if (r >= 0)
    r = file_read_all(path, SSH_SIGNERS_MAX_BYTES, &text, err);
  if (r >= 0)
    r = ledger_trust_parse(buf_cstr(&text), text.len, path, time_now_real_usec(), ret, err);
  buf_dispose(&text);
  return r;
}
