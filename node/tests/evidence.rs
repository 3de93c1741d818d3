//! Evidence bundles end to end: four `custos` validators anchoring on anvil; a response
//! team exports an incident's bundle with `custos export`, `custos verify` accepts it
//! offline and against anvil, refuses a tampered copy and an anchor later than a claim,
//! and the export is itself on the access-audit log.

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
        &[("forensics", "response")],
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

    let published = custos(
        dir,
        &[
            "publish",
            "--rpc",
            &net.validators[0].rpc,
            "--key",
            dir.join("keys/forensics.json").to_str().unwrap(),
            "--network",
            NETWORK,
            "--client",
            "client0",
            "incident",
            "--id",
            "INC-7",
            "detected",
            "--level",
            "2",
        ],
    );
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    let messages = chain(&net.collectors[0], "client0", 6, 48);
    let response = net.validators[1]
        .client()
        .submit(messages.iter().map(|(m, _)| m.clone()).collect())
        .await
        .unwrap();
    assert_eq!(response.admitted, 6, "{:?}", response.results);
    common::wait_for_log_size(&net.validators, 7, DEADLINE).await;

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
    let token = custos_rpc::token::RpcToken::issue(
        &custos_node::keys::KeyFile::load(
            &dir.join("keys/forensics.json"),
            custos_node::keys::KeyKind::Organisation,
        )
        .unwrap(),
        custos_ledger::codec::Text::new(NETWORK).unwrap(),
        custos_ledger::codec::Text::new("forensics").unwrap(),
        custos_node::runtime::now_ms(),
        60_000,
    );
    let mut headers = jsonrpsee::http_client::HeaderMap::new();
    headers.insert("authorization", format!("Custos {token}").parse().unwrap());
    let client = jsonrpsee::http_client::HttpClientBuilder::default()
        .set_headers(headers)
        .build(&net.validators[1].rpc)
        .unwrap();
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
}
