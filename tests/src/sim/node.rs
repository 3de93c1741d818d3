//! A simulated node: an engine plus what the real node does around it (sign, send, loop
//! own messages back, persist the WAL before sending, keep time through the world's
//! queue, store decided blocks, gossip and sync), plus crashes and restarts.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use custos_consensus::wal::{decode_records, encode_record};
use custos_consensus::{
    Decision, DropReason, Engine, EngineConfig, Height, Input, Output, Round, SignedVote, Timeout,
    ValueId, VoteKind, WalEntry,
};

use super::crypto::{SignedProposal, honest_value, is_valid};
use super::scenario::{Behavior, CrashPoint};
use super::{Event, NetMessage, World};
use crate::sim::checker::Violation;

/// A decided block as the node stores it: what block sync sends to a lagging peer.
#[derive(Clone, Debug)]
pub(super) struct StoredBlock {
    pub(super) proposal: SignedProposal,
    pub(super) commit: Vec<SignedVote>,
}

/// What survives a crash.
#[derive(Clone, Debug, Default)]
pub(super) struct Disk {
    pub(super) wal: Vec<u8>,
    pub(super) blocks: BTreeMap<Height, StoredBlock>,
}

impl Disk {
    fn last_decided(&self) -> Height {
        self.blocks
            .keys()
            .next_back()
            .copied()
            .unwrap_or(Height::new(0))
    }
}

/// One simulated validator.
#[derive(Debug)]
pub(super) struct SimNode {
    pub(super) index: usize,
    pub(super) behavior: Option<Behavior>,
    config: EngineConfig,
    pub(super) engine: Option<Engine>,
    /// Bumped at every crash; timers of an earlier incarnation are void.
    pub(super) incarnation: u32,
    pub(super) disk: Disk,
    /// The votes the WAL on disk holds (the "persist before send" check).
    persisted_votes: BTreeSet<(Height, Round, VoteKind, Option<ValueId>)>,
    pending_crash: Option<(CrashPoint, u64)>,
    /// Signed proposals seen or sent, for block storage, gossip and Byzantine mischief.
    pub(super) proposals: BTreeMap<(Height, Round, ValueId), SignedProposal>,
    /// A Byzantine validator's split of the network for the current round.
    pub(super) byzantine_split: Option<((Height, Round), Vec<bool>)>,
}

impl SimNode {
    pub(super) fn new(index: usize, behavior: Option<Behavior>, config: EngineConfig) -> Self {
        Self {
            index,
            behavior,
            config,
            engine: None,
            incarnation: 0,
            disk: Disk::default(),
            persisted_votes: BTreeSet::new(),
            pending_crash: None,
            proposals: BTreeMap::new(),
            byzantine_split: None,
        }
    }

    pub(super) fn is_up(&self) -> bool {
        self.engine.is_some()
    }

    pub(super) fn last_decided(&self) -> Height {
        self.disk.last_decided()
    }

    fn is_honest(&self) -> bool {
        self.behavior.is_none()
    }

    /// Boots the engine at the height after the last stored block, replaying the WAL.
    pub(super) fn boot(&mut self, world: &mut World) {
        if self.behavior == Some(Behavior::Silent) {
            return;
        }
        let decoded = match decode_records(&self.disk.wal) {
            Ok(decoded) => decoded,
            Err(e) => {
                return world.fail(Violation::Engine {
                    node: self.index,
                    error: e.to_string(),
                });
            }
        };
        // Drop the torn tail, as the real node truncates its file.
        self.disk.wal.truncate(decoded.intact_bytes);
        self.persisted_votes = decoded
            .entries
            .iter()
            .filter_map(|e| match e {
                WalEntry::Vote(v) => Some((v.height, v.round, v.kind, v.value)),
                _ => None,
            })
            .collect();
        self.engine = Some(Engine::new(self.config.clone()));
        let height = self.last_decided().next();
        let validators = world.validators.clone();
        self.process(
            Input::StartHeight {
                height,
                validators,
                wal: decoded.entries,
            },
            world,
        );
    }

