//! Options that change interpretation, apart from the commands that pass them so every analysis can
//! import them without importing the dispatch above it.

/// Options that change interpretation, passed through from the probe's command line.
#[derive(Debug, Clone, Default)]
pub struct AnalysisOptions {
    /// `--expect-gpus N`: report "GPU missing" when fewer answer.
    pub expect_gpus: Option<u32>,
    /// `--since`: only kernel-log events at or after this unix time count.
    pub since_unix: Option<f64>,
}
