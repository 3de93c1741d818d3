//! Canonical encoding: borsh, decoded with bounds.
//!
//! Everything Custos signs or hashes is borsh-encoded (ARCHITECTURE §3). Borsh is
//! canonical (one encoding per value), but its decoder trusts length prefixes; Custos
//! decodes bytes from untrusted peers, collectors and RPC callers, so:
//!
//! - every variable-length field is a [`Text`], [`Bytes`] or [`List`] that names its
//!   [`Limit`] and refuses a longer length *before* allocating;
//! - [`decode`] refuses inputs over a total size and trailing bytes;
//! - top-level signed objects start with a domain tag that decoding checks
//!   ([`DomainTag`]), so a vote can never be read as a message.
//!
//! ```
//! use custos_ledger::codec::{decode, encode, DecodeError, Text};
//! use custos_ledger::limits::HostLen;
//!
//! let host: Text<HostLen> = Text::new("web-01.example").unwrap();
//! let bytes = encode(&host);
//! assert_eq!(decode::<Text<HostLen>>(&bytes, 1024).unwrap(), host);
//!
//! let mut with_junk = bytes.clone();
//! with_junk.push(0);
//! assert_eq!(
//!     decode::<Text<HostLen>>(&with_junk, 1024),
//!     Err(DecodeError::TrailingBytes { count: 1 })
//! );
//! ```

use std::fmt;
use std::io::{self, Read};
use std::marker::PhantomData;

use borsh::{BorshDeserialize, BorshSerialize};

use crate::limits::Limit;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The whole input is larger than the object may be.
    #[error("{what} is {len} bytes; the limit is {max}")]
    InputTooLarge {
        /// What was being decoded.
        what: &'static str,
        /// Input length.
        len: usize,
        /// Maximum accepted.
        max: usize,
    },
    /// A length prefix is over the field's limit.
    #[error("{what} has length {len}; the limit is {max}")]
    FieldTooLong {
        /// The bounded field.
        what: &'static str,
        /// Length claimed by the input.
        len: usize,
        /// Maximum accepted.
        max: usize,
    },
    /// Bytes were left over after a complete value.
    #[error("{count} trailing bytes after a complete value; the encoding must end there")]
    TrailingBytes {
        /// Leftover bytes.
        count: usize,
    },
    /// The domain tag is not the one this object type carries.
    #[error("wrong domain tag: expected {expected:?}, found {found:?}")]
    WrongDomainTag {
        /// Tag of the type being decoded.
        expected: &'static str,
        /// Tag in the input (lossy UTF-8).
        found: String,
    },
    /// A value is outside its allowed set (an enum tag, a level, a key).
    #[error("invalid {what}: {reason}")]
    InvalidValue {
        /// The field.
        what: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The input ended early or is otherwise not valid borsh.
    #[error("malformed encoding: {0}")]
    Malformed(String),
}

impl DecodeError {
    /// Wraps this error for transport through borsh's `io::Error`.
    pub fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }

    /// Recovers a [`DecodeError`] from borsh's `io::Error`, keeping precise errors raised
    /// by bounded fields and classifying borsh's own.
    pub fn from_io(err: io::Error) -> Self {
        if let Some(inner) = err.get_ref().and_then(|e| e.downcast_ref::<DecodeError>()) {
            return inner.clone();
        }
        DecodeError::Malformed(err.to_string())
    }
}

/// Borsh-encodes a value. Encoding to memory cannot fail.
pub fn encode<T: BorshSerialize + ?Sized>(value: &T) -> Vec<u8> {
    borsh::to_vec(value).expect("borsh encoding into a Vec cannot fail")
}

/// Decodes exactly one `T` from `bytes`, refusing inputs longer than `max_len` and
/// trailing bytes.
pub fn decode<T: BorshDeserialize>(bytes: &[u8], max_len: usize) -> Result<T, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::InputTooLarge {
            what: std::any::type_name::<T>()
                .rsplit("::")
                .next()
                .unwrap_or("value"),
            len: bytes.len(),
            max: max_len,
        });
    }
    let mut rest = bytes;
    let value = T::deserialize(&mut rest).map_err(DecodeError::from_io)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes { count: rest.len() });
    }
    Ok(value)
}

