//! Blocks, votes, commit certificates and the validator set (ARCHITECTURE §3, §4).
//!
//! A block is final when validators holding more than two thirds of the voting power
//! precommit its id; the [`CommitCertificate`] carrying those precommits is stored with
//! it, so a node catching up (or any verifier holding the validator set) can check a
//! block without trusting whoever sent it.

use std::collections::HashSet;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::codec::{Bytes, DecodeError, DomainTag, List, Text, decode, encode, tags};
use crate::crypto::{BatchItem, CryptoError, KeyId, PublicKey, Signable, Signature, Signed};
use crate::hash::{Blake3Hash, Sha256Hash};
use crate::limits::*;
use crate::message::{Envelope, NetworkId, OrgId, Role, UnixMillis};

/// A block's id: BLAKE3 of its tagged header, which commits to the body.
pub type BlockId = Blake3Hash;

/// Block header.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Network id.
    pub network: NetworkId,
    /// Height, 1 for the first block after genesis.
    pub height: u64,
    /// Consensus round the block was proposed in.
    pub round: u32,
    /// Key id of the proposing validator.
    pub proposer: KeyId,
    /// Proposer's time; becomes `committed_at` of every message in the block.
    pub time: UnixMillis,
    /// Id of the previous block ([`Blake3Hash::ZERO`] at height 1).
    pub parent: BlockId,
    /// BLAKE3 of the tagged body encoding.
    pub body_hash: Blake3Hash,
    /// Evidence log size after this block.
    pub log_size: u64,
    /// Evidence log root after this block.
    pub log_root: Sha256Hash,
}

impl BlockHeader {
    /// The block id.
    pub fn id(&self) -> BlockId {
        let mut bytes = Vec::with_capacity(256);
        tags::BLOCK_HEADER
            .write(&mut bytes)
            .expect("writing to a Vec cannot fail");
        bytes.extend(encode(self));
        Blake3Hash::digest(&bytes)
    }
}

/// One message in a block: its envelope and raw payload.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Entry {
    /// The signed envelope (the log leaf).
    pub envelope: Envelope,
    /// The payload bytes the envelope describes.
    pub payload: Bytes<PayloadLen>,
}

/// A block body: messages in log order.
#[derive(
    Clone, Debug, PartialEq, Eq, Default, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct BlockBody {
    /// The messages, appended to the log in this order.
    pub entries: List<Entry, BlockMessageCount>,
}

impl BlockBody {
    /// BLAKE3 of the tagged body, as committed in the header.
    pub fn hash(&self) -> Blake3Hash {
        // Streamed through a small buffer into the hasher: a body is up to
        // `MAX_BLOCK_BYTES`, and encoding it whole first would copy all of it once more.
        let mut writer = std::io::BufWriter::with_capacity(64 * 1024, blake3::Hasher::new());
        tags::BLOCK_BODY
            .write(&mut writer)
            .and_then(|()| BorshSerialize::serialize(self, &mut writer))
            .expect("writing to a hasher cannot fail");
        let hasher = writer
            .into_inner()
            .map_err(|_| ())
            .expect("flushing into a hasher cannot fail");
        Blake3Hash(*hasher.finalize().as_bytes())
    }
}

/// A block: header and body.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Block {
    /// Header.
    pub header: BlockHeader,
    /// Body.
    pub body: BlockBody,
}

impl Block {
    /// Decodes a block with the block size limit.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(bytes, MAX_BLOCK_BYTES)
    }

    /// Checks that the header commits to this body.
    pub fn check_body(&self) -> Result<(), BlockError> {
        let actual = self.body.hash();
        if actual != self.header.body_hash {
            return Err(BlockError::BodyHashMismatch {
                declared: self.header.body_hash,
                actual,
            });
        }
        Ok(())
    }
}

/// Prevote or precommit.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[borsh(use_discriminant = true)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum VoteKind {
    /// First voting step.
    Prevote = 0,
    /// Second voting step; 2f+1 precommits for a value decide it.
    Precommit = 1,
}

/// A consensus vote as validators sign it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Vote {
    /// Network id, so a vote cannot be replayed on another network.
    pub network: NetworkId,
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// The block voted for, or `None` for nil.
    pub block: Option<BlockId>,
    /// Key id of the voting validator.
    pub validator: KeyId,
}

