//! Transparency log checkpoints (c2sp.org/tlog-checkpoint).
//!
//! The note text of a checkpoint is at least three non-empty lines: the origin (the log's
//! identity), the tree size in decimal without leading zeroes, and the base64 RFC 6962
//! root hash; any further lines are opaque, non-empty extension lines. Parsing accepts
//! only that canonical form, so `Checkpoint::parse(text)?.to_text() == text`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::limits::{CHECKPOINT_EXTENSION_LINES_MAX, NOTE_BYTES_MAX};
use super::note::Note;
use super::{DecimalError, parse_decimal};
use crate::hash::Sha256Hash;
use crate::merkle::Root;

/// A checkpoint: which log, how many leaves, which root.
///
/// Its note text is the origin line, the tree size in decimal without leading zeroes, the
/// base64 root hash, and any non-empty extension lines, each ending in a newline. Parsing
/// accepts only that canonical form, so `Checkpoint::parse(text)?.to_text() == text`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Checkpoint {
    origin: String,
    root: Root,
    extensions: Vec<String>,
}

impl Checkpoint {
    /// The checkpoint of log `origin` at `root`, with no extension lines.
    pub fn new(origin: impl Into<String>, root: Root) -> Result<Self, CheckpointError> {
        Self::with_extensions(origin, root, Vec::new())
    }

    /// The checkpoint of log `origin` at `root` with `extensions` as extension lines
    /// (tlog-checkpoint: NOT RECOMMENDED, monitors cannot audit them).
    pub fn with_extensions(
        origin: impl Into<String>,
        root: Root,
        extensions: Vec<String>,
    ) -> Result<Self, CheckpointError> {
        let origin = origin.into();
        check_origin(&origin)?;
        if extensions.len() > CHECKPOINT_EXTENSION_LINES_MAX {
            return Err(CheckpointError::TooManyExtensionLines {
                count: extensions.len(),
                max: CHECKPOINT_EXTENSION_LINES_MAX,
            });
        }
        for (i, extension) in extensions.iter().enumerate() {
            check_extension(extension, i + 1)?;
        }
        let checkpoint = Self {
            origin,
            root,
            extensions,
        };
        let size = checkpoint.to_text().len();
        if size > NOTE_BYTES_MAX {
            return Err(CheckpointError::TooLarge {
                size,
                max: NOTE_BYTES_MAX,
            });
        }
        Ok(checkpoint)
    }

    /// Parses a checkpoint from note text (which ends in a newline).
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        if text.len() > NOTE_BYTES_MAX {
            return Err(CheckpointError::TooLarge {
                size: text.len(),
                max: NOTE_BYTES_MAX,
            });
        }
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::TextNotNewlineTerminated)?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        check_origin(origin)?;
        let size_line = lines.next().ok_or(CheckpointError::MissingTreeSize)?;
        let tree_size =
            parse_decimal(size_line).map_err(|source| CheckpointError::InvalidTreeSize {
                text: size_line.to_owned(),
                source,
            })?;
        let root_line = lines.next().ok_or(CheckpointError::MissingRootHash)?;
        let hash = parse_root_hash(root_line)?;
        let mut extensions = Vec::new();
        for (i, line) in lines.enumerate() {
            if extensions.len() == CHECKPOINT_EXTENSION_LINES_MAX {
                return Err(CheckpointError::TooManyExtensionLines {
                    count: CHECKPOINT_EXTENSION_LINES_MAX + 1,
                    max: CHECKPOINT_EXTENSION_LINES_MAX,
                });
            }
            check_extension(line, i + 1)?;
            extensions.push(line.to_owned());
        }
        Ok(Self {
            origin: origin.to_owned(),
            root: Root { tree_size, hash },
            extensions,
        })
    }

    /// Parses the text of a signed note as a checkpoint. This checks the format only; the
    /// signatures are [`super::QuorumPolicy::verify`]'s job.
    pub fn from_note(note: &Note) -> Result<Self, CheckpointError> {
        Self::parse(note.text())
    }

    /// The log's origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Tree size and root hash.
    pub fn root(&self) -> Root {
        self.root
    }

    /// The extension lines, without newlines.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The canonical note text: origin, size, root hash and extension lines, each ending in
    /// a newline.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.root.tree_size,
            STANDARD.encode(self.root.hash.as_bytes())
        );
        for extension in &self.extensions {
            text.push_str(extension);
            text.push('\n');
        }
        text
    }
}

/// tlog-checkpoint: the origin MUST be non-empty. Its other rules (no spaces, no plus) are
/// only SHOULDs, and clients MUST NOT assume them, so they are not enforced; a line can
/// still hold no newline or other control character.
pub(super) fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    if origin.is_empty() {
        return Err(CheckpointError::EmptyOrigin);
    }
    if let Some(c) = origin.chars().find(|&c| c < ' ') {
        return Err(CheckpointError::ControlCharacterInOrigin { control: c });
    }
    Ok(())
}

