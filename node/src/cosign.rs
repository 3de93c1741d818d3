//! Checkpoint cosigning (ARCHITECTURE §5): validators cosign the log with C2SP
//! `cosignature/v1` at the genesis checkpoint cadence, gossip their cosignatures, and
//! store a checkpoint once cosignatures of 2f+1 genesis validators on the root of their
//! own log are in hand.
//!
//! Which tree size is cosigned is decided by the chain, so that every validator cosigns
//! the same one: the log after the first block of each checkpoint period (block time
//! divided by `checkpoint_interval_ms`, see [`is_checkpoint_block`]).
//!
//! A validator never cosigns a checkpoint inconsistent with one it cosigned before: the
//! last cosigned size and root are persisted (synced) before the cosignature leaves the
//! node, and a new cosignature is made only if the log still has that root at that size
//! and has grown since.

use std::collections::BTreeMap;
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};

use custos_ledger::c2sp::{
    COSIGNATURE_V1_SIGNATURE_LEN, Checkpoint, CosignatureSigner, CosignatureVerifier, KeyName,
    Note, QuorumPolicy, SignatureLine,
};
use custos_ledger::codec::{DecodeError, decode, encode};
use custos_ledger::crypto::SecretKey;
use custos_ledger::genesis::Genesis;
use custos_ledger::hash::Sha256Hash;
use custos_ledger::merkle::Root;
use custos_ledger::message::{NetworkId, UnixMillis};
use custos_ledger::storage::{Backend, Column, Ledger, StorageError, WriteBatch};

/// Meta-column key of the last checkpoint this validator cosigned.
const COSIGNED_KEY: &[u8] = b"cosigned";

/// Cosignatures one validator may have waiting (on distinct tree sizes). Each period adds
/// one; a size stays pending until 2f+1 cosign it. Counting per validator means a lying
/// validator that gossips made-up sizes evicts only its own entries, never the honest
/// ones, while many periods are left for slow peers. A node holds at most this many per
/// genesis validator.
pub const PENDING_PER_VALIDATOR_MAX: usize = 16;

/// Largest cosignature gossip message (network id, size, root, signature).
pub const MAX_COSIGNATURE_WIRE_BYTES: usize = 256;

/// A cosignature on the gossip network. The key name and key id of the signature line
/// are those of the sending validator, which gossip authenticates.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CosignatureWire {
    /// Network id.
    pub network: NetworkId,
    /// Tree size cosigned.
    pub tree_size: u64,
    /// Root cosigned.
    pub root: Sha256Hash,
    /// The cosignature/v1 signature: timestamp (8 bytes, big-endian) and Ed25519.
    pub signature: [u8; COSIGNATURE_V1_SIGNATURE_LEN],
}

impl CosignatureWire {
    /// Decodes a gossiped cosignature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(bytes, MAX_COSIGNATURE_WIRE_BYTES)
    }

    /// Encodes it for gossip.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }
}

/// Whether the block at `time` after a block (or genesis) at `parent_time` is the first
/// of a checkpoint period.
pub fn is_checkpoint_block(parent_time: UnixMillis, time: UnixMillis, interval_ms: u64) -> bool {
    interval_ms > 0 && time.0 / interval_ms > parent_time.0 / interval_ms
}

/// Why a cosignature was not made or not taken.
#[derive(Debug, thiserror::Error)]
pub enum CosignError {
    /// The ledger failed.
    #[error("ledger: {0}")]
    Storage(#[from] StorageError),
    /// The log no longer has the root this validator cosigned: cosigning now would sign
    /// two inconsistent checkpoints.
    #[error(
        "the log's root at size {tree_size} is {actual}, but this validator cosigned {cosigned}; \
         refusing to cosign an inconsistent checkpoint"
    )]
    Inconsistent {
        /// Size cosigned before.
        tree_size: u64,
        /// Root cosigned before.
        cosigned: Sha256Hash,
        /// Root now.
        actual: Sha256Hash,
    },
    /// A gossiped cosignature could not be decoded.
    #[error("undecodable cosignature: {0}")]
    Decode(#[from] DecodeError),
    /// A gossiped cosignature is for another network.
    #[error("cosignature for network {0:?}")]
    OtherNetwork(String),
    /// The sender is not a validator.
    #[error("cosignature from a key outside the validator set")]
    NotValidator,
    /// The signature does not verify.
    #[error("cosignature of {validator} on size {tree_size} does not verify: {reason}")]
    BadSignature {
        /// The validator.
        validator: String,
        /// Size claimed.
        tree_size: u64,
        /// Why.
        reason: String,
    },
    /// The checkpoint could not be built or checked (a bug).
    #[error("checkpoint: {0}")]
    Checkpoint(String),
}