impl Signable for Vote {
    const TAG: DomainTag = tags::VOTE;
}

/// A signed vote.
pub type SignedVote = Signed<Vote>;

/// One validator's precommit in a commit certificate.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitSignature {
    /// The validator.
    pub validator: KeyId,
    /// Its signature over the precommit [`Vote`] for the block.
    pub signature: Signature,
}

/// Precommits from more than two thirds of the voting power for one block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitCertificate {
    /// Height of the block.
    pub height: u64,
    /// Round in which it was decided.
    pub round: u32,
    /// The block.
    pub block: BlockId,
    /// The precommit signatures.
    pub signatures: List<CommitSignature, CommitSignatureCount>,
}

/// A validator in the genesis set.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Validator {
    /// Name, e.g. `control-center`.
    pub name: Text<NameLen>,
    /// Organisation running it.
    pub org: OrgId,
    /// The organisation's role.
    pub role: Role,
    /// Consensus, cosigning and libp2p identity key.
    pub key: PublicKey,
    /// Voting power.
    pub power: u64,
    /// Where peers reach it (a libp2p multiaddr).
    pub p2p_address: Text<AddressLen>,
}

/// The validators of a network, in genesis order.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, Serialize, Deserialize)]
pub struct ValidatorSet {
    validators: List<Validator, ValidatorCount>,
}

/// Why a block, certificate or validator set is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The header's body hash does not match the body.
    #[error("block body hashes to {actual} but the header declares {declared}")]
    BodyHashMismatch {
        /// Declared in the header.
        declared: Blake3Hash,
        /// Computed from the body.
        actual: Blake3Hash,
    },
    /// The certificate is for another block or height.
    #[error(
        "commit certificate is for height {cert_height} block {cert_block}, not height {height} block {block}"
    )]
    CertificateForOtherBlock {
        /// Certificate's height.
        cert_height: u64,
        /// Certificate's block.
        cert_block: BlockId,
        /// Expected height.
        height: u64,
        /// Expected block.
        block: BlockId,
    },
    /// A signer is not a validator.
    #[error("commit signature by {0}, which is not in the validator set")]
    UnknownValidator(KeyId),
    /// One validator signed twice.
    #[error("validator {0} appears twice in the commit certificate")]
    DuplicateSigner(KeyId),
    /// A precommit signature is invalid.
    #[error("precommit signature of validator {validator} does not verify")]
    BadSignature {
        /// The validator.
        validator: KeyId,
    },
    /// Not enough power signed.
    #[error(
        "commit certificate carries {signed} of {total} voting power; more than two thirds ({needed}) is required"
    )]
    InsufficientPower {
        /// Power that signed.
        signed: u64,
        /// Total power.
        total: u64,
        /// Power required.
        needed: u64,
    },
    /// The validator set itself is unusable.
    #[error("invalid validator set: {0}")]
    InvalidSet(String),
}

impl ValidatorSet {
    /// A set from validators in genesis order, refusing empty sets, zero power, duplicate
    /// or invalid keys and colliding key ids.
    pub fn new(validators: Vec<Validator>) -> Result<Self, BlockError> {
        if validators.is_empty() {
            return Err(BlockError::InvalidSet("no validators".into()));
        }
        let mut ids = HashSet::new();
        let mut total: u64 = 0;
        for v in &validators {
            v.key
                .verifying_key()
                .map_err(|e: CryptoError| BlockError::InvalidSet(format!("{}: {e}", v.name)))?;
            if !ids.insert(v.key.key_id()) {
                return Err(BlockError::InvalidSet(format!(
                    "key id {} of {} is used twice",
                    v.key.key_id(),
                    v.name
                )));
            }
            if v.power == 0 {
                return Err(BlockError::InvalidSet(format!(
                    "{} has zero voting power",
                    v.name
                )));
            }
            total = total
                .checked_add(v.power)
                .ok_or_else(|| BlockError::InvalidSet("total voting power overflows u64".into()))?;
        }
        let validators =
            List::new(validators).map_err(|e| BlockError::InvalidSet(e.to_string()))?;
        Ok(Self { validators })
    }

