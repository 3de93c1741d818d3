//! Block validity across rounds: a fresh proposal names its own round and proposer; a
//! re-proposal (Tendermint's valid value, Algorithm 1 line 16) carries the block built in
//! an earlier round unchanged. Refusing re-proposals stalls a network whose validators are
//! locked on a block, because that block can then never be proposed validly again.
//!
//! Also: a payload is trusted without hashing only when it is the very bytes this
//! validator admitted.

use std::sync::Arc;

use custos_ledger::crypto::KeyId;
use custos_ledger::message::UnixMillis;
use custos_ledger::storage::{Ledger, RocksBackend, ValidatedBody};
use custos_node::chain::{Chain, InvalidBlock};
use custos_node::keys::{KeyFile, KeyKind};
use custos_node::mempool::{Mempool, MempoolLimits, Rejection};

struct World {
    _dir: tempfile::TempDir,
    chain: Chain,
    ids: Vec<KeyId>,
    collector: custos_ledger::crypto::SecretKey,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("keys")).unwrap();
    let mut spec = String::from("network = \"custos-it\"\nlog_origin = \"custos.test/log\"\n");
    let mut ids = Vec::new();
    for i in 0..4 {
        let (file, key) = KeyFile::generate(KeyKind::Validator);
        file.write_new(&root.join(format!("keys/v{i}.json")))
            .unwrap();
        ids.push(key.public().key_id());
        spec.push_str(&format!(
            "[[validators]]\nname = \"v{i}\"\norg = \"org{i}\"\nrole = \"warning\"\n\
             key = \"keys/v{i}.json\"\np2p_address = \"/ip4/127.0.0.1/tcp/{}\"\n",
            20_000 + i
        ));
    }
    let (file, collector) = KeyFile::generate(KeyKind::Collector);
    file.write_new(&root.join("keys/c0.json")).unwrap();
    spec.push_str("[[collectors]]\nname = \"c0\"\nclient = \"client0\"\nkey = \"keys/c0.json\"\n");
    std::fs::write(root.join("network.toml"), spec).unwrap();
    let genesis =
        custos_node::genesis_spec::build(&root.join("network.toml"), UnixMillis(1)).unwrap();
    let ledger = Ledger::open(RocksBackend::open(&root.join("ledger")).unwrap()).unwrap();
    let chain = Chain::open(Arc::new(ledger), genesis).unwrap();
    World {
        _dir: dir,
        chain,
        ids,
        collector,
    }
}

/// A signed log line from the collector, with its payload.
fn entry(w: &World, payload: &[u8]) -> custos_ledger::block::Entry {
    use custos_ledger::codec::{Bytes, List, Text};
    use custos_ledger::crypto::Signed;
    use custos_ledger::hash::Sha256Hash;
    use custos_ledger::message::{EvidenceKind, Kind, Message, PayloadDescriptor, SourceFormat};
    let message = Message {
        network: Text::new("custos-it").unwrap(),
        author: w.collector.public().key_id(),
        client: Text::new("client0").unwrap(),
        sequence: 1,
        prev: Sha256Hash::ZERO,
        kind: Kind::Evidence {
            evidence: EvidenceKind::LogLine,
        },
        format: SourceFormat::Raw,
        occurred_at: None,
        observed_at: UnixMillis(1),
        severity: None,
        rule_id: None,
        host: None,
        attack_ids: List::empty(),
        references: List::empty(),
        parse_error: None,
        payload: PayloadDescriptor::of(Text::new("text/plain").unwrap(), payload),
    };
    custos_ledger::block::Entry {
        envelope: Signed::sign(message, &w.collector),
        payload: Bytes::new(payload.to_vec()).unwrap(),
    }
}

#[test]
fn a_payload_is_hashed_again_unless_it_is_the_one_admitted() {
    let w = world();
    let mut mempool = Mempool::new(MempoolLimits::default());
    let admitted = mempool.admit_batch(
        vec![entry(&w, b"sshd: accepted publickey for root")],
        w.chain.membership(),
        &w.chain,
    );
    assert!(admitted[0].is_ok(), "{admitted:?}");
    let proposer_of = |round: u32| w.ids[round as usize % w.ids.len()];
    let now = custos_node::runtime::now_ms();
    let block = w
        .chain
        .build_block(&mempool, proposer_of(0), 0, now)
        .unwrap();
    assert_eq!(block.body.entries.len(), 1);
    w.chain
        .validate_block(&block, proposer_of, 0, None, now, &mempool)
        .unwrap();

    // A proposer that swaps the payload bytes beside an admitted envelope (and makes the
    // header's body hash match) is caught: the bytes differ from those admitted, so they
    // are hashed against the envelope's digest.
    let mut forged = block.clone();
    let mut entries = forged.body.entries.into_vec();
    entries[0].payload =
        custos_ledger::codec::Bytes::new(b"sshd: nothing to see".to_vec()).unwrap();
    forged.body.entries = custos_ledger::codec::List::new(entries).unwrap();
    forged.header.body_hash = forged.body.hash();
    match w
        .chain
        .validate_block(&forged, proposer_of, 0, None, now, &mempool)
    {
        Err(InvalidBlock::Message {
            position: 0,
            reason: Rejection::Payload(_),
        }) => {}
        other => panic!("expected a payload mismatch, got {other:?}"),
    }
}

