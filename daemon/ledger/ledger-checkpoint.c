/* Checkpoints: the C2SP tlog-checkpoint note text
 *
 *   <origin>\n<tree size in decimal>\n<base64 RFC 6962 root>\n
 *
 * egressd writes no extension lines and accepts none: a checkpoint is
 * exactly what this file formats, so one tree has one checkpoint text.
 * When you change the text, also touch docs/ledger.md and the ssh-keygen
 * interop test (tests/integration/test_ledger.py).
 */
#include <errno.h>
#include <string.h>

#include "base/fileio.h"
#include "base/str.h"
#include "ledger/ledger-int.h"

int ledger_origin_check(const char *origin, struct err *err) {
  size_t len = strlen(origin);

  if (len == 0 || len > LEDGER_ORIGIN_MAX)
    return err_set_src(err, -EINVAL, ERR_SRC_INPUT, "a ledger origin has 1 to %d characters",
                       LEDGER_ORIGIN_MAX);
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)origin[i];
    if (c <= 0x20 || c >= 0x7f || c == '+')
      return err_set_src(err, -EINVAL, ERR_SRC_INPUT, "ledger origin '%.*s': character %zu is "
                         "not allowed (printable ASCII without spaces or '+', e.g. "
                         "egressd/host.example/ledger)", (int)(len > 64 ? 64 : len), origin,
                         i + 1);
  }
  return 0;
}

static bool all_digits(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return true;
}

void ledger_checkpoint_format(const struct ledger_checkpoint *c, struct buf *out) {
  char root[LEDGER_B64_HASH_SIZE];

  buf_printf(out, "%s\n%llu\n%s\n", c->origin, (unsigned long long)c->size,
             ledger_hash_b64(c->root, root));
}

int ledger_checkpoint_parse(const char *text, size_t len, const char *name,
                            struct ledger_checkpoint *ret, struct err *err) {
  const char *line[3];
  size_t line_len[3], off = 0;
  char size_text[24];
  struct ledger_checkpoint c;
  int r;

  if (len > CHECKPOINT_MAX)
    return err_set_src(err, -EBADMSG, ERR_SRC_LEDGER, "'%s' is larger than %u bytes; not a "
                       "checkpoint", name, CHECKPOINT_MAX);
  for (int i = 0; i < 3; i++) {
    const char *nl = off < len ? memchr(text + off, '\n', len - off) : NULL;
    if (!nl) {
      r = err_set_src(err, -EBADMSG, ERR_SRC_LEDGER, "'%s' has %d complete line%s; a checkpoint "
                      "has three (origin, size, root)", name, i, i == 1 ? "" : "s");
      err_set_pos(err, name, (unsigned)i + 1, 1);
      return r;
    }
    line[i] = text + off;
    line_len[i] = (size_t)(nl - line[i]);
    off += line_len[i] + 1;
  }
  if (off != len) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_LEDGER, "'%s' has text after the root line; egressd "
                    "checkpoints have no extension lines", name);
    err_set_pos(err, name, 4, 1);
    return r;
  }
  if (line_len[0] > LEDGER_ORIGIN_MAX) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_LEDGER, "the origin is longer than %d characters",
                    LEDGER_ORIGIN_MAX);
    err_set_pos(err, name, 1, 1);
    return r;
  }
  memcpy(c.origin, line[0], line_len[0]);
  c.origin[line_len[0]] = '\0';
  if (memchr(line[0], '\0', line_len[0]) || ledger_origin_check(c.origin, NULL) < 0) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_LEDGER, "the origin line is not a valid origin "
                    "(printable ASCII without spaces or '+')");
    err_set_pos(err, name, 1, 1);
    return r;
  }
  if (line_len[1] == 0 || line_len[1] >= sizeof(size_text) ||
      (line_len[1] > 1 && line[1][0] == '0') || !all_digits(line[1], line_len[1])) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_LEDGER, "the size line is not a decimal number without "
                    "leading zeros");
    err_set_pos(err, name, 2, 1);
    return r;
  }
  memcpy(size_text, line[1], line_len[1]);
  size_text[line_len[1]] = '\0';
  if (str_to_u64(size_text, UINT64_MAX - 1, &c.size) < 0) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_LEDGER, "the size line '%s' is not a number",
                    size_text);
    err_set_pos(err, name, 2, 1);
    return r;
  }
  if (ledger_hash_from_b64(line[2], line_len[2], c.root) < 0) {
    r = err_set_src(err, -EBADMSG, ERR_SRC_LEDGER, "the root line is not the base64 of 32 bytes");
    err_set_pos(err, name, 3, 1);
    return r;
  }
  *ret = c;
  return 0;
}

int checkpoint_pair_check(const char *cp_path, const char *sig_path, const char *origin,
                          uint64_t size, const uint8_t root[LEDGER_HASH_SIZE],
                          const struct ledger_pubkey *key, struct err *why) {
  struct buf text = BUF_INIT, sig = BUF_INIT;
  struct ledger_checkpoint cp;
  struct ledger_pubkey signer;
  int r;

  if ((r = file_read_all(cp_path, CHECKPOINT_MAX, &text, why)) < 0 ||
      (r = file_read_all(sig_path, SIGNATURE_MAX, &sig, why)) < 0)
    goto out;
  if ((r = ledger_checkpoint_parse(text.data, text.len, cp_path, &cp, why)) < 0)
    goto out;
  r = -EBADMSG;
  if (!str_eq(cp.origin, origin) || cp.size != size ||
      memcmp(cp.root, root, LEDGER_HASH_SIZE) != 0) {
    err_set(why, r, "'%s' is not the checkpoint of the %llu records present", cp_path,
            (unsigned long long)size);
    goto out;
  }
  if (ledger_sshsig_verify(sig.data, sig.len, LEDGER_NAMESPACE, text.data, text.len, &signer,
                           why) < 0)
    goto out;
  if (!ledger_pubkey_equal(&signer, key)) {
    err_set(why, r, "'%s' is not signed by the ledger's key", sig_path);
    goto out;
  }
  r = 0;
out:
  buf_dispose(&text);
  buf_dispose(&sig);
  return r;
}
