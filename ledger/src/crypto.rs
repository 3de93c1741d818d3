//! Ed25519 keys, key ids and domain-separated signatures.
//!
//! A signature always covers a [`DomainTag`] followed by the signed object's canonical
//! borsh bytes; [`Signed`] is the wire form `tag || body || signature` of such an object.
//! Verification is `verify_strict` (no small-order keys, canonical scalars); batch
//! verification is a fast path whose failure falls back to single checks to name the
//! bad signatures.
//!
//! ```
//! use custos_ledger::crypto::{SecretKey, Signed, Signable};
//! use custos_ledger::codec::{tags, DomainTag};
//!
//! #[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Debug, PartialEq, Clone)]
//! struct Greeting { text: String }
//! impl Signable for Greeting { const TAG: DomainTag = tags::MESSAGE; }
//!
//! let key = SecretKey::generate();
//! let signed = Signed::sign(Greeting { text: "hello".into() }, &key);
//! signed.verify(&key.public()).unwrap();
//! assert!(signed.verify(&SecretKey::generate().public()).is_err());
//! ```

use std::fmt;
use std::io::{self, Read};

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::codec::{DecodeError, DomainTag, encode, tags};
use crate::hash::Sha256Hash;

/// Ed25519 public key bytes. Validity as a curve point is checked when it is used
/// ([`PublicKey::verifying_key`]) and when keys are admitted to a membership.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct PublicKey(pub [u8; 32]);

/// Ed25519 signature bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

/// Short identifier of a public key: the first 8 bytes of
/// `SHA-256(borsh("custos/v1/key-id") || public key)`.
///
/// Key ids name authors in every message, so they are short; a membership refuses to
/// admit a key whose id collides with one it holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct KeyId(pub [u8; 8]);

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The public key bytes are not a usable Ed25519 key.
    #[error("public key {key} is not a valid Ed25519 key: {reason}")]
    InvalidPublicKey {
        /// Hex of the key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The signature does not verify under the key.
    #[error("signature does not verify under key {key_id}")]
    BadSignature {
        /// Key the signature was checked against.
        key_id: KeyId,
    },
    /// Text was not a key of the expected form.
    #[error("cannot parse {what}: {reason}")]
    Parse {
        /// What was being parsed.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
}

impl PublicKey {
    /// The key as an ed25519-dalek key, refusing invalid points and weak (small-order)
    /// keys, which would let one signature verify for many messages.
    pub fn verifying_key(&self) -> Result<VerifyingKey, CryptoError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| CryptoError::InvalidPublicKey {
            key: hex::encode(self.0),
            reason: "not a point on the curve",
        })?;
        if key.is_weak() {
            return Err(CryptoError::InvalidPublicKey {
                key: hex::encode(self.0),
                reason: "small-order (weak) key",
            });
        }
        Ok(key)
    }

    /// This key's id.
    pub fn key_id(&self) -> KeyId {
        let mut input = Vec::with_capacity(64);
        tags::KEY_ID
            .write(&mut input)
            .expect("writing to a Vec cannot fail");
        input.extend_from_slice(&self.0);
        let digest = Sha256Hash::digest(&input);
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest.0[..8]);
        KeyId(id)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, CryptoError> {
        let bytes = hex::decode(text.trim()).map_err(|e| CryptoError::Parse {
            what: "public key",
            reason: format!("not hex: {e}"),
        })?;
        let array: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| CryptoError::Parse {
            what: "public key",
            reason: format!("expected 32 bytes, got {}", b.len()),
        })?;
        Ok(Self(array))
    }
}

impl KeyId {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 16 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, CryptoError> {
        let bytes = hex::decode(text.trim()).map_err(|e| CryptoError::Parse {
            what: "key id",
            reason: format!("not hex: {e}"),
        })?;
        let array: [u8; 8] = bytes.try_into().map_err(|b: Vec<u8>| CryptoError::Parse {
            what: "key id",
            reason: format!("expected 8 bytes, got {}", b.len()),
        })?;
        Ok(Self(array))
    }
}

macro_rules! hex_text_impls {
    ($ty:ident, $len:expr) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($ty), hex::encode(self.0))
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(self.0))
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(d)?;
                let bytes = hex::decode(&text).map_err(|e| {
                    serde::de::Error::custom(format!("{}: not hex: {e}", stringify!($ty)))
                })?;
                let array: [u8; $len] = bytes.try_into().map_err(|b: Vec<u8>| {
                    serde::de::Error::custom(format!(
                        "{}: expected {} bytes, got {}",
                        stringify!($ty),
                        $len,
                        b.len()
                    ))
                })?;
                Ok($ty(array))
            }
        }
    };
}

