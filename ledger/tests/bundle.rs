//! Evidence bundles: a bundle built from a real ledger (real signatures, quorum
//! checkpoints, an anchor receipt) verifies, and each of the tamper matrix's mutations is
//! detected with the right item and check.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::ChainBuilder;
use custos_ledger::anchor::{AnchorCalldata, AnchorError};
use custos_ledger::block::{BlockError, BlockHeader, CommitCertificate, Entry};
use custos_ledger::bundle::{
    self, AnchorFacts, BlockFacts, BuildRequest, Bundle, Failure, Hex32, Item, Scope,
    TransactionFacts, VerifyOptions,
};
use custos_ledger::c2sp::{Checkpoint, CosignatureSigner, KeyName, Note, QuorumError};
use custos_ledger::codec::{Bytes, List, Text, decode, encode};
use custos_ledger::crypto::{KeyId, SecretKey, Signed};
use custos_ledger::genesis::{ChainParams, Genesis, Organisation, cosigner_keys};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::membership::MembershipError;
use custos_ledger::message::{
    AnchorReceipt, Envelope, EvidenceKind, Kind, MembershipChange, Message, PayloadDescriptor,
    Role, SourceFormat, UnixMillis,
};
use custos_ledger::storage::{Ledger, MemoryBackend};

const CLIENT: &str = "acme-bank";
const ANCHOR_BLOCK: u64 = 100;
const ANCHOR_TIME_S: u64 = 5;

struct Fixture {
    bundle: Bundle,
    facts: AnchorFacts,
    collector: KeyId,
    /// Notes of the log at sizes 7 and the latest, for swapping.
    anchored_note: String,
}

struct Signers {
    chain: ChainBuilder,
    control: SecretKey,
    client: SecretKey,
    insurer: SecretKey,
    collectors: [SecretKey; 2],
    genesis: Genesis,
    sequences: std::collections::HashMap<KeyId, (u64, Sha256Hash)>,
}

impl Signers {
    fn new() -> Self {
        let chain = ChainBuilder::new(0, 0);
        let control = SecretKey::from_seed(&[50; 32]);
        let client = SecretKey::from_seed(&[51; 32]);
        let insurer = SecretKey::from_seed(&[52; 32]);
        let genesis = Genesis {
            network: chain.network.clone(),
            log_origin: Text::new("custos.test/log").unwrap(),
            genesis_time: UnixMillis(0),
            validators: chain.set.clone(),
            cosigners: cosigner_keys(&chain.set).unwrap(),
            organisations: List::new(vec![
                Organisation {
                    id: Text::new("control").unwrap(),
                    role: Role::ControlCenter,
                    key: control.public(),
                },
                Organisation {
                    id: Text::new(CLIENT).unwrap(),
                    role: Role::Client,
                    key: client.public(),
                },
                Organisation {
                    id: Text::new("insurer").unwrap(),
                    role: Role::Insurer,
                    key: insurer.public(),
                },
            ])
            .unwrap(),
            collectors: List::empty(),
            params: ChainParams::default(),
        };
        genesis.validate().unwrap();
        Self {
            chain,
            control,
            client,
            insurer,
            collectors: [
                SecretKey::from_seed(&[60; 32]),
                SecretKey::from_seed(&[61; 32]),
            ],
            genesis,
            sequences: Default::default(),
        }
    }

    /// The next message of `key`, continuing its chain.
    fn entry(&mut self, key: &SecretKey, kind: Kind, time_ms: u64) -> Entry {
        let author = key.public().key_id();
        let (sequence, prev) = self
            .sequences
            .get(&author)
            .copied()
            .unwrap_or((0, Sha256Hash::ZERO));
        let payload = format!("{{\"event\":{sequence},\"author\":\"{author}\"}}").into_bytes();
        let message = Message {
            network: self.chain.network.clone(),
            author,
            client: Text::new(CLIENT).unwrap(),
            sequence: sequence + 1,
            prev,
            kind,
            format: SourceFormat::Raw,
            occurred_at: None,
            observed_at: UnixMillis(time_ms),
            severity: None,
            rule_id: None,
            host: None,
            attack_ids: List::empty(),
            references: List::empty(),
            parse_error: None,
            payload: PayloadDescriptor::of(Text::new("application/json").unwrap(), &payload),
        };
        let envelope = Signed::sign(message, key);
        self.sequences
            .insert(author, (sequence + 1, envelope.leaf_hash()));
        Entry {
            envelope,
            payload: Bytes::new(payload).unwrap(),
        }
    }

    fn evidence(&mut self, which: usize, time_ms: u64) -> Entry {
        let key = self.collectors[which].clone_key();
        self.entry(
            &key,
            Kind::Evidence {
                evidence: EvidenceKind::Alert,
            },
            time_ms,
        )
    }

    fn membership(&mut self, change: MembershipChange, time_ms: u64) -> Entry {
        let key = self.control.clone_key();
        self.entry(&key, Kind::Membership(change), time_ms)
    }

    fn enrol(&mut self, which: usize) -> Entry {
        let key = self.collectors[which].public();
        self.membership(
            MembershipChange::CollectorEnrolled {
                key,
                client: Text::new(CLIENT).unwrap(),
                name: Text::new(format!("web-{which}")).unwrap(),
            },
            500,
        )
    }

    fn cosigners(&self) -> Vec<CosignatureSigner> {
        self.chain
            .validators
            .iter()
            .enumerate()
            .map(|(i, key)| {
                CosignatureSigner::from_seed(
                    KeyName::new(format!("validator-{i}")).unwrap(),
                    &key.seed(),
                )
                .unwrap()
            })
            .collect()
    }

