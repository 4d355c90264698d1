//! Sans-IO decoder for the AWS event-stream framing (`application/vnd.amazon.eventstream`) that
//! Amazon Q uses for chat responses (protocol reference §5.1). This module owns frame boundaries,
//! both CRC checks, size limits and header parsing. It knows nothing about JSON payloads or event
//! types; that is [`super::events`].
//!
//! Why our own decoder rather than `aws-smithy-eventstream`'s `MessageFrameDecoder`:
//! * The tests encode frames with smithy's writer. That only proves something if the decoder
//!   under test is independent code, not smithy's reader checking smithy's writer.
//! * We want one typed error per failure, and our own size limits checked from the prelude
//!   before a frame body is buffered. Smithy's error kind is crate-private, and its decoder has
//!   no size limit: it waits for whatever length the prelude announces.
//! * We only decode, from `&[u8]` chunks. We don't want `aws_smithy_types::event_stream::Message`
//!   (and that crate) in the hot path; smithy stays a dev-dependency.
//!
//! Usage: [`Decoder::feed`] every body chunk, then call [`Decoder::next_message`] until it
//! returns `Ok(None)`. When the body ends, call [`Decoder::finish`] to detect a truncated frame.
//! Any error is fatal: the decoder is poisoned and never tries to resync.

use bytes::{Buf, Bytes, BytesMut};

/// Length of the prelude: total length, headers length, prelude CRC.
pub const PRELUDE_LEN: usize = 12;
/// Smallest valid frame: prelude plus message CRC, no headers, no payload.
pub const MIN_FRAME_LEN: usize = 16;
/// Largest payload the event-stream spec allows.
pub const MAX_PAYLOAD_LEN: usize = 24 * 1024 * 1024;
/// Default (and spec) limit on the header block.
pub const DEFAULT_MAX_HEADERS_LEN: usize = 128 * 1024;
/// Default limit on a whole frame: the largest payload and header block the spec allows.
pub const DEFAULT_MAX_FRAME_LEN: usize = MAX_PAYLOAD_LEN + DEFAULT_MAX_HEADERS_LEN + MIN_FRAME_LEN;

/// Why a byte stream is not a valid sequence of event-stream frames. All of these are fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The body ended inside a frame.
    #[error("event stream ended inside a frame ({buffered} bytes buffered)")]
    Truncated { buffered: usize },
    /// The prelude's lengths are inconsistent (`total_len < 16` or headers longer than the frame).
    #[error("invalid frame prelude (total length {total_len}, headers length {headers_len})")]
    InvalidPrelude { total_len: u32, headers_len: u32 },
    /// `expected` is the CRC carried in the frame, `actual` the CRC of the bytes received.
    #[error(
        "frame prelude checksum mismatch (frame says {expected:#010x}, computed {actual:#010x})"
    )]
    PreludeCrc { expected: u32, actual: u32 },
    /// `expected` is the CRC carried in the frame, `actual` the CRC of the bytes received.
    #[error(
        "frame message checksum mismatch (frame says {expected:#010x}, computed {actual:#010x})"
    )]
    MessageCrc { expected: u32, actual: u32 },
    /// The prelude announces a frame longer than the decoder's limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: usize, max: usize },
    /// The prelude announces a header block longer than the decoder's limit.
    #[error("frame headers of {len} bytes exceed the limit of {max} bytes")]
    HeadersTooLarge { len: usize, max: usize },
    /// The header block could not be parsed.
    #[error("bad frame header: {reason}")]
    BadHeader { reason: String },
}

/// A header value, one variant per wire type (0..=9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 (true) and 1 (false).
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Int16(i16),
    /// Type 4.
    Int32(i32),
    /// Type 5.
    Int64(i64),
    /// Type 6: u16-length-prefixed bytes.
    ByteArray(Bytes),
    /// Type 7: u16-length-prefixed UTF-8.
    String(String),
    /// Type 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9: 16 raw bytes.
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// The string, if this is a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }
}

/// One decoded frame. Headers keep their wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Bytes,
}

impl Message {
    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value)
    }

    /// The first header called `name`, if it is a string value.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(HeaderValue::as_str)
    }
}

/// A validated prelude, kept while waiting for the rest of its frame.
#[derive(Debug, Clone, Copy)]
struct Prelude {
    total_len: usize,
    headers_len: usize,
}

