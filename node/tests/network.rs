//! Four real `custos` validator processes on loopback: they commit identical blocks and the
//! same log under load, survive a SIGKILL of one of them, judge proposals whose messages
//! they lack by fetching them, refuse bad messages with precise errors, and refuse to run
//! a validator whose key is not in genesis.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;

use custos_ledger::crypto::SecretKey;
use custos_ledger::hash::Sha256Hash;
use custos_ledger::storage::{Ledger, RocksBackend};
use custos_node::collect::submit::lacks_earlier;
use custos_node::keys::{KeyFile, KeyKind};
use custos_rpc::{CustosApiClient, SubmitMessage, SubmitStatus};

mod common;

use common::{Validator, chain, network};

const COLLECTORS: usize = 4;
const MESSAGES_PER_COLLECTOR: usize = 2_500;
const BATCH: usize = 250;
const DEADLINE: Duration = Duration::from_secs(120);

/// Submits `chain[range]` (a collector's messages, sequence numbers from 1) in batches,
/// failing over to the next validator when one does not answer; "duplicate" counts as
/// acknowledged (the message is already admitted). A validator that lacks earlier messages
/// ("must send sequence E next": they were admitted by a validator killed before it
/// gossiped them) is sent them again from E on, as a collector resubmits from its first
/// unconfirmed message.
async fn submit_all(
    validators: &[String],
    first: usize,
    chain: &[(SubmitMessage, Sha256Hash)],
    range: std::ops::Range<usize>,
) -> Vec<Sha256Hash> {
    let mut acknowledged = Vec::new();
    // Messages before this one are acknowledged (by this call, or by an earlier one for
    // those before `range`): a message sent again is not acknowledged twice.
    let mut acknowledged_to = range.start;
    let mut target = first;
    let mut next = range.start;
    let start = Instant::now();
    while next < range.end {
        assert!(start.elapsed() < DEADLINE, "submission did not finish");
        let end = (next + BATCH).min(range.end);
        let batch: Vec<SubmitMessage> = chain[next..end].iter().map(|(m, _)| m.clone()).collect();
        let client = custos_node::send::client(&validators[target]).unwrap();
        let Ok(response) = client.submit(batch).await else {
            target = (target + 1) % validators.len();
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let sent = next;
        for result in &response.results {
            match result.status {
                SubmitStatus::Admitted | SubmitStatus::Duplicate | SubmitStatus::Committed => {
                    let index = sent + result.index;
                    if index >= acknowledged_to {
                        acknowledged.push(chain[index].1);
                        acknowledged_to = index + 1;
                    }
                    next = index + 1;
                }
                SubmitStatus::Rejected => {
                    let error = result.error.as_deref().unwrap_or_default();
                    if let Some(expected) = lacks_earlier(error) {
                        next = usize::try_from(expected).unwrap() - 1;
                    }
                    break;
                }
                // Busy: retry from here shortly.
                SubmitStatus::Busy => break,
            }
        }
        if next < end {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    acknowledged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_validators_commit_identical_logs_through_a_sigkill() {
    let mut net = network(COLLECTORS, &[]);
    for v in &mut net.validators {
        v.start();
    }
    common::wait_until_serving(&net.validators, DEADLINE).await;
    let urls: Vec<String> = net.validators.iter().map(|v| v.rpc.clone()).collect();

    let chains: Vec<Vec<(SubmitMessage, Sha256Hash)>> = net
        .collectors
        .iter()
        .enumerate()
        .map(|(i, key)| {
            chain(
                key,
                &format!("client{}", i % 2),
                MESSAGES_PER_COLLECTOR,
                200,
            )
        })
        .collect();

    // First third of every collector's messages, each collector on its own validator.
    let third = MESSAGES_PER_COLLECTOR / 3;
    let mut acknowledged = Vec::new();
    let mut tasks = Vec::new();
    for (i, chain) in chains.iter().enumerate() {
        let urls = urls.clone();
        let chain = chain.clone();
        tasks.push(tokio::spawn(async move {
            submit_all(&urls, i, &chain, 0..third).await
        }));
    }
    for task in tasks {
        acknowledged.extend(task.await.unwrap());
    }

    // SIGKILL validator 2 mid-stream; the other three keep committing.
    net.validators[2].kill();
    let survivors: Vec<String> = urls
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, u)| u.clone())
        .collect();
    let mut tasks = Vec::new();
    for (i, chain) in chains.iter().enumerate() {
        let urls = survivors.clone();
        let chain = chain.clone();
        tasks.push(tokio::spawn(async move {
            submit_all(&urls, i % 3, &chain, third..2 * third).await
        }));
    }
    for task in tasks {
        acknowledged.extend(task.await.unwrap());
    }
    let alive: Vec<&Validator> = net
        .validators
        .iter()
        .filter(|v| v.child.is_some())
        .collect();
    let before_restart = (COLLECTORS * 2 * third) as u64;
    {
        let start = Instant::now();
        'wait: loop {
            for v in &alive {
                let status = v.client().status().await.unwrap();
                if status.log_size < before_restart {
                    assert!(
                        start.elapsed() < DEADLINE,
                        "the three survivors stopped committing"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue 'wait;
                }
            }
            break;
        }
    }

    // Restart it; it catches up while the rest is submitted.
    net.validators[2].start();
    let mut tasks = Vec::new();
    for (i, chain) in chains.iter().enumerate() {
        let urls = urls.clone();
        let chain = chain.clone();
        tasks.push(tokio::spawn(async move {
            submit_all(&urls, i, &chain, 2 * third..MESSAGES_PER_COLLECTOR).await
        }));
    }
    for task in tasks {
        acknowledged.extend(task.await.unwrap());
    }
    let total = (COLLECTORS * MESSAGES_PER_COLLECTOR) as u64;
    assert_eq!(acknowledged.len() as u64, total);
    let root = common::wait_for_log_size(&net.validators, total, DEADLINE).await;

    // Stop everything and read the four ledgers directly: identical blocks, and every
    // acknowledged message in the log.
    for v in &mut net.validators {
        v.kill();
    }
    let ledgers: Vec<Ledger<RocksBackend>> = net
        .validators
        .iter()
        .map(|v| Ledger::open(RocksBackend::open(&v.dir.join("ledger")).unwrap()).unwrap())
        .collect();
    let heads: Vec<_> = ledgers.iter().map(|l| l.head().unwrap().unwrap()).collect();
    let height = heads.iter().map(|h| h.height).min().unwrap();
    for h in 1..=height {
        let reference = ledgers[0].block(h).unwrap().unwrap().block;
        for (i, ledger) in ledgers.iter().enumerate().skip(1) {
            assert_eq!(
                ledger.block(h).unwrap().unwrap().block,
                reference,
                "validator {i} differs at height {h}"
            );
        }
    }
    for ledger in &ledgers {
        assert_eq!(ledger.root(total).unwrap().hash, root);
        for hash in &acknowledged {
            assert!(
                ledger.leaf_index(hash).unwrap().is_some(),
                "acknowledged message {hash} is not in the log"
            );
        }
    }
    eprintln!(
        "network test: {total} messages committed identically at height {height}, root {root}"
    );
}

/// Proposals name their messages by leaf hash. A validator whose mempool refused the
/// gossiped messages (here it holds one message at most) fetches the missing ones from the
/// proposer to judge the block. With a fourth validator down, no block commits without
/// its vote, so every commit shows it rebuilt the proposals it voted for.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_validator_lacking_a_proposals_messages_fetches_them_and_votes() {
    let options = common::Options {
        node_extra: vec![
            String::new(),
            String::new(),
            String::new(),
            "\n[mempool]\nmax_messages = 1\n".to_owned(),
        ],
        ..common::Options::default()
    };
    let mut net = common::network_with(2, &[], &options);
    let down = net.validators.remove(2);
    for v in &mut net.validators {
        v.start();
    }
    common::wait_until_serving(&net.validators, DEADLINE).await;
    // Submitted to v0 and v1 only; v3 learns of the messages from their gossip (and
    // refuses all but one) and from the proposals.
    let urls: Vec<String> = net.validators[..2].iter().map(|v| v.rpc.clone()).collect();
    let total = 600;
    let mut acknowledged = Vec::new();
    for (i, key) in net.collectors.iter().enumerate() {
        let messages = chain(key, &format!("client{i}"), total / 2, 200);
        acknowledged.extend(submit_all(&urls, i, &messages, 0..messages.len()).await);
    }
    assert_eq!(acknowledged.len(), total);
    let root = common::wait_for_log_size(&net.validators, total as u64, DEADLINE).await;

    let lacking = &net.validators[2];
    let log = std::fs::read_to_string(lacking.dir.join("node.log")).unwrap();
    assert!(
        log.contains("fetching the proposal's missing messages"),
        "v3 never had to fetch messages; the test did not exercise the path:\n{}",
        lacking.log_tail(30)
    );
    assert!(
        !log.contains("still lacks messages"),
        "v3 gave up on a proposal:\n{}",
        lacking.log_tail(30)
    );
    for v in &mut net.validators {
        v.kill();
    }
    let lacking = &net.validators[2];
    let ledger = Ledger::open(RocksBackend::open(&lacking.dir.join("ledger")).unwrap()).unwrap();
    assert_eq!(ledger.root(total as u64).unwrap().hash, root);
    for hash in &acknowledged {
        assert!(ledger.leaf_index(hash).unwrap().is_some());
    }
    drop(down);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_refused_precisely_and_never_committed() {
    let mut net = network(COLLECTORS, &[]);
    for v in &mut net.validators {
        v.start();
    }
    common::wait_until_serving(&net.validators, DEADLINE).await;
    let client = net.validators[0].client();
    let b64 = base64::engine::general_purpose::STANDARD;
    let good = chain(&net.collectors[0], "client0", 3, 64);
    let outsider = SecretKey::generate();
    let unenrolled = chain(&outsider, "client0", 1, 64).remove(0).0;
    let mut forged = good[0].0.clone();
    {
        let mut bytes = b64.decode(&forged.envelope).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1; // the signature's last byte
        forged.envelope = b64.encode(bytes);
    }
    let skipped = good[1].0.clone(); // sequence 2 before 1
    let oversized = SubmitMessage {
        envelope: good[0].0.envelope.clone(),
        payload: b64.encode(vec![0u8; 1024 * 1024 + 1]),
    };
    let response = client
        .submit(vec![forged, unenrolled, skipped, oversized])
        .await
        .unwrap();
    let errors: Vec<String> = response
        .results
        .iter()
        .map(|r| {
            assert_eq!(r.status, SubmitStatus::Rejected, "{r:?}");
            r.error.clone().unwrap()
        })
        .collect();
    assert!(
        errors[0].contains("signature does not verify"),
        "{}",
        errors[0]
    );
    assert!(errors[1].contains("is not enrolled"), "{}", errors[1]);
    assert!(
        errors[2].contains("must send sequence 1 next, got 2"),
        "{}",
        errors[2]
    );
    assert!(
        errors[3].contains("payload has length 1048577; the limit is 1048576"),
        "{}",
        errors[3]
    );

    // The good chain goes in; replaying its first message is answered "committed".
    let all: Vec<SubmitMessage> = good.iter().map(|(m, _)| m.clone()).collect();
    let response = client.submit(all).await.unwrap();
    assert_eq!(response.admitted, 3, "{:?}", response.results);
    common::wait_for_log_size(&net.validators, 3, DEADLINE).await;
    let replay = client.submit(vec![good[0].0.clone()]).await.unwrap();
    assert_eq!(replay.results[0].status, SubmitStatus::Committed);
    // Rewriting history: a different message reusing a committed sequence number.
    let rewrite = chain(&net.collectors[0], "client0", 1, 65).remove(0).0;
    let response = client.submit(vec![rewrite]).await.unwrap();
    assert_eq!(response.results[0].status, SubmitStatus::Rejected);
    let error = response.results[0].error.clone().unwrap();
    assert!(
        error.contains("must send sequence 4 next, got 1"),
        "{error}"
    );

    // More than one batch in one call is refused as a whole.
    let too_many = vec![good[0].0.clone(); custos_rpc::MAX_SUBMIT_BATCH + 1];
    let err = client.submit(too_many).await.unwrap_err().to_string();
    assert!(err.contains("at most 1000"), "{err}");

    // Nothing refused was committed: the log holds exactly the three good messages.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    for v in &net.validators {
        assert_eq!(v.client().status().await.unwrap().log_size, 3);
    }
}

#[test]
fn a_key_outside_genesis_cannot_run_a_validator() {
    let net = network(COLLECTORS, &[]);
    let dir = net.validators[0].dir.parent().unwrap().to_path_buf();
    let (file, _) = KeyFile::generate(KeyKind::Validator);
    file.write_new(&dir.join("keys/outsider.json")).unwrap();
    let outsider = dir.join("outsider");
    std::fs::create_dir_all(&outsider).unwrap();
    let config = std::fs::read_to_string(net.validators[0].dir.join("node.toml"))
        .unwrap()
        .replace("../keys/v0.json", "../keys/outsider.json");
    std::fs::write(outsider.join("node.toml"), config).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_custos"))
        .args(["node", "run", "--config"])
        .arg(outsider.join("node.toml"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a validator in genesis"), "{stderr}");
    assert!(
        !Path::new(&outsider.join("ledger")).exists(),
        "nothing was created"
    );
}

/// A byzantine validator (v3, played by the test over its own libp2p identity) sends
/// compact proposals that must be refused before anything is looked up or fetched for
/// them: one naming a message twice, and one signed for a round it does not propose. The
/// three honest validators keep committing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_byzantine_proposers_compact_proposals_are_refused() {
    use custos_consensus::{Height, Round, ValidatorAddress};
    use custos_ledger::block::BlockHeader;
    use custos_ledger::codec::List;
    use custos_ledger::crypto::Signed;
    use custos_ledger::genesis::Genesis;
    use custos_ledger::hash::Blake3Hash;
    use custos_ledger::message::UnixMillis;
    use custos_node::p2p::{P2p, P2pConfig, Peer, Topic};
    use custos_node::wire::{self, ConsensusWire, ProposalBody};

    let mut net = network(1, &[]);
    let byzantine = net.validators.remove(3);
    for v in &mut net.validators {
        v.start();
    }
    common::wait_until_serving(&net.validators, DEADLINE).await;

    let genesis: Genesis = serde_json::from_str(
        &std::fs::read_to_string(net.dir.path().join("genesis.json")).unwrap(),
    )
    .unwrap();
    let key = KeyFile::load(&net.dir.path().join("keys/v3.json"), KeyKind::Validator).unwrap();
    let validators = genesis.validators.validators();
    let peers: Vec<Peer> = validators
        .iter()
        .map(|v| Peer {
            public_key: v.key.0,
            address: v.p2p_address.parse().unwrap(),
        })
        .collect();
    let mut config = P2pConfig::new(
        key.seed(),
        validators[3].p2p_address.parse().unwrap(),
        genesis.network.to_string(),
        peers,
    );
    config.max_gossip_bytes = wire::MAX_GOSSIP_BYTES;
    config.max_sync_bytes = wire::MAX_SYNC_RESPONSE_BYTES;
    let (p2p, _events) = P2p::spawn(config).await.unwrap();
    let start = Instant::now();
    while p2p.connected_peers().len() < 3 {
        assert!(
            start.elapsed() < DEADLINE,
            "the byzantine node never connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let rotation = custos_consensus::ValidatorSet::new(
        validators
            .iter()
            .map(|v| custos_consensus::Validator {
                address: ValidatorAddress(v.key.0),
                power: v.power,
            })
            .collect(),
    )
    .unwrap();
    let propose = |height: u64, round: u32, leaves: Vec<Sha256Hash>| {
        let header = BlockHeader {
            network: genesis.network.clone(),
            height,
            round,
            proposer: key.public().key_id(),
            time: UnixMillis(custos_node::runtime::now_ms().0),
            parent: Blake3Hash([0; 32]),
            body_hash: Blake3Hash([0; 32]),
            log_size: 0,
            log_root: Sha256Hash::ZERO,
        };
        let body = ProposalBody {
            network: genesis.network.clone(),
            height,
            round,
            pol_round: None,
            block_id: header.id(),
            proposer: key.public().key_id(),
        };
        wire::to_bytes(&ConsensusWire::Proposal {
            signed: Signed::sign(body, &key),
            header: Box::new(header),
            leaves: List::new(leaves).unwrap(),
        })
    };
    let is_v3 = |height: u64, round: u32| {
        rotation
            .proposer(Height::new(height), Round::new(round))
            .as_usize()
            == 3
    };
    let repeated = vec![Sha256Hash([7; 32]); 2];
    let mut refused = [false; 2];
    while !refused.iter().all(|r| *r) {
        assert!(
            start.elapsed() < DEADLINE,
            "the honest validators never logged both refusals:\n{}",
            net.validators[0].log_tail(30)
        );
        // The next height, in the first rounds where v3 does and does not propose.
        let height = net.validators[0].client().status().await.unwrap().height + 1;
        let own = (0..8).find(|&r| is_v3(height, r)).unwrap();
        let other = (0..8).find(|&r| !is_v3(height, r)).unwrap();
        for bytes in [
            propose(height, own, repeated.clone()),
            propose(height, other, Vec::new()),
        ] {
            p2p.publish(Topic::Consensus, bytes).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let log = std::fs::read_to_string(net.validators[0].dir.join("node.log")).unwrap();
        refused[0] = log.contains("proposal names repeated messages");
        refused[1] = log.contains("not the round's proposer");
    }

    // The honest three still commit what they are sent.
    let messages = chain(&net.collectors[0], "client0", 100, 200);
    let urls: Vec<String> = net.validators.iter().map(|v| v.rpc.clone()).collect();
    assert_eq!(
        submit_all(&urls, 0, &messages, 0..messages.len())
            .await
            .len(),
        100
    );
    common::wait_for_log_size(&net.validators, 100, DEADLINE).await;
    p2p.shutdown().await;
    drop(byzantine);
}
