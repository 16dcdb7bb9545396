pub fn as_text<S: serde::Serializer>(x: &u8, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&x.to_string())
}

pub fn wrap(x: u8) -> crate::a::A {
    crate::a::A { x }
}
