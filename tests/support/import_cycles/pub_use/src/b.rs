pub struct Thing;
pub fn g() {
    crate::a::f()
}
