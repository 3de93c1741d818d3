#!/usr/bin/env bash
# A ransomware incident on the local testnet, from the first alert to the insurance claim:
#
#   1. a collector agent on acme-bank's web server (enrolled for the run) notarizes the
#      first alert and sends heartbeats throughout;
#   2. F-ISAC publishes an early warning (a STIX 2.1 bundle) naming acme-bank;
#   3. acme-bank declares its security posture, detects the incident (level 3), reports it
#      within the hour; F-CERT contains it; the level, deadlines and verdicts follow
#      資通安全事件通報及應變辦法 from committed block times;
#   4. Formosa Insurance's policy covers acme-bank; acme-bank files a claim;
#   5. the insurer reads the incident, the deadlines and acme-bank's risk value, and
#      exports the warning as STIX, which the OASIS validator checks;
#   6. F-CERT exports the incident's evidence bundle; it is verified offline and against
#      the public chain (anvil), and the claim is judged from the bundle alone: evidence
#      anchored after the policy start and before the claim, untampered, deadlines met,
#      collectors complete, with a Markdown report for the claim file.
#
#   scripts/ransomware_demo.sh          (starts the testnet when it is down)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
  -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
  "") ;;
  *) echo "ransomware_demo.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac

"$root/scripts/testnet.sh" up >/dev/null
bin="${CARGO_TARGET_DIR:-$root/target}/release/custos"
keys="$root/testnet/data/keys"
work="$root/testnet/data/demo"
mkdir -p "$work"
net=(--network custos-testnet)
say() { printf '\n== %s\n' "$*"; }
now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }
publish() { # publish <port> <org key> <client> <what...>
  local port="$1" key="$2" client="$3"; shift 3
  "$bin" publish --rpc "http://127.0.0.1:$port" --key "$keys/$key.json" "${net[@]}" \
    --client "$client" "$@"
}
as_insurer=(--rpc http://127.0.0.1:8604 --key "$keys/org-formosa-insurance.json"
  --org formosa-insurance "${net[@]}")
leaf_of() { # the leaf index of a committed leaf hash, waiting for the commit
  local deadline=$((SECONDS + 30))
  until out=$(curl -sf http://127.0.0.1:8604 -H 'content-type: application/json' -d \
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"custos_getInclusionProof\",\"params\":[\"$1\"]}") \
    && jq -e '.result.leaf_index' <<<"$out" >/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "demo: $1 was not committed within 30 s" >&2; exit 1; }
    sleep 0.3
  done
  jq '.result.leaf_index' <<<"$out"
}

rpc_call() { # rpc_call <port> <method> <params json>
  curl -sf "http://127.0.0.1:$1" -H 'content-type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":$3}"
}
anchored_size() { # the largest tree size an anchor receipt on the chain covers
  local from=null best=0 page
  while :; do
    page=$(rpc_call 8601 custos_getAnchors "[$from]") || { echo 0; return; }
    best=$(jq --argjson b "$best" '[$b, (.result.anchors[].tree_size)] | max' <<<"$page")
    from=$(jq '.result.next' <<<"$page")
    [ "$from" = null ] && break
  done
  echo "$best"
}
wait_anchored() { # waits until an anchored checkpoint covers leaf index $1
  local deadline=$((SECONDS + 120))
  until [ "$(anchored_size)" -gt "$1" ]; do
    [ $SECONDS -lt $deadline ] || { echo "demo: leaf $1 was not anchored within 120 s" >&2; exit 1; }
    sleep 1
  done
  echo "leaf $1 is covered by a checkpoint anchored on anvil"
}
wait_cosigned() { # waits until a quorum-cosigned checkpoint covers leaf index $1
  local deadline=$((SECONDS + 60))
  until rpc_call 8601 custos_getCheckpoint '[]' \
    | jq -e --argjson leaf "$1" '.result.source == "stored" and .result.tree_size > $leaf' >/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "demo: leaf $1 was not cosigned within 60 s" >&2; exit 1; }
    sleep 1
  done
}

incident="INC-$(date -u +%Y%m%d-%H%M%S)"
say "1. a collector agent on acme-bank's web server, enrolled for this run, notarizes the first alert"
agent_dir="$work/agent-$incident"
mkdir -p "$agent_dir"
"$bin" keygen --kind collector --out "$agent_dir/collector.json" >/dev/null
"$bin" enroll --rpc http://127.0.0.1:8601 "${net[@]}" --key "$keys/org-custos-soc.json" \
  --collector-key "$agent_dir/collector.json" --client acme-bank --name "acme-web-$incident"
cat > "$agent_dir/collect.toml" <<TOML
network = "custos-testnet"
client = "acme-bank"
key = "collector.json"
spool_dir = "spool"
nodes = ["http://127.0.0.1:8601", "http://127.0.0.1:8602", "http://127.0.0.1:8603"]
heartbeat_interval_ms = 5000               # silence over 10 s would count as a gap
progress_interval_ms = 60000

[[sources]]
type = "file"
path = "eve.json"
format = "suricata-eve"
TOML
: > "$agent_dir/eve.json"
"$bin" collect --config "$agent_dir/collect.toml" 2> "$agent_dir/agent.log" &
agent=$!
trap 'kill "$agent" 2>/dev/null || true' EXIT
sleep 6  # a heartbeat or two before the incident, as on a server that has run for a while
printf '%s\n' "{\"timestamp\":\"$(date -u +%Y-%m-%dT%H:%M:%S.000000+0000)\",\"event_type\":\"alert\",\"src_ip\":\"203.0.113.7\",\"dest_ip\":\"10.0.0.5\",\"alert\":{\"signature_id\":2027000,\"signature\":\"ET MALWARE Ransomware encryptor beacon\",\"severity\":1}}" \
  >> "$agent_dir/eve.json"
