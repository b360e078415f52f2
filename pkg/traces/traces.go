// Package traces reads cluster traces: node lists and pod lists in the Alibaba openb format used by
// the FGD paper, and the Alibaba DLRM inference instance trace. The openb default pod list and both
// openb node lists are embedded (see data/SOURCES.md for their origin and licence).
package traces

import (
	"bytes"
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

//go:embed data/*.csv
var embedded embed.FS

// Embedded trace names, usable wherever a file path is accepted.
const (
	OpenbDefaultPods = "embedded:openb_pod_list_default.csv"
	OpenbGPUNodes    = "embedded:openb_node_list_gpu_node.csv"
	OpenbAllNodes    = "embedded:openb_node_list_all_node.csv"
	DLRMFleet        = "embedded:dlrm_fleet.csv"
)

// NoTime marks a creation or deletion time outside the trace window.
const NoTime = -1

// Node is one node of a node list.
type Node struct {
	Name      string
	CPUMilli  int64
	MemoryMiB int64
	GPUs      int
	Model     string // accelerator model; empty for CPU-only nodes
}

// Pod is one pod (or instance) of a trace.
type Pod struct {
	Name      string
	CPUMilli  int64
	MemoryMiB int64
	NumGPU    int
	GPUMilli  int64    // per device; 1000 for whole devices
	Models    []string // allowed accelerator models; empty: any
	Created   int64    // seconds from the trace start, NoTime when before the window
	Deleted   int64    // seconds from the trace start, NoTime when after the window
}

// open returns the content of an embedded trace or a file.
func open(path string) ([]byte, error) {
	if name, ok := strings.CutPrefix(path, "embedded:"); ok {
		return embedded.ReadFile("data/" + name)
	}
	return os.ReadFile(path)
}

// table is a CSV file whose columns are looked up by header name.
type table struct {
	path   string
	r      *csv.Reader
	col    map[string]int
	record []string
}

func openTable(path string, required ...string) (*table, error) {
	b, err := open(path)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s:1: reading header: %w", path, err)
	}
	t := &table{path: path, r: r, col: map[string]int{}}
	for i, h := range header {
		t.col[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	for _, c := range required {
		if _, ok := t.col[c]; !ok {
			return nil, fmt.Errorf("%s:1: missing column %q (header: %s)", path, c, strings.Join(header, ","))
		}
	}
	return t, nil
}

// next reads a record; it returns io.EOF at the end.
func (t *table) next() error {
	rec, err := t.r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("%s:%d: %w", t.path, pe.StartLine, pe.Err)
		}
		return fmt.Errorf("%s: %w", t.path, err)
	}
	t.record = rec
	return nil
}

func (t *table) errorf(column, format string, args ...any) error {
	line, _ := t.r.FieldPos(0)
	return fmt.Errorf("%s:%d: column %s: %s", t.path, line, column, fmt.Sprintf(format, args...))
}

func (t *table) str(column string) string {
	i, ok := t.col[column]
	if !ok || i >= len(t.record) {
		return ""
	}
	return strings.TrimSpace(t.record[i])
}

func (t *table) int(column string) (int64, error) {
	s := t.str(column)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, t.errorf(column, "want a non-negative integer, got %q", s)
	}
	return v, nil
}

// float parses a non-negative number; empty or NaN gives ok=false.
func (t *table) float(column string) (v float64, ok bool, err error) {
	s := t.str(column)
	if s == "" || strings.EqualFold(s, "nan") {
		return 0, false, nil
	}
	v, err = strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) {
		return 0, false, t.errorf(column, "want a non-negative number, got %q", s)
	}
	return v, true, nil
}

// whole converts a column's figure, already scaled, to an integer; one too large for an int64 is an
// error (a float conversion out of range would give a negative number).
func (t *table) whole(column string, v float64) (int64, error) {
	if v >= math.MaxInt64 { // 2^63 as a float64, the first value an int64 cannot hold
		return 0, t.errorf(column, "%q is too large", t.str(column))
	}
	return int64(v), nil
}

