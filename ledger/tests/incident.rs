//! Incident deadlines at their edges: exactly at a deadline, a millisecond and a second
//! after, level changes mid-incident, and an amendment taking effect mid-incident.

use custos_ledger::incident::{
    Duty, DutyState, HOUR_MS, IncidentRecord, IncidentStatus, IncidentView, PolicyError,
    PolicyTable, PolicyVersion, add_calendar_months, evaluate,
};
use custos_ledger::message::{IncidentAction, IncidentLevel, UnixMillis};

/// 2024-03-01T00:00:00Z.
const T0: u64 = 1_709_251_200_000;
const SECOND_MS: u64 = 1_000;

fn level(n: u8) -> IncidentLevel {
    IncidentLevel::new(n).unwrap()
}

/// Records committed at the given offsets from [`T0`], leaf indexes in order.
fn records(steps: &[(u64, IncidentAction)]) -> Vec<IncidentRecord> {
    steps
        .iter()
        .enumerate()
        .map(|(i, (offset_ms, action))| IncidentRecord {
            leaf_index: 10 + i as u64,
            committed_at: UnixMillis(T0 + offset_ms),
            action: action.clone(),
        })
        .collect()
}

fn detected(n: u8) -> IncidentAction {
    IncidentAction::Detected {
        level: level(n),
        aware_at: UnixMillis(T0),
    }
}

fn eval(steps: &[(u64, IncidentAction)], as_of_offset_ms: u64) -> IncidentView {
    evaluate(
        "acme-bank",
        "INC-1",
        &records(steps),
        &PolicyTable::standard(),
        UnixMillis(T0 + as_of_offset_ms),
    )
}

fn states(view: &IncidentView, duty: Duty) -> Vec<DutyState> {
    view.obligations
        .iter()
        .filter(|o| o.duty == duty)
        .map(|o| o.state)
        .collect()
}

#[test]
fn a_report_exactly_at_the_deadline_is_on_time_and_any_later_is_late() {
    let on_time = eval(
        &[(0, detected(2)), (HOUR_MS, IncidentAction::Reported)],
        2 * HOUR_MS,
    );
    let report = &on_time.obligations[0];
    assert_eq!(
        (report.duty, report.due_at_ms),
        (Duty::Report, T0 + HOUR_MS)
    );
    assert_eq!(report.state, DutyState::Met);
    assert_eq!(report.met_at_ms, Some(T0 + HOUR_MS));

    for late_ms in [1, SECOND_MS] {
        let late = eval(
            &[
                (0, detected(2)),
                (HOUR_MS + late_ms, IncidentAction::Reported),
            ],
            2 * HOUR_MS,
        );
        assert_eq!(
            states(&late, Duty::Report),
            [DutyState::MetLate],
            "{late_ms} ms late"
        );
        assert!(!late.overdue, "a late report is late, not overdue");
    }

    // Without a report: pending up to and at the deadline, overdue one second after.
    let unreported = [(0, detected(2))];
    assert_eq!(
        states(&eval(&unreported, HOUR_MS), Duty::Report),
        [DutyState::Pending]
    );
    assert!(!eval(&unreported, HOUR_MS).overdue);
    let after = eval(&unreported, HOUR_MS + SECOND_MS);
    assert_eq!(states(&after, Duty::Report), [DutyState::Overdue]);
    assert!(after.overdue);
    assert_eq!(
        states(&eval(&unreported, HOUR_MS + 1), Duty::Report),
        [DutyState::Overdue]
    );
}

#[test]
fn containment_is_due_72_hours_after_awareness_at_levels_1_and_2_and_36_at_3_and_4() {
    for (n, window_h) in [(1, 72), (2, 72), (3, 36), (4, 36)] {
        let due = window_h * HOUR_MS;
        let view = eval(&[(0, detected(n)), (due, IncidentAction::Contained)], due);
        let contain = &view.obligations[1];
        assert_eq!(contain.duty, Duty::Containment);
        assert_eq!(contain.due_at_ms, T0 + due, "level {n}");
        assert_eq!(
            contain.state,
            DutyState::Met,
            "level {n} contained at the deadline"
        );
        assert_eq!(view.status, IncidentStatus::Contained);

        let late = eval(
            &[
                (0, detected(n)),
                (due + SECOND_MS, IncidentAction::Recovered),
            ],
            due,
        );
        // Evaluated before the late record committed, it is not yet there.
        assert_eq!(states(&late, Duty::Containment), [DutyState::Pending]);
        let late = eval(
            &[
                (0, detected(n)),
                (due + SECOND_MS, IncidentAction::Recovered),
            ],
            due + SECOND_MS,
        );
        assert_eq!(
            states(&late, Duty::Containment),
            [DutyState::MetLate],
            "level {n}"
        );
        assert_eq!(
            states(
                &eval(&[(0, detected(n))], due + SECOND_MS),
                Duty::Containment
            ),
            [DutyState::Overdue]
        );
    }
}

