//! `custos genesis`: builds a genesis document from a TOML description whose members name
//! key files (only the public keys are read) or give public keys in hex.
//!
//! ```toml
//! network = "custos-testnet"
//! log_origin = "custos.local/testnet"
//!
//! [[validators]]
//! name = "control-center"
//! org = "soc"
//! role = "control-center"
//! key = "keys/control-center.json"      # or: public_key = "<64 hex digits>"
//! p2p_address = "/ip4/127.0.0.1/tcp/26601"
//!
//! [[organisations]]
//! id = "acme-bank"
//! role = "client"
//! key = "keys/acme-bank.json"
//!
//! [[collectors]]
//! name = "acme-web-01"
//! client = "acme-bank"
//! key = "keys/acme-web-01.json"
//!
//! [params]                              # optional; defaults shown by `custos genesis --help`
//! empty_block_interval_ms = 10000
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Deserialize;

use custos_ledger::block::{Validator, ValidatorSet};
use custos_ledger::codec::{List, Text};
use custos_ledger::crypto::PublicKey;
use custos_ledger::genesis::{ChainParams, EnrolledCollector, Genesis, Organisation};
use custos_ledger::message::{Role, UnixMillis};

use crate::keys::KeyFile;

/// A key given by file or in hex.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRef {
    key: Option<PathBuf>,
    public_key: Option<String>,
}

impl KeyRef {
    fn resolve(&self, base: &Path, who: &str) -> anyhow::Result<PublicKey> {
        match (&self.key, &self.public_key) {
            (Some(path), None) => {
                let path = base.join(path);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("{who}: reading key file {}", path.display()))?;
                let file: KeyFile = serde_json::from_str(&text)
                    .with_context(|| format!("{who}: {} is not a key file", path.display()))?;
                Ok(file.public_key)
            }
            (None, Some(hex)) => {
                Ok(PublicKey::from_hex(hex).with_context(|| format!("{who}: public_key"))?)
            }
            _ => bail!("{who}: give exactly one of `key` (a key file) or `public_key` (hex)"),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidatorSpec {
    name: String,
    org: String,
    role: Role,
    #[serde(flatten)]
    key: KeyRef,
    p2p_address: String,
    #[serde(default = "one")]
    power: u64,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrganisationSpec {
    id: String,
    role: Role,
    #[serde(flatten)]
    key: KeyRef,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectorSpec {
    name: String,
    client: String,
    #[serde(flatten)]
    key: KeyRef,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    network: String,
    log_origin: String,
    validators: Vec<ValidatorSpec>,
    #[serde(default)]
    organisations: Vec<OrganisationSpec>,
    #[serde(default)]
    collectors: Vec<CollectorSpec>,
    #[serde(default)]
    params: Option<ChainParams>,
}

fn text<L: custos_ledger::limits::Limit>(value: &str, field: &str) -> anyhow::Result<Text<L>> {
    Text::new(value).with_context(|| format!("{field} {value:?}"))
}

/// Builds and validates a genesis document from the spec at `path`.
pub fn build(path: &Path, genesis_time: UnixMillis) -> anyhow::Result<Genesis> {
    let source = std::fs::read_to_string(path)
        .with_context(|| format!("reading genesis spec {}", path.display()))?;
    let spec: Spec = toml::from_str(&source)
        .with_context(|| format!("genesis spec {} is invalid", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let validators = spec
        .validators
        .iter()
        .map(|v| {
            let who = format!("validator {}", v.name);
            Ok(Validator {
                name: text(&v.name, "validator name")?,
                org: text(&v.org, "organisation id")?,
                role: v.role,
                key: v.key.resolve(base, &who)?,
                power: v.power,
                p2p_address: text(&v.p2p_address, "p2p address")?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let organisations = spec
        .organisations
        .iter()
        .map(|o| {
            Ok(Organisation {
                id: text(&o.id, "organisation id")?,
                role: o.role,
                key: o.key.resolve(base, &format!("organisation {}", o.id))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let collectors = spec
        .collectors
        .iter()
        .map(|c| {
            Ok(EnrolledCollector {
                key: c.key.resolve(base, &format!("collector {}", c.name))?,
                client: text(&c.client, "client id")?,
                name: text(&c.name, "collector name")?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let validators = ValidatorSet::new(validators)?;
    let genesis = Genesis {
        network: text(&spec.network, "network")?,
        log_origin: text(&spec.log_origin, "log origin")?,
        genesis_time,
        cosigners: custos_ledger::genesis::cosigner_keys(&validators)?,
        validators,
        organisations: List::new(organisations)?,
        collectors: List::new(collectors)?,
        params: spec.params.unwrap_or_default(),
    };
    genesis.validate()?;
    Ok(genesis)
}
