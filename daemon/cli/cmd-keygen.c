/* egressd keygen: make the ledger signing key.
 *
 * Writes an OpenSSH ed25519 private key (mode 0600, unencrypted: the daemon
 * starts without a human), its .pub, and an allowed_signers file with one
 * line for namespace egressd-ledger, so that
 *   ssh-keygen -Y verify -f FILE.allowed_signers -I PRINCIPAL \
 *       -n egressd-ledger -s checkpoint.sig < checkpoint
 * checks the ledger's checkpoints. The key format lives in
 * daemon/ledger/ledger-key.c; docs in docs/man/egressd-keygen.1.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/mem.h"
#include "base/str.h"
#include "cli/cli.h"
#include "ledger/ledger.h"

#define DEFAULT_KEY EGRESSD_SYSCONFDIR "/ledger_ed25519"

static void usage(FILE *f) {
  fprintf(f, "usage: egressd keygen [-f FILE] [-C COMMENT] [--principal NAME] [--force]\n\n"
             "Make the ledger signing key: an OpenSSH ed25519 private key FILE (mode 0600,\n"
             "no passphrase), FILE.pub and FILE.allowed_signers (for ssh-keygen -Y verify\n"
             "and egressd ledger verify --pubkey).\n\n"
             "  -f, --file FILE       the private key (default %s)\n"
             "  -C, --comment TEXT    key comment (default egressd-ledger@<hostname>)\n"
             "      --principal NAME  allowed_signers principal (default: the comment)\n"
             "      --force           replace existing files\n"
             "  -h, --help            show this help\n",
          DEFAULT_KEY);
}

static int refuse_existing(const char *path, bool force) {
  if (!force && access(path, F_OK) == 0) {
    fprintf(stderr, "egressd keygen: '%s' exists; use --force to replace it\n", path);
    return -EEXIST;
  }
  return 0;
}

int cmd_keygen(int argc, char **argv) {
  static const struct option opts[] = {
      {"file", required_argument, NULL, 'f'}, {"comment", required_argument, NULL, 'C'},
      {"principal", required_argument, NULL, 'p'}, {"force", no_argument, NULL, 'F'},
      {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  const char *file = DEFAULT_KEY, *comment = NULL, *principal = NULL;
  char host[256] = "localhost", fp[LEDGER_FINGERPRINT_SIZE], *pub_path = NULL, *as_path = NULL,
       *default_comment = NULL;
  struct ledger_key *key = NULL;
  struct buf priv = BUF_INIT, pub = BUF_INIT, as = BUF_INIT;
  struct err err = ERR_INIT;
  bool force = false;
  int c, r = CLI_EXIT_USAGE;

  while ((c = getopt_long(argc, argv, "f:C:h", opts, NULL)) != -1) {
    switch (c) {
    case 'f': file = optarg; break;
    case 'C': comment = optarg; break;
    case 'p': principal = optarg; break;
    case 'F': force = true; break;
    case 'h': usage(stdout); return CLI_EXIT_OK;
    default: return cli_usage_error("keygen", "unknown option");
    }
  }
  if (optind != argc)
    return cli_usage_error("keygen", "unexpected argument '%s'", argv[optind]);
  if (str_is_empty(file))
    return cli_usage_error("keygen", "--file needs a path");
  if (!comment) {
    if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
      str_copy(host, sizeof(host), "localhost");
    default_comment = xasprintf("egressd-ledger@%s", host);
    comment = default_comment;
  }
  if (!principal)
    principal = comment;
  if (strpbrk(principal, " \t\n\"") || !principal[0]) {
    r = cli_usage_error("keygen", "the principal '%s' must be one word", principal);
    goto out;
  }
  if (strchr(comment, '\n')) {
    r = cli_usage_error("keygen", "the comment must be one line");
    goto out;
  }
  pub_path = xasprintf("%s.pub", file);
  as_path = xasprintf("%s.allowed_signers", file);
  if (refuse_existing(file, force) < 0 || refuse_existing(pub_path, force) < 0 ||
      refuse_existing(as_path, force) < 0)
    goto out;

  if (ledger_key_generate(comment, &key, &err) < 0)
    goto fail;
  ledger_key_format_private(key, &priv);
  ledger_pubkey_format(ledger_key_public(key), comment, &pub);
  buf_putc(&pub, '\n');
  buf_printf(&as, "%s namespaces=\"%s\" ", principal, LEDGER_NAMESPACE);
  ledger_pubkey_format(ledger_key_public(key), comment, &as);
  buf_putc(&as, '\n');
  if (file_write_atomic(file, priv.data, priv.len, 0600, &err) < 0 ||
      file_write_atomic(pub_path, pub.data, pub.len, 0644, &err) < 0 ||
      file_write_atomic(as_path, as.data, as.len, 0644, &err) < 0)
    goto fail;
  printf("Wrote the ledger signing key %s (mode 0600), %s and %s.\n"
         "Key fingerprint: %s\n"
         "allowed_signers line:\n%s",
         file, pub_path, as_path, ledger_pubkey_fingerprint(ledger_key_public(key), fp),
         buf_cstr(&as));
  r = CLI_EXIT_OK;
  goto out;
fail:
  err_print(&err, stderr, "egressd keygen: ");
  r = CLI_EXIT_USAGE;
out:
  buf_dispose_secret(&priv);
  buf_dispose(&pub);
  buf_dispose(&as);
  ledger_key_free(key);
  free(pub_path);
  free(as_path);
  free(default_comment);
  return r;
}
