#!/usr/bin/env bash
# Runs the same workloads in orch and in Dagster, one after the other on this machine, and
# prints a markdown table with ratios. Dagster comes from ../shared/bench/dagster (its venv at
# $DAGBENCH_DIR/venv, default /tmp/dagbench/venv; created here if missing).
#
#   bash benches/large-graphs/compare.sh [N]      # N assets per graph, default 1000
#
# Figures: "load" is Dagster's module import + Definitions.validate_loadable (after
# `import dagster`) against orch's inventory discovery + graph validation; "run" is Dagster's
# in-process materialize() (default fs IO manager, ephemeral instance) against orch's in-memory
# run; "process" is a whole `materialize` process, median of 5 (bench_run.py).
set -euo pipefail
N="${1:-1000}"
source "$(dirname "$0")/dagbench_env.sh"
OUT="$DAGBENCH_DIR/compare"; mkdir -p "$OUT"
cd "$ROOT"

echo "building orch benches with N=$N ..." >&2
ORCH_BENCH_N="$N" cargo bench -p orch-bench --no-run 2>"$OUT/build.log" || { cat "$OUT/build.log"; exit 1; }
# cargo prints "Executable benches/chain.rs (target/release/deps/chain-HASH)"
exe() { sed -nE "s|.*Executable benches/$1\.rs \((.*)\)|\1|p" "$OUT/build.log"; }

# One field of a bench's JSON line; a field the bench no longer prints stops the script with
# its name (a renamed field once made the last row a Python traceback).
field() {
  "$PY" -c 'import json, sys
d = json.loads(sys.argv[1])
if sys.argv[2] not in d:
    have = " ".join(d)
    sys.exit(f"compare.sh: the bench printed no `{sys.argv[2]}` (it has: {have})")
print(d[sys.argv[2]])' "$1" "$2"
}

declare -A R
declare -A LINE
for shape in chain fanout; do
  bin="$(exe "$shape")"
  # orch in-process figures (its own medians)
  line="$("$bin" | grep '^{' | head -n 1)"
  LINE[$shape]="$line"
  R[orch_load_$shape]="$(field "$line" discovery_ms)"
  R[orch_run_$shape]="$(field "$line" run_ms)"
  R[orch_proc_$shape]="$("$PY" "$DAG/bench_run.py" -n 5 -- "$bin" materialize | awk '/wall/ {print $0}' | sed -E 's/.*median ([0-9.]+).*/\1/')"
  # Dagster, same shapes and names (gen_defs.py)
  dl="$("$PY" "$DAG/defs_load.py" "$N" "$shape" | tail -n 1)"
  R[dag_load_$shape]="$("$PY" -c "import json,sys; d=json.loads(sys.argv[1]); print(round(1000*(d['import_module_s']+d['validate_loadable_s']),2))" "$dl")"
  mat="$("$PY" "$DAG/materialize_noop.py" "$N" "$shape" 2>/dev/null | tail -n 1)"
  R[dag_run_$shape]="$("$PY" -c "import json,sys; print(round(1000*json.loads(sys.argv[1])['materialize_s'],2))" "$mat")"
  R[dag_proc_$shape]="$("$PY" "$DAG/bench_run.py" -n 3 -- "$PY" "$DAG/materialize_noop.py" "$N" "$shape" | awk '/wall/ {print $0}' | sed -E 's/.*median ([0-9.]+).*/\1/')"
done

# Persisted runs: Dagster with a persistent SQLite instance (100 assets: a 1,000-asset run takes
# minutes) against orch's persisted chain (run store + output files), per asset.
sq="$("$PY" "$DAG/materialize_noop.py" 100 chain --instance sqlite 2>/dev/null | tail -n 1)"
R[dag_sqlite]="$("$PY" -c "import json,sys; print(json.loads(sys.argv[1])['per_asset_ms'])" "$sq")"
R[dag_sqlite_us]="$("$PY" -c "import sys; print(float(sys.argv[1]) * 1000)" "${R[dag_sqlite]}")"
# A run that rewrites every output, and one whose outputs are unchanged (same bytes on disk).
R[orch_written]="$(field "${LINE[chain]}" persisted_changed_us)"
R[orch_unchanged]="$(field "${LINE[chain]}" persisted_unchanged_us)"

ratio() { "$PY" -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:,.0f}x' if b>0 else 'n/a')" "$1" "$2"; }
echo
echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg); N = $N assets."
echo
echo "| workload | Dagster 1.13.29 | orch | orch is faster by |"
echo "|---|---|---|---|"
for shape in chain fanout; do
  echo "| load + validate, $shape | ${R[dag_load_$shape]} ms | ${R[orch_load_$shape]} ms | $(ratio "${R[dag_load_$shape]}" "${R[orch_load_$shape]}") |"
  echo "| materialize in process, $shape | ${R[dag_run_$shape]} ms | ${R[orch_run_$shape]} ms | $(ratio "${R[dag_run_$shape]}" "${R[orch_run_$shape]}") |"
  echo "| whole \`materialize\` process, $shape | ${R[dag_proc_$shape]} s | ${R[orch_proc_$shape]} s | $(ratio "${R[dag_proc_$shape]}" "${R[orch_proc_$shape]}") |"
done
echo "| persisted run per asset, chain (Dagster: 100, SQLite instance; orch: $N, outputs written / unchanged) | ${R[dag_sqlite]} ms | ${R[orch_written]} / ${R[orch_unchanged]} µs | $(ratio "${R[dag_sqlite_us]}" "${R[orch_written]}") / $(ratio "${R[dag_sqlite_us]}" "${R[orch_unchanged]}") |"
