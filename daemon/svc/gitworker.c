/* The Git worker thread; see gitworker.h. gitsrc forks a child for each
 * network operation and waits for it, which is why this runs off the main
 * loop. The main thread must not set SIGCHLD to SIG_IGN (gitsrc reaps its
 * own child).
 *
 * The rollback floor: a new head must descend from the commit in force
 * (state.json) and from the last commit the ledger records as applied, so
 * losing or rolling back state.json does not lower it. Which of the two is
 * newer takes the repository, so it is decided here; a disagreement is
 * logged from this thread (base/log.c writes whole lines, safe from any
 * thread), once per pair. The acceptance rule itself is gitsrc_head_check(),
 * which `egressd verify-commit --since` shares: when you change one, the
 * other follows. */
#include "svc/gitworker.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/fileset.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "gitsrc/gitsrc.h"
#include "render/render.h"


struct gitworker {
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int efd;
  bool stop;
  /* request */
  enum gitworker_kind req;
  char known[41], base[41], ledger_base[41];
  char noted[82];               /* the floor pair last logged about */
  /* result */
  bool have_result;
  struct gitworker_result res;
  /* options, owned by the worker */
  struct gitsrc_opts opts;
  char *url, *ref, *cache, *token_file, *username, *password_file, *ssh_key, *known_hosts;
  char *allowed_signers;
  char *revoked_keys;
  enum gitsrc_verify_policy policy;
  struct gitsrc *src;
};

static char *dup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

static int ensure_open(struct gitworker *w, struct err *err) {
  if (w->src)
    return 0;
  return gitsrc_open(&w->opts, &w->src, err);
}

/* Load and fully check the config repo at @oid (also rendering it for every
 * cluster, as `egressd validate` does). */
static int load_commit(struct gitworker *w, const struct gitsrc_oid *oid,
                       struct gitworker_result *res) {
  struct gitsrc_commit_info info = {0};
  struct fileset fs;
  struct intent_load_options lo = {.root_name = "", .known_templates = render_template_names()};
  const char *allow;
  int r;

  fileset_init(&fs, NULL);
  res->stage = "read";
  if ((r = gitsrc_commit_info(w->src, oid, &info, &res->err)) < 0 ||
      (r = gitsrc_tree_read(w->src, oid, intent_file_suffixes, &fs, &res->err)) < 0)
    goto out;
  str_copy(res->commit, sizeof(res->commit), oid->hex);
  str_copy(res->tree, sizeof(res->tree), info.tree.hex);
  str_copy(res->summary, sizeof(res->summary), info.summary ? info.summary : "");
  res->commit_time = info.commit_time;
  allow = gitsrc_commit_trailer(&info, "Egressd-Allow-Prune");
  if (allow) {
    uint64_t n;
    if (str_to_u64(allow, 1000000, &n) == 0) {
      res->allow_prune_set = true;
      res->allow_prune = (unsigned)n;
    } else {
      diag_warning(&res->diags, "", 0, 0,
                   "commit %.12s: trailer Egressd-Allow-Prune: '%s' is not a number; ignored",
                   oid->hex, allow);
    }
  }
  res->stage = "validate";
  r = intent_repo_load(&fs, &lo, &res->repo, &res->diags, &res->err);
  if (r >= 0) {
    /* what only rendering finds: template overrides, colliding names */
    for (size_t c = 0; c < res->repo->fleet->n_clusters && r >= 0; c++) {
      struct render_options ro = {.istio_api_version = "v1beta1",
                                  .cluster = &res->repo->fleet->clusters[c]};
      r = render_repo(res->repo, &ro, NULL, NULL, &res->diags, &res->err);
    }
    if (r < 0) {
      intent_repo_free(res->repo);
      res->repo = NULL;
    }
  }
  if (r < 0 && !err_isset(&res->err))
    err_set(&res->err, r, "commit %.12s does not validate (%zu problem%s)", oid->hex,
            res->diags.errors, res->diags.errors == 1 ? "" : "s");
out:
  gitsrc_commit_info_dispose(&info);
  fileset_dispose(&fs);
  return r;
}

/* The rollback floor, newest first (see the file comment): normally the
 * commit in force, with the ledger's commit equal to it or older (a commit
 * that wrote nothing to any cluster has no apply-intent). */
