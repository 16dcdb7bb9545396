mod inner;
mod more;
pub use inner::Item;
pub use more::*;
