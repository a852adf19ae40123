/* Unit tests for daemon/svc/webhook.c, the webhook doorbell's pure half:
 * the verdict on whole requests of every forge (table), the request head,
 * the listen address, the token bucket, the secret file, and
 * repository.webhook in the host config.
 *
 * The signatures in the table were computed with Python's hmac module
 * (hmac.new(secret, body, hashlib.sha256).hexdigest()), not with the code
 * under test; HELLO's is GitHub's own documented example ("Validating
 * webhook deliveries"). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "svc/hostconfig.h"
#include "svc/webhook.h"
#include "testutil.h"

#define SECRET "It's a Secret to Everybody"
#define REF "refs/heads/main"

/* bodies, and their HMAC-SHA256 under SECRET */
#define GH_MAIN                                                                                   \
  "{\"ref\":\"refs/heads/main\",\"before\":\"0000000000000000000000000000000000000000\","          \
  "\"after\":\"3f2a1c9d3f2a1c9d3f2a1c9d3f2a1c9d3f2a1c9d\",\"repository\":{\"full_name\":"          \
  "\"platform/egress\"},\"commits\":[{\"id\":\"3f2a1c9d\",\"message\":\"allow \\u003capi\\u003e " \
  "\\/ stripe\"}]}"
#define GH_MAIN_SIG "f413e7e4c36b71be1cc8936f63a3b0ae05aea5777cd7644ba25adc6112d9fa43"
#define GH_MAIN_SIG_UPPER "F413E7E4C36B71BE1CC8936F63A3B0AE05AEA5777CD7644BA25ADC6112D9FA43"
#define GH_DEV "{\"ref\":\"refs/heads/dev\",\"after\":\"3f2a1c9d3f2a1c9d3f2a1c9d3f2a1c9d3f2a1c9d\"}"
#define GH_DEV_SIG "6f82727a4d05003afabf36d1780d16a2a788ab1d5f10f880afe3c4ecda7fb692"
#define HELLO "Hello, World!"
#define HELLO_SIG "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
#define BB_SERVER                                                                                 \
  "{\"eventKey\":\"repo:refs_changed\",\"changes\":[{\"ref\":{\"id\":\"refs/heads/dev\","          \
  "\"displayId\":\"dev\",\"type\":\"BRANCH\"},\"refId\":\"refs/heads/dev\",\"type\":\"UPDATE\"},"  \
  "{\"ref\":{\"id\":\"refs/heads/main\",\"displayId\":\"main\",\"type\":\"BRANCH\"},\"refId\":"    \
  "\"refs/heads/main\",\"type\":\"UPDATE\"}]}"
#define BB_SERVER_SIG "ca795631ba263f8401c0ffc8f552196121550e46a688f19f72eb65bcbbb87264"
#define BB_SERVER_DEV                                                                             \
  "{\"eventKey\":\"repo:refs_changed\",\"changes\":[{\"ref\":{\"id\":\"refs/heads/dev\","          \
  "\"displayId\":\"dev\",\"type\":\"BRANCH\"},\"refId\":\"refs/heads/dev\",\"type\":\"UPDATE\"}]}"
#define BB_SERVER_DEV_SIG "0f94fbf04eabb8d9ad62e6fd1f7a5276591b3be6d894b2515f1b0c5cae8a8987"
#define BB_CLOUD                                                                                  \
  "{\"push\":{\"changes\":[{\"new\":{\"type\":\"branch\",\"name\":\"main\"},\"old\":{\"type\":"    \
  "\"branch\",\"name\":\"main\"}}]}}"
#define BB_CLOUD_SIG "db83ca0df0968e43878f0daee2300747bcc07527a057c2cfc0c191ea4004f495"
#define BB_CLOUD_DELETED                                                                          \
  "{\"push\":{\"changes\":[{\"new\":null,\"old\":{\"type\":\"branch\",\"name\":\"main\"}}]}}"
#define BB_CLOUD_DELETED_SIG "e5bdaef67f2df20e7faa362b42ad06a3cd1d878e59125520163c8f07a5596bf6"
#define BAD_JSON "{\"ref\": \"refs/heads/main\","
#define BAD_JSON_SIG "109b94a4ca5fa9182f84694ccad9c900bffd5f26ad030d99ffacc968768ecb72"
#define ARRAY "[\"refs/heads/main\"]"
#define ARRAY_SIG "089c6965341a24184fef35d47b7b9555aaa69006c7508b377dca6d0d57a3f664"
#define NO_REF "{\"before\":\"x\",\"after\":\"y\"}"
#define NO_REF_SIG "d0f6a0e88e554312482b553541a4def728fb6c39b9110d37bf09a1fdfb94a7cd"
#define REF_NOT_STRING "{\"ref\":[\"refs/heads/main\"]}"
#define REF_NOT_STRING_SIG "2e408fd6c307149c36067b7c90fb3fd46b71544398c9134ea987eda13009b8cd"
#define YAML_NOT_JSON "ref: refs/heads/main\n"
#define YAML_NOT_JSON_SIG "dde50640e8e4e20352758b7c30d02a5807c4deabbb0b2fbf73a75b4f5b0dae6d"

