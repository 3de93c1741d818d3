//! Digest types.
//!
//! Two hash functions with separate jobs (ARCHITECTURE §3): SHA-256 for everything an
//! outsider verifies (the RFC 9162 evidence log, payload digests, C2SP checkpoints), and
//! BLAKE3 for identifiers that never leave the network (block ids, dedup keys).

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use sha2::Digest as _;

/// Length in bytes of both digest types.
pub const HASH_LEN: usize = 32;

macro_rules! digest_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
        pub struct $name(pub [u8; HASH_LEN]);

        impl $name {
            /// The all-zero value, used only as "no parent" / "no previous message".
            pub const ZERO: Self = Self([0; HASH_LEN]);

            /// The digest's bytes.
            pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
                &self.0
            }

            /// Lower-case hex, the form used in RPC and logs.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses 64 hex digits.
            pub fn from_hex(text: &str) -> Result<Self, HashParseError> {
                let bytes = hex::decode(text).map_err(|_| HashParseError::NotHex)?;
                Self::from_slice(&bytes)
            }

            /// Takes exactly 32 bytes.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, HashParseError> {
                let array: [u8; HASH_LEN] = bytes
                    .try_into()
                    .map_err(|_| HashParseError::WrongLength(bytes.len()))?;
                Ok(Self(array))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        /// Serialized as 64 lower-case hex digits, for RPC, config and bundles.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_hex())
            }
        }

        /// Read from 64 hex digits ([`Self::from_hex`]); any other length is refused before
        /// decoding.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct HexVisitor;

                impl serde::de::Visitor<'_> for HexVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "{} hex digits", 2 * HASH_LEN)
                    }

                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<$name, E> {
                        if text.len() != 2 * HASH_LEN {
                            return Err(E::invalid_length(text.len(), &self));
                        }
                        $name::from_hex(text).map_err(E::custom)
                    }
                }

                deserializer.deserialize_str(HexVisitor)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }
    };
}

digest_type!(
    /// A SHA-256 digest: log leaf and node hashes, tree roots, payload digests.
    Sha256Hash
);

digest_type!(
    /// A BLAKE3 digest: block ids, consensus value ids, dedup and storage keys.
    Blake3Hash
);

impl Sha256Hash {
    /// SHA-256 of `data`.
    pub fn digest(data: &[u8]) -> Self {
        Self(sha2::Sha256::digest(data).into())
    }
}

impl Blake3Hash {
    /// BLAKE3 of `data`.
    pub fn digest(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }
}

/// A digest given as text or bytes was not a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashParseError {
    /// The text was not hexadecimal.
    #[error("digest is not hexadecimal")]
    NotHex,
    /// The bytes were not 32 long.
    #[error("digest must be 32 bytes, got {0}")]
    WrongLength(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_uses_lower_case_hex() {
        let hash = Sha256Hash::digest(b"custos");
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{}\"", hash.to_hex()));
        assert_eq!(json, json.to_lowercase());
        assert_eq!(serde_json::from_str::<Sha256Hash>(&json).unwrap(), hash);

        let blake = Blake3Hash::digest(b"custos");
        let json = serde_json::to_string(&blake).unwrap();
        assert_eq!(serde_json::from_str::<Blake3Hash>(&json).unwrap(), blake);

        for bad in [
            "\"\"",
            "\"abcd\"",
            &format!("\"{}zz\"", &hash.to_hex()[2..]),
            "42",
        ] {
            assert!(serde_json::from_str::<Sha256Hash>(bad).is_err(), "{bad}");
        }
        let long = format!("\"{}00\"", hash.to_hex());
        assert!(serde_json::from_str::<Sha256Hash>(&long).is_err());
    }
}
