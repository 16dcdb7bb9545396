//! A doc comment naming crate::a::f().
/// So does this one: [`crate::a::f`].
/* outer /* nested */ crate::a::f() still inside the outer comment */
pub fn quotes() -> (char, &'static str, &'static str, &'static [u8], char) {
    let q = '"';
    let s = "crate::a::f";
    (q, s, "say \"crate::a::f\" // not a comment", b"crate::a::f", '\'')
}
pub fn raw() -> (&'static str, &'static str) {
    (r"crate::a::f", r#"he said "crate::a::f" and left"#)
}
pub fn lifetimes<'a, 'b: 'a>(x: &'a str, _y: &'b str) -> &'a str {
    // a lone quote in a comment: '
    x
}
pub fn real() -> crate::c::C {
    crate::c::C
}
