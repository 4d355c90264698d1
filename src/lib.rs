//! amq2api: an Amazon Q Developer account pool behind the Claude Messages and OpenAI Chat
//! Completions APIs. The binary in `main.rs` is a thin shell over this library.

pub mod claude;
pub mod cli;
pub mod cmd;
pub mod db;
pub mod error;
pub mod http;
pub mod import;
pub mod limits;
pub mod metrics;
pub mod models;
pub mod openai;
pub mod pick;
pub mod proxy;
pub mod q;
pub mod render;
pub mod tokens;
pub mod usage;
pub mod watch;
