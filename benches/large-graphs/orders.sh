#!/usr/bin/env bash
# The orders pipeline at N rows (default 10,000,000), side by side in one run: orch
# (`examples/orders`, release: 365 daily partitions pushed into SQL, frames persisted,
# every run recorded) as `cargo run` does it (one run per day, 2 at a time), one day at a time,
# a month per run (`--partitions-per-run 31`) and the year in one run (`--single-run`),
# against the same pipeline as a plain polars program (`benches/orders_plain.rs`: one query, the same transforms, its intermediates
# written as Arrow IPC files too, as orch writes them). Both read the same SQLite table, imported once from Dagster's own
# generator (../shared/bench/dagster/gen_orders.py N, seed 42), so the rows are exactly those
# of Dagster's ETL benchmark. Prints wall time and peak RSS (GNU time) of each, the ratios,
# and checks that every export agrees (and, at 10M rows, matches Dagster's reference figures).
#
#   bash benches/large-graphs/orders.sh [N]
set -euo pipefail
N="${1:-10000000}"
source "$(dirname "$0")/dagbench_env.sh"
WORK="${ORDERS_BENCH_DIR:-/tmp/orch-orders-bench}"
cd "$ROOT"
cargo build -q --release --example orders
plain="$(cargo bench -p orch-bench --bench orders_plain --no-run 2>&1 |
  sed -nE 's|.*Executable benches/orders_plain\.rs \((.*)\)|\1|p')"
orch="$CARGO_TARGET_DIR/release/examples/orders"

mkdir -p "$WORK/data"
if [[ ! -f "$WORK/data/rows-$N" ]]; then
  rm -rf "${WORK:?}/data"/*
  ORCH_HOME="$WORK/data" ORDERS_PARQUET="$(orders_parquet "$N")" "$orch" list >/dev/null
  touch "$WORK/data/rows-$N"
fi

measure() { # name, then the command; prints "name wall_s peak_mib"
  local name="$1"; shift
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  read -r wall kib <"$WORK/time.txt"
  echo "$name $wall $((kib / 1024))"
}
fresh() { # an empty ORCH_HOME beside the shared table
  rm -rf "${WORK:?}/$1"; mkdir -p "$WORK/$1"; ln -s "$WORK/data/orders.db" "$WORK/$1/orders.db"
}

variants=(orch daily1 monthly single)
for v in "${variants[@]}"; do fresh "$v"; done
rm -rf "$WORK/plain"
year=(backfill --select '*' --from 2024-01-01 --to 2024-12-30)
results=()
results+=("$(measure plain env ORDERS_DB="$WORK/data/orders.db" ORDERS_OUT="$WORK/plain" "$plain")")
results+=("$(measure orch env ORCH_HOME="$WORK/orch" "$orch")")
results+=("$(measure daily1 env ORCH_HOME="$WORK/daily1" "$orch" "${year[@]}" --jobs 1)")
results+=("$(measure monthly env ORCH_HOME="$WORK/monthly" "$orch" "${year[@]}" \
  --partitions-per-run 31)")
results+=("$(measure single env ORCH_HOME="$WORK/single" "$orch" "${year[@]}" --single-run)")
read -r _ pw pm <<<"${results[0]}"
echo "| N=$N | wall (s) | peak RSS (MiB) | time / plain | RSS / plain |"
echo "|---|---|---|---|---|"
for r in "${results[@]}"; do
  read -r name w m <<<"$r"
  case "$name" in
    plain) label="plain polars program (one query)" ;;
    orch) label="orch, \`cargo run\`: 365 runs of 1 day, 2 at a time" ;;
    daily1) label="orch, \`backfill --jobs 1\`: 365 runs of 1 day, 1 at a time" ;;
    monthly) label="orch, \`backfill --partitions-per-run 31\`: 12 runs, 2 at a time" ;;
    single) label="orch, \`backfill --single-run\`: 1 run of 365 days" ;;
  esac
  echo "| $label | $w | $m | $(python3 -c "print(round($w/$pw, 2))") | $(python3 -c "print(round($m/$pm, 2))") |"
done
# Same results: the exported revenue totals agree (and match Dagster's reference at 10M).
python3 - "$N" "${variants[@]/#/$WORK/}" "$WORK/plain" <<'PY'
import csv, os, sys
n, dirs = int(sys.argv[1]), sys.argv[2:]
files = [os.path.join(d, "exports", "daily_revenue.csv") for d in dirs[:-1]]
files.append(os.path.join(dirs[-1], "daily_revenue.csv"))
totals = [round(sum(float(r["revenue"]) for r in csv.DictReader(open(p))), 2) for p in files]
assert len(set(totals)) == 1, totals
if n == 10_000_000:
    assert totals[0] == 406142107.71, totals  # ../shared/bench/dagster/README.md
print(f"same revenue everywhere: {totals[0]:.2f}")
PY
