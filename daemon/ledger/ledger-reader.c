/* Streaming reader of ledger.jsonl: one buffered pass, every record
 * checked as the writer checked it (ledger_record_parse) and against the
 * records before it (chain_check). Parsed records live in an arena that is
 * renewed every few MiB, so memory stays bounded.
 *
 * It names the first bad record. A prev_root that does not match means that
 * the record before was altered, or that this record's prev_root was: the
 * reader tells them apart by restoring this record's prev_root and checking
 * the result against the prev_root of the record after it.
 *
 * Invariants: a line is at most LEDGER_RECORD_MAX bytes; the buffer holds
 * one such line plus a read chunk; after an error the reader stays failed.
 * When you change what a record must satisfy, change ledger_record_parse()
 * or chain_check(), not this file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/mem.h"
#include "base/str.h"
#include "ledger/ledger-int.h"

#define READ_CHUNK (256u * 1024u)
#define BUF_CAP (LEDGER_RECORD_MAX + 1 + READ_CHUNK)
#define ARENA_MAX (4u << 20)

struct ledger_reader {
  int fd;
  bool own_fd;
  char *name;
  char *buf;
  size_t start, end;       /* unread bytes are buf[start, end) */
  bool eof;
  uint64_t buf_off;        /* file offset of buf[0] */
  uint64_t end_off;        /* offset after the last accepted record */
  struct chain chain;
  struct doc_arena *arena;
  uint8_t leaf[LEDGER_HASH_SIZE];
  int failed;
  struct err fail;
  uint64_t bad_index;
  uint64_t tail_bytes;
};

int reader_open_fd(int fd, const char *name, struct ledger_reader **ret) {
  struct ledger_reader *r;

  if (lseek(fd, 0, SEEK_SET) < 0)
    return -errno;
  r = xcalloc(1, sizeof(*r));
  r->fd = fd;
  r->name = xstrdup(name);
  r->buf = xmalloc(BUF_CAP);
  r->bad_index = LEDGER_INDEX_NONE;
  *ret = r;
  return 0;
}

int ledger_reader_open(const char *dir, struct ledger_reader **ret, struct err *err) {
  char *path = path_join(dir, LEDGER_FILE_LOG);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), r;

  if (fd < 0) {
    r = err_set_errno(err, -errno, "cannot open '%s'", path);
    free(path);
    return r;
  }
  r = reader_open_fd(fd, path, ret);
  if (r < 0) {
    close(fd);
    r = err_set_errno(err, r, "cannot read '%s'", path);
  } else {
    (*ret)->own_fd = true;
  }
  free(path);
  return r;
}

void ledger_reader_free(struct ledger_reader *r) {
  if (!r)
    return;
  if (r->own_fd && r->fd >= 0)
    close(r->fd);
  chain_dispose(&r->chain);
  doc_arena_free(r->arena);
  free(r->buf);
  free(r->name);
  free(r);
}

const struct chain *reader_chain(const struct ledger_reader *r) { return &r->chain; }

void reader_take_chain(struct ledger_reader *r, struct chain *out) {
  *out = r->chain;
  memset(&r->chain, 0, sizeof(r->chain));
}
uint64_t reader_end(const struct ledger_reader *r) { return r->end_off; }
const uint8_t *reader_leaf(const struct ledger_reader *r) { return r->leaf; }
uint64_t reader_tail_bytes(const struct ledger_reader *r) { return r->tail_bytes; }
uint64_t ledger_reader_bad_index(const struct ledger_reader *r) { return r->bad_index; }
const char *ledger_reader_intent_commit(const struct ledger_reader *r) {
  return r->chain.result_commit;
}

/* 1: a line; 0: clean end; -ENODATA: an incomplete last line; -E2BIG: a
 * line over the limit; other -errno: read error. */
static int next_line(struct ledger_reader *r, const char **line, size_t *len, uint64_t *off) {
  for (;;) {
    char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
    ssize_t n;

    if (nl) {
      *line = r->buf + r->start;
      *len = (size_t)(nl - *line);
      *off = r->buf_off + r->start;
      r->start += *len + 1;
      return 1;
    }
    if (r->end - r->start > LEDGER_RECORD_MAX)
      return -E2BIG;
    if (r->eof) {
      if (r->end == r->start)
        return 0;
      *line = r->buf + r->start;
      *len = r->end - r->start;
      *off = r->buf_off + r->start;
      return -ENODATA;
    }
    if (r->start > 0) {
      memmove(r->buf, r->buf + r->start, r->end - r->start);
      r->buf_off += r->start;
      r->end -= r->start;
      r->start = 0;
    }
    n = read(r->fd, r->buf + r->end, BUF_CAP - r->end);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (n == 0)
      r->eof = true;
    r->end += (size_t)n;
  }
}