// ReadNodes reads an openb node list (sn, cpu_milli, memory_mib, gpu, model).
func ReadNodes(path string) ([]Node, error) {
	t, err := openTable(path, "sn", "cpu_milli", "memory_mib", "gpu")
	if err != nil {
		return nil, err
	}
	var nodes []Node
	for {
		if err := t.next(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		n := Node{Name: t.str("sn"), Model: t.str("model")}
		if n.CPUMilli, err = t.int("cpu_milli"); err != nil {
			return nil, err
		}
		if n.MemoryMiB, err = t.int("memory_mib"); err != nil {
			return nil, err
		}
		g, err := t.int("gpu")
		if err != nil {
			return nil, err
		}
		if g > 16 {
			return nil, t.errorf("gpu", "at most 16 devices per node, got %d", g)
		}
		n.GPUs = int(g)
		if n.GPUs > 0 && n.Model == "" {
			return nil, t.errorf("model", "a node with %d GPUs needs a model", n.GPUs)
		}
		nodes = append(nodes, n)
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%s: no nodes", path)
	}
	return nodes, nil
}

// ReadPods reads a pod list: the openb format (name, cpu_milli, memory_mib, num_gpu, gpu_milli and
// optionally gpu_spec, creation_time, deletion_time) or the DLRM instance format (instance_sn,
// cpu_request in cores, memory_request in GiB, gpu_request in whole GPUs, creation_time,
// deletion_time), told apart by the header.
func ReadPods(path string) ([]Pod, error) {
	b, err := open(path)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(b, []byte("instance_sn")) {
		return readDLRM(path)
	}
	return readOpenb(path)
}

func readOpenb(path string) ([]Pod, error) {
	t, err := openTable(path, "name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
	if err != nil {
		return nil, err
	}
	var pods []Pod
	for {
		if err := t.next(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		p := Pod{Name: t.str("name"), Created: NoTime, Deleted: NoTime}
		if p.CPUMilli, err = t.int("cpu_milli"); err != nil {
			return nil, err
		}
		if p.MemoryMiB, err = t.int("memory_mib"); err != nil {
			return nil, err
		}
		n, err := t.int("num_gpu")
		if err != nil {
			return nil, err
		}
		p.NumGPU = int(n)
		if p.GPUMilli, err = t.int("gpu_milli"); err != nil {
			return nil, err
		}
		switch {
		case p.NumGPU == 0:
			p.GPUMilli = 0
		case p.GPUMilli == 0 || p.GPUMilli > 1000:
			return nil, t.errorf("gpu_milli", "want 1..1000 for a pod with %d GPUs, got %d", p.NumGPU, p.GPUMilli)
		case p.NumGPU > 1 && p.GPUMilli != 1000:
			return nil, t.errorf("gpu_milli", "a pod with %d GPUs takes whole GPUs (1000), got %d", p.NumGPU, p.GPUMilli)
		}
		if spec := t.str("gpu_spec"); spec != "" {
			p.Models = strings.Split(spec, "|")
		}
		if err := readTimes(t, &p); err != nil {
			return nil, err
		}
		pods = append(pods, p)
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("%s: no pods", path)
	}
	return pods, nil
}

func readTimes(t *table, p *Pod) error {
	for _, tm := range []struct {
		column string
		to     *int64
	}{{"creation_time", &p.Created}, {"deletion_time", &p.Deleted}} {
		v, ok, err := t.float(tm.column)
		if err != nil {
			return err
		}
		if ok {
			if *tm.to, err = t.whole(tm.column, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func readDLRM(path string) ([]Pod, error) {
	t, err := openTable(path, "instance_sn", "cpu_request", "memory_request", "gpu_request", "creation_time", "deletion_time")
	if err != nil {
		return nil, err
	}
	var pods []Pod
	for {
		if err := t.next(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		p := Pod{Name: t.str("instance_sn"), Created: NoTime, Deleted: NoTime}
		cpu, _, err := t.float("cpu_request")
		if err != nil {
			return nil, err
		}
		mem, _, err := t.float("memory_request")
		if err != nil {
			return nil, err
		}
		gpu, _, err := t.float("gpu_request")
		if err != nil {
			return nil, err
		}
		if gpu != math.Trunc(gpu) {
			return nil, t.errorf("gpu_request", "want whole GPUs, got %v", gpu)
		}
		if p.CPUMilli, err = t.whole("cpu_request", math.Round(cpu*1000)); err != nil {
			return nil, err
		}
		if p.MemoryMiB, err = t.whole("memory_request", math.Round(mem*1024)); err != nil {
			return nil, err
		}
		n, err := t.whole("gpu_request", gpu)
		if err != nil {
			return nil, err
		}
		p.NumGPU = int(n)
		if p.NumGPU > 0 {
			p.GPUMilli = 1000
		}
		if err := readTimes(t, &p); err != nil {
			return nil, err
		}
		pods = append(pods, p)
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("%s: no pods", path)
	}
	return pods, nil
}

// ScaleFleet returns a fleet factor times the size of nodes with the same mix: for each distinct
// node shape (CPU, memory, GPUs, model), round(factor x count) nodes, named <name>-<copy> beyond the
// originals. A factor of 1 returns nodes unchanged.
func ScaleFleet(nodes []Node, factor float64) []Node {
	if factor == 1 {
		return nodes
	}
	type shape struct {
		cpu, mem int64
		gpus     int
		model    string
	}
	groups := map[shape][]Node{}
	var order []shape
	for _, n := range nodes {
		k := shape{n.CPUMilli, n.MemoryMiB, n.GPUs, n.Model}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], n)
	}
	var out []Node
	for _, k := range order {
		g := groups[k]
		want := int(math.Round(factor * float64(len(g))))
		for i := 0; i < want; i++ {
			n := g[i%len(g)]
			if i >= len(g) {
				n.Name = fmt.Sprintf("%s-%d", n.Name, i/len(g))
			}
			out = append(out, n)
		}
	}
	return out
}
