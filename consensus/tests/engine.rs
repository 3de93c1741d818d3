//! Tests of the driver: thresholds, message checks, buffers, evidence and WAL replay.

use custos_consensus::limits::{FUTURE_ROUNDS_MAX, NEXT_HEIGHT_MESSAGES_PER_VALIDATOR_MAX};
use custos_consensus::*;

const V: ValueId = ValueId([1; 32]);
const W: ValueId = ValueId([2; 32]);
const H: Height = Height::new(1);

fn addresses(n: u8) -> Vec<ValidatorAddress> {
    (0..n).map(|i| ValidatorAddress([i + 1; 32])).collect()
}

fn set(n: u8) -> ValidatorSet {
    ValidatorSet::new(
        addresses(n)
            .into_iter()
            .map(|address| Validator { address, power: 1 })
            .collect(),
    )
    .unwrap()
}

fn idx(i: u32) -> ValidatorIndex {
    ValidatorIndex::new(i)
}

fn sign(vote: Vote) -> SignedVote {
    let mut bytes = vec![0u8; 64];
    bytes[0] = u8::try_from(vote.validator.get()).unwrap();
    bytes[1] = u8::try_from(vote.round.get()).unwrap();
    SignedVote {
        vote,
        signature: Signature::new(bytes).unwrap(),
    }
}

fn vote(round: u32, kind: VoteKind, value: Option<ValueId>, validator: u32) -> Input {
    Input::Vote(sign(Vote {
        height: H,
        round: Round::new(round),
        kind,
        value,
        validator: idx(validator),
    }))
}

fn proposal(round: u32, value: ValueId, pol_round: Option<u32>) -> Input {
    let round = Round::new(round);
    Input::Proposal {
        proposal: Proposal {
            height: H,
            round,
            value,
            pol_round: pol_round.map(Round::new),
            proposer: set(4).proposer(H, round),
        },
        valid: true,
    }
}

/// An engine for a validator that proposes in none of rounds `0..3` of height 1, started.
fn follower() -> (Engine, ValidatorIndex) {
    let validators = set(4);
    let proposers: Vec<_> = (0..3)
        .map(|r| validators.proposer(H, Round::new(r)))
        .collect();
    let me = (0..4).map(idx).find(|i| !proposers.contains(i)).unwrap();
    let mut engine = Engine::new(EngineConfig::new(addresses(4)[me.as_usize()]));
    engine
        .process(Input::StartHeight {
            height: H,
            validators,
            wal: vec![],
        })
        .unwrap();
    (engine, me)
}

/// Validators other than `me`, in index order.
fn others(me: ValidatorIndex) -> Vec<u32> {
    (0..4).filter(|i| *i != me.get()).collect()
}

fn broadcast_votes(outputs: &[Output]) -> Vec<Vote> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::BroadcastVote(v) => Some(*v),
            _ => None,
        })
        .collect()
}

fn drops(outputs: &[Output]) -> Vec<DropReason> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Dropped(reason) => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// Feeds inputs, collecting outputs; own broadcasts are looped back signed.
fn feed(engine: &mut Engine, inputs: Vec<Input>) -> Vec<Output> {
    let mut all = Vec::new();
    let mut queue: std::collections::VecDeque<Input> = inputs.into();
    while let Some(input) = queue.pop_front() {
        let outputs = engine.process(input).unwrap();
        for output in &outputs {
            match output {
                Output::BroadcastVote(v) => queue.push_back(Input::Vote(sign(*v))),
                Output::BroadcastProposal(p) => {
                    queue.push_back(Input::Proposal {
                        proposal: *p,
                        valid: true,
                    });
                }
                _ => {}
            }
        }
        all.extend(outputs);
    }
    all
}