hex_text_impls!(PublicKey, 32);
hex_text_impls!(Signature, 64);
hex_text_impls!(KeyId, 8);

/// An Ed25519 signing key. Its `Debug` output never shows the secret.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A new key from the operating system's randomness.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the operating system random source failed");
        Self::from_seed(&seed)
    }

    /// The key with this 32-byte seed (the Ed25519 "secret key").
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed, for writing key files.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `tag || body`.
    pub fn sign_tagged(&self, tag: DomainTag, body: &[u8]) -> Signature {
        Signature(self.0.sign(&tagged_bytes(tag, body)).to_bytes())
    }

    /// The ed25519-dalek key, for formats that sign without Custos tags (C2SP notes).
    pub fn signing_key(&self) -> &SigningKey {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", self.public())
    }
}

/// `borsh(tag) || body`: the exact bytes a Custos signature covers.
pub fn tagged_bytes(tag: DomainTag, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4 + tag.0.len() + body.len());
    tag.write(&mut bytes).expect("writing to a Vec cannot fail");
    bytes.extend_from_slice(body);
    bytes
}

/// Verifies a signature over `tag || body` strictly.
pub fn verify_tagged(
    key: &PublicKey,
    tag: DomainTag,
    body: &[u8],
    signature: &Signature,
) -> Result<(), CryptoError> {
    let verifying = key.verifying_key()?;
    let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
    verifying
        .verify_strict(&tagged_bytes(tag, body), &sig)
        .map_err(|_| CryptoError::BadSignature {
            key_id: key.key_id(),
        })
}

/// One signature to check in a batch: the exact signed bytes (already tagged), the
/// signature and the key.
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    /// Bytes the signature covers, including the domain tag (see [`tagged_bytes`]).
    pub signed_bytes: &'a [u8],
    /// The signature.
    pub signature: &'a Signature,
    /// The claimed signer.
    pub key: &'a PublicKey,
}

/// Verifies many signatures; returns the positions of those that fail (empty when all
/// verify).
///
/// The batch equation is checked first; only if it fails is each signature checked on
/// its own, so the common all-valid case costs one batch verification. Invalid keys
/// fail individually.
pub fn verify_batch(items: &[BatchItem<'_>]) -> Vec<usize> {
    // A batch holds many messages of few authors; decompressing a key costs about a
    // quarter of a verification, so each distinct key is decompressed once.
    let mut decompressed: std::collections::HashMap<&[u8; 32], VerifyingKey> =
        std::collections::HashMap::new();
    let keys: Result<Vec<VerifyingKey>, CryptoError> = items
        .iter()
        .map(|item| match decompressed.get(&item.key.0) {
            Some(key) => Ok(*key),
            None => {
                let key = item.key.verifying_key()?;
                decompressed.insert(&item.key.0, key);
                Ok(key)
            }
        })
        .collect();
    if let Ok(keys) = keys {
        let messages: Vec<&[u8]> = items.iter().map(|item| item.signed_bytes).collect();
        let signatures: Vec<ed25519_dalek::Signature> = items
            .iter()
            .map(|item| ed25519_dalek::Signature::from_bytes(&item.signature.0))
            .collect();
        if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
            return Vec::new();
        }
    }
    items
        .iter()
        .enumerate()
        .filter(|(_, item)| {
            let ok = item.key.verifying_key().is_ok_and(|key| {
                key.verify_strict(
                    item.signed_bytes,
                    &ed25519_dalek::Signature::from_bytes(&item.signature.0),
                )
                .is_ok()
            });
            !ok
        })
        .map(|(index, _)| index)
        .collect()
}

/// An object that is signed under its own domain tag.
pub trait Signable: BorshSerialize + BorshDeserialize {
    /// The tag this type's signatures and encodings carry; never shared with another type.
    const TAG: DomainTag;
}

/// A signed object on the wire: `borsh(tag) || borsh(body) || signature`.
///
/// The signature covers exactly the bytes before it, so the signed bytes are a prefix of
/// the encoding. Who signed is not part of this wrapper: the body names its author and
/// the caller looks the key up in the membership it trusts.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Signed<T> {
    /// The signed object.
    pub body: T,
    /// Signature over `tag || borsh(body)`.
    pub signature: Signature,
}

impl<T: Signable> Signed<T> {
    /// Signs `body` with `key`.
    pub fn sign(body: T, key: &SecretKey) -> Self {
        let signature = key.sign_tagged(T::TAG, &encode(&body));
        Self { body, signature }
    }

    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        tagged_bytes(T::TAG, &encode(&self.body))
    }

    /// Verifies the signature under `key`.
    pub fn verify(&self, key: &PublicKey) -> Result<(), CryptoError> {
        verify_tagged(key, T::TAG, &encode(&self.body), &self.signature)
    }
}

