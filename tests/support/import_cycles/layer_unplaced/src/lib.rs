mod extra;
mod mcp;
