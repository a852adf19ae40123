package main

// What every cluster holds before "ready": the CRDs egressd renders (the
// upstream files in crds/, with networking.istio.io versions served as
// --istio asks), a read-only role for the viewer user, and the --namespace
// namespaces. realk8s waits until each CRD is Established and its versions
// are in discovery, so a client started after "ready" sees them at once.

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

//go:embed crds/*.yaml
var crdFiles embed.FS

func loadCRDs(file string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	data, err := crdFiles.ReadFile("crds/" + file)
	if err != nil {
		return nil, err
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(doc, crd); err != nil {
			return nil, fmt.Errorf("crds/%s: %v", file, err)
		}
		out = append(out, crd)
	}
	return out, nil
}

// crdsFor returns the CRDs of one cluster, versions served as asked.
func (c *cluster) crdsFor() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	file := "istio-head.yaml"
	if c.istio.schema == "1.17" {
		file = "istio-1.17.8.yaml"
	}
	crds, err := loadCRDs(file)
	if err != nil {
		return nil, err
	}
	for _, crd := range crds {
		if crd.Spec.Group != "networking.istio.io" {
			continue // security.istio.io serves the versions of its generation
		}
		for i := range crd.Spec.Versions {
			v := &crd.Spec.Versions[i]
			v.Served = false
			for _, want := range c.istio.versions {
				v.Served = v.Served || v.Name == want
			}
		}
	}
	if c.smm {
		imgw, err := loadCRDs("smm-imgw.yaml")
		if err != nil {
			return nil, err
		}
		crds = append(crds, imgw...)
	}
	return crds, nil
}

func (c *cluster) install(ctx context.Context, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	cfg := c.restConfig()
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ext, err := apiextensions.NewForConfig(cfg)
	if err != nil {
		return err
	}
	fail := func(what string, err error) error {
		return fmt.Errorf("cluster %s: %s: %v", c.name, what, err)
	}

	for _, ns := range c.f.o.namespaces {
		_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
			metav1.CreateOptions{FieldManager: "realk8s"})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fail("namespace "+ns, err)
		}
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "realk8s-readonly"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"get", "list", "watch"}},
			{NonResourceURLs: []string{"*"}, Verbs: []string{"get"}},
		},
	}
	if _, err := kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return fail("ClusterRole realk8s-readonly", err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "realk8s-readonly"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: viewerUser}},
	}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return fail("ClusterRoleBinding realk8s-readonly", err)
	}

	crds, err := c.crdsFor()
	if err != nil {
		return fail("CRDs", err)
	}
	for _, crd := range crds {
		if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
			return fail("CRD "+crd.Name, err)
		}
	}
	var gvs []string
	for _, crd := range crds {
		if err := waitEstablished(ctx, ext, crd.Name); err != nil {
			return fail("CRD "+crd.Name, err)
		}
		for _, v := range crd.Spec.Versions {
			if v.Served {
				gv := crd.Spec.Group + "/" + v.Name
				if err := waitDiscovered(ctx, kube, gv, crd.Spec.Names.Plural); err != nil {
					return fail("CRD "+crd.Name, err)
				}
				gvs = append(gvs, gv)
			}
		}
	}
	// kubectl reads a CRD's schema from OpenAPI v3, which the server
	// publishes a little after the CRD is Established
	if err := waitOpenAPI(ctx, kube, gvs); err != nil {
		return fail("OpenAPI v3", err)
	}
	return nil
}

// waitOpenAPI waits until /openapi/v3 lists a document for every group-version.
func waitOpenAPI(ctx context.Context, kube kubernetes.Interface, gvs []string) error {
	for {
		var root struct {
			Paths map[string]any `json:"paths"`
		}
		raw, err := kube.Discovery().RESTClient().Get().AbsPath("/openapi/v3").DoRaw(ctx)
		missing := ""
		if err == nil {
			err = json.Unmarshal(raw, &root)
		}
		if err != nil {
			return err
		}
		for _, gv := range gvs {
			if _, ok := root.Paths["apis/"+gv]; !ok {
				missing = gv
				break
			}
		}
		if missing == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not published in time", missing)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func waitEstablished(ctx context.Context, ext apiextensions.Interface, name string) error {
	for {
		crd, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.NamesAccepted && cond.Status == apiextensionsv1.ConditionFalse {
				return fmt.Errorf("names not accepted: %s", cond.Message)
			}
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not Established in time")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func waitDiscovered(ctx context.Context, kube kubernetes.Interface, gv, plural string) error {
	for {
		list, err := kube.Discovery().ServerResourcesForGroupVersion(gv)
		if err == nil {
			for _, r := range list.APIResources {
				if r.Name == plural {
					return nil
				}
			}
		} else if !apierrors.IsNotFound(err) && !strings.Contains(err.Error(), "not found") {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %s not in discovery in time", gv, plural)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *cluster) serverVersion() (string, error) {
	kube, err := kubernetes.NewForConfig(c.restConfig())
	if err != nil {
		return "", err
	}
	v, err := kube.Discovery().ServerVersion()
	if err != nil {
		return "", fmt.Errorf("cluster %s: /version: %v", c.name, err)
	}
	return v.GitVersion, nil
}
