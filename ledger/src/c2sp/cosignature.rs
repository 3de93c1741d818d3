//! Checkpoint cosignatures, Ed25519 version (c2sp.org/tlog-cosignature, `cosignature/v1`,
//! signature type 0x04).
//!
//! A cosignature is a note signature line on a checkpoint whose signature bytes are a
//! `timestamped_signature`: the 8-byte big-endian POSIX timestamp, then the 64-byte Ed25519
//! signature over
//!
//! ```text
//! cosignature/v1
//! time <timestamp>
//! <checkpoint note text>
//! ```
//!
//! The signed message does not name the cosigner, so one Ed25519 key must never serve two
//! cosigners; [`super::QuorumPolicy`] refuses such a configuration.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use super::checkpoint::Checkpoint;
use super::keys::{self, KeyError, KeyId, KeyName, SIGNATURE_TYPE_COSIGNATURE_V1, check_key_name};
use super::note::SignatureLine;

/// First line of every cosigned message; it separates cosignatures from other signatures
/// by the same key.
pub const COSIGNATURE_V1_HEADER: &str = "cosignature/v1";

/// Largest timestamp a cosignature may carry: tlog-cosignature says it "MUST NOT exceed
/// 2^63 - 1".
pub const COSIGNATURE_TIMESTAMP_S_MAX: u64 = (1 << 63) - 1;

/// Bytes of a `timestamped_signature`: 8 of timestamp, 64 of Ed25519 signature.
pub const COSIGNATURE_V1_SIGNATURE_LEN: usize = 8 + 64;

/// The exact bytes a cosigner signs for `checkpoint_text` at `timestamp_s` (seconds since
/// the POSIX epoch):
///
/// ```text
/// cosignature/v1
/// time <timestamp_s in decimal>
/// <checkpoint note text, with its final newline>
/// ```
///
/// The cosignature line's signature bytes are then the 8-byte big-endian timestamp
/// followed by the 64-byte Ed25519 signature of this message.
pub fn cosigned_message(checkpoint_text: &str, timestamp_s: u64) -> Vec<u8> {
    format!("{COSIGNATURE_V1_HEADER}\ntime {timestamp_s}\n{checkpoint_text}").into_bytes()
}

/// Why a cosignature could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    /// The timestamp is above 2^63 - 1.
    #[error("cosignature timestamp {timestamp_s} exceeds the maximum 2^63-1")]
    TimestampTooLarge {
        /// The timestamp, in seconds since the POSIX epoch.
        timestamp_s: u64,
    },
    /// The line is not from this verifier's key.
    #[error("signature line is from {name}+{key_id}, not from this cosigner")]
    OtherKey {
        /// The line's key name.
        name: KeyName,
        /// The line's key id.
        key_id: KeyId,
    },
    /// The signature bytes are not a 72-byte `timestamped_signature`.
    #[error("cosignature is {len} bytes; a cosignature/v1 is 8 bytes of time and 64 of signature")]
    WrongLength {
        /// Bytes after the key id.
        len: usize,
    },
    /// The Ed25519 signature does not verify over the checkpoint and timestamp.
    #[error("cosignature does not verify for this checkpoint and timestamp")]
    BadSignature,
}

/// A cosigner's public key: the verifier of its `cosignature/v1` lines (signature type
/// 0x04, see [`cosigned_message`] for what is signed).
///
/// The signed message does not name the cosigner, so one Ed25519 key must never serve two
/// cosigners; [`QuorumPolicy`](super::QuorumPolicy) refuses such a configuration.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CosignatureVerifier {
    name: KeyName,
    key_id: KeyId,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// Reads a vkey `name+hexkeyid+base64(0x04 || public key)`, checking the key id.
    pub fn parse(vkey: &str) -> Result<Self, KeyError> {
        let (name, key_id, key) = keys::parse_verifier_key(vkey, SIGNATURE_TYPE_COSIGNATURE_V1)?;
        Ok(Self { name, key_id, key })
    }

    /// The verifier for cosigner `name` with Ed25519 public key `key`.
    pub fn from_public_key(name: KeyName, key: &[u8; 32]) -> Result<Self, KeyError> {
        check_key_name(&name)?;
        let key = keys::verifying_key_from_bytes(key)?;
        let key_id = KeyId::compute(&name, SIGNATURE_TYPE_COSIGNATURE_V1, key.as_bytes());
        Ok(Self { name, key_id, key })
    }

    /// The cosigner's name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key id, `SHA-256(name || 0x0A || 0x04 || public key)[:4]`.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// True when `line` carries this cosigner's name and key id.
    pub fn matches(&self, line: &SignatureLine) -> bool {
        line.is_from(&self.name, self.key_id)
    }

    /// Verifies `line` as this cosigner's cosignature of `checkpoint` and returns its
    /// timestamp (seconds since the POSIX epoch).
    ///
    /// The timestamp is only checked against 2^63 - 1: whether it is too old or in the
    /// future is the caller's policy, since this crate has no clock.
    pub fn verify(
        &self,
        checkpoint: &Checkpoint,
        line: &SignatureLine,
    ) -> Result<u64, CosignatureError> {
        if !self.matches(line) {
            return Err(CosignatureError::OtherKey {
                name: line.name().clone(),
                key_id: line.key_id(),
            });
        }
        let bytes: &[u8; COSIGNATURE_V1_SIGNATURE_LEN] =
            line.signature()
                .try_into()
                .map_err(|_| CosignatureError::WrongLength {
                    len: line.signature().len(),
                })?;
        let mut timestamp = [0u8; 8];
        timestamp.copy_from_slice(&bytes[..8]);
        let timestamp_s = u64::from_be_bytes(timestamp);
        if timestamp_s > COSIGNATURE_TIMESTAMP_S_MAX {
            return Err(CosignatureError::TimestampTooLarge { timestamp_s });
        }
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&bytes[8..]);
        let signature = Signature::from_bytes(&signature);
        let message = cosigned_message(&checkpoint.to_text(), timestamp_s);
        // Strict verification refuses small-order R, so one signature cannot cover two
        // messages.
        self.key
            .verify_strict(&message, &signature)
            .map_err(|_| CosignatureError::BadSignature)?;
        Ok(timestamp_s)
    }
}