#define GITHUB(event, sig) "X-GitHub-Event: " event "\r\nX-Hub-Signature-256: sha256=" sig "\r\n"
#define JSON "Content-Type: application/json\r\n"

enum { DOORBELL = WEBHOOK_RESULT_DOORBELL, IGNORED = WEBHOOK_RESULT_IGNORED,
       PING = WEBHOOK_RESULT_PING, UNAUTH = WEBHOOK_RESULT_UNAUTHORIZED,
       BAD = WEBHOOK_RESULT_BAD_REQUEST, LARGE = WEBHOOK_RESULT_TOO_LARGE,
       HEADERS = WEBHOOK_RESULT_HEADERS_TOO_LARGE };

struct verdict_case {
  const char *name;
  enum webhook_forge forge;
  const char *headers;         /* lines ending in \r\n; Content-Length is added */
  const char *body;
  int status;
  int result;
  const char *reason;          /* a part of the reason */
};

static const struct verdict_case cases[] = {
    /* GitHub */
    {"github push to the followed ref", WEBHOOK_FORGE_GITHUB,
     GITHUB("push", GH_MAIN_SIG) JSON "X-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\r\n",
     GH_MAIN, 202, DOORBELL, "accepted"},
    {"github signature in upper-case hex", WEBHOOK_FORGE_GITHUB, GITHUB("push", GH_MAIN_SIG_UPPER),
     GH_MAIN, 202, DOORBELL, "accepted"},
    {"github charset parameter", WEBHOOK_FORGE_GITHUB,
     GITHUB("push", GH_MAIN_SIG) "Content-Type: application/json; charset=utf-8\r\n", GH_MAIN, 202,
     DOORBELL, "accepted"},
    {"github signature of another body", WEBHOOK_FORGE_GITHUB, GITHUB("push", GH_DEV_SIG) JSON,
     GH_MAIN, 401, UNAUTH, "X-Hub-Signature-256 does not match the secret"},
    {"github no signature", WEBHOOK_FORGE_GITHUB, "X-GitHub-Event: push\r\n" JSON, GH_MAIN, 401,
     UNAUTH, "missing X-Hub-Signature-256"},
    {"github SHA-1 signature only", WEBHOOK_FORGE_GITHUB,
     "X-GitHub-Event: push\r\nX-Hub-Signature: sha1=0123456789012345678901234567890123456789\r\n",
     GH_MAIN, 401, UNAUTH, "missing X-Hub-Signature-256"},
    {"github signature without sha256=", WEBHOOK_FORGE_GITHUB,
     "X-GitHub-Event: push\r\nX-Hub-Signature-256: " GH_MAIN_SIG "\r\n", GH_MAIN, 401, UNAUTH,
     "malformed X-Hub-Signature-256"},
    {"github signature not hex", WEBHOOK_FORGE_GITHUB,
     GITHUB("push", "g413e7e4c36b71be1cc8936f63a3b0ae05aea5777cd7644ba25adc6112d9fa43"), GH_MAIN,
     401, UNAUTH, "malformed"},
    {"github signature one digit short", WEBHOOK_FORGE_GITHUB,
     GITHUB("push", "f413e7e4c36b71be1cc8936f63a3b0ae05aea5777cd7644ba25adc6112d9fa4"), GH_MAIN,
     401, UNAUTH, "malformed"},
    {"github push to another ref", WEBHOOK_FORGE_GITHUB, GITHUB("push", GH_DEV_SIG) JSON, GH_DEV,
     200, IGNORED, "ignored: not the followed ref"},
    {"github ping (GitHub's documented vector)", WEBHOOK_FORGE_GITHUB, GITHUB("ping", HELLO_SIG),
     HELLO, 200, PING, "pong"},
    {"github ping with a bad signature", WEBHOOK_FORGE_GITHUB, GITHUB("ping", GH_MAIN_SIG), HELLO,
     401, UNAUTH, "does not match"},
    {"github another event", WEBHOOK_FORGE_GITHUB, GITHUB("issues", GH_MAIN_SIG) JSON, GH_MAIN, 200,
     IGNORED, "ignored: not a push event"},
    {"github body not JSON", WEBHOOK_FORGE_GITHUB, GITHUB("push", BAD_JSON_SIG) JSON, BAD_JSON, 400,
     BAD, "not a JSON object"},
    {"github body a JSON array", WEBHOOK_FORGE_GITHUB, GITHUB("push", ARRAY_SIG) JSON, ARRAY, 400,
     BAD, "not a JSON object"},
    {"github body YAML", WEBHOOK_FORGE_GITHUB, GITHUB("push", YAML_NOT_JSON_SIG), YAML_NOT_JSON,
     400, BAD, "not a JSON object"},
    {"github push without ref", WEBHOOK_FORGE_GITHUB, GITHUB("push", NO_REF_SIG) JSON, NO_REF, 400,
     BAD, "names no ref"},
    {"github ref not a string", WEBHOOK_FORGE_GITHUB, GITHUB("push", REF_NOT_STRING_SIG) JSON,
     REF_NOT_STRING, 400, BAD, "names no ref"},
    {"github form-encoded", WEBHOOK_FORGE_GITHUB,
     GITHUB("push", GH_MAIN_SIG) "Content-Type: application/x-www-form-urlencoded\r\n", GH_MAIN,
     415, BAD, "application/json"},
    {"github form-encoded, unsigned: 401 first", WEBHOOK_FORGE_GITHUB,
     "X-GitHub-Event: push\r\nContent-Type: application/x-www-form-urlencoded\r\n", GH_MAIN, 401,
     UNAUTH, "missing"},
    /* GitLab: the token is the secret itself */
    {"gitlab push with the token", WEBHOOK_FORGE_GITLAB,
     "X-Gitlab-Event: Push Hook\r\nX-Gitlab-Token: " SECRET "\r\n" JSON, GH_MAIN, 202, DOORBELL,
     "accepted"},
    {"gitlab tag push to another ref", WEBHOOK_FORGE_GITLAB,
     "X-Gitlab-Event: Tag Push Hook\r\nX-Gitlab-Token: " SECRET "\r\n" JSON, GH_DEV, 200, IGNORED,
     "not the followed ref"},
    {"gitlab token of the same length, one byte off", WEBHOOK_FORGE_GITLAB,
     "X-Gitlab-Event: Push Hook\r\nX-Gitlab-Token: It's a Secret to Everybodz\r\n", GH_MAIN, 401,
     UNAUTH, "X-Gitlab-Token does not match"},
    {"gitlab token a prefix of the secret", WEBHOOK_FORGE_GITLAB,
     "X-Gitlab-Event: Push Hook\r\nX-Gitlab-Token: It's a Secret\r\n", GH_MAIN, 401, UNAUTH,
     "does not match"},
    {"gitlab token longer than the secret", WEBHOOK_FORGE_GITLAB,
     "X-Gitlab-Event: Push Hook\r\nX-Gitlab-Token: " SECRET "!\r\n", GH_MAIN, 401, UNAUTH,
     "does not match"},
    {"gitlab token empty", WEBHOOK_FORGE_GITLAB, "X-Gitlab-Event: Push Hook\r\nX-Gitlab-Token:\r\n",
     GH_MAIN, 401, UNAUTH, "does not match"},
    {"gitlab without a token", WEBHOOK_FORGE_GITLAB, "X-Gitlab-Event: Push Hook\r\n", GH_MAIN, 401,
     UNAUTH, "missing X-Gitlab-Token"},
    {"gitlab with an HMAC instead of the token", WEBHOOK_FORGE_GITLAB,
     "X-Gitlab-Event: Push Hook\r\nX-Hub-Signature-256: sha256=" GH_MAIN_SIG "\r\n", GH_MAIN, 401,
     UNAUTH, "missing X-Gitlab-Token"},
    {"gitlab merge request", WEBHOOK_FORGE_GITLAB,
     "X-Gitlab-Event: Merge Request Hook\r\nX-Gitlab-Token: " SECRET "\r\n", GH_MAIN, 200, IGNORED,
     "not a push event"},
    /* Gitea sends GitHub's headers too; its own win */
    {"gitea push", WEBHOOK_FORGE_GITEA,
     "X-Gitea-Event: push\r\nX-GitHub-Event: push\r\nX-Gitea-Signature: " GH_MAIN_SIG "\r\n" JSON,
     GH_MAIN, 202, DOORBELL, "accepted"},
    {"gitea signature of another body", WEBHOOK_FORGE_GITEA,
     "X-Gitea-Event: push\r\nX-Gitea-Signature: " GH_DEV_SIG "\r\n", GH_MAIN, 401, UNAUTH,
     "X-Gitea-Signature does not match"},
    {"gitea with GitHub's signature only", WEBHOOK_FORGE_GITEA,
     "X-Gitea-Event: push\r\nX-GitHub-Event: push\r\nX-Hub-Signature-256: sha256=" GH_MAIN_SIG
     "\r\n",
     GH_MAIN, 401, UNAUTH, "missing X-Gitea-Signature"},
    {"gitea push to another ref", WEBHOOK_FORGE_GITEA,
     "X-Gitea-Event: push\r\nX-Gitea-Signature: " GH_DEV_SIG "\r\n", GH_DEV, 200, IGNORED,
     "not the followed ref"},
    {"forgejo push", WEBHOOK_FORGE_FORGEJO,
     "X-Forgejo-Event: push\r\nX-Gitea-Event: push\r\nX-Forgejo-Signature: " GH_MAIN_SIG
     "\r\nX-Gitea-Signature: " GH_MAIN_SIG "\r\n",
     GH_MAIN, 202, DOORBELL, "accepted"},
    {"forgejo bad signature", WEBHOOK_FORGE_FORGEJO,
     "X-Forgejo-Event: push\r\nX-Forgejo-Signature: " GH_DEV_SIG "\r\n", GH_MAIN, 401, UNAUTH,
     "X-Forgejo-Signature does not match"},
    /* Bitbucket */
    {"bitbucket server, the followed ref among two", WEBHOOK_FORGE_BITBUCKET,
     "X-Event-Key: repo:refs_changed\r\nX-Hub-Signature: sha256=" BB_SERVER_SIG "\r\n" JSON,
     BB_SERVER, 202, DOORBELL, "accepted"},
    {"bitbucket server, another ref", WEBHOOK_FORGE_BITBUCKET,
     "X-Event-Key: repo:refs_changed\r\nX-Hub-Signature: sha256=" BB_SERVER_DEV_SIG "\r\n" JSON,
     BB_SERVER_DEV, 200, IGNORED, "not the followed ref"},
    {"bitbucket server ping", WEBHOOK_FORGE_BITBUCKET,
     "X-Event-Key: diagnostics:ping\r\nX-Hub-Signature: sha256=" HELLO_SIG "\r\n", HELLO, 200,
     PING, "pong"},
    {"bitbucket server bad signature", WEBHOOK_FORGE_BITBUCKET,
     "X-Event-Key: repo:refs_changed\r\nX-Hub-Signature: sha256=" BB_SERVER_DEV_SIG "\r\n",
     BB_SERVER, 401, UNAUTH, "X-Hub-Signature does not match"},
    {"bitbucket server signature without sha256=", WEBHOOK_FORGE_BITBUCKET,
     "X-Event-Key: repo:refs_changed\r\nX-Hub-Signature: " BB_SERVER_SIG "\r\n", BB_SERVER, 401,
     UNAUTH, "malformed X-Hub-Signature"},
    {"bitbucket cloud push", WEBHOOK_FORGE_BITBUCKET,
     "X-Event-Key: repo:push\r\nX-Hub-Signature: sha256=" BB_CLOUD_SIG "\r\n" JSON, BB_CLOUD, 202,
     DOORBELL, "accepted"},
    {"bitbucket cloud deleted branch", WEBHOOK_FORGE_BITBUCKET,
     "X-Event-Key: repo:push\r\nX-Hub-Signature: sha256=" BB_CLOUD_DELETED_SIG "\r\n" JSON,
     BB_CLOUD_DELETED, 202, DOORBELL, "accepted"},
    /* no forge */
    {"no event header", WEBHOOK_FORGE_NONE, "X-Hub-Signature-256: sha256=" GH_MAIN_SIG "\r\n" JSON,
     GH_MAIN, 400, BAD, "no webhook event header"},
    {"a forge header twice", WEBHOOK_FORGE_NONE,
     GITHUB("push", GH_MAIN_SIG) "X-Hub-Signature-256: sha256=" GH_DEV_SIG "\r\n", GH_MAIN, 400,
     BAD, "repeated"},
};