    /// A note of the log's current head cosigned by every validator.
    fn checkpoint(&self, ledger: &Ledger<MemoryBackend>) -> (u64, String) {
        let root = ledger.log().unwrap();
        let checkpoint = Checkpoint::new(self.genesis.log_origin.as_str(), root).unwrap();
        let lines = self
            .cosigners()
            .iter()
            .map(|s| s.cosign(&checkpoint, 10).unwrap())
            .collect();
        let note = Note::new(checkpoint.to_text(), lines).unwrap().encode();
        ledger
            .put_checkpoint(root.tree_size, note.as_bytes())
            .unwrap();
        (root.tree_size, note)
    }

    fn commit(&self, ledger: &Ledger<MemoryBackend>, entries: Vec<Entry>, time_ms: u64) {
        let block = self.chain.block_with(ledger, entries, time_ms);
        ledger.apply_block(&block).unwrap();
    }
}

/// `SecretKey` is deliberately not `Clone`; tests rebuild one from its seed.
trait CloneKey {
    fn clone_key(&self) -> SecretKey;
}

impl CloneKey for SecretKey {
    fn clone_key(&self) -> SecretKey {
        SecretKey::from_seed(&self.seed())
    }
}

/// Leaves: 0-1 enrolments; 2-5 collector 0 (sequences 1-4); 6 collector 1; checkpoint
/// at 7, anchored; 7 the anchor receipt; 8 collector 0 sequence 5; with `revoke`, 9
/// revokes collector 1 and 10 is collector 1's next message regardless. The bundle
/// exports leaves 2-6 (and 9-10 with `revoke`).
fn fixture(revoke: bool) -> Fixture {
    let mut s = Signers::new();
    let ledger = Ledger::open(MemoryBackend::new()).unwrap();
    let enrol = vec![s.enrol(0), s.enrol(1)];
    s.commit(&ledger, enrol, 1_000);
    let evidence = vec![
        s.evidence(0, 2_000),
        s.evidence(0, 2_000),
        s.evidence(0, 2_000),
        s.evidence(0, 2_000),
        s.evidence(1, 2_000),
    ];
    s.commit(&ledger, evidence, 2_000);
    let (anchored_size, anchored_note) = s.checkpoint(&ledger);
    assert_eq!(anchored_size, 7);
    let anchored = Checkpoint::from_note(&Note::parse(anchored_note.as_bytes()).unwrap()).unwrap();
    let receipt = AnchorReceipt {
        chain_id: 31_337,
        tx_hash: [0xab; 32],
        block_number: ANCHOR_BLOCK,
        block_hash: [0xcd; 32],
        block_time_s: ANCHOR_TIME_S,
        tree_size: anchored_size,
        root: anchored.root().hash,
    };
    let validator = s.chain.validators[0].clone_key();
    let mut third = vec![
        s.entry(&validator, Kind::AnchorReceipt(receipt.clone()), 6_000),
        s.evidence(0, 6_000),
    ];
    let mut exported: Vec<u64> = (2..=6).collect();
    if revoke {
        let key_id = s.collectors[1].public().key_id();
        third.push(s.membership(
            MembershipChange::CollectorRevoked {
                key_id,
                reason: Text::new("server decommissioned").unwrap(),
            },
            6_000,
        ));
        third.push(s.evidence(1, 6_000));
        exported.extend([9, 10]);
    }
    s.commit(&ledger, third, 6_000);
    s.checkpoint(&ledger);

    let bundle = bundle::build(
        &ledger,
        &s.genesis,
        &BuildRequest {
            scope: Scope::ClientRange {
                client: Text::new(CLIENT).unwrap(),
                from_ms: 0,
                to_ms: 6_000,
            },
            leaf_indexes: exported,
            include_payloads: true,
            created_at_ms: 7_000,
        },
    )
    .unwrap();
    let facts = AnchorFacts {
        chain_id: 31_337,
        transaction: Some(TransactionFacts {
            block_number: Some(ANCHOR_BLOCK),
            block_hash: Some([0xcd; 32]),
            input: AnchorCalldata::for_checkpoint(&anchored).encode().to_vec(),
            succeeded: Some(true),
        }),
        block: Some(BlockFacts {
            hash: [0xcd; 32],
            time_s: ANCHOR_TIME_S,
        }),
        latest_block: ANCHOR_BLOCK + 11,
    };
    Fixture {
        bundle,
        facts,
        collector: s.collectors[0].public().key_id(),
        anchored_note,
    }
}

fn online(facts: &AnchorFacts) -> VerifyOptions {
    VerifyOptions {
        chain: Some(vec![Ok(facts.clone())]),
        min_confirmations: 12,
        require_anchor: true,
        ..VerifyOptions::default()
    }
}

