/* Bounded reads and crash-safe atomic file replacement.
 *
 * Invariant of every write here: a file is created only with
 * O_CREAT|O_EXCL|O_NOFOLLOW at a name with a random part, relative to a
 * descriptor of its directory, so nothing planted in a directory others can
 * write (a symlink, a FIFO, a file) is followed, opened or renamed into
 * place (W-10). When you add a writer, create its file the same way
 * (file_write_atomic(), or tmp_create() below); tests/unit/test-base.c
 * plants at the names.
 */
#include "base/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
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

#define TMP_SUFFIX_LEN 12 /* 62^12: about 71 bits */
#define TMP_TRIES 64

static void (*suffix_hook)(char *out, size_t size);

void file_tmp_suffix_hook(void (*fn)(char *out, size_t size)) { suffix_hook = fn; }

static void random_suffix(char *out, size_t size) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char rnd[TMP_SUFFIX_LEN];
  size_t got = 0, n = size - 1 < TMP_SUFFIX_LEN ? size - 1 : TMP_SUFFIX_LEN;

  while (got < n) {
    ssize_t r = getrandom(rnd + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      abort(); /* since Linux 3.17; only a seccomp filter could refuse it */
    }
    got += (size_t)r;
  }
  for (size_t i = 0; i < n; i++)
    out[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
  out[n] = '\0';
}

/* Create a fresh temporary file for replacing @base in @dirfd: the name is
 * "<base>.tmp.<suffix>" (set in @name), the descriptor open for writing. A
 * name that exists, whatever it is, is skipped (O_EXCL). */
static int tmp_create(int dirfd, const char *path, const char *base, mode_t mode, char *name,
                      size_t size, struct err *err) {
  for (int i = 0; i < TMP_TRIES; i++) {
    char suffix[TMP_SUFFIX_LEN + 1];
    int fd;

    (suffix_hook ? suffix_hook : random_suffix)(suffix, sizeof(suffix));
    if (str_format(name, size, "%s.tmp.%s", base, suffix) >= size - 1)
      return err_set(err, -ENAMETOOLONG, "cannot create a temporary file next to '%s': the "
                     "name is too long", path);
    fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                mode);
    if (fd >= 0)
      return fd;
    if (errno != EEXIST && errno != EINTR)
      return err_set_errno(err, -errno, "cannot create '%s.tmp.%s'", path, suffix);
  }
  return err_set(err, -EEXIST, "cannot create a temporary file next to '%s': %d random names "
                 "in a row were taken; is someone else creating files in that directory?",
                 path, TMP_TRIES);
}

static int write_replace(const char *path, const void *data, size_t len, mode_t mode,
                         bool durable, struct err *err) {
  char *dir = path_dirname(path), *tmp = NULL;
  const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
  char name[4096];
  int dirfd, fd = -1, r;

  if (!*base) {
    r = err_set(err, -EISDIR, "cannot write '%s': it names a directory", path);
    free(dir);
    return r;
  }
  /* one descriptor of the directory for create, rename and fsync: they
   * happen in the same directory even if its path is changed meanwhile */
  dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) {
    r = err_set_errno(err, -errno, "cannot open directory '%s'", dir);
    free(dir);
    return r;
  }
  fd = tmp_create(dirfd, path, base, mode, name, sizeof(name), err);
  if (fd < 0) {
    r = fd;
    fd = -1;
    goto out;
  }
  tmp = xasprintf("%s%s", path, name + strlen(base)); /* for messages */
  r = fd_write_all(fd, data, len);
  if (r < 0) {
    err_set_errno(err, r, "cannot write '%s'", tmp);
    goto fail;
  }
  /* the umask may have narrowed the mode open() set */
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
  if (renameat(dirfd, name, dirfd, base) < 0) {
    r = err_set_errno(err, -errno, "cannot rename '%s' to '%s'", tmp, path);
    goto fail;
  }
  r = 0;
  if (durable && fsync(dirfd) < 0)
    r = err_set_errno(err, -errno, "cannot fsync directory '%s'", dir);
  goto out;
fail:
  if (fd >= 0)
    close(fd);
  unlinkat(dirfd, name, 0); /* ours: created with O_EXCL */
out:
  close(dirfd);
  free(tmp);
  free(dir);
  return r;
}

int file_create_fresh(const char *path, mode_t mode, struct err *err) {
  int fd;

  if (unlink(path) < 0 && errno != ENOENT)
    return err_set_errno(err, -errno, "cannot remove '%s' before creating it", path);
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, mode);
  if (fd < 0)
    return err_set_errno(err, -errno, "cannot create '%s'", path);
  return fd;
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
