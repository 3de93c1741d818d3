//! The collector's configuration file (TOML); relative paths are relative to the file.
//!
//! ```toml
//! network = "custos-testnet"
//! client = "acme-bank"
//! key = "keys/acme-web-01.json"
//! spool_dir = "spool"
//! nodes = ["http://127.0.0.1:8601", "http://127.0.0.1:8602"]
//! heartbeat_interval_ms = 60000
//!
//! [[sources]]
//! type = "file"
//! path = "/var/log/suricata/eve.json"
//! format = "suricata-eve"
//!
//! [[sources]]
//! type = "file"
//! path = "/var/log/stix/*.json"      # a glob in the file name
//! format = "stix-2.1"
//! framing = "document"                 # the whole file is one event
//!
//! [[sources]]
//! type = "syslog"
//! udp = "0.0.0.0:5514"
//! tcp = "0.0.0.0:5514"
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use serde::{Deserialize, Deserializer};

use custos_ledger::message::SourceFormat;

use super::parse::format_name;

/// How a source's events are parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatChoice {
    /// Guess each event's format ([`super::parse::detect`]).
    Auto,
    /// RFC 5424 or RFC 3164 syslog, told apart per message.
    Syslog,
    /// One format for every event.
    Fixed(SourceFormat),
}

const ALL_FORMATS: [SourceFormat; 15] = [
    SourceFormat::Syslog5424,
    SourceFormat::Syslog3164,
    SourceFormat::Cef,
    SourceFormat::EcsJson,
    SourceFormat::SuricataEve,
    SourceFormat::ZeekJson,
    SourceFormat::ZeekTsv,
    SourceFormat::Wazuh,
    SourceFormat::EvtxJson,
    SourceFormat::EvtxXml,
    SourceFormat::Evtx,
    SourceFormat::Stix21,
    SourceFormat::Misp,
    SourceFormat::Raw,
    SourceFormat::Custos,
];

impl std::str::FromStr for FormatChoice {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "auto" => Ok(Self::Auto),
            "syslog" => Ok(Self::Syslog),
            _ => ALL_FORMATS
                .into_iter()
                .filter(|f| *f != SourceFormat::Custos)
                .find(|f| format_name(*f) == name)
                .map(Self::Fixed)
                .ok_or_else(|| {
                    let names: Vec<&str> = ALL_FORMATS
                        .iter()
                        .filter(|f| **f != SourceFormat::Custos)
                        .map(|f| format_name(*f))
                        .collect();
                    format!(
                        "unknown format {name:?}; one of auto, syslog, {}",
                        names.join(", ")
                    )
                }),
        }
    }
}

impl<'de> Deserialize<'de> for FormatChoice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// How a file is cut into events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// One event per line (the newline is not part of the event; a trailing `\r` is).
    Lines,
    /// The whole file is one event, taken once its size has been stable for
    /// `settle_ms` (or at its end in batch mode); a file that changes afterwards is
    /// notarized again whole.
    Document,
    /// A Windows `.evtx` file: one event per record, in its JSON rendering.
    Evtx,
}

/// One source of events.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    /// Files matching a path whose file name may hold `*` and `?`, followed across
    /// rotation (rename or truncation).
    File {
        /// Name in progress lines and counts (default: the path).
        #[serde(default)]
        name: Option<String>,
        /// The path or glob.
        path: String,
        /// The events' format.
        #[serde(default = "auto")]
        format: FormatChoice,
        /// How the file is cut into events (default: `evtx` for format `evtx`,
        /// `document` for `stix-2.1`, `lines` otherwise).
        #[serde(default)]
        framing: Option<Framing>,
    },
    /// Standard input, one event per line.
    Stdin {
        /// Name in progress lines and counts (default `stdin`).
        #[serde(default)]
        name: Option<String>,
        /// The events' format.
        #[serde(default = "auto")]
        format: FormatChoice,
    },
    /// A syslog listener: UDP datagrams and TCP streams (RFC 6587 octet counting or
    /// newline framing), RFC 5424 and RFC 3164.
    Syslog {
        /// Name in progress lines and counts (default `syslog`).
        #[serde(default)]
        name: Option<String>,
        /// UDP address to listen on.
        #[serde(default)]
        udp: Option<String>,
        /// TCP address to listen on.
        #[serde(default)]
        tcp: Option<String>,
        /// The events' format (default `syslog`).
        #[serde(default = "syslog")]
        format: FormatChoice,
    },
}

fn auto() -> FormatChoice {
    FormatChoice::Auto
}

