/* Ledger records: the canonical JSON line of one record, its parser and the
 * per-type schema (docs/ledger-record.schema.json), and the typed builders.
 *
 * Canonical form: {"index":N,"time":"...","type":"...","prev_root":"..."
 * then the type's fields sorted by key (byte order), nested maps sorted too,
 * no insignificant spaces, strings escaped as doc_emit_json() does. A line
 * is accepted only if serialising its parse gives the same bytes, so a
 * record has exactly one spelling and a reader can never see something the
 * writer would not have written. The writer runs the same parser on every
 * line before it appends it.
 *
 * Lines are parsed by doc_parse_one() (libyaml: JSON is YAML) with tight
 * limits (record_limits); no JSON is parsed by hand here.
 *
 * When you add a field or a record type, also touch: the schema tables
 * below, the builders, docs/ledger-record.schema.json, docs/ledger.md and
 * the tests in tests/unit/test-ledger.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "base/str.h"
#include "base/timeutil.h"
#include "doc/doc-schema.h"
#include "ledger/ledger-int.h"

const struct doc_limits record_limits = {
    .max_bytes = LEDGER_RECORD_MAX,
    .max_depth = 16,
    /* every record the writer formats must parse back: a node of canonical
     * JSON takes at least two bytes (a one-digit number and its comma),
     * so no record within max_bytes has more nodes than this (an apply
     * result of a cluster of 4,026 objects had more than 65,536) */
    .max_nodes = LEDGER_RECORD_MAX / 2,
    .max_docs = 1,
    .max_scalar = LEDGER_RECORD_MAX,
};

static const char *const type_names[_LEDGER_TYPE_MAX] = {
    [LEDGER_TYPE_GENESIS] = "genesis",           [LEDGER_TYPE_APPLY_INTENT] = "apply-intent",
    [LEDGER_TYPE_APPLY_RESULT] = "apply-result", [LEDGER_TYPE_DRIFT] = "drift",
    [LEDGER_TYPE_PRUNE] = "prune",               [LEDGER_TYPE_KEY_ROTATION] = "key-rotation",
    [LEDGER_TYPE_ROLLOUT] = "rollout",           [LEDGER_TYPE_LEASE] = "lease",
};

const char *ledger_type_name(enum ledger_type t) {
  return (unsigned)t < _LEDGER_TYPE_MAX ? type_names[t] : "unknown";
}

int ledger_type_from_name(const char *name, enum ledger_type *ret) {
  for (unsigned i = 0; i < _LEDGER_TYPE_MAX; i++)
    if (str_eq(name, type_names[i])) {
      *ret = (enum ledger_type)i;
      return 0;
    }
  return -EINVAL;
}

static const char *const reserved_keys[] = {"index", "time", "type", "prev_root"};

bool ledger_key_is_reserved(const char *key) {
  for (size_t i = 0; i < ARRAY_SIZE(reserved_keys); i++)
    if (str_eq(key, reserved_keys[i]))
      return true;
  return false;
}

/* ---- serialisation ---- */

static void emit_string(struct buf *out, const char *s, size_t len) {
  struct doc_node n = {.type = DOC_STR};

  n.u.str.s = s;
  n.u.str.len = len;
  doc_emit_json(&n, out, 0);
}

static int cmp_pair(const void *a, const void *b) {
  const struct doc_pair *const *x = a, *const *y = b;
  return strcmp((*x)->key, (*y)->key);
}

