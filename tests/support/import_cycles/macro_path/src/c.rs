pub const NAME: &str = "c";
pub fn h() -> (&'static str, &'static str) {
    twice!(crate::a::NAME)
}
