//! C2SP transparency-log formats: signed notes, checkpoints, cosignatures and proofs.
//!
//! Custos publishes its evidence log in the formats of the Community Cryptography
//! Specification Project, so that any C2SP-aware tool can check it:
//!
//! - [`Note`] — [c2sp.org/signed-note]: text signed by one or more keys, with Ed25519 note
//!   keys ([`NoteSigner`], [`NoteVerifier`], signature type 0x01);
//! - [`Checkpoint`] — [c2sp.org/tlog-checkpoint]: origin, tree size and root hash of the
//!   log, the text of a signed note;
//! - cosignatures — [c2sp.org/tlog-cosignature] `cosignature/v1` ([`CosignatureSigner`],
//!   [`CosignatureVerifier`], signature type 0x04): a cosigner's timestamped statement that
//!   a checkpoint is the largest consistent one it has seen;
//! - [`QuorumPolicy`] — which checkpoints to trust: those cosigned by at least k of n known
//!   cosigners (Custos: 2f+1 of the genesis validators);
//! - [`TlogProof`] — [c2sp.org/tlog-proof]: a leaf index, its inclusion proof and the
//!   cosigned checkpoint, verifiable offline.
//!
//! Parsers are strict: they accept only what the specifications allow, in canonical form
//! (padded canonical base64, decimals without leading zeroes), so every parsed value
//! encodes back to the same bytes. Everything untrusted is bounded by the constants in
//! [`limits`].
//!
//! This module is self-contained on purpose: its keys sign C2SP messages only, never the
//! domain-separated Custos messages, and vice versa.
//!
//! # Example
//!
//! Four validators hold cosigner keys; three of them cosign a checkpoint; a verifier who
//! knows the four public keys and requires three accepts it, and accepts an inclusion
//! proof against it.
//!
//! ```
//! use custos_ledger::c2sp::{
//!     Checkpoint, CosignatureSigner, CosignatureVerifier, KeyName, Note, QuorumError,
//!     QuorumPolicy, TlogProof,
//! };
//! use custos_ledger::merkle::{Root, hash_children, hash_leaf};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Four cosigner keys. Real validators use `CosignatureSigner::generate` and keep the
//! // `to_private_key_string()` secret; fixed seeds keep this example reproducible.
//! let signers = (0..4u8)
//!     .map(|i| -> Result<CosignatureSigner, Box<dyn std::error::Error>> {
//!         let name = KeyName::new(format!("validator-{i}.custos.example"))?;
//!         Ok(CosignatureSigner::from_seed(name, &[i; 32])?)
//!     })
//!     .collect::<Result<Vec<_>, _>>()?;
//! // What verifiers are configured with: the public vkey strings.
//! let vkeys: Vec<String> = signers.iter().map(|s| s.verifier().to_string()).collect();
//!
//! // A checkpoint of a two-leaf log.
//! let leaves = [hash_leaf(b"evidence 0"), hash_leaf(b"evidence 1")];
//! let root = Root { tree_size: 2, hash: hash_children(&leaves[0], &leaves[1]) };
//! let checkpoint = Checkpoint::new("custos.example/testnet", root)?;
//!
//! // Three of the four cosign it (timestamps in seconds since the POSIX epoch).
//! let lines = signers[..3]
//!     .iter()
//!     .map(|s| s.cosign(&checkpoint, 1_767_225_600))
//!     .collect::<Result<Vec<_>, _>>()?;
//! let note = Note::new(checkpoint.to_text(), lines)?;
//! let published: String = note.encode();
//!
//! // A verifier that knows all four keys and requires three.
//! let known = vkeys
//!     .iter()
//!     .map(|v| v.parse::<CosignatureVerifier>())
//!     .collect::<Result<Vec<_>, _>>()?;
//! let policy = QuorumPolicy::new("custos.example/testnet", known.clone(), 3)?;
//! let verified = policy.verify_bytes(published.as_bytes())?;
//! assert_eq!(verified.checkpoint().root(), root);
//! let cosigners: Vec<&str> = verified.cosignatures().iter().map(|c| c.name().as_str()).collect();
//! assert_eq!(
//!     cosigners,
//!     ["validator-0.custos.example", "validator-1.custos.example", "validator-2.custos.example"]
//! );
//!
//! // Requiring all four fails, and says how many signed.
//! let all_four = QuorumPolicy::new("custos.example/testnet", known, 4)?;
//! assert!(matches!(
//!     all_four.verify_bytes(published.as_bytes()),
//!     Err(QuorumError::QuorumNotMet { valid: 3, threshold: 4, .. })
//! ));
//!
//! // An offline proof that leaf 1 is in that checkpoint's tree.
//! let proof = TlogProof::new(1, vec![leaves[0]], note)?;
//! let file = proof.encode();
//! let verified = TlogProof::parse(file.as_bytes())?.verify(&leaves[1], &policy)?;
//! assert_eq!(verified.cosignatures().len(), 3);
//! # Ok(())
//! # }
//! ```
//!
//! [c2sp.org/signed-note]: https://c2sp.org/signed-note
//! [c2sp.org/tlog-checkpoint]: https://c2sp.org/tlog-checkpoint
//! [c2sp.org/tlog-cosignature]: https://c2sp.org/tlog-cosignature
//! [c2sp.org/tlog-proof]: https://c2sp.org/tlog-proof