    /// Feeds one input and carries out the outputs, looping own messages back.
    pub(super) fn process(&mut self, input: Input, world: &mut World) {
        let mut local = VecDeque::from([input]);
        while let Some(input) = local.pop_front() {
            let Some(engine) = self.engine.as_mut() else {
                return;
            };
            let outputs = match engine.process(input) {
                Ok(outputs) => outputs,
                Err(e) => {
                    return world.fail(Violation::Engine {
                        node: self.index,
                        error: e.to_string(),
                    });
                }
            };
            for output in outputs {
                if self.crash_point_reached(&output, world) {
                    return;
                }
                world.trace.output(self.index, &output);
                if self.is_honest() {
                    self.carry_out(output, world, &mut local);
                } else {
                    self.carry_out_byzantine(output, world, &mut local);
                }
                if world.violation.is_some() {
                    return;
                }
            }
        }
    }

    fn carry_out(&mut self, output: Output, world: &mut World, local: &mut VecDeque<Input>) {
        match output {
            Output::PersistWal(entry) => {
                if let WalEntry::Vote(v) = &entry {
                    self.persisted_votes
                        .insert((v.height, v.round, v.kind, v.value));
                }
                self.disk.wal.extend(encode_record(&entry));
            }
            Output::BroadcastProposal(proposal) => {
                let signed = world.keys.sign_proposal(proposal, self.index);
                world.checker.proposed(proposal.height, proposal.value);
                self.remember(&signed);
                world.broadcast(self.index, &NetMessage::Proposal(signed));
                local.push_back(Input::Proposal {
                    proposal,
                    valid: true,
                });
            }
            Output::BroadcastVote(vote) => {
                let key = (vote.height, vote.round, vote.kind, vote.value);
                if !self.persisted_votes.contains(&key) {
                    return world.fail(Violation::UnpersistedVote {
                        node: self.index,
                        vote,
                    });
                }
                if let Err(v) = world.checker.signed_vote(self.index, vote) {
                    return world.fail(v);
                }
                world.trace.line(world.now_ms, || {
                    format!("node {} signs {vote:?}", self.index)
                });
                let signed = world.keys.sign_vote(vote, self.index);
                world.broadcast(self.index, &NetMessage::Vote(signed.clone()));
                local.push_back(Input::Vote(signed));
            }
            Output::Decide(decision) => {
                if let Err(v) = world.checker.decided(self.index, &decision) {
                    return world.fail(v);
                }
                self.decide(decision, world, local);
            }
            Output::Evidence(evidence) => {
                world.stats.evidence += 1;
                if let Err(v) = world.checker.evidence(self.index, &evidence) {
                    world.fail(v);
                }
            }
            Output::Dropped(reason @ DropReason::OwnVoteConflict { .. }) => {
                world.fail(Violation::Engine {
                    node: self.index,
                    error: reason.to_string(),
                });
            }
            other => self.carry_out_common(other, world, local),
        }
    }

    /// Outputs every node carries out alike.
    pub(super) fn carry_out_common(
        &mut self,
        output: Output,
        world: &mut World,
        local: &mut VecDeque<Input>,
    ) {
        match output {
            Output::ScheduleTimeout {
                timeout,
                duration_ms,
            } => {
                let event = Event::Timeout {
                    node: self.index,
                    incarnation: self.incarnation,
                    timeout,
                };
                world.schedule(world.now_ms + duration_ms, event);
            }
            Output::RequestValue { height, round } => {
                // Building a block takes a little while.
                let delay_ms = world.random_range(0..=20);
                let value = honest_value(world.scenario.seed, height, round, self.index);
                let event = Event::ValueReady {
                    node: self.index,
                    incarnation: self.incarnation,
                    height,
                    round,
                    value,
                };
                world.schedule(world.now_ms + delay_ms, event);
            }
            Output::Decide(decision) => self.decide(decision, world, local),
            Output::Dropped(_) => world.stats.engine_drops += 1,
            Output::PersistWal(_)
            | Output::BroadcastProposal(_)
            | Output::BroadcastVote(_)
            | Output::Evidence(_) => {}
        }
    }

