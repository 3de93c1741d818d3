//! Public anchoring end to end: four `custos` validators and a real anvil EVM node.
//! Committed messages are covered by an anchored quorum checkpoint within a bound, the
//! transaction read back with curl carries exactly that checkpoint's size and root, every
//! validator holds the receipt; an anvil outage does not disturb consensus and anchoring
//! resumes covering everything committed meanwhile; an `evm_revert` that removes the
//! anchoring block is detected and the checkpoint is anchored again. Prints the gas used
//! per anchor.

use std::time::{Duration, Instant};

use custos_ledger::anchor::{ANCHOR_CALLDATA_TAG, AnchorError, verify_on_chain};
use custos_ledger::c2sp::{Checkpoint, CosignatureVerifier, Note, QuorumPolicy, TlogProof};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::message::AnchorReceipt;
use custos_rpc::{AnchorInfo, CheckpointSource, CustosApiClient};

mod common;

use common::anvil::{self, Anvil};
use common::{Network, Options, Validator, chain, network_with};

/// Genesis checkpoint period of the test network.
const CHECKPOINT_INTERVAL_MS: u64 = 2_000;
/// Anchoring cadence of the control center.
const ANCHOR_INTERVAL_MS: u64 = 2_000;
/// The stated bound from commit to an anchored checkpoint covering it, with these
/// settings: one checkpoint period plus the next block (2 s + 2 s of empty-block
/// interval), cosignature gossip, one anchoring period (2 s), two confirmations at one
/// anvil block a second, and the receipt's own block. About 10 s; CI machines are slow,
/// so the test allows three times that.
const ANCHOR_BOUND: Duration = Duration::from_secs(30);
const DEADLINE: Duration = Duration::from_secs(90);

/// Tests of this file run one at a time: each runs four validators and anvil, and the
/// bounds they check assume the machine is not shared with another such network.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts the network; v0 is the control center and anchors, and v1 takes over after
/// `takeover_after_ms` when given.
fn start(anvil: &Anvil, takeover_after_ms: Option<u64>) -> Network {
    let key_dir = tempfile::tempdir().unwrap().keep();
    let section = anvil.anchor_section(&key_dir.join("anvil.key"), ANCHOR_INTERVAL_MS);
    let mut node_extra = vec![section.clone()];
    if let Some(ms) = takeover_after_ms {
        node_extra.push(format!("{section}takeover_after_ms = {ms}\n"));
    }
    let mut net = network_with(
        2,
        &[],
        &Options {
            first_role: Some("control-center"),
            checkpoint_interval_ms: CHECKPOINT_INTERVAL_MS,
            node_extra,
        },
    );
    for v in &mut net.validators {
        v.start();
    }
    net
}

fn policy(anvil_net: &Network, cosigners: &custos_rpc::CosignersInfo) -> QuorumPolicy {
    let verifiers: Vec<CosignatureVerifier> = cosigners
        .cosigners
        .iter()
        .map(|c| c.vkey.parse().unwrap())
        .collect();
    // The keys the node publishes are the validators' genesis keys under their names.
    for (verifier, key) in verifiers.iter().zip(&anvil_net.validator_keys) {
        assert_eq!(verifier.public_key().to_bytes(), key.0);
    }
    QuorumPolicy::new(common::ORIGIN, verifiers, cosigners.threshold).unwrap()
}

