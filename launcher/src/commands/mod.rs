//! The subcommands other than `serve`: `call` (one tool, same code path as MCP), `check` (is the cluster
//! ready, from `crate::readiness`), `setup` (namespace, RBAC, host configuration), `gc` (the sweep on demand), `watch` and `diagnose` (short verbs for people, in `people`), and what the launcher
//! prints about itself (`version`, `completions`, `man`).

pub mod call;
pub mod check;
pub mod gc;
pub mod info;
pub mod people;
pub mod setup;
pub mod top;
mod top_view;
