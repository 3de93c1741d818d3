//! The benchmark's results: a Markdown table, one JSON line and a PNG plot of commit
//! latency against committed throughput.

use std::path::Path;

use anyhow::Context as _;
use plotters::prelude::*;
use serde::Serialize;

/// One offered load of the sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    /// Messages per second offered.
    pub offered_msgs_per_s: u64,
    /// Messages per second committed.
    pub committed_msgs_per_s: f64,
    /// Median commit latency (submit to committed), milliseconds.
    pub p50_ms: f64,
    /// 99th percentile commit latency, milliseconds.
    pub p99_ms: f64,
    /// Messages measured.
    pub messages: usize,
    /// Messages admitted but never seen committed (should be 0).
    pub missing: usize,
}

impl Level {
    /// A one-line summary for progress output.
    pub fn line(&self) -> String {
        format!(
            "offered {}/s: committed {:.0}/s, p50 {:.0} ms, p99 {:.0} ms, {} missing",
            self.offered_msgs_per_s,
            self.committed_msgs_per_s,
            self.p50_ms,
            self.p99_ms,
            self.missing
        )
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Validators.
    pub validators: usize,
    /// Collectors.
    pub collectors: usize,
    /// Payload bytes per message.
    pub payload_bytes: usize,
    /// Sustained committed messages per second in the saturation run.
    pub throughput_msgs_per_s: f64,
    /// Median commit latency at 5,000 messages/s offered.
    pub p50_ms: f64,
    /// 99th percentile commit latency at 5,000 messages/s offered.
    pub p99_ms: f64,
    /// Median commit latency in the saturation run.
    pub saturation_p50_ms: f64,
    /// 99th percentile commit latency in the saturation run.
    pub saturation_p99_ms: f64,
    /// Ed25519 batch verifications per second on all cores divided by the validators.
    pub ceiling_msgs_per_s: f64,
    /// Ed25519 batch verifications per second on all cores.
    pub verifications_per_s: f64,
    /// Throughput over the ceiling.
    pub ratio: f64,
    /// CPU time per committed message, averaged over the validators.
    pub cpu_ms_per_msg_per_validator: f64,
    /// Ledger bytes on disk per committed message (payload included).
    pub storage_bytes_per_msg: f64,
    /// Inclusion-proof reads per second from one validator.
    pub proof_reads_per_s: f64,
    /// Messages per second a validator that was down applies while catching up.
    pub catchup_msgs_per_s: f64,
    /// Seconds from restarting a SIGKILLed validator to its first block committed after.
    pub rejoin_s: f64,
    /// The offered-load sweep.
    pub levels: Vec<Level>,
    /// Length of the saturation run.
    pub saturation_s: u64,
    /// Where the validators' time went in the saturation run (with `--profile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<super::profile::Profile>,
}

impl Report {
    /// The Markdown table of the run, with each figure's target.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{} validators, {} collectors, {}-byte payloads, {} s saturation run\n\n",
            self.validators, self.collectors, self.payload_bytes, self.saturation_s
        ));
        out.push_str("| figure | value | target |\n|---|---:|---|\n");
        let rows = [
            (
                "sustained throughput, messages/s",
                format!("{:.0}", self.throughput_msgs_per_s),
                "≥ 10,000 (stretch 15,000)",
            ),
            (
                "p50 / p99 commit latency at 5,000/s offered, ms",
                format!("{:.0} / {:.0}", self.p50_ms, self.p99_ms),
                "p99 ≤ 250",
            ),
            (
                "p50 / p99 commit latency at saturation, ms",
                format!(
                    "{:.0} / {:.0}",
                    self.saturation_p50_ms, self.saturation_p99_ms
                ),
                "",
            ),
            (
                "Ed25519 batch verifications/s, all cores",
                format!("{:.0}", self.verifications_per_s),
                "",
            ),
            (
                "ceiling (verifications/s ÷ validators), messages/s",
                format!("{:.0}", self.ceiling_msgs_per_s),
                "",
            ),
            (
                "throughput ÷ ceiling",
                format!("{:.2}", self.ratio),
                "≥ 0.4",
            ),
            (
                "CPU per message per validator, ms",
                format!("{:.3}", self.cpu_ms_per_msg_per_validator),
                "",
            ),
            (
                "storage per message, bytes",
                format!(
                    "{:.0} ({} payload + {:.0})",
                    self.storage_bytes_per_msg,
                    self.payload_bytes,
                    self.storage_bytes_per_msg - self.payload_bytes as f64
                ),
                "≤ payload + 300",
            ),
            (
                "inclusion-proof reads/s, one validator",
                format!("{:.0}", self.proof_reads_per_s),
                "",
            ),
            (
                "catch-up, messages/s",
                format!("{:.0}", self.catchup_msgs_per_s),
                "≥ 30,000",
            ),
            (
                "rejoin after SIGKILL, s",
                format!("{:.2}", self.rejoin_s),
                "≤ 3",
            ),
        ];
        for (figure, value, target) in rows {
            out.push_str(&format!("| {figure} | {value} | {target} |\n"));
        }
        out.push_str("\n| offered/s | committed/s | p50 ms | p99 ms | missing |\n|---:|---:|---:|---:|---:|\n");
        for l in &self.levels {
            out.push_str(&format!(
                "| {} | {:.0} | {:.0} | {:.0} | {} |\n",
                l.offered_msgs_per_s, l.committed_msgs_per_s, l.p50_ms, l.p99_ms, l.missing
            ));
        }
        if let Some(profile) = &self.profile {
            out.push_str(&profile.markdown());
        }
        out
    }

    /// The run as one JSON line.
    pub fn json_line(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    /// Plots p50 and p99 commit latency against committed throughput, one point per
    /// offered load, into a PNG at `path`.
    pub fn plot(&self, path: &Path, font: &'static [u8]) -> anyhow::Result<()> {
        plotters::style::register_font("sans-serif", FontStyle::Normal, font)
            .map_err(|_| anyhow::anyhow!("the plot font is not a usable TrueType font"))?;
        let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let max_x = self
            .levels
            .iter()
            .map(|l| l.committed_msgs_per_s)
            .fold(1.0, f64::max)
            * 1.1;
        let max_y = self
            .levels
            .iter()
            .map(|l| l.p99_ms)
            .filter(|v| v.is_finite())
            .fold(1.0, f64::max)
            * 1.2;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!(
                    "Custos, {} validators: commit latency against throughput",
                    self.validators
                ),
                ("sans-serif", 22),
            )
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..max_x, 0.0..max_y)?;
        chart
            .configure_mesh()
            .x_desc("committed messages per second")
            .y_desc("commit latency, ms")
            .draw()?;
        for (name, color, pick) in [
            ("p50", BLUE, (|l: &Level| l.p50_ms) as fn(&Level) -> f64),
            ("p99", RED, |l: &Level| l.p99_ms),
        ] {
            let points: Vec<(f64, f64)> = self
                .levels
                .iter()
                .map(|l| (l.committed_msgs_per_s, pick(l)))
                .filter(|(_, y)| y.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 4, color.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present().context("writing the plot")?;
        Ok(())
    }
}
