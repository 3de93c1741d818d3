//! Who may write what: the authors known from genesis and committed membership changes,
//! and the permission table of message kinds by author role (ARCHITECTURE §3, §6).
//!
//! | author | may sign |
//! |---|---|
//! | enrolled collector (not revoked) | evidence and heartbeats for the client it is enrolled for |
//! | organisation with role `control-center` | membership changes, incidents, early warnings, posture declarations |
//! | organisation with role `warning` | early warnings, posture declarations (assessors) |
//! | organisation with role `response` | incidents |
//! | organisation with role `client` | incidents, insurance claims and posture declarations about itself |
//! | organisation with role `insurer` | insurance policies, claims and decisions |
//! | validator | access audits, anchor receipts, equivocation evidence |
//!
//! Membership changes apply in log order: a collector enrolled in a block may submit in
//! the next message of the same block.

use std::collections::HashMap;

use crate::codec::Text;
use crate::crypto::{KeyId, PublicKey};
use crate::genesis::Genesis;
use crate::limits::NameLen;
use crate::message::{InsuranceEvent, Kind, MembershipChange, Message, NetworkId, OrgId, Role};

/// What a key belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Author {
    /// A collector agent.
    Collector {
        /// The client it collects for.
        client: OrgId,
        /// Its name.
        name: Text<NameLen>,
    },
    /// An organisation's signing key.
    Organisation {
        /// The organisation.
        org: OrgId,
        /// Its role.
        role: Role,
    },
    /// A validator's key.
    Validator {
        /// The validator's name.
        name: Text<NameLen>,
        /// Its organisation.
        org: OrgId,
    },
}

/// A known key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The key.
    pub key: PublicKey,
    /// Whose it is.
    pub author: Author,
    /// Revoked keys may no longer sign.
    pub revoked: bool,
}

/// Why a message's author may not write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// The message is for another network.
    #[error("message is for network {got:?}, this is {expected:?}")]
    WrongNetwork {
        /// This network.
        expected: String,
        /// The message's network.
        got: String,
    },
    /// The author's key is not known.
    #[error("author {0} is not enrolled: no collector, organisation or validator has this key id")]
    UnknownAuthor(KeyId),
    /// The author's key was revoked.
    #[error("author {0} was revoked and may no longer sign")]
    Revoked(KeyId),
    /// The author's role does not permit the kind.
    #[error("{author} may not sign {kind} messages")]
    KindNotPermitted {
        /// The author, described.
        author: String,
        /// The kind.
        kind: &'static str,
    },
    /// A collector wrote for a client it is not enrolled for.
    #[error("collector {collector} is enrolled for client {enrolled}, not {claimed}")]
    WrongClient {
        /// The collector.
        collector: KeyId,
        /// Its client.
        enrolled: String,
        /// The client in the message.
        claimed: String,
    },
    /// A membership change conflicts with the membership.
    #[error("membership change refused: {0}")]
    Conflict(String),
}

/// The membership at some point of the log.
#[derive(Clone, Debug)]
pub struct Membership {
    network: NetworkId,
    members: HashMap<KeyId, Member>,
}

impl Membership {
    /// The membership of `genesis`.
    pub fn from_genesis(genesis: &Genesis) -> Self {
        let mut members = HashMap::new();
        for v in genesis.validators.validators() {
            members.insert(
                v.key.key_id(),
                Member {
                    key: v.key,
                    author: Author::Validator {
                        name: v.name.clone(),
                        org: v.org.clone(),
                    },
                    revoked: false,
                },
            );
        }
        for org in genesis.organisations.iter() {
            members.insert(
                org.key.key_id(),
                Member {
                    key: org.key,
                    author: Author::Organisation {
                        org: org.id.clone(),
                        role: org.role,
                    },
                    revoked: false,
                },
            );
        }
        for c in genesis.collectors.iter() {
            members.insert(
                c.key.key_id(),
                Member {
                    key: c.key,
                    author: Author::Collector {
                        client: c.client.clone(),
                        name: c.name.clone(),
                    },
                    revoked: false,
                },
            );
        }
        Self {
            network: genesis.network.clone(),
            members,
        }
    }

    /// The member with key id `id`, revoked or not.
    pub fn get(&self, id: &KeyId) -> Option<&Member> {
        self.members.get(id)
    }