#[test]
fn a_follower_prevotes_locks_precommits_and_decides_with_a_commit_certificate() {
    let (mut engine, me) = follower();
    let o = others(me);
    let mut outputs = feed(&mut engine, vec![proposal(0, V, None)]);
    outputs.extend(feed(
        &mut engine,
        vec![
            vote(0, VoteKind::Prevote, Some(V), o[0]),
            vote(0, VoteKind::Prevote, Some(V), o[1]),
            vote(0, VoteKind::Precommit, Some(V), o[0]),
            vote(0, VoteKind::Precommit, Some(V), o[1]),
        ],
    ));
    let votes = broadcast_votes(&outputs);
    assert_eq!(votes.len(), 2);
    assert_eq!(
        (votes[0].kind, votes[0].value),
        (VoteKind::Prevote, Some(V))
    );
    assert_eq!(
        (votes[1].kind, votes[1].value),
        (VoteKind::Precommit, Some(V))
    );
    let decision = outputs.iter().find_map(|o| match o {
        Output::Decide(d) => Some(d.clone()),
        _ => None,
    });
    let decision = decision.expect("decided");
    assert_eq!(
        (decision.height, decision.round, decision.value),
        (H, Round::ZERO, V)
    );
    let mut signers: Vec<u32> = decision
        .commit
        .iter()
        .map(|v| v.vote.validator.get())
        .collect();
    signers.sort_unstable();
    let mut expected = vec![me.get(), o[0], o[1]];
    expected.sort_unstable();
    assert_eq!(signers, expected);
    // The node's signatures come back untouched.
    for signed in &decision.commit {
        assert_eq!(*signed, sign(signed.vote));
    }
    assert_eq!(engine.step(), Step::Commit);
}

#[test]
fn every_broadcast_vote_is_preceded_by_its_wal_entry() {
    let (mut engine, me) = follower();
    let o = others(me);
    let outputs = feed(
        &mut engine,
        vec![
            proposal(0, V, None),
            vote(0, VoteKind::Prevote, Some(V), o[0]),
            vote(0, VoteKind::Prevote, Some(V), o[1]),
        ],
    );
    for (i, output) in outputs.iter().enumerate() {
        if let Output::BroadcastVote(v) = output {
            let persisted = outputs[..i].contains(&Output::PersistWal(WalEntry::Vote(*v)));
            assert!(persisted, "vote {v:?} broadcast before it was persisted");
        }
    }
}

#[test]
fn two_f_votes_are_not_a_quorum() {
    let (mut engine, me) = follower();
    let o = others(me);
    // Prevotes for V from two others, none from us (we never saw the proposal): 2 of 4.
    let outputs = feed(
        &mut engine,
        vec![
            vote(0, VoteKind::Prevote, Some(V), o[0]),
            vote(0, VoteKind::Prevote, Some(V), o[1]),
            vote(0, VoteKind::Precommit, Some(V), o[0]),
            vote(0, VoteKind::Precommit, Some(V), o[1]),
        ],
    );
    assert!(outputs.is_empty(), "{outputs:?}");
    assert_eq!(engine.step(), Step::Propose);
}

#[test]
fn a_polka_for_nil_makes_it_precommit_nil_and_timeouts_follow() {
    let (mut engine, me) = follower();
    let o = others(me);
    let outputs = feed(
        &mut engine,
        vec![
            proposal(0, V, None),
            vote(0, VoteKind::Prevote, None, o[0]),
            vote(0, VoteKind::Prevote, None, o[1]),
            vote(0, VoteKind::Prevote, None, o[2]),
        ],
    );
    let votes = broadcast_votes(&outputs);
    assert_eq!(
        votes.last().map(|v| (v.kind, v.value)),
        Some((VoteKind::Precommit, None))
    );
    assert_eq!(engine.locked(), None);
    // 2f+1 precommits of any kind schedule timeoutPrecommit (L47), which starts round 1.
    let outputs = feed(
        &mut engine,
        vec![
            vote(0, VoteKind::Precommit, None, o[0]),
            vote(0, VoteKind::Precommit, Some(W), o[1]),
        ],
    );
    let timeout = outputs.iter().find_map(|o| match o {
        Output::ScheduleTimeout {
            timeout,
            duration_ms,
        } => Some((*timeout, *duration_ms)),
        _ => None,
    });
    let (timeout, duration_ms) = timeout.expect("timeoutPrecommit scheduled");
    assert_eq!(timeout.step, TimeoutStep::Precommit);
    assert_eq!(
        duration_ms,
        TimeoutConfig::default().precommit.duration_ms(Round::ZERO)
    );
    feed(&mut engine, vec![Input::TimeoutElapsed(timeout)]);
    assert_eq!(
        (engine.round(), engine.step()),
        (Round::new(1), Step::Propose)
    );
}

