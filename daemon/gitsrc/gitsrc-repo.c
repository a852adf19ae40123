/* The bare cache repository and reading from it: open/create, revisions,
 * ancestry and the rewrite refusal, a commit's tree into a struct fileset.
 *
 * Invariants: nothing here touches the network (gitsrc-fetch.c does, in a
 * child process); every object is size-checked with git_odb_read_header()
 * before it is loaded; a struct gitsrc is used by one thread at a time.
 * When you add an option to struct gitsrc_opts, also touch gitsrc_open()
 * (copy and validation), gitsrc_free() and docs/signing.md or the fetch page.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/fileio.h"
#include "base/mem.h"
#include "base/redact.h"
#include "base/str.h"
#include "gitsrc/gitsrc-int.h"

#define REMOTE_NAME "origin"

/* --- libgit2 glue --------------------------------------------------------- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result;

static void global_init(void) {
  int r = git_libgit2_init();
  if (r < 0) {
    init_result = -EIO;
    return;
  }
  init_result = sodium_init() < 0 ? -EIO : 0;
}

int gitsrc_global_init(struct err *err) {
  pthread_once(&init_once, global_init);
  if (init_result < 0)
    return err_set_src(err, init_result, ERR_SRC_GIT, "cannot initialise libgit2 or libsodium");
  return 0;
}

int gitsrc_git_error(struct err *err, int gitrc, const char *fmt, ...) {
  const git_error *ge = git_error_last();
  char what[512];
  va_list ap;
  int code;

  switch (gitrc) {
  case GIT_ENOTFOUND:
    code = -ENOENT;
    break;
  case GIT_EAUTH:
    code = -EACCES;
    break;
  case GIT_ECERTIFICATE:
    code = -EPERM;
    break;
  case GIT_ELOCKED:
    code = -EBUSY;
    break;
  case GIT_EEXISTS:
    code = -EEXIST;
    break;
  case GIT_EINVALIDSPEC:
  case GIT_EINVALID:
    code = -EINVAL;
    break;
  case GIT_EUSER:
    code = -ECANCELED;
    break;
  default:
    code = -EIO;
    break;
  }
  va_start(ap, fmt);
  str_vformat(what, sizeof(what), fmt, ap);
  va_end(ap);
  code = err_set_src(err, code, ERR_SRC_GIT, "%s: %s", what,
                     ge && ge->message ? ge->message : "unknown libgit2 error");
  if (err && ge && err->detail == 0)
    err->detail = ge->klass;
  return code;
}

void gitsrc_oid_from_git(struct gitsrc_oid *dst, const git_oid *src) {
  git_oid_tostr(dst->hex, sizeof(dst->hex), src);
}

int gitsrc_oid_to_git(git_oid *dst, const struct gitsrc_oid *src) {
  if (strlen(src->hex) != GITSRC_OID_HEXSZ)
    return -EINVAL;
  return git_oid_fromstrn(dst, src->hex, GITSRC_OID_HEXSZ) < 0 ? -EINVAL : 0;
}

int gitsrc_oid_parse(const char *hex, struct gitsrc_oid *ret) {
  if (!hex || strlen(hex) != GITSRC_OID_HEXSZ)
    return -EINVAL;
  for (size_t i = 0; i < GITSRC_OID_HEXSZ; i++) {
    char c = hex[i];
    if (c >= 'A' && c <= 'F')
      c = (char)(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return -EINVAL;
    ret->hex[i] = c;
  }
  ret->hex[GITSRC_OID_HEXSZ] = '\0';
  return 0;
}

bool gitsrc_oid_eq(const struct gitsrc_oid *a, const struct gitsrc_oid *b) {
  return strcmp(a->hex, b->hex) == 0;
}

/* --- options -------------------------------------------------------------- */

static bool is_scp_like(const char *url) {
  const char *colon = strchr(url, ':'), *slash = strchr(url, '/');
  return !strstr(url, "://") && colon && colon != url && (!slash || colon < slash);
}

static bool is_ssh_url(const char *url) {
  return str_has_prefix(url, "ssh://") || str_has_prefix(url, "ssh+git://") ||
         str_has_prefix(url, "git+ssh://") || is_scp_like(url);
}

static bool is_http_url(const char *url) {
  return str_has_prefix(url, "http://") || str_has_prefix(url, "https://");
}

