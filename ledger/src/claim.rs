//! Insurance claim verification (ARCHITECTURE §7): does a claim hold up against the
//! evidence bundle of its incident?
//!
//! [`verify_claim`] verifies the bundle ([`crate::bundle::verify`]) and then answers the
//! insurer's questions from its verified entries only: the claim and its policy are on the
//! log; the claim falls within the cover; the client's evidence existed after the policy
//! started and before the claim (log order, and a public anchor no later than the claim);
//! the incident's reporting and containment deadlines were met under the versioned policy
//! table; the client's collectors' messages are complete over the window (no sequence
//! gaps, heartbeats present and never silent beyond twice their interval). Times of
//! entries are committed times, proven by the certified blocks the bundle carries.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::bundle::{Bundle, Finding, Report, VerifyOptions, verify};
use crate::crypto::KeyId;
use crate::incident::{DutyState, IncidentRecord, IncidentView, PolicyTable, evaluate};
use crate::message::{Envelope, InsuranceEvent, Kind, Money, UnixMillis};

/// Why a claim could not be evaluated at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// The named leaf is not a verified entry of the bundle.
    #[error("leaf {0} is not a verified entry of the bundle; export the claim with its incident")]
    ClaimNotInBundle(u64),
    /// The named leaf is not a claim.
    #[error("leaf {leaf_index} is a {kind} message, not an insurance claim")]
    NotAClaim {
        /// The leaf.
        leaf_index: u64,
        /// Its kind.
        kind: &'static str,
    },
}

/// One of the insurer's questions and its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClaimCheck {
    /// Stable name.
    pub check: &'static str,
    /// Whether it holds.
    pub passed: bool,
    /// What was found.
    pub detail: String,
}

/// A collector's stream over the window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CollectorStream {
    /// The collector's key id.
    pub collector: KeyId,
    /// First and last sequence numbers present.
    pub sequences: (u64, u64),
    /// Messages present.
    pub messages: usize,
    /// Heartbeats present.
    pub heartbeats: usize,
    /// Longest silence between consecutive messages (ms).
    pub longest_silence_ms: u64,
    /// Allowed silence: twice the longest declared heartbeat interval (ms); 0 without
    /// heartbeats.
    pub silence_allowed_ms: u64,
}

/// One step of the incident timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimelineEvent {
    /// Leaf index.
    pub leaf_index: u64,
    /// Committed time (proven by its block), ms since the epoch.
    pub at_ms: u64,
    /// What happened.
    pub what: String,
}

/// The answer to an insurer.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimVerdict {
    /// Whether every check holds.
    pub holds: bool,
    /// The claim's leaf.
    pub claim_leaf: u64,
    /// Claim id.
    pub claim_id: String,
    /// Policy id.
    pub policy_id: String,
    /// Incident id.
    pub incident_id: String,
    /// The client.
    pub client: String,
    /// Loss claimed.
    pub claimed_loss: Money,
    /// When the claim was committed (ms since the epoch).
    pub claim_time_ms: u64,
    /// The checks, in the order asked.
    pub checks: Vec<ClaimCheck>,
    /// The incident evaluated at the claim's time.
    pub incident: IncidentView,
    /// The client's collectors over the window.
    pub collectors: Vec<CollectorStream>,
    /// The timeline: incident records, the policy and the claim.
    pub timeline: Vec<TimelineEvent>,
    /// The bundle's failed checks, if any.
    pub bundle_failures: Vec<Finding>,
}

