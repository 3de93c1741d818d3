//! Messages for the next height, kept until this validator gets there.

use std::collections::BTreeMap;

use crate::limits::{NEXT_HEIGHT_MESSAGES_PER_VALIDATOR_MAX, VALIDATORS_MAX};
use crate::types::{Height, Proposal, Round, SignedVote, ValidatorIndex};

use super::DropReason;

/// A peer message: a proposal with the node's verdict on its value, or a vote.
#[derive(Clone, Debug)]
pub(crate) enum Message {
    Proposal { proposal: Proposal, valid: bool },
    Vote(SignedVote),
}

impl Message {
    pub(crate) fn height(&self) -> Height {
        match self {
            Message::Proposal { proposal, .. } => proposal.height,
            Message::Vote(v) => v.vote.height,
        }
    }

    pub(crate) fn round(&self) -> Round {
        match self {
            Message::Proposal { proposal, .. } => proposal.round,
            Message::Vote(v) => v.vote.round,
        }
    }

    pub(crate) fn sender(&self) -> ValidatorIndex {
        match self {
            Message::Proposal { proposal, .. } => proposal.proposer,
            Message::Vote(v) => v.vote.validator,
        }
    }
}

/// Messages of one future height, at most [`NEXT_HEIGHT_MESSAGES_PER_VALIDATOR_MAX`] per
/// sender, so a Byzantine sender can neither grow it without bound nor crowd out honest
/// validators' messages.
#[derive(Debug, Default)]
pub(crate) struct NextHeightBuffer {
    height: Option<Height>,
    messages: Vec<Message>,
    per_sender: BTreeMap<ValidatorIndex, usize>,
}

impl NextHeightBuffer {
    /// Keeps `message` (of the height after the current one) if its sender has room.
    pub(crate) fn push(&mut self, message: Message) -> Result<(), DropReason> {
        let height = message.height();
        if self.height != Some(height) {
            self.clear();
            self.height = Some(height);
        }
        let sender = message.sender();
        if sender.as_usize() >= VALIDATORS_MAX {
            // No set can contain this index; the node maps senders with its current set.
            return Err(DropReason::UnknownValidator {
                sender,
                height,
                validators: VALIDATORS_MAX,
            });
        }
        let count = self.per_sender.entry(sender).or_insert(0);
        if *count >= NEXT_HEIGHT_MESSAGES_PER_VALIDATOR_MAX {
            return Err(DropReason::NextHeightQuotaFull {
                sender,
                height,
                max: NEXT_HEIGHT_MESSAGES_PER_VALIDATOR_MAX,
            });
        }
        *count += 1;
        self.messages.push(message);
        Ok(())
    }

    /// The messages buffered for `height` (none if the buffer holds another height), in
    /// arrival order; the buffer is emptied either way.
    pub(crate) fn take(&mut self, height: Height) -> Vec<Message> {
        let messages = if self.height == Some(height) {
            std::mem::take(&mut self.messages)
        } else {
            Vec::new()
        };
        self.clear();
        messages
    }

    fn clear(&mut self) {
        self.height = None;
        self.messages.clear();
        self.per_sender.clear();
    }
}
