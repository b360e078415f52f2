// Command kcloud-scheduler is kube-scheduler with the KcloudOptimizer plugin registered. Run it with a
// KubeSchedulerConfiguration whose profile `kcloud-scheduler` enables the plugin (see
// config/scheduler/kcloud-scheduler-config.yaml); pods opt in with schedulerName: kcloud-scheduler.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"kcloud.io/optimizer/pkg/scheduler/plugins/kcloud"
)

func main() {
	cmd := app.NewSchedulerCommand(app.WithPlugin(kcloud.Name, kcloud.New))
	os.Exit(cli.Run(cmd))
}