/// Evaluates the claim at leaf `claim_leaf` against `bundle`, verified with `options`
/// (the trusted genesis, chain facts); deadlines follow `table`.
pub fn verify_claim(
    bundle: &Bundle,
    claim_leaf: u64,
    options: &VerifyOptions,
    table: &PolicyTable,
) -> Result<ClaimVerdict, ClaimError> {
    let report = verify(bundle, options);
    let entries = verified_entries(bundle, &report);
    let (claim, claim_time_ms) = entries
        .get(&claim_leaf)
        .ok_or(ClaimError::ClaimNotInBundle(claim_leaf))?;
    let Kind::Insurance(InsuranceEvent::ClaimFiled {
        claim_id,
        policy_id,
        incident_id,
        claimed_loss,
    }) = &claim.body.kind
    else {
        return Err(ClaimError::NotAClaim {
            leaf_index: claim_leaf,
            kind: claim.body.kind.name(),
        });
    };
    let client = claim.body.client.clone();
    let claim_time_ms = *claim_time_ms;
    let mut checks = Vec::new();
    let mut check = |check: &'static str, passed: bool, detail: String| {
        checks.push(ClaimCheck {
            check,
            passed,
            detail,
        });
    };
    check(
        "untampered",
        report.passed(),
        if report.passed() {
            format!(
                "every check of the bundle passed ({} checks{})",
                report.checks_passed,
                if report.checked_on_chain {
                    ", anchors on the public chain"
                } else {
                    ", anchors offline only"
                }
            )
        } else {
            format!("{} checks of the bundle failed", report.failures.len())
        },
    );

    let policy = entries
        .iter()
        .find_map(|(&leaf, (e, _))| match &e.body.kind {
            Kind::Insurance(InsuranceEvent::Policy {
                policy_id: id,
                client: covered,
                starts_at,
                ends_at,
            }) if id == policy_id && *covered == client && leaf < claim_leaf => {
                Some((leaf, *starts_at, *ends_at))
            }
            _ => None,
        });
    match policy {
        Some((leaf, starts_at, ends_at)) => {
            let within = (starts_at.0..=ends_at.0).contains(&claim_time_ms);
            check(
                "claim-within-cover",
                within,
                format!(
                    "policy {policy_id} (leaf {leaf}) covers {}..{} ms; the claim is at {claim_time_ms} ms",
                    starts_at.0, ends_at.0
                ),
            );
        }
        None => check(
            "claim-within-cover",
            false,
            format!("no verified policy {policy_id} for {client} committed before the claim"),
        ),
    }

    // The client's evidence: collector messages and incident records about it.
    let evidence: Vec<(u64, &Envelope, u64)> = entries
        .iter()
        .filter(|(_, (e, _))| {
            e.body.client == client
                && (e.body.kind.is_collector_kind()
                    || matches!(&e.body.kind, Kind::Incident(ev) if ev.incident_id == *incident_id))
        })
        .map(|(&leaf, (e, at))| (leaf, e, *at))
        .collect();
    // What the claim rests on: heartbeats only show a collector was alive, up to the
    // claim itself, so they are judged by collectors-complete, not dated against the
    // cover and the claim (the last ones before a claim cannot be anchored before it).
    let dated: Vec<&(u64, &Envelope, u64)> = evidence
        .iter()
        .filter(|(_, e, _)| !matches!(e.body.kind, Kind::Heartbeat { .. }))
        .collect();
    let starts_at = policy.map_or(u64::MAX, |(_, s, _)| s.0);
    let before_start: Vec<u64> = dated
        .iter()
        .filter(|(_, _, at)| *at < starts_at)
        .map(|(leaf, ..)| *leaf)
        .collect();
    check(
        "evidence-after-policy-start",
        policy.is_some() && before_start.is_empty(),
        if before_start.is_empty() {
            format!(
                "{} evidence entries (heartbeats aside), none before the cover started",
                dated.len()
            )
        } else {
            format!("entries {before_start:?} predate the cover")
        },
    );
    let claim_time_s = claim_time_ms / 1000;
    let late: Vec<u64> = dated
        .iter()
        .filter(|(leaf, ..)| {
            *leaf > claim_leaf
                || report
                    .entries
                    .iter()
                    .find(|s| s.leaf_index == *leaf)
                    .and_then(|s| s.anchored_before_s)
                    .is_none_or(|anchored| anchored > claim_time_s)
        })
        .map(|(leaf, ..)| *leaf)
        .collect();
    check(
        "evidence-before-claim",
        late.is_empty() && !dated.is_empty(),
        if late.is_empty() {
            format!(
                "all {} evidence entries (heartbeats aside) precede the claim in the log and \
                 are anchored in a public block no later than the claim",
                dated.len()
            )
        } else {
            format!("entries {late:?} are after the claim or not anchored before it")
        },
    );

    let records: Vec<IncidentRecord> = evidence
        .iter()
        .filter_map(|(leaf, e, at)| match &e.body.kind {
            Kind::Incident(ev) => Some(IncidentRecord {
                leaf_index: *leaf,
                committed_at: UnixMillis(*at),
                action: ev.action.clone(),
            }),
            _ => None,
        })
        .collect();
    let incident = evaluate(
        client.as_str(),
        incident_id,
        &records,
        table,
        UnixMillis(claim_time_ms),
    );
    let missed: Vec<String> = incident
        .obligations
        .iter()
        .filter(|o| matches!(o.state, DutyState::Overdue | DutyState::MetLate))
        .map(|o| format!("{} due {} ms ({:?})", o.duty.name(), o.due_at_ms, o.state))
        .collect();
    check(
        "deadlines-met",
        incident.detected_at_ms.is_some() && missed.is_empty(),
        match (&incident.detected_at_ms, missed.is_empty()) {
            (None, _) => format!("no detection record of incident {incident_id} in the bundle"),
            (Some(_), true) => format!(
                "{} duties, none overdue or met late at the claim's time",
                incident.obligations.len()
            ),
            (Some(_), false) => format!("missed: {}", missed.join("; ")),
        },
    );

    let collectors = streams(&evidence);
    let gaps: Vec<String> = report
        .failures
        .iter()
        .filter(|f| matches!(f.failure.check(), "sequence-complete" | "sequence-chain"))
        .map(ToString::to_string)
        .collect();
    let silent: Vec<String> = collectors
        .iter()
        .filter(|c| c.heartbeats == 0 || c.longest_silence_ms > c.silence_allowed_ms)
        .map(|c| {
            format!(
                "collector {} ({} heartbeats, silent {} ms, {} allowed)",
                c.collector, c.heartbeats, c.longest_silence_ms, c.silence_allowed_ms
            )
        })
        .collect();
    check(
        "collectors-complete",
        !collectors.is_empty() && gaps.is_empty() && silent.is_empty(),
        if collectors.is_empty() {
            "no collector messages of the client in the bundle".into()
        } else if gaps.is_empty() && silent.is_empty() {
            format!(
                "{} collectors: no sequence gaps, heartbeats present",
                collectors.len()
            )
        } else {
            gaps.into_iter()
                .chain(silent)
                .collect::<Vec<_>>()
                .join("; ")
        },
    );

    let mut timeline: Vec<TimelineEvent> = evidence
        .iter()
        .filter_map(|(leaf, e, at)| match &e.body.kind {
            Kind::Incident(ev) => Some(TimelineEvent {
                leaf_index: *leaf,
                at_ms: *at,
                what: format!("incident {}: {:?}", ev.incident_id, ev.action),
            }),
            _ => None,
        })
        .collect();
    if let Some((leaf, starts_at, ends_at)) = policy {
        timeline.push(TimelineEvent {
            leaf_index: leaf,
            at_ms: entries[&leaf].1,
            what: format!(
                "policy {policy_id} committed, cover {}..{} ms",
                starts_at.0, ends_at.0
            ),
        });
    }
    timeline.push(TimelineEvent {
        leaf_index: claim_leaf,
        at_ms: claim_time_ms,
        what: format!(
            "claim {claim_id} filed: {} {} (minor units)",
            claimed_loss.minor_units, claimed_loss.currency
        ),
    });
    timeline.sort_by_key(|t| t.leaf_index);

    let holds = checks.iter().all(|c| c.passed);
    Ok(ClaimVerdict {
        holds,
        claim_leaf,
        claim_id: claim_id.to_string(),
        policy_id: policy_id.to_string(),
        incident_id: incident_id.to_string(),
        client: client.to_string(),
        claimed_loss: claimed_loss.clone(),
        claim_time_ms,
        checks,
        incident,
        collectors,
        timeline,
        bundle_failures: report.failures,
    })
}

