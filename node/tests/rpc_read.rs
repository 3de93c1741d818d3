//! The public read methods against four real validators: blocks, checkpoints, inclusion
//! proofs (JSON and C2SP tlog-proof) and consistency proofs verify independently, and
//! every refusal carries the code and message that says what was wrong.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonrpsee::core::ClientError;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;

use custos_ledger::c2sp::{
    Checkpoint, CosignatureVerifier, KeyName, Note, QuorumPolicy, TlogProof,
};
use custos_ledger::codec::Text;
use custos_ledger::crypto::{PublicKey, SecretKey};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::merkle::{verify_consistency, verify_inclusion};
use custos_ledger::message::UnixMillis;
use custos_node::keys::{KeyFile, KeyKind};
use custos_rpc::token::RpcToken;
use custos_rpc::{CheckpointSource, CustosApiClient, MessageRef, QueryFilter, codes};

mod common;

use common::{NETWORK, Network, ORIGIN, chain, network};

const COLLECTORS: usize = 1;
/// Organisations in genesis, with their roles.
const ORGANISATIONS: [(&str, &str); 4] = [
    ("forensics", "response"),
    ("insurer", "insurer"),
    ("client0", "client"),
    ("client1", "client"),
];
const DEADLINE: Duration = Duration::from_secs(40);

