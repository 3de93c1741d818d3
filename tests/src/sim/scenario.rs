//! Everything random about a run, drawn from its seed before the run starts (the
//! VOPR way): validator powers, who is Byzantine and how, network quality, partitions,
//! crashes, timeouts and how long the faults last.

use std::fmt;

use custos_consensus::planted::PlantedBug;
use custos_consensus::{StepTimeout, TimeoutConfig};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How a Byzantine validator misbehaves. All but [`Behavior::Silent`] run an honest engine
/// underneath, so their lies are timed like real protocol messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Sends nothing at all.
    Silent,
    /// As proposer, sends different values to different halves of the network, and votes
    /// for both of them.
    Equivocator,
    /// Sends each of its votes to part of the network and a conflicting vote to the rest.
    DoubleVoter,
    /// Votes for random values (valid, invalid or nil), in random rounds and heights, and
    /// tries to impersonate other validators.
    RandomVoter,
    /// Attacks the lock rule: its precommits for a value reach a single validator (the
    /// others get nil), so one validator can decide where the rest time out; it forgets its
    /// own lock (amnesia) and as proposer always proposes a fresh value, pulling the others
    /// away from the value already decided.
    Amnesiac,
}

impl Behavior {
    const ALL: [Behavior; 5] = [
        Behavior::Silent,
        Behavior::Equivocator,
        Behavior::DoubleVoter,
        Behavior::RandomVoter,
        Behavior::Amnesiac,
    ];
}

/// A period in which some directed links drop everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Start, in virtual milliseconds.
    pub start_ms: u64,
    /// End (the links work again).
    pub end_ms: u64,
    /// Blocked `(from, to)` links.
    pub blocked: Vec<(usize, usize)>,
}

/// Where exactly a crash hits, counted in outputs the node carries out after the crash
/// is armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashPoint {
    /// Outputs carried out before the crash.
    pub after_outputs: u32,
    /// If the crash hits a WAL append, whether a prefix of the record reaches the disk.
    pub torn_write: bool,
}

/// One crash of an honest validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crash {
    /// The validator.
    pub node: usize,
    /// When the crash is armed.
    pub at_ms: u64,
    /// Downtime before the restart.
    pub down_ms: u64,
    /// Where it hits.
    pub point: CrashPoint,
}

/// One run's parameters.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The seed everything derives from.
    pub seed: u64,
    /// Voting power per validator.
    pub powers: Vec<u64>,
    /// Byzantine validators and their behavior (less than a third of the power).
    pub byzantine: Vec<(usize, Behavior)>,
    /// Engine timeouts.
    pub timeouts: TimeoutConfig,
    /// Minimum one-way delay.
    pub latency_ms: u64,
    /// Extra uniform delay on top, `0..=jitter_ms`.
    pub jitter_ms: u64,
    /// Per mille of messages delayed much longer than usual (reordering).
    pub reorder_permille: u32,
    /// Per mille of messages delivered twice.
    pub duplicate_permille: u32,
    /// Per mille of messages lost while faults last.
    pub loss_permille: u32,
    /// When the network heals: no more loss, partitions or crashes; crashed validators
    /// restart. Byzantine validators keep misbehaving.
    pub heal_ms: u64,
    /// Partitions, in time order, all before `heal_ms`.
    pub partitions: Vec<Partition>,
    /// Crashes, all armed before `heal_ms`.
    pub crashes: Vec<Crash>,
    /// Test-only broken rule in every honest engine.
    pub planted_bug: Option<PlantedBug>,
}

impl Scenario {
    /// Draws a scenario for `validators` validators from `seed`.
    pub fn generate(seed: u64, validators: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let powers: Vec<u64> = if rng.random_bool(0.5) {
            vec![1; validators]
        } else {
            (0..validators).map(|_| rng.random_range(1..=3)).collect()
        };
        let byzantine = choose_byzantine(&mut rng, &powers);
        let latency_ms = rng.random_range(1..=60);
        let jitter_ms = rng.random_range(0..=2 * latency_ms);
        let heal_ms = rng.random_range(5_000..=40_000);
        let partitions = partitions(&mut rng, validators, heal_ms);
        let honest: Vec<usize> = (0..validators)
            .filter(|i| !byzantine.iter().any(|(b, _)| b == i))
            .collect();
        let crashes = crashes(&mut rng, &honest, heal_ms);
        Self {
            seed,
            powers,
            byzantine,
            timeouts: timeouts(&mut rng),
            latency_ms,
            jitter_ms,
            reorder_permille: rng.random_range(0..=200),
            duplicate_permille: rng.random_range(0..=100),
            loss_permille: rng.random_range(0..=350),
            heal_ms,
            partitions,
            crashes,
            planted_bug: None,
        }
    }

    /// Number of validators.
    pub fn validators(&self) -> usize {
        self.powers.len()
    }

    /// The behavior of `node`, `None` if honest.
    pub fn behavior(&self, node: usize) -> Option<Behavior> {
        self.byzantine
            .iter()
            .find(|(b, _)| *b == node)
            .map(|(_, behavior)| *behavior)
    }

    /// Longest one-way delay of a message that is not reordered.
    pub fn max_delay_ms(&self) -> u64 {
        self.latency_ms + self.jitter_ms
    }
}

