//! A deterministic simulator for networks of consensus engines.
//!
//! One seed fixes everything: the [`Scenario`] (validator powers, Byzantine validators and
//! their behaviors, network latency, jitter, loss, duplication and reordering, partitions,
//! crashes with torn WAL writes, timeouts) and every random choice during the run. Time is
//! virtual: an event queue ordered by (time, insertion order) drives the nodes, so a run
//! takes milliseconds of real time and replays identically.
//!
//! A run has two phases, as in TigerBeetle's VOPR:
//!
//! 1. **Safety under faults.** Until the scenario's heal time, the network loses,
//!    duplicates and reorders messages, partitions come and go, honest validators crash
//!    (at any output, possibly tearing a WAL append) and restart from their WAL, and up to
//!    `f` Byzantine validators lie.
//! 2. **Liveness after healing.** Loss, partitions and crashes stop and crashed validators
//!    restart; Byzantine validators keep lying. Every honest validator must then decide
//!    [`LIVENESS_HEIGHTS`] more heights within a budget computed from the timeouts.
//!
//! After every event the [`checker`] has already checked what the event produced:
//! agreement, validity, commit certificates, that no honest validator signs two different
//! votes for one step (across crashes) or sends a vote before persisting it, and that
//! evidence accuses only Byzantine validators. The first violation ends the run.

mod byzantine;
pub mod checker;
pub mod crypto;
mod node;
pub mod scenario;
mod trace;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::fmt;

use borsh::BorshSerialize;
use custos_consensus::planted::PlantedBug;
use custos_consensus::{
    EngineConfig, Height, Round, SignedVote, Timeout, Validator, ValidatorAddress, ValidatorSet,
    ValueId,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use checker::Violation;
pub use scenario::{Behavior, Scenario};

use checker::Checker;
use crypto::{Keys, SignedProposal};
use node::SimNode;
use trace::Trace;

/// Heights every honest validator must decide after the network heals.
pub const LIVENESS_HEIGHTS: u64 = 2;

/// How often nodes gossip their height and round. Peers answer with what the node may
/// have lost: decided blocks (block sync) and their own messages of its round. This is the
/// paper's assumption that messages between correct processes are eventually delivered.
pub const GOSSIP_INTERVAL_MS: u64 = 300;

/// Hard cap on events per run, so a runaway scenario ends as a stall instead of hanging.
pub const EVENTS_MAX: u64 = 20_000_000;

/// How to run a seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimOptions {
    /// Number of validators.
    pub validators: usize,
    /// A rule every honest engine breaks (to prove the simulator notices).
    pub planted_bug: Option<PlantedBug>,
    /// Keep a readable trace (slower; for reproducing a failure).
    pub readable_trace: bool,
}

impl SimOptions {
    /// Honest engines, no readable trace.
    pub fn new(validators: usize) -> Self {
        Self {
            validators,
            planted_bug: None,
            readable_trace: false,
        }
    }
}

/// A message on the simulated network.
#[derive(Clone, Debug, BorshSerialize)]
pub(crate) enum NetMessage {
    Proposal(SignedProposal),
    Vote(SignedVote),
    /// "I am at this height and round": peers answer with what may be missing.
    Status {
        height: Height,
        round: Round,
    },
}

#[derive(Clone, Debug)]
pub(crate) enum Event {
    Deliver {
        from: usize,
        to: usize,
        message: NetMessage,
    },
    Timeout {
        node: usize,
        incarnation: u32,
        timeout: Timeout,
    },
    ValueReady {
        node: usize,
        incarnation: u32,
        height: Height,
        round: Round,
        value: ValueId,
    },
    GossipTick,
    ArmCrash(usize),
    Restart {
        node: usize,
    },
    PartitionStart(usize),
    PartitionEnd,
    Heal,
    Deadline,
}

/// An event at a virtual time; ties broken by insertion order, so runs are deterministic.
#[derive(Debug)]
struct Scheduled {
    at_ms: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.seq) == (other.at_ms, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at_ms, self.seq).cmp(&(other.at_ms, other.seq))
    }
}

