pub mod nic;
pub mod topology;
