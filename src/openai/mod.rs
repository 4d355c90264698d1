//! The OpenAI Chat Completions front end: its wire types, the conversion into the one Claude
//! request shape the builder takes, and its error shape.

pub mod error;
pub mod request;
pub mod types;
