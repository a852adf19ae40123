/* Reading what the running daemon publishes (status.json in its runtime
 * directory), for `egressd status` and `egressd rollout`. */
#pragma once

#include <stdbool.h>

#include "doc/doc.h"

struct cli_status {
  struct doc_arena *arena;
  struct doc_node *root;
  char runtime_dir[1024];
  bool running;          /* the pid in the file is alive */
};

/* Find the runtime directory (--runtime-dir, else the host config's, else
 * /run/egressd) and read status.json. Prints why on failure and returns the
 * exit status; 0 on success. */
int cli_status_load(struct cli_status *st, const char *config, const char *runtime_dir,
                    const char *cmd);
void cli_status_dispose(struct cli_status *st);
/* "12s ago" for an RFC 3339 time, "never" for null. */
const char *cli_status_age(const char *rfc3339, char *buf, size_t size);
