package main

// The controllers that a cluster egressd manages would run, played against
// the real API (no kubelet or kube-controller-manager runs here):
//
//   - the SMM mesh-gateway operator, exactly as kubesim simulates it
//     (tests/kubesim/kubesim_lib/operator.py, istio-smm.md §1): for an
//     IstioMeshGateway whose generation it has not reconciled it adds the
//     finalizer istio-meshgateway.servicemesh.cisco.com, sets
//     status.Status=Reconciling, applies a Deployment and a Service named
//     after it (labels gateway-name, gateway-type, release, istio.io/rev;
//     owner reference), and after --operator-delay sets Available with
//     status.GatewayAddress, or ReconcileFailed with status.ErrorMessage when
//     a failure was injected (POST /_sim/operator). Deleting the IMGW deletes
//     the children and removes the finalizer. It writes as the Update
//     manager "istio-operator".
//   - the Deployment controller's status: --operator-delay after a
//     Deployment's generation changes (the time its pods would take), status
//     reports observedGeneration and every replica updated, ready and
//     available, written as "kube-controller-manager" like the real one.
//   - the real namespace controller (k8s.io/kubernetes/pkg/controller/namespace),
//     so a deleted namespace is emptied and goes away as in a cluster.
//
// When you change what the operator does, change kubesim's operator.py too:
// the parity suite compares the two.

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/kubernetes/pkg/controller/namespace"
	"sigs.k8s.io/yaml"
)

const (
	imgwFinalizer   = "istio-meshgateway.servicemesh.cisco.com"
	operatorManager = "istio-operator"
	deployManager   = "kube-controller-manager"
)

var imgwGVR = schema.GroupVersionResource{Group: "servicemesh.cisco.com", Version: "v1alpha1", Resource: "istiomeshgateways"}

type opKey struct {
	kind string // "reconcile", "finish", "deployment"
	ns   string
	name string
	gen  int64
}

type operator struct {
	c     *cluster
	kube  kubernetes.Interface
	dyn   dynamic.Interface
	delay time.Duration
	queue workqueue.TypedDelayingInterface[opKey]

	mu       sync.Mutex
	failures map[types.NamespacedName]string
	ignored  map[types.NamespacedName]bool
	doneGen  map[types.NamespacedName]int64
	lbNext   int
}

func (c *cluster) startControllers(ctx context.Context) error {
	cfg := c.restConfig()
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return err
	}
	op := &operator{c: c, kube: kube, dyn: dyn, delay: c.f.o.operatorDelay,
		queue:    workqueue.NewTypedDelayingQueue[opKey](),
		failures: map[types.NamespacedName]string{}, doneGen: map[types.NamespacedName]int64{},
		ignored: map[types.NamespacedName]bool{}}
	c.op = op
	atExit(op.queue.ShutDown)

	// informers resync never: every change arrives as an event
	shared := informers.NewSharedInformerFactory(kube, 0)
	deps := shared.Apps().V1().Deployments().Informer()
	deps.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    op.onDeployment,
		UpdateFunc: func(_, o any) { op.onDeployment(o) },
	})
	nc := namespace.NewNamespaceController(ctx, kube, meta, kube.Discovery().ServerPreferredNamespacedResources,
		shared.Core().V1().Namespaces(), 0, corev1.FinalizerKubernetes)
	shared.Start(ctx.Done())
	go nc.Run(ctx, 2)

	if c.smm {
		dshared := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
		inf := dshared.ForResource(imgwGVR).Informer()
		inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    op.onIMGW,
			UpdateFunc: func(_, o any) { op.onIMGW(o) },
		})
		dshared.Start(ctx.Done())
		dshared.WaitForCacheSync(ctx.Done())
	}
	shared.WaitForCacheSync(ctx.Done())
	go op.run(ctx)
	return nil
}

func (op *operator) onIMGW(obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	key := types.NamespacedName{Namespace: u.GetNamespace(), Name: u.GetName()}
	op.mu.Lock()
	done, seen := op.doneGen[key]
	op.mu.Unlock()
	if u.GetDeletionTimestamp() != nil || !seen || done != u.GetGeneration() {
		op.queue.Add(opKey{kind: "reconcile", ns: key.Namespace, name: key.Name})
	}
}

