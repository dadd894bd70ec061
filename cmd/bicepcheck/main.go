// Command bicepcheck parses the project's Bicep templates offline and enforces its platform rules.
//
//	go run ./cmd/bicepcheck [path ...]    (default: infra/bicep)
//
// It prints one line per finding, file:line:col: rule: message, and exits 1 when there is any finding,
// 2 when the files cannot be read.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/connecthub/connecthub/internal/dev/bicepcheck"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	paths := args
	if len(paths) == 0 {
		paths = []string{"infra/bicep"}
	}
	findings, files, err := bicepcheck.Check(paths...)
	if err != nil {
		fmt.Fprintf(stderr, "bicepcheck: %v\n", err)
		return 2
	}
	if files == 0 {
		fmt.Fprintf(stderr, "bicepcheck: no .bicep or .bicepparam files under %v\n", paths)
		return 2
	}
	for _, f := range findings {
		fmt.Fprintln(stdout, f)
	}
	if len(findings) > 0 {
		fmt.Fprintf(stderr, "bicepcheck: %d finding(s) in %d file(s)\n", len(findings), files)
		return 1
	}
	fmt.Fprintf(stdout, "bicepcheck: %d file(s), no findings\n", files)
	return 0
}
