#!/usr/bin/env bash
# The orders pipeline at N rows (default 10,000,000), side by side: orch (`examples/orders`,
# release: 365 daily partitions pushed into SQL, Parquet persistence on, every run recorded)
# against the same pipeline as a plain polars program (`benches/orders_plain.rs`: one query,
# the same transforms, its intermediates written as Parquet too). Both read the same SQLite
# table, generated once. Prints wall time and peak RSS (GNU time) of each, and the ratios.
#
#   bash benches/large-graphs/orders.sh [N]
set -euo pipefail
N="${1:-10000000}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${ORDERS_BENCH_DIR:-/tmp/orch-orders-bench}"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orch-target}"
cargo build -q --release --example orders
plain="$(cargo bench -p orch-bench --bench orders_plain --no-run 2>&1 |
  sed -nE 's|.*Executable benches/orders_plain\.rs \((.*)\)|\1|p')"
orch="$CARGO_TARGET_DIR/release/examples/orders"

mkdir -p "$WORK/data"
if [[ ! -f "$WORK/data/rows-$N" ]]; then
  rm -rf "$WORK/data"/*
  echo "generating $N orders ..." >&2
  ORCH_HOME="$WORK/data" ORDERS_ROWS="$N" "$orch" list >/dev/null
  touch "$WORK/data/rows-$N"
fi

measure() { # name, then the command; prints "name wall_s peak_mib"
  local name="$1"; shift
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  read -r wall kib <"$WORK/time.txt"
  echo "$name $wall $((kib / 1024))"
}

rm -rf "$WORK/orch" "$WORK/plain"
mkdir -p "$WORK/orch"
ln -s "$WORK/data/orders.db" "$WORK/orch/orders.db"
o="$(measure orch env ORCH_HOME="$WORK/orch" "$orch")"
p="$(measure plain env ORDERS_DB="$WORK/data/orders.db" ORDERS_OUT="$WORK/plain" "$plain")"
echo "| N=$N | wall (s) | peak RSS (MiB) |"
echo "|---|---|---|"
read -r _ ow om <<<"$o"; read -r _ pw pm <<<"$p"
echo "| orch (examples/orders) | $ow | $om |"
echo "| plain polars program | $pw | $pm |"
echo "| ratio orch / plain | $(python3 -c "print(round($ow/$pw, 2))") | $(python3 -c "print(round($om/$pm, 2))") |"
# Same results: the exported revenue totals agree.
python3 - "$WORK/orch/exports/daily_revenue.csv" "$WORK/plain/daily_revenue.csv" <<'PY'
import csv, sys
a, b = (sum(float(r["revenue"]) for r in csv.DictReader(open(p))) for p in sys.argv[1:])
assert abs(a - b) < 0.01 * max(1, abs(a)) / 1e6 + 0.01, (a, b)
print(f"same revenue: {a:.2f}")
PY
