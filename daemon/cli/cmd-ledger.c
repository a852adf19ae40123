/* egressd ledger: verify, read and prove the signed applied-state ledger,
 * offline (verify, show, prove), and as its writer (recover, rotate-key).
 *
 * Exit codes: 0 verified / done; 1 the answer is "no" (verification
 * failed, damage found); 2 bad usage or an I/O error. The ledger itself is
 * daemon/ledger/; the user's view is docs/ledger.md and
 * docs/man/egressd-ledger.1. When you add a subcommand, also touch both.
 *
 * append-test is hidden: it appends synthetic intent/result pairs as fast as
 * fdatasync allows, for the crash test and the benchmark.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/fileio.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "cli/cli.h"
#include "ledger/ledger.h"

#define DEFAULT_DIR "/var/lib/egressd/ledger"
#define DEFAULT_KEY EGRESSD_SYSCONFDIR "/ledger_ed25519"

static void usage(FILE *f) {
  fprintf(f,
          "usage: egressd ledger <command> [options]\n\n"
          "The signed, append-only ledger of everything egressd applied.\n\n"
          "commands:\n"
          "  verify      check every record, the signed checkpoint and (--since) that an\n"
          "              older checkpoint is a prefix\n"
          "  show        the history: what was applied where, by whose commit\n"
          "  prove       an RFC 6962 inclusion proof of one record\n"
          "  recover     open the ledger as its writer: finish an interrupted append\n"
          "  rotate-key  hand the ledger over to a new signing key\n\n"
          "Every command takes --dir DIR (default %s).\n"
          "See 'egressd ledger <command> --help' and egressd-ledger(1).\n",
          DEFAULT_DIR);
}

static int print_err(const char *cmd, const struct err *err, int code) {
  char prog[64];

  str_format(prog, sizeof(prog), "egressd ledger %s: ", cmd);
  err_print(err, stderr, prog);
  return code;
}

/* Record strings come from API servers and commits: no control character
 * (a terminal escape, a newline) reaches the terminal. */
static void printable(char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      *s = '?';
}

/* ---- verify ---- */

static const char *status_word(enum ledger_check_status s) {
  return s == LEDGER_CHECK_OK ? "ok" : s == LEDGER_CHECK_WARN ? "warn" : "FAIL";
}

static int cmd_verify(int argc, char **argv) {
  static const struct option opts[] = {
      {"dir", required_argument, NULL, 'd'}, {"pubkey", required_argument, NULL, 'k'},
      {"since", required_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'},
      {"allow-unsigned-tail", no_argument, NULL, 'u'}, {NULL, 0, NULL, 0}};
  struct ledger_verify_opts o = {.dir = DEFAULT_DIR};
  struct ledger_verify_report rep;
  struct ledger_trust *trust = NULL;
  const char *pubkey = NULL;
  struct err err = ERR_INIT;
  int c, r;

  while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
    switch (c) {
    case 'd': o.dir = optarg; break;
    case 'k': pubkey = optarg; break;
    case 's': o.since = optarg; break;
    case 'u': o.allow_unsigned_tail = true; break;
    case 'h':
      printf("usage: egressd ledger verify [--dir DIR] [--pubkey FILE] [--since CHECKPOINT]\n"
             "                             [--allow-unsigned-tail]\n\n"
             "Check the ledger offline: every record (canonical JSON, index, prev_root chain,\n"
             "schema, intents, key rotations), the root against the signed checkpoint, and\n"
             "the checkpoint's SSH signature. Exit 0 only when everything holds.\n\n"
             "  --dir DIR            the ledger directory (default %s)\n"
             "  --pubkey FILE        trust only the keys of FILE (a .pub or allowed_signers\n"
             "                       file); without it the genesis record's key is trusted\n"
             "  --since CHECKPOINT   an older checkpoint file (its signature in\n"
             "                       CHECKPOINT.sig) that must be a prefix of this ledger\n"
             "  --allow-unsigned-tail  a record past the signed checkpoint that no signature\n"
             "                       of the ledger's key covers is a warning, not a failure\n",
             DEFAULT_DIR);
      return CLI_EXIT_OK;
    default: return cli_usage_error("ledger verify", "unknown option");
    }
  }
  if (optind != argc)
    return cli_usage_error("ledger verify", "unexpected argument '%s'", argv[optind]);
  if (pubkey) {
    if (ledger_trust_load(pubkey, &trust, &err) < 0)
      return print_err("verify", &err, CLI_EXIT_USAGE);
    o.trust = trust;
  }
  r = ledger_verify(&o, &rep, &err);
  ledger_trust_free(trust);
  if (r < 0)
    return print_err("verify", &err, CLI_EXIT_USAGE);
  for (size_t i = 0; i < rep.n; i++) {
    printable(rep.checks[i].msg);
    printf("%-4s  %-10s  %s\n", status_word(rep.checks[i].status), rep.checks[i].name,
           rep.checks[i].msg);
  }
  if (rep.ok) {
    printf("verified: %llu records, signed checkpoint of size %llu by %s\n",
           (unsigned long long)rep.records, (unsigned long long)rep.signed_size, rep.key);
    return CLI_EXIT_OK;
  }
  if (rep.bad_index != LEDGER_INDEX_NONE)
    printf("NOT verified: the first bad record is %llu\n", (unsigned long long)rep.bad_index);
  else
    printf("NOT verified\n");
  return CLI_EXIT_FAIL;
}

