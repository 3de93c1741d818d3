//! The patent's risk model (TW I667589 claims 4–5, 10–11): four sub-scores — management,
//! basic-level security, information-management security and external threat — computed
//! per client over a window of committed messages, combined by configured weights into a
//! 0–100 risk value (higher is riskier), with the factors that moved each sub-score.
//!
//! [`assess`] is a pure function of its inputs: integer arithmetic only, every collection
//! taken in leaf order, so every validator and any offline verifier computes the same
//! value and the same explanation from the same ledger.
//!
//! Model version 1 (points per occurrence; each sub-score is capped at 100):
//!
//! | sub-score | factor | points |
//! |---|---|---|
//! | management (管理階層風險值) | a duty missed (overdue, or met late) with its deadline in the window | report 15, containment 25, investigation report 10 |
//! | management | security officer, incident response plan, ISMS certification, continuity drill | absent or undeclared 10, partial 5 |
//! | basic-level security (基層資安風險值) | alerts in the window | critical 10, high 4, medium 1 |
//! | basic-level security | incidents detected in the window, by highest level | 10, 20, 35, 50 |
//! | basic-level security | endpoint protection, patch management, awareness training | absent or undeclared 10, partial 5 |
//! | information-management security (資訊管理安全值) | heartbeat gaps: a collector silent for more than twice its declared interval | 5 per gap |
//! | information-management security | multi-factor authentication, backups, access review, log retention | absent or undeclared 10, partial 5 |
//! | external threat (外部威脅值) | early warnings in the window naming the client | 20 each |
//! | external threat | other early warnings in the window sharing an ATT&CK id with the client's evidence | 8 each |

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::crypto::KeyId;
use crate::incident::{Duty, DutyState, IncidentView};
use crate::message::{
    Control, ControlState, EvidenceKind, Kind, Message, SeverityLevel, UnixMillis,
};

/// The version of the model this module computes; answers name it.
pub const RISK_MODEL_VERSION: u32 = 1;

/// Leaf indexes listed per factor: enough to find the evidence, bounded so one answer
/// stays small whatever the window holds.
pub const MAX_FACTOR_LEAVES: usize = 32;

/// Largest weight of one sub-score, so weighted sums cannot overflow.
pub const MAX_WEIGHT: u32 = 1_000_000;

/// Highest value of a sub-score and of the risk value.
pub const MAX_SCORE: u32 = 100;

/// Heartbeats more than this many declared intervals apart make a gap.
pub const HEARTBEAT_GAP_FACTOR: u64 = 2;

/// The weight of each sub-score in the risk value (relative; they need not sum to 100).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskWeights {
    /// Management.
    pub management: u32,
    /// Basic-level security.
    pub basic_security: u32,
    /// Information-management security.
    pub information_security: u32,
    /// External threat.
    pub external_threat: u32,
}

impl Default for RiskWeights {
    /// Management and front-line security weigh most: they are what the organisation
    /// controls and what insurers ask about first.
    fn default() -> Self {
        Self {
            management: 30,
            basic_security: 30,
            information_security: 20,
            external_threat: 20,
        }
    }
}

impl RiskWeights {
    fn by_sub_score(&self) -> [(SubScoreKind, u32); 4] {
        [
            (SubScoreKind::Management, self.management),
            (SubScoreKind::BasicSecurity, self.basic_security),
            (SubScoreKind::InformationSecurity, self.information_security),
            (SubScoreKind::ExternalThreat, self.external_threat),
        ]
    }

    /// Checks that some weight is positive and none exceeds [`MAX_WEIGHT`].
    pub fn check(&self) -> Result<(), RiskError> {
        let weights = self.by_sub_score();
        if let Some((kind, weight)) = weights.iter().find(|(_, w)| *w > MAX_WEIGHT) {
            return Err(RiskError::WeightTooLarge {
                sub_score: kind.name(),
                weight: *weight,
            });
        }
        if weights.iter().all(|(_, w)| *w == 0) {
            return Err(RiskError::AllWeightsZero);
        }
        Ok(())
    }
}

