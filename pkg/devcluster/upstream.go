package devcluster

import "fmt"

// UpstreamSchedulerConfig is a KubeSchedulerConfiguration for the upstream kube-scheduler of the
// control plane's binaries, as the benchmarks and the fidelity check run it beside kcloud-scheduler:
// every plugin at its default, one profile of its own name (so that it schedules only the pods
// addressed to it), no leader election, and a client that is not the bottleneck. global is
// inserted at the top level as it is (say "percentageOfNodesToScore: 100"), "" for none.
func UpstreamSchedulerConfig(kubeconfig, schedulerName, global string) string {
	return fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection: {leaderElect: false}
clientConnection: {kubeconfig: %s, qps: 1000, burst: 2000}
%s
profiles:
- schedulerName: %s
`, kubeconfig, global, schedulerName)
}
