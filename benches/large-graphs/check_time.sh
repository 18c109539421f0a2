#!/usr/bin/env bash
# How long `cargo check` takes on a crate with N assets (default 1,000, a chain), or with a
# job of N ops in a chain (`ops`), i.e. what a user waits for after an edit. Dependencies are
# built first and not counted; the figure is the median of 3 re-checks after touching the
# file (the crate itself is re-expanded and re-checked from scratch each time).
#
#   bash benches/large-graphs/check_time.sh [N] [assets|ops]
set -euo pipefail
N="${1:-1000}"
KIND="${2:-assets}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
mkdir -p "$DIR/src"
cat > "$DIR/Cargo.toml" <<TOML
[package]
name = "check-time"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
orch = { path = "$ROOT" }

[workspace]
TOML
if [ "$KIND" = ops ]; then
  {
    echo "use orch::prelude::*;"
    echo "#[op] fn o00000() -> u64 { 0 }"
    for ((i = 1; i < N; i++)); do
      printf '#[op] fn o%05d(x: &u64) -> u64 { x + 1 }\n' "$i"
    done
    echo "#[job] fn chain() {"
    echo "    let h00000 = o00000();"
    for ((i = 1; i < N; i++)); do
      printf '    let h%05d = o%05d(h%05d);\n' "$i" "$i" "$((i - 1))"
    done
    echo "}"
    echo "fn main() -> std::process::ExitCode { orch::main() }"
  } > "$DIR/src/main.rs"
else
  {
    echo "use orch::prelude::*;"
    echo "#[asset] fn a00000() -> u64 { 0 }"
    for ((i = 1; i < N; i++)); do
      printf '#[asset] fn a%05d(a%05d: &u64) -> u64 { a%05d + 1 }\n' "$i" "$((i - 1))" "$((i - 1))"
    done
    echo "fn main() -> std::process::ExitCode { orch::main() }"
  } > "$DIR/src/main.rs"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/check-time"
(cd "$DIR" && cargo check -q)
times=()
for _ in 1 2 3; do
  touch "$DIR/src/main.rs"
  t0=$(date +%s.%N)
  (cd "$DIR" && cargo check -q)
  t1=$(date +%s.%N)
  times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
echo "cargo check of a crate with $N $KIND: median ${median} s (runs: ${times[*]}) on $(nproc) cores"
