"""Dagster's sensor-to-run latency: a sensor (default RUNNING, `minimum_interval_seconds=1`)
that asks for a run of a one-asset job at every evaluation (a new run key each time), run by
`dagster-daemon run` on a fresh DAGSTER_HOME (the default SQLite instance, queued run
coordinator and DefaultRunLauncher: each run in a subprocess). For each of RUNS runs: the time
from its creation (the sensor's result, queued) to its start, as Dagster records them. Prints
one line, as the orch bench does.

usage: python sensor_latency.py [RUNS]   (default 10)
"""

import sys
import textwrap
import time
from datetime import timezone

from daemon_home import running_daemon, summary

DEFS = textwrap.dedent(
    """
    import time
    import dagster as dg

    @dg.asset
    def noop():
        return 1

    noop_job = dg.define_asset_job("noop_job", selection=[noop])

    @dg.sensor(
        job=noop_job,
        minimum_interval_seconds=1,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def every_evaluation():
        yield dg.RunRequest(run_key=str(time.time()))

    defs = dg.Definitions(assets=[noop], jobs=[noop_job], sensors=[every_evaluation])
    """
)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    with running_daemon(DEFS, "dagster-sensor-"):
        deadline = time.time() + 30 * runs + 120
        while time.time() < deadline:
            time.sleep(2)
            with DagsterInstance.get() as instance:
                done = instance.get_run_records(
                    RunsFilter(statuses=[DagsterRunStatus.SUCCESS])
                )
            if len(done) >= runs:
                break

    started = []
    with DagsterInstance.get() as instance:
        for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.SUCCESS])):
            created = record.create_timestamp
            if created.tzinfo is None:
                created = created.replace(tzinfo=timezone.utc)
            started.append(record.start_time - created.timestamp())
    print(summary("dagster sensor -> run started", started))


if __name__ == "__main__":
    main()