impl std::fmt::Display for CosignatureVerifier {
    /// The vkey string.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&keys::format_verifier_key(
            &self.name,
            self.key_id,
            SIGNATURE_TYPE_COSIGNATURE_V1,
            &self.key,
        ))
    }
}

impl std::str::FromStr for CosignatureVerifier {
    type Err = KeyError;

    fn from_str(vkey: &str) -> Result<Self, KeyError> {
        Self::parse(vkey)
    }
}

/// A cosigner's private key.
///
/// Its text form is `PRIVATE+KEY+name+hexkeyid+base64(0x04 || seed)`: the signed-note
/// signer key layout with the cosignature type byte, whose key id is the cosigner key id.
/// tlog-cosignature defines no private key format; this one is Custos's. `Debug` shows the
/// name and key id only.
#[derive(Clone)]
pub struct CosignatureSigner {
    name: KeyName,
    key_id: KeyId,
    key: SigningKey,
}

impl CosignatureSigner {
    /// A new cosigner key for `name` from the operating system's randomness.
    pub fn generate(name: KeyName) -> Result<Self, KeyError> {
        check_key_name(&name)?;
        Ok(Self::with_key(name, keys::random_signing_key()?))
    }

    /// The cosigner key with Ed25519 seed `seed` under `name`.
    pub fn from_seed(name: KeyName, seed: &[u8; 32]) -> Result<Self, KeyError> {
        check_key_name(&name)?;
        Ok(Self::with_key(name, SigningKey::from_bytes(seed)))
    }

    /// Reads `PRIVATE+KEY+name+hexkeyid+base64(0x04 || seed)`, checking the key id.
    pub fn parse(skey: &str) -> Result<Self, KeyError> {
        let (name, key_id, key) = keys::parse_signer_key(skey, SIGNATURE_TYPE_COSIGNATURE_V1)?;
        Ok(Self { name, key_id, key })
    }

    fn with_key(name: KeyName, key: SigningKey) -> Self {
        let key_id = KeyId::compute(
            &name,
            SIGNATURE_TYPE_COSIGNATURE_V1,
            key.verifying_key().as_bytes(),
        );
        Self { name, key_id, key }
    }

    /// The private key string. It holds the secret: store it like one.
    pub fn to_private_key_string(&self) -> String {
        keys::format_signer_key(
            &self.name,
            self.key_id,
            SIGNATURE_TYPE_COSIGNATURE_V1,
            &self.key,
        )
    }

    /// The matching verifier.
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// The cosigner's name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Cosigns `checkpoint` as of `timestamp_s` (seconds since the POSIX epoch) and returns
    /// the signature line to add to the checkpoint's note.
    ///
    /// By cosigning, the cosigner states that as of that time this is the largest tree it
    /// has seen for the origin, consistent with everything it saw before; checking that is
    /// the caller's job.
    pub fn cosign(
        &self,
        checkpoint: &Checkpoint,
        timestamp_s: u64,
    ) -> Result<SignatureLine, CosignatureError> {
        if timestamp_s > COSIGNATURE_TIMESTAMP_S_MAX {
            return Err(CosignatureError::TimestampTooLarge { timestamp_s });
        }
        let message = cosigned_message(&checkpoint.to_text(), timestamp_s);
        let mut signature = Vec::with_capacity(COSIGNATURE_V1_SIGNATURE_LEN);
        signature.extend_from_slice(&timestamp_s.to_be_bytes());
        signature.extend_from_slice(&self.key.sign(&message).to_bytes());
        Ok(
            SignatureLine::new(self.name.clone(), self.key_id, signature)
                .expect("a cosignature is never empty"),
        )
    }
}

impl std::fmt::Debug for CosignatureSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosignatureSigner")
            .field("name", &self.name)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_message_is_the_spec_example() {
        // c2sp.org/tlog-cosignature, "Ed25519 signed message".
        let checkpoint =
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        let expected = "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n\
                        20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        assert_eq!(
            cosigned_message(checkpoint, 1_679_315_147),
            expected.as_bytes()
        );
    }

    #[test]
    fn timestamps_are_decimal_without_leading_zeroes() {
        assert_eq!(cosigned_message("x\n", 0), b"cosignature/v1\ntime 0\nx\n");
        assert_eq!(cosigned_message("x\n", 7), b"cosignature/v1\ntime 7\nx\n");
    }
}
