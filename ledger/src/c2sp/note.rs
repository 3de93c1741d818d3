//! Signed notes (c2sp.org/signed-note) and plain Ed25519 note keys (signature type 0x01).
//!
//! A note is a text ending in a newline, a blank line, and one or more signature lines
//! `— <key name> base64(key id || signature)`. The text is everything before the *last*
//! blank line, so the text itself may contain blank lines.
//!
//! Verification ([`Note::verify`]) follows the spec's rules for a set of known keys:
//! - a line whose (name, key id) matches no known key is ignored, even if one of the two
//!   matches;
//! - a line that matches a known key must verify, and if it does not the whole note is
//!   rejected (the spec's SHOULD; tlog-witness likewise calls such a note malformed);
//! - the note is rejected unless at least one known key's signature verifies;
//! - several lines of the same key (duplicates) are each checked and count once.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use super::keys::{
    self, KeyError, KeyId, KeyName, KeyNameError, SIGNATURE_TYPE_ED25519, check_key_name,
};
use super::limits::{NOTE_BYTES_MAX, NOTE_SIGNATURES_MAX};

/// Start of every signature line: an em dash (U+2014) and a space.
pub const SIGNATURE_LINE_PREFIX: &str = "\u{2014} ";

/// Bytes of the key id at the start of every decoded signature.
const KEY_ID_LEN: usize = 4;

/// Length of an Ed25519 signature.
const ED25519_SIGNATURE_LEN: usize = 64;

/// One signature line of a note: who signed (name and key id) and the signature bytes,
/// which mean something only to a verifier that knows the key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignatureLine {
    name: KeyName,
    key_id: KeyId,
    signature: Vec<u8>,
}

impl SignatureLine {
    /// A line for `signature` (without the key id, which is prepended when encoded).
    pub fn new(name: KeyName, key_id: KeyId, signature: Vec<u8>) -> Result<Self, NoteError> {
        if signature.is_empty() {
            return Err(NoteError::EmptySignature { name });
        }
        Ok(Self {
            name,
            key_id,
            signature,
        })
    }

    /// The signer's key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The signer's key id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The signature bytes after the key id.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// True when the line names the key `name` with id `key_id`.
    pub fn is_from(&self, name: &KeyName, key_id: KeyId) -> bool {
        self.key_id == key_id && &self.name == name
    }

    /// The line as it appears in a note, with its newline.
    pub fn encode(&self) -> String {
        let mut blob = Vec::with_capacity(KEY_ID_LEN + self.signature.len());
        blob.extend_from_slice(&self.key_id.0);
        blob.extend_from_slice(&self.signature);
        format!(
            "{SIGNATURE_LINE_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(blob)
        )
    }

    fn encoded_len(&self) -> usize {
        SIGNATURE_LINE_PREFIX.len()
            + self.name.as_str().len()
            + 1
            + (KEY_ID_LEN + self.signature.len()).div_ceil(3) * 4
            + 1
    }

    /// Parses one line without its newline; `line` is its 1-based position among the
    /// signature lines, for error messages.
    fn parse(text: &str, line: usize) -> Result<Self, NoteError> {
        let rest = text
            .strip_prefix(SIGNATURE_LINE_PREFIX)
            .ok_or(NoteError::SignatureLineMissingDash { line })?;
        let (name, signature) = rest
            .split_once(' ')
            .ok_or(NoteError::SignatureLineMissingSpace { line })?;
        let name = KeyName::new(name)
            .map_err(|source| NoteError::SignatureLineBadName { line, source })?;
        let mut blob = STANDARD
            .decode(signature)
            .map_err(|_| NoteError::SignatureNotBase64 { line })?;
        if blob.len() <= KEY_ID_LEN {
            return Err(NoteError::SignatureTooShort {
                line,
                len: blob.len(),
            });
        }
        let signature = blob.split_off(KEY_ID_LEN);
        let key_id = KeyId([blob[0], blob[1], blob[2], blob[3]]);
        Ok(Self {
            name,
            key_id,
            signature,
        })
    }
}

