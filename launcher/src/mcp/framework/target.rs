//! The node a tool acts on: one [`NodeTarget`] (`node_name`, `context`) shared by every node tool, and
//! [`Node<E>`], the arguments of a node tool: the target plus the tool's own fields `E`, one flat object on
//! the wire.

use std::any::TypeId;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::ToolError;

/// Longest RFC 1123 subdomain: node names and most object names (pods, jobs), in characters.
pub const MAX_OBJECT_NAME_LEN: usize = 253;
/// Longest RFC 1123 label (namespaces, and each dot-separated part of a subdomain), in characters.
pub const MAX_LABEL_LEN: usize = 63;
/// Longest kubeconfig context name taken (kubeconfig sets no limit; contexts are usually named after
/// their cluster, an object name).
pub const MAX_CONTEXT_LEN: usize = MAX_OBJECT_NAME_LEN;
/// Most GPUs a node can have, for every argument that counts or indexes them: far above any node built
/// (8 or 16 today), so only a wrong value is refused before a probe runs.
pub const MAX_GPUS_PER_NODE: u32 = 1024;
/// Highest GPU index an argument may name (indexes count from 0).
pub const MAX_GPU_INDEX: u32 = MAX_GPUS_PER_NODE - 1;

/// The pattern advertised in input schemas (same rule as [`check_node_name`]).
pub const NODE_NAME_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// The node a tool acts on. Optional fields are plain types in the schema (no `["string","null"]`
/// unions, which some clients mishandle) and simply absent when not given.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeTarget {
    // Undescribed in the schema, as `context`: the server's instructions say once what both take.
    #[schemars(length(min = 1, max = MAX_OBJECT_NAME_LEN), regex(pattern = NODE_NAME_PATTERN))]
    pub node_name: String,
    // The kubeconfig context (the server's instructions say so once for every tool).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_CONTEXT_LEN))]
    pub context: Option<String>,
}

/// A node tool without arguments of its own.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// A node tool's arguments: the target and the tool's own fields, flat (`{"node_name": .., "since": ..}`).
/// Unknown fields are refused naming every field the tool takes, as serde's `deny_unknown_fields` does.
#[derive(Debug)]
pub struct Node<E> {
    pub target: NodeTarget,
    pub args: E,
}

impl<'de, E: DeserializeOwned + 'static> Deserialize<'de> for Node<E> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut rest = Map::<String, Value>::deserialize(d)?;
        let expected = fields_of::<E>();
        if let Some(k) = rest.keys().find(|k| !expected.contains(&k.as_str())) {
            return Err(D::Error::unknown_field(k, expected));
        }
        let mut target = Map::new();
        for k in ["node_name", "context"] {
            if let Some(v) = rest.remove(k) {
                target.insert(k.to_string(), v);
            }
        }
        let target = serde_json::from_value(Value::Object(target)).map_err(D::Error::custom)?;
        let args = serde_json::from_value(Value::Object(rest)).map_err(D::Error::custom)?;
        Ok(Node { target, args })
    }
}

impl<E: JsonSchema> JsonSchema for Node<E> {
    fn schema_name() -> Cow<'static, str> {
        format!("Node_{}", E::schema_name()).into()
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let mut schema = NodeTarget::json_schema(g);
        let own = E::json_schema(g);
        let obj = schema.ensure_object();
        if let Some(Value::Object(p)) = own.get("properties")
            && let Some(Value::Object(into)) = obj.get_mut("properties")
        {
            into.extend(p.clone());
        }
        if let Some(Value::Array(r)) = own.get("required") {
            match obj.get_mut("required") {
                Some(Value::Array(into)) => into.extend(r.iter().cloned()),
                _ => {
                    obj.insert("required".into(), Value::Array(r.clone()));
                }
            }
        }
        schema
    }
}

/// Every field name of `Node<E>` in declaration order: the target's, then `E`'s. Computed once per
/// type and kept for the process (serde's unknown-field error wants a `'static` list).
fn fields_of<E: DeserializeOwned + 'static>() -> &'static [&'static str] {
    static CACHE: OnceLock<Mutex<HashMap<TypeId, &'static [&'static str]>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    cache.entry(TypeId::of::<E>()).or_insert_with(|| {
        let mut own: &'static [&'static str] = &[];
        let _ = E::deserialize(FieldNames(&mut own));
        let all: Vec<&'static str> = ["node_name", "context"]
            .into_iter()
            .chain(own.iter().copied())
            .collect();
        Box::leak(all.into_boxed_slice())
    })
}