static int check_readable(const char *what, const char *path, struct err *err) {
  if (access(path, R_OK) < 0)
    return err_set_errno(err, -errno, "cannot read %s '%s'", what, path);
  return 0;
}

static int check_opts(const struct gitsrc_opts *o, struct err *err) {
  const char *scheme_end;
  char *shown;
  int valid = 0, r = 0;

  if (str_is_empty(o->url))
    return err_set_src(err, -EINVAL, ERR_SRC_INPUT, "the repository URL is empty");
  if (str_is_empty(o->cache_dir))
    return err_set_src(err, -EINVAL, ERR_SRC_INPUT, "the cache directory is not set");
  /* every message below quotes the URL without its credentials (W-8) */
  shown = url_redact(o->url);
  if (!(str_has_prefix(o->url, "file://") || str_has_prefix(o->url, "git://") ||
        is_http_url(o->url) || is_ssh_url(o->url) || o->url[0] == '/')) {
    r = err_set_src(err, -EINVAL, ERR_SRC_INPUT,
                    "unsupported repository URL '%s': use file://, git://, http(s)://, "
                    "ssh:// or user@host:path",
                    shown);
    goto out;
  }
  scheme_end = strstr(o->url, "://");
  if (scheme_end) {
    const char *host = scheme_end + 3, *at, *slash = strchr(host, '/');
    at = memchr(host, '@', slash ? (size_t)(slash - host) : strlen(host));
    if (at && memchr(host, ':', (size_t)(at - host))) {
      r = err_set_src(err, -EINVAL, ERR_SRC_INPUT,
                      "the repository URL contains a password; put it in password_file "
                      "(or token_file) instead");
      goto out;
    }
  }
  if (o->ref && (git_reference_name_is_valid(&valid, o->ref) < 0 || !valid ||
                 !str_has_prefix(o->ref, "refs/"))) {
    r = err_set_src(err, -EINVAL, ERR_SRC_INPUT,
                    "invalid ref '%s': give a full ref name such as refs/heads/main", o->ref);
    goto out;
  }
  if (o->token_file && o->password_file) {
    r = err_set_src(err, -EINVAL, ERR_SRC_INPUT,
                    "token_file and password_file are exclusive; set one of them");
    goto out;
  }
  if (o->password_file && str_is_empty(o->username)) {
    r = err_set_src(err, -EINVAL, ERR_SRC_INPUT, "password_file needs a username");
    goto out;
  }
  if ((o->token_file || o->password_file) && !is_http_url(o->url)) {
    r = err_set_src(err, -EINVAL, ERR_SRC_INPUT,
                    "token_file and password_file are for http(s):// URLs, not '%s'", shown);
    goto out;
  }
  if ((o->token_file || o->password_file) && str_has_prefix(o->url, "http://")) {
    /* as the kube client refuses basic auth without TLS; no exception for
     * loopback: a proxy or another local user may be listening there */
    r = err_set_src(err, -EINVAL, ERR_SRC_INPUT,
                    "refusing to send %s over plain http:// to '%s': anyone on the path can read "
                    "it; use the server's https:// URL (with ca_file for a private CA)",
                    o->token_file ? "the token of token_file" : "the password of password_file",
                    shown);
    goto out;
  }
  if (o->ssh_key && !is_ssh_url(o->url)) {
    r = err_set_src(err, -EINVAL, ERR_SRC_INPUT, "ssh_key is for ssh:// URLs, not '%s'", shown);
    goto out;
  }
  if (is_ssh_url(o->url) && str_is_empty(o->ssh_key)) {
    r = err_set_src(err, -EINVAL, ERR_SRC_INPUT,
                    "the SSH URL '%s' needs ssh_key (a deploy key file)", shown);
    goto out;
  }
  if ((o->token_file && check_readable("token_file", o->token_file, err) < 0) ||
      (o->password_file && check_readable("password_file", o->password_file, err) < 0) ||
      (o->ssh_key && check_readable("ssh_key", o->ssh_key, err) < 0) ||
      (o->ssh_known_hosts && check_readable("ssh_known_hosts", o->ssh_known_hosts, err) < 0) ||
      (o->ca_file && check_readable("ca_file", o->ca_file, err) < 0))
    r = -EACCES;
out:
  free(shown);
  return r;
}

static char *dup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

