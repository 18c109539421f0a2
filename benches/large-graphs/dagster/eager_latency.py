"""Dagster's eager latency: `down` has `AutomationCondition.eager()` on `up`, which has no
condition; `dagster-daemon run` on a fresh DAGSTER_HOME (the default SQLite instance, queued
run coordinator and DefaultRunLauncher) evaluates it through an automation condition sensor
(started running, with Dagster's default 30-second interval). SAMPLES times: `up` is
materialized in this process, and we wait for the run that automation launches for `down`;
the time from `up`'s materialization (as the instance records it) to that run's creation
(queued) and start. Prints one line per figure, as the orch bench does.

usage: python eager_latency.py [SAMPLES]   (default 3; about 30 s to a minute each)
"""

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import timezone

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
    home = tempfile.mkdtemp(prefix="dagster-eager-")
    defs = os.path.join(home, "defs.py")
    with open(defs, "w") as f:
        f.write(DEFS)
    open(os.path.join(home, "dagster.yaml"), "w").close()
    env = dict(os.environ, DAGSTER_HOME=home)
    os.environ["DAGSTER_HOME"] = home
    sys.path.insert(0, home)
    import dagster as dg
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    import defs as user_defs  # noqa: E402  (the same definitions the daemon loads)

    # `down` exists before the daemon starts, so its first evaluations have nothing missing.
    with DagsterInstance.get() as instance:
        dg.materialize([user_defs.up, user_defs.down], instance=instance)

    daemon_bin = os.path.join(os.path.dirname(sys.executable), "dagster-daemon")
    log = open(os.path.join(home, "daemon.log"), "w")
    daemon = subprocess.Popen(
        [daemon_bin, "run", "-f", defs], env=env, cwd=home, stdout=log, stderr=log
    )
    queued, started = [], []
    try:
        time.sleep(15)  # the daemon's first automation evaluation records the state
        for _ in range(samples):
            with DagsterInstance.get() as instance:
                seen = {r.dagster_run.run_id for r in instance.get_run_records()}
                result = dg.materialize([user_defs.up], instance=instance)
                event = next(
                    e
                    for e in instance.all_logs(result.run_id)
                    if e.dagster_event is not None
                    and e.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
                )
                materialized = event.timestamp
                deadline = time.time() + 180
                record = None
                while time.time() < deadline:
                    time.sleep(0.2)
                    runs = [
                        r
                        for r in instance.get_run_records(
                            RunsFilter(statuses=[DagsterRunStatus.SUCCESS])
                        )
                        if r.dagster_run.run_id not in seen
                        and r.dagster_run.run_id != result.run_id
                    ]
                    if runs:
                        record = runs[0]
                        break
                if record is None:
                    print("no automation run within 180 s; see", log.name)
                    break
                created = record.create_timestamp
                if created.tzinfo is None:
                    created = created.replace(tzinfo=timezone.utc)
                created = created.timestamp()
                queued.append(created - materialized)
                started.append(record.start_time - materialized)
            # Before the next update of `up`, one more evaluation after `down`'s run: an
            # update of `up` in the same 30-second window as `down`'s own materialization is
            # lost (the reset of `since` wins), and no run would come.
            time.sleep(35)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()

    def line(name, xs):
        if not xs:
            return f"{name}: no run"
        xs = sorted(xs)
        return (
            f"{name}: median {statistics.median(xs) * 1e3:.0f} ms, "
            f"max {xs[-1] * 1e3:.0f} ms (n = {len(xs)})"
        )

    print(line("dagster upstream materialized -> eager downstream run queued", queued))
    print(line("dagster upstream materialized -> eager downstream run started", started))


if __name__ == "__main__":
    main()
