//! The invariants, checked as the run goes: every decision, every signed vote and every
//! piece of evidence is checked the moment a node produces it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use custos_consensus::{
    Decision, Equivocation, Height, Round, ValidatorSet, ValueId, Vote, VoteKind,
};

use super::crypto::{Keys, is_valid};

/// A broken safety property (or a broken contract between node and engine).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Two honest validators decided different values at one height.
    Agreement {
        /// The height.
        height: Height,
        /// First decision: (validator, value).
        first: (usize, ValueId),
        /// Conflicting decision.
        second: (usize, ValueId),
    },
    /// An honest validator decided a value that is invalid or was never proposed.
    Validity {
        /// The validator.
        node: usize,
        /// The height.
        height: Height,
        /// The value.
        value: ValueId,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An honest validator signed two different votes for one height, round and kind.
    DoubleSign {
        /// The validator.
        node: usize,
        /// The first vote it signed.
        first: Vote,
        /// The conflicting vote.
        second: Vote,
    },
    /// An honest validator sent a vote its WAL did not hold yet.
    UnpersistedVote {
        /// The validator.
        node: usize,
        /// The vote.
        vote: Vote,
    },
    /// A decision whose commit does not prove it.
    BadCommit {
        /// The validator.
        node: usize,
        /// The height.
        height: Height,
        /// What is wrong.
        reason: String,
    },
    /// Evidence that does not prove equivocation, or accuses an honest validator.
    FalseEvidence {
        /// The validator that produced it.
        node: usize,
        /// What is wrong.
        reason: String,
    },
    /// The engine refused an input, reported an internal conflict, or could not replay
    /// its WAL.
    Engine {
        /// The validator.
        node: usize,
        /// The engine's complaint.
        error: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Agreement {
                height,
                first,
                second,
            } => write!(
                f,
                "agreement: at height {height} validator {} decided {} but validator {} decided {}",
                first.0, first.1, second.0, second.1
            ),
            Violation::Validity {
                node,
                height,
                value,
                reason,
            } => {
                write!(
                    f,
                    "validity: validator {node} decided {value} at height {height}: {reason}"
                )
            }
            Violation::DoubleSign {
                node,
                first,
                second,
            } => write!(
                f,
                "double sign: validator {node} signed {first:?} and then {second:?}"
            ),
            Violation::UnpersistedVote { node, vote } => {
                write!(
                    f,
                    "wal: validator {node} sent {vote:?} before persisting it"
                )
            }
            Violation::BadCommit {
                node,
                height,
                reason,
            } => {
                write!(
                    f,
                    "commit: validator {node} decided height {height} with a bad commit: {reason}"
                )
            }
            Violation::FalseEvidence { node, reason } => {
                write!(
                    f,
                    "evidence: validator {node} produced false evidence: {reason}"
                )
            }
            Violation::Engine { node, error } => write!(f, "engine of validator {node}: {error}"),
        }
    }
}

/// Keeps what the invariants need across the whole run, across crashes.
#[derive(Debug)]
pub struct Checker {
    honest: Vec<bool>,
    validators: ValidatorSet,
    keys: Keys,
    /// First honest decision per height.
    decided: BTreeMap<Height, (usize, ValueId)>,
    /// Every vote an honest validator signed, in any incarnation.
    signed: BTreeMap<(usize, Height, Round, VoteKind), Vote>,
    /// Every value anybody proposed, per height.
    proposed: BTreeSet<(Height, ValueId)>,
}

impl Checker {
    /// A checker for a network where `honest[i]` says whether validator `i` is honest.
    pub fn new(honest: Vec<bool>, validators: ValidatorSet, keys: Keys) -> Self {
        Self {
            honest,
            validators,
            keys,
            decided: BTreeMap::new(),
            signed: BTreeMap::new(),
            proposed: BTreeSet::new(),
        }
    }

