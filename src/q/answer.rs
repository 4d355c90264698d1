//! The answer interpreter: turns Amazon Q stream events ([`QEvent`]) into one protocol-neutral
//! sequence of [`Answer`]s (thinking, text, tool calls) that the Claude and OpenAI renderers
//! share, and keeps what the ending needs ([`StopReason`], upstream token counts). Pure: no I/O,
//! fed one event at a time (protocol reference §5.2, §5.3, §6.5, §7.6, §7.9).
//!
//! # The sequence
//!
//! * `Thinking(..)*` then `ThinkingEnd`, only at the start of the answer; `ThinkingEnd` comes
//!   once, and only if some `Thinking` came. Thinking that arrives after visible output (text or
//!   a tool) is dropped: a second thinking phase cannot be expressed by this sequence.
//! * `Text(..)` deltas, never empty.
//! * Per tool: `ToolStart`, `ToolInput*` (the raw JSON fragments), `ToolEnd` with the parsed
//!   input object (`{}` when empty or unparseable, see [`ToolInputs`]). Several tools may be
//!   open at once if the upstream interleaves them; every started tool gets its `ToolEnd`
//!   (at the latest from [`Interpreter::finish`]). Tool names are the client's names
//!   ([`ToolNames::client_name`]).
//!
//! # The thinking tag scanner (when `thinking` is on)
//!
//! With thinking requested through prompt tags, the model writes `<thinking>…</thinking>` inside
//! the assistant text, and the tags may be split across events at any byte. The scanner holds
//! back only what might still turn out to be a tag (and leading whitespace), never the answer:
//!
//! * Only a `<thinking>` at the very start of the answer, after optional whitespace, opens
//!   thinking. The whitespace before it is dropped. Anywhere else (after other text, after a
//!   tool, inside backticks or quotes, which all put a character before it) the tag is text.
//! * One `\n` right after `<thinking>` is dropped (it may arrive in the next event).
//! * Thinking is streamed as it comes, not buffered until the close tag.
//! * `</thinking>` closes thinking when it is followed by `\n\n` (both dropped), or by nothing
//!   but whitespace up to the end of the text (the end of the stream, or a tool call; the
//!   whitespace is dropped). It is thinking content when preceded by a backtick or quote, or
//!   followed by anything else, because the model sometimes mentions the tag while thinking
//!   (hank9999/kiro.rs does the same). Caveat: `</thinking>\nText` with a single newline keeps
//!   the rest of the answer in thinking; the models end the tag with a blank line.
//! * Thinking never closed by the end of the text is closed there (the whole rest was thinking).
//! * After thinking closes, everything is text, verbatim.
//!
//! What can be held back: leading whitespace plus at most `<thinking>` at the start, or inside
//! thinking a partial `</thinking>` (or a complete one plus trailing whitespace). Tool input is
//! held by [`ToolInputs`] until each tool's `stop`, since the finished input must be parsed.
//!
//! Native `reasoningContentEvent` text becomes `Thinking` too. Its `signature` and
//! `redactedContent` are dropped: `Answer` has no place for them (renderers sign thinking
//! themselves).

use serde_json::Value;

use super::error::{ErrorClass, UpstreamError};
use super::events::{QEvent, ToolInputs, ToolStep};
use super::tool_names::ToolNames;

const OPEN_TAG: &str = "<thinking>";
const CLOSE_TAG: &str = "</thinking>";

/// One protocol-neutral piece of the answer, in output order.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A non-empty thinking delta.
    Thinking(String),
    /// No more thinking; follows at least one `Thinking`, comes at most once.
    ThinkingEnd,
    /// A non-empty text delta.
    Text(String),
    /// A tool call starts. `name` is the client's name.
    ToolStart { id: String, name: String },
    /// A raw fragment of the tool's input JSON, as the upstream sent it.
    ToolInput { id: String, fragment: String },
    /// The tool call is complete; `input` is always a JSON object.
    ToolEnd { id: String, input: Value },
}

/// Why the answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    ModelContextWindowExceeded,
}

impl StopReason {
    /// The Anthropic `stop_reason`.
    pub fn as_claude(&self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::ToolUse => "tool_use",
            StopReason::MaxTokens => "max_tokens",
            StopReason::ModelContextWindowExceeded => "model_context_window_exceeded",
        }
    }

    /// The OpenAI `finish_reason`.
    pub fn as_openai(&self) -> &'static str {
        match self {
            StopReason::EndTurn => "stop",
            StopReason::ToolUse => "tool_calls",
            StopReason::MaxTokens | StopReason::ModelContextWindowExceeded => "length",
        }
    }
}

