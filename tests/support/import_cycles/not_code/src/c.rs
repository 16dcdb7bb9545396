pub struct C;
pub fn back() -> &'static str {
    crate::b::raw().0
}
