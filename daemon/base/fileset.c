/* struct fileset: bounded in-memory file trees; see fileset.h. */
#include "base/fileset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/mem.h"
#include "base/str.h"

const struct fileset_limits fileset_limits_default = {
    .max_file_bytes = 8u << 20,
    .max_total_bytes = 256u << 20,
    .max_files = 100000,
    .max_path = 1024,
    .max_depth = 32,
};

void fileset_init(struct fileset *fs, const struct fileset_limits *lim) {
  memset(fs, 0, sizeof(*fs));
  fs->lim = lim ? *lim : fileset_limits_default;
  fs->sorted = true;
}

static bool path_ok(const char *p) {
  if (!*p || p[0] == '/')
    return false;
  for (const char *s = p; *s;) {
    const char *slash = strchr(s, '/');
    size_t len = slash ? (size_t)(slash - s) : strlen(s);
    if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
      return false;
    s += len + (slash ? 1 : 0);
  }
  return true;
}

int fileset_add(struct fileset *fs, const char *path, const void *data, size_t len,
                struct err *err) {
  struct fileset_entry *e;

  if (!path_ok(path))
    return err_set_src(err, -EINVAL, ERR_SRC_INPUT, "invalid path '%s' in the file set", path);
  if (strlen(path) > fs->lim.max_path)
    return err_set_src(err, -E2BIG, ERR_SRC_INPUT, "path '%.64s...' is longer than %zu bytes",
                       path, fs->lim.max_path);
  if (len > fs->lim.max_file_bytes)
    return err_set_src(err, -E2BIG, ERR_SRC_INPUT,
                       "'%s' is %zu bytes, larger than the limit of %zu bytes per file", path, len,
                       fs->lim.max_file_bytes);
  if (fs->n >= fs->lim.max_files)
    return err_set_src(err, -E2BIG, ERR_SRC_INPUT, "more than %zu files", fs->lim.max_files);
  if (fs->total_bytes + len > fs->lim.max_total_bytes)
    return err_set_src(err, -E2BIG, ERR_SRC_INPUT,
                       "the files add up to more than the limit of %zu bytes",
                       fs->lim.max_total_bytes);
  if (strmap_has(&fs->paths, path))
    return err_set_src(err, -EEXIST, ERR_SRC_INPUT, "'%s' is in the file set twice", path);
  fs->items = xgrow(fs->items, &fs->cap, fs->n + 1, sizeof(*fs->items));
  e = &fs->items[fs->n++];
  e->path = xstrdup(path);
  e->data = xmalloc(len + 1);
  if (len)
    memcpy(e->data, data, len);
  e->data[len] = '\0';
  e->len = len;
  fs->total_bytes += len;
  strmap_put(&fs->paths, path, NULL); /* presence only: items may move */
  if (fs->n > 1 && strcmp(fs->items[fs->n - 2].path, path) > 0)
    fs->sorted = false;
  return 0;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load(struct fileset *fs, int dirfd, const char *rel, unsigned depth,
                const char *const *suffixes, const char *root, struct err *err) {
  DIR *d;
  struct dirent *de;
  char **names = NULL;
  size_t n = 0, cap = 0;
  int r = 0, fd;

  if (depth > fs->lim.max_depth)
    return err_set_src(err, -E2BIG, ERR_SRC_INPUT, "'%s/%s' is nested deeper than %u directories",
                       root, rel, fs->lim.max_depth);
  fd = openat(dirfd, *rel ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return err_set_errno(err, -errno, "cannot open directory '%s/%s'", root, rel);
  d = fdopendir(fd);
  if (!d) {
    close(fd);
    return err_set_errno(err, -errno, "cannot read directory '%s/%s'", root, rel);
  }
  /* read all names first, then visit them sorted: deterministic order */
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.')
      continue;
    names = xgrow(names, &cap, n + 1, sizeof(*names));
    names[n++] = xstrdup(de->d_name);
  }
  if (n)
    qsort(names, n, sizeof(*names), cmp_name);
  for (size_t i = 0; i < n && r >= 0; i++) {
    char *child = *rel ? xasprintf("%s/%s", rel, names[i]) : xstrdup(names[i]);
    struct stat st;

    if (fstatat(dirfd, child, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      r = err_set_errno(err, -errno, "cannot stat '%s/%s'", root, child);
    } else if (S_ISDIR(st.st_mode)) {
      r = load(fs, dirfd, child, depth + 1, suffixes, root, err);
    } else if (S_ISREG(st.st_mode) && str_has_any_suffix(names[i], suffixes) &&
               (uint64_t)st.st_size > fs->lim.max_file_bytes) {
      r = err_set_src(err, -E2BIG, ERR_SRC_INPUT,
                      "'%s/%s' is %lld bytes, larger than the limit of %zu bytes per file", root,
                      child, (long long)st.st_size, fs->lim.max_file_bytes);
    } else if (S_ISREG(st.st_mode) && str_has_any_suffix(names[i], suffixes)) {
      struct buf b = BUF_INIT;
      char *full = xasprintf("%s/%s", root, child);
      r = file_read_all(full, fs->lim.max_file_bytes, &b, err);
      if (r >= 0)
        r = fileset_add(fs, child, buf_cstr(&b), b.len, err);
      buf_dispose(&b);
      free(full);
    }
    free(child);
  }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  closedir(d);
  return r;
}

int fileset_load_dir(struct fileset *fs, const char *dir, const char *const *suffixes,
                     struct err *err) {
  int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r;

  if (dirfd < 0)
    return err_set_errno(err, -errno, "cannot open directory '%s'", dir);
  r = load(fs, dirfd, "", 0, suffixes, dir, err);
  close(dirfd);
  return r;
}

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const struct fileset_entry *)a)->path, ((const struct fileset_entry *)b)->path);
}

void fileset_sort(struct fileset *fs) {
  if (!fs->sorted) {
    qsort(fs->items, fs->n, sizeof(*fs->items), cmp_entry);
    fs->sorted = true;
  }
}

const struct fileset_entry *fileset_get(struct fileset *fs, const char *path) {
  struct fileset_entry key = {.path = (char *)(uintptr_t)path};

  fileset_sort(fs);
  return fs->n ? bsearch(&key, fs->items, fs->n, sizeof(*fs->items), cmp_entry) : NULL;
}

void fileset_dispose(struct fileset *fs) {
  for (size_t i = 0; i < fs->n; i++) {
    free(fs->items[i].path);
    free(fs->items[i].data);
  }
  free(fs->items);
  strmap_dispose(&fs->paths);
  memset(fs, 0, sizeof(*fs));
}