    /// The validators in genesis order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// The validator with this key id.
    pub fn get(&self, id: &KeyId) -> Option<&Validator> {
        self.validators.iter().find(|v| v.key.key_id() == *id)
    }

    /// Total voting power.
    pub fn total_power(&self) -> u64 {
        // Checked in `new`: the sum fits.
        self.validators.iter().map(|v| v.power).sum()
    }

    /// The smallest power that is more than two thirds of the total: 2f+1 when every
    /// validator has power 1 and n = 3f+1.
    pub fn quorum_power(&self) -> u64 {
        let total = u128::from(self.total_power());
        // floor(2 * total / 3) + 1, in u128 so 2 * total cannot overflow.
        u64::try_from(total * 2 / 3 + 1).expect("quorum is at most the total power")
    }

    /// Verifies a commit certificate for block `block` at `height` on `network`.
    pub fn verify_commit(
        &self,
        network: &NetworkId,
        height: u64,
        block: &BlockId,
        cert: &CommitCertificate,
    ) -> Result<(), BlockError> {
        if cert.height != height || cert.block != *block {
            return Err(BlockError::CertificateForOtherBlock {
                cert_height: cert.height,
                cert_block: cert.block,
                height,
                block: *block,
            });
        }
        let mut seen = HashSet::new();
        let mut signed_power: u64 = 0;
        let mut keys = Vec::with_capacity(cert.signatures.len());
        for sig in cert.signatures.iter() {
            let validator = self
                .get(&sig.validator)
                .ok_or(BlockError::UnknownValidator(sig.validator))?;
            if !seen.insert(sig.validator) {
                return Err(BlockError::DuplicateSigner(sig.validator));
            }
            signed_power += validator.power;
            keys.push(validator.key);
        }
        let needed = self.quorum_power();
        if signed_power < needed {
            return Err(BlockError::InsufficientPower {
                signed: signed_power,
                total: self.total_power(),
                needed,
            });
        }
        let signed_bytes: Vec<Vec<u8>> = cert
            .signatures
            .iter()
            .map(|sig| {
                Signed {
                    body: Vote {
                        network: network.clone(),
                        height,
                        round: cert.round,
                        kind: VoteKind::Precommit,
                        block: Some(*block),
                        validator: sig.validator,
                    },
                    signature: sig.signature,
                }
                .signed_bytes()
            })
            .collect();
        let items: Vec<BatchItem<'_>> = cert
            .signatures
            .iter()
            .zip(&signed_bytes)
            .zip(&keys)
            .map(|((sig, bytes), key)| BatchItem {
                signed_bytes: bytes,
                signature: &sig.signature,
                key,
            })
            .collect();
        if let Some(&bad) = crate::crypto::verify_batch(&items).first() {
            return Err(BlockError::BadSignature {
                validator: cert.signatures[bad].validator,
            });
        }
        Ok(())
    }
}

impl BorshDeserialize for ValidatorSet {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let validators = List::<Validator, ValidatorCount>::deserialize_reader(reader)?;
        Self::new(validators.into_vec()).map_err(|e| {
            DecodeError::InvalidValue {
                what: "validator set",
                reason: e.to_string(),
            }
            .into_io()
        })
    }
}

/// A stored or synced block with the certificate that finalized it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CommittedBlock {
    /// The block.
    pub block: Block,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
}