mod checkpoint;
mod cosignature;
mod keys;
pub mod limits;
mod note;
mod policy;
mod proof;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use cosignature::{
    COSIGNATURE_TIMESTAMP_S_MAX, COSIGNATURE_V1_HEADER, COSIGNATURE_V1_SIGNATURE_LEN,
    CosignatureError, CosignatureSigner, CosignatureVerifier, cosigned_message,
};
pub use keys::{
    KeyError, KeyId, KeyName, KeyNameError, PRIVATE_KEY_PREFIX, SIGNATURE_TYPE_COSIGNATURE_V1,
    SIGNATURE_TYPE_ED25519,
};
pub use note::{Note, NoteError, NoteSigner, NoteVerifier, SIGNATURE_LINE_PREFIX, SignatureLine};
pub use policy::{PolicyError, QuorumError, QuorumPolicy, VerifiedCheckpoint, VerifiedCosignature};
pub use proof::{TLOG_PROOF_HEADER, TlogProof, TlogProofError};

/// Why a decimal number in a checkpoint or proof was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// There were no digits.
    #[error("no digits; expected a decimal number")]
    Empty,
    /// Something other than the digits 0-9 appeared (signs and spaces included).
    #[error("not a plain decimal number; only the digits 0-9 are allowed")]
    NotDecimal,
    /// The number had a leading zero.
    #[error("leading zero; numbers are written without leading zeroes (0 itself is \"0\")")]
    LeadingZero,
    /// The number does not fit in 64 bits.
    #[error("number exceeds 2^64-1")]
    Overflow,
}

/// Parses ASCII decimal digits with no sign and no leading zeroes (C2SP's tree sizes,
/// indexes and timestamps), so each number has exactly one spelling.
fn parse_decimal(text: &str) -> Result<u64, DecimalError> {
    if text.is_empty() {
        return Err(DecimalError::Empty);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecimalError::NotDecimal);
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(DecimalError::LeadingZero);
    }
    text.parse().map_err(|_| DecimalError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_have_one_spelling() {
        assert_eq!(parse_decimal("0"), Ok(0));
        assert_eq!(parse_decimal("20852163"), Ok(20_852_163));
        assert_eq!(parse_decimal("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_decimal(""), Err(DecimalError::Empty));
        assert_eq!(parse_decimal("00"), Err(DecimalError::LeadingZero));
        assert_eq!(parse_decimal("012"), Err(DecimalError::LeadingZero));
        for bad in ["+1", "-1", " 1", "1 ", "1_000", "1e3", "0x10", "١"] {
            assert_eq!(parse_decimal(bad), Err(DecimalError::NotDecimal), "{bad:?}");
        }
        assert_eq!(
            parse_decimal("18446744073709551616"),
            Err(DecimalError::Overflow)
        );
    }
}
