/* What every fuzz target shares: the libFuzzer entry point, and require(),
 * an assertion NDEBUG cannot remove (the ctest regression runs over the
 * corpora are release builds). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define require(x)                                                                \
  do {                                                                            \
    if (!(x)) {                                                                   \
      fprintf(stderr, "%s:%d: requirement failed: %s\n", __FILE__, __LINE__, #x); \
      abort();                                                                    \
    }                                                                             \
  } while (0)