/// Counters describing a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events processed.
    pub events: u64,
    /// Messages delivered to a node that was up.
    pub delivered: u64,
    /// Messages lost to loss or partitions.
    pub lost: u64,
    /// Highest height decided by anyone.
    pub max_height: u64,
    /// Highest round any honest engine reached.
    pub max_round: u32,
    /// Evidence outputs from honest engines.
    pub evidence: u64,
    /// Crashes.
    pub crashes: u64,
    /// Crashes that tore a WAL append.
    pub torn_writes: u64,
    /// Messages rejected by the signature check (impersonation attempts).
    pub forgeries_rejected: u64,
    /// Messages the engines dropped (late, too far ahead, unjustified, ...).
    pub engine_drops: u64,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Safety held throughout and every honest validator decided after healing.
    Ok,
    /// A safety property broke.
    Violation {
        /// Virtual time of the violation.
        at_ms: u64,
        /// What broke.
        violation: Violation,
    },
    /// After healing, some honest validator did not decide in time.
    Stall {
        /// Virtual time the budget ran out.
        at_ms: u64,
        /// Which validators were where.
        detail: String,
    },
}

/// Everything about one run.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// How the run was configured.
    pub options: SimOptions,
    /// The scenario drawn from the seed.
    pub scenario: Scenario,
    /// How it ended.
    pub outcome: Outcome,
    /// BLAKE3 over the ordered events and outputs.
    pub trace_hash: [u8; 32],
    /// Counters.
    pub stats: Stats,
    /// Virtual time at the end.
    pub virtual_ms: u64,
    /// The readable trace, if requested.
    pub trace_lines: Option<Vec<String>>,
}

impl RunReport {
    /// The command that reruns this seed with a readable trace.
    pub fn reproduce_command(&self) -> String {
        let mut command = format!(
            "scripts/sim.sh --seed {} --validators {} --trace",
            self.seed, self.options.validators
        );
        if let Some(bug) = self.options.planted_bug {
            command.push_str(&format!(" --planted-bug {}", planted_bug_name(bug)));
        }
        command
    }

    /// The trace hash in hex.
    pub fn trace_hex(&self) -> String {
        self.trace_hash.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Violation { at_ms, violation } => {
                write!(f, "VIOLATION at {at_ms}ms: {violation}")
            }
            Outcome::Stall { at_ms, detail } => write!(f, "STALL at {at_ms}ms: {detail}"),
        }
    }
}

/// The command-line name of a planted bug.
pub fn planted_bug_name(bug: PlantedBug) -> &'static str {
    match bug {
        PlantedBug::IgnoreLock => "ignore-lock",
        PlantedBug::QuorumOffByOne => "quorum-off-by-one",
        PlantedBug::BroadcastBeforePersist => "broadcast-before-persist",
        PlantedBug::ForgetWal => "forget-wal",
    }
}

/// The planted bug named `name` on the command line.
pub fn planted_bug_from_name(name: &str) -> Option<PlantedBug> {
    [
        PlantedBug::IgnoreLock,
        PlantedBug::QuorumOffByOne,
        PlantedBug::BroadcastBeforePersist,
        PlantedBug::ForgetWal,
    ]
    .into_iter()
    .find(|bug| planted_bug_name(*bug) == name)
}

/// The world around the nodes: clock, queue, network, randomness and the checker.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) now_ms: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    next_seq: u64,
    rng: ChaCha8Rng,
    pub(crate) scenario: Scenario,
    pub(crate) keys: Keys,
    pub(crate) validators: ValidatorSet,
    pub(crate) checker: Checker,
    pub(crate) trace: Trace,
    pub(crate) stats: Stats,
    faulty: bool,
    blocked: BTreeSet<(usize, usize)>,
    pub(crate) violation: Option<Violation>,
}

impl World {
    pub(crate) fn schedule(&mut self, at_ms: u64, event: Event) {
        self.next_seq += 1;
        self.queue.push(Reverse(Scheduled {
            at_ms,
            seq: self.next_seq,
            event,
        }));
    }

    /// Records the first violation; the run stops after the current event.
    pub(crate) fn fail(&mut self, violation: Violation) {
        if self.violation.is_none() {
            self.violation = Some(violation);
        }
    }

    pub(crate) fn random_below(&mut self, bound: usize) -> usize {
        self.rng.random_range(0..bound)
    }

    pub(crate) fn random_range(&mut self, range: std::ops::RangeInclusive<u64>) -> u64 {
        self.rng.random_range(range)
    }

    /// A fresh valid value id, for liars.
    pub(crate) fn random_value(&mut self) -> ValueId {
        crypto::make_valid(ValueId(self.rng.random()))
    }

