/* gitsrc internals shared by the gitsrc-*.c files, the unit tests and the
 * fuzz targets. Nothing here is part of the module's public contract. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <git2.h>

#include "base/buf.h"
#include "base/err.h"
#include "gitsrc/gitsrc.h"
#include "ssh/ssh.h"

struct gitsrc {
  git_repository *repo;
  bool local_only;            /* opened with gitsrc_open_local(): no remote */
  char *path;                 /* repository path as given (for messages) */
  /* copies of struct gitsrc_opts (NULL when unset) */
  char *url, *ref, *cache_dir;
  char *url_shown;            /* url_redact(url): the only form of the URL in messages */
  char *token_file, *username, *password_file, *ca_file;
  char *ssh_key, *ssh_known_hosts;
  enum gitsrc_token_auth token_auth;
  bool ssh_insecure_skip_host_key_check, allow_rewrite;
  uint64_t max_pack_bytes, max_object_bytes;
  unsigned timeout_sec;
};

/* Fill @err from libgit2's last error: "<what>: <libgit2 message>", source
 * ERR_SRC_GIT, detail = libgit2 error class. Returns the -errno for @gitrc. */
int gitsrc_git_error(struct err *err, int gitrc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void gitsrc_oid_from_git(struct gitsrc_oid *dst, const git_oid *src);
int gitsrc_oid_to_git(git_oid *dst, const struct gitsrc_oid *src);

/* --- raw commit objects (gitsrc-commit.c) --------------------------------- */

/* Split a raw commit object as git's parse_buffer_signed_by_header() does
 * for a SHA-1 repository: the value of every `gpgsig` header (continuation
 * lines without their leading space) is appended to @signature; every other
 * header starting with "gpgsig" (gpgsig-sha256, ...) is dropped with its
 * continuations; everything else, and the whole body after the first empty
 * line, is the signed @payload. Only the header is examined. *ret_headers
 * counts the `gpgsig` headers seen. Returns 1 when a signature was found, 0
 * when not, -E2BIG over GITSRC_COMMIT_MAX_BYTES. */
int gitsrc_commit_split(const char *raw, size_t len, struct buf *payload, struct buf *signature,
                        unsigned *ret_headers, struct err *err);

/* --- allowed_signers and revoked keys (gitsrc-signers.c) ------------------ */

/* What authorises a commit signature: the parsed allowed_signers file and,
 * when configured, the revoked keys (both daemon/ssh/). */
struct gitsrc_signers {
  struct ssh_signers *allowed;
  struct ssh_revoked *revoked; /* NULL: none configured */
};

/* --- known_hosts (gitsrc-knownhosts.c) ------------------------------------ */

/* Check a server's host key against OpenSSH known_hosts text (plain and
 * hashed "|1|salt|hash" host patterns, "[host]:port" for ports other than
 * 22, @revoked markers; @cert-authority lines are ignored). The key is given
 * as its wire blob (@key) or, when @key is NULL, by its SHA-256 (@sha256).
 * 0 matched; -ENOKEY no entry for the host; -EKEYREJECTED the host has
 * entries but none with this key, or the key is revoked. */
int gitsrc_known_hosts_check(const char *name, const char *text, size_t len, const char *host,
                             int port, const unsigned char *key, size_t key_len,
                             const unsigned char *sha256, struct err *err);