/// Reads a borsh `u32` length prefix and checks it against `L`.
fn read_len<L: Limit, R: Read>(reader: &mut R) -> io::Result<usize> {
    let len = u32::deserialize_reader(reader)? as usize;
    if len > L::MAX {
        return Err(DecodeError::FieldTooLong {
            what: L::WHAT,
            len,
            max: L::MAX,
        }
        .into_io());
    }
    Ok(len)
}

fn read_exact_vec<R: Read>(reader: &mut R, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    reader.read_exact(&mut buf)?;
    Ok(buf)
}

fn write_len<W: io::Write>(writer: &mut W, len: usize) -> io::Result<()> {
    let len = u32::try_from(len).map_err(|_| io::Error::other("length does not fit in u32"))?;
    len.serialize(writer)
}

/// Error from the constructors of bounded fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} has length {len}; the limit is {max}")]
pub struct TooLong {
    /// The bounded field.
    pub what: &'static str,
    /// Length given.
    pub len: usize,
    /// Maximum accepted.
    pub max: usize,
}

fn check_len<L: Limit>(len: usize) -> Result<(), TooLong> {
    if len > L::MAX {
        return Err(TooLong {
            what: L::WHAT,
            len,
            max: L::MAX,
        });
    }
    Ok(())
}

/// UTF-8 text of at most `L::MAX` bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Text<L> {
    value: String,
    limit: PhantomData<L>,
}

impl<L: Limit> Text<L> {
    /// Takes `value` if it is within the limit.
    pub fn new(value: impl Into<String>) -> Result<Self, TooLong> {
        let value = value.into();
        check_len::<L>(value.len())?;
        Ok(Self {
            value,
            limit: PhantomData,
        })
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl<L> fmt::Debug for Text<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.value, f)
    }
}

impl<L> fmt::Display for Text<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl<L> std::ops::Deref for Text<L> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.value
    }
}

impl<L> BorshSerialize for Text<L> {
    fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        write_len(writer, self.value.len())?;
        writer.write_all(self.value.as_bytes())
    }
}

impl<L: Limit> BorshDeserialize for Text<L> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> io::Result<Self> {
        let len = read_len::<L, R>(reader)?;
        let bytes = read_exact_vec(reader, len)?;
        let value = String::from_utf8(bytes).map_err(|_| {
            DecodeError::InvalidValue {
                what: L::WHAT,
                reason: "not valid UTF-8".into(),
            }
            .into_io()
        })?;
        Ok(Self {
            value,
            limit: PhantomData,
        })
    }
}

impl<L> serde::Serialize for Text<L> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.value)
    }
}

impl<'de, L: Limit> serde::Deserialize<'de> for Text<L> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = <String as serde::Deserialize>::deserialize(d)?;
        Self::new(value).map_err(serde::de::Error::custom)
    }
}

/// A byte string of at most `L::MAX` bytes. Serialized to JSON as standard base64.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes<L> {
    value: Vec<u8>,
    limit: PhantomData<L>,
}

impl<L: Limit> Bytes<L> {
    /// Takes `value` if it is within the limit.
    pub fn new(value: impl Into<Vec<u8>>) -> Result<Self, TooLong> {
        let value = value.into();
        check_len::<L>(value.len())?;
        Ok(Self {
            value,
            limit: PhantomData,
        })
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.value
    }

    /// Gives up the bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.value
    }
}

impl<L> fmt::Debug for Bytes<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.value.len())
    }
}

impl<L> std::ops::Deref for Bytes<L> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.value
    }
}

impl<L> BorshSerialize for Bytes<L> {
    fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        write_len(writer, self.value.len())?;
        writer.write_all(&self.value)
    }
}

impl<L: Limit> BorshDeserialize for Bytes<L> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> io::Result<Self> {
        let len = read_len::<L, R>(reader)?;
        Ok(Self {
            value: read_exact_vec(reader, len)?,
            limit: PhantomData,
        })
    }
}

impl<L> serde::Serialize for Bytes<L> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine as _;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.value))
    }
}