    /// Sends through the faulty network: loss and partitions (until healed), then delay,
    /// jitter, occasional long delays (reordering) and duplicates.
    pub(crate) fn send(&mut self, from: usize, to: usize, message: NetMessage) {
        if from == to {
            return; // own messages go back to the engine directly
        }
        if self.faulty
            && (self.blocked.contains(&(from, to))
                || self.rng.random_range(0..1000) < self.scenario.loss_permille)
        {
            self.stats.lost += 1;
            return;
        }
        let copies = if self.rng.random_range(0..1000) < self.scenario.duplicate_permille {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay_ms =
                self.scenario.latency_ms + self.rng.random_range(0..=self.scenario.jitter_ms);
            if self.rng.random_range(0..1000) < self.scenario.reorder_permille {
                delay_ms += self.rng.random_range(0..=reorder_extra_ms(&self.scenario));
            }
            let event = Event::Deliver {
                from,
                to,
                message: message.clone(),
            };
            self.schedule(self.now_ms + delay_ms, event);
        }
    }

    pub(crate) fn broadcast(&mut self, from: usize, message: &NetMessage) {
        for to in 0..self.scenario.validators() {
            self.send(from, to, message.clone());
        }
    }
}

/// Longest extra delay of a reordered message.
fn reorder_extra_ms(scenario: &Scenario) -> u64 {
    4 * scenario.max_delay_ms() + 200
}

/// One simulated network.
#[derive(Debug)]
struct Simulation {
    nodes: Vec<SimNode>,
    world: World,
    /// After healing: the height every honest validator must reach, and by when.
    liveness: Option<(Height, u64)>,
}

/// Runs one seed.
pub fn run(seed: u64, options: &SimOptions) -> RunReport {
    let mut scenario = Scenario::generate(seed, options.validators);
    scenario.planted_bug = options.planted_bug;
    let mut simulation = Simulation::new(scenario, options.readable_trace);
    let outcome = simulation.run();
    let world = &mut simulation.world;
    RunReport {
        seed,
        options: options.clone(),
        scenario: world.scenario.clone(),
        outcome,
        trace_hash: world.trace.hash(),
        stats: world.stats.clone(),
        virtual_ms: world.now_ms,
        trace_lines: world.trace.take_lines(),
    }
}

/// Results of many seeds.
#[derive(Clone, Debug, Default)]
pub struct SweepSummary {
    /// Seeds run.
    pub seeds: u64,
    /// Reports of runs that did not end [`Outcome::Ok`], in seed order.
    pub failures: Vec<RunReport>,
    /// Sum of decided heights over all runs.
    pub heights: u64,
    /// Sum of evidence outputs over all runs.
    pub evidence: u64,
    /// Sum of crashes over all runs.
    pub crashes: u64,
}

impl SweepSummary {
    /// Runs that broke safety.
    pub fn violations(&self) -> usize {
        self.failures
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Violation { .. }))
            .count()
    }

    /// Runs that did not decide in time after healing.
    pub fn stalls(&self) -> usize {
        self.failures
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Stall { .. }))
            .count()
    }
}

/// Runs `seeds` on `jobs` threads (results do not depend on `jobs`). With `stop_early`
/// it stops handing out seeds after the first failure.
pub fn sweep(
    seeds: std::ops::Range<u64>,
    options: &SimOptions,
    jobs: usize,
    stop_early: bool,
) -> SweepSummary {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let next = AtomicU64::new(seeds.start);
    let failed = AtomicBool::new(false);
    let summary = Mutex::new(SweepSummary::default());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    if stop_early && failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds.end {
                        return;
                    }
                    let report = run(seed, options);
                    let mut summary = summary.lock().expect("no panics while holding the lock");
                    summary.seeds += 1;
                    summary.heights += report.stats.max_height;
                    summary.evidence += report.stats.evidence;
                    summary.crashes += report.stats.crashes;
                    if report.outcome != Outcome::Ok {
                        failed.store(true, Ordering::Relaxed);
                        summary.failures.push(report);
                    }
                }
            });
        }
    });
    let mut summary = summary.into_inner().expect("threads joined");
    summary.failures.sort_by_key(|r| r.seed);
    summary
}

