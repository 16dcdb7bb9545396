//! The `details:` part of a text answer: a report's fields as wrapped `name=value` lines in name order,
//! its nested parts and lists indented below. Typed renderers build [`Fields`] from report types
//! ([`super::gpus`] for inventory and processes); the reports without one are walked from their JSON
//! ([`from_json`]); both are written by [`write`], so they look alike.

use std::fmt::{Display, Write};

use gpu_diag::facts::{FieldError, Reading};
use serde_json::Value;

/// Entries of a list written (the rest are counted).
const MAX_ITEMS: usize = 64;
/// Values of a list of plain values written on its one line (the rest are counted).
const MAX_SCALARS: usize = 32;
/// Width at which a line of `name=value` pairs wraps.
const LINE: usize = 110;

/// One value of the details.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A plain value, a list of plain values (`[a, b]`) or a reading that failed (`<not_supported>`):
    /// written as `name=value`.
    Text(String),
    /// A nested part, written under `name:`.
    Fields(Fields),
    /// A list of parts, one bullet each.
    List(Vec<Entry>),
    /// Nothing to write (JSON `null`).
    Nothing,
}

impl Entry {
    /// A reading whose value has parts of its own: its entry, or why it was not read.
    pub fn of_reading<T>(r: &Reading<T>, entry: impl FnOnce(&T) -> Entry) -> Entry {
        match r {
            Reading::Ok(v) => entry(v),
            Reading::Err(e) => Entry::Text(failed(e)),
        }
    }

    /// Left out of its part: nothing in it.
    fn is_empty(&self) -> bool {
        match self {
            Entry::Text(_) => false,
            Entry::Fields(f) => f.0.iter().all(|(_, e)| e.is_empty()),
            Entry::List(l) => l.is_empty(),
            Entry::Nothing => true,
        }
    }
}

/// The named values of one part of a report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Vec<(String, Entry)>);

impl Fields {
    pub fn entry(&mut self, name: &str, e: Entry) -> &mut Self {
        self.0.push((name.to_string(), e));
        self
    }

    pub fn text(&mut self, name: &str, v: impl Display) -> &mut Self {
        self.entry(name, Entry::Text(v.to_string()))
    }

    /// A value that may be absent (left out then).
    pub fn optional(&mut self, name: &str, v: Option<impl Display>) -> &mut Self {
        match v {
            Some(v) => self.text(name, v),
            None => self,
        }
    }

    /// A reading: its value, or why it has none.
    pub fn reading(&mut self, name: &str, r: &Reading<impl Display>) -> &mut Self {
        self.entry(name, Entry::of_reading(r, |v| Entry::Text(v.to_string())))
    }

    /// A reading of a fraction, written as its JSON number is (`88.0`, not `88`).
    pub fn decimal(&mut self, name: &str, r: &Reading<f64>) -> &mut Self {
        let e = Entry::of_reading(r, |v| {
            // JSON has no NaN or infinity: serde writes them as null, which is left out.
            serde_json::Number::from_f64(*v).map_or(Entry::Nothing, |n| Entry::Text(n.to_string()))
        });
        self.entry(name, e)
    }

    /// A reading of several plain values, on one line: `[a, b]` (left out when there are none).
    pub fn values<T: Display>(&mut self, name: &str, r: &Reading<Vec<T>>) -> &mut Self {
        let e = Entry::of_reading(r, |vs| {
            if vs.is_empty() {
                Entry::List(Vec::new())
            } else {
                Entry::Text(plain_list(vs.iter().map(T::to_string), vs.len()))
            }
        });
        self.entry(name, e)
    }

    pub fn nested(&mut self, name: &str, f: Fields) -> &mut Self {
        self.entry(name, Entry::Fields(f))
    }

    pub fn list(&mut self, name: &str, parts: impl IntoIterator<Item = Fields>) -> &mut Self {
        self.entry(
            name,
            Entry::List(parts.into_iter().map(Entry::Fields).collect()),
        )
    }
}

/// A field that failed to read: `<not_supported>`, `<unknown: message>`.
pub fn failed(e: &FieldError) -> String {
    failed_text(&serde_name(&e.error), e.message.as_deref())
}

