//! The OpenAI Chat Completions front end: its wire types, the conversion into the one Claude
//! request shape the builder takes, its renderer (chunks or one completion), and its error shape.

pub mod error;
pub mod request;
pub mod stream;
pub mod types;