/// Waits until every validator holds a receipt after leaf `after` anchoring at least
/// `tree_size` leaves; returns validator 0's copy, after checking all hold the same.
/// Every validator's note must pass `policy`; notes may differ in which 2f+1 (or more)
/// validators' cosignatures they carry.
async fn wait_for_anchor(
    validators: &[Validator],
    policy: &QuorumPolicy,
    tree_size: u64,
    after: Option<u64>,
    bound: Duration,
) -> AnchorInfo {
    let start = Instant::now();
    loop {
        let mut found = Vec::new();
        for v in validators {
            let Ok(page) = v.client().get_anchors(None).await else {
                continue;
            };
            if let Some(a) = page.anchors.into_iter().rev().find(|a| {
                a.tree_size >= tree_size && after.is_none_or(|after| a.leaf_index > after)
            }) {
                found.push(a);
            }
        }
        if found.len() == validators.len() {
            for anchor in &found {
                let note = anchor
                    .checkpoint
                    .as_ref()
                    .expect("anchored checkpoint is stored");
                let verified = policy.verify_bytes(note.as_bytes()).unwrap();
                assert_eq!(verified.checkpoint().root().hash, anchor.root);
            }
            let receipts: Vec<AnchorReceipt> = found.iter().map(receipt_of).collect();
            assert!(
                receipts.windows(2).all(|w| w[0] == w[1]),
                "validators hold different receipts: {found:?}"
            );
            return found.swap_remove(0);
        }
        if start.elapsed() >= bound {
            let log =
                std::fs::read_to_string(validators[0].dir.join("node.log")).unwrap_or_default();
            let anchoring: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("anchor") || l.contains("checkpoint"))
                .collect();
            panic!(
                "no anchor of tree size >= {tree_size} held by all validators within {bound:?} \
                 ({} hold one); the control center's anchoring log:\n{}",
                found.len(),
                anchoring[anchoring.len().saturating_sub(40)..].join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn receipt_of(anchor: &AnchorInfo) -> AnchorReceipt {
    let bytes32 = |hex_text: &str| -> [u8; 32] {
        hex::decode(hex_text.trim_start_matches("0x"))
            .unwrap()
            .try_into()
            .unwrap()
    };
    AnchorReceipt {
        chain_id: anchor.chain_id,
        tx_hash: bytes32(&anchor.tx_hash),
        block_number: anchor.block_number,
        block_hash: bytes32(&anchor.block_hash),
        block_time_s: anchor.block_time_s,
        tree_size: anchor.tree_size,
        root: anchor.root,
    }
}

/// Reads the anchor's transaction with curl and checks its calldata is exactly the tag,
/// the origin hash, the size and the root of the anchored checkpoint.
fn check_transaction(anvil: &Anvil, anchor: &AnchorInfo) {
    let tx = anvil.rpc(
        "eth_getTransactionByHash",
        &format!(r#"["{}"]"#, anchor.tx_hash),
    );
    assert_eq!(anvil::quantity(&tx["blockNumber"]), anchor.block_number);
    assert_eq!(tx["blockHash"].as_str().unwrap(), anchor.block_hash);
    assert_eq!(
        tx["from"].as_str().unwrap().to_lowercase(),
        anvil::DEV_ADDRESS
    );
    let input = hex::decode(tx["input"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    assert_eq!(input.len(), 88);
    assert_eq!(input[..16], ANCHOR_CALLDATA_TAG);
    assert_eq!(
        input[16..48],
        Sha256Hash::digest(common::ORIGIN.as_bytes()).0
    );
    assert_eq!(
        u64::from_be_bytes(input[48..56].try_into().unwrap()),
        anchor.tree_size
    );
    assert_eq!(input[56..], anchor.root.0);
    // And that is the cosigned checkpoint the validators store for that size.
    let note = anchor
        .checkpoint
        .as_ref()
        .expect("anchored checkpoint is stored");
    let checkpoint = Checkpoint::from_note(&Note::parse(note.as_bytes()).unwrap()).unwrap();
    assert_eq!(checkpoint.root().tree_size, anchor.tree_size);
    assert_eq!(checkpoint.root().hash, anchor.root);
}

async fn submit(net: &Network, messages: &[(custos_rpc::SubmitMessage, Sha256Hash)]) {
    let response = net.validators[1]
        .client()
        .submit(messages.iter().map(|(m, _)| m.clone()).collect())
        .await
        .unwrap();
    assert_eq!(response.admitted, messages.len(), "{:?}", response.results);
}

/// Runs `custos anchor verify` for the receipt at `leaf` (the latest without it).
fn anchor_verify(net: &Network, anvil: &Anvil, leaf: Option<u64>) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_custos"));
    command
        .args(["anchor", "verify", "--genesis"])
        .arg(net.dir.path().join("genesis.json"))
        .args(["--evm-rpc", &anvil.url, "--rpc", &net.validators[2].rpc]);
    if let Some(leaf) = leaf {
        command.args(["--leaf", &leaf.to_string()]);
    }
    command.env("RUST_BACKTRACE", "0").output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_cosigned_anchored_on_anvil_and_survive_outages_and_reorgs() {
    let _serial = SERIAL.lock().await;
    let anvil = Anvil::start(1);
    let net = start(&anvil, None);
    common::wait_until_serving(&net.validators, DEADLINE).await;
    let client = net.validators[0].client();
    let cosigners = client.get_cosigners().await.unwrap();
    assert_eq!(cosigners.threshold, 3);
    assert_eq!(cosigners.origin, common::ORIGIN);
    let policy = policy(&net, &cosigners);

    // 1. Messages are covered by an anchored quorum checkpoint within the bound.
    let messages = chain(&net.collectors[0], "client0", 40, 64);
    submit(&net, &messages[..5]).await;
    common::wait_for_log_size(&net.validators, 5, DEADLINE).await;
    let committed = Instant::now();
    let first = wait_for_anchor(&net.validators, &policy, 5, None, ANCHOR_BOUND).await;
    println!(
        "anchored within {:?} of commit (bound {ANCHOR_BOUND:?})",
        committed.elapsed()
    );
    check_transaction(&anvil, &first);
    let stored = client.get_checkpoint(Some(first.tree_size)).await.unwrap();
    assert_eq!(stored.source, CheckpointSource::Stored);
    assert!(stored.signers.len() >= 3, "{:?}", stored.signers);
    let note = first.checkpoint.clone().unwrap();
    let verified = verify_on_chain(&anvil.url, note.as_bytes(), &receipt_of(&first), &policy, 1)
        .await
        .unwrap();
    assert_eq!(
        verified.checkpoint.checkpoint().root().tree_size,
        first.tree_size
    );

    // Proofs of those messages are served against a quorum checkpoint, as C2SP
    // tlog-proofs that a 3-of-4 policy built from custos_getCosigners accepts.
    for (index, (_, hash)) in messages[..5].iter().enumerate() {
        let proof = net.validators[3]
            .client()
            .get_inclusion_proof(*hash, None)
            .await
            .unwrap();
        assert_eq!(proof.leaf_index, index as u64);
        assert_eq!(proof.checkpoint.source, CheckpointSource::Stored);
        let tlog = TlogProof::parse(proof.tlog_proof.as_bytes()).unwrap();
        let verified = tlog.verify(hash, &policy).unwrap();
        assert!(verified.cosignatures().len() >= 3);
    }

    // Gas per anchor, measured.
    let tx_receipt = anvil.rpc(
        "eth_getTransactionReceipt",
        &format!(r#"["{}"]"#, first.tx_hash),
    );
    let gas = anvil::quantity(&tx_receipt["gasUsed"]);
    println!("gas per anchor: {gas} (88 bytes of calldata, no contract)");
    assert!((21_000..=25_000).contains(&gas), "gas {gas}");

    // A receipt naming another root, or a note with fewer than 2f+1 cosignatures, does
    // not verify.
    let mut wrong_root = receipt_of(&first);
    wrong_root.root.0[0] ^= 1;
    assert!(matches!(
        verify_on_chain(&anvil.url, note.as_bytes(), &wrong_root, &policy, 1).await,
        Err(AnchorError::ReceiptMismatch { .. })
    ));
    let parsed = Note::parse(note.as_bytes()).unwrap();
    let short = Note::new(parsed.text(), parsed.signatures()[..2].to_vec()).unwrap();
    assert!(matches!(
        verify_on_chain(
            &anvil.url,
            short.encode().as_bytes(),
            &receipt_of(&first),
            &policy,
            1
        )
        .await,
        Err(AnchorError::Quorum(_))
    ));

    // 2. Anvil stops answering for a while: consensus goes on, and anchoring resumes
    // with a checkpoint that covers everything committed meanwhile.
    anvil.pause();
    let paused = Instant::now();
    let mut size = client.status().await.unwrap().log_size;
    for batch in messages[5..20].chunks(5) {
        submit(&net, batch).await;
        size += batch.len() as u64;
        common::wait_for_log_size(&net.validators, size, DEADLINE).await;
        tokio::time::sleep(Duration::from_millis(CHECKPOINT_INTERVAL_MS + 500)).await;
    }
    let outage = paused.elapsed();
    let during = client.status().await.unwrap().log_size;
    assert!(during >= size);
    // Meanwhile cosigning went on (quorum checkpoints of the outage's periods are
    // stored), and nothing could be anchored.
    let cosigned = client.get_checkpoint(None).await.unwrap();
    assert_eq!(cosigned.source, CheckpointSource::Stored);
    assert!(
        cosigned.tree_size > first.tree_size + 10,
        "checkpoints stopped during the outage: latest {}",
        cosigned.tree_size
    );
    let anchors = client.get_anchors(None).await.unwrap().anchors;
    assert!(
        anchors.iter().all(|a| a.tree_size < during),
        "anchored while anvil was paused? {anchors:?}"
    );
    anvil.resume();
    println!("anvil paused for {outage:?}; consensus committed up to log size {during}");
    let resumed = wait_for_anchor(
        &net.validators,
        &policy,
        during,
        Some(first.leaf_index),
        ANCHOR_BOUND,
    )
    .await;
    check_transaction(&anvil, &resumed);

    // 3. A reorganisation removes the anchoring block: the loss is noticed and the
    // checkpoint is anchored again.
    let snapshot = anvil.rpc("evm_snapshot", "[]");
    submit(&net, &messages[20..25]).await;
    let size = client.status().await.unwrap().log_size.max(during + 5);
    common::wait_for_log_size(&net.validators, size, DEADLINE).await;
    let doomed = wait_for_anchor(
        &net.validators,
        &policy,
        size,
        Some(resumed.leaf_index),
        ANCHOR_BOUND,
    )
    .await;
    check_transaction(&anvil, &doomed);
    assert_eq!(
        anvil.rpc("evm_revert", &format!("[{snapshot}]")),
        serde_json::Value::Bool(true)
    );
    let gone = anvil.rpc(
        "eth_getTransactionByHash",
        &format!(r#"["{}"]"#, doomed.tx_hash),
    );
    assert!(gone.is_null(), "the reverted anchor is still there: {gone}");
    let lost = verify_on_chain(
        &anvil.url,
        doomed.checkpoint.as_ref().unwrap().as_bytes(),
        &receipt_of(&doomed),
        &policy,
        1,
    )
    .await;
    assert!(
        matches!(lost, Err(AnchorError::TransactionMissing { .. })),
        "{lost:?}"
    );
    let refused = anchor_verify(&net, &anvil, Some(doomed.leaf_index));
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("is not on the chain"), "{stderr}");
    let again = wait_for_anchor(
        &net.validators,
        &policy,
        doomed.tree_size,
        Some(doomed.leaf_index),
        ANCHOR_BOUND,
    )
    .await;
    assert_ne!(again.tx_hash, doomed.tx_hash);
    check_transaction(&anvil, &again);
    // The command-line check, trusting only genesis, accepts the new anchor.
    let verified = anchor_verify(&net, &anvil, Some(again.leaf_index));
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let out: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(out["verified"], true);
    assert_eq!(out["tree_size"], again.tree_size);
    assert_eq!(out["tx_hash"], again.tx_hash.as_str());
    verify_on_chain(
        &anvil.url,
        again.checkpoint.as_ref().unwrap().as_bytes(),
        &receipt_of(&again),
        &policy,
        1,
    )
    .await
    .unwrap();
}

/// How long the standby validator waits in the takeover test: long enough that it never
/// races a working control center (which anchors within a few seconds).
const TAKEOVER_AFTER_MS: u64 = 12_000;

fn log_of(validator: &Validator) -> String {
    std::fs::read_to_string(validator.dir.join("node.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_validator_takes_over_anchoring_when_the_control_center_is_down() {
    let _serial = SERIAL.lock().await;
    let anvil = Anvil::start(1);
    let mut net = start(&anvil, Some(TAKEOVER_AFTER_MS));
    common::wait_until_serving(&net.validators, DEADLINE).await;
    let client = net.validators[1].client();
    let policy = policy(&net, &client.get_cosigners().await.unwrap());
    let messages = chain(&net.collectors[0], "client0", 10, 64);

    submit(&net, &messages[..5]).await;
    common::wait_for_log_size(&net.validators, 5, DEADLINE).await;
    let first = wait_for_anchor(&net.validators, &policy, 5, None, ANCHOR_BOUND).await;
    check_transaction(&anvil, &first);
    assert!(log_of(&net.validators[0]).contains("anchor transaction sent"));
    assert!(
        !log_of(&net.validators[1]).contains("anchor transaction sent"),
        "the standby anchored while the control center was working"
    );

    // The control center goes down; the other three keep committing and cosigning, and
    // after TAKEOVER_AFTER_MS the standby anchors.
    net.validators[0].kill();
    let before = client.status().await.unwrap().log_size;
    submit(&net, &messages[5..]).await;
    let size = before + 5;
    common::wait_for_log_size(&net.validators[1..], size, DEADLINE).await;
    let taken = wait_for_anchor(
        &net.validators[1..],
        &policy,
        size,
        Some(first.leaf_index),
        ANCHOR_BOUND + Duration::from_millis(TAKEOVER_AFTER_MS),
    )
    .await;
    check_transaction(&anvil, &taken);
    assert!(log_of(&net.validators[1]).contains("anchor transaction sent"));
}
