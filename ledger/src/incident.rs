//! Incident deadlines under a versioned policy table (ARCHITECTURE §7).
//!
//! An incident is the committed [`IncidentEvent`]s of one client with one incident id, in
//! log order. [`evaluate`] turns them into obligations with due times and verdicts. It is
//! a pure function of the records, their committed (block) times, the [`PolicyTable`] and
//! the time the verdict is asked for, so every validator and any offline verifier reaches
//! the same verdict.
//!
//! The first policy version encodes 資通安全事件通報及應變辦法 (Executive Yuan, 2018-11-21):
//!
//! | duty | opened by | due |
//! |---|---|---|
//! | report | detection; each level change | 1 hour after awareness (detection) or after the level change was committed |
//! | containment or recovery | detection | 72 hours after awareness for levels 1–2, 36 hours for levels 3–4, for the level in force when it is met (or now) |
//! | investigation report | the first containment or recovery record | one calendar month later, counted in Taiwan time (UTC+8) |
//!
//! Rules of reading (each a decision, recorded in ARCHITECTURE §10):
//! - Times are committed times. The one signed time used is `aware_at`, which is clamped to
//!   the detection record's committed time (awareness cannot follow its own record).
//! - A duty met at exactly its due time is met on time; one millisecond later is late.
//! - An incident keeps the policy version in force when its detection record was
//!   committed, for all its duties: an amendment does not rewrite past verdicts, and does
//!   not change the rules of an incident in progress.
//! - A level change restarts the report duty (a new report is due an hour after the
//!   change) and moves the containment deadline to the new level's window counted from
//!   awareness, as the rule text counts it. Raising an incident past the new window makes
//!   containment overdue at once; that is the rule as written.
//! - A month is a calendar month in the policy's time zone: the same local day and time
//!   next month, or the month's last day when it is shorter (31 January → 28/29 February).
//! - Records before detection, after closure, a second detection and a level "change" to
//!   the same level are kept as anomalies and otherwise ignored: the ledger notarizes what
//!   organisations sign, the evaluation says what it makes of it.

use serde::{Deserialize, Serialize};

use crate::message::{IncidentAction, IncidentLevel, UnixMillis};

/// Milliseconds in an hour.
pub const HOUR_MS: u64 = 3_600_000;

const DAY_MS: i64 = 86_400_000;

/// Most records of one incident that are evaluated. Lifecycles have a handful of steps;
/// the bound keeps one evaluation's work and answer small whatever a signer submits.
pub const MAX_INCIDENT_RECORDS: usize = 1_024;

/// Most policy versions in a table: amendments are rare.
pub const MAX_POLICY_VERSIONS: usize = 64;

/// One version of the deadline rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// Version number, increasing with each amendment.
    pub version: u32,
    /// The rule text it encodes, for people.
    pub title: String,
    /// Incidents detected (committed) at or after this time follow this version, until the
    /// next version's effective time.
    pub effective_from: UnixMillis,
    /// Report within this long of awareness or of a level change.
    pub report_window_ms: u64,
    /// Contain or recover within this long of awareness, by level (index 0 is level 1).
    pub containment_window_ms: [u64; 4],
    /// File the investigation report within this many calendar months of containment or
    /// recovery.
    pub investigation_months: u32,
    /// The time zone months are counted in, minutes east of UTC.
    pub utc_offset_minutes: i32,
}

impl PolicyVersion {
    /// Version 1: 資通安全事件通報及應變辦法 as promulgated on 2018-11-21 (in force from
    /// 2019-01-01; it applies to every incident before the first amendment, so the table
    /// covers all time).
    pub fn taiwan_2018() -> Self {
        Self {
            version: 1,
            title: "資通安全事件通報及應變辦法 (2018-11-21)".into(),
            effective_from: UnixMillis(0),
            report_window_ms: HOUR_MS,
            containment_window_ms: [72 * HOUR_MS, 72 * HOUR_MS, 36 * HOUR_MS, 36 * HOUR_MS],
            investigation_months: 1,
            utc_offset_minutes: 8 * 60,
        }
    }

    /// The containment window of `level`.
    pub fn containment_window(&self, level: IncidentLevel) -> u64 {
        self.containment_window_ms[usize::from(level.get() - 1)]
    }
}

