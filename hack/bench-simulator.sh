#!/usr/bin/env bash
# Times the simulator on the openb default trace: one inflate run (one policy, one seed) of the
# product's policy and of FGD as its baseline, the full table (8 baselines + ours, 10 seeds), and the
# per-node score benchmarks. The last line is machine-readable: inflate_run_s=X full_table_s=Y.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/kcloud ./cmd/kcloud
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "== score of one pod on one node (Go benchmarks; baseline: the FGD paper's score alone)"
go test -run '^$' -bench 'ScoreOnePodOneNode' -benchtime 200000x ./pkg/model/ | tee /tmp/kcloud-bench-score.txt | grep -E '^Benchmark'
fgd_ns=$(awk '/BenchmarkFGDScore/ {print $3}' /tmp/kcloud-bench-score.txt)
kc_ns=$(awk '/BenchmarkKcloudScore/ {print $3}' /tmp/kcloud-bench-score.txt)
echo "score_ns_kcloud=${kc_ns} score_ns_fgd=${fgd_ns} ratio_kcloud_over_fgd=$(ratio "$kc_ns" "$fgd_ns")"

echo "== one inflate run, one seed, one worker"
t0=$(now); bin/kcloud simulate --policies fgd --seeds 1 --workers 1 --format csv >/dev/null; t1=$(now)
bin/kcloud simulate --policies kcloud --seeds 1 --workers 1 --format csv >/dev/null; t2=$(now)
fgd_s=$(secs "$t0" "$t1"); run_s=$(secs "$t1" "$t2")
echo "fgd_run_s=${fgd_s} kcloud_run_s=${run_s} ratio_kcloud_over_fgd=$(ratio "$run_s" "$fgd_s")"
echo "(the FGD paper's own simulator takes about 10 minutes per run on 2 vCPU by its README: ~$(ratio 600 "$run_s")x)"

echo "== full table: 9 policies x 10 seeds"
t3=$(now); bin/kcloud simulate --seeds 10; t4=$(now)
full_s=$(secs "$t3" "$t4")
echo "inflate_run_s=${run_s} full_table_s=${full_s}"
