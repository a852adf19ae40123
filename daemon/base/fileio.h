/* File I/O with bounds and crash-safe replacement. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/err.h"

/* Read all of @path into @out (appending). Fails with -EFBIG when the file is
 * larger than @max bytes, naming the file and the limit. */
int file_read_all(const char *path, size_t max, struct buf *out, struct err *err);
int fd_read_all(int fd, const char *name, size_t max, struct buf *out, struct err *err);

/* Replace @path atomically: write a temporary file in the same directory,
 * fsync it, rename it over @path, fsync the directory. A crash leaves either
 * the old or the new content, never a mix.
 *
 * The temporary file is "<path>.tmp.<random>", created with
 * O_CREAT|O_EXCL|O_NOFOLLOW and mode @mode: whatever someone else put in the
 * directory (a symlink, a FIFO, a file of theirs) is never followed, opened
 * or renamed into place; a taken name is skipped for a fresh one (-EEXIST
 * after 64 taken names). A symlink at @path itself is replaced, not
 * followed. A crash between create and rename may leave a temporary file. */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                      struct err *err);
/* The same without the fsyncs: readers never see a partial file, but a
 * crash may lose the update. For files rewritten often and regenerated at
 * every start (status.json, the metrics). */
int file_replace(const char *path, const void *data, size_t len, mode_t mode, struct err *err);
/* Create @path afresh and open it for writing: whatever is there (a file, a
 * symlink or a FIFO someone planted) is unlinked first, never followed or
 * opened; then O_CREAT|O_EXCL|O_NOFOLLOW with @mode. For a temporary file
 * whose name is fixed because recovery looks for it (the ledger's
 * checkpoint.tmp); use file_write_atomic() where the name is free. Returns
 * the descriptor (close-on-exec) or -errno (-EEXIST: it reappeared between
 * the unlink and the create). */
int file_create_fresh(const char *path, mode_t mode, struct err *err);
/* For tests: draw the temporary names' suffixes from @fn (it writes a
 * NUL-terminated suffix of at most @size - 1 characters) instead of
 * getrandom(2). NULL restores the default. */
void file_tmp_suffix_hook(void (*fn)(char *out, size_t size));

/* Write all @len bytes to @fd, retrying on EINTR and short writes. */
int fd_write_all(int fd, const void *data, size_t len);

/* fsync the directory containing @path. */
int dir_fsync_parent(const char *path, struct err *err);

/* mkdir -p with @mode for the directories it creates. */
int dir_make_all(const char *path, mode_t mode, struct err *err);

/* Join a directory and a relative path; an absolute @rel is returned as is.
 * Returns a malloc'd string. */
char *path_join(const char *dir, const char *rel);
/* The directory part of @path ("." when it has none); malloc'd. */
char *path_dirname(const char *path);
