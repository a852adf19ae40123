/* libFuzzer target: the ledger's record and checkpoint parsers, and the
 * streaming reader with its chain rules (index, prev_root diagnosis,
 * intents, key rotations) over the input as a whole ledger.jsonl.
 *
 * Invariants checked: a record or checkpoint that parses serialises back to
 * exactly the input bytes (one spelling per record), and the reader never
 * reports a record past a failure. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/buf.h"
#include "ledger/ledger-int.h"
#include "ledger/ledger.h"
#include "fuzz.h"

static void record_round_trip(const char *text, size_t size) {
  struct doc_arena *a = doc_arena_new();
  struct ledger_record rec;
  struct buf again = BUF_INIT;

  if (ledger_record_parse(a, text, size, &rec, NULL) == 0 &&
      (record_format_pairs(rec.index, rec.time, rec.type, rec.prev_root,
                           rec.object->u.map.items + 4, rec.object->u.map.n - 4, &again,
                           NULL) != 0 ||
       again.len != size || memcmp(again.data, text, size) != 0))
    __builtin_trap();
  buf_dispose(&again);
  doc_arena_free(a);
}

static void checkpoint_round_trip(const char *text, size_t size) {
  struct ledger_checkpoint cp;
  struct buf again = BUF_INIT;

  if (ledger_checkpoint_parse(text, size, "fuzz", &cp, NULL) == 0) {
    ledger_checkpoint_format(&cp, &again);
    if (again.len != size || memcmp(again.data, text, size) != 0)
      __builtin_trap();
  }
  buf_dispose(&again);
}

static void read_as_ledger(const uint8_t *data, size_t size) {
  struct ledger_reader *r = NULL;
  struct ledger_record rec;
  int fd = memfd_create("ledger.jsonl", MFD_CLOEXEC), k;
  uint64_t n = 0;

  if (fd < 0)
    return;
  if ((size == 0 || write(fd, data, size) == (ssize_t)size) &&
      reader_open_fd(fd, "fuzz", &r) == 0) {
    while ((k = ledger_reader_next(r, &rec, NULL)) > 0) {
      if (rec.index != n++)
        __builtin_trap();
    }
    if (k < 0 && ledger_reader_next(r, &rec, NULL) > 0)
      __builtin_trap();   /* a failed reader stays failed */
    ledger_reader_free(r);
  }
  close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;

  if (size > LEDGER_RECORD_MAX + 16)
    return 0;
  record_round_trip(text, size);
  checkpoint_round_trip(text, size);
  read_as_ledger(data, size);
  return 0;
}
