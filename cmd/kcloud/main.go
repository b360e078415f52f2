// Command kcloud is the KCloud Workload Optimizer CLI, also usable as the kubectl plugin
// `kubectl kcloud` (install it on PATH as kubectl-kcloud).
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "kcloud",
		Short:         "KCloud Workload Optimizer: cost- and power-aware placement of GPU/NPU workloads",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newSimulateCommand(), newSimulateAutoscaleCommand(), newDevCommand(), newRunCommand(), newReleaseHeldCommand())
	return root
}
