package catalog

import (
	"bytes"
	"embed"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// The embedded data files; data/SOURCES.md names the origin and licence of each.
//
//go:embed data/*.csv
var dataFS embed.FS

const (
	fileDevices   = "data/devices.csv"
	fileBoavizta  = "data/gpu_power_curve_boavizta.csv"
	fileAWSPrices = "data/aws_gpu_instances_pricing_vantage_2023.csv"
	fileGCPPrices = "data/gcp_gpu_instances_pricing_cyclenerd.csv"
	fileGCPAttach = "data/gcp_gpu_attach_pricing_skypilot.csv"
	// fileInstances2026 and fileAWSSpot2026 are written by us from cited upstream rows (data/SOURCES.md).
	fileInstances2026 = "data/instances_2026.csv"
	fileAWSSpot2026   = "data/aws_spot_2026.csv"
	fileCarbonMLCO2   = "data/cloud_region_carbon_intensity_mlco2.csv"
	fileCarbonAWS     = "data/grid_emissions_factors_aws_ccf.csv"
	fileCarbonGCP     = "data/grid_emissions_factors_gcp_ccf.csv"
)

// awsFamilyModel maps the AWS instance families of the price table to the catalog's models. Families
// whose accelerator is not in the catalog (g2, g3, g4ad, g5g, p2, inf1) are priced by the table but have
// no model.
var awsFamilyModel = map[string]string{
	"p3":    "V100",
	"p3dn":  "V100M32", // 8 x V100 32 GB
	"p4d":   "A100",
	"p4de":  "A100-80GB",
	"p5":    "H100",
	"g4dn":  "T4",
	"g5":    "A10G",
	"inf2":  "Inferentia2",
	"trn1":  "Trainium", // the table's gpu_model column says "AWS Inferentia" for trn1; the family decides
	"trn1n": "Trainium",
}

// table is a parsed CSV file: a header index and the records with their line numbers.
type table struct {
	name  string
	cols  map[string]int
	rows  [][]string
	lines []int
}

func parseCSV(name string, data []byte) (*table, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: reading header: %w", name, err)
	}
	t := &table{name: name, cols: map[string]int{}}
	for i, h := range header {
		t.cols[strings.TrimSpace(h)] = i
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := r.FieldPos(0)
		t.rows = append(t.rows, rec)
		t.lines = append(t.lines, line)
	}
	return t, nil
}

// readTable parses an embedded file and checks that it has the required columns.
func readTable(name string, required ...string) (*table, error) {
	data, err := dataFS.ReadFile(name)
	if err != nil {
		return nil, err
	}
	t, err := parseCSV(name, data)
	if err != nil {
		return nil, err
	}
	return t, t.require(required...)
}

// require checks that the header has the given columns.
func (t *table) require(cols ...string) error {
	for _, col := range cols {
		if _, ok := t.cols[col]; !ok {
			return fmt.Errorf("%s: no column %q", t.name, col)
		}
	}
	return nil
}

// get returns the trimmed value of a column, "" when the row is short.
func (t *table) get(row int, col string) (string, error) {
	i, ok := t.cols[col]
	if !ok {
		return "", fmt.Errorf("%s: no column %q", t.name, col)
	}
	if i >= len(t.rows[row]) {
		return "", nil
	}
	return strings.TrimSpace(t.rows[row][i]), nil
}

// float parses a column; empty gives 0 and ok=false.
func (t *table) float(row int, col string) (v float64, ok bool, err error) {
	s, err := t.get(row, col)
	if err != nil || s == "" {
		return 0, false, err
	}
	v, err = strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false, fmt.Errorf("%s line %d: column %s: invalid number %q", t.name, t.lines[row], col, s)
	}
	return v, true, nil
}

