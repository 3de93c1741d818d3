//! Evidence bundles end to end: four `custos` validators anchoring on anvil; a response
//! team exports an incident's bundle with `custos export`, `custos verify` accepts it
//! offline and against anvil, refuses a tampered copy and an anchor later than a claim,
//! and the export is itself on the access-audit log; the client's claim is judged by
//! `custos_verifyClaim` and by `custos claim verify` on the incident's bundle.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine as _;
use custos_ledger::bundle::Bundle;
use custos_rpc::CustosApiClient as _;

mod common;

use common::anvil::Anvil;
use common::{NETWORK, Network, Options, chain, network_with};

const DEADLINE: Duration = Duration::from_secs(90);

fn custos(dir: &Path, args: &[&str]) -> Output {
    Command::new(dir.join("custos"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

fn start(anvil: &Anvil) -> Network {
    let key_dir = tempfile::tempdir().unwrap().keep();
    let section = anvil.anchor_section(&key_dir.join("anvil.key"), 2_000);
    let mut net = network_with(
        2,
        &[
            ("forensics", "response"),
            ("insurer", "insurer"),
            ("client0", "client"),
        ],
        &Options {
            first_role: Some("control-center"),
            checkpoint_interval_ms: 2_000,
            node_extra: vec![section],
        },
    );
    for v in &mut net.validators {
        v.start();
    }
    net
}

/// `custos export` of the incident, repeated until the bundle carries an anchor (its
/// receipt must itself be under a quorum checkpoint first).
fn export_anchored(net: &Network, out: &Path) -> Bundle {
    let dir = net.dir.path();
    let key = dir.join("keys/forensics.json");
    let start = Instant::now();
    loop {
        let output = custos(
            dir,
            &[
                "export",
                "--rpc",
                &net.validators[1].rpc,
                "--key",
                key.to_str().unwrap(),
                "--org",
                "forensics",
                "--network",
                NETWORK,
                "--client",
                "client0",
                "--incident",
                "INC-7",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        if output.status.success() {
            let bundle = Bundle::from_json(&std::fs::read(out).unwrap()).unwrap();
            if !bundle.anchors.is_empty() {
                return bundle;
            }
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no anchored bundle: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `custos publish` as organisation `org` about client0; waits for nothing (the node
/// admits an organisation's chained messages in order).
fn publish(net: &Network, org: &str, what: &[&str]) {
    let key = net.dir.path().join(format!("keys/{org}.json"));
    let mut args = vec![
        "publish",
        "--rpc",
        &net.validators[0].rpc,
        "--key",
        key.to_str().unwrap(),
        "--network",
        NETWORK,
        "--client",
        "client0",
    ];
    args.extend_from_slice(what);
    let output = custos(net.dir.path(), &args);
    assert!(
        output.status.success(),
        "custos publish {what:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Collector `key`'s heartbeat at `sequence`, after the message hashing to `prev`.
fn heartbeat(
    key: &custos_ledger::crypto::SecretKey,
    sequence: u64,
    prev: custos_ledger::hash::Sha256Hash,
) -> (custos_rpc::SubmitMessage, custos_ledger::hash::Sha256Hash) {
    use custos_ledger::codec::{List, Text};
    use custos_ledger::message::{Kind, Message, PayloadDescriptor, SourceFormat, UnixMillis};
    let payload = br#"{"events":6}"#;
    let message = Message {
        network: Text::new(NETWORK).unwrap(),
        author: key.public().key_id(),
        client: Text::new("client0").unwrap(),
        sequence,
        prev,
        kind: Kind::Heartbeat {
            interval_ms: 60_000,
        },
        format: SourceFormat::Raw,
        occurred_at: None,
        observed_at: UnixMillis(sequence),
        severity: None,
        rule_id: None,
        host: None,
        attack_ids: List::empty(),
        references: List::empty(),
        parse_error: None,
        payload: PayloadDescriptor::of(Text::new("application/json").unwrap(), payload),
    };
    let envelope = custos_ledger::crypto::Signed::sign(message, key);
    let b64 = base64::engine::general_purpose::STANDARD;
    (
        custos_rpc::SubmitMessage {
            envelope: b64.encode(envelope.leaf_bytes()),
            payload: b64.encode(payload),
        },
        envelope.leaf_hash(),
    )
}

/// An RPC client with a fresh credential of organisation `org`.
fn org_client(net: &Network, org: &str) -> jsonrpsee::http_client::HttpClient {
    let dir = net.dir.path();
    let token = custos_rpc::token::RpcToken::issue(
        &custos_node::keys::KeyFile::load(
            &dir.join(format!("keys/{org}.json")),
            custos_node::keys::KeyKind::Organisation,
        )
        .unwrap(),
        custos_ledger::codec::Text::new(NETWORK).unwrap(),
        custos_ledger::codec::Text::new(org).unwrap(),
        custos_node::runtime::now_ms(),
        600_000,
    );
    let mut headers = jsonrpsee::http_client::HeaderMap::new();
    headers.insert("authorization", format!("Custos {token}").parse().unwrap());
    jsonrpsee::http_client::HttpClientBuilder::default()
        .set_headers(headers)
        .max_response_size(custos_rpc::MAX_REQUEST_BYTES)
        .build(&net.validators[1].rpc)
        .unwrap()
}

fn verify(dir: &Path, bundle: &Path, extra: &[&str]) -> (bool, serde_json::Value) {
    let genesis = dir.join("genesis.json");
    let mut args = vec![
        "verify",
        bundle.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--require-anchor",
        "--json",
    ];
    args.extend_from_slice(extra);
    let output = custos(dir, &args);
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "custos verify printed no JSON report ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), report)
}

fn checks(report: &serde_json::Value) -> Vec<(String, String)> {
    report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_owned(),
                f["item"].to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_bundle_is_exported_verified_offline_and_on_anvil_and_tampering_fails() {
    let anvil = Anvil::start(1);
    let net = start(&anvil);
    common::wait_until_serving(&net.validators, DEADLINE).await;
    let dir = net.dir.path();

    publish(
        &net,
        "insurer",
        &[
            "policy",
            "--policy-id",
            "POL-1",
            "--starts-at-ms",
            "0",
            "--ends-at-ms",
            "4102444800000",
        ],
    );
    publish(
        &net,
        "forensics",
        &["incident", "--id", "INC-7", "detected", "--level", "2"],
    );
    publish(
        &net,
        "forensics",
        &["incident", "--id", "INC-7", "reported"],
    );
    publish(
        &net,
        "forensics",
        &["incident", "--id", "INC-7", "contained"],
    );
    let mut messages = chain(&net.collectors[0], "client0", 6, 48);
    messages.push(heartbeat(&net.collectors[0], 7, messages[5].1));
    let response = net.validators[1]
        .client()
        .submit(messages.iter().map(|(m, _)| m.clone()).collect())
        .await
        .unwrap();
    assert_eq!(response.admitted, 7, "{:?}", response.results);
    common::wait_for_log_size(&net.validators, 11, DEADLINE).await;

    let path = dir.join("incident.bundle.json");
    let bundle = export_anchored(&net, &path);
    let exported: Vec<_> = bundle
        .entries
        .iter()
        .map(|e| {
            custos_ledger::message::Envelope::decode(
                &base64::engine::general_purpose::STANDARD
                    .decode(&e.envelope)
                    .unwrap(),
            )
            .unwrap()
            .leaf_hash()
        })
        .collect();
    for (_, hash) in &messages {
        assert!(
            exported.contains(hash),
            "collector message {hash} not exported"
        );
    }
    assert!(bundle.entries.iter().all(|e| e.payload.is_some()));

    // Offline, then against anvil.
    let (ok, report) = verify(dir, &path, &[]);
    assert!(ok, "{report:#}");
    assert_eq!(report["checked_on_chain"], false);
    assert_eq!(report["genesis_trusted"], true);
    let (ok, report) = verify(dir, &path, &["--evm-rpc", &anvil.url]);
    assert!(ok, "{report:#}");
    assert_eq!(report["checked_on_chain"], true);
    assert_eq!(report["anchors_verified"], serde_json::json!([0]));
    // Committed times are proven by the blocks the bundle carries: each is the time of the
    // block another validator serves at that height, and the leaf is one of its leaves.
    let entries = report["entries"].as_array().unwrap();
    assert_eq!(entries.len(), bundle.entries.len());
    for entry in entries {
        let height = entry["block_height"].as_u64().unwrap();
        let block = net.validators[2].client().get_block(height).await.unwrap();
        assert_eq!(
            entry["committed_at_ms"].as_u64(),
            Some(block.header.time.0),
            "{entry}"
        );
        let leaf = entry["leaf_index"].as_u64().unwrap();
        assert!(
            (block.first_leaf..block.header.log_size).contains(&leaf),
            "{entry}"
        );
    }
    independent_verifier_agrees(&path, &bundle, entries);
    let readable = custos(
        dir,
        &["verify", path.to_str().unwrap(), "--evm-rpc", &anvil.url],
    );
    assert!(readable.status.success());
    let text = String::from_utf8_lossy(&readable.stdout);
    assert!(
        text.contains(": PASSED") && text.contains("on the public chain"),
        "{text}"
    );

    // A claim filed before the anchor's block cannot rely on it.
    let (ok, report) = verify(dir, &path, &["--anchored-by-ms", "1000"]);
    assert!(!ok);
    assert!(
        checks(&report).iter().any(|(c, _)| c == "anchored-before"),
        "{report:#}"
    );

    // One flipped payload byte: exit 1, the entry and the check named.
    let mut tampered = bundle.clone();
    let target = tampered
        .entries
        .iter_mut()
        .find(|e| e.payload.as_ref().is_some_and(|p| !p.is_empty()))
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut payload = b64.decode(target.payload.as_ref().unwrap()).unwrap();
    payload[0] ^= 0x20;
    target.payload = Some(b64.encode(payload));
    let leaf = target.leaf_index;
    let bad = dir.join("tampered.bundle.json");
    std::fs::write(&bad, tampered.to_json()).unwrap();
    let (ok, report) = verify(dir, &bad, &["--evm-rpc", &anvil.url]);
    assert!(!ok);
    assert_eq!(
        checks(&report),
        [(
            "payload-digest".to_owned(),
            format!("{{\"item\":\"entry\",\"leaf_index\":{leaf}}}")
        )]
    );

    // The export is on the audit log, attributed to the response team.
    let client = org_client(&net, "forensics");
    let start = Instant::now();
    loop {
        let page = client.get_audit_log(None, None).await.unwrap();
        let exports: Vec<_> = page
            .records
            .iter()
            .filter(|r| r.audit.method.as_str() == "custos_exportEvidence")
            .collect();
        // Earlier attempts were audited too; the one that returned this bundle must be.
        let covering = exports.iter().any(|r| {
            bundle
                .entries
                .iter()
                .all(|e| r.audit.leaf_indexes.contains(&e.leaf_index))
        });
        if covering {
            assert!(
                exports
                    .iter()
                    .all(|r| r.audit.reader.as_str() == "forensics")
            );
            break;
        }
        assert!(start.elapsed() < DEADLINE, "export never audited");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The client files a claim; the insurer's node judges it, and so does anyone holding
    // the incident's bundle.
    let claim = custos(
        dir,
        &[
            "publish",
            "--rpc",
            &net.validators[0].rpc,
            "--key",
            dir.join("keys/client0.json").to_str().unwrap(),
            "--network",
            NETWORK,
            "--client",
            "client0",
            "claim",
            "--claim-id",
            "CLM-7",
            "--policy-id",
            "POL-1",
            "--incident-id",
            "INC-7",
            "--loss-minor-units",
            "1250000",
        ],
    );
    assert!(
        claim.status.success(),
        "{}",
        String::from_utf8_lossy(&claim.stderr)
    );
    let claim: serde_json::Value = serde_json::from_slice(&claim.stdout).unwrap();
    let claim_hash: custos_ledger::hash::Sha256Hash =
        serde_json::from_value(claim["leaf_hash"].clone()).unwrap();
    let insurer = org_client(&net, "insurer");
    let start = Instant::now();
    let judged = loop {
        let reference = custos_rpc::MessageRef {
            leaf_hash: Some(claim_hash),
            ..custos_rpc::MessageRef::default()
        };
        match insurer.verify_claim(reference).await {
            Ok(judged) => break judged,
            Err(e) => assert!(start.elapsed() < DEADLINE, "claim never judged: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(judged.holds, "{}", judged.markdown);
    assert!(
        judged.markdown.starts_with("# Claim CLM-7 — HOLDS"),
        "{}",
        judged.markdown
    );
    let claim_leaf = judged.verdict["claim_leaf"].as_u64().unwrap();

    let with_claim = dir.join("claim.bundle.json");
    let claim_bundle = export_anchored(&net, &with_claim);
    assert!(
        claim_bundle
            .entries
            .iter()
            .any(|e| e.leaf_index == claim_leaf)
    );
    let report = dir.join("claim.md");
    let output = custos(
        dir,
        &[
            "claim",
            "verify",
            with_claim.to_str().unwrap(),
            "--claim-leaf",
            &claim_leaf.to_string(),
            "--genesis",
            dir.join("genesis.json").to_str().unwrap(),
            "--evm-rpc",
            &anvil.url,
            "--markdown",
            report.to_str().unwrap(),
        ],
    );
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let verdict: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(verdict["holds"], true);
    let markdown = std::fs::read_to_string(&report).unwrap();
    assert!(markdown.contains("| deadlines-met | pass |"), "{markdown}");
}

/// The independent verifier, written in Python from `docs/evidence-bundle.md` alone:
/// it accepts the bundle with the same genesis hash and finds the same entries, times and
/// anchors as `custos verify`, and its own tamper cases are each caught by the check the
/// specification names.
fn independent_verifier_agrees(path: &Path, bundle: &Bundle, rust: &[serde_json::Value]) {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/venv/bin/python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/verify_bundle.py");
    assert!(
        Path::new(python).exists(),
        "{python} is missing: run scripts/setup.sh, which installs the Python verifier's \
         packages into .tools/venv"
    );
    let run = |args: &[&str]| {
        let output = Command::new(python)
            .arg(script)
            .args(args)
            .output()
            .expect("the venv's python runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "verify_bundle.py {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let genesis_hash = bundle.genesis_hash.to_string();
    let report: serde_json::Value = serde_json::from_str(&run(&[
        path.to_str().unwrap(),
        "--genesis-hash",
        &genesis_hash,
    ]))
    .unwrap();
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["genesis_trusted"], true);
    let fields = [
        "leaf_index",
        "leaf_hash",
        "block_height",
        "committed_at_ms",
        "anchored_before_s",
    ];
    let view = |entries: &[serde_json::Value]| -> Vec<Vec<serde_json::Value>> {
        entries
            .iter()
            .map(|e| fields.iter().map(|f| e[*f].clone()).collect())
            .collect()
    };
    assert_eq!(view(report["entries"].as_array().unwrap()), view(rust));
    run(&["--self-test", path.to_str().unwrap()]);
}