int record_format_pairs(uint64_t index, const char *time, enum ledger_type type,
                        const uint8_t prev_root[LEDGER_HASH_SIZE], const struct doc_pair *pairs,
                        size_t n, struct buf *out, struct err *err) {
  const struct doc_pair **sorted = xmalloc((n ? n : 1) * sizeof(*sorted));
  char root[LEDGER_B64_HASH_SIZE];
  size_t start = out->len;
  int r = 0;

  for (size_t i = 0; i < n; i++)
    sorted[i] = &pairs[i];
  qsort(sorted, n, sizeof(*sorted), cmp_pair);
  for (size_t i = 0; i < n; i++) {
    if (ledger_key_is_reserved(sorted[i]->key)) {
      r = err_set(err, -EINVAL, "field '%s' is the ledger's own; choose another name",
                  sorted[i]->key);
      goto out;
    }
    if (i && strcmp(sorted[i - 1]->key, sorted[i]->key) == 0) {
      r = err_set(err, -EINVAL, "field '%s' appears twice", sorted[i]->key);
      goto out;
    }
  }
  buf_printf(out, "{\"index\":%llu,\"time\":", (unsigned long long)index);
  emit_string(out, time, strlen(time));
  buf_printf(out, ",\"type\":\"%s\",\"prev_root\":\"%s\"", ledger_type_name(type),
             ledger_hash_b64(prev_root, root));
  for (size_t i = 0; i < n; i++) {
    buf_putc(out, ',');
    emit_string(out, sorted[i]->key, strlen(sorted[i]->key));
    buf_putc(out, ':');
    doc_emit_json(sorted[i]->value, out, DOC_JSON_SORT_KEYS);
  }
  buf_putc(out, '}');
  if (out->len - start > LEDGER_RECORD_MAX) {
    r = err_set(err, -EINVAL, "the record would be %zu bytes; the limit is %u", out->len - start,
                LEDGER_RECORD_MAX);
    buf_truncate(out, start);
  }
out:
  free(sorted);
  return r;
}

int ledger_record_format(uint64_t index, const char *time, enum ledger_type type,
                         const uint8_t prev_root[LEDGER_HASH_SIZE], const struct doc_node *fields,
                         struct buf *out, struct err *err) {
  if (!doc_is(fields, DOC_MAP))
    return err_set(err, -EINVAL, "the fields of a %s record must be a map",
                   ledger_type_name(type));
  if (index > INT64_MAX)
    return err_set(err, -EOVERFLOW, "the ledger is full");
  return record_format_pairs(index, time, type, prev_root, fields->u.map.items, fields->u.map.n,
                             out, err);
}

void rotation_message(const char *origin, uint64_t index, const uint8_t prev_root[LEDGER_HASH_SIZE],
                      const char *public_key, struct buf *out) {
  char root[LEDGER_B64_HASH_SIZE];

  buf_printf(out, "egressd ledger key rotation\n%s\n%llu\n%s\n%s\n", origin,
             (unsigned long long)index, ledger_hash_b64(prev_root, root), public_key);
}

/* ---- schema ---- */

static const char *const intent_actions[] = {"create", "update", "delete", "unchanged", NULL};
static const char *const result_outcomes[] = {"ok", "partial", "failed", "interrupted", NULL};
static const char *const object_outcomes[] = {"ok", "failed", "skipped", NULL};
static const char *const prune_outcomes[] = {"deleted", "gone", "failed", "skipped", NULL};
static const char *const drift_changes[] = {"modified", "deleted", NULL};
static const char *const drift_actions[] = {"reapplied", "reported", NULL};
static const char *const rollout_actions[] = {"pause", "resume", NULL};
static const char *const lease_actions[] = {"acquired", "lost", "released", NULL};

static const struct doc_schema s_str = {.kind = DOC_SCHEMA_STR};
static const struct doc_schema s_index = {.kind = DOC_SCHEMA_INT, .what = "a record index",
                                          .min = 0, .max = INT64_MAX};
static const struct doc_schema s_version = {.kind = DOC_SCHEMA_INT, .what = "format version 1",
                                            .min = 1, .max = 1};
static const struct doc_schema s_str_list = {.kind = DOC_SCHEMA_LIST, .items = &s_str};
static const struct doc_schema s_intent_action = {.kind = DOC_SCHEMA_STR,
                                                  .enum_values = intent_actions};