func load() (*Catalog, error) {
	c := &Catalog{
		devices:       map[string]DeviceSpec{},
		aliases:       map[string]string{},
		resources:     map[string][]string{},
		aws:           map[string]instancePrice{},
		gcp:           map[string]map[string]instancePrice{},
		gcpAttach:     map[string]map[string]attachPrice{},
		carbon:        map[string]carbonEntry{},
		defaultRegion: DefaultRegion,
		host:          defaultHost,
		green:         greenGPerKWh,
		greenSource:   greenSource,
		fallback:      fallbackGPerKWh,
		fallbackSrc:   fallbackSource,
	}
	curves, shape, err := loadBoavizta()
	if err != nil {
		return nil, err
	}
	c.shape = shape
	if err := c.loadDevices(curves, shape); err != nil {
		return nil, err
	}
	if err := c.loadAWSPrices(); err != nil {
		return nil, err
	}
	if err := c.loadAWSSpot2026(); err != nil {
		return nil, err
	}
	if err := c.loadGCPPrices(); err != nil {
		return nil, err
	}
	if err := c.loadInstances2026(); err != nil {
		return nil, err
	}
	if err := c.loadGCPAttach(); err != nil {
		return nil, err
	}
	if err := c.loadCarbon(); err != nil {
		return nil, err
	}
	return c, nil
}

// boaviztaUtil are the utilizations of the Boavizta columns watts_idle, 10pct, 50pct, 100pct.
var boaviztaUtil = []float64{0, 0.1, 0.5, 1}

// loadBoavizta returns the curve of each Boavizta row by name, and the mean of the rows' curves
// normalised by their 100% value (the shape used for devices without a curve).
func loadBoavizta() (map[string][]CurvePoint, []float64, error) {
	t, err := readTable(fileBoavizta, "name", "watts_idle", "watts_10pct", "watts_50pct", "watts_100pct")
	if err != nil {
		return nil, nil, err
	}
	cols := []string{"watts_idle", "watts_10pct", "watts_50pct", "watts_100pct"}
	curves := map[string][]CurvePoint{}
	shape := make([]float64, len(cols))
	for i := range t.rows {
		name, err := t.get(i, "name")
		if err != nil {
			return nil, nil, err
		}
		var pts []CurvePoint
		for j, col := range cols {
			v, ok, err := t.float(i, col)
			if err != nil {
				return nil, nil, err
			}
			if !ok {
				return nil, nil, fmt.Errorf("%s line %d: empty %s", t.name, t.lines[i], col)
			}
			pts = append(pts, CurvePoint{Utilization: boaviztaUtil[j], Watts: v})
		}
		top := pts[len(pts)-1].Watts
		for j := range pts {
			shape[j] += pts[j].Watts / top / float64(len(t.rows))
		}
		curves[name] = pts
	}
	if len(curves) == 0 {
		return nil, nil, fmt.Errorf("%s: no rows", t.name)
	}
	shape[len(shape)-1] = 1 // exactly, not a sum of rounded ratios
	return curves, shape, nil
}

