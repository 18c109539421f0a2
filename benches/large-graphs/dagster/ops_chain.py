"""Dagster's side of the ops bench: a job of N no-op ops in a chain (o00000 -> o00001 -> ...),
as orch's `op_chain`, run with `execute_in_process` (an ephemeral instance, outputs in memory):
median wall time of RUNS runs after a warm-up, and the definition's build time.

    $DAGBENCH_DIR/venv/bin/python benches/large-graphs/dagster/ops_chain.py [N] [RUNS]
"""

import statistics
import sys
import time

import dagster as dg


def build(n):
    ops = []
    first = dg.op(name="o00000")(lambda: 0)
    ops.append(first)
    for i in range(1, n):
        def body(x):
            return x + 1

        ops.append(dg.op(name=f"o{i:05d}")(body))

    @dg.job(name="op_chain")
    def op_chain():
        h = ops[0]()
        for o in ops[1:]:
            h = o(h)

    return op_chain


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    t0 = time.perf_counter()
    job = build(n)
    built = time.perf_counter() - t0
    result = job.execute_in_process()
    assert result.success
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        result = job.execute_in_process()
        samples.append(time.perf_counter() - t)
        assert result.success
    med = statistics.median(samples)
    print(
        f"dagster {dg.__version__} op_chain n={n}: build {built * 1e3:.0f} ms, "
        f"execute_in_process median {med:.2f} s = {med * 1e6 / n:.0f} µs/op (runs: "
        + ", ".join(f"{s:.2f}" for s in samples)
        + ")"
    )


if __name__ == "__main__":
    main()