static const struct doc_schema s_result_outcome = {.kind = DOC_SCHEMA_STR,
                                                   .enum_values = result_outcomes};
static const struct doc_schema s_object_outcome = {.kind = DOC_SCHEMA_STR,
                                                   .enum_values = object_outcomes};
static const struct doc_schema s_prune_outcome = {.kind = DOC_SCHEMA_STR,
                                                  .enum_values = prune_outcomes};
static const struct doc_schema s_drift_change = {.kind = DOC_SCHEMA_STR,
                                                 .enum_values = drift_changes};
static const struct doc_schema s_drift_action = {.kind = DOC_SCHEMA_STR,
                                                 .enum_values = drift_actions};
static const struct doc_schema s_rollout_action = {.kind = DOC_SCHEMA_STR,
                                                   .enum_values = rollout_actions};
static const struct doc_schema s_lease_action = {.kind = DOC_SCHEMA_STR,
                                                 .enum_values = lease_actions};

#define HEADER_FIELDS                                                                    \
  {"index", &s_index, true}, {"time", &s_str, true}, {"type", &s_str, true},             \
      {"prev_root", &s_str, true}
#define OBJECT_REF_FIELDS                                                                \
  {"api_version", &s_str, false}, {"kind", &s_str, true}, {"namespace", &s_str, false},  \
      {"name", &s_str, true}

static const struct doc_schema_field f_signer[] = {
    {"principal", &s_str, true}, {"key", &s_str, true}, {NULL}};
static const struct doc_schema s_signer = {.kind = DOC_SCHEMA_OBJECT, .fields = f_signer};

static const struct doc_schema_field f_intent_object[] = {
    OBJECT_REF_FIELDS, {"action", &s_intent_action, true}, {NULL}};
static const struct doc_schema s_intent_object = {.kind = DOC_SCHEMA_OBJECT,
                                                  .fields = f_intent_object};
static const struct doc_schema s_intent_objects = {.kind = DOC_SCHEMA_LIST,
                                                   .items = &s_intent_object};

static const struct doc_schema_field f_result_object[] = {
    OBJECT_REF_FIELDS,
    {"action", &s_intent_action, true},
    {"outcome", &s_object_outcome, true},
    {"resource_version", &s_str, false},
    {"uid", &s_str, false},
    {"error", &s_str, false},
    {NULL}};
static const struct doc_schema s_result_object = {.kind = DOC_SCHEMA_OBJECT,
                                                  .fields = f_result_object};
static const struct doc_schema s_result_objects = {.kind = DOC_SCHEMA_LIST,
                                                   .items = &s_result_object};

static const struct doc_schema_field f_drift_object[] = {
    OBJECT_REF_FIELDS,
    {"change", &s_drift_change, true},
    {"fields", &s_str_list, false},
    {"action", &s_drift_action, true},
    {NULL}};
static const struct doc_schema s_drift_object = {.kind = DOC_SCHEMA_OBJECT,
                                                 .fields = f_drift_object};
static const struct doc_schema s_drift_objects = {.kind = DOC_SCHEMA_LIST,
                                                  .items = &s_drift_object};

static const struct doc_schema_field f_prune_object[] = {
    OBJECT_REF_FIELDS,
    {"uid", &s_str, false},
    {"outcome", &s_prune_outcome, true},
    {"error", &s_str, false},
    {NULL}};
static const struct doc_schema s_prune_object = {.kind = DOC_SCHEMA_OBJECT,
                                                 .fields = f_prune_object};
static const struct doc_schema s_prune_objects = {.kind = DOC_SCHEMA_LIST,
                                                  .items = &s_prune_object};

static const struct doc_schema_field f_genesis[] = {
    HEADER_FIELDS, {"origin", &s_str, true}, {"public_key", &s_str, true},
    {"host", &s_str, true}, {"version", &s_version, true}, {NULL}};
