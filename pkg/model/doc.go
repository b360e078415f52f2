// Package model holds every decision KCloud makes, as pure functions without clients, clocks or I/O:
// whether a pod fits a node and within its limits, what placing it there costs and draws at the
// margin, how it changes GPU fragmentation, and one combined node score. The scheduler plugins, the
// operator, the autoscaler and the simulator all call these functions, so a number the simulator
// reports is a number the scheduler would produce.
//
// Units: money in USD (USD/h for rates), power in watts, energy in kWh, carbon intensity in gCO2/kWh,
// CPU in millicores, memory in MiB, GPU in milli-GPUs (1000 = one whole device).
package model
