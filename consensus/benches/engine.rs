//! Throughput of the engine processing votes, without signature checks (the node checks
//! signatures before votes reach the engine). Each iteration runs one whole height at one
//! validator: the proposal, a prevote and a precommit from every validator (its own
//! included, as the node loops them back), the decision and the start of the next height.
//! Criterion reports the rate in votes per second ("elem/s").

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use custos_consensus::{
    Engine, EngineConfig, Height, Input, Proposal, Round, Signature, SignedVote, Validator,
    ValidatorAddress, ValidatorIndex, ValidatorSet, ValueId, Vote, VoteKind,
};

fn validator_set(n: usize) -> (ValidatorSet, Vec<ValidatorAddress>) {
    let addresses: Vec<ValidatorAddress> = (0..n)
        .map(|i| {
            let mut address = [0u8; 32];
            address[..8].copy_from_slice(&u64::try_from(i).expect("small").to_le_bytes());
            ValidatorAddress(address)
        })
        .collect();
    let validators = addresses.iter().map(|address| Validator {
        address: *address,
        power: 1,
    });
    (
        ValidatorSet::new(validators.collect()).expect("valid set"),
        addresses,
    )
}

/// The inputs of one height in which every validator votes for the proposal.
fn height_inputs(validators: &ValidatorSet, height: Height) -> Vec<Input> {
    let value = ValueId([u8::try_from(height.get() % 251).expect("below 251"); 32]);
    let proposer = validators.proposer(height, Round::ZERO);
    let proposal = Proposal {
        height,
        round: Round::ZERO,
        value,
        pol_round: None,
        proposer,
    };
    let mut inputs = vec![Input::Proposal {
        proposal,
        valid: true,
    }];
    for kind in [VoteKind::Prevote, VoteKind::Precommit] {
        for i in 0..validators.len() {
            let validator = ValidatorIndex::new(u32::try_from(i).expect("small"));
            let vote = Vote {
                height,
                round: Round::ZERO,
                kind,
                value: Some(value),
                validator,
            };
            let signature = Signature::new(vec![0xab; 64]).expect("64 bytes");
            inputs.push(Input::Vote(SignedVote { vote, signature }));
        }
    }
    inputs.push(Input::StartHeight {
        height: height.next(),
        validators: validators.clone(),
        wal: vec![],
    });
    inputs
}

fn votes(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    for n in [4usize, 16, 64, 128] {
        group.throughput(Throughput::Elements(2 * u64::try_from(n).expect("small")));
        group.bench_function(BenchmarkId::new("votes", n), |b| {
            let (validators, addresses) = validator_set(n);
            let mut engine = Engine::new(EngineConfig::new(addresses[0]));
            let start = Input::StartHeight {
                height: Height::new(1),
                validators: validators.clone(),
                wal: vec![],
            };
            engine.process(start).expect("started");
            let mut next = Height::new(1);
            b.iter_batched(
                || {
                    let inputs = height_inputs(&validators, next);
                    next = next.next();
                    inputs
                },
                |inputs| {
                    for input in inputs {
                        black_box(engine.process(input).expect("valid input"));
                    }
                },
                BatchSize::SmallInput,
            );
            assert!(
                engine.height() > Some(Height::new(1)),
                "heights were decided"
            );
        });
    }
    group.finish();
}

criterion_group!(benches, votes);
criterion_main!(benches);