#[test]
fn timeouts_grow_with_the_round() {
    let (mut engine, _) = follower();
    for round in 0..3u32 {
        let outputs = engine.process(Input::TimeoutElapsed(Timeout {
            height: H,
            round: Round::new(round),
            step: TimeoutStep::Precommit,
        }));
        let scheduled = outputs.unwrap().into_iter().find_map(|o| match o {
            Output::ScheduleTimeout {
                timeout,
                duration_ms,
            } if timeout.step == TimeoutStep::Propose => Some(duration_ms),
            _ => None,
        });
        assert_eq!(scheduled, Some(3000 + 500 * u64::from(round + 1)));
    }
}

#[test]
fn a_stale_timeout_is_ignored() {
    let (mut engine, _) = follower();
    let stale = Timeout {
        height: H,
        round: Round::new(5),
        step: TimeoutStep::Propose,
    };
    assert_eq!(
        engine.process(Input::TimeoutElapsed(stale)).unwrap(),
        vec![]
    );
    let other_height = Timeout {
        height: Height::new(9),
        round: Round::ZERO,
        step: TimeoutStep::Propose,
    };
    assert_eq!(
        engine.process(Input::TimeoutElapsed(other_height)).unwrap(),
        vec![]
    );
    assert_eq!(engine.step(), Step::Propose);
}

#[test]
fn conflicting_votes_yield_evidence_once_and_count_once() {
    let (mut engine, me) = follower();
    let o = others(me);
    let first = vote(0, VoteKind::Prevote, Some(V), o[0]);
    let second = vote(0, VoteKind::Prevote, Some(W), o[0]);
    let third = vote(0, VoteKind::Prevote, None, o[0]);
    assert_eq!(
        feed(&mut engine, vec![first.clone(), first.clone()]),
        vec![]
    );
    let outputs = feed(&mut engine, vec![second.clone(), third]);
    let (Input::Vote(first), Input::Vote(second)) = (first, second) else {
        unreachable!()
    };
    assert_eq!(
        outputs,
        vec![Output::Evidence(Equivocation { first, second })]
    );
    // The equivocator counts once: with one more prevote for W there is no polka for W.
    let outputs = feed(&mut engine, vec![vote(0, VoteKind::Prevote, Some(W), o[1])]);
    assert!(outputs.is_empty(), "{outputs:?}");
}

#[test]
fn an_equivocators_second_vote_counts_once_honest_validators_back_its_value() {
    // A validator that first saw the equivocator's nil precommit must still accept a
    // commit certificate holding the equivocator's precommit for V (found by the
    // simulator: without this, seed 40 stalled).
    let (mut engine, me) = follower();
    let o = others(me);
    let outputs = feed(
        &mut engine,
        vec![
            proposal(0, V, None),
            vote(0, VoteKind::Precommit, None, o[0]),
            vote(0, VoteKind::Precommit, Some(V), o[0]),
        ],
    );
    assert_eq!(
        outputs
            .iter()
            .filter(|o| matches!(o, Output::Evidence(_)))
            .count(),
        1
    );
    let outputs = feed(
        &mut engine,
        vec![
            vote(0, VoteKind::Precommit, Some(V), o[1]),
            vote(0, VoteKind::Precommit, Some(V), o[2]),
        ],
    );
    assert!(
        !outputs.iter().any(|o| matches!(o, Output::Decide(_))),
        "o[0]'s V vote was dropped"
    );
    // Gossip resends the certificate: now V has f+1 behind it and o[0]'s vote counts.
    let outputs = feed(
        &mut engine,
        vec![vote(0, VoteKind::Precommit, Some(V), o[0])],
    );
    let decided = outputs.iter().find_map(|o| match o {
        Output::Decide(d) => Some(d.commit.len()),
        _ => None,
    });
    assert_eq!(decided, Some(3));
}

#[test]
fn proposals_from_anyone_but_the_proposer_are_dropped() {
    let (mut engine, me) = follower();
    let outputs = engine
        .process(Input::Proposal {
            proposal: Proposal {
                height: H,
                round: Round::ZERO,
                value: V,
                pol_round: None,
                proposer: me,
            },
            valid: true,
        })
        .unwrap();
    assert!(matches!(
        drops(&outputs)[..],
        [DropReason::NotProposer { .. }]
    ));
    let outputs = engine.process(proposal(1, V, Some(1))).unwrap();
    assert!(matches!(
        drops(&outputs)[..],
        [DropReason::InvalidPolRound { .. }]
    ));
}

