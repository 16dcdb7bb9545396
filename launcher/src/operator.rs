//! Operator tools (`kill_gpu_process`, `reset_gpu`, `cordon_gpu_node`) are listed only with
//! `--mode operator`. They are another issue's work: [`router`] is where that router plugs in, and
//! `Launcher::new` adds it only in operator mode.

use rmcp::handler::server::router::tool::ToolRouter;

use crate::server::Launcher;

/// The operator tool router (empty until the operator tools land).
pub fn router() -> ToolRouter<Launcher> {
    ToolRouter::new()
}
