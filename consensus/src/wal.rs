//! The write-ahead log: what a validator must remember across a crash, and the record
//! format the node stores it in.
//!
//! The engine emits [`crate::Output::PersistWal`] before every message it signs; the node
//! appends the entry durably (fsync) before carrying out any later output. After a crash
//! the node reads the log back with [`decode_records`] and passes the entries of the height
//! it restarts at to [`crate::Input::StartHeight`]. The engine then knows every vote and
//! proposal it sent at that height, so it can never sign a conflicting one, and it gets its
//! lock and valid value back, so it keeps honouring them.
//!
//! The node may drop the entries of a height once that height's block is stored (the
//! engine ignores entries of lower heights, so truncating late is harmless).
//!
//! # Record format
//!
//! ```text
//! record  := length (u32, little endian) ‖ checksum (8 bytes) ‖ payload (length bytes)
//! payload := borsh(WalEntry)
//! checksum = first 8 bytes of BLAKE3(payload)
//! ```
//!
//! A crash while appending leaves a torn last record: shorter than its length says, or
//! with a checksum that does not match. That record was never persisted, so the message it
//! guarded was never sent, and [`decode_records`] drops it. Damage anywhere else is an
//! error: silently skipping a vote in the middle could let the validator sign it twice.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::limits::WAL_RECORD_BYTES_MAX;
use crate::types::{Height, Proposal, Round, SignedVote, ValueId, Vote};

/// One thing a validator must not forget.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum WalEntry {
    /// This validator is about to broadcast this proposal (L19).
    Proposal(Proposal),
    /// This validator is about to broadcast this vote.
    Vote(Vote),
    /// This validator saw `2f + 1` prevotes for `value` in `round` together with its
    /// proposal (L36): the justification of its `validValue` (and of its lock, if it
    /// precommitted). A restarted validator needs the prevotes themselves to re-propose the
    /// value with `validRound` (L16, L19) and convince others through L28.
    Polka {
        /// Height of the polka.
        height: Height,
        /// Round of the polka.
        round: Round,
        /// The value prevoted for.
        value: ValueId,
        /// The prevotes, with their signatures.
        prevotes: Vec<SignedVote>,
    },
}

impl WalEntry {
    /// The height the entry belongs to.
    pub fn height(&self) -> Height {
        match self {
            WalEntry::Proposal(p) => p.height,
            WalEntry::Vote(v) => v.height,
            WalEntry::Polka { height, .. } => *height,
        }
    }
}

/// Bytes of the record header: length and checksum.
pub const RECORD_HEADER_BYTES: usize = 4 + 8;

/// Encodes `entry` as one framed record, ready to append to the log.
pub fn encode_record(entry: &WalEntry) -> Vec<u8> {
    let payload = borsh::to_vec(entry).expect("writing to a Vec cannot fail");
    // Entries are bounded by construction (see WAL_RECORD_BYTES_MAX), so this fits a u32.
    let length = u32::try_from(payload.len()).expect("WAL entry below WAL_RECORD_BYTES_MAX");
    let mut record = Vec::with_capacity(RECORD_HEADER_BYTES + payload.len());
    record.extend_from_slice(&length.to_le_bytes());
    record.extend_from_slice(&checksum(&payload));
    record.extend_from_slice(&payload);
    record
}

/// The entries recovered from a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedWal {
    /// Complete records, in log order.
    pub entries: Vec<WalEntry>,
    /// Length of the intact prefix. If it is shorter than the log, the rest is a torn
    /// record that the node should truncate before appending again.
    pub intact_bytes: usize,
}

/// Why a log cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalError {
    /// A record header announces more bytes than any entry can have.
    #[error(
        "WAL record at byte {offset} claims {length} bytes, more than the {max} any entry \
         needs; the log is corrupt"
    )]
    RecordTooLarge {
        /// Offset of the record.
        offset: usize,
        /// Length in its header.
        length: usize,
        /// [`WAL_RECORD_BYTES_MAX`].
        max: usize,
    },
    /// A record that is followed by more data fails its checksum, so it is not a torn tail
    /// but damage in the middle of the log.
    #[error(
        "WAL record at byte {offset} fails its checksum and is not the last record; \
         the log is corrupt, refusing to guess which votes were sent"
    )]
    ChecksumMismatch {
        /// Offset of the record.
        offset: usize,
    },
    /// A record with a correct checksum does not decode as an entry (written by an
    /// incompatible version).
    #[error("WAL record at byte {offset} does not decode as an entry: {reason}")]
    Malformed {
        /// Offset of the record.
        offset: usize,
        /// The decoder's complaint.
        reason: String,
    },
}

