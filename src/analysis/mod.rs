//! Pure interpretation of [`crate::facts::NodeFacts`]: one module per probe command. No I/O.

pub mod describe;
pub mod ecc;
pub mod health;
pub mod inventory;
pub mod processes;
pub mod telemetry;
pub mod topology;
