//! The weighted validator set of one height: voting power, quorum thresholds and the
//! proposer rotation.

use crate::limits::{VALIDATORS_MAX, VOTING_POWER_TOTAL_MAX};
use crate::types::{Height, Round, ValidatorAddress, ValidatorIndex};

/// One member of a validator set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validator {
    /// Stable identity (public key).
    pub address: ValidatorAddress,
    /// Voting power, at least 1.
    pub power: u64,
}

/// Why a list of validators is not a usable set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    /// No validators at all.
    #[error("a validator set needs at least one validator; got none")]
    Empty,
    /// More than [`VALIDATORS_MAX`].
    #[error("{count} validators exceed the limit of {max}")]
    TooMany {
        /// Validators given.
        count: usize,
        /// [`VALIDATORS_MAX`].
        max: usize,
    },
    /// A validator with no voting power.
    #[error("validator {index} has voting power 0; every validator needs power of at least 1")]
    ZeroPower {
        /// Position in the list.
        index: usize,
    },
    /// The powers add up to more than [`VOTING_POWER_TOTAL_MAX`].
    #[error("total voting power exceeds {max}; scale the powers down")]
    TotalPowerTooLarge {
        /// [`VOTING_POWER_TOTAL_MAX`].
        max: u64,
    },
    /// Two entries share an address.
    #[error("validators {first} and {second} have the same address; addresses must be unique")]
    DuplicateAddress {
        /// Position of the first entry.
        first: usize,
        /// Position of the second entry.
        second: usize,
    },
}

/// The validators of one height, in a fixed order every validator agrees on (the node
/// derives it from the chain). Indices into this order name the senders of messages.
///
/// Thresholds are weighted: a quorum (the paper's `2f + 1`) is more than two thirds of the
/// total power, and the round-skip threshold (the paper's `f + 1`) more than one third.
/// With `n = 3f + 1` validators of equal power these are exactly `2f + 1` and `f + 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: u64,
    /// One period of the proposer rotation, see [`ValidatorSet::proposer`].
    rotation: Vec<u8>,
}

impl ValidatorSet {
    /// Checks and wraps a list of validators.
    pub fn new(validators: Vec<Validator>) -> Result<Self, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if validators.len() > VALIDATORS_MAX {
            return Err(ValidatorSetError::TooMany {
                count: validators.len(),
                max: VALIDATORS_MAX,
            });
        }
        let mut total_power: u64 = 0;
        for (index, validator) in validators.iter().enumerate() {
            if validator.power == 0 {
                return Err(ValidatorSetError::ZeroPower { index });
            }
            total_power = total_power
                .checked_add(validator.power)
                .filter(|total| *total <= VOTING_POWER_TOTAL_MAX)
                .ok_or(ValidatorSetError::TotalPowerTooLarge {
                    max: VOTING_POWER_TOTAL_MAX,
                })?;
        }
        let mut addresses: Vec<(ValidatorAddress, usize)> = validators
            .iter()
            .enumerate()
            .map(|(i, v)| (v.address, i))
            .collect();
        addresses.sort();
        if let Some(pair) = addresses.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            let (first, second) = (pair[0].1.min(pair[1].1), pair[0].1.max(pair[1].1));
            return Err(ValidatorSetError::DuplicateAddress { first, second });
        }
        let rotation = smooth_rotation(&validators);
        Ok(Self {
            validators,
            total_power,
            rotation,
        })
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Never true: a set has at least one validator.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// The validator at `index`, if there is one.
    pub fn get(&self, index: ValidatorIndex) -> Option<&Validator> {
        self.validators.get(index.as_usize())
    }

    /// Voting power of the validator at `index`, if there is one.
    pub fn power(&self, index: ValidatorIndex) -> Option<u64> {
        self.get(index).map(|v| v.power)
    }

    /// The index of the validator with `address`, if it belongs to the set.
    pub fn index_of(&self, address: &ValidatorAddress) -> Option<ValidatorIndex> {
        let position = self.validators.iter().position(|v| v.address == *address)?;
        Some(index_from_position(position))
    }

    /// The validators in set order.
    pub fn iter(&self) -> impl Iterator<Item = &Validator> {
        self.validators.iter()
    }

    /// Sum of all voting power.
    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// Whether `weight` is a quorum: more than two thirds of the total power (`2f + 1`).
    pub fn is_quorum(&self, weight: u64) -> bool {
        // Cannot overflow: weight <= total <= VOTING_POWER_TOTAL_MAX.
        3 * weight > 2 * self.total_power
    }

    /// Whether `weight` is more than a third of the total power (`f + 1`): at least one
    /// honest validator is among its holders.
    pub fn exceeds_one_third(&self, weight: u64) -> bool {
        3 * weight > self.total_power
    }

    /// The proposer of `(height, round)`: a deterministic, weighted rotation every
    /// validator computes alike from the set alone.
    ///
    /// The rotation is one period of smooth weighted round-robin over the powers (divided
    /// by their greatest common divisor): in every period each validator proposes in
    /// proportion to its power, and its turns are spread out instead of bunched, so a
    /// heavy validator that is down does not stall many consecutive rounds. Slot
    /// `(height + round) mod period` picks the entry, so consecutive rounds and
    /// consecutive heights both move along the rotation.
    pub fn proposer(&self, height: Height, round: Round) -> ValidatorIndex {
        let period = u128::try_from(self.rotation.len()).expect("usize fits in u128");
        let slot = (u128::from(height.get()) + u128::from(round.get())) % period;
        let slot = usize::try_from(slot).expect("slot below rotation length");
        index_from_position(usize::from(self.rotation[slot]))
    }
}

