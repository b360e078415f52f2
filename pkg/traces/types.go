package traces

import (
	"fmt"

	"kcloud.io/optimizer/pkg/model"
)

// TypicalCoverage is the share of a target workload's pods its typical pod types cover: the
// scheduler and the operator measure fragmentation against the same types.
const TypicalCoverage = 0.95

// TypicalPodTypes reads a trace (a file, or an embedded one such as OpenbDefaultPods) and returns
// the typical pod types that fragmentation is measured against.
func TypicalPodTypes(path string) ([]model.PodType, error) {
	trace, err := ReadPods(path)
	if err != nil {
		return nil, fmt.Errorf("reading the target workload %s: %w", path, err)
	}
	pods := make([]model.Pod, len(trace))
	for i, t := range trace {
		pods[i] = model.Pod{CPUMilli: t.CPUMilli, MemoryMiB: t.MemoryMiB, GPUCount: t.NumGPU, GPUMilli: t.GPUMilli, Models: t.Models}
	}
	return model.TypicalPodTypes(pods, TypicalCoverage), nil
}