static size_t rollback_floors(struct gitworker *w, struct gitsrc_oid floors[2]) {
  struct gitsrc_oid state, ledger;
  struct err scratch = ERR_INIT;
  bool have_state = w->base[0] && gitsrc_oid_parse(w->base, &state) == 0;
  bool have_ledger = w->ledger_base[0] && gitsrc_oid_parse(w->ledger_base, &ledger) == 0;
  char pair[sizeof(w->noted)];
  size_t n = 0;
  int prio = 0;

  if (have_state)
    floors[n++] = state;
  if (!have_ledger || (have_state && gitsrc_oid_eq(&state, &ledger)))
    return n;
  if (!have_state) {
    floors[n++] = ledger;
    prio = LOG_NOTICE;
  } else if (gitsrc_is_descendant(w->src, &state, &ledger, &scratch) == 1) {
    floors[0] = ledger;   /* the ledger's is newer: state.json is behind */
    floors[n++] = state;
    prio = LOG_WARNING;
  } else {
    floors[n++] = ledger;
    err_clear(&scratch);
    /* unrelated (or not in the repository, which the check reports) */
    if (!w->opts.allow_rewrite && gitsrc_is_descendant(w->src, &ledger, &state, &scratch) == 0)
      prio = LOG_WARNING;
  }
  str_format(pair, sizeof(pair), "%s%s", w->base, w->ledger_base);
  if (prio && strcmp(pair, w->noted) != 0) {
    str_copy(w->noted, sizeof(w->noted), pair);
    if (!have_state)
      log_notice("state.json names no commit in force: the rollback floor is %s, the last commit "
                 "the ledger records as applied; new commits must descend from it",
                 w->ledger_base);
    else if (gitsrc_oid_eq(&floors[0], &ledger))
      log_warning("state.json's commit in force %s is older than %s, the last commit the ledger "
                  "records as applied (state.json was restored or edited?): the ledger's is the "
                  "rollback floor", w->base, w->ledger_base);
    else
      log_warning("state.json's commit in force %s and %s, the last commit the ledger records as "
                  "applied, are not on one line of history: new commits must descend from both",
                  w->base, w->ledger_base);
  }
  return n;
}

static void do_poll(struct gitworker *w, struct gitworker_result *res) {
  struct gitsrc_oid remote, head, floors[2];
  struct gitsrc_signer signer;
  bool changed = false;
  size_t n_floors;
  int r;

  res->stage = "poll";
  if ((r = ensure_open(w, &res->err)) < 0)
    goto out;
  r = gitsrc_poll(w->src, &remote, &changed, &res->err);
  if (r < 0)
    goto out;
  if (changed) {
    res->stage = "fetch";
    if ((r = gitsrc_fetch(w->src, &head, &res->err)) < 0)
      goto out;
  } else if ((r = gitsrc_fetched_head(w->src, &head, &res->err)) < 0) {
    goto out;
  }
  /* from here on a refusal names the head: the daemon reports it once */
  str_copy(res->commit, sizeof(res->commit), head.hex);
  if (w->known[0] && strcmp(w->known, head.hex) == 0) {
    res->unchanged = true;
    goto out;
  }
  res->stage = "history";
  n_floors = rollback_floors(w, floors);
  r = gitsrc_head_check(w->src, w->policy, w->allowed_signers, w->revoked_keys, floors, n_floors,
                        &head, &signer, &res->stage, &res->err);
  if (r < 0)
    goto out;
  if (w->policy != GITSRC_VERIFY_NONE) {
    res->verified = true;
    str_copy(res->principal, sizeof(res->principal), signer.principal);
    str_copy(res->key, sizeof(res->key), signer.fingerprint);
  }
  r = load_commit(w, &head, res);
out:
  res->r = r < 0 ? r : 0;
}

static void do_load(struct gitworker *w, struct gitworker_result *res) {
  struct gitsrc_oid oid;
  int r;

  res->stage = "read";
  str_copy(res->commit, sizeof(res->commit), w->known); /* the caller matches failures by it */
  if ((r = ensure_open(w, &res->err)) < 0)
    goto out;
  if ((r = gitsrc_oid_parse(w->known, &oid)) < 0) {
    err_set(&res->err, r, "'%s' is not a commit id", w->known);
    goto out;
  }
  r = load_commit(w, &oid, res);
out:
  res->r = r < 0 ? r : 0;
}