/* ---- show ---- */

struct counts {
  char text[256];
};

static void count_by(const struct doc_node *objects, const char *field, struct counts *out) {
  const char *names[8];
  size_t counts[8], n = 0, len = 0;

  for (size_t i = 0; i < doc_len(objects); i++) {
    const char *v = doc_map_str(objects->u.seq.items[i], field);
    size_t j;
    if (!v)
      continue;
    for (j = 0; j < n; j++)
      if (str_eq(names[j], v))
        break;
    if (j == n && n < ARRAY_SIZE(names)) {
      names[n] = v;
      counts[n++] = 0;
    }
    if (j < n)
      counts[j]++;
  }
  out->text[0] = '\0';
  for (size_t j = 0; j < n; j++)
    len += str_format(out->text + len, sizeof(out->text) - len, "%s%zu %s", j ? ", " : "",
                      counts[j], names[j]);
}

static void summary(const struct ledger_record *rec, struct buf *out) {
  const struct doc_node *o = rec->object;
  const struct doc_node *objects = doc_map_get(o, "objects");
  struct counts c;
  struct ledger_pubkey pk;
  char fp[LEDGER_FINGERPRINT_SIZE] = "?";
  const char *s;
  size_t n;

  switch (rec->type) {
  case LEDGER_TYPE_GENESIS:
  case LEDGER_TYPE_KEY_ROTATION:
    s = doc_map_str(o, "public_key");
    if (ledger_pubkey_parse(s, strlen(s), &pk, NULL) == 0)
      ledger_pubkey_fingerprint(&pk, fp);
    if (rec->type == LEDGER_TYPE_GENESIS)
      buf_printf(out, "ledger %s on %s, key %s", doc_map_str(o, "origin"), doc_map_str(o, "host"),
                 fp);
    else
      buf_printf(out, "checkpoints are signed by %s from here on", fp);
    break;
  case LEDGER_TYPE_APPLY_INTENT:
    objects = doc_map_get(o, "actions");
    n = doc_len(objects);
    count_by(objects, "action", &c);
    buf_printf(out, "plan %zu object%s%s%s", n, n == 1 ? "" : "s", n ? ": " : "", c.text);
    break;
  case LEDGER_TYPE_APPLY_RESULT:
    n = doc_len(objects);
    count_by(objects, "outcome", &c);
    buf_printf(out, "%s (intent %lld)%s%s", doc_map_str(o, "outcome"),
               (long long)doc_map_get(o, "intent")->u.i, n ? ": " : "", c.text);
    if ((s = doc_map_str(o, "error")))
      buf_printf(out, "; %s", s);
    break;
  case LEDGER_TYPE_ROLLOUT:
    buf_printf(out, "rollout %s by an operator (%s)%s%s", doc_map_str(o, "action"),
               doc_map_str(o, "state"), doc_map_str(o, "actor") ? ", " : "",
               doc_map_str(o, "actor") ? doc_map_str(o, "actor") : "");
    break;
  case LEDGER_TYPE_DRIFT:
    n = doc_len(objects);
    count_by(objects, "action", &c);
    buf_printf(out, "%zu object%s drifted: %s", n, n == 1 ? "" : "s", c.text);
    break;
  case LEDGER_TYPE_PRUNE:
    n = doc_len(objects);
    count_by(objects, "outcome", &c);
    buf_printf(out, "prune %zu object%s: %s", n, n == 1 ? "" : "s", c.text);
    break;
  default:
    break;
  }
}

