//! The run's fingerprint: a BLAKE3 hash over every event in the order it was processed and
//! every output the engines produced. Two runs of one seed must produce the same hash;
//! any nondeterminism (a HashMap, a clock, an unseeded RNG) shows up as a different hash.

use borsh::BorshSerialize;
use custos_consensus::{DropReason, Output, TimeoutStep};

/// Hash of the ordered events and outputs, plus an optional readable log.
#[derive(Debug)]
pub struct Trace {
    hasher: blake3::Hasher,
    lines: Option<Vec<String>>,
}

impl Trace {
    /// A trace that also keeps readable lines when `readable` is set (for reproducing a
    /// failure; it slows the run down).
    pub fn new(readable: bool) -> Self {
        Self {
            hasher: blake3::Hasher::new(),
            lines: readable.then(Vec::new),
        }
    }

    /// Records an event: its time, kind, node and payload.
    pub fn event(&mut self, now_ms: u64, tag: &str, node: usize, payload: &impl BorshSerialize) {
        self.hasher.update(&now_ms.to_le_bytes());
        self.hasher.update(tag.as_bytes());
        self.hasher
            .update(&u64::try_from(node).expect("small").to_le_bytes());
        payload
            .serialize(&mut self.hasher)
            .expect("hashing cannot fail");
    }

    /// Records an output carried out by `node`.
    pub fn output(&mut self, node: usize, output: &Output) {
        self.hasher
            .update(&u64::try_from(node).expect("small").to_le_bytes());
        let h = &mut self.hasher;
        let result = match output {
            Output::PersistWal(entry) => (0u8, entry).serialize(h),
            Output::BroadcastProposal(p) => (1u8, p).serialize(h),
            Output::BroadcastVote(v) => (2u8, v).serialize(h),
            Output::ScheduleTimeout {
                timeout,
                duration_ms,
            } => {
                let step = match timeout.step {
                    TimeoutStep::Propose => 0u8,
                    TimeoutStep::Prevote => 1,
                    TimeoutStep::Precommit => 2,
                };
                (3u8, timeout.height, timeout.round, step, *duration_ms).serialize(h)
            }
            Output::RequestValue { height, round } => (4u8, height, round).serialize(h),
            Output::Decide(d) => (5u8, d.height, d.round, d.value, &d.commit).serialize(h),
            Output::Evidence(e) => (6u8, &e.first, &e.second).serialize(h),
            Output::Dropped(reason) => (7u8, drop_code(reason)).serialize(h),
        };
        result.expect("hashing cannot fail");
    }

    /// Whether readable lines are kept.
    pub fn is_readable(&self) -> bool {
        self.lines.is_some()
    }

    /// Adds a readable line (only built when lines are kept).
    pub fn line(&mut self, now_ms: u64, line: impl FnOnce() -> String) {
        if let Some(lines) = &mut self.lines {
            lines.push(format!("{now_ms:>8}ms {}", line()));
        }
    }

    /// The hash so far.
    pub fn hash(&self) -> [u8; 32] {
        *self.hasher.finalize().as_bytes()
    }

    /// The readable lines, if kept.
    pub fn take_lines(&mut self) -> Option<Vec<String>> {
        self.lines.take()
    }
}

fn drop_code(reason: &DropReason) -> u8 {
    match reason {
        DropReason::StaleHeight { .. } => 0,
        DropReason::HeightTooFarAhead { .. } => 1,
        DropReason::NextHeightQuotaFull { .. } => 2,
        DropReason::RoundTooFarAhead { .. } => 3,
        DropReason::NotProposer { .. } => 4,
        DropReason::InvalidPolRound { .. } => 5,
        DropReason::UnjustifiedProposal { .. } => 6,
        DropReason::UnknownValidator { .. } => 7,
        DropReason::UnrequestedValue { .. } => 8,
        DropReason::OwnVoteConflict { .. } => 9,
    }
}
