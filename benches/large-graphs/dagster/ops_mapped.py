"""Dagster's side of the mapped fan-out: an op yields N DynamicOutputs, a no-op op is mapped
over them (`.map`) and one op sums the collected results (`.collect()`), as orch's
`op_mapped`; run with `execute_in_process` (an ephemeral instance, outputs in memory):
median wall time of RUNS runs after a warm-up, per element.

    $DAGBENCH_DIR/venv/bin/python benches/large-graphs/dagster/ops_mapped.py [N] [RUNS]
"""

import statistics
import sys
import time

import dagster as dg


def build(n):
    @dg.op(out=dg.DynamicOut(int))
    def odyn():
        for i in range(1, n):
            yield dg.DynamicOutput(i, mapping_key=str(i))

    @dg.op
    def omap(x: int) -> int:
        return x + 1

    @dg.op
    def ocollect(xs: list) -> int:
        return sum(xs)

    @dg.job(name="op_mapped")
    def op_mapped():
        ocollect(odyn().map(omap).collect())

    return op_mapped


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    job = build(n)
    result = job.execute_in_process()
    assert result.success
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        result = job.execute_in_process()
        samples.append(time.perf_counter() - t)
        assert result.success
        assert result.output_for_node("ocollect") == sum(range(2, n + 1))
    med = statistics.median(samples)
    print(
        f"dagster {dg.__version__} op_mapped n={n}: execute_in_process median {med:.2f} s = "
        f"{med * 1e6 / (n - 1):.0f} µs/element (runs: "
        + ", ".join(f"{s:.2f}" for s in samples)
        + ")"
    )


if __name__ == "__main__":
    main()