/// The code and message of a refused call (with its data, where jsonrpsee puts the
/// details of invalid params).
fn refusal<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (i32, String) {
    match result {
        Err(ClientError::Call(e)) => match e.data() {
            Some(data) => (e.code(), format!("{}: {}", e.message(), data.get())),
            None => (e.code(), e.message().to_owned()),
        },
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

fn policy(keys: &[PublicKey], names: &[&str], threshold: usize) -> QuorumPolicy {
    let cosigners = keys
        .iter()
        .zip(names)
        .map(|(k, n)| {
            CosignatureVerifier::from_public_key(KeyName::new(*n).unwrap(), &k.0).unwrap()
        })
        .collect();
    QuorumPolicy::new(ORIGIN, cosigners, threshold).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_reads_verify_independently_and_refuse_precisely() {
    let mut net = network(COLLECTORS, &ORGANISATIONS);
    for v in &mut net.validators {
        v.start();
    }
    common::wait_until_serving(&net.validators, DEADLINE).await;
    let client = net.validators[0].client();
    let messages = chain(&net.collectors[0], "client0", 5, 64);
    let response = client
        .submit(messages.iter().map(|(m, _)| m.clone()).collect())
        .await
        .unwrap();
    assert_eq!(response.admitted, 5, "{:?}", response.results);
    let hashes: Vec<Sha256Hash> = messages.iter().map(|(_, h)| *h).collect();
    common::wait_for_log_size(&net.validators, 5, DEADLINE).await;

    // Blocks: walking them from height 1 gives the submitted leaves in order, each block's
    // range ending at its header's log size, finalized by a quorum.
    let status = client.status().await.unwrap();
    let mut leaves = Vec::new();
    for height in 1..=status.height {
        let block = client.get_block(height).await.unwrap();
        assert_eq!(block.header.height, height);
        assert_eq!(block.first_leaf, leaves.len() as u64);
        assert_eq!(
            block.header.log_size,
            block.first_leaf + block.leaf_hashes.len() as u64
        );
        assert!(block.commit_signatures >= 3, "{}", block.commit_signatures);
        if height > 1 {
            let parent = client.get_block(height - 1).await.unwrap();
            assert_eq!(block.header.parent, parent.id);
        }
        leaves.extend(block.leaf_hashes);
    }
    assert_eq!(leaves[..5], hashes[..]);
    let (code, message) = refusal(client.get_block(0).await);
    assert_eq!(code, codes::NOT_FOUND);
    assert!(
        message.contains("no block at height 0: blocks are numbered from 1"),
        "{message}"
    );
    let (code, message) = refusal(client.get_block(u64::MAX).await);
    assert_eq!(code, codes::NOT_FOUND);
    assert!(
        message.contains(&format!("no block at height {}", u64::MAX)),
        "{message}"
    );

    // The checkpoint of the head is cosigned by the answering validator alone: a policy
    // trusting that validator accepts it, a 3-of-4 quorum policy refuses it.
    let names = ["v0", "v1", "v2", "v3"];
    let alone = policy(&net.validator_keys[..1], &names[..1], 1);
    let quorum = policy(&net.validator_keys, &names, 3);
    let checkpoint = client.get_checkpoint(None).await.unwrap();
    assert_eq!(checkpoint.source, CheckpointSource::SingleValidator);
    assert_eq!(checkpoint.signers, vec!["v0".to_owned()]);
    assert!(checkpoint.tree_size >= 5);
    let verified = alone.verify_bytes(checkpoint.note.as_bytes()).unwrap();
    assert_eq!(verified.checkpoint().root().hash, checkpoint.root);
    assert_eq!(verified.checkpoint().root().tree_size, checkpoint.tree_size);
    assert!(quorum.verify_bytes(checkpoint.note.as_bytes()).is_err());
    let parsed = Checkpoint::from_note(&Note::parse(checkpoint.note.as_bytes()).unwrap()).unwrap();
    assert_eq!(parsed.origin(), ORIGIN);
    let (code, message) = refusal(client.get_checkpoint(Some(1 << 40)).await);
    assert_eq!(code, codes::NOT_FOUND);
    assert!(
        message.contains(&format!("tree size {} is beyond the log", 1u64 << 40)),
        "{message}"
    );
    let (code, message) = refusal(client.get_checkpoint(Some(1)).await);
    assert_eq!(code, codes::NOT_FOUND);
    assert!(
        message.contains("no checkpoint is stored for tree size 1"),
        "{message}"
    );

    // Inclusion proofs: the JSON path and the tlog-proof both verify, for every leaf,
    // and on a validator other than the one that took the submission.
    let other = net.validators[2].client();
    let other_alone = policy(&net.validator_keys[2..3], &names[2..3], 1);
    for (index, hash) in hashes.iter().enumerate() {
        let proof = other.get_inclusion_proof(*hash, None).await.unwrap();
        assert_eq!(proof.leaf_index, index as u64);
        assert_eq!(proof.checkpoint.signers, vec!["v2".to_owned()]);
        verify_inclusion(
            hash.as_bytes(),
            proof.leaf_index,
            proof.tree_size,
            &proof.path,
            proof.root.as_bytes(),
        )
        .unwrap();
        let tlog = TlogProof::parse(proof.tlog_proof.as_bytes()).unwrap();
        assert_eq!(tlog.index(), index as u64);
        tlog.verify(hash, &other_alone).unwrap();
        // A proof checked against another leaf's hash must fail.
        let wrong = hashes[(index + 1) % hashes.len()];
        assert!(tlog.verify(&wrong, &other_alone).is_err());
        assert!(
            tlog.verify(hash, &alone).is_err(),
            "v0 did not sign v2's checkpoint"
        );
    }
    let unknown = Sha256Hash::digest(b"never submitted");
    let (code, message) = refusal(client.get_inclusion_proof(unknown, None).await);
    assert_eq!(code, codes::NOT_FOUND);
    assert_eq!(
        message,
        format!("no message with leaf hash {unknown} is in the log")
    );
    let (code, message) = refusal(client.get_inclusion_proof(hashes[0], Some(1)).await);
    assert_eq!(code, codes::NOT_FOUND);
    assert!(
        message.contains("no checkpoint is stored for tree size 1"),
        "{message}"
    );

    // Consistency proofs between every pair of sizes up to the leaves seen verify
    // against the roots the block headers committed to.
    let mut roots = vec![(0, None)];
    for height in 1..=status.height {
        let header = client.get_block(height).await.unwrap().header;
        roots.push((header.log_size, Some(header.log_root)));
    }
    for &(old_size, old_root) in &roots {
        for &(new_size, new_root) in &roots {
            if old_size > new_size || old_size == 0 {
                continue;
            }
            let proof = client
                .get_consistency_proof(old_size, Some(new_size))
                .await
                .unwrap();
            if let Some(root) = old_root {
                assert_eq!(proof.old_root, root);
            }
            assert_eq!(Some(proof.new_root), new_root.or(Some(proof.new_root)));
            verify_consistency(
                old_size,
                new_size,
                proof.old_root.as_bytes(),
                proof.new_root.as_bytes(),
                &proof.path,
            )
            .unwrap();
        }
    }
    let (code, message) = refusal(client.get_consistency_proof(0, Some(3)).await);
    assert_eq!(code, codes::INVALID_INPUT);
    assert!(message.contains("old_size must be at least 1"), "{message}");
    let latest = client.get_consistency_proof(2, None).await.unwrap();
    assert!(latest.new_size >= 5);
    let (code, message) = refusal(client.get_consistency_proof(4, Some(3)).await);
    assert_eq!(code, codes::INVALID_INPUT);
    assert_eq!(message, "old_size 4 is larger than new_size 3");
    let (code, message) = refusal(client.get_consistency_proof(1, Some(1 << 50)).await);
    assert_eq!(code, codes::NOT_FOUND);
    assert!(message.contains("is beyond the log"), "{message}");

    // Malformed parameters are refused with invalid params, naming the problem.
    let raw = &client;
    let bad: Result<serde_json::Value, _> = raw
        .request("custos_getInclusionProof", rpc_params!["zz"])
        .await;
    let (code, message) = refusal(bad);
    assert_eq!(code, codes::INVALID_INPUT);
    assert!(message.contains("64 hex digits"), "{message}");
    let bad: Result<serde_json::Value, _> =
        raw.request("custos_getBlock", rpc_params!["seven"]).await;
    assert_eq!(refusal(bad).0, codes::INVALID_INPUT);
    let bad: Result<serde_json::Value, _> = raw.request("custos_getBlock", rpc_params![-1]).await;
    assert_eq!(refusal(bad).0, codes::INVALID_INPUT);
    // And the node keeps serving.
    client.get_block(1).await.unwrap();

    // Block subscriptions over WebSocket: consecutive heights, and the block that commits
    // a newly submitted message carries its leaf hash.
    let ws_url = net.validators[3].rpc.replace("http://", "ws://");
    let ws = WsClientBuilder::default().build(&ws_url).await.unwrap();
    let mut blocks = ws.subscribe_blocks().await.unwrap();
    let more = chain(&net.collectors[0], "client0", 7, 64);
    let response = client
        .submit(more[5..].iter().map(|(m, _)| m.clone()).collect())
        .await
        .unwrap();
    assert_eq!(response.admitted, 2, "{:?}", response.results);
    let mut previous: Option<u64> = None;
    let mut seen = Vec::new();
    let start = Instant::now();
    while !seen.contains(&more[6].1) {
        assert!(
            start.elapsed() < DEADLINE,
            "no block carried the new messages"
        );
        let block = tokio::time::timeout(Duration::from_secs(10), blocks.next())
            .await
            .expect("a block within 10 s")
            .expect("subscription open")
            .unwrap();
        if let Some(h) = previous {
            assert_eq!(block.header.height, h + 1);
        }
        previous = Some(block.header.height);
        seen.extend(block.leaf_hashes);
    }
    assert!(seen.contains(&more[5].1));
    // At most 16 subscriptions on one connection.
    let mut held = Vec::new();
    for _ in 1..custos_rpc::MAX_SUBSCRIPTIONS_PER_CONNECTION {
        held.push(ws.subscribe_blocks().await.unwrap());
    }
    let refused = ws.subscribe_blocks().await;
    assert!(refused.is_err(), "a 17th subscription was accepted");
}

/// A WebSocket client that sends `authorization` with its upgrade request.
async fn ws_with(url: &str, authorization: &str) -> jsonrpsee::ws_client::WsClient {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(authorization).unwrap(),
    );
    WsClientBuilder::default()
        .set_headers(headers)
        .build(url.replace("http://", "ws://"))
        .await
        .unwrap()
}

/// The next `count` notifications of a message subscription.
async fn next_messages(
    subscription: &mut jsonrpsee::core::client::Subscription<custos_rpc::MessageInfo>,
    count: usize,
) -> Vec<custos_rpc::MessageInfo> {
    let mut messages = Vec::new();
    while messages.len() < count {
        let next = tokio::time::timeout(DEADLINE, subscription.next())
            .await
            .expect("a message within the deadline")
            .expect("subscription open")
            .unwrap();
        messages.push(next);
    }
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_subscriptions_deliver_permitted_matches_and_are_audited() {
    let mut net = network(2, &ORGANISATIONS);
    for v in &mut net.validators {
        v.start();
    }
    common::wait_until_serving(&net.validators, DEADLINE).await;
    let url = net.validators[2].rpc.clone();
    let filter = |client: &str| QueryFilter {
        client: client.into(),
        kind: Some("evidence".into()),
        ..QueryFilter::default()
    };
    let forensics_token = format!("Custos {}", cli_token(&net, "forensics", "600"));
    let forensics = ws_with(&url, &forensics_token).await;
    let mut of_client0 = forensics
        .subscribe_messages(filter("client0"))
        .await
        .unwrap();
    let client1 = ws_with(
        &url,
        &format!("Custos {}", cli_token(&net, "client1", "600")),
    )
    .await;
    let mut of_client1 = client1.subscribe_messages(filter("client1")).await.unwrap();
    // A subscription whose credential expires ends then.
    let short = ws_with(
        &url,
        &format!("Custos {}", cli_token(&net, "forensics", "2")),
    )
    .await;
    let mut expiring = short.subscribe_messages(filter("client0")).await.unwrap();

    // Refusals, each with its reason.
    let anonymous = WsClientBuilder::default()
        .build(url.replace("http://", "ws://"))
        .await
        .unwrap();
    let (code, message) = refusal(anonymous.subscribe_messages(filter("client0")).await);
    assert_eq!(code, codes::UNAUTHENTICATED, "{message}");
    let (code, message) = refusal(client1.subscribe_messages(filter("client0")).await);
    assert_eq!(code, codes::FORBIDDEN, "{message}");
    let paged = QueryFilter {
        limit: Some(10),
        ..filter("client0")
    };
    let (code, message) = refusal(forensics.subscribe_messages(paged).await);
    assert_eq!(code, codes::INVALID_INPUT);
    assert!(message.contains("after and limit"), "{message}");
    let unknown_kind = QueryFilter {
        kind: Some("gossip".into()),
        ..filter("client0")
    };
    let (code, message) = refusal(forensics.subscribe_messages(unknown_kind).await);
    assert_eq!(code, codes::INVALID_INPUT);
    assert!(message.contains("unknown kind"), "{message}");

    // Messages for both clients: each subscriber sees exactly its client's, in order.
    let zero = chain(&net.collectors[0], "client0", 4, 80);
    let one = chain(&net.collectors[1], "client1", 3, 80);
    let submitter = net.validators[0].client();
    for batch in [&zero, &one] {
        let response = submitter
            .submit(batch.iter().map(|(m, _)| m.clone()).collect())
            .await
            .unwrap();
        assert_eq!(response.admitted, batch.len(), "{:?}", response.results);
    }
    let seen0 = next_messages(&mut of_client0, zero.len()).await;
    let seen1 = next_messages(&mut of_client1, one.len()).await;
    for (seen, sent, client) in [(&seen0, &zero, "client0"), (&seen1, &one, "client1")] {
        let hashes: Vec<Sha256Hash> = seen.iter().map(|m| m.leaf_hash).collect();
        let expected: Vec<Sha256Hash> = sent.iter().map(|(_, h)| *h).collect();
        assert_eq!(hashes, expected, "{client}");
        assert!(seen.iter().all(|m| m.message.client.as_str() == client));
    }
    let ended = tokio::time::timeout(DEADLINE, async {
        loop {
            match expiring.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "a subscription outlived its credential");

    // Every delivery is in the audit log of all four validators.
    let delivered: std::collections::BTreeSet<u64> = seen0.iter().map(|m| m.leaf_index).collect();
    for v in &net.validators {
        let reader = client_with(&v.rpc, &forensics_token);
        let start = Instant::now();
        loop {
            let page = reader.get_audit_log(None, None).await.unwrap();
            let audited: std::collections::BTreeSet<u64> = page
                .records
                .iter()
                .filter(|r| {
                    r.audit.method.as_str() == "custos_subscribeMessages"
                        && r.audit.reader.as_str() == "forensics"
                })
                .flat_map(|r| r.audit.leaf_indexes.iter().copied())
                .collect();
            if delivered.is_subset(&audited) {
                break;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{}: deliveries {delivered:?} not all audited: {audited:?}",
                v.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The shell block between the example markers of `rpc/README.md`.
fn readme_examples() -> String {
    let readme = include_str!("../../rpc/README.md");
    let block = readme
        .split_once("<!-- examples:start -->")
        .and_then(|(_, rest)| rest.split_once("<!-- examples:end -->"))
        .expect("rpc/README.md has the example markers")
        .0;
    block
        .lines()
        .filter(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_curl_examples_work_as_written() {
    let mut net = network(COLLECTORS, &ORGANISATIONS);
    for v in &mut net.validators {
        v.start();
    }
    common::wait_until_serving(&net.validators, DEADLINE).await;
    let messages = chain(&net.collectors[0], "client0", 3, 64);
    let response = net.validators[0]
        .client()
        .submit(messages.iter().map(|(m, _)| m.clone()).collect())
        .await
        .unwrap();
    assert_eq!(response.admitted, 3, "{:?}", response.results);
    common::wait_for_log_size(&net.validators, 3, DEADLINE).await;
    // The testnet's names, mapped onto this network's: key paths first, then names.
    let dir = net.dir.path().display().to_string();
    let script = readme_examples()
        .replace("http://127.0.0.1:8601", &net.validators[0].rpc)
        .replace("target/release/custos", &format!("{dir}/custos"))
        .replace("testnet/data/keys/org-", &format!("{dir}/keys/"))
        .replace("custos-testnet", NETWORK)
        .replace("acme-bank", "client0")
        .replace("f-cert", "forensics");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .output()
            .expect("bash runs")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "the examples failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let answers: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let outcomes: Vec<String> = answers
        .iter()
        .map(|a| match a["error"]["code"].as_i64() {
            Some(code) => code.to_string(),
            None if a.get("result").is_some() => "ok".to_owned(),
            None => format!("neither result nor error: {a}"),
        })
        .collect();
    let expected = [
        "ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok", "-32010", "-32602", "ok",
    ];
    assert_eq!(outcomes, expected, "{stdout:.2000}");
    // The payload the examples fetched is the first message's, and its proof verifies.
    let payload = &answers[4]["result"];
    assert_eq!(payload["leaf_index"], 0);
    let proof: custos_rpc::InclusionProofInfo =
        serde_json::from_value(answers[5]["result"].clone()).unwrap();
    assert_eq!(proof.leaf_hash, messages[0].1);
    verify_inclusion(
        proof.leaf_hash.as_bytes(),
        proof.leaf_index,
        proof.tree_size,
        &proof.path,
        proof.root.as_bytes(),
    )
    .unwrap();
}

/// A token issued by the `custos token` command for organisation `org`.
fn cli_token(net: &Network, org: &str, ttl_s: &str) -> String {
    let output = Command::new(net.dir.path().join("custos"))
        .args([
            "token",
            "--org",
            org,
            "--network",
            NETWORK,
            "--ttl-s",
            ttl_s,
            "--key",
        ])
        .arg(net.dir.path().join(format!("keys/{org}.json")))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn org_key(net: &Network, org: &str) -> SecretKey {
    KeyFile::load(
        &net.dir.path().join(format!("keys/{org}.json")),
        KeyKind::Organisation,
    )
    .unwrap()
}

/// A client that sends `authorization` as its Authorization header.
fn client_with(url: &str, authorization: &str) -> HttpClient {
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(authorization).unwrap(),
    );
    HttpClientBuilder::default()
        .set_headers(headers)
        .build(url)
        .unwrap()
}

fn by_hash(hash: Sha256Hash) -> MessageRef {
    MessageRef {
        leaf_hash: Some(hash),
        ..MessageRef::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_reads_check_credentials_and_roles() {
    let mut net = network(COLLECTORS, &ORGANISATIONS);
    for v in &mut net.validators {
        v.start();
    }
    common::wait_until_serving(&net.validators, DEADLINE).await;
    let url = net.validators[1].rpc.clone();
    let messages = chain(&net.collectors[0], "client0", 3, 100);
    let payloads: Vec<Vec<u8>> = messages
        .iter()
        .map(|(m, _)| {
            base64::engine::general_purpose::STANDARD
                .decode(&m.payload)
                .unwrap()
        })
        .collect();
    let response = net.validators[0]
        .client()
        .submit(messages.iter().map(|(m, _)| m.clone()).collect())
        .await
        .unwrap();
    assert_eq!(response.admitted, 3, "{:?}", response.results);
    let hashes: Vec<Sha256Hash> = messages.iter().map(|(_, h)| *h).collect();
    common::wait_for_log_size(&net.validators, 3, DEADLINE).await;

    // A response organisation reads envelopes by each of the three references, and
    // payloads whose SHA-256 matches the envelope.
    let forensics = client_with(
        &url,
        &format!("Custos {}", cli_token(&net, "forensics", "600")),
    );
    let author = net.collectors[0].public().key_id();
    for (i, hash) in hashes.iter().enumerate() {
        let references = [
            by_hash(*hash),
            MessageRef {
                leaf_index: Some(i as u64),
                ..MessageRef::default()
            },
            MessageRef {
                author: Some(author),
                sequence: Some(i as u64 + 1),
                ..MessageRef::default()
            },
        ];
        for reference in references {
            let info = forensics.get_message(reference).await.unwrap();
            assert_eq!(info.leaf_index, i as u64);
            assert_eq!(info.leaf_hash, *hash);
            assert_eq!(info.message.sequence, i as u64 + 1);
            assert_eq!(info.message.client.as_str(), "client0");
            let leaf = base64::engine::general_purpose::STANDARD
                .decode(&info.envelope)
                .unwrap();
            assert_eq!(custos_ledger::merkle::hash_leaf(&leaf), *hash);
            let block = forensics.get_block(info.height).await.unwrap();
            assert_eq!(block.header.time.0, info.committed_at_ms);
            assert!(block.leaf_hashes.contains(hash));
        }
        let payload = forensics.get_payload(by_hash(*hash)).await.unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&payload.payload)
            .unwrap();
        assert_eq!(bytes, payloads[i]);
        assert_eq!(Sha256Hash::digest(&bytes), payload.sha256);
        assert_eq!(payload.media_type, "text/plain");
    }

    // The client the evidence is about may read it; another client and an insurer may not.
    let client0 = client_with(
        &url,
        &format!("Custos {}", cli_token(&net, "client0", "60")),
    );
    client0.get_payload(by_hash(hashes[0])).await.unwrap();
    for (org, role) in [("client1", "client"), ("insurer", "insurer")] {
        let c = client_with(&url, &format!("Custos {}", cli_token(&net, org, "60")));
        let (code, message) = refusal(c.get_message(by_hash(hashes[0])).await);
        assert_eq!(code, codes::FORBIDDEN, "{org}");
        assert_eq!(
            message,
            format!(
                "organisation {org} (role {role}) may not read evidence messages about client \
                 client0; see the permission table"
            )
        );
        assert_eq!(
            refusal(c.get_payload(by_hash(hashes[0])).await).0,
            codes::FORBIDDEN
        );
    }

    // Refused credentials, each with the reason.
    let (code, message) = refusal(
        net.validators[1]
            .client()
            .get_message(by_hash(hashes[0]))
            .await,
    );
    assert_eq!(code, codes::UNAUTHENTICATED);
    assert!(
        message.contains("needs an organisation credential"),
        "{message}"
    );
    let network = Text::new(NETWORK).unwrap();
    let forensics_key = org_key(&net, "forensics");
    let now = custos_node::runtime::now_ms();
    let expired = RpcToken::issue(
        &forensics_key,
        network.clone(),
        Text::new("forensics").unwrap(),
        UnixMillis(now.0 - 3_600_000),
        600_000,
    );
    let outsider = RpcToken::issue(
        &SecretKey::generate(),
        network.clone(),
        Text::new("forensics").unwrap(),
        now,
        600_000,
    );
    let misnamed = RpcToken::issue(
        &org_key(&net, "insurer"),
        network.clone(),
        Text::new("forensics").unwrap(),
        now,
        600_000,
    );
    let elsewhere = RpcToken::issue(
        &forensics_key,
        Text::new("custos-other").unwrap(),
        Text::new("forensics").unwrap(),
        now,
        600_000,
    );
    let too_long = RpcToken::issue(
        &forensics_key,
        network.clone(),
        Text::new("forensics").unwrap(),
        now,
        custos_rpc::token::MAX_TOKEN_TTL_MS + 1,
    );
    let mut tampered = cli_token(&net, "forensics", "600").into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let cases = [
        (format!("Bearer {expired}"), "must be \"Custos <token>\""),
        (format!("Custos {expired}"), "token expired at"),
        (
            format!("Custos {outsider}"),
            "is not an organisation key of this network",
        ),
        (
            format!("Custos {misnamed}"),
            "is not a key of organisation forensics",
        ),
        (
            format!("Custos {elsewhere}"),
            "token is for network custos-other, this is custos-it",
        ),
        (
            format!("Custos {too_long}"),
            "is not within 1..=86400000 ms",
        ),
        (format!("Custos {tampered}"), "credential refused"),
        ("Custos !!!".to_owned(), "not base64url"),
        (format!("Custos {}", "A".repeat(600)), "at most 512"),
    ];
    for (header, expected) in cases {
        let c = client_with(&url, &header);
        let (code, message) = refusal(c.get_payload(by_hash(hashes[0])).await);
        assert_eq!(code, codes::UNAUTHENTICATED, "{header}");
        assert!(message.contains(expected), "{header}: {message}");
    }

    // References that are not exactly one form, or name nothing.
    let bad_refs = [
        (MessageRef::default(), "none was given"),
        (
            MessageRef {
                leaf_index: Some(0),
                leaf_hash: Some(hashes[0]),
                ..MessageRef::default()
            },
            "more than one was given",
        ),
        (
            MessageRef {
                author: Some(author),
                ..MessageRef::default()
            },
            "author and sequence go together",
        ),
    ];
    for (reference, expected) in bad_refs {
        let (code, message) = refusal(forensics.get_message(reference).await);
        assert_eq!(code, codes::INVALID_INPUT);
        assert!(message.contains(expected), "{message}");
    }
    let (code, message) = refusal(
        forensics
            .get_message(MessageRef {
                leaf_index: Some(1_000_000),
                ..MessageRef::default()
            })
            .await,
    );
    assert_eq!(code, codes::NOT_FOUND);
    assert_eq!(message, "no committed message has leaf index 1000000");
    let (code, message) = refusal(
        forensics
            .get_message(MessageRef {
                author: Some(author),
                sequence: Some(4),
                ..MessageRef::default()
            })
            .await,
    );
    assert_eq!(code, codes::NOT_FOUND);
    assert!(message.contains("and sequence 4"), "{message}");
    let unknown_field: Result<serde_json::Value, _> = forensics
        .request(
            "custos_getMessage",
            rpc_params![serde_json::json!({"leaf": 0})],
        )
        .await;
    let (code, message) = refusal(unknown_field);
    assert_eq!(code, codes::INVALID_INPUT);
    assert!(message.contains("unknown field `leaf`"), "{message}");

    // Every served read, and only those, is on the chain of every validator within a few
    // blocks, signed by the validator that served it.
    let expected: BTreeMap<(String, String), Vec<u64>> = [
        (
            ("forensics", "custos_getMessage"),
            vec![0, 0, 0, 1, 1, 1, 2, 2, 2],
        ),
        (("forensics", "custos_getPayload"), vec![0, 1, 2]),
        (("client0", "custos_getPayload"), vec![0]),
    ]
    .into_iter()
    .map(|((o, m), v)| ((o.to_owned(), m.to_owned()), v))
    .collect();
    let server = net.validator_keys[1].key_id();
    let start = Instant::now();
    for v in &net.validators {
        let auditor = client_with(
            &v.rpc,
            &format!("Custos {}", cli_token(&net, "forensics", "600")),
        );
        loop {
            let page = auditor.get_audit_log(None, None).await.unwrap();
            assert!(page.next_after.is_none());
            let mut seen: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
            for record in &page.records {
                assert_eq!(record.validator, server);
                assert!(record.committed_at_ms >= record.audit.read_at.0);
                seen.entry((
                    record.audit.reader.to_string(),
                    record.audit.method.to_string(),
                ))
                .or_default()
                .extend(record.audit.leaf_indexes.iter().copied());
            }
            seen.values_mut().for_each(|v| v.sort_unstable());
            if seen == expected {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{}: audit log {seen:?}, expected {expected:?}",
                v.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Others see only their own reads; a page limit outside the bounds is refused.
    let client0 = client_with(
        &url,
        &format!("Custos {}", cli_token(&net, "client0", "60")),
    );
    let own = client0.get_audit_log(None, None).await.unwrap();
    assert!(!own.records.is_empty());
    assert!(
        own.records
            .iter()
            .all(|r| r.audit.reader.as_str() == "client0")
    );
    let insurer = client_with(
        &url,
        &format!("Custos {}", cli_token(&net, "insurer", "60")),
    );
    assert!(
        insurer
            .get_audit_log(None, None)
            .await
            .unwrap()
            .records
            .is_empty()
    );
    let (code, message) = refusal(client0.get_audit_log(None, Some(0)).await);
    assert_eq!(code, codes::INVALID_INPUT);
    assert_eq!(message, "limit 0 is not within 1..=1000");
    let first = forensics.get_audit_log(None, Some(1)).await.unwrap();
    assert_eq!(first.records.len(), 1);
    let next = forensics
        .get_audit_log(first.next_after, Some(1000))
        .await
        .unwrap();
    assert!(
        next.records
            .iter()
            .all(|r| r.leaf_index > first.records[0].leaf_index)
    );
    let (code, _) = refusal(net.validators[0].client().get_audit_log(None, None).await);
    assert_eq!(code, codes::UNAUTHENTICATED);

    // Queries: by client, paged with a cursor, narrowed by committed time and filters.
    let filter = |f: QueryFilter| QueryFilter {
        client: "client0".into(),
        ..f
    };
    let all = forensics
        .query(filter(QueryFilter::default()))
        .await
        .unwrap();
    let found: Vec<Sha256Hash> = all.messages.iter().map(|m| m.leaf_hash).collect();
    assert_eq!(found, hashes);
    assert_eq!(all.next_after, None);
    let first = forensics
        .query(filter(QueryFilter {
            limit: Some(2),
            ..QueryFilter::default()
        }))
        .await
        .unwrap();
    assert_eq!(first.messages.len(), 2);
    assert_eq!(first.next_after, Some(1));
    let rest = forensics
        .query(filter(QueryFilter {
            after: first.next_after,
            ..QueryFilter::default()
        }))
        .await
        .unwrap();
    assert_eq!(rest.messages.len(), 1);
    assert_eq!(rest.messages[0].leaf_hash, hashes[2]);
    let committed = all.messages[0].committed_at_ms;
    let before = forensics
        .query(filter(QueryFilter {
            committed_to_ms: Some(committed),
            ..QueryFilter::default()
        }))
        .await
        .unwrap();
    assert!(before.messages.is_empty(), "the upper bound is exclusive");
    let from = forensics
        .query(filter(QueryFilter {
            committed_from_ms: Some(committed),
            committed_to_ms: Some(committed + 1),
            ..QueryFilter::default()
        }))
        .await
        .unwrap();
    assert!(from.messages.iter().all(|m| m.committed_at_ms == committed));
    assert!(!from.messages.is_empty());
    for narrowing in [
        QueryFilter {
            kind: Some("heartbeat".into()),
            ..QueryFilter::default()
        },
        QueryFilter {
            collector: Some(SecretKey::generate().public().key_id()),
            ..QueryFilter::default()
        },
        QueryFilter {
            host: Some("nowhere".into()),
            ..QueryFilter::default()
        },
        QueryFilter {
            occurred_from_ms: Some(0),
            ..QueryFilter::default()
        },
    ] {
        let page = forensics.query(filter(narrowing.clone())).await.unwrap();
        assert!(page.messages.is_empty(), "{narrowing:?}");
    }
    let kind = forensics
        .query(filter(QueryFilter {
            kind: Some("evidence".into()),
            collector: Some(author),
            ..QueryFilter::default()
        }))
        .await
        .unwrap();
    assert_eq!(kind.messages.len(), 3);
    let (code, message) = refusal(
        forensics
            .query(filter(QueryFilter {
                kind: Some("bogus".into()),
                ..QueryFilter::default()
            }))
            .await,
    );
    assert_eq!(code, codes::INVALID_INPUT);
    assert!(message.contains("unknown kind \"bogus\""), "{message}");
    let (code, message) = refusal(
        forensics
            .query(filter(QueryFilter {
                limit: Some(201),
                ..QueryFilter::default()
            }))
            .await,
    );
    assert_eq!(code, codes::INVALID_INPUT);
    assert!(
        message.contains("limit 201 is not within 1..=200"),
        "{message}"
    );
    let client1 = client_with(
        &url,
        &format!("Custos {}", cli_token(&net, "client1", "60")),
    );
    let (code, _) = refusal(client1.query(filter(QueryFilter::default())).await);
    assert_eq!(code, codes::FORBIDDEN);
    assert!(
        insurer
            .query(filter(QueryFilter::default()))
            .await
            .unwrap()
            .messages
            .is_empty()
    );

    // A forensic session by a client written in Python with its standard library.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/forensic_session.py"
    );
    let output = Command::new("python3")
        .arg(script)
        .arg(&url)
        .arg(cli_token(&net, "forensics", "600"))
        .arg("client0")
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["verified"], 3);
    assert_eq!(summary["origin"], ORIGIN);
}

/// Posts `body` to a node over plain HTTP/1.1 with a declared length, returning the
/// status code and the response body.
fn post_raw(url: &str, body: &[u8], declared_len: usize) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {declared_len}\r\nConnection: close\r\n\r\n"
    );
    // The server may answer and close before reading a refused body: a failed write is
    // not the test's concern, the answer is.
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

fn call(method: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_json_rpc_errors_and_the_node_keeps_serving() {
    let mut net = network(COLLECTORS, &ORGANISATIONS);
    for v in &mut net.validators {
        v.start();
    }
    common::wait_until_serving(&net.validators, DEADLINE).await;
    let url = net.validators[0].rpc.clone();
    let unknown_hash = "ab".repeat(32);
    let huge_string = format!("[\"{}\"]", "x".repeat(1 << 20));
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<(&str, Vec<u8>, i32)> = vec![
        ("truncated JSON", b"{".to_vec(), -32700),
        ("empty body", Vec::new(), -32700),
        ("not JSON", b"hello".to_vec(), -32700),
        ("invalid UTF-8", vec![0xff, 0xfe, 0xfd], -32700),
        // An array is a batch: its one element is not a request.
        ("nesting 10000 deep", deep.into_bytes(), -32600),
        ("a bare string", br#""custos_status""#.to_vec(), -32700),
        ("a number", b"42".to_vec(), -32700),
        ("empty batch", b"[]".to_vec(), -32600),
        (
            "no jsonrpc member",
            br#"{"id":1,"method":"custos_status"}"#.to_vec(),
            -32600,
        ),
        (
            "jsonrpc 1.0",
            br#"{"jsonrpc":"1.0","id":1,"method":"custos_status"}"#.to_vec(),
            -32600,
        ),
        (
            "method is a number",
            br#"{"jsonrpc":"2.0","id":1,"method":5}"#.to_vec(),
            -32600,
        ),
        (
            "unknown method",
            call("custos_nope", "[]").into_bytes(),
            -32601,
        ),
        (
            "unknown namespace",
            call("eth_blockNumber", "[]").into_bytes(),
            -32601,
        ),
        (
            "params is a string",
            call("custos_getBlock", r#""x""#).into_bytes(),
            -32602,
        ),
        (
            "getBlock without params",
            call("custos_getBlock", "[]").into_bytes(),
            -32602,
        ),
        (
            "getBlock with null",
            call("custos_getBlock", "null").into_bytes(),
            -32602,
        ),
        (
            "height as a string",
            call("custos_getBlock", r#"["1"]"#).into_bytes(),
            -32602,
        ),
        (
            "negative height",
            call("custos_getBlock", "[-1]").into_bytes(),
            -32602,
        ),
        (
            "fractional height",
            call("custos_getBlock", "[1.5]").into_bytes(),
            -32602,
        ),
        (
            "height above u64",
            call("custos_getBlock", "[18446744073709551616]").into_bytes(),
            -32602,
        ),
        (
            "height 1e400",
            call("custos_getBlock", "[1e400]").into_bytes(),
            -32602,
        ),
        (
            "misspelt named param",
            call("custos_getBlock", r#"{"heigth":1}"#).into_bytes(),
            -32602,
        ),
        (
            "megabyte string param",
            call("custos_getBlock", &huge_string).into_bytes(),
            -32602,
        ),
        (
            "height 0",
            call("custos_getBlock", "[0]").into_bytes(),
            -32004,
        ),
        (
            "height u64::MAX",
            call("custos_getBlock", "[18446744073709551615]").into_bytes(),
            -32004,
        ),
        (
            "leaf hash not hex",
            call(
                "custos_getInclusionProof",
                &format!(r#"["{}"]"#, "g".repeat(64)),
            )
            .into_bytes(),
            -32602,
        ),
        (
            "leaf hash too short",
            call(
                "custos_getInclusionProof",
                &format!(r#"["{}"]"#, "ab".repeat(31)),
            )
            .into_bytes(),
            -32602,
        ),
        (
            "leaf hash too long",
            call(
                "custos_getInclusionProof",
                &format!(r#"["{}"]"#, "ab".repeat(33)),
            )
            .into_bytes(),
            -32602,
        ),
        (
            "leaf hash null",
            call("custos_getInclusionProof", "[null]").into_bytes(),
            -32602,
        ),
        (
            "leaf hash a number",
            call("custos_getInclusionProof", "[7]").into_bytes(),
            -32602,
        ),
        (
            "tree size a string",
            call(
                "custos_getInclusionProof",
                &format!(r#"["{unknown_hash}","big"]"#),
            )
            .into_bytes(),
            -32602,
        ),
        (
            "unknown leaf hash",
            call(
                "custos_getInclusionProof",
                &format!(r#"["{unknown_hash}"]"#),
            )
            .into_bytes(),
            -32004,
        ),
        (
            "consistency sizes reversed",
            call("custos_getConsistencyProof", "[5, 2]").into_bytes(),
            -32602,
        ),
        (
            "consistency from 0",
            call("custos_getConsistencyProof", "[0]").into_bytes(),
            -32602,
        ),
        (
            "consistency beyond the log",
            call("custos_getConsistencyProof", "[1, 99999999999]").into_bytes(),
            -32004,
        ),
        (
            "checkpoint beyond the log",
            call("custos_getCheckpoint", "[18446744073709551615]").into_bytes(),
            -32004,
        ),
        (
            "getMessage without credential",
            call("custos_getMessage", r#"[{"leaf_index":0}]"#).into_bytes(),
            -32010,
        ),
        (
            "getPayload without credential",
            call("custos_getPayload", r#"[{}]"#).into_bytes(),
            -32010,
        ),
        (
            "audit log without credential",
            call("custos_getAuditLog", "[]").into_bytes(),
            -32010,
        ),
        (
            "an extra positional param",
            call("custos_getBlock", "[1, 2]").into_bytes(),
            -32602,
        ),
        (
            "a param to a method that takes none",
            call("custos_status", "[true]").into_bytes(),
            -32602,
        ),
        (
            "an unknown named param beside a valid one",
            call("custos_getBlock", r#"{"height":1,"verbose":true}"#).into_bytes(),
            -32602,
        ),
        (
            "an extra param inside a batch",
            format!("[{}]", call("custos_getCheckpoint", "[1, 2]")).into_bytes(),
            -32602,
        ),
        (
            "submit a non-list",
            call("custos_submit", r#"["x"]"#).into_bytes(),
            -32602,
        ),
        (
            "submit objects missing fields",
            call("custos_submit", r#"[[{"envelope":"AA"}]]"#).into_bytes(),
            -32602,
        ),
    ];
    assert!(cases.len() >= 30);
    let mut wrong = Vec::new();
    for (name, body, expected) in &cases {
        let (status, text) = post_raw(&url, body, body.len());
        let code = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                // A batch answers with an array of responses.
                let response = if v.is_array() { v[0].clone() } else { v };
                response["error"]["code"].as_i64()
            });
        if code != Some(i64::from(*expected)) {
            wrong.push(format!(
                "{name}: HTTP {status}, expected {expected}, got {text:.300}"
            ));
        }
    }
    // A body declared larger than the limit is refused before it is read.
    let (status, text) = post_raw(&url, b"", custos_rpc::MAX_REQUEST_BYTES as usize + 1);
    let code = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"]["code"].as_i64());
    if status != 413 || code.is_none() {
        wrong.push(format!("oversized body: HTTP {status}, got {text:.300}"));
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        cases.len() + 1,
        wrong.join("\n")
    );
    // The OpenRPC document is served as kept in the repository, and names every method
    // the node answers (the node checks the reverse at start-up).
    let discover: serde_json::Value = net.validators[0]
        .client()
        .request(custos_rpc::DISCOVER_METHOD, rpc_params![])
        .await
        .unwrap();
    let kept: serde_json::Value = serde_json::from_str(custos_rpc::OPENRPC_DOCUMENT).unwrap();
    assert_eq!(discover, kept);
    for name in custos_rpc::openrpc_method_names(custos_rpc::OPENRPC_DOCUMENT).unwrap() {
        let (_, text) = post_raw(&url, call(&name, "[]").as_bytes(), call(&name, "[]").len());
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_ne!(
            value["error"]["code"], -32601,
            "{name} is documented but not served"
        );
    }
    // The node still serves.
    let status = net.validators[0].client().status().await.unwrap();
    assert_eq!(status.network, NETWORK);
}
