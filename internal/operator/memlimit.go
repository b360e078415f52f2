package operator

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// SoftMemoryShare is the part of the container's memory limit the Go runtime aims to stay under:
// close to the limit, so the collector runs harder only when memory is really short, with room
// left for what the runtime does not count (binary, thread stacks outside the heap).
const SoftMemoryShare = 0.85

// SetSoftMemoryLimit sets the runtime's soft memory limit to SoftMemoryShare of the cgroup's memory
// limit (cgroup v2 memory.max or v1 memory.limit_in_bytes under cgroupRoot), unless GOMEMLIMIT is
// set or there is no limit. It returns the limit set in bytes, 0 when none. Without it, a
// container's heap grows to twice the live heap before a collection (GOGC=100) whatever the limit.
func SetSoftMemoryLimit(cgroupRoot string) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit := cgroupMemoryLimit(cgroupRoot)
	if limit <= 0 {
		return 0
	}
	soft := int64(float64(limit) * SoftMemoryShare)
	debug.SetMemoryLimit(soft)
	return soft
}

// cgroupMemoryLimit reads the memory limit of the process's cgroup in bytes; 0 when unlimited or
// unreadable.
func cgroupMemoryLimit(root string) int64 {
	for _, f := range []string{"memory.max", "memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		// cgroup v1 reports "no limit" as a page-rounded maximum int64.
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0
		}
		return n
	}
	return 0
}
