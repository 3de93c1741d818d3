//! Offline-verifiable inclusion proofs (c2sp.org/tlog-proof).
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 opaque data>          (optional)
//! index <leaf index>
//! <base64 hash>                       (zero or more: the RFC 6962 inclusion proof)
//!
//! <the checkpoint note, verbatim>
//! ```
//!
//! Verifying one ([`TlogProof::verify`]) follows the spec's steps: the caller computes the
//! leaf hash (step 1, application specific), the checkpoint must pass a [`QuorumPolicy`]
//! (steps 2 and 3: origin, log key if configured, k-of-n cosignatures), and the inclusion
//! proof must lead from the leaf hash to the checkpoint's root (step 4). The extra data is
//! not authenticated by any of this.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::checkpoint::{Checkpoint, CheckpointError};
use super::limits::{PROOF_EXTRA_BYTES_MAX, PROOF_HASHES_MAX, TLOG_PROOF_BYTES_MAX};
use super::note::{Note, NoteError};
use super::policy::{QuorumError, QuorumPolicy, VerifiedCheckpoint};
use super::{DecimalError, parse_decimal};
use crate::hash::Sha256Hash;
use crate::merkle::{ProofError, verify_inclusion};

/// First line of every tlog-proof.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A tlog-proof: a leaf index, its inclusion proof, optional extra data and the checkpoint
/// note the proof is against.
///
/// ```text
/// c2sp.org/tlog-proof@v1
/// extra <base64 opaque data>          (only when there is extra data)
/// index <leaf index>
/// <base64 hash>                       (zero or more: the RFC 6962 inclusion proof)
///
/// <the checkpoint note, verbatim>
/// ```
///
/// Every value is encodable, and `TlogProof::parse(proof.encode())` gives it back.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TlogProof {
    index: u64,
    inclusion_proof: Vec<Sha256Hash>,
    extra: Vec<u8>,
    note: Note,
    checkpoint: Checkpoint,
}

impl TlogProof {
    /// The proof that leaf `index` is in the tree of the checkpoint `note`, with no extra
    /// data. The note must hold a checkpoint; its signatures are checked only by
    /// [`TlogProof::verify`].
    pub fn new(
        index: u64,
        inclusion_proof: Vec<Sha256Hash>,
        note: Note,
    ) -> Result<Self, TlogProofError> {
        if inclusion_proof.len() > PROOF_HASHES_MAX {
            return Err(TlogProofError::TooManyProofHashes {
                max: PROOF_HASHES_MAX,
            });
        }
        let checkpoint = Checkpoint::from_note(&note)?;
        Ok(Self {
            index,
            inclusion_proof,
            extra: Vec::new(),
            note,
            checkpoint,
        })
    }

    /// The same proof carrying `extra` as its opaque extra data. Empty `extra` means none:
    /// the spec omits the line when there is no extra data.
    pub fn with_extra(mut self, extra: Vec<u8>) -> Result<Self, TlogProofError> {
        if extra.len() > PROOF_EXTRA_BYTES_MAX {
            return Err(TlogProofError::ExtraTooLarge {
                max: PROOF_EXTRA_BYTES_MAX,
            });
        }
        self.extra = extra;
        Ok(self)
    }

    /// Zero-based index of the leaf in the log.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The inclusion proof, from the leaf's sibling up to the root's child.
    pub fn inclusion_proof(&self) -> &[Sha256Hash] {
        &self.inclusion_proof
    }

    /// The extra data (empty when there is none). Not authenticated: never trust it
    /// without checking it against something that is.
    pub fn extra(&self) -> &[u8] {
        &self.extra
    }

    /// The checkpoint note, as carried.
    pub fn checkpoint_note(&self) -> &Note {
        &self.note
    }

