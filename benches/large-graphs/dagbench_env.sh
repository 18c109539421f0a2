# Sourced by the compare scripts: where Dagster's benchmark scripts are, and a Python venv
# with Dagster 1.13.29 (the version ../shared/bench/dagster measured) plus what its ETL and
# data generator need. Set DAGBENCH_DIR to use another venv (default /tmp/dagbench).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DAG="$ROOT/../shared/bench/dagster"
export DAGBENCH_DIR="${DAGBENCH_DIR:-/tmp/dagbench}"
export DAGSTER_DISABLE_TELEMETRY=yes
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orch-target}"
PY="$DAGBENCH_DIR/venv/bin/python"
if ! "$PY" -c "import dagster, polars, pandas, pyarrow, numpy" 2>/dev/null; then
  echo "installing dagster 1.13.29, polars, pandas, pyarrow into $DAGBENCH_DIR/venv ..." >&2
  python3 -m venv "$DAGBENCH_DIR/venv"
  "$DAGBENCH_DIR/venv/bin/pip" install -q dagster==1.13.29 polars pandas pyarrow numpy
fi

# orders_parquet N: the path of Dagster's generated orders file with N rows (gen_orders.py,
# seed 42), generated on first use.
orders_parquet() {
  local file="$DAGBENCH_DIR/data/orders_$1.parquet"
  [[ -f "$file" ]] || "$PY" "$DAG/gen_orders.py" "$1" "$file" >&2
  echo "$file"
}
