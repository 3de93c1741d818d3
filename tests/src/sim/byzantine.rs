//! What Byzantine validators send instead of the honest engine's messages. They sign only
//! with their own key: a forged signature is exactly what the node's signature check
//! exists for, and the random voter tries it anyway.

use custos_consensus::{Height, Proposal, Round, ValidatorIndex, ValueId, Vote, VoteKind};

use super::crypto::make_invalid;
use super::node::SimNode;
use super::scenario::Behavior;
use super::{NetMessage, World};

impl SimNode {
    /// The proposal this validator's engine wants to broadcast, as a liar sends it.
    pub(super) fn lie_about_proposal(&mut self, proposal: Proposal, world: &mut World) {
        let signed = world.keys.sign_proposal(proposal, self.index);
        self.remember(&signed);
        world.checker.proposed(proposal.height, proposal.value);
        match self.behavior {
            Some(Behavior::Equivocator) => {
                let other = Proposal {
                    value: world.random_value(),
                    pol_round: None,
                    ..proposal
                };
                let other_signed = world.keys.sign_proposal(other, self.index);
                self.remember(&other_signed);
                world.checker.proposed(other.height, other.value);
                let group_a = self.split(world, proposal.height, proposal.round);
                for (peer, in_a) in group_a.into_iter().enumerate() {
                    let message = if in_a { &signed } else { &other_signed };
                    world.send(self.index, peer, NetMessage::Proposal(message.clone()));
                }
            }
            Some(Behavior::Amnesiac) => {
                let fresh = Proposal {
                    value: world.random_value(),
                    pol_round: None,
                    ..proposal
                };
                world.checker.proposed(fresh.height, fresh.value);
                let fresh_signed = world.keys.sign_proposal(fresh, self.index);
                self.remember(&fresh_signed);
                world.broadcast(self.index, &NetMessage::Proposal(fresh_signed));
            }
            Some(Behavior::RandomVoter) => {
                let random = Proposal {
                    value: self
                        .random_value(world, proposal.height, proposal.round)
                        .unwrap_or(proposal.value),
                    pol_round: random_pol_round(world, proposal.round),
                    ..proposal
                };
                let random_signed = world.keys.sign_proposal(random, self.index);
                world.checker.proposed(random.height, random.value);
                world.broadcast(self.index, &NetMessage::Proposal(random_signed));
            }
            _ => world.broadcast(self.index, &NetMessage::Proposal(signed)),
        }
    }

    /// The vote this validator's engine wants to broadcast, as a liar sends it.
    pub(super) fn lie_about_vote(&mut self, vote: Vote, world: &mut World) {
        match self.behavior {
            Some(Behavior::Equivocator | Behavior::DoubleVoter) => {
                let mut alternatives: Vec<Option<ValueId>> = self
                    .seen_values(vote.height, vote.round)
                    .into_iter()
                    .map(Some)
                    .filter(|v| *v != vote.value)
                    .collect();
                if vote.value.is_some() {
                    alternatives.push(None);
                }
                let other_value = match alternatives.len() {
                    0 => Some(world.random_value()),
                    n => alternatives[world.random_below(n)],
                };
                let mine = world.keys.sign_vote(vote, self.index);
                let other = world.keys.sign_vote(
                    Vote {
                        value: other_value,
                        ..vote
                    },
                    self.index,
                );
                let group_a = self.split(world, vote.height, vote.round);
                for (peer, in_a) in group_a.into_iter().enumerate() {
                    let message = if in_a { &mine } else { &other };
                    world.send(self.index, peer, NetMessage::Vote(message.clone()));
                }
                // Sometimes let one peer see both: it must produce evidence.
                if world.random_below(5) == 0 {
                    let peer = world.random_below(world.scenario.validators());
                    world.send(self.index, peer, NetMessage::Vote(mine));
                    world.send(self.index, peer, NetMessage::Vote(other));
                }
            }
            Some(Behavior::RandomVoter) => {
                let value = self.random_value(world, vote.height, vote.round);
                let signed = world.keys.sign_vote(Vote { value, ..vote }, self.index);
                world.broadcast(self.index, &NetMessage::Vote(signed));
            }
            Some(Behavior::Amnesiac) => {
                // Its engine already ignores the lock. A vote for a value goes to part of
                // the network, the rest sees nil: prevotes to half (the others see no
                // polka, so they keep no valid value and propose fresh ones), precommits
                // to a single validator (which may decide while the others time out).
                let signed = world.keys.sign_vote(vote, self.index);
                if vote.value.is_none() {
                    return world.broadcast(self.index, &NetMessage::Vote(signed));
                }
                let nil = world.keys.sign_vote(
                    Vote {
                        value: None,
                        ..vote
                    },
                    self.index,
                );
                let n = world.scenario.validators();
                let chosen = world.random_below(n);
                let half = self.split(world, vote.height, vote.round);
                for (peer, in_half) in half.into_iter().enumerate() {
                    let gets_value = match vote.kind {
                        VoteKind::Prevote => in_half,
                        VoteKind::Precommit => peer == chosen,
                    };
                    let message = if gets_value { &signed } else { &nil };
                    world.send(self.index, peer, NetMessage::Vote(message.clone()));
                }
            }
            Some(Behavior::Silent) => {}
            None => unreachable!("honest nodes do not lie"),
        }
    }

