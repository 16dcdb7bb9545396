pub struct Gamma(pub crate::b::Beta);