/// A signed note: a text ending in a newline, a blank line, and one or more signature lines
/// `— <key name> base64(key id || signature)`. The text runs to the *last* blank line, so
/// it may itself contain blank lines.
///
/// Every `Note` value is a well-formed signed note: valid text, 1 to
/// [`NOTE_SIGNATURES_MAX`] signature lines, at most [`NOTE_BYTES_MAX`] bytes encoded. So
/// [`Note::encode`] cannot fail, and `Note::parse(note.encode())` gives `note` back (the
/// encoding is canonical: parsing accepts only canonical base64).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Note {
    text: String,
    signatures: Vec<SignatureLine>,
}

impl Note {
    /// A note of `text` signed with `signatures`.
    pub fn new(text: impl Into<String>, signatures: Vec<SignatureLine>) -> Result<Self, NoteError> {
        let text = text.into();
        check_text(&text)?;
        if signatures.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let note = Self { text, signatures };
        note.check_size()?;
        Ok(note)
    }

    /// Parses a signed note, rejecting anything the spec does not allow.
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        if bytes.len() > NOTE_BYTES_MAX {
            return Err(NoteError::TooLarge {
                size: bytes.len(),
                max: NOTE_BYTES_MAX,
            });
        }
        let note = std::str::from_utf8(bytes).map_err(|e| NoteError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        check_no_control(note)?;
        let split = note
            .rfind("\n\n")
            .ok_or(NoteError::MissingSignatureSeparator)?;
        let (text, block) = (&note[..=split], &note[split + 2..]);
        if block.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let Some(block) = block.strip_suffix('\n') else {
            return Err(NoteError::SignatureLineUnterminated);
        };
        let count = block.split('\n').count();
        if count > NOTE_SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures {
                count,
                max: NOTE_SIGNATURES_MAX,
            });
        }
        let signatures = block
            .split('\n')
            .enumerate()
            .map(|(i, line)| SignatureLine::parse(line, i + 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The signed text, ending in a newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in note order.
    pub fn signatures(&self) -> &[SignatureLine] {
        &self.signatures
    }

    /// Adds `line`, replacing any line of the same key name and id (re-signing must not
    /// leave a stale signature behind).
    pub fn add_signature(&mut self, line: SignatureLine) -> Result<(), NoteError> {
        let mut signatures: Vec<SignatureLine> = self
            .signatures
            .iter()
            .filter(|old| !old.is_from(&line.name, line.key_id))
            .cloned()
            .collect();
        signatures.push(line);
        if signatures.len() > NOTE_SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures {
                count: signatures.len(),
                max: NOTE_SIGNATURES_MAX,
            });
        }
        let candidate = Self {
            text: self.text.clone(),
            signatures,
        };
        candidate.check_size()?;
        *self = candidate;
        Ok(())
    }

    /// The note's bytes: text, blank line, signature lines.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.encoded_len());
        out.push_str(&self.text);
        out.push('\n');
        for line in &self.signatures {
            out.push_str(&line.encode());
        }
        out
    }

    fn encoded_len(&self) -> usize {
        self.text.len()
            + 1
            + self
                .signatures
                .iter()
                .map(SignatureLine::encoded_len)
                .sum::<usize>()
    }

    fn check_size(&self) -> Result<(), NoteError> {
        if self.signatures.len() > NOTE_SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures {
                count: self.signatures.len(),
                max: NOTE_SIGNATURES_MAX,
            });
        }
        let size = self.encoded_len();
        if size > NOTE_BYTES_MAX {
            return Err(NoteError::TooLarge {
                size,
                max: NOTE_BYTES_MAX,
            });
        }
        Ok(())
    }

    /// Verifies the note's Ed25519 signatures against `verifiers`, the keys the caller
    /// trusts, and returns the keys that signed, each once, in the order their first line
    /// appears.
    ///
    /// Lines of unknown keys are ignored. A line of a known key that does not verify fails
    /// the whole note with [`NoteError::SignatureInvalid`], and a note with no verified
    /// line fails with [`NoteError::NoKnownSignature`]. Two verifiers with the same name
    /// and key id make any line of that key [`NoteError::AmbiguousKey`].
    pub fn verify<'v>(
        &self,
        verifiers: &'v [NoteVerifier],
    ) -> Result<Vec<&'v NoteVerifier>, NoteError> {
        let mut signed: Vec<&NoteVerifier> = Vec::new();
        for line in &self.signatures {
            let mut matching = verifiers.iter().filter(|v| line.is_from(&v.name, v.key_id));
            let Some(verifier) = matching.next() else {
                continue;
            };
            if matching.next().is_some() {
                return Err(NoteError::AmbiguousKey {
                    name: line.name.clone(),
                    key_id: line.key_id,
                });
            }
            if !verifier.verifies(self.text.as_bytes(), &line.signature) {
                return Err(NoteError::SignatureInvalid {
                    name: line.name.clone(),
                    key_id: line.key_id,
                });
            }
            if !signed.iter().any(|seen| std::ptr::eq(*seen, verifier)) {
                signed.push(verifier);
            }
        }
        if signed.is_empty() {
            return Err(NoteError::NoKnownSignature {
                lines: self.signatures.len(),
            });
        }
        Ok(signed)
    }
}

