//! Every size limit on untrusted input, in one place, each with its reason.
//!
//! Limits are types (zero-sized markers implementing [`Limit`]) so that a bounded field
//! names its limit in its type, e.g. `Text<HostLen>`, and a decoding error can say which
//! field was too long and what the maximum is. The relations between limits are checked
//! at compile time at the bottom of this file.

/// A named upper bound on the length of a field (bytes for text and byte strings,
/// elements for lists).
pub trait Limit {
    /// The largest length accepted.
    const MAX: usize;
    /// What is bounded, for error messages ("host name", "payload").
    const WHAT: &'static str;
}

macro_rules! limits {
    ($($(#[$doc:meta])* $name:ident = $max:expr, $what:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name;
        impl Limit for $name {
            const MAX: usize = $max;
            const WHAT: &'static str = $what;
        }
    )*};
}

limits! {
    /// Network ids are short human names ("custos-testnet"); they are in every message,
    /// so they are kept small.
    NetworkIdLen = 64, "network id";
    /// Organisation ids ("f-isac", "acme-bank"): short names, in every message.
    OrgIdLen = 64, "organisation id";
    /// Human-readable names of validators and collectors.
    NameLen = 128, "name";
    /// Rule or signature ids: Suricata SIDs, Sigma rule UUIDs and Wazuh rule ids all fit
    /// comfortably; longer values are descriptions, which belong in the payload.
    RuleIdLen = 256, "rule id";
    /// Host names: a DNS name is at most 253 characters (RFC 1035); Windows and syslog
    /// host fields are shorter.
    HostLen = 255, "host";
    /// One MITRE ATT&CK id ("T1059.001", "TA0001").
    AttackIdLen = 32, "ATT&CK id";
    /// ATT&CK ids on one message: alerts map to a handful of techniques.
    AttackIdCount = 32, "ATT&CK id list";
    /// The source's own severity value ("3", "high", "Critical").
    SeverityOriginalLen = 32, "original severity";
    /// Media types: RFC 6838 allows 127 characters for type and subtype each.
    MediaTypeLen = 255, "media type";
    /// Why a parser could not read a line: a short diagnostic, not a copy of the line.
    ParseErrorLen = 512, "parse error";
    /// References from one message to others (an incident report citing its alerts).
    ReferenceCount = 256, "reference list";
    /// Incident, policy and claim ids.
    RecordIdLen = 128, "record id";
    /// Free-text notes on lifecycle, insurance and membership records; long documents go
    /// in the payload.
    NoteLen = 4096, "note";
    /// Controls in one posture declaration: the [`crate::message::Control`] list has 11;
    /// the bound leaves room for controls appended later.
    ControlCount = 64, "posture control list";
    /// Names of RPC methods recorded in access-audit records.
    MethodLen = 64, "method name";
    /// Leaf indexes listed in one access-audit record; a larger read is split across
    /// several records.
    AuditEntryCount = 4096, "audited message list";
    /// Raw payload bytes of one message. Security messages are log lines, alerts and
    /// reports; bigger artifacts are notarized by digest (kind `artifact digest`). The
    /// bound keeps a block, and so a consensus round, from being stalled by one message.
    PayloadLen = 1024 * 1024, "payload";
    /// Signatures in a commit certificate: one per validator.
    CommitSignatureCount = MAX_VALIDATORS, "commit signature list";
    /// Validators in a set.
    ValidatorCount = MAX_VALIDATORS, "validator set";
    /// Organisations and collectors named in genesis.
    GenesisMemberCount = 10_000, "genesis member list";
    /// Messages in one block; with [`MAX_BLOCK_BYTES`] this bounds the work of
    /// verifying a proposal before its round times out.
    BlockMessageCount = MAX_BLOCK_MESSAGES, "block message list";
    /// Network addresses (multiaddrs, URLs) in genesis.
    AddressLen = 256, "address";
    /// Encoded consensus votes carried as equivocation evidence.
    EvidenceVoteLen = 1024, "evidence vote";
    /// C2SP verifier keys (`name+keyid+base64`) in genesis: a key name of at most 255
    /// bytes, 8 hex digits and the base64 of a 33-byte key.
    VerifierKeyLen = 512, "C2SP verifier key";
}

/// Validators in one network. Tendermint's all-to-all voting is quadratic in this;
/// Custos networks are a handful of organisations.
pub const MAX_VALIDATORS: usize = 128;

/// Messages in one block. At the 10,000 messages/s design target and a block every
/// few hundred milliseconds, blocks hold a few thousand messages; the bound leaves room
/// for bursts while keeping one block's verification well under a round timeout.
pub const MAX_BLOCK_MESSAGES: usize = 20_000;

/// Encoded size of one signed envelope without its payload. Envelopes are a few hundred
/// bytes; the bound leaves room for long rule ids, references and notes.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;

/// Encoded size of one submitted message: envelope plus payload.
pub const MAX_MESSAGE_BYTES: usize = MAX_ENVELOPE_BYTES + PayloadLen::MAX + 64;

/// Encoded size of a block, header and body. It must carry at least one maximal message;
/// it is bounded so that gossip and block sync move blocks in bounded memory.
pub const MAX_BLOCK_BYTES: usize = 32 * 1024 * 1024;

/// Encoded size of a commit certificate or a vote-carrying consensus message.
pub const MAX_CONSENSUS_MESSAGE_BYTES: usize = 64 * 1024;

/// Encoded size of a genesis document.
pub const MAX_GENESIS_BYTES: usize = 16 * 1024 * 1024;

const _: () = {
    assert!(
        MAX_BLOCK_BYTES >= 4 * MAX_MESSAGE_BYTES,
        "a block must hold several maximal messages"
    );
    assert!(PayloadLen::MAX < MAX_MESSAGE_BYTES);
    assert!(CommitSignatureCount::MAX == ValidatorCount::MAX);
    assert!(MAX_CONSENSUS_MESSAGE_BYTES >= MAX_VALIDATORS * (8 + 64 + 16));
};
