/* Keeping secrets out of text that is shown or stored: error messages, log
 * lines, status.json, the ledger.
 *
 * - redact_secrets(): every occurrence of a known secret in a text, also when
 *   the text breaks it with blanks (a wrapped or line-split echo), and every
 *   token-like piece of a secret (a truncated echo).
 * - url_redact(): a repository URL with its credentials hidden, for display;
 *   the real URL is still what egressd fetches from.
 *
 * Pure functions, no I/O. When you change what counts as a secret part of a
 * URL, also touch url_secrets() (the same rules) and docs/host-config.md.
 */
#pragma once

#include <stddef.h>

#include "base/buf.h"

#define REDACTED "[redacted]"
/* A token-like run of text at least this long that is part of a secret is
 * redacted on its own (shorter pieces cannot be told from ordinary words). */
#define REDACT_PARTIAL_MIN 8u

/* Replace in @text, by REDACTED:
 *  1. every occurrence of each secret of @secrets (NULL-terminated; NULL and
 *     empty entries skipped; any length, so a short secret is hidden too),
 *     also when blanks (space, tab, newline, other control characters) are
 *     interleaved between its bytes: a message folds those into spaces, which
 *     would put a split secret back together for the reader;
 *  2. then every run of at least REDACT_PARTIAL_MIN bytes without blanks,
 *     quotes or punctuation that is a substring of a secret: a prefix left
 *     by a server that truncated its echo, or one half of a split.
 * Redact before cutting a text to size: a cut may leave a prefix shorter than
 * REDACT_PARTIAL_MIN that rule 2 cannot recognise. The old contents of
 * @text are wiped. */
void redact_secrets(struct buf *text, const char *const *secrets);

/* A copy of @url fit to show (malloc'd, never NULL): the password of the
 * userinfo ("https://user:[redacted]@host/"), for http(s):// the whole
 * userinfo (a token is often passed as the user name), every query value
 * ("?access_token=[redacted]") and the fragment are replaced by REDACTED.
 * Paths, scp-like "user@host:path" and strings without "://" are returned as
 * they are (an SSH user name is not a secret). */
char *url_redact(const char *url);

/* The parts of @url that url_redact() hides and that are at least
 * @min_len bytes long, as a NULL-terminated malloc'd array of malloc'd
 * strings for redact_secrets() (e.g. over a library's message that may quote
 * the URL). Free with url_secrets_free(), which wipes them. */
char **url_secrets(const char *url, size_t min_len);
void url_secrets_free(char **secrets);
