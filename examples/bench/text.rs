//! Deterministic, realistic conversation text for the token-counting figures: English-like
//! prose from a varied vocabulary and code-like lines (identifiers, numbers, punctuation), from
//! a seeded RNG, so the same seed always gives the same text and the same token count.
//! Conversations are sized in tokens through a characters-per-token ratio measured once
//! ([`calibrate`]) with the gateway's own tokenizer, so building them costs no counting.

use std::sync::LazyLock;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const WORDS: &str = "the of and to in is that for it as with was on be by this are or at from \
    an have not but they which one you all were her she there would their we him been has when \
    who will more no if out so said what up its about into than them can only other new some \
    could time these two may then do first any my now such like our over man me even most made \
    after also did many before must through back years where much your way well down should \
    because each just those people how too little state good very make world still own see men \
    work long get here between both life being under never day same another know while last \
    might us great old year off come since against go came right used take three request \
    response server client stream buffer latency account token cache upstream gateway worker \
    thread socket handler payload header parser encoder decoder frame event message model \
    context window budget quota refresh pool metric histogram counter percentile benchmark \
    database transaction migration index query schema column row batch queue writer reader \
    allocation memory throughput concurrency scheduler runtime executor future async await \
    closure iterator vector string slice pointer lifetime borrow ownership trait generic \
    module crate function method struct enum variant pattern match error result option \
    configuration environment variable deployment container service endpoint protocol \
    timeout retry backoff failover health check signal shutdown graceful pipeline render \
    summary estimate approximately carefully quickly although however therefore meanwhile \
    elaborate consistent deterministic reproducible independent significant particular \
    interesting reasonable straightforward complicated unexpected obvious remarkable \
    mountain river ocean forest garden kitchen library museum village harbour station \
    morning evening winter summer autumn spring weather thunder breeze sunlight shadow \
    whisper journey adventure discovery conversation argument agreement decision question \
    answer problem solution example reason purpose method approach strategy analysis";

const IDENTS: &str = "buf len idx count total offset limit value item items key map cache \
    conn pool req resp body chunk frame event token tokens state ctx cfg config err result \
    handler writer reader stream client server account accounts usage row rows batch queue \
    start end deadline elapsed latency bytes text name path url header headers payload";

const TYPES: &str = "Vec<u8>|String|usize|u64|i64|bool|Bytes|Option<String>|Result<(), Error>|\
    HashMap<String, u64>|&str|Duration|Instant|Arc<State>";

static WORD_LIST: LazyLock<Vec<&str>> = LazyLock::new(|| WORDS.split_whitespace().collect());
static IDENT_LIST: LazyLock<Vec<&str>> = LazyLock::new(|| IDENTS.split_whitespace().collect());
static TYPE_LIST: LazyLock<Vec<&str>> = LazyLock::new(|| TYPES.split('|').map(str::trim).collect());

/// A seeded text source.
pub struct TextGen {
    rng: StdRng,
}

impl TextGen {
    pub fn new(seed: u64) -> TextGen {
        TextGen {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn pick(&mut self, from: &'static [&'static str]) -> &'static str {
        from[self.rng.random_range(0..from.len())]
    }

    fn ident(&mut self) -> String {
        let a = self.pick(&IDENT_LIST);
        match self.rng.random_range(0..4) {
            0 => format!("{a}_{}", self.pick(&IDENT_LIST)),
            1 => format!("{a}{}", self.rng.random_range(0..100)),
            _ => a.to_owned(),
        }
    }

    /// English-like prose of about `chars` characters.
    pub fn prose(&mut self, chars: usize) -> String {
        let mut out = String::with_capacity(chars + 64);
        let mut sentence_len = 0;
        while out.len() < chars {
            let mut word = self.pick(&WORD_LIST).to_owned();
            if sentence_len == 0 {
                word[..1].make_ascii_uppercase();
            }
            out.push_str(&word);
            sentence_len += 1;
            let end = sentence_len > 6 && self.rng.random_bool(0.12);
            if end {
                out.push_str(if self.rng.random_bool(0.9) {
                    ". "
                } else {
                    "? "
                });
                sentence_len = 0;
                if self.rng.random_bool(0.15) {
                    out.push_str("\n\n");
                }
            } else if self.rng.random_bool(0.07) {
                out.push_str(", ");
            } else if self.rng.random_bool(0.02) {
                out.push_str(&format!(" {} ", self.rng.random_range(2..5000)));
            } else {
                out.push(' ');
            }
        }
        out
    }

