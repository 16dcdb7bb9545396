//! Tool schemas as clients get them.

use std::sync::Arc;

/// Output schema of a tool: schemars' serialize schema without its Rust-only `format`s (`uint32`, `double`,
/// ...), which JSON Schema validators in clients (ajv in the TypeScript SDK) warn about on every call.
pub fn output_schema<T: schemars::JsonSchema + 'static>() -> Arc<rmcp::model::JsonObject> {
    clean(rmcp::handler::server::tool::schema_for_output::<T>())
}

/// Input schema of a tool, cleaned the same way.
pub fn input_schema<T: schemars::JsonSchema + 'static>() -> Arc<rmcp::model::JsonObject> {
    clean(
        rmcp::handler::server::common::schema_for_input::<T>()
            .unwrap_or_else(|e| panic!("input schema of {}: {e}", std::any::type_name::<T>())),
    )
}

fn clean(schema: Arc<rmcp::model::JsonObject>) -> Arc<rmcp::model::JsonObject> {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(serde_json::Value::String(f)) = o.get("format")
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
                o.values_mut().for_each(walk);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v = serde_json::Value::Object(schema.as_ref().clone());
    walk(&mut v);
    match v {
        serde_json::Value::Object(o) => Arc::new(o),
        _ => schema,
    }
}
