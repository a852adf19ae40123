/* A vector of pointers. A zeroed struct ptrvec is empty; ptrvec_dispose()
 * frees the array (not the items). */
#pragma once

#include <stddef.h>

struct ptrvec {
  void **items;
  size_t n, cap;
};

void ptrvec_push(struct ptrvec *v, void *item);
void ptrvec_dispose(struct ptrvec *v);
/* Free every item with @free_item, then the array. */
void ptrvec_dispose_all(struct ptrvec *v, void (*free_item)(void *));