/// Why a policy table was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// No versions.
    #[error("a policy table needs at least one version")]
    Empty,
    /// Too many versions.
    #[error("{0} policy versions; at most {MAX_POLICY_VERSIONS}")]
    TooMany(usize),
    /// The first version does not start at the epoch, so early incidents had no rules.
    #[error("the first policy version must be effective from 0, not {0} ms")]
    FirstNotAtEpoch(u64),
    /// Versions out of order.
    #[error(
        "policy version {version} (effective {effective_ms} ms) must have a higher number and a \
         later effective time than the version before it"
    )]
    OutOfOrder {
        /// The offending version.
        version: u32,
        /// Its effective time.
        effective_ms: u64,
    },
    /// A window or month count of zero, or a time zone off the globe.
    #[error("policy version {version}: {reason}")]
    Invalid {
        /// The offending version.
        version: u32,
        /// What is wrong.
        reason: String,
    },
}

/// The policy versions, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyTable {
    versions: Vec<PolicyVersion>,
}

impl PolicyTable {
    /// A table of `versions`, oldest first: numbers and effective times strictly increase,
    /// the first is effective from 0, windows and months are positive and offsets within
    /// ±14 hours.
    pub fn new(versions: Vec<PolicyVersion>) -> Result<Self, PolicyError> {
        let first = versions.first().ok_or(PolicyError::Empty)?;
        if versions.len() > MAX_POLICY_VERSIONS {
            return Err(PolicyError::TooMany(versions.len()));
        }
        if first.effective_from != UnixMillis(0) {
            return Err(PolicyError::FirstNotAtEpoch(first.effective_from.0));
        }
        for pair in versions.windows(2) {
            if pair[1].version <= pair[0].version
                || pair[1].effective_from <= pair[0].effective_from
            {
                return Err(PolicyError::OutOfOrder {
                    version: pair[1].version,
                    effective_ms: pair[1].effective_from.0,
                });
            }
        }
        for v in &versions {
            let invalid = |reason: &str| PolicyError::Invalid {
                version: v.version,
                reason: reason.into(),
            };
            if v.report_window_ms == 0 || v.containment_window_ms.contains(&0) {
                return Err(invalid("windows must be positive"));
            }
            if v.investigation_months == 0 || v.investigation_months > 120 {
                return Err(invalid("investigation_months must be 1 to 120"));
            }
            if v.utc_offset_minutes.abs() > 14 * 60 {
                return Err(invalid("utc_offset_minutes must be within ±840"));
            }
        }
        Ok(Self { versions })
    }

    /// The table this release enforces: version 1 ([`PolicyVersion::taiwan_2018`]). An
    /// amendment is a new version appended here with its effective time; the table is part
    /// of the release rather than node configuration, so every validator and verifier
    /// applies the same rules.
    pub fn standard() -> Self {
        Self::new(vec![PolicyVersion::taiwan_2018()]).expect("the standard table is valid")
    }

    /// The versions, oldest first.
    pub fn versions(&self) -> &[PolicyVersion] {
        &self.versions
    }

    /// The version in force at `at`.
    pub fn in_force(&self, at: UnixMillis) -> &PolicyVersion {
        let later = self.versions.partition_point(|v| v.effective_from <= at);
        // The first version is effective from 0, so `later` is at least 1.
        &self.versions[later.max(1) - 1]
    }
}

/// One committed lifecycle record of an incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentRecord {
    /// Its leaf index in the log.
    pub leaf_index: u64,
    /// Its block's time.
    pub committed_at: UnixMillis,
    /// What it records.
    pub action: IncidentAction,
}

/// A duty the rules impose on the incident's organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Duty {
    /// Report to the competent authority.
    Report,
    /// Contain the damage or recover operations.
    Containment,
    /// File the investigation, handling and improvement report.
    InvestigationReport,
}

impl Duty {
    /// The duty's name, as the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            Duty::Report => "report",
            Duty::Containment => "containment",
            Duty::InvestigationReport => "investigation-report",
        }
    }
}

/// Where a duty stands at the evaluation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DutyState {
    /// Not met, not yet due.
    Pending,
    /// Not met and past due.
    Overdue,
    /// Met at or before the due time.
    Met,
    /// Met after the due time.
    MetLate,
}

