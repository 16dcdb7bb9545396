pub const NAME: &str = "b";
pub fn g() -> serde_json::Value {
    serde_json::json!({ "c": crate::c::NAME })
}