#[test]
fn a_bundle_built_from_the_ledger_verifies_offline_and_against_the_chain() {
    let f = fixture(false);
    let b = &f.bundle;
    // Enrolments, the exported leaves and the receipt; proofs against the latest
    // checkpoint; the anchored checkpoint linked to it by a consistency proof.
    let leaves: Vec<u64> = b.entries.iter().map(|e| e.leaf_index).collect();
    assert_eq!(leaves, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(b.checkpoints.len(), 2);
    assert_eq!(b.consistency.len(), 1);
    assert_eq!(
        (b.consistency[0].old_size, b.consistency[0].new_size),
        (7, 9)
    );
    assert_eq!(b.anchors[0].receipt_leaf_index, Some(7));
    // The three blocks that appended them, each with its certificate and parent.
    assert_eq!(b.blocks.len(), 3);
    assert_eq!(
        b.blocks
            .iter()
            .map(|b| b.parent.is_some())
            .collect::<Vec<_>>(),
        [false, true, true]
    );

    let reread = Bundle::from_json(b.to_json().as_bytes()).unwrap();
    assert_eq!(&reread, b);

    let offline = bundle::verify(b, &VerifyOptions::default());
    assert!(offline.passed(), "{:?}", offline.failures);
    assert!(!offline.checked_on_chain);
    let report = bundle::verify(
        &reread,
        &VerifyOptions {
            trusted_genesis: Some(b.genesis_hash),
            anchored_by_s: Some(ANCHOR_TIME_S),
            ..online(&f.facts)
        },
    );
    assert!(report.passed(), "{:?}", report.failures);
    assert!(report.genesis_trusted && report.checked_on_chain);
    assert_eq!(report.anchors_verified, [0]);
    assert_eq!(report.entries.len(), 8);
    for entry in &report.entries {
        // Leaf 7 is the receipt itself, committed after the anchor: nothing anchors it.
        let expected = (entry.leaf_index < 7).then_some(ANCHOR_TIME_S);
        assert_eq!(
            entry.anchored_before_s, expected,
            "leaf {}",
            entry.leaf_index
        );
        assert!(entry.payload_checked);
        // Committed times are the certified block times, not what anyone reports.
        let (height, time) = match entry.leaf_index {
            0..=1 => (1, 1_000),
            2..=6 => (2, 2_000),
            _ => (3, 6_000),
        };
        assert_eq!(
            (entry.block_height, entry.committed_at_ms),
            (height, time),
            "leaf {}",
            entry.leaf_index
        );
    }
    assert_eq!(
        report
            .entries
            .iter()
            .filter(|e| e.author == f.collector)
            .map(|e| e.sequence)
            .collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
}

/// Decodes entry `leaf`'s envelope, lets `change` alter it, and writes it back
/// (without re-signing).
fn alter_envelope(bundle: &mut Bundle, leaf: u64, change: impl FnOnce(&mut Envelope)) {
    let entry = entry_mut(bundle, leaf);
    let mut envelope = Envelope::decode(&STANDARD.decode(&entry.envelope).unwrap()).unwrap();
    change(&mut envelope);
    entry.envelope = STANDARD.encode(encode(&envelope));
}

fn entry_mut(bundle: &mut Bundle, leaf: u64) -> &mut custos_ledger::bundle::BundleEntry {
    bundle
        .entries
        .iter_mut()
        .find(|e| e.leaf_index == leaf)
        .unwrap()
}

/// Lines of entry `leaf`'s tlog-proof: header, index, hashes, blank, note.
fn alter_proof(bundle: &mut Bundle, leaf: u64, change: impl FnOnce(&mut Vec<String>)) {
    let entry = entry_mut(bundle, leaf);
    let mut lines: Vec<String> = entry.proof.split('\n').map(str::to_owned).collect();
    change(&mut lines);
    entry.proof = lines.join("\n");
}

/// Lines of checkpoint note `position`.
fn alter_note(bundle: &mut Bundle, position: usize, change: impl FnOnce(&mut Vec<String>)) {
    let mut lines: Vec<String> = bundle.checkpoints[position]
        .split('\n')
        .map(str::to_owned)
        .collect();
    change(&mut lines);
    bundle.checkpoints[position] = lines.join("\n");
}

/// Decodes block `position`'s header, lets `change` alter it, and writes it back.
fn alter_header(bundle: &mut Bundle, position: usize, change: impl FnOnce(&mut BlockHeader)) {
    let block = &mut bundle.blocks[position];
    let mut header: BlockHeader =
        decode(&STANDARD.decode(&block.header).unwrap(), usize::MAX).unwrap();
    change(&mut header);
    block.header = STANDARD.encode(encode(&header));
}

/// Decodes block `position`'s certificate, lets `change` alter it, and writes it back.
fn alter_certificate(
    bundle: &mut Bundle,
    position: usize,
    change: impl FnOnce(&mut CommitCertificate),
) {
    let block = &mut bundle.blocks[position];
    let mut certificate: CommitCertificate =
        decode(&STANDARD.decode(&block.certificate).unwrap(), usize::MAX).unwrap();
    change(&mut certificate);
    block.certificate = STANDARD.encode(encode(&certificate));
}

/// Index of the first signature line of a note split into lines.
fn first_signature(lines: &[String]) -> usize {
    lines
        .iter()
        .position(|l| l.starts_with('\u{2014}'))
        .unwrap()
}

type Mutation = Box<dyn Fn(&mut Bundle, &mut VerifyOptions, &Fixture)>;
type Expectation = fn(&Failure) -> bool;

struct Case {
    name: &'static str,
    mutate: Mutation,
    item: Item,
    check: &'static str,
    reason: Expectation,
}

fn case(
    name: &'static str,
    item: Item,
    check: &'static str,
    reason: Expectation,
    mutate: impl Fn(&mut Bundle, &mut VerifyOptions, &Fixture) + 'static,
) -> Case {
    Case {
        name,
        mutate: Box::new(mutate),
        item,
        check,
        reason,
    }
}

fn entry(leaf_index: u64) -> Item {
    Item::Entry { leaf_index }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "flipped payload byte",
            entry(3),
            "payload-digest",
            |f| {
                matches!(
                    f,
                    Failure::Payload(custos_ledger::message::PayloadMismatch::Digest { .. })
                )
            },
            |b, _, _| {
                let e = entry_mut(b, 3);
                let mut payload = STANDARD.decode(e.payload.as_ref().unwrap()).unwrap();
                payload[0] ^= 1;
                e.payload = Some(STANDARD.encode(payload));
            },
        ),
        case(
            "truncated payload",
            entry(4),
            "payload-digest",
            |f| {
                matches!(
                    f,
                    Failure::Payload(custos_ledger::message::PayloadMismatch::Size { .. })
                )
            },
            |b, _, _| {
                let e = entry_mut(b, 4);
                let payload = STANDARD.decode(e.payload.as_ref().unwrap()).unwrap();
                e.payload = Some(STANDARD.encode(&payload[1..]));
            },
        ),
        case(
            "changed envelope field",
            entry(2),
            "envelope-signature",
            |f| matches!(f, Failure::SignatureInvalid { .. }),
            |b, _, _| alter_envelope(b, 2, |e| e.body.observed_at = UnixMillis(1)),
        ),
        case(
            "changed payload digest in the envelope",
            entry(5),
            "envelope-signature",
            |f| matches!(f, Failure::SignatureInvalid { .. }),
            |b, _, _| alter_envelope(b, 5, |e| e.body.payload.sha256 = Sha256Hash([0; 32])),
        ),
        case(
            "reordered proof hashes",
            entry(2),
            "inclusion",
            |f| matches!(f, Failure::Inclusion(_)),
            |b, _, _| alter_proof(b, 2, |lines| lines.swap(2, 3)),
        ),
        case(
            "truncated proof",
            entry(2),
            "inclusion",
            |f| matches!(f, Failure::Inclusion(_)),
            |b, _, _| {
                alter_proof(b, 2, |lines| {
                    lines.remove(2);
                })
            },
        ),
        case(
            "proof of another leaf",
            entry(2),
            "proof-index",
            |f| {
                matches!(
                    f,
                    Failure::IndexMismatch {
                        leaf_index: 2,
                        proof_index: 3
                    }
                )
            },
            |b, _, _| {
                let other = entry_mut(b, 3).proof.clone();
                entry_mut(b, 2).proof = other;
            },
        ),
        case(
            "proof against a swapped checkpoint",
            entry(2),
            "inclusion",
            |f| matches!(f, Failure::Inclusion(_)),
            |b, _, fx| {
                let note = fx.anchored_note.clone();
                alter_proof(b, 2, |lines| {
                    let blank = lines.iter().position(String::is_empty).unwrap();
                    lines.truncate(blank + 1);
                    lines.extend(note.split('\n').map(str::to_owned));
                });
            },
        ),
        case(
            "forged cosignature",
            Item::Checkpoint { position: 1 },
            "checkpoint-quorum",
            |f| matches!(f, Failure::Quorum(QuorumError::CosignatureInvalid { .. })),
            |b, _, _| {
                alter_note(b, 1, |lines| {
                    let at = first_signature(lines);
                    let line = &mut lines[at];
                    let flip = line.len() - 6;
                    let c = if &line[flip..=flip] == "A" { "B" } else { "A" };
                    line.replace_range(flip..=flip, c);
                })
            },
        ),
        case(
            "forged cosignature inside an entry's proof",
            entry(4),
            "inclusion",
            |f| {
                matches!(
                    f,
                    Failure::Inclusion(custos_ledger::c2sp::TlogProofError::Quorum(
                        QuorumError::CosignatureInvalid { .. }
                    ))
                )
            },
            |b, _, _| {
                alter_proof(b, 4, |lines| {
                    let at = first_signature(lines);
                    let line = &mut lines[at];
                    let flip = line.len() - 6;
                    let c = if &line[flip..=flip] == "A" { "B" } else { "A" };
                    line.replace_range(flip..=flip, c);
                })
            },
        ),
        case(
            "duplicated cosignature",
            Item::Checkpoint { position: 1 },
            "checkpoint-cosigner-once",
            |f| matches!(f, Failure::DuplicateCosignature { .. }),
            |b, _, _| {
                alter_note(b, 1, |lines| {
                    let at = first_signature(lines);
                    lines[at + 3] = lines[at].clone();
                })
            },
        ),
        case(
            "fewer cosignatures than the quorum",
            Item::Checkpoint { position: 1 },
            "checkpoint-quorum",
            |f| {
                matches!(
                    f,
                    Failure::Quorum(QuorumError::QuorumNotMet {
                        valid: 2,
                        threshold: 3,
                        ..
                    })
                )
            },
            |b, _, _| {
                alter_note(b, 1, |lines| {
                    let at = first_signature(lines);
                    lines.drain(at..at + 2);
                })
            },
        ),
        case(
            "unknown validator key",
            Item::Checkpoint { position: 1 },
            "checkpoint-cosigner-known",
            |f| matches!(f, Failure::UnknownCosigner { .. }),
            |b, _, _| {
                let note = Note::parse(b.checkpoints[1].as_bytes()).unwrap();
                let checkpoint = Checkpoint::from_note(&note).unwrap();
                let outsider =
                    CosignatureSigner::from_seed(KeyName::new("validator-0").unwrap(), &[99; 32])
                        .unwrap();
                let line = outsider.cosign(&checkpoint, 10).unwrap().encode();
                alter_note(b, 1, |lines| {
                    let at = first_signature(lines);
                    lines[at] = line.trim_end().to_owned();
                });
            },
        ),
        case(
            "checkpoint of another log",
            Item::Checkpoint { position: 1 },
            "checkpoint-quorum",
            |f| matches!(f, Failure::Quorum(QuorumError::OriginMismatch { .. })),
            |b, _, _| {
                let signers = Signers::new().cosigners();
                let note = Note::parse(b.checkpoints[1].as_bytes()).unwrap();
                let root = Checkpoint::from_note(&note).unwrap().root();
                let other = Checkpoint::new("other.test/log", root).unwrap();
                let lines = signers
                    .iter()
                    .map(|s| s.cosign(&other, 10).unwrap())
                    .collect();
                b.checkpoints[1] = Note::new(other.to_text(), lines).unwrap().encode();
            },
        ),
        case(
            "tampered genesis",
            Item::Genesis,
            "genesis-hash",
            |f| matches!(f, Failure::GenesisHashMismatch { .. }),
            |b, _, _| b.genesis.params.max_clock_drift_ms += 1,
        ),
        case(
            "genesis of another network",
            Item::Genesis,
            "genesis-trusted",
            |f| matches!(f, Failure::GenesisUntrusted { .. }),
            |_, o, _| o.trusted_genesis = Some(Sha256Hash([7; 32])),
        ),
        case(
            "tampered consistency proof",
            Item::Consistency {
                old_size: 7,
                new_size: 9,
            },
            "consistency",
            |f| matches!(f, Failure::ConsistencyInvalid(_)),
            |b, _, _| b.consistency[0].proof[0].0[0] ^= 1,
        ),
        case(
            "anchor receipt for another root",
            Item::Anchor { position: 0 },
            "anchor-receipt",
            |f| matches!(f, Failure::Anchor(AnchorError::ReceiptMismatch { .. })),
            |b, _, _| b.anchors[0].root.0[0] ^= 1,
        ),
        case(
            "wrong anchor transaction in the bundle",
            Item::Anchor { position: 0 },
            "anchor-receipt-entry",
            |f| matches!(f, Failure::ReceiptEntry { leaf_index: 7 }),
            |b, _, _| b.anchors[0].tx_hash = Hex32([0xee; 32]),
        ),
        case(
            "anchor transaction not on the chain",
            Item::Anchor { position: 0 },
            "anchor-transaction",
            |f| matches!(f, Failure::Anchor(AnchorError::TransactionMissing { .. })),
            |_, o, fx| {
                let mut facts = fx.facts.clone();
                facts.transaction = None;
                o.chain = Some(vec![Ok(facts)]);
            },
        ),
        case(
            "anchor block on another chain id",
            Item::Anchor { position: 0 },
            "anchor-chain-id",
            |f| {
                matches!(
                    f,
                    Failure::Anchor(AnchorError::ChainId {
                        expected: 31_337,
                        actual: 1
                    })
                )
            },
            |_, o, fx| {
                let mut facts = fx.facts.clone();
                facts.chain_id = 1;
                o.chain = Some(vec![Ok(facts)]);
            },
        ),
        case(
            "anchor transaction carries another checkpoint",
            Item::Anchor { position: 0 },
            "anchor-calldata",
            |f| matches!(f, Failure::Anchor(AnchorError::CalldataMismatch { .. })),
            |_, o, fx| {
                let mut facts = fx.facts.clone();
                facts.transaction.as_mut().unwrap().input[60] ^= 1;
                o.chain = Some(vec![Ok(facts)]);
            },
        ),
        case(
            "anchor transaction without a receipt",
            Item::Anchor { position: 0 },
            "anchor-transaction",
            |f| matches!(f, Failure::Anchor(AnchorError::TransactionMissing { .. })),
            |_, o, fx| {
                let mut facts = fx.facts.clone();
                facts.transaction.as_mut().unwrap().succeeded = None;
                o.chain = Some(vec![Ok(facts)]);
            },
        ),
        case(
            "anchor transaction reverted",
            Item::Anchor { position: 0 },
            "anchor-transaction-status",
            |f| matches!(f, Failure::Anchor(AnchorError::TransactionFailed)),
            |_, o, fx| {
                let mut facts = fx.facts.clone();
                facts.transaction.as_mut().unwrap().succeeded = Some(false);
                o.chain = Some(vec![Ok(facts)]);
            },
        ),
        case(
            "anchor block reorganised away",
            Item::Anchor { position: 0 },
            "anchor-block",
            |f| matches!(f, Failure::Anchor(AnchorError::BlockHash { .. })),
            |_, o, fx| {
                let mut facts = fx.facts.clone();
                facts.block.as_mut().unwrap().hash = [0x11; 32];
                o.chain = Some(vec![Ok(facts)]);
            },
        ),
        case(
            "too few confirmations",
            Item::Anchor { position: 0 },
            "anchor-confirmations",
            |f| {
                matches!(
                    f,
                    Failure::Anchor(AnchorError::Confirmations {
                        confirmations: 12,
                        required: 20
                    })
                )
            },
            |_, o, _| o.min_confirmations = 20,
        ),
        case(
            "anchor that postdates the claim",
            entry(0),
            "anchored-before",
            |f| {
                matches!(
                    f,
                    Failure::AnchoredTooLate {
                        anchored_s: ANCHOR_TIME_S,
                        deadline_s: 4
                    }
                )
            },
            |_, o, _| o.anchored_by_s = Some(4),
        ),
        case(
            "anchor removed",
            entry(0),
            "anchored",
            |f| matches!(f, Failure::NotAnchored),
            |b, _, _| b.anchors.clear(),
        ),
        case(
            "missing sequence number",
            Item::Author {
                key_id: KeyId([0; 8]),
            },
            "sequence-complete",
            |f| {
                matches!(
                    f,
                    Failure::SequenceGap {
                        after: 1,
                        next: 3,
                        missing_from: 2
                    }
                )
            },
            |b, _, _| b.entries.retain(|e| e.leaf_index != 3),
        ),
        case(
            "enrolment left out",
            entry(2),
            "author-permitted",
            |f| matches!(f, Failure::Membership(MembershipError::UnknownAuthor(_))),
            |b, _, _| b.entries.retain(|e| e.leaf_index != 0),
        ),
        case(
            "entries reordered",
            entry(3),
            "entry-order",
            |f| matches!(f, Failure::EntryOrder { previous: 4 }),
            |b, _, _| b.entries.swap(3, 4),
        ),
        case(
            "envelope not base64",
            entry(6),
            "base64",
            |f| matches!(f, Failure::Base64 { field: "envelope" }),
            |b, _, _| entry_mut(b, 6).envelope.push('!'),
        ),
        case(
            "block time moved earlier (header re-encoded)",
            Item::Block { position: 1 },
            "block-certificate",
            |f| {
                matches!(
                    f,
                    Failure::BlockCertificate(BlockError::CertificateForOtherBlock { .. })
                )
            },
            |b, _, _| alter_header(b, 1, |h| h.time = UnixMillis(1_500)),
        ),
        case(
            "block of another network",
            Item::Block { position: 0 },
            "block-network",
            |f| matches!(f, Failure::BlockNetwork { found } if found == "other-net"),
            |b, _, _| alter_header(b, 0, |h| h.network = Text::new("other-net").unwrap()),
        ),
        case(
            "commit certificate below the quorum",
            Item::Block { position: 1 },
            "block-certificate",
            |f| {
                matches!(
                    f,
                    Failure::BlockCertificate(BlockError::InsufficientPower {
                        signed: 2,
                        needed: 3,
                        ..
                    })
                )
            },
            |b, _, _| {
                alter_certificate(b, 1, |c| {
                    let mut signatures = c.signatures.clone().into_vec();
                    signatures.pop();
                    c.signatures = List::new(signatures).unwrap();
                })
            },
        ),
        case(
            "forged precommit signature",
            Item::Block { position: 2 },
            "block-certificate",
            |f| {
                matches!(
                    f,
                    Failure::BlockCertificate(BlockError::BadSignature { .. })
                )
            },
            |b, _, _| {
                alter_certificate(b, 2, |c| {
                    let mut signatures = c.signatures.clone().into_vec();
                    signatures[1].signature.0[5] ^= 1;
                    c.signatures = List::new(signatures).unwrap();
                })
            },
        ),
        case(
            "certificate not base64",
            Item::Block { position: 0 },
            "base64",
            |f| {
                matches!(
                    f,
                    Failure::Base64 {
                        field: "certificate"
                    }
                )
            },
            |b, _, _| b.blocks[0].certificate.push('!'),
        ),
        case(
            "parent header of another block",
            Item::Block { position: 2 },
            "block-parent",
            |f| matches!(f, Failure::BlockParent(reason) if reason.contains("header names")),
            |b, _, _| b.blocks[2].parent = Some(b.blocks[0].header.clone()),
        ),
        case(
            "parent header left out",
            Item::Block { position: 1 },
            "block-parent",
            |f| matches!(f, Failure::BlockParent(reason) if reason.contains("no parent header")),
            |b, _, _| b.blocks[1].parent = None,
        ),
        case(
            "blocks reordered",
            Item::Block { position: 1 },
            "block-order",
            |f| {
                matches!(
                    f,
                    Failure::BlockOrder {
                        height: 1,
                        previous: 2
                    }
                )
            },
            |b, _, _| b.blocks.swap(0, 1),
        ),
        case(
            "entry's block left out",
            entry(7),
            "entry-block",
            |f| matches!(f, Failure::EntryBlockMissing { height: 3 }),
            |b, _, _| {
                b.blocks.pop();
            },
        ),
        case(
            "entry dated by an earlier block",
            entry(7),
            "block-range",
            |f| {
                matches!(
                    f,
                    Failure::BlockRange {
                        height: 2,
                        first: 2,
                        end: 7
                    }
                )
            },
            |b, _, _| entry_mut(b, 7).block_height = 2,
        ),
        case(
            "block proof truncated",
            entry(3),
            "block-inclusion",
            |f| matches!(f, Failure::BlockInclusion(_)),
            |b, _, _| {
                entry_mut(b, 3).block_proof.pop();
            },
        ),
        case(
            "block proof of another leaf",
            entry(4),
            "block-inclusion",
            |f| matches!(f, Failure::BlockInclusion(_)),
            |b, _, _| entry_mut(b, 4).block_proof = entry_mut(b, 5).block_proof.clone(),
        ),
        case(
            "unsupported version",
            Item::Bundle,
            "version",
            |f| matches!(f, Failure::Version(3)),
            |b, _, _| b.version = 3,
        ),
    ]
}