/// Decodes a whole log, dropping a torn last record (see the module docs).
pub fn decode_records(bytes: &[u8]) -> Result<DecodedWal, WalError> {
    let mut entries = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let Some((header, body)) = rest.split_at_checked(RECORD_HEADER_BYTES) else {
            break; // torn header
        };
        let length = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let length = usize::try_from(length).expect("u32 fits in usize");
        if length > WAL_RECORD_BYTES_MAX {
            return Err(WalError::RecordTooLarge {
                offset,
                length,
                max: WAL_RECORD_BYTES_MAX,
            });
        }
        let Some(payload) = body.get(..length) else {
            break; // torn payload
        };
        let end = offset + RECORD_HEADER_BYTES + length;
        if header[4..] != checksum(payload) {
            if end == bytes.len() {
                break; // the last record was only partly overwritten
            }
            return Err(WalError::ChecksumMismatch { offset });
        }
        let entry = borsh::from_slice::<WalEntry>(payload).map_err(|e| WalError::Malformed {
            offset,
            reason: e.to_string(),
        })?;
        entries.push(entry);
        offset = end;
    }
    Ok(DecodedWal {
        entries,
        intact_bytes: offset,
    })
}

fn checksum(payload: &[u8]) -> [u8; 8] {
    let hash = blake3::hash(payload);
    hash.as_bytes()[..8].try_into().expect("8 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Signature, ValidatorIndex, VoteKind};

    fn vote(round: u32) -> WalEntry {
        WalEntry::Vote(Vote {
            height: Height::new(3),
            round: Round::new(round),
            kind: VoteKind::Prevote,
            value: Some(ValueId([7; 32])),
            validator: ValidatorIndex::new(1),
        })
    }

    fn polka() -> WalEntry {
        let Ok(signature) = Signature::new(vec![9; 64]) else {
            unreachable!()
        };
        let WalEntry::Vote(v) = vote(2) else {
            unreachable!()
        };
        WalEntry::Polka {
            height: Height::new(3),
            round: Round::new(2),
            value: ValueId([7; 32]),
            prevotes: vec![SignedVote { vote: v, signature }],
        }
    }

    fn log(entries: &[WalEntry]) -> Vec<u8> {
        entries.iter().flat_map(encode_record).collect()
    }

    #[test]
    fn round_trips_every_entry_kind() {
        let entries = vec![vote(0), polka(), vote(1)];
        let bytes = log(&entries);
        let decoded = decode_records(&bytes).unwrap();
        assert_eq!(decoded.entries, entries);
        assert_eq!(decoded.intact_bytes, bytes.len());
    }

    #[test]
    fn every_torn_tail_is_dropped_and_the_prefix_kept() {
        let complete = log(&[vote(0), polka()]);
        let first_len = encode_record(&vote(0)).len();
        for cut in first_len..complete.len() {
            let decoded = decode_records(&complete[..cut]).unwrap();
            assert_eq!(decoded.entries, vec![vote(0)], "cut at {cut}");
            assert_eq!(decoded.intact_bytes, first_len);
        }
    }

    #[test]
    fn a_garbled_last_record_is_a_torn_tail() {
        let mut bytes = log(&[vote(0), vote(1)]);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        assert_eq!(decode_records(&bytes).unwrap().entries, vec![vote(0)]);
    }

    #[test]
    fn damage_before_the_tail_is_an_error() {
        let mut bytes = log(&[vote(0), vote(1)]);
        bytes[RECORD_HEADER_BYTES + 2] ^= 0xff;
        assert_eq!(
            decode_records(&bytes),
            Err(WalError::ChecksumMismatch { offset: 0 })
        );
    }

    #[test]
    fn an_absurd_length_is_an_error() {
        let mut bytes = log(&[vote(0)]);
        bytes[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_records(&bytes),
            Err(WalError::RecordTooLarge { offset: 0, .. })
        ));
    }

    #[test]
    fn trailing_bytes_inside_a_record_are_malformed() {
        let mut payload = borsh::to_vec(&vote(0)).unwrap();
        payload.push(0);
        let mut bytes = u32::try_from(payload.len()).unwrap().to_le_bytes().to_vec();
        bytes.extend_from_slice(&checksum(&payload));
        bytes.extend_from_slice(&payload);
        assert!(matches!(
            decode_records(&bytes),
            Err(WalError::Malformed { offset: 0, .. })
        ));
    }
}