impl<'de, L: Limit> serde::Deserialize<'de> for Bytes<L> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine as _;
        let text = <String as serde::Deserialize>::deserialize(d)?;
        // Refuse before decoding: base64 is 4/3 the size of the bytes.
        if text.len() / 4 * 3 > L::MAX + 3 {
            return Err(serde::de::Error::custom(TooLong {
                what: L::WHAT,
                len: text.len() / 4 * 3,
                max: L::MAX,
            }));
        }
        let value = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("{}: invalid base64: {e}", L::WHAT)))?;
        Self::new(value).map_err(serde::de::Error::custom)
    }
}

/// A list of at most `L::MAX` elements.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct List<T, L> {
    items: Vec<T>,
    limit: PhantomData<L>,
}

impl<T, L> Default for List<T, L> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            limit: PhantomData,
        }
    }
}

impl<T, L: Limit> List<T, L> {
    /// Takes `items` if there are not too many.
    pub fn new(items: Vec<T>) -> Result<Self, TooLong> {
        check_len::<L>(items.len())?;
        Ok(Self {
            items,
            limit: PhantomData,
        })
    }

    /// The empty list.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Gives up the elements.
    pub fn into_vec(self) -> Vec<T> {
        self.items
    }
}

impl<T: fmt::Debug, L> fmt::Debug for List<T, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.items).finish()
    }
}

impl<T, L> std::ops::Deref for List<T, L> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items
    }
}

impl<T: BorshSerialize, L> BorshSerialize for List<T, L> {
    fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        write_len(writer, self.items.len())?;
        for item in &self.items {
            item.serialize(writer)?;
        }
        Ok(())
    }
}

impl<T: BorshDeserialize, L: Limit> BorshDeserialize for List<T, L> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> io::Result<Self> {
        let len = read_len::<L, R>(reader)?;
        // Grow as elements arrive rather than trusting `len` for the allocation: the
        // limit bounds the count, not the size of each element.
        let mut items = Vec::with_capacity(len.min(1024));
        for _ in 0..len {
            items.push(T::deserialize_reader(reader)?);
        }
        Ok(Self {
            items,
            limit: PhantomData,
        })
    }
}

impl<T: serde::Serialize, L> serde::Serialize for List<T, L> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.items.serialize(s)
    }
}

impl<'de, T: serde::Deserialize<'de>, L: Limit> serde::Deserialize<'de> for List<T, L> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = <Vec<T> as serde::Deserialize>::deserialize(d)?;
        Self::new(items).map_err(serde::de::Error::custom)
    }
}

/// A domain-separation tag: the first field of every top-level signed or hashed object.
///
/// Signatures cover `tag || canonical bytes`, and the tag is part of the encoding, so
/// bytes of one object type can never be verified or decoded as another. Tags are
/// never reused; new versions get new tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainTag(pub &'static str);

/// Longest tag; tags are short ASCII like `custos/v1/message`.
const MAX_TAG_LEN: usize = 64;

impl DomainTag {
    /// Writes the tag as a borsh string.
    pub fn write<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        write_len(writer, self.0.len())?;
        writer.write_all(self.0.as_bytes())
    }

    /// Reads a tag and checks that it is this one.
    pub fn expect<R: Read>(&self, reader: &mut R) -> io::Result<()> {
        let len = u32::deserialize_reader(reader)? as usize;
        if len > MAX_TAG_LEN {
            return Err(DecodeError::WrongDomainTag {
                expected: self.0,
                found: format!("<{len} bytes>"),
            }
            .into_io());
        }
        let found = read_exact_vec(reader, len)?;
        if found != self.0.as_bytes() {
            return Err(DecodeError::WrongDomainTag {
                expected: self.0,
                found: String::from_utf8_lossy(&found).into_owned(),
            }
            .into_io());
        }
        Ok(())
    }
}

/// Domain tags, all in one place so none is reused.
pub mod tags {
    use super::DomainTag;

