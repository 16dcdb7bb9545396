//! Tool schemas as clients get them.

use std::sync::Arc;

use serde_json::{Map, Value};

/// How many levels of objects an output schema states: the answer's own fields, and the fields of its main
/// content ([`MAIN_FIELDS`]: a node tool's `report`, a workload's `diagnosis`), whose
/// verdicts and lists a client most often reads. Deeper objects, and the envelope's (the probe run), are
/// stated as their JSON type only: what a client validates is the answer's shape, and the whole answer is
/// what `docs/tools.md` and the text say. Stating every level cost 293 KB of `tools/list`, two levels 30 KB;
/// this, about 11 KB (issue 93). The answers' full shape is pinned by the golden results
/// (tests/launcher/golden.rs).
pub const OUTPUT_DEPTH: usize = 1;

/// The answer fields stated one level deeper than [`OUTPUT_DEPTH`]: the main content of the answer.
const MAIN_FIELDS: &[&str] = &["report", "diagnosis"];

/// Output schema of a tool: schemars' serialize schema, for validation. Without descriptions, titles and
/// defaults (several clients drop output schemas before the model sees them, and the text beside each result
/// says what it holds), without
/// schemars' Rust-only `format`s (`uint32`, `double`, ...) that validators in clients (ajv) warn about, and
/// stated [`OUTPUT_DEPTH`] levels deep, each shared type once in `$defs` and referenced.
pub fn output_schema<T: schemars::JsonSchema + 'static>() -> Arc<rmcp::model::JsonObject> {
    let mut v = Value::Object(
        rmcp::handler::server::tool::schema_for_output::<T>()
            .as_ref()
            .clone(),
    );
    walk(&mut v, &|o| {
        drop_rust_format(o);
        for k in ["description", "title", "default"] {
            o.remove(k);
        }
        // An unsigned Rust integer says nothing a result could break.
        if o.get("minimum") == Some(&Value::from(0)) {
            o.remove("minimum");
        }
    });
    let mut v = cut_depth(v, OUTPUT_DEPTH);
    walk(&mut v, &|o| {
        // What the cut left of a deeper object, said in fewer bytes: an array of objects is an array, an
        // object or null one type list.
        if o.get("type") == Some(&Value::from("array"))
            && o.get("items") == Some(&serde_json::json!({"type": "object"}))
        {
            o.remove("items");
        }
        if let Some(t) = nullable_type(o) {
            o.remove("anyOf");
            o.insert("type".into(), serde_json::json!([t, "null"]));
        }
    });
    into_object(v)
}

/// `T` where `o` is `anyOf: [{"type": T}, {"type": "null"}]`.
fn nullable_type(o: &Map<String, Value>) -> Option<String> {
    let null = serde_json::json!({"type": "null"});
    let Some(Value::Array(alts)) = o.get("anyOf") else {
        return None;
    };
    let [a, b] = alts.as_slice() else {
        return None;
    };
    let other = match (a == &null, b == &null) {
        (true, false) => b,
        (false, true) => a,
        _ => return None,
    };
    let other = other.as_object().filter(|x| x.len() == 1)?;
    other.get("type")?.as_str().map(String::from)
}

/// Input schema of a tool, as a model reads it: no `$schema` (2020-12 is MCP's default dialect), no
/// `"default": null` (an omitted argument says as much), an enumeration of strings as `enum` (each value's
/// meaning is in the argument's description), no Rust-only `format`s.
pub fn input_schema<T: schemars::JsonSchema + 'static>() -> Arc<rmcp::model::JsonObject> {
    let mut v = Value::Object(
        rmcp::handler::server::common::schema_for_input::<T>()
            .unwrap_or_else(|e| panic!("input schema of {}: {e}", std::any::type_name::<T>()))
            .as_ref()
            .clone(),
    );
    if let Value::Object(o) = &mut v {
        o.remove("$schema");
    }
    walk(&mut v, &|o| {
        drop_rust_format(o);
        if o.get("default") == Some(&Value::Null) {
            o.remove("default");
        }
        string_enum(o);
    });
    into_object(v)
}