#[test]
fn every_tampering_is_detected_with_its_reason() {
    let f = fixture(false);
    let cases = cases();
    assert!(cases.len() >= 20);
    for case in &cases {
        let mut bundle = f.bundle.clone();
        let mut options = online(&f.facts);
        (case.mutate)(&mut bundle, &mut options, &f);
        // Every tampered bundle also goes through JSON, as a verifier would read it.
        let bundle = Bundle::from_json(bundle.to_json().as_bytes()).unwrap();
        let report = bundle::verify(&bundle, &options);
        let first = report
            .failures
            .first()
            .unwrap_or_else(|| panic!("{}: not detected", case.name));
        let item = match (&case.item, &first.item) {
            // The collector's key id is known only at run time.
            (Item::Author { .. }, Item::Author { key_id }) => {
                assert_eq!(*key_id, f.collector, "{}", case.name);
                first.item.clone()
            }
            _ => case.item.clone(),
        };
        assert_eq!(first.item, item, "{}: {first}", case.name);
        assert_eq!(first.failure.check(), case.check, "{}: {first}", case.name);
        assert!((case.reason)(&first.failure), "{}: {first}", case.name);
    }
}

/// A version 1 bundle (no blocks; unproven committed times) is refused with its version
/// named, not with the member its shape lacks; a file that is no bundle says what it is.
#[test]
fn an_older_bundle_version_is_named_when_refused() {
    let f = fixture(false);
    let mut old: serde_json::Value = serde_json::from_str(&f.bundle.to_json()).unwrap();
    old["version"] = 1.into();
    old.as_object_mut().unwrap().remove("blocks");
    for entry in old["entries"].as_array_mut().unwrap() {
        let entry = entry.as_object_mut().unwrap();
        entry.remove("block_height");
        entry.remove("block_proof");
        entry.insert("committed_at_ms".into(), 2_000.into());
    }
    let refused = Bundle::from_json(old.to_string().as_bytes()).unwrap_err();
    assert!(
        matches!(refused, bundle::BundleReadError::Version { found: 1 }),
        "{refused}"
    );
    assert!(refused.to_string().contains("reads version 2"), "{refused}");
    let not_a_bundle = Bundle::from_json(br#"{"format": "x", "version": 1}"#).unwrap_err();
    assert!(
        matches!(not_a_bundle, bundle::BundleReadError::Json(_)),
        "{not_a_bundle}"
    );
}

#[test]
fn a_message_from_a_revoked_collector_is_refused() {
    let f = fixture(true);
    let report = bundle::verify(&f.bundle, &VerifyOptions::default());
    let failures: Vec<_> = report
        .failures
        .iter()
        .map(|x| (x.item.clone(), x.failure.check()))
        .collect();
    assert_eq!(
        failures,
        [(entry(10), "author-permitted")],
        "{:?}",
        report.failures
    );
    assert!(matches!(
        report.failures[0].failure,
        Failure::Membership(MembershipError::Revoked(_))
    ));
}

mod claims {
    use super::*;
    use custos_ledger::claim::{markdown, verify_claim};
    use custos_ledger::incident::PolicyTable;
    use custos_ledger::message::{
        IncidentAction, IncidentEvent, IncidentLevel, InsuranceEvent, Money,
    };

    fn incident(s: &mut Signers, action: IncidentAction, time_ms: u64) -> Entry {
        let key = s.client.clone_key();
        let kind = Kind::Incident(IncidentEvent {
            incident_id: Text::new("INC-1").unwrap(),
            action,
            note: Text::new("").unwrap(),
        });
        s.entry(&key, kind, time_ms)
    }

    /// A collector message committed after the anchor and before the claim.
    #[derive(Clone, Copy, PartialEq)]
    enum Late {
        Nothing,
        Heartbeat,
        LogLine,
    }

    /// An insured client's incident: policy, evidence with a heartbeat, detection (and,
    /// with `report`, the report and containment), an anchor at 5 s, then `late` at 5.8 s
    /// and the claim at `claim_ms`. Returns the bundle of everything and the claim's leaf.
    fn claim_bundle(report: bool, late: Late, claim_ms: u64) -> (Bundle, u64) {
        let mut s = Signers::new();
        let ledger = Ledger::open(MemoryBackend::new()).unwrap();
        let insurer = s.insurer.clone_key();
        let policy = s.entry(
            &insurer,
            Kind::Insurance(InsuranceEvent::Policy {
                policy_id: Text::new("POL-9").unwrap(),
                client: Text::new(CLIENT).unwrap(),
                starts_at: UnixMillis(500),
                ends_at: UnixMillis(100_000_000),
            }),
            900,
        );
        let first = vec![s.enrol(0), policy];
        s.commit(&ledger, first, 1_000);
        let collector = s.collectors[0].clone_key();
        let mut second = vec![
            s.evidence(0, 2_000),
            s.evidence(0, 2_000),
            s.entry(
                &collector,
                Kind::Heartbeat {
                    interval_ms: 30_000,
                },
                2_000,
            ),
            incident(
                &mut s,
                IncidentAction::Detected {
                    level: IncidentLevel::new(1).unwrap(),
                    aware_at: UnixMillis(2_000),
                },
                2_000,
            ),
        ];
        if report {
            second.push(incident(&mut s, IncidentAction::Reported, 2_000));
            second.push(incident(&mut s, IncidentAction::Contained, 2_000));
        }
        s.commit(&ledger, second, 2_000);
        let (size, note) = s.checkpoint(&ledger);
        let root = Checkpoint::from_note(&Note::parse(note.as_bytes()).unwrap())
            .unwrap()
            .root();
        let validator = s.chain.validators[0].clone_key();
        let receipt = s.entry(
            &validator,
            Kind::AnchorReceipt(AnchorReceipt {
                chain_id: 31_337,
                tx_hash: [1; 32],
                block_number: 9,
                block_hash: [2; 32],
                block_time_s: 5,
                tree_size: size,
                root: root.hash,
            }),
            5_500,
        );
        s.commit(&ledger, vec![receipt], 5_500);
        let collector = s.collectors[0].clone_key();
        match late {
            Late::Nothing => {}
            Late::Heartbeat => {
                let heartbeat = s.entry(
                    &collector,
                    Kind::Heartbeat {
                        interval_ms: 30_000,
                    },
                    5_800,
                );
                s.commit(&ledger, vec![heartbeat], 5_800);
            }
            Late::LogLine => {
                let line = s.evidence(0, 5_800);
                s.commit(&ledger, vec![line], 5_800);
            }
        }
        let client = s.client.clone_key();
        let claim = s.entry(
            &client,
            Kind::Insurance(InsuranceEvent::ClaimFiled {
                claim_id: Text::new("CLM-1").unwrap(),
                policy_id: Text::new("POL-9").unwrap(),
                incident_id: Text::new("INC-1").unwrap(),
                claimed_loss: Money {
                    minor_units: 1_250_000,
                    currency: Text::new("TWD").unwrap(),
                },
            }),
            claim_ms,
        );
        s.commit(&ledger, vec![claim], claim_ms);
        let claim_leaf = ledger.log().unwrap().tree_size - 1;
        s.checkpoint(&ledger);
        let bundle = bundle::build(
            &ledger,
            &s.genesis,
            &BuildRequest {
                scope: Scope::Incident {
                    client: Text::new(CLIENT).unwrap(),
                    incident_id: "INC-1".into(),
                    from_ms: 0,
                    to_ms: claim_ms,
                },
                leaf_indexes: (0..=claim_leaf).collect(),
                include_payloads: false,
                created_at_ms: claim_ms,
            },
        )
        .unwrap();
        (bundle, claim_leaf)
    }

    fn passed(verdict: &custos_ledger::claim::ClaimVerdict) -> Vec<(&'static str, bool)> {
        verdict.checks.iter().map(|c| (c.check, c.passed)).collect()
    }

    #[test]
    fn a_timely_reported_claim_holds() {
        let (bundle, claim_leaf) = claim_bundle(true, Late::Nothing, 6_000);
        let verdict = verify_claim(
            &bundle,
            claim_leaf,
            &VerifyOptions::default(),
            &PolicyTable::standard(),
        )
        .unwrap();
        assert!(verdict.holds, "{:#?}", verdict.checks);
        assert_eq!(verdict.claim_id, "CLM-1");
        assert_eq!(verdict.collectors.len(), 1);
        assert_eq!(verdict.collectors[0].heartbeats, 1);
        // Policy, detection, report, containment, claim.
        assert_eq!(verdict.timeline.len(), 5);
        let report = markdown(&verdict);
        assert!(report.starts_with("# Claim CLM-1 — HOLDS"), "{report}");
        assert!(report.contains("| deadlines-met | pass |"), "{report}");
    }

    #[test]
    fn an_unreported_incident_an_anchor_after_the_claim_and_a_wrong_leaf_are_refused() {
        // Claimed two hours after detection without a report: the one-hour report duty of
        // a level 1 incident is overdue at the claim's time.
        let (bundle, claim_leaf) = claim_bundle(false, Late::Nothing, 2_000 + 2 * 3_600_000);
        let verdict = verify_claim(
            &bundle,
            claim_leaf,
            &VerifyOptions::default(),
            &PolicyTable::standard(),
        )
        .unwrap();
        assert!(!verdict.holds);
        assert!(
            passed(&verdict).contains(&("deadlines-met", false)),
            "{:#?}",
            verdict.checks
        );
        assert!(passed(&verdict).contains(&("evidence-before-claim", true)));

        // A claim at 4 s, before the anchor block's time (5 s): the evidence is not proven
        // to predate it.
        let (bundle, claim_leaf) = claim_bundle(true, Late::Nothing, 4_000);
        let verdict = verify_claim(
            &bundle,
            claim_leaf,
            &VerifyOptions::default(),
            &PolicyTable::standard(),
        )
        .unwrap();
        assert!(
            passed(&verdict).contains(&("evidence-before-claim", false)),
            "{:#?}",
            verdict.checks
        );

        assert!(matches!(
            verify_claim(
                &bundle,
                0,
                &VerifyOptions::default(),
                &PolicyTable::standard()
            ),
            Err(custos_ledger::claim::ClaimError::NotAClaim { leaf_index: 0, .. })
        ));
    }

    #[test]
    fn a_heartbeat_just_before_the_claim_is_not_dated_but_a_log_line_is() {
        // A heartbeat after the last anchor shows the collector alive up to the claim; it
        // cannot be anchored before the claim, and the claim still holds.
        let (bundle, claim_leaf) = claim_bundle(true, Late::Heartbeat, 6_000);
        let verdict = verify_claim(
            &bundle,
            claim_leaf,
            &VerifyOptions::default(),
            &PolicyTable::standard(),
        )
        .unwrap();
        assert!(verdict.holds, "{:#?}", verdict.checks);
        assert_eq!(verdict.collectors[0].heartbeats, 2);
        // A log line committed there is evidence the claim may rest on, and it is not
        // proven to predate the claim.
        let (bundle, claim_leaf) = claim_bundle(true, Late::LogLine, 6_000);
        let verdict = verify_claim(
            &bundle,
            claim_leaf,
            &VerifyOptions::default(),
            &PolicyTable::standard(),
        )
        .unwrap();
        assert!(
            passed(&verdict).contains(&("evidence-before-claim", false)),
            "{:#?}",
            verdict.checks
        );
    }
}
