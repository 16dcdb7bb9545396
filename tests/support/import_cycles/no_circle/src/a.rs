//! crate::b::Beta in a comment, /* crate::b::f() */ and strings are not uses.
pub struct Alpha;
pub(crate) fn f() -> &'static str {
    let _ = 'x';
    "crate::b::Beta"
}
pub(in crate::a) fn g<'a>(s: &'a str) -> &'a str {
    s
}
pub enum E {
    One,
}
pub fn h() -> E {
    E::One
}
#[cfg(test)]
mod tests {
    use crate::b::Beta;
    #[test]
    fn t() {
        let _ = Beta;
    }
}