/// Where the tag scanner is in the answer text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Nothing visible yet: the held text is whitespace, perhaps followed by a prefix of
    /// `<thinking>`.
    Start,
    /// Inside `<thinking>`. `strip_newline`: the newline right after the tag is still to drop.
    Thinking { strip_newline: bool },
    /// Everything is text.
    Text,
}

/// Whether thinking may still come, is being emitted, or is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ThinkingPhase {
    NotYet,
    Open,
    Done,
}

/// The state machine from upstream events to [`Answer`]s; see the module doc.
#[derive(Debug)]
pub struct Interpreter {
    tool_names: ToolNames,
    context_window: u64,
    tools: ToolInputs,
    scan: Scan,
    /// Text held back by the tag scanner (see the module doc for what it can hold).
    held: String,
    /// The last character of thinking already emitted: is a `</thinking>` at the start of
    /// `held` quoted?
    last_thinking_char: Option<char>,
    thinking: ThinkingPhase,
    /// Text or a tool call was emitted.
    visible: bool,
    tool_emitted: bool,
    max_tokens: bool,
    context_percentage: Option<f64>,
    metadata_input: Option<u64>,
    metadata_output: Option<u64>,
    finished: bool,
}

impl Interpreter {
    /// `thinking`: scan the text for `<thinking>` tags (thinking was requested).
    /// `context_window`: the model's window in tokens, to turn `contextUsageEvent` into tokens.
    pub fn new(thinking: bool, tool_names: ToolNames, context_window: u64) -> Self {
        Interpreter {
            tool_names,
            context_window,
            tools: ToolInputs::new(),
            scan: if thinking { Scan::Start } else { Scan::Text },
            held: String::new(),
            last_thinking_char: None,
            thinking: ThinkingPhase::NotYet,
            visible: false,
            tool_emitted: false,
            max_tokens: false,
            context_percentage: None,
            metadata_input: None,
            metadata_output: None,
            finished: false,
        }
    }

    /// Feed one upstream event.
    pub fn on_event(&mut self, ev: QEvent) -> Vec<Answer> {
        let mut out = Vec::new();
        if self.finished {
            log::debug!("ignoring an upstream event after the end of the answer");
            return out;
        }
        match ev {
            QEvent::AssistantText { content } | QEvent::Code { content } => {
                self.on_text(&content, &mut out)
            }
            QEvent::Reasoning {
                text,
                signature,
                redacted,
            } => {
                if signature.is_some() || redacted.is_some() {
                    log::debug!("dropping a native reasoning signature or redacted content");
                }
                if let Some(text) = text {
                    self.emit_thinking(&text, &mut out);
                }
            }
            QEvent::ToolUse {
                tool_use_id,
                name,
                input,
                stop,
            } => {
                // A tool call ends the text before it: settle what the scanner holds.
                self.end_text(&mut out);
                let steps = self
                    .tools
                    .on_tool_use(&tool_use_id, &name, input.as_deref(), stop);
                self.push_steps(steps, &mut out);
            }
            QEvent::Metadata {
                uncached_input_tokens,
                output_tokens,
                cache_read_input_tokens,
                cache_write_input_tokens,
                ..
            } => {
                if let Some(uncached) = uncached_input_tokens {
                    self.metadata_input = Some(
                        uncached
                            .saturating_add(cache_read_input_tokens.unwrap_or(0))
                            .saturating_add(cache_write_input_tokens.unwrap_or(0)),
                    );
                }
                if output_tokens.is_some() {
                    self.metadata_output = output_tokens;
                }
            }
            QEvent::ContextUsage { percentage } => {
                if percentage.is_finite() && percentage >= 0.0 {
                    self.context_percentage = Some(percentage);
                }
            }
            QEvent::InvalidState { reason, message } => {
                log::warn!("upstream invalid state {reason:?}: {message:?}");
            }
            QEvent::Exception { exception_type, .. } => {
                // `ChatStream::next_event` turns these into errors; one here is a caller bug.
                log::warn!("ignoring an exception frame passed as an event ({exception_type})");
            }
            QEvent::Error { code, .. } => {
                log::warn!("ignoring an error frame passed as an event ({code:?})");
            }
            QEvent::InitialResponse
            | QEvent::MessageMetadata { .. }
            | QEvent::Metering { .. }
            | QEvent::Ignored { .. } => {}
        }
        out
    }