/// Incremental event-stream frame decoder. Feed it bytes, pull messages out.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    prelude: Option<Prelude>,
    max_frame_len: usize,
    max_headers_len: usize,
    error: Option<FrameError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder with the default limits ([`DEFAULT_MAX_FRAME_LEN`], [`DEFAULT_MAX_HEADERS_LEN`]).
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_FRAME_LEN, DEFAULT_MAX_HEADERS_LEN)
    }

    /// A decoder that rejects frames longer than `max_frame_len` bytes (whole frame, prelude and
    /// CRC included) or with a header block longer than `max_headers_len` bytes.
    pub fn with_limits(max_frame_len: usize, max_headers_len: usize) -> Self {
        Decoder {
            buf: BytesMut::new(),
            prelude: None,
            max_frame_len,
            max_headers_len,
            error: None,
        }
    }

    /// Append a chunk of the body. Chunks may split frames anywhere. Ignored once poisoned.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.error.is_none() {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// Bytes buffered but not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `Ok(None)` if more bytes are needed. After an error every
    /// call returns that same error.
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        match self.decode() {
            Ok(message) => Ok(message),
            Err(err) => {
                self.error = Some(err.clone());
                self.buf = BytesMut::new();
                self.prelude = None;
                Err(err)
            }
        }
    }

    /// Call when the body has ended (after draining [`Decoder::next_message`]): an error if the
    /// decoder is poisoned or bytes of an incomplete frame remain.
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated {
                buffered: self.buf.len(),
            })
        }
    }

    fn decode(&mut self) -> Result<Option<Message>, FrameError> {
        let prelude = match self.prelude {
            Some(prelude) => prelude,
            None => {
                if self.buf.len() < PRELUDE_LEN {
                    return Ok(None);
                }
                let prelude = self.read_prelude()?;
                self.prelude = Some(prelude);
                // Make room for the rest of the frame once, now that its size is vetted.
                self.buf
                    .reserve(prelude.total_len.saturating_sub(self.buf.len()));
                prelude
            }
        };
        if self.buf.len() < prelude.total_len {
            return Ok(None);
        }

        let crc_at = prelude.total_len - 4;
        let expected = be_u32(&self.buf[crc_at..prelude.total_len]);
        let actual = crc32fast::hash(&self.buf[..crc_at]);
        if expected != actual {
            return Err(FrameError::MessageCrc { expected, actual });
        }

        self.prelude = None;
        let mut frame = self.buf.split_to(prelude.total_len).freeze();
        frame.truncate(crc_at);
        frame.advance(PRELUDE_LEN);
        let payload = frame.split_off(prelude.headers_len);
        let headers = parse_headers(frame)?;
        Ok(Some(Message { headers, payload }))
    }

    /// Validate the prelude at the start of the buffer (which holds at least 12 bytes).
    fn read_prelude(&self) -> Result<Prelude, FrameError> {
        let total_len = be_u32(&self.buf[0..4]);
        let headers_len = be_u32(&self.buf[4..8]);
        let expected = be_u32(&self.buf[8..12]);
        let actual = crc32fast::hash(&self.buf[0..8]);
        if expected != actual {
            return Err(FrameError::PreludeCrc { expected, actual });
        }
        let total = usize::try_from(total_len).unwrap_or(usize::MAX);
        let headers = usize::try_from(headers_len).unwrap_or(usize::MAX);
        let headers_fit = total
            .checked_sub(MIN_FRAME_LEN)
            .is_some_and(|room| headers <= room);
        if !headers_fit {
            return Err(FrameError::InvalidPrelude {
                total_len,
                headers_len,
            });
        }
        if total > self.max_frame_len {
            return Err(FrameError::FrameTooLarge {
                len: total,
                max: self.max_frame_len,
            });
        }
        if headers > self.max_headers_len {
            return Err(FrameError::HeadersTooLarge {
                len: headers,
                max: self.max_headers_len,
            });
        }
        Ok(Prelude {
            total_len: total,
            headers_len: headers,
        })
    }
}

/// Big-endian u32 from exactly four bytes (callers slice exactly four).
fn be_u32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(bytes);
    u32::from_be_bytes(word)
}

fn bad_header(reason: impl Into<String>) -> FrameError {
    FrameError::BadHeader {
        reason: reason.into(),
    }
}

/// Bounds-checked reads over the header block.
struct HeaderReader {
    block: Bytes,
}

impl HeaderReader {
    /// The next `n` bytes, or a `BadHeader` naming `what` ran past the block.
    fn take(&mut self, n: usize, what: &str) -> Result<Bytes, FrameError> {
        if n > self.block.len() {
            return Err(bad_header(format!("{what} runs past the header block")));
        }
        Ok(self.block.split_to(n))
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], FrameError> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&bytes);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, FrameError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, FrameError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
}

fn parse_headers(block: Bytes) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut reader = HeaderReader { block };
    let mut headers = Vec::new();
    while !reader.block.is_empty() {
        let name_len = reader.u8("header name length")?;
        if name_len == 0 {
            return Err(bad_header("empty header name"));
        }
        let name = reader.take(usize::from(name_len), "header name")?;
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| bad_header("header name is not valid utf-8"))?;
        let value_type = reader.u8("header value type")?;
        let value = match value_type {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(reader.array("byte header value")?)),
            3 => HeaderValue::Int16(i16::from_be_bytes(reader.array("short header value")?)),
            4 => HeaderValue::Int32(i32::from_be_bytes(reader.array("int header value")?)),
            5 => HeaderValue::Int64(i64::from_be_bytes(reader.array("long header value")?)),
            6 => {
                let len = reader.u16("byte array header length")?;
                HeaderValue::ByteArray(reader.take(usize::from(len), "byte array header value")?)
            }
            7 => {
                let len = reader.u16("string header length")?;
                let bytes = reader.take(usize::from(len), "string header value")?;
                HeaderValue::String(
                    String::from_utf8(bytes.to_vec())
                        .map_err(|_| bad_header("string header value is not valid utf-8"))?,
                )
            }
            8 => {
                HeaderValue::Timestamp(i64::from_be_bytes(reader.array("timestamp header value")?))
            }
            9 => HeaderValue::Uuid(reader.array("uuid header value")?),
            other => return Err(bad_header(format!("unknown header value type {other}"))),
        };
        headers.push((name, value));
    }
    Ok(headers)
}

