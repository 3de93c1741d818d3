//! The consensus simulator as a test suite: a sweep of seeds that must hold every
//! invariant, determinism of the trace, and planted bugs that the sweep must catch (a
//! simulator that cannot fail proves nothing).

use std::ops::Range;

use custos_consensus::planted::PlantedBug;
use custos_tests::sim::{self, Outcome, SimOptions, SweepSummary, Violation};

/// The default sweep: seeds per validator count. Together they run in a few seconds in
/// release; `scripts/sim.sh` runs the long sweeps.
const SWEEP: [(usize, Range<u64>); 2] = [(4, 0..400), (7, 0..200)];

fn jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn default_sweep(planted_bug: Option<PlantedBug>) -> Vec<(usize, SweepSummary)> {
    SWEEP
        .iter()
        .map(|(validators, seeds)| {
            let options = SimOptions {
                planted_bug,
                ..SimOptions::new(*validators)
            };
            (
                *validators,
                sim::sweep(seeds.clone(), &options, jobs(), false),
            )
        })
        .collect()
}

fn describe(summary: &SweepSummary) -> String {
    summary
        .failures
        .iter()
        .map(|r| {
            format!(
                "seed {}: {}\n  reproduce: {}",
                r.seed,
                r.outcome,
                r.reproduce_command()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_default_sweep_keeps_every_invariant_and_decides_after_healing() {
    for (validators, summary) in default_sweep(None) {
        let expected = SWEEP
            .iter()
            .find(|(n, _)| *n == validators)
            .map(|(_, s)| s.end - s.start);
        assert_eq!(Some(summary.seeds), expected);
        assert!(
            summary.failures.is_empty(),
            "{validators} validators:\n{}",
            describe(&summary)
        );
        // The sweep is adversarial, not a fair-weather run: it decided many heights while
        // validators crashed and Byzantine validators equivocated.
        assert!(
            summary.heights > summary.seeds * 5,
            "{validators}: {} heights",
            summary.heights
        );
        assert!(
            summary.crashes > summary.seeds / 2,
            "{validators}: {} crashes",
            summary.crashes
        );
        assert!(
            summary.evidence > 0,
            "{validators}: no equivocation was ever detected"
        );
    }
}

/// Seeds whose runs violate safety in the default sweep, per validator count.
fn violating_seeds(bug: PlantedBug) -> Vec<(usize, Vec<u64>, Vec<Violation>)> {
    default_sweep(Some(bug))
        .into_iter()
        .map(|(validators, summary)| {
            let (seeds, violations) = summary
                .failures
                .iter()
                .filter_map(|r| match &r.outcome {
                    Outcome::Violation { violation, .. } => Some((r.seed, violation.clone())),
                    _ => None,
                })
                .unzip();
            (validators, seeds, violations)
        })
        .collect()
}

#[test]
fn ignoring_the_lock_is_caught_as_a_disagreement() {
    let found = violating_seeds(PlantedBug::IgnoreLock);
    let total: usize = found.iter().map(|(_, seeds, _)| seeds.len()).sum();
    assert!(
        total > 0,
        "the sweep did not notice validators ignoring their locks"
    );
    // Breaking the lock rule breaks agreement (not some incidental check).
    for (validators, seeds, violations) in &found {
        for (seed, violation) in seeds.iter().zip(violations) {
            assert!(
                matches!(violation, Violation::Agreement { .. }),
                "{validators} validators, seed {seed}: {violation}"
            );
        }
    }
}

#[test]
fn a_quorum_one_vote_short_is_caught() {
    let found = violating_seeds(PlantedBug::QuorumOffByOne);
    for (validators, seeds, _) in &found {
        assert!(
            !seeds.is_empty(),
            "{validators} validators: off-by-one quorum not noticed"
        );
    }
}

#[test]
fn sending_before_persisting_is_caught() {
    for (validators, seeds, violations) in violating_seeds(PlantedBug::BroadcastBeforePersist) {
        assert!(
            !seeds.is_empty(),
            "{validators} validators: unpersisted votes not noticed"
        );
        assert!(
            matches!(violations[0], Violation::UnpersistedVote { .. }),
            "{}",
            violations[0]
        );
    }
}

#[test]
fn a_restart_that_forgets_the_wal_double_signs() {
    // Exercises the crash path end to end: crashes (some tearing WAL appends), restarts,
    // replay; without the WAL a restarted validator signs a conflicting vote.
    for (validators, seeds, violations) in violating_seeds(PlantedBug::ForgetWal) {
        assert!(
            !seeds.is_empty(),
            "{validators} validators: amnesia after restart not noticed"
        );
        assert!(
            violations
                .iter()
                .any(|v| matches!(v, Violation::DoubleSign { .. })),
            "{validators} validators: {violations:?}"
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_trace_and_different_seeds_differ() {
    for validators in [4, 7] {
        let options = SimOptions::new(validators);
        let mut hashes = Vec::new();
        for seed in 0..20 {
            let first = sim::run(seed, &options);
            let second = sim::run(seed, &options);
            assert_eq!(
                first.trace_hash, second.trace_hash,
                "seed {seed} ran differently twice"
            );
            assert_eq!(first.stats, second.stats);
            assert_eq!(first.outcome, second.outcome);
            hashes.push(first.trace_hash);
        }
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), 20, "different seeds gave identical traces");
    }
}

#[test]
fn a_readable_trace_does_not_change_the_run() {
    let plain = sim::run(7, &SimOptions::new(4));
    let traced = sim::run(
        7,
        &SimOptions {
            readable_trace: true,
            ..SimOptions::new(4)
        },
    );
    assert_eq!(plain.trace_hash, traced.trace_hash);
    let lines = traced.trace_lines.expect("lines kept");
    assert!(
        lines.iter().any(|l| l.contains("decides")),
        "the trace shows decisions"
    );
}

#[test]
fn sweep_results_do_not_depend_on_the_thread_count() {
    let options = SimOptions {
        planted_bug: Some(PlantedBug::IgnoreLock),
        ..SimOptions::new(4)
    };
    let seeds = |jobs| -> Vec<(u64, [u8; 32])> {
        sim::sweep(0..150, &options, jobs, false)
            .failures
            .iter()
            .map(|r| (r.seed, r.trace_hash))
            .collect()
    };
    assert_eq!(seeds(1), seeds(3));
}

#[test]
fn a_failure_names_its_seed_and_how_to_rerun_it() {
    let options = SimOptions {
        planted_bug: Some(PlantedBug::QuorumOffByOne),
        ..SimOptions::new(4)
    };
    let report = sim::run(1, &options);
    assert!(
        matches!(report.outcome, Outcome::Violation { .. }),
        "{}",
        report.outcome
    );
    assert_eq!(
        report.reproduce_command(),
        "scripts/sim.sh --seed 1 --validators 4 --trace --planted-bug quorum-off-by-one"
    );
    assert_eq!(
        sim::planted_bug_from_name("quorum-off-by-one"),
        Some(PlantedBug::QuorumOffByOne)
    );
    // Rerunning reproduces the same failure at the same point.
    let again = sim::run(1, &options);
    assert_eq!(
        (again.outcome, again.trace_hash),
        (report.outcome, report.trace_hash)
    );
}