// shapedCurve builds a curve from idle and max watts with the normalised shape: the points between
// idle and max sit where the mean Boavizta curve sits between its own idle and max. idle <= 0 means
// "unknown": it is taken from the shape (shape[0] x max).
func shapedCurve(idle, maxW float64, shape []float64) []CurvePoint {
	r0 := shape[0]
	if idle <= 0 {
		idle = r0 * maxW
	}
	pts := make([]CurvePoint, len(shape))
	for i, r := range shape {
		s := (r - r0) / (shape[len(shape)-1] - r0)
		pts[i] = CurvePoint{Utilization: boaviztaUtil[i], Watts: round3(idle + s*(maxW-idle))}
	}
	return pts
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func (c *Catalog) loadDevices(curves map[string][]CurvePoint, shape []float64) error {
	t, err := readTable(fileDevices, "model", "kind", "vendor", "resource", "product_label_key", "product_label", "aliases",
		"max_watts", "idle_watts", "curve_ref", "usd_per_hour", "spot_discount", "power_source", "price_source", "assumption")
	if err != nil {
		return err
	}
	for i := range t.rows {
		get := func(col string) string { v, _ := t.get(i, col); return v }
		line := t.lines[i]
		d := DeviceSpec{
			Model:           get("model"),
			Kind:            AcceleratorKind(get("kind")),
			Vendor:          get("vendor"),
			Resource:        get("resource"),
			ProductLabelKey: get("product_label_key"),
			ProductLabel:    get("product_label"),
			Assumption:      get("assumption"),
		}
		if d.Model == "" {
			return fmt.Errorf("%s line %d: empty model", t.name, line)
		}
		maxW, _, err := t.float(i, "max_watts")
		if err != nil {
			return err
		}
		idleW, _, err := t.float(i, "idle_watts")
		if err != nil {
			return err
		}
		if ref := get("curve_ref"); ref != "" {
			pts, ok := curves[ref]
			if !ok {
				return fmt.Errorf("%s line %d: curve_ref %q is not a row of %s", t.name, line, ref, fileBoavizta)
			}
			d.Curve = append([]CurvePoint(nil), pts...)
			if maxW != d.Curve[len(d.Curve)-1].Watts || idleW != d.Curve[0].Watts {
				return fmt.Errorf("%s line %d: idle/max %g/%g disagree with the %s curve %g/%g", t.name, line,
					idleW, maxW, ref, d.Curve[0].Watts, d.Curve[len(d.Curve)-1].Watts)
			}
		} else {
			if maxW <= 0 {
				return fmt.Errorf("%s line %d: model %s needs max_watts or curve_ref", t.name, line, d.Model)
			}
			d.Curve = shapedCurve(idleW, maxW, shape)
		}
		d.IdleWatts = d.Curve[0].Watts
		d.MaxWatts = d.Curve[len(d.Curve)-1].Watts
		if d.PricePerHourUSD, _, err = t.float(i, "usd_per_hour"); err != nil {
			return err
		}
		if d.SpotDiscount, _, err = t.float(i, "spot_discount"); err != nil {
			return err
		}
		d.Source = "power: " + get("power_source") + "; price: " + get("price_source")
		for _, a := range strings.Split(get("aliases"), "|") {
			if a = normalizeName(a); a != "" {
				d.Aliases = append(d.Aliases, a)
			}
		}
		if err := validateDevice(d); err != nil {
			return fmt.Errorf("%s line %d: %w", t.name, line, err)
		}
		if _, dup := c.devices[d.Model]; dup {
			return fmt.Errorf("%s line %d: duplicate model %s", t.name, line, d.Model)
		}
		c.devices[d.Model] = d
		c.models = append(c.models, d.Model)
		c.resources[d.Resource] = append(c.resources[d.Resource], d.Model)
	}
	sort.Strings(c.models)
	for _, ms := range c.resources {
		sort.Strings(ms)
	}
	// Canonical names first, so that no alias can shadow a model; then aliases and product labels.
	for _, m := range c.models {
		c.aliases[normalizeName(m)] = m
	}
	for _, m := range c.models {
		d := c.devices[m]
		names := append([]string{normalizeName(d.ProductLabel)}, d.Aliases...)
		for _, a := range names {
			if a == "" {
				continue
			}
			if prev, ok := c.aliases[a]; ok && prev != m {
				return fmt.Errorf("%s: name %q is claimed by both %s and %s", t.name, a, prev, m)
			}
			c.aliases[a] = m
		}
	}
	return nil
}

func validateDevice(d DeviceSpec) error {
	switch {
	case d.Kind != KindGPU && d.Kind != KindNPU:
		return fmt.Errorf("model %s: kind %q is neither gpu nor npu", d.Model, d.Kind)
	case d.Resource == "":
		return fmt.Errorf("model %s: empty resource", d.Model)
	case !(d.IdleWatts >= 0 && d.IdleWatts < d.MaxWatts):
		return fmt.Errorf("model %s: need 0 <= idle watts (%g) < max watts (%g)", d.Model, d.IdleWatts, d.MaxWatts)
	case !(d.PricePerHourUSD >= 0):
		return fmt.Errorf("model %s: negative price %g", d.Model, d.PricePerHourUSD)
	case !(d.SpotDiscount > 0 && d.SpotDiscount <= 1):
		return fmt.Errorf("model %s: spot discount %g not in (0, 1]", d.Model, d.SpotDiscount)
	}
	if d.Curve[0].Utilization != 0 || d.Curve[len(d.Curve)-1].Utilization != 1 {
		return fmt.Errorf("model %s: curve must run from utilization 0 to 1", d.Model)
	}
	for i := 1; i < len(d.Curve); i++ {
		if d.Curve[i].Utilization <= d.Curve[i-1].Utilization || d.Curve[i].Watts < d.Curve[i-1].Watts {
			return fmt.Errorf("model %s: curve not increasing at point %d", d.Model, i)
		}
	}
	return nil
}

func (c *Catalog) loadAWSPrices() error {
	t, err := readTable(fileAWSPrices, "instance_type", "gpu_count", "vcpus", "memory_gib", "ondemand_usd_per_hour",
		"spot_min_usd_per_hour", "spot_max_usd_per_hour")
	if err != nil {
		return err
	}
	for i := range t.rows {
		it, err := t.get(i, "instance_type")
		if err != nil {
			return err
		}
		row := instancePrice{InstanceType: it, Provider: "aws", Region: "us-east-1"}
		var count float64
		for _, f := range []struct {
			col string
			dst *float64
		}{
			{"gpu_count", &count}, {"vcpus", &row.VCPUs}, {"memory_gib", &row.MemoryGiB},
			{"ondemand_usd_per_hour", &row.OnDemand},
		} {
			if *f.dst, _, err = t.float(i, f.col); err != nil {
				return err
			}
		}
		// The export's spot minimum is the lowest us-east-1 availability-zone price, the same rule as
		// aws_spot_2026.csv, which replaces it where a newer figure was read. The maximum is not a
		// price anyone is offered in general, so it is not used.
		lo, okLo, err := t.float(i, "spot_min_usd_per_hour")
		if err != nil {
			return err
		}
		if okLo {
			row.Spot, row.SpotNote = lo, "vantage 2023 export spot minimum (lowest us-east-1 AZ)"
		}
		family, _, _ := strings.Cut(it, ".")
		if m, ok := awsFamilyModel[family]; ok {
			row.Model, row.Count = m, int(count)
		}
		if row.OnDemand <= 0 {
			return fmt.Errorf("%s line %d: no on-demand price for %s", t.name, t.lines[i], it)
		}
		c.aws[strings.ToLower(it)] = row
	}
	return nil
}

// loadAWSSpot2026 replaces the spot price of AWS table rows by the provider's newer figure: the lowest
// SpotPrice of the instance type's us-east-1 availability zones in the skypilot-catalog snapshot that
// each row's source names. A row for an instance type the AWS table lacks, for another region, or
// listed twice is an error: the file must not add instance types or shadow itself silently.
func (c *Catalog) loadAWSSpot2026() error {
	t, err := readTable(fileAWSSpot2026, awsSpotColumns...)
	if err != nil {
		return err
	}
	return c.addAWSSpot(t)
}

var awsSpotColumns = []string{"instance_type", "region", "spot_usd_per_hour", "source"}

// addAWSSpot applies a parsed spot table (see loadAWSSpot2026); tests feed it malformed tables.
func (c *Catalog) addAWSSpot(t *table) error {
	seen := map[string]int{}
	for i := range t.rows {
		line := t.lines[i]
		it, _ := t.get(i, "instance_type")
		region, _ := t.get(i, "region")
		src, _ := t.get(i, "source")
		key := strings.ToLower(it)
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("%s line %d: instance_type %s already has a spot price on line %d", t.name, line, it, prev)
		}
		seen[key] = line
		row, ok := c.aws[key]
		if !ok {
			return fmt.Errorf("%s line %d: instance_type %s is not in %s", t.name, line, it, fileAWSPrices)
		}
		if !strings.EqualFold(region, row.Region) {
			return fmt.Errorf("%s line %d: region %q: the AWS table is %s only", t.name, line, region, row.Region)
		}
		spot, ok, err := t.float(i, "spot_usd_per_hour")
		if err != nil {
			return err
		}
		if !ok || spot <= 0 || spot > row.OnDemand {
			return fmt.Errorf("%s line %d: spot_usd_per_hour %q must be above 0 and at most the on-demand price %g", t.name, line, fieldOf(t, i, "spot_usd_per_hour"), row.OnDemand)
		}
		if src == "" {
			return fmt.Errorf("%s line %d: empty source", t.name, line)
		}
		row.Spot, row.SpotNote = spot, src
		c.aws[key] = row
	}
	return nil
}

