#[derive(serde::Serialize)]
pub struct A {
    #[serde(serialize_with = "crate::b::as_text")]
    pub x: u8,
}
