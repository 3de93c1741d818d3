//! Stand-ins for the node's signatures and block checks.
//!
//! The engine treats signatures as opaque bytes; the simulator only needs them to be
//! unforgeable by other simulated validators and checkable by everyone, so a keyed BLAKE3
//! MAC per validator (keys derived from the seed) plays Ed25519.

use borsh::BorshSerialize;
use custos_consensus::{Height, Proposal, Round, Signature, SignedVote, ValueId, Vote};

/// A proposal with its proposer's signature, as it travels between simulated nodes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// The proposer's signature.
    pub signature: Signature,
}

/// Every simulated validator's signing key.
#[derive(Clone, Debug)]
pub struct Keys {
    keys: Vec<[u8; 32]>,
}

impl Keys {
    /// Keys for `validators` validators, derived from `seed`.
    pub fn new(seed: u64, validators: usize) -> Self {
        let keys = (0..validators)
            .map(|i| {
                let mut material = seed.to_le_bytes().to_vec();
                material.extend_from_slice(&u64::try_from(i).expect("small").to_le_bytes());
                blake3::derive_key("custos simulator validator key v1", &material)
            })
            .collect();
        Self { keys }
    }

    fn mac(&self, signer: usize, domain: &[u8], message: &impl BorshSerialize) -> Signature {
        let mut hasher = blake3::Hasher::new_keyed(&self.keys[signer]);
        hasher.update(domain);
        hasher.update(&borsh::to_vec(message).expect("in-memory encoding"));
        Signature::new(hasher.finalize().as_bytes().to_vec()).expect("32 bytes")
    }

    /// `vote` signed by `signer` (normally `vote.validator`; a forger passes its own index).
    pub fn sign_vote(&self, vote: Vote, signer: usize) -> SignedVote {
        SignedVote {
            vote,
            signature: self.mac(signer, b"vote", &vote),
        }
    }

    /// Whether the vote was signed by the validator it names.
    pub fn verify_vote(&self, signed: &SignedVote) -> bool {
        let signer = signed.vote.validator.as_usize();
        signer < self.keys.len() && self.mac(signer, b"vote", &signed.vote) == signed.signature
    }

    /// `proposal` signed by `signer`.
    pub fn sign_proposal(&self, proposal: Proposal, signer: usize) -> SignedProposal {
        SignedProposal {
            proposal,
            signature: self.mac(signer, b"proposal", &proposal),
        }
    }

    /// Whether the proposal was signed by the validator it names.
    pub fn verify_proposal(&self, signed: &SignedProposal) -> bool {
        let signer = signed.proposal.proposer.as_usize();
        signer < self.keys.len()
            && self.mac(signer, b"proposal", &signed.proposal) == signed.signature
    }
}

/// The block an honest proposer builds for `(height, round)`: a value id unique to the
/// proposer, height and round, so that any disagreement is visible.
pub fn honest_value(seed: u64, height: Height, round: Round, proposer: usize) -> ValueId {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"custos simulator block");
    hasher.update(&seed.to_le_bytes());
    hasher.update(&height.get().to_le_bytes());
    hasher.update(&round.get().to_le_bytes());
    hasher.update(&u64::try_from(proposer).expect("small").to_le_bytes());
    make_valid(ValueId(*hasher.finalize().as_bytes()))
}

/// The simulator's `valid(v)`: every node checks a block alike, here by its last byte.
pub fn is_valid(value: ValueId) -> bool {
    value.0[31] != 0
}

/// `value` adjusted to pass [`is_valid`].
pub fn make_valid(mut value: ValueId) -> ValueId {
    if value.0[31] == 0 {
        value.0[31] = 1;
    }
    value
}

/// `value` adjusted to fail [`is_valid`].
pub fn make_invalid(mut value: ValueId) -> ValueId {
    value.0[31] = 0;
    value
}