    /// Checks that `message`'s author may write it; returns the author's key for the
    /// signature check.
    pub fn authorize(&self, message: &Message) -> Result<&Member, MembershipError> {
        if message.network != self.network {
            return Err(MembershipError::WrongNetwork {
                expected: self.network.to_string(),
                got: message.network.to_string(),
            });
        }
        let member = self
            .members
            .get(&message.author)
            .ok_or(MembershipError::UnknownAuthor(message.author))?;
        if member.revoked {
            return Err(MembershipError::Revoked(message.author));
        }
        let permitted = match (&member.author, &message.kind) {
            (Author::Collector { client, .. }, Kind::Evidence { .. } | Kind::Heartbeat { .. }) => {
                if *client != message.client {
                    return Err(MembershipError::WrongClient {
                        collector: message.author,
                        enrolled: client.to_string(),
                        claimed: message.client.to_string(),
                    });
                }
                true
            }
            (Author::Organisation { role, org }, kind) => match (role, kind) {
                (
                    Role::ControlCenter,
                    Kind::Membership(_) | Kind::Incident(_) | Kind::EarlyWarning | Kind::Posture(_),
                ) => true,
                (Role::Warning, Kind::EarlyWarning | Kind::Posture(_)) => true,
                (Role::Response, Kind::Incident(_)) => true,
                (Role::Insurer, Kind::Insurance(_)) => true,
                (Role::Client, Kind::Incident(_) | Kind::Posture(_)) => *org == message.client,
                (Role::Client, Kind::Insurance(InsuranceEvent::ClaimFiled { .. })) => {
                    *org == message.client
                }
                _ => false,
            },
            (
                Author::Validator { .. },
                Kind::AccessAudit(_) | Kind::AnchorReceipt(_) | Kind::Equivocation(_),
            ) => true,
            _ => false,
        };
        if !permitted {
            return Err(MembershipError::KindNotPermitted {
                author: describe(&member.author),
                kind: message.kind.name(),
            });
        }
        Ok(member)
    }

    /// Applies a committed (or being-validated) message's membership change, if it is one.
    /// The message must already have passed [`Membership::authorize`].
    pub fn apply(&mut self, message: &Message) -> Result<(), MembershipError> {
        let Kind::Membership(change) = &message.kind else {
            return Ok(());
        };
        match change {
            MembershipChange::CollectorEnrolled { key, client, name } => {
                self.insert_new(
                    *key,
                    Author::Collector {
                        client: client.clone(),
                        name: name.clone(),
                    },
                )?;
            }
            MembershipChange::CollectorRevoked { key_id, .. } => {
                let member = self.members.get_mut(key_id).ok_or_else(|| {
                    MembershipError::Conflict(format!("cannot revoke unknown key {key_id}"))
                })?;
                if !matches!(member.author, Author::Collector { .. }) {
                    return Err(MembershipError::Conflict(format!(
                        "{key_id} is not a collector"
                    )));
                }
                member.revoked = true;
            }
            MembershipChange::KeyRotated { old, new } => {
                let member = self.members.get(old).ok_or_else(|| {
                    MembershipError::Conflict(format!("cannot rotate unknown key {old}"))
                })?;
                if member.revoked {
                    return Err(MembershipError::Revoked(*old));
                }
                let author = member.author.clone();
                self.insert_new(*new, author)?;
                if let Some(old_member) = self.members.get_mut(old) {
                    old_member.revoked = true;
                }
            }
            MembershipChange::OrganisationAdded { org, role, key } => {
                if self.members.values().any(|m| {
                    matches!(&m.author, Author::Organisation { org: existing, .. } if existing == org)
                }) {
                    return Err(MembershipError::Conflict(format!("organisation {org} exists")));
                }
                self.insert_new(
                    *key,
                    Author::Organisation {
                        org: org.clone(),
                        role: *role,
                    },
                )?;
            }
        }
        Ok(())
    }

    fn insert_new(&mut self, key: PublicKey, author: Author) -> Result<(), MembershipError> {
        key.verifying_key()
            .map_err(|e| MembershipError::Conflict(e.to_string()))?;
        let id = key.key_id();
        if self.members.contains_key(&id) {
            return Err(MembershipError::Conflict(format!(
                "key id {id} is already in use"
            )));
        }
        self.members.insert(
            id,
            Member {
                key,
                author,
                revoked: false,
            },
        );
        Ok(())
    }
}

fn describe(author: &Author) -> String {
    match author {
        Author::Collector { name, client } => format!("collector {name} of {client}"),
        Author::Organisation { org, role } => format!("organisation {org} (role {role:?})"),
        Author::Validator { name, .. } => format!("validator {name}"),
    }
}