/// Up to `f` Byzantine validators (weighted: less than a third of the power), usually as
/// many as allowed.
fn choose_byzantine(rng: &mut ChaCha8Rng, powers: &[u64]) -> Vec<(usize, Behavior)> {
    let total: u64 = powers.iter().sum();
    let mut order: Vec<usize> = (0..powers.len()).collect();
    order.shuffle(rng);
    let wanted = if rng.random_bool(0.15) {
        rng.random_range(0..powers.len())
    } else {
        powers.len()
    };
    let mut byzantine = Vec::new();
    let mut byzantine_power = 0;
    for node in order {
        if byzantine.len() == wanted {
            break;
        }
        if 3 * (byzantine_power + powers[node]) < total {
            byzantine_power += powers[node];
            let behavior = Behavior::ALL[rng.random_range(0..Behavior::ALL.len())];
            byzantine.push((node, behavior));
        }
    }
    byzantine.sort_unstable_by_key(|(node, _)| *node);
    byzantine
}

fn timeouts(rng: &mut ChaCha8Rng) -> TimeoutConfig {
    let mut step =
        |base: std::ops::RangeInclusive<u64>, delta: std::ops::RangeInclusive<u64>| StepTimeout {
            base_ms: rng.random_range(base),
            delta_ms: rng.random_range(delta),
        };
    // From well above the message delays down to below them: short timeouts make early
    // rounds end before their messages arrive (an asynchronous period), the setting in
    // which locks matter; the growth per round restores synchrony eventually.
    TimeoutConfig {
        propose: step(20..=400, 5..=150),
        prevote: step(10..=200, 5..=100),
        precommit: step(10..=200, 5..=100),
    }
}

fn partitions(rng: &mut ChaCha8Rng, validators: usize, heal_ms: u64) -> Vec<Partition> {
    // Either a few long partitions, or a flapping network: many short ones in a row, which
    // is what splits a round's precommits between validators.
    let (episodes, longest_ms, longest_gap_ms) = if rng.random_bool(0.5) {
        (rng.random_range(0..=4), 3_000, 1_500)
    } else {
        (40, 400, 150)
    };
    let mut partitions = Vec::new();
    let mut at_ms = rng.random_range(0..=heal_ms / 3);
    for _ in 0..episodes {
        let end_ms = (at_ms + rng.random_range(50..=longest_ms)).min(heal_ms);
        if at_ms >= end_ms {
            break;
        }
        let blocked = match rng.random_range(0..3) {
            // Two groups that cannot talk to each other.
            0 => {
                let side: Vec<bool> = (0..validators).map(|_| rng.random_bool(0.5)).collect();
                links(validators, |a, b| side[a] != side[b])
            }
            // One validator cut off.
            1 => {
                let isolated = rng.random_range(0..validators);
                links(validators, |a, b| a == isolated || b == isolated)
            }
            // Random one-way link failures.
            _ => links(validators, |_, _| rng.random_bool(0.3)),
        };
        partitions.push(Partition {
            start_ms: at_ms,
            end_ms,
            blocked,
        });
        at_ms = end_ms + rng.random_range(0..=longest_gap_ms);
    }
    partitions
}

fn links(validators: usize, mut blocked: impl FnMut(usize, usize) -> bool) -> Vec<(usize, usize)> {
    let mut result = Vec::new();
    for from in 0..validators {
        for to in 0..validators {
            if from != to && blocked(from, to) {
                result.push((from, to));
            }
        }
    }
    result
}

fn crashes(rng: &mut ChaCha8Rng, honest: &[usize], heal_ms: u64) -> Vec<Crash> {
    let mut crashes: Vec<Crash> = (0..rng.random_range(0..=4))
        .map(|_| Crash {
            node: honest[rng.random_range(0..honest.len())],
            at_ms: rng.random_range(0..heal_ms),
            down_ms: rng.random_range(50..=3_000),
            point: CrashPoint {
                after_outputs: rng.random_range(0..6),
                torn_write: rng.random_bool(0.5),
            },
        })
        .collect();
    crashes.sort_by_key(|c| (c.at_ms, c.node));
    crashes
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "validators={} powers={:?}",
            self.validators(),
            self.powers
        )?;
        writeln!(f, "byzantine={:?}", self.byzantine)?;
        writeln!(
            f,
            "latency={}ms jitter={}ms loss={}‰ duplicate={}‰ reorder={}‰ heal_at={}ms",
            self.latency_ms,
            self.jitter_ms,
            self.loss_permille,
            self.duplicate_permille,
            self.reorder_permille,
            self.heal_ms
        )?;
        let t = &self.timeouts;
        writeln!(
            f,
            "timeouts propose={}+{}r prevote={}+{}r precommit={}+{}r (ms)",
            t.propose.base_ms,
            t.propose.delta_ms,
            t.prevote.base_ms,
            t.prevote.delta_ms,
            t.precommit.base_ms,
            t.precommit.delta_ms
        )?;
        for p in &self.partitions {
            writeln!(
                f,
                "partition {}..{}ms blocked={:?}",
                p.start_ms, p.end_ms, p.blocked
            )?;
        }
        for c in &self.crashes {
            writeln!(
                f,
                "crash node={} at={}ms down={}ms after_outputs={} torn_write={}",
                c.node, c.at_ms, c.down_ms, c.point.after_outputs, c.point.torn_write
            )?;
        }
        if let Some(bug) = self.planted_bug {
            writeln!(f, "planted bug: {bug:?}")?;
        }
        Ok(())
    }
}