static const struct doc_schema_field f_apply_intent[] = {
    HEADER_FIELDS,
    {"cluster", &s_str, true},
    {"repo", &s_str, true},
    {"ref", &s_str, true},
    {"commit", &s_str, true},
    {"tree", &s_str, true},
    {"signer", &s_signer, false},
    {"manifests_digest", &s_str, true},
    {"actions", &s_intent_objects, true},
    {NULL}};
static const struct doc_schema_field f_apply_result[] = {
    HEADER_FIELDS,
    {"intent", &s_index, true},
    {"cluster", &s_str, true},
    {"outcome", &s_result_outcome, true},
    {"error", &s_str, false},
    {"objects", &s_result_objects, true},
    {NULL}};
static const struct doc_schema_field f_drift[] = {
    HEADER_FIELDS, {"cluster", &s_str, true}, {"commit", &s_str, true},
    {"objects", &s_drift_objects, true}, {NULL}};
static const struct doc_schema_field f_prune[] = {
    HEADER_FIELDS, {"cluster", &s_str, true}, {"commit", &s_str, true},
    {"objects", &s_prune_objects, true}, {NULL}};
static const struct doc_schema_field f_key_rotation[] = {
    HEADER_FIELDS, {"public_key", &s_str, true}, {"signature", &s_str, true}, {NULL}};
static const struct doc_schema_field f_rollout[] = {
    HEADER_FIELDS,          {"action", &s_rollout_action, true}, {"target", &s_str, true},
    {"state", &s_str, true}, {"actor", &s_str, false},           {NULL}};
static const struct doc_schema_field f_lease[] = {
    HEADER_FIELDS,          {"action", &s_lease_action, true}, {"lease", &s_str, true},
    {"identity", &s_str, true}, {"cluster", &s_str, false},     {"reason", &s_str, false},
    {NULL}};

static const struct doc_schema record_schemas[_LEDGER_TYPE_MAX] = {
    [LEDGER_TYPE_GENESIS] = {.kind = DOC_SCHEMA_OBJECT, .fields = f_genesis},
    [LEDGER_TYPE_APPLY_INTENT] = {.kind = DOC_SCHEMA_OBJECT, .fields = f_apply_intent},
    [LEDGER_TYPE_APPLY_RESULT] = {.kind = DOC_SCHEMA_OBJECT, .fields = f_apply_result},
    [LEDGER_TYPE_DRIFT] = {.kind = DOC_SCHEMA_OBJECT, .fields = f_drift},
    [LEDGER_TYPE_PRUNE] = {.kind = DOC_SCHEMA_OBJECT, .fields = f_prune},
    [LEDGER_TYPE_KEY_ROTATION] = {.kind = DOC_SCHEMA_OBJECT, .fields = f_key_rotation},
    [LEDGER_TYPE_ROLLOUT] = {.kind = DOC_SCHEMA_OBJECT, .fields = f_rollout},
    [LEDGER_TYPE_LEASE] = {.kind = DOC_SCHEMA_OBJECT, .fields = f_lease},
};

static bool is_lower_hex(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return true;
}

static bool object_id(const char *s) {
  size_t len = s ? strlen(s) : 0;
  return (len == 40 || len == 64) && is_lower_hex(s, len);
}