    /// The checkpoint in the note (its signatures not yet checked).
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Parses a tlog-proof, rejecting anything the spec does not allow.
    pub fn parse(bytes: &[u8]) -> Result<Self, TlogProofError> {
        if bytes.len() > TLOG_PROOF_BYTES_MAX {
            return Err(TlogProofError::TooLarge {
                size: bytes.len(),
                max: TLOG_PROOF_BYTES_MAX,
            });
        }
        let mut rest = bytes;
        let header = take_line(&mut rest).ok_or(TlogProofError::Truncated {
            expected: "the c2sp.org/tlog-proof@v1 line",
        })?;
        if header != TLOG_PROOF_HEADER.as_bytes() {
            return Err(TlogProofError::WrongHeader {
                got: String::from_utf8_lossy(header).into_owned(),
            });
        }
        let mut line = take_line(&mut rest).ok_or(TlogProofError::Truncated {
            expected: "the index line",
        })?;
        let mut extra = Vec::new();
        if let Some(encoded) = line.strip_prefix(b"extra ") {
            extra = decode_extra(encoded)?;
            line = take_line(&mut rest).ok_or(TlogProofError::Truncated {
                expected: "the index line",
            })?;
        }
        let index = parse_index(line)?;
        let mut inclusion_proof = Vec::new();
        loop {
            let line = take_line(&mut rest).ok_or(TlogProofError::Truncated {
                expected: "an empty line before the checkpoint",
            })?;
            if line.is_empty() {
                break;
            }
            if inclusion_proof.len() == PROOF_HASHES_MAX {
                return Err(TlogProofError::TooManyProofHashes {
                    max: PROOF_HASHES_MAX,
                });
            }
            inclusion_proof.push(decode_hash(line, inclusion_proof.len() + 1)?);
        }
        let note = Note::parse(rest)?;
        let checkpoint = Checkpoint::from_note(&note)?;
        Ok(Self {
            index,
            inclusion_proof,
            extra,
            note,
            checkpoint,
        })
    }

    /// The proof file's text.
    pub fn encode(&self) -> String {
        let mut out = format!("{TLOG_PROOF_HEADER}\n");
        if !self.extra.is_empty() {
            out.push_str("extra ");
            out.push_str(&STANDARD.encode(&self.extra));
            out.push('\n');
        }
        out.push_str(&format!("index {}\n", self.index));
        for hash in &self.inclusion_proof {
            out.push_str(&STANDARD.encode(hash.as_bytes()));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.note.encode());
        out
    }

    /// Verifies that the leaf with hash `leaf_hash` is at [`index`](Self::index) in the
    /// tree of a checkpoint that `policy` trusts, and returns that checkpoint with its
    /// cosigners. The checkpoint is checked first, so a failure names the first step of
    /// the spec's procedure that failed.
    pub fn verify(
        &self,
        leaf_hash: &Sha256Hash,
        policy: &QuorumPolicy,
    ) -> Result<VerifiedCheckpoint, TlogProofError> {
        let verified = policy.verify(&self.note)?;
        let root = verified.checkpoint().root();
        verify_inclusion(
            leaf_hash.as_bytes(),
            self.index,
            root.tree_size,
            &self.inclusion_proof,
            root.hash.as_bytes(),
        )?;
        Ok(verified)
    }
}

/// Splits off the next newline-terminated line, without its newline.
fn take_line<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let end = rest.iter().position(|&b| b == b'\n')?;
    let line = &rest[..end];
    *rest = &rest[end + 1..];
    Some(line)
}

fn decode_extra(encoded: &[u8]) -> Result<Vec<u8>, TlogProofError> {
    if encoded.is_empty() {
        return Err(TlogProofError::ExtraEmpty);
    }
    // Refuse before decoding: base64 is 4 characters per 3 bytes.
    if encoded.len() > PROOF_EXTRA_BYTES_MAX.div_ceil(3) * 4 {
        return Err(TlogProofError::ExtraTooLarge {
            max: PROOF_EXTRA_BYTES_MAX,
        });
    }
    let extra = STANDARD
        .decode(encoded)
        .map_err(|_| TlogProofError::ExtraNotBase64)?;
    if extra.len() > PROOF_EXTRA_BYTES_MAX {
        return Err(TlogProofError::ExtraTooLarge {
            max: PROOF_EXTRA_BYTES_MAX,
        });
    }
    Ok(extra)
}