static char *request(const char *headers, const char *body) {
  struct buf b = BUF_INIT;

  buf_printf(&b, "POST /hooks/egressd HTTP/1.1\r\nHost: egressd.example:9419\r\n"
                 "User-Agent: test\r\n%sContent-Length: %zu\r\n\r\n%s",
             headers, strlen(body), body);
  return buf_detach(&b, NULL);
}

static void judge(const char *raw, size_t len, struct webhook_verdict *v) {
  webhook_request_judge(raw, len, (const uint8_t *)SECRET, strlen(SECRET), REF, v);
}

START_TEST(test_webhook_verdict_per_forge) {
  const struct verdict_case *c = &cases[_i];
  char *raw = request(c->headers, c->body);
  struct webhook_verdict v;

  judge(raw, strlen(raw), &v);
  ck_assert_msg(v.status == c->status, "%s: status %d (%s), want %d", c->name, v.status, v.reason,
                c->status);
  ck_assert_msg((int)v.result == c->result, "%s: result %s", c->name,
                webhook_result_name(v.result));
  ck_assert_msg(v.doorbell == (c->result == DOORBELL), "%s: doorbell %d", c->name, v.doorbell);
  if (c->forge != WEBHOOK_FORGE_NONE)
    ck_assert_msg(v.forge == c->forge, "%s: forge %s", c->name, webhook_forge_name(v.forge));
  ck_assert_msg(strstr(v.reason, c->reason), "%s: reason '%s' lacks '%s'", c->name, v.reason,
                c->reason);
  /* one line, and nothing of the secret or of what the client sent to prove it */
  ck_assert(!strpbrk(v.reason, "\r\n"));
  ck_assert_msg(!strstr(v.reason, "Secret") && !strstr(v.reason, "f413e7e4") &&
                    !strstr(v.reason, "6f82727a") && !strstr(v.reason, "ca795631"),
                "%s: '%s'", c->name, v.reason);
  if (v.doorbell)
    ck_assert_str_eq(v.ref, REF);
  free(raw);
}
END_TEST

