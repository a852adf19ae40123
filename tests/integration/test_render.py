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
        # the negative control: an object with sni_hosts (the typo of old
        # Istio docs) must be caught by the same check. egressd itself
        # refuses such a template override (ValidateCliTest), so the field is
        # added to the rendered object here.
        items = self.render_items()
        se = next(i for i in items if i["kind"] == "ServiceEntry" and i["metadata"]["name"] == "stripe")
        se["spec"]["sni_hosts"] = se["spec"]["hosts"]
        rc, report = schemacheck(items, "head")
        self.assertEqual(rc, 1)
        self.assertIn("ServiceEntry/payments/stripe: spec.sni_hosts: unknown field", report)

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

    def test_template_override_checked_against_the_crd(self):
        # a typo'd field and a wrong enum in overrides: what a server-side
        # apply would refuse is found by validate, at the template's lines,
        # every problem at once and each once, sorted; render refuses too
        os.makedirs(os.path.join(self.repo, "templates"))
        with open(os.path.join(SRC, "templates", "serviceentry.yaml")) as f:
            se = f.read()
        self.assertIn("\nspec:\n", se)
        se = se.replace("\nspec:\n", "\nspec:\n  sni_hosts: ${intent.hosts}\n")
        self.write("templates/serviceentry.yaml", se)
        se_line = se.splitlines().index("  sni_hosts: ${intent.hosts}") + 1
        self.write("templates/sidecar.yaml",
                   "apiVersion: ${apiVersion.networking}\nkind: Sidecar\n"
                   "metadata: {name: '${sidecar.name}', namespace: '${sidecar.namespace}'}\n"
                   "spec:\n  outboundTrafficPolicy: {mode: REGISTRY_ONY}\n")
        rc, out, err = run("validate", ".", cwd=self.repo)
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(out, "")
        self.assertEqual(err.splitlines(), [
            "templates/serviceentry.yaml:%d:3: error: ServiceEntry networking.istio.io/v1beta1: "
            "spec.sni_hosts: field not declared in the CRD schema (Istio 1.17.8); remove it (the API "
            "server refuses fields its schema does not declare)" % se_line,
            "templates/sidecar.yaml:5:33: error: Sidecar networking.istio.io/v1beta1: "
            "spec.outboundTrafficPolicy.mode: the CRD schema (Istio 1.17.8) allows only REGISTRY_ONLY "
            "or ALLOW_ANY here, not 'REGISTRY_ONY'; did you mean 'REGISTRY_ONLY'?",
            ".: 2 errors, 0 warnings"])
        rc, out, err = run("validate", "--istio-api", "v1", ".", cwd=self.repo)
        self.assertEqual(rc, 1)
        self.assertIn("Sidecar networking.istio.io/v1: spec.outboundTrafficPolicy.mode: the CRD schema "
                      "(Istio head) allows only", err)
        rc, out, err = run("render", ".", cwd=self.repo)
        self.assertEqual(rc, 1)
        self.assertIn("spec.sni_hosts: field not declared in the CRD schema (Istio 1.17.8)", err)
        # fixed, the same overrides are fine
        self.write("templates/serviceentry.yaml", se.replace("  sni_hosts: ${intent.hosts}\n", ""))
        self.write("templates/sidecar.yaml",
                   "apiVersion: ${apiVersion.networking}\nkind: Sidecar\n"
                   "metadata: {name: '${sidecar.name}', namespace: '${sidecar.namespace}'}\n"
                   "spec:\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n")
        rc, out, err = run("validate", ".", cwd=self.repo)
        self.assertEqual(rc, 0, err)

    def test_embedded_crd_schemas_are_fresh(self):
        # daemon/render/crd-schemas.json is generated from tests/realk8s/crds
        gen = os.path.join(SRC, "daemon", "render", "tools", "gen-crd-schemas.py")
        p = subprocess.run(["/usr/bin/python3", "-c", "import yaml"], capture_output=True)
        if p.returncode != 0:
            self.skipTest("python3-yaml is not installed")
        p = subprocess.run(["/usr/bin/python3", gen, "--check"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

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