    /// Stores the block with its commit, forgets the WAL of the height, starts the next.
    fn decide(&mut self, decision: Decision, world: &mut World, local: &mut VecDeque<Input>) {
        let Decision {
            height,
            round,
            value,
            commit,
        } = decision;
        world.trace.line(world.now_ms, || {
            format!(
                "node {} decides height {height} round {round}: {value}",
                self.index
            )
        });
        let Some(proposal) = self.proposals.get(&(height, round, value)).cloned() else {
            let error = format!("decided {value} at {height}/{round} without its proposal");
            return world.fail(Violation::Engine {
                node: self.index,
                error,
            });
        };
        self.disk
            .blocks
            .insert(height, StoredBlock { proposal, commit });
        self.disk.wal.clear();
        self.persisted_votes.clear();
        self.proposals.retain(|(h, _, _), _| *h > height);
        world.stats.max_height = world.stats.max_height.max(height.get());
        let validators = world.validators.clone();
        local.push_back(Input::StartHeight {
            height: height.next(),
            validators,
            wal: vec![],
        });
    }

    pub(super) fn remember(&mut self, signed: &SignedProposal) {
        let p = &signed.proposal;
        self.proposals
            .entry((p.height, p.round, p.value))
            .or_insert_with(|| signed.clone());
    }

    /// A message from the network.
    pub(super) fn receive(&mut self, from: usize, message: NetMessage, world: &mut World) {
        if !self.is_up() {
            return;
        }
        match message {
            NetMessage::Status { height, round } => self.answer_status(from, height, round, world),
            NetMessage::Proposal(signed) => {
                if !world.keys.verify_proposal(&signed) {
                    world.stats.forgeries_rejected += 1;
                    return;
                }
                self.remember(&signed);
                let proposal = signed.proposal;
                self.process(
                    Input::Proposal {
                        proposal,
                        valid: is_valid(proposal.value),
                    },
                    world,
                );
            }
            NetMessage::Vote(signed) => {
                if !world.keys.verify_vote(&signed) {
                    world.stats.forgeries_rejected += 1;
                    return;
                }
                self.process(Input::Vote(signed), world);
            }
        }
        if self.behavior == Some(Behavior::RandomVoter) {
            self.random_mischief(world);
        }
    }

    pub(super) fn timeout(&mut self, incarnation: u32, timeout: Timeout, world: &mut World) {
        if incarnation == self.incarnation {
            self.process(Input::TimeoutElapsed(timeout), world);
        }
    }

    pub(super) fn value_ready(
        &mut self,
        incarnation: u32,
        height: Height,
        round: Round,
        value: ValueId,
        world: &mut World,
    ) {
        if incarnation == self.incarnation {
            self.process(
                Input::ValueReady {
                    height,
                    round,
                    value,
                },
                world,
            );
        }
    }

    /// Periodic gossip: tell everyone where this node is; they answer with what it lacks.
    pub(super) fn gossip(&mut self, world: &mut World) {
        let Some(engine) = &self.engine else { return };
        let Some(height) = engine.height() else {
            return;
        };
        let status = NetMessage::Status {
            height,
            round: engine.round(),
        };
        world.broadcast(self.index, &status);
    }

    /// A peer at `(height, round)` asked implicitly for what it may miss: the blocks it has
    /// not decided, or this node's own messages of its round and of this node's round.
    fn answer_status(&mut self, peer: usize, height: Height, round: Round, world: &mut World) {
        let Some(engine) = &self.engine else { return };
        let Some(my_height) = engine.height() else {
            return;
        };
        if height < my_height {
            for h in [height, height.next()] {
                if let Some(block) = self.disk.blocks.get(&h) {
                    for precommit in &block.commit {
                        world.send(self.index, peer, NetMessage::Vote(precommit.clone()));
                    }
                    world.send(
                        self.index,
                        peer,
                        NetMessage::Proposal(block.proposal.clone()),
                    );
                }
            }
            return;
        }
        if height > my_height {
            return;
        }
        let my_round = engine.round();
        if round <= my_round {
            self.send_own_round(peer, round, world);
        }
        if round < my_round {
            self.send_own_round(peer, my_round, world);
        }
    }

