"""The reusable schema checker (no kubesim process needed)."""
import json
import os
import subprocess
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, "schemacheck")


def run(objs, *args, raw=None):
    text = raw if raw is not None else "\n".join(json.dumps(o) for o in objs)
    p = subprocess.run(["/usr/bin/python3", CHECK] + list(args), input=text, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


GOOD_SE = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
           "metadata": {"name": "ext", "namespace": "egress"},
           "spec": {"hosts": ["api.example.com"], "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
                    "resolution": "DNS", "location": "MESH_EXTERNAL"}}
GOOD_IMGW = {"apiVersion": "servicemesh.cisco.com/v1alpha1", "kind": "IstioMeshGateway",
             "metadata": {"name": "egw", "namespace": "egress"},
             "spec": {"type": "egress", "istioControlPlane": {"name": "cp", "namespace": "istio-system"},
                      "service": {"type": "ClusterIP", "ports": [{"name": "tls", "port": 443, "targetPort": 8443}]}}}


class SchemaCheckTest(unittest.TestCase):

    def test_valid_objects_stream_and_array(self):
        self.assertEqual(run([GOOD_SE, GOOD_IMGW]), (0, "", ""))
        self.assertEqual(run(None, raw=json.dumps([GOOD_SE, GOOD_IMGW])), (0, "", ""))
        self.assertEqual(run(None, raw=json.dumps(GOOD_SE) + json.dumps(GOOD_IMGW)), (0, "", ""))

    def test_each_problem_kind(self):
        se = json.loads(json.dumps(GOOD_SE))
        se["spec"]["resolution"] = "MAGIC"
        se["spec"]["hostz"] = ["typo"]
        se["spec"]["ports"][0]["number"] = "443"
        imgw = json.loads(json.dumps(GOOD_IMGW))
        del imgw["spec"]["service"]
        rc, out, err = run([se, imgw])
        self.assertEqual(rc, 1)
        self.assertEqual(out.splitlines(), [
            "ServiceEntry/egress/ext: spec.hostz: unknown field",
            'ServiceEntry/egress/ext: spec.ports[0].number: wrong type: spec.ports[0].number in body must be of '
            'type integer: "string"',
            'ServiceEntry/egress/ext: spec.resolution: enum violation: Unsupported value: "MAGIC": supported '
            'values: "NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"',
            "IstioMeshGateway/egress/egw: spec.service: missing required field"])

    def test_istio_117_generation(self):
        v1 = dict(GOOD_SE)
        rc, out, _ = run([v1], "--istio", "1.17")
        self.assertEqual(rc, 1)
        self.assertEqual(out, "ServiceEntry/egress/ext: : unknown kind networking.istio.io/v1 ServiceEntry for "
                              "istio 1.17\n")
        old = dict(GOOD_SE, apiVersion="networking.istio.io/v1beta1")
        self.assertEqual(run([old], "--istio", "1.17"), (0, "", ""))

    def test_unreadable_input(self):
        rc, out, err = run(None, raw="{not json")
        self.assertEqual((rc, out), (2, ""))
        self.assertTrue(err.startswith("schemacheck: "))


if __name__ == "__main__":
    unittest.main()
