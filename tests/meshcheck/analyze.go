package meshcheck

// `meshcheck --analyze`: the analyzers `istioctl analyze` runs on files,
// without a cluster (istioctl/pkg/analyze: NewIstiodAnalyzer over all
// namespaces, the mesh config, AddDefaultResources, the files as a reader
// source).

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"istio.io/istio/pkg/config/analysis/analyzers"
	"istio.io/istio/pkg/config/analysis/diag"
	"istio.io/istio/pkg/config/analysis/local"
	"istio.io/istio/pkg/config/resource"
)

// meshConfigYAML is the mesh config of SMM 1.17 as the oracle assumes it.
const meshConfigYAML = `trustDomain: cluster.local
rootNamespace: istio-system
enableAutoMtls: true
outboundTrafficPolicy:
  mode: ALLOW_ANY
`

// Analyze runs Istio's analyzers over the manifests (IstioMeshGateways
// blanked out) and the minimal mesh. It prints every message and returns the
// number of errors and warnings.
func Analyze(m *Mesh, out io.Writer, tmpDir string, verbose bool, allow []string) (int, error) {
	sa := local.NewIstiodAnalyzer(analyzers.AllCombined(), resource.Namespace(""), resource.Namespace(rootNamespace), nil)
	mcFile := filepath.Join(tmpDir, "mesh.yaml")
	if err := os.WriteFile(mcFile, []byte(meshConfigYAML), 0o644); err != nil {
		return 0, err
	}
	if err := sa.AddFileKubeMeshConfig(mcFile); err != nil {
		return 0, fmt.Errorf("mesh config: %v", err)
	}
	readers := []local.ReaderSource{
		{Name: m.File, Reader: strings.NewReader(m.AnalyzerFileText())},
		{Name: "minimal-mesh", Reader: strings.NewReader(m.KubeYAML + "---\n" + m.MeshIstioYAML)},
	}
	// AddReaderKubeSource (istioctl's files-only mode) drops Services,
	// Namespaces, Pods and Secrets from files: with no cluster it could not
	// know them. Here the minimal mesh is the cluster, so the analyzers must
	// see them: the test reader keeps them.
	if err := sa.AddTestReaderKubeSource(readers); err != nil {
		return 0, fmt.Errorf("reading the manifests: %v", err)
	}
	// After the files: the first reader source fixes which kinds the
	// analyzers see, and AddDefaultResources' own would drop pods.
	if err := sa.AddDefaultResources(); err != nil {
		return 0, err
	}
	cancel := make(chan struct{})
	res, err := sa.Analyze(cancel)
	if err != nil {
		return 0, err
	}
	if verbose {
		fmt.Fprintf(os.Stderr, "executed analyzers: %s\nskipped analyzers: %s\n",
			strings.Join(res.ExecutedAnalyzers, ", "), strings.Join(res.SkippedAnalyzers, ", "))
	}
	msgs := res.Messages.SortedDedupedCopy()
	bad := 0
	for i := range msgs {
		allowed := false
		for _, code := range allow {
			allowed = allowed || msgs[i].Type.Code() == strings.TrimSpace(code)
		}
		if allowed {
			fmt.Fprintln(out, msgs[i].String()+" (allowed)")
			continue
		}
		fmt.Fprintln(out, msgs[i].String())
		if msgs[i].Type.Level().IsWorseThanOrEqualTo(diag.Warning) {
			bad++
		}
	}
	return bad, nil
}
