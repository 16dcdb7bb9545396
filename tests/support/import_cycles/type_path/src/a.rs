pub struct U;
pub fn f(x: Option<crate::b::T>) -> Vec<super::b::T> {
    x.into_iter().collect()
}