/// Checks one arbitrary input, panicking on any broken promise: used by the `eventstream` fuzz
/// target (`fuzz/`) and by the test that replays its committed corpus. The first byte seeds the
/// chunk sizes (1..=64 bytes), the rest is the body. Decoding never panics; the body fed in
/// arbitrary chunks decodes to the same messages and the same outcome as the body fed whole;
/// nothing stays buffered after an error; every decoded message goes through
/// [`super::events::parse`]. The default decoder runs too, so a hostile length prefix meets the
/// real limits (the fuzz run's `-malloc_limit_mb` catches an allocation past them).
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let outcome = |decoder: &mut Decoder, sizes: &mut dyn FnMut() -> usize| {
        let mut messages = Vec::new();
        let mut rest = body;
        let mut error = None;
        while !rest.is_empty() && error.is_none() {
            let n = sizes().clamp(1, rest.len());
            decoder.feed(&rest[..n]);
            rest = &rest[n..];
            loop {
                match decoder.next_message() {
                    Ok(Some(m)) => {
                        let _ = super::events::parse(&m);
                        messages.push(m);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        assert_eq!(decoder.buffered(), 0, "a poisoned decoder keeps no bytes");
                        assert_eq!(decoder.next_message(), Err(e.clone()), "errors are sticky");
                        error = Some(e);
                        break;
                    }
                }
            }
        }
        let end = match error {
            Some(e) => Err(e),
            None => decoder.finish(),
        };
        (messages, end)
    };
    let mut state = u32::from(seed) | 1;
    let mut chunked = move || {
        // xorshift: cheap, deterministic chunk sizes from the seed byte.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 64) as usize + 1
    };
    let whole = outcome(&mut Decoder::with_limits(4096, 1024), &mut || usize::MAX);
    let pieces = outcome(&mut Decoder::with_limits(4096, 1024), &mut chunked);
    assert_eq!(whole, pieces, "chunking changed the decoding");
    let _ = outcome(&mut Decoder::new(), &mut || usize::MAX);
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::event_stream as smithy;
    use proptest::prelude::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const VECTOR_1: &str = "0000003d0000002007fd83960c636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b27666f6f273a27626172277d8d9c08b1";
    const VECTOR_2: &str = "0000007c0000005c3bddcf780b3a6576656e742d74797065070016617373697374616e74526573706f6e73654576656e740d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b22636f6e74656e74223a224869227db02babdc";
    const VECTOR_3: &str = "0000009a000000527bf1d0000b3a6576656e742d7479706507000c746f6f6c5573654576656e740d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b22746f6f6c5573654964223a22746f6f6c7573655f31222c226e616d65223a2272756e5f7368656c6c222c2273746f70223a747275657dc51884c1";

    fn s(v: &str) -> HeaderValue {
        HeaderValue::String(v.to_owned())
    }

    fn event_headers(event_type: &str) -> Vec<(String, HeaderValue)> {
        vec![
            (":event-type".to_owned(), s(event_type)),
            (":content-type".to_owned(), s("application/json")),
            (":message-type".to_owned(), s("event")),
        ]
    }

    /// Decode a whole byte string, expecting it to hold complete frames only.
    fn decode_all(bytes: &[u8]) -> Vec<Message> {
        let mut decoder = Decoder::new();
        decoder.feed(bytes);
        let mut out = Vec::new();
        while let Some(message) = decoder.next_message().unwrap() {
            out.push(message);
        }
        decoder.finish().unwrap();
        out
    }

    fn decode_chunked(bytes: &[u8], chunk: usize) -> Vec<Message> {
        let mut decoder = Decoder::new();
        let mut out = Vec::new();
        for piece in bytes.chunks(chunk) {
            decoder.feed(piece);
            while let Some(message) = decoder.next_message().unwrap() {
                out.push(message);
            }
        }
        decoder.finish().unwrap();
        out
    }

    /// The first error a decoder reports for `bytes` fed whole.
    fn first_error(decoder: &mut Decoder, bytes: &[u8]) -> FrameError {
        decoder.feed(bytes);
        loop {
            match decoder.next_message() {
                Ok(Some(_)) => continue,
                Ok(None) => return decoder.finish().unwrap_err(),
                Err(err) => return err,
            }
        }
    }

    /// Build a frame by hand from a raw header block and payload, with correct CRCs.
    fn raw_frame(headers: &[u8], payload: &[u8]) -> Vec<u8> {
        let total = (16 + headers.len() + payload.len()) as u32;
        let mut out = Vec::new();
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let prelude_crc = crc32fast::hash(&out);
        out.extend_from_slice(&prelude_crc.to_be_bytes());
        out.extend_from_slice(headers);
        out.extend_from_slice(payload);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Just a prelude (with a correct prelude CRC) for the given lengths.
    fn prelude(total: u32, headers: u32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&headers.to_be_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    fn smithy_value(value: &HeaderValue) -> smithy::HeaderValue {
        match value {
            HeaderValue::Bool(b) => smithy::HeaderValue::Bool(*b),
            HeaderValue::Byte(v) => smithy::HeaderValue::Byte(*v),
            HeaderValue::Int16(v) => smithy::HeaderValue::Int16(*v),
            HeaderValue::Int32(v) => smithy::HeaderValue::Int32(*v),
            HeaderValue::Int64(v) => smithy::HeaderValue::Int64(*v),
            HeaderValue::ByteArray(v) => smithy::HeaderValue::ByteArray(v.clone()),
            HeaderValue::String(v) => smithy::HeaderValue::String(v.clone().into()),
            HeaderValue::Timestamp(ms) => {
                smithy::HeaderValue::Timestamp(aws_smithy_types::DateTime::from_millis(*ms))
            }
            HeaderValue::Uuid(v) => smithy::HeaderValue::Uuid(u128::from_be_bytes(*v)),
        }
    }

    /// Encode with smithy's writer: an implementation independent of the decoder under test.
    fn smithy_encode(headers: &[(String, HeaderValue)], payload: &[u8]) -> Vec<u8> {
        let smithy_headers = headers
            .iter()
            .map(|(name, value)| smithy::Header::new(name.clone(), smithy_value(value)))
            .collect();
        let message =
            smithy::Message::new_from_parts(smithy_headers, Bytes::copy_from_slice(payload));
        let mut out = Vec::new();
        aws_smithy_eventstream::frame::write_message_to(&message, &mut out).unwrap();
        out
    }

    fn event(event_type: &str, payload: &str) -> Vec<u8> {
        smithy_encode(&event_headers(event_type), payload.as_bytes())
    }

    /// A realistic chat response body: text, a tool call, metering, context usage, an exception.
    fn realistic_body() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(event("initial-response", "{}"));
        body.extend(event(
            "messageMetadataEvent",
            r#"{"conversationId":"3d0c8c52-1111-2222-3333-444455556666","utteranceId":"b7e1"}"#,
        ));
        body.extend(event("assistantResponseEvent", r#"{"content":"Let me"}"#));
        body.extend(event(
            "assistantResponseEvent",
            r#"{"content":" check that."}"#,
        ));
        body.extend(event(
            "assistantResponseEvent",
            r#"{"content":"\n\u00e9\u4e2d"}"#,
        ));
        body.extend(event(
            "toolUseEvent",
            r#"{"toolUseId":"tooluse_Z9y8","name":"run_shell"}"#,
        ));
        body.extend(event(
            "toolUseEvent",
            r#"{"toolUseId":"tooluse_Z9y8","name":"run_shell","input":"{\"cmd\":"}"#,
        ));
        body.extend(event(
            "toolUseEvent",
            r#"{"toolUseId":"tooluse_Z9y8","name":"run_shell","input":"\"ls /srv\"}"}"#,
        ));
        body.extend(event(
            "toolUseEvent",
            r#"{"toolUseId":"tooluse_Z9y8","name":"run_shell","stop":true}"#,
        ));
        body.extend(event(
            "meteringEvent",
            r#"{"unit":"credit","unitPlural":"credits","usage":0.0148}"#,
        ));
        body.extend(event(
            "contextUsageEvent",
            r#"{"contextUsagePercentage":12.5}"#,
        ));
        body.extend(smithy_encode(
            &[
                (":exception-type".to_owned(), s("ThrottlingException")),
                (":content-type".to_owned(), s("application/json")),
                (":message-type".to_owned(), s("exception")),
            ],
            br#"{"message":"slow down"}"#,
        ));
        // An empty frame: no headers, no payload.
        body.extend(smithy_encode(&[], b""));
        body
    }

    #[test]
    fn vector_1_decodes() {
        let bytes = unhex(VECTOR_1);
        assert_eq!(bytes.len(), 61);
        assert_eq!(be_u32(&bytes[8..12]), 0x07fd_8396);
        assert_eq!(crc32fast::hash(&bytes[0..8]), 0x07fd_8396);
        assert_eq!(be_u32(&bytes[57..61]), 0x8d9c_08b1);
        assert_eq!(crc32fast::hash(&bytes[0..57]), 0x8d9c_08b1);
        let messages = decode_all(&bytes);
        assert_eq!(
            messages,
            vec![Message {
                headers: vec![("content-type".to_owned(), s("application/json"))],
                payload: Bytes::from_static(b"{'foo':'bar'}"),
            }]
        );
    }

    #[test]
    fn vector_2_decodes() {
        let bytes = unhex(VECTOR_2);
        assert_eq!(bytes.len(), 124);
        assert_eq!(be_u32(&bytes[4..8]), 92);
        assert_eq!(crc32fast::hash(&bytes[0..8]), 0x3bdd_cf78);
        assert_eq!(crc32fast::hash(&bytes[0..120]), 0xb02b_abdc);
        let messages = decode_all(&bytes);
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].headers, event_headers("assistantResponseEvent"));
        assert_eq!(&messages[0].payload[..], br#"{"content":"Hi"}"#);
        assert_eq!(
            messages[0].header_str(":event-type"),
            Some("assistantResponseEvent")
        );
        assert_eq!(messages[0].header_str(":nope"), None);
    }

    #[test]
    fn vector_3_decodes() {
        let bytes = unhex(VECTOR_3);
        assert_eq!(bytes.len(), 154);
        assert_eq!(be_u32(&bytes[4..8]), 82);
        assert_eq!(crc32fast::hash(&bytes[0..8]), 0x7bf1_d000);
        assert_eq!(crc32fast::hash(&bytes[0..150]), 0xc518_84c1);
        let messages = decode_all(&bytes);
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].headers, event_headers("toolUseEvent"));
        assert_eq!(
            &messages[0].payload[..],
            br#"{"toolUseId":"tooluse_1","name":"run_shell","stop":true}"#
        );
    }

    #[test]
    fn smithy_writer_reproduces_vectors_2_and_3() {
        assert_eq!(
            event("assistantResponseEvent", r#"{"content":"Hi"}"#),
            unhex(VECTOR_2)
        );
        assert_eq!(
            event(
                "toolUseEvent",
                r#"{"toolUseId":"tooluse_1","name":"run_shell","stop":true}"#
            ),
            unhex(VECTOR_3)
        );
    }

    #[test]
    fn realistic_body_decodes_the_same_in_every_chunking() {
        let body = realistic_body();
        let whole = decode_all(&body);
        assert_eq!(whole.len(), 13);
        assert_eq!(
            whole[2].header_str(":event-type"),
            Some("assistantResponseEvent")
        );
        assert_eq!(&whole[2].payload[..], br#"{"content":"Let me"}"#);
        assert_eq!(whole[11].header_str(":message-type"), Some("exception"));
        assert_eq!(
            whole[12],
            Message {
                headers: vec![],
                payload: Bytes::new()
            }
        );
        for chunk in 1..=64 {
            assert_eq!(decode_chunked(&body, chunk), whole, "chunk size {chunk}");
        }
    }

    #[test]
    fn every_header_type_decodes() {
        let headers = vec![
            ("t".to_owned(), HeaderValue::Bool(true)),
            ("f".to_owned(), HeaderValue::Bool(false)),
            ("byte".to_owned(), HeaderValue::Byte(-7)),
            ("short".to_owned(), HeaderValue::Int16(-12_345)),
            ("int".to_owned(), HeaderValue::Int32(0x1234_5678)),
            (
                "long".to_owned(),
                HeaderValue::Int64(-0x0123_4567_89ab_cdef),
            ),
            (
                "bytes".to_owned(),
                HeaderValue::ByteArray(Bytes::from_static(&[0, 1, 0xff])),
            ),
            (
                "empty-bytes".to_owned(),
                HeaderValue::ByteArray(Bytes::new()),
            ),
            ("str".to_owned(), s("héllo")),
            ("empty-str".to_owned(), s("")),
            ("ts".to_owned(), HeaderValue::Timestamp(1_700_000_000_123)),
            (
                "uuid".to_owned(),
                HeaderValue::Uuid(
                    *b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff",
                ),
            ),
        ];
        let bytes = smithy_encode(&headers, b"payload");
        let messages = decode_all(&bytes);
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].headers, headers);
        assert_eq!(&messages[0].payload[..], b"payload");
        assert_eq!(
            messages[0].header("int"),
            Some(&HeaderValue::Int32(0x1234_5678))
        );
        assert_eq!(messages[0].header_str("int"), None);
        assert_eq!(messages[0].header_str("str"), Some("héllo"));
    }

    #[test]
    fn hand_encoded_header_types_decode() {
        // Independent of smithy: each type written by hand, big-endian.
        let mut block = Vec::new();
        block.extend_from_slice(b"\x01a\x00");
        block.extend_from_slice(b"\x01b\x01");
        block.extend_from_slice(b"\x01c\x02\xfe");
        block.extend_from_slice(b"\x01d\x03\x01\x02");
        block.extend_from_slice(b"\x01e\x04\x00\x00\x01\x00");
        block.extend_from_slice(b"\x01f\x05\xff\xff\xff\xff\xff\xff\xff\xff");
        block.extend_from_slice(b"\x01g\x06\x00\x02\xaa\xbb");
        block.extend_from_slice(b"\x01h\x07\x00\x02hi");
        block.extend_from_slice(b"\x01i\x08\x00\x00\x00\x00\x00\x00\x03\xe8");
        block.extend_from_slice(b"\x01j\x09");
        block.extend_from_slice(&[7u8; 16]);
        let messages = decode_all(&raw_frame(&block, b"x"));
        let expected = vec![
            ("a".to_owned(), HeaderValue::Bool(true)),
            ("b".to_owned(), HeaderValue::Bool(false)),
            ("c".to_owned(), HeaderValue::Byte(-2)),
            ("d".to_owned(), HeaderValue::Int16(0x0102)),
            ("e".to_owned(), HeaderValue::Int32(256)),
            ("f".to_owned(), HeaderValue::Int64(-1)),
            (
                "g".to_owned(),
                HeaderValue::ByteArray(Bytes::from_static(&[0xaa, 0xbb])),
            ),
            ("h".to_owned(), s("hi")),
            ("i".to_owned(), HeaderValue::Timestamp(1000)),
            ("j".to_owned(), HeaderValue::Uuid([7u8; 16])),
        ];
        assert_eq!(messages[0].headers, expected);
    }

    #[test]
    fn truncated_input_fails_at_finish() {
        let bytes = unhex(VECTOR_2);
        for cut in 1..bytes.len() {
            let mut decoder = Decoder::new();
            decoder.feed(&bytes[..cut]);
            assert_eq!(decoder.next_message(), Ok(None), "cut at {cut}");
            assert_eq!(
                decoder.finish(),
                Err(FrameError::Truncated { buffered: cut }),
                "cut at {cut}"
            );
        }
        // A complete frame followed by a partial one.
        let mut decoder = Decoder::new();
        decoder.feed(&bytes);
        decoder.feed(&bytes[..5]);
        assert!(decoder.next_message().unwrap().is_some());
        assert_eq!(decoder.next_message(), Ok(None));
        assert_eq!(decoder.finish(), Err(FrameError::Truncated { buffered: 5 }));
        // Nothing at all is fine.
        assert_eq!(Decoder::new().finish(), Ok(()));
    }

    #[test]
    fn bad_prelude_crc() {
        let mut bytes = unhex(VECTOR_2);
        bytes[11] ^= 0x01;
        let err = first_error(&mut Decoder::new(), &bytes[..12]);
        assert_eq!(
            err,
            FrameError::PreludeCrc {
                expected: 0x3bdd_cf79,
                actual: 0x3bdd_cf78
            }
        );
        // A corrupted length is caught by the prelude CRC too.
        let mut bytes = unhex(VECTOR_2);
        bytes[3] ^= 0x40;
        let err = first_error(&mut Decoder::new(), &bytes);
        assert!(matches!(err, FrameError::PreludeCrc { .. }), "{err:?}");
    }

    #[test]
    fn bad_message_crc() {
        for flip in [12, 50, 110, 123] {
            let mut bytes = unhex(VECTOR_2);
            bytes[flip] ^= 0x80;
            let err = first_error(&mut Decoder::new(), &bytes);
            assert!(
                matches!(err, FrameError::MessageCrc { .. }),
                "byte {flip}: {err:?}"
            );
        }
        let mut bytes = unhex(VECTOR_2);
        bytes[123] ^= 0x01;
        assert_eq!(
            first_error(&mut Decoder::new(), &bytes),
            FrameError::MessageCrc {
                expected: 0xb02b_abdd,
                actual: 0xb02b_abdc
            }
        );
    }

    #[test]
    fn invalid_prelude() {
        for (total, headers) in [(0, 0), (15, 0), (16, 1), (20, 5), (u32::MAX, u32::MAX)] {
            let err = first_error(&mut Decoder::new(), &prelude(total, headers));
            assert_eq!(
                err,
                FrameError::InvalidPrelude {
                    total_len: total,
                    headers_len: headers
                }
            );
        }
        // Boundary cases that are valid: all room taken by headers.
        let err = first_error(&mut Decoder::new(), &prelude(20, 4));
        assert_eq!(err, FrameError::Truncated { buffered: 12 });
    }

    #[test]
    fn oversized_frame_rejected_from_the_prelude() {
        let mut decoder = Decoder::with_limits(1024, 128);
        // Only the prelude has arrived: the body is never waited for.
        assert_eq!(
            first_error(&mut decoder, &prelude(1025, 0)),
            FrameError::FrameTooLarge {
                len: 1025,
                max: 1024
            }
        );
        let mut decoder = Decoder::with_limits(1024, 128);
        assert_eq!(
            first_error(&mut decoder, &prelude(1000, 129)),
            FrameError::HeadersTooLarge { len: 129, max: 128 }
        );
        // The default limits: spec maxima accepted, one more byte rejected.
        let mut decoder = Decoder::new();
        assert_eq!(
            first_error(&mut decoder, &prelude(DEFAULT_MAX_FRAME_LEN as u32, 0)),
            FrameError::Truncated { buffered: 12 }
        );
        let mut decoder = Decoder::new();
        assert_eq!(
            first_error(&mut decoder, &prelude(DEFAULT_MAX_FRAME_LEN as u32 + 1, 0)),
            FrameError::FrameTooLarge {
                len: DEFAULT_MAX_FRAME_LEN + 1,
                max: DEFAULT_MAX_FRAME_LEN
            }
        );
        let mut decoder = Decoder::new();
        assert_eq!(
            first_error(&mut decoder, &prelude(200_000, 128 * 1024 + 1)),
            FrameError::HeadersTooLarge {
                len: 128 * 1024 + 1,
                max: 128 * 1024
            }
        );
        // A frame exactly at the limit decodes.
        let frame = raw_frame(b"", &[b'x'; 1024 - 16]);
        let mut decoder = Decoder::with_limits(1024, 0);
        decoder.feed(&frame);
        assert_eq!(decoder.next_message().unwrap().unwrap().payload.len(), 1008);
    }

    fn header_error(block: &[u8]) -> FrameError {
        first_error(&mut Decoder::new(), &raw_frame(block, b"{}"))
    }

    fn reason(err: FrameError) -> String {
        match err {
            FrameError::BadHeader { reason } => reason,
            other => panic!("expected BadHeader, got {other:?}"),
        }
    }

    #[test]
    fn bad_headers() {
        assert_eq!(
            reason(header_error(b"\x01a\x0a")),
            "unknown header value type 10"
        );
        assert_eq!(
            reason(header_error(b"\x01a\xff")),
            "unknown header value type 255"
        );
        assert_eq!(reason(header_error(b"\x00\x00")), "empty header name");
        assert_eq!(
            reason(header_error(b"\x05ab")),
            "header name runs past the header block"
        );
        assert_eq!(
            reason(header_error(b"\x02a\xff\x00")),
            "header name is not valid utf-8"
        );
        assert_eq!(
            reason(header_error(b"\x01a")),
            "header value type runs past the header block"
        );
        assert_eq!(
            reason(header_error(b"\x01a\x07\x00\x05abc")),
            "string header value runs past the header block"
        );
        assert_eq!(
            reason(header_error(b"\x01a\x07\x00")),
            "string header length runs past the header block"
        );
        assert_eq!(
            reason(header_error(b"\x01a\x07\x00\x02\xc3\x28")),
            "string header value is not valid utf-8"
        );
        assert_eq!(
            reason(header_error(b"\x01a\x06\x01\x00ab")),
            "byte array header value runs past the header block"
        );
        assert_eq!(
            reason(header_error(b"\x01a\x03\x01")),
            "short header value runs past the header block"
        );
        assert_eq!(
            reason(header_error(b"\x01a\x04\x01\x02\x03")),
            "int header value runs past the header block"
        );
        assert_eq!(
            reason(header_error(b"\x01a\x05\x01")),
            "long header value runs past the header block"
        );
        assert_eq!(
            reason(header_error(b"\x01a\x08\x01")),
            "timestamp header value runs past the header block"
        );
        assert_eq!(
            reason(header_error(b"\x01a\x09\x01\x02")),
            "uuid header value runs past the header block"
        );
        assert_eq!(
            reason(header_error(b"\x01a\x02")),
            "byte header value runs past the header block"
        );
        // A valid header followed by a dangling byte.
        assert_eq!(
            reason(header_error(b"\x01a\x00\x03")),
            "header name runs past the header block"
        );
    }

    #[test]
    fn poisoned_after_error() {
        let mut bad = unhex(VECTOR_2);
        bad[60] ^= 1;
        let good = unhex(VECTOR_3);
        let mut decoder = Decoder::new();
        decoder.feed(&unhex(VECTOR_2));
        decoder.feed(&bad);
        decoder.feed(&good);
        assert!(decoder.next_message().unwrap().is_some());
        let err = decoder.next_message().unwrap_err();
        assert!(matches!(err, FrameError::MessageCrc { .. }));
        // Later valid bytes change nothing: no resync.
        decoder.feed(&good);
        assert_eq!(decoder.next_message(), Err(err.clone()));
        assert_eq!(decoder.next_message(), Err(err.clone()));
        assert_eq!(decoder.finish(), Err(err));
        assert_eq!(decoder.buffered(), 0);

        // The same for a header error and for the size limit.
        let mut decoder = Decoder::new();
        let err = first_error(&mut decoder, &raw_frame(b"\x01a\x0a", b""));
        decoder.feed(&good);
        assert_eq!(decoder.next_message(), Err(err));
        let mut decoder = Decoder::with_limits(64, 64);
        let err = first_error(&mut decoder, &good);
        assert!(matches!(err, FrameError::FrameTooLarge { .. }));
        assert_eq!(decoder.next_message(), Err(err.clone()));
        assert_eq!(decoder.finish(), Err(err));
    }

    #[test]
    fn payload_and_byte_array_are_views_of_the_frame() {
        // Zero-copy: a trailing byte-array header and the payload are adjacent slices of one
        // buffer, so neither was copied out.
        let headers = vec![(
            "blob".to_owned(),
            HeaderValue::ByteArray(Bytes::from_static(b"abc")),
        )];
        let mut decoder = Decoder::new();
        decoder.feed(&smithy_encode(&headers, b"payload"));
        let message = decoder.next_message().unwrap().unwrap();
        let Some(HeaderValue::ByteArray(blob)) = message.header("blob") else {
            panic!("no blob header");
        };
        assert_eq!(blob.as_ptr().wrapping_add(3), message.payload.as_ptr());
    }

    #[test]
    fn error_messages_are_lowercase_phrases() {
        let errors = [
            FrameError::Truncated { buffered: 3 },
            FrameError::InvalidPrelude {
                total_len: 1,
                headers_len: 2,
            },
            FrameError::PreludeCrc {
                expected: 1,
                actual: 2,
            },
            FrameError::MessageCrc {
                expected: 1,
                actual: 2,
            },
            FrameError::FrameTooLarge { len: 2, max: 1 },
            FrameError::HeadersTooLarge { len: 2, max: 1 },
            FrameError::BadHeader {
                reason: "x".to_owned(),
            },
        ];
        for err in errors {
            let text = err.to_string();
            assert!(text.starts_with(|c: char| c.is_ascii_lowercase()), "{text}");
            assert!(!text.ends_with('.'), "{text}");
        }
        assert_eq!(
            FrameError::PreludeCrc {
                expected: 0x3bdd_cf78,
                actual: 1
            }
            .to_string(),
            "frame prelude checksum mismatch (frame says 0x3bddcf78, computed 0x00000001)"
        );
    }

    fn arb_value() -> impl Strategy<Value = HeaderValue> {
        prop_oneof![
            any::<bool>().prop_map(HeaderValue::Bool),
            any::<i8>().prop_map(HeaderValue::Byte),
            any::<i16>().prop_map(HeaderValue::Int16),
            any::<i32>().prop_map(HeaderValue::Int32),
            any::<i64>().prop_map(HeaderValue::Int64),
            proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(|v| HeaderValue::ByteArray(Bytes::from(v))),
            ".{0,20}".prop_map(HeaderValue::String),
            any::<i64>().prop_map(HeaderValue::Timestamp),
            any::<[u8; 16]>().prop_map(HeaderValue::Uuid),
        ]
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        (
            proptest::collection::vec(("[a-z:-][a-zA-Z0-9:_-]{0,30}", arb_value()), 0..8),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(headers, payload)| Message {
                headers,
                payload: Bytes::from(payload),
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            cuts in proptest::collection::vec(1usize..64, 0..40),
        ) {
            let mut decoder = Decoder::with_limits(4096, 1024);
            let mut rest = &bytes[..];
            let mut cuts = cuts.into_iter();
            while !rest.is_empty() {
                let n = cuts.next().unwrap_or(rest.len()).min(rest.len());
                decoder.feed(&rest[..n]);
                rest = &rest[n..];
                while let Ok(Some(_)) = decoder.next_message() {}
            }
            let _ = decoder.finish();
        }

        #[test]
        fn valid_prelude_with_garbage_never_panics(
            total in 16u32..400,
            headers in 0u32..400,
            body in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            // Valid prelude CRC so the header parser sees arbitrary bytes.
            let mut bytes = prelude(total, headers);
            bytes.extend_from_slice(&body);
            let end = (total as usize).min(bytes.len());
            if end >= 4 && end == total as usize {
                let crc = crc32fast::hash(&bytes[..end - 4]);
                bytes[end - 4..end].copy_from_slice(&crc.to_be_bytes());
            }
            let mut decoder = Decoder::new();
            decoder.feed(&bytes);
            while let Ok(Some(_)) = decoder.next_message() {}
            let _ = decoder.finish();
        }

        #[test]
        fn smithy_round_trip(
            messages in proptest::collection::vec(arb_message(), 1..5),
            chunk in 1usize..100,
        ) {
            let mut body = Vec::new();
            for m in &messages {
                body.extend(smithy_encode(&m.headers, &m.payload));
            }
            prop_assert_eq!(decode_chunked(&body, chunk), messages.clone());
            prop_assert_eq!(decode_all(&body), messages);
        }

        /// Frames cut at arbitrary points (several cuts inside one prelude, empty chunks) decode
        /// to the messages that were encoded.
        #[test]
        fn smithy_round_trip_with_arbitrary_cuts(
            messages in proptest::collection::vec(arb_message(), 1..5),
            cuts in proptest::collection::vec(0usize..40, 0..60),
        ) {
            let mut body = Vec::new();
            for m in &messages {
                body.extend(smithy_encode(&m.headers, &m.payload));
            }
            let mut decoder = Decoder::new();
            let mut out = Vec::new();
            let mut rest = &body[..];
            for n in cuts.into_iter().chain(std::iter::once(usize::MAX)) {
                let n = n.min(rest.len());
                decoder.feed(&rest[..n]);
                rest = &rest[n..];
                while let Some(message) = decoder.next_message().unwrap() {
                    out.push(message);
                }
            }
            decoder.finish().unwrap();
            prop_assert_eq!(out, messages);
        }

        /// The fuzz harness's checks hold for valid streams with one byte flipped anywhere.
        #[test]
        fn corrupted_streams_keep_the_fuzz_promises(
            messages in proptest::collection::vec(arb_message(), 1..4),
            seed in any::<u8>(),
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let mut data = vec![seed];
            for m in &messages {
                data.extend(smithy_encode(&m.headers, &m.payload));
            }
            fuzz_one(&data);
            let at = 1 + flip.index(data.len() - 1);
            data[at] ^= 1 << bit;
            fuzz_one(&data);
        }
    }
}