/// One duty with its deadline and verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Obligation {
    /// What is due.
    pub duty: Duty,
    /// Leaf index of the record that opened it.
    pub opened_by_leaf: u64,
    /// The level it concerns: the level being reported, or whose containment window applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// When the clock started (awareness, a level change's or containment's commit time).
    pub starts_at_ms: u64,
    /// The deadline: meeting it at exactly this time is on time.
    pub due_at_ms: u64,
    /// When a record met it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub met_at_ms: Option<u64>,
    /// Leaf index of that record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub met_by_leaf: Option<u64>,
    /// The verdict at the evaluation time.
    pub state: DutyState,
}

/// Where an incident is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentStatus {
    /// Records exist but no detection record: nothing is due.
    Undetected,
    /// Detected, not yet contained or recovered.
    Open,
    /// Contained or recovered; the investigation report is not filed.
    Contained,
    /// The investigation report is filed; not closed.
    Investigated,
    /// Closed.
    Closed,
}

impl IncidentStatus {
    /// The status's name, as the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            IncidentStatus::Undetected => "undetected",
            IncidentStatus::Open => "open",
            IncidentStatus::Contained => "contained",
            IncidentStatus::Investigated => "investigated",
            IncidentStatus::Closed => "closed",
        }
    }
}

/// A record the evaluation did not apply, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// The record's leaf index.
    pub leaf_index: u64,
    /// Why it was not applied.
    pub reason: String,
}

/// The policy version an incident follows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    /// Version number.
    pub version: u32,
    /// Its title.
    pub title: String,
}

/// An incident as the rules see it at one time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentView {
    /// The client organisation.
    pub client: String,
    /// The incident id.
    pub incident_id: String,
    /// The evaluation time: records committed later are not considered.
    pub as_of_ms: u64,
    /// Lifecycle status.
    pub status: IncidentStatus,
    /// Current level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// Highest level the incident has had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highest_level: Option<u8>,
    /// Awareness time (clamped to the detection record's committed time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aware_at_ms: Option<u64>,
    /// Committed time of the detection record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_at_ms: Option<u64>,
    /// The policy version the incident follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyRef>,
    /// Its duties, in the order they arose.
    pub obligations: Vec<Obligation>,
    /// Whether any duty is overdue.
    pub overdue: bool,
    /// Records not applied.
    pub anomalies: Vec<Anomaly>,
    /// Leaf indexes of every record considered, in log order.
    pub records: Vec<u64>,
}

/// Evaluates the incident `incident_id` of `client` from its `records` (any order; they
/// are taken in log order, and those committed after `as_of` are left out) under `table`,
/// at time `as_of`. Records beyond [`MAX_INCIDENT_RECORDS`] are anomalies.
pub fn evaluate(
    client: &str,
    incident_id: &str,
    records: &[IncidentRecord],
    table: &PolicyTable,
    as_of: UnixMillis,
) -> IncidentView {
    let mut sorted: Vec<&IncidentRecord> =
        records.iter().filter(|r| r.committed_at <= as_of).collect();
    sorted.sort_by_key(|r| r.leaf_index);
    let mut state = Evaluation {
        view: IncidentView {
            client: client.to_owned(),
            incident_id: incident_id.to_owned(),
            as_of_ms: as_of.0,
            status: IncidentStatus::Undetected,
            level: None,
            highest_level: None,
            aware_at_ms: None,
            detected_at_ms: None,
            policy: None,
            obligations: Vec::new(),
            overdue: false,
            anomalies: Vec::new(),
            records: sorted.iter().map(|r| r.leaf_index).collect(),
        },
        policy: None,
        aware_at: UnixMillis(0),
        containment: None,
        investigation: None,
        early_investigation: None,
    };
    for (position, record) in sorted.iter().enumerate() {
        if position >= MAX_INCIDENT_RECORDS {
            state.anomaly(
                record,
                format!("beyond the {MAX_INCIDENT_RECORDS} records evaluated per incident"),
            );
            continue;
        }
        state.apply(record, table);
    }
    state.finish(as_of)
}

