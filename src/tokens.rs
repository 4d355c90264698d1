//! Token counting with tiktoken's `cl100k_base` (the upstream reports no counts in the events
//! commonly seen, protocol doc §7.9). The BPE is built once per process, on first use.
//! [`OutputCounter`] counts a streamed answer as it goes, for both renderers.

use std::sync::LazyLock;

use tiktoken_rs::CoreBPE;

static BPE: LazyLock<CoreBPE> =
    LazyLock::new(|| tiktoken_rs::cl100k_base().expect("cl100k_base is embedded"));

/// Tokens in `text` (special-token markers are counted as plain text).
pub fn count(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    BPE.encode_ordinary(text).len() as u64
}

/// Builds the BPE now (at server start) instead of on the first request.
pub fn warm_up() {
    LazyLock::force(&BPE);
}

/// Uncounted text longer than this is counted up to its last whitespace.
const COUNT_CHUNK: usize = 1024;
/// Uncounted text without whitespace longer than this is counted as it is.
const COUNT_MAX: usize = 16 * 1024;

/// Running output token count that keeps only the text not yet counted: text is counted in
/// pieces cut at whitespace, so a renderer never holds the answer just to count it.
#[derive(Debug, Default)]
pub struct OutputCounter {
    counted: u64,
    pending: String,
}

impl OutputCounter {
    /// Text that was sent.
    pub fn add(&mut self, text: &str) {
        self.pending.push_str(text);
        if self.pending.len() < COUNT_CHUNK {
            return;
        }
        // Cut before whitespace: cl100k tokens carry their leading space.
        match self.pending.rfind(char::is_whitespace).filter(|&i| i > 0) {
            Some(cut) => {
                self.counted += count(&self.pending[..cut]);
                self.pending.drain(..cut);
            }
            None if self.pending.len() >= COUNT_MAX => self.flush(),
            None => {}
        }
    }

    /// A block ended: its tokens never merge with the next block's.
    pub fn flush(&mut self) {
        self.counted += count(&self.pending);
        self.pending.clear();
    }

    /// Tokens of everything added so far.
    pub fn total(&self) -> u64 {
        self.counted + count(&self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(count(""), 0);
        assert_eq!(count("hello world"), 2);
        assert_eq!(count("<|endoftext|>"), 7);
    }

    #[test]
    fn output_counter_keeps_only_the_uncounted_text() {
        let mut counter = OutputCounter::default();
        let word = "token ";
        let mut whole = String::new();
        for _ in 0..2000 {
            counter.add(word);
            whole.push_str(word);
        }
        assert!(counter.pending.len() < 2 * COUNT_CHUNK);
        assert_eq!(counter.total(), count(&whole));
        // Without whitespace, text is held up to COUNT_MAX, then counted as it is.
        let mut counter = OutputCounter::default();
        let long = "x".repeat(COUNT_MAX);
        counter.add(&long);
        assert!(counter.pending.is_empty());
        assert_eq!(counter.total(), count(&long));
        // A flush separates blocks.
        let mut counter = OutputCounter::default();
        counter.add("{\"a\":");
        counter.flush();
        counter.add("1}");
        assert_eq!(counter.total(), count("{\"a\":") + count("1}"));
    }
}
