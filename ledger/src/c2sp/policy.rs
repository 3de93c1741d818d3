//! A k-of-n cosigner quorum for checkpoints (the simplest policy c2sp.org/tlog-proof and
//! c2sp.org/tlog-policy describe).

use super::checkpoint::{Checkpoint, CheckpointError, check_origin};
use super::cosignature::{CosignatureError, CosignatureVerifier};
use super::keys::{KeyId, KeyName};
use super::limits::POLICY_COSIGNERS_MAX;
use super::note::{Note, NoteError, NoteVerifier};

/// Which checkpoints to trust: those of one log, cosigned by at least `threshold` of a set
/// of known cosigners, and optionally signed by the log's key.
///
/// A checkpoint note passes the policy when its text is a checkpoint of the
/// policy's origin, it carries valid `cosignature/v1` lines from at least `threshold`
/// distinct configured cosigners, and (if the policy names one) a valid signature from the
/// log's own key. How lines are counted:
///
/// - A line whose (name, key id) matches no configured key is ignored (signed-note: "MUST
///   ignore signatures from unknown keys"), whatever it contains.
/// - A line that matches a configured key must verify. If it does not, the whole note is
///   rejected rather than the line merely not counted: signed-note says a client SHOULD
///   reject such a note, tlog-witness calls it malformed, and a bad line from a known
///   cosigner means the note was corrupted or tampered with. This gives an attacker no new
///   power: one who can add lines to a note can as well strip the good ones.
/// - Several lines of one cosigner (the same line repeated, or cosignatures with different
///   timestamps) are each verified and count once; the report keeps the latest timestamp.
/// - Cosigners are distinct keys: the policy refuses two entries with one public key
///   (tlog-policy forbids duplicate witnesses, and a cosignature/v1 does not commit to the
///   cosigner's name, so one key under two names would count twice).
#[derive(Clone, Debug)]
pub struct QuorumPolicy {
    origin: String,
    cosigners: Vec<CosignatureVerifier>,
    threshold: usize,
    log_key: Option<NoteVerifier>,
}

impl QuorumPolicy {
    /// A policy for checkpoints of log `origin` that requires cosignatures from at least
    /// `threshold` of `cosigners` (1 ≤ threshold ≤ cosigners, at most
    /// [`POLICY_COSIGNERS_MAX`] cosigners, no public key twice).
    pub fn new(
        origin: impl Into<String>,
        cosigners: Vec<CosignatureVerifier>,
        threshold: usize,
    ) -> Result<Self, PolicyError> {
        let origin = origin.into();
        // The origin must be one a checkpoint can carry.
        check_origin(&origin).map_err(|source| PolicyError::InvalidOrigin { source })?;
        if cosigners.len() > POLICY_COSIGNERS_MAX {
            return Err(PolicyError::TooManyCosigners {
                count: cosigners.len(),
                max: POLICY_COSIGNERS_MAX,
            });
        }
        if threshold == 0 {
            return Err(PolicyError::ThresholdZero);
        }
        if threshold > cosigners.len() {
            return Err(PolicyError::ThresholdAboveCosigners {
                threshold,
                cosigners: cosigners.len(),
            });
        }
        for (i, later) in cosigners.iter().enumerate() {
            for earlier in &cosigners[..i] {
                if earlier.public_key() == later.public_key() {
                    return Err(PolicyError::DuplicatePublicKey {
                        first: earlier.name().clone(),
                        second: later.name().clone(),
                    });
                }
                if earlier.name() == later.name() && earlier.key_id() == later.key_id() {
                    return Err(PolicyError::AmbiguousKey {
                        name: later.name().clone(),
                        key_id: later.key_id(),
                    });
                }
            }
        }
        Ok(Self {
            origin,
            cosigners,
            threshold,
            log_key: None,
        })
    }

