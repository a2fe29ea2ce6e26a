# Shell functions for scripts/demo.sh, scripts/lifecycle.sh and bench/streaming.sh, which
# source this file (it is not run on its own): the processes a script starts in the
# background, stopped when it exits, and the servers it starts on loopback ports (moto,
# `cargo lambda watch`). Needs $venv, the .venv/bin folder that scripts/setup.sh fills.
# A message is prefixed with the name of the script that sourced this file.

# Every process started in the background, stopped on exit.
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

# Stops one of them now.
stop() { # pid
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

free_port() { "$venv/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port, what, seconds
  for _ in $(seq 1 $(( $3 * 10 ))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  local script=${0##*/}
  echo "${script%.sh}: $2 did not listen on port $1" >&2; exit 1
}

# A local S3 (moto) on a free port, its output in LOG: sets moto_port, moto_pid and s3, its URL.
start_moto() { # log
  moto_port=$(free_port)
  "$venv/moto_server" -H 127.0.0.1 -p "$moto_port" >"$1" 2>&1 &
  moto_pid=$!
  pids+=("$moto_pid")
  wait_port "$moto_port" moto_server 60
  s3="http://127.0.0.1:$moto_port"
}

# `cargo lambda watch` with the options given (the package and so on) on a free port, its
# output in LOG, waited for up to SECONDS: sets watch_port and watch_pid.
start_watch() { # log, seconds, options...
  local log=$1 seconds=$2
  shift 2
  watch_port=$(free_port)
  "$venv/cargo-lambda" lambda watch --ignore-changes --quiet -A 127.0.0.1 -P "$watch_port" "$@" \
    >"$log" 2>&1 &
  watch_pid=$!
  pids+=("$watch_pid")
  wait_port "$watch_port" "cargo lambda watch" "$seconds"
}