func (op *operator) onDeployment(obj any) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok || d.Status.ObservedGeneration == d.Generation {
		return
	}
	op.queue.AddAfter(opKey{kind: "deployment", ns: d.Namespace, name: d.Name, gen: d.Generation}, op.delay)
}

// setFailure injects (message != "") or clears an operator failure for one
// IMGW and reconciles it again.
func (op *operator) setFailure(ns, name, message string) {
	key := types.NamespacedName{Namespace: ns, Name: name}
	op.mu.Lock()
	if message != "" {
		op.failures[key] = message
	} else {
		delete(op.failures, key)
	}
	delete(op.doneGen, key)
	op.mu.Unlock()
	op.queue.Add(opKey{kind: "reconcile", ns: ns, name: name})
}

// setIgnored stops (or resumes) reconciling one IMGW, as the real operator
// ignores a gateway whose control plane's version is not its release: its
// status stays as it was.
func (op *operator) setIgnored(ns, name string, ignore bool) {
	key := types.NamespacedName{Namespace: ns, Name: name}
	op.mu.Lock()
	if ignore {
		op.ignored[key] = true
	} else {
		delete(op.ignored, key)
		delete(op.doneGen, key)
	}
	op.mu.Unlock()
	if !ignore {
		op.queue.Add(opKey{kind: "reconcile", ns: ns, name: name})
	}
}

func (op *operator) isIgnored(ns, name string) bool {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.ignored[types.NamespacedName{Namespace: ns, Name: name}]
}

func (op *operator) run(ctx context.Context) {
	for {
		k, shutdown := op.queue.Get()
		if shutdown {
			return
		}
		var err error
		switch k.kind {
		case "reconcile":
			err = op.reconcile(ctx, k.ns, k.name)
		case "finish":
			err = op.finish(ctx, k.ns, k.name, k.gen)
		case "deployment":
			err = op.rollOut(ctx, k.ns, k.name, k.gen)
		}
		op.queue.Done(k)
		if err != nil && ctx.Err() == nil && !apierrors.IsNotFound(err) {
			// as a controller would: log, and try again a little later
			fmt.Printf("realk8s: cluster %s: %s %s/%s: %v\n", op.c.name, k.kind, k.ns, k.name, err)
			if !op.c.isDown() {
				op.queue.AddAfter(k, 200*time.Millisecond)
			} else {
				op.queue.AddAfter(k, time.Second)
			}
		}
	}
}

func (op *operator) imgws(ns string) dynamic.ResourceInterface {
	return op.dyn.Resource(imgwGVR).Namespace(ns)
}