#[test]
fn deadlines_run_from_awareness_not_from_the_detection_record() {
    // Aware two hours before the record was committed: the report is already overdue.
    let steps = [(
        2 * HOUR_MS,
        IncidentAction::Detected {
            level: level(1),
            aware_at: UnixMillis(T0),
        },
    )];
    let view = eval(&steps, 2 * HOUR_MS);
    assert_eq!(view.aware_at_ms, Some(T0));
    assert_eq!(view.detected_at_ms, Some(T0 + 2 * HOUR_MS));
    assert_eq!(states(&view, Duty::Report), [DutyState::Overdue]);

    // An awareness time after the record is clamped to the record's committed time.
    let steps = [(
        0,
        IncidentAction::Detected {
            level: level(1),
            aware_at: UnixMillis(T0 + 100 * HOUR_MS),
        },
    )];
    let view = eval(&steps, 0);
    assert_eq!(view.aware_at_ms, Some(T0));
    assert_eq!(view.obligations[0].due_at_ms, T0 + HOUR_MS);
}

#[test]
fn a_level_change_mid_incident_restarts_reporting_and_moves_containment() {
    let raise_at = 10 * HOUR_MS;
    let base = vec![
        (0, detected(2)),
        (HOUR_MS / 2, IncidentAction::Reported),
        (raise_at, IncidentAction::LevelChanged { level: level(3) }),
    ];
    // The first report does not cover the new level: a second report is due an hour
    // after the change was committed.
    let view = eval(&base, raise_at + HOUR_MS);
    assert_eq!(
        states(&view, Duty::Report),
        [DutyState::Met, DutyState::Pending]
    );
    let second = &view.obligations[2];
    assert_eq!(second.due_at_ms, T0 + raise_at + HOUR_MS);
    assert_eq!(second.level, Some(3));
    assert_eq!(
        states(&eval(&base, raise_at + HOUR_MS + SECOND_MS), Duty::Report)[1],
        DutyState::Overdue
    );

    // Containment moves to level 3's window, still counted from awareness.
    let contain = &view.obligations[1];
    assert_eq!(contain.level, Some(3));
    assert_eq!(contain.due_at_ms, T0 + 36 * HOUR_MS);
    let mut at_deadline = base.clone();
    at_deadline.push((raise_at + HOUR_MS, IncidentAction::Reported));
    at_deadline.push((36 * HOUR_MS, IncidentAction::Contained));
    let view = eval(&at_deadline, 40 * HOUR_MS);
    assert_eq!(
        states(&view, Duty::Report),
        [DutyState::Met, DutyState::Met]
    );
    assert_eq!(states(&view, Duty::Containment), [DutyState::Met]);
    let mut second_late = base.clone();
    second_late.push((36 * HOUR_MS + SECOND_MS, IncidentAction::Contained));
    assert_eq!(
        states(&eval(&second_late, 40 * HOUR_MS), Duty::Containment),
        [DutyState::MetLate]
    );
    assert_eq!(view.level, Some(3));
    assert_eq!(view.highest_level, Some(3));

    // Raised after level 3's window has passed: overdue at once, as the rule counts from
    // awareness.
    let raised_late = [
        (0, detected(2)),
        (
            40 * HOUR_MS,
            IncidentAction::LevelChanged { level: level(4) },
        ),
    ];
    assert_eq!(
        states(&eval(&raised_late, 40 * HOUR_MS), Duty::Containment),
        [DutyState::Overdue]
    );
    // Lowered before level 3's window ends: the level 1 window applies again.
    let lowered = [
        (0, detected(3)),
        (HOUR_MS, IncidentAction::LevelChanged { level: level(1) }),
    ];
    let view = eval(&lowered, 50 * HOUR_MS);
    assert_eq!(view.obligations[1].due_at_ms, T0 + 72 * HOUR_MS);
    assert_eq!(states(&view, Duty::Containment), [DutyState::Pending]);
    assert_eq!(view.highest_level, Some(3));

    // A change after containment leaves the containment verdict alone.
    let after = [
        (0, detected(1)),
        (40 * HOUR_MS, IncidentAction::Contained),
        (
            41 * HOUR_MS,
            IncidentAction::LevelChanged { level: level(4) },
        ),
    ];
    let view = eval(&after, 42 * HOUR_MS);
    assert_eq!(view.obligations[1].due_at_ms, T0 + 72 * HOUR_MS);
    assert_eq!(states(&view, Duty::Containment), [DutyState::Met]);
}

