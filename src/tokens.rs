//! Token counting with tiktoken's `cl100k_base` (the upstream reports no counts in the events
//! commonly seen, protocol doc §7.9). The BPE is built once per process, on first use.

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

#[cfg(test)]
mod tests {
    #[test]
    fn counts() {
        assert_eq!(super::count(""), 0);
        assert_eq!(super::count("hello world"), 2);
        assert_eq!(super::count("<|endoftext|>"), 7);
    }
}
