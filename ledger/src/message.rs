//! The security message: what a collector or organisation signs (ARCHITECTURE §3).
//!
//! A [`Message`] is the signed envelope body; an [`Envelope`] is the message with its
//! signature, and its canonical encoding is the evidence log leaf. The raw payload bytes
//! are not in the envelope: the envelope commits to them by SHA-256 in its
//! [`PayloadDescriptor`], so payloads can be stored, access-controlled or redacted apart
//! from the log while every proof stays valid.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::codec::{DecodeError, List, Text, decode, encode, tags};
use crate::crypto::{KeyId, PublicKey, Signable, Signed};
use crate::hash::Sha256Hash;
use crate::limits::*;
use crate::merkle::hash_leaf;

/// Milliseconds since the Unix epoch, UTC.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// Adds a duration, saturating at the far future rather than wrapping.
    pub fn saturating_add_ms(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }
}

/// A network's id, e.g. `custos-testnet`.
pub type NetworkId = Text<NetworkIdLen>;
/// An organisation's id, e.g. `acme-bank`.
pub type OrgId = Text<OrgIdLen>;

/// The role an organisation plays in the joint defense (ARCHITECTURE §1).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[borsh(use_discriminant = true)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum Role {
    /// The security control center: enrolls collectors, runs the public anchor.
    ControlCenter = 0,
    /// Early warning and monitoring: ISAC, SOC, tool vendors, telecoms, risk assessment.
    Warning = 1,
    /// Reporting and response: G-ISAC, F-ISAC, forensic investigators, response team.
    Response = 2,
    /// A cyber insurer.
    Insurer = 3,
    /// A client organisation whose servers run collectors.
    Client = 4,
}

/// The format a payload came in.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[borsh(use_discriminant = true)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum SourceFormat {
    /// RFC 5424 syslog.
    Syslog5424 = 0,
    /// RFC 3164 (BSD) syslog.
    Syslog3164 = 1,
    /// ArcSight Common Event Format.
    Cef = 2,
    /// Elastic Common Schema JSON.
    EcsJson = 3,
    /// Suricata EVE JSON.
    SuricataEve = 4,
    /// Zeek JSON logs.
    ZeekJson = 5,
    /// Zeek tab-separated logs.
    ZeekTsv = 6,
    /// Wazuh or OSSEC alerts.
    Wazuh = 7,
    /// Windows event log records rendered as JSON.
    EvtxJson = 8,
    /// Windows event log records rendered as XML.
    EvtxXml = 9,
    /// A binary Windows .evtx record.
    Evtx = 10,
    /// A STIX 2.1 bundle.
    Stix21 = 11,
    /// A MISP event.
    Misp = 12,
    /// Bytes with no parsed structure.
    Raw = 13,
    /// A Custos record whose structure is in the message kind itself.
    Custos = 14,
}

/// Normalised severity, comparable across sources; higher is worse.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[borsh(use_discriminant = true)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum SeverityLevel {
    /// Informational.
    Info = 0,
    /// Low.
    Low = 1,
    /// Medium.
    Medium = 2,
    /// High.
    High = 3,
    /// Critical.
    Critical = 4,
}

/// The scale the source's own severity value is on. Scales run in different directions
/// (syslog 0 is worst, CEF 10 is worst), so the original is kept with its scale.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[borsh(use_discriminant = true)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum SeverityScale {
    /// Syslog severity 0 (emergency, worst) to 7 (debug).
    Syslog = 0,
    /// Suricata alert severity 1 (worst) to 4.
    Suricata = 1,
    /// CEF severity 0 to 10 (worst), or Low/Medium/High/Very-High.
    Cef = 2,
    /// Wazuh/OSSEC rule level 0 to 15 (worst).
    Wazuh = 3,
    /// Windows event level 1 (critical) to 5 (verbose), 0 log-always.
    Windows = 4,
    /// ECS `event.severity`, a number whose meaning the source defines.
    Ecs = 5,
    /// A named level such as "high" (STIX, MISP threat levels, free text).
    Named = 6,
}

/// Severity: normalised level plus the source's original value and scale.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Severity {
    /// Normalised level.
    pub level: SeverityLevel,
    /// The source's value, unchanged.
    pub original: Text<SeverityOriginalLen>,
    /// The scale of `original`.
    pub scale: SeverityScale,
}