/// Verified entries by leaf with their committed times, proven by their blocks.
fn verified_entries(bundle: &Bundle, report: &Report) -> BTreeMap<u64, (Envelope, u64)> {
    use base64::Engine as _;
    let committed: BTreeMap<u64, u64> = report
        .entries
        .iter()
        .map(|e| (e.leaf_index, e.committed_at_ms))
        .collect();
    bundle
        .entries
        .iter()
        .filter_map(|e| {
            let at = *committed.get(&e.leaf_index)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&e.envelope)
                .ok()?;
            let envelope = Envelope::decode(&bytes).ok()?;
            Some((e.leaf_index, (envelope, at)))
        })
        .collect()
}

fn streams(evidence: &[(u64, &Envelope, u64)]) -> Vec<CollectorStream> {
    let mut by_author: BTreeMap<KeyId, Vec<(u64, &Envelope)>> = BTreeMap::new();
    for (_, e, at) in evidence {
        if e.body.kind.is_collector_kind() {
            by_author.entry(e.body.author).or_default().push((*at, e));
        }
    }
    by_author
        .into_iter()
        .map(|(collector, mut messages)| {
            messages.sort_by_key(|(_, e)| e.body.sequence);
            let interval_ms = messages
                .iter()
                .filter_map(|(_, e)| match e.body.kind {
                    Kind::Heartbeat { interval_ms } => Some(interval_ms),
                    _ => None,
                })
                .max();
            CollectorStream {
                collector,
                sequences: (
                    messages.first().map_or(0, |(_, e)| e.body.sequence),
                    messages.last().map_or(0, |(_, e)| e.body.sequence),
                ),
                messages: messages.len(),
                heartbeats: messages
                    .iter()
                    .filter(|(_, e)| matches!(e.body.kind, Kind::Heartbeat { .. }))
                    .count(),
                longest_silence_ms: messages
                    .windows(2)
                    .map(|w| w[1].0.saturating_sub(w[0].0))
                    .max()
                    .unwrap_or(0),
                silence_allowed_ms: interval_ms.map_or(0, |i| i.saturating_mul(2)),
            }
        })
        .collect()
}

