//! Host facts under the host root: hostname, boot id, kernel, /proc entries of GPU processes.

use std::path::Path;

use gpu_diag::facts::NodeFacts;

pub fn fill(_facts: &mut NodeFacts, _host_root: &Path) {}