fn index_from_position(position: usize) -> ValidatorIndex {
    // position < len <= VALIDATORS_MAX <= u32::MAX (asserted in limits).
    ValidatorIndex::new(u32::try_from(position).expect("position below VALIDATORS_MAX"))
}

/// One period of smooth weighted round-robin: every step each validator gains its power
/// in priority, the highest priority (lowest index on ties) proposes and pays the total
/// back. With powers divided by their gcd the period is the reduced total power, at most
/// [`VOTING_POWER_TOTAL_MAX`] entries; for equal powers it is simply `0, 1, .., n-1`.
fn smooth_rotation(validators: &[Validator]) -> Vec<u8> {
    let divisor = validators.iter().fold(0, |acc, v| gcd(acc, v.power));
    let weights: Vec<i64> = validators
        .iter()
        .map(|v| i64::try_from(v.power / divisor).expect("power below VOTING_POWER_TOTAL_MAX"))
        .collect();
    let period: i64 = weights.iter().sum();
    let mut priority = vec![0i64; weights.len()];
    let mut rotation = Vec::with_capacity(usize::try_from(period).expect("period fits"));
    for _ in 0..period {
        for (p, w) in priority.iter_mut().zip(&weights) {
            *p += w;
        }
        let (chosen, _) = priority
            .iter()
            .enumerate()
            .max_by(|(i, a), (j, b)| a.cmp(b).then(j.cmp(i)))
            .expect("non-empty set");
        priority[chosen] -= period;
        // chosen < VALIDATORS_MAX = 256.
        rotation.push(u8::try_from(chosen).expect("index below VALIDATORS_MAX"));
    }
    rotation
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(powers: &[u64]) -> ValidatorSet {
        let validators = powers
            .iter()
            .enumerate()
            .map(|(i, power)| Validator {
                address: ValidatorAddress([u8::try_from(i).unwrap(); 32]),
                power: *power,
            })
            .collect();
        ValidatorSet::new(validators).unwrap()
    }

    #[test]
    fn thresholds_match_2f_plus_1_and_f_plus_1_for_equal_power() {
        for f in 1..20u64 {
            let vs = set(&vec![1; usize::try_from(3 * f + 1).unwrap()]);
            assert!(vs.is_quorum(2 * f + 1));
            assert!(!vs.is_quorum(2 * f));
            assert!(vs.exceeds_one_third(f + 1));
            assert!(!vs.exceeds_one_third(f));
        }
    }

    #[test]
    fn every_validator_proposes_in_proportion_to_its_power() {
        let vs = set(&[1, 3, 2, 5, 1]);
        let total = vs.total_power();
        for start in [0u64, 7, 1000] {
            let mut turns = vec![0u64; vs.len()];
            for slot in start..start + total {
                turns[vs.proposer(Height::new(slot), Round::ZERO).as_usize()] += 1;
            }
            let powers: Vec<u64> = vs.iter().map(|v| v.power).collect();
            assert_eq!(turns, powers, "turns over one period starting at {start}");
        }
    }

    #[test]
    fn rotation_does_not_give_a_heavy_validator_consecutive_rounds() {
        // Power 3 of 6: a naive expansion would give validator 0 three rounds in a row.
        let vs = set(&[3, 1, 1, 1]);
        let proposers: Vec<u32> = (0..24)
            .map(|r| vs.proposer(Height::new(1), Round::new(r)).get())
            .collect();
        assert!(
            proposers
                .windows(3)
                .all(|w| !(w[0] == w[1] && w[1] == w[2])),
            "{proposers:?}"
        );
    }

    #[test]
    fn rejects_unusable_sets() {
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        let zero = Validator {
            address: ValidatorAddress([1; 32]),
            power: 0,
        };
        assert_eq!(
            ValidatorSet::new(vec![zero]),
            Err(ValidatorSetError::ZeroPower { index: 0 })
        );
        let a = Validator {
            address: ValidatorAddress([1; 32]),
            power: 1,
        };
        let b = Validator {
            address: ValidatorAddress([2; 32]),
            power: 1,
        };
        assert_eq!(
            ValidatorSet::new(vec![a, b, a]),
            Err(ValidatorSetError::DuplicateAddress {
                first: 0,
                second: 2
            })
        );
        let heavy = Validator {
            address: ValidatorAddress([3; 32]),
            power: u64::MAX / 2,
        };
        assert!(matches!(
            ValidatorSet::new(vec![heavy]),
            Err(ValidatorSetError::TotalPowerTooLarge { .. })
        ));
        let many = (0..=VALIDATORS_MAX)
            .map(|i| Validator {
                address: ValidatorAddress(blake_free_address(i)),
                power: 1,
            })
            .collect();
        assert!(matches!(
            ValidatorSet::new(many),
            Err(ValidatorSetError::TooMany { .. })
        ));
    }

    fn blake_free_address(i: usize) -> [u8; 32] {
        let mut address = [0u8; 32];
        address[..8].copy_from_slice(&u64::try_from(i).unwrap().to_le_bytes());
        address
    }
}