    /// The same policy, also requiring a valid Ed25519 note signature by `log_key` (step 2
    /// of verifying a tlog-proof). Custos checkpoints are vouched for by the validators'
    /// cosignatures alone; this is for checking other C2SP logs.
    pub fn with_log_key(mut self, log_key: NoteVerifier) -> Result<Self, PolicyError> {
        if let Some(cosigner) = self
            .cosigners
            .iter()
            .find(|c| c.name() == log_key.name() && c.key_id() == log_key.key_id())
        {
            return Err(PolicyError::AmbiguousKey {
                name: cosigner.name().clone(),
                key_id: cosigner.key_id(),
            });
        }
        self.log_key = Some(log_key);
        Ok(self)
    }

    /// The origin checkpoints must have.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The known cosigners.
    pub fn cosigners(&self) -> &[CosignatureVerifier] {
        &self.cosigners
    }

    /// How many distinct cosigners must have cosigned.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The log key whose signature is required, if any.
    pub fn log_key(&self) -> Option<&NoteVerifier> {
        self.log_key.as_ref()
    }

    /// Parses `bytes` as a signed note and [verifies](Self::verify) it.
    pub fn verify_bytes(&self, bytes: &[u8]) -> Result<VerifiedCheckpoint, QuorumError> {
        self.verify(&Note::parse(bytes)?)
    }

    /// Checks that `note` is a checkpoint this policy trusts, and reports who cosigned it.
    /// The rules are in the [type documentation](QuorumPolicy).
    pub fn verify(&self, note: &Note) -> Result<VerifiedCheckpoint, QuorumError> {
        let checkpoint = Checkpoint::from_note(note)?;
        if checkpoint.origin() != self.origin {
            return Err(QuorumError::OriginMismatch {
                expected: self.origin.clone(),
                got: checkpoint.origin().to_owned(),
            });
        }
        let mut log_signed = false;
        let mut timestamps_s: Vec<Option<u64>> = vec![None; self.cosigners.len()];
        for line in note.signatures() {
            if let Some(log_key) = &self.log_key {
                if line.is_from(log_key.name(), log_key.key_id()) {
                    if !log_key.verifies(note.text().as_bytes(), line.signature()) {
                        return Err(QuorumError::LogSignatureInvalid {
                            name: log_key.name().clone(),
                            key_id: log_key.key_id(),
                        });
                    }
                    log_signed = true;
                    continue;
                }
            }
            let Some(index) = self.cosigners.iter().position(|c| c.matches(line)) else {
                continue;
            };
            let cosigner = &self.cosigners[index];
            let timestamp_s = cosigner.verify(&checkpoint, line).map_err(|source| {
                QuorumError::CosignatureInvalid {
                    name: cosigner.name().clone(),
                    key_id: cosigner.key_id(),
                    source,
                }
            })?;
            let latest = &mut timestamps_s[index];
            *latest = Some(latest.map_or(timestamp_s, |t| t.max(timestamp_s)));
        }
        if let Some(log_key) = &self.log_key {
            if !log_signed {
                return Err(QuorumError::MissingLogSignature {
                    name: log_key.name().clone(),
                    key_id: log_key.key_id(),
                });
            }
        }
        let cosignatures: Vec<VerifiedCosignature> = self
            .cosigners
            .iter()
            .zip(timestamps_s)
            .filter_map(|(cosigner, timestamp_s)| {
                Some(VerifiedCosignature {
                    name: cosigner.name().clone(),
                    key_id: cosigner.key_id(),
                    timestamp_s: timestamp_s?,
                })
            })
            .collect();
        if cosignatures.len() < self.threshold {
            return Err(QuorumError::QuorumNotMet {
                valid: cosignatures.len(),
                threshold: self.threshold,
                signed: cosignatures.into_iter().map(|c| c.name).collect(),
            });
        }
        Ok(VerifiedCheckpoint {
            checkpoint,
            cosignatures,
            log_signed,
        })
    }
}

/// A checkpoint that passed a [`QuorumPolicy`], with who vouched for it. Only
/// [`QuorumPolicy::verify`] makes one.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedCheckpoint {
    checkpoint: Checkpoint,
    cosignatures: Vec<VerifiedCosignature>,
    log_signed: bool,
}