struct Evaluation {
    view: IncidentView,
    policy: Option<PolicyVersion>,
    aware_at: UnixMillis,
    /// Index of the containment obligation in `view.obligations`.
    containment: Option<usize>,
    /// Index of the investigation-report obligation.
    investigation: Option<usize>,
    /// An investigation report filed before containment: it meets the duty once it opens.
    early_investigation: Option<(u64, UnixMillis)>,
}

impl Evaluation {
    fn anomaly(&mut self, record: &IncidentRecord, reason: String) {
        self.view.anomalies.push(Anomaly {
            leaf_index: record.leaf_index,
            reason,
        });
    }

    fn open(
        &mut self,
        duty: Duty,
        record: &IncidentRecord,
        level: Option<u8>,
        starts: u64,
        due: u64,
    ) {
        self.view.obligations.push(Obligation {
            duty,
            opened_by_leaf: record.leaf_index,
            level,
            starts_at_ms: starts,
            due_at_ms: due,
            met_at_ms: None,
            met_by_leaf: None,
            state: DutyState::Pending,
        });
    }

    fn meet(&mut self, index: usize, record: &IncidentRecord) {
        let obligation = &mut self.view.obligations[index];
        if obligation.met_at_ms.is_none() {
            obligation.met_at_ms = Some(record.committed_at.0);
            obligation.met_by_leaf = Some(record.leaf_index);
        }
    }

    fn apply(&mut self, record: &IncidentRecord, table: &PolicyTable) {
        let t = record.committed_at;
        if self.view.status == IncidentStatus::Closed {
            return self.anomaly(record, "recorded after the incident was closed".into());
        }
        let Some(policy) = self.policy.clone() else {
            let IncidentAction::Detected { level, aware_at } = &record.action else {
                return self.anomaly(record, "recorded before the incident was detected".into());
            };
            let policy = table.in_force(t).clone();
            self.aware_at = (*aware_at).min(t);
            self.view.aware_at_ms = Some(self.aware_at.0);
            self.view.detected_at_ms = Some(t.0);
            self.view.level = Some(level.get());
            self.view.highest_level = Some(level.get());
            self.view.status = IncidentStatus::Open;
            self.view.policy = Some(PolicyRef {
                version: policy.version,
                title: policy.title.clone(),
            });
            let report_due = self.aware_at.0.saturating_add(policy.report_window_ms);
            self.open(
                Duty::Report,
                record,
                Some(level.get()),
                self.aware_at.0,
                report_due,
            );
            let contain_due = self
                .aware_at
                .0
                .saturating_add(policy.containment_window(*level));
            self.containment = Some(self.view.obligations.len());
            self.open(
                Duty::Containment,
                record,
                Some(level.get()),
                self.aware_at.0,
                contain_due,
            );
            self.policy = Some(policy);
            return;
        };
        match &record.action {
            IncidentAction::Detected { .. } => {
                self.anomaly(record, "a second detection record for the incident".into());
            }
            IncidentAction::Reported => {
                let open: Vec<usize> = (0..self.view.obligations.len())
                    .filter(|&i| {
                        let o = &self.view.obligations[i];
                        o.duty == Duty::Report && o.met_at_ms.is_none()
                    })
                    .collect();
                if open.is_empty() {
                    self.anomaly(record, "a report with no report due".into());
                }
                for index in open {
                    self.meet(index, record);
                }
            }
            IncidentAction::LevelChanged { level } => {
                if self.view.level == Some(level.get()) {
                    return self.anomaly(record, format!("the level is already {}", level.get()));
                }
                self.view.level = Some(level.get());
                self.view.highest_level = self.view.highest_level.max(Some(level.get()));
                let due = t.0.saturating_add(policy.report_window_ms);
                self.open(Duty::Report, record, Some(level.get()), t.0, due);
                if let Some(index) = self.containment {
                    let obligation = &mut self.view.obligations[index];
                    if obligation.met_at_ms.is_none() {
                        obligation.level = Some(level.get());
                        obligation.due_at_ms = self
                            .aware_at
                            .0
                            .saturating_add(policy.containment_window(*level));
                    }
                }
            }
            IncidentAction::Contained | IncidentAction::Recovered => {
                let index = self.containment.expect("detection opens containment");
                if self.view.obligations[index].met_at_ms.is_some() {
                    return;
                }
                self.meet(index, record);
                self.view.status = IncidentStatus::Contained;
                let due =
                    add_calendar_months(t, policy.investigation_months, policy.utc_offset_minutes);
                self.investigation = Some(self.view.obligations.len());
                self.open(Duty::InvestigationReport, record, None, t.0, due.0);
                if let Some((leaf_index, committed_at)) = self.early_investigation.take() {
                    let early = IncidentRecord {
                        leaf_index,
                        committed_at,
                        action: IncidentAction::InvestigationReport,
                    };
                    self.meet(self.view.obligations.len() - 1, &early);
                    self.view.status = IncidentStatus::Investigated;
                }
            }
            IncidentAction::InvestigationReport => match self.investigation {
                Some(index) => {
                    self.meet(index, record);
                    self.view.status = IncidentStatus::Investigated;
                }
                None => {
                    self.anomaly(
                        record,
                        "investigation report filed before containment or recovery; it meets \
                         the duty once containment opens it"
                            .into(),
                    );
                    self.early_investigation
                        .get_or_insert((record.leaf_index, record.committed_at));
                }
            },
            IncidentAction::Closed => self.view.status = IncidentStatus::Closed,
        }
    }

