//! Token counting with tiktoken's `cl100k_base` (the upstream reports no counts in the events
//! commonly seen, protocol doc §7.9). The BPE is built once per process, on first use.
//! [`OutputCounter`] counts a streamed answer as it goes, for both renderers.
//!
//! [`count_cached`] remembers the counts of long texts by a hash of their content: Claude Code
//! re-sends the same conversation with one more turn each time (and fires dozens of
//! `count_tokens` calls with mostly the same content at start-up), so a warm count only encodes
//! what is new. Concurrent callers counting the same text wait for the one that counts it.
//! The cache is two generations of at most [`CACHE_GENERATION`] entries each: a hit in the old
//! generation moves to the new one, and a full new generation replaces the old — an approximate
//! LRU in a few lines, without a dependency for something this small.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Condvar, LazyLock, Mutex};

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

/// Texts shorter than this are counted directly: hashing and locking would cost about as much.
const CACHE_MIN_BYTES: usize = 512;
/// Entries per cache generation (two generations: at most about 2 × 50,000 × 40 bytes).
pub const CACHE_GENERATION: usize = 50_000;

enum Slot {
    Ready(u64),
    /// Being counted by another caller: wait for it.
    Pending(Arc<(Mutex<Option<u64>>, Condvar)>),
}

#[derive(Default)]
struct Cache {
    new: HashMap<u64, Slot>,
    old: HashMap<u64, Slot>,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Default::default);

fn content_key(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// [`count`], remembered for long texts (see the module doc). Blocking: call it off the async
/// workers for large inputs.
pub fn count_cached(text: &str) -> u64 {
    if text.len() < CACHE_MIN_BYTES {
        return count(text);
    }
    let key = content_key(text);
    let pending = {
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = cache.old.remove(&key) {
            cache.new.insert(key, slot);
        }
        match cache.new.get(&key) {
            Some(Slot::Ready(n)) => return *n,
            Some(Slot::Pending(p)) => Err(p.clone()),
            None => {
                let p = Arc::new((Mutex::new(None), Condvar::new()));
                if cache.new.len() >= CACHE_GENERATION {
                    cache.old = std::mem::take(&mut cache.new);
                }
                cache.new.insert(key, Slot::Pending(p.clone()));
                Ok(p)
            }
        }
    };
    match pending {
        Ok(mine) => {
            let n = count(text);
            *mine.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(n);
            mine.1.notify_all();
            let mut guard = CACHE.lock().unwrap_or_else(|p| p.into_inner());
            let cache = &mut *guard;
            for generation in [&mut cache.new, &mut cache.old] {
                if let Some(slot) = generation.get_mut(&key) {
                    *slot = Slot::Ready(n);
                }
            }
            n
        }
        Err(theirs) => {
            let mut value = theirs.0.lock().unwrap_or_else(|p| p.into_inner());
            while value.is_none() {
                value = theirs.1.wait(value).unwrap_or_else(|p| p.into_inner());
            }
            value.unwrap_or_default()
        }
    }
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
    fn cached_counts_equal_fresh_counts_and_concurrent_callers_share_one() {
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(200);
        let n = count(&text);
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let t = text.clone();
                std::thread::spawn(move || count_cached(&t))
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), n);
        }
        let key = content_key(&text);
        assert!(matches!(
            CACHE.lock().unwrap().new.get(&key),
            Some(Slot::Ready(m)) if *m == n
        ));
        // Short texts are not cached.
        assert_eq!(count_cached("hello world"), 2);
        assert!(!CACHE
            .lock()
            .unwrap()
            .new
            .contains_key(&content_key("hello world")));
    }

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