// loadInstances2026 adds the instance types of data/instances_2026.csv to the AWS and GCP tables. An
// instance type (AWS) or instance type and region (GCP) that a table already has is an error, so that
// no copied row is overridden silently; so is an accelerator model the catalog does not know.
func (c *Catalog) loadInstances2026() error {
	t, err := readTable(fileInstances2026, instanceColumns...)
	if err != nil {
		return err
	}
	return c.addInstances(t)
}

var instanceColumns = []string{"provider", "instance_type", "region", "accelerator_model", "accelerator_count",
	"vcpus", "memory_gib", "ondemand_usd_per_hour", "spot_usd_per_hour", "source"}

// addInstances adds a parsed instance table (see loadInstances2026); tests feed it malformed tables.
func (c *Catalog) addInstances(t *table) error {
	var err error
	for i := range t.rows {
		line := t.lines[i]
		provider, _ := t.get(i, "provider")
		it, _ := t.get(i, "instance_type")
		region, _ := t.get(i, "region")
		model, _ := t.get(i, "accelerator_model")
		src, _ := t.get(i, "source")
		if it == "" || region == "" || src == "" {
			return fmt.Errorf("%s line %d: instance_type, region and source are required", t.name, line)
		}
		row := instancePrice{InstanceType: it, Provider: provider, Region: region}
		if model != "" {
			canon, ok := c.resolve(model)
			if !ok {
				return fmt.Errorf("%s line %d: accelerator_model %q is not a catalog model", t.name, line, model)
			}
			row.Model = canon
		}
		var count float64
		for _, f := range []struct {
			col string
			dst *float64
		}{
			{"accelerator_count", &count}, {"vcpus", &row.VCPUs}, {"memory_gib", &row.MemoryGiB},
			{"ondemand_usd_per_hour", &row.OnDemand}, {"spot_usd_per_hour", &row.Spot},
		} {
			if *f.dst, _, err = t.float(i, f.col); err != nil {
				return err
			}
		}
		if row.Model != "" && (count < 1 || count != math.Trunc(count)) {
			return fmt.Errorf("%s line %d: accelerator_count %q must be a whole number of devices", t.name, line, fieldOf(t, i, "accelerator_count"))
		}
		row.Count = int(count)
		if row.OnDemand <= 0 {
			return fmt.Errorf("%s line %d: ondemand_usd_per_hour %q must be above 0", t.name, line, fieldOf(t, i, "ondemand_usd_per_hour"))
		}
		if row.Spot < 0 || row.Spot > row.OnDemand {
			return fmt.Errorf("%s line %d: spot_usd_per_hour %q must be between 0 and the on-demand price", t.name, line, fieldOf(t, i, "spot_usd_per_hour"))
		}
		if row.Spot > 0 {
			row.SpotNote = src
		}
		key := strings.ToLower(it)
		switch provider {
		case "aws":
			if !strings.EqualFold(region, DefaultRegion) {
				return fmt.Errorf("%s line %d: region %q: AWS rows are priced for %s only", t.name, line, region, DefaultRegion)
			}
			if _, dup := c.aws[key]; dup {
				return fmt.Errorf("%s line %d: instance_type %s is already in the AWS table", t.name, line, it)
			}
			c.aws[key] = row
		case "gcp":
			if _, dup := c.gcp[key][strings.ToLower(region)]; dup {
				return fmt.Errorf("%s line %d: instance_type %s in %s is already in the GCP table", t.name, line, it, region)
			}
			if c.gcp[key] == nil {
				c.gcp[key] = map[string]instancePrice{}
			}
			c.gcp[key][strings.ToLower(region)] = row
		default:
			return fmt.Errorf("%s line %d: provider %q is neither aws nor gcp", t.name, line, provider)
		}
	}
	return nil
}

