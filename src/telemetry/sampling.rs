//! Which calls are traced: the `OTEL_TRACES_SAMPLER` rules (`always_on`,
//! `always_off`, `traceidratio`, and their `parentbased_` forms, the
//! default being `parentbased_always_on`), decided once when a call
//! arrives, before any OpenTelemetry work. A call that is not sampled
//! gets a span the exporter never sees, so it costs no more than with
//! export off; the SDK's own sampler is then always-on, since only sampled
//! calls reach it.

use opentelemetry::trace::SpanContext;

/// The rule for a trace that starts here (or whose parent is ignored).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    AlwaysOn,
    AlwaysOff,
    /// A fraction of traces, by trace id as the OpenTelemetry SDK's
    /// `TraceIdRatioBased` (a random draw for traces started here).
    Ratio(f64),
}

impl Rule {
    fn samples(self, trace_id: Option<opentelemetry::trace::TraceId>) -> bool {
        match self {
            Self::AlwaysOn => true,
            Self::AlwaysOff => false,
            Self::Ratio(ratio) if ratio >= 1.0 => true,
            Self::Ratio(ratio) => {
                let bound = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
                let low = match trace_id {
                    Some(id) => {
                        let bytes = id.to_bytes();
                        let mut low = [0u8; 8];
                        low.copy_from_slice(&bytes[8..]);
                        u64::from_be_bytes(low)
                    }
                    None => rand::random::<u64>(),
                };
                (low >> 1) < bound
            }
        }
    }
}

/// How calls are sampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    rule: Rule,
    /// A caller's sampled flag decides when its `traceparent` is given.
    parent_based: bool,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            rule: Rule::AlwaysOn,
            parent_based: true,
        }
    }
}

/// The sampler names `from_env` knows.
const KNOWN: &str = "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio";

impl Sampling {
    /// The sampling of `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`
    /// (given as values so tests need not set the environment). An
    /// unknown sampler or a ratio outside 0..=1 is an error: a typo must
    /// not silently trace everything or nothing.
    pub fn from_values(sampler: Option<&str>, arg: Option<&str>) -> Result<Self, String> {
        let ratio = || -> Result<f64, String> {
            match arg.map(str::trim).filter(|a| !a.is_empty()) {
                None => Ok(1.0),
                Some(text) => text
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        format!("OTEL_TRACES_SAMPLER_ARG={text:?}: give a ratio from 0 to 1")
                    }),
            }
        };
        let name = sampler.map(str::trim).unwrap_or("").to_ascii_lowercase();
        let (parent_based, rule) = match name.as_str() {
            "" | "parentbased_always_on" => (true, Rule::AlwaysOn),
            "parentbased_always_off" => (true, Rule::AlwaysOff),
            "parentbased_traceidratio" => (true, Rule::Ratio(ratio()?)),
            "always_on" => (false, Rule::AlwaysOn),
            "always_off" => (false, Rule::AlwaysOff),
            "traceidratio" => (false, Rule::Ratio(ratio()?)),
            other => {
                return Err(format!(
                    "OTEL_TRACES_SAMPLER={other:?} is not supported: give one of {KNOWN}"
                ));
            }
        };
        Ok(Self { rule, parent_based })
    }

    /// The sampling the environment asks for.
    pub fn from_env() -> Result<Self, String> {
        let var = |name| std::env::var(name).ok();
        Self::from_values(
            var("OTEL_TRACES_SAMPLER").as_deref(),
            var("OTEL_TRACES_SAMPLER_ARG").as_deref(),
        )
    }

    /// Whether a call is traced, given its caller's span context if the
    /// call carried a valid `traceparent`.
    pub fn samples(&self, parent: Option<&SpanContext>) -> bool {
        match parent {
            Some(parent) if self.parent_based => parent.is_sampled(),
            Some(parent) => self.rule.samples(Some(parent.trace_id())),
            None => self.rule.samples(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    fn parent(sampled: bool, trace_id: u128) -> SpanContext {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        SpanContext::new(
            TraceId::from(trace_id),
            SpanId::from(1),
            flags,
            true,
            TraceState::default(),
        )
    }

    #[test]
    fn the_default_follows_the_caller_and_samples_new_traces() {
        let sampling = Sampling::from_values(None, None).expect("default");
        assert!(sampling.samples(None));
        assert!(sampling.samples(Some(&parent(true, 7))));
        assert!(!sampling.samples(Some(&parent(false, 7))));
    }

    #[test]
    fn each_sampler_decides_as_the_specification_says() {
        let on = Sampling::from_values(Some("always_on"), None).expect("on");
        assert!(on.samples(Some(&parent(false, 7))), "not parent-based");
        let off = Sampling::from_values(Some("parentbased_always_off"), None).expect("off");
        assert!(!off.samples(None));
        assert!(off.samples(Some(&parent(true, 7))));
        let none = Sampling::from_values(Some("always_off"), None).expect("none");
        assert!(!none.samples(Some(&parent(true, 7))));
    }

    #[test]
    fn a_ratio_samples_about_that_fraction_and_decides_by_trace_id() {
        let tenth = Sampling::from_values(Some("traceidratio"), Some("0.1")).expect("ratio");
        let sampled = (0..20_000).filter(|_| tenth.samples(None)).count();
        assert!((1_500..2_500).contains(&sampled), "{sampled} of 20,000");
        // As the SDK: the low 63 bits of the trace id against ratio * 2^63.
        assert!(tenth.samples(Some(&parent(false, 0))));
        assert!(!tenth.samples(Some(&parent(true, u128::MAX))));
        let follows = Sampling::from_values(Some("parentbased_traceidratio"), Some("0"))
            .expect("parent-based ratio");
        assert!(follows.samples(Some(&parent(true, u128::MAX))));
        assert!(!follows.samples(None));
    }

    #[test]
    fn unknown_samplers_and_bad_ratios_are_refused() {
        for (sampler, arg) in [
            (Some("jaeger_remote"), None),
            (Some("traceidratio"), Some("1.5")),
            (Some("traceidratio"), Some("a lot")),
            (Some("parentbased_traceidratio"), Some("-0.1")),
        ] {
            let error = Sampling::from_values(sampler, arg).expect_err("refused");
            assert!(error.starts_with("OTEL_TRACES_SAMPLER"), "{error}");
        }
    }
}
