//! The upstream, Amazon Q: request types, the chat call, token refresh, event-stream decoding,
//! typed events and error classification.

pub mod error;
pub mod events;
pub mod eventstream;
pub mod types;