fn syslog() -> FormatChoice {
    FormatChoice::Syslog
}

impl SourceConfig {
    /// The source's name in progress lines and counts.
    pub fn name(&self) -> String {
        match self {
            Self::File { name, path, .. } => name.clone().unwrap_or_else(|| path.clone()),
            Self::Stdin { name, .. } => name.clone().unwrap_or_else(|| "stdin".into()),
            Self::Syslog { name, .. } => name.clone().unwrap_or_else(|| "syslog".into()),
        }
    }
}

/// Most sources one agent runs; each file source is a thread.
pub const MAX_SOURCES: usize = 64;

/// `custos collect --config FILE`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectConfig {
    /// The network id.
    pub network: String,
    /// The client organisation the collector is enrolled for.
    pub client: String,
    /// The collector's key file (kind collector).
    pub key: PathBuf,
    /// The spool folder (created if missing).
    pub spool_dir: PathBuf,
    /// JSON-RPC URLs of the nodes to submit to, tried in turn when one fails.
    pub nodes: Vec<String>,
    /// Interval of heartbeat messages (0: none). Not sent in batch mode.
    #[serde(default = "defaults::heartbeat_interval_ms")]
    pub heartbeat_interval_ms: u64,
    /// Interval of progress lines on standard error.
    #[serde(default = "defaults::progress_interval_ms")]
    pub progress_interval_ms: u64,
    /// How often files are checked for new data and rotation.
    #[serde(default = "defaults::poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// How long a `document` file's size must be stable before it is taken.
    #[serde(default = "defaults::settle_ms")]
    pub settle_ms: u64,
    /// Messages per submission (at most `custos_rpc::MAX_SUBMIT_BATCH`).
    #[serde(default = "defaults::submit_batch_messages")]
    pub submit_batch_messages: usize,
    /// Messages submitted and not yet confirmed before the agent waits for commits.
    #[serde(default = "defaults::max_in_flight_messages")]
    pub max_in_flight_messages: u64,
    /// How often the agent asks whether submitted messages are committed.
    #[serde(default = "defaults::confirm_interval_ms")]
    pub confirm_interval_ms: u64,
    /// First retry delay after a failure; doubles up to `retry_max_ms`.
    #[serde(default = "defaults::retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// Longest retry delay.
    #[serde(default = "defaults::retry_max_ms")]
    pub retry_max_ms: u64,
    /// Timeout of one RPC call.
    #[serde(default = "defaults::request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// When unconfirmed messages take this much disk, reading stops until nodes confirm.
    #[serde(default = "defaults::spool_max_bytes")]
    pub spool_max_bytes: u64,
    /// Where to serve Prometheus metrics (`GET /metrics`), e.g. `127.0.0.1:9700`.
    #[serde(default)]
    pub metrics_listen: Option<String>,
    /// The sources.
    pub sources: Vec<SourceConfig>,
}

mod defaults {
    pub fn heartbeat_interval_ms() -> u64 {
        60_000
    }
    pub fn progress_interval_ms() -> u64 {
        10_000
    }
    pub fn poll_interval_ms() -> u64 {
        200
    }
    pub fn settle_ms() -> u64 {
        1_000
    }
    pub fn submit_batch_messages() -> usize {
        500
    }
    pub fn max_in_flight_messages() -> u64 {
        20_000
    }
    pub fn confirm_interval_ms() -> u64 {
        500
    }
    pub fn retry_initial_ms() -> u64 {
        100
    }
    pub fn retry_max_ms() -> u64 {
        5_000
    }
    pub fn request_timeout_ms() -> u64 {
        10_000
    }
    pub fn spool_max_bytes() -> u64 {
        4 * 1024 * 1024 * 1024
    }
}