// fieldOf returns a cell as written, for error messages.
func fieldOf(t *table, row int, col string) string {
	v, _ := t.get(row, col)
	return v
}

func (c *Catalog) loadGCPPrices() error {
	t, err := readTable(fileGCPPrices, "instance_type", "gpu_model", "gpu_count", "vcpus", "memory_gib", "region",
		"ondemand_usd_per_hour", "spot_usd_per_hour")
	if err != nil {
		return err
	}
	for i := range t.rows {
		it, _ := t.get(i, "instance_type")
		region, _ := t.get(i, "region")
		gpuModel, _ := t.get(i, "gpu_model")
		row := instancePrice{InstanceType: it, Provider: "gcp", Region: region}
		var count float64
		for _, f := range []struct {
			col string
			dst *float64
		}{
			{"gpu_count", &count}, {"vcpus", &row.VCPUs}, {"memory_gib", &row.MemoryGiB},
			{"ondemand_usd_per_hour", &row.OnDemand}, {"spot_usd_per_hour", &row.Spot},
		} {
			if *f.dst, _, err = t.float(i, f.col); err != nil {
				return err
			}
		}
		if row.Spot > 0 {
			row.SpotNote = "GCP spot price"
		}
		// Fractional GPUs (g4 shares of an RTX PRO 6000) are not modelled: such rows keep no model.
		if m, ok := c.resolve(gpuModel); ok && count >= 1 && count == math.Trunc(count) {
			row.Model, row.Count = m, int(count)
		}
		if row.OnDemand <= 0 || it == "" || region == "" {
			return fmt.Errorf("%s line %d: incomplete row", t.name, t.lines[i])
		}
		key := strings.ToLower(it)
		if c.gcp[key] == nil {
			c.gcp[key] = map[string]instancePrice{}
		}
		c.gcp[key][strings.ToLower(region)] = row
	}
	return nil
}