    fn finish(mut self, as_of: UnixMillis) -> IncidentView {
        for obligation in &mut self.view.obligations {
            obligation.state = match obligation.met_at_ms {
                Some(met) if met <= obligation.due_at_ms => DutyState::Met,
                Some(_) => DutyState::MetLate,
                None if as_of.0 <= obligation.due_at_ms => DutyState::Pending,
                None => DutyState::Overdue,
            };
        }
        self.view.overdue = self
            .view
            .obligations
            .iter()
            .any(|o| o.state == DutyState::Overdue);
        self.view
    }
}

/// `at` plus `months` calendar months in the time zone `utc_offset_minutes` east of UTC:
/// the same local day and time, or the last day of a shorter month. Saturates at the
/// ends of the representable range.
pub fn add_calendar_months(at: UnixMillis, months: u32, utc_offset_minutes: i32) -> UnixMillis {
    let offset_ms = i64::from(utc_offset_minutes) * 60_000;
    let local_ms = i64::try_from(at.0)
        .unwrap_or(i64::MAX)
        .saturating_add(offset_ms);
    let days = local_ms.div_euclid(DAY_MS);
    let time_of_day_ms = local_ms.rem_euclid(DAY_MS);
    let (year, month, day) = civil_from_days(days);
    let month_index = year * 12 + i64::from(month - 1) + i64::from(months);
    let (new_year, new_month) = (
        month_index.div_euclid(12),
        small(month_index.rem_euclid(12)) + 1,
    );
    let new_day = day.min(days_in_month(new_year, new_month));
    let new_local_ms = days_from_civil(new_year, new_month, new_day)
        .saturating_mul(DAY_MS)
        .saturating_add(time_of_day_ms);
    UnixMillis(u64::try_from(new_local_ms.saturating_sub(offset_ms)).unwrap_or(0))
}

/// `at` as an RFC 3339 UTC timestamp with milliseconds (`2024-03-01T00:00:00.000Z`), the
/// form STIX 2.1 requires.
pub fn rfc3339_utc(at: UnixMillis) -> String {
    let ms = i64::try_from(at.0).unwrap_or(i64::MAX);
    let (year, month, day) = civil_from_days(ms.div_euclid(DAY_MS));
    let of_day = ms.rem_euclid(DAY_MS);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3_600_000,
        of_day / 60_000 % 60,
        of_day / 1_000 % 60,
        of_day % 1_000
    )
}

/// A month (1–12) or day (1–31) number computed from a day count.
fn small(value: i64) -> u32 {
    u32::try_from(value).expect("month and day numbers are small and positive")
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date. Years are counted from March so
/// that the leap day is the last day of the counting year, and 400-year eras repeat.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (inverse of
/// [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = small(day_of_year - (153 * month_from_march + 2) / 5 + 1);
    let month = small(if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    });
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip_over_four_centuries() {
        for days in (-200_000..200_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(rfc3339_utc(UnixMillis(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_utc(UnixMillis(1_709_236_800_123)),
            "2024-02-29T20:00:00.123Z"
        );
    }
}