    /// The random voter, on every message it receives, sometimes sends a message of its
    /// own: a vote for a random value in a random nearby (or far) round and height, now and
    /// then under another validator's name, and proposals when it could be the proposer.
    pub(super) fn random_mischief(&mut self, world: &mut World) {
        if world.random_below(4) != 0 {
            return;
        }
        let Some(engine) = &self.engine else { return };
        let Some(height) = engine.height() else {
            return;
        };
        let round = engine.round();
        let height = match world.random_below(20) {
            0 => height.next(),
            1 => Height::new(height.get() + 5),
            2 => Height::new(height.get().saturating_sub(1)),
            _ => height,
        };
        let round = match world.random_below(10) {
            0 => round.saturating_add(u32::try_from(world.random_below(200)).expect("small")),
            1 => Round::new(round.get().saturating_sub(1)),
            _ => round.saturating_add(u32::try_from(world.random_below(3)).expect("small")),
        };
        let kind = if world.random_below(2) == 0 {
            VoteKind::Prevote
        } else {
            VoteKind::Precommit
        };
        let impersonate = world.random_below(10) == 0;
        let claimed = if impersonate {
            world.random_below(world.scenario.validators() + 1)
        } else {
            self.index
        };
        let validator = ValidatorIndex::new(u32::try_from(claimed).expect("small"));
        let value = self.random_value(world, height, round);
        let vote = world.keys.sign_vote(
            Vote {
                height,
                round,
                kind,
                value,
                validator,
            },
            self.index,
        );
        for peer in 0..world.scenario.validators() {
            if world.random_below(10) < 7 {
                world.send(self.index, peer, NetMessage::Vote(vote.clone()));
            }
        }
        if world.validators.proposer(height, round).as_usize() == self.index {
            let value = self
                .random_value(world, height, round)
                .unwrap_or_else(|| world.random_value());
            let pol_round = random_pol_round(world, round);
            let proposal = Proposal {
                height,
                round,
                value,
                pol_round,
                proposer: validator,
            };
            world.checker.proposed(height, value);
            let signed = world.keys.sign_proposal(proposal, self.index);
            world.broadcast(self.index, &NetMessage::Proposal(signed));
        }
    }

    /// nil, a value seen in the round, a fresh valid value or an invalid one.
    fn random_value(&self, world: &mut World, height: Height, round: Round) -> Option<ValueId> {
        match world.random_below(5) {
            0 => None,
            1 | 2 => {
                let seen = self.seen_values(height, round);
                if seen.is_empty() {
                    Some(world.random_value())
                } else {
                    Some(seen[world.random_below(seen.len())])
                }
            }
            3 => Some(world.random_value()),
            _ => Some(make_invalid(world.random_value())),
        }
    }

    /// The half of the network that gets this validator's first version in `(height,
    /// round)`; the same split for the whole round, so each half can form its own quorum.
    fn split(&mut self, world: &mut World, height: Height, round: Round) -> Vec<bool> {
        if let Some((key, split)) = &self.byzantine_split {
            if *key == (height, round) {
                return split.clone();
            }
        }
        let split: Vec<bool> = (0..world.scenario.validators())
            .map(|_| world.random_below(2) == 0)
            .collect();
        self.byzantine_split = Some(((height, round), split.clone()));
        split
    }
}

/// `None`, a plausible earlier round, or an impossible one (not below `round`).
fn random_pol_round(world: &mut World, round: Round) -> Option<Round> {
    match world.random_below(4) {
        0 | 1 => None,
        2 => Some(Round::new(
            u32::try_from(world.random_below(usize::try_from(round.get()).expect("fits") + 1))
                .expect("small"),
        )),
        _ => Some(round.saturating_add(1)),
    }
}
