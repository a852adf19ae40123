"""egressd validate and render as a user runs them: exit codes, messages, and
every rendered object checked against the real CRD schemas (reduced into
tests/kubesim/schemas) for each Istio API version."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

EGRESSD = os.environ.get("EGRESSD", "egressd")
SRC = os.environ.get("EGRESSD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLE = os.path.join(SRC, "repo-layout", "example")
SCHEMACHECK = os.path.join(SRC, "tests", "kubesim", "schemacheck")
CLUSTERS = ["canary", "prod-eu", "prod-us"]


def run(*args, cwd=None, stdin=None):
    p = subprocess.run([EGRESSD, *args], capture_output=True, text=True, cwd=cwd, input=stdin)
    return p.returncode, p.stdout, p.stderr


def schemacheck(items, istio):
    p = subprocess.run(["/usr/bin/python3", SCHEMACHECK, "--istio", istio], input=json.dumps(items),
                       capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


class RenderSchemaTest(unittest.TestCase):
    """Every object egressd renders is valid against the CRD schemas a real API
    server would check it with: no unknown field (a server-side apply would
    fail with 'field not declared in schema'), every required field present."""

    def render_items(self, *args):
        rc, out, err = run("render", EXAMPLE, "-o", "json", *args)
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["kind"], "List")
        return doc["items"]

    def test_every_object_valid_for_every_istio_version_and_cluster(self):
        generations = {"v1": ["head"], "v1beta1": ["1.17", "head"], "v1alpha3": ["1.17", "head"]}
        for version, schemas in generations.items():
            for cluster in [None] + CLUSTERS:
                args = ["--istio-api", version] + (["--cluster", cluster] if cluster else [])
                items = self.render_items(*args)
                self.assertGreater(len(items), 10)
                kinds = {i["kind"] for i in items}
                self.assertTrue({"IstioMeshGateway", "Gateway", "ServiceEntry", "DestinationRule",
                                 "VirtualService", "Sidecar", "AuthorizationPolicy"} <= kinds, kinds)
                for i in items:
                    if i["kind"] != "IstioMeshGateway":
                        want = "security.istio.io" if i["kind"] == "AuthorizationPolicy" else "networking.istio.io"
                        self.assertTrue(i["apiVersion"].startswith(want + "/"), i["apiVersion"])
                for schema in schemas:
                    rc, out = schemacheck(items, schema)
                    self.assertEqual(rc, 0, "istio %s, schema %s, cluster %s:\n%s" % (version, schema, cluster, out))

    def test_schema_check_catches_an_unknown_field(self):
        # the negative control: a template override that adds sni_hosts (the
        # typo of old Istio docs) must be caught by the same check
        repo = tempfile.mkdtemp()
        try:
            shutil.copytree(EXAMPLE, repo, dirs_exist_ok=True)
            os.makedirs(os.path.join(repo, "templates"))
            with open(os.path.join(repo, "templates", "serviceentry.yaml"), "w") as f:
                f.write("apiVersion: ${apiVersion.networking}\nkind: ServiceEntry\n"
                        "metadata: {name: '${intent.name}', namespace: '${intent.namespace}'}\n"
                        "spec:\n  hosts: ${intent.hosts}\n  sni_hosts: ${intent.hosts}\n"
                        "  ports: ${serviceEntry.ports}\n  resolution: DNS\n")
            rc, out, err = run("render", repo, "-o", "json")
            self.assertEqual(rc, 0, err)
            rc, report = schemacheck(json.loads(out)["items"], "head")
            self.assertEqual(rc, 1)
            self.assertIn("ServiceEntry/payments/stripe: spec.sni_hosts: unknown field", report)
        finally:
            shutil.rmtree(repo)

    def test_yaml_and_json_render_the_same_objects_deterministically(self):
        rc, y1, _ = run("render", EXAMPLE)
        rc2, y2, _ = run("render", EXAMPLE)
        self.assertEqual((rc, rc2), (0, 0))
        self.assertEqual(y1, y2)
        items = self.render_items()
        self.assertEqual(y1.count("\n---\n") + 1, len(items))
        names = [(i["kind"], i["metadata"]["namespace"], i["metadata"]["name"]) for i in items]
        self.assertEqual(len(names), len(set(names)))
        for i in items:
            labels = i["metadata"]["labels"]
            self.assertEqual(labels["app.kubernetes.io/managed-by"], "egressd")
            self.assertEqual(labels["egressd.io/instance"], "example")
            self.assertIn("egressd.io/source", i["metadata"]["annotations"])


class ValidateCliTest(unittest.TestCase):
    def setUp(self):
        self.repo = tempfile.mkdtemp()
        shutil.copytree(EXAMPLE, self.repo, dirs_exist_ok=True)

    def tearDown(self):
        shutil.rmtree(self.repo)

    def write(self, rel, text):
        with open(os.path.join(self.repo, rel), "w") as f:
            f.write(text)

    def test_example_is_valid(self):
        rc, out, err = run("validate", EXAMPLE)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"valid: 2 gateways, 7 intents, 3 clusters, \d+ objects rendered\n$")
        self.assertEqual(err, "")

    def test_every_problem_reported_with_position_exit_1(self):
        self.write("intents/bad.yaml",
                   "apiVersion: egressd.io/v1\nkind: EgressIntent\n"
                   "metadata: {name: bad, namespace: ns}\n"
                   "spec:\n"
                   "  gateway: nope\n"
                   "  hosts: [\"evil.com\\n---\\nkind: Secret\", localhost]\n"
                   "  ports:\n"
                   "    - {number: 80, protocol: HTTP, sni_hosts: [x]}\n")
        rc, out, err = run("validate", ".", cwd=self.repo)
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        lines = err.splitlines()
        self.assertIn("intents/bad.yaml:1:1: error: intent ns/bad: no EgressGateway 'ns/nope' in the config repo",
                      lines)
        self.assertIn("intents/bad.yaml:6:11: error: host 'evil.com\\n---\\nkind: Secret' may contain only "
                      "lower-case letters, digits and '-'", lines)
        self.assertIn("intents/bad.yaml:6:42: error: host 'localhost' is not fully qualified; write the full "
                      "domain name (api.example.com)", lines)
        self.assertIn("intents/bad.yaml:8:36: error: unknown field 'sni_hosts' in spec.ports[0]", lines)
        self.assertRegex(lines[-1], r"^\.: \d+ errors?, 0 warnings$")

    def test_io_and_usage_errors_exit_2(self):
        rc, out, err = run("validate", "/nonexistent/repo")
        self.assertEqual(rc, 2)
        self.assertIn("cannot open directory '/nonexistent/repo'", err)
        rc, out, err = run("validate", "--bogus")
        self.assertEqual(rc, 2)
        rc, out, err = run("render", EXAMPLE, "--cluster", "nowhere")
        self.assertEqual(rc, 2)
        self.assertIn("the Fleet has no cluster 'nowhere'", err)
        rc, out, err = run("render", EXAMPLE, "--istio-api", "v2")
        self.assertEqual(rc, 2)

    def test_oversized_file_is_refused_cleanly(self):
        self.write("intents/huge.yaml", "a: " + "x" * (9 << 20) + "\n")
        rc, out, err = run("validate", self.repo)
        self.assertEqual(rc, 2)
        self.assertIn("larger than the limit", err)

    def test_help_and_version(self):
        for cmd in (["validate", "--help"], ["render", "--help"], ["--help"]):
            rc, out, err = run(*cmd)
            self.assertEqual(rc, 0)
            self.assertIn("usage: egressd", out)
        rc, out, _ = run("--version")
        self.assertRegex(out, r"^egressd \d+\.\d+\.\d+\n$")


if __name__ == "__main__":
    unittest.main()
