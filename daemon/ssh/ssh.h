/* ssh: OpenSSH's formats, one implementation for the whole daemon (layer 1).
 *
 * - the SSH wire encoding (RFC 4251 §5), base64 and PEM-style armor;
 * - public keys of every type ssh-keygen makes (ssh-ed25519, ssh-rsa,
 *   ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com,
 *   sk-ecdsa-sha2-nistp256@openssh.com) and their SHA256 fingerprints;
 * - SSH signatures (PROTOCOL.sshsig): parse and verify for every key type,
 *   sign with an ssh-ed25519 key (the ledger's);
 * - allowed_signers files (ssh-keygen(1) ALLOWED SIGNERS) and OpenSSH
 *   pattern lists;
 * - revoked keys: a KRL (PROTOCOL.krl, what `ssh-keygen -k` writes) or a
 *   plain list of public keys, as `ssh-keygen -Y verify -r` reads them.
 *
 * Used by gitsrc/ (commit signatures) and ledger/ (checkpoint signatures).
 * Depends on base/, OpenSSL (RSA, ECDSA, SHA-2) and libsodium (Ed25519,
 * base64); no type of either appears here. Functions return >= 0 on
 * success and -errno with @err filled; they never log. Every parser has a
 * size bound and a fuzz target (tests/fuzz/fuzz-ssh.c).
 *
 * docs/signing.md is the user-facing description of what is accepted.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

/* Bounds of the parsers (each input is refused beyond them). */
#define SSH_KEY_MAX_BLOB 8192u             /* one public key blob */
#define SSH_SIG_MAX_ARMOR (64u * 1024u)    /* one armored signature */
#define SSH_SIGNERS_MAX_BYTES (1u << 20)   /* an allowed_signers file */
#define SSH_REVOKED_MAX_BYTES (16u << 20)  /* a KRL or a list of revoked keys */
#define SSH_RSA_MIN_BITS 2048u             /* smaller RSA keys never verify */
#define SSH_RSA_MAX_BITS 16384u            /* OpenSSH's SSHBUF_MAX_BIGNUM */
#define SSH_FINGERPRINT_SIZE 51            /* "SHA256:" + 43 + NUL */

/* FIDO signature flags (PROTOCOL.u2f). */
#define SSH_SK_USER_PRESENCE 0x01u
#define SSH_SK_USER_VERIFIED 0x04u

/* ---- wire encoding --------------------------------------------------------- */

/* A bounded reader over SSH wire data; never reads past @n. */
struct ssh_wire {
  const uint8_t *p;
  size_t n;
};

int ssh_wire_u8(struct ssh_wire *w, uint8_t *ret);
int ssh_wire_u32(struct ssh_wire *w, uint32_t *ret);
int ssh_wire_u64(struct ssh_wire *w, uint64_t *ret);
/* An SSH string: uint32 length then the bytes, borrowed from the input.
 * -EBADMSG when the length runs past the end. */
int ssh_wire_string(struct ssh_wire *w, const uint8_t **ret, size_t *ret_len);
/* Read a string and require it to equal @lit. */
bool ssh_wire_string_is(struct ssh_wire *w, const char *lit);
void ssh_wire_put_u32(struct buf *b, uint32_t v);
void ssh_wire_put_string(struct buf *b, const void *data, size_t len);
void ssh_wire_put_cstr(struct buf *b, const char *s);
/* Untrusted bytes made printable ('?' for the rest) for a message. */
const char *ssh_printable(const uint8_t *s, size_t len, char *out, size_t size);

/* Standard padded base64 (libsodium) appended to @out; the _wrapped form
 * puts a newline after every @col characters and at the end. */
void ssh_b64_append(struct buf *out, const void *data, size_t len);
void ssh_b64_append_wrapped(struct buf *out, const void *data, size_t len, size_t col);
/* Decode standard padded base64, skipping the characters in @ignore (NULL:
 * none). *ret is malloc'd (wipe it when it held a secret). -EINVAL. */
int ssh_b64_decode(const char *s, size_t len, const char *ignore, uint8_t **ret, size_t *ret_len);
/* The body between "-----BEGIN <label>-----" and "-----END <label>-----"
 * lines, decoded. -EBADMSG naming @what when the armor is missing or broken. */
int ssh_armor_decode(const char *text, size_t len, const char *label, const char *what,
                     uint8_t **ret, size_t *ret_len, struct err *err);

/* ---- public keys ------------------------------------------------------------ */

