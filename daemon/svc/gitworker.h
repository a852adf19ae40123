/* The daemon's Git worker: one thread that owns the gitsrc handle and does
 * the slow, blocking part of following the config repo (poll, fetch,
 * verify, read the tree, load and check the repo), so the main loop keeps
 * serving clusters, signals and the watchdog meanwhile. One request at a
 * time; the result is handed over through an eventfd the main loop polls.
 *
 * Thread rule: the worker touches only its own copy of the options and the
 * gitsrc handle; results (including the loaded intent_repo) change owner
 * when the main thread takes them.
 */
#pragma once

#include <stdbool.h>

#include "base/diag.h"
#include "base/err.h"
#include "intent/intent.h"
#include "svc/hostconfig.h"

enum gitworker_kind {
  GITWORKER_NONE,
  GITWORKER_POLL,   /* poll, fetch if changed, verify, load the head */
  GITWORKER_LOAD,   /* load a commit already in the cache (no network) */
};

struct gitworker_result {
  enum gitworker_kind kind;
  int r;                        /* 0, or -errno with err (and diags for a bad repo) */
  struct err err;
  struct diag_list diags;       /* the problems of a commit that does not validate */
  const char *stage;            /* "poll", "fetch", "history", "verify", "read", "validate" */
  bool unchanged;               /* POLL: the head is the one the caller knows */
  char commit[41], tree[41];    /* POLL: the head, also when it was refused */
  char summary[256];
  int64_t commit_time;
  bool allow_prune_set;
  unsigned allow_prune;         /* Egressd-Allow-Prune: N */
  bool verified;                /* a signature was checked (policy head or all) */
  char principal[256], key[64]; /* the signer */
  struct intent_repo *repo;     /* owned by whoever takes the result */
  uint64_t took_usec;
};

struct gitworker;

/* Start the thread with a copy of what it needs from @hc. */
int gitworker_start(const struct hostconfig *hc, struct gitworker **ret, struct err *err);
/* Stop the thread (waiting for a request in progress) and free. */
void gitworker_stop(struct gitworker *w);
/* Readable (POLLIN) when a result waits. */
int gitworker_fd(const struct gitworker *w);
bool gitworker_busy(const struct gitworker *w);
/* Post a request; -EBUSY while one is in progress or its result not taken.
 * POLL: @known is the head the daemon has loaded ("" if none), @base the
 * commit in force (state.json) and @ledger_base the last commit the ledger
 * records as applied from this repository (NULL or "" if none): the new
 * head must descend from both (the rollback floor), and verification
 * starts at the newer. LOAD: @known is the commit to load. */
int gitworker_post(struct gitworker *w, enum gitworker_kind kind, const char *known,
                   const char *base, const char *ledger_base);
/* Take the result if there is one (true), resetting the eventfd. */
bool gitworker_take(struct gitworker *w, struct gitworker_result *ret);
void gitworker_result_dispose(struct gitworker_result *res);
