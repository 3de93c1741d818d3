#!/usr/bin/env bash
# A ransomware incident on the local testnet, from the first alert to the insurance claim:
#
#   1. a collector on acme-bank's web server notarizes the first alert;
#   2. F-ISAC publishes an early warning (a STIX 2.1 bundle) naming acme-bank;
#   3. acme-bank declares its security posture, detects the incident (level 3), reports it
#      within the hour; F-CERT contains it; the level, deadlines and verdicts follow
#      資通安全事件通報及應變辦法 from committed block times;
#   4. Formosa Insurance's policy covers acme-bank; acme-bank files a claim;
#   5. the insurer reads the incident, the deadlines and acme-bank's risk value, and
#      exports the warning as STIX, which the OASIS validator checks.
#
# Claim verification (did the evidence exist before the claim, were the deadlines met,
# is the collectors' record complete) is issue 8's `custos verify`; this script stops at
# the filed claim and the insurer's reads.
#
#   scripts/ransomware_demo.sh          (starts the testnet when it is down)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
case "${1:-}" in
  -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
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

incident="INC-$(date -u +%Y%m%d-%H%M%S)"
say "1. the first alert: acme-web-01 notarizes a Suricata alert line"
"$bin" send --rpc http://127.0.0.1:8601 --key "$keys/acme-web-01.json" --client acme-bank \
  "${net[@]}" --count 1 --text '{"timestamp":"{time}","event_type":"alert","src_ip":"203.0.113.7","dest_ip":"10.0.0.5","alert":{"signature":"ET MALWARE Ransomware encryptor beacon","severity":1}}'

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

say "4. Formosa Insurance's policy; acme-bank files a claim"
start=$(( $(now_ms) - 86400000 ))
publish 8604 org-formosa-insurance acme-bank policy --policy-id POL-ACME-1 \
  --starts-at-ms "$start" --ends-at-ms $(( start + 365 * 86400000 ))
claim=$(publish 8601 org-acme-bank acme-bank claim --claim-id "CLM-$incident" \
  --policy-id POL-ACME-1 --incident-id "$incident" --loss-minor-units 250000000)
echo "$claim"
leaf_of "$(jq -r .leaf_hash <<<"$contained")" >/dev/null
leaf_of "$(jq -r .leaf_hash <<<"$claim")" >/dev/null

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

say "done: claim CLM-$incident is filed; verifying it is issue 8 (custos verify)"
