#!/usr/bin/env bash
# A LazyFrame pipeline over data several times larger than its memory limit runs to the end.
# `benches/lazy_bounded.rs` (orders_raw -> orders_cleaned -> daily_revenue, LazyFrames on
# polars' streaming engine, every output persisted as Arrow IPC) reads COPIES (default 8) copies of Dagster's
# 10M-row orders file, 80M rows, inside a memory cgroup of LIMIT MiB (default 512). As a
# control, the eager five-asset ETL (`benches/etl.rs`, DataFrames) runs on ONE copy under the
# same limit, and is expected to be killed. Checks the lazy results against the input.
# Needs a writable memory cgroup (v2 with the memory controller, or v1), as root usually.
# `ulimit -v` does not work for this: polars' and tokio's thread pools reserve address space
# they never touch, so the program dies at start-up under a limit that its data respects.
#
#   bash benches/large-graphs/bounded.sh [COPIES=8] [LIMIT_MIB=512]
set -euo pipefail
COPIES="${1:-8}"
LIMIT="${2:-512}"
source "$(dirname "$0")/dagbench_env.sh"
DATA="$(orders_parquet 10000000)"
cd "$ROOT"
build="$(cargo bench -p orch-bench --bench lazy_bounded --bench etl --no-run 2>&1)"
exe() { sed -nE "s|.*Executable benches/$1\.rs \((.*)\)|\1|p" <<<"$build"; }
WORK="$DAGBENCH_DIR/bounded"
rm -rf "$WORK"; mkdir -p "$WORK"

if grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
  CG="/sys/fs/cgroup/orch-bounded-$$"; mkdir "$CG"
  echo "${LIMIT}M" >"$CG/memory.max"; echo 0 >"$CG/memory.swap.max" 2>/dev/null || true
  peak() { cat "$CG/memory.peak" 2>/dev/null || echo 0; }
elif [[ -w /sys/fs/cgroup/memory ]]; then
  CG="/sys/fs/cgroup/memory/orch-bounded-$$"; mkdir "$CG"
  echo $((LIMIT << 20)) >"$CG/memory.limit_in_bytes"
  echo $((LIMIT << 20)) >"$CG/memory.memsw.limit_in_bytes" 2>/dev/null || true
  peak() { cat "$CG/memory.max_usage_in_bytes"; }
else
  echo "no writable memory cgroup here (run as root on a machine with cgroups)" >&2; exit 1
fi
trap 'rmdir "$CG" 2>/dev/null || true' EXIT
limited() { # name, command...: runs inside the cgroup; prints "name exit wall_s rss_mib"
  local name="$1"; shift
  set +e
  /usr/bin/time -f "%x %e %M" -o "$WORK/$name.time" \
    sh -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' _ "$CG" "$@" >"$WORK/$name.log" 2>&1
  set -e
  local code wall kib
  read -r code wall kib < <(tail -n 1 "$WORK/$name.time")
  # GNU time reports a signal on a line of its own (and exit 0 after it).
  if grep -q "terminated by signal" "$WORK/$name.time"; then
    code="signal-$(sed -nE 's/.*terminated by signal ([0-9]+).*/\1/p' "$WORK/$name.time")"
  fi
  echo "$name $code $wall $((kib / 1024))"
}

in_memory="$("$PY" -c "import polars as pl; print(round(pl.read_parquet('$DATA').estimated_size('mb') * $COPIES))")"
echo "data: $COPIES copies of $DATA = $((COPIES * 10))M rows, ${in_memory} MiB in memory; limit ${LIMIT} MiB"
lazy="$(limited lazy env ORCH_HOME="$WORK/home" LAZY_DATA="$DATA" LAZY_COPIES="$COPIES" "$(exe lazy_bounded)")"
eager="$(limited eager env ORCH_HOME="$WORK/eager" ETL_DATA="$DATA" ETL_OUT="$WORK/eager-out" "$(exe etl)")"
echo "cgroup peak: $(( $(peak) >> 20 )) MiB"
read -r _ code wall rss <<<"$lazy"
echo "lazy pipeline, ${COPIES}x data: exit $code, ${wall} s, peak RSS ${rss} MiB"
read -r _ ecode _ _ <<<"$eager"
echo "control, eager ETL on 1x data: exit $ecode ($( [[ $ecode != 0 ]] && echo 'failed, as expected' || echo 'NOT killed: the limit is too high to show anything'))"
[[ "$code" == 0 ]] || { tail -n 20 "$WORK/lazy.log"; exit 1; }
"$PY" - "$WORK/home/storage/daily_revenue.arrow" "$COPIES" <<'PY'
import sys, polars as pl
df, k = pl.read_ipc(sys.argv[1]), int(sys.argv[2])
orders, revenue = df["orders"].sum(), df["revenue"].sum()
assert df.height == 365 and orders == k * 8_910_367, (df.height, orders)
assert abs(revenue - k * 406142107.71) < 1e-6 * revenue, revenue
print(f"results check: 365 days, {orders} cleaned orders, revenue {revenue:.2f} = {k} x 406142107.71")
PY
