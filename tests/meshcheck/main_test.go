package meshcheck

// The meshcheck binary is this package's test binary (`go test -c`): Istio's
// fake discovery server and traffic simulation take a *testing.T, which only
// the testing package can make. TestMain turns the binary into the CLI when it
// is given meshcheck's options; without them it runs the package's tests.

import (
	"flag"
	"fmt"
	"io"
	"os"
	"testing"

	istiolog "istio.io/istio/pkg/log"
)

var (
	cli      Options
	cliCode            = -1
	cliOut   io.Writer = os.Stdout
	cliErr   io.Writer = os.Stderr
	testsOut *os.File
)

func init() {
	cli.Flags(flag.CommandLine)
	flag.CommandLine.Usage = func() {
		fmt.Fprint(os.Stderr, Usage+"\noptions:\n")
		flag.CommandLine.VisitAll(func(f *flag.Flag) {
			if len(f.Name) > 5 && f.Name[:5] == "test." {
				return
			}
			fmt.Fprintf(os.Stderr, "  --%s\t%s\n", f.Name, f.Usage)
		})
	}
}

func quietLogs(verbose bool) {
	o := istiolog.DefaultOptions()
	if !verbose {
		o.OutputPaths = []string{os.DevNull}
		o.ErrorOutputPaths = []string{os.DevNull}
		o.SetDefaultOutputLevel(istiolog.OverrideScopeName, istiolog.NoneLevel)
	} else {
		o.OutputPaths = []string{"stderr"}
	}
	_ = istiolog.Configure(o)
}

func TestMain(m *testing.M) {
	flag.Parse()
	if !cli.Active() {
		quietLogs(os.Getenv("MESHCHECK_LOGS") != "")
		os.Exit(m.Run())
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "meshcheck: unexpected argument %q\n\n", flag.Arg(0))
		flag.CommandLine.Usage()
		os.Exit(ExitError)
	}
	quietLogs(cli.Verbose)
	// The testing package reports on standard output; keep it apart from
	// meshcheck's own output and show it only if Istio's code failed the test.
	realOut := os.Stdout
	cliOut = realOut
	f, err := os.CreateTemp("", "meshcheck-test-*.log")
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshcheck:", err)
		os.Exit(ExitError)
	}
	defer os.Remove(f.Name())
	os.Stdout = f
	_ = flag.Set("test.run", "^TestCLI$")
	code := m.Run()
	os.Stdout = realOut
	if cliCode < 0 || code != 0 {
		fmt.Fprintln(os.Stderr, "meshcheck: Istio's test harness failed:")
		if b, err := os.ReadFile(f.Name()); err == nil {
			os.Stderr.Write(b)
		}
		os.Remove(f.Name())
		os.Exit(ExitError)
	}
	os.Remove(f.Name())
	os.Exit(cliCode)
}

// TestCLI is the CLI; it is skipped in a plain `go test`.
func TestCLI(t *testing.T) {
	if !cli.Active() {
		t.Skip("meshcheck CLI: no options given")
	}
	cliCode = Run(t, &cli, cliOut, cliErr)
}
