"""What the daemon-latency scripts share: a fresh DAGSTER_HOME with the given definitions,
`dagster-daemon run` on it (stopped with SIGTERM), and the printed summary line."""

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile


@contextlib.contextmanager
def running_daemon(defs_text: str, prefix: str):
    """Writes `defs_text` to `defs.py` in a fresh DAGSTER_HOME (set for this process too),
    starts `dagster-daemon run -f defs.py` there and yields the home; stops the daemon on
    exit. Its log is `daemon.log` in the home."""
    home = tempfile.mkdtemp(prefix=prefix)
    defs = os.path.join(home, "defs.py")
    with open(defs, "w") as f:
        f.write(defs_text)
    open(os.path.join(home, "dagster.yaml"), "w").close()
    env = dict(os.environ, DAGSTER_HOME=home)
    os.environ["DAGSTER_HOME"] = home
    daemon_bin = os.path.join(os.path.dirname(sys.executable), "dagster-daemon")
    log = open(os.path.join(home, "daemon.log"), "w")
    daemon = subprocess.Popen(
        [daemon_bin, "run", "-f", defs], env=env, cwd=home, stdout=log, stderr=log
    )
    try:
        yield home
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()


def summary(name: str, seconds: list) -> str:
    """`name: median 1234 ms, max 2345 ms (n = 3)`, or `name: no run`."""
    if not seconds:
        return f"{name}: no run"
    xs = sorted(seconds)
    return (
        f"{name}: median {statistics.median(xs) * 1e3:.0f} ms, "
        f"max {xs[-1] * 1e3:.0f} ms (n = {len(xs)})"
    )
