pub struct Beta;
pub fn f() -> crate::Alpha {
    std::mem::drop(r#"crate::a"#);
    crate::a::Alpha
}