/* The rules a schema table cannot say. */
static int check_meaning(const struct doc_node *o, enum ledger_type type, struct err *err) {
  const char *s;
  struct ledger_pubkey pk;

  switch (type) {
  case LEDGER_TYPE_GENESIS:
    if (ledger_origin_check(doc_map_str(o, "origin"), NULL) < 0)
      return err_set(err, -EBADMSG, "'origin' is not a valid log origin");
    s = doc_map_str(o, "public_key");
    if (!str_has_prefix(s, "ssh-ed25519 ") || strchr(s + 12, ' ') ||
        ledger_pubkey_parse(s, strlen(s), &pk, NULL) < 0)
      return err_set(err, -EBADMSG, "'public_key' is not 'ssh-ed25519 <base64>'");
    return 0;
  case LEDGER_TYPE_KEY_ROTATION:
    s = doc_map_str(o, "public_key");
    if (!str_has_prefix(s, "ssh-ed25519 ") || strchr(s + 12, ' ') ||
        ledger_pubkey_parse(s, strlen(s), &pk, NULL) < 0)
      return err_set(err, -EBADMSG, "'public_key' is not 'ssh-ed25519 <base64>'");
    return 0;
  case LEDGER_TYPE_APPLY_INTENT:
    if (!object_id(doc_map_str(o, "commit")))
      return err_set(err, -EBADMSG, "'commit' is not a Git object id (40 or 64 lower-case hex)");
    if (!object_id(doc_map_str(o, "tree")))
      return err_set(err, -EBADMSG, "'tree' is not a Git object id (40 or 64 lower-case hex)");
    s = doc_map_str(o, "manifests_digest");
    if (!str_has_prefix(s, "sha256:") || strlen(s) != 71 || !is_lower_hex(s + 7, 64))
      return err_set(err, -EBADMSG, "'manifests_digest' is not 'sha256:<64 hex>'");
    s = doc_path_str(o, "signer.key");
    if (s && (!str_has_prefix(s, "SHA256:") || strlen(s) != 50))
      return err_set(err, -EBADMSG, "'signer.key' is not an SSH fingerprint 'SHA256:...'");
    break;
  case LEDGER_TYPE_DRIFT:
  case LEDGER_TYPE_PRUNE:
    if (!object_id(doc_map_str(o, "commit")))
      return err_set(err, -EBADMSG, "'commit' is not a Git object id (40 or 64 lower-case hex)");
    break;
  case LEDGER_TYPE_ROLLOUT:
    if (!object_id(doc_map_str(o, "target")))
      return err_set(err, -EBADMSG, "'target' is not a Git object id (40 or 64 lower-case hex)");
    return 0; /* about the whole fleet: no cluster */
  case LEDGER_TYPE_LEASE:
    if (str_is_empty(doc_map_str(o, "lease")) || str_is_empty(doc_map_str(o, "identity")))
      return err_set(err, -EBADMSG, "'lease' or 'identity' is empty");
    return 0; /* standby's leader lease is about the whole fleet */
  case LEDGER_TYPE_APPLY_RESULT:
  case _LEDGER_TYPE_MAX:
    break;
  }
  if (str_is_empty(doc_map_str(o, "cluster")))
    return err_set(err, -EBADMSG, "'cluster' is empty");
  return 0;
}

static int schema_check(const struct doc_node *o, enum ledger_type type, struct err *err) {
  struct diag_list diags = {0};
  int r = 0;

  diags.max = 1;
  if (doc_schema_check(o, &record_schemas[type], "", &diags) > 0 && diags.n > 0)
    r = err_set(err, -EBADMSG, "%s", diags.items[0].msg);
  diag_list_dispose(&diags);
  return r < 0 ? r : check_meaning(o, type, err);
}

static const struct doc_pair *header(const struct doc_node *o, size_t i, const char *key) {
  return o->u.map.n > i && str_eq(o->u.map.items[i].key, key) ? &o->u.map.items[i] : NULL;
}

