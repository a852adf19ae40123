/* The signers a commit signature is checked against: an OpenSSH
 * allowed_signers file and, optionally, revoked keys (a KRL or a list of
 * keys, git's gpg.ssh.revocationFile). Both formats are parsed by
 * daemon/ssh/ (ssh-signers.c, ssh-krl.c), the daemon's one SSH layer; this
 * file only holds them together for gitsrc-verify.c.
 */
#include <errno.h>
#include <stdlib.h>

#include "base/mem.h"
#include "gitsrc/gitsrc-int.h"

int gitsrc_signers_parse(const char *name, const char *text, size_t len,
                         struct gitsrc_signers **ret, struct err *err) {
  struct ssh_signers *allowed = NULL;
  struct gitsrc_signers *s;
  int r;

  if ((r = ssh_signers_parse(name, text, len, 0, &allowed, err)) < 0)
    return r;
  s = xcalloc(1, sizeof(*s));
  s->allowed = allowed;
  *ret = s;
  return 0;
}

int gitsrc_signers_load(const char *path, struct gitsrc_signers **ret, struct err *err) {
  struct ssh_signers *allowed = NULL;
  struct gitsrc_signers *s;
  int r;

  if ((r = ssh_signers_load(path, 0, &allowed, err)) < 0)
    return r;
  s = xcalloc(1, sizeof(*s));
  s->allowed = allowed;
  *ret = s;
  return 0;
}

int gitsrc_signers_set_revoked(struct gitsrc_signers *signers, const char *name, const void *data,
                               size_t len, struct err *err) {
  struct ssh_revoked *revoked = NULL;
  int r;

  if ((r = ssh_revoked_parse(name, data, len, &revoked, err)) < 0)
    return r;
  ssh_revoked_free(signers->revoked);
  signers->revoked = revoked;
  return 0;
}

int gitsrc_signers_load_revoked(struct gitsrc_signers *signers, const char *path,
                                struct err *err) {
  struct ssh_revoked *revoked = NULL;
  int r;

  if ((r = ssh_revoked_load(path, &revoked, err)) < 0)
    return r;
  ssh_revoked_free(signers->revoked);
  signers->revoked = revoked;
  return 0;
}

size_t gitsrc_signers_count(const struct gitsrc_signers *signers) {
  return signers && signers->allowed ? signers->allowed->n : 0;
}

void gitsrc_signers_free(struct gitsrc_signers *s) {
  if (!s)
    return;
  ssh_signers_free(s->allowed);
  ssh_revoked_free(s->revoked);
  free(s);
}
