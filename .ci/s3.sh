# Sourced by .ci/run: a local S3 server for the object storage tests. Installs moto's server
# (PyPI, pinned) into a virtual environment kept under ~/.cache between runs, starts it on a
# free loopback port, creates the bucket `orch-test`, exports the standard AWS variables and
# ORCH_TEST_S3_URL for the tests, and stops the server when the calling shell exits.
#
# To use another S3-compatible server, set ORCH_TEST_S3_URL (s3://bucket) and the AWS_*
# variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) yourself.

MOTO_VERSION=5.2.6

start_s3() {
  if [[ -n "${ORCH_TEST_S3_URL:-}" ]]; then
    echo "using the S3 server at ${AWS_ENDPOINT_URL:-(AWS default)} (bucket ${ORCH_TEST_S3_URL})"
    return
  fi
  local venv="${ORCH_MOTO_VENV:-$HOME/.cache/orch-moto-$MOTO_VERSION}"
  if [[ ! -x "$venv/bin/moto_server" ]]; then
    if ! python3 -m venv --help >/dev/null 2>&1; then
      echo "installing python3-venv (Debian package)"
      local sudo=""
      [[ "$(id -u)" != 0 ]] && sudo="sudo"
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
    fi
    echo "installing moto[server]==$MOTO_VERSION (PyPI) into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
  local port
  for port in $(seq "${ORCH_TEST_S3_PORT:-54500}" 54599); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      break
    fi
  done
  S3_LOG="$(mktemp /tmp/orch-moto.XXXXXX.log)"
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$S3_LOG" 2>&1 &
  S3_PID=$!
  local tries=0
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    tries=$((tries + 1))
    if [[ $tries -gt 100 ]] || ! kill -0 "$S3_PID" 2>/dev/null; then
      echo "error: the S3 server (moto) did not start; its log:" >&2
      cat "$S3_LOG" >&2
      return 1
    fi
    sleep 0.1
  done
  trap "$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT\$/\1; /")stop_s3" EXIT
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=orch AWS_SECRET_ACCESS_KEY=orch AWS_REGION=us-east-1
  "$venv/bin/python" - <<'PY'
import boto3, os
boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).create_bucket(Bucket="orch-test")
PY
  export ORCH_TEST_S3_URL="s3://orch-test"
  echo "S3 (moto $MOTO_VERSION) on 127.0.0.1:$port, bucket orch-test"
}

stop_s3() {
  if [[ -n "${S3_PID:-}" ]]; then
    kill "$S3_PID" 2>/dev/null || true
    wait "$S3_PID" 2>/dev/null || true
    rm -f "$S3_LOG"
  fi
}