#[test]
fn a_second_proposal_is_kept_only_once_votes_back_it() {
    let (mut engine, me) = follower();
    let o = others(me);
    feed(&mut engine, vec![proposal(0, V, None)]);
    let outputs = engine.process(proposal(0, W, None)).unwrap();
    assert!(matches!(
        drops(&outputs)[..],
        [DropReason::UnjustifiedProposal { .. }]
    ));
    // f+1 precommits for W, then W's proposal: kept, and with 2f+1 precommits decided.
    feed(
        &mut engine,
        vec![
            vote(0, VoteKind::Precommit, Some(W), o[0]),
            vote(0, VoteKind::Precommit, Some(W), o[1]),
            vote(0, VoteKind::Precommit, Some(W), o[2]),
        ],
    );
    let outputs = feed(&mut engine, vec![proposal(0, W, None)]);
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Decide(d) if d.value == W)),
        "{outputs:?}"
    );
}

#[test]
fn a_commit_from_an_earlier_round_decides() {
    let (mut engine, me) = follower();
    let o = others(me);
    for round in 0..2 {
        let t = Timeout {
            height: H,
            round: Round::new(round),
            step: TimeoutStep::Precommit,
        };
        feed(&mut engine, vec![Input::TimeoutElapsed(t)]);
    }
    assert_eq!(engine.round(), Round::new(2));
    let outputs = feed(
        &mut engine,
        vec![
            vote(0, VoteKind::Precommit, Some(V), o[0]),
            vote(0, VoteKind::Precommit, Some(V), o[1]),
            vote(0, VoteKind::Precommit, Some(V), o[2]),
            proposal(0, V, None),
        ],
    );
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Decide(d) if d.round == Round::ZERO))
    );
}

#[test]
fn f_plus_1_validators_ahead_make_it_skip_rounds_even_beyond_the_window() {
    let (mut engine, me) = follower();
    let o = others(me);
    let far = FUTURE_ROUNDS_MAX + 5;
    let outputs = feed(&mut engine, vec![vote(far, VoteKind::Prevote, None, o[0])]);
    assert!(matches!(
        drops(&outputs)[..],
        [DropReason::RoundTooFarAhead { .. }]
    ));
    assert_eq!(
        engine.round(),
        Round::ZERO,
        "one validator (f) is not enough"
    );
    let outputs = feed(&mut engine, vec![vote(far, VoteKind::Prevote, None, o[1])]);
    assert_eq!(engine.round(), Round::new(far), "f+1 validators are");
    assert!(
        drops(&outputs).is_empty(),
        "after the skip the vote fits the window: {outputs:?}"
    );
}

#[test]
fn messages_of_the_next_height_wait_within_a_quota() {
    let (mut engine, me) = follower();
    let o = others(me);
    let next = H.next();
    let ahead = |round: u32, validator: u32| {
        Input::Vote(sign(Vote {
            height: next,
            round: Round::new(round),
            kind: VoteKind::Prevote,
            value: None,
            validator: idx(validator),
        }))
    };
    let quota = u32::try_from(NEXT_HEIGHT_MESSAGES_PER_VALIDATOR_MAX).unwrap();
    for round in 0..quota {
        assert_eq!(engine.process(ahead(round, o[0])).unwrap(), vec![]);
    }
    let outputs = engine.process(ahead(quota, o[0])).unwrap();
    assert!(matches!(
        drops(&outputs)[..],
        [DropReason::NextHeightQuotaFull { .. }]
    ));
    let outputs = engine.process(ahead(1, o[1])).unwrap();
    assert!(drops(&outputs).is_empty(), "another sender still has room");
    let two_ahead = Input::Vote(sign(Vote {
        height: next.next(),
        round: Round::ZERO,
        kind: VoteKind::Prevote,
        value: None,
        validator: idx(o[0]),
    }));
    let outputs = engine.process(two_ahead).unwrap();
    assert!(matches!(
        drops(&outputs)[..],
        [DropReason::HeightTooFarAhead { .. }]
    ));
    // At the next height the buffered prevotes count: two validators (f+1) at round 1 or
    // later make the engine skip to round 1 at once.
    engine
        .process(Input::StartHeight {
            height: next,
            validators: set(4),
            wal: vec![],
        })
        .unwrap();
    assert_eq!(engine.round(), Round::new(1), "buffered messages replayed");
    assert_eq!(engine.votes(Round::new(8), VoteKind::Prevote).count(), 1);
    let outputs = engine
        .process(vote(0, VoteKind::Prevote, None, o[0]))
        .unwrap();
    assert!(matches!(
        drops(&outputs)[..],
        [DropReason::StaleHeight { .. }]
    ));
}

