//! The OpenAI Chat Completions front end: the rendering of answers as `chat.completion.chunk`
//! SSE lines or one `chat.completion`.

pub mod stream;