static bool dir_is_empty_or_missing(const char *path) {
  DIR *d = opendir(path);
  struct dirent *de;
  bool empty = true;

  if (!d)
    return errno == ENOENT;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
      empty = false;
      break;
    }
  closedir(d);
  return empty;
}

static int config_set_if_changed(git_config *cfg, const char *key, const char *value,
                                 struct err *err, const char *path) {
  git_buf cur = {0};
  int r = git_config_get_string_buf(&cur, cfg, key);
  bool same = r == 0 && strcmp(cur.ptr, value) == 0;

  git_buf_dispose(&cur);
  if (same)
    return 0;
  if ((r = git_config_set_string(cfg, key, value)) < 0)
    return gitsrc_git_error(err, r, "cannot set %s in %s", key, path);
  return 0;
}

int gitsrc_open(const struct gitsrc_opts *opts, struct gitsrc **ret, struct err *err) {
  struct gitsrc *src;
  git_config *cfg = NULL;
  char *spec;
  int r;

  if ((r = gitsrc_global_init(err)) < 0)
    return r;
  if ((r = check_opts(opts, err)) < 0)
    return r;
  src = xcalloc(1, sizeof(*src));
  src->path = xstrdup(opts->cache_dir);
  src->url = xstrdup(opts->url);
  src->url_shown = url_redact(opts->url);
  src->ref = xstrdup(opts->ref ? opts->ref : GITSRC_DEFAULT_REF);
  src->cache_dir = xstrdup(opts->cache_dir);
  src->token_file = dup_or_null(opts->token_file);
  src->token_auth = opts->token_auth;
  src->username = dup_or_null(opts->username);
  src->password_file = dup_or_null(opts->password_file);
  src->ca_file = dup_or_null(opts->ca_file);
  src->ssh_key = dup_or_null(opts->ssh_key);
  src->ssh_known_hosts = dup_or_null(opts->ssh_known_hosts);
  src->ssh_insecure_skip_host_key_check = opts->ssh_insecure_skip_host_key_check;
  src->allow_rewrite = opts->allow_rewrite;
  src->max_pack_bytes = opts->max_pack_bytes ? opts->max_pack_bytes : GITSRC_DEFAULT_MAX_PACK_BYTES;
  src->max_object_bytes =
      opts->max_object_bytes ? opts->max_object_bytes : GITSRC_DEFAULT_MAX_OBJECT_BYTES;
  src->timeout_sec = opts->timeout_sec ? opts->timeout_sec : GITSRC_DEFAULT_TIMEOUT_SEC;

  r = git_repository_open_ext(&src->repo, src->cache_dir,
                              GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE, NULL);
  if (r == GIT_ENOTFOUND) {
    if (!dir_is_empty_or_missing(src->cache_dir)) {
      r = err_set_src(err, -EEXIST, ERR_SRC_INPUT,
                      "cache directory '%s' is neither a bare git repository nor empty; point "
                      "it at an empty or missing directory",
                      src->cache_dir);
      goto fail;
    }
    if ((r = dir_make_all(src->cache_dir, 0700, err)) < 0)
      goto fail;
    r = git_repository_init(&src->repo, src->cache_dir, 1);
    if (r < 0) {
      r = gitsrc_git_error(err, r, "cannot create a bare repository in '%s'", src->cache_dir);
      goto fail;
    }
  } else if (r < 0) {
    r = gitsrc_git_error(err, r, "cannot open cache repository '%s'", src->cache_dir);
    goto fail;
  }
  if (!git_repository_is_bare(src->repo)) {
    r = err_set_src(err, -EEXIST, ERR_SRC_INPUT,
                    "cache directory '%s' holds a repository with a work tree; egressd keeps "
                    "a bare repository there, point it at an empty or missing directory",
                    src->cache_dir);
    goto fail;
  }
  if ((r = git_repository_config(&cfg, src->repo)) < 0) {
    r = gitsrc_git_error(err, r, "cannot read the configuration of '%s'", src->cache_dir);
    goto fail;
  }
  spec = xasprintf("+%s:%s", src->ref, GITSRC_FETCH_REF);
  r = config_set_if_changed(cfg, "remote." REMOTE_NAME ".url", src->url, err, src->cache_dir);
  if (r >= 0)
    r = config_set_if_changed(cfg, "remote." REMOTE_NAME ".fetch", spec, err, src->cache_dir);
  free(spec);
  git_config_free(cfg);
  if (r < 0)
    goto fail;
  *ret = src;
  return 0;
fail:
  gitsrc_free(src);
  return r;
}

