/* egressd fetch --url URL --cache DIR [options]
 *
 * The daemon's fetch path as a command, for checking a host's Git set-up
 * (credentials, known_hosts, bounds) and for the integration tests: one
 * cheap poll; when the remote ref moved, a bounded fetch into the cache
 * repository. Prints "<oid> unchanged" or "<oid> updated". With
 * --last-applied, the rewrite check runs on the new head; with --list, the
 * files of the fetched tree are listed as the intent loader would read them.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/fileset.h"
#include "base/str.h"
#include "cli/cli.h"
#include "gitsrc/gitsrc.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: egressd fetch --url URL --cache DIR [--ref REF] [credentials] [options]\n\n"
          "Poll the config repository and fetch its ref into the bare cache repository, as\n"
          "the daemon does. Prints '<commit> unchanged' or '<commit> updated'.\n\n"
          "  -u, --url URL               file://, git://, http(s)://, ssh:// or user@host:path\n"
          "  -c, --cache DIR             the bare cache repository (created if missing)\n"
          "      --ref REF               the ref to follow (default: refs/heads/main)\n"
          "      --token-file F          HTTP(S) token (basic auth password, see --bearer)\n"
          "      --bearer                send the token as 'Authorization: Bearer'\n"
          "      --username U            HTTP basic user (default with a token: x-access-token)\n"
          "      --password-file F       HTTP basic password\n"
          "      --ca-file F             HTTPS CA bundle (PEM)\n"
          "      --ssh-key F             SSH private key (deploy key)\n"
          "      --known-hosts F         OpenSSH known_hosts file for the SSH host key\n"
          "      --insecure-skip-host-key-check  do not check the SSH host key\n"
          "      --timeout SEC           bound of one poll or fetch (default: 60)\n"
          "      --max-pack-bytes N      bound of the bytes one fetch receives\n"
          "      --poll-only             only poll: '<commit> changed' or '<commit> unchanged'\n"
          "      --last-applied COMMIT   refuse a new head that does not descend from COMMIT\n"
          "      --allow-rewrite         accept it instead (prints 'rewrite allowed')\n"
          "      --list                  list the files of the fetched tree (size and path)\n"
          "  -h, --help                  show this help\n\n"
          "Exit status: 0 done, 1 history rewrite refused, 2 usage, I/O or network error.\n");
}

enum {
  OPT_REF = 256,
  OPT_TOKEN_FILE,
  OPT_BEARER,
  OPT_USERNAME,
  OPT_PASSWORD_FILE,
  OPT_CA_FILE,
  OPT_SSH_KEY,
  OPT_KNOWN_HOSTS,
  OPT_INSECURE,
  OPT_TIMEOUT,
  OPT_MAX_PACK,
  OPT_POLL_ONLY,
  OPT_LAST_APPLIED,
  OPT_ALLOW_REWRITE,
  OPT_LIST,
};

static int list_tree(struct gitsrc *src, const struct gitsrc_oid *head, struct err *err) {
  struct fileset fs;
  int r;

  fileset_init(&fs, NULL);
  r = gitsrc_tree_read(src, head, NULL, &fs, err);
  if (r >= 0) {
    fileset_sort(&fs);
    for (size_t i = 0; i < fs.n; i++)
      printf("%zu %s\n", fs.items[i].len, fs.items[i].path);
  }
  fileset_dispose(&fs);
  return r;
}

int cmd_fetch(int argc, char **argv) {
  static const struct option options[] = {
      {"url", required_argument, NULL, 'u'},
      {"cache", required_argument, NULL, 'c'},
      {"ref", required_argument, NULL, OPT_REF},
      {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
      {"bearer", no_argument, NULL, OPT_BEARER},
      {"username", required_argument, NULL, OPT_USERNAME},
      {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
      {"ca-file", required_argument, NULL, OPT_CA_FILE},
      {"ssh-key", required_argument, NULL, OPT_SSH_KEY},
      {"known-hosts", required_argument, NULL, OPT_KNOWN_HOSTS},
      {"insecure-skip-host-key-check", no_argument, NULL, OPT_INSECURE},
      {"timeout", required_argument, NULL, OPT_TIMEOUT},
      {"max-pack-bytes", required_argument, NULL, OPT_MAX_PACK},
      {"poll-only", no_argument, NULL, OPT_POLL_ONLY},
      {"last-applied", required_argument, NULL, OPT_LAST_APPLIED},
      {"allow-rewrite", no_argument, NULL, OPT_ALLOW_REWRITE},
      {"list", no_argument, NULL, OPT_LIST},
      {"help", no_argument, NULL, 'h'},
      {0, 0, 0, 0},
  };
  struct gitsrc_opts o = {0};
  struct gitsrc *src = NULL;
  struct gitsrc_oid remote, head, last;
  const char *last_applied = NULL;
  bool poll_only = false, list = false, changed = false;
  struct err err = ERR_INIT;
  int c, r, status = CLI_EXIT_USAGE;

  while ((c = getopt_long(argc, argv, "u:c:h", options, NULL)) != -1) {
    switch (c) {
    case 'u': o.url = optarg; break;
    case 'c': o.cache_dir = optarg; break;
    case OPT_REF: o.ref = optarg; break;
    case OPT_TOKEN_FILE: o.token_file = optarg; break;
    case OPT_BEARER: o.token_auth = GITSRC_TOKEN_BEARER; break;
    case OPT_USERNAME: o.username = optarg; break;
    case OPT_PASSWORD_FILE: o.password_file = optarg; break;
    case OPT_CA_FILE: o.ca_file = optarg; break;
    case OPT_SSH_KEY: o.ssh_key = optarg; break;
    case OPT_KNOWN_HOSTS: o.ssh_known_hosts = optarg; break;
    case OPT_INSECURE: o.ssh_insecure_skip_host_key_check = true; break;
    case OPT_TIMEOUT: {
      int v;
      if (str_to_int(optarg, 1, 86400, &v) < 0)
        return cli_usage_error(argv[0], "--timeout wants seconds in 1..86400, not '%s'", optarg);
      o.timeout_sec = (unsigned)v;
      break;
    }
    case OPT_MAX_PACK:
      if (str_to_u64(optarg, UINT64_MAX, &o.max_pack_bytes) < 0 || o.max_pack_bytes == 0)
        return cli_usage_error(argv[0], "--max-pack-bytes wants a positive byte count, not '%s'",
                               optarg);
      break;
    case OPT_POLL_ONLY: poll_only = true; break;
    case OPT_LAST_APPLIED: last_applied = optarg; break;
    case OPT_ALLOW_REWRITE: o.allow_rewrite = true; break;
    case OPT_LIST: list = true; break;
    case 'h':
      usage(stdout);
      return CLI_EXIT_OK;
    default:
      return cli_usage_error(argv[0], "unknown option");
    }
  }
  if (optind != argc)
    return cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
  if (!o.url || !o.cache_dir)
    return cli_usage_error(argv[0], "--url and --cache are required");
  if (last_applied && gitsrc_oid_parse(last_applied, &last) < 0)
    return cli_usage_error(argv[0], "--last-applied wants a full 40-digit commit id");

  if (gitsrc_open(&o, &src, &err) < 0 || gitsrc_poll(src, &remote, &changed, &err) < 0)
    goto fail;
  if (poll_only) {
    printf("%s %s\n", remote.hex, changed ? "changed" : "unchanged");
    status = CLI_EXIT_OK;
    goto out;
  }
  if (changed) {
    if (gitsrc_fetch(src, &head, &err) < 0)
      goto fail;
  } else {
    head = remote;
  }
  printf("%s %s\n", head.hex, changed ? "updated" : "unchanged");
  if (last_applied) {
    r = gitsrc_check_history(src, &last, &head, &err);
    if (r == -ESTALE) {
      err_print(&err, stderr, "egressd fetch: ");
      status = CLI_EXIT_FAIL;
      goto out;
    }
    if (r < 0)
      goto fail;
    if (r == 1)
      printf("rewrite allowed: %s does not descend from %s\n", head.hex, last.hex);
  }
  if (list && list_tree(src, &head, &err) < 0)
    goto fail;
  status = CLI_EXIT_OK;
  goto out;
fail:
  err_print(&err, stderr, "egressd fetch: ");
out:
  gitsrc_free(src);
  return status;
}