START_TEST(test_webhook_another_secret_refuses_everything) {
  /* the same requests under another secret: nothing authentic */
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    char *raw = request(cases[i].headers, cases[i].body);
    struct webhook_verdict v;
    webhook_request_judge(raw, strlen(raw), (const uint8_t *)"another secret, 32 bytes long...",
                          32, REF, &v);
    ck_assert_msg(!v.doorbell && (v.status == 401 || v.status == 400), "%s: %d %s",
                  cases[i].name, v.status, v.reason);
    free(raw);
  }
}
END_TEST

struct head_case {
  const char *name;
  const char *raw;
  int status;
  int result;
};

static const struct head_case head_cases[] = {
    {"GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 405, BAD},
    {"HTTP/1.0", "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}", 505, BAD},
    {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, BAD},
    {"chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411,
     BAD},
    {"chunked and a length",
     "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n{}", 400, BAD},
    {"no length", "POST / HTTP/1.1\r\nX-GitHub-Event: push\r\n\r\n", 411, BAD},
    {"1 MiB and a byte", "POST / HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n", 413, LARGE},
    {"a length of 30 digits",
     "POST / HTTP/1.1\r\nContent-Length: 999999999999999999999999999999\r\n\r\n", 413, LARGE},
    {"a length twice", "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 400,
     BAD},
    {"a signed length", "POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}", 400, BAD},
    {"an empty length", "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400, BAD},
    {"obsolete folding",
     "POST / HTTP/1.1\r\nX-GitHub-Event: push\r\n  continued\r\nContent-Length: 0\r\n\r\n", 400,
     BAD},
    {"space before the colon", "POST / HTTP/1.1\r\nContent-Length : 0\r\n\r\n", 400, BAD},
    {"a control character",
     "POST / HTTP/1.1\r\nX-GitHub-Event: pu\x01sh\r\nContent-Length: 0\r\n\r\n", 400, BAD},
    {"a TLS handshake", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, BAD},
    {"an absolute target", "POST http://egressd/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400, BAD},
    {"two spaces", "POST  / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400, BAD},
    {"Expect: other", "POST / HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 0\r\n\r\n", 417, BAD},
    {"a head that does not end", "POST / HTTP/1.1\r\nContent-Length: 0\r\n", 400, BAD},
    {"a short body", "POST / HTTP/1.1\r\nX-GitHub-Event: push\r\nContent-Length: 10\r\n\r\n{}", 400,
     BAD},
};

START_TEST(test_webhook_head_refusals) {
  const struct head_case *c = &head_cases[_i];
  struct webhook_verdict v;

  judge(c->raw, strlen(c->raw), &v);
  ck_assert_msg(v.status == c->status && (int)v.result == c->result, "%s: %d %s (%s)", c->name,
                v.status, webhook_result_name(v.result), v.reason);
  ck_assert(!v.doorbell);
  ck_assert(v.reason[0] && !strpbrk(v.reason, "\r\n"));
}
END_TEST

START_TEST(test_webhook_head_bounds_are_431) {
  struct buf b = BUF_INIT;
  struct webhook_verdict v;

  /* one header as large as the whole head may be */
  buf_puts(&b, "POST / HTTP/1.1\r\nX-Padding: ");
  while (b.len < WEBHOOK_MAX_HEAD)
    buf_putc(&b, 'a');
  buf_puts(&b, "\r\nContent-Length: 0\r\n\r\n");
  judge(b.data, b.len, &v);
  ck_assert_int_eq(v.status, 431);
  ck_assert_int_eq(v.result, WEBHOOK_RESULT_HEADERS_TOO_LARGE);
  /* many small ones */
  buf_reset(&b);
  buf_puts(&b, "POST / HTTP/1.1\r\n");
  for (unsigned i = 0; i <= WEBHOOK_MAX_HEADERS; i++)
    buf_printf(&b, "X-H%u: 1\r\n", i);
  buf_puts(&b, "Content-Length: 0\r\n\r\n");
  ck_assert_uint_lt(b.len, WEBHOOK_MAX_HEAD);
  judge(b.data, b.len, &v);
  ck_assert_int_eq(v.status, 431);
  /* and just under both bounds is fine */
  buf_reset(&b);
  buf_puts(&b, "POST / HTTP/1.1\r\n" GITHUB("ping", HELLO_SIG));
  for (unsigned i = 0; i < WEBHOOK_MAX_HEADERS - 3; i++)
    buf_printf(&b, "X-H%u: 1\r\n", i);
  buf_puts(&b, "Content-Length: 13\r\n\r\n" HELLO);
  judge(b.data, b.len, &v);
  ck_assert_msg(v.status == 200, "%d %s", v.status, v.reason);
  buf_dispose(&b);
}
END_TEST

START_TEST(test_webhook_head_parse_waits_for_the_whole_head) {
  char *raw = request(GITHUB("push", GH_MAIN_SIG) "Expect: 100-continue\r\n", GH_MAIN);
  const char *body = strstr(raw, "\r\n\r\n") + 4;
  size_t head = (size_t)(body - raw);
  struct webhook_request req;
  struct webhook_verdict v;

  for (size_t n = 0; n < head; n++)
    ck_assert_msg(webhook_head_parse(raw, n, &req, &v) == 0, "prefix of %zu bytes", n);
  ck_assert_int_eq(webhook_head_parse(raw, head, &req, &v), 1);
  ck_assert_uint_eq(req.head_len, head);
  ck_assert_uint_eq(req.content_length, strlen(GH_MAIN));
  ck_assert(req.expect_continue);
  ck_assert(req.github_event.len == 4 && memcmp(req.github_event.p, "push", 4) == 0);
  /* the body that follows does not change the head */
  ck_assert_int_eq(webhook_head_parse(raw, strlen(raw), &req, &v), 1);
  ck_assert_uint_eq(req.head_len, head);
  webhook_judge(&req, body, strlen(body), (const uint8_t *)SECRET, strlen(SECRET), REF, &v);
  ck_assert(v.doorbell);
  free(raw);
}
END_TEST

START_TEST(test_webhook_bare_lf_lines_and_header_case) {
  const char *raw = "POST / HTTP/1.1\nx-github-event: push\n"
                    "x-hub-signature-256: sha256=" GH_MAIN_SIG "\ncontent-length: 247\n\n" GH_MAIN;
  struct webhook_verdict v;

  ck_assert_uint_eq(strlen(GH_MAIN), 247);
  judge(raw, strlen(raw), &v);
  ck_assert_msg(v.status == 202 && v.doorbell, "%d %s", v.status, v.reason);
}
END_TEST

START_TEST(test_webhook_response_is_one_http_answer) {
  struct webhook_verdict v = {.status = 429, .result = WEBHOOK_RESULT_RATE_LIMITED,
                              .retry_after = 3, .reason = "too many"};
  struct buf b = BUF_INIT;

  webhook_response(&v, &b);
  ck_assert_str_eq(b.data, "HTTP/1.1 429 Too Many Requests\r\n"
                           "Content-Type: text/plain; charset=utf-8\r\n"
                           "Content-Length: 9\r\n"
                           "Cache-Control: no-store\r\n"
                           "Connection: close\r\n"
                           "Retry-After: 3\r\n"
                           "\r\n"
                           "too many\n");
  v = (struct webhook_verdict){.status = 405, .reason = "only POST"};
  webhook_response(&v, &b);
  ck_assert(strstr(b.data, "HTTP/1.1 405 Method Not Allowed\r\n"));
  ck_assert(strstr(b.data, "\r\nAllow: POST\r\n"));
  buf_dispose(&b);
}
END_TEST

START_TEST(test_webhook_listen_addresses) {
  static const struct {
    const char *s;
    int family;
    unsigned port;
  } good[] = {{"127.0.0.1:9419", AF_INET, 9419},
              {"0.0.0.0:1", AF_INET, 1},
              {"[::1]:9419", AF_INET6, 9419},
              {"[::]:65535", AF_INET6, 65535},
              {"[2001:db8::7]:80", AF_INET6, 80}};
  static const char *const bad[] = {"",           "127.0.0.1",       "127.0.0.1:",
                                    ":9419",      "127.0.0.1:0",     "127.0.0.1:65536",
                                    "::1:9419",   "[::1]",           "[::1]9419",
                                    "[]:9419",    "localhost:9419",  "127.0.0.1:94a",
                                    "[127.0.0.1]:9419", "1.2.3.4.5:80", "127.0.0.1:-1"};
  struct sockaddr_storage ss;
  socklen_t len;
  const char *why;

  for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
    ck_assert_msg(webhook_listen_parse(good[i].s, &ss, &len, &why) == 0, "%s: %s", good[i].s, why);
    ck_assert_int_eq(ss.ss_family, good[i].family);
    ck_assert_uint_eq(ntohs(good[i].family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                      : ((struct sockaddr_in6 *)&ss)->sin6_port),
                      good[i].port);
  }
  for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
    why = NULL;
    ck_assert_msg(webhook_listen_parse(bad[i], &ss, &len, &why) == -EINVAL, "'%s' taken", bad[i]);
    ck_assert_ptr_nonnull(why);
  }
}
END_TEST

START_TEST(test_webhook_bucket_bursts_then_refills) {
  struct webhook_bucket b;
  uint64_t t = 5 * USEC_PER_SEC;

  webhook_bucket_init(&b, 3, 0.5);
  for (int i = 0; i < 3; i++)
    ck_assert_uint_eq(webhook_bucket_take(&b, t), 0);
  ck_assert_uint_eq(webhook_bucket_take(&b, t), 2); /* one token every 2 s */
  ck_assert_uint_eq(webhook_bucket_take(&b, t + USEC_PER_SEC), 1);
  ck_assert_uint_eq(webhook_bucket_take(&b, t + 2 * USEC_PER_SEC), 0);
  ck_assert_uint_ne(webhook_bucket_take(&b, t + 2 * USEC_PER_SEC), 0);
  /* never more than the burst, however long it rested */
  t += 3600 * USEC_PER_SEC;
  for (int i = 0; i < 3; i++)
    ck_assert_uint_eq(webhook_bucket_take(&b, t), 0);
  ck_assert_uint_ne(webhook_bucket_take(&b, t), 0);
  /* a clock that goes back takes nothing from it */
  ck_assert_uint_ne(webhook_bucket_take(&b, t - USEC_PER_SEC), 0);
}
END_TEST

START_TEST(test_webhook_secret_file) {
  char *dir = testutil_tmpdir(), *p;
  struct buf s = BUF_INIT;
  struct err e = ERR_INIT;
  struct buf big = BUF_INIT;

  testutil_write(dir, "ok", "0123456789abcdef0123456789abcdef\r\n\n");
  p = path_join(dir, "ok");
  ck_assert_ok(webhook_secret_load(p, &s, &e), &e);
  ck_assert_uint_eq(s.len, 32);
  ck_assert(memcmp(s.data, "0123456789abcdef0123456789abcdef", 32) == 0);
  free(p);

  testutil_write(dir, "short", "too short\n");
  p = path_join(dir, "short");
  ck_assert_int_eq(webhook_secret_load(p, &s, &e), -EINVAL);
  ck_assert_msg(strstr(e.msg, "shorter than 16 bytes") && !strstr(e.msg, "too short"), "%s", e.msg);
  ck_assert_uint_eq(s.len, 32); /* untouched on failure */
  free(p);

  err_clear(&e);
  while (big.len <= WEBHOOK_SECRET_MAX)
    buf_puts(&big, "0123456789abcdef");
  testutil_write(dir, "big", big.data);
  p = path_join(dir, "big");
  ck_assert_int_eq(webhook_secret_load(p, &s, &e), -EFBIG);
  free(p);

  err_clear(&e);
  p = path_join(dir, "fifo");
  ck_assert_int_eq(mkfifo(p, 0600), 0);
  ck_assert_int_eq(webhook_secret_load(p, &s, &e), -EINVAL); /* and does not hang */
  ck_assert_msg(strstr(e.msg, "not a regular file"), "%s", e.msg);
  free(p);

  err_clear(&e);
  p = path_join(dir, "missing");
  ck_assert_int_eq(webhook_secret_load(p, &s, &e), -ENOENT);
  free(p);

  buf_dispose(&big);
  buf_dispose_secret(&s);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST

START_TEST(test_webhook_hostconfig) {
  char *dir = testutil_tmpdir(), *path;
  struct hostconfig *c = NULL;
  struct diag_list d = {0};
  struct err e = ERR_INIT;
  struct buf text = BUF_INIT;
  char t[512];

  testutil_write(dir, "webhook-secret", "0123456789abcdef0123456789abcdef\n");
  path = path_join(dir, "egressd.yaml");
  buf_puts(&text, "repository:\n"
                  "  url: https://git.example/egress.git\n"
                  "  webhook:\n"
                  "    listen: '[::1]:9419'\n"
                  "    secretFile: webhook-secret\n"
                  "verify: {policy: none}\n"
                  "clusters: [{name: a, kubeconfig: a}]\n");
  ck_assert_ok(hostconfig_parse(path, text.data, text.len, &c, &d, &e), &e);
  ck_assert(c->repo.webhook.enabled);
  ck_assert_str_eq(c->repo.webhook.listen, "[::1]:9419");
  ck_assert(str_has_suffix(c->repo.webhook.secret_file, "/webhook-secret"));
  hostconfig_free(c);
  c = NULL;

  /* listen may be left to systemd */
  buf_reset(&text);
  buf_puts(&text, "repository:\n"
                  "  url: https://git.example/egress.git\n"
                  "  webhook: {secretFile: webhook-secret}\n"
                  "verify: {policy: none}\n"
                  "clusters: [{name: a, kubeconfig: a}]\n");
  ck_assert_ok(hostconfig_parse(path, text.data, text.len, &c, &d, &e), &e);
  ck_assert(c->repo.webhook.enabled && !c->repo.webhook.listen);
  hostconfig_free(c);
  c = NULL;

  /* every problem, with its position */
  buf_reset(&text);
  buf_puts(&text, "repository:\n"
                  "  url: https://git.example/egress.git\n"
                  "  webhook:\n"
                  "    listen: localhost:9419\n"
                  "    secretFile: nosuch\n"
                  "verify: {policy: none}\n"
                  "clusters: [{name: a, kubeconfig: a}]\n");
  ck_assert_int_eq(hostconfig_parse(path, text.data, text.len, &c, &d, &e), -EINVAL);
  ck_assert_ptr_null(c);
  diag_sort(&d);
  ck_assert_uint_eq(d.n, 2);
  ck_assert_str_eq(strstr(diag_format(&d.items[0], t, sizeof(t)), "egressd.yaml:"),
                   "egressd.yaml:4:13: error: repository.webhook.listen 'localhost:9419' is not an "
                   "IPv4 address and port (names are not resolved; [IPv6]:PORT for IPv6)");
  diag_format(&d.items[1], t, sizeof(t));
  ck_assert_msg(strstr(t, "egressd.yaml:5:17: error: repository.webhook.secretFile: cannot open "
                          "the webhook secret file") &&
                    strstr(t, "No such file or directory"),
                "%s", t);
  diag_list_dispose(&d);

  buf_reset(&text);
  buf_puts(&text, "repository:\n"
                  "  url: https://git.example/egress.git\n"
                  "  webhook: {listen: 127.0.0.1:9419}\n"
                  "verify: {policy: none}\n"
                  "clusters: [{name: a, kubeconfig: a}]\n");
  ck_assert_int_eq(hostconfig_parse(path, text.data, text.len, &c, &d, &e), -EINVAL);
  ck_assert_uint_eq(d.n, 1);
  ck_assert_msg(strstr(diag_format(&d.items[0], t, sizeof(t)),
                       "missing required field 'secretFile' in repository.webhook"),
                "%s", t);
  diag_list_dispose(&d);

  buf_dispose(&text);
  free(path);
  testutil_rmrf(dir);
  free(dir);
}
END_TEST

static Suite *webhook_suite(void) {
  Suite *s = suite_create("webhook");
  TCase *tc = tcase_create("verdicts");

  tcase_add_loop_test(tc, test_webhook_verdict_per_forge, 0, (int)ARRAY_SIZE(cases));
  tcase_add_test(tc, test_webhook_another_secret_refuses_everything);
  tcase_add_loop_test(tc, test_webhook_head_refusals, 0, (int)ARRAY_SIZE(head_cases));
  tcase_add_test(tc, test_webhook_head_bounds_are_431);
  tcase_add_test(tc, test_webhook_head_parse_waits_for_the_whole_head);
  tcase_add_test(tc, test_webhook_bare_lf_lines_and_header_case);
  tcase_add_test(tc, test_webhook_response_is_one_http_answer);
  suite_add_tcase(s, tc);
  tc = tcase_create("parts");
  tcase_add_test(tc, test_webhook_listen_addresses);
  tcase_add_test(tc, test_webhook_bucket_bursts_then_refills);
  tcase_add_test(tc, test_webhook_secret_file);
  tcase_add_test(tc, test_webhook_hostconfig);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return testutil_run(webhook_suite()); }