/// A deserializer that only records the field list a derived struct asks for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _v: V) -> Result<V::Value, Self::Error> {
        Err(Self::Error::custom("field names only"))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(Self::Error::custom("field names only"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// RFC 1123 subdomain (what Kubernetes allows as a node name); `local` passes too.
pub fn check_node_name(s: &str) -> Result<(), ToolError> {
    let fix = format!(
        "use the node name exactly as `list_gpu_nodes` or `kubectl get nodes` prints it \
         (lowercase letters, digits, '-' and '.', at most {MAX_OBJECT_NAME_LEN} characters), or `local` \
         in local mode"
    );
    let bad = |m: String| Err(ToolError::Invalid(m));
    if s.is_empty() {
        return bad(format!("`node_name` is empty; {fix}"));
    }
    if s.len() > MAX_OBJECT_NAME_LEN {
        return bad(format!("`node_name` is {} characters long; {fix}", s.len()));
    }
    for label in s.split('.') {
        let ok = !label.is_empty()
            && label.len() <= MAX_LABEL_LEN
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return bad(format!("`node_name` `{s}` is not a valid node name; {fix}"));
        }
    }
    Ok(())
}

/// An RFC 1123 label (namespaces): lowercase letters, digits and '-', at most [`MAX_LABEL_LEN`] characters.
pub fn check_dns_label(field: &str, s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_LABEL_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{field}` `{s}` is not a valid Kubernetes name: lowercase letters, digits and '-', at most \
             {MAX_LABEL_LEN} characters, as `kubectl get namespaces` prints it"
        ))
    }
}

/// An RFC 1123 subdomain (pods, jobs and most objects): labels of [`check_dns_label`] joined by '.',
/// at most [`MAX_OBJECT_NAME_LEN`] characters.
pub fn check_object_name(field: &str, s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_OBJECT_NAME_LEN
        && s.split('.').all(|l| check_dns_label(field, l).is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{field}` `{s}` is not a valid Kubernetes object name: lowercase letters, digits, '-' and \
             '.', at most {MAX_OBJECT_NAME_LEN} characters, as `kubectl get` prints it"
        ))
    }
}

/// The workload named by exactly one of `given` (`("pod", value)`, `("job", ..)`, ..., `("label_selector", ..)`),
/// checked: only a valid object name reaches an API request's path.
pub fn workload_ref(
    given: &[(&str, &Option<String>)],
) -> Result<crate::cluster::WorkloadRef, crate::mcp::framework::ToolError> {
    use crate::cluster::WorkloadRef;
    use crate::mcp::framework::ToolError;
    let set: Vec<(&str, &String)> = given
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v)))
        .collect();
    let [(kind, name)] = set.as_slice() else {
        return Err(ToolError::Invalid(format!(
            "name the workload with exactly one of pod, job, jobset, pytorchjob, mpijob, rayjob or \
                 label_selector (got {})",
            if set.is_empty() {
                "none".to_string()
            } else {
                set.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            }
        )));
    };
    // The name goes into the API request's path: only a valid object name gets there.
    if *kind != "label_selector" {
        check_object_name(kind, name).map_err(ToolError::Invalid)?;
    }
    let n = name.to_string();
    Ok(match *kind {
        "pod" => WorkloadRef::Pod(n),
        "job" => WorkloadRef::Job(n),
        "jobset" => WorkloadRef::JobSet(n),
        "pytorchjob" => WorkloadRef::PyTorchJob(n),
        "mpijob" => WorkloadRef::MpiJob(n),
        "rayjob" => WorkloadRef::RayJob(n),
        _ => WorkloadRef::Selector(n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Since {
        #[serde(default)]
        since: Option<String>,
    }

    #[test]
    fn flat_arguments_split_into_target_and_own_fields() {
        let n: Node<Since> = serde_json::from_value(
            serde_json::json!({"node_name": "gpu-1", "since": "2h", "context": "prod"}),
        )
        .unwrap();
        assert_eq!(n.target.node_name, "gpu-1");
        assert_eq!(n.target.context.as_deref(), Some("prod"));
        assert_eq!(n.args.since.as_deref(), Some("2h"));
        let e =
            serde_json::from_value::<Node<Since>>(serde_json::json!({"node_name": "a", "x": 1}))
                .unwrap_err()
                .to_string();
        assert_eq!(
            e,
            "unknown field `x`, expected one of `node_name`, `context`, `since`"
        );
        let e = serde_json::from_value::<Node<NoArgs>>(serde_json::json!({"since": "2h"}))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "unknown field `since`, expected `node_name` or `context`"
        );
        let e = serde_json::from_value::<Node<NoArgs>>(serde_json::json!({}))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "missing field `node_name`");
    }

    #[test]
    fn node_names_follow_rfc_1123() {
        assert!(check_node_name("gpu-node-5.example").is_ok());
        for bad in [
            "",
            "GPU",
            "-a",
            "a-",
            "a..b",
            &"x".repeat(MAX_OBJECT_NAME_LEN + 1),
        ] {
            assert!(check_node_name(bad).is_err(), "{bad}");
        }
    }
}
