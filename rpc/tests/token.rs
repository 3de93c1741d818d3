//! Read credentials: each way a token can be wrong is refused with the reason, and the
//! permission table answers as the crate README documents it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use custos_ledger::block::{Validator, ValidatorSet};
use custos_ledger::codec::{List, Text, encode};
use custos_ledger::crypto::{SecretKey, Signed};
use custos_ledger::genesis::{ChainParams, EnrolledCollector, Genesis, Organisation};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::membership::Membership;
use custos_ledger::message::{
    EvidenceKind, IncidentAction, IncidentEvent, IncidentLevel, Kind, MembershipChange, Message,
    OrgId, PayloadDescriptor, Role, SourceFormat, UnixMillis,
};
use custos_rpc::token::{
    Caller, MAX_CLOCK_SKEW_MS, MAX_TOKEN_BYTES, MAX_TOKEN_TTL_MS, RpcToken, TokenError, may_read,
};

const NETWORK: &str = "custos-test";
const NOW: UnixMillis = UnixMillis(1_800_000_000_000);
const TTL_MS: u64 = 600_000;

struct World {
    membership: Membership,
    validator: SecretKey,
    control: SecretKey,
    insurer: SecretKey,
    client: SecretKey,
    collector: SecretKey,
}

fn text<L: custos_ledger::limits::Limit>(s: &str) -> Text<L> {
    Text::new(s).unwrap()
}

fn world() -> World {
    let validator = SecretKey::from_seed(&[1; 32]);
    let control = SecretKey::from_seed(&[2; 32]);
    let insurer = SecretKey::from_seed(&[3; 32]);
    let client = SecretKey::from_seed(&[4; 32]);
    let collector = SecretKey::from_seed(&[5; 32]);
    let org = |id: &str, role, key: &SecretKey| Organisation {
        id: text(id),
        role,
        key: key.public(),
    };
    let validators = ValidatorSet::new(vec![Validator {
        name: text("v0"),
        org: text("soc"),
        role: Role::ControlCenter,
        key: validator.public(),
        power: 1,
        p2p_address: text("/ip4/127.0.0.1/tcp/1"),
    }])
    .unwrap();
    let genesis = Genesis {
        network: text(NETWORK),
        log_origin: text("custos.test/log"),
        genesis_time: UnixMillis(0),
        cosigners: custos_ledger::genesis::cosigner_keys(&validators).unwrap(),
        validators,
        organisations: List::new(vec![
            org("soc", Role::ControlCenter, &control),
            org("insurer", Role::Insurer, &insurer),
            org("acme-bank", Role::Client, &client),
        ])
        .unwrap(),
        collectors: List::new(vec![EnrolledCollector {
            key: collector.public(),
            client: text("acme-bank"),
            name: text("web-01"),
        }])
        .unwrap(),
        params: ChainParams::default(),
    };
    genesis.validate().unwrap();
    World {
        membership: Membership::from_genesis(&genesis),
        validator,
        control,
        insurer,
        client,
        collector,
    }
}

fn issue(key: &SecretKey, org: &str, now: UnixMillis, ttl_ms: u64) -> String {
    RpcToken::issue(key, text(NETWORK), text(org), now, ttl_ms)
}

/// A token signed over a body the caller chooses, for the lifetimes `issue` refuses to
/// produce.
fn signed_token(key: &SecretKey, org: &str, issued_at: u64, expires_at: u64) -> String {
    let token = RpcToken {
        network: text(NETWORK),
        org: text(org),
        key_id: key.public().key_id(),
        issued_at: UnixMillis(issued_at),
        expires_at: UnixMillis(expires_at),
    };
    URL_SAFE_NO_PAD.encode(encode(&Signed::sign(token, key)))
}

fn verify(w: &World, token: &str, now: UnixMillis) -> Result<Caller, TokenError> {
    RpcToken::verify(token, &w.membership, NETWORK, now)
}

#[test]
fn a_fresh_token_proves_the_organisation_and_its_role() {
    let w = world();
    let token = issue(&w.insurer, "insurer", NOW, TTL_MS);
    let caller = verify(&w, &token, NOW).unwrap();
    assert_eq!(caller.org.as_str(), "insurer");
    assert_eq!(caller.role, Role::Insurer);
    assert_eq!(caller.key_id, w.insurer.public().key_id());
    assert_eq!(caller.expires_at, UnixMillis(NOW.0 + TTL_MS));
    let header = format!("Custos {token}");
    assert_eq!(
        RpcToken::verify_header(&header, &w.membership, NETWORK, NOW).unwrap(),
        caller
    );
}