/// Checks the rules for note text: non-empty, ends in a newline, no control characters
/// other than newline, and small enough to fit in a note.
pub(super) fn check_text(text: &str) -> Result<(), NoteError> {
    if text.len() > NOTE_BYTES_MAX {
        return Err(NoteError::TooLarge {
            size: text.len(),
            max: NOTE_BYTES_MAX,
        });
    }
    if !text.ends_with('\n') {
        return Err(NoteError::TextNotNewlineTerminated);
    }
    check_no_control(text)
}

/// signed-note: "MUST NOT contain any ASCII control characters (those below U+0020) other
/// than newline".
fn check_no_control(text: &str) -> Result<(), NoteError> {
    match text.bytes().position(|b| b < 0x20 && b != b'\n') {
        Some(offset) => Err(NoteError::ControlCharacter {
            offset,
            byte: text.as_bytes()[offset],
        }),
        None => Ok(()),
    }
}

/// Why a signed note was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note (or its text) exceeds [`NOTE_BYTES_MAX`].
    #[error("note is {size} bytes; at most {max} are accepted")]
    TooLarge {
        /// Size found.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The note was not UTF-8.
    #[error("note is not valid UTF-8 (valid up to byte {valid_up_to})")]
    NotUtf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// The note contained a control character other than newline.
    #[error("note has control character {byte:#04x} at byte {offset}; only newline is allowed")]
    ControlCharacter {
        /// Byte offset of the character.
        offset: usize,
        /// The character.
        byte: u8,
    },
    /// The text did not end in a newline.
    #[error("note text must end with a newline")]
    TextNotNewlineTerminated,
    /// There was no blank line separating text from signatures.
    #[error("note has no blank line between its text and its signature lines")]
    MissingSignatureSeparator,
    /// There were no signature lines after the blank line.
    #[error("note has no signature lines after its last blank line; at least one is required")]
    NoSignatures,
    /// The last signature line had no newline, or the note ended in an extra newline.
    #[error("note must end with a signature line terminated by exactly one newline")]
    SignatureLineUnterminated,
    /// More signature lines than [`NOTE_SIGNATURES_MAX`].
    #[error("note has {count} signature lines; at most {max} are accepted")]
    TooManySignatures {
        /// Lines found.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A signature line did not start with an em dash and a space.
    #[error("signature line {line} must start with \"\u{2014} \" (em dash U+2014, space)")]
    SignatureLineMissingDash {
        /// 1-based position among the signature lines.
        line: usize,
    },
    /// A signature line had no space between key name and signature.
    #[error("signature line {line} must be \"\u{2014} <key name> <base64 signature>\"")]
    SignatureLineMissingSpace {
        /// 1-based position among the signature lines.
        line: usize,
    },
    /// A signature line's key name broke the signed-note rules.
    #[error("signature line {line} has an invalid key name: {source}")]
    SignatureLineBadName {
        /// 1-based position among the signature lines.
        line: usize,
        /// What was wrong with the name.
        source: KeyNameError,
    },
    /// A signature was not canonical standard base64.
    #[error(
        "signature line {line}: signature is not canonical standard base64 (RFC 4648 §4, padded)"
    )]
    SignatureNotBase64 {
        /// 1-based position among the signature lines.
        line: usize,
    },
    /// A signature decoded to no more than the 4-byte key id.
    #[error("signature line {line}: signature is {len} bytes; it must be a 4-byte key id and more")]
    SignatureTooShort {
        /// 1-based position among the signature lines.
        line: usize,
        /// Decoded length.
        len: usize,
    },
    /// A signature line to be added had no signature bytes.
    #[error("signature of key {name} is empty")]
    EmptySignature {
        /// The signer's key name.
        name: KeyName,
    },
    /// Two known keys share the name and key id of a signature line.
    #[error("two known keys are named {name} with key id {key_id}; cannot tell which signed")]
    AmbiguousKey {
        /// The shared name.
        name: KeyName,
        /// The shared key id.
        key_id: KeyId,
    },
    /// A signature line of a known key did not verify.
    #[error("signature by known key {name}+{key_id} does not verify; the note was altered")]
    SignatureInvalid {
        /// The key's name.
        name: KeyName,
        /// The key's id.
        key_id: KeyId,
    },
    /// No signature line was from a known key.
    #[error("none of the note's {lines} signature lines is from a known key")]
    NoKnownSignature {
        /// Signature lines in the note.
        lines: usize,
    },
}