/// Describes the payload an envelope commits to.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PayloadDescriptor {
    /// Media type, e.g. `application/json` or `text/plain`.
    pub media_type: Text<MediaTypeLen>,
    /// Payload length in bytes.
    pub size_bytes: u64,
    /// SHA-256 of the payload bytes.
    pub sha256: Sha256Hash,
}

impl PayloadDescriptor {
    /// Describes `payload`.
    pub fn of(media_type: Text<MediaTypeLen>, payload: &[u8]) -> Self {
        Self {
            media_type,
            size_bytes: payload.len() as u64,
            sha256: Sha256Hash::digest(payload),
        }
    }

    /// Checks that `payload` is the one described.
    pub fn check(&self, payload: &[u8]) -> Result<(), PayloadMismatch> {
        if payload.len() as u64 != self.size_bytes {
            return Err(PayloadMismatch::Size {
                declared: self.size_bytes,
                actual: payload.len() as u64,
            });
        }
        let actual = Sha256Hash::digest(payload);
        if actual != self.sha256 {
            return Err(PayloadMismatch::Digest {
                declared: self.sha256,
                actual,
            });
        }
        Ok(())
    }
}

/// A payload does not match its descriptor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadMismatch {
    /// Wrong length.
    #[error("payload is {actual} bytes but the envelope declares {declared}")]
    Size {
        /// Declared length.
        declared: u64,
        /// Actual length.
        actual: u64,
    },
    /// Wrong digest.
    #[error("payload SHA-256 is {actual} but the envelope declares {declared}")]
    Digest {
        /// Declared digest.
        declared: Sha256Hash,
        /// Actual digest.
        actual: Sha256Hash,
    },
}

/// What sort of evidence a collector message is.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[borsh(use_discriminant = true)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum EvidenceKind {
    /// A log line or event record.
    LogLine = 0,
    /// An IDS, antivirus or SIEM alert.
    Alert = 1,
    /// The digest of an artifact too large to carry (a disk image, a memory dump): the
    /// payload is a description and the descriptor's digest is the artifact's.
    ArtifactDigest = 2,
}

/// Incident levels 1 (least severe) to 4 under 資通安全事件通報及應變辦法.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, Serialize, Deserialize,
)]
#[serde(try_from = "u8", into = "u8")]
pub struct IncidentLevel(u8);

impl IncidentLevel {
    /// Level 1 to 4.
    pub fn new(level: u8) -> Result<Self, DecodeError> {
        if (1..=4).contains(&level) {
            Ok(Self(level))
        } else {
            Err(DecodeError::InvalidValue {
                what: "incident level",
                reason: format!("{level} is not 1, 2, 3 or 4"),
            })
        }
    }

    /// The level's number.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for IncidentLevel {
    type Error = DecodeError;
    fn try_from(level: u8) -> Result<Self, DecodeError> {
        Self::new(level)
    }
}

impl From<IncidentLevel> for u8 {
    fn from(level: IncidentLevel) -> u8 {
        level.0
    }
}

impl BorshDeserialize for IncidentLevel {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        Self::new(u8::deserialize_reader(reader)?).map_err(DecodeError::into_io)
    }
}

/// A step in an incident's lifecycle.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum IncidentAction {
    /// The incident was detected; deadlines run from `aware_at`.
    Detected {
        /// Initial level.
        level: IncidentLevel,
        /// When the organisation became aware of it.
        aware_at: UnixMillis,
    },
    /// The incident was reported to the competent authority.
    Reported,
    /// The level was reassessed (reporting deadlines restart).
    LevelChanged {
        /// New level.
        level: IncidentLevel,
    },
    /// Damage is contained.
    Contained,
    /// Operations are recovered.
    Recovered,
    /// The investigation report was filed (payload: the report).
    InvestigationReport,
    /// The incident is closed.
    Closed,
}

/// A lifecycle record of one incident.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct IncidentEvent {
    /// The incident's id, unique per client.
    pub incident_id: Text<RecordIdLen>,
    /// What happened.
    pub action: IncidentAction,
    /// A short note.
    pub note: Text<NoteLen>,
}

/// An amount of money in minor units (cents) of a currency.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Money {
    /// Amount in the currency's minor unit.
    pub minor_units: u64,
    /// ISO 4217 code, e.g. `TWD`.
    pub currency: Text<SeverityOriginalLen>,
}

/// The insurer's decision on a claim.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[borsh(use_discriminant = true)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum ClaimDecision {
    /// Paid in full.
    Approved = 0,
    /// Paid in part.
    Partial = 1,
    /// Not paid.
    Denied = 2,
}

