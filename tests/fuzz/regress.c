/* Runs a fuzz target's LLVMFuzzerTestOneInput over the files given on the
 * command line (its corpus), without libFuzzer: the regression half of
 * fuzzing, built with any compiler and run by ctest (label "fuzz"). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "fuzz.h"

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    struct buf b = BUF_INIT;
    struct err e = ERR_INIT;
    if (file_read_all(argv[i], 64u << 20, &b, &e) < 0) {
      err_print(&e, stderr, "regress: ");
      return 2;
    }
    LLVMFuzzerTestOneInput((const uint8_t *)b.data, b.len);
    buf_dispose(&b);
  }
  printf("%d inputs\n", argc - 1);
  return 0;
}