static int fail(struct ledger_reader *r, int code, uint64_t index, struct err *err,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(struct ledger_reader *r, int code, uint64_t index, struct err *err,
                const char *fmt, ...) {
  char msg[ERR_MSG_MAX];
  va_list ap;

  va_start(ap, fmt);
  str_vformat(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  r->failed = code;
  r->bad_index = index;
  err_set_src(&r->fail, code, ERR_SRC_LEDGER, "%s", msg);
  return err_set_src(err, code, ERR_SRC_LEDGER, "%s", msg);
}

/* Record @rec (at r->chain.size) has a prev_root that is not the root of the
 * records before it. Blame it or the record before, as the file comment
 * explains, and fail. */
static int diagnose_prev_root(struct ledger_reader *r, const struct ledger_record *rec,
                              struct err *err) {
  uint64_t idx = r->chain.size;
  uint8_t root[LEDGER_HASH_SIZE], leaf[LEDGER_HASH_SIZE], next_root[LEDGER_HASH_SIZE];
  struct ledger_frontier f;
  struct buf restored = BUF_INIT;
  struct ledger_record next;
  const char *line;
  size_t len;
  uint64_t off;
  bool confirmed = false;

  if (idx == 0)
    return fail(r, -EBADMSG, 0, err, "record 0 (line 1): prev_root is not the root of the empty "
                "tree; the record was altered");
  ledger_frontier_root(&r->chain.tree, root);
  if (record_format_pairs(rec->index, rec->time, rec->type, root, rec->object->u.map.items + 4,
                          rec->object->u.map.n - 4, &restored, NULL) == 0 &&
      next_line(r, &line, &len, &off) == 1 &&
      ledger_record_parse(r->arena, line, len, &next, NULL) == 0) {
    f = r->chain.tree;
    ledger_hash_leaf(restored.data, restored.len, leaf);
    ledger_frontier_push(&f, leaf);
    ledger_frontier_root(&f, next_root);
    confirmed = memcmp(next_root, next.prev_root, LEDGER_HASH_SIZE) == 0;
  }
  buf_dispose(&restored);
  if (confirmed)
    return fail(r, -EBADMSG, idx, err, "record %llu (line %llu): its prev_root was altered "
                "(record %llu confirms the original value)", (unsigned long long)idx,
                (unsigned long long)idx + 1, (unsigned long long)idx + 1);
  return fail(r, -EBADMSG, idx - 1, err, "record %llu (line %llu) was altered: its hash no "
              "longer matches the prev_root of record %llu", (unsigned long long)idx - 1,
              (unsigned long long)idx, (unsigned long long)idx);
}

int ledger_reader_next(struct ledger_reader *r, struct ledger_record *ret, struct err *err) {
  struct ledger_record rec;
  struct err perr = ERR_INIT;
  enum chain_fault fault;
  const char *line;
  size_t len;
  uint64_t off, idx = r->chain.size;
  int k;

  if (r->failed)
    return err_set_src(err, r->failed, ERR_SRC_LEDGER, "%s", r->fail.msg);
  /* records share an arena until it holds ARENA_MAX bytes: freeing a 64 KiB
   * block per record made glibc consolidate its heap every time */
  if (!r->arena || doc_arena_size(r->arena) > ARENA_MAX) {
    doc_arena_free(r->arena);
    r->arena = doc_arena_new();
  }
  k = next_line(r, &line, &len, &off);
  if (k == 0)
    return 0;
  if (k == -E2BIG)
    return fail(r, -EBADMSG, idx, err, "record %llu (line %llu) is longer than %u bytes",
                (unsigned long long)idx, (unsigned long long)idx + 1, LEDGER_RECORD_MAX);
  if (k == -ENODATA) {
    r->tail_bytes = len;
    return fail(r, -ENODATA, idx, err, "record %llu (line %llu) is incomplete: the file ends %zu "
                "bytes into it, without its newline", (unsigned long long)idx,
                (unsigned long long)idx + 1, len);
  }
  if (k < 0) {
    r->failed = k;
    return err_set_errno(err, k, "cannot read '%s'", r->name);
  }
  if (ledger_record_parse(r->arena, line, len, &rec, &perr) < 0)
    return fail(r, -EBADMSG, idx, err, "record %llu (line %llu): %s", (unsigned long long)idx,
                (unsigned long long)idx + 1, perr.msg);
  if (chain_check(&r->chain, &rec, &fault, &perr) < 0) {
    if (fault == CHAIN_FAULT_PREV_ROOT)
      return diagnose_prev_root(r, &rec, err);
    return fail(r, -EBADMSG, idx, err, "record %llu (line %llu): %s", (unsigned long long)idx,
                (unsigned long long)idx + 1, perr.msg);
  }
  ledger_hash_leaf(line, len, r->leaf);
  chain_accept(&r->chain, &rec, r->leaf);
  r->end_off = off + len + 1;
  *ret = rec;
  return 1;
}
