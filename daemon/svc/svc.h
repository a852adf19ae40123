/* svc: the daemon (`egressd run`) and what it publishes.
 *
 *   state.json   (state dir)   what must survive a restart: the commit in
 *                              force and the rollout with every cluster's
 *                              applied commit and phase
 *   status.json  (runtime dir) what `egressd status` shows; nothing secret
 *   control.sock (runtime dir) `egressd rollout pause|resume` and reload
 *   metrics      (metrics.textfile) Prometheus text for node_exporter
 *
 * See docs/daemon.md. When you add a field to status.json, also touch
 * cmd-status.c and docs/daemon.md.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"

#define SVC_STATE_FILE "state.json"
#define SVC_STATUS_FILE "status.json"
#define SVC_CONTROL_SOCKET "control.sock"
#define SVC_REPO_CACHE "repo.git"

struct svc_run_options {
  const char *config_path;
  bool once;                 /* exit after the first rollout completes or halts (tests) */
};

/* Run the daemon until SIGTERM/SIGINT. Returns the process exit status:
 * 0 after a clean stop, 1 when it could not start (bad host config, a
 * ledger that does not verify, a second instance), 2 for usage errors. */
int svc_run(const struct svc_run_options *opts);

/* Send one control command ("pause", "resume", "reload") to the daemon whose
 * runtime directory is @runtime_dir; the reply (one line) is copied to
 * @reply. Returns 0 when the daemon answered "ok", -EPROTO when it answered
 * an error (in @reply), -errno when it could not be reached. */
int svc_control(const char *runtime_dir, const char *command, char *reply, size_t reply_size,
                struct err *err);
