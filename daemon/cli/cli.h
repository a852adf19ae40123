/* The egressd command line: one binary, git-style subcommands.
 *
 * Each subcommand lives in cmd-<name>.c and exports one entry point listed
 * in the table of main.c. Entry points get argv with argv[0] = the
 * subcommand name, parse their own options (getopt_long, --help on each) and
 * return the process exit status. When you add a subcommand, also touch: the
 * table in main.c, docs/man/egressd.1 and the command's own man page.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

struct cli_command {
  const char *name;
  const char *summary;       /* NULL: not listed (a command for tests and benchmarks) */
  int (*run)(int argc, char **argv);
};

/* A command group (egressd clusters, egressd ledger): run the subcommand
 * argv[1] names with argv shifted by one; -h, --help and help print @usage;
 * none or an unknown one is a usage error that lists the commands. */
int cli_group(const char *group, const struct cli_command *cmds, size_t n, void (*usage)(FILE *),
              int argc, char **argv);

/* Exit codes shared by the commands (validate: 0 valid, 1 invalid). */
enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_FAIL = 1,   /* the answer is "no": invalid, differences, not verified */
  CLI_EXIT_USAGE = 2,  /* bad usage or an I/O error */
};

/* Print "egressd <cmd>: <msg>" to stderr and return CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Should output to @f use colour (a terminal, NO_COLOR unset)? */
bool cli_color(FILE *f);

struct intent_repo;
struct diag_list;
struct err;
/* Load the config repo checked out in @dir (every problem into @diags). */
int cli_repo_load_dir(const char *dir, struct intent_repo **ret, struct diag_list *diags,
                      struct err *err);
/* Render @repo for every Fleet cluster without output, to find what only
 * rendering finds (template overrides, colliding names). */
int cli_repo_check_render(const struct intent_repo *repo, const char *istio_api,
                          struct diag_list *diags, size_t *ret_objects, struct err *err);

int cmd_validate(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_rollout(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_render(int argc, char **argv);
int cmd_clusters(int argc, char **argv);
int cmd_ledger(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_verify_commit(int argc, char **argv);
int cmd_fetch(int argc, char **argv);