func (op *operator) reconcile(ctx context.Context, ns, name string) error {
	if op.isIgnored(ns, name) {
		return nil
	}
	u, err := op.imgws(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if u.GetDeletionTimestamp() != nil {
		return op.teardown(ctx, u)
	}
	key := types.NamespacedName{Namespace: ns, Name: name}
	op.mu.Lock()
	done, seen := op.doneGen[key]
	op.mu.Unlock()
	if seen && done == u.GetGeneration() && hasString(u.GetFinalizers(), imgwFinalizer) {
		// queued again by our own finalizer write: this generation is being
		// (or was) reconciled; once more would flap Available back to Reconciling
		return nil
	}
	if !hasString(u.GetFinalizers(), imgwFinalizer) {
		u.SetFinalizers(append(u.GetFinalizers(), imgwFinalizer))
		if u, err = op.imgws(ns).Update(ctx, u, metav1.UpdateOptions{FieldManager: operatorManager}); err != nil {
			return err
		}
	}
	gen := u.GetGeneration()
	op.mu.Lock()
	op.doneGen[key] = gen
	op.mu.Unlock()
	status, _, _ := unstructured.NestedMap(u.Object, "status")
	if status == nil {
		status = map[string]any{}
	}
	status["Status"] = "Reconciling"
	delete(status, "ErrorMessage")
	if err := op.setStatus(ctx, u, status); err != nil {
		return err
	}
	if err := op.children(ctx, u); err != nil {
		return err
	}
	op.queue.AddAfter(opKey{kind: "finish", ns: ns, name: name, gen: gen}, op.delay)
	return nil
}

func (op *operator) setStatus(ctx context.Context, u *unstructured.Unstructured, status map[string]any) error {
	old, _, _ := unstructured.NestedMap(u.Object, "status")
	if fmt.Sprint(old) == fmt.Sprint(status) {
		return nil
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := op.imgws(u.GetNamespace()).Get(ctx, u.GetName(), metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Object["status"] = status
		_, err = op.imgws(u.GetNamespace()).UpdateStatus(ctx, cur, metav1.UpdateOptions{FieldManager: operatorManager})
		return err
	})
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// children applies the gateway's Deployment and Service, as the SMM chart
// renders them (labels and selector gateway-name/gateway-type).
func (op *operator) children(ctx context.Context, u *unstructured.Unstructured) error {
	ns, name := u.GetNamespace(), u.GetName()
	gtype, _, _ := unstructured.NestedString(u.Object, "spec", "type")
	icpName, _, _ := unstructured.NestedString(u.Object, "spec", "istioControlPlane", "name")
	icpNS, _, _ := unstructured.NestedString(u.Object, "spec", "istioControlPlane", "namespace")
	labels := map[string]string{}
	if l, ok, _ := unstructured.NestedStringMap(u.Object, "spec", "deployment", "metadata", "labels"); ok {
		labels = l
	}
	labels["gateway-name"] = name
	labels["gateway-type"] = gtype
	labels["release"] = "istio-meshgateway"
	if icpName != "" {
		labels["istio.io/rev"] = icpName + "." + icpNS
	}
	selector := map[string]string{"gateway-name": name, "gateway-type": gtype}
	owner := []metav1.OwnerReference{{APIVersion: "servicemesh.cisco.com/v1alpha1", Kind: "IstioMeshGateway",
		Name: name, UID: u.GetUID(), Controller: ptr(true), BlockOwnerDeletion: ptr(true)}}

	var ports []corev1.ServicePort
	var cports []corev1.ContainerPort
	sports, _, _ := unstructured.NestedSlice(u.Object, "spec", "service", "ports")
	for _, p := range sports {
		pm, _ := p.(map[string]any)
		sp := corev1.ServicePort{Protocol: corev1.ProtocolTCP}
		if v, ok := pm["name"].(string); ok {
			sp.Name = v
		}
		if v, ok := pm["protocol"].(string); ok {
			sp.Protocol = corev1.Protocol(v)
		}
		sp.Port = int32(num(pm["port"]))
		if tp, ok := pm["targetPort"]; ok {
			sp.TargetPort = intstr.FromInt32(int32(num(tp)))
			cports = append(cports, corev1.ContainerPort{ContainerPort: int32(num(tp)), Protocol: sp.Protocol})
		} else {
			cports = append(cports, corev1.ContainerPort{ContainerPort: sp.Port, Protocol: sp.Protocol})
		}
		if v, ok := pm["nodePort"]; ok {
			sp.NodePort = int32(num(v))
		}
		ports = append(ports, sp)
	}
	replicas := int32(1)
	if v, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "deployment", "replicas", "count"); ok {
		replicas = int32(num(v))
	}
	podLabels := map[string]string{}
	for k, v := range labels {
		podLabels[k] = v
	}
	// the chart puts podMetadata's labels on the pods only
	if l, ok, _ := unstructured.NestedStringMap(u.Object, "spec", "deployment", "podMetadata", "labels"); ok {
		for k, v := range l {
			podLabels[k] = v
		}
	}
	podLabels["sidecar.istio.io/inject"] = "true"
	stype, _, _ := unstructured.NestedString(u.Object, "spec", "service", "type")
	if stype == "" {
		stype = "ClusterIP"
	}
	dep := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, OwnerReferences: owner},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "istio-proxy", Image: "auto", Ports: cports}}},
			},
		},
	}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, OwnerReferences: owner},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceType(stype), Ports: ports, Selector: selector},
	}
	opts := metav1.PatchOptions{FieldManager: operatorManager, Force: ptr(true)}
	body, err := yaml.Marshal(dep)
	if err != nil {
		return err
	}
	if _, err := op.kube.AppsV1().Deployments(ns).Patch(ctx, name, types.ApplyPatchType, body, opts); err != nil {
		return err
	}
	if body, err = yaml.Marshal(svc); err != nil {
		return err
	}
	_, err = op.kube.CoreV1().Services(ns).Patch(ctx, name, types.ApplyPatchType, body, opts)
	return err
}

