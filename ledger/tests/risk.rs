//! The risk model: each sub-score moves for the reasons the model table gives, the value
//! is the rounded weighted mean, and the answer does not depend on input order.

use custos_ledger::codec::{List, Text};
use custos_ledger::crypto::SecretKey;
use custos_ledger::hash::Sha256Hash;
use custos_ledger::incident::{HOUR_MS, IncidentRecord, PolicyTable, evaluate};
use custos_ledger::message::{
    Control, ControlState, ControlStatus, EvidenceKind, IncidentAction, IncidentLevel, Kind,
    Message, PayloadDescriptor, PostureDeclaration, Severity, SeverityLevel, SeverityScale,
    SourceFormat, UnixMillis,
};
use custos_ledger::risk::{
    CommittedMessage, RiskAssessment, RiskError, RiskInputs, RiskWeights, SubScoreKind, assess,
};

const T0: u64 = 1_709_251_200_000;
const CLIENT: &str = "acme-bank";

fn message(author: u8, client: &str, kind: Kind) -> Message {
    Message {
        network: Text::new("custos-test").unwrap(),
        author: SecretKey::from_seed(&[author; 32]).public().key_id(),
        client: Text::new(client).unwrap(),
        sequence: 1,
        prev: Sha256Hash::ZERO,
        kind,
        format: SourceFormat::Raw,
        occurred_at: None,
        observed_at: UnixMillis(T0),
        severity: None,
        rule_id: None,
        host: None,
        attack_ids: List::empty(),
        references: List::empty(),
        parse_error: None,
        payload: PayloadDescriptor::of(Text::new("text/plain").unwrap(), b""),
    }
}

fn at(leaf_index: u64, offset_ms: u64, message: Message) -> CommittedMessage {
    CommittedMessage {
        leaf_index,
        committed_at: UnixMillis(T0 + offset_ms),
        message,
    }
}

fn alert(level: SeverityLevel, attack: &[&str]) -> Message {
    let mut m = message(
        1,
        CLIENT,
        Kind::Evidence {
            evidence: EvidenceKind::Alert,
        },
    );
    m.severity = Some(Severity {
        level,
        original: Text::new("x").unwrap(),
        scale: SeverityScale::Named,
    });
    m.attack_ids = List::new(attack.iter().map(|a| Text::new(*a).unwrap()).collect()).unwrap();
    m
}

fn heartbeat(author: u8) -> Message {
    message(
        author,
        CLIENT,
        Kind::Heartbeat {
            interval_ms: 60_000,
        },
    )
}

fn warning(client: &str, attack: &[&str]) -> Message {
    let mut m = message(50, client, Kind::EarlyWarning);
    m.attack_ids = List::new(attack.iter().map(|a| Text::new(*a).unwrap()).collect()).unwrap();
    m
}

fn posture(states: &[(Control, ControlState)]) -> Message {
    message(
        60,
        CLIENT,
        Kind::Posture(PostureDeclaration {
            controls: List::new(
                states
                    .iter()
                    .map(|&(control, state)| ControlStatus { control, state })
                    .collect(),
            )
            .unwrap(),
            note: Text::new("").unwrap(),
        }),
    )
}

fn all_controls(state: ControlState) -> Vec<(Control, ControlState)> {
    [
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
    ]
    .into_iter()
    .map(|c| (c, state))
    .collect()
}

fn window(hours: u64) -> RiskInputs {
    RiskInputs {
        client: CLIENT.into(),
        from: UnixMillis(T0),
        to: UnixMillis(T0 + hours * HOUR_MS),
        ..RiskInputs::default()
    }
}

fn sub(a: &RiskAssessment, kind: SubScoreKind) -> (u32, Vec<(String, u32)>) {
    let s = a.sub_scores.iter().find(|s| s.sub_score == kind).unwrap();
    (
        s.value,
        s.factors
            .iter()
            .map(|f| (f.factor.clone(), f.points))
            .collect(),
    )
}

#[test]
fn with_nothing_declared_every_control_counts_as_absent() {
    let a = assess(&window(24), &RiskWeights::default()).unwrap();
    assert_eq!(sub(&a, SubScoreKind::Management).0, 40);
    assert_eq!(sub(&a, SubScoreKind::BasicSecurity).0, 30);
    assert_eq!(sub(&a, SubScoreKind::InformationSecurity).0, 40);
    assert_eq!(sub(&a, SubScoreKind::ExternalThreat), (0, vec![]));
    // (40·30 + 30·30 + 40·20 + 0·20) / 100 = 29.
    assert_eq!(a.value, 29);
    let factor = &a.sub_scores[0].factors[0];
    assert_eq!(factor.factor, "control:security-officer");
    assert_eq!(
        factor.description,
        "security-officer: no posture declaration"
    );
}