enum ssh_key_type {
  SSH_KEY_OTHER = 0,       /* parsed only by name (ssh-dss, certificates): never verifies */
  SSH_KEY_ED25519,
  SSH_KEY_RSA,
  SSH_KEY_ECDSA_P256,
  SSH_KEY_ECDSA_P384,
  SSH_KEY_ECDSA_P521,
  SSH_KEY_SK_ED25519,      /* FIDO: sk-ssh-ed25519@openssh.com */
  SSH_KEY_SK_ECDSA_P256,   /* FIDO: sk-ecdsa-sha2-nistp256@openssh.com */
};

/* A public key. @blob is its canonical wire encoding (what fingerprints and
 * comparisons use); the views point into it. */
struct ssh_key {
  enum ssh_key_type type;
  char name[64];                  /* the wire type name */
  uint8_t *blob;
  size_t blob_len;
  unsigned bits;                  /* RSA modulus or EC curve size; 256 for Ed25519 */
  const uint8_t *pk;              /* Ed25519: 32 bytes; ECDSA: the uncompressed point */
  size_t pk_len;
  const uint8_t *rsa_e, *rsa_n;   /* minimal big-endian */
  size_t rsa_e_len, rsa_n_len;
  const uint8_t *application;     /* FIDO keys: the application ("ssh:") */
  size_t application_len;
};

/* Is @name (of @len bytes) a key type name OpenSSH writes in key files
 * (including ssh-dss and certificate types)? */
bool ssh_key_type_known(const char *name, size_t len);
/* Parse a public key blob strictly. Types this module cannot verify
 * (ssh-dss, certificates) parse as SSH_KEY_OTHER when @name is known;
 * unknown names and malformed blobs are -EBADMSG. *ret is the caller's. */
int ssh_key_from_blob(const void *blob, size_t len, struct ssh_key **ret, struct err *err);
/* "type base64" as in a .pub line: the base64 blob must be of @type. */
int ssh_key_from_text(const char *type, size_t type_len, const char *b64, size_t b64_len,
                      struct ssh_key **ret, struct err *err);
void ssh_key_free(struct ssh_key *key);
struct ssh_key *ssh_key_dup(const struct ssh_key *key);
/* The same public key (OpenSSH's sshkey_equal: canonical blobs compared). */
bool ssh_key_equal(const struct ssh_key *a, const struct ssh_key *b);
/* "SHA256:" + unpadded base64 of SHA-256(blob), as ssh-keygen -l prints. */
const char *ssh_key_fingerprint(const struct ssh_key *key, char out[SSH_FINGERPRINT_SIZE]);
/* "ED25519", "RSA", "ECDSA", "ED25519-SK", "ECDSA-SK", ... as ssh-keygen -l. */
const char *ssh_key_type_display(const struct ssh_key *key);
/* The type name inside any key blob, printable ("" when malformed), and
 * the fingerprint of any blob (host keys of known_hosts included). */
void ssh_blob_type(const void *blob, size_t len, char *out, size_t size);
const char *ssh_blob_fingerprint(const void *blob, size_t len, char out[SSH_FINGERPRINT_SIZE]);
/* Why this key can never verify (NULL when it can): ssh-dss, certificates,
 * RSA under SSH_RSA_MIN_BITS. */
const char *ssh_key_unsupported(const struct ssh_key *key);

/* ---- SSH signatures (PROTOCOL.sshsig) ---------------------------------------- */

/* A parsed SSHSIG blob; byte strings point into @blob, which it owns. */
struct ssh_sig {
  uint8_t *blob;
  size_t blob_len;
  struct ssh_key *key;             /* the signer's public key */
  const uint8_t *namespace_;
  size_t namespace_len;
  char hash_alg[8];                /* "sha512" | "sha256" */
  const uint8_t *signature;        /* the SSH signature encoding */
  size_t signature_len;
};

/* What a verified signature said beyond "good". */
struct ssh_sig_details {
  bool sk;              /* made by a FIDO key: flags and counter are set */
  uint8_t sk_flags;     /* SSH_SK_USER_PRESENCE | SSH_SK_USER_VERIFIED ... */
  uint32_t sk_counter;
};

/* Dearmor ("-----BEGIN SSH SIGNATURE-----" ... END) and parse as
 * ssh-keygen -Y verify does: magic, version <= 1, the key, the namespace
 * (no NUL), the reserved string (ignored, any content: OpenSSH neither
 * checks nor signs it), the hash algorithm (sha256 | sha512), the
 * signature, no trailing bytes. -EBADMSG with the reason. */
