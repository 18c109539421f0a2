"""Dagster's tick-to-run latency: a `* * * * *` schedule (default RUNNING) on a one-asset job,
run by `dagster-daemon run` on a fresh DAGSTER_HOME (the default SQLite instance, queued run
coordinator and DefaultRunLauncher: each run in a subprocess). For each of TICKS real minute
ticks: the time from the tick's scheduled instant to the run's creation (queued) and to its
start, as Dagster records them. Prints one line per figure, as the orch bench does.

usage: python schedule_latency.py [TICKS]   (default 3; takes about TICKS + 1 minutes)
"""

import sys
import textwrap
import time
from datetime import timezone

from daemon_home import running_daemon, summary

DEFS = textwrap.dedent(
    """
    import dagster as dg

    @dg.asset
    def noop():
        return 1

    noop_job = dg.define_asset_job("noop_job", selection=[noop])

    every_minute = dg.ScheduleDefinition(
        name="every_minute",
        job=noop_job,
        cron_schedule="* * * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )

    defs = dg.Definitions(assets=[noop], jobs=[noop_job], schedules=[every_minute])
    """
)


def main() -> None:
    ticks = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    with running_daemon(DEFS, "dagster-sched-"):
        deadline = time.time() + 60 * ticks + 150
        while time.time() < deadline:
            time.sleep(2)
            with DagsterInstance.get() as instance:
                done = instance.get_run_records(
                    RunsFilter(
                        tags={"dagster/schedule_name": "every_minute"},
                        statuses=[DagsterRunStatus.SUCCESS],
                    )
                )
            if len(done) >= ticks:
                break

    queued, started = [], []
    with DagsterInstance.get() as instance:
        records = instance.get_run_records(
            RunsFilter(tags={"dagster/schedule_name": "every_minute"})
        )
        for record in records:
            created = record.create_timestamp
            if created.tzinfo is None:
                created = created.replace(tzinfo=timezone.utc)
            # Dagster's run tags do not carry the tick's instant; for `* * * * *` it is the
            # minute the run was created in (the latency is well under a minute).
            tick = created.replace(second=0, microsecond=0)
            queued.append((created - tick).total_seconds())
            if record.start_time is not None:
                started.append(record.start_time - tick.timestamp())

    print(summary("dagster tick -> run queued", queued))
    print(summary("dagster tick -> run started", started))


if __name__ == "__main__":
    main()
