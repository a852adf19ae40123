/* Bounded string helpers. egressd uses these instead of strcpy, sprintf, atoi,
 * strtol and strtok: every copy states its bound, every number parse its range. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copy @src into @dst of @size bytes, always NUL-terminated (strlcpy).
 * Returns strlen(src); a result >= size means truncation. */
size_t str_copy(char *dst, size_t size, const char *src);
/* snprintf that never returns a negative or past-the-end count: returns the
 * number of bytes written (excluding NUL), truncating. */
size_t str_format(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
size_t str_vformat(char *dst, size_t size, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

bool str_eq(const char *a, const char *b);  /* NULL-safe */
bool str_has_prefix(const char *s, const char *prefix);
bool str_has_suffix(const char *s, const char *suffix);
/* Whether @s ends with one of the NULL-terminated @suffixes; NULL: any @s. */
bool str_has_any_suffix(const char *s, const char *const *suffixes);
bool str_is_empty(const char *s);           /* NULL or "" */

/* Parse a whole decimal integer in [min, max]; no sign for unsigned, no
 * leading/trailing garbage or spaces. Return 0, -EINVAL (syntax) or
 * -ERANGE. *ret is untouched on failure. */
int str_to_i64(const char *s, int64_t min, int64_t max, int64_t *ret);
int str_to_u64(const char *s, uint64_t max, uint64_t *ret);
int str_to_int(const char *s, int min, int max, int *ret);

/* Split "ns/name" style strings: position of the first @c or NULL. */
const char *str_chr(const char *s, char c);

/* Copy @s into @buf for display in a message: control characters become
 * \n, \t or \xNN, and a value longer than the buffer ends in "...". For
 * user input quoted in errors, so a message is always one line. */
const char *str_escape(char *buf, size_t size, const char *s);

/* Is @s (of @len bytes) valid UTF-8 without NUL bytes? Overlong forms,
 * surrogates and code points above U+10FFFF are invalid. On failure *bad_off
 * (if not NULL) gets the offset of the first bad byte. */
bool str_valid_utf8(const char *s, size_t len, size_t *bad_off);
