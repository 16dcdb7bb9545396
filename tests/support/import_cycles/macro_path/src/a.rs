pub const NAME: &str = "a";
pub fn f() -> String {
    format!("{}", crate::b::NAME)
}
