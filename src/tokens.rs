//! Token counting with tiktoken's `cl100k_base` (the upstream reports no counts in the events
//! commonly seen, protocol doc §7.9). [`OutputCounter`] counts a streamed answer as it goes, for
//! both renderers.
//!
//! Counting is tiktoken's algorithm with tiktoken-rs's own merge function and vocabulary; only
//! the split of the text into pieces is ours ([`pieces`]). tiktoken-rs splits with fancy-regex
//! because cl100k's pattern has one look-ahead (`\s+(?!\S)`), and that split is most of its
//! time (its own notes say the `regex` crate is about 3× faster). We split with the `regex`
//! crate and the look-ahead left out, then give a whitespace run's last character back to the
//! word that follows, which is exactly what the look-ahead does; a property test checks the
//! counts against tiktoken-rs's own `encode_ordinary`. The vocabulary is taken out of
//! tiktoken-rs's `CoreBPE` once, and the `CoreBPE` (encoder, decoder, sorted tokens and 256
//! regex copies) is dropped: one rank table is all that counting needs.
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

use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input};
use rustc_hash::FxHashMap;

/// cl100k_base's ordinary tokens (tiktoken-rs's `byte_pair_encode` takes this very map type).
static RANKS: LazyLock<FxHashMap<Vec<u8>, u32>> = LazyLock::new(|| {
    let bpe = tiktoken_rs::cl100k_base().expect("cl100k_base is embedded");
    let mut ranks = FxHashMap::default();
    ranks.reserve(CL100K_ORDINARY as usize);
    let all = (0..CL100K_ORDINARY).collect();
    for (rank, bytes) in (0..CL100K_ORDINARY).zip(bpe._decode_native_and_split(all)) {
        ranks.insert(bytes, rank);
    }
    ranks
});

/// cl100k_base's ordinary tokens are ranks 0..100256; the special ones come after.
const CL100K_ORDINARY: u32 = 100_256;

/// cl100k_base's split pattern (tiktoken-rs `openai_public.rs`) without `\s+(?!\S)|`: see
/// [`pieces`] for how its effect is restored.
static SPLIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}",
        r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+"
    ))
    .expect("the split pattern compiles")
});

/// The pieces cl100k's pattern cuts `text` into. Every character matches some alternative, so
/// the matches tile the text. A piece of whitespace only comes from `\s*[\r\n]+` (it then ends
/// with a line break) or from the last alternative, `\s+`. In the original pattern that last
/// case is `\s+(?!\S)|\s+`: when such a run of two or more characters is followed by a
/// non-space, the look-ahead stops one character short, and that character starts the next
/// piece (`"  x"` is `" "`, `" x"`). That is the one correction made here.
///
/// Each search is anchored where the last piece ended (no search backwards for a start), with
/// the thread's own cache (the regex's lazy DFA states stay built between texts, and there is no
/// trip to the regex's shared cache pool per piece). `each` gets the pieces in order.
fn pieces(text: &str, mut each: impl FnMut(&str)) {
    thread_local! {
        static SPLIT_CACHE: std::cell::RefCell<regex_automata::meta::Cache> =
            std::cell::RefCell::new(SPLIT.create_cache());
    }
    SPLIT_CACHE.with_borrow_mut(|cache| {
        let mut at = 0;
        while at < text.len() {
            let input = Input::new(text).range(at..).anchored(Anchored::Yes);
            let Some(found) = SPLIT.search_with(cache, &input) else {
                // Unreachable: every character matches some alternative. Count the rest as one.
                each(&text[at..]);
                return;
            };
            let mut end = found.end();
            let piece = &text[at..end];
            if !piece.ends_with(['\r', '\n'])
                && piece.chars().all(char::is_whitespace)
                && text[end..]
                    .chars()
                    .next()
                    .is_some_and(|c| !c.is_whitespace())
            {
                if let Some((last, _)) = piece.char_indices().next_back().filter(|&(i, _)| i > 0) {
                    end = at + last;
                }
            }
            each(&text[at..end]);
            at = end;
        }
    });
}

/// Tokens in `text` (special-token markers are counted as plain text).
pub fn count(text: &str) -> u64 {
    let ranks = &*RANKS;
    let mut total = 0;
    pieces(text, |piece| {
        let bytes = piece.as_bytes();
        total += if ranks.contains_key(bytes) {
            1
        } else {
            tiktoken_rs::byte_pair_split(bytes, ranks).len() as u64
        };
    });
    total
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

/// Runs `job` on one of a few counting threads of the process's own at a low scheduling
/// priority (nice 10), for counts nobody waits on right away (the input estimate of a request
/// whose upstream call is under way). On a busy core the request path then keeps the CPU and
/// the count takes what is left, instead of half of it. (Tokio's blocking pool cannot lower the
/// priority of one job: a thread's niceness cannot be raised back without privileges.)
pub fn count_in_background<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> tokio::sync::oneshot::Receiver<T> {
    type Job = Box<dyn FnOnce() + Send>;
    static JOBS: LazyLock<Mutex<std::sync::mpsc::Sender<Job>>> = LazyLock::new(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("count-{i}"))
                .spawn(move || {
                    #[cfg(unix)]
                    // SAFETY: setpriority(2) on the calling thread (who = 0) has no memory effects.
                    unsafe {
                        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
                    }
                    loop {
                        let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("cannot start a counting thread");
        }
        Mutex::new(tx)
    });
    let (done, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(job());
    });
    let _ = JOBS.lock().unwrap_or_else(|p| p.into_inner()).send(job);
    result
}

/// Loads the vocabulary and compiles the split pattern now (at server start) instead of on the
/// first request.
pub fn warm_up() {
    LazyLock::force(&RANKS);
    LazyLock::force(&SPLIT);
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

    /// tiktoken-rs's own encoder, the reference the split must reproduce.
    fn reference(text: &str) -> u64 {
        static REFERENCE: LazyLock<tiktoken_rs::CoreBPE> =
            LazyLock::new(|| tiktoken_rs::cl100k_base().unwrap());
        REFERENCE.encode_ordinary(text).len() as u64
    }

    #[test]
    fn counts_equal_tiktoken_on_whitespace_edge_cases() {
        let cases = [
            "",
            " ",
            "  ",
            "x  y",
            "x   y",
            "  x",
            "\t\tfoo",
            "a \n\n  b",
            "a\r\n\r\n  b",
            "end   ",
            "  1",
            "x  ,y",
            "\u{3000}\u{3000}漢字",
            "a\u{a0}\u{a0}b",
            "don't  I'LL  we've",
            "fn main() {\n    let x = 1;\n\n    println!(\"{x}\");\n}\n",
            "  \n  \n\t\tx",
            "1234567 89",
            "e\u{301}e\u{301}  \u{301}",
            "🙂  🙂x",
            "\u{0}\u{1}  \u{7f}",
        ];
        for text in cases {
            assert_eq!(count(text), reference(text), "{text:?}");
        }
        let mut cut = Vec::new();
        pieces("x   y\n\n  z", |p| cut.push(p.to_owned()));
        assert_eq!(cut, ["x", "  ", " y", "\n\n", " ", " z"]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
        /// Texts drawn from the characters the pattern treats differently: kinds of whitespace
        /// and line breaks, letters (cased, CJK, combining marks), digits, punctuation,
        /// apostrophes, emoji and control characters.
        #[test]
        fn counts_equal_tiktoken(text in "[ \\t\\n\\r\u{a0}\u{3000}aZé漢\u{301}0-9'.,{}()_/\"😀\u{1}-]{0,64}") {
            proptest::prop_assert_eq!(count(&text), reference(&text));
        }
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
