/* A set of files held in memory: the contents of a config-repo checkout or of
 * a Git tree, read once and handed to the intent loader. Paths are relative
 * to the root of the set, '/'-separated, without "./"; entries are sorted by
 * path so everything built from a fileset is deterministic.
 *
 * Bounds (struct fileset_limits) apply while a set is filled: bytes of one
 * file, total bytes, number of files, path length and directory depth. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "base/strmap.h"

struct fileset_entry {
  char *path;     /* relative, owned */
  char *data;     /* owned, NUL-terminated (len excludes the NUL) */
  size_t len;
};

struct fileset_limits {
  size_t max_file_bytes;
  size_t max_total_bytes;
  size_t max_files;
  size_t max_path;
  unsigned max_depth;
};

/* 8 MiB per file, 256 MiB in all, 100,000 files, 1024-byte paths, depth 32. */
extern const struct fileset_limits fileset_limits_default;

struct fileset {
  struct fileset_entry *items;
  size_t n, cap;
  size_t total_bytes;
  struct fileset_limits lim;
  struct strmap paths;   /* duplicate detection while filling */
  bool sorted;
};

/* Start an empty set with @lim (NULL: the defaults). */
void fileset_init(struct fileset *fs, const struct fileset_limits *lim);
/* Add a copy of @data under @path. -E2BIG when a bound is exceeded, -EINVAL
 * for an absolute or ".."-containing path, -EEXIST for a duplicate. */
int fileset_add(struct fileset *fs, const char *path, const void *data, size_t len,
                struct err *err);
/* Read the regular files under @dir whose names end in one of @suffixes
 * (NULL-terminated list; NULL = every file), skipping hidden entries (".git",
 * ".github" ...). Symbolic links are not followed. */
int fileset_load_dir(struct fileset *fs, const char *dir, const char *const *suffixes,
                     struct err *err);
/* Sort by path (done lazily by fileset_get and the iterators' users). */
void fileset_sort(struct fileset *fs);
/* Find an entry by exact path (sorts first). */
const struct fileset_entry *fileset_get(struct fileset *fs, const char *path);
void fileset_dispose(struct fileset *fs);