/// A window with something in every sub-score.
fn busy_window() -> RiskInputs {
    let mut inputs = window(24);
    let mut leaf = 100;
    let mut next = || {
        leaf += 1;
        leaf
    };
    inputs.messages = vec![
        at(next(), HOUR_MS, alert(SeverityLevel::Critical, &["T1486"])),
        at(next(), HOUR_MS, alert(SeverityLevel::Critical, &[])),
        at(next(), HOUR_MS, alert(SeverityLevel::High, &["T1059"])),
        at(next(), HOUR_MS, alert(SeverityLevel::Medium, &[])),
        at(next(), HOUR_MS, alert(SeverityLevel::Low, &[])),
        // Outside the window, and another client's: not counted.
        at(next(), 24 * HOUR_MS, alert(SeverityLevel::Critical, &[])),
        {
            let mut other = alert(SeverityLevel::Critical, &[]);
            other.client = Text::new("initech").unwrap();
            at(next(), HOUR_MS, other)
        },
    ];
    // Collector 2 beats every minute; collector 3 misses 3 minutes once and then stops
    // more than two intervals before the window ends.
    for minute in 0..=24 * 60 - 1 {
        inputs
            .messages
            .push(at(next(), minute * 60_000, heartbeat(2)));
    }
    for minute in [0, 1, 4, 5] {
        inputs
            .messages
            .push(at(next(), minute * 60_000, heartbeat(3)));
    }
    inputs.warnings = vec![
        at(next(), 2 * HOUR_MS, warning(CLIENT, &[])),
        at(next(), 2 * HOUR_MS, warning("f-isac", &["T1486", "T1566"])),
        at(next(), 2 * HOUR_MS, warning("f-isac", &["T1190"])),
        at(next(), 30 * HOUR_MS, warning(CLIENT, &[])),
    ];
    inputs.posture = Some(at(
        next(),
        0,
        posture(&[
            (Control::SecurityOfficer, ControlState::Implemented),
            (Control::IncidentResponsePlan, ControlState::Implemented),
            (Control::IsmsCertification, ControlState::Partial),
            (Control::ContinuityDrill, ControlState::Implemented),
            (Control::EndpointProtection, ControlState::Implemented),
            (Control::PatchManagement, ControlState::Absent),
            (Control::AwarenessTraining, ControlState::Implemented),
            (Control::MultiFactorAuth, ControlState::Implemented),
            (Control::Backups, ControlState::Implemented),
            (Control::AccessReview, ControlState::Implemented),
            (Control::LogRetention, ControlState::Implemented),
            (Control::Backups, ControlState::Partial),
        ]),
    ));
    // A level 3 incident reported late and contained in time.
    let level = |n| IncidentLevel::new(n).unwrap();
    let records = vec![
        IncidentRecord {
            leaf_index: 500,
            committed_at: UnixMillis(T0 + HOUR_MS),
            action: IncidentAction::Detected {
                level: level(2),
                aware_at: UnixMillis(T0 + HOUR_MS),
            },
        },
        IncidentRecord {
            leaf_index: 501,
            committed_at: UnixMillis(T0 + 3 * HOUR_MS),
            action: IncidentAction::LevelChanged { level: level(3) },
        },
        IncidentRecord {
            leaf_index: 502,
            committed_at: UnixMillis(T0 + 5 * HOUR_MS),
            action: IncidentAction::Reported,
        },
        IncidentRecord {
            leaf_index: 503,
            committed_at: UnixMillis(T0 + 20 * HOUR_MS),
            action: IncidentAction::Contained,
        },
    ];
    inputs.incidents = vec![evaluate(
        CLIENT,
        "INC-7",
        &records,
        &PolicyTable::standard(),
        UnixMillis(inputs.to.0 - 1),
    )];
    inputs
}