/// Why a risk value could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RiskError {
    /// Every weight is zero.
    #[error("every risk weight is 0; at least one sub-score needs a positive weight")]
    AllWeightsZero,
    /// A weight is above the maximum.
    #[error("risk weight {weight} for {sub_score} is above the maximum {MAX_WEIGHT}")]
    WeightTooLarge {
        /// The sub-score.
        sub_score: &'static str,
        /// Its weight.
        weight: u32,
    },
    /// The window is empty or reversed.
    #[error("the window [{from_ms}, {to_ms}) is empty: from must be before to")]
    EmptyWindow {
        /// Start.
        from_ms: u64,
        /// End.
        to_ms: u64,
    },
}

/// One of the four sub-scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubScoreKind {
    /// 管理階層風險值: how the organisation governs security and handles incidents.
    Management,
    /// 基層資安風險值: what happens on the client's systems.
    BasicSecurity,
    /// 資訊管理安全值: monitoring and information-management hygiene.
    InformationSecurity,
    /// 外部威脅值: threats reported by the joint defense.
    ExternalThreat,
}

impl SubScoreKind {
    /// The name the API uses.
    pub fn name(self) -> &'static str {
        match self {
            SubScoreKind::Management => "management",
            SubScoreKind::BasicSecurity => "basic-security",
            SubScoreKind::InformationSecurity => "information-security",
            SubScoreKind::ExternalThreat => "external-threat",
        }
    }
}

/// A committed message with its place and time in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedMessage {
    /// Leaf index.
    pub leaf_index: u64,
    /// Its block's time.
    pub committed_at: UnixMillis,
    /// The signed message.
    pub message: Message,
}

/// What the risk value of one client over one window is computed from. Whoever gathers
/// it (a validator from its ledger, a verifier from a bundle) must include everything the
/// fields describe; [`assess`] ignores what falls outside them.
#[derive(Clone, Debug, Default)]
pub struct RiskInputs {
    /// The client organisation.
    pub client: String,
    /// Window start (inclusive), committed time.
    pub from: UnixMillis,
    /// Window end (exclusive), committed time.
    pub to: UnixMillis,
    /// The client's evidence and heartbeats committed in the window.
    pub messages: Vec<CommittedMessage>,
    /// The latest posture declaration about the client committed before `to`.
    pub posture: Option<CommittedMessage>,
    /// The client's incidents, evaluated as of the window's last millisecond.
    pub incidents: Vec<IncidentView>,
    /// Early warnings committed in the window.
    pub warnings: Vec<CommittedMessage>,
}

/// Something that moved a sub-score.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Factor {
    /// A stable identifier, e.g. `alerts-critical` or `control:backups`.
    pub factor: String,
    /// What it is, for people.
    pub description: String,
    /// How many occurrences.
    pub count: u64,
    /// Points added (before the sub-score's cap).
    pub points: u32,
    /// Leaf indexes of the messages behind it, the first [`MAX_FACTOR_LEAVES`].
    pub leaves: Vec<u64>,
}

/// One sub-score with its explanation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubScore {
    /// Which sub-score.
    pub sub_score: SubScoreKind,
    /// 0–100: the factors' points, capped.
    pub value: u32,
    /// Its weight in the risk value.
    pub weight: u32,
    /// What moved it, in a fixed order.
    pub factors: Vec<Factor>,
}

/// A client's risk over a window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskAssessment {
    /// [`RISK_MODEL_VERSION`].
    pub model_version: u32,
    /// The client.
    pub client: String,
    /// Window start (inclusive), milliseconds since the epoch.
    pub from_ms: u64,
    /// Window end (exclusive).
    pub to_ms: u64,
    /// 0–100: the weighted mean of the sub-scores, rounded half up.
    pub value: u32,
    /// The four sub-scores, in the order management, basic-level security,
    /// information-management security, external threat.
    pub sub_scores: Vec<SubScore>,
}

