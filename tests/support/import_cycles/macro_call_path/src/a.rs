pub struct Loud;
pub fn g() -> &'static str {
    crate::shout!()
}