    /// Whether `node` is honest.
    pub fn is_honest(&self, node: usize) -> bool {
        self.honest[node]
    }

    /// Someone signed a proposal for `value` at `height`.
    pub fn proposed(&mut self, height: Height, value: ValueId) {
        self.proposed.insert((height, value));
    }

    /// Honest `node` signs `vote`: it must not contradict anything it signed before.
    pub fn signed_vote(&mut self, node: usize, vote: Vote) -> Result<(), Violation> {
        let key = (node, vote.height, vote.round, vote.kind);
        match self.signed.get(&key) {
            Some(first) if first.value != vote.value => Err(Violation::DoubleSign {
                node,
                first: *first,
                second: vote,
            }),
            Some(_) => Ok(()),
            None => {
                self.signed.insert(key, vote);
                Ok(())
            }
        }
    }

    /// Honest `node` decided: agreement, validity and a valid commit certificate.
    pub fn decided(&mut self, node: usize, decision: &Decision) -> Result<(), Violation> {
        let Decision { height, value, .. } = *decision;
        self.check_commit(node, decision)?;
        if !is_valid(value) {
            return Err(Violation::Validity {
                node,
                height,
                value,
                reason: "valid(v) is false",
            });
        }
        if !self.proposed.contains(&(height, value)) {
            return Err(Violation::Validity {
                node,
                height,
                value,
                reason: "nobody proposed it",
            });
        }
        match self.decided.get(&height) {
            Some(first) if first.1 != value => Err(Violation::Agreement {
                height,
                first: *first,
                second: (node, value),
            }),
            Some(_) => Ok(()),
            None => {
                self.decided.insert(height, (node, value));
                Ok(())
            }
        }
    }

    fn check_commit(&self, node: usize, decision: &Decision) -> Result<(), Violation> {
        let bad = |reason: String| Violation::BadCommit {
            node,
            height: decision.height,
            reason,
        };
        let mut signers = BTreeSet::new();
        let mut power = 0;
        for precommit in &decision.commit {
            let v = &precommit.vote;
            let expected = (
                decision.height,
                decision.round,
                VoteKind::Precommit,
                Some(decision.value),
            );
            if (v.height, v.round, v.kind, v.value) != expected {
                return Err(bad(format!("{v:?} is not a precommit for the decision")));
            }
            if !self.keys.verify_vote(precommit) {
                return Err(bad(format!(
                    "{v:?} carries a signature that does not verify"
                )));
            }
            if !signers.insert(v.validator) {
                return Err(bad(format!("validator {} appears twice", v.validator)));
            }
            power += self.validators.power(v.validator).unwrap_or(0);
        }
        if !self.validators.is_quorum(power) {
            return Err(bad(format!(
                "only {power} of {} voting power",
                self.validators.total_power()
            )));
        }
        Ok(())
    }

    /// `node` reported equivocation: both votes must be signed by the accused, for the same
    /// step, with different values, and the accused must really be Byzantine.
    pub fn evidence(&self, node: usize, evidence: &Equivocation) -> Result<(), Violation> {
        let (a, b) = (&evidence.first.vote, &evidence.second.vote);
        let reason = if (a.height, a.round, a.kind, a.validator)
            != (b.height, b.round, b.kind, b.validator)
        {
            Some("the votes are not for the same step by the same validator".to_string())
        } else if a.value == b.value {
            Some("the votes do not conflict".to_string())
        } else if !self.keys.verify_vote(&evidence.first)
            || !self.keys.verify_vote(&evidence.second)
        {
            Some("a vote's signature does not verify".to_string())
        } else if self.honest[a.validator.as_usize()] {
            Some(format!("it accuses honest validator {}", a.validator))
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Violation::FalseEvidence { node, reason }),
            None => Ok(()),
        }
    }

    /// Heights decided by some honest validator.
    pub fn decided_heights(&self) -> usize {
        self.decided.len()
    }
}