/// Insurance records.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "record")]
pub enum InsuranceEvent {
    /// A policy covering a client.
    Policy {
        /// Policy id.
        policy_id: Text<RecordIdLen>,
        /// Insured client.
        client: OrgId,
        /// Cover starts.
        starts_at: UnixMillis,
        /// Cover ends.
        ends_at: UnixMillis,
    },
    /// A claim under a policy for an incident.
    ClaimFiled {
        /// Claim id.
        claim_id: Text<RecordIdLen>,
        /// Policy claimed under.
        policy_id: Text<RecordIdLen>,
        /// Incident claimed for.
        incident_id: Text<RecordIdLen>,
        /// Loss claimed.
        claimed_loss: Money,
    },
    /// The insurer's decision.
    ClaimDecided {
        /// Claim decided.
        claim_id: Text<RecordIdLen>,
        /// Decision.
        decision: ClaimDecision,
        /// Amount paid.
        paid: Money,
    },
}

/// Changes to who may write.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "change")]
pub enum MembershipChange {
    /// A collector key may now submit evidence for a client.
    CollectorEnrolled {
        /// The collector's key.
        key: PublicKey,
        /// The client organisation it collects for.
        client: OrgId,
        /// A name for operators, e.g. the server's host name.
        name: Text<NameLen>,
    },
    /// A collector key may no longer submit.
    CollectorRevoked {
        /// The revoked key.
        key_id: KeyId,
        /// Why.
        reason: Text<NoteLen>,
    },
    /// An organisation key is replaced.
    KeyRotated {
        /// Key being retired.
        old: KeyId,
        /// Its successor.
        new: PublicKey,
    },
    /// A new organisation joins with a role and a key.
    OrganisationAdded {
        /// Its id.
        org: OrgId,
        /// Its role.
        role: Role,
        /// Its signing key.
        key: PublicKey,
    },
}

/// A record of an authenticated read (ARCHITECTURE §6).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AccessAudit {
    /// The reading organisation.
    pub reader: OrgId,
    /// The reader's key that authenticated.
    pub reader_key: KeyId,
    /// The RPC method.
    pub method: Text<MethodLen>,
    /// Leaf indexes of the messages returned.
    pub leaf_indexes: List<u64, AuditEntryCount>,
    /// When the read was served.
    pub read_at: UnixMillis,
}

/// Proof that a checkpoint was published on a public EVM chain (ARCHITECTURE §5).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AnchorReceipt {
    /// EVM chain id.
    pub chain_id: u64,
    /// Transaction hash.
    pub tx_hash: [u8; 32],
    /// Block number.
    pub block_number: u64,
    /// Block hash.
    pub block_hash: [u8; 32],
    /// Block timestamp, seconds since the epoch.
    pub block_time_s: u64,
    /// Tree size of the anchored checkpoint.
    pub tree_size: u64,
    /// Root of the anchored checkpoint.
    pub root: Sha256Hash,
}

/// Two conflicting votes signed by one validator, kept as evidence.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Equivocation {
    /// The validator that signed both.
    pub validator: KeyId,
    /// First vote, encoded and signed.
    pub vote_a: crate::codec::Bytes<EvidenceVoteLen>,
    /// Second vote, encoded and signed.
    pub vote_b: crate::codec::Bytes<EvidenceVoteLen>,
}

/// A security control the risk model asks about (the patent's risk characteristic model:
/// each control belongs to one of the four sub-scores, see [`crate::risk`]). Codes are part
/// of the encoding: append, never renumber.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[borsh(use_discriminant = true)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum Control {
    /// A named chief information security officer or security contact (管理階層).
    SecurityOfficer = 0,
    /// A written, exercised incident response plan.
    IncidentResponsePlan = 1,
    /// An ISMS certification (ISO/IEC 27001 or equivalent) in force.
    IsmsCertification = 2,
    /// A business continuity drill within the last year.
    ContinuityDrill = 3,
    /// Endpoint protection (antivirus, EDR) on the servers.
    EndpointProtection = 4,
    /// Security patches applied within the organisation's patch window.
    PatchManagement = 5,
    /// Security awareness training for staff within the last year.
    AwarenessTraining = 6,
    /// Multi-factor authentication on administrative and remote access.
    MultiFactorAuth = 7,
    /// Offline or immutable backups, restore-tested.
    Backups = 8,
    /// Periodic review of accounts and access rights.
    AccessReview = 9,
    /// Security logs kept for the retention period the regulator requires.
    LogRetention = 10,
}