int gitsrc_open_local(const char *path, struct gitsrc **ret, struct err *err) {
  struct gitsrc *src;
  int r;

  if ((r = gitsrc_global_init(err)) < 0)
    return r;
  src = xcalloc(1, sizeof(*src));
  src->local_only = true;
  src->path = xstrdup(path);
  src->max_object_bytes = GITSRC_DEFAULT_MAX_OBJECT_BYTES;
  r = git_repository_open_ext(&src->repo, path, 0, NULL);
  if (r < 0) {
    r = gitsrc_git_error(err, r, "cannot open repository '%s'", path);
    gitsrc_free(src);
    return r;
  }
  *ret = src;
  return 0;
}

void gitsrc_free(struct gitsrc *src) {
  if (!src)
    return;
  git_repository_free(src->repo);
  free(src->path);
  free(src->url);
  free(src->url_shown);
  free(src->ref);
  free(src->cache_dir);
  free(src->token_file);
  free(src->username);
  free(src->password_file);
  free(src->ca_file);
  free(src->ssh_key);
  free(src->ssh_known_hosts);
  free(src);
}

/* --- revisions and history ------------------------------------------------ */

int gitsrc_fetched_head(struct gitsrc *src, struct gitsrc_oid *ret, struct err *err) {
  git_oid id;
  int r = git_reference_name_to_id(&id, src->repo, GITSRC_FETCH_REF);

  if (r < 0)
    return gitsrc_git_error(err, r, "no fetched head in '%s' yet", src->path);
  gitsrc_oid_from_git(ret, &id);
  return 0;
}

int gitsrc_resolve(struct gitsrc *src, const char *rev, struct gitsrc_oid *ret, struct err *err) {
  git_object *obj = NULL, *commit = NULL;
  int r = git_revparse_single(&obj, src->repo, rev);

  if (r < 0)
    return gitsrc_git_error(err, r, "unknown revision '%s' in '%s'", rev, src->path);
  r = git_object_peel(&commit, obj, GIT_OBJECT_COMMIT);
  git_object_free(obj);
  if (r < 0)
    return gitsrc_git_error(err, r, "'%s' does not name a commit", rev);
  gitsrc_oid_from_git(ret, git_object_id(commit));
  git_object_free(commit);
  return 0;
}

int gitsrc_is_descendant(struct gitsrc *src, const struct gitsrc_oid *ancestor,
                         const struct gitsrc_oid *descendant, struct err *err) {
  git_oid a, d;
  int r;

  if (gitsrc_oid_to_git(&a, ancestor) < 0 || gitsrc_oid_to_git(&d, descendant) < 0)
    return err_set(err, -EINVAL, "invalid commit id");
  if (git_oid_equal(&a, &d))
    return 1;
  r = git_graph_descendant_of(src->repo, &d, &a);
  if (r < 0)
    return gitsrc_git_error(err, r, "cannot tell whether %s descends from %s", descendant->hex,
                            ancestor->hex);
  return r > 0 ? 1 : 0;
}

int gitsrc_check_history(struct gitsrc *src, const struct gitsrc_oid *last_applied,
                         const struct gitsrc_oid *new_head, struct err *err) {
  git_oid a;
  int r;

  if (!last_applied)
    return 0;
  if (gitsrc_oid_to_git(&a, last_applied) < 0)
    return err_set(err, -EINVAL, "invalid commit id '%s'", last_applied->hex);
  {
    git_odb *odb = NULL;
    bool exists = git_repository_odb(&odb, src->repo) == 0 && git_odb_exists(odb, &a);
    git_odb_free(odb);
    if (!exists)
      return err_set_src(err, -ENOENT, ERR_SRC_GIT,
                         "the last applied commit %s is not in the repository '%s'",
                         last_applied->hex, src->path);
  }
  r = gitsrc_is_descendant(src, last_applied, new_head, err);
  if (r < 0)
    return r;
  if (r == 1)
    return 0;
  if (src->allow_rewrite)
    return 1;
  return err_set_src(err, -ESTALE, ERR_SRC_GIT,
                     "history was rewritten upstream: the new head %s of %s is not a descendant "
                     "of the last applied commit %s; refusing it (allow rewrites in the host "
                     "config to accept rewritten history)",
                     new_head->hex, src->ref ? src->ref : "the ref", last_applied->hex);
}

