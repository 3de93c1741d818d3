//! A local anvil EVM node for the anchoring tests, spoken to with curl: a client this
//! project did not write.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The first development account of anvil's default mnemonic (funded at start).
pub const DEV_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// Its address.
pub const DEV_ADDRESS: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
/// anvil's default chain id.
pub const CHAIN_ID: u64 = 31337;

/// Where `scripts/setup.sh --anvil` installs anvil.
pub fn binary() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../.tools/node_modules/.bin/anvil"
    ))
}

/// A running anvil, killed on drop. `.bin/anvil` is npm's Node.js launcher, which runs
/// the native binary as its child: both run in their own process group, and signals go
/// to the whole group.
pub struct Anvil {
    child: Child,
    /// Its JSON-RPC URL.
    pub url: String,
}

impl Anvil {
    /// Starts anvil on a free loopback port, mining a block every `block_time_s` seconds,
    /// and waits until it answers. Panics (does not skip) when anvil is not installed.
    pub fn start(block_time_s: u64) -> Self {
        let binary = binary();
        assert!(
            binary.exists(),
            "anvil is not installed at {}; run `scripts/setup.sh --anvil` (scripts/test.sh does)",
            binary.display()
        );
        let port = super::free_port();
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--block-time", &block_time_s.to_string()])
            .args(["--chain-id", &CHAIN_ID.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let anvil = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let start = Instant::now();
        while anvil.try_rpc("eth_chainId", "[]").is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "anvil did not answer"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        anvil
    }

    /// Calls a JSON-RPC method with curl; `None` when anvil does not answer in 5 s.
    pub fn try_rpc(&self, method: &str, params: &str) -> Option<Value> {
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#);
        let out = Command::new("curl")
            .args(["-s", "-m", "5", "-H", "Content-Type: application/json"])
            .args(["--data", &body, &self.url])
            .output()
            .unwrap();
        if !out.status.success() {
            return None;
        }
        let value: Value = serde_json::from_slice(&out.stdout).ok()?;
        assert!(value.get("error").is_none(), "{method}: {value}");
        Some(value["result"].clone())
    }

    /// Calls a JSON-RPC method with curl.
    pub fn rpc(&self, method: &str, params: &str) -> Value {
        self.try_rpc(method, params)
            .unwrap_or_else(|| panic!("anvil did not answer {method}"))
    }

    /// Freezes the process (SIGSTOP): the endpoint stops answering, state is kept.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws it (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The `[anchor]` section of a validator configuration for this anvil, with the key
    /// file written to `key_path`.
    pub fn anchor_section(&self, key_path: &std::path::Path, interval_ms: u64) -> String {
        std::fs::write(key_path, DEV_KEY).unwrap();
        format!(
            "\n[anchor]\nrpc_url = \"{}\"\nchain_id = {CHAIN_ID}\nkey_file = \"{}\"\nconfirmations = 2\ninterval_ms = {interval_ms}\n",
            self.url,
            key_path.display()
        )
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        // The group's id is the launcher's pid; SIGKILL reaches the native anvil too,
        // also while it is stopped.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
        let _ = self.child.wait();
    }
}

/// A hex quantity (`0x1a`) as a number.
pub fn quantity(value: &Value) -> u64 {
    let text = value.as_str().expect("a hex quantity");
    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}