impl VerifiedCheckpoint {
    /// The checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// One entry per configured cosigner with a valid cosignature, in policy order.
    pub fn cosignatures(&self) -> &[VerifiedCosignature] {
        &self.cosignatures
    }

    /// True when the policy required a log signature (it was then verified).
    pub fn log_signed(&self) -> bool {
        self.log_signed
    }
}

/// A configured cosigner whose cosignature verified.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedCosignature {
    name: KeyName,
    key_id: KeyId,
    timestamp_s: u64,
}

impl VerifiedCosignature {
    /// The cosigner's name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The cosigner's key id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// When the cosigner signed, in seconds since the POSIX epoch (the latest, if it signed
    /// more than once). tlog-proof verification ignores it; apply any freshness rule here.
    pub fn timestamp_s(&self) -> u64 {
        self.timestamp_s
    }
}

/// Why a quorum policy could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The origin could not appear in a checkpoint.
    #[error("policy origin is invalid: {source}")]
    InvalidOrigin {
        /// What was wrong with it.
        source: CheckpointError,
    },
    /// The threshold was zero, which would trust any checkpoint.
    #[error("threshold is 0; at least one cosignature must be required")]
    ThresholdZero,
    /// The threshold exceeded the number of cosigners, so nothing could pass.
    #[error("threshold {threshold} exceeds the {cosigners} configured cosigners")]
    ThresholdAboveCosigners {
        /// The threshold asked for.
        threshold: usize,
        /// Cosigners configured.
        cosigners: usize,
    },
    /// More cosigners than [`POLICY_COSIGNERS_MAX`].
    #[error("{count} cosigners configured; at most {max} are accepted")]
    TooManyCosigners {
        /// Cosigners configured.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Two cosigners had the same public key.
    #[error("cosigners {first} and {second} have the same public key; each needs its own")]
    DuplicatePublicKey {
        /// The first entry's name.
        first: KeyName,
        /// The later entry's name.
        second: KeyName,
    },
    /// Two keys had the same name and key id, so their lines could not be told apart.
    #[error("two configured keys are named {name} with key id {key_id}")]
    AmbiguousKey {
        /// The shared name.
        name: KeyName,
        /// The shared key id.
        key_id: KeyId,
    },
}

/// Why a checkpoint note did not pass a quorum policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    /// The bytes were not a signed note.
    #[error("not a signed note: {0}")]
    Note(#[from] NoteError),
    /// The note text was not a checkpoint.
    #[error("note is not a checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint was of another log.
    #[error("checkpoint is for log {got:?}; the policy accepts only {expected:?}")]
    OriginMismatch {
        /// The policy's origin.
        expected: String,
        /// The checkpoint's origin.
        got: String,
    },
    /// A line of the log key did not verify.
    #[error("signature by the log key {name}+{key_id} does not verify; the note was altered")]
    LogSignatureInvalid {
        /// The log key's name.
        name: KeyName,
        /// The log key's id.
        key_id: KeyId,
    },
    /// The policy requires a log signature and there was none.
    #[error("checkpoint is not signed by the log key {name}+{key_id}")]
    MissingLogSignature {
        /// The log key's name.
        name: KeyName,
        /// The log key's id.
        key_id: KeyId,
    },
    /// A line of a configured cosigner did not verify.
    #[error("cosignature by known cosigner {name}+{key_id} is invalid: {source}")]
    CosignatureInvalid {
        /// The cosigner's name.
        name: KeyName,
        /// The cosigner's key id.
        key_id: KeyId,
        /// What was wrong.
        source: CosignatureError,
    },
    /// Too few configured cosigners cosigned.
    #[error(
        "checkpoint has valid cosignatures from {valid} configured cosigners {signed:?}; \
         the policy requires {threshold}"
    )]
    QuorumNotMet {
        /// Distinct configured cosigners with valid cosignatures.
        valid: usize,
        /// Cosignatures required.
        threshold: usize,
        /// Who did cosign, in policy order.
        signed: Vec<KeyName>,
    },
}
