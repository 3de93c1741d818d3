//! The genesis document: who runs the network and who may write to it at the start.
//!
//! Every validator starts from the same genesis; its SHA-256 hash identifies the network
//! to outsiders (evidence bundles carry it). JSON is its file format; the hash is over
//! the canonical borsh encoding, so formatting the JSON differently changes nothing.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::block::{Validator, ValidatorSet, tagged_sha256};
use crate::c2sp::{CosignatureVerifier, KeyName, QuorumPolicy};
use crate::codec::{List, Text, encode, tags};
use crate::crypto::PublicKey;
use crate::hash::Sha256Hash;
use crate::limits::{
    GenesisMemberCount, MAX_BLOCK_BYTES, MAX_BLOCK_MESSAGES, NameLen, ValidatorCount,
    VerifierKeyLen,
};
use crate::message::{NetworkId, OrgId, Role, UnixMillis};

/// An organisation allowed to sign non-evidence messages with its key.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Organisation {
    /// Its id.
    pub id: OrgId,
    /// Its role.
    pub role: Role,
    /// Its signing key.
    pub key: PublicKey,
}

/// A collector enrolled from the start.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct EnrolledCollector {
    /// Its signing key.
    pub key: PublicKey,
    /// The client organisation it collects for.
    pub client: OrgId,
    /// A name for operators.
    pub name: Text<NameLen>,
}

/// Parameters every validator must agree on. Fields left out of a JSON or TOML document
/// take their defaults.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainParams {
    /// Most messages in one block (at most [`MAX_BLOCK_MESSAGES`]).
    pub max_block_messages: u32,
    /// Most encoded bytes in one block (at most [`MAX_BLOCK_BYTES`]).
    pub max_block_bytes: u64,
    /// How far a proposer's block time may run ahead of a validator's clock.
    pub max_clock_drift_ms: u64,
    /// An idle network commits an empty block this often, so liveness is visible; zero
    /// means never.
    pub empty_block_interval_ms: u64,
    /// Checkpoint period: validators cosign the log after the first block of each period
    /// (block time divided by this interval), so all of them cosign the same tree size.
    /// Zero means the network does not cosign checkpoints (and so cannot anchor them).
    pub checkpoint_interval_ms: u64,
}

/// Longest checkpoint period: a day, so that evidence is anchored publicly at least daily.
pub const CHECKPOINT_INTERVAL_MS_MAX: u64 = 86_400_000;

impl Default for ChainParams {
    fn default() -> Self {
        Self {
            max_block_messages: 10_000,
            max_block_bytes: 16 * 1024 * 1024,
            max_clock_drift_ms: 2_000,
            empty_block_interval_ms: 10_000,
            checkpoint_interval_ms: 10_000,
        }
    }
}

/// The genesis document.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Genesis {
    /// The network id every message and vote carries.
    pub network: NetworkId,
    /// Origin line of the log's C2SP checkpoints, e.g. `custos.example/testnet`.
    pub log_origin: Text<NameLen>,
    /// When the network starts; block times are after it.
    pub genesis_time: UnixMillis,
    /// The validators.
    pub validators: ValidatorSet,
    /// Each validator's checkpoint cosigning key as a C2SP verifier key
    /// (`name+keyid+base64`, cosignature/v1), in validator order, so that any C2SP
    /// verifier can be configured from genesis. A validator cosigns with its validator
    /// key under its validator name; [`Genesis::validate`] checks each entry against that.
    pub cosigners: List<Text<VerifierKeyLen>, ValidatorCount>,
    /// Organisations and their roles.
    pub organisations: List<Organisation, GenesisMemberCount>,
    /// Collectors enrolled from the start.
    pub collectors: List<EnrolledCollector, GenesisMemberCount>,
    /// Chain parameters.
    pub params: ChainParams,
}

/// Why a genesis document is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// A parameter is out of range.
    #[error("genesis parameter {name} is {value}; it must be between 1 and {max}")]
    Param {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: u64,
        /// Its maximum.
        max: u64,
    },
    /// Two members share a key or an id.
    #[error("genesis names {what} twice: {value}")]
    Duplicate {
        /// What is duplicated.
        what: &'static str,
        /// The duplicate.
        value: String,
    },
    /// The published cosigner keys are not those of the validators.
    #[error(
        "genesis cosigner key {index} is {published:?}, but validator {validator} cosigns as \
         {expected:?}; regenerate genesis with `custos genesis`"
    )]
    CosignerMismatch {
        /// Position in the list.
        index: usize,
        /// The validator at that position.
        validator: String,
        /// What genesis says.
        published: String,
        /// What the validator's key and name give.
        expected: String,
    },
    /// There is not one cosigner key per validator.
    #[error(
        "genesis lists {published} cosigner keys for {validators} validators; it needs one each"
    )]
    CosignerCount {
        /// Keys listed.
        published: usize,
        /// Validators.
        validators: usize,
    },
    /// A validator name is not usable as a C2SP key name.
    #[error("validator name {name:?} cannot name a C2SP cosigning key: {reason}")]
    CosignerName {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A key is not a usable Ed25519 key.
    #[error("genesis key of {who}: {reason}")]
    BadKey {
        /// Whose key.
        who: String,
        /// What is wrong.
        reason: String,
    },
}