#[test]
fn an_amendment_applies_to_incidents_detected_after_it_and_not_to_those_in_progress() {
    let amended_at = 2 * HOUR_MS;
    let amendment = PolicyVersion {
        version: 2,
        title: "amended".into(),
        effective_from: UnixMillis(T0 + amended_at),
        report_window_ms: HOUR_MS / 2,
        containment_window_ms: [48 * HOUR_MS, 48 * HOUR_MS, 24 * HOUR_MS, 24 * HOUR_MS],
        investigation_months: 2,
        utc_offset_minutes: 8 * 60,
    };
    let table = PolicyTable::new(vec![PolicyVersion::taiwan_2018(), amendment]).unwrap();
    assert_eq!(table.in_force(UnixMillis(T0 + amended_at - 1)).version, 1);
    assert_eq!(table.in_force(UnixMillis(T0 + amended_at)).version, 2);

    // Detected before the amendment; raised and contained after it: version 1 throughout.
    let in_progress = records(&[
        (0, detected(2)),
        (
            3 * HOUR_MS,
            IncidentAction::LevelChanged { level: level(3) },
        ),
        (3 * HOUR_MS + HOUR_MS, IncidentAction::Reported),
        (30 * HOUR_MS, IncidentAction::Contained),
    ]);
    let view = evaluate(
        "acme-bank",
        "INC-1",
        &in_progress,
        &table,
        UnixMillis(T0 + 40 * HOUR_MS),
    );
    assert_eq!(view.policy.as_ref().unwrap().version, 1);
    let report = &view.obligations[2];
    assert_eq!(
        report.due_at_ms,
        T0 + 4 * HOUR_MS,
        "version 1's one hour, not 30 minutes"
    );
    assert_eq!(report.state, DutyState::Met);
    assert_eq!(view.obligations[1].due_at_ms, T0 + 36 * HOUR_MS);
    assert_eq!(states(&view, Duty::Containment), [DutyState::Met]);
    // Version 1's one month, counted in Taiwan time.
    assert_eq!(
        view.obligations[3].due_at_ms,
        add_calendar_months(UnixMillis(T0 + 30 * HOUR_MS), 1, 480).0
    );

    // The same steps for an incident detected at the amendment follow version 2.
    let after: Vec<IncidentRecord> = in_progress
        .iter()
        .map(|r| IncidentRecord {
            committed_at: UnixMillis(r.committed_at.0 + amended_at),
            action: match r.action {
                IncidentAction::Detected { level, .. } => IncidentAction::Detected {
                    level,
                    aware_at: UnixMillis(T0 + amended_at),
                },
                ref other => other.clone(),
            },
            ..r.clone()
        })
        .collect();
    let view = evaluate(
        "acme-bank",
        "INC-2",
        &after,
        &table,
        UnixMillis(T0 + 50 * HOUR_MS),
    );
    assert_eq!(view.policy.as_ref().unwrap().version, 2);
    let report = &view.obligations[2];
    assert_eq!(
        report.due_at_ms,
        T0 + amended_at + 3 * HOUR_MS + HOUR_MS / 2
    );
    assert_eq!(report.state, DutyState::MetLate);
    assert_eq!(
        view.obligations[1].due_at_ms,
        T0 + amended_at + 24 * HOUR_MS
    );
    assert_eq!(states(&view, Duty::Containment), [DutyState::MetLate]);

    // Adding the amendment later does not change the verdict on the earlier incident.
    let before = evaluate(
        "acme-bank",
        "INC-1",
        &in_progress,
        &PolicyTable::standard(),
        UnixMillis(T0 + 40 * HOUR_MS),
    );
    let with = evaluate(
        "acme-bank",
        "INC-1",
        &in_progress,
        &table,
        UnixMillis(T0 + 40 * HOUR_MS),
    );
    assert_eq!(before, with);
}