/// The verdict as a Markdown report an insurer can attach to the claim file.
pub fn markdown(verdict: &ClaimVerdict) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Claim {} — {}\n",
        verdict.claim_id,
        if verdict.holds {
            "HOLDS"
        } else {
            "DOES NOT HOLD"
        }
    );
    let _ = writeln!(
        out,
        "Client `{}`, policy `{}`, incident `{}`, claimed loss {} {} (minor units), claim \
         committed at {} ms (leaf {}).\n",
        verdict.client,
        verdict.policy_id,
        verdict.incident_id,
        verdict.claimed_loss.minor_units,
        verdict.claimed_loss.currency,
        verdict.claim_time_ms,
        verdict.claim_leaf
    );
    let _ = writeln!(
        out,
        "## Checks\n\n| check | result | detail |\n|---|---|---|"
    );
    for c in &verdict.checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            c.check,
            if c.passed { "pass" } else { "FAIL" },
            c.detail.replace('|', "\\|")
        );
    }
    let _ = writeln!(
        out,
        "\n## Incident duties (policy {})\n\n| duty | due (ms) | met (ms) | state |\n|---|---|---|---|",
        verdict
            .incident
            .policy
            .as_ref()
            .map_or("-".to_string(), |p| format!("v{} {}", p.version, p.title))
    );
    for o in &verdict.incident.obligations {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:?} |",
            o.duty.name(),
            o.due_at_ms,
            o.met_at_ms.map_or("-".to_string(), |m| m.to_string()),
            o.state
        );
    }
    let _ = writeln!(
        out,
        "\n## Collectors\n\n| collector | sequences | messages | heartbeats | longest silence (ms) | allowed (ms) |\n|---|---|---|---|---|---|"
    );
    for c in &verdict.collectors {
        let _ = writeln!(
            out,
            "| {} | {}–{} | {} | {} | {} | {} |",
            c.collector,
            c.sequences.0,
            c.sequences.1,
            c.messages,
            c.heartbeats,
            c.longest_silence_ms,
            c.silence_allowed_ms
        );
    }
    let _ = writeln!(
        out,
        "\n## Timeline\n\n| leaf | time (ms) | event |\n|---|---|---|"
    );
    for t in &verdict.timeline {
        let _ = writeln!(out, "| {} | {} | {} |", t.leaf_index, t.at_ms, t.what);
    }
    if !verdict.bundle_failures.is_empty() {
        let _ = writeln!(out, "\n## Bundle failures\n");
        for f in &verdict.bundle_failures {
            let _ = writeln!(out, "- {f}");
        }
    }
    out
}