#[test]
fn the_header_must_use_the_custos_scheme() {
    let w = world();
    let token = issue(&w.insurer, "insurer", NOW, TTL_MS);
    for header in [
        format!("Bearer {token}"),
        token.clone(),
        format!("Custos{token}"),
        String::new(),
    ] {
        assert_eq!(
            RpcToken::verify_header(&header, &w.membership, NETWORK, NOW),
            Err(TokenError::WrongScheme),
            "{header:.20}"
        );
    }
}

#[test]
fn malformed_tokens_are_refused_before_any_signature_check() {
    let w = world();
    let long = "A".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(
        verify(&w, &long, NOW),
        Err(TokenError::TooLong {
            len: MAX_TOKEN_BYTES + 1
        })
    );
    assert_eq!(verify(&w, "not base64!", NOW), Err(TokenError::NotBase64));
    let padded = format!("{}=", issue(&w.insurer, "insurer", NOW, TTL_MS));
    assert_eq!(verify(&w, &padded, NOW), Err(TokenError::NotBase64));
    let garbage = URL_SAFE_NO_PAD.encode([7u8; 40]);
    assert!(matches!(
        verify(&w, &garbage, NOW),
        Err(TokenError::Decode(_))
    ));
    // A token cut short loses its signature: it does not decode.
    let token = issue(&w.insurer, "insurer", NOW, TTL_MS);
    let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
    let cut = URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 10]);
    assert!(matches!(verify(&w, &cut, NOW), Err(TokenError::Decode(_))));
}

#[test]
fn a_token_of_another_network_is_refused() {
    let w = world();
    let token = RpcToken::issue(&w.insurer, text("other-net"), text("insurer"), NOW, TTL_MS);
    assert_eq!(
        verify(&w, &token, NOW),
        Err(TokenError::WrongNetwork {
            got: "other-net".into(),
            expected: NETWORK.into()
        })
    );
}

#[test]
fn only_an_organisation_key_of_the_named_organisation_is_accepted() {
    let w = world();
    let stranger = SecretKey::from_seed(&[9; 32]);
    assert_eq!(
        verify(&w, &issue(&stranger, "insurer", NOW, TTL_MS), NOW),
        Err(TokenError::UnknownKey(stranger.public().key_id()))
    );
    // The client's own key claiming to be the insurer.
    assert_eq!(
        verify(&w, &issue(&w.client, "insurer", NOW, TTL_MS), NOW),
        Err(TokenError::NotTheOrgKey {
            key_id: w.client.public().key_id(),
            org: "insurer".into()
        })
    );
    // Collector and validator keys are members, but not organisation keys.
    for (key, org) in [(&w.collector, "acme-bank"), (&w.validator, "soc")] {
        assert_eq!(
            verify(&w, &issue(key, org, NOW, TTL_MS), NOW),
            Err(TokenError::NotTheOrgKey {
                key_id: key.public().key_id(),
                org: org.into()
            })
        );
    }
}

#[test]
fn a_rotated_key_is_refused_and_its_successor_accepted() {
    let mut w = world();
    let token = issue(&w.client, "acme-bank", NOW, TTL_MS);
    let successor = SecretKey::from_seed(&[8; 32]);
    let rotation = Message {
        network: text(NETWORK),
        author: w.control.public().key_id(),
        client: text("acme-bank"),
        sequence: 1,
        prev: Sha256Hash::ZERO,
        kind: Kind::Membership(MembershipChange::KeyRotated {
            old: w.client.public().key_id(),
            new: successor.public(),
        }),
        format: SourceFormat::Custos,
        occurred_at: None,
        observed_at: NOW,
        severity: None,
        rule_id: None,
        host: None,
        attack_ids: List::empty(),
        references: List::empty(),
        parse_error: None,
        payload: PayloadDescriptor::of(text("text/plain"), b""),
    };
    w.membership.authorize(&rotation).unwrap();
    w.membership.apply(&rotation).unwrap();
    assert_eq!(
        verify(&w, &token, NOW),
        Err(TokenError::Revoked(w.client.public().key_id()))
    );
    let caller = verify(&w, &issue(&successor, "acme-bank", NOW, TTL_MS), NOW).unwrap();
    assert_eq!(caller.role, Role::Client);
}

#[test]
fn a_tampered_signature_or_body_is_refused() {
    let w = world();
    let token = issue(&w.insurer, "insurer", NOW, TTL_MS);
    let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert_eq!(
        verify(&w, &URL_SAFE_NO_PAD.encode(&bytes), NOW),
        Err(TokenError::BadSignature(w.insurer.public().key_id()))
    );
    // Extending the expiry without re-signing: the signature no longer covers the body.
    let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
    let expiry_at = bytes.len() - 64 - 8;
    bytes[expiry_at + 3] ^= 1;
    assert_eq!(
        verify(&w, &URL_SAFE_NO_PAD.encode(&bytes), NOW),
        Err(TokenError::BadSignature(w.insurer.public().key_id()))
    );
}

