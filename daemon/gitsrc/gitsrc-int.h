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

struct gitsrc {
  git_repository *repo;
  bool local_only;            /* opened with gitsrc_open_local(): no remote */
  char *path;                 /* repository path as given (for messages) */
  /* copies of struct gitsrc_opts (NULL when unset) */
  char *url, *ref, *cache_dir;
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

/* --- SSH wire format and SSHSIG (gitsrc-sshsig.c) ------------------------- */

#define GITSRC_SSHSIG_MAX_ARMOR 16384u  /* armored signature text */
#define GITSRC_SSHKEY_MAX_BLOB 8192u    /* one public key blob */

/* A parsed SSHSIG blob (openssh PROTOCOL.sshsig). Byte strings point into
 * @blob, which the struct owns. */
struct gitsrc_sshsig {
  unsigned char *blob;
  size_t blob_len;
  const unsigned char *pubkey;     /* SSH wire encoding of the public key */
  size_t pubkey_len;
  char key_type[64];               /* "ssh-ed25519", "ssh-rsa", ... */
  const unsigned char *namespace_;
  size_t namespace_len;
  const unsigned char *reserved;
  size_t reserved_len;
  char hash_alg[16];               /* "sha512" | "sha256" (others rejected) */
  const unsigned char *signature;  /* SSH signature encoding */
  size_t signature_len;
};

/* Dearmor (BEGIN/END SSH SIGNATURE lines, base64 via libsodium) and parse
 * strictly: magic, version 1, five strings, no trailing bytes. -EBADMSG
 * with the reason. Does not check the key type or verify anything. */
int gitsrc_sshsig_parse(const char *armored, size_t len, struct gitsrc_sshsig *ret,
                        struct err *err);
/* Verify @sig over @msg for @namespace_: 0 good, -EBADMSG bad signature,
 * -EPROTONOSUPPORT the key type is not ssh-ed25519, -EKEYREJECTED the
 * signature was made for another namespace. */
int gitsrc_sshsig_verify(const struct gitsrc_sshsig *sig, const void *msg, size_t len,
                         const char *namespace_, struct err *err);
void gitsrc_sshsig_dispose(struct gitsrc_sshsig *sig);

/* "SHA256:" + unpadded base64 of SHA-256(blob), as ssh-keygen -l prints. */
void gitsrc_sshkey_fingerprint(const unsigned char *blob, size_t len, char *out, size_t size);
/* The key type as ssh-keygen prints it ("ED25519", "RSA", "ECDSA", ...). */
const char *gitsrc_sshkey_type_display(const char *type);
/* The type name inside a public key blob ("" when malformed). */
void gitsrc_sshkey_blob_type(const unsigned char *blob, size_t len, char *out, size_t size);
/* Decode standard base64 (no whitespace) into a malloc'd buffer; -EINVAL. */
int gitsrc_base64_decode(const char *b64, size_t len, unsigned char **ret, size_t *ret_len);

/* --- allowed_signers (gitsrc-signers.c) ----------------------------------- */

struct gitsrc_signers_entry {
  unsigned line;
  char *principals;           /* pattern-list */
  char *namespaces;           /* pattern-list or NULL */
  bool has_valid_after, has_valid_before;
  int64_t valid_after, valid_before; /* seconds since the epoch */
  char key_type[64];
  unsigned char *key;         /* SSH wire encoding */
  size_t key_len;
};

struct gitsrc_signers {
  char *name;
  struct gitsrc_signers_entry *entries;
  size_t n, cap;
};

/* Parse an ssh-keygen time ("YYYYMMDD[Z]", "YYYYMMDDHHMM[Z]",
 * "YYYYMMDDHHMMSS[Z]"; local time unless 'Z'). 0 or -EINVAL. */
int gitsrc_signers_parse_time(const char *s, int64_t *ret);

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
