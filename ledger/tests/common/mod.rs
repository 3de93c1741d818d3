//! Builds valid chains for ledger tests and benchmarks: signed envelopes from several
//! collectors, headers whose log size and root are right, and real commit certificates.
#![allow(dead_code)]

use custos_ledger::block::{
    Block, BlockBody, BlockHeader, CommitCertificate, CommitSignature, CommittedBlock, Entry,
    Validator, ValidatorSet, Vote, VoteKind,
};
use custos_ledger::codec::{Bytes, List, Text};
use custos_ledger::crypto::{SecretKey, Signed};
use custos_ledger::hash::{Blake3Hash, Sha256Hash};
use custos_ledger::merkle::{self, hash_leaf};
use custos_ledger::message::{
    EvidenceKind, Kind, Message, NetworkId, PayloadDescriptor, Role, SourceFormat, UnixMillis,
};
use custos_ledger::storage::{Backend, Ledger};

pub const NETWORK: &str = "custos-test";

/// A collector signing messages for one client.
pub struct Collector {
    pub key: SecretKey,
    pub client: &'static str,
}

/// Validators, collectors and a clock: everything needed to make the next block.
pub struct ChainBuilder {
    pub network: NetworkId,
    pub validators: Vec<SecretKey>,
    pub set: ValidatorSet,
    pub collectors: Vec<Collector>,
    pub payload_bytes: usize,
    next_collector: usize,
}

impl ChainBuilder {
    pub fn new(collector_count: usize, payload_bytes: usize) -> Self {
        let validators: Vec<SecretKey> = (0..4u8)
            .map(|i| SecretKey::from_seed(&[i + 1; 32]))
            .collect();
        let set = ValidatorSet::new(
            validators
                .iter()
                .enumerate()
                .map(|(i, key)| Validator {
                    name: Text::new(format!("validator-{i}")).unwrap(),
                    org: Text::new(format!("org-{i}")).unwrap(),
                    role: Role::Warning,
                    key: key.public(),
                    power: 1,
                    p2p_address: Text::new(format!("/ip4/127.0.0.1/tcp/{}", 7000 + i)).unwrap(),
                })
                .collect(),
        )
        .unwrap();
        let clients = ["acme-bank", "globex-insurance", "initech"];
        let collectors = (0..collector_count)
            .map(|i| Collector {
                key: SecretKey::from_seed(&[100 + u8::try_from(i).unwrap(); 32]),
                client: clients[i % clients.len()],
            })
            .collect();
        Self {
            network: Text::new(NETWORK).unwrap(),
            validators,
            set,
            collectors,
            payload_bytes,
            next_collector: 0,
        }
    }

    /// A signed envelope and payload continuing the collector's chain in `ledger` plus
    /// `pending` (messages already placed in the block being built).
    fn entry(&self, collector: &Collector, sequence: u64, prev: Sha256Hash, time: u64) -> Entry {
        let mut payload = format!(
            "{{\"collector\":\"{}\",\"seq\":{sequence},\"msg\":\"",
            collector.key.public().key_id()
        )
        .into_bytes();
        while payload.len() + 2 < self.payload_bytes {
            payload.push(b"abcdefghijklmnopqrstuvwxyz"[payload.len() % 26]);
        }
        payload.extend_from_slice(b"\"}");
        let message = Message {
            network: self.network.clone(),
            author: collector.key.public().key_id(),
            client: Text::new(collector.client).unwrap(),
            sequence,
            prev,
            kind: if sequence % 10 == 0 {
                Kind::Heartbeat {
                    interval_ms: 30_000,
                }
            } else {
                Kind::Evidence {
                    evidence: EvidenceKind::LogLine,
                }
            },
            format: SourceFormat::Raw,
            occurred_at: Some(UnixMillis(time)),
            observed_at: UnixMillis(time),
            severity: None,
            rule_id: None,
            host: Some(Text::new("web-01").unwrap()),
            attack_ids: List::empty(),
            references: List::empty(),
            parse_error: None,
            payload: PayloadDescriptor::of(Text::new("application/json").unwrap(), &payload),
        };
        Entry {
            envelope: Signed::sign(message, &collector.key),
            payload: Bytes::new(payload).unwrap(),
        }
    }

    /// The next block on `ledger` with `count` messages, round-robin over collectors,
    /// committed at `time_ms`, with a certificate from three of the four validators.
    pub fn next_block<B: Backend>(
        &mut self,
        ledger: &Ledger<B>,
        count: usize,
        time_ms: u64,
    ) -> CommittedBlock {
        let mut chains: Vec<(u64, Sha256Hash)> = self
            .collectors
            .iter()
            .map(|c| {
                ledger
                    .author_head(&c.key.public().key_id())
                    .unwrap()
                    .unwrap_or((0, Sha256Hash::ZERO))
            })
            .collect();
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let i = self.next_collector;
            self.next_collector = (self.next_collector + 1) % self.collectors.len();
            let (sequence, prev) = chains[i];
            let entry = self.entry(&self.collectors[i], sequence + 1, prev, time_ms);
            chains[i] = (sequence + 1, entry.envelope.leaf_hash());
            entries.push(entry);
        }
        self.block_with(ledger, entries, time_ms)
    }

    /// The next block on `ledger` carrying `entries` as given, committed at `time_ms`.
    pub fn block_with<B: Backend>(
        &self,
        ledger: &Ledger<B>,
        entries: Vec<Entry>,
        time_ms: u64,
    ) -> CommittedBlock {
        let head = ledger.head().unwrap();
        let leaf_hashes: Vec<Sha256Hash> = entries
            .iter()
            .map(|e| hash_leaf(&e.envelope.leaf_bytes()))
            .collect();
        let old_size = head.as_ref().map_or(0, |h| h.log.tree_size);
        let log = merkle::append(&ledger.nodes().unwrap(), old_size, &leaf_hashes)
            .unwrap()
            .root;
        let body = BlockBody {
            entries: List::new(entries).unwrap(),
        };
        let header = BlockHeader {
            network: self.network.clone(),
            height: head.as_ref().map_or(1, |h| h.height + 1),
            round: 0,
            proposer: self.validators[0].public().key_id(),
            time: UnixMillis(time_ms),
            parent: head.as_ref().map_or(Blake3Hash::ZERO, |h| h.block_id),
            body_hash: body.hash(),
            log_size: log.tree_size,
            log_root: log.hash,
        };
        let certificate = self.certify(&header);
        CommittedBlock {
            block: Block { header, body },
            certificate,
        }
    }

    /// A commit certificate from validators 0..3.
    pub fn certify(&self, header: &BlockHeader) -> CommitCertificate {
        let block = header.id();
        let signatures = self.validators[..3]
            .iter()
            .map(|key| {
                let vote = Vote {
                    network: self.network.clone(),
                    height: header.height,
                    round: header.round,
                    kind: VoteKind::Precommit,
                    block: Some(block),
                    validator: key.public().key_id(),
                };
                CommitSignature {
                    validator: key.public().key_id(),
                    signature: Signed::sign(vote, key).signature,
                }
            })
            .collect();
        CommitCertificate {
            height: header.height,
            round: header.round,
            block,
            signatures: List::new(signatures).unwrap(),
        }
    }
}
