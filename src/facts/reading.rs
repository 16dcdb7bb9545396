//! A reading and its inline failure: every fact that can fail is a [`Reading`], the value or the
//! [`FieldError`] that says why there is none, so one field that fails never fails the whole document.

use serde::{Deserialize, Serialize};

/// Why one field could not be read. Reported inline; it never fails the whole document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldErrorKind {
    /// The GPU or driver does not support this query (NVML_ERROR_NOT_SUPPORTED).
    NotSupported,
    /// Insufficient privileges (NVML_ERROR_NO_PERMISSION, EACCES).
    NoPermission,
    /// The GPU stopped answering (NVML_ERROR_GPU_IS_LOST): treat as off the bus.
    GpuIsLost,
    /// The driver's NVML lacks the symbol or field (older driver).
    FunctionNotFound,
    /// A file or entry that should exist does not.
    NotFound,
    /// The query timed out.
    Timeout,
    /// The collector did not gather this field for the command that ran.
    NotCollected,
    /// Any other failure; `message` says what.
    Unknown,
}

/// An inline per-field failure: `{"error": "not_supported"}` or `{"error": "unknown", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldError {
    pub error: FieldErrorKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl FieldError {
    pub fn new(error: FieldErrorKind) -> Self {
        Self {
            error,
            message: None,
        }
    }
    pub fn with_message(error: FieldErrorKind, message: impl Into<String>) -> Self {
        Self {
            error,
            message: Some(message.into()),
        }
    }
}

/// One reading: the value, or why there is none. Serialized untagged, so a scenario file writes plain
/// values (`"temperature_c": 41`) and only failures need the `{"error": ..}` form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Reading<T> {
    // Err first: a FieldError denies unknown fields, so a plain value never deserializes as one.
    Err(FieldError),
    Ok(T),
}

impl<T> Default for Reading<T> {
    fn default() -> Self {
        Reading::Err(FieldError::new(FieldErrorKind::NotCollected))
    }
}

impl<T> Reading<T> {
    pub fn ok(&self) -> Option<&T> {
        match self {
            Reading::Ok(v) => Some(v),
            Reading::Err(_) => None,
        }
    }
    pub fn err(&self) -> Option<&FieldError> {
        match self {
            Reading::Ok(_) => None,
            Reading::Err(e) => Some(e),
        }
    }
    pub fn is_ok(&self) -> bool {
        matches!(self, Reading::Ok(_))
    }
    pub fn map<U>(&self, f: impl FnOnce(&T) -> U) -> Reading<U> {
        match self {
            Reading::Ok(v) => Reading::Ok(f(v)),
            Reading::Err(e) => Reading::Err(e.clone()),
        }
    }
    pub fn not_supported() -> Self {
        Reading::Err(FieldError::new(FieldErrorKind::NotSupported))
    }
    /// True for the default "the collector did not gather this" state (lets optional sections stay
    /// out of serialized facts).
    pub fn is_not_collected(&self) -> bool {
        matches!(self, Reading::Err(e) if e.error == FieldErrorKind::NotCollected && e.message.is_none())
    }
}

impl<T: Copy> Reading<T> {
    pub fn get(&self) -> Option<T> {
        self.ok().copied()
    }
}

impl<T> From<Result<T, FieldError>> for Reading<T> {
    fn from(r: Result<T, FieldError>) -> Self {
        match r {
            Ok(v) => Reading::Ok(v),
            Err(e) => Reading::Err(e),
        }
    }
}