int ledger_record_parse(struct doc_arena *a, const char *line, size_t len,
                        struct ledger_record *ret, struct err *err) {
  struct err perr = ERR_INIT;
  struct doc_node *o;
  const struct doc_pair *idx, *tim, *typ, *prv;
  struct ledger_record rec = {0};
  struct buf again = BUF_INIT;
  char canon_time[32];
  int64_t sec;
  int r;

  if (len > LEDGER_RECORD_MAX)
    return err_set(err, -EBADMSG, "longer than %u bytes", LEDGER_RECORD_MAX);
  r = doc_parse_one(a, "record", line, len, &record_limits, &o, &perr);
  if (r < 0) {
    if (perr.col)
      return err_set(err, -EBADMSG, "not valid JSON at column %u: %s", perr.col, perr.msg);
    return err_set(err, -EBADMSG, "not valid JSON: %s", perr.msg);
  }
  if (o->type != DOC_MAP)
    return err_set(err, -EBADMSG, "not a JSON object");
  idx = header(o, 0, "index");
  tim = header(o, 1, "time");
  typ = header(o, 2, "type");
  prv = header(o, 3, "prev_root");
  if (!idx || !tim || !typ || !prv)
    return err_set(err, -EBADMSG, "does not begin with the keys index, time, type, prev_root");
  if (idx->value->type != DOC_INT || idx->value->u.i < 0)
    return err_set(err, -EBADMSG, "'index' is not a non-negative integer");
  if (typ->value->type != DOC_STR || ledger_type_from_name(typ->value->u.str.s, &rec.type) < 0)
    return err_set(err, -EBADMSG, "unknown record type");
  canon_time[0] = '\0';
  if (tim->value->type == DOC_STR && time_parse_rfc3339(tim->value->u.str.s, &sec) == 0 && sec >= 0)
    time_format_rfc3339(canon_time, sizeof(canon_time), (uint64_t)sec * USEC_PER_SEC);
  if (tim->value->type != DOC_STR || !str_eq(canon_time, tim->value->u.str.s))
    return err_set(err, -EBADMSG, "'time' is not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)");
  if (prv->value->type != DOC_STR ||
      ledger_hash_from_b64(prv->value->u.str.s, prv->value->u.str.len, rec.prev_root) < 0)
    return err_set(err, -EBADMSG, "'prev_root' is not the base64 of a 32-byte hash");
  rec.index = (uint64_t)idx->value->u.i;
  rec.time = tim->value->u.str.s;
  r = record_format_pairs(rec.index, rec.time, rec.type, rec.prev_root, o->u.map.items + 4,
                          o->u.map.n - 4, &again, err);
  if (r < 0) {
    buf_dispose(&again);
    return -EBADMSG;
  }
  if (again.len != len || memcmp(again.data, line, len) != 0) {
    size_t at = 0;
    while (at < len && at < again.len && again.data[at] == line[at])
      at++;
    buf_dispose(&again);
    return err_set(err, -EBADMSG, "not in canonical form at column %zu (egressd writes sorted "
                   "keys and no spaces; the line was edited)", at + 1);
  }
  buf_dispose(&again);
  r = schema_check(o, rec.type, err);
  if (r < 0)
    return r;
  rec.object = o;
  rec.line = line;
  rec.len = len;
  *ret = rec;
  return 0;
}

/* ---- builders ---- */

static void put_str(struct doc_arena *a, struct doc_node *m, const char *key, const char *value) {
  if (value)
    doc_map_set(a, m, key, doc_new_str(a, value));
}

static struct doc_node *object_node(struct doc_arena *a, const struct ledger_object *ob,
                                    enum ledger_type type) {
  struct doc_node *m = doc_new_map(a);

  put_str(a, m, "api_version", ob->api_version);
  put_str(a, m, "kind", ob->kind);
  put_str(a, m, "namespace", ob->namespace);
  put_str(a, m, "name", ob->name);
  switch (type) {
  case LEDGER_TYPE_APPLY_INTENT:
    put_str(a, m, "action", ob->action);
    break;
  case LEDGER_TYPE_APPLY_RESULT:
    put_str(a, m, "action", ob->action);
    put_str(a, m, "outcome", ob->outcome);
    put_str(a, m, "resource_version", ob->resource_version);
    put_str(a, m, "uid", ob->uid);
    put_str(a, m, "error", ob->error);
    break;
  case LEDGER_TYPE_DRIFT:
    put_str(a, m, "change", ob->change);
    if (ob->n_fields) {
      struct doc_node *fields = doc_new_seq(a);
      for (size_t i = 0; i < ob->n_fields; i++)
        doc_seq_push(a, fields, doc_new_str(a, ob->fields[i]));
      doc_map_set(a, m, "fields", fields);
    }
    put_str(a, m, "action", ob->action);
    break;
  case LEDGER_TYPE_PRUNE:
    put_str(a, m, "uid", ob->uid);
    put_str(a, m, "outcome", ob->outcome);
    put_str(a, m, "error", ob->error);
    break;
  default:
    break;
  }
  return m;
}

