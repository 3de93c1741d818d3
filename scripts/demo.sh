#!/usr/bin/env bash
# The main job in one command: set up, build and start the local 4-validator testnet, then
# have four collectors on two client organisations submit signed log lines through
# different validators, show every validator committing the same log, and check the
# checkpoint anchored on the testnet's anvil.
#
#   scripts/demo.sh [--messages N]     N lines per collector (default 500)
#
# Run it again to add more; `scripts/testnet.sh down` stops the validators.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
per_collector=500
while [ $# -gt 0 ]; do
  case "$1" in
    --messages) per_collector="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done

"$root/scripts/testnet.sh" up
bin="${CARGO_TARGET_DIR:-$root/target}/release/custos"
keys="$root/testnet/data/keys"
status() { "$bin" status --rpc "http://127.0.0.1:$1"; }
log_size() { status "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["log_size"])'; }

before=$(log_size 8601)
echo "demo: four collectors submit $per_collector signed log lines each, through four different validators"
collectors=(acme-web-01:acme-bank:8601 acme-db-01:acme-bank:8602 globex-fw-01:globex-securities:8603 globex-mail-01:globex-securities:8604)
for c in "${collectors[@]}"; do
  IFS=: read -r key client port <<<"$c"
  "$bin" send --rpc "http://127.0.0.1:$port" --key "$keys/$key.json" --client "$client" \
    --network custos-testnet --count "$per_collector" \
    --text "<134>1 {time} $key sshd 4242 - - Failed password for root from 203.0.113.7 port 52311 ssh2 (line {n})" >/dev/null &
done
wait
target=$((before + 4 * per_collector))
deadline=$((SECONDS + 60))
until [ "$(log_size 8604)" -ge "$target" ]; do
  [ $SECONDS -lt $deadline ] || { echo "demo: messages were not committed within 60 s" >&2; exit 1; }
  sleep 0.2
done
sleep 1
echo "demo: committed; every validator holds the same log:"
"$root/scripts/testnet.sh" status

# Public anchoring: wait for an anchor covering these messages, then check it against anvil
# trusting only genesis.
echo "demo: waiting for a quorum checkpoint covering log size $target to be anchored on anvil"
anchored() {
  curl -s -m 5 -H 'content-type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"custos_getAnchors","params":[]}' http://127.0.0.1:8603 |
    python3 -c 'import json,sys; a=json.load(sys.stdin)["result"]["anchors"]; print(max([x["tree_size"] for x in a] or [0]))'
}
deadline=$((SECONDS + 60))
until [ "$(anchored)" -ge "$target" ]; do
  [ $SECONDS -lt $deadline ] || { echo "demo: no anchor within 60 s" >&2; exit 1; }
  sleep 1
done
"$bin" anchor verify --genesis "$root/testnet/data/genesis.json" \
  --evm-rpc http://127.0.0.1:8645 --rpc http://127.0.0.1:8603
echo "demo: metrics at http://127.0.0.1:9601/metrics, logs with scripts/testnet.sh logs, stop with scripts/testnet.sh down"
