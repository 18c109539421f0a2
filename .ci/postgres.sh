# Sourced by .ci/run: installs PostgreSQL if missing, starts a throwaway server on a loopback
# port in a temporary data directory, exports ORCH_TEST_POSTGRES_URL for the tests, and stops
# the server (and removes its data) when the calling shell exits.
#
# To point orch at your own server instead, set ORCH_TEST_POSTGRES_URL yourself (the tests
# create and drop a table named `orders`), e.g. postgres://me@localhost:5432/scratch.

start_postgres() {
  if [[ -n "${ORCH_TEST_POSTGRES_URL:-}" ]]; then
    echo "using the PostgreSQL server at $ORCH_TEST_POSTGRES_URL"
    return
  fi
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -z "$bin" || ! -x "$bin/postgres" ]]; then
    echo "installing PostgreSQL (Debian package)"
    local sudo=""
    [[ "$(id -u)" != 0 ]] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -z "$bin" || ! -x "$bin/postgres" ]]; then
      echo "error: the postgresql package installed no server under /usr/lib/postgresql" >&2
      return 1
    fi
  fi
  PG_DATA="$(mktemp -d /tmp/orch-pg.XXXXXX)"
  # PostgreSQL refuses to run as root: run it as the `postgres` user the package creates.
  local as=()
  if [[ "$(id -u)" == 0 ]]; then
    chown postgres "$PG_DATA"
    as=(runuser -u postgres --)
  fi
  PG_AS=("${as[@]}")
  PG_BIN="$bin"
  "${as[@]}" "$bin/initdb" -D "$PG_DATA" -U orch -A trust --no-sync >/dev/null
  # The first free port from 54329 (another server, or another CI run, may hold one).
  local port
  for port in $(seq "${ORCH_TEST_POSTGRES_PORT:-54329}" 54399); do
    if "${as[@]}" "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w \
      -o "-p $port -k $PG_DATA -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null 2>&1; then
      PG_PORT=$port
      break
    fi
  done
  if [[ -z "${PG_PORT:-}" ]]; then
    echo "error: PostgreSQL did not start; its log:" >&2
    cat "$PG_DATA/server.log" >&2
    return 1
  fi
  # After whatever the caller already runs on exit (.ci/run prunes its target dir).
  trap "$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT\$/\1; /")stop_postgres" EXIT
  export ORCH_TEST_POSTGRES_URL="postgres://orch@127.0.0.1:$PG_PORT/postgres"
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
}

stop_postgres() {
  if [[ -n "${PG_DATA:-}" ]]; then
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DATA"
  fi
}
