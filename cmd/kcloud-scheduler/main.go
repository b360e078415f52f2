// Command kcloud-scheduler is kube-scheduler with the kcloud plugins registered: KcloudOptimizer
// (limits and the cost/power/carbon/fragmentation score), KcloudGPUShare (GPU-share device choice
// and binding), KcloudGang (gang Permit) and KcloudPriority (the queue by pod, then optimizer,
// priority). Run it with a KubeSchedulerConfiguration whose profile
// `kcloud-scheduler` enables them (see config/scheduler/kcloud-scheduler-config.yaml); each also
// works enabled alone. Pods opt in with schedulerName: kcloud-scheduler.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"kcloud.io/optimizer/pkg/scheduler/plugins/gang"
	"kcloud.io/optimizer/pkg/scheduler/plugins/gpushare"
	"kcloud.io/optimizer/pkg/scheduler/plugins/optimizer"
	"kcloud.io/optimizer/pkg/scheduler/plugins/priority"
)

func main() {
	cmd := app.NewSchedulerCommand(
		app.WithPlugin(optimizer.Name, optimizer.New),
		app.WithPlugin(gpushare.Name, gpushare.New),
		app.WithPlugin(gang.Name, gang.New),
		app.WithPlugin(priority.Name, priority.New),
	)
	os.Exit(cli.Run(cmd))
}