static void *worker(void *arg) {
  struct gitworker *w = arg;

  pthread_mutex_lock(&w->lock);
  for (;;) {
    enum gitworker_kind kind;
    struct gitworker_result res;
    uint64_t t0;
    uint64_t one = 1;

    while (!w->stop && (w->req == GITWORKER_NONE || w->have_result))
      pthread_cond_wait(&w->cond, &w->lock);
    if (w->stop)
      break;
    kind = w->req;
    pthread_mutex_unlock(&w->lock);

    memset(&res, 0, sizeof(res));
    res.kind = kind;
    t0 = time_now_mono_usec();
    if (kind == GITWORKER_POLL)
      do_poll(w, &res);
    else
      do_load(w, &res);
    res.took_usec = time_now_mono_usec() - t0;

    pthread_mutex_lock(&w->lock);
    w->res = res;
    w->have_result = true;
    w->req = GITWORKER_NONE;
    if (write(w->efd, &one, sizeof(one)) < 0) {
      /* the counter cannot overflow here; nothing else can fail */
    }
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

int gitworker_start(const struct hostconfig *hc, struct gitworker **ret, struct err *err) {
  struct gitworker *w;
  int r;

  if ((r = gitsrc_global_init(err)) < 0)
    return r;
  w = xcalloc(1, sizeof(*w));
  w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w->efd < 0) {
    r = err_set_errno(err, -errno, "cannot create an eventfd");
    free(w);
    return r;
  }
  w->url = xstrdup(hc->repo.url);
  w->ref = xstrdup(hc->repo.ref);
  w->cache = path_join(hc->state_dir, "repo.git");
  w->token_file = dup_or_null(hc->repo.token_file);
  w->username = dup_or_null(hc->repo.username);
  w->password_file = dup_or_null(hc->repo.password_file);
  w->ssh_key = dup_or_null(hc->repo.ssh_key);
  w->known_hosts = dup_or_null(hc->repo.known_hosts);
  w->allowed_signers = dup_or_null(hc->verify.allowed_signers);
  w->revoked_keys = dup_or_null(hc->verify.revoked_keys);
  w->policy = hc->verify.policy == HOSTCONFIG_VERIFY_NONE   ? GITSRC_VERIFY_NONE
              : hc->verify.policy == HOSTCONFIG_VERIFY_HEAD ? GITSRC_VERIFY_HEAD
                                                            : GITSRC_VERIFY_ALL;
  w->opts = (struct gitsrc_opts){
      .url = w->url,
      .ref = w->ref,
      .cache_dir = w->cache,
      .token_file = w->token_file,
      .username = w->username,
      .password_file = w->password_file,
      .ssh_key = w->ssh_key,
      .ssh_known_hosts = w->known_hosts,
      .ssh_insecure_skip_host_key_check = hc->repo.insecure_skip_host_key_check,
      .allow_rewrite = hc->repo.allow_rewrite,
      .max_pack_bytes = hc->repo.max_fetch_bytes,
      .timeout_sec = (unsigned)(hc->repo.timeout_usec / USEC_PER_SEC),
  };
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->cond, NULL);
  if ((r = pthread_create(&w->thread, NULL, worker, w)) != 0) {
    r = err_set_errno(err, -r, "cannot start the Git worker thread");
    gitworker_stop(w);
    return r;
  }
  *ret = w;
  return 0;
}

void gitworker_stop(struct gitworker *w) {
  if (!w)
    return;
  if (w->thread) {
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
  }
  if (w->have_result)
    gitworker_result_dispose(&w->res);
  gitsrc_free(w->src);
  if (w->efd >= 0)
    close(w->efd);
  pthread_mutex_destroy(&w->lock);
  pthread_cond_destroy(&w->cond);
  free(w->url);
  free(w->ref);
  free(w->cache);
  free(w->token_file);
  free(w->username);
  free(w->password_file);
  free(w->ssh_key);
  free(w->known_hosts);
  free(w->allowed_signers);
  free(w->revoked_keys);
  free(w);
}

int gitworker_fd(const struct gitworker *w) { return w->efd; }

bool gitworker_busy(const struct gitworker *w) {
  bool busy;

  pthread_mutex_lock((pthread_mutex_t *)(uintptr_t)&w->lock);
  busy = w->req != GITWORKER_NONE || w->have_result;
  pthread_mutex_unlock((pthread_mutex_t *)(uintptr_t)&w->lock);
  return busy;
}

int gitworker_post(struct gitworker *w, enum gitworker_kind kind, const char *known,
                   const char *base, const char *ledger_base) {
  int r = 0;

  pthread_mutex_lock(&w->lock);
  if (w->req != GITWORKER_NONE || w->have_result) {
    r = -EBUSY;
  } else {
    w->req = kind;
    str_copy(w->known, sizeof(w->known), known ? known : "");
    str_copy(w->base, sizeof(w->base), base ? base : "");
    str_copy(w->ledger_base, sizeof(w->ledger_base), ledger_base ? ledger_base : "");
    pthread_cond_signal(&w->cond);
  }
  pthread_mutex_unlock(&w->lock);
  return r;
}

bool gitworker_take(struct gitworker *w, struct gitworker_result *ret) {
  uint64_t v;
  bool got = false;

  pthread_mutex_lock(&w->lock);
  if (w->have_result) {
    *ret = w->res;
    memset(&w->res, 0, sizeof(w->res));
    w->have_result = false;
    got = true;
    if (read(w->efd, &v, sizeof(v)) < 0) {
      /* EAGAIN: already drained */
    }
    pthread_cond_signal(&w->cond);
  }
  pthread_mutex_unlock(&w->lock);
  return got;
}

void gitworker_result_dispose(struct gitworker_result *res) {
  diag_list_dispose(&res->diags);
  intent_repo_free(res->repo);
  memset(res, 0, sizeof(*res));
}