/// Hash of anything with a domain tag in SHA-256, for values outsiders check (the
/// genesis hash in evidence bundles).
pub fn tagged_sha256(tag: DomainTag, body: &[u8]) -> Sha256Hash {
    Sha256Hash::digest(&crate::crypto::tagged_bytes(tag, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SecretKey;

    fn set(n: usize) -> (Vec<SecretKey>, ValidatorSet) {
        let keys: Vec<SecretKey> = (0..n)
            .map(|i| SecretKey::from_seed(&[u8::try_from(i).unwrap() + 1; 32]))
            .collect();
        let validators = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Validator {
                name: Text::new(format!("v{i}")).unwrap(),
                org: Text::new(format!("org{i}")).unwrap(),
                role: Role::Warning,
                key: k.public(),
                power: 1,
                p2p_address: Text::new("/ip4/127.0.0.1/tcp/1").unwrap(),
            })
            .collect();
        (keys, ValidatorSet::new(validators).unwrap())
    }

    fn certificate(keys: &[SecretKey], network: &NetworkId, block: BlockId) -> CommitCertificate {
        let signatures = keys
            .iter()
            .map(|k| {
                let vote = Vote {
                    network: network.clone(),
                    height: 5,
                    round: 1,
                    kind: VoteKind::Precommit,
                    block: Some(block),
                    validator: k.public().key_id(),
                };
                CommitSignature {
                    validator: k.public().key_id(),
                    signature: Signed::sign(vote, k).signature,
                }
            })
            .collect();
        CommitCertificate {
            height: 5,
            round: 1,
            block,
            signatures: List::new(signatures).unwrap(),
        }
    }

    #[test]
    fn quorum_is_two_f_plus_one() {
        for (n, quorum) in [(1, 1), (3, 3), (4, 3), (7, 5), (10, 7)] {
            assert_eq!(set(n).1.quorum_power(), quorum, "n = {n}");
        }
    }

    #[test]
    fn certificate_with_quorum_verifies_and_without_fails() {
        let (keys, validators) = set(4);
        let network = Text::new("net").unwrap();
        let block = Blake3Hash::digest(b"block");
        let cert = certificate(&keys[..3], &network, block);
        validators
            .verify_commit(&network, 5, &block, &cert)
            .unwrap();

        let short = certificate(&keys[..2], &network, block);
        assert_eq!(
            validators.verify_commit(&network, 5, &block, &short),
            Err(BlockError::InsufficientPower {
                signed: 2,
                total: 4,
                needed: 3
            })
        );

        let other_network = Text::new("other").unwrap();
        assert!(matches!(
            validators.verify_commit(&other_network, 5, &block, &cert),
            Err(BlockError::BadSignature { .. })
        ));

        let mut duplicated = certificate(&keys[..2], &network, block);
        let first = duplicated.signatures[0].clone();
        let mut sigs = duplicated.signatures.into_vec();
        sigs.push(first.clone());
        duplicated.signatures = List::new(sigs).unwrap();
        assert_eq!(
            validators.verify_commit(&network, 5, &block, &duplicated),
            Err(BlockError::DuplicateSigner(first.validator))
        );

        let outsider = SecretKey::from_seed(&[99; 32]);
        let mut foreign = certificate(&keys[..2], &network, block);
        let mut sigs = foreign.signatures.into_vec();
        sigs.extend(
            certificate(std::slice::from_ref(&outsider), &network, block)
                .signatures
                .into_vec(),
        );
        foreign.signatures = List::new(sigs).unwrap();
        assert_eq!(
            validators.verify_commit(&network, 5, &block, &foreign),
            Err(BlockError::UnknownValidator(outsider.public().key_id()))
        );
    }

    #[test]
    fn validator_set_refuses_duplicates_and_zero_power() {
        let (_, validators) = set(2);
        let mut list = validators.validators().to_vec();
        list.push(list[0].clone());
        assert!(ValidatorSet::new(list).is_err());
        let mut list = validators.validators().to_vec();
        list[0].power = 0;
        assert!(ValidatorSet::new(list).is_err());
        assert!(ValidatorSet::new(Vec::new()).is_err());
    }

    #[test]
    fn body_hash_binds_the_body() {
        let body = BlockBody::default();
        let header = BlockHeader {
            network: Text::new("net").unwrap(),
            height: 1,
            round: 0,
            proposer: KeyId([1; 8]),
            time: UnixMillis(1),
            parent: Blake3Hash::ZERO,
            body_hash: body.hash(),
            log_size: 0,
            log_root: crate::merkle::empty_root(),
        };
        let block = Block {
            header: header.clone(),
            body,
        };
        block.check_body().unwrap();
        let mut other = block.clone();
        other.header.body_hash = Blake3Hash::digest(b"x");
        assert!(matches!(
            other.check_body(),
            Err(BlockError::BodyHashMismatch { .. })
        ));
        assert_ne!(header.id(), other.header.id());
    }
}
