//! The MCP server and everything it answers with: the server itself ([`server`]: routes, prompts,
//! resources), the tool framework that knows no tool by name ([`framework`]), the shared text renderings
//! ([`render`]) and the tools, one file each, listed by the registry in [`tools`].

pub mod framework;
pub mod progress;
pub mod prompts;
pub mod render;
pub mod resources;
pub mod server;
pub mod tools;
