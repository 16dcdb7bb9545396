//! How the launcher writes one reading in a compact line: its value, or `?` when the probe could not read
//! it (the details and the structured result say why).

use std::fmt::Display;

use gpu_diag::facts::Reading;

/// The value read, or `?`.
pub fn value_or_unknown<T: Display>(r: &Reading<T>) -> String {
    r.ok().map_or_else(|| "?".to_string(), T::to_string)
}

/// `on`, `off`, or `?` when unread.
pub fn on_off(state: Option<bool>) -> &'static str {
    match state {
        Some(true) => "on",
        Some(false) => "off",
        None => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_diag::facts::{FieldError, FieldErrorKind};

    #[test]
    fn an_unread_value_is_a_question_mark() {
        assert_eq!(value_or_unknown(&Reading::Ok(81559u64)), "81559");
        let lost: Reading<u64> = Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost));
        assert_eq!(value_or_unknown(&lost), "?");
        assert_eq!(on_off(Some(true)), "on");
        assert_eq!(on_off(None), "?");
    }
}
