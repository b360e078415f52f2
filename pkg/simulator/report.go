package simulator

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
)

// palette gives each policy a stable colour.
var palette = []string{"#8c8c8c", "#d62728", "#ff7f0e", "#bcbd22", "#9467bd", "#8c564b", "#e377c2", "#1f77b4", "#2ca02c"}

func colour(i int) string { return palette[i%len(palette)] }

// WriteHTMLReport writes a self-contained page (inline SVG, no scripts or external files) with the
// results: GPU allocation against arrival per policy for inflate runs, and bars of cost, power,
// energy and carbon per policy.
func WriteHTMLReport(w io.Writer, title, subtitle string, results []Result) error {
	type bar struct{ Title, Unit, SVG template.HTML }
	data := struct {
		Title, Subtitle string
		Curve           template.HTML
		Bars            []bar
		Table           template.HTML
	}{Title: title, Subtitle: subtitle}
	if len(results) > 0 && results[0].Mode == ModeInflate {
		data.Curve = allocationChart(results)
		data.Bars = []bar{
			{"GPU allocation at 100% arrival", "%", barChart(results, func(r Result) float64 { return r.AllocPct100 }, "%.2f")},
			{"Cluster cost while filling (mean over arrival 0-100%)", "USD/h", barChart(results, func(r Result) float64 { return r.CostMean }, "%.0f")},
			{"Cluster power while filling (mean over arrival 0-100%)", "kW", barChart(results, func(r Result) float64 { return r.PowerKWMean }, "%.1f")},
		}
	} else {
		data.Bars = []bar{
			{"Cost", "USD", barChart(results, func(r Result) float64 { return r.CostUSD }, "%.0f")},
			{"Energy", "kWh", barChart(results, func(r Result) float64 { return r.EnergyKWh }, "%.0f")},
			{"Carbon", "kg CO2", barChart(results, func(r Result) float64 { return r.CarbonKg }, "%.0f")},
			{"Node-hours", "h", barChart(results, func(r Result) float64 { return r.NodeHours }, "%.0f")},
		}
	}
	var tb strings.Builder
	if err := WriteTable(&tb, results); err != nil {
		return err
	}
	data.Table = template.HTML(template.HTMLEscapeString(tb.String()))
	return reportTemplate.Execute(w, data)
}

var reportTemplate = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1000px;color:#222}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem} .sub{color:#666}
pre{background:#f6f6f6;padding:1rem;overflow-x:auto} svg text{font-size:12px}
</style></head><body>
<h1>{{.Title}}</h1><p class="sub">{{.Subtitle}}</p>
{{if .Curve}}<h2>GPU allocation as the workload arrives</h2>{{.Curve}}{{end}}
{{range .Bars}}<h2>{{.Title}} ({{.Unit}})</h2>{{.SVG}}{{end}}
<h2>All figures</h2><pre>{{.Table}}</pre>
</body></html>
`))

func allocationChart(results []Result) template.HTML {
	const W, H, left, bottom, top, right = 900.0, 420.0, 50.0, 40.0, 10.0, 170.0
	pw, ph := W-left-right, H-top-bottom
	lo := 60.0 // allocation below 60% is never the interesting part
	x := func(a float64) float64 { return left + a/130*pw }
	y := func(v float64) float64 { return top + ph - (v-lo)/(100-lo)*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" role="img" aria-label="GPU allocation versus arrival">`, W, H)
	for v := lo; v <= 100; v += 10 {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%.0f%%</text>`, left, left+pw, y(v), y(v), left-6, y(v)+4, v)
	}
	for a := 0.0; a <= 130; a += 10 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%.0f%%</text>`, x(a), top+ph+16, a)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">arrived GPU request, %% of capacity</text>`, left+pw/2, H-4)
	for i, r := range results {
		var pts []string
		for a, v := range r.AllocCurve {
			if !math.IsNaN(v) && v >= lo {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(float64(a)), y(v)))
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, colour(i), strings.Join(pts, " "))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/><text x="%.1f" y="%.1f">%s (%.2f%%)</text>`,
			left+pw+12, top+float64(i)*20, colour(i), left+pw+30, top+float64(i)*20+11, template.HTMLEscapeString(r.Policy), r.AllocPct100)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func barChart(results []Result, value func(Result) float64, format string) template.HTML {
	const W, rowH, left = 900.0, 24.0, 130.0
	maxV := 0.0
	for _, r := range results {
		if v := value(r); !math.IsNaN(v) {
			maxV = math.Max(maxV, v)
		}
	}
	H := rowH*float64(len(results)) + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f">`, W, H)
	for i, r := range results {
		v := value(r)
		yy := 5 + float64(i)*rowH
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left-8, yy+15, template.HTMLEscapeString(r.Policy))
		if math.IsNaN(v) || maxV == 0 {
			continue
		}
		w := v / maxV * (W - left - 120)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/><text x="%.1f" y="%.1f">`+format+`</text>`,
			left, yy, w, rowH-6, colour(i), left+w+6, yy+15, v)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