impl CollectConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading collector config {}", path.display()))?;
        let mut config: Self = toml::from_str(&text)
            .with_context(|| format!("collector config {} is invalid", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.key = base.join(&config.key);
        config.spool_dir = base.join(&config.spool_dir);
        for source in &mut config.sources {
            if let SourceConfig::File { path, .. } = source {
                *path = base.join(&*path).to_string_lossy().into_owned();
            }
        }
        config.check()?;
        Ok(config)
    }

    /// Checks the values against their limits.
    pub fn check(&self) -> anyhow::Result<()> {
        ensure!(
            !self.nodes.is_empty(),
            "`nodes` must name at least one node"
        );
        ensure!(
            !self.sources.is_empty(),
            "`sources` must name at least one source"
        );
        ensure!(
            self.sources.len() <= MAX_SOURCES,
            "{} sources; at most {MAX_SOURCES}",
            self.sources.len()
        );
        ensure!(
            (1..=custos_rpc::MAX_SUBMIT_BATCH).contains(&self.submit_batch_messages),
            "submit_batch_messages {} is not within 1..={}",
            self.submit_batch_messages,
            custos_rpc::MAX_SUBMIT_BATCH
        );
        ensure!(
            self.poll_interval_ms > 0 && self.confirm_interval_ms > 0,
            "poll_interval_ms and confirm_interval_ms must be positive"
        );
        ensure!(
            self.retry_initial_ms > 0 && self.retry_initial_ms <= self.retry_max_ms,
            "retry_initial_ms must be positive and at most retry_max_ms"
        );
        ensure!(
            self.max_in_flight_messages >= self.submit_batch_messages as u64,
            "max_in_flight_messages must be at least submit_batch_messages"
        );
        let mut names = std::collections::BTreeSet::new();
        for source in &self.sources {
            ensure!(
                names.insert(source.name()),
                "two sources are named {:?}; give each a distinct `name`",
                source.name()
            );
            if let SourceConfig::Syslog { udp, tcp, .. } = source
                && udp.is_none()
                && tcp.is_none()
            {
                bail!(
                    "syslog source {:?} needs `udp` or `tcp` (an address such as \"0.0.0.0:5514\")",
                    source.name()
                );
            }
        }
        Ok(())
    }

    /// The framing of a file source.
    pub fn framing(format: FormatChoice, framing: Option<Framing>) -> Framing {
        framing.unwrap_or(match format {
            FormatChoice::Fixed(SourceFormat::Evtx) => Framing::Evtx,
            FormatChoice::Fixed(SourceFormat::Stix21) => Framing::Document,
            _ => Framing::Lines,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_named_as_in_the_ledger() {
        assert_eq!(
            "suricata-eve".parse::<FormatChoice>(),
            Ok(FormatChoice::Fixed(SourceFormat::SuricataEve))
        );
        assert_eq!(
            "syslog-3164".parse::<FormatChoice>(),
            Ok(FormatChoice::Fixed(SourceFormat::Syslog3164))
        );
        assert_eq!("auto".parse::<FormatChoice>(), Ok(FormatChoice::Auto));
        let error = "eve".parse::<FormatChoice>().unwrap_err();
        assert!(error.contains("suricata-eve"), "{error}");
    }

    #[test]
    fn a_config_parses_with_defaults_and_bad_ones_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("collect.toml");
        std::fs::write(
            &path,
            "network = \"n\"\nclient = \"c\"\nkey = \"k.json\"\nspool_dir = \"spool\"\nnodes = [\"http://127.0.0.1:1\"]\n\
             [[sources]]\ntype = \"file\"\npath = \"logs/*.json\"\nformat = \"stix-2.1\"\n\
             [[sources]]\ntype = \"syslog\"\nudp = \"127.0.0.1:5514\"\n",
        )
        .unwrap();
        let config = CollectConfig::load(&path).unwrap();
        assert_eq!(config.spool_dir, dir.path().join("spool"));
        assert_eq!(config.heartbeat_interval_ms, 60_000);
        let SourceConfig::File {
            path: glob,
            format,
            framing,
            ..
        } = &config.sources[0]
        else {
            panic!("a file source");
        };
        assert_eq!(glob, &dir.path().join("logs/*.json").to_string_lossy());
        assert_eq!(CollectConfig::framing(*format, *framing), Framing::Document);

        std::fs::write(
            &path,
            "network = \"n\"\nclient = \"c\"\nkey = \"k\"\nspool_dir = \"s\"\nnodes = [\"u\"]\n\
             [[sources]]\ntype = \"syslog\"\n",
        )
        .unwrap();
        let error = format!("{:#}", CollectConfig::load(&path).unwrap_err());
        assert!(error.contains("needs `udp` or `tcp`"), "{error}");
        std::fs::write(
            &path,
            "network = \"n\"\nclient = \"c\"\nkey = \"k\"\nspool_dir = \"s\"\nnodes = [\"u\"]\n\
             [[sources]]\ntype = \"file\"\npath = \"x\"\nformat = \"json\"\n",
        )
        .unwrap();
        let error = format!("{:#}", CollectConfig::load(&path).unwrap_err());
        assert!(error.contains("unknown format \"json\""), "{error}");
    }
}
