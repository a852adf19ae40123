"""A simulated Service Mesh Manager mesh-gateway operator (istio-smm.md §1).

For every IstioMeshGateway (IMGW) whose generation it has not reconciled yet,
it: adds the finalizer istio-meshgateway.servicemesh.cisco.com, sets
status.Status=Reconciling, creates or updates a Deployment and a Service named
after the IMGW (labels gateway-name/gateway-type, owner reference to the
IMGW), and after `delay` seconds sets status.Status=Available with
status.GatewayAddress (or ReconcileFailed with status.ErrorMessage when a
failure was injected for it via POST /_sim/operator; {"ignore": true} makes
it leave one IMGW alone, as the real operator ignores a gateway of another
control-plane release).  When an IMGW is being
deleted it deletes the Deployment and Service and removes its finalizer.

It writes through the cluster API as the Update manager "istio-operator",
so its changes appear in managedFields and on watches like a real
controller's.  It runs one thread per cluster fed by store events.
"""
import copy
import heapq
import threading
import time

from .api import Options
from .util import ApiError

FINALIZER = "istio-meshgateway.servicemesh.cisco.com"
MANAGER = "istio-operator"


class Operator(object):
    def __init__(self, cluster, delay=0.5):
        self.cluster = cluster
        self.delay = float(delay)
        self.imgw = cluster.rt("servicemesh.cisco.com", "istiomeshgateways")
        self.deploy = cluster.rt("apps", "deployments")
        self.svc = cluster.rt("", "services")
        self.failures = {}            # (ns, name) -> error message
        self.ignored = set()          # (ns, name) the operator does not reconcile
        self.cv = threading.Condition()
        self.pending = []             # heap of (due, seq, action, ns, name, generation)
        self.seq = 0
        self.done_gen = {}            # (ns, name) -> generation reconciled (Reconciling phase)
        self.stopped = False
        if self.imgw is not None:
            cluster.store.listeners.append(self._on_event)
            self.thread = threading.Thread(target=self._run, name="operator-" + cluster.name, daemon=True)
            self.thread.start()

    def stop(self):
        with self.cv:
            self.stopped = True
            self.cv.notify_all()

    def set_failure(self, ns, name, message):
        with self.cv:
            if message:
                self.failures[(ns, name)] = message
            else:
                self.failures.pop((ns, name), None)
            self.done_gen.pop((ns, name), None)
            self._push(0, "reconcile", ns, name, None)

    def set_ignored(self, ns, name, ignore):
        """Stop (or resume) reconciling one IMGW, as the real operator
        ignores a gateway whose control plane's version is not its release:
        its status stays as it was."""
        with self.cv:
            if ignore:
                self.ignored.add((ns, name))
            else:
                self.ignored.discard((ns, name))
                self.done_gen.pop((ns, name), None)
                self._push(0, "reconcile", ns, name, None)

    def _push(self, delay, action, ns, name, gen):
        self.seq += 1
        heapq.heappush(self.pending, (time.time() + delay, self.seq, action, ns, name, gen))
        self.cv.notify_all()

    def _on_event(self, rt, etype, rec):
        # called under the store lock: only queue work
        if rt is not self.imgw or etype == "DELETED":
            return
        md = rec.obj["metadata"]
        key = (md.get("namespace", ""), md["name"])
        gen = md.get("generation")
        if md.get("deletionTimestamp") or self.done_gen.get(key) != gen:
            with self.cv:
                self._push(0, "reconcile", key[0], key[1], None)

    def _run(self):
        while True:
            with self.cv:
                while not self.stopped and (not self.pending or self.pending[0][0] > time.time()):
                    timeout = self.pending[0][0] - time.time() if self.pending else None
                    self.cv.wait(timeout)
                if self.stopped:
                    return
                _, _, action, ns, name, gen = heapq.heappop(self.pending)
            try:
                if action == "reconcile":
                    self._reconcile(ns, name)
                else:
                    self._finish(ns, name, gen)
            except ApiError:
                pass
            except Exception:      # keep the simulated controller alive, as a real one would
                import traceback
                traceback.print_exc()

    # -- helpers ---------------------------------------------------------
    def _status(self, ns, name, status):
        c = self.cluster
        body = {"apiVersion": self.imgw.api_version("v1alpha1"), "kind": self.imgw.kind,
                "metadata": {"name": name, "namespace": ns}, "status": status}
        rec = c.store.get(self.imgw, ns, name)
        if rec is None or rec.obj.get("status") == status:
            return
        c.update(self.imgw, "v1alpha1", ns, name, dict(copy.deepcopy(rec.obj), status=status),
                 Options(manager=MANAGER), MANAGER, subresource="status")

    def _reconcile(self, ns, name):
        c = self.cluster
        if (ns, name) in self.ignored:
            return
        with c.store.lock:
            rec = c.store.get(self.imgw, ns, name)
            if rec is None:
                return
            obj = copy.deepcopy(rec.obj)
            md = obj["metadata"]
            if md.get("deletionTimestamp"):
                self._teardown(ns, name, obj)
                return
            if FINALIZER in (md.get("finalizers") or []) and self.done_gen.get((ns, name)) == md.get("generation"):
                # queued again by our own finalizer write: this generation is
                # being (or was) reconciled; doing it again would flap the
                # status back to Reconciling after Available
                return
            if FINALIZER not in (md.get("finalizers") or []):
                md["finalizers"] = (md.get("finalizers") or []) + [FINALIZER]
                c.update(self.imgw, "v1alpha1", ns, name, obj, Options(manager=MANAGER), MANAGER)
                rec = c.store.get(self.imgw, ns, name)
                obj = copy.deepcopy(rec.obj)
                md = obj["metadata"]
            gen = md.get("generation")
            self.done_gen[(ns, name)] = gen
            st = dict(obj.get("status") or {})
            st["Status"] = "Reconciling"
            st.pop("ErrorMessage", None)
            self._status(ns, name, st)
            self._children(ns, name, obj)
        with self.cv:
            self._push(self.delay, "finish", ns, name, gen)

    def _children(self, ns, name, imgw):
        c = self.cluster
        spec = imgw.get("spec") or {}
        gtype = spec.get("type", "")
        icp = spec.get("istioControlPlane") or {}
        labels = dict(((spec.get("deployment") or {}).get("metadata") or {}).get("labels") or {})
        labels.update({"gateway-name": name, "gateway-type": gtype, "release": "istio-meshgateway"})
        if icp.get("name"):
            labels["istio.io/rev"] = "%s.%s" % (icp.get("name"), icp.get("namespace", ""))
        owner = [{"apiVersion": self.imgw.api_version("v1alpha1"), "kind": self.imgw.kind, "name": name,
                  "uid": imgw["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
        sspec = spec.get("service") or {}
        ports = []
        cports = []
        for p in sspec.get("ports") or []:
            q = {k: p[k] for k in ("name", "port", "protocol", "targetPort", "nodePort") if k in p}
            q.setdefault("protocol", "TCP")
            ports.append(q)
            tp = p.get("targetPort", p.get("port"))
            if isinstance(tp, int):
                cports.append({"containerPort": tp, "protocol": q["protocol"]})
        replicas = (((spec.get("deployment") or {}).get("replicas")) or {}).get("count", 1)
        pod_labels = dict(labels)
        # the chart puts podMetadata's labels on the pods only
        pod_labels.update(((spec.get("deployment") or {}).get("podMetadata") or {}).get("labels") or {})
        pod_labels["sidecar.istio.io/inject"] = "true"
        dep = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": owner},
               "spec": {"replicas": replicas, "selector": {"matchLabels": {"gateway-name": name,
                                                                           "gateway-type": gtype}},
                        "template": {"metadata": {"labels": pod_labels},
                                     "spec": {"containers": [{"name": "istio-proxy", "image": "auto",
                                                              "ports": cports}]}}}}
        svc = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": owner},
               "spec": {"type": sspec.get("type", "ClusterIP"), "ports": ports,
                        "selector": {"gateway-name": name, "gateway-type": gtype}}}
        for rt, body in ((self.deploy, dep), (self.svc, svc)):
            c.apply(rt, "v1", ns, name, _json(body), Options(manager=MANAGER, force=True))

    def _finish(self, ns, name, gen):
        c = self.cluster
        if (ns, name) in self.ignored:
            return
        with c.store.lock:
            rec = c.store.get(self.imgw, ns, name)
            if rec is None or rec.obj["metadata"].get("deletionTimestamp"):
                return
            if rec.obj["metadata"].get("generation") != gen:
                return
            st = dict(rec.obj.get("status") or {})
            fail = self.failures.get((ns, name))
            if fail:
                st["Status"] = "ReconcileFailed"
                st["ErrorMessage"] = fail
                self._status(ns, name, st)
                return
            svc = c.store.get(self.svc, ns, name)
            addr = []
            if svc is not None:
                sspec = svc.obj.get("spec") or {}
                if sspec.get("type") == "LoadBalancer":
                    ip = "192.0.2.%d" % (10 + len(c.store.data[self.svc.key]) % 200)
                    sobj = copy.deepcopy(svc.obj)
                    sobj["status"] = {"loadBalancer": {"ingress": [{"ip": ip}]}}
                    c.update(self.svc, "v1", ns, name, sobj, Options(manager=MANAGER), MANAGER,
                             subresource="status")
                    addr = [ip]
                elif sspec.get("clusterIP") and sspec.get("clusterIP") != "None":
                    addr = [sspec["clusterIP"]]
            dep = c.store.get(self.deploy, ns, name)
            if dep is not None:
                d = copy.deepcopy(dep.obj)
                n = (d.get("spec") or {}).get("replicas", 1)
                d["status"] = {"observedGeneration": d["metadata"].get("generation", 1), "replicas": n,
                               "updatedReplicas": n, "readyReplicas": n, "availableReplicas": n,
                               "conditions": [{"type": "Available", "status": "True",
                                               "reason": "MinimumReplicasAvailable",
                                               "message": "Deployment has minimum availability."}]}
                c.update(self.deploy, "v1", ns, name, d, Options(manager=MANAGER), MANAGER, subresource="status")
            st["Status"] = "Available"
            st["GatewayAddress"] = addr
            st.pop("ErrorMessage", None)
            self._status(ns, name, st)

    def _teardown(self, ns, name, obj):
        c = self.cluster
        for rt in (self.deploy, self.svc):
            r = c.store.get(rt, ns, name)
            if r is not None and any(o.get("uid") == obj["metadata"]["uid"]
                                     for o in r.obj["metadata"].get("ownerReferences") or []):
                c.delete(rt, "v1", ns, name, Options())
        md = obj["metadata"]
        fins = [f for f in md.get("finalizers") or [] if f != FINALIZER]
        if fins != (md.get("finalizers") or []):
            md["finalizers"] = fins
            c.update(self.imgw, "v1alpha1", ns, name, obj, Options(manager=MANAGER), MANAGER)
        self.done_gen.pop((ns, name), None)


def _json(o):
    import json
    return json.dumps(o).encode()