static struct doc_node *objects_node(struct doc_arena *a, const struct ledger_object *obs, size_t n,
                                     enum ledger_type type) {
  struct doc_node *seq = doc_new_seq(a);

  for (size_t i = 0; i < n; i++)
    doc_seq_push(a, seq, object_node(a, &obs[i], type));
  return seq;
}

struct doc_node *ledger_fields_apply_intent(struct doc_arena *a, const struct ledger_apply_intent *in) {
  struct doc_node *m = doc_new_map(a);

  put_str(a, m, "cluster", in->cluster);
  put_str(a, m, "repo", in->repo);
  put_str(a, m, "ref", in->ref);
  put_str(a, m, "commit", in->commit);
  put_str(a, m, "tree", in->tree);
  if (in->signer_principal) {
    struct doc_node *signer = doc_new_map(a);
    put_str(a, signer, "principal", in->signer_principal);
    put_str(a, signer, "key", in->signer_key);
    doc_map_set(a, m, "signer", signer);
  }
  put_str(a, m, "manifests_digest", in->manifests_digest);
  doc_map_set(a, m, "actions", objects_node(a, in->actions, in->n_actions, LEDGER_TYPE_APPLY_INTENT));
  return m;
}

struct doc_node *ledger_fields_apply_result(struct doc_arena *a, const struct ledger_apply_result *in) {
  struct doc_node *m = doc_new_map(a);

  doc_map_set(a, m, "intent", doc_new_int(a, (int64_t)in->intent));
  put_str(a, m, "cluster", in->cluster);
  put_str(a, m, "outcome", in->outcome);
  put_str(a, m, "error", in->error);
  doc_map_set(a, m, "objects", objects_node(a, in->objects, in->n_objects, LEDGER_TYPE_APPLY_RESULT));
  return m;
}

static struct doc_node *change_fields(struct doc_arena *a, const struct ledger_change *in,
                                      enum ledger_type type) {
  struct doc_node *m = doc_new_map(a);

  put_str(a, m, "cluster", in->cluster);
  put_str(a, m, "commit", in->commit);
  doc_map_set(a, m, "objects", objects_node(a, in->objects, in->n_objects, type));
  return m;
}

struct doc_node *ledger_fields_drift(struct doc_arena *a, const struct ledger_change *in) {
  return change_fields(a, in, LEDGER_TYPE_DRIFT);
}

struct doc_node *ledger_fields_prune(struct doc_arena *a, const struct ledger_change *in) {
  return change_fields(a, in, LEDGER_TYPE_PRUNE);
}

struct doc_node *ledger_fields_lease(struct doc_arena *a, const struct ledger_lease_act *in) {
  struct doc_node *m = doc_new_map(a);

  put_str(a, m, "action", in->action);
  put_str(a, m, "lease", in->lease);
  put_str(a, m, "identity", in->identity);
  put_str(a, m, "cluster", in->cluster);
  put_str(a, m, "reason", in->reason);
  return m;
}

struct doc_node *ledger_fields_rollout(struct doc_arena *a, const struct ledger_rollout_act *in) {
  struct doc_node *m = doc_new_map(a);

  put_str(a, m, "action", in->action);
  put_str(a, m, "target", in->target);
  put_str(a, m, "state", in->state);
  put_str(a, m, "actor", in->actor);
  return m;
}
