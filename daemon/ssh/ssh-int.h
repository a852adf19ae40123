/* ssh internals shared by the ssh-*.c files; not for other modules. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "ssh/ssh.h"

/* libsodium must be initialised before use (idempotent). */
int ssh_crypto_ready(struct err *err);

/* @s (of @n bytes) equals the C string @lit. */
static inline bool ssh_bytes_is(const uint8_t *s, size_t n, const char *lit) {
  size_t i = 0;
  for (; i < n && lit[i]; i++)
    if (s[i] != (uint8_t)lit[i])
      return false;
  return i == n && lit[i] == '\0';
}

/* SHA-256 and SHA-1 (KRL fingerprints) of @len bytes. */
void ssh_sha256(const void *data, size_t len, uint8_t out[32]);
void ssh_sha1(const void *data, size_t len, uint8_t out[20]);
