"""Dagster's eager latency: `down` has `AutomationCondition.eager()` on `up`, which has no
condition; `dagster-daemon run` on a fresh DAGSTER_HOME (the default SQLite instance, queued
run coordinator and DefaultRunLauncher) evaluates it through an automation condition sensor
(started running, with Dagster's default 30-second interval). SAMPLES times: `up` is
materialized in this process, and we wait for the run that automation launches for `down`;
the time from `up`'s materialization (as the instance records it) to that run's creation
(queued) and start. Prints one line per figure, as the orch bench does.

usage: python eager_latency.py [SAMPLES]   (default 3; about 30 s to a minute each)
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
    def up():
        return 1

    @dg.asset(deps=[up], automation_condition=dg.AutomationCondition.eager())
    def down():
        return 2

    # The default automation sensor is created stopped; this one runs, with Dagster's default
    # interval (30 s).
    automation = dg.AutomationConditionSensorDefinition(
        "eager_sensor",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
    )

    defs = dg.Definitions(assets=[up, down], sensors=[automation])
    """
)


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    import dagster as dg
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    queued, started = [], []
    with running_daemon(DEFS, "dagster-eager-") as home:
        sys.path.insert(0, home)
        import defs as user_defs  # the same definitions the daemon loads

        # `down` exists before the first evaluation, so nothing is missing.
        with DagsterInstance.get() as instance:
            dg.materialize([user_defs.up, user_defs.down], instance=instance)
        time.sleep(15)  # the daemon's first automation evaluation records the state
        for _ in range(samples):
            with DagsterInstance.get() as instance:
                seen = {r.dagster_run.run_id for r in instance.get_run_records()}
                result = dg.materialize([user_defs.up], instance=instance)
                materialized = next(
                    e
                    for e in instance.all_logs(result.run_id)
                    if e.dagster_event is not None
                    and e.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
                ).timestamp
                deadline = time.time() + 180
                record = None
                while record is None and time.time() < deadline:
                    time.sleep(0.2)
                    record = next(
                        (
                            r
                            for r in instance.get_run_records(
                                RunsFilter(statuses=[DagsterRunStatus.SUCCESS])
                            )
                            if r.dagster_run.run_id not in seen
                            and r.dagster_run.run_id != result.run_id
                        ),
                        None,
                    )
                if record is None:
                    print(f"no automation run within 180 s; see {home}/daemon.log")
                    break
                created = record.create_timestamp
                if created.tzinfo is None:
                    created = created.replace(tzinfo=timezone.utc)
                queued.append(created.timestamp() - materialized)
                started.append(record.start_time - materialized)
            # Before the next update of `up`, one more evaluation after `down`'s run: an
            # update of `up` in the same 30-second window as `down`'s own materialization is
            # lost (the reset of `since` wins), and no run would come.
            time.sleep(35)

    print(summary("dagster upstream materialized -> eager downstream run queued", queued))
    print(summary("dagster upstream materialized -> eager downstream run started", started))


if __name__ == "__main__":
    main()
