#!/usr/bin/env bash
# A backfill of N daily partitions (default 365) of one trivial asset, in orch and then in
# Dagster (../shared/bench/dagster/partitions.py, loop mode: one run per partition, with an
# ephemeral and a SQLite instance), one after the other on this machine.
#
#   bash benches/large-graphs/compare_partitions.sh [N]
set -euo pipefail
N="${1:-365}"
source "$(dirname "$0")/dagbench_env.sh"
cd "$ROOT"
ORCH_BENCH_N=50 cargo bench -p orch-bench --bench partitions --no-run 2>/dev/null
echo "orch (whole backfill process, recorded, outputs stored):"
ORCH_BENCH_N=50 ORCH_BENCH_DAYS="$N" cargo bench -q -p orch-bench --bench partitions 2>/dev/null | grep '^{'
for instance in ephemeral sqlite; do
  echo "dagster ($instance instance, loop of runs):"
  "$PY" "$DAG/partitions.py" "$N" --mode loop --instance "$instance" 2>/dev/null | tail -n 1
done