#[test]
fn the_investigation_report_is_due_one_calendar_month_in_taiwan_time() {
    // 2024-01-30T20:00Z is 31 January 04:00 in Taipei; a month later is the last day of
    // February there: 29 February 04:00 Taipei = 2024-02-28T20:00Z, not 30 days later.
    let contained = UnixMillis(1_706_644_800_000);
    let due = add_calendar_months(contained, 1, 480);
    assert_eq!(due, UnixMillis(1_709_150_400_000));
    assert_ne!(due.0 - contained.0, 30 * 24 * HOUR_MS);
    // Counted in UTC the month would end on 29 February 20:00Z.
    assert_eq!(add_calendar_months(contained, 1, 0).0, 1_709_236_800_000);
    // Across a year end, and twelve months.
    let dec = UnixMillis(1_703_980_800_000); // 2023-12-31T00:00Z = 08:00 Taipei
    assert_eq!(add_calendar_months(dec, 1, 480).0, 1_706_659_200_000); // 2024-01-31T00:00Z
    assert_eq!(add_calendar_months(dec, 12, 480).0, 1_735_603_200_000); // 2024-12-31T00:00Z

    let aware = contained.0 - 10 * HOUR_MS;
    let steps = |report_at: u64| {
        vec![
            IncidentRecord {
                leaf_index: 1,
                committed_at: UnixMillis(aware),
                action: IncidentAction::Detected {
                    level: level(1),
                    aware_at: UnixMillis(aware),
                },
            },
            IncidentRecord {
                leaf_index: 2,
                committed_at: contained,
                action: IncidentAction::Contained,
            },
            IncidentRecord {
                leaf_index: 3,
                committed_at: UnixMillis(report_at),
                action: IncidentAction::InvestigationReport,
            },
        ]
    };
    let table = PolicyTable::standard();
    let on_time = evaluate("c", "i", &steps(due.0), &table, UnixMillis(due.0 + HOUR_MS));
    assert_eq!(
        states(&on_time, Duty::InvestigationReport),
        [DutyState::Met]
    );
    assert_eq!(on_time.status, IncidentStatus::Investigated);
    let late = evaluate(
        "c",
        "i",
        &steps(due.0 + SECOND_MS),
        &table,
        UnixMillis(due.0 + HOUR_MS),
    );
    assert_eq!(
        states(&late, Duty::InvestigationReport),
        [DutyState::MetLate]
    );
    let missing = evaluate(
        "c",
        "i",
        &steps(u64::MAX),
        &table,
        UnixMillis(due.0 + SECOND_MS),
    );
    assert_eq!(
        states(&missing, Duty::InvestigationReport),
        [DutyState::Overdue]
    );
}

#[test]
fn out_of_place_records_are_anomalies_and_change_nothing() {
    let steps = [
        (0, IncidentAction::Reported),
        (HOUR_MS, detected(1)),
        (2 * HOUR_MS, detected(4)),
        (
            3 * HOUR_MS,
            IncidentAction::LevelChanged { level: level(1) },
        ),
        (4 * HOUR_MS, IncidentAction::Closed),
        (5 * HOUR_MS, IncidentAction::Reported),
    ];
    let view = eval(&steps, 6 * HOUR_MS);
    let reasons: Vec<(u64, &str)> = view
        .anomalies
        .iter()
        .map(|a| (a.leaf_index, a.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (10, "recorded before the incident was detected"),
            (12, "a second detection record for the incident"),
            (13, "the level is already 1"),
            (15, "recorded after the incident was closed"),
        ]
    );
    assert_eq!(view.level, Some(1));
    assert_eq!(view.status, IncidentStatus::Closed);
    // Closing does not discharge duties: the report was never filed.
    assert_eq!(states(&view, Duty::Report), [DutyState::Overdue]);
    assert_eq!(view.records, [10, 11, 12, 13, 14, 15]);

    // Records come in any order and are taken in log order; later records are left out.
    let mut shuffled = records(&[(0, detected(1)), (HOUR_MS, IncidentAction::Reported)]);
    shuffled.reverse();
    let view = evaluate(
        "c",
        "i",
        &shuffled,
        &PolicyTable::standard(),
        UnixMillis(T0 + HOUR_MS),
    );
    assert_eq!(states(&view, Duty::Report), [DutyState::Met]);
    let view = evaluate(
        "c",
        "i",
        &shuffled,
        &PolicyTable::standard(),
        UnixMillis(T0 + 10),
    );
    assert_eq!(states(&view, Duty::Report), [DutyState::Pending]);
    assert_eq!(view.records, [10]);

    let none = evaluate("c", "i", &[], &PolicyTable::standard(), UnixMillis(T0));
    assert_eq!(none.status, IncidentStatus::Undetected);
    assert!(none.obligations.is_empty());
}

#[test]
fn policy_tables_refuse_what_would_leave_times_without_rules() {
    let v1 = PolicyVersion::taiwan_2018();
    assert_eq!(PolicyTable::new(vec![]), Err(PolicyError::Empty));
    let late_start = PolicyVersion {
        effective_from: UnixMillis(5),
        ..v1.clone()
    };
    assert_eq!(
        PolicyTable::new(vec![late_start]),
        Err(PolicyError::FirstNotAtEpoch(5))
    );
    let same_time = PolicyVersion {
        version: 2,
        ..v1.clone()
    };
    assert!(matches!(
        PolicyTable::new(vec![v1.clone(), same_time]),
        Err(PolicyError::OutOfOrder { version: 2, .. })
    ));
    let zero = PolicyVersion {
        report_window_ms: 0,
        ..v1.clone()
    };
    assert!(matches!(
        PolicyTable::new(vec![zero]),
        Err(PolicyError::Invalid { version: 1, .. })
    ));
    let table = PolicyTable::standard();
    assert_eq!(table.in_force(UnixMillis(0)).version, 1);
    assert_eq!(table.in_force(UnixMillis(u64::MAX)).version, 1);
}