static int parse_since(const char *s, int64_t *ret) {
  uint64_t usec;

  if (time_parse_rfc3339(s, ret) == 0)
    return 0;
  if (time_parse_duration(s, &usec) == 0) {
    *ret = (int64_t)((time_now_real_usec() - usec) / USEC_PER_SEC);
    return 0;
  }
  return -EINVAL;
}

/* The size the checkpoint claims (its signature is verify's business);
 * 0 when there is no readable checkpoint: then nothing is signed. */
static uint64_t signed_size(const char *dir, struct err *why) {
  char *path = path_join(dir, LEDGER_FILE_CHECKPOINT);
  struct ledger_checkpoint cp = {0};
  struct buf text = BUF_INIT;

  if (file_read_all(path, 4096, &text, why) < 0 ||
      ledger_checkpoint_parse(text.data, text.len, path, &cp, why) < 0)
    cp.size = 0;
  buf_dispose(&text);
  free(path);
  return cp.size;
}

static int cmd_show(int argc, char **argv) {
  static const struct option opts[] = {
      {"dir", required_argument, NULL, 'd'}, {"cluster", required_argument, NULL, 'c'},
      {"since", required_argument, NULL, 's'}, {"output", required_argument, NULL, 'o'},
      {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  const char *dir = DEFAULT_DIR, *cluster = NULL, *since = NULL, *output = "text";
  struct ledger_reader *reader = NULL;
  struct ledger_record rec;
  struct err err = ERR_INIT;
  struct buf line = BUF_INIT;
  int64_t since_sec = INT64_MIN;
  bool json, first = true;
  uint64_t n_signed, unsigned_first = LEDGER_INDEX_NONE, unsigned_last = 0;
  struct err cp_err = ERR_INIT;
  int c, k, r = CLI_EXIT_OK;

  while ((c = getopt_long(argc, argv, "d:c:o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'd': dir = optarg; break;
    case 'c': cluster = optarg; break;
    case 's': since = optarg; break;
    case 'o': output = optarg; break;
    case 'h':
      printf("usage: egressd ledger show [--dir DIR] [--cluster C] [--since T] [-o text|json]\n\n"
             "The ledger's history: what was applied where, by whose commit. It does not\n"
             "check signatures; run 'egressd ledger verify' for that. Records past the\n"
             "signed checkpoint are marked UNSIGNED (and named on stderr).\n\n"
             "  --dir DIR        the ledger directory (default %s)\n"
             "  --cluster C      only records about cluster C\n"
             "  --since T        only records from T on: an RFC 3339 time\n"
             "                   (2026-11-27T00:00:00Z) or a duration ago (24h, 7d)\n"
             "  -o, --output F   text (columns) or json (an array of the exact records)\n",
             DEFAULT_DIR);
      return CLI_EXIT_OK;
    default: return cli_usage_error("ledger show", "unknown option");
    }
  }
  if (optind != argc)
    return cli_usage_error("ledger show", "unexpected argument '%s'", argv[optind]);
  if (!str_eq(output, "text") && !str_eq(output, "json"))
    return cli_usage_error("ledger show", "-o takes text or json, not '%s'", output);
  json = str_eq(output, "json");
  if (since && parse_since(since, &since_sec) < 0)
    return cli_usage_error("ledger show", "--since takes an RFC 3339 time or a duration such as "
                           "24h, not '%s'", since);
  if (ledger_reader_open(dir, &reader, &err) < 0)
    return print_err("show", &err, CLI_EXIT_USAGE);
  n_signed = signed_size(dir, &cp_err);
  if (json)
    fputs("[", stdout);
  else
    printf("%-6s %-20s %-13s %-12s %-8s %-18s %s\n", "INDEX", "TIME", "TYPE", "CLUSTER", "COMMIT",
           "SIGNER", "SUMMARY");
  while ((k = ledger_reader_next(reader, &rec, &err)) > 0) {
    const char *rc = doc_map_str(rec.object, "cluster");
    const char *commit = doc_map_str(rec.object, "commit");
    const char *signer = doc_path_str(rec.object, "signer.principal");
    int64_t t;

    if (cluster && !str_eq(rc, cluster))
      continue;
    if (since && (time_parse_rfc3339(rec.time, &t) < 0 || t < since_sec))
      continue;
    if (rec.index >= n_signed) {
      if (unsigned_first == LEDGER_INDEX_NONE)
        unsigned_first = rec.index;
      unsigned_last = rec.index;
    }
    if (json) {
      printf("%s\n", first ? "" : ",");
      fwrite(rec.line, 1, rec.len, stdout);
      first = false;
      continue;
    }
    if (!commit && rec.type == LEDGER_TYPE_APPLY_RESULT)
      commit = ledger_reader_intent_commit(reader);
    buf_reset(&line);
    buf_printf(&line, "%-6llu %-20s %-13s %-12s %-8.7s %-18s ", (unsigned long long)rec.index,
               rec.time, ledger_type_name(rec.type), rc ? rc : "-", commit ? commit : "-",
               signer ? signer : "-");
    if (rec.index >= n_signed)
      buf_puts(&line, "UNSIGNED (past the signed checkpoint): ");
    summary(&rec, &line);
    printable(line.data);
    buf_putc(&line, '\n');
    fwrite(line.data, 1, line.len, stdout);
  }
  if (json)
    fputs(first ? "]\n" : "\n]\n", stdout);
  if (unsigned_first != LEDGER_INDEX_NONE) {
    char range[64];
    if (unsigned_first == unsigned_last)
      str_format(range, sizeof(range), "record %llu is", (unsigned long long)unsigned_first);
    else
      str_format(range, sizeof(range), "records %llu-%llu are", (unsigned long long)unsigned_first,
                 (unsigned long long)unsigned_last);
    if (n_signed)
      fprintf(stderr, "egressd ledger show: warning: %s past the signed checkpoint (size %llu): "
                      "not signed; run 'egressd ledger verify --dir %s'\n", range,
              (unsigned long long)n_signed, dir);
    else
      fprintf(stderr, "egressd ledger show: warning: %s not signed: %s; run 'egressd ledger "
                      "verify --dir %s'\n", range, cp_err.msg, dir);
  }
  if (k == -ENODATA) {
    fprintf(stderr, "egressd ledger show: warning: %s (an interrupted append; egressd settles it "
                    "at start-up)\n", err.msg);
  } else if (k < 0) {
    r = print_err("show", &err, k == -EBADMSG ? CLI_EXIT_FAIL : CLI_EXIT_USAGE);
    fprintf(stderr, "Run 'egressd ledger verify --dir %s' for the whole picture.\n", dir);
  }
  buf_dispose(&line);
  ledger_reader_free(reader);
  return r;
}

/* ---- prove ---- */

static int cmd_prove(int argc, char **argv) {
  static const struct option opts[] = {
      {"dir", required_argument, NULL, 'd'}, {"size", required_argument, NULL, 'n'},
      {"output", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *dir = DEFAULT_DIR, *output = "text";
  uint64_t index, size = 0, got_size;
  uint8_t leaf[LEDGER_HASH_SIZE], root[LEDGER_HASH_SIZE];
  char b64[LEDGER_B64_HASH_SIZE];
  struct ledger_proof *p;
  struct err err = ERR_INIT;
  int c, r;

  while ((c = getopt_long(argc, argv, "d:o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'd': dir = optarg; break;
    case 'n':
      if (str_to_u64(optarg, UINT64_MAX - 1, &size) < 0 || size == 0)
        return cli_usage_error("ledger prove", "--size takes a tree size > 0, not '%s'", optarg);
      break;
    case 'o': output = optarg; break;
    case 'h':
      printf("usage: egressd ledger prove [--dir DIR] [--size N] [-o text|json] INDEX\n\n"
             "Print an RFC 6962 inclusion proof of record INDEX in the tree of the first N\n"
             "records (default: the signed checkpoint's size): the leaf hash, the tree\n"
             "size, the root and the audit path, leaf level first, in base64.\n");
      return CLI_EXIT_OK;
    default: return cli_usage_error("ledger prove", "unknown option");
    }
  }
  if (optind + 1 != argc)
    return cli_usage_error("ledger prove", "give exactly one record INDEX");
  if (str_to_u64(argv[optind], UINT64_MAX - 1, &index) < 0)
    return cli_usage_error("ledger prove", "'%s' is not a record index", argv[optind]);
  if (!str_eq(output, "text") && !str_eq(output, "json"))
    return cli_usage_error("ledger prove", "-o takes text or json, not '%s'", output);
  p = xmalloc(sizeof(*p));
  r = ledger_prove(dir, index, size, p, leaf, root, &got_size, &err);
  if (r < 0) {
    free(p);
    return print_err("prove", &err, r == -ERANGE || r == -EBADMSG ? CLI_EXIT_FAIL
                                                                 : CLI_EXIT_USAGE);
  }
  if (str_eq(output, "json")) {
    printf("{\n  \"index\": %llu,\n  \"tree_size\": %llu,\n  \"leaf_hash\": \"%s\",\n",
           (unsigned long long)index, (unsigned long long)got_size, ledger_hash_b64(leaf, b64));
    printf("  \"root\": \"%s\",\n  \"audit_path\": [", ledger_hash_b64(root, b64));
    for (size_t i = 0; i < p->n; i++)
      printf("%s\n    \"%s\"", i ? "," : "", ledger_hash_b64(p->hashes[i], b64));
    printf("%s]\n}\n", p->n ? "\n  " : "");
  } else {
    printf("index %llu\ntree_size %llu\nleaf_hash %s\n", (unsigned long long)index,
           (unsigned long long)got_size, ledger_hash_b64(leaf, b64));
    printf("root %s\n", ledger_hash_b64(root, b64));
    for (size_t i = 0; i < p->n; i++)
      printf("path %s\n", ledger_hash_b64(p->hashes[i], b64));
  }
  free(p);
  return CLI_EXIT_OK;
}

/* ---- the writer: recover, rotate-key, append-test ---- */

static void print_recovery(const struct ledger_recovery *rec, const char *dir) {
  if (rec->created)
    printf("created the ledger in %s\n", dir);
  if (rec->checkpoint_completed)
    printf("finished an interrupted checkpoint replacement\n");
  if (rec->checkpoint_discarded)
    printf("dropped an unfinished checkpoint replacement\n");
  if (rec->trimmed_bytes)
    printf("trimmed a torn tail of %llu bytes at offset %llu (past the signed size)\n",
           (unsigned long long)rec->trimmed_bytes, (unsigned long long)rec->trimmed_offset);
  if (rec->pending_installed)
    printf("installed the checkpoint its writer signed for record %llu, durable but not yet in "
           "the checkpoint\n", (unsigned long long)rec->signed_size);
  if (rec->quarantined)
    printf("moved record %llu (%llu bytes) to %s: it was past the signed checkpoint and no "
           "signature of the ledger's key covers it, so egressd did not write it; it was not "
           "signed. Find out who wrote it\n", (unsigned long long)rec->quarantined_index,
           (unsigned long long)rec->quarantined_bytes, rec->quarantine_path);
  for (size_t i = 0; i < rec->n_interrupted; i++)
    printf("apply-intent %llu (cluster %s) had no result: recorded as interrupted (record %llu)\n",
           (unsigned long long)rec->interrupted[i].intent, rec->interrupted[i].cluster,
           (unsigned long long)rec->interrupted[i].result);
}

static int open_writer(const char *cmd, const char *dir, const char *key_path, bool create,
                       const char *origin, struct ledger **ret, struct ledger_recovery *rec) {
  struct ledger_open_opts o = {.dir = dir, .create = create, .origin = origin};
  struct ledger_key *key = NULL;
  struct err err = ERR_INIT;
  int r;

  if (ledger_key_load(key_path, &key, &err) < 0)
    return print_err(cmd, &err, CLI_EXIT_USAGE);
  o.key = key;
  r = ledger_open(&o, ret, rec, &err);
  ledger_key_free(key);
  if (r < 0)
    return print_err(cmd, &err, r == -EBADMSG || r == -EKEYREJECTED ? CLI_EXIT_FAIL
                                                                    : CLI_EXIT_USAGE);
  return CLI_EXIT_OK;
}

static int cmd_recover(int argc, char **argv) {
  static const struct option opts[] = {
      {"dir", required_argument, NULL, 'd'}, {"key", required_argument, NULL, 'k'},
      {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  const char *dir = DEFAULT_DIR, *key = DEFAULT_KEY;
  struct ledger_recovery rec = {0};
  struct ledger *l = NULL;
  int c, r;

  while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
    switch (c) {
    case 'd': dir = optarg; break;
    case 'k': key = optarg; break;
    case 'h':
      printf("usage: egressd ledger recover [--dir DIR] [--key FILE]\n\n"
             "Open the ledger as its writer, as egressd does at start-up: finish or drop an\n"
             "interrupted checkpoint replacement, trim a torn tail past the signed size,\n"
             "install the checkpoint the writer signed for a durable record past it, move a\n"
             "record past it that nothing signs to unsigned-record-<index>.jsonl (never\n"
             "signing it), and record an 'interrupted' result for every apply-intent\n"
             "without one. Damage inside the signed history is reported and nothing is\n"
             "changed (exit 1).\n\n"
             "  --dir DIR    the ledger directory (default %s)\n"
             "  --key FILE   the signing key (default %s)\n",
             DEFAULT_DIR, DEFAULT_KEY);
      return CLI_EXIT_OK;
    default: return cli_usage_error("ledger recover", "unknown option");
    }
  }
  if (optind != argc)
    return cli_usage_error("ledger recover", "unexpected argument '%s'", argv[optind]);
  r = open_writer("recover", dir, key, false, NULL, &l, &rec);
  if (r != CLI_EXIT_OK)
    return r;
  print_recovery(&rec, dir);
  printf("ledger %s: %llu records, signed\n", ledger_origin(l), (unsigned long long)rec.size);
  ledger_recovery_dispose(&rec);
  ledger_close(l);
  return CLI_EXIT_OK;
}

static int cmd_rotate_key(int argc, char **argv) {
  static const struct option opts[] = {
      {"dir", required_argument, NULL, 'd'}, {"key", required_argument, NULL, 'k'},
      {"new-key", required_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *dir = DEFAULT_DIR, *key = DEFAULT_KEY, *new_key_path = NULL;
  struct ledger_recovery rec = {0};
  struct ledger_key *new_key = NULL;
  struct ledger *l = NULL;
  struct err err = ERR_INIT;
  char fp[LEDGER_FINGERPRINT_SIZE];
  uint64_t index;
  int c, r;

  while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
    switch (c) {
    case 'd': dir = optarg; break;
    case 'k': key = optarg; break;
    case 'n': new_key_path = optarg; break;
    case 'h':
      printf("usage: egressd ledger rotate-key [--dir DIR] [--key FILE] --new-key FILE\n\n"
             "Append a key-rotation record signed by the current key (--key) that hands the\n"
             "ledger to --new-key; every later checkpoint is signed by the new key. Stop\n"
             "egressd first (one writer), and configure the new key before starting it.\n");
      return CLI_EXIT_OK;
    default: return cli_usage_error("ledger rotate-key", "unknown option");
    }
  }
  if (optind != argc || !new_key_path)
    return cli_usage_error("ledger rotate-key", "give --new-key FILE");
  if (ledger_key_load(new_key_path, &new_key, &err) < 0)
    return print_err("rotate-key", &err, CLI_EXIT_USAGE);
  r = open_writer("rotate-key", dir, key, false, NULL, &l, &rec);
  if (r == CLI_EXIT_OK) {
    print_recovery(&rec, dir);
    if (ledger_rotate_key(l, new_key, &index, &err) < 0) {
      r = print_err("rotate-key", &err, CLI_EXIT_USAGE);
    } else {
      printf("record %llu hands the ledger to %s; configure that key for egressd\n",
             (unsigned long long)index, ledger_pubkey_fingerprint(ledger_key_public(new_key), fp));
    }
  }
  ledger_recovery_dispose(&rec);
  ledger_close(l);
  ledger_key_free(new_key);
  return r;
}

/* One round of append-test: intent + result, sometimes drift and prune. */
static int append_test_round(struct ledger *l, struct doc_arena *a, uint64_t i,
                             uint64_t *appended, struct err *err) {
  static const char *const fields[] = {"spec.hosts", "spec.ports[0].number"};
  char name[32], commit[41], digest[LEDGER_DIGEST_SIZE];
  struct ledger_object obj = {.kind = "ServiceEntry", .namespace = "crash-test", .name = name};
  struct ledger_apply_intent in = {.cluster = "crash-test", .repo = "file:///crash-test",
                                   .ref = "refs/heads/main", .commit = commit, .tree = commit,
                                   .manifests_digest = digest, .actions = &obj, .n_actions = 1};
  struct ledger_apply_result res = {.cluster = "crash-test", .outcome = "ok", .objects = &obj,
                                    .n_objects = 1};
  struct ledger_change change = {.cluster = "crash-test", .commit = commit, .objects = &obj,
                                 .n_objects = 1};
  int r;

  str_format(name, sizeof(name), "object-%llu", (unsigned long long)i);
  str_format(commit, sizeof(commit), "%040llx", (unsigned long long)i);
  ledger_digest_sha256(name, strlen(name), digest);
  obj.action = "update";
  r = ledger_append(l, LEDGER_TYPE_APPLY_INTENT, ledger_fields_apply_intent(a, &in), &res.intent,
                    err);
  if (r < 0)
    return r;
  obj.outcome = "ok";
  obj.resource_version = "1";
  r = ledger_append(l, LEDGER_TYPE_APPLY_RESULT, ledger_fields_apply_result(a, &res), NULL, err);
  if (r < 0)
    return r;
  *appended += 2;
  if (i % 4 == 3) {
    obj.change = "modified";
    obj.fields = fields;
    obj.n_fields = ARRAY_SIZE(fields);
    obj.action = "reapplied";
    r = ledger_append(l, LEDGER_TYPE_DRIFT, ledger_fields_drift(a, &change), NULL, err);
    if (r < 0)
      return r;
    (*appended)++;
  }
  if (i % 8 == 7) {
    obj.outcome = "deleted";
    obj.uid = "00000000-0000-4000-8000-000000000000";
    r = ledger_append(l, LEDGER_TYPE_PRUNE, ledger_fields_prune(a, &change), NULL, err);
    if (r < 0)
      return r;
    (*appended)++;
  }
  return 0;
}

static int cmd_append_test(int argc, char **argv) {
  static const struct option opts[] = {
      {"dir", required_argument, NULL, 'd'}, {"key", required_argument, NULL, 'k'},
      {"count", required_argument, NULL, 'n'}, {"create", no_argument, NULL, 'c'},
      {"origin", required_argument, NULL, 'O'}, {NULL, 0, NULL, 0}};
  const char *dir = DEFAULT_DIR, *key = DEFAULT_KEY, *origin = NULL;
  struct ledger_recovery rec = {0};
  struct ledger *l = NULL;
  struct err err = ERR_INIT;
  uint64_t count = 0, start, i, appended = 0;
  bool create = false, forever = true;
  int c, r;

  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'd': dir = optarg; break;
    case 'k': key = optarg; break;
    case 'c': create = true; break;
    case 'O': origin = optarg; break;
    case 'n':
      if (str_to_u64(optarg, UINT64_MAX, &count) < 0)
        return cli_usage_error("ledger append-test", "--count takes a number");
      forever = false;
      break;
    default: return cli_usage_error("ledger append-test", "unknown option");
    }
  }
  r = open_writer("append-test", dir, key, create, origin, &l, &rec);
  if (r != CLI_EXIT_OK)
    return r;
  print_recovery(&rec, dir);
  fflush(stdout);
  ledger_recovery_dispose(&rec);
  start = time_now_mono_usec();
  /* without --count: until killed (the crash test). Every iteration is an
   * intent and its result; every 4th adds a drift, every 8th a prune record,
   * so every record type the daemon writes is exercised. */
  for (i = 0; forever || i < count; i++) {
    struct doc_arena *a = doc_arena_new();
    r = append_test_round(l, a, i, &appended, &err);
    doc_arena_free(a);
    if (r < 0) {
      ledger_close(l);
      return print_err("append-test", &err, CLI_EXIT_USAGE);
    }
  }
  {
    double secs = (double)(time_now_mono_usec() - start) / 1e6;
    printf("appended %llu records in %.3f s: %.0f records/s (each fdatasync'd and signed)\n",
           (unsigned long long)appended, secs, secs > 0 ? (double)appended / secs : 0.0);
  }
  ledger_close(l);
  return CLI_EXIT_OK;
}

int cmd_ledger(int argc, char **argv) {
  static const struct cli_command sub[] = {
      {"verify", "", cmd_verify},         {"show", "", cmd_show},
      {"prove", "", cmd_prove},           {"recover", "", cmd_recover},
      {"rotate-key", "", cmd_rotate_key}, {"append-test", NULL, cmd_append_test},
  };

  return cli_group("ledger", sub, ARRAY_SIZE(sub), usage, argc, argv);
}