/// Computes the risk of `inputs.client` over `[inputs.from, inputs.to)` with `weights`.
pub fn assess(inputs: &RiskInputs, weights: &RiskWeights) -> Result<RiskAssessment, RiskError> {
    weights.check()?;
    if inputs.from >= inputs.to {
        return Err(RiskError::EmptyWindow {
            from_ms: inputs.from.0,
            to_ms: inputs.to.0,
        });
    }
    let in_window = |t: UnixMillis| t >= inputs.from && t < inputs.to;
    let mut messages: Vec<&CommittedMessage> = inputs
        .messages
        .iter()
        .filter(|m| m.message.client.as_str() == inputs.client && in_window(m.committed_at))
        .collect();
    messages.sort_by_key(|m| m.leaf_index);
    let mut warnings: Vec<&CommittedMessage> = inputs
        .warnings
        .iter()
        .filter(|m| matches!(m.message.kind, Kind::EarlyWarning) && in_window(m.committed_at))
        .collect();
    warnings.sort_by_key(|m| m.leaf_index);
    let posture = inputs.posture.as_ref().filter(|p| {
        p.message.client.as_str() == inputs.client
            && p.committed_at < inputs.to
            && matches!(p.message.kind, Kind::Posture(_))
    });
    let mut incidents: Vec<&IncidentView> = inputs
        .incidents
        .iter()
        .filter(|i| i.client == inputs.client)
        .collect();
    incidents.sort_by(|a, b| a.incident_id.cmp(&b.incident_id));

    let mut factors: BTreeMap<SubScoreKind, Vec<Factor>> = BTreeMap::new();
    let mut add = |kind: SubScoreKind, factor: Factor| {
        if factor.points > 0 {
            factors.entry(kind).or_default().push(factor);
        }
    };
    for factor in missed_duties(&incidents, inputs.from, inputs.to) {
        add(SubScoreKind::Management, factor);
    }
    for factor in alerts(&messages) {
        add(SubScoreKind::BasicSecurity, factor);
    }
    for factor in incident_levels(&incidents, inputs.from, inputs.to) {
        add(SubScoreKind::BasicSecurity, factor);
    }
    add(
        SubScoreKind::InformationSecurity,
        heartbeat_gaps(&messages, inputs.to),
    );
    for factor in matching_warnings(&inputs.client, &messages, &warnings) {
        add(SubScoreKind::ExternalThreat, factor);
    }
    for (kind, factor) in controls(posture) {
        add(kind, factor);
    }

    let mut weighted: u64 = 0;
    let mut total_weight: u64 = 0;
    let sub_scores = weights
        .by_sub_score()
        .into_iter()
        .map(|(kind, weight)| {
            let factors = factors.remove(&kind).unwrap_or_default();
            let points: u64 = factors.iter().map(|f| u64::from(f.points)).sum();
            let value = u32::try_from(points.min(u64::from(MAX_SCORE))).expect("capped at 100");
            weighted += u64::from(value) * u64::from(weight);
            total_weight += u64::from(weight);
            SubScore {
                sub_score: kind,
                value,
                weight,
                factors,
            }
        })
        .collect();
    // Rounded half up: (2 * sum + total) / (2 * total).
    let value = (2 * weighted + total_weight) / (2 * total_weight);
    Ok(RiskAssessment {
        model_version: RISK_MODEL_VERSION,
        client: inputs.client.clone(),
        from_ms: inputs.from.0,
        to_ms: inputs.to.0,
        value: u32::try_from(value).expect("a weighted mean of values up to 100"),
        sub_scores,
    })
}

/// Points for `count` occurrences at `each`, saturating (the sub-score caps anyway).
fn points(count: u64, each: u32) -> u32 {
    u32::try_from(count.saturating_mul(u64::from(each))).unwrap_or(u32::MAX)
}

fn first_leaves(leaves: impl IntoIterator<Item = u64>) -> Vec<u64> {
    leaves.into_iter().take(MAX_FACTOR_LEAVES).collect()
}

fn missed_duties(incidents: &[&IncidentView], from: UnixMillis, to: UnixMillis) -> Vec<Factor> {
    [
        (Duty::Report, 15, "reports"),
        (Duty::Containment, 25, "containments or recoveries"),
        (Duty::InvestigationReport, 10, "investigation reports"),
    ]
    .into_iter()
    .map(|(duty, each, what)| {
        let mut missed: Vec<(String, u64)> = Vec::new();
        for incident in incidents {
            for o in &incident.obligations {
                if o.duty == duty
                    && matches!(o.state, DutyState::Overdue | DutyState::MetLate)
                    && o.due_at_ms >= from.0
                    && o.due_at_ms < to.0
                {
                    missed.push((incident.incident_id.clone(), o.opened_by_leaf));
                }
            }
        }
        let ids: BTreeSet<&str> = missed.iter().map(|(id, _)| id.as_str()).collect();
        Factor {
            factor: format!("missed-{}", duty.name()),
            description: format!(
                "{} {what} overdue or late in the window (incidents {})",
                missed.len(),
                ids.into_iter().collect::<Vec<_>>().join(", ")
            ),
            count: missed.len() as u64,
            points: points(missed.len() as u64, each),
            leaves: first_leaves(missed.iter().map(|(_, leaf)| *leaf)),
        }
    })
    .collect()
}