/// One validator's cosignature of one tree size.
#[derive(Clone, Copy, Debug)]
struct Pending {
    root: Sha256Hash,
    signature: [u8; COSIGNATURE_V1_SIGNATURE_LEN],
}

/// What a validator knows about checkpoint cosigning.
#[derive(Debug)]
pub struct Cosigning<B> {
    ledger: Arc<Ledger<B>>,
    network: NetworkId,
    origin: String,
    signer: CosignatureSigner,
    /// Validator public keys and their verifiers, in genesis order.
    cosigners: Vec<([u8; 32], CosignatureVerifier)>,
    policy: QuorumPolicy,
    last_cosigned: Option<Root>,
    own_latest: Option<CosignatureWire>,
    /// By tree size, by validator index.
    pending: BTreeMap<u64, BTreeMap<usize, Pending>>,
    stored_latest: u64,
    /// Cosignatures in the note stored for the latest size, so that a late cosignature
    /// makes the stored note more complete.
    stored_lines: usize,
}

impl<B: Backend> Cosigning<B> {
    /// Loads the persisted state. `key` is this validator's key, its cosigning key.
    pub fn new(ledger: Arc<Ledger<B>>, genesis: &Genesis, key: &SecretKey) -> anyhow::Result<Self> {
        let me = genesis
            .validators
            .get(&key.public().key_id())
            .ok_or_else(|| anyhow::anyhow!("this key is not a genesis validator"))?;
        let signer = CosignatureSigner::from_seed(KeyName::new(me.name.as_str())?, &key.seed())?;
        let cosigners = genesis
            .validators
            .validators()
            .iter()
            .map(|v| Ok((v.key.0, custos_ledger::genesis::cosigner_of(v)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let last_cosigned = match ledger.backend().get(Column::Meta, COSIGNED_KEY)? {
            Some(bytes) => Some(decode_root(&bytes)?),
            None => None,
        };
        let stored_latest = ledger.latest_checkpoint()?.map_or(0, |(size, _)| size);
        Ok(Self {
            network: genesis.network.clone(),
            origin: genesis.log_origin.to_string(),
            signer,
            cosigners,
            policy: genesis.checkpoint_policy()?,
            last_cosigned,
            own_latest: None,
            pending: BTreeMap::new(),
            stored_latest,
            stored_lines: 0,
            ledger,
        })
    }

    /// The last checkpoint this validator cosigned.
    pub fn last_cosigned(&self) -> Option<Root> {
        self.last_cosigned
    }

    /// The policy stored checkpoints pass.
    pub fn policy(&self) -> &QuorumPolicy {
        &self.policy
    }

    /// Cosigns the log `log` (the ledger's current log) as of `now_s`, unless this
    /// validator already cosigned a tree at least as large. The state is persisted before
    /// the cosignature is returned for gossip; it also counts towards the quorum here.
    pub fn cosign(
        &mut self,
        log: Root,
        now_s: u64,
    ) -> Result<Option<CosignatureWire>, CosignError> {
        if log.tree_size == 0 {
            return Ok(None);
        }
        if let Some(previous) = self.last_cosigned {
            let actual = self.ledger.root(previous.tree_size)?.hash;
            if actual != previous.hash {
                return Err(CosignError::Inconsistent {
                    tree_size: previous.tree_size,
                    cosigned: previous.hash,
                    actual,
                });
            }
            if log.tree_size <= previous.tree_size {
                return Ok(None);
            }
        }
        let checkpoint = self.checkpoint(log)?;
        let line = self
            .signer
            .cosign(&checkpoint, now_s)
            .map_err(|e| CosignError::Checkpoint(e.to_string()))?;
        let mut batch = WriteBatch::new();
        batch.put(Column::Meta, COSIGNED_KEY, encode_root(log));
        self.ledger
            .backend()
            .write(&batch)
            .map_err(StorageError::from)?;
        self.last_cosigned = Some(log);
        let wire = CosignatureWire {
            network: self.network.clone(),
            tree_size: log.tree_size,
            root: log.hash,
            signature: line
                .signature()
                .try_into()
                .expect("cosignature/v1 signatures have a fixed length"),
        };
        let me = self
            .index_of(&self.signer.verifier().public_key().to_bytes())
            .expect("own key is a validator");
        self.add(me, &wire);
        self.own_latest = Some(wire.clone());
        Ok(Some(wire))
    }

    /// This validator's latest cosignature while its checkpoint has no quorum here yet:
    /// what to resend for peers that missed it.
    pub fn to_resend(&self) -> Option<&CosignatureWire> {
        self.own_latest
            .as_ref()
            .filter(|w| w.tree_size > self.stored_latest)
    }

    /// Takes a gossiped cosignature from validator `from`.
    pub fn on_gossip(&mut self, from: &[u8; 32], bytes: &[u8]) -> Result<(), CosignError> {
        let wire = CosignatureWire::from_bytes(bytes)?;
        if wire.network != self.network {
            return Err(CosignError::OtherNetwork(wire.network.to_string()));
        }
        let index = self.index_of(from).ok_or(CosignError::NotValidator)?;
        let verifier = &self.cosigners[index].1;
        let checkpoint = self.checkpoint(Root {
            tree_size: wire.tree_size,
            hash: wire.root,
        })?;
        let line = SignatureLine::new(
            verifier.name().clone(),
            verifier.key_id(),
            wire.signature.to_vec(),
        )
        .map_err(|e| CosignError::Checkpoint(e.to_string()))?;
        verifier
            .verify(&checkpoint, &line)
            .map_err(|e| CosignError::BadSignature {
                validator: verifier.name().to_string(),
                tree_size: wire.tree_size,
                reason: e.to_string(),
            })?;
        self.add(index, &wire);
        Ok(())
    }

    fn add(&mut self, index: usize, wire: &CosignatureWire) {
        if wire.tree_size < self.stored_latest {
            return; // a larger checkpoint is stored: this one adds nothing
        }
        let sizes: Vec<u64> = self
            .pending
            .iter()
            .filter(|(size, lines)| **size != wire.tree_size && lines.contains_key(&index))
            .map(|(size, _)| *size)
            .collect();
        if sizes.len() >= PENDING_PER_VALIDATOR_MAX {
            // Its oldest entry gives way (sizes are in ascending order).
            let oldest = sizes[0];
            if oldest > wire.tree_size {
                return;
            }
            let lines = self.pending.get_mut(&oldest).expect("listed");
            lines.remove(&index);
            if lines.is_empty() {
                self.pending.remove(&oldest);
            }
        }
        self.pending.entry(wire.tree_size).or_default().insert(
            index,
            Pending {
                root: wire.root,
                signature: wire.signature,
            },
        );
    }

    /// Stores every pending checkpoint within the log that 2f+1 validators cosigned with
    /// the log's own root. Returns the tree sizes stored.
    pub fn complete(&mut self) -> Result<Vec<u64>, CosignError> {
        let log_size = self.ledger.log()?.tree_size;
        let ready: Vec<u64> = self
            .pending
            .range(..=log_size)
            .filter(|(size, lines)| {
                lines.len() >= self.policy.threshold()
                    && (**size > self.stored_latest || lines.len() > self.stored_lines)
            })
            .map(|(size, _)| *size)
            .collect();
        let mut stored = Vec::new();
        for size in ready {
            let root = self.ledger.root(size)?;
            let lines = self.pending.get_mut(&size).expect("listed");
            // A root that is not the log's is a lie (or a bug) of that validator: drop it.
            lines.retain(|index, p| {
                if p.root != root.hash {
                    tracing::warn!(
                        validator = %self.cosigners[*index].1.name(),
                        tree_size = size,
                        "validator cosigned a root that is not the log's"
                    );
                }
                p.root == root.hash
            });
            if lines.len() < self.policy.threshold() {
                continue;
            }
            let note = self.note(root, &self.pending[&size])?;
            self.ledger.put_checkpoint(size, note.encode().as_bytes())?;
            if size >= self.stored_latest {
                self.stored_latest = size;
                self.stored_lines = note.signatures().len();
            }
            stored.push(size);
        }
        let latest = self.stored_latest;
        self.pending.retain(|size, _| *size >= latest);
        Ok(stored)
    }

    fn note(&self, root: Root, lines: &BTreeMap<usize, Pending>) -> Result<Note, CosignError> {
        let checkpoint = self.checkpoint(root)?;
        let lines = lines
            .iter()
            .map(|(index, p)| {
                let verifier = &self.cosigners[*index].1;
                SignatureLine::new(
                    verifier.name().clone(),
                    verifier.key_id(),
                    p.signature.to_vec(),
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CosignError::Checkpoint(e.to_string()))?;
        let note = Note::new(checkpoint.to_text(), lines)
            .map_err(|e| CosignError::Checkpoint(e.to_string()))?;
        // Every line was verified on arrival; checking the whole note again costs one
        // batch of signatures per period and guards what is stored and anchored.
        self.policy
            .verify(&note)
            .map_err(|e| CosignError::Checkpoint(e.to_string()))?;
        Ok(note)
    }

    fn checkpoint(&self, root: Root) -> Result<Checkpoint, CosignError> {
        Checkpoint::new(self.origin.clone(), root)
            .map_err(|e| CosignError::Checkpoint(e.to_string()))
    }

    fn index_of(&self, key: &[u8; 32]) -> Option<usize> {
        self.cosigners.iter().position(|(k, _)| k == key)
    }
}

fn encode_root(root: Root) -> Vec<u8> {
    let mut bytes = root.tree_size.to_be_bytes().to_vec();
    bytes.extend_from_slice(&root.hash.0);
    bytes
}

fn decode_root(bytes: &[u8]) -> Result<Root, StorageError> {
    if bytes.len() != 40 {
        return Err(StorageError::Inconsistent(format!(
            "last cosigned checkpoint record is {} bytes, not 40",
            bytes.len()
        )));
    }
    let mut size = [0u8; 8];
    size.copy_from_slice(&bytes[..8]);
    Ok(Root {
        tree_size: u64::from_be_bytes(size),
        hash: Sha256Hash::from_slice(&bytes[8..]).expect("32 bytes"),
    })
}

/// The `custos_getCosigners` answer for a network.
pub fn cosigners_info(genesis: &Genesis) -> anyhow::Result<custos_rpc::CosignersInfo> {
    let policy = genesis.checkpoint_policy()?;
    Ok(custos_rpc::CosignersInfo {
        origin: genesis.log_origin.to_string(),
        threshold: policy.threshold(),
        cosigners: genesis
            .validators
            .validators()
            .iter()
            .zip(genesis.cosigners.iter())
            .map(|(v, vkey)| custos_rpc::CosignerInfo {
                name: v.name.to_string(),
                vkey: vkey.to_string(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_block_of_each_period_is_the_checkpoint_block() {
        let at = UnixMillis;
        assert!(is_checkpoint_block(at(9_999), at(10_000), 10_000));
        assert!(is_checkpoint_block(at(1_000), at(25_000), 10_000));
        assert!(!is_checkpoint_block(at(10_000), at(19_999), 10_000));
        assert!(!is_checkpoint_block(at(10_001), at(10_002), 10_000));
        assert!(
            !is_checkpoint_block(at(0), at(50_000), 0),
            "no cadence, no checkpoints"
        );
    }

    fn genesis(key: &SecretKey) -> Genesis {
        use custos_ledger::block::{Validator, ValidatorSet};
        use custos_ledger::codec::{List, Text};
        let validators = ValidatorSet::new(vec![Validator {
            name: Text::new("v0").unwrap(),
            org: Text::new("soc").unwrap(),
            role: custos_ledger::message::Role::ControlCenter,
            key: key.public(),
            power: 1,
            p2p_address: Text::new("/ip4/127.0.0.1/tcp/1").unwrap(),
        }])
        .unwrap();
        Genesis {
            network: Text::new("net").unwrap(),
            log_origin: Text::new("custos.test/cosign").unwrap(),
            genesis_time: UnixMillis(0),
            cosigners: custos_ledger::genesis::cosigner_keys(&validators).unwrap(),
            validators,
            organisations: List::empty(),
            collectors: List::empty(),
            params: custos_ledger::genesis::ChainParams::default(),
        }
    }

    /// The last cosigned checkpoint survives a restart, and a log that no longer has the
    /// cosigned root at that size (or cannot show it) gets no cosignature.
    #[test]
    fn cosigning_is_persisted_and_never_inconsistent() {
        use custos_ledger::storage::MemoryBackend;
        let key = SecretKey::from_seed(&[3; 32]);
        let genesis = genesis(&key);
        let ledger = Arc::new(Ledger::open(MemoryBackend::new()).unwrap());
        let mut cosigning = Cosigning::new(ledger.clone(), &genesis, &key).unwrap();
        assert_eq!(cosigning.last_cosigned(), None);
        let first = Root {
            tree_size: 3,
            hash: Sha256Hash([1; 32]),
        };
        let wire = cosigning.cosign(first, 1_700_000_000).unwrap().unwrap();
        assert_eq!((wire.tree_size, wire.root), (3, first.hash));
        // The one validator is a quorum of one: the cosignature is its own resend until
        // the checkpoint is within the log.
        assert_eq!(cosigning.to_resend(), Some(&wire));

        let mut restarted = Cosigning::new(ledger.clone(), &genesis, &key).unwrap();
        assert_eq!(restarted.last_cosigned(), Some(first));
        // This log cannot show its root at size 3 (it is empty): no cosignature.
        let next = Root {
            tree_size: 4,
            hash: Sha256Hash([2; 32]),
        };
        assert!(restarted.cosign(next, 1_700_000_001).is_err());
        assert_eq!(restarted.last_cosigned(), Some(first));

        // A cosigned root that differs from the log's at that size is refused by name.
        let mut batch = WriteBatch::new();
        batch.put(
            Column::Meta,
            COSIGNED_KEY,
            encode_root(Root {
                tree_size: 0,
                hash: Sha256Hash([9; 32]),
            }),
        );
        ledger.backend().write(&batch).unwrap();
        let mut forked = Cosigning::new(ledger, &genesis, &key).unwrap();
        assert!(matches!(
            forked.cosign(next, 1_700_000_002),
            Err(CosignError::Inconsistent { tree_size: 0, .. })
        ));
    }

    #[test]
    fn gossiped_cosignatures_must_verify_as_the_senders() {
        use custos_ledger::storage::MemoryBackend;
        let key = SecretKey::from_seed(&[4; 32]);
        let genesis = genesis(&key);
        let ledger = Arc::new(Ledger::open(MemoryBackend::new()).unwrap());
        let mut signer = Cosigning::new(ledger, &genesis, &key).unwrap();
        let root = Root {
            tree_size: 2,
            hash: Sha256Hash([6; 32]),
        };
        let wire = signer.cosign(root, 1_700_000_000).unwrap().unwrap();
        let mut peer = Cosigning::new(
            Arc::new(Ledger::open(MemoryBackend::new()).unwrap()),
            &genesis,
            &key,
        )
        .unwrap();
        let from = key.public().0;
        peer.on_gossip(&from, &wire.to_bytes()).unwrap();

        let mut moved = wire.clone();
        moved.root = Sha256Hash([7; 32]);
        assert!(matches!(
            peer.on_gossip(&from, &moved.to_bytes()),
            Err(CosignError::BadSignature { tree_size: 2, .. })
        ));
        let mut other = wire.clone();
        other.network = custos_ledger::codec::Text::new("other").unwrap();
        assert!(matches!(
            peer.on_gossip(&from, &other.to_bytes()),
            Err(CosignError::OtherNetwork(_))
        ));
        assert!(matches!(
            peer.on_gossip(&[8; 32], &wire.to_bytes()),
            Err(CosignError::NotValidator)
        ));
        assert!(matches!(
            peer.on_gossip(&from, b"junk"),
            Err(CosignError::Decode(_))
        ));
    }

    /// A validator gossiping made-up sizes fills only its own share of the pending table.
    #[test]
    fn a_flooding_validator_evicts_only_its_own_cosignatures() {
        use custos_ledger::storage::MemoryBackend;
        let key = SecretKey::from_seed(&[5; 32]);
        let genesis = genesis(&key);
        let ledger = Arc::new(Ledger::open(MemoryBackend::new()).unwrap());
        let mut cosigning = Cosigning::new(ledger, &genesis, &key).unwrap();
        let wire = |size: u64| CosignatureWire {
            network: genesis.network.clone(),
            tree_size: size,
            root: Sha256Hash([1; 32]),
            signature: [0; COSIGNATURE_V1_SIGNATURE_LEN],
        };
        // Validator 1 (a second index; `add` does not look the index up) cosigns size 10.
        cosigning.add(1, &wire(10));
        for size in 1_000..1_000 + 10 * PENDING_PER_VALIDATOR_MAX as u64 {
            cosigning.add(0, &wire(size));
        }
        let own: usize = cosigning
            .pending
            .values()
            .filter(|lines| lines.contains_key(&0))
            .count();
        assert_eq!(own, PENDING_PER_VALIDATOR_MAX);
        assert!(cosigning.pending[&10].contains_key(&1), "honest entry kept");
    }

    #[test]
    fn cosignature_wire_round_trips_and_is_bounded() {
        let wire = CosignatureWire {
            network: custos_ledger::codec::Text::new("net").unwrap(),
            tree_size: 7,
            root: Sha256Hash([5; 32]),
            signature: [9; COSIGNATURE_V1_SIGNATURE_LEN],
        };
        let bytes = wire.to_bytes();
        assert!(bytes.len() <= MAX_COSIGNATURE_WIRE_BYTES);
        assert_eq!(CosignatureWire::from_bytes(&bytes).unwrap(), wire);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(CosignatureWire::from_bytes(&trailing).is_err());
        assert!(CosignatureWire::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }
}