/// What the proposer computed while building a block and what a validator computed
/// while checking it are the same, and committing the block with it stores what
/// checking everything again would.
#[test]
fn a_built_block_validates_alike_and_commits_as_validated() {
    let mut w = world();
    let mut mempool = Mempool::new(MempoolLimits::default());
    let admitted = mempool.admit_batch(
        vec![entry(&w, b"kernel: usb 1-1: new device")],
        w.chain.membership(),
        &w.chain,
    );
    assert!(admitted[0].is_ok(), "{admitted:?}");
    let proposer_of = |round: u32| w.ids[round as usize % w.ids.len()];
    let now = custos_node::runtime::now_ms();
    let (block, built) = w
        .chain
        .build_validated(&mempool, proposer_of(0), 0, now)
        .unwrap();
    let judged = w
        .chain
        .validate_block(&block, proposer_of, 0, None, now, &mempool)
        .unwrap();
    assert_eq!(built, judged);
    let leaf = block.body.entries[0].envelope.leaf_hash();
    assert_eq!(judged.leaf_hashes, vec![leaf]);

    let certificate = custos_ledger::block::CommitCertificate {
        height: block.header.height,
        round: 0,
        block: block.header.id(),
        signatures: custos_ledger::codec::List::empty(),
    };
    let committed = custos_ledger::block::CommittedBlock {
        block: block.clone(),
        certificate,
    };
    let applied = w.chain.commit_validated(&committed, judged).unwrap();
    assert_eq!(applied.leaf_hashes, vec![leaf]);
    assert_eq!(applied.head.log.hash, block.header.log_root);
    assert_eq!(w.chain.ledger.leaf_index(&leaf).unwrap(), Some(0));
    assert_eq!(w.chain.ledger.block(1).unwrap(), Some(committed));
}

fn header_error(result: Result<ValidatedBody, InvalidBlock>) -> String {
    match result {
        Err(InvalidBlock::Header(reason)) => reason,
        other => panic!("expected a header refusal, got {other:?}"),
    }
}

#[test]
fn a_block_is_valid_in_its_round_and_when_re_proposed_later() {
    let w = world();
    let mempool = Mempool::new(MempoolLimits::default());
    let proposer_of = |round: u32| w.ids[round as usize % w.ids.len()];
    let now = custos_node::runtime::now_ms();
    let built_in_0 = w
        .chain
        .build_block(&mempool, proposer_of(0), 0, now)
        .unwrap();
    let validate = |block, round, pol_round| {
        w.chain
            .validate_block(block, proposer_of, round, pol_round, now, &mempool)
    };

    // Fresh in its own round.
    validate(&built_in_0, 0, None).unwrap();
    // Re-proposed in round 3 with a polka from round 1 or from round 0 itself.
    validate(&built_in_0, 3, Some(1)).unwrap();
    validate(&built_in_0, 3, Some(0)).unwrap();

    // Without a polka a block must name the round it is proposed in.
    assert_eq!(
        header_error(validate(&built_in_0, 3, None)),
        "round 0 proposed in round 3"
    );
    // A block built after the polka's round cannot be the value that polka was for.
    let built_in_2 = w
        .chain
        .build_block(&mempool, proposer_of(2), 2, now)
        .unwrap();
    assert!(header_error(validate(&built_in_2, 3, Some(1))).contains("re-proposed in round 3"),);
    // A polka from the round being proposed in, or later, is not a past polka.
    assert!(header_error(validate(&built_in_0, 1, Some(1))).contains("re-proposed"));
    // The builder must be the proposer of the round the block names.
    let wrong_builder = w
        .chain
        .build_block(&mempool, proposer_of(1), 0, now)
        .unwrap();
    assert!(
        header_error(validate(&wrong_builder, 3, Some(1))).contains("is not the round's proposer")
    );
}