int ssh_sig_parse(const char *armored, size_t len, struct ssh_sig *ret, struct err *err);
void ssh_sig_dispose(struct ssh_sig *sig);
/* Verify @sig over @msg for @namespace_. The signed data is
 *   "SSHSIG" string(namespace) string("") string(hash_alg) string(H(msg))
 * with an empty reserved field, as OpenSSH signs and verifies it. 0 good
 * (*ret_details filled if not NULL); -EKEYREJECTED signed for another
 * namespace; -EPROTONOSUPPORT the key or the signature algorithm is refused
 * (ssh-rsa SHA-1, RSA under 2048 bits, ssh-dss, certificates, webauthn);
 * -EBADMSG malformed or not matching. */
int ssh_sig_verify(const struct ssh_sig *sig, const void *msg, size_t len, const char *namespace_,
                   struct ssh_sig_details *ret_details, struct err *err);
/* Armored SSHSIG (hash sha512) by the ssh-ed25519 key whose libsodium
 * secret key (seed || public) is @sk, byte-identical to ssh-keygen -Y sign.
 * The buffers hold no secret. */
void ssh_sig_sign_ed25519(const uint8_t sk[64], const char *namespace_, const void *msg,
                          size_t len, struct buf *out);

/* ---- allowed_signers ---------------------------------------------------------- */

/* One line: principals [options] keytype base64 [comment]. */
struct ssh_signer {
  unsigned line;
  char *principals;                   /* pattern-list; NULL for a bare key line */
  char *namespaces;                   /* pattern-list or NULL */
  bool has_valid_after, has_valid_before;
  int64_t valid_after, valid_before;  /* seconds since the epoch */
  bool no_touch_required;             /* FIDO: user presence not required */
  bool verify_required;               /* FIDO: user verification (PIN) required */
  struct ssh_key *key;
};

struct ssh_signers {
  char *name;
  struct ssh_signer *entries;
  size_t n, cap;
};

/* Lines that start with a key type are bare public keys (a .pub file). */
#define SSH_SIGNERS_BARE_KEYS 0x1u

/* Parse allowed_signers text; @name is used in errors ("name:line:col:
 * what"). Strict: a malformed line, an unknown option, a key that does not
 * parse or `cert-authority` (certificates are not supported) fails the
 * whole file with -EINVAL, so a typo never silently drops a signer.
 * -E2BIG over SSH_SIGNERS_MAX_BYTES. */
int ssh_signers_parse(const char *name, const char *text, size_t len, unsigned flags,
                      struct ssh_signers **ret, struct err *err);
int ssh_signers_load(const char *path, unsigned flags, struct ssh_signers **ret, struct err *err);
void ssh_signers_free(struct ssh_signers *signers);
/* Does the line's window contain @t (seconds since the epoch)? */
bool ssh_signer_valid_at(const struct ssh_signer *e, int64_t t);
/* Do the line's FIDO options accept @d? (Always for keys that are not FIDO:
 * user presence is required unless no-touch-required, user verification
 * when verify-required.) */
bool ssh_signer_accepts_flags(const struct ssh_signer *e, const struct ssh_sig_details *d);

/* OpenSSH pattern-list matching (ssh_config(5) PATTERNS: '*', '?',
 * comma-separated, '!' negation wins): 1 match, 0 no match, -1 negated.
 * Case-sensitive, as ssh-keygen matches principals and namespaces. */
int ssh_pattern_list_match(const char *string, const char *pattern_list);
/* An ssh-keygen time: "YYYYMMDD[Z]", "YYYYMMDDHHMM[SS][Z]", local time
 * unless 'Z'. 0 or -EINVAL. */
int ssh_time_parse(const char *s, int64_t *ret);

/* ---- revoked keys ---------------------------------------------------------------- */

struct ssh_revoked;

/* Parse a revocation file as ssh-keygen -Y verify -r reads it: a binary KRL
 * (PROTOCOL.krl: explicit keys, SHA1 and SHA256 fingerprint sections;
 * certificate sections are read and ignored, since certificates never
 * verify here; the signature section is not checked: a KRL only removes
 * trust) when it starts with the KRL magic, else a list of public key
 * lines ("type base64 [comment]"; blank and '#' lines skipped; any other
 * line that is not a key fails the file, as it fails sshkey_in_file()).
 * A malformed file is -EBADMSG (never "nothing revoked"); -E2BIG over
 * SSH_REVOKED_MAX_BYTES. */
int ssh_revoked_parse(const char *name, const void *data, size_t len, struct ssh_revoked **ret,
                      struct err *err);
int ssh_revoked_load(const char *path, struct ssh_revoked **ret, struct err *err);
void ssh_revoked_free(struct ssh_revoked *revoked);
/* Is @key revoked? */
bool ssh_revoked_contains(const struct ssh_revoked *revoked, const struct ssh_key *key);
/* Entries read (keys and fingerprints), for messages and tests. */
size_t ssh_revoked_count(const struct ssh_revoked *revoked);
