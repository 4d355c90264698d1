//! The Anthropic Messages protocol: its wire types, the request builder for Amazon Q, and the
//! rendering of answers as Claude SSE events or a message.

pub mod count;
pub mod error;
pub mod request;
pub mod stream;
pub mod types;
