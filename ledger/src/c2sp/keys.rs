//! Key names, key ids and the text forms of keys (c2sp.org/signed-note "Verifier keys").
//!
//! A verifier key (*vkey*) is `name+hex(key id)+base64(signature type || public key)`.
//! Signer keys use the same layout behind a `PRIVATE+KEY+` prefix with the Ed25519 seed in
//! place of the public key; the key id in both is computed from the *public* key, so a
//! signer key and its vkey carry the same id (the convention of golang.org/x/mod's
//! `sumdb/note`, which signed-note grew out of).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use super::limits::KEY_NAME_BYTES_MAX;

/// Signature type byte of plain Ed25519 note signatures (signed-note).
pub const SIGNATURE_TYPE_ED25519: u8 = 0x01;

/// Signature type byte of timestamped Ed25519 checkpoint cosignatures (tlog-cosignature/v1).
pub const SIGNATURE_TYPE_COSIGNATURE_V1: u8 = 0x04;

/// Prefix of a signer (private) key string.
pub const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// Length in bytes of an Ed25519 public key and of an Ed25519 seed.
const ED25519_KEY_LEN: usize = 32;

/// A key name as signed-note allows it: non-empty, no Unicode space, no `+`.
///
/// Control characters are refused too: signed notes may not contain any but newline, and
/// newline is a Unicode space.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct KeyName(String);

