#!/usr/bin/env bash
# Dagster's ETL benchmark (bench 3 of ../shared/bench/dagster) side by side, on the same
# 10M-row Parquet file (gen_orders.py, seed 42), in one run on this machine:
#   orch           benches/etl.rs: five assets, every output persisted, runs recorded
#   orch_memory    benches/etl_memory.rs: the same on io_manager = "memory", runs recorded
#   orch_lazy      benches/etl_lazy.rs: orch with orders_cleaned a LazyFrame, which the
#                  streaming engine runs into its file and its consumers read back
#   orch_parquet   orch with io.frame_format = "parquet" (ORCH_FRAME_FORMAT)
#   dagster+polars etl_dagster.py polars (default fs IO manager: pickles)
#   plain polars   etl_plain.py polars (no orchestrator, nothing persisted)
# Each is timed as a whole process by the Dagster bench's own bench_run.py (median of -n,
# after one warm-up run), and every variant's CSVs are checked against the others.
#
#   bash benches/large-graphs/etl.sh [RUNS=5]
set -euo pipefail
RUNS="${1:-5}"
source "$(dirname "$0")/dagbench_env.sh"
DATA="$(orders_parquet 10000000)"
cd "$ROOT"
built="$(cargo bench -p orch-bench --bench etl --bench etl_memory --bench etl_lazy --no-run 2>&1)"
etl="$(sed -nE 's|.*Executable benches/etl\.rs \((.*)\)|\1|p' <<<"$built")"
etl_memory="$(sed -nE 's|.*Executable benches/etl_memory\.rs \((.*)\)|\1|p' <<<"$built")"
etl_lazy="$(sed -nE 's|.*Executable benches/etl_lazy\.rs \((.*)\)|\1|p' <<<"$built")"
OUT="$DAGBENCH_DIR/out"
HOME_DIR="$DAGBENCH_DIR/orch-etl-home"
mkdir -p "$OUT"

bench() { # label, command...
  local label="$1"; shift
  "$PY" "$DAG/bench_run.py" -n "$RUNS" --label "$label" --log "$OUT/$label.log" -- "$@" |
    grep -E 'wall|cpu|peak' | sed "s/^/$label: /"
}
bench orch sh -c "rm -rf '$HOME_DIR' && ORCH_HOME='$HOME_DIR' ETL_DATA='$DATA' ETL_OUT='$OUT/orch' exec '$etl'"
# Where orch's last run spent its time: its phases and each asset's load / compute / store.
ORCH_HOME="$HOME_DIR" "$etl" run show last --timings | sed 's/^/orch timings: /'
bench orch_memory sh -c "rm -rf '$HOME_DIR' && ORCH_HOME='$HOME_DIR' ETL_DATA='$DATA' ETL_OUT='$OUT/orch_memory' exec '$etl_memory'"
bench orch_lazy sh -c "rm -rf '$HOME_DIR' && ORCH_HOME='$HOME_DIR' ETL_DATA='$DATA' ETL_OUT='$OUT/orch_lazy' exec '$etl_lazy'"
ORCH_HOME="$HOME_DIR" "$etl_lazy" run show last --timings | grep -E '^orders_' | sed 's/^/orch_lazy timings: /'
bench orch_parquet sh -c "rm -rf '$HOME_DIR' && ORCH_HOME='$HOME_DIR' ORCH_FRAME_FORMAT=parquet ETL_DATA='$DATA' ETL_OUT='$OUT/orch_parquet' exec '$etl'"
bench dagster_polars "$PY" "$DAG/etl_dagster.py" polars --data "$DATA" --out "$OUT/dagster_polars"
bench plain_polars "$PY" "$DAG/etl_plain.py" polars --data "$DATA" --out "$OUT/plain_polars"

# Same results everywhere: every row of both CSVs agrees to a relative 1e-9 (sums in another
# order differ in the last digits), and the reference figures of the Dagster README hold.
"$PY" - "$OUT" <<'PY'
import csv, math, sys
out = sys.argv[1]
def rows(v, f):
    return list(csv.reader(open(f"{out}/{v}/{f}")))
for f in ["daily_revenue.csv", "customer_summary.csv"]:
    ref = rows("plain_polars", f)
    for v in ["orch", "orch_memory", "orch_lazy", "orch_parquet", "dagster_polars"]:
        got = rows(v, f)
        assert len(got) == len(ref) and got[0] == ref[0], (v, f, "shape")
        for a, b in zip(got[1:], ref[1:]):
            for x, y in zip(a, b):
                assert x == y or math.isclose(float(x), float(y), rel_tol=1e-9), (v, f, a, b)
daily = rows("orch", "daily_revenue.csv")[1:]
revenue = round(sum(float(r[1]) for r in daily), 2)
assert (len(daily), len(rows("orch", "customer_summary.csv")) - 1) == (365, 100000)
assert abs(revenue - 406142107.71) < 0.01, revenue
print(f"same results: 365 days, 100000 customers, revenue {revenue}")
PY
