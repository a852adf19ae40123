/* egressd's entry point: dispatch to a subcommand (git style). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/str.h"
#include "cli/cli.h"

static const struct cli_command commands[] = {
    {"run", "the daemon: follow the config repo and keep every cluster in sync", cmd_run},
    {"status", "what the running daemon reports: commit, rollout, each cluster", cmd_status},
    {"rollout", "show, pause or resume the rollout of the running daemon", cmd_rollout},
    {"validate", "check a checkout of the config repo; every problem as file:line:col", cmd_validate},
    {"render", "print the manifests a config repo renders to", cmd_render},
    {"diff", "show how each cluster differs from the config repo (as kubectl diff)", cmd_diff},
    {"sync", "reconcile every cluster once (sync --once)", cmd_sync},
    {"clusters", "check that every cluster is usable; read and apply live objects", cmd_clusters},
    {"ledger", "verify, show and prove the signed ledger of what egressd applied", cmd_ledger},
    {"keygen", "make the ledger signing key (OpenSSH ed25519)", cmd_keygen},
    {"verify-commit", "check a commit's SSH signature against allowed_signers", cmd_verify_commit},
    {"fetch", "poll and fetch the config repo into a cache, as the daemon does", cmd_fetch},
};

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;

  fprintf(stderr, "egressd %s: ", cmd);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry 'egressd %s --help'.\n", cmd);
  return CLI_EXIT_USAGE;
}

int cli_group(const char *group, const struct cli_command *cmds, size_t n, void (*usage)(FILE *),
              int argc, char **argv) {
  char names[512] = "";
  size_t len = 0;

  if (argc < 2) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  if (str_eq(argv[1], "--help") || str_eq(argv[1], "-h") || str_eq(argv[1], "help")) {
    usage(stdout);
    return CLI_EXIT_OK;
  }
  for (size_t i = 0; i < n; i++)
    if (str_eq(argv[1], cmds[i].name)) {
      optind = 0; /* GNU getopt: start over on the new argv */
      return cmds[i].run(argc - 1, argv + 1);
    }
  for (size_t i = 0; i < n; i++)
    if (cmds[i].summary && len < sizeof(names))
      len += str_format(names + len, sizeof(names) - len, "%s%s", len ? ", " : "", cmds[i].name);
  return cli_usage_error(group, "'%s' is not a %s command (%s)", argv[1], group, names);
}

bool cli_color(FILE *f) {
  const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
  return isatty(fileno(f)) && str_is_empty(nc) && !str_eq(term, "dumb");
}

static void usage(FILE *f) {
  fprintf(f, "usage: egressd [--version] [--help] <command> [<args>]\n\n"
             "egressd keeps Istio egress policy from a Git repository applied to a fleet of\n"
             "Kubernetes clusters.\n\ncommands:\n");
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\nSee 'egressd <command> --help' and egressd(1).\n");
}

int main(int argc, char **argv) {
  const char *name;

  if (argc < 2) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  name = argv[1];
  if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
    printf("egressd %s\n", EGRESSD_VERSION);
    return CLI_EXIT_OK;
  }
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
    if (argc > 2 && strcmp(name, "help") == 0) {
      static char help_opt[] = "--help";
      char *sub[] = {argv[2], help_opt, NULL};
      for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, argv[2]) == 0)
          return commands[i].run(2, sub);
    }
    usage(stdout);
    return CLI_EXIT_OK;
  }
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    if (strcmp(commands[i].name, name) == 0) {
      optind = 1;
      return commands[i].run(argc - 1, argv + 1);
    }
  fprintf(stderr, "egressd: '%s' is not an egressd command. See 'egressd --help'.\n", name);
  return CLI_EXIT_USAGE;
}