impl KeyName {
    /// Checks `name` against the signed-note rules.
    pub fn new(name: impl Into<String>) -> Result<Self, KeyNameError> {
        let name = name.into();
        if name.is_empty() {
            return Err(KeyNameError::Empty);
        }
        if let Some(c) = name.chars().find(|c| c.is_whitespace()) {
            return Err(KeyNameError::ContainsSpace { name, space: c });
        }
        if name.contains('+') {
            return Err(KeyNameError::ContainsPlus { name });
        }
        // signed-note forbids the ASCII control characters below U+0020 in notes.
        if let Some(c) = name.chars().find(|&c| c < ' ') {
            return Err(KeyNameError::ContainsControl { name, control: c });
        }
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a signed-note key name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyNameError {
    /// The name was empty.
    #[error("key name is empty; it must have at least one character")]
    Empty,
    /// The name contained a Unicode space.
    #[error("key name {name:?} contains the space {space:?}; key names must have no spaces")]
    ContainsSpace {
        /// The rejected name.
        name: String,
        /// The first space character found.
        space: char,
    },
    /// The name contained `+`, the vkey field separator.
    #[error("key name {name:?} contains '+'; key names must not, '+' separates vkey fields")]
    ContainsPlus {
        /// The rejected name.
        name: String,
    },
    /// The name contained a control character.
    #[error("key name {name:?} contains the control character {control:?}")]
    ContainsControl {
        /// The rejected name.
        name: String,
        /// The first control character found.
        control: char,
    },
}

/// The 4-byte key id that, with the key name, names a key in signature lines.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 4]);

impl KeyId {
    /// `SHA-256(name || 0x0A || signature type || public key)[:4]`, as signed-note
    /// recommends and as Ed25519 (0x01) and cosignature/v1 (0x04) keys require.
    pub fn compute(name: &KeyName, signature_type: u8, public_key: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(name.as_str().as_bytes());
        hasher.update([b'\n', signature_type]);
        hasher.update(public_key);
        let digest = hasher.finalize();
        Self([digest[0], digest[1], digest[2], digest[3]])
    }

    /// Eight lower-case hex digits, the form vkeys use.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly eight lower-case hex digits (signed-note: "fixed length lowercase").
    fn from_hex(text: &str) -> Result<Self, KeyError> {
        let well_formed = text.len() == 8
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(KeyError::KeyIdNotHex {
                text: text.to_owned(),
            });
        }
        let mut id = [0u8; 4];
        hex::decode_to_slice(text, &mut id).map_err(|_| KeyError::KeyIdNotHex {
            text: text.to_owned(),
        })?;
        Ok(Self(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

/// Why a key could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key name broke the signed-note rules.
    #[error("invalid key name: {0}")]
    Name(#[from] KeyNameError),
    /// The key name was longer than this implementation accepts.
    #[error("key name is {len} bytes; at most {max} are accepted")]
    NameTooLong {
        /// Length of the name in bytes.
        len: usize,
        /// The limit, [`KEY_NAME_BYTES_MAX`].
        max: usize,
    },
    /// A signer key string did not start with `PRIVATE+KEY+`.
    #[error("signer key must start with \"PRIVATE+KEY+\"")]
    MissingPrivateKeyPrefix,
    /// The string did not have the three `+`-separated fields.
    #[error("key must have three '+'-separated fields, name+keyid+base64key; found {fields}")]
    WrongFieldCount {
        /// Fields found.
        fields: usize,
    },
    /// The key id field was not eight lower-case hex digits.
    #[error("key id {text:?} must be exactly eight lower-case hex digits")]
    KeyIdNotHex {
        /// The rejected field.
        text: String,
    },
    /// The key field was not canonical standard base64.
    #[error("key material is not canonical standard base64 (RFC 4648 §4, with padding)")]
    KeyNotBase64,
    /// The key field held no bytes at all.
    #[error("key material is empty; it must start with a signature type byte")]
    EmptyKey,
    /// The key was of another signature type than the one asked for.
    #[error("key has signature type {got:#04x}; expected {expected:#04x}")]
    WrongSignatureType {
        /// The type this key kind needs.
        expected: u8,
        /// The type byte found.
        got: u8,
    },
    /// The key material was not 32 bytes.
    #[error("Ed25519 key material must be 32 bytes after the type byte; got {got}")]
    WrongKeyLength {
        /// Bytes found after the type byte.
        got: usize,
    },
    /// The key id in the string is not the one the name and key give.
    #[error("key id {declared} does not match {computed}, computed from the name and key")]
    KeyIdMismatch {
        /// The id written in the key string.
        declared: KeyId,
        /// The id the name, type and public key hash to.
        computed: KeyId,
    },
    /// The public key is not a valid Ed25519 point encoding.
    #[error("public key is not a valid Ed25519 point encoding")]
    InvalidPublicKey,
    /// The public key has small order, so signatures under it prove nothing.
    #[error("public key has small order: it would accept forged signatures")]
    WeakPublicKey,
    /// The operating system's random number generator failed.
    #[error("could not get randomness for a new key: {0}")]
    Randomness(getrandom::Error),
}

/// Checks the length limit that applies to names of keys (not of signature lines).
pub(super) fn check_key_name(name: &KeyName) -> Result<(), KeyError> {
    let len = name.as_str().len();
    if len > KEY_NAME_BYTES_MAX {
        return Err(KeyError::NameTooLong {
            len,
            max: KEY_NAME_BYTES_MAX,
        });
    }
    Ok(())
}

/// Splits `name+keyid+base64(type || key)` and checks everything but the id's value.
fn split_key_string(
    text: &str,
    signature_type: u8,
) -> Result<(KeyName, KeyId, [u8; ED25519_KEY_LEN]), KeyError> {
    // The name has no '+' and the id is hex, so the first two '+' are separators; base64
    // may itself contain '+'.
    let mut fields = text.splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(KeyError::WrongFieldCount {
            fields: text.split('+').count(),
        });
    };
    let name = KeyName::new(name)?;
    check_key_name(&name)?;
    let id = KeyId::from_hex(id)?;
    let key = STANDARD.decode(key).map_err(|_| KeyError::KeyNotBase64)?;
    let Some((&got, material)) = key.split_first() else {
        return Err(KeyError::EmptyKey);
    };
    if got != signature_type {
        return Err(KeyError::WrongSignatureType {
            expected: signature_type,
            got,
        });
    }
    let material: [u8; ED25519_KEY_LEN] =
        material.try_into().map_err(|_| KeyError::WrongKeyLength {
            got: material.len(),
        })?;
    Ok((name, id, material))
}

/// Turns 32 bytes into a public key fit to verify with: a valid point of large order.
pub(super) fn verifying_key_from_bytes(
    bytes: &[u8; ED25519_KEY_LEN],
) -> Result<VerifyingKey, KeyError> {
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::InvalidPublicKey)?;
    if key.is_weak() {
        return Err(KeyError::WeakPublicKey);
    }
    Ok(key)
}

/// Reads a verifier key of `signature_type`, checking its id against its name and key.
pub(super) fn parse_verifier_key(
    text: &str,
    signature_type: u8,
) -> Result<(KeyName, KeyId, VerifyingKey), KeyError> {
    let (name, declared, public) = split_key_string(text, signature_type)?;
    let computed = KeyId::compute(&name, signature_type, &public);
    if declared != computed {
        return Err(KeyError::KeyIdMismatch { declared, computed });
    }
    let key = verifying_key_from_bytes(&public)?;
    Ok((name, computed, key))
}

/// Reads a signer key of `signature_type`, checking its id against the derived public key.
pub(super) fn parse_signer_key(
    text: &str,
    signature_type: u8,
) -> Result<(KeyName, KeyId, SigningKey), KeyError> {
    let rest = text
        .strip_prefix(PRIVATE_KEY_PREFIX)
        .ok_or(KeyError::MissingPrivateKeyPrefix)?;
    let (name, declared, seed) = split_key_string(rest, signature_type)?;
    let key = SigningKey::from_bytes(&seed);
    let computed = KeyId::compute(&name, signature_type, key.verifying_key().as_bytes());
    if declared != computed {
        return Err(KeyError::KeyIdMismatch { declared, computed });
    }
    Ok((name, computed, key))
}

/// `name+hex(id)+base64(type || public key)`.
pub(super) fn format_verifier_key(
    name: &KeyName,
    id: KeyId,
    signature_type: u8,
    key: &VerifyingKey,
) -> String {
    let mut material = Vec::with_capacity(1 + ED25519_KEY_LEN);
    material.push(signature_type);
    material.extend_from_slice(key.as_bytes());
    format!("{name}+{id}+{}", STANDARD.encode(material))
}

/// `PRIVATE+KEY+name+hex(id)+base64(type || seed)`.
pub(super) fn format_signer_key(
    name: &KeyName,
    id: KeyId,
    signature_type: u8,
    key: &SigningKey,
) -> String {
    let mut material = Vec::with_capacity(1 + ED25519_KEY_LEN);
    material.push(signature_type);
    material.extend_from_slice(key.as_bytes());
    format!(
        "{PRIVATE_KEY_PREFIX}{name}+{id}+{}",
        STANDARD.encode(material)
    )
}

/// A fresh Ed25519 key from the operating system's randomness.
pub(super) fn random_signing_key() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; ED25519_KEY_LEN];
    getrandom::fill(&mut seed).map_err(KeyError::Randomness)?;
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_follow_signed_note_rules() {
        assert!(KeyName::new("example.com/log42").is_ok());
        assert!(KeyName::new("oid/1.3.6.1.4.1.44363.47.1").is_ok());
        assert_eq!(KeyName::new(""), Err(KeyNameError::Empty));
        for bad in [
            "a b",
            "a\tb",
            "a\nb",
            "a\u{a0}b",
            "a\u{3000}b",
            "a\u{2028}b",
        ] {
            assert!(
                matches!(KeyName::new(bad), Err(KeyNameError::ContainsSpace { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            KeyName::new("a+b"),
            Err(KeyNameError::ContainsPlus { .. })
        ));
        assert!(matches!(
            KeyName::new("a\u{1}b"),
            Err(KeyNameError::ContainsControl { .. })
        ));
    }

    #[test]
    fn key_id_hex_is_fixed_length_lower_case() {
        assert_eq!(
            KeyId::from_hex("530d903a").unwrap(),
            KeyId([0x53, 0x0d, 0x90, 0x3a])
        );
        for bad in [
            "530D903A",
            "530d903",
            "530d903a0",
            "530d903g",
            "+30d903a",
            "",
        ] {
            assert!(
                matches!(KeyId::from_hex(bad), Err(KeyError::KeyIdNotHex { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn key_id_of_the_signed_note_example_key() {
        // c2sp.org/signed-note, "Example": example.com/foo+530d903a+AekyeRrm...
        let material = STANDARD
            .decode("AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
            .unwrap();
        let name = KeyName::new("example.com/foo").unwrap();
        let id = KeyId::compute(&name, material[0], &material[1..]);
        assert_eq!(id.to_hex(), "530d903a");
    }

    #[test]
    fn the_same_key_has_different_ids_per_signature_type() {
        let name = KeyName::new("witness.example/w1").unwrap();
        let key = [7u8; 32];
        assert_ne!(
            KeyId::compute(&name, SIGNATURE_TYPE_ED25519, &key),
            KeyId::compute(&name, SIGNATURE_TYPE_COSIGNATURE_V1, &key)
        );
    }

    #[test]
    fn small_order_public_keys_are_refused() {
        // The identity point: every signature with R = identity and S = 0 "verifies".
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            verifying_key_from_bytes(&identity),
            Err(KeyError::WeakPublicKey)
        );
    }
}