#[test]
fn contract_violations_are_errors() {
    let mut engine = Engine::new(EngineConfig::new(addresses(4)[0]));
    assert_eq!(
        engine.process(vote(0, VoteKind::Prevote, None, 1)),
        Err(InputError::NotStarted)
    );
    engine
        .process(Input::StartHeight {
            height: H,
            validators: set(4),
            wal: vec![],
        })
        .unwrap();
    assert!(matches!(
        engine.process(vote(0, VoteKind::Prevote, None, 4)),
        Err(InputError::UnknownValidator { .. })
    ));
    assert!(matches!(
        engine.process(Input::StartHeight {
            height: H,
            validators: set(4),
            wal: vec![]
        }),
        Err(InputError::HeightNotIncreasing { .. })
    ));
    let outputs = engine
        .process(Input::ValueReady {
            height: H,
            round: Round::new(3),
            value: V,
        })
        .unwrap();
    assert!(matches!(
        drops(&outputs)[..],
        [DropReason::UnrequestedValue { .. }]
    ));
}

#[test]
fn an_observer_follows_and_decides_without_voting() {
    let mut engine = Engine::new(EngineConfig::new(ValidatorAddress([0xee; 32])));
    let mut outputs = feed(
        &mut engine,
        vec![Input::StartHeight {
            height: H,
            validators: set(4),
            wal: vec![],
        }],
    );
    outputs.extend(feed(&mut engine, vec![proposal(0, V, None)]));
    for validator in 0..3 {
        outputs.extend(feed(
            &mut engine,
            vec![
                vote(0, VoteKind::Prevote, Some(V), validator),
                vote(0, VoteKind::Precommit, Some(V), validator),
            ],
        ));
    }
    assert!(broadcast_votes(&outputs).is_empty());
    assert!(!outputs.iter().any(|o| matches!(o, Output::PersistWal(_))));
    assert_eq!(engine.decision().map(|d| d.value), Some(V));
}

/// Runs a follower until it is locked on V in round 0, returning its WAL entries.
fn locked_follower() -> (Vec<WalEntry>, ValidatorIndex) {
    let (mut engine, me) = follower();
    let o = others(me);
    let outputs = feed(
        &mut engine,
        vec![
            proposal(0, V, None),
            vote(0, VoteKind::Prevote, Some(V), o[0]),
            vote(0, VoteKind::Prevote, Some(V), o[1]),
        ],
    );
    assert_eq!(engine.locked().map(|l| l.value), Some(V));
    let wal = outputs
        .into_iter()
        .filter_map(|o| match o {
            Output::PersistWal(entry) => Some(entry),
            _ => None,
        })
        .collect();
    (wal, me)
}

#[test]
fn a_restarted_validator_keeps_its_lock_and_resends_its_votes() {
    let (wal, me) = locked_follower();
    let log: Vec<u8> = wal.iter().flat_map(wal::encode_record).collect();
    let entries = wal::decode_records(&log).unwrap().entries;
    let mut engine = Engine::new(EngineConfig::new(addresses(4)[me.as_usize()]));
    let outputs = engine
        .process(Input::StartHeight {
            height: H,
            validators: set(4),
            wal: entries,
        })
        .unwrap();
    let resent = broadcast_votes(&outputs);
    assert_eq!(
        resent.iter().map(|v| (v.kind, v.value)).collect::<Vec<_>>(),
        vec![(VoteKind::Prevote, Some(V)), (VoteKind::Precommit, Some(V))]
    );
    assert!(
        !outputs.iter().any(|o| matches!(o, Output::PersistWal(_))),
        "nothing new signed"
    );
    assert_eq!(
        engine.locked(),
        Some(RoundValue {
            round: Round::ZERO,
            value: V
        })
    );
    assert_eq!(
        engine.valid(),
        Some(RoundValue {
            round: Round::ZERO,
            value: V
        })
    );
    // Round 1 proposes W fresh: the lock makes it prevote nil (L26).
    let t = Timeout {
        height: H,
        round: Round::ZERO,
        step: TimeoutStep::Precommit,
    };
    let mut outputs = feed(
        &mut engine,
        vec![Input::TimeoutElapsed(t), proposal(1, W, None)],
    );
    outputs.retain(|o| matches!(o, Output::BroadcastVote(_)));
    assert_eq!(
        broadcast_votes(&outputs).last().map(|v| (v.round, v.value)),
        Some((Round::new(1), None))
    );
}