fn parse_index(line: &[u8]) -> Result<u64, TlogProofError> {
    let shown = || String::from_utf8_lossy(line).into_owned();
    let digits = line
        .strip_prefix(b"index ")
        .ok_or_else(|| TlogProofError::MissingIndexLine { got: shown() })?;
    let digits = std::str::from_utf8(digits).map_err(|_| TlogProofError::InvalidIndex {
        text: shown(),
        source: DecimalError::NotDecimal,
    })?;
    parse_decimal(digits).map_err(|source| TlogProofError::InvalidIndex {
        text: shown(),
        source,
    })
}

fn decode_hash(line: &[u8], number: usize) -> Result<Sha256Hash, TlogProofError> {
    let bytes = STANDARD
        .decode(line)
        .map_err(|_| TlogProofError::ProofHashNotBase64 { line: number })?;
    Sha256Hash::from_slice(&bytes).map_err(|_| TlogProofError::ProofHashWrongLength {
        line: number,
        len: bytes.len(),
    })
}

/// Why a tlog-proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogProofError {
    /// The file exceeds [`TLOG_PROOF_BYTES_MAX`].
    #[error("tlog-proof is {size} bytes; at most {max} are accepted")]
    TooLarge {
        /// Size found.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The file ended before a required line.
    #[error("tlog-proof ends before {expected}")]
    Truncated {
        /// The line that was missing.
        expected: &'static str,
    },
    /// The first line was not `c2sp.org/tlog-proof@v1`.
    #[error("tlog-proof must start with \"c2sp.org/tlog-proof@v1\", not {got:?}")]
    WrongHeader {
        /// The first line found.
        got: String,
    },
    /// The extra line had no data.
    #[error("tlog-proof has an empty extra line; omit the line when there is no extra data")]
    ExtraEmpty,
    /// The extra data was not canonical standard base64.
    #[error("tlog-proof extra data is not canonical standard base64 (RFC 4648 §4, padded)")]
    ExtraNotBase64,
    /// The extra data exceeds [`PROOF_EXTRA_BYTES_MAX`].
    #[error("tlog-proof extra data is larger than the {max} bytes accepted")]
    ExtraTooLarge {
        /// The limit.
        max: usize,
    },
    /// The line after the header (and extra line) was not an index line.
    #[error("tlog-proof needs \"index <n>\" after the header and optional extra line, not {got:?}")]
    MissingIndexLine {
        /// The line found.
        got: String,
    },
    /// The index was not a canonical decimal number.
    #[error("tlog-proof index line {text:?} is invalid: {source}")]
    InvalidIndex {
        /// The line.
        text: String,
        /// What was wrong with the number.
        source: DecimalError,
    },
    /// A proof hash was not canonical standard base64.
    #[error("tlog-proof hash {line} is not canonical standard base64 (RFC 4648 §4, padded)")]
    ProofHashNotBase64 {
        /// 1-based position among the proof hashes.
        line: usize,
    },
    /// A proof hash was not 32 bytes.
    #[error("tlog-proof hash {line} is {len} bytes; proof hashes are 32-byte SHA-256 hashes")]
    ProofHashWrongLength {
        /// 1-based position among the proof hashes.
        line: usize,
        /// Decoded length.
        len: usize,
    },
    /// More proof hashes than [`PROOF_HASHES_MAX`].
    #[error("tlog-proof has more than {max} proof hashes; no tree of 2^64 leaves needs more")]
    TooManyProofHashes {
        /// The limit.
        max: usize,
    },
    /// The checkpoint was not a signed note.
    #[error("tlog-proof checkpoint is not a signed note: {0}")]
    Note(#[from] NoteError),
    /// The checkpoint note's text was not a checkpoint.
    #[error("tlog-proof checkpoint is malformed: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint did not pass the quorum policy.
    #[error("tlog-proof checkpoint is not trusted: {0}")]
    Quorum(#[from] QuorumError),
    /// The inclusion proof did not lead to the checkpoint's root.
    #[error("tlog-proof inclusion proof is invalid: {0}")]
    Inclusion(#[from] ProofError),
}
