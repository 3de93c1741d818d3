//! Joint-defense services against four real validators: an incident's deadlines and the
//! notification when one passes, early warnings delivered by subscription and exported as
//! STIX 2.1 bundles that the OASIS validator accepts, and a risk value every validator
//! computes identically.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonrpsee::core::ClientError;
use jsonrpsee::core::client::Subscription;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};

use custos_ledger::codec::{List, Text};
use custos_ledger::crypto::{SecretKey, Signed};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::incident::{Duty, DutyState, IncidentStatus};
use custos_ledger::message::{
    Control, ControlState, ControlStatus, EvidenceKind, IncidentAction, IncidentEvent,
    IncidentLevel, Kind, Message, PayloadDescriptor, PostureDeclaration, Severity, SeverityLevel,
    SeverityScale, SourceFormat, UnixMillis,
};
use custos_ledger::risk::SubScoreKind;
use custos_node::keys::{KeyFile, KeyKind};
use custos_rpc::token::RpcToken;
use custos_rpc::{
    CustosApiClient, DeadlineEvent, DeadlineNotice, DeadlineQuery, IncidentQuery, MessageRef,
    SubmitMessage, WarningExport, codes,
};

mod common;

use common::{NETWORK, Network, network};

const ORGANISATIONS: [(&str, &str); 5] = [
    ("isac", "warning"),
    ("forensics", "response"),
    ("insurer", "insurer"),
    ("client0", "client"),
    ("client1", "client"),
];
const DEADLINE: Duration = Duration::from_secs(60);
const VALIDATOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../.tools/venv/bin/stix2_validator"
);

/// Signs one author's messages in a chain.
struct Signer {
    key: SecretKey,
    sequence: u64,
    prev: Sha256Hash,
}

impl Signer {
    fn new(key: SecretKey) -> Self {
        Self {
            key,
            sequence: 0,
            prev: Sha256Hash::ZERO,
        }
    }

    fn sign(
        &mut self,
        client: &str,
        kind: Kind,
        attack_ids: &[&str],
        severity: Option<SeverityLevel>,
        payload: &[u8],
    ) -> SubmitMessage {
        self.sequence += 1;
        let message = Message {
            network: Text::new(NETWORK).unwrap(),
            author: self.key.public().key_id(),
            client: Text::new(client).unwrap(),
            sequence: self.sequence,
            prev: self.prev,
            format: if matches!(kind, Kind::EarlyWarning) {
                SourceFormat::Stix21
            } else {
                SourceFormat::Custos
            },
            kind,
            occurred_at: None,
            observed_at: custos_node::runtime::now_ms(),
            severity: severity.map(|level| Severity {
                level,
                original: Text::new("x").unwrap(),
                scale: SeverityScale::Named,
            }),
            rule_id: None,
            host: Some(Text::new("core-banking-01").unwrap()),
            attack_ids: List::new(attack_ids.iter().map(|a| Text::new(*a).unwrap()).collect())
                .unwrap(),
            references: List::empty(),
            parse_error: None,
            payload: PayloadDescriptor::of(Text::new("application/json").unwrap(), payload),
        };
        let envelope = Signed::sign(message, &self.key);
        self.prev = envelope.leaf_hash();
        let b64 = base64::engine::general_purpose::STANDARD;
        SubmitMessage {
            envelope: b64.encode(envelope.leaf_bytes()),
            payload: b64.encode(payload),
        }
    }
}

fn org_key(net: &Network, org: &str) -> SecretKey {
    KeyFile::load(
        &net.dir.path().join(format!("keys/{org}.json")),
        KeyKind::Organisation,
    )
    .unwrap()
}

fn authorization(net: &Network, org: &str) -> String {
    let token = RpcToken::issue(
        &org_key(net, org),
        Text::new(NETWORK).unwrap(),
        Text::new(org).unwrap(),
        custos_node::runtime::now_ms(),
        600_000,
    );
    format!("Custos {token}")
}

