//! Where the validators' time goes during the saturation run: a `perf` sampling profile
//! of every validator process, summarised by thread and by function.
//!
//! `perf record` samples the validators' threads at a fixed frequency for the length of
//! the saturation run; `perf report` then gives the share of samples per thread name
//! (tokio workers, RocksDB's flush and compaction threads, libp2p) and per function.
//! The raw `perf.data` is kept next to the results for a closer look
//! (`perf report -i FILE`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};
use serde::Serialize;

/// Samples per second per CPU: enough for a stable top list over a minute, cheap enough
/// not to move the figures.
const FREQUENCY_HZ: u32 = 199;
/// Functions listed in the summary.
const TOP_FUNCTIONS: usize = 25;
/// Thread names listed in the summary.
const TOP_THREADS: usize = 12;

/// A running `perf record`.
#[derive(Debug)]
pub struct Recording {
    child: Child,
    data: PathBuf,
}

/// One line of a profile: a share of all samples.
#[derive(Debug, Clone, Serialize)]
pub struct Share {
    /// Percent of the validators' samples.
    pub percent: f64,
    /// Thread name, or `library: function`.
    pub what: String,
}

/// The summary of a recording.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// The raw data file.
    pub data: PathBuf,
    /// Share of samples by thread name.
    pub threads: Vec<Share>,
    /// Share of samples by function (self time).
    pub functions: Vec<Share>,
}

/// Starts sampling processes `pids` for `seconds`, writing to `data`.
pub fn record(pids: &[u32], seconds: u64, data: &Path) -> anyhow::Result<Recording> {
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let child = Command::new("perf")
        .args(["record", "--quiet", "-F", &FREQUENCY_HZ.to_string(), "-p"])
        .arg(pids.join(","))
        .arg("-o")
        .arg(data)
        .args(["--", "sleep", &seconds.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context(
            "running perf for --profile (install it with `scripts/setup.sh --perf`, \
             Debian's linux-perf)",
        )?;
    Ok(Recording {
        child,
        data: data.to_path_buf(),
    })
}

/// A finished recording, not yet summarised.
#[derive(Debug)]
pub struct Recorded {
    data: PathBuf,
}

impl Recording {
    /// Waits for `perf record` to end and write its data, so that nothing of it runs
    /// into the measurements that follow.
    pub fn stop(self) -> anyhow::Result<Recorded> {
        let output = self.child.wait_with_output()?;
        if !output.status.success() {
            bail!(
                "perf record failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(Recorded { data: self.data })
    }
}

impl Recorded {
    /// Summarises the recording with `perf report`: seconds of work on every core, so
    /// it is done once the run has measured everything else.
    pub fn summarise(self) -> anyhow::Result<Profile> {
        Ok(Profile {
            threads: report(&self.data, "comm", TOP_THREADS)?,
            functions: report(&self.data, "dso,sym", TOP_FUNCTIONS)?,
            data: self.data,
        })
    }
}

/// `perf report` sorted by `keys`, the first `top` lines.
fn report(data: &Path, keys: &str, top: usize) -> anyhow::Result<Vec<Share>> {
    let output = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--quiet",
            "--no-children",
            "--sort",
            keys,
        ])
        .arg("-i")
        .arg(data)
        .output()
        .context("running perf report")?;
    if !output.status.success() {
        bail!(
            "perf report failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(parse_report(&String::from_utf8_lossy(&output.stdout), top))
}

/// Lines of `perf report --stdio --quiet`: `  12.34%  column  [.] column...`.
fn parse_report(text: &str, top: usize) -> Vec<Share> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (percent, rest) = line.split_once('%')?;
            let percent: f64 = percent.trim().parse().ok()?;
            let what = rest
                .split_whitespace()
                .filter(|word| *word != "[.]" && *word != "[k]")
                .collect::<Vec<_>>()
                .join(" ");
            Some(Share { percent, what })
        })
        .take(top)
        .collect()
}

impl Profile {
    /// The profile as Markdown: threads, then functions.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "\nWhere the validators' time went during the saturation run (perf, {FREQUENCY_HZ} Hz, \
             self time; raw data: `{}`):\n\n| thread | share |\n|---|---:|\n",
            self.data.display()
        );
        for share in &self.threads {
            out.push_str(&format!("| {} | {:.1}% |\n", share.what, share.percent));
        }
        out.push_str("\n| function | share |\n|---|---:|\n");
        for share in &self.functions {
            out.push_str(&format!(
                "| `{}` | {:.1}% |\n",
                share.what.replace('|', "\\|"),
                share.percent
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_parse_into_shares_and_other_lines_are_skipped() {
        let text = "\n    41.20%  tokio-runtime-w\n     9.05%  custos  [.] curve25519_dalek::field::FieldElement51::mul\n# comment\n     0.50%  libc.so.6  [k] memcpy\n";
        let shares = parse_report(text, 10);
        let got: Vec<(f64, &str)> = shares
            .iter()
            .map(|s| (s.percent, s.what.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (41.2, "tokio-runtime-w"),
                (9.05, "custos curve25519_dalek::field::FieldElement51::mul"),
                (0.5, "libc.so.6 memcpy"),
            ]
        );
        assert_eq!(parse_report(text, 1).len(), 1);
    }
}