    /// Code-like lines of about `chars` characters, in a fenced block.
    pub fn code(&mut self, chars: usize) -> String {
        let mut out = String::from("```rust\n");
        let mut depth = 0usize;
        while out.len() < chars {
            let indent = "    ".repeat(depth);
            let line = match self.rng.random_range(0..7) {
                0 if depth < 3 => {
                    depth += 1;
                    format!(
                        "fn {}({}: {}, {}: {}) -> {} {{",
                        self.ident(),
                        self.ident(),
                        self.pick(&TYPE_LIST),
                        self.ident(),
                        self.pick(&TYPE_LIST),
                        self.pick(&TYPE_LIST)
                    )
                }
                1 if depth < 3 => {
                    depth += 1;
                    format!(
                        "if {} > {} {{",
                        self.ident(),
                        self.rng.random_range(0..4096)
                    )
                }
                2 if depth > 0 => {
                    depth -= 1;
                    "}".to_owned()
                }
                3 => format!(
                    "let {} = {}.{}({}, {});",
                    self.ident(),
                    self.ident(),
                    self.ident(),
                    self.ident(),
                    self.rng.random_range(0..1000)
                ),
                4 => {
                    let n = 40 + self.rng.random_range(0..40);
                    format!("// {}", self.prose(n).trim_end())
                }
                5 => format!(
                    "{}.push_str(&format!(\"{{}}: {{}}\", {}, {}));",
                    self.ident(),
                    self.ident(),
                    self.ident()
                ),
                _ => format!(
                    "return Err(Error::{}(\"{}\".into()));",
                    self.ident(),
                    self.ident()
                ),
            };
            out.push_str(&indent);
            out.push_str(&line);
            out.push('\n');
        }
        for d in (0..depth).rev() {
            out.push_str(&"    ".repeat(d));
            out.push_str("}\n");
        }
        out.push_str("```\n");
        out
    }

    /// A message of about `chars` characters: prose with a code block in about half of them.
    pub fn message(&mut self, chars: usize) -> String {
        if chars > 600 && self.rng.random_bool(0.5) {
            let code = chars * self.rng.random_range(3..7) / 10;
            let mut out = self.prose(chars - code);
            out.push_str("\n\n");
            out.push_str(&self.code(code));
            out
        } else {
            self.prose(chars)
        }
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n.max(1))
    }
}

/// Characters per cl100k token of this generator's text, measured with the gateway's tokenizer.
pub fn calibrate() -> f64 {
    let mut g = TextGen::new(0xCA11B);
    let mut text = String::new();
    while text.len() < 400_000 {
        let n = 2_000 + g.below(4_000);
        text.push_str(&g.message(n));
        text.push_str("\n\n");
    }
    text.len() as f64 / amq2api::tokens::count(&text) as f64
}

/// A Claude conversation: system prompt, alternating turns, ending with the user's.
#[derive(Clone)]
pub struct Conversation {
    pub system: String,
    pub turns: Vec<String>,
}

/// Conversations sized in tokens.
pub struct Sizer {
    pub chars_per_token: f64,
}

impl Sizer {
    fn chars(&self, tokens: usize) -> usize {
        (tokens as f64 * self.chars_per_token) as usize
    }

    /// About `tokens` tokens in all: a system prompt of a tenth (at most 2,000 tokens), turns of
    /// 600–1,800 tokens, an odd number of them.
    pub fn conversation(&self, seed: u64, tokens: usize) -> Conversation {
        let mut g = TextGen::new(seed);
        let system_tokens = (tokens / 10).min(2_000);
        let system = g.message(self.chars(system_tokens));
        let mut left = tokens - system_tokens;
        let mut turns = Vec::new();
        while left > 0 {
            let t = (600 + g.below(1_200)).min(left);
            let t = if left - t < 200 { left } else { t };
            turns.push(g.message(self.chars(t)));
            left -= t;
        }
        if turns.len() % 2 == 0 {
            // End with the user's turn: the last two become one.
            let last = turns.pop().unwrap_or_default();
            if let Some(prev) = turns.last_mut() {
                prev.push_str("\n\n");
                prev.push_str(&last);
            }
        }
        Conversation { system, turns }
    }

    /// The same conversation plus one exchange: an assistant answer and a new user turn of
    /// about `tokens` tokens each.
    pub fn extend(&self, c: &Conversation, seed: u64, tokens: usize) -> Conversation {
        let mut g = TextGen::new(seed);
        let mut out = c.clone();
        out.turns.push(g.message(self.chars(tokens)));
        out.turns.push(g.message(self.chars(tokens)));
        out
    }
}

impl Conversation {
    /// A `/v1/messages` body (`max_tokens` and `stream` included; count_tokens ignores them).
    pub fn request(&self, stream: bool) -> Value {
        let messages: Vec<Value> = self
            .turns
            .iter()
            .enumerate()
            .map(|(i, text)| {
                json!({
                    "role": if i % 2 == 0 { "user" } else { "assistant" },
                    "content": [{"type": "text", "text": text}],
                })
            })
            .collect();
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "stream": stream,
            "system": [{"type": "text", "text": self.system}],
            "messages": messages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_text() {
        let s = Sizer {
            chars_per_token: 4.0,
        };
        let a = s.conversation(7, 5_000);
        let b = s.conversation(7, 5_000);
        assert_eq!(a.turns, b.turns);
        assert_eq!(a.turns.len() % 2, 1);
        assert_ne!(s.conversation(8, 5_000).turns, a.turns);
    }
}