impl<T: Signable> BorshSerialize for Signed<T> {
    fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        T::TAG.write(writer)?;
        BorshSerialize::serialize(&self.body, writer)?;
        BorshSerialize::serialize(&self.signature, writer)
    }
}

impl<T: Signable> BorshDeserialize for Signed<T> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> io::Result<Self> {
        T::TAG.expect(reader)?;
        let body = T::deserialize_reader(reader)?;
        let signature = Signature::deserialize_reader(reader)?;
        Ok(Self { body, signature })
    }
}

/// Checks that decoded key bytes are a usable key, as a decoding error.
pub fn check_public_key(key: &PublicKey, what: &'static str) -> Result<(), DecodeError> {
    key.verifying_key()
        .map(|_| ())
        .map_err(|e| DecodeError::InvalidValue {
            what,
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode;

    #[derive(BorshSerialize, BorshDeserialize, Debug, PartialEq, Clone)]
    struct Note(u64);
    impl Signable for Note {
        const TAG: DomainTag = tags::MESSAGE;
    }

    #[derive(BorshSerialize, BorshDeserialize, Debug, PartialEq, Clone)]
    struct OtherNote(u64);
    impl Signable for OtherNote {
        const TAG: DomainTag = tags::VOTE;
    }

    #[test]
    fn signature_does_not_carry_over_to_another_domain() {
        let key = SecretKey::generate();
        let signed = Signed::sign(Note(7), &key);
        // Same body bytes, other tag: the signature must not verify.
        let moved = Signed {
            body: OtherNote(7),
            signature: signed.signature,
        };
        assert_eq!(
            moved.verify(&key.public()),
            Err(CryptoError::BadSignature {
                key_id: key.public().key_id()
            })
        );
    }

    #[test]
    fn decoding_checks_the_domain_tag() {
        let key = SecretKey::generate();
        let bytes = encode(&Signed::sign(Note(7), &key));
        assert_eq!(decode::<Signed<Note>>(&bytes, 1024).unwrap().body, Note(7));
        assert_eq!(
            decode::<Signed<OtherNote>>(&bytes, 1024),
            Err(DecodeError::WrongDomainTag {
                expected: "custos/v1/vote",
                found: "custos/v1/message".into()
            })
        );
    }

    #[test]
    fn tampered_body_fails() {
        let key = SecretKey::generate();
        let mut signed = Signed::sign(Note(7), &key);
        signed.body.0 = 8;
        assert!(signed.verify(&key.public()).is_err());
    }

    #[test]
    fn batch_names_exactly_the_bad_signatures() {
        let keys: Vec<SecretKey> = (0..8).map(|_| SecretKey::generate()).collect();
        let publics: Vec<PublicKey> = keys.iter().map(SecretKey::public).collect();
        let mut signed: Vec<Signed<Note>> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Signed::sign(Note(i as u64), k))
            .collect();
        let bytes: Vec<Vec<u8>> = signed.iter().map(Signed::signed_bytes).collect();
        let items = |signed: &[Signed<Note>]| -> Vec<usize> {
            let items: Vec<BatchItem<'_>> = signed
                .iter()
                .zip(&bytes)
                .zip(&publics)
                .map(|((s, b), k)| BatchItem {
                    signed_bytes: b,
                    signature: &s.signature,
                    key: k,
                })
                .collect();
            verify_batch(&items)
        };
        assert!(items(&signed).is_empty());
        signed[2].signature.0[0] ^= 1;
        signed[5].signature = signed[4].signature;
        assert_eq!(items(&signed), vec![2, 5]);
    }

    #[test]
    fn weak_and_invalid_keys_are_refused() {
        // The identity point is small-order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            PublicKey(identity).verifying_key(),
            Err(CryptoError::InvalidPublicKey {
                reason: "small-order (weak) key",
                ..
            })
        ));
        // y = 2 is not on the curve.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert!(PublicKey(off_curve).verifying_key().is_err());
    }

    #[test]
    fn key_ids_are_stable_and_hex_round_trips() {
        let key = SecretKey::from_seed(&[7; 32]).public();
        assert_eq!(key.key_id(), key.key_id());
        assert_eq!(
            KeyId::from_hex(&key.key_id().to_hex()).unwrap(),
            key.key_id()
        );
        assert_eq!(PublicKey::from_hex(&key.to_hex()).unwrap(), key);
        assert!(KeyId::from_hex("abcd").is_err());
    }
}