#[test]
fn each_sub_score_moves_for_its_own_factors() {
    let a = assess(&busy_window(), &RiskWeights::default()).unwrap();

    // Both reports (of detection and of the raise) were late: 2 × 15; ISMS partial: 5.
    let (value, factors) = sub(&a, SubScoreKind::Management);
    assert_eq!(
        factors,
        [
            ("missed-report".into(), 30),
            ("control:isms-certification".into(), 5)
        ]
    );
    assert_eq!(value, 35);
    let missed = &a.sub_scores[0].factors[0];
    assert_eq!(missed.count, 2);
    assert_eq!(missed.leaves, [500, 501]);
    assert!(
        missed.description.contains("INC-7"),
        "{}",
        missed.description
    );

    // 2 critical (20) + 1 high (4) + 1 medium (1) + a level 3 incident (35) + patching
    // absent (10).
    let (value, factors) = sub(&a, SubScoreKind::BasicSecurity);
    assert_eq!(
        factors,
        [
            ("alerts-critical".into(), 20),
            ("alerts-high".into(), 4),
            ("alerts-medium".into(), 1),
            ("incidents-level-3".into(), 35),
            ("control:patch-management".into(), 10),
        ]
    );
    assert_eq!(value, 70);
    assert_eq!(a.sub_scores[1].factors[0].leaves, [101, 102]);

    // Collector 3: a gap from minute 1 to 4 and silence after minute 5 (2 × 5); backups
    // listed twice count at the weaker state, partial (5).
    let (value, factors) = sub(&a, SubScoreKind::InformationSecurity);
    assert_eq!(
        factors,
        [("heartbeat-gaps".into(), 10), ("control:backups".into(), 5)]
    );
    assert_eq!(value, 15);
    let gaps = &a.sub_scores[2].factors[0];
    assert!(
        gaps.description.contains("from 1 of 2 collectors"),
        "{}",
        gaps.description
    );

    // One warning names the client (20); one shares T1486 with its alerts (8); T1190 does
    // not match; the one after the window does not count.
    let (value, factors) = sub(&a, SubScoreKind::ExternalThreat);
    assert_eq!(
        factors,
        [
            ("warnings-targeted".into(), 20),
            ("warnings-matching-techniques".into(), 8)
        ]
    );
    assert_eq!(value, 28);
    assert!(a.sub_scores[3].factors[1].description.ends_with("(T1486)"));

    // (35·30 + 70·30 + 15·20 + 28·20) / 100 = 40.1 → 40.
    assert_eq!(a.value, 40);
    let weights = RiskWeights {
        management: 0,
        basic_security: 1,
        information_security: 0,
        external_threat: 1,
    };
    // (70 + 28) / 2 = 49.
    assert_eq!(assess(&busy_window(), &weights).unwrap().value, 49);
    let weights = RiskWeights {
        management: 1,
        basic_security: 0,
        information_security: 1,
        external_threat: 0,
    };
    // (35 + 15) / 2 = 25; and (35 + 28) / 2 = 31.5 rounds half up to 32.
    assert_eq!(assess(&busy_window(), &weights).unwrap().value, 25);
    let weights = RiskWeights {
        management: 1,
        basic_security: 0,
        information_security: 0,
        external_threat: 1,
    };
    assert_eq!(assess(&busy_window(), &weights).unwrap().value, 32);
}

#[test]
fn input_order_does_not_change_the_answer_and_sub_scores_cap_at_100() {
    let ordered = busy_window();
    let mut shuffled = busy_window();
    shuffled.messages.reverse();
    shuffled.warnings.reverse();
    let (a, b) = (
        assess(&ordered, &RiskWeights::default()).unwrap(),
        assess(&shuffled, &RiskWeights::default()).unwrap(),
    );
    assert_eq!(a, b);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );

    let mut flood = window(24);
    flood.posture = Some(at(1, 0, posture(&all_controls(ControlState::Implemented))));
    flood.messages = (0..1_000)
        .map(|i| at(10 + i, HOUR_MS, alert(SeverityLevel::Critical, &[])))
        .collect();
    let a = assess(&flood, &RiskWeights::default()).unwrap();
    let basic = &a.sub_scores[1];
    assert_eq!(basic.value, 100);
    assert_eq!(basic.factors[0].points, 10_000);
    assert_eq!(basic.factors[0].count, 1_000);
    assert_eq!(
        basic.factors[0].leaves.len(),
        32,
        "listed leaves are bounded"
    );
    assert_eq!(a.value, 30);
    assert_eq!(sub(&a, SubScoreKind::Management), (0, vec![]));
}

#[test]
fn bad_weights_and_windows_are_refused() {
    let zero = RiskWeights {
        management: 0,
        basic_security: 0,
        information_security: 0,
        external_threat: 0,
    };
    assert_eq!(assess(&window(1), &zero), Err(RiskError::AllWeightsZero));
    let huge = RiskWeights {
        external_threat: 2_000_000,
        ..RiskWeights::default()
    };
    assert!(matches!(
        assess(&window(1), &huge),
        Err(RiskError::WeightTooLarge {
            sub_score: "external-threat",
            ..
        })
    ));
    let mut empty = window(1);
    empty.to = empty.from;
    assert!(matches!(
        assess(&empty, &RiskWeights::default()),
        Err(RiskError::EmptyWindow { .. })
    ));
}
