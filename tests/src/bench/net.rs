//! The benchmark's network: real `custos` validator processes on loopback, with keys,
//! genesis and configurations in a scratch folder, as an operator would set them up.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};

use custos_ledger::crypto::SecretKey;
use custos_ledger::message::UnixMillis;
use custos_node::keys::{KeyFile, KeyKind};
use custos_rpc::{CustosApiClient, NodeStatus};

/// The benchmark network's id.
pub const NETWORK: &str = "custos-bench";
/// The client organisation every collector collects for.
pub const CLIENT: &str = "client0";

/// One validator process.
#[derive(Debug)]
pub struct Validator {
    /// Its name in genesis.
    pub name: String,
    /// Its data folder.
    pub dir: PathBuf,
    /// Its JSON-RPC URL.
    pub rpc: String,
    binary: PathBuf,
    child: Option<Child>,
}

impl Validator {
    /// Starts it (again), appending its log to `node.log` in its folder.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))?;
        let child = Command::new(&self.binary)
            .args(["node", "run", "--config"])
            .arg(self.dir.join("node.toml"))
            .env(
                "CUSTOS_LOG",
                std::env::var("CUSTOS_BENCH_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Stops it with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already gone is as good as killed.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A JSON-RPC client for it.
    pub fn client(&self) -> anyhow::Result<HttpClient> {
        Ok(HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(30))
            .build(&self.rpc)?)
    }

    /// Its status, or `None` while it does not answer.
    pub async fn status(&self) -> Option<NodeStatus> {
        self.client().ok()?.status().await.ok()
    }

    /// Bytes its ledger occupies on disk.
    pub fn ledger_bytes(&self) -> anyhow::Result<u64> {
        dir_bytes(&self.dir.join("ledger"))
    }
}

impl Drop for Validator {
    fn drop(&mut self) {
        self.kill();
    }
}

fn dir_bytes(path: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Keys, genesis and configuration of `validators` validators and `collectors`
/// collectors under `root`; the validators are not started.
pub fn setup(
    root: &Path,
    binary: &Path,
    validators: usize,
    collectors: usize,
) -> anyhow::Result<(Vec<Validator>, Vec<SecretKey>)> {
    std::fs::create_dir_all(root.join("keys"))?;
    let mut spec = format!("network = \"{NETWORK}\"\nlog_origin = \"custos.bench/log\"\n");
    let mut nodes = Vec::new();
    for i in 0..validators {
        let name = format!("v{i}");
        KeyFile::generate(KeyKind::Validator)
            .0
            .write_new(&root.join(format!("keys/{name}.json")))?;
        let (p2p, rpc) = (free_port()?, free_port()?);
        let role = if i == 0 { "control-center" } else { "response" };
        spec.push_str(&format!(
            "[[validators]]\nname = \"{name}\"\norg = \"org{i}\"\nrole = \"{role}\"\n\
             key = \"keys/{name}.json\"\np2p_address = \"/ip4/127.0.0.1/tcp/{p2p}\"\n"
        ));
        let dir = root.join(&name);
        std::fs::create_dir_all(&dir)?;
        // Production settings: the node's default timeouts, mempool and RocksDB syncing.
        std::fs::write(
            dir.join("node.toml"),
            format!(
                "data_dir = \".\"\ngenesis = \"../genesis.json\"\n\
                 validator_key = \"../keys/{name}.json\"\n\
                 p2p_listen = \"/ip4/127.0.0.1/tcp/{p2p}\"\nrpc_listen = \"127.0.0.1:{rpc}\"\n"
            ),
        )?;
        nodes.push(Validator {
            name,
            dir,
            rpc: format!("http://127.0.0.1:{rpc}"),
            binary: binary.to_path_buf(),
            child: None,
        });
    }
    KeyFile::generate(KeyKind::Organisation)
        .0
        .write_new(&root.join(format!("keys/{CLIENT}.json")))?;
    spec.push_str(&format!(
        "[[organisations]]\nid = \"{CLIENT}\"\nrole = \"client\"\nkey = \"keys/{CLIENT}.json\"\n"
    ));
    let mut keys = Vec::new();
    for i in 0..collectors {
        let (file, key) = KeyFile::generate(KeyKind::Collector);
        file.write_new(&root.join(format!("keys/c{i}.json")))?;
        spec.push_str(&format!(
            "[[collectors]]\nname = \"c{i}\"\nclient = \"{CLIENT}\"\nkey = \"keys/c{i}.json\"\n"
        ));
        keys.push(key);
    }
    std::fs::write(root.join("network.toml"), spec)?;
    let genesis = custos_node::genesis_spec::build(
        &root.join("network.toml"),
        UnixMillis(custos_node::runtime::now_ms().0 - 1_000),
    )?;
    std::fs::write(root.join("genesis.json"), serde_json::to_string(&genesis)?)?;
    Ok((nodes, keys))
}

/// Waits until every running validator is connected to all the others, so a measurement
/// does not start while the mesh is still forming.
pub async fn wait_connected(validators: &[Validator], deadline: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    let others = validators.len() - 1;
    loop {
        let mut peers = Vec::new();
        for v in validators {
            peers.push(v.status().await.map_or(0, |status| status.peers.len()));
        }
        if peers.iter().all(|&n| n == others) {
            return Ok(());
        }
        if start.elapsed() > deadline {
            bail!("validators did not all connect to each other: peers per validator {peers:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every running validator answers and all agree on one log size at least
/// `size`; returns that size.
pub async fn wait_in_step(
    validators: &[Validator],
    size: u64,
    deadline: Duration,
) -> anyhow::Result<u64> {
    let start = Instant::now();
    loop {
        let mut sizes = Vec::new();
        for v in validators.iter().filter(|v| v.pid().is_some()) {
            if let Some(status) = v.status().await {
                sizes.push(status.log_size);
            }
        }
        let running = validators.iter().filter(|v| v.pid().is_some()).count();
        if sizes.len() == running
            && sizes.iter().all(|&s| s >= size)
            && sizes.windows(2).all(|w| w[0] == w[1])
        {
            return Ok(sizes[0]);
        }
        if start.elapsed() > deadline {
            bail!("validators did not reach log size {size} together: {sizes:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// CPU time (user + system) a process has used, read from `/proc`.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: u64 = fields
        .get(11..13)
        .context("short /proc stat")?
        .iter()
        .map(|f| f.parse::<u64>())
        .sum::<Result<u64, _>>()?;
    Ok(Duration::from_millis(ticks * 1000 / clock_ticks_per_s()?))
}

fn clock_ticks_per_s() -> anyhow::Result<u64> {
    let out = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}