/// The C2SP cosignature/v1 verifier of a validator: its validator key under its name.
pub fn cosigner_of(validator: &Validator) -> Result<CosignatureVerifier, GenesisError> {
    let name_error = |reason: String| GenesisError::CosignerName {
        name: validator.name.to_string(),
        reason,
    };
    let name = KeyName::new(validator.name.as_str()).map_err(|e| name_error(e.to_string()))?;
    CosignatureVerifier::from_public_key(name, &validator.key.0)
        .map_err(|e| name_error(e.to_string()))
}

/// The verifier keys genesis publishes for `validators`, in order.
pub fn cosigner_keys(
    validators: &ValidatorSet,
) -> Result<List<Text<VerifierKeyLen>, ValidatorCount>, GenesisError> {
    let keys = validators
        .validators()
        .iter()
        .map(|v| {
            let vkey = cosigner_of(v)?.to_string();
            Text::new(vkey).map_err(|e| GenesisError::CosignerName {
                name: v.name.to_string(),
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(List::new(keys).expect("one key per validator, and validators are bounded alike"))
}

/// Cosignatures a checkpoint needs: 2f+1 of n = 3f+1 validators, counted by validator
/// (C2SP policies count cosigners, not voting power).
pub fn checkpoint_threshold(validators: usize) -> usize {
    validators - validators.saturating_sub(1) / 3
}

impl Genesis {
    /// The cosigners of this network's checkpoints, in validator order.
    pub fn cosigners(&self) -> Result<Vec<CosignatureVerifier>, GenesisError> {
        self.validators
            .validators()
            .iter()
            .map(cosigner_of)
            .collect()
    }

    /// The policy a checkpoint of this network must pass: origin `log_origin`,
    /// cosignatures from [`checkpoint_threshold`] of the genesis validators.
    pub fn checkpoint_policy(&self) -> Result<QuorumPolicy, GenesisError> {
        let cosigners = self.cosigners()?;
        let threshold = checkpoint_threshold(cosigners.len());
        QuorumPolicy::new(self.log_origin.as_str(), cosigners, threshold).map_err(|e| {
            GenesisError::CosignerName {
                name: self.log_origin.to_string(),
                reason: e.to_string(),
            }
        })
    }

    /// The genesis hash: SHA-256 of the tagged canonical encoding.
    pub fn hash(&self) -> Sha256Hash {
        tagged_sha256(tags::GENESIS, &encode(self))
    }

    /// Checks what the types cannot: parameter ranges, unique ids and keys, valid keys.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let params = &self.params;
        let check = |name, value: u64, max: u64| {
            if value == 0 || value > max {
                Err(GenesisError::Param { name, value, max })
            } else {
                Ok(())
            }
        };
        check(
            "max_block_messages",
            params.max_block_messages.into(),
            MAX_BLOCK_MESSAGES as u64,
        )?;
        check(
            "max_block_bytes",
            params.max_block_bytes,
            MAX_BLOCK_BYTES as u64,
        )?;
        check("max_clock_drift_ms", params.max_clock_drift_ms, 60_000)?;
        if params.checkpoint_interval_ms != 0 {
            check(
                "checkpoint_interval_ms",
                params.checkpoint_interval_ms,
                CHECKPOINT_INTERVAL_MS_MAX,
            )?;
        }

        let mut keys = std::collections::HashSet::new();
        let mut key_ids = std::collections::HashSet::new();
        let mut check_key = |who: String, key: &PublicKey| {
            key.verifying_key().map_err(|e| GenesisError::BadKey {
                who: who.clone(),
                reason: e.to_string(),
            })?;
            if !keys.insert(*key) || !key_ids.insert(key.key_id()) {
                return Err(GenesisError::Duplicate {
                    what: "key",
                    value: format!("{key} ({who})"),
                });
            }
            Ok(())
        };
        for v in self.validators.validators() {
            check_key(format!("validator {}", v.name), &v.key)?;
        }
        let mut org_ids = std::collections::HashSet::new();
        for org in self.organisations.iter() {
            check_key(format!("organisation {}", org.id), &org.key)?;
            if !org_ids.insert(org.id.as_str()) {
                return Err(GenesisError::Duplicate {
                    what: "organisation",
                    value: org.id.to_string(),
                });
            }
        }
        for c in self.collectors.iter() {
            check_key(format!("collector {}", c.name), &c.key)?;
        }
        self.check_cosigners()
    }

    fn check_cosigners(&self) -> Result<(), GenesisError> {
        let validators = self.validators.validators();
        if self.cosigners.len() != validators.len() {
            return Err(GenesisError::CosignerCount {
                published: self.cosigners.len(),
                validators: validators.len(),
            });
        }
        for (index, (published, validator)) in self.cosigners.iter().zip(validators).enumerate() {
            let expected = cosigner_of(validator)?.to_string();
            if published.as_str() != expected {
                return Err(GenesisError::CosignerMismatch {
                    index,
                    validator: validator.name.to_string(),
                    published: published.to_string(),
                    expected,
                });
            }
        }
        Ok(())
    }
}