    /// A collector's or organisation's signed security message.
    pub const MESSAGE: DomainTag = DomainTag("custos/v1/message");
    /// A consensus vote (prevote or precommit).
    pub const VOTE: DomainTag = DomainTag("custos/v1/vote");
    /// A consensus block proposal.
    pub const PROPOSAL: DomainTag = DomainTag("custos/v1/proposal");
    /// A block header, hashed into the block id.
    pub const BLOCK_HEADER: DomainTag = DomainTag("custos/v1/block-header");
    /// A block body, hashed into the header.
    pub const BLOCK_BODY: DomainTag = DomainTag("custos/v1/block-body");
    /// A public key, hashed into its key id.
    pub const KEY_ID: DomainTag = DomainTag("custos/v1/key-id");
    /// A genesis document, hashed into the genesis hash.
    pub const GENESIS: DomainTag = DomainTag("custos/v1/genesis");
    /// A commit certificate.
    pub const COMMIT: DomainTag = DomainTag("custos/v1/commit");
    /// A stored block (header, body and certificate).
    pub const BLOCK: DomainTag = DomainTag("custos/v1/block");
    /// An organisation's JSON-RPC read credential.
    pub const RPC_TOKEN: DomainTag = DomainTag("custos/v1/rpc-token");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{AttackIdCount, AttackIdLen, HostLen};

    #[test]
    fn text_over_limit_is_refused_before_reading_the_body() {
        let mut bytes = encode(&(u32::try_from(HostLen::MAX).unwrap() + 1));
        // Only the prefix: the decoder must refuse on the length alone.
        let err = decode::<Text<HostLen>>(&bytes, 1 << 20).unwrap_err();
        assert_eq!(
            err,
            DecodeError::FieldTooLong {
                what: "host",
                len: 256,
                max: 255
            }
        );
        bytes.extend(std::iter::repeat_n(b'a', 256));
        assert!(matches!(
            decode::<Text<HostLen>>(&bytes, 1 << 20),
            Err(DecodeError::FieldTooLong { what: "host", .. })
        ));
    }

    #[test]
    fn text_at_limit_round_trips() {
        let text = Text::<HostLen>::new("h".repeat(HostLen::MAX)).unwrap();
        assert_eq!(
            decode::<Text<HostLen>>(&encode(&text), 1 << 20).unwrap(),
            text
        );
        assert!(Text::<HostLen>::new("h".repeat(HostLen::MAX + 1)).is_err());
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let mut bytes = encode(&2u32);
        bytes.extend([0xff, 0xfe]);
        assert!(matches!(
            decode::<Text<HostLen>>(&bytes, 64),
            Err(DecodeError::InvalidValue { what: "host", .. })
        ));
    }

    #[test]
    fn list_count_over_limit_is_refused() {
        let mut bytes = encode(&(u32::try_from(AttackIdCount::MAX).unwrap() + 1));
        bytes.extend([0u8; 4]);
        assert!(matches!(
            decode::<List<Text<AttackIdLen>, AttackIdCount>>(&bytes, 1 << 20),
            Err(DecodeError::FieldTooLong {
                what: "ATT&CK id list",
                len: 33,
                max: 32
            })
        ));
    }

    #[test]
    fn truncated_input_is_malformed() {
        let text = Text::<HostLen>::new("web-01").unwrap();
        let bytes = encode(&text);
        assert!(matches!(
            decode::<Text<HostLen>>(&bytes[..bytes.len() - 1], 64),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn input_over_total_limit_is_refused() {
        let text = Text::<HostLen>::new("web-01").unwrap();
        let bytes = encode(&text);
        assert!(matches!(
            decode::<Text<HostLen>>(&bytes, 4),
            Err(DecodeError::InputTooLarge {
                len: 10,
                max: 4,
                ..
            })
        ));
    }

    #[test]
    fn domain_tag_mismatch_names_both_tags() {
        let mut bytes = Vec::new();
        tags::VOTE.write(&mut bytes).unwrap();
        let err = tags::MESSAGE.expect(&mut bytes.as_slice()).unwrap_err();
        assert_eq!(
            DecodeError::from_io(err),
            DecodeError::WrongDomainTag {
                expected: "custos/v1/message",
                found: "custos/v1/vote".into()
            }
        );
    }
}