fn alerts(messages: &[&CommittedMessage]) -> Vec<Factor> {
    [
        (SeverityLevel::Critical, 10, "critical"),
        (SeverityLevel::High, 4, "high"),
        (SeverityLevel::Medium, 1, "medium"),
    ]
    .into_iter()
    .map(|(level, each, name)| {
        let leaves: Vec<u64> = messages
            .iter()
            .filter(|m| {
                matches!(
                    m.message.kind,
                    Kind::Evidence {
                        evidence: EvidenceKind::Alert
                    }
                ) && m
                    .message
                    .severity
                    .as_ref()
                    .is_some_and(|s| s.level == level)
            })
            .map(|m| m.leaf_index)
            .collect();
        Factor {
            factor: format!("alerts-{name}"),
            description: format!("{} {name}-severity alerts in the window", leaves.len()),
            count: leaves.len() as u64,
            points: points(leaves.len() as u64, each),
            leaves: first_leaves(leaves),
        }
    })
    .collect()
}

fn incident_levels(incidents: &[&IncidentView], from: UnixMillis, to: UnixMillis) -> Vec<Factor> {
    [(1u8, 10), (2, 20), (3, 35), (4, 50)]
        .into_iter()
        .map(|(level, each)| {
            let found: Vec<&&IncidentView> = incidents
                .iter()
                .filter(|i| {
                    i.highest_level == Some(level)
                        && i.detected_at_ms.is_some_and(|t| t >= from.0 && t < to.0)
                })
                .collect();
            Factor {
                factor: format!("incidents-level-{level}"),
                description: format!(
                    "{} level {level} incidents detected in the window ({})",
                    found.len(),
                    found
                        .iter()
                        .map(|i| i.incident_id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                count: found.len() as u64,
                points: points(found.len() as u64, each),
                leaves: first_leaves(found.iter().filter_map(|i| i.records.first().copied())),
            }
        })
        .collect()
}

fn heartbeat_gaps(messages: &[&CommittedMessage], to: UnixMillis) -> Factor {
    let mut by_collector: BTreeMap<KeyId, Vec<(u64, u64, u64)>> = BTreeMap::new();
    for m in messages {
        if let Kind::Heartbeat { interval_ms } = m.message.kind {
            by_collector.entry(m.message.author).or_default().push((
                m.committed_at.0,
                interval_ms,
                m.leaf_index,
            ));
        }
    }
    let mut gaps: Vec<u64> = Vec::new();
    let mut silent_collectors = BTreeSet::new();
    for (collector, beats) in &by_collector {
        let allowed = |interval: u64| interval.saturating_mul(HEARTBEAT_GAP_FACTOR);
        for pair in beats.windows(2) {
            let ((t, interval, leaf), (next, _, _)) = (pair[0], pair[1]);
            if next.saturating_sub(t) > allowed(interval) {
                gaps.push(leaf);
                silent_collectors.insert(*collector);
            }
        }
        let &(last, interval, leaf) = beats.last().expect("grouped beats are not empty");
        if to.0.saturating_sub(last) > allowed(interval) {
            gaps.push(leaf);
            silent_collectors.insert(*collector);
        }
    }
    gaps.sort_unstable();
    Factor {
        factor: "heartbeat-gaps".into(),
        description: format!(
            "{} heartbeat gaps longer than {HEARTBEAT_GAP_FACTOR} intervals, from {} of {} \
             collectors (leaves: the last heartbeat before each gap)",
            gaps.len(),
            silent_collectors.len(),
            by_collector.len()
        ),
        count: gaps.len() as u64,
        points: points(gaps.len() as u64, 5),
        leaves: first_leaves(gaps),
    }
}

fn matching_warnings(
    client: &str,
    messages: &[&CommittedMessage],
    warnings: &[&CommittedMessage],
) -> Vec<Factor> {
    let seen: BTreeSet<&str> = messages
        .iter()
        .filter(|m| matches!(m.message.kind, Kind::Evidence { .. }))
        .flat_map(|m| m.message.attack_ids.iter().map(|id| id.as_str()))
        .collect();
    let mut targeted = Vec::new();
    let mut by_technique = Vec::new();
    let mut techniques = BTreeSet::new();
    for w in warnings {
        if w.message.client.as_str() == client {
            targeted.push(w.leaf_index);
            continue;
        }
        let shared: Vec<&str> = w
            .message
            .attack_ids
            .iter()
            .map(|id| id.as_str())
            .filter(|id| seen.contains(id))
            .collect();
        if !shared.is_empty() {
            by_technique.push(w.leaf_index);
            techniques.extend(shared);
        }
    }
    vec![
        Factor {
            factor: "warnings-targeted".into(),
            description: format!("{} early warnings naming the client", targeted.len()),
            count: targeted.len() as u64,
            points: points(targeted.len() as u64, 20),
            leaves: first_leaves(targeted),
        },
        Factor {
            factor: "warnings-matching-techniques".into(),
            description: format!(
                "{} early warnings sharing ATT&CK ids with the client's evidence ({})",
                by_technique.len(),
                techniques.into_iter().collect::<Vec<_>>().join(", ")
            ),
            count: by_technique.len() as u64,
            points: points(by_technique.len() as u64, 8),
            leaves: first_leaves(by_technique),
        },
    ]
}

/// The sub-score each control belongs to.
fn control_sub_score(control: Control) -> SubScoreKind {
    match control {
        Control::SecurityOfficer
        | Control::IncidentResponsePlan
        | Control::IsmsCertification
        | Control::ContinuityDrill => SubScoreKind::Management,
        Control::EndpointProtection | Control::PatchManagement | Control::AwarenessTraining => {
            SubScoreKind::BasicSecurity
        }
        Control::MultiFactorAuth
        | Control::Backups
        | Control::AccessReview
        | Control::LogRetention => SubScoreKind::InformationSecurity,
    }
}

/// Every control the model asks about, in a fixed order.
const CONTROLS: [Control; 11] = [
    Control::SecurityOfficer,
    Control::IncidentResponsePlan,
    Control::IsmsCertification,
    Control::ContinuityDrill,
    Control::EndpointProtection,
    Control::PatchManagement,
    Control::AwarenessTraining,
    Control::MultiFactorAuth,
    Control::Backups,
    Control::AccessReview,
    Control::LogRetention,
];

fn controls(posture: Option<&CommittedMessage>) -> Vec<(SubScoreKind, Factor)> {
    let declared: BTreeMap<Control, ControlState> = match posture.map(|p| &p.message.kind) {
        Some(Kind::Posture(declaration)) => {
            let mut states = BTreeMap::new();
            for status in declaration.controls.iter() {
                // A control listed twice counts at its weaker state.
                states
                    .entry(status.control)
                    .and_modify(|s: &mut ControlState| *s = (*s).min(status.state))
                    .or_insert(status.state);
            }
            states
        }
        _ => BTreeMap::new(),
    };
    CONTROLS
        .into_iter()
        .map(|control| {
            let name = control.name();
            let (state, each) = match declared.get(&control) {
                Some(ControlState::Implemented) => ("implemented", 0),
                Some(ControlState::Partial) => ("partial", 5),
                Some(ControlState::Absent) => ("absent", 10),
                None => ("not listed", 10),
            };
            let description = match posture {
                Some(p) => format!(
                    "{name}: {state} in the declaration of leaf {}",
                    p.leaf_index
                ),
                None => format!("{name}: no posture declaration"),
            };
            (
                control_sub_score(control),
                Factor {
                    factor: format!("control:{name}"),
                    description,
                    count: 1,
                    points: each,
                    leaves: posture.map(|p| p.leaf_index).into_iter().collect(),
                },
            )
        })
        .collect()
}