func (op *operator) finish(ctx context.Context, ns, name string, gen int64) error {
	if op.isIgnored(ns, name) {
		return nil
	}
	u, err := op.imgws(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if u.GetDeletionTimestamp() != nil || u.GetGeneration() != gen {
		return nil
	}
	status, _, _ := unstructured.NestedMap(u.Object, "status")
	if status == nil {
		status = map[string]any{}
	}
	op.mu.Lock()
	fail := op.failures[types.NamespacedName{Namespace: ns, Name: name}]
	op.mu.Unlock()
	if fail != "" {
		status["Status"] = "ReconcileFailed"
		status["ErrorMessage"] = fail
		return op.setStatus(ctx, u, status)
	}
	addr := []any{}
	svc, err := op.kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		switch {
		case svc.Spec.Type == corev1.ServiceTypeLoadBalancer:
			op.mu.Lock()
			ip := fmt.Sprintf("192.0.2.%d", 10+op.lbNext%200)
			op.lbNext++
			op.mu.Unlock()
			svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
			if _, err := op.kube.CoreV1().Services(ns).UpdateStatus(ctx, svc,
				metav1.UpdateOptions{FieldManager: operatorManager}); err != nil {
				return err
			}
			addr = append(addr, ip)
		case svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != "None":
			addr = append(addr, svc.Spec.ClusterIP)
		}
	} else if !apierrors.IsNotFound(err) {
		return err
	}
	status["Status"] = "Available"
	status["GatewayAddress"] = addr
	delete(status, "ErrorMessage")
	return op.setStatus(ctx, u, status)
}

func (op *operator) teardown(ctx context.Context, u *unstructured.Unstructured) error {
	ns, name := u.GetNamespace(), u.GetName()
	owned := func(refs []metav1.OwnerReference) bool {
		for _, r := range refs {
			if r.UID == u.GetUID() {
				return true
			}
		}
		return false
	}
	if d, err := op.kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); err == nil && owned(d.OwnerReferences) {
		if err := op.kube.AppsV1().Deployments(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	if s, err := op.kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{}); err == nil && owned(s.OwnerReferences) {
		if err := op.kube.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	var keep []string
	for _, f := range u.GetFinalizers() {
		if f != imgwFinalizer {
			keep = append(keep, f)
		}
	}
	if len(keep) != len(u.GetFinalizers()) {
		u.SetFinalizers(keep)
		if _, err := op.imgws(ns).Update(ctx, u, metav1.UpdateOptions{FieldManager: operatorManager}); err != nil {
			return err
		}
	}
	op.mu.Lock()
	delete(op.doneGen, types.NamespacedName{Namespace: ns, Name: name})
	op.mu.Unlock()
	return nil
}

// rollOut reports a Deployment's pods as all started: what the Deployment
// controller writes once every replica of the new generation is available.
func (op *operator) rollOut(ctx context.Context, ns, name string, gen int64) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := op.kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Generation != gen || d.DeletionTimestamp != nil {
			return nil // a newer generation has its own turn
		}
		n := int32(1)
		if d.Spec.Replicas != nil {
			n = *d.Spec.Replicas
		}
		now := metav1.Now()
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
			Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
					Message: "Deployment has minimum availability.", LastUpdateTime: now, LastTransitionTime: now},
				{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable",
					Message:        fmt.Sprintf("ReplicaSet %q has successfully progressed.", name),
					LastUpdateTime: now, LastTransitionTime: now},
			},
		}
		_, err = op.kube.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{FieldManager: deployManager})
		return err
	})
}

func num(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int:
		return int64(n)
	case float64:
		return int64(n)
	case int32:
		return int64(n)
	}
	return 0
}

func ptr[T any](v T) *T { return &v }