fn into_object(v: Value) -> Arc<rmcp::model::JsonObject> {
    match v {
        Value::Object(o) => Arc::new(o),
        _ => unreachable!("a tool schema is an object"),
    }
}

/// `f` on every schema object in `v`. The keys of `properties` and `$defs` are names, not keywords: `f`
/// sees their schemas, never the name maps themselves.
fn walk(v: &mut Value, f: &dyn Fn(&mut Map<String, Value>)) {
    match v {
        Value::Object(o) => {
            f(o);
            for (k, x) in o.iter_mut() {
                match (k.as_str(), x) {
                    ("properties" | "$defs", Value::Object(names)) => {
                        names.values_mut().for_each(|s| walk(s, f))
                    }
                    (_, x) => walk(x, f),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| walk(x, f)),
        _ => {}
    }
}

fn drop_rust_format(o: &mut Map<String, Value>) {
    if let Some(Value::String(f)) = o.get("format")
        && matches!(
            f.as_str(),
            "uint"
                | "uint8"
                | "uint16"
                | "uint32"
                | "uint64"
                | "int"
                | "int8"
                | "int16"
                | "int32"
                | "int64"
                | "float"
                | "double"
        )
    {
        o.remove("format");
    }
}

/// schemars' `oneOf` of string constants (a documented Rust enum) as one `enum`.
fn string_enum(o: &mut Map<String, Value>) {
    let Some(Value::Array(alts)) = o.get("oneOf") else {
        return;
    };
    let consts: Option<Vec<Value>> = alts
        .iter()
        .map(|a| match (a.get("const"), a.get("type")) {
            (Some(c @ Value::String(_)), Some(t)) if t == "string" => Some(c.clone()),
            _ => None,
        })
        .collect();
    if let Some(values) = consts {
        o.remove("oneOf");
        o.insert("type".into(), "string".into());
        o.insert("enum".into(), Value::Array(values));
    }
}

/// Whether a schema states object fields anywhere inside it (not counting `$defs`).
fn has_fields(v: &Value) -> bool {
    match v {
        Value::Object(o) => {
            o.contains_key("properties") || o.iter().any(|(k, x)| k != "$defs" && has_fields(x))
        }
        Value::Array(a) => a.iter().any(has_fields),
        _ => false,
    }
}

/// What stands for an object below the stated depth: its JSON type, or anything where it has none.
fn stub(v: &Value) -> Value {
    match v.get("type") {
        Some(t) => serde_json::json!({ "type": t }),
        None => serde_json::json!({}),
    }
}

/// `schema` stated `depth` levels of object fields deep; each `$defs` entry still used is kept once, at the
/// shallowest level it is used.
fn cut_depth(schema: Value, depth: usize) -> Value {
    let Value::Object(mut root) = schema else {
        return schema;
    };
    let defs = match root.remove("$defs") {
        Some(Value::Object(d)) => d,
        _ => Map::new(),
    };
    let mut used: std::collections::BTreeMap<String, usize> = Default::default();
    let root = cut(Value::Object(root), 0, depth, &defs, &mut used, true);
    // A kept definition may refer to others: state each at the shallowest level any reference reaches it.
    let mut kept = Map::new();
    let mut done: std::collections::BTreeMap<String, usize> = Default::default();
    while let Some((name, level)) = used
        .iter()
        .find(|(n, l)| done.get(*n).is_none_or(|d| d > l))
        .map(|(n, l)| (n.clone(), *l))
    {
        done.insert(name.clone(), level);
        let body = cut(defs[&name].clone(), level, depth, &defs, &mut used, false);
        kept.insert(name, body);
    }
    let mut root = root;
    if !kept.is_empty()
        && let Value::Object(o) = &mut root
    {
        o.insert("$defs".into(), Value::Object(kept));
    }
    root
}

/// `top`: `v` is the answer itself (its [`MAIN_FIELDS`] count as the answer).
fn cut(
    v: Value,
    level: usize,
    depth: usize,
    defs: &Map<String, Value>,
    used: &mut std::collections::BTreeMap<String, usize>,
    top: bool,
) -> Value {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
                && let Some(def) = defs.get(name)
            {
                if level >= depth && has_fields(def) {
                    return stub(def);
                }
                let l = used.entry(name.to_string()).or_insert(level);
                *l = (*l).min(level);
                return Value::Object(o);
            }
            if level >= depth && o.contains_key("properties") {
                return stub(&Value::Object(o));
            }
            let out = o
                .into_iter()
                .map(|(k, x)| {
                    let x = match (k.as_str(), x) {
                        ("properties", Value::Object(names)) => Value::Object(
                            names
                                .into_iter()
                                .map(|(n, s)| {
                                    // The answer's main content counts as the answer itself.
                                    let main = top && MAIN_FIELDS.contains(&n.as_str());
                                    let next = if main { level } else { level + 1 };
                                    (n, cut(s, next, depth, defs, used, false))
                                })
                                .collect(),
                        ),
                        (_, x) => cut(x, level, depth, defs, used, false),
                    };
                    (k, x)
                })
                .collect();
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|x| cut(x, level, depth, defs, used, false))
                .collect(),
        ),
        v => v,
    }
}

