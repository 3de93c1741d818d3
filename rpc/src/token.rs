//! Read credentials: an organisation proves itself with its membership key.
//!
//! A token is `base64url(borsh(Signed<RpcToken>))` without padding: the tag
//! `custos/v1/rpc-token`, the body (network, organisation, key id, issue and expiry times)
//! and an Ed25519 signature by the organisation's key over the tag and body. It travels
//! in the HTTP header `Authorization: Custos <token>`. Nothing is shared with the node:
//! the node checks the signature against the key the membership holds for that key id,
//! so a token is worthless once it expires or the key is revoked or rotated.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use borsh::{BorshDeserialize, BorshSerialize};

use custos_ledger::codec::{DomainTag, decode, encode, tags};
use custos_ledger::crypto::{KeyId, SecretKey, Signable, Signed};
use custos_ledger::membership::{Author, Membership};
use custos_ledger::message::{Kind, NetworkId, OrgId, Role, UnixMillis};

/// The HTTP authorization scheme of Custos tokens.
pub const AUTH_SCHEME: &str = "Custos";

/// Longest lifetime a token may claim: a leaked token is useful for at most this long.
pub const MAX_TOKEN_TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// Clock difference tolerated between the issuer and the node, so a token issued on a
/// slightly fast clock is not refused on arrival.
pub const MAX_CLOCK_SKEW_MS: u64 = 30_000;

/// Largest encoded token accepted: tag, two 64-byte ids, key id, two times and a
/// signature fit comfortably; anything longer is refused before decoding.
pub const MAX_TOKEN_BYTES: usize = 512;

/// What a token asserts; signed by the organisation's key.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RpcToken {
    /// The network it is valid on.
    pub network: NetworkId,
    /// The organisation presenting it.
    pub org: OrgId,
    /// Key id of the organisation key that signed it.
    pub key_id: KeyId,
    /// When it was issued.
    pub issued_at: UnixMillis,
    /// When it stops being valid.
    pub expires_at: UnixMillis,
}

impl Signable for RpcToken {
    const TAG: DomainTag = tags::RPC_TOKEN;
}

/// An organisation a token proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The organisation.
    pub org: OrgId,
    /// Its role.
    pub role: Role,
    /// The key that signed the token.
    pub key_id: KeyId,
    /// When the token stops being valid: long-lived calls (subscriptions) end then.
    pub expires_at: UnixMillis,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The header is not `Custos <token>`.
    #[error("the Authorization header must be \"{AUTH_SCHEME} <token>\"")]
    WrongScheme,
    /// Too long to be a token.
    #[error("token is {len} bytes; at most {MAX_TOKEN_BYTES}")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// Not base64url.
    #[error("token is not base64url without padding")]
    NotBase64,
    /// The bytes are not a signed token.
    #[error("token does not decode: {0}")]
    Decode(String),
    /// Issued for another network.
    #[error("token is for network {got}, this is {expected}")]
    WrongNetwork {
        /// Network in the token.
        got: String,
        /// This node's network.
        expected: String,
    },
    /// The key id is not in the membership.
    #[error("key {0} is not an organisation key of this network")]
    UnknownKey(KeyId),
    /// The key belongs to a collector or validator, or to another organisation.
    #[error("key {key_id} is not a key of organisation {org}")]
    NotTheOrgKey {
        /// Key id in the token.
        key_id: KeyId,
        /// Organisation in the token.
        org: String,
    },
    /// The key was revoked.
    #[error("key {0} was revoked")]
    Revoked(KeyId),
    /// The signature does not verify.
    #[error("token signature does not verify under key {0}")]
    BadSignature(KeyId),
    /// Expired.
    #[error("token expired at {expires_at_ms} ms; now is {now_ms} ms: issue a new one")]
    Expired {
        /// Its expiry.
        expires_at_ms: u64,
        /// The node's time.
        now_ms: u64,
    },
    /// Issued in the future beyond the tolerated skew.
    #[error(
        "token is issued at {issued_at_ms} ms, after now ({now_ms} ms) plus {MAX_CLOCK_SKEW_MS} ms of skew"
    )]
    NotYetValid {
        /// Its issue time.
        issued_at_ms: u64,
        /// The node's time.
        now_ms: u64,
    },
    /// Claims a longer lifetime than allowed, or expires before it is issued.
    #[error("token lifetime {ttl_ms} ms is not within 1..={MAX_TOKEN_TTL_MS} ms")]
    BadLifetime {
        /// Expiry minus issue time (0 when negative).
        ttl_ms: u64,
    },
}