#[test]
fn expiry_is_enforced_at_its_edge_with_the_tolerated_skew() {
    let w = world();
    let token = issue(&w.insurer, "insurer", NOW, TTL_MS);
    let expiry = NOW.0 + TTL_MS;
    let last_valid = UnixMillis(expiry + MAX_CLOCK_SKEW_MS - 1);
    assert!(verify(&w, &token, last_valid).is_ok());
    let first_invalid = UnixMillis(expiry + MAX_CLOCK_SKEW_MS);
    assert_eq!(
        verify(&w, &token, first_invalid),
        Err(TokenError::Expired {
            expires_at_ms: expiry,
            now_ms: first_invalid.0
        })
    );
}

#[test]
fn a_token_from_the_future_is_refused_beyond_the_skew() {
    let w = world();
    let issued = NOW.0 + MAX_CLOCK_SKEW_MS;
    assert!(
        verify(
            &w,
            &issue(&w.insurer, "insurer", UnixMillis(issued), TTL_MS),
            NOW
        )
        .is_ok()
    );
    let token = issue(&w.insurer, "insurer", UnixMillis(issued + 1), TTL_MS);
    assert_eq!(
        verify(&w, &token, NOW),
        Err(TokenError::NotYetValid {
            issued_at_ms: issued + 1,
            now_ms: NOW.0
        })
    );
}

#[test]
fn lifetimes_outside_one_ms_to_one_day_are_refused() {
    let w = world();
    let longest = signed_token(&w.insurer, "insurer", NOW.0, NOW.0 + MAX_TOKEN_TTL_MS);
    assert!(verify(&w, &longest, NOW).is_ok());
    for (issued, expires, ttl_ms) in [
        (NOW.0, NOW.0 + MAX_TOKEN_TTL_MS + 1, MAX_TOKEN_TTL_MS + 1),
        (NOW.0, NOW.0, 0),
        (NOW.0, NOW.0 - 1, 0),
    ] {
        let token = signed_token(&w.insurer, "insurer", issued, expires);
        assert_eq!(
            verify(&w, &token, NOW),
            Err(TokenError::BadLifetime { ttl_ms }),
            "issued {issued} expires {expires}"
        );
    }
}

fn caller(org: &str, role: Role) -> Caller {
    Caller {
        org: OrgId::new(org).unwrap(),
        role,
        key_id: SecretKey::from_seed(&[1; 32]).public().key_id(),
        expires_at: NOW,
    }
}

#[test]
fn the_permission_table_is_the_documented_one() {
    let acme = OrgId::new("acme-bank").unwrap();
    let evidence = Kind::Evidence {
        evidence: EvidenceKind::LogLine,
    };
    let incident = Kind::Incident(IncidentEvent {
        incident_id: text("INC-1"),
        action: IncidentAction::Detected {
            level: IncidentLevel::new(3).unwrap(),
            aware_at: NOW,
        },
        note: text(""),
    });
    let warning = Kind::EarlyWarning;
    let posture = Kind::Posture(custos_ledger::message::PostureDeclaration {
        controls: custos_ledger::codec::List::empty(),
        note: text(""),
    });
    let cases = [
        // (caller, kind, may read)
        (caller("soc", Role::ControlCenter), &evidence, true),
        (caller("cert", Role::Response), &evidence, true),
        (caller("f-isac", Role::Warning), &evidence, true),
        (caller("insurer", Role::Insurer), &evidence, false),
        (caller("insurer", Role::Insurer), &incident, true),
        (caller("acme-bank", Role::Client), &evidence, true),
        (caller("other-bank", Role::Client), &evidence, false),
        (caller("other-bank", Role::Client), &incident, false),
        (caller("other-bank", Role::Client), &warning, true),
        (caller("insurer", Role::Insurer), &warning, false),
        (caller("insurer", Role::Insurer), &posture, true),
        (caller("f-isac", Role::Warning), &posture, true),
        (caller("acme-bank", Role::Client), &posture, true),
        (caller("other-bank", Role::Client), &posture, false),
    ];
    for (who, kind, expected) in cases {
        assert_eq!(
            may_read(&who, kind, &acme),
            expected,
            "{} ({:?}) reading {}",
            who.org,
            who.role,
            kind.name()
        );
    }
}