/// Check the string arguments in `args` against the limits `schema` (a tool's input schema) advertises
/// for its top-level properties: `minLength`/`maxLength` (in characters, as JSON Schema counts), no
/// control characters, and the arguments whose name has one meaning in every tool: `namespace` (a
/// Kubernetes namespace name) and `label_selector` (selector syntax only). Types, required and unknown
/// fields are serde's to refuse; numbers cannot inject anything and each tool judges their range itself
/// (an operator tool audits a refused pid, for example).
pub fn check_args(
    schema: &rmcp::model::JsonObject,
    args: &rmcp::model::JsonObject,
) -> Result<(), String> {
    use serde_json::Value;
    let props = schema.get("properties").and_then(Value::as_object);
    for (k, v) in args {
        let p = props.and_then(|p| p.get(k)).and_then(Value::as_object);
        let num = |key: &str| p.and_then(|p| p.get(key)).and_then(Value::as_f64);
        let Value::String(s) = v else {
            continue;
        };
        let n = s.chars().count();
        if let Some(max) = num("maxLength")
            && n as f64 > max
        {
            return Err(format!(
                "`{k}` is {n} characters long; it takes at most {max} characters"
            ));
        }
        if let Some(min) = num("minLength")
            && (n as f64) < min
        {
            return Err(format!("`{k}` is empty; give a value or leave `{k}` out"));
        }
        if s.chars().any(char::is_control) {
            return Err(format!(
                "`{k}` contains a control character (newline, tab, NUL, ...); give it on one \
                 line as plain text"
            ));
        }
        match k.as_str() {
            "namespace" => super::target::check_dns_label(k, s)?,
            "label_selector" => check_selector(s)?,
            _ => {}
        }
    }
    Ok(())
}

/// What the schema cannot say of a free-text argument the launcher stores on a node (a mark's verdict, why
/// it was cleared): that it holds a word. Its length and control characters are [`check_args`]'s, done on
/// every call before the tool runs.
pub fn check_not_blank(name: &str, s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err(format!("`{name}` is blank; say it in words, on one line"));
    }
    Ok(())
}

/// Longest label selector an argument takes, in characters: a few terms of the longest keys (253 + 63
/// characters) and values (63).
pub const MAX_LABEL_SELECTOR_LEN: usize = 1024;

