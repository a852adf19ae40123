/* Reading status.json; see cli-status.h. */
#include "cli/cli-status.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "cli/cli.h"
#include "svc/hostconfig.h"
#include "svc/svc.h"

int cli_status_load(struct cli_status *st, const char *config, const char *runtime_dir,
                    const char *cmd) {
  struct buf b = BUF_INIT;
  struct err err = ERR_INIT;
  char *path;
  int64_t pid;

  memset(st, 0, sizeof(*st));
  if (runtime_dir) {
    str_copy(st->runtime_dir, sizeof(st->runtime_dir), runtime_dir);
  } else {
    struct hostconfig *hc = NULL;
    struct diag_list d = {0};
    if (hostconfig_load(config ? config : HOSTCONFIG_DEFAULT_PATH, &hc, &d, &err) == 0)
      str_copy(st->runtime_dir, sizeof(st->runtime_dir), hc->runtime_dir);
    else
      str_copy(st->runtime_dir, sizeof(st->runtime_dir), "/run/egressd");
    hostconfig_free(hc);
    diag_list_dispose(&d);
    err_clear(&err);
  }
  path = path_join(st->runtime_dir, SVC_STATUS_FILE);
  if (file_read_all(path, 16u << 20, &b, &err) < 0) {
    fprintf(stderr, "egressd %s: %s; is egressd run running (see systemctl status egressd)?\n",
            cmd, err.msg);
    free(path);
    buf_dispose(&b);
    return CLI_EXIT_FAIL;
  }
  st->arena = doc_arena_new();
  if (doc_parse_one(st->arena, path, buf_cstr(&b), b.len, NULL, &st->root, &err) < 0) {
    err_print(&err, stderr, "egressd: ");
    free(path);
    buf_dispose(&b);
    return CLI_EXIT_USAGE;
  }
  free(path);
  buf_dispose(&b);
  pid = doc_is(doc_map_get(st->root, "pid"), DOC_INT) ? doc_map_get(st->root, "pid")->u.i : 0;
  st->running = pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM) &&
                !str_eq(doc_map_str(st->root, "state"), "stopped");
  return 0;
}

void cli_status_dispose(struct cli_status *st) {
  doc_arena_free(st->arena);
  memset(st, 0, sizeof(*st));
}

const char *cli_status_age(const char *t, char *buf, size_t size) {
  int64_t s;
  uint64_t now = time_now_real_usec() / USEC_PER_SEC;
  char d[32];

  if (!t || time_parse_rfc3339(t, &s) < 0) {
    str_copy(buf, size, "never");
    return buf;
  }
  if ((uint64_t)s >= now) {
    str_copy(buf, size, "just now");
    return buf;
  }
  time_format_duration(d, sizeof(d), (now - (uint64_t)s) * USEC_PER_SEC);
  str_format(buf, size, "%s ago", d);
  return buf;
}
