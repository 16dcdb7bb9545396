//! A reading and its inline failure: every fact that can fail is a [`Reading`], the value or the
//! [`FieldError`] that says why there is none, so one field that fails never fails the whole document.

use serde::de::IntoDeserializer;
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
// Deserialize is written by hand below: serde's derived untagged form buffers every value and formats
// a "not a FieldError" message for each plain one before trying T, most of a scenario's parse time.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Reading<T> {
    Err(FieldError),
    Ok(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Reading<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ReadingVisitor(std::marker::PhantomData))
    }
}

/// Sends a scalar or a sequence straight to `T` (a [`FieldError`] is always an object); an object is
/// a [`FieldError`] only when it has `error` and no key a FieldError lacks, as the untagged form read it.
struct ReadingVisitor<T>(std::marker::PhantomData<T>);

impl<T> ReadingVisitor<T> {
    fn value<'de, D>(d: D) -> Result<Reading<T>, D::Error>
    where
        T: Deserialize<'de>,
        D: serde::Deserializer<'de>,
    {
        T::deserialize(d).map(Reading::Ok)
    }
}

impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for ReadingVisitor<T> {
    type Value = Reading<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a value or an inline error ({\"error\": ...})")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Self::value(v.into_deserializer())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Self::value(v.into_deserializer())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Self::value(v.into_deserializer())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Self::value(v.into_deserializer())
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Self::value(serde::de::value::StrDeserializer::new(v))
    }
    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Self::value(serde::de::value::BorrowedStrDeserializer::new(v))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Self::value(v.into_deserializer())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Self::value(().into_deserializer())
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Self::value(().into_deserializer())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Self::value(serde::de::value::SeqAccessDeserializer::new(seq))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error;
        let value =
            serde_json::Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        let object = value.as_object();
        let error_shaped = object.is_some_and(|o| {
            o.contains_key("error") && o.keys().all(|k| k == "error" || k == "message")
        });
        if error_shaped && let Ok(e) = FieldError::deserialize(&value) {
            return Ok(Reading::Err(e));
        }
        T::deserialize(value)
            .map(Reading::Ok)
            .map_err(A::Error::custom)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<Reading<T>, String> {
        // Both paths a document takes: parsed from text (the scenario files) and from a Value (the
        // launcher's parse of the probe's document).
        let from_text =
            serde_json::from_str::<Reading<T>>(&v.to_string()).map_err(|e| e.to_string());
        let from_value = serde_json::from_value::<Reading<T>>(v).map_err(|e| e.to_string());
        assert_eq!(from_text.is_ok(), from_value.is_ok());
        from_text
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Pair {
        a: u32,
        #[serde(default)]
        error: Option<String>,
    }

    #[test]
    fn plain_values_and_inline_errors_read_as_the_untagged_form_did() {
        assert_eq!(read::<u32>(json!(41)).unwrap(), Reading::Ok(41));
        assert_eq!(read::<f64>(json!(41)).unwrap(), Reading::Ok(41.0));
        assert_eq!(read::<i64>(json!(-3)).unwrap(), Reading::Ok(-3));
        assert_eq!(read::<bool>(json!(true)).unwrap(), Reading::Ok(true));
        assert_eq!(
            read::<String>(json!("x")).unwrap(),
            Reading::Ok("x".to_string())
        );
        assert_eq!(
            read::<Vec<u32>>(json!([1, 2])).unwrap(),
            Reading::Ok(vec![1, 2])
        );
        assert_eq!(read::<Option<u32>>(json!(null)).unwrap(), Reading::Ok(None));
        assert_eq!(
            read::<u32>(json!({"error": "not_supported"})).unwrap(),
            Reading::Err(FieldError::new(FieldErrorKind::NotSupported))
        );
        assert_eq!(
            read::<String>(json!({"error": "unknown", "message": "m"})).unwrap(),
            Reading::Err(FieldError::with_message(FieldErrorKind::Unknown, "m"))
        );
        // An object with other keys is the value, even with an `error` key of its own.
        assert_eq!(
            read::<Pair>(json!({"a": 1, "error": "e"})).unwrap(),
            Reading::Ok(Pair {
                a: 1,
                error: Some("e".into())
            })
        );
        // `error` shaped but not a FieldError: tried as the value, as before.
        assert_eq!(
            read::<std::collections::BTreeMap<String, String>>(json!({"error": "no such kind"}))
                .unwrap(),
            Reading::Ok([("error".to_string(), "no such kind".to_string())].into())
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_a_clear_error() {
        let e = read::<u32>(json!("41")).unwrap_err();
        assert!(
            e.contains("invalid type: string \"41\", expected u32"),
            "{e}"
        );
        let e = read::<u32>(json!(-1)).unwrap_err();
        assert!(e.contains("invalid value"), "{e}");
        assert!(read::<u32>(json!({"error": "not_supported", "extra": 1})).is_err());
        assert!(read::<String>(json!([1])).is_err());
    }
}
