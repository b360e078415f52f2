// Package catalog holds the facts the scheduler, the operator and the simulator need about a node:
// what it costs per hour, how much power its accelerators and its host draw, and how carbon-intensive
// the electricity of its region is.
//
// The defaults are embedded CSV files under data/ (public data, origins and licences in
// data/SOURCES.md); nothing is read from disk or network at run time. Overrides come from node
// annotations (see FactsFromNode) and from a ConfigMap's data (see WithConfigMap).
//
// # Price (USD per hour)
//
// Price applies the first rule that matches:
//  1. the node annotation kcloud.io/price-per-hour;
//  2. a prices.csv row of the ConfigMap for the instance type, capacity type and region;
//  3. a known instance type: the AWS us-east-1 list price (Linux, on-demand) or the GCP price for the
//     node's region (us-central1 when the region is not in the table). AWS spot is one provider figure,
//     the lowest spot price among the instance type's us-east-1 availability zones: from the
//     skypilot-catalog v8 snapshot in data/aws_spot_2026.csv and data/instances_2026.csv where it was
//     read, else the vantage export's spot minimum (the same rule on its 2023 snapshot). A row without
//     a spot figure is priced at on-demand x its device's SpotDiscount. data/instances_2026.csv adds
//     instance types (p5en, p6-b200, g6e) and may not repeat one the copied tables have;
//  4. the per-device price x accelerator count plus the host (vCPU and GiB at the GCP N2/A2 list rates,
//     USD 0.031611 per vCPU-hour and 0.004237 per GiB-hour); on spot capacity the sum is multiplied by the
//     device's SpotDiscount. A CPU-only node is priced by its host alone (spot: x 0.562, the spot/on-demand
//     ratio of the host increment between g2-standard-8 and g2-standard-4 in us-central1).
//
// Per-device prices come from GCP attach prices where they exist (T4, P100, V100), otherwise from an
// instance price minus its host share (A100, H100, L4, A10G, H200, B200, L40S, RTX PRO 6000, ...) or a
// published per-chip price (TPU v5e/v5p/v6e); devices without any public price in the data (MI300X,
// MI325X, MI355X, Gaudi2/3, ATOM, RNGD, GB200, B300, H100 NVL, H20, L40, Trainium2) are priced as the
// device they are positioned against, which each DeviceSpec's Assumption states.
//
// # Power (watts)
//
// A device draws DeviceSpec.WattsAt(u) at utilization u, linear between the points of its curve. Curves
// are the Boavizta idle/10/50/100% points where they exist (T4, V100, A100); any other device gets its
// public TDP (or, for Trainium, Inferentia2, Trainium2 and the TPUs, whose makers publish none, the
// figure its Assumption states) as the 100% point, and its idle, 10% and 50% points from the mean normalised shape of the
// seven Boavizta curves (idle about 11% of the maximum). The host (CPU, memory, board) draws
// HostPower: 1.171 W per vCPU + 0.216 W per GiB when idle and 2.984 W per vCPU + 1.166 W per GiB at
// 100% CPU, a least-squares fit of instance minus GPU power over the Teads/Cloud Carbon Footprint AWS
// GPU instance table. Neither includes datacentre overhead (PUE).
//
// # Carbon intensity (gCO2/kWh)
//
// CarbonIntensity applies the first rule that matches: the annotation kcloud.io/carbon-intensity; a
// node labelled kcloud.io/green-energy=true (29.5 g, the mean of the IPCC AR5 WGIII Annex III lifecycle
// medians for onshore wind, 11, and utility-scale solar PV, 48); the region's grid factor (Cloud Carbon
// Footprint first, then the mlco2 impact table; an empty region means DefaultRegion); otherwise 475 g, the
// world average of electricity generation in 2018 (IEA Global Energy & CO2 Status Report 2018).
package catalog
