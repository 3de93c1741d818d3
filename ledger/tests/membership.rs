//! The permission table: who may sign which kinds, and how membership changes apply.

use custos_ledger::block::{Validator, ValidatorSet};
use custos_ledger::codec::{List, Text};
use custos_ledger::crypto::SecretKey;
use custos_ledger::genesis::{ChainParams, EnrolledCollector, Genesis, Organisation};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::membership::{Membership, MembershipError};
use custos_ledger::message::{
    EvidenceKind, IncidentAction, IncidentEvent, IncidentLevel, InsuranceEvent, Kind,
    MembershipChange, Message, Money, PayloadDescriptor, Role, SourceFormat, UnixMillis,
};

struct World {
    genesis: Genesis,
    validator: SecretKey,
    control: SecretKey,
    warning: SecretKey,
    insurer: SecretKey,
    client: SecretKey,
    collector: SecretKey,
}

fn world() -> World {
    let validator = SecretKey::from_seed(&[1; 32]);
    let control = SecretKey::from_seed(&[2; 32]);
    let warning = SecretKey::from_seed(&[3; 32]);
    let insurer = SecretKey::from_seed(&[4; 32]);
    let client = SecretKey::from_seed(&[5; 32]);
    let collector = SecretKey::from_seed(&[6; 32]);
    let org = |id: &str, role, key: &SecretKey| Organisation {
        id: Text::new(id).unwrap(),
        role,
        key: key.public(),
    };
    let validators = ValidatorSet::new(vec![Validator {
        name: Text::new("v0").unwrap(),
        org: Text::new("soc").unwrap(),
        role: Role::ControlCenter,
        key: validator.public(),
        power: 1,
        p2p_address: Text::new("/ip4/127.0.0.1/tcp/1").unwrap(),
    }])
    .unwrap();
    let genesis = Genesis {
        network: Text::new("net").unwrap(),
        log_origin: Text::new("custos.test/log").unwrap(),
        genesis_time: UnixMillis(0),
        validators: validators.clone(),
        cosigners: custos_ledger::genesis::cosigner_keys(&validators).unwrap(),
        organisations: List::new(vec![
            org("soc", Role::ControlCenter, &control),
            org("f-isac", Role::Warning, &warning),
            org("insurer", Role::Insurer, &insurer),
            org("acme-bank", Role::Client, &client),
        ])
        .unwrap(),
        collectors: List::new(vec![EnrolledCollector {
            key: collector.public(),
            client: Text::new("acme-bank").unwrap(),
            name: Text::new("web-01").unwrap(),
        }])
        .unwrap(),
        params: ChainParams::default(),
    };
    genesis.validate().unwrap();
    World {
        genesis,
        validator,
        control,
        warning,
        insurer,
        client,
        collector,
    }
}

fn message(author: &SecretKey, client: &str, kind: Kind) -> Message {
    Message {
        network: Text::new("net").unwrap(),
        author: author.public().key_id(),
        client: Text::new(client).unwrap(),
        sequence: 1,
        prev: Sha256Hash::ZERO,
        kind,
        format: SourceFormat::Custos,
        occurred_at: None,
        observed_at: UnixMillis(1),
        severity: None,
        rule_id: None,
        host: None,
        attack_ids: List::empty(),
        references: List::empty(),
        parse_error: None,
        payload: PayloadDescriptor::of(Text::new("text/plain").unwrap(), b""),
    }
}

fn evidence() -> Kind {
    Kind::Evidence {
        evidence: EvidenceKind::LogLine,
    }
}

fn incident() -> Kind {
    Kind::Incident(IncidentEvent {
        incident_id: Text::new("INC-1").unwrap(),
        action: IncidentAction::Detected {
            level: IncidentLevel::new(2).unwrap(),
            aware_at: UnixMillis(1),
        },
        note: Text::new("").unwrap(),
    })
}

fn posture() -> Kind {
    Kind::Posture(custos_ledger::message::PostureDeclaration {
        controls: List::new(vec![custos_ledger::message::ControlStatus {
            control: custos_ledger::message::Control::Backups,
            state: custos_ledger::message::ControlState::Partial,
        }])
        .unwrap(),
        note: Text::new("self-assessment").unwrap(),
    })
}

