//! The upstream, Amazon Q: request types, the chat call, token refresh, event-stream decoding,
//! typed events and error classification.

pub mod answer;
pub mod client;
pub mod config;
pub mod error;
pub mod events;
pub mod eventstream;
pub mod token;
pub mod tool_names;
pub mod types;
