/* Loading a config repo checkout for the commands that work on one
 * (validate, render, diff, sync): a directory -> fileset -> intent_repo, with
 * every problem printed in compiler format. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileset.h"
#include "base/mem.h"
#include "base/str.h"
#include "cli/cli.h"
#include "render/render.h"


/* Message prefix for files of @dir: "" for ".", else "dir/". */
static char *root_name(const char *dir) {
  size_t n = strlen(dir);

  if (strcmp(dir, ".") == 0 || strcmp(dir, "./") == 0)
    return xstrdup("");
  while (n > 1 && dir[n - 1] == '/')
    n--;
  return xasprintf("%.*s/", (int)n, dir);
}

int cli_repo_load_dir(const char *dir, struct intent_repo **ret, struct diag_list *diags,
                      struct err *err) {
  struct fileset fs;
  struct intent_load_options opts = {0};
  char *root = root_name(dir);
  int r;

  fileset_init(&fs, NULL);
  r = fileset_load_dir(&fs, dir, intent_file_suffixes, err);
  if (r < 0)
    goto out;
  opts.root_name = root;
  opts.known_templates = render_template_names();
  r = intent_repo_load(&fs, &opts, ret, diags, err);
out:
  fileset_dispose(&fs);
  free(root);
  return r;
}

static int count_object(void *userdata, const struct render_object *obj) {
  (void)obj;
  (*(size_t *)userdata)++;
  return 0;
}

int cli_repo_check_render(const struct intent_repo *repo, const char *istio_api,
                          struct diag_list *diags, size_t *ret_objects, struct err *err) {
  const struct intent_fleet *f = repo->fleet;
  struct render_options opts = {.istio_api_version = istio_api};
  size_t total = 0;
  int r = 0;

  /* per cluster, as each cluster would get it: collisions and template
   * problems show up exactly where they would bite */
  for (size_t c = 0; c < f->n_clusters && r >= 0; c++) {
    size_t before = diags->errors, n = 0;
    opts.cluster = &f->clusters[c];
    r = render_repo(repo, &opts, count_object, &n, diags, err);
    total += n;
    if (r == -EINVAL && diags->errors > before)
      break; /* the same problem would repeat for every cluster */
  }
  if (ret_objects)
    *ret_objects = total;
  return r;
}