#[test]
fn permission_table() {
    let w = world();
    let m = Membership::from_genesis(&w.genesis);
    let claim = Kind::Insurance(InsuranceEvent::ClaimFiled {
        claim_id: Text::new("C-1").unwrap(),
        policy_id: Text::new("P-1").unwrap(),
        incident_id: Text::new("INC-1").unwrap(),
        claimed_loss: Money {
            minor_units: 100,
            currency: Text::new("TWD").unwrap(),
        },
    });
    let audit = Kind::AccessAudit(custos_ledger::message::AccessAudit {
        reader: Text::new("insurer").unwrap(),
        reader_key: w.insurer.public().key_id(),
        method: Text::new("custos_getPayload").unwrap(),
        leaf_indexes: List::empty(),
        read_at: UnixMillis(1),
    });
    let allowed = [
        (&w.collector, "acme-bank", evidence()),
        (
            &w.collector,
            "acme-bank",
            Kind::Heartbeat { interval_ms: 1000 },
        ),
        (&w.warning, "acme-bank", Kind::EarlyWarning),
        (&w.control, "acme-bank", incident()),
        (&w.client, "acme-bank", incident()),
        (&w.client, "acme-bank", claim.clone()),
        (&w.insurer, "acme-bank", claim.clone()),
        (&w.validator, "acme-bank", audit.clone()),
        (&w.client, "acme-bank", posture()),
        (&w.warning, "acme-bank", posture()),
        (&w.control, "acme-bank", posture()),
    ];
    for (author, client, kind) in allowed {
        let name = kind.name();
        m.authorize(&message(author, client, kind))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let refused = [
        (&w.collector, "acme-bank", incident()),
        (&w.collector, "acme-bank", Kind::EarlyWarning),
        (&w.warning, "acme-bank", incident()),
        (&w.warning, "acme-bank", evidence()),
        (&w.insurer, "acme-bank", incident()),
        (&w.client, "other-bank", incident()),
        (&w.client, "acme-bank", evidence()),
        (&w.validator, "acme-bank", evidence()),
        (&w.control, "acme-bank", audit),
        (&w.client, "other-bank", posture()),
        (&w.insurer, "acme-bank", posture()),
        (&w.collector, "acme-bank", posture()),
    ];
    for (author, client, kind) in refused {
        let name = kind.name();
        assert!(
            matches!(
                m.authorize(&message(author, client, kind)),
                Err(MembershipError::KindNotPermitted { .. })
            ),
            "{name} by {author:?} for {client} was not refused"
        );
    }
    assert!(matches!(
        m.authorize(&message(&w.collector, "other-bank", evidence())),
        Err(MembershipError::WrongClient { .. })
    ));
    let stranger = SecretKey::from_seed(&[77; 32]);
    assert_eq!(
        m.authorize(&message(&stranger, "acme-bank", evidence())),
        Err(MembershipError::UnknownAuthor(stranger.public().key_id()))
    );
    let mut other_network = message(&w.collector, "acme-bank", evidence());
    other_network.network = Text::new("elsewhere").unwrap();
    assert!(matches!(
        m.authorize(&other_network),
        Err(MembershipError::WrongNetwork { .. })
    ));
}

#[test]
fn enrollment_and_revocation_apply_in_order() {
    let w = world();
    let mut m = Membership::from_genesis(&w.genesis);
    let newcomer = SecretKey::from_seed(&[42; 32]);
    assert!(
        m.authorize(&message(&newcomer, "acme-bank", evidence()))
            .is_err()
    );

    let enroll = message(
        &w.control,
        "acme-bank",
        Kind::Membership(MembershipChange::CollectorEnrolled {
            key: newcomer.public(),
            client: Text::new("acme-bank").unwrap(),
            name: Text::new("db-01").unwrap(),
        }),
    );
    m.authorize(&enroll).unwrap();
    m.apply(&enroll).unwrap();
    m.authorize(&message(&newcomer, "acme-bank", evidence()))
        .unwrap();
    // Enrolling the same key twice is a conflict.
    assert!(matches!(
        m.apply(&enroll),
        Err(MembershipError::Conflict(_))
    ));

    let revoke = message(
        &w.control,
        "acme-bank",
        Kind::Membership(MembershipChange::CollectorRevoked {
            key_id: newcomer.public().key_id(),
            reason: Text::new("server decommissioned").unwrap(),
        }),
    );
    m.apply(&revoke).unwrap();
    assert_eq!(
        m.authorize(&message(&newcomer, "acme-bank", evidence())),
        Err(MembershipError::Revoked(newcomer.public().key_id()))
    );
    // A warning organisation may not enroll collectors.
    let mut by_warning = enroll.clone();
    by_warning.author = w.warning.public().key_id();
    assert!(matches!(
        m.authorize(&by_warning),
        Err(MembershipError::KindNotPermitted { .. })
    ));
}

#[test]
fn genesis_refuses_duplicate_keys_and_bad_params() {
    let w = world();
    let mut dup = w.genesis.clone();
    let mut collectors = dup.collectors.clone().into_vec();
    collectors.push(collectors[0].clone());
    dup.collectors = List::new(collectors).unwrap();
    assert!(dup.validate().is_err());

    let mut bad = w.genesis.clone();
    bad.params.max_block_messages = 0;
    assert!(bad.validate().is_err());
    assert_ne!(w.genesis.hash(), bad.hash());
}