impl RpcToken {
    /// Issues a token for `org` signed with its `key`, valid for `ttl_ms` from `now`.
    pub fn issue(
        key: &SecretKey,
        network: NetworkId,
        org: OrgId,
        now: UnixMillis,
        ttl_ms: u64,
    ) -> String {
        let token = RpcToken {
            network,
            org,
            key_id: key.public().key_id(),
            issued_at: now,
            expires_at: now.saturating_add_ms(ttl_ms),
        };
        URL_SAFE_NO_PAD.encode(encode(&Signed::sign(token, key)))
    }

    /// Checks an `Authorization` header value against `membership` at time `now`, and
    /// returns the organisation it proves.
    pub fn verify_header(
        header: &str,
        membership: &Membership,
        network: &str,
        now: UnixMillis,
    ) -> Result<Caller, TokenError> {
        let token = header
            .strip_prefix(AUTH_SCHEME)
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or(TokenError::WrongScheme)?
            .trim();
        Self::verify(token, membership, network, now)
    }

    /// Checks an encoded token against `membership` at time `now`, and returns the
    /// organisation it proves.
    pub fn verify(
        token: &str,
        membership: &Membership,
        network: &str,
        now: UnixMillis,
    ) -> Result<Caller, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLong { len: token.len() });
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| TokenError::NotBase64)?;
        let signed: Signed<RpcToken> =
            decode(&bytes, MAX_TOKEN_BYTES).map_err(|e| TokenError::Decode(e.to_string()))?;
        let body = &signed.body;
        if body.network.as_str() != network {
            return Err(TokenError::WrongNetwork {
                got: body.network.to_string(),
                expected: network.to_owned(),
            });
        }
        let member = membership
            .get(&body.key_id)
            .ok_or(TokenError::UnknownKey(body.key_id))?;
        let role = match &member.author {
            Author::Organisation { org, role } if *org == body.org => *role,
            _ => {
                return Err(TokenError::NotTheOrgKey {
                    key_id: body.key_id,
                    org: body.org.to_string(),
                });
            }
        };
        if member.revoked {
            return Err(TokenError::Revoked(body.key_id));
        }
        signed
            .verify(&member.key)
            .map_err(|_| TokenError::BadSignature(body.key_id))?;
        let ttl_ms = body.expires_at.0.saturating_sub(body.issued_at.0);
        if ttl_ms == 0 || ttl_ms > MAX_TOKEN_TTL_MS {
            return Err(TokenError::BadLifetime { ttl_ms });
        }
        if body.issued_at.0 > now.0.saturating_add(MAX_CLOCK_SKEW_MS) {
            return Err(TokenError::NotYetValid {
                issued_at_ms: body.issued_at.0,
                now_ms: now.0,
            });
        }
        if body.expires_at.0.saturating_add(MAX_CLOCK_SKEW_MS) <= now.0 {
            return Err(TokenError::Expired {
                expires_at_ms: body.expires_at.0,
                now_ms: now.0,
            });
        }
        Ok(Caller {
            org: body.org.clone(),
            role,
            key_id: body.key_id,
            expires_at: body.expires_at,
        })
    }
}

/// Whether `caller` may read a message of `kind` about `client` (the permission table of
/// the crate README). Client organisations read only what concerns themselves; insurers
/// read incidents and insurance records, not raw evidence.
pub fn may_read(caller: &Caller, kind: &Kind, client: &OrgId) -> bool {
    let own = *client == caller.org;
    match caller.role {
        Role::ControlCenter | Role::Response => true,
        Role::Warning => !matches!(kind, Kind::Insurance(_) | Kind::AccessAudit(_)),
        Role::Insurer => matches!(
            kind,
            Kind::Incident(_)
                | Kind::Insurance(_)
                | Kind::Posture(_)
                | Kind::Membership(_)
                | Kind::AnchorReceipt(_)
                | Kind::Equivocation(_)
        ),
        Role::Client => {
            own || matches!(
                kind,
                Kind::EarlyWarning
                    | Kind::Membership(_)
                    | Kind::AnchorReceipt(_)
                    | Kind::Equivocation(_)
            )
        }
    }
}
