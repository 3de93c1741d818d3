#!/usr/bin/env bash
# The local 4-validator testnet.
#
#   scripts/testnet.sh up       set up, build, generate keys and genesis (first time), start
#                               anvil (the public EVM chain) and the four validators; returns
#                               when all serve RPC and prints, as its last line, a JSON object
#                               with their RPC URLs and anvil's (key "anvil_rpc")
#   scripts/testnet.sh status   height, log size and root of each validator
#   scripts/testnet.sh logs [NAME]   follow the logs (all validators, or one)
#   scripts/testnet.sh down     stop the validators and anvil (data and anvil's chain are kept)
#   scripts/testnet.sh reset    stop and delete all testnet data (keys, chain)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
net="$root/testnet"
data="$net/data"
bin="${CARGO_TARGET_DIR:-$root/target}/release/custos"
names=(control-center isac cert insurer)
say() { printf 'testnet: %s\n' "$*" >&2; }

rpc_url() { echo "http://127.0.0.1:$((8600 + $1 + 1))"; }

# The public chain: anvil on a fixed port, one block a second, its chain kept in
# testnet/data/anvil-state.json across restarts. The control center anchors with anvil's
# first development account (a well-known test key: never use it on a real chain).
anvil_bin="$root/.tools/node_modules/.bin/anvil"
anvil_port=8645
anvil_url="http://127.0.0.1:$anvil_port"
anvil_chain_id=31337
anvil_dev_key=ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80

generate() {
  [ -f "$data/genesis.json" ] && return 0
  say "generating keys and genesis in testnet/data"
  mkdir -p "$data/keys"
  for n in "${names[@]}"; do
    "$bin" keygen --kind validator --out "$data/keys/$n.json" >/dev/null
  done
  for o in custos-soc f-isac f-cert formosa-insurance acme-bank globex-securities; do
    "$bin" keygen --kind organisation --out "$data/keys/org-$o.json" >/dev/null
  done
  for c in acme-web-01 acme-db-01 globex-fw-01 globex-mail-01; do
    "$bin" keygen --kind collector --out "$data/keys/$c.json" >/dev/null
  done
  # Paths in network.toml are relative to testnet/; genesis is written to data/.
  "$bin" genesis --spec "$net/network.toml" --out "$data/genesis.json" >/dev/null
  echo "$anvil_dev_key" > "$data/keys/anvil-dev.key"
  for i in "${!names[@]}"; do
    n="${names[$i]}"
    mkdir -p "$data/$n"
    cat > "$data/$n/node.toml" <<TOML
data_dir = "."
genesis = "../genesis.json"
validator_key = "../keys/$n.json"
p2p_listen = "/ip4/127.0.0.1/tcp/$((26600 + i + 1))"
rpc_listen = "127.0.0.1:$((8600 + i + 1))"
metrics_listen = "127.0.0.1:$((9600 + i + 1))"

# Public anchoring. The control center anchors; the others would take over with
# takeover_after_ms set.
[anchor]
rpc_url = "$anvil_url"
chain_id = $anvil_chain_id
key_file = "../keys/anvil-dev.key"
confirmations = 2
interval_ms = 5000
TOML
  done
}

anvil_running() { [ -f "$data/anvil.pid" ] && kill -0 "$(cat "$data/anvil.pid")" 2>/dev/null; }

start_anvil() {
  anvil_running && return 0
  if [ ! -x "$anvil_bin" ]; then
    say "anvil is not installed at $anvil_bin; run scripts/setup.sh --anvil"; exit 1
  fi
  # npm's launcher runs the native anvil as its child: give them their own process group
  # so `down` stops both.
  setsid nohup "$anvil_bin" --host 127.0.0.1 --port "$anvil_port" --block-time 1 \
    --chain-id "$anvil_chain_id" --state "$data/anvil-state.json" >>"$data/anvil.log" 2>&1 &
  echo $! > "$data/anvil.pid"
  local deadline=$((SECONDS + 30))
  until curl -s -m 2 -H 'Content-Type: application/json' \
      --data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "$anvil_url" >/dev/null; do
    if [ $SECONDS -ge $deadline ]; then say "anvil did not answer at $anvil_url"; tail -20 "$data/anvil.log" >&2; exit 1; fi
    sleep 0.3
  done
  say "anvil serves $anvil_url (chain id $anvil_chain_id)"
}

running() { [ -f "$data/$1/pid" ] && kill -0 "$(cat "$data/$1/pid")" 2>/dev/null; }

start() {
  local n="$1"
  if running "$n"; then return 0; fi
  (
    cd "$data/$n" || exit 1
    nohup "$bin" node run --config node.toml >>node.log 2>&1 &
    echo $! > pid
  )
}

wait_rpc() {
  local deadline=$((SECONDS + ${TESTNET_START_TIMEOUT_S:-60}))
  for i in "${!names[@]}"; do
    until "$bin" status --rpc "$(rpc_url "$i")" >/dev/null 2>&1; do
      if ! running "${names[$i]}"; then
        say "${names[$i]} exited; last log lines:"; tail -20 "$data/${names[$i]}/node.log" >&2; exit 1
      fi
      if [ $SECONDS -ge $deadline ]; then say "${names[$i]} did not serve RPC in time"; exit 1; fi
      sleep 0.5
    done
  done
}

urls_json() {
  local parts=()
  for i in "${!names[@]}"; do parts+=("\"${names[$i]}\":\"$(rpc_url "$i")\""); done
  local IFS=,
  echo "{\"network\":\"custos-testnet\",\"rpc\":{${parts[*]}},\"anvil_rpc\":\"$anvil_url\",\"anvil_chain_id\":$anvil_chain_id}"
}

case "${1:-}" in
  up)
    "$root/scripts/setup.sh" --anvil >&2
    say "building custos (release)"
    (cd "$root" && cargo build --release -p custos-node --bin custos >&2)
    generate
    start_anvil
    for n in "${names[@]}"; do start "$n"; done
    wait_rpc
    say "all four validators serve RPC"
    urls_json
    ;;
  status)
    for i in "${!names[@]}"; do
      if out=$("$bin" status --rpc "$(rpc_url "$i")" 2>/dev/null); then
        python3 -c '
import json, sys
s = json.load(sys.stdin)
print("%-15s height %6d  log size %8d  root %s  peers %d  mempool %d" % (
    s["validator"], s["height"], s["log_size"], s["log_root"][:16], len(s["peers"]), s["mempool_messages"]))
' <<<"$out"
      else
        printf '%-15s not answering\n' "${names[$i]}"
      fi
    done
    ;;
  logs)
    if [ -n "${2:-}" ]; then tail -F "$data/$2/node.log"; else tail -F "$data"/*/node.log; fi
    ;;
  down)
    for n in "${names[@]}"; do
      if running "$n"; then kill "$(cat "$data/$n/pid")"; say "stopped $n"; fi
      rm -f "$data/$n/pid"
    done
    if anvil_running; then
      # SIGTERM to the group: anvil writes its chain to anvil-state.json as it exits.
      kill -TERM -- "-$(cat "$data/anvil.pid")"; say "stopped anvil"
    fi
    rm -f "$data/anvil.pid"
    ;;
  reset)
    "$0" down
    rm -rf "$data"
    say "testnet data removed"
    ;;
  *)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