/// A unit enum's name as the contract spells it (`gpu_is_lost`, `reset_gpu`): serde knows it.
pub fn serde_name(v: &impl serde::Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// The first [`MAX_SCALARS`] of `total` plain values, `[a, b, … n more]`.
fn plain_list(values: impl Iterator<Item = String>, total: usize) -> String {
    let items: Vec<String> = values.take(MAX_SCALARS).collect();
    let more = if total > MAX_SCALARS {
        format!(", … {} more", total - MAX_SCALARS)
    } else {
        String::new()
    };
    format!("[{}{more}]", items.join(", "))
}

fn failed_text(kind: &str, message: Option<&str>) -> String {
    match message {
        Some(m) => format!("<{kind}: {m}>"),
        None => format!("<{kind}>"),
    }
}

/// `fields` at `indent` (two spaces a level): the plain values on wrapped lines, then each nested part and
/// list under its name, all in name order.
pub fn write(fields: &Fields, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    let mut shown: Vec<&(String, Entry)> = fields.0.iter().filter(|(_, e)| !e.is_empty()).collect();
    shown.sort_by(|a, b| a.0.cmp(&b.0));
    let mut line = String::new();
    for (name, e) in &shown {
        if let Entry::Text(s) = e {
            let item = format!("{name}={s}");
            if !line.is_empty() && pad.len() + line.len() + item.len() + 2 > LINE {
                let _ = writeln!(out, "{pad}{line}");
                line.clear();
            }
            if !line.is_empty() {
                line.push_str(", ");
            }
            line.push_str(&item);
        }
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{pad}{line}");
    }
    for (name, e) in shown {
        if matches!(e, Entry::Text(_)) {
            continue;
        }
        let _ = writeln!(out, "{pad}{name}:");
        write_entry(e, indent + 1, out);
    }
}

/// `e` at `indent`: a part as [`write`] writes it, a list as bullets, a plain value on its line.
pub fn write_entry(e: &Entry, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    match e {
        Entry::Text(s) => {
            let _ = writeln!(out, "{pad}{s}");
        }
        Entry::Fields(f) => write(f, indent, out),
        Entry::List(items) => {
            for x in items.iter().take(MAX_ITEMS) {
                if let Entry::Text(s) = x {
                    let _ = writeln!(out, "{pad}- {s}");
                    continue;
                }
                let mut inner = String::new();
                write_entry(x, indent + 1, &mut inner);
                // Each entry's first line goes on its bullet.
                let trimmed = inner.trim_start_matches(' ');
                if !trimmed.is_empty() {
                    let _ = write!(out, "{pad}- {trimmed}");
                }
            }
            if items.len() > MAX_ITEMS {
                let _ = writeln!(out, "{pad}… {} more", items.len() - MAX_ITEMS);
            }
        }
        Entry::Nothing => {}
    }
}

/// The details of a report that has no typed renderer, from its JSON.
pub fn from_json(v: &Value) -> Entry {
    if let Some(s) = scalar(v) {
        return Entry::Text(s);
    }
    match v {
        Value::Object(m) => Entry::Fields(Fields(
            m.iter().map(|(k, x)| (k.clone(), from_json(x))).collect(),
        )),
        Value::Array(a) => Entry::List(a.iter().map(from_json).collect()),
        _ => Entry::Nothing,
    }
}

/// A plain value, a non-empty list of them, or a failed reading, as written after `name=`.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(a) if a.iter().all(|x| scalar(x).is_some()) && !a.is_empty() => {
            Some(plain_list(a.iter().filter_map(scalar), a.len()))
        }
        Value::Object(o) => {
            // Read leniently: a newer probe's error kind is still shown.
            let kind = o.get("error")?.as_str()?;
            o.keys()
                .all(|k| k == "error" || k == "message")
                .then(|| failed_text(kind, o.get("message").and_then(Value::as_str)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn written(e: &Entry) -> String {
        let mut out = String::new();
        write_entry(e, 0, &mut out);
        out
    }

    #[test]
    fn json_details_are_compact_and_show_reading_errors() {
        let v = json!({"gpus": [
            {"index": 0, "name": "H100", "temperature_c": 41, "ecc": {"error": "not_supported"}},
            {"index": 1, "name": "H100", "temperature_c": {"error": "gpu_is_lost"}, "nvlink": [{"link": 0, "state": "up"}]}
        ], "empty": [], "none": null});
        assert_eq!(
            written(&from_json(&v)),
            "gpus:\n  - ecc=<not_supported>, index=0, name=H100, temperature_c=41\n  - index=1, name=H100, temperature_c=<gpu_is_lost>\n    nvlink:\n      - link=0, state=up\n"
        );
    }

    /// What no report of today holds, written as the JSON walk always wrote it (pinned from its last
    /// version before the typed renderers): long lines wrap, long lists are cut and counted, lists in
    /// lists, nulls, empty parts, errors with a message or of an unknown kind, a list of empty parts
    /// (its name stays), plain values among parts.
    #[test]
    fn json_details_edge_cases_keep_their_layout() {
        let parts: Vec<Value> = (0..66).map(|i| json!({"i": i})).collect();
        let v = json!({
            "a": "x".repeat(60), "b": "y".repeat(60), "c": (0..40).collect::<Vec<u32>>(),
            "err": {"error": "unknown", "message": "boom"}, "newer": {"error": "from_the_future"},
            "not_err": {"error": "x", "extra": 1},
            "nested": [[1, 2], [{"k": "v"}], null, {}], "hollow": [{}], "nothing": {"a": null, "b": []},
            "plain": [" padded", ""], "parts": parts, "mixed": [" padded", {"k": 1}, ""],
        });
        let numbers: Vec<String> = (0..32).map(|i| i.to_string()).collect();
        let items: String = (0..64).map(|i| format!("  - i={i}\n")).collect();
        let expected = format!(
            "a={}\nb={}\nc=[{}, … 8 more]\nerr=<unknown: boom>, newer=<from_the_future>, plain=[ padded, ]\n\
             hollow:\nmixed:\n  -  padded\n  - k=1\n  - \nnested:\n  - [1, 2]\n  - - k=v\n\
             not_err:\n  error=x, extra=1\nparts:\n{items}  … 2 more\n",
            "x".repeat(60),
            "y".repeat(60),
            numbers.join(", ")
        );
        assert_eq!(written(&from_json(&v)), expected);
    }

    #[test]
    fn typed_fields_write_as_their_json_would() {
        let mut gpu = Fields::default();
        gpu.text("index", 3)
            .reading("name", &Reading::Ok("H100".to_string()))
            .reading(
                "memory_total_mib",
                &Reading::<u64>::Err(FieldError::with_message(
                    gpu_diag::facts::FieldErrorKind::Unknown,
                    "boom",
                )),
            )
            .optional("pod_uid", None::<String>)
            .list("mig_devices", []);
        let mut f = Fields::default();
        f.list("gpus", [gpu]);
        let json = json!({"gpus": [{"index": 3, "name": "H100", "mig_devices": [],
            "memory_total_mib": {"error": "unknown", "message": "boom"}}]});
        assert_eq!(written(&Entry::Fields(f)), written(&from_json(&json)));
    }
}