    /// A mid-stream upstream error. `Some(answers)` when it is a normal ending: an output
    /// length cap ([`ErrorClass::OutputLengthExceeded`]) makes the stop reason
    /// [`StopReason::MaxTokens`] and finishes like [`Interpreter::finish`]. `None` when it is a
    /// real failure that the renderer must report (nothing is flushed then).
    pub fn on_error(&mut self, err: &UpstreamError) -> Option<Vec<Answer>> {
        if err.class == ErrorClass::OutputLengthExceeded {
            self.max_tokens = true;
            Some(self.finish())
        } else {
            None
        }
    }

    /// The end of the stream: releases held-back text, ends thinking, closes tools that never
    /// got `stop`. Later calls return nothing.
    pub fn finish(&mut self) -> Vec<Answer> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        self.finished = true;
        self.end_text(&mut out);
        self.close_thinking(&mut out);
        let steps = self.tools.finish_open();
        self.push_steps(steps, &mut out);
        out
    }

    /// Why the answer ended. A truncation wins over tool use: a tool call cut off by the output
    /// cap or the context window may have incomplete input, and the client must not take it as
    /// a finished call. So: `MaxTokens` after an output length error, else
    /// `ModelContextWindowExceeded` when the context usage reached 100 %, else `ToolUse` when a
    /// tool call was emitted, else `EndTurn`.
    pub fn stop_reason(&self) -> StopReason {
        if self.max_tokens {
            StopReason::MaxTokens
        } else if self.context_percentage.is_some_and(|p| p >= 100.0) {
            StopReason::ModelContextWindowExceeded
        } else if self.tool_emitted {
            StopReason::ToolUse
        } else {
            StopReason::EndTurn
        }
    }

    /// Input tokens as the upstream counted them: `metadataEvent` uncached + cache read + cache
    /// write when it was sent, else `contextUsageEvent` percentage × the context window
    /// (rounded). `None` when neither came (or the result is 0, which no real request has).
    pub fn upstream_input_tokens(&self) -> Option<u64> {
        if let Some(tokens) = self.metadata_input.filter(|&t| t > 0) {
            return Some(tokens);
        }
        let percentage = self.context_percentage?;
        // `as` saturates on overflow.
        let tokens = (percentage / 100.0 * self.context_window as f64).round() as u64;
        Some(tokens).filter(|&t| t > 0)
    }

    /// Output tokens from `metadataEvent`, when it was sent.
    pub fn upstream_output_tokens(&self) -> Option<u64> {
        self.metadata_output
    }

    fn push_steps(&mut self, steps: Vec<ToolStep>, out: &mut Vec<Answer>) {
        for step in steps {
            match step {
                ToolStep::Started { id, name } => {
                    self.close_thinking(out);
                    self.visible = true;
                    self.tool_emitted = true;
                    out.push(Answer::ToolStart {
                        id,
                        name: self.tool_names.client_name(&name),
                    });
                }
                ToolStep::Fragment { id, fragment } => {
                    out.push(Answer::ToolInput { id, fragment });
                }
                ToolStep::Finished { id, input, .. } => out.push(Answer::ToolEnd { id, input }),
            }
        }
    }

    fn on_text(&mut self, text: &str, out: &mut Vec<Answer>) {
        if text.is_empty() {
            return;
        }
        if self.scan == Scan::Text && self.held.is_empty() {
            self.emit_text(text, out);
            return;
        }
        self.held.push_str(text);
        self.scan_held(false, out);
    }

    /// The text segment ended (a tool call, or the end of the stream): nothing held can still
    /// become a tag, and a tag at the start is no longer possible.
    fn end_text(&mut self, out: &mut Vec<Answer>) {
        self.scan_held(true, out);
        self.scan = Scan::Text;
    }

    /// Runs the tag scanner over `held`, emitting what is decided. `end`: no more text follows
    /// in this segment, so everything is decided.
    fn scan_held(&mut self, end: bool, out: &mut Vec<Answer>) {
        loop {
            match self.scan {
                Scan::Start => {
                    let trimmed = self.held.trim_start();
                    if let Some(rest) = trimmed.strip_prefix(OPEN_TAG) {
                        self.held = rest.to_owned();
                        self.scan = Scan::Thinking {
                            strip_newline: true,
                        };
                        continue;
                    }
                    if !end && OPEN_TAG.starts_with(trimmed) {
                        // All whitespace, or whitespace and the start of `<thinking>`: wait.
                        return;
                    }
                    self.scan = Scan::Text;
                }
                Scan::Thinking { strip_newline } => {
                    if strip_newline && !self.held.is_empty() {
                        if self.held.starts_with('\n') {
                            self.held.remove(0);
                        }
                        self.scan = Scan::Thinking {
                            strip_newline: false,
                        };
                    }
                    if !self.scan_thinking(end, out) {
                        return;
                    }
                    self.scan = Scan::Text;
                }
                Scan::Text => {
                    let text = std::mem::take(&mut self.held);
                    self.emit_text(&text, out);
                    return;
                }
            }
        }
    }

    /// Inside thinking: emits what is surely thinking and keeps what may be the close tag.
    /// Returns true when thinking is over (what is left in `held` is text).
    fn scan_thinking(&mut self, end: bool, out: &mut Vec<Answer>) -> bool {
        let mut from = 0;
        while let Some(found) = self.held[from..].find(CLOSE_TAG) {
            let at = from + found;
            from = at + 1;
            let before = self.held[..at]
                .chars()
                .next_back()
                .or(self.last_thinking_char);
            if matches!(before, Some('`' | '"' | '\'')) {
                continue;
            }
            let after = &self.held[at + CLOSE_TAG.len()..];
            if let Some(rest) = after.strip_prefix("\n\n") {
                let rest = rest.to_owned();
                self.close_thinking_at(at, rest, out);
                return true;
            }
            if after.chars().all(char::is_whitespace) {
                if end {
                    self.close_thinking_at(at, String::new(), out);
                    return true;
                }
                // Undecided until more text (or the end of the text) comes.
                let thinking: String = self.held.drain(..at).collect();
                self.emit_thinking(&thinking, out);
                return false;
            }
            // Followed by something else: the model mentions the tag.
        }
        if end {
            let thinking = std::mem::take(&mut self.held);
            self.emit_thinking(&thinking, out);
            self.close_thinking(out);
            return true;
        }
        // Keep the longest suffix that may be the start of `</thinking>`.
        let keep_from = (self.held.len().saturating_sub(CLOSE_TAG.len() - 1)..self.held.len())
            .find(|&i| self.held.is_char_boundary(i) && CLOSE_TAG.starts_with(&self.held[i..]))
            .unwrap_or(self.held.len());
        let thinking: String = self.held.drain(..keep_from).collect();
        self.emit_thinking(&thinking, out);
        false
    }

    /// Thinking is `held[..at]`, then the close tag; `rest` (what follows the tag and its
    /// dropped newlines or whitespace) becomes the held text.
    fn close_thinking_at(&mut self, at: usize, rest: String, out: &mut Vec<Answer>) {
        self.held.truncate(at);
        let thinking = std::mem::replace(&mut self.held, rest);
        self.emit_thinking(&thinking, out);
        self.close_thinking(out);
    }

    fn emit_thinking(&mut self, thinking: &str, out: &mut Vec<Answer>) {
        if thinking.is_empty() {
            return;
        }
        if self.visible || self.thinking == ThinkingPhase::Done {
            log::debug!("dropping thinking that came after the answer started");
            return;
        }
        self.thinking = ThinkingPhase::Open;
        self.last_thinking_char = thinking.chars().next_back();
        out.push(Answer::Thinking(thinking.to_owned()));
    }

    /// Visible output starts (or the answer ends): no more thinking.
    fn close_thinking(&mut self, out: &mut Vec<Answer>) {
        if self.thinking == ThinkingPhase::Open {
            out.push(Answer::ThinkingEnd);
        }
        self.thinking = ThinkingPhase::Done;
    }

    fn emit_text(&mut self, text: &str, out: &mut Vec<Answer>) {
        if text.is_empty() {
            return;
        }
        self.close_thinking(out);
        self.visible = true;
        out.push(Answer::Text(text.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::q::error::Stage;

    use crate::q::events::test_events::{text, tool};

    fn thinking(s: &str) -> Answer {
        Answer::Thinking(s.to_owned())
    }

    fn answer_text(s: &str) -> Answer {
        Answer::Text(s.to_owned())
    }

    /// Feeds the events, then finishes; every answer in order.
    fn run(scan: bool, events: Vec<QEvent>) -> Vec<Answer> {
        let mut interp = Interpreter::new(scan, ToolNames::default(), 200_000);
        let mut out = Vec::new();
        for ev in events {
            out.extend(interp.on_event(ev));
        }
        out.extend(interp.finish());
        out
    }

    fn run_text(scan: bool, chunks: &[&str]) -> Vec<Answer> {
        run(scan, chunks.iter().map(|c| text(c)).collect())
    }

    /// Merges adjacent thinking deltas and adjacent text deltas.
    fn coalesce(answers: Vec<Answer>) -> Vec<Answer> {
        let mut out: Vec<Answer> = Vec::new();
        for a in answers {
            match (out.last_mut(), a) {
                (Some(Answer::Thinking(t)), Answer::Thinking(more)) => t.push_str(&more),
                (Some(Answer::Text(t)), Answer::Text(more)) => t.push_str(&more),
                (_, a) => out.push(a),
            }
        }
        out
    }

    /// Checks the sequence rules every answer list must follow.
    fn assert_well_formed(answers: &[Answer]) {
        let mut thinking_ended = false;
        let mut visible = false;
        let mut open: Vec<&str> = Vec::new();
        let mut ended: Vec<&str> = Vec::new();
        for a in answers {
            match a {
                Answer::Thinking(t) => {
                    assert!(!t.is_empty());
                    assert!(!thinking_ended && !visible, "late thinking in {answers:?}");
                }
                Answer::ThinkingEnd => {
                    assert!(!thinking_ended, "two ThinkingEnd in {answers:?}");
                    assert!(matches!(answers.first(), Some(Answer::Thinking(_))));
                    thinking_ended = true;
                }
                Answer::Text(t) => {
                    assert!(!t.is_empty());
                    visible = true;
                }
                Answer::ToolStart { id, .. } => {
                    visible = true;
                    assert!(!open.contains(&id.as_str()) && !ended.contains(&id.as_str()));
                    open.push(id);
                }
                Answer::ToolInput { id, fragment } => {
                    assert!(!fragment.is_empty());
                    assert!(open.contains(&id.as_str()));
                }
                Answer::ToolEnd { id, input } => {
                    assert!(input.is_object());
                    open.retain(|o| o != id);
                    ended.push(id);
                }
            }
        }
        assert!(open.is_empty(), "tools left open in {answers:?}");
        let thought = answers.iter().any(|a| matches!(a, Answer::Thinking(_)));
        assert_eq!(
            thought, thinking_ended,
            "ThinkingEnd iff thinking: {answers:?}"
        );
    }

    /// One answer per line, for snapshots.
    fn listing(answers: &[Answer]) -> String {
        answers
            .iter()
            .map(|a| format!("{a:?}\n"))
            .collect::<String>()
    }

    #[test]
    fn text_passes_through_verbatim_when_thinking_is_off() {
        let chunks = ["Hel", "lo ", "<thinking>x</thinking>\n\n", "", " end"];
        let answers = run_text(false, &chunks);
        assert_eq!(
            answers,
            vec![
                answer_text("Hel"),
                answer_text("lo "),
                answer_text("<thinking>x</thinking>\n\n"),
                answer_text(" end"),
            ]
        );
        assert_well_formed(&answers);
    }

    #[test]
    fn text_without_a_tag_is_not_held_when_thinking_is_on() {
        let mut interp = Interpreter::new(true, ToolNames::default(), 200_000);
        assert_eq!(interp.on_event(text("Hello")), vec![answer_text("Hello")]);
        assert_eq!(
            interp.on_event(text(" <thinking>")),
            vec![answer_text(" <thinking>")]
        );
        // Only leading whitespace and a possible tag start are held.
        let mut interp = Interpreter::new(true, ToolNames::default(), 200_000);
        assert_eq!(interp.on_event(text("\n ")), vec![]);
        assert_eq!(interp.on_event(text("<thi")), vec![]);
        assert_eq!(interp.on_event(text("s")), vec![answer_text("\n <this")]);
        assert_eq!(interp.finish(), vec![]);
        assert_eq!(interp.stop_reason(), StopReason::EndTurn);
    }

    #[test]
    fn thinking_is_streamed_and_the_close_tag_held_until_decided() {
        let mut interp = Interpreter::new(true, ToolNames::default(), 200_000);
        assert_eq!(interp.on_event(text("<thin")), vec![]);
        assert_eq!(interp.on_event(text("king>")), vec![]);
        assert_eq!(
            interp.on_event(text("\nStep 1.")),
            vec![thinking("Step 1.")]
        );
        assert_eq!(
            interp.on_event(text(" Step 2.</thi")),
            vec![thinking(" Step 2.")]
        );
        assert_eq!(interp.on_event(text("nking>")), vec![]);
        assert_eq!(interp.on_event(text("\n")), vec![]);
        assert_eq!(
            interp.on_event(text("\nThe answer")),
            vec![Answer::ThinkingEnd, answer_text("The answer")]
        );
        assert_eq!(interp.on_event(text(" is 4.")), vec![answer_text(" is 4.")]);
        assert_eq!(interp.finish(), vec![]);
    }

    const THOUGHT: &str = "<thinking>\nplan: add 2 and 2\n</thinking>\n\nIt is 4.";

    fn thought_expected() -> Vec<Answer> {
        vec![
            thinking("plan: add 2 and 2\n"),
            Answer::ThinkingEnd,
            answer_text("It is 4."),
        ]
    }

    #[test]
    fn thinking_then_text_in_one_event_and_byte_by_byte() {
        assert_eq!(run_text(true, &[THOUGHT]), thought_expected());
        let chars: Vec<String> = THOUGHT.chars().map(String::from).collect();
        let chunks: Vec<&str> = chars.iter().map(String::as_str).collect();
        let answers = run_text(true, &chunks);
        assert_well_formed(&answers);
        assert_eq!(coalesce(answers), thought_expected());
    }

    #[test]
    fn every_three_way_split_gives_the_same_answer() {
        let inputs = [
            THOUGHT,
            "  \n<thinking>é `</thinking>` ü</thinking>\n\n日本\n",
            "<thinking>x</thinking>",
            "<thinking>unclosed </thinking",
            "`<thinking>` is a tag",
        ];
        for input in inputs {
            let whole = coalesce(run_text(true, &[input]));
            let bounds: Vec<usize> = (0..=input.len())
                .filter(|&i| input.is_char_boundary(i))
                .collect();
            for (n, &i) in bounds.iter().enumerate() {
                for &j in &bounds[n..] {
                    let answers = run_text(true, &[&input[..i], &input[i..j], &input[j..]]);
                    assert_well_formed(&answers);
                    assert_eq!(coalesce(answers), whole, "{input:?} split at {i}, {j}");
                }
            }
        }
    }

    #[test]
    fn only_a_tag_at_the_start_opens_thinking() {
        for input in [
            "Use `<thinking>` tags.",
            "Sure. <thinking>not thinking</thinking>\n\nreally",
            "\"<thinking>\"",
            "x\n<thinking>y</thinking>\n\n",
        ] {
            assert_eq!(
                run_text(true, &[input]),
                vec![answer_text(input)],
                "{input:?}"
            );
        }
        // Whitespace before the tag is dropped; whitespace before text is kept.
        assert_eq!(
            run_text(true, &["\n\n", "<thinking>a</thinking>\n\nb"]),
            vec![thinking("a"), Answer::ThinkingEnd, answer_text("b")]
        );
        assert_eq!(run_text(true, &["\n", "  Hi"]), vec![answer_text("\n  Hi")]);
        assert_eq!(run_text(true, &["\n"]), vec![answer_text("\n")]);
    }

    #[test]
    fn close_tag_mentions_inside_thinking_stay_thinking() {
        let answers = run_text(
            true,
            &["<thinking>the `</thinking>` tag, \"</thinking>\n\n\", and </thinking> inline</thinking>\n\nDone"],
        );
        assert_eq!(
            answers,
            vec![
                thinking("the `</thinking>` tag, \"</thinking>\n\n\", and </thinking> inline"),
                Answer::ThinkingEnd,
                answer_text("Done"),
            ]
        );
    }

    #[test]
    fn close_tag_at_the_end_of_the_text() {
        for input in [
            "<thinking>abc</thinking>",
            "<thinking>abc</thinking>\n",
            "<thinking>abc</thinking> \n",
        ] {
            assert_eq!(
                run_text(true, &[input]),
                vec![thinking("abc"), Answer::ThinkingEnd],
                "{input:?}"
            );
        }
        // Never closed: all of it was thinking, including a partial tag.
        assert_eq!(
            run_text(true, &["<thinking>abc</thin"]),
            vec![thinking("abc"), thinking("</thin"), Answer::ThinkingEnd]
        );
        // A single newline is not a close.
        assert_eq!(
            run_text(true, &["<thinking>abc</thinking>\nmore"]),
            vec![thinking("abc</thinking>\nmore"), Answer::ThinkingEnd]
        );
        // Empty thinking gives no thinking at all.
        assert_eq!(
            run_text(true, &["<thinking></thinking>\n\nHi"]),
            vec![answer_text("Hi")]
        );
        assert_eq!(run_text(true, &["<thinking>\n</thinking>"]), vec![]);
    }

    #[test]
    fn a_tool_call_ends_thinking_and_later_tags_are_text() {
        let answers = run(
            true,
            vec![
                text("<thinking>plan</thinking>"),
                tool("t1", "run", None, false),
                tool("t1", "run", Some("{}"), true),
                text("<thinking>after</thinking>\n\n"),
            ],
        );
        assert_eq!(
            answers,
            vec![
                thinking("plan"),
                Answer::ThinkingEnd,
                Answer::ToolStart {
                    id: "t1".into(),
                    name: "run".into()
                },
                Answer::ToolInput {
                    id: "t1".into(),
                    fragment: "{}".into()
                },
                Answer::ToolEnd {
                    id: "t1".into(),
                    input: json!({})
                },
                answer_text("<thinking>after</thinking>\n\n"),
            ]
        );
        assert_well_formed(&answers);
    }

    #[test]
    fn a_partial_open_tag_before_a_tool_is_text() {
        assert_eq!(
            run(true, vec![text("<thin"), tool("t", "n", None, true)]),
            vec![
                answer_text("<thin"),
                Answer::ToolStart {
                    id: "t".into(),
                    name: "n".into()
                },
                Answer::ToolEnd {
                    id: "t".into(),
                    input: json!({})
                },
            ]
        );
    }

    #[test]
    fn native_reasoning_is_thinking_only_before_the_answer() {
        let answers = run(
            false,
            vec![
                QEvent::Reasoning {
                    text: Some("deep".into()),
                    signature: None,
                    redacted: None,
                },
                QEvent::Reasoning {
                    text: Some(" thought".into()),
                    signature: Some("sig".into()),
                    redacted: None,
                },
                QEvent::Reasoning {
                    text: Some(String::new()),
                    signature: None,
                    redacted: Some("AAAA".into()),
                },
                QEvent::Code {
                    content: "code".into(),
                },
                QEvent::Reasoning {
                    text: Some("late".into()),
                    signature: None,
                    redacted: None,
                },
                text(" text"),
            ],
        );
        assert_eq!(
            answers,
            vec![
                thinking("deep"),
                thinking(" thought"),
                Answer::ThinkingEnd,
                answer_text("code"),
                answer_text(" text"),
            ]
        );
        assert_well_formed(&answers);
        // Thinking only: closed at the end.
        assert_eq!(
            run(
                true,
                vec![QEvent::Reasoning {
                    text: Some("r".into()),
                    signature: None,
                    redacted: None,
                }]
            ),
            vec![thinking("r"), Answer::ThinkingEnd]
        );
    }

    #[test]
    fn tools_are_mapped_back_and_closed_at_the_end() {
        let long = "mcp__plugin_claude-code-home_playwright__browser_take_screenshot_of_the_page";
        let mut names = ToolNames::default();
        let upstream = names.register(long);
        let mut interp = Interpreter::new(false, names, 200_000);
        let mut answers = Vec::new();
        for ev in [
            text("Looking."),
            tool("a", &upstream, None, false),
            tool("a", &upstream, Some(r#"{"full":"#), false),
            tool("a", &upstream, Some("true}"), true),
            tool("b", "plain", Some(r#"{"x":"#), false),
        ] {
            answers.extend(interp.on_event(ev));
        }
        answers.extend(interp.finish());
        insta::assert_snapshot!("tools_mapped_back_and_closed", listing(&answers));
        assert_well_formed(&answers);
        assert_eq!(interp.stop_reason(), StopReason::ToolUse);
        assert_eq!(interp.finish(), vec![]);
        assert_eq!(interp.on_event(text("late")), vec![]);
    }

    #[test]
    fn output_length_exceeded_is_a_normal_ending() {
        let mut interp = Interpreter::new(true, ToolNames::default(), 200_000);
        assert_eq!(
            interp.on_event(text("<thinking>a</thin")),
            vec![thinking("a")]
        );
        let cap = UpstreamError::new(ErrorClass::OutputLengthExceeded, Stage::Stream, "");
        assert_eq!(
            interp.on_error(&cap),
            Some(vec![thinking("</thin"), Answer::ThinkingEnd])
        );
        assert_eq!(interp.stop_reason(), StopReason::MaxTokens);

        let mut interp = Interpreter::new(false, ToolNames::default(), 200_000);
        let _ = interp.on_event(tool("t", "n", None, false));
        let _ = interp.on_event(tool("t", "n", Some(r#"{"a":"#), false));
        let ending = interp.on_error(&cap).unwrap();
        assert_eq!(
            ending,
            vec![Answer::ToolEnd {
                id: "t".into(),
                input: json!({})
            }]
        );
        // A cut-off tool call is reported as a truncation, not as a finished call.
        assert_eq!(interp.stop_reason(), StopReason::MaxTokens);

        let mut interp = Interpreter::new(false, ToolNames::default(), 200_000);
        let _ = interp.on_event(text("partial"));
        let failure = UpstreamError::new(ErrorClass::ModelOverloaded, Stage::Stream, "busy");
        assert_eq!(interp.on_error(&failure), None);
    }

    #[test]
    fn usage_from_context_usage_and_metadata() {
        let mut interp = Interpreter::new(false, ToolNames::default(), 200_000);
        assert_eq!(interp.upstream_input_tokens(), None);
        assert_eq!(interp.upstream_output_tokens(), None);
        let _ = interp.on_event(QEvent::ContextUsage { percentage: 12.345 });
        assert_eq!(interp.upstream_input_tokens(), Some(24_690));
        assert_eq!(interp.stop_reason(), StopReason::EndTurn);
        let _ = interp.on_event(QEvent::ContextUsage {
            percentage: f64::NAN,
        });
        assert_eq!(interp.upstream_input_tokens(), Some(24_690));
        let _ = interp.on_event(QEvent::ContextUsage { percentage: 100.0 });
        assert_eq!(interp.upstream_input_tokens(), Some(200_000));
        assert_eq!(interp.stop_reason(), StopReason::ModelContextWindowExceeded);
        let _ = interp.on_event(QEvent::Metadata {
            uncached_input_tokens: Some(100),
            output_tokens: Some(7),
            total_tokens: Some(137),
            cache_read_input_tokens: Some(30),
            cache_write_input_tokens: None,
        });
        assert_eq!(interp.upstream_input_tokens(), Some(130));
        assert_eq!(interp.upstream_output_tokens(), Some(7));
        // 0 % is no real count.
        let mut interp = Interpreter::new(false, ToolNames::default(), 200_000);
        let _ = interp.on_event(QEvent::ContextUsage { percentage: 0.0 });
        assert_eq!(interp.upstream_input_tokens(), None);
    }

    #[test]
    fn stop_reason_names() {
        let all = [
            StopReason::EndTurn,
            StopReason::ToolUse,
            StopReason::MaxTokens,
            StopReason::ModelContextWindowExceeded,
        ];
        let claude: Vec<_> = all.iter().map(StopReason::as_claude).collect();
        let openai: Vec<_> = all.iter().map(StopReason::as_openai).collect();
        assert_eq!(
            claude,
            [
                "end_turn",
                "tool_use",
                "max_tokens",
                "model_context_window_exceeded"
            ]
        );
        assert_eq!(openai, ["stop", "tool_calls", "length", "length"]);
    }

    #[test]
    fn events_without_answers() {
        let answers = run(
            true,
            vec![
                QEvent::InitialResponse,
                QEvent::MessageMetadata {
                    conversation_id: Some("c".into()),
                    utterance_id: None,
                },
                QEvent::Metering {
                    usage: Some(0.01),
                    unit: Some("credit".into()),
                },
                QEvent::InvalidState {
                    reason: None,
                    message: None,
                },
                QEvent::Ignored {
                    event_type: "x".into(),
                },
                text(""),
            ],
        );
        assert_eq!(answers, vec![]);
    }

    /// Pieces that exercise the scanner: tag parts, newlines, quotes, text.
    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "<thinking>",
            "</thinking>",
            "<",
            "</",
            "thin",
            "king>",
            "\n",
            "\n\n",
            " ",
            "`",
            "\"",
            "a",
            "word ",
            "é",
            "<thinking>\n",
            "</thinking>\n\n",
        ])
    }

    proptest! {
        #[test]
        fn splitting_never_changes_the_answer(
            pieces in prop::collection::vec(piece(), 0..12),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let input: String = pieces.concat();
            let whole = run_text(true, &[&input]);
            assert_well_formed(&whole);
            let bounds: Vec<usize> =
                (0..=input.len()).filter(|&i| input.is_char_boundary(i)).collect();
            let mut at: Vec<usize> = cuts.iter().map(|c| bounds[c.index(bounds.len())]).collect();
            at.push(0);
            at.push(input.len());
            at.sort_unstable();
            let chunks: Vec<&str> = at.windows(2).map(|w| &input[w[0]..w[1]]).collect();
            let split = run_text(true, &chunks);
            assert_well_formed(&split);
            prop_assert_eq!(coalesce(split), coalesce(whole));
        }
    }
}
