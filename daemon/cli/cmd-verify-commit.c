/* egressd verify-commit [--repo DIR] [--since COMMIT] REV --allowed-signers FILE
 *
 * Check a commit's SSH signature the way the daemon does, so users can test
 * their signing set-up: prints git's "Good "git" signature for ..." line
 * (exit 0) or why the commit is not verified (exit 1). With --since, COMMIT
 * is taken as the commit the daemon applied: REV must descend from it (a
 * rollback or rewritten history is refused) and every commit after COMMIT
 * up to REV is checked (the daemon's policy "all"), through the daemon's
 * own gitsrc_head_check().
 * The verdicts match `git verify-commit` with gpg.ssh.allowedSignersFile set
 * to the same file (docs/signing.md lists the deliberate differences).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "cli/cli.h"
#include "gitsrc/gitsrc.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: egressd verify-commit [--repo DIR] [--since COMMIT] --allowed-signers FILE REV\n\n"
          "Verify the SSH signature of commit REV against an OpenSSH allowed_signers file,\n"
          "without git or ssh-keygen, exactly as the egressd daemon does.\n\n"
          "  -r, --repo DIR              the repository (work tree or bare; default: .)\n"
          "  -a, --allowed-signers FILE  the allowed_signers file (ssh-keygen(1) format)\n"
          "      --revoked-keys FILE     revoked keys: a KRL (ssh-keygen -k) or a list of\n"
          "                              public keys (git's gpg.ssh.revocationFile)\n"
          "  -s, --since COMMIT          COMMIT is the last applied commit: REV must descend\n"
          "                              from it (a rollback is refused), and every commit\n"
          "                              after COMMIT up to REV, merges included, is verified\n"
          "                              (the daemon's verify policy \"all\")\n"
          "  -h, --help                  show this help\n\n"
          "Exit status: 0 verified, 1 not verified, 2 usage or I/O error.\n");
}

int cmd_verify_commit(int argc, char **argv) {
  static const struct option options[] = {
      {"repo", required_argument, NULL, 'r'},
      {"allowed-signers", required_argument, NULL, 'a'},
      {"revoked-keys", required_argument, NULL, 'K'},
      {"since", required_argument, NULL, 's'},
      {"help", no_argument, NULL, 'h'},
      {0, 0, 0, 0},
  };
  const char *repo = ".", *signers_path = NULL, *revoked_path = NULL, *since = NULL, *rev;
  struct gitsrc *src = NULL;
  struct gitsrc_signers *signers = NULL;
  struct gitsrc_signer signer;
  struct gitsrc_oid head, base;
  struct err err = ERR_INIT;
  int c, r, status = CLI_EXIT_USAGE;

  while ((c = getopt_long(argc, argv, "r:a:s:h", options, NULL)) != -1) {
    switch (c) {
    case 'r':
      repo = optarg;
      break;
    case 'a':
      signers_path = optarg;
      break;
    case 'K':
      revoked_path = optarg;
      break;
    case 's':
      since = optarg;
      break;
    case 'h':
      usage(stdout);
      return CLI_EXIT_OK;
    default:
      return cli_usage_error(argv[0], "unknown option");
    }
  }
  if (!signers_path)
    return cli_usage_error(argv[0], "--allowed-signers FILE is required");
  if (optind != argc - 1)
    return cli_usage_error(argv[0], optind == argc ? "which commit? give REV"
                                                   : "give exactly one REV");
  rev = argv[optind];

  if (gitsrc_open_local(repo, &src, &err) < 0 || gitsrc_resolve(src, rev, &head, &err) < 0 ||
      (since && gitsrc_resolve(src, since, &base, &err) < 0)) {
    err_print(&err, stderr, "egressd verify-commit: ");
    goto out;
  }
  if (since) {
    /* the daemon's own rule, COMMIT as the applied commit: no rollback */
    r = gitsrc_head_check(src, GITSRC_VERIFY_ALL, signers_path, revoked_path, &base, 1, &head,
                          &signer, NULL, &err);
  } else {
    if (gitsrc_signers_load(signers_path, &signers, &err) < 0 ||
        (revoked_path && gitsrc_signers_load_revoked(signers, revoked_path, &err) < 0)) {
      err_print(&err, stderr, "egressd verify-commit: ");
      goto out;
    }
    r = gitsrc_verify_commit(src, &head, signers, &signer, NULL, &err);
  }
  if (r == -EBADMSG || r == -ESTALE) {
    printf("Not verified: %s\n", err.msg);
    status = CLI_EXIT_FAIL;
  } else if (r < 0) {
    err_print(&err, stderr, "egressd verify-commit: ");
  } else {
    printf("Good \"git\" signature for %s with %s key %s\n", signer.principal, signer.key_type,
           signer.fingerprint);
    status = CLI_EXIT_OK;
  }
out:
  gitsrc_signers_free(signers);
  gitsrc_free(src);
  return status;
}
