# Shared by scripts/validator-e2e and scripts/validator-fault (sourced, not run): finds
# solana-test-validator 4.2, starts it with the five SBF programs at their Anchor.toml ids as
# upgradeable programs, and waits for its JSON-RPC to answer.

# Sets $validator, or exits 2.
validator_find() {
  validator=${SOLANA_TEST_VALIDATOR:-$(command -v solana-test-validator || true)}
  if [ -z "$validator" ] || [ ! -x "$validator" ]; then
    echo "error: solana-test-validator not found: put it on the PATH or set SOLANA_TEST_VALIDATOR" >&2
    exit 2
  fi
}

# validator_programs WALLET: sets $programs to the --upgradeable-program arguments for the
# five programs (ids as Anchor.toml declares them for localnet, WALLET their upgrade authority).
validator_programs() {
  programs=()
  local p id
  for p in registry oracle energy_token trading governance; do
    id=$(sed -n '/^\[programs.localnet\]/,/^\[/p' Anchor.toml | sed -n "s/^$p = \"\(.*\)\"/\1/p")
    [ -n "$id" ] || { echo "error: no localnet id for $p in Anchor.toml" >&2; exit 2; }
    programs+=(--upgradeable-program "$id" "target/deploy/$p.so" "$1")
  done
}

# validator_start LEDGER PORT LOG [extra arguments, e.g. --reset "${programs[@]}"]: starts the
# validator in the background (pid in $validator_pid) and waits until it is healthy.
validator_start() {
  local ledger=$1 port=$2 log=$3
  shift 3
  "$validator" --quiet --ledger "$ledger" --bind-address 127.0.0.1 --rpc-port "$port" "$@" \
    >>"$log" 2>&1 &
  validator_pid=$!
  local _
  for _ in $(seq 1 120); do
    if curl -sf -X POST -H 'Content-Type: application/json' \
        -d '{"jsonrpc":"2.0","id":1,"method":"getHealth"}' "http://127.0.0.1:$port" | grep -q '"ok"'; then
      return 0
    fi
    if ! kill -0 "$validator_pid" 2>/dev/null; then
      echo "error: the validator exited:" >&2
      tail -20 "$log" >&2
      exit 2
    fi
    sleep 1
  done
  echo "error: the validator did not become healthy in 120 s (see $log)" >&2
  exit 2
}

# Stops the validator started by validator_start (SIGTERM, then waits for it).
validator_stop() {
  if [ -n "${validator_pid:-}" ]; then
    kill "$validator_pid" 2>/dev/null || true
    wait "$validator_pid" 2>/dev/null || true
    validator_pid=
  fi
}