func (c *Catalog) loadGCPAttach() error {
	t, err := readTable(fileGCPAttach, "gpu_model", "region", "ondemand_usd_per_hour", "spot_usd_per_hour")
	if err != nil {
		return err
	}
	for i := range t.rows {
		gm, _ := t.get(i, "gpu_model")
		region, _ := t.get(i, "region")
		model, ok := c.resolve(gm)
		if !ok { // P4: not in the catalog
			continue
		}
		od, _, err := t.float(i, "ondemand_usd_per_hour")
		if err != nil {
			return err
		}
		spot, _, err := t.float(i, "spot_usd_per_hour")
		if err != nil {
			return err
		}
		if c.gcpAttach[model] == nil {
			c.gcpAttach[model] = map[string]attachPrice{}
		}
		c.gcpAttach[model][strings.ToLower(region)] = attachPrice{OnDemand: od, Spot: spot}
	}
	return nil
}

// loadCarbon reads the Cloud Carbon Footprint grid factors (AWS, GCP) and then the mlco2 impact table
// for regions CCF does not cover. The CCF Azure file is not used: two of its rows are malformed
// (Finland Central, Germany West Central); Azure regions come from mlco2.
func (c *Catalog) loadCarbon() error {
	for _, f := range []struct{ file, provider string }{{fileCarbonAWS, "aws"}, {fileCarbonGCP, "gcp"}} {
		t, err := readTable(f.file, "Region", "CO2e (metric ton/kWh)", "Source")
		if err != nil {
			return err
		}
		for i := range t.rows {
			region, err := t.get(i, "Region")
			if err != nil {
				return err
			}
			v, ok, err := t.float(i, "CO2e (metric ton/kWh)")
			if err != nil {
				return err
			}
			if !ok || region == "" {
				return fmt.Errorf("%s line %d: incomplete row", t.name, t.lines[i])
			}
			src, _ := t.get(i, "Source")
			g := math.Round(v*1e12) / 1e6 // metric ton/kWh -> g/kWh, rounded to 1e-6 g
			c.carbon[strings.ToLower(region)] = carbonEntry{Region: region, GPerKWh: g,
				Source: fmt.Sprintf("Cloud Carbon Footprint grid factor (%s %s, source %s)", f.provider, region, src)}
		}
	}
	t, err := readTable(fileCarbonMLCO2, "provider", "region", "impact", "source")
	if err != nil {
		return err
	}
	for i := range t.rows {
		provider, _ := t.get(i, "provider")
		region, _ := t.get(i, "region")
		v, ok, err := t.float(i, "impact")
		if err != nil {
			return err
		}
		key := strings.ToLower(region)
		if region == "" || !ok {
			continue // scaleway has no region
		}
		if _, done := c.carbon[key]; done {
			continue
		}
		src, _ := t.get(i, "source")
		if len(src) > 80 {
			src = src[:80] + "..."
		}
		c.carbon[key] = carbonEntry{Region: region, GPerKWh: v,
			Source: fmt.Sprintf("mlco2 impact.csv (%s %s, source %s)", provider, region, src)}
	}
	return nil
}