impl Control {
    /// The control's name, as the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            Control::SecurityOfficer => "security-officer",
            Control::IncidentResponsePlan => "incident-response-plan",
            Control::IsmsCertification => "isms-certification",
            Control::ContinuityDrill => "continuity-drill",
            Control::EndpointProtection => "endpoint-protection",
            Control::PatchManagement => "patch-management",
            Control::AwarenessTraining => "awareness-training",
            Control::MultiFactorAuth => "multi-factor-auth",
            Control::Backups => "backups",
            Control::AccessReview => "access-review",
            Control::LogRetention => "log-retention",
        }
    }
}

/// How far a control is in place.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[borsh(use_discriminant = true)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum ControlState {
    /// Not in place.
    Absent = 0,
    /// In place for part of the scope.
    Partial = 1,
    /// In place.
    Implemented = 2,
}

/// One control's declared state.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ControlStatus {
    /// The control.
    pub control: Control,
    /// Its state.
    pub state: ControlState,
}

/// A declaration of a client's security posture, by the client itself or by an assessor
/// (a `warning` organisation such as a risk assessment unit or testing team). The latest
/// declaration replaces earlier ones; a control it does not list counts as absent.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PostureDeclaration {
    /// The controls' states.
    pub controls: List<ControlStatus, ControlCount>,
    /// A short note (scope, assessment reference); the report goes in the payload.
    pub note: Text<NoteLen>,
}

/// What a message is, with the structured content of non-evidence kinds.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Kind {
    /// Collector evidence.
    Evidence {
        /// Log line, alert or artifact digest.
        evidence: EvidenceKind,
    },
    /// A collector's sign of life, so silence can be told from a gap.
    Heartbeat {
        /// Interval until the next heartbeat.
        interval_ms: u64,
    },
    /// An early warning from a `warning` organisation; the payload is a STIX 2.1 bundle.
    EarlyWarning,
    /// An incident lifecycle step.
    Incident(IncidentEvent),
    /// An insurance record.
    Insurance(InsuranceEvent),
    /// A membership change.
    Membership(MembershipChange),
    /// A record of an authenticated read.
    AccessAudit(AccessAudit),
    /// A public anchor receipt.
    AnchorReceipt(AnchorReceipt),
    /// Consensus equivocation evidence.
    Equivocation(Equivocation),
    /// A declaration of the client's security posture (appended: older encodings are
    /// unchanged).
    Posture(PostureDeclaration),
}

impl Kind {
    /// Short name of the kind, as used in queries and indexes.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Evidence { .. } => "evidence",
            Kind::Heartbeat { .. } => "heartbeat",
            Kind::EarlyWarning => "early-warning",
            Kind::Incident(_) => "incident",
            Kind::Insurance(_) => "insurance",
            Kind::Membership(_) => "membership",
            Kind::AccessAudit(_) => "access-audit",
            Kind::AnchorReceipt(_) => "anchor-receipt",
            Kind::Equivocation(_) => "equivocation",
            Kind::Posture(_) => "posture",
        }
    }

    /// Index code of evidence messages.
    pub const EVIDENCE_CODE: u8 = 0;
    /// Index code of heartbeats.
    pub const HEARTBEAT_CODE: u8 = 1;
    /// Index code of early warnings.
    pub const EARLY_WARNING_CODE: u8 = 2;
    /// Index code of incident records.
    pub const INCIDENT_CODE: u8 = 3;
    /// Index code of insurance records.
    pub const INSURANCE_CODE: u8 = 4;
    /// Index code of membership changes.
    pub const MEMBERSHIP_CODE: u8 = 5;
    /// Index code of access-audit records.
    pub const ACCESS_AUDIT_CODE: u8 = 6;
    /// Index code of anchor receipts.
    pub const ANCHOR_RECEIPT_CODE: u8 = 7;
    /// Index code of equivocation evidence.
    pub const EQUIVOCATION_CODE: u8 = 8;
    /// Index code of posture declarations.
    pub const POSTURE_CODE: u8 = 9;

    /// Every kind's name, in code order: what queries and filters accept.
    pub const NAMES: [&'static str; 10] = [
        "evidence",
        "heartbeat",
        "early-warning",
        "incident",
        "insurance",
        "membership",
        "access-audit",
        "anchor-receipt",
        "equivocation",
        "posture",
    ];

    /// One-byte code of the kind, for storage index keys. Codes are part of the storage
    /// format: never renumber one.
    pub fn code(&self) -> u8 {
        match self {
            Kind::Evidence { .. } => Self::EVIDENCE_CODE,
            Kind::Heartbeat { .. } => Self::HEARTBEAT_CODE,
            Kind::EarlyWarning => Self::EARLY_WARNING_CODE,
            Kind::Incident(_) => Self::INCIDENT_CODE,
            Kind::Insurance(_) => Self::INSURANCE_CODE,
            Kind::Membership(_) => Self::MEMBERSHIP_CODE,
            Kind::AccessAudit(_) => Self::ACCESS_AUDIT_CODE,
            Kind::AnchorReceipt(_) => Self::ANCHOR_RECEIPT_CODE,
            Kind::Equivocation(_) => Self::EQUIVOCATION_CODE,
            Kind::Posture(_) => Self::POSTURE_CODE,
        }
    }

    /// Whether a collector key may author this kind; all others need an organisation
    /// (or validator) key with a permitting role.
    pub fn is_collector_kind(&self) -> bool {
        matches!(self, Kind::Evidence { .. } | Kind::Heartbeat { .. })
    }
}