/* --- trees ---------------------------------------------------------------- */

struct tree_walk {
  struct gitsrc *src;
  const struct gitsrc_oid *commit;
  const char *const *suffixes;
  struct fileset *out;
  git_odb *odb;
  struct err *err;
};

static int walk_tree(struct tree_walk *w, git_tree *tree, const char *prefix, unsigned depth) {
  size_t n = git_tree_entrycount(tree);

  if (depth > w->out->lim.max_depth)
    return err_set_src(w->err, -E2BIG, ERR_SRC_INPUT,
                       "'%s' in commit %s is nested deeper than %u directories", prefix,
                       w->commit->hex, w->out->lim.max_depth);
  for (size_t i = 0; i < n; i++) {
    const git_tree_entry *e = git_tree_entry_byindex(tree, i);
    const char *name = git_tree_entry_name(e);
    git_filemode_t mode = git_tree_entry_filemode(e);
    char *path;
    int r = 0;

    if (name[0] == '.')
      continue; /* hidden, as fileset_load_dir() skips them */
    path = *prefix ? xasprintf("%s/%s", prefix, name) : xstrdup(name);
    if (strlen(path) > w->out->lim.max_path) {
      r = err_set_src(w->err, -E2BIG, ERR_SRC_INPUT, "path '%.64s...' is longer than %zu bytes",
                      path, w->out->lim.max_path);
    } else if (mode == GIT_FILEMODE_TREE) {
      git_tree *sub = NULL;
      r = git_tree_lookup(&sub, w->src->repo, git_tree_entry_id(e));
      if (r < 0)
        r = gitsrc_git_error(w->err, r, "cannot read directory '%s' of commit %s", path,
                             w->commit->hex);
      else
        r = walk_tree(w, sub, path, depth + 1);
      git_tree_free(sub);
    } else if ((mode == GIT_FILEMODE_BLOB || mode == GIT_FILEMODE_BLOB_EXECUTABLE) &&
               str_has_any_suffix(name, w->suffixes)) {
      size_t size, max = w->out->lim.max_file_bytes;
      git_object_t type;
      git_blob *blob = NULL;

      if (w->src->max_object_bytes < max)
        max = (size_t)w->src->max_object_bytes;
      r = git_odb_read_header(&size, &type, w->odb, git_tree_entry_id(e));
      if (r < 0) {
        r = gitsrc_git_error(w->err, r, "cannot read '%s' of commit %s", path, w->commit->hex);
      } else if (size > max) {
        r = err_set_src(w->err, -E2BIG, ERR_SRC_INPUT,
                        "'%s' in commit %s is %zu bytes, larger than the limit of %zu bytes", path,
                        w->commit->hex, size, max);
      } else if ((r = git_blob_lookup(&blob, w->src->repo, git_tree_entry_id(e))) < 0) {
        r = gitsrc_git_error(w->err, r, "cannot read '%s' of commit %s", path, w->commit->hex);
      } else {
        r = fileset_add(w->out, path, git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob),
                        w->err);
      }
      git_blob_free(blob);
    }
    /* GIT_FILEMODE_LINK (symbolic links) and GIT_FILEMODE_COMMIT (submodules)
     * are skipped: the config repo is read as plain files only. */
    free(path);
    if (r < 0)
      return r;
  }
  return 0;
}

int gitsrc_tree_read(struct gitsrc *src, const struct gitsrc_oid *commit,
                     const char *const *suffixes, struct fileset *out, struct err *err) {
  git_oid id;
  git_commit *c = NULL;
  git_tree *tree = NULL;
  struct tree_walk w = {src, commit, suffixes, out, NULL, err};
  int r;

  if (gitsrc_oid_to_git(&id, commit) < 0)
    return err_set(err, -EINVAL, "invalid commit id '%s'", commit->hex);
  if ((r = git_repository_odb(&w.odb, src->repo)) < 0)
    return gitsrc_git_error(err, r, "cannot open the object database of '%s'", src->path);
  if ((r = git_commit_lookup(&c, src->repo, &id)) < 0 || (r = git_commit_tree(&tree, c)) < 0)
    r = gitsrc_git_error(err, r, "cannot read the tree of commit %s", commit->hex);
  else
    r = walk_tree(&w, tree, "", 0);
  git_tree_free(tree);
  git_commit_free(c);
  git_odb_free(w.odb);
  return r;
}