/// An Ed25519 note verifier key (signature type 0x01).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NoteVerifier {
    name: KeyName,
    key_id: KeyId,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Reads a vkey `name+hexkeyid+base64(0x01 || public key)`, checking that the key id
    /// is the one the name and key give.
    pub fn parse(vkey: &str) -> Result<Self, KeyError> {
        let (name, key_id, key) = keys::parse_verifier_key(vkey, SIGNATURE_TYPE_ED25519)?;
        Ok(Self { name, key_id, key })
    }

    /// The verifier for public key `key` under `name`.
    pub fn from_public_key(name: KeyName, key: &[u8; 32]) -> Result<Self, KeyError> {
        check_key_name(&name)?;
        let key = keys::verifying_key_from_bytes(key)?;
        let key_id = KeyId::compute(&name, SIGNATURE_TYPE_ED25519, key.as_bytes());
        Ok(Self { name, key_id, key })
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Checks `signature` (the bytes after the key id) over `text`.
    pub(super) fn verifies(&self, text: &[u8], signature: &[u8]) -> bool {
        let Ok(bytes) = <[u8; ED25519_SIGNATURE_LEN]>::try_from(signature) else {
            return false;
        };
        // Strict verification also refuses small-order R, so a signature cannot be valid
        // for more than one message.
        self.key
            .verify_strict(text, &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

impl std::fmt::Display for NoteVerifier {
    /// The vkey string.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&keys::format_verifier_key(
            &self.name,
            self.key_id,
            SIGNATURE_TYPE_ED25519,
            &self.key,
        ))
    }
}

impl std::str::FromStr for NoteVerifier {
    type Err = KeyError;

    fn from_str(vkey: &str) -> Result<Self, KeyError> {
        Self::parse(vkey)
    }
}

/// An Ed25519 note signer key (signature type 0x01).
///
/// Its `Debug` output shows the name and key id only, never the seed.
#[derive(Clone)]
pub struct NoteSigner {
    name: KeyName,
    key_id: KeyId,
    key: SigningKey,
}

impl NoteSigner {
    /// A new key for `name` from the operating system's randomness.
    pub fn generate(name: KeyName) -> Result<Self, KeyError> {
        check_key_name(&name)?;
        Ok(Self::with_key(name, keys::random_signing_key()?))
    }

    /// The key with Ed25519 seed `seed` (RFC 8032 private key) under `name`.
    pub fn from_seed(name: KeyName, seed: &[u8; 32]) -> Result<Self, KeyError> {
        check_key_name(&name)?;
        Ok(Self::with_key(name, SigningKey::from_bytes(seed)))
    }

    /// Reads `PRIVATE+KEY+name+hexkeyid+base64(0x01 || seed)`, checking that the key id is
    /// the one the name and derived public key give.
    pub fn parse(skey: &str) -> Result<Self, KeyError> {
        let (name, key_id, key) = keys::parse_signer_key(skey, SIGNATURE_TYPE_ED25519)?;
        Ok(Self { name, key_id, key })
    }

