//! What `tresor bench` prints: one side's figures, or tresor beside the
//! echo with their ratios, as text or as one JSON document. The JSON field
//! names are a stable interface (README, "tresor bench").

use std::collections::BTreeMap;

use serde::Serialize;

use crate::load::Stats;

/// How the load was shaped.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    /// Servers the load went to.
    pub targets: Vec<String>,
    /// Connections to each server.
    pub connections: usize,
    /// Every request opened its own connection (TCP and TLS handshake
    /// included in its latency); `connections` is then 0.
    pub new_connection_per_request: bool,
    /// Requests in flight.
    pub concurrency: usize,
    /// Plaintext size of encrypt and decrypt.
    pub payload_bytes: usize,
    /// Operations and weights, `encrypt=1,decrypt=1`.
    pub mix: String,
    /// Items of one batch request; `None` when the mix has no batch
    /// operation.
    pub batch_size: Option<usize>,
    /// Number of keys the requests are spread over.
    pub keys: usize,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Slowest request.
    pub max: u64,
}

/// One side's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// Measured seconds.
    pub seconds: f64,
    /// Successful requests (RPCs: a batch counts once).
    pub requests: u64,
    /// Items of successful requests: the batch size for a batch, 1 for a
    /// single call.
    pub items: u64,
    /// Failed requests.
    pub errors: u64,
    /// Successful requests per second.
    pub requests_per_second: f64,
    /// Items of successful requests per second.
    pub items_per_second: f64,
    /// Plaintext bytes per second.
    pub bytes_per_second: f64,
    /// Latency of successful requests.
    pub latency_us: Latency,
    /// Successful requests by operation.
    pub operations: BTreeMap<&'static str, u64>,
    /// The first failure, if any.
    pub first_error: Option<String>,
}

impl From<&Stats> for Side {
    fn from(stats: &Stats) -> Self {
        let per_second = |n: u64| {
            if stats.seconds > 0.0 {
                n as f64 / stats.seconds
            } else {
                0.0
            }
        };
        let h = &stats.latency;
        Self {
            seconds: stats.seconds,
            requests: stats.requests,
            items: stats.items,
            errors: stats.errors,
            requests_per_second: per_second(stats.requests),
            items_per_second: per_second(stats.items),
            bytes_per_second: per_second(stats.bytes),
            latency_us: Latency {
                p50: h.value_at_quantile(0.50),
                p90: h.value_at_quantile(0.90),
                p99: h.value_at_quantile(0.99),
                max: h.max(),
            },
            operations: stats
                .operations
                .iter()
                .map(|(op, n)| (op.name(), *n))
                .collect(),
            first_error: stats.first_error.clone(),
        }
    }
}

/// `tresor bench` without `--compare-echo`.
#[derive(Debug, Serialize)]
pub struct Single {
    /// The load.
    #[serde(flatten)]
    pub setup: Setup,
    /// What it measured.
    #[serde(flatten)]
    pub side: Side,
}

/// One round of a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    /// Which side ran first in this round.
    pub first: &'static str,
    /// tresor's requests per second.
    pub tresor_requests_per_second: f64,
    /// The echo's requests per second.
    pub echo_requests_per_second: f64,
    /// tresor's median latency, microseconds.
    pub tresor_p50_us: u64,
    /// The echo's median latency, microseconds.
    pub echo_p50_us: u64,
    /// tresor / echo requests per second.
    pub requests_per_second_ratio: Option<f64>,
    /// tresor / echo median latency.
    pub p50_latency_ratio: Option<f64>,
}

impl Round {
    /// A round from both sides' figures.
    pub fn new(first: &'static str, tresor: &Side, echo: &Side) -> Self {
        Self {
            first,
            tresor_requests_per_second: tresor.requests_per_second,
            echo_requests_per_second: echo.requests_per_second,
            tresor_p50_us: tresor.latency_us.p50,
            echo_p50_us: echo.latency_us.p50,
            requests_per_second_ratio: ratio(tresor.requests_per_second, echo.requests_per_second),
            p50_latency_ratio: ratio(tresor.latency_us.p50 as f64, echo.latency_us.p50 as f64),
        }
    }
}

/// The headline: medians of the per-round ratios.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ratios {
    /// Median of tresor / echo requests per second (higher is better).
    pub requests_per_second: Option<f64>,
    /// Median of tresor / echo median latency (lower is better).
    pub p50_latency: Option<f64>,
}

/// `tresor bench --compare-echo`.
#[derive(Debug, Serialize)]
pub struct Comparison {
    /// The load (the same on both sides).
    #[serde(flatten)]
    pub setup: Setup,
    /// Where the echo listened.
    pub echo_target: String,
    /// tresor over every round.
    pub tresor: Side,
    /// The echo over every round.
    pub echo: Side,
    /// Each round.
    pub rounds: Vec<Round>,
    /// Medians of the per-round ratios.
    pub ratio: Ratios,
}

