/* egressd status: what the running daemon reports (its status.json): the
 * commit in force and its signer, the rollout, and each cluster's phase,
 * applied commit, health, last sync, drift and last error. Nothing secret is
 * in it. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/str.h"
#include "cli/cli-status.h"
#include "cli/cli.h"

static void usage(FILE *f) {
  fprintf(f, "usage: egressd status [-o text|json] [--config FILE | --runtime-dir DIR]\n\n"
             "Show what the running daemon reports: the commit in force and who signed it, the\n"
             "rollout, and per cluster the wave, phase, applied commit, health, last sync, drift\n"
             "corrected and last error.\n\n"
             "  -o, --output F      text (default) or json (status.json as written)\n"
             "  --config FILE       host config, to find the runtime directory\n"
             "  --runtime-dir DIR   the daemon's runtime directory (default from the host\n"
             "                      config, else /run/egressd)\n"
             "  -h, --help          show this help\n\n"
             "Exit status: 0 shown, 1 no status (the daemon is not running), 2 usage error.\n");
}

static const char *s(const struct doc_node *m, const char *k, const char *dflt) {
  const char *v = doc_map_str(m, k);
  return v && *v ? v : dflt;
}

static const char *shortc(const char *c, char *buf) {
  str_copy(buf, 8, c && *c ? c : "-");
  return buf;
}

int cmd_status(int argc, char **argv) {
  enum { OPT_CONFIG = 1000, OPT_RUNTIME };
  static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                       {"config", required_argument, NULL, OPT_CONFIG},
                                       {"runtime-dir", required_argument, NULL, OPT_RUNTIME},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *format = "text", *config = NULL, *runtime = NULL;
  struct cli_status st;
  const struct doc_node *repo, *target, *rej, *ro, *clusters, *ledger;
  char a1[32], a2[32], c1[16], c2[16];
  int c, rc;

  while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    if (c == 'o')
      format = optarg;
    else if (c == OPT_CONFIG)
      config = optarg;
    else if (c == OPT_RUNTIME)
      runtime = optarg;
    else if (c == 'h') {
      usage(stdout);
      return CLI_EXIT_OK;
    } else
      return cli_usage_error("status", "unknown option");
  }
  if (!str_eq(format, "text") && !str_eq(format, "json"))
    return cli_usage_error("status", "unknown output format '%s'; use text or json", format);
  if ((rc = cli_status_load(&st, config, runtime, "status")) != 0)
    return rc;
  if (str_eq(format, "json")) {
    struct buf b = BUF_INIT;
    doc_emit_json(st.root, &b, DOC_JSON_PRETTY);
    fwrite(b.data, 1, b.len, stdout);
    buf_dispose(&b);
    cli_status_dispose(&st);
    return CLI_EXIT_OK;
  }
  repo = doc_map_get(st.root, "repository");
  target = doc_map_get(st.root, "target");
  rej = doc_map_get(st.root, "rejected");
  ro = doc_map_get(st.root, "rollout");
  clusters = doc_map_get(st.root, "clusters");
  ledger = doc_map_get(st.root, "ledger");
  printf("egressd %s (pid %lld), %s%s\n", s(st.root, "version", "?"),
         (long long)(doc_is(doc_map_get(st.root, "pid"), DOC_INT) ? doc_map_get(st.root, "pid")->u.i : 0),
         st.running ? s(st.root, "state", "?") : "not running",
         st.running ? "" : " (the status below is from its last run)");
  printf("status      %s\n", s(st.root, "status", "-"));
  printf("repository  %s %s, head %s, polled %s%s%s\n", s(repo, "url", "?"), s(repo, "ref", ""),
         shortc(s(repo, "head", NULL), c1), cli_status_age(doc_map_str(repo, "lastPoll"), a1, sizeof(a1)),
         doc_map_str(repo, "error") ? ", error: " : "", s(repo, "error", ""));
  if (doc_is(doc_map_get(repo, "webhook"), DOC_MAP)) {
    const struct doc_node *wh = doc_map_get(repo, "webhook");
    const struct doc_node *bells = doc_map_get(wh, "doorbells");
    const struct doc_node *refused = doc_map_get(wh, "refused");
    const struct doc_node *act = doc_map_get(wh, "socketActivated");
    printf("webhook     %s%s, %lld doorbell%s (last %s), %lld refused\n", s(wh, "listen", "?"),
           doc_is(act, DOC_BOOL) && act->u.b ? " (from systemd)" : "",
           (long long)(doc_is(bells, DOC_INT) ? bells->u.i : 0),
           doc_is(bells, DOC_INT) && bells->u.i == 1 ? "" : "s",
           cli_status_age(doc_map_str(wh, "lastDoorbell"), a2, sizeof(a2)),
           (long long)(doc_is(refused, DOC_INT) ? refused->u.i : 0));
  }
  if (doc_map_str(target, "commit")) {
    const struct doc_node *v = doc_map_get(target, "verified");
    printf("target      %s \"%s\", %s%s%s%s\n", shortc(s(target, "commit", NULL), c1),
           s(target, "summary", ""), doc_is(v, DOC_BOOL) && v->u.b ? "verified: " : "not verified",
           doc_is(v, DOC_BOOL) && v->u.b ? s(target, "signer", "?") : "",
           doc_is(v, DOC_BOOL) && v->u.b ? " " : "", doc_is(v, DOC_BOOL) && v->u.b ? s(target, "key", "") : "");
  } else {
    printf("target      none yet\n");
  }
  if (rej)
    printf("rejected    %s (%s): %s\n", shortc(s(rej, "commit", NULL), c1), s(rej, "stage", "?"),
           s(rej, "error", "?"));
  {
    const struct doc_node *waves = doc_map_get(ro, "waves");
    int64_t w = doc_is(doc_map_get(ro, "wave"), DOC_INT) ? doc_map_get(ro, "wave")->u.i : 0;
    printf("rollout     %s %s", s(ro, "state", "idle"), shortc(s(ro, "target", NULL), c1));
    if (doc_len(waves) && str_eq(s(ro, "state", ""), "running"))
      printf(", wave %lld/%zu (%s)", (long long)w + 1, doc_len(waves),
             w < (int64_t)doc_len(waves) ? s(waves->u.seq.items[w], "name", "?") : "-");
    if (doc_map_str(ro, "haltReason"))
      printf(": %s", s(ro, "haltReason", ""));
    printf("\n");
  }
  if (doc_is(doc_map_get(st.root, "coordination"), DOC_MAP)) {
    /* several members, one fleet (docs/ha.md) */
    const struct doc_node *co = doc_map_get(st.root, "coordination");
    const struct doc_node *mem = doc_map_get(co, "members");
    const struct doc_node *r = doc_map_get(co, "reachable");
    printf("member      %s (%s), coordination cluster %s%s%s\n", s(co, "identity", "?"),
           s(co, "mode", "?"), doc_is(r, DOC_BOOL) && r->u.b ? "reachable" : "unreachable",
           doc_map_str(co, "error") ? ": " : "", s(co, "error", ""));
    printf("members    ");
    for (size_t i = 0; i < doc_len(mem) && mem->type == DOC_SEQ; i++) {
      const struct doc_node *e = mem->u.seq.items[i];
      const struct doc_node *live = doc_map_get(e, "live"), *age = doc_map_get(e, "leaseAgeSeconds");
      printf(" %s (%s, lease %llds ago)", s(e, "identity", "?"),
             doc_is(live, DOC_BOOL) && live->u.b ? "live" : "gone",
             (long long)(doc_is(age, DOC_INT) ? age->u.i : 0));
    }
    printf("\n");
  }
  if (doc_is(ledger, DOC_MAP) && doc_is(doc_map_get(ledger, "size"), DOC_INT))
    printf("ledger      %lld records in %s, root %s\n",
           (long long)doc_map_get(ledger, "size")->u.i, s(ledger, "dir", "?"), s(ledger, "root", "?"));
  printf("\n%-16s %-10s %-12s %-9s %-12s %-12s %-6s %-12s ", "CLUSTER", "WAVE", "PHASE",
         "APPLIED", "HEALTH", "LAST SYNC", "DRIFT", "WATCH");
  if (doc_map_get(st.root, "coordination"))
    printf("%-16s ", "OWNER");
  printf("LAST ERROR\n");
  for (size_t i = 0; i < doc_len(clusters) && clusters->type == DOC_SEQ; i++) {
    const struct doc_node *m = clusters->u.seq.items[i];
    const struct doc_node *drift = doc_map_get(m, "driftCorrected");
    const struct doc_node *sy = doc_map_get(m, "syncing");
    printf("%-16s %-10s %-12s %-9s %-12s %-12s %-6lld %-12s ", s(m, "name", "?"),
           s(m, "wave", "-"), doc_is(sy, DOC_BOOL) && sy->u.b ? "syncing" : s(m, "phase", "-"),
           shortc(s(m, "applied", NULL), c2), s(m, "health", "-"),
           cli_status_age(doc_map_str(m, "lastSync"), a1, sizeof(a1)),
           (long long)(doc_is(drift, DOC_INT) ? drift->u.i : 0),
           s(doc_map_get(m, "watch"), "state", "-"));
    if (doc_is(doc_map_get(m, "lease"), DOC_MAP)) {
      /* the holder of its Lease, and "*" when it is this member */
      const struct doc_node *own = doc_map_get(doc_map_get(m, "lease"), "ownedHere");
      char who[80];
      str_format(who, sizeof(who), "%s%s", s(doc_map_get(m, "lease"), "holder", "-"),
                 doc_is(own, DOC_BOOL) && own->u.b ? " *" : "");
      printf("%-16s ", who);
    } else if (doc_map_get(st.root, "coordination")) {
      printf("%-16s ", "-");
    }
    printf("%s\n", s(m, "lastError", ""));
  }
  cli_status_dispose(&st);
  return CLI_EXIT_OK;
}