echo "the agent (pid $agent) follows $agent_dir/eve.json and sends heartbeats every 5 s"

say "2. F-ISAC publishes an early warning naming acme-bank"
time_now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
cat > "$work/warning.json" <<JSON
{
  "type": "bundle",
  "id": "bundle--$(python3 -c 'import uuid; print(uuid.uuid4())')",
  "objects": [
    { "type": "identity", "spec_version": "2.1", "id": "identity--8f3c2a61-7d4e-4b9a-9c1f-2e5d6a7b8c90",
      "created": "$time_now", "modified": "$time_now", "name": "F-ISAC", "identity_class": "organization" },
    { "type": "indicator", "spec_version": "2.1", "id": "indicator--$(python3 -c 'import uuid; print(uuid.uuid4())')",
      "created_by_ref": "identity--8f3c2a61-7d4e-4b9a-9c1f-2e5d6a7b8c90", "created": "$time_now", "modified": "$time_now",
      "name": "Ransomware command server", "description": "Encryptor beacons seen at several banks.",
      "indicator_types": ["malicious-activity"], "pattern": "[ipv4-addr:value = '203.0.113.7']",
      "pattern_type": "stix", "valid_from": "$time_now" }
  ]
}
JSON
warning=$(publish 8602 org-f-isac acme-bank warning --file "$work/warning.json" --attack T1486)
echo "$warning"

say "3. acme-bank declares its posture, detects the incident (level 3) and reports it"
publish 8601 org-acme-bank acme-bank posture --control security-officer=implemented \
  --control incident-response-plan=implemented --control backups=partial \
  --control multi-factor-auth=absent --note "annual self-assessment"
publish 8601 org-acme-bank acme-bank incident --id "$incident" \
  --note "files encrypted on web-01" detected --level 3 --aware-at-ms "$(now_ms)"
publish 8601 org-acme-bank acme-bank incident --id "$incident" reported
echo "F-CERT contains it"
contained=$(publish 8603 org-f-cert acme-bank incident --id "$incident" \
  --note "web-01 isolated, encryptor removed" contained)
echo "$contained"

say "4. Formosa Insurance's policy; once the evidence is anchored, acme-bank files a claim"
start=$(( $(now_ms) - 86400000 ))
publish 8604 org-formosa-insurance acme-bank policy --policy-id POL-ACME-1 \
  --starts-at-ms "$start" --ends-at-ms $(( start + 365 * 86400000 ))
contained_leaf=$(leaf_of "$(jq -r .leaf_hash <<<"$contained")")
# A claim is judged on evidence that provably existed before it: wait until a checkpoint
# covering the containment record is anchored on the public chain.
wait_anchored "$contained_leaf"
claim=$(publish 8601 org-acme-bank acme-bank claim --claim-id "CLM-$incident" \
  --policy-id POL-ACME-1 --incident-id "$incident" --loss-minor-units 250000000)
echo "$claim"
claim_leaf=$(leaf_of "$(jq -r .leaf_hash <<<"$claim")")

say "5. the insurer's reads: the incident, open deadlines, the risk value"
"$bin" incidents "${as_insurer[@]}" --client acme-bank --id "$incident" \
  | jq '{incident_id, status, level, policy: .policy.title, obligations: [.obligations[] | {duty, due_at_ms, state}]}'
"$bin" deadlines "${as_insurer[@]}" --client acme-bank --within-s 3000000 \
  | jq '[.deadlines[] | {incident_id, duty, due_at_ms, state}]'
"$bin" risk "${as_insurer[@]}" --client acme-bank --days 1 \
  | jq '{value, sub_scores: [.sub_scores[] | {sub_score, value, factors: [.factors[] | "\(.points) \(.description)"]}]}'

say "the warning as STIX 2.1, checked by the OASIS validator"
leaf=$(leaf_of "$(jq -r .leaf_hash <<<"$warning")")
"$bin" warning --rpc http://127.0.0.1:8603 --key "$keys/org-acme-bank.json" --org acme-bank \
  "${net[@]}" --leaf-index "$leaf" --bundle-only > "$work/warning.export.json"
validator="$root/.tools/venv/bin/stix2_validator"
if [ -x "$validator" ]; then
  "$validator" --version 2.1 --strict --enforce-refs "$work/warning.export.json" | tail -2
else
  echo "demo: $validator is missing; scripts/setup.sh installs it" >&2
  exit 1
fi

say "6. F-CERT exports the incident's evidence; the insurer verifies it and judges the claim"
wait_cosigned "$claim_leaf"
bundle="$work/$incident.bundle.json"
"$bin" export --rpc http://127.0.0.1:8603 --key "$keys/org-f-cert.json" --org f-cert \
  "${net[@]}" --client acme-bank --incident "$incident" --out "$bundle"
echo "wrote $bundle ($(wc -c < "$bundle") bytes)"
genesis="$root/testnet/data/genesis.json"
# The summary of each report (the lines after it list every entry's checks).
echo "offline:"
"$bin" verify "$bundle" --genesis "$genesis" | sed -n '1,4p'
echo "against the public chain:"
"$bin" verify "$bundle" --genesis "$genesis" --evm-rpc http://127.0.0.1:8645 | sed -n '1,4p'
"$bin" claim verify "$bundle" --claim-leaf "$claim_leaf" --genesis "$genesis" \
  --evm-rpc http://127.0.0.1:8645 --markdown "$work/CLM-$incident.md" \
  | jq '{holds, checks: [.checks[] | "\(if .passed then "ok  " else "FAIL" end) \(.check): \(.detail)"]}'
echo "the claim report for the insurer's file: $work/CLM-$incident.md"
kill "$agent" 2>/dev/null || true

say "done: claim CLM-$incident verified from its evidence bundle"