/// The signed body of a security message.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Message {
    /// The network this message is for; a message signed for one network is refused by
    /// every other.
    pub network: NetworkId,
    /// Key id of the signer (collector, organisation or validator key).
    pub author: KeyId,
    /// The client organisation the evidence is about.
    pub client: OrgId,
    /// Per-author sequence number: 1 for the first message, then +1 each time.
    pub sequence: u64,
    /// Leaf hash of the author's previous message; [`Sha256Hash::ZERO`] for sequence 1.
    /// Together with `sequence` this chains an author's messages, so a gap or a reordering
    /// is provable.
    pub prev: Sha256Hash,
    /// What the message is.
    pub kind: Kind,
    /// Format of the payload.
    pub format: SourceFormat,
    /// When the event happened, according to the source, if it says.
    pub occurred_at: Option<UnixMillis>,
    /// When the collector read it.
    pub observed_at: UnixMillis,
    /// Severity, when the source has one.
    pub severity: Option<Severity>,
    /// Rule or signature id, when the source has one.
    pub rule_id: Option<Text<RuleIdLen>>,
    /// Host the event is about, when known.
    pub host: Option<Text<HostLen>>,
    /// MITRE ATT&CK technique and tactic ids.
    pub attack_ids: List<Text<AttackIdLen>, AttackIdCount>,
    /// Other messages this one refers to, by leaf hash.
    pub references: List<Sha256Hash, ReferenceCount>,
    /// Set when the collector could not parse the line: it is notarized as raw and this
    /// says why.
    pub parse_error: Option<Text<ParseErrorLen>>,
    /// The payload this message commits to.
    pub payload: PayloadDescriptor,
}

impl Signable for Message {
    const TAG: crate::codec::DomainTag = tags::MESSAGE;
}

/// A signed message: the evidence log leaf.
pub type Envelope = Signed<Message>;

impl Envelope {
    /// The canonical encoding: the log leaf bytes.
    pub fn leaf_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// The RFC 9162 leaf hash, the envelope's public identifier.
    pub fn leaf_hash(&self) -> Sha256Hash {
        hash_leaf(&self.leaf_bytes())
    }

    /// Decodes an envelope with the envelope size limit.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(bytes, MAX_ENVELOPE_BYTES)
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    #[test]
    fn names_and_codes_agree_and_appended_kinds_leave_old_encodings_alone() {
        let posture = Kind::Posture(PostureDeclaration {
            controls: List::empty(),
            note: Text::new("").unwrap(),
        });
        assert_eq!(Kind::NAMES[usize::from(posture.code())], posture.name());
        assert_eq!(
            Kind::NAMES[usize::from(Kind::EarlyWarning.code())],
            "early-warning"
        );
        // The borsh variant index is the code: existing kinds keep their bytes.
        assert_eq!(encode(&Kind::EarlyWarning), [Kind::EARLY_WARNING_CODE]);
        assert_eq!(encode(&posture)[0], Kind::POSTURE_CODE);
        let heartbeat = Kind::Heartbeat { interval_ms: 7 };
        for control in [
            Control::SecurityOfficer,
            Control::MultiFactorAuth,
            Control::LogRetention,
        ] {
            assert_eq!(serde_json::to_value(control).unwrap(), control.name());
        }
        assert_eq!(encode(&heartbeat)[0], Kind::HEARTBEAT_CODE);
    }
}
