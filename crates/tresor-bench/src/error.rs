//! Why a load run could not be measured.

/// A load run that failed as a whole (a failed call is counted, not an
/// error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The latency histogram refused its bounds or a merge.
    #[error("latency histogram: {0}")]
    Histogram(String),
    /// The target has no connection to send load on.
    #[error("no connection to send load on")]
    NoConnection,
    /// A load worker panicked or was cancelled.
    #[error("a load worker failed: {0}")]
    Worker(String),
}
