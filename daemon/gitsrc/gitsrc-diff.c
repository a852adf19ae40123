/* Unified diffs of two texts through libgit2 (git_patch_from_buffers), for
 * `egressd diff`: egressd never hand-writes a diff algorithm. */
#include <errno.h>
#include <git2.h>

#include "gitsrc/gitsrc-int.h"
#include "gitsrc/gitsrc.h"

int gitsrc_diff_text(const char *old_text, size_t old_len, const char *old_name,
                     const char *new_text, size_t new_len, const char *new_name, struct buf *out,
                     struct err *err) {
  git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
  git_patch *patch = NULL;
  git_buf text = {0};
  int r;

  if ((r = gitsrc_global_init(err)) < 0)
    return r;
  opts.context_lines = 3;
  if (git_patch_from_buffers(&patch, old_text, old_len, old_name, new_text, new_len, new_name,
                             &opts) < 0) {
    const git_error *ge = git_error_last();
    return err_set(err, -EIO, "cannot diff %s: %s", new_name, ge ? ge->message : "libgit2 error");
  }
  if (git_patch_num_hunks(patch) > 0) {
    if (git_patch_to_buf(&text, patch) < 0) {
      const git_error *ge = git_error_last();
      git_patch_free(patch);
      return err_set(err, -EIO, "cannot format the diff of %s: %s", new_name,
                     ge ? ge->message : "libgit2 error");
    }
    buf_append(out, text.ptr, text.size);
    git_buf_dispose(&text);
  }
  git_patch_free(patch);
  return 0;
}
