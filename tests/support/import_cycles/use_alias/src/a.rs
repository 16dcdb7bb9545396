use crate::m;
pub fn g() {
    m::inner::f();
}
