/* struct ptrvec: a growable array of pointers. */
#include "base/vec.h"

#include <stdlib.h>

#include "base/mem.h"

void ptrvec_push(struct ptrvec *v, void *item) {
  v->items = xgrow(v->items, &v->cap, v->n + 1, sizeof(*v->items));
  v->items[v->n++] = item;
}

void ptrvec_dispose(struct ptrvec *v) {
  free(v->items);
  v->items = NULL;
  v->n = v->cap = 0;
}

void ptrvec_dispose_all(struct ptrvec *v, void (*free_item)(void *)) {
  for (size_t i = 0; i < v->n; i++)
    free_item(v->items[i]);
  ptrvec_dispose(v);
}
