mod inner;
pub use inner::Gamma;
