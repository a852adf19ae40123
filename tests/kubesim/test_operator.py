"""The simulated IstioMeshGateway operator."""
import json
import unittest

from simtest import SimTestCase, wait_for

IMGW = "/apis/servicemesh.cisco.com/v1alpha1/namespaces/demo/istiomeshgateways"


def imgw(name, gtype="egress", stype="ClusterIP"):
    return {"apiVersion": "servicemesh.cisco.com/v1alpha1", "kind": "IstioMeshGateway",
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"type": gtype, "istioControlPlane": {"name": "cp-v117x", "namespace": "istio-system"},
                     "service": {"type": stype, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
                     "runAsRoot": False}}


class OperatorTest(SimTestCase):
    ARGS = ("--namespace", "demo", "--operator-delay", "0.4")

    def status(self, name):
        st, _, body = self.sim.request("GET", IMGW + "/" + name)
        return (body.get("status") or {}) if st == 200 else None

    def test_reconciling_then_available_with_children(self):
        m = self.sim.mark()
        st, _, body = self.sim.apply(imgw("egress-gw"), manager="egressd")
        self.assertEqual(st, 201, body)
        self.assertEqual(body["spec"]["service"]["ports"][0]["protocol"], "TCP")     # CRD default
        self.assertEqual(wait_for(lambda: self.status("egress-gw").get("Status") == "Reconciling" or
                                  self.status("egress-gw").get("Status") == "Available"), True)
        self.assertTrue(wait_for(lambda: self.status("egress-gw").get("Status") == "Available"))
        st, _, svc = self.sim.request("GET", "/api/v1/namespaces/demo/services/egress-gw")
        self.assertEqual(st, 200)
        self.assertEqual(self.status("egress-gw"), {"Status": "Available", "GatewayAddress": [svc["spec"]["clusterIP"]]})
        st, _, dep = self.sim.request("GET", "/apis/apps/v1/namespaces/demo/deployments/egress-gw")
        for o in (svc, dep):
            self.assertEqual((o["metadata"]["labels"]["gateway-name"], o["metadata"]["labels"]["gateway-type"]),
                             ("egress-gw", "egress"))
            self.assertEqual(o["metadata"]["ownerReferences"][0]["kind"], "IstioMeshGateway")
        self.assertEqual(svc["spec"]["selector"], {"gateway-name": "egress-gw", "gateway-type": "egress"})
        self.assertEqual(svc["spec"]["ports"], [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}])
        self.assertEqual(dep["status"]["readyReplicas"], 1)
        st, _, obj = self.sim.request("GET", IMGW + "/egress-gw")
        self.assertEqual(obj["metadata"]["finalizers"], ["istio-meshgateway.servicemesh.cisco.com"])
        managers = {(e["manager"], e["operation"], e.get("subresource", "")) for e in obj["metadata"]["managedFields"]}
        self.assertEqual(managers, {("egressd", "Apply", ""), ("istio-operator", "Update", ""),
                                    ("istio-operator", "Update", "status")})
        rc, out, err = self.sim.kubectl("get", "imgw", "egress-gw", "-n", "demo")
        self.assertEqual(rc, 0, err)
        head, row = out.splitlines()
        self.assertEqual(head.split()[:6], ["NAME", "TYPE", "SERVICE", "TYPE", "STATUS", "INGRESS"])
        self.assertRegex(row, r'^egress-gw\s+egress\s+ClusterIP\s+Available\s+\["10\.96\.\d+\.\d+"\]\s+')
        # deleting the IMGW removes its Deployment and Service, then the finalizer
        st, _, body = self.sim.request("DELETE", IMGW + "/egress-gw")
        self.assertEqual(st, 200)
        self.assertTrue(wait_for(lambda: self.sim.request("GET", IMGW + "/egress-gw")[0] == 404))
        self.assertEqual(self.sim.request("GET", "/api/v1/namespaces/demo/services/egress-gw")[0], 404)
        self.assertEqual(self.sim.request("GET", "/apis/apps/v1/namespaces/demo/deployments/egress-gw")[0], 404)

    def test_reconcile_failure_fault(self):
        self.sim.ctl("POST", "operator", {"namespace": "demo", "name": "broken-gw",
                                          "fail": "LoadBalancer has no ingress yet"})
        st, _, body = self.sim.apply(imgw("broken-gw", stype="LoadBalancer"))
        self.assertEqual(st, 201, body)
        self.assertTrue(wait_for(lambda: self.status("broken-gw").get("Status") == "ReconcileFailed"))
        self.assertEqual(self.status("broken-gw")["ErrorMessage"], "LoadBalancer has no ingress yet")
        self.sim.ctl("POST", "operator", {"namespace": "demo", "name": "broken-gw", "fail": None})
        self.assertTrue(wait_for(lambda: self.status("broken-gw").get("Status") == "Available"))
        self.assertRegex(self.status("broken-gw")["GatewayAddress"][0], r"^192\.0\.2\.\d+$")
        self.assertNotIn("ErrorMessage", self.status("broken-gw"))

    def test_status_history_on_watch(self):
        import http.client
        c = http.client.HTTPSConnection("127.0.0.1", self.sim.ports["c1"], context=self.sim.ssl, timeout=10)
        c.request("GET", IMGW + "?watch=true&timeoutSeconds=2&fieldSelector=metadata.name%3Dwatched-gw",
                  headers={"Authorization": "Bearer " + self.sim.token()})
        r = c.getresponse()
        self.assertEqual(self.sim.apply(imgw("watched-gw"))[0], 201)
        events = [json.loads(l) for l in r.read().splitlines()]
        c.close()
        states = []
        for e in events:
            s = (e["object"].get("status") or {}).get("Status")
            if not states or states[-1] != s:
                states.append(s)
        self.assertEqual(states, [None, "Reconciling", "Available"])


if __name__ == "__main__":
    unittest.main()