impl Comparison {
    /// Computes the medians from the rounds.
    pub fn new(
        setup: Setup,
        echo_target: String,
        tresor: Side,
        echo: Side,
        rounds: Vec<Round>,
    ) -> Self {
        let median_of =
            |pick: fn(&Round) -> Option<f64>| median(rounds.iter().filter_map(pick).collect());
        let ratio = Ratios {
            requests_per_second: median_of(|r| r.requests_per_second_ratio),
            p50_latency: median_of(|r| r.p50_latency_ratio),
        };
        Self {
            setup,
            echo_target,
            tresor,
            echo,
            rounds,
            ratio,
        }
    }
}

/// `a / b` when both are finite and `b` is positive.
fn ratio(a: f64, b: f64) -> Option<f64> {
    (a.is_finite() && b.is_finite() && b > 0.0).then(|| a / b)
}

/// The median (mean of the middle two for an even count); `None` when
/// empty.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn describe(setup: &Setup) -> String {
    let batches = setup
        .batch_size
        .map_or_else(String::new, |n| format!(" (batches of {n})"));
    let connections = if setup.new_connection_per_request {
        "a new connection per request".to_owned()
    } else {
        format!("{} connection(s)", setup.connections)
    };
    format!(
        "{}{batches} with {} B payload, {} in flight over {connections} to each of {} server(s), {} key(s)",
        setup.mix,
        setup.payload_bytes,
        setup.concurrency,
        setup.targets.len(),
        setup.keys
    )
}

fn errors_line(side: &Side) -> String {
    match &side.first_error {
        Some(first) => format!("{} errors (first: {first})", side.errors),
        None => format!("{} errors", side.errors),
    }
}

fn show_ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |r| format!("{r:.3}"))
}

impl Single {
    /// For people.
    pub fn human(&self) -> String {
        let s = &self.side;
        format!(
            "{}, {:.1} s: {:.0} req/s, {:.0} items/s, {:.1} MB/s, {}\nlatency p50 {} us, p90 {} us, p99 {} us, max {} us\n",
            describe(&self.setup),
            s.seconds,
            s.requests_per_second,
            s.items_per_second,
            s.bytes_per_second / 1e6,
            errors_line(s),
            s.latency_us.p50,
            s.latency_us.p90,
            s.latency_us.p99,
            s.latency_us.max
        )
    }
}

impl Comparison {
    /// For people: both sides in columns (laid out by `table`, the CLI's
    /// aligned-columns formatter), then the rounds and the medians.
    pub fn human(&self, table: fn(&[Vec<String>]) -> String) -> String {
        let (t, e) = (&self.tresor, &self.echo);
        let row = |name: &str, a: f64, b: f64, precision: usize| {
            vec![
                name.to_owned(),
                format!("{a:.precision$}"),
                format!("{b:.precision$}"),
                show_ratio(ratio(a, b)),
            ]
        };
        let latency = |name: &str, pick: fn(&Latency) -> u64| {
            row(
                name,
                pick(&t.latency_us) as f64,
                pick(&e.latency_us) as f64,
                0,
            )
        };
        let mut out = format!(
            "{}; {} round(s), each side {:.1} s per round, alternating; echo at {}\n\n",
            describe(&self.setup),
            self.rounds.len(),
            t.seconds / self.rounds.len().max(1) as f64,
            self.echo_target
        );
        out.push_str(&table(&[
            ["", "tresor", "echo", "tresor/echo"]
                .map(str::to_owned)
                .to_vec(),
            row("req/s", t.requests_per_second, e.requests_per_second, 0),
            row("items/s", t.items_per_second, e.items_per_second, 0),
            row(
                "MB/s",
                t.bytes_per_second / 1e6,
                e.bytes_per_second / 1e6,
                2,
            ),
            latency("p50 us", |l| l.p50),
            latency("p90 us", |l| l.p90),
            latency("p99 us", |l| l.p99),
            latency("max us", |l| l.max),
            vec![
                "requests".into(),
                t.requests.to_string(),
                e.requests.to_string(),
                String::new(),
            ],
            vec![
                "errors".into(),
                t.errors.to_string(),
                e.errors.to_string(),
                String::new(),
            ],
        ]));
        for (side, name) in [(t, "tresor"), (e, "echo")] {
            if side.errors > 0 {
                out.push_str(&format!("{name}: {}\n", errors_line(side)));
            }
        }
        let per_round = |pick: fn(&Round) -> Option<f64>| {
            self.rounds
                .iter()
                .map(|r| show_ratio(pick(r)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "\nreq/s ratio per round: {}; median {}\np50 latency ratio per round: {}; median {}\n",
            per_round(|r| r.requests_per_second_ratio),
            show_ratio(self.ratio.requests_per_second),
            per_round(|r| r.p50_latency_ratio),
            show_ratio(self.ratio.p50_latency),
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
        assert_eq!(ratio(9.0, 10.0), Some(0.9));
    }
}