fn check_extension(line: &str, number: usize) -> Result<(), CheckpointError> {
    if line.is_empty() {
        return Err(CheckpointError::EmptyExtensionLine { line: number });
    }
    if let Some(c) = line.chars().find(|&c| c < ' ') {
        return Err(CheckpointError::ControlCharacterInExtension {
            line: number,
            control: c,
        });
    }
    Ok(())
}

fn parse_root_hash(line: &str) -> Result<Sha256Hash, CheckpointError> {
    let bytes = STANDARD
        .decode(line)
        .map_err(|_| CheckpointError::RootHashNotBase64 {
            text: line.to_owned(),
        })?;
    Sha256Hash::from_slice(&bytes)
        .map_err(|_| CheckpointError::RootHashWrongLength { len: bytes.len() })
}

/// Why a checkpoint text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The text exceeds [`NOTE_BYTES_MAX`].
    #[error("checkpoint text is {size} bytes; at most {max} are accepted")]
    TooLarge {
        /// Size found.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The text did not end in a newline.
    #[error("checkpoint text must end with a newline")]
    TextNotNewlineTerminated,
    /// The first line was empty.
    #[error("checkpoint origin (first line) is empty; it must name the log")]
    EmptyOrigin,
    /// The origin contained a control character.
    #[error("checkpoint origin contains the control character {control:?}")]
    ControlCharacterInOrigin {
        /// The character.
        control: char,
    },
    /// The text had only an origin line.
    #[error("checkpoint has no tree size line; it must be origin, tree size, root hash")]
    MissingTreeSize,
    /// The tree size line was not a canonical decimal number.
    #[error("checkpoint tree size {text:?} is invalid: {source}")]
    InvalidTreeSize {
        /// The line.
        text: String,
        /// What was wrong with it.
        source: DecimalError,
    },
    /// The text had no root hash line.
    #[error("checkpoint has no root hash line; it must be origin, tree size, root hash")]
    MissingRootHash,
    /// The root hash was not canonical standard base64.
    #[error("checkpoint root hash {text:?} is not canonical standard base64 (RFC 4648 §4)")]
    RootHashNotBase64 {
        /// The line.
        text: String,
    },
    /// The root hash was not 32 bytes.
    #[error("checkpoint root hash is {len} bytes; a SHA-256 root hash is 32")]
    RootHashWrongLength {
        /// Decoded length.
        len: usize,
    },
    /// An extension line was empty.
    #[error("checkpoint extension line {line} is empty; extension lines must be non-empty")]
    EmptyExtensionLine {
        /// 1-based position among the extension lines.
        line: usize,
    },
    /// An extension line contained a control character.
    #[error("checkpoint extension line {line} contains the control character {control:?}")]
    ControlCharacterInExtension {
        /// 1-based position among the extension lines.
        line: usize,
        /// The character.
        control: char,
    },
    /// More extension lines than [`CHECKPOINT_EXTENSION_LINES_MAX`].
    #[error("checkpoint has {count} or more extension lines; at most {max} are accepted")]
    TooManyExtensionLines {
        /// Lines counted (when parsing, counting stops one past the limit).
        count: usize,
        /// The limit.
        max: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_TEXT: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn spec_example_parses_and_reencodes_exactly() {
        let checkpoint = Checkpoint::parse(SPEC_TEXT).unwrap();
        assert_eq!(checkpoint.origin(), "example.com/behind-the-sofa");
        assert_eq!(checkpoint.root().tree_size, 20_852_163);
        assert_eq!(
            checkpoint.root().hash.to_hex(),
            "0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62"
        );
        assert!(checkpoint.extensions().is_empty());
        assert_eq!(checkpoint.to_text(), SPEC_TEXT);
    }

    #[test]
    fn extension_lines_round_trip() {
        let text = format!("{SPEC_TEXT}ext one\nsecond ext\n");
        let checkpoint = Checkpoint::parse(&text).unwrap();
        assert_eq!(checkpoint.extensions(), ["ext one", "second ext"]);
        assert_eq!(checkpoint.to_text(), text);
    }

    #[test]
    fn origins_with_spaces_and_plus_are_accepted() {
        // "clients MUST NOT assume that the origin is following this format".
        let text = "my log + more\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";
        assert_eq!(Checkpoint::parse(text).unwrap().origin(), "my log + more");
    }

    #[test]
    fn too_many_extension_lines_are_refused() {
        let text = format!(
            "{SPEC_TEXT}{}",
            "e\n".repeat(CHECKPOINT_EXTENSION_LINES_MAX + 1)
        );
        assert_eq!(
            Checkpoint::parse(&text),
            Err(CheckpointError::TooManyExtensionLines {
                count: CHECKPOINT_EXTENSION_LINES_MAX + 1,
                max: CHECKPOINT_EXTENSION_LINES_MAX
            })
        );
        let at_limit = format!(
            "{SPEC_TEXT}{}",
            "e\n".repeat(CHECKPOINT_EXTENSION_LINES_MAX)
        );
        assert!(Checkpoint::parse(&at_limit).is_ok());
    }
}