impl Simulation {
    fn new(scenario: Scenario, readable_trace: bool) -> Self {
        let n = scenario.validators();
        let addresses: Vec<ValidatorAddress> = (0..n)
            .map(|i| {
                let mut address = [0u8; 32];
                address[..8].copy_from_slice(&u64::try_from(i).expect("small").to_le_bytes());
                ValidatorAddress(address)
            })
            .collect();
        let validators = ValidatorSet::new(
            addresses
                .iter()
                .zip(&scenario.powers)
                .map(|(a, p)| Validator {
                    address: *a,
                    power: *p,
                })
                .collect(),
        )
        .expect("scenario powers form a valid set");
        let keys = Keys::new(scenario.seed, n);
        let honest: Vec<bool> = (0..n).map(|i| scenario.behavior(i).is_none()).collect();
        let nodes = (0..n)
            .map(|i| {
                let mut config = EngineConfig::new(addresses[i]);
                config.timeouts = scenario.timeouts;
                config.planted_bug = match scenario.behavior(i) {
                    None => scenario.planted_bug,
                    // The amnesia attack is the lock rule broken on purpose.
                    Some(Behavior::Amnesiac) => Some(PlantedBug::IgnoreLock),
                    Some(_) => None,
                };
                SimNode::new(i, scenario.behavior(i), config)
            })
            .collect();
        let world = World {
            now_ms: 0,
            queue: BinaryHeap::new(),
            next_seq: 0,
            rng: ChaCha8Rng::seed_from_u64(scenario.seed ^ 0x5eed_0fc0_5705),
            checker: Checker::new(honest, validators.clone(), keys.clone()),
            keys,
            validators,
            trace: Trace::new(readable_trace),
            stats: Stats::default(),
            faulty: true,
            blocked: BTreeSet::new(),
            violation: None,
            scenario,
        };
        Self {
            nodes,
            world,
            liveness: None,
        }
    }

    fn run(&mut self) -> Outcome {
        self.schedule_plan();
        for node in &mut self.nodes {
            node.boot(&mut self.world);
        }
        while let Some(Reverse(Scheduled { at_ms, event, .. })) = self.world.queue.pop() {
            self.world.now_ms = at_ms;
            self.world.stats.events += 1;
            if let Some(outcome) = self.dispatch(event) {
                return outcome;
            }
            if let Some(violation) = self.world.violation.take() {
                return Outcome::Violation { at_ms, violation };
            }
            self.track_rounds();
            if self.liveness_reached() {
                return Outcome::Ok;
            }
            if self.world.stats.events >= EVENTS_MAX {
                let detail = format!("event budget of {EVENTS_MAX} exhausted");
                return Outcome::Stall { at_ms, detail };
            }
        }
        unreachable!("gossip ticks keep the queue non-empty")
    }

    fn schedule_plan(&mut self) {
        let world = &mut self.world;
        let scenario = world.scenario.clone();
        for (i, partition) in scenario.partitions.iter().enumerate() {
            world.schedule(partition.start_ms, Event::PartitionStart(i));
            world.schedule(partition.end_ms, Event::PartitionEnd);
        }
        for (i, crash) in scenario.crashes.iter().enumerate() {
            world.schedule(crash.at_ms, Event::ArmCrash(i));
        }
        world.schedule(scenario.heal_ms, Event::Heal);
        world.schedule(GOSSIP_INTERVAL_MS, Event::GossipTick);
    }

    /// Carries out one event; returns an outcome if the run ends here.
    fn dispatch(&mut self, event: Event) -> Option<Outcome> {
        let world = &mut self.world;
        let now = world.now_ms;
        match event {
            Event::Deliver { from, to, message } => {
                world.trace.event(now, "deliver", to, &(from, &message));
                if world.trace.is_readable() {
                    world
                        .trace
                        .line(now, || format!("{from} -> {to}: {message:?}"));
                }
                if self.nodes[to].is_up() {
                    world.stats.delivered += 1;
                }
                self.nodes[to].receive(from, message, world);
            }
            Event::Timeout {
                node,
                incarnation,
                timeout,
            } => {
                let step = timeout.step as u8;
                world.trace.event(
                    now,
                    "timeout",
                    node,
                    &(incarnation, timeout.height, timeout.round, step),
                );
                self.nodes[node].timeout(incarnation, timeout, world);
            }
            Event::ValueReady {
                node,
                incarnation,
                height,
                round,
                value,
            } => {
                world
                    .trace
                    .event(now, "value", node, &(incarnation, height, round, value));
                self.nodes[node].value_ready(incarnation, height, round, value, world);
            }
            Event::GossipTick => {
                world.trace.event(now, "gossip", 0, &());
                for node in &mut self.nodes {
                    node.gossip(world);
                }
                world.schedule(now + GOSSIP_INTERVAL_MS, Event::GossipTick);
            }
            Event::ArmCrash(i) => {
                let crash = world.scenario.crashes[i];
                world
                    .trace
                    .event(now, "crash", crash.node, &crash.point.after_outputs);
                if world.faulty {
                    self.nodes[crash.node].arm_crash(crash.point, crash.down_ms, world);
                }
            }
            Event::Restart { node } => {
                world.trace.event(now, "restart", node, &());
                self.nodes[node].restart(world);
            }
            Event::PartitionStart(i) => {
                world.trace.event(now, "partition", i, &());
                world.blocked = world.scenario.partitions[i]
                    .blocked
                    .iter()
                    .copied()
                    .collect();
            }
            Event::PartitionEnd => {
                world.trace.event(now, "partition end", 0, &());
                world.blocked.clear();
            }
            Event::Heal => self.heal(),
            Event::Deadline => {
                world.trace.event(now, "deadline", 0, &());
                return Some(Outcome::Stall {
                    at_ms: now,
                    detail: self.stall_detail(),
                });
            }
        }
        None
    }