fn headers(authorization: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(authorization).unwrap(),
    );
    headers
}

fn http(url: &str, authorization: &str) -> HttpClient {
    HttpClientBuilder::default()
        .set_headers(headers(authorization))
        .build(url)
        .unwrap()
}

async fn ws(url: &str, authorization: &str) -> WsClient {
    WsClientBuilder::default()
        .set_headers(headers(authorization))
        .build(url.replace("http://", "ws://"))
        .await
        .unwrap()
}

fn incident(id: &str, action: IncidentAction) -> Kind {
    Kind::Incident(IncidentEvent {
        incident_id: Text::new(id).unwrap(),
        action,
        note: Text::new("").unwrap(),
    })
}

/// Submits `messages` and waits until every validator has committed them all.
async fn submit(net: &Network, messages: Vec<SubmitMessage>) {
    let count = messages.len();
    let response = net.validators[0].client().submit(messages).await.unwrap();
    assert_eq!(response.admitted, count, "{:?}", response.results);
    let hashes: Vec<Sha256Hash> = response
        .results
        .iter()
        .map(|r| r.leaf_hash.unwrap())
        .collect();
    committed_everywhere(net, &hashes).await;
}

/// Waits until every validator has committed the messages with these leaf hashes.
async fn committed_everywhere(net: &Network, hashes: &[Sha256Hash]) {
    let start = Instant::now();
    for v in &net.validators {
        let client = v.client();
        for hash in hashes {
            while client.get_inclusion_proof(*hash, None).await.is_err() {
                assert!(
                    start.elapsed() < DEADLINE,
                    "{} never committed {hash}",
                    v.name
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Runs the `custos` command with `args`; returns its JSON output.
fn custos(net: &Network, args: &[&str]) -> serde_json::Value {
    let output = Command::new(net.dir.path().join("custos"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "custos {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn next<T: serde::de::DeserializeOwned + std::fmt::Debug>(
    subscription: &mut Subscription<T>,
    what: &str,
) -> T {
    tokio::time::timeout(DEADLINE, subscription.next())
        .await
        .unwrap_or_else(|_| panic!("no {what} notification within {DEADLINE:?}"))
        .unwrap_or_else(|| panic!("the {what} subscription ended"))
        .unwrap()
}

/// A STIX 2.1 bundle as an ISAC would publish it: an indicator and a report, created by
/// the ISAC's identity.
fn isac_bundle() -> Vec<u8> {
    let time = "2024-03-01T00:00:00.000Z";
    let identity = "identity--7d6a1c3e-5b2f-4c8d-9e1a-2b3c4d5e6f70";
    let indicator = "indicator--1e2d3c4b-5a69-4788-9a7b-6c5d4e3f2a10";
    serde_json::to_vec(&serde_json::json!({
        "type": "bundle",
        "id": "bundle--0a9b8c7d-6e5f-4a3b-8c1d-0e9f8a7b6c5d",
        "objects": [
            {
                "type": "identity", "spec_version": "2.1", "id": identity,
                "created": time, "modified": time, "name": "F-ISAC",
                "identity_class": "organization"
            },
            {
                "type": "indicator", "spec_version": "2.1", "id": indicator,
                "created_by_ref": identity, "created": time, "modified": time,
                "name": "Ransomware loader",
                "description": "Loader dropping the encryptor on core banking hosts.",
                "indicator_types": ["malicious-activity"],
                "pattern": "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']",
                "pattern_type": "stix", "valid_from": time
            },
            {
                "type": "report", "spec_version": "2.1",
                "id": "report--3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
                "created_by_ref": identity, "created": time, "modified": time,
                "name": "Ransomware campaign against banks",
                "report_types": ["threat-report"], "published": time,
                "object_refs": [indicator]
            }
        ]
    }))
    .unwrap()
}

/// Runs the OASIS validator (strict, STIX 2.1, references enforced) on `bundle`; returns
/// whether it passed and what it printed.
fn stix_validate(dir: &Path, name: &str, bundle: &serde_json::Value) -> (bool, String) {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(bundle).unwrap()).unwrap();
    let output = Command::new(VALIDATOR)
        .args(["--version", "2.1", "--strict", "--enforce-refs"])
        .arg(&path)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_warnings_and_risk_across_four_validators() {
    assert!(
        Path::new(VALIDATOR).exists(),
        "the OASIS STIX validator is not installed at {VALIDATOR}: run scripts/setup.sh, \
         which installs stix2-validator==3.2.0 into .tools/venv"
    );
    let mut net = network(1, &ORGANISATIONS);
    for v in &mut net.validators {
        v.start();
    }
    common::wait_until_serving(&net.validators, DEADLINE).await;
    let submitter = net.validators[0].client();
    let v1 = &net.validators[1].rpc;

    // Members subscribe before anything is published.
    let client0_auth = authorization(&net, "client0");
    let forensics_auth = authorization(&net, "forensics");
    let warnings_ws = ws(v1, &client0_auth).await;
    let mut warnings: Subscription<WarningExport> = warnings_ws.subscribe_warnings().await.unwrap();
    let deadlines_ws = ws(v1, &forensics_auth).await;
    let mut notices: Subscription<DeadlineNotice> = deadlines_ws
        .subscribe_deadlines(DeadlineQuery {
            client: Some("client0".into()),
            within_ms: Some(2 * 3_600_000),
            as_of_ms: None,
        })
        .await
        .unwrap();

    // A ransomware incident: alerts, heartbeats, a posture declaration, detection (aware
    // almost an hour ago, so the report deadline passes during the test) and warnings.
    let mut collector = Signer::new(net.collectors[0].clone());
    let mut client0 = Signer::new(org_key(&net, "client0"));
    let mut isac = Signer::new(org_key(&net, "isac"));
    let alert = Kind::Evidence {
        evidence: EvidenceKind::Alert,
    };
    let now = custos_node::runtime::now_ms();
    let aware_at = UnixMillis(now.0 - 3_600_000 + 15_000);
    let report_due = aware_at.0 + 3_600_000;
    let mut batch = Vec::new();
    for _ in 0..3 {
        batch.push(collector.sign(
            "client0",
            alert.clone(),
            &["T1486"],
            Some(SeverityLevel::Critical),
            b"{}",
        ));
    }
    batch.push(collector.sign(
        "client0",
        alert.clone(),
        &[],
        Some(SeverityLevel::High),
        b"{}",
    ));
    batch.push(collector.sign(
        "client0",
        Kind::Heartbeat {
            interval_ms: 600_000,
        },
        &[],
        None,
        b"{}",
    ));
    let posture = PostureDeclaration {
        controls: List::new(vec![
            ControlStatus {
                control: Control::SecurityOfficer,
                state: ControlState::Implemented,
            },
            ControlStatus {
                control: Control::Backups,
                state: ControlState::Partial,
            },
        ])
        .unwrap(),
        note: Text::new("annual self-assessment").unwrap(),
    };
    batch.push(client0.sign("client0", Kind::Posture(posture), &[], None, b"{}"));
    let detected = IncidentAction::Detected {
        level: IncidentLevel::new(3).unwrap(),
        aware_at,
    };
    batch.push(client0.sign(
        "client0",
        incident("INC-2024-07", detected),
        &["T1486"],
        None,
        b"{}",
    ));
    batch.push(isac.sign(
        "client0",
        Kind::EarlyWarning,
        &["T1486"],
        None,
        &isac_bundle(),
    ));
    batch.push(isac.sign(
        "isac",
        Kind::EarlyWarning,
        &["T1486", "T1490"],
        None,
        "Ransomware affiliates are deleting shadow copies before encryption.".as_bytes(),
    ));
    submit(&net, batch).await;

    // Warnings arrive by subscription, the STIX bundle verbatim, the text wrapped.
    let first = next(&mut warnings, "warning").await;
    let second = next(&mut warnings, "warning").await;
    assert!(first.verbatim && !second.verbatim);
    assert_eq!(first.publisher, "isac");
    assert_eq!(
        (first.client.as_str(), second.client.as_str()),
        ("client0", "isac")
    );
    assert_eq!(
        serde_json::to_vec(&first.bundle).unwrap(),
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&isac_bundle()).unwrap())
            .unwrap()
    );
    assert_eq!(first.sha256, Sha256Hash::digest(&isac_bundle()));

    // Every export, from another validator, passes the OASIS validator; a broken bundle
    // does not (so the check can fail).
    let v3 = http(&net.validators[3].rpc, &client0_auth);
    for (name, warning) in [("verbatim", &first), ("wrapped", &second)] {
        let export = v3
            .export_warning(MessageRef {
                leaf_hash: Some(warning.leaf_hash),
                ..MessageRef::default()
            })
            .await
            .unwrap();
        assert_eq!(
            &export, warning,
            "the export by reference matches the notification"
        );
        let (valid, report) = stix_validate(net.dir.path(), name, &export.bundle);
        assert!(valid, "{name} bundle refused by stix2-validator:\n{report}");
    }
    let mut broken = second.bundle.clone();
    let last = broken["objects"].as_array().unwrap().len() - 1;
    broken["objects"][last]["published"] = "yesterday".into();
    let (valid, _) = stix_validate(net.dir.path(), "broken", &broken);
    assert!(
        !valid,
        "a report with an invalid timestamp passed the validator"
    );

    // Deadlines: the report is announced as approaching, then as passed when a block's
    // time goes past it.
    let approaching = next(&mut notices, "deadline").await;
    assert_eq!(approaching.event, DeadlineEvent::Approaching);
    assert_eq!(approaching.deadline.duty, Duty::Report);
    assert_eq!(approaching.deadline.due_at_ms, report_due);
    let passed = next(&mut notices, "deadline").await;
    assert_eq!(passed.event, DeadlineEvent::Passed);
    assert_eq!(passed.deadline.due_at_ms, report_due);
    assert!(passed.as_of_ms > report_due, "{passed:?}");

    // Reported late by the response team with the command-line tool, then contained.
    let forensics_key = net.dir.path().join("keys/forensics.json");
    let published = custos(
        &net,
        &[
            "publish",
            "--rpc",
            &net.validators[0].rpc,
            "--key",
            forensics_key.to_str().unwrap(),
            "--network",
            NETWORK,
            "--client",
            "client0",
            "incident",
            "--id",
            "INC-2024-07",
            "reported",
        ],
    );
    assert_eq!(published["sequence"], 1);
    let reported: Sha256Hash = serde_json::from_value(published["leaf_hash"].clone()).unwrap();
    committed_everywhere(&net, &[reported]).await;
    submit(
        &net,
        vec![client0.sign(
            "client0",
            incident("INC-2024-07", IncidentAction::Contained),
            &[],
            None,
            b"{}",
        )],
    )
    .await;
    let insurer = http(&net.validators[2].rpc, &authorization(&net, "insurer"));
    let page = insurer
        .list_incidents(IncidentQuery {
            client: Some("client0".into()),
            ..IncidentQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.incidents.len(), 1);
    let view = &page.incidents[0];
    assert_eq!(view.status, IncidentStatus::Contained);
    assert_eq!(view.policy.as_ref().unwrap().version, 1);
    let states: Vec<(Duty, DutyState)> =
        view.obligations.iter().map(|o| (o.duty, o.state)).collect();
    assert_eq!(
        states,
        [
            (Duty::Report, DutyState::MetLate),
            (Duty::Containment, DutyState::Met),
            (Duty::InvestigationReport, DutyState::Pending)
        ]
    );
    let open = insurer
        .list_incidents(IncidentQuery {
            status: Some(IncidentStatus::Open),
            ..IncidentQuery::default()
        })
        .await
        .unwrap();
    assert!(open.incidents.is_empty(), "{open:?}");
    let due = insurer
        .deadlines(DeadlineQuery {
            client: None,
            within_ms: Some(40 * 86_400_000),
            as_of_ms: None,
        })
        .await
        .unwrap();
    assert_eq!(due.deadlines.len(), 1, "{due:?}");
    assert_eq!(due.deadlines[0].duty, Duty::InvestigationReport);
    // A client reads only its own incidents.
    let client1 = http(&net.validators[2].rpc, &authorization(&net, "client1"));
    let refused = client1
        .get_incident("client0".into(), "INC-2024-07".into(), None)
        .await;
    assert!(
        matches!(&refused, Err(ClientError::Call(e)) if e.code() == codes::FORBIDDEN),
        "{refused:?}"
    );

    // The risk value over a window every validator holds: identical everywhere.
    let mut height = u64::MAX;
    for v in &net.validators {
        height = height.min(v.client().status().await.unwrap().height);
    }
    let block_time = submitter.get_block(height).await.unwrap().header.time.0;
    let (from_ms, to_ms) = (now.0 - 86_400_000, block_time + 1);
    let mut answers = Vec::new();
    for v in &net.validators {
        let answer = http(&v.rpc, &authorization(&net, "insurer"))
            .risk_score("client0".into(), from_ms, Some(to_ms))
            .await
            .unwrap();
        answers.push(serde_json::to_string(&answer).unwrap());
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:#?}");
    let risk: custos_ledger::risk::RiskAssessment = serde_json::from_str(&answers[0]).unwrap();
    let factors = |kind: SubScoreKind| -> Vec<(String, u32)> {
        risk.sub_scores
            .iter()
            .find(|s| s.sub_score == kind)
            .unwrap()
            .factors
            .iter()
            .map(|f| (f.factor.clone(), f.points))
            .collect()
    };
    assert!(factors(SubScoreKind::Management).contains(&("missed-report".into(), 15)));
    let basic = factors(SubScoreKind::BasicSecurity);
    assert!(basic.contains(&("alerts-critical".into(), 30)), "{basic:?}");
    assert!(
        basic.contains(&("incidents-level-3".into(), 35)),
        "{basic:?}"
    );
    assert!(factors(SubScoreKind::InformationSecurity).contains(&("control:backups".into(), 5)));
    assert_eq!(
        factors(SubScoreKind::ExternalThreat),
        [
            ("warnings-targeted".to_owned(), 20),
            ("warnings-matching-techniques".to_owned(), 8)
        ]
    );
    assert!(risk.value > 0 && risk.value <= 100);
    // The command-line tool prints the same answer.
    let insurer_key = net.dir.path().join("keys/insurer.json");
    let printed = custos(
        &net,
        &[
            "risk",
            "--rpc",
            &net.validators[1].rpc,
            "--key",
            insurer_key.to_str().unwrap(),
            "--org",
            "insurer",
            "--network",
            NETWORK,
            "--client",
            "client0",
            "--from-ms",
            &from_ms.to_string(),
            "--to-ms",
            &to_ms.to_string(),
        ],
    );
    assert_eq!(printed, serde_json::to_value(&risk).unwrap());
    // A window beyond the head would change as blocks commit: refused.
    let late = http(&net.validators[0].rpc, &authorization(&net, "insurer"))
        .risk_score("client0".into(), from_ms, Some(u64::MAX))
        .await;
    assert!(
        matches!(&late, Err(ClientError::Call(e)) if e.code() == codes::INVALID_INPUT),
        "{late:?}"
    );
}