    /// Resends this node's proposal (with the prevotes of its proof-of-lock round) and
    /// votes of `round` to `peer`, re-signing them: they may predate a restart.
    fn send_own_round(&self, peer: usize, round: Round, world: &mut World) {
        let Some(engine) = &self.engine else { return };
        let mut messages = Vec::new();
        if let Some(proposal) = engine.own_proposal(round) {
            messages.push(NetMessage::Proposal(
                world.keys.sign_proposal(proposal, self.index),
            ));
            if let Some(pol_round) = proposal.pol_round {
                let polka = engine
                    .votes(pol_round, VoteKind::Prevote)
                    .filter(|v| v.vote.value == Some(proposal.value));
                messages.extend(polka.cloned().map(NetMessage::Vote));
            }
        }
        for vote in engine.own_votes(round) {
            messages.push(NetMessage::Vote(world.keys.sign_vote(vote, self.index)));
        }
        for message in messages {
            world.send(self.index, peer, message);
        }
    }

    /// Arms a crash; it hits after `point.after_outputs` more outputs.
    pub(super) fn arm_crash(&mut self, point: CrashPoint, down_ms: u64, world: &mut World) {
        if !self.is_up() || self.pending_crash.is_some() {
            return;
        }
        if point.after_outputs == 0 {
            self.crash(down_ms, world);
        } else {
            self.pending_crash = Some((point, down_ms));
        }
    }

    pub(super) fn disarm_crash(&mut self) {
        self.pending_crash = None;
    }

    /// Counts down an armed crash; at zero the node dies before carrying out `output`
    /// (tearing the WAL record if `output` is an append and the crash says so).
    fn crash_point_reached(&mut self, output: &Output, world: &mut World) -> bool {
        let Some((point, down_ms)) = &mut self.pending_crash else {
            return false;
        };
        if point.after_outputs > 0 {
            point.after_outputs -= 1;
            return false;
        }
        let (torn_write, down_ms) = (point.torn_write, *down_ms);
        if let (true, Output::PersistWal(entry)) = (torn_write, output) {
            let record = encode_record(entry);
            let kept = world.random_below(record.len());
            self.disk.wal.extend_from_slice(&record[..kept]);
            world.stats.torn_writes += 1;
        }
        self.crash(down_ms, world);
        true
    }

    fn crash(&mut self, down_ms: u64, world: &mut World) {
        world
            .trace
            .line(world.now_ms, || format!("node {} crashes", self.index));
        world.stats.crashes += 1;
        self.engine = None;
        self.pending_crash = None;
        self.incarnation += 1;
        self.proposals.clear();
        world.schedule(world.now_ms + down_ms, Event::Restart { node: self.index });
    }

    pub(super) fn restart(&mut self, world: &mut World) {
        if self.is_up() || !self.is_honest() {
            return;
        }
        world
            .trace
            .line(world.now_ms, || format!("node {} restarts", self.index));
        self.boot(world);
    }

    /// The current round of the engine, if up.
    pub(super) fn round(&self) -> Option<Round> {
        self.engine.as_ref().map(|e| e.round())
    }

    /// Whether `value` was proposed at `(height, round)` as far as this node knows.
    pub(super) fn seen_values(&self, height: Height, round: Round) -> Vec<ValueId> {
        self.proposals
            .keys()
            .filter(|(h, r, _)| (*h, *r) == (height, round))
            .map(|(_, _, v)| *v)
            .collect()
    }

    pub(super) fn carry_out_byzantine(
        &mut self,
        output: Output,
        world: &mut World,
        local: &mut VecDeque<Input>,
    ) {
        match output {
            Output::BroadcastProposal(proposal) => {
                self.lie_about_proposal(proposal, world);
                local.push_back(Input::Proposal {
                    proposal,
                    valid: true,
                });
            }
            Output::BroadcastVote(vote) => {
                self.lie_about_vote(vote, world);
                local.push_back(Input::Vote(world.keys.sign_vote(vote, self.index)));
            }
            other => self.carry_out_common(other, world, local),
        }
    }
}