    /// Ends the fault phase: no more loss, partitions or crashes; crashed validators
    /// restart. Sets the liveness target and deadline.
    fn heal(&mut self) {
        let world = &mut self.world;
        world.trace.event(world.now_ms, "heal", 0, &());
        world
            .trace
            .line(world.now_ms, || "network heals".to_string());
        world.faulty = false;
        world.blocked.clear();
        for node in &mut self.nodes {
            node.disarm_crash();
            node.restart(world);
        }
        let honest = self.nodes.iter().filter(|n| n.behavior.is_none());
        let max_height = honest
            .clone()
            .map(|n| n.last_decided())
            .max()
            .unwrap_or(Height::new(0));
        let max_round = honest
            .filter_map(|n| n.round())
            .max()
            .unwrap_or(Round::ZERO);
        let target = Height::new(max_height.get() + LIVENESS_HEIGHTS);
        let deadline =
            world.now_ms + liveness_budget_ms(&world.scenario, &world.validators, max_round);
        world.schedule(deadline, Event::Deadline);
        self.liveness = Some((target, deadline));
    }

    fn track_rounds(&mut self) {
        for node in self.nodes.iter().filter(|n| n.behavior.is_none()) {
            if let Some(round) = node.round() {
                self.world.stats.max_round = self.world.stats.max_round.max(round.get());
            }
        }
    }

    fn liveness_reached(&self) -> bool {
        let Some((target, _)) = self.liveness else {
            return false;
        };
        self.nodes
            .iter()
            .filter(|n| n.behavior.is_none())
            .all(|n| n.last_decided() >= target)
    }

    fn stall_detail(&self) -> String {
        let (target, _) = self.liveness.expect("deadline only after healing");
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.behavior.is_none())
            .map(|n| {
                let round = n
                    .round()
                    .map_or("down".to_string(), |r| format!("round {r}"));
                format!(
                    "validator {} decided up to {} ({round})",
                    n.index,
                    n.last_decided()
                )
            })
            .collect();
        format!("target height {target} not reached: {}", nodes.join(", "))
    }
}

/// How long honest validators get, after healing, to decide [`LIVENESS_HEIGHTS`] heights:
/// for each height, enough rounds for the proposer rotation to reach an honest proposer
/// twice (one full rotation plus two), each round lasting its three timeouts plus four
/// worst-case message delays and two gossip intervals. The first height starts from the
/// highest round any honest validator had reached, so its timeouts are the longest.
pub fn liveness_budget_ms(scenario: &Scenario, validators: &ValidatorSet, max_round: Round) -> u64 {
    let t = &scenario.timeouts;
    let delays_ms =
        4 * (scenario.max_delay_ms() + reorder_extra_ms(scenario)) + 2 * GOSSIP_INTERVAL_MS;
    let round_ms = |round: Round| {
        t.propose.duration_ms(round)
            + t.prevote.duration_ms(round)
            + t.precommit.duration_ms(round)
            + delays_ms
    };
    let rounds = u32::try_from(validators.total_power() + 2).expect("power is small");
    let first: u64 = (0..rounds)
        .map(|i| round_ms(max_round.saturating_add(i)))
        .sum();
    let later: u64 = (0..rounds).map(|i| round_ms(Round::new(i))).sum();
    first + LIVENESS_HEIGHTS * later
}