/// A label selector holds label keys and values (`[A-Za-z0-9._/-]`), the operators `=`, `==`, `!=`,
/// `in`, `notin`, `!`, commas, parentheses and spaces: nothing else can be part of a valid one, so
/// anything else (quotes, `;`, `$`, `&`, `?`, `#`, `%`) is refused here with a clear error.
pub fn check_selector(s: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "._/-=!,() ".contains(c);
    match s.chars().find(|c| !ok(*c)) {
        None => Ok(()),
        Some(c) => Err(format!(
            "`label_selector` contains `{}`, which no label selector holds; use `key=value`, \
             `key!=value`, `key in (a,b)`, `key`, `!key`, joined with commas",
            c.escape_default()
        )),
    }
}

/// Longest quoted value (between backticks or double quotes) kept in an error message.
const QUOTED_MAX: usize = 120;
/// Longest error message returned to the client.
const MESSAGE_MAX: usize = 4096;

/// An error message that stays short whatever the caller sent: serde and our own checks quote the
/// offending value, which may be a megabyte of prompt-injected text. Quoted values are cut to
/// [`QUOTED_MAX`] characters and the whole message to [`MESSAGE_MAX`] bytes.
pub fn bounded_message(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(MESSAGE_MAX));
    let mut chars = msg.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '`' || c == '"' {
            let mut kept = 0usize;
            let mut cut = false;
            for d in chars.by_ref() {
                if d == c {
                    break;
                }
                if kept < QUOTED_MAX {
                    out.push(d);
                    kept += 1;
                } else {
                    cut = true;
                }
            }
            if cut {
                out.push('…');
            }
            out.push(c);
        }
        if out.len() > MESSAGE_MAX {
            break;
        }
    }
    if out.len() > MESSAGE_MAX {
        let mut end = MESSAGE_MAX;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> rmcp::model::JsonObject {
        match v {
            serde_json::Value::Object(o) => o,
            _ => unreachable!(),
        }
    }

    #[test]
    fn advertised_limits_are_enforced() {
        let schema = obj(json!({"properties": {
            "reason": {"type": "string", "minLength": 1, "maxLength": 5},
            "namespace": {"type": "string"},
            "label_selector": {"type": "string"}
        }}));
        let check = |v| check_args(&schema, &obj(v));
        assert!(
            check(json!({"reason": "ok", "label_selector": "a=b,c!=d,x in (y),app_name,!old"}))
                .is_ok()
        );
        assert!(
            check(json!({"reason": "toolong"}))
                .unwrap_err()
                .contains("at most 5")
        );
        assert!(check(json!({"reason": ""})).unwrap_err().contains("empty"));
        assert!(
            check(json!({"reason": "a\nb"}))
                .unwrap_err()
                .contains("control character")
        );
        assert!(
            check(json!({"reason": "a\u{0}b"}))
                .unwrap_err()
                .contains("control character")
        );
        assert!(check(json!({"namespace": "../kube-system"})).is_err());
        assert!(check(json!({"namespace": "Kube"})).is_err());
        assert!(check(json!({"namespace": "ml-team"})).is_ok());
        assert!(check(json!({"label_selector": "a=b;rm -rf /"})).is_err());
        assert!(check(json!({"label_selector": "a=$(x)"})).is_err());
        // Types and unknown fields are left to serde.
        assert!(check(json!({"n": "3", "other": "x"})).is_ok());
    }

    /// The answer's fields stated, and its main content's (`report`); deeper objects and the envelope's
    /// by their type; each definition still used kept once.
    #[test]
    fn output_schemas_state_the_answer_and_its_report() {
        let schema = json!({
            "type": "object",
            "properties": {
                "run": {"$ref": "#/$defs/Run"},
                "report": {"$ref": "#/$defs/Report"},
            },
            "$defs": {
                "Run": {"type": "object", "properties": {"ran_in": {"type": "string"}}},
                "Report": {"type": "object", "properties": {
                    "verdict": {"$ref": "#/$defs/Verdict"},
                    "gpus": {"type": "array", "items": {"$ref": "#/$defs/Gpu"}},
                    "run": {"anyOf": [{"$ref": "#/$defs/Run"}, {"type": "null"}]},
                    "report": {"$ref": "#/$defs/Gpu"},
                }},
                "Gpu": {"type": "object", "properties": {"index": {"type": "integer"}}},
                "Verdict": {"type": "string", "enum": ["healthy", "unhealthy"]},
            },
        });
        let cut = cut_depth(schema, OUTPUT_DEPTH);
        assert_eq!(cut["properties"]["run"], json!({"type": "object"}));
        assert_eq!(
            cut["$defs"]["Report"]["properties"]["gpus"],
            json!({"type": "array", "items": {"type": "object"}})
        );
        assert_eq!(
            cut["$defs"]["Report"]["properties"]["run"],
            json!({"anyOf": [{"type": "object"}, {"type": "null"}]})
        );
        // Only the answer's own `report` is main: one inside it is a deeper object.
        assert_eq!(
            cut["$defs"]["Report"]["properties"]["report"],
            json!({"type": "object"})
        );
        // A tool's output as clients get it: the deeper objects said by their type in fewer bytes.
        #[derive(serde::Serialize, schemars::JsonSchema)]
        struct Inner {
            x: u32,
        }
        #[derive(serde::Serialize, schemars::JsonSchema)]
        struct Mid {
            /// Gone from the schema: descriptions are not sent.
            inner: Option<Inner>,
            list: Vec<Inner>,
        }
        #[derive(serde::Serialize, schemars::JsonSchema)]
        struct Out {
            report: Mid,
            other: Inner,
        }
        let out = serde_json::Value::Object(output_schema::<Out>().as_ref().clone());
        assert_eq!(
            out["$defs"]["Mid"]["properties"],
            json!({"inner": {"type": ["object", "null"]}, "list": {"type": "array"}}),
            "{out:#}"
        );
        assert_eq!(
            out["properties"]["other"],
            json!({"type": "object"}),
            "{out:#}"
        );
        assert!(out["$defs"].get("Inner").is_none(), "{out:#}");
        // An enumeration is no object: it stays, referenced, at any depth.
        assert_eq!(
            cut["$defs"]["Verdict"]["enum"],
            json!(["healthy", "unhealthy"])
        );
        let defs: Vec<&String> = cut["$defs"].as_object().unwrap().keys().collect();
        assert_eq!(defs, ["Report", "Verdict"]);
    }

    #[test]
    fn string_constants_become_an_enum() {
        let mut o = obj(json!({"oneOf": [
            {"const": "summary", "type": "string", "description": "a"},
            {"const": "full", "type": "string"}
        ]}));
        string_enum(&mut o);
        assert_eq!(
            serde_json::Value::Object(o),
            json!({"type": "string", "enum": ["summary", "full"]})
        );
        let mut mixed =
            obj(json!({"oneOf": [{"const": "a", "type": "string"}, {"type": "object"}]}));
        string_enum(&mut mixed);
        assert!(mixed.contains_key("oneOf"));
    }

    #[test]
    fn error_messages_never_echo_a_long_value() {
        let long = "x".repeat(1 << 20);
        let m = bounded_message(&format!("unknown variant `{long}`, expected `a` or `b`"));
        assert!(m.len() < 300, "{}", m.len());
        assert!(m.ends_with("expected `a` or `b`"), "{m}");
        let m = bounded_message(&format!("invalid type: string \"{long}\", expected u32"));
        assert!(m.ends_with("expected u32"), "{m}");
        let m = bounded_message(&format!("unterminated `{long}"));
        assert!(m.len() < 300);
        let m = bounded_message(&"word ".repeat(100_000));
        assert!(m.len() <= MESSAGE_MAX + 3);
        assert_eq!(bounded_message("plain `short` text"), "plain `short` text");
    }
}
