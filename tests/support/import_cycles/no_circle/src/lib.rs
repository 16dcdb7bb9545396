pub mod a;
pub mod b;
mod m;
pub use a::Alpha;
pub use m::*;