#[test]
fn a_restarted_proposer_reproposes_its_valid_value_with_the_polka() {
    let (wal, me) = locked_follower();
    let validators = set(4);
    let my_round = (1..40)
        .find(|r| validators.proposer(H, Round::new(*r)) == me)
        .unwrap();
    let mut engine = Engine::new(EngineConfig::new(addresses(4)[me.as_usize()]));
    engine
        .process(Input::StartHeight {
            height: H,
            validators,
            wal,
        })
        .unwrap();
    // Others move to my round; I follow (L55) and propose V with vr = 0 (L15–L16).
    let o = others(me);
    let outputs = feed(
        &mut engine,
        vec![
            vote(my_round, VoteKind::Prevote, None, o[0]),
            vote(my_round, VoteKind::Prevote, None, o[1]),
        ],
    );
    let proposed = outputs.iter().find_map(|o| match o {
        Output::BroadcastProposal(p) => Some(*p),
        _ => None,
    });
    let proposed = proposed.expect("proposed");
    assert_eq!((proposed.value, proposed.pol_round), (V, Some(Round::ZERO)));
    // The polka's prevotes came back from the WAL, so the node can gossip them.
    assert_eq!(engine.votes(Round::ZERO, VoteKind::Prevote).count(), 3);
}

#[test]
fn a_torn_wal_tail_means_the_vote_was_never_sent() {
    let (mut engine, me) = follower();
    let outputs = feed(&mut engine, vec![proposal(0, V, None)]);
    let Some(Output::PersistWal(entry)) = outputs.first() else {
        panic!("{outputs:?}")
    };
    let record = wal::encode_record(entry);
    let decoded = wal::decode_records(&record[..record.len() - 1]).unwrap();
    assert!(decoded.entries.is_empty());
    let mut restarted = Engine::new(EngineConfig::new(addresses(4)[me.as_usize()]));
    restarted
        .process(Input::StartHeight {
            height: H,
            validators: set(4),
            wal: decoded.entries,
        })
        .unwrap();
    assert_eq!(restarted.step(), Step::Propose);
}

#[test]
fn a_wal_that_contradicts_itself_or_the_ledger_is_refused() {
    let (wal, me) = locked_follower();
    let start = |wal: Vec<WalEntry>| {
        Engine::new(EngineConfig::new(addresses(4)[me.as_usize()])).process(Input::StartHeight {
            height: H,
            validators: set(4),
            wal,
        })
    };
    let prevote = |value| Vote {
        height: H,
        round: Round::ZERO,
        kind: VoteKind::Prevote,
        value,
        validator: me,
    };
    let conflicting = vec![
        WalEntry::Vote(prevote(Some(V))),
        WalEntry::Vote(prevote(Some(W))),
    ];
    assert!(matches!(
        start(conflicting),
        Err(InputError::WalConflict { .. })
    ));
    let ahead = vec![WalEntry::Vote(Vote {
        height: H.next(),
        ..prevote(None)
    })];
    assert!(matches!(
        start(ahead),
        Err(InputError::WalAheadOfHeight { .. })
    ));
    let not_mine = vec![WalEntry::Vote(Vote {
        validator: idx((me.get() + 1) % 4),
        ..prevote(None)
    })];
    assert!(matches!(start(not_mine), Err(InputError::WalNotOwn { .. })));
    let mut thin_polka = wal.clone();
    for entry in &mut thin_polka {
        if let WalEntry::Polka { prevotes, .. } = entry {
            prevotes.truncate(2);
        }
    }
    assert!(matches!(
        start(thin_polka),
        Err(InputError::WalInvalidPolka { .. })
    ));
    // Entries of earlier heights are ignored (the node truncates lazily).
    let old = vec![WalEntry::Vote(Vote {
        height: Height::new(0),
        ..prevote(Some(W))
    })];
    assert!(start(old).is_ok());
}