    fn with_key(name: KeyName, key: SigningKey) -> Self {
        let key_id = KeyId::compute(
            &name,
            SIGNATURE_TYPE_ED25519,
            key.verifying_key().as_bytes(),
        );
        Self { name, key_id, key }
    }

    /// The signer key string, `PRIVATE+KEY+name+hexkeyid+base64(0x01 || seed)`. It holds
    /// the secret: store it like one.
    pub fn to_private_key_string(&self) -> String {
        keys::format_signer_key(&self.name, self.key_id, SIGNATURE_TYPE_ED25519, &self.key)
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// The key name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The signature line for `text` (Ed25519 over the text bytes).
    pub fn sign_line(&self, text: &str) -> SignatureLine {
        SignatureLine {
            name: self.name.clone(),
            key_id: self.key_id,
            signature: self.key.sign(text.as_bytes()).to_bytes().to_vec(),
        }
    }

    /// A note of `text` signed by this key alone.
    pub fn sign(&self, text: impl Into<String>) -> Result<Note, NoteError> {
        let text = text.into();
        check_text(&text)?;
        let line = self.sign_line(&text);
        Note::new(text, vec![line])
    }
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(name: &str, seed: u8) -> NoteSigner {
        NoteSigner::from_seed(KeyName::new(name).unwrap(), &[seed; 32]).unwrap()
    }

    #[test]
    fn text_may_contain_blank_lines_and_splits_at_the_last_one() {
        let key = signer("a.example", 1);
        for text in ["\n", "a\n\nb\n", "a\n\n", "\n\n\nx\n"] {
            let note = key.sign(text).unwrap();
            let parsed = Note::parse(note.encode().as_bytes()).unwrap();
            assert_eq!(parsed.text(), text);
            assert_eq!(parsed.verify(&[key.verifier()]).unwrap().len(), 1);
        }
    }

    #[test]
    fn add_signature_replaces_a_line_of_the_same_key() {
        let key = signer("a.example", 1);
        let other = signer("b.example", 2);
        let mut note = key.sign("hello\n").unwrap();
        note.add_signature(other.sign_line("hello\n")).unwrap();
        note.add_signature(key.sign_line("hello\n")).unwrap();
        assert_eq!(note.signatures().len(), 2);
        assert_eq!(note.signatures()[1].name().as_str(), "a.example");
    }

    #[test]
    fn add_signature_stops_at_the_signature_limit() {
        let mut note = signer("k0", 0).sign("t\n").unwrap();
        for i in 1..NOTE_SIGNATURES_MAX {
            let line = SignatureLine::new(
                KeyName::new(format!("k{i}")).unwrap(),
                KeyId([0; 4]),
                vec![1],
            )
            .unwrap();
            note.add_signature(line).unwrap();
        }
        let one_more = SignatureLine::new(KeyName::new("last").unwrap(), KeyId([0; 4]), vec![1]);
        assert_eq!(
            note.add_signature(one_more.unwrap()),
            Err(NoteError::TooManySignatures {
                count: NOTE_SIGNATURES_MAX + 1,
                max: NOTE_SIGNATURES_MAX
            })
        );
        assert_eq!(note.signatures().len(), NOTE_SIGNATURES_MAX);
    }

    #[test]
    fn encoded_len_matches_encoding() {
        let key = signer("a.example", 1);
        let mut note = key.sign("x\ny\n").unwrap();
        for len in 1..8 {
            let line = SignatureLine::new(
                KeyName::new(format!("n{len}")).unwrap(),
                KeyId([9; 4]),
                vec![len; len as usize],
            );
            note.add_signature(line.unwrap()).unwrap();
        }
        assert_eq!(note.encoded_len(), note.encode().len());
    }

    #[test]
    fn debug_of_a_signer_hides_the_seed() {
        let key = signer("a.example", 0xab);
        let shown = format!("{key:?}");
        assert!(shown.contains("a.example"));
        assert!(!shown.contains("abab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
    }
}
