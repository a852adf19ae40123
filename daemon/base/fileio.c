/* Bounded reads and crash-safe atomic file replacement. */
#include "base/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"
#include "base/str.h"

int fd_read_all(int fd, const char *name, size_t max, struct buf *out, struct err *err) {
  size_t start = out->len;

  for (;;) {
    ssize_t n;

    buf_reserve(out, 65536);
    n = read(fd, out->data + out->len, out->cap - out->len - 1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return err_set_errno(err, -errno, "cannot read '%s'", name);
    }
    if (n == 0)
      break;
    out->len += (size_t)n;
    out->data[out->len] = '\0';
    if (out->len - start > max) {
      buf_truncate(out, start);
      err_set_src(err, -EFBIG, ERR_SRC_INPUT, "'%s' is larger than the limit of %zu bytes", name,
                  max);
      return -EFBIG;
    }
  }
  return 0;
}

int file_read_all(const char *path, size_t max, struct buf *out, struct err *err) {
  int fd, r;
  struct stat st;

  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return err_set_errno(err, -errno, "cannot open '%s'", path);
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    close(fd);
    return err_set(err, -EISDIR, "'%s' is a directory", path);
  }
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
    close(fd);
    return err_set_src(err, -EFBIG, ERR_SRC_INPUT, "'%s' is larger than the limit of %zu bytes",
                       path, max);
  }
  r = fd_read_all(fd, path, max, out, err);
  close(fd);
  return r;
}

int fd_write_all(int fd, const void *data, size_t len) {
  const char *p = data;

  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int dir_fsync_parent(const char *path, struct err *err) {
  char *dir = path_dirname(path);
  int fd, r = 0;

  fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    r = err_set_errno(err, -errno, "cannot open directory '%s'", dir);
  } else {
    if (fsync(fd) < 0)
      r = err_set_errno(err, -errno, "cannot fsync directory '%s'", dir);
    close(fd);
  }
  free(dir);
  return r;
}

static int write_replace(const char *path, const void *data, size_t len, mode_t mode,
                         bool durable, struct err *err) {
  char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
  int fd, r;

  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) {
    r = err_set_errno(err, -errno, "cannot create '%s'", tmp);
    goto out;
  }
  r = fd_write_all(fd, data, len);
  if (r < 0) {
    err_set_errno(err, r, "cannot write '%s'", tmp);
    goto fail;
  }
  if (fchmod(fd, mode) < 0 || (durable && fsync(fd) < 0)) {
    r = err_set_errno(err, -errno, "cannot sync '%s'", tmp);
    goto fail;
  }
  if (close(fd) < 0) {
    fd = -1;
    r = err_set_errno(err, -errno, "cannot close '%s'", tmp);
    goto fail;
  }
  fd = -1;
  if (rename(tmp, path) < 0) {
    r = err_set_errno(err, -errno, "cannot rename '%s' to '%s'", tmp, path);
    goto fail;
  }
  r = durable ? dir_fsync_parent(path, err) : 0;
  goto out;
fail:
  if (fd >= 0)
    close(fd);
  unlink(tmp);
out:
  free(tmp);
  return r;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                      struct err *err) {
  return write_replace(path, data, len, mode, true, err);
}

int file_replace(const char *path, const void *data, size_t len, mode_t mode, struct err *err) {
  return write_replace(path, data, len, mode, false, err);
}

int dir_make_all(const char *path, mode_t mode, struct err *err) {
  char *p = xstrdup(path);
  int r = 0;

  for (char *s = p + 1; ; s++) {
    if (*s == '/' || *s == '\0') {
      char c = *s;
      *s = '\0';
      if (mkdir(p, mode) < 0 && errno != EEXIST) {
        r = err_set_errno(err, -errno, "cannot create directory '%s'", p);
        break;
      }
      *s = c;
      if (c == '\0')
        break;
    }
  }
  free(p);
  return r;
}

char *path_join(const char *dir, const char *rel) {
  size_t n;

  if (rel[0] == '/' || str_is_empty(dir))
    return xstrdup(rel);
  n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/')
    n--;
  return xasprintf("%.*s/%s", (int)n, dir, rel);
}

char *path_dirname(const char *path) {
  const char *slash = strrchr(path, '/');

  if (!slash)
    return xstrdup(".");
  if (slash == path)
    return xstrdup("/");
  return xstrndup(path, (size_t)(slash - path));
}
