// Package catalog holds the facts the scheduler, the operator and the simulator need about a node:
// what it costs per hour, how much power its accelerators and its host draw, and how carbon-intensive
// the electricity of its region is.
//
// The defaults are embedded CSV files under data/ (public data, origins and licences in
// data/SOURCES.md); nothing is read from disk or network at run time. The user's prices come on top,
// in layers: a catalog ConfigMap's data (WithConfigMap; keys and columns in configmap.go and
// docs/CATALOG.md), a price source's node prices (WithNodePrices, e.g. OpenCost's), and node
// annotations (see FactsFromNode). A Store holds the catalog in force for kcloud-scheduler and
// kcloud-operator alike, with a generation that moves whenever the ConfigMaps change it.
//
// # Price (USD per hour)
//
// Price applies the first rule that matches:
//  1. the node annotation kcloud.io/price-per-hour;
//  2. a prices.csv row of the ConfigMap for the instance type, capacity type and region;
//  3. the price source layer's price for the node, by name (its Source, e.g. "opencost", is the
//     price's);
//  4. a known instance type: the AWS us-east-1 list price (Linux, on-demand) or the GCP price for the
//     node's region (us-central1 when the region is not in the table). AWS spot is one provider figure,
//     the lowest spot price among the instance type's us-east-1 availability zones: from the
//     skypilot-catalog v8 snapshot in data/aws_spot_2026.csv and data/instances_2026.csv where it was
//     read, else the vantage export's spot minimum (the same rule on its 2023 snapshot). A row without
//     a spot figure is priced at on-demand x its device's SpotDiscount. data/instances_2026.csv adds
//     instance types (p5en, p6-b200, g6e) and may not repeat one the copied tables have;
//  5. on-premises, for a node without an instance type whose model has an onprem.csv row (or a
//     CPU-only one while energy_usd_per_kwh or host_hardware_usd_per_vcpu_hour is set): see below;
//  6. the per-device price x accelerator count plus the host (vCPU and GiB at the GCP N2/A2 list rates,
//     USD 0.031611 per vCPU-hour and 0.004237 per GiB-hour); on spot capacity the sum is multiplied by the
//     device's SpotDiscount. A CPU-only node is priced by its host alone (spot: x 0.562, the spot/on-demand
//     ratio of the host increment between g2-standard-8 and g2-standard-4 in us-central1).
//
// A discounts.csv row of the ConfigMap takes its fraction off the list prices of rules 4 and 6 (the
// most specific matching row: instance family, then provider, then capacity type), never off rules
// 1-3, which are already the user's price, nor rule 5, which is the user's own cost; Price.Source
// then ends with the row, e.g. "instance:aws:p4d.24xlarge discount 0.3 (aws,p4d,on-demand)". A node
// of rule 6 has no provider: only provider-any rows apply to it.
//
// # On-premises price
//
// Hardware the user owns costs its amortisation plus the energy it draws. Rule 5 prices it as
//
//	count x hardware_usd_per_hour(model) + vCPUs x host_hardware_usd_per_vcpu_hour
//	+ (count x device max watts + host max watts) / 1000 x pue x energy_usd_per_kwh
//
// The draw is the node's maximum (the device's 100% point, or the kcloud.io/accelerator-max-watts
// annotation, and HostPower's MaxWatts), the figure a site provisions and pays demand charges on: a
// node's price is a property of the node, not of its load at one moment, and the scheduler's
// marginal-cost rule then counts a node left empty as saved in full, energy included. A power cap
// written in the annotation lowers the price. Example: 8 A100 (407 W each) in a 64-vCPU, 512-GiB
// server at 1.10 USD per GPU-hour and 0.01 USD per vCPU-hour, host max 3 W per vCPU and 0.5 W per
// GiB, PUE 1.5, 0.12 USD/kWh: hardware 8 x 1.10 + 64 x 0.01 = 9.44; draw 8 x 407 + 64 x 3 +
// 512 x 0.5 = 3,704 W; energy 3.704 x 1.5 x 0.12 = 0.66672; price 10.10672 USD/h.
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
