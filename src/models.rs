//! Client model names → Amazon Q model ids (protocol doc §4): the built-in alias table, the
//! family rule for names newer than the table, the operator's overrides and default model, and
//! the context window of each upstream id.
//!
//! [`ModelMap::resolve`] applies, in this order:
//! 1. a `-thinking` suffix is stripped (and reported in [`Resolved::thinking`]);
//! 2. the operator's overrides (`from=to`, exact, case-insensitive);
//! 3. Amazon Q ids themselves (`claude-sonnet-4.5`, …) pass through unchanged;
//! 4. Anthropic names, short or dated (`claude-sonnet-4-5`, `claude-sonnet-4-5-20250929`,
//!    `claude-3-5-haiku-latest`, `claude-sonnet-4-5@20250929`, an optional `[1m]`-style tag);
//! 5. the family rule: any name containing `opus` / `sonnet` / `haiku` gets the best Amazon Q id
//!    of that family (so Claude Code's `claude-opus-5-5` works before we have heard of it);
//! 6. everything else (`gpt-4o`, `o3`, `gemini-…`) gets the default model.
//!
//! Decisions:
//! * `*-4-6` / `*-4.6` sonnet and opus names map to `claude-sonnet-4.6` / `claude-opus-4.6`
//!   (2+ peers use these ids; a client that names 4.6 explicitly should get 4.6, and an account
//!   that lacks it answers with a model error the operator can fix with an override). The family
//!   rule, used for names we do not know, stays on the 4.5 ids that every peer reports working.
//! * Anthropic's Sonnet 4 names (`claude-sonnet-4-0`, `claude-sonnet-4-20250514`) and the 3.x
//!   sonnet/haiku names map to the 4.5 ids: `claude-sonnet-4` was reported rejected upstream
//!   (linbmv/q2api), and a newer model is a better answer than an error. The Amazon Q id
//!   `claude-sonnet-4` itself still passes through for operators who know their account has it.
//! * Override targets and the default model are looked up in steps 3–4 (so `gpt-4o=claude-opus-4-5`
//!   works) and otherwise sent verbatim (so a brand-new upstream id can be used without a release).

/// The default upstream model when nothing else matches.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4.5";

/// Longest name accepted as a model name.
const MAX_MODEL_NAME: usize = 128;

/// Amazon Q model ids that pass through unchanged (§4.1).
const UPSTREAM_IDS: &[&str] = &[
    "claude-sonnet-4.5",
    "claude-haiku-4.5",
    "claude-opus-4.5",
    "claude-sonnet-4.6",
    "claude-opus-4.6",
    "claude-sonnet-4",
    "claude-3.7-sonnet",
];

/// Anthropic model names (undated; a date, `-latest` or `@date` suffix also matches) → Amazon Q id.
const CLAUDE_NAMES: &[(&str, &str)] = &[
    ("claude-sonnet-4-5", "claude-sonnet-4.5"),
    ("claude-haiku-4-5", "claude-haiku-4.5"),
    ("claude-opus-4-5", "claude-opus-4.5"),
    ("claude-sonnet-4-6", "claude-sonnet-4.6"),
    ("claude-opus-4-6", "claude-opus-4.6"),
    ("claude-sonnet-4-0", "claude-sonnet-4.5"),
    // Only dated: the bare `claude-sonnet-4` is an Amazon Q id and passes through.
    ("claude-sonnet-4-20250514", "claude-sonnet-4.5"),
    ("claude-opus-4-1", "claude-opus-4.5"),
    ("claude-opus-4-0", "claude-opus-4.5"),
    ("claude-opus-4", "claude-opus-4.5"),
    ("claude-3-7-sonnet", "claude-sonnet-4.5"),
    ("claude-3-5-sonnet", "claude-sonnet-4.5"),
    ("claude-3-5-haiku", "claude-haiku-4.5"),
];

/// The models `/v1/models` lists: Anthropic names clients pick from, with a display name and
/// release date (UTC midnight). Each is listed plain and with the `-thinking` suffix.
const LISTED: &[(&str, &str, &str)] = &[
    ("claude-opus-4-6", "Claude Opus 4.6", "2026-02-05"),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-17"),
    ("claude-opus-4-5", "Claude Opus 4.5", "2025-11-24"),
    ("claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-15"),
    ("claude-sonnet-4-5", "Claude Sonnet 4.5", "2025-09-29"),
];

/// One entry of the model list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedModel {
    pub id: String,
    pub display_name: String,
    /// Release date, unix seconds.
    pub created: i64,
}

/// Family keyword → the best Amazon Q id of that family, for names newer than the table.
const FAMILIES: &[(&str, &str)] = &[
    ("opus", "claude-opus-4.5"),
    ("sonnet", "claude-sonnet-4.5"),
    ("haiku", "claude-haiku-4.5"),
];

/// The model table: built-in aliases plus the operator's overrides and default model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMap {
    /// `(lower-case client name, upstream id)`, in the order given.
    overrides: Vec<(String, String)>,
    default_model: String,
}

impl Default for ModelMap {
    fn default() -> Self {
        Self {
            overrides: Vec::new(),
            default_model: DEFAULT_MODEL.to_owned(),
        }
    }
}

/// The outcome of [`ModelMap::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The Amazon Q `modelId`.
    pub upstream: String,
    /// A `-thinking` suffix was stripped: the caller turns thinking on.
    pub thinking: bool,
}

impl ModelMap {
    /// The built-in table with `overrides` (`"from=to,from2=to2"`, blanks ignored) and a default
    /// model for names of other vendors (`""` keeps [`DEFAULT_MODEL`]).
    pub fn with_overrides(overrides: &str, default_model: &str) -> Result<ModelMap, String> {
        let default_model = default_model.trim();
        let default_model = if default_model.is_empty() {
            DEFAULT_MODEL.to_owned()
        } else {
            check_name(default_model).map_err(|e| format!("default model: {e}"))?;
            known_alias(&default_model.to_ascii_lowercase())
                .unwrap_or(default_model)
                .to_owned()
        };
        let mut parsed = Vec::new();
        for item in overrides.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let Some((from, to)) = item.split_once('=') else {
                return Err(format!(
                    "model override {item:?}: expected `client-name=upstream-id`"
                ));
            };
            let (from, to) = (from.trim(), to.trim());
            check_name(from).map_err(|e| format!("model override {item:?}: {e}"))?;
            check_name(to).map_err(|e| format!("model override {item:?}: {e}"))?;
            let to = known_alias(&to.to_ascii_lowercase()).unwrap_or(to);
            parsed.push((from.to_ascii_lowercase(), to.to_owned()));
        }
        Ok(ModelMap {
            overrides: parsed,
            default_model,
        })
    }

    /// The upstream model for a client's model name. `Err` only for a name that is empty or
    /// clearly not a model name (control characters, whitespace inside, over 128 characters).
    pub fn resolve(&self, requested: &str) -> Result<Resolved, String> {
        let requested = requested.trim();
        check_name(requested).map_err(|e| format!("model: {e}"))?;
        let lower = requested.to_ascii_lowercase();
        let (name, thinking) = match lower.strip_suffix("-thinking") {
            Some(base) if !base.is_empty() => (base, true),
            _ => (lower.as_str(), false),
        };
        let upstream = self
            .overrides
            .iter()
            .find(|(from, _)| from == name)
            .map(|(_, to)| to.clone())
            .or_else(|| known_alias(name).map(str::to_owned))
            .or_else(|| family(name).map(str::to_owned))
            .unwrap_or_else(|| self.default_model.clone());
        Ok(Resolved { upstream, thinking })
    }

    /// The context window, in tokens, of an upstream model id: 1,000,000 for the `*-4.6` ids
    /// (Kiro since 2026-03, §3.6), 200,000 otherwise.
    pub fn context_window(upstream_model: &str) -> u64 {
        if upstream_model.to_ascii_lowercase().ends_with("-4.6") {
            1_000_000
        } else {
            200_000
        }
    }

    /// Every mapping, in resolution order, for the README and a `models` listing: overrides,
    /// pass-through ids, Anthropic names, family rules (`*opus*`), then `*` → the default.
    pub fn table(&self) -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> = self.overrides.clone();
        rows.extend(
            UPSTREAM_IDS
                .iter()
                .map(|id| (id.to_string(), id.to_string())),
        );
        rows.extend(
            CLAUDE_NAMES
                .iter()
                .map(|(from, to)| (from.to_string(), to.to_string())),
        );
        rows.extend(
            FAMILIES
                .iter()
                .map(|(kw, to)| (format!("*{kw}*"), to.to_string())),
        );
        rows.push(("*".to_owned(), self.default_model.clone()));
        rows
    }

    /// What `/v1/models` lists: the operator's override names first (newest first is not
    /// meaningful for them), then the built-in Anthropic names, each followed by its `-thinking`
    /// variant.
    pub fn listed(&self) -> Vec<ListedModel> {
        let date = |d: &str| {
            chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map(|d| {
                    d.and_hms_opt(0, 0, 0)
                        .unwrap_or_default()
                        .and_utc()
                        .timestamp()
                })
                .unwrap_or(0)
        };
        let created_of = |upstream: &str| {
            LISTED
                .iter()
                .find(|(name, _, _)| known_alias(name) == Some(upstream))
                .map_or(0, |(_, _, d)| date(d))
        };
        let mut out: Vec<ListedModel> = self
            .overrides
            .iter()
            .map(|(from, to)| ListedModel {
                id: from.clone(),
                display_name: from.clone(),
                created: created_of(to),
            })
            .collect();
        for (id, display, d) in LISTED {
            for (suffix, note) in [("", ""), ("-thinking", " (thinking)")] {
                out.push(ListedModel {
                    id: format!("{id}{suffix}"),
                    display_name: format!("{display}{note}"),
                    created: date(d),
                });
            }
        }
        out
    }

    /// The default model for names of other vendors.
    pub fn default_model(&self) -> &str {
        &self.default_model
    }
}

/// Rejects names that cannot be a model: empty, control characters, whitespace inside, too long.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a model name is required".to_owned());
    }
    if name.chars().count() > MAX_MODEL_NAME {
        return Err(format!(
            "model name longer than {MAX_MODEL_NAME} characters"
        ));
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("{name:?} is not a model name"));
    }
    Ok(())
}

/// Steps 3–4: an Amazon Q id, or an Anthropic name with an optional date / tag suffix.
fn known_alias(lower: &str) -> Option<&'static str> {
    if let Some(id) = UPSTREAM_IDS.iter().find(|id| **id == lower) {
        return Some(id);
    }
    let base = strip_version_suffix(lower);
    [lower, base].into_iter().find_map(|name| {
        CLAUDE_NAMES
            .iter()
            .find(|(from, _)| *from == name)
            .map(|(_, to)| *to)
    })
}

/// `claude-sonnet-4-5-20250929[1m]` → `claude-sonnet-4-5`: drops a trailing `[…]` tag, then one
/// `-YYYYMMDD`, `@YYYYMMDD` or `-latest` suffix.
fn strip_version_suffix(name: &str) -> &str {
    let mut name = name;
    if name.ends_with(']') {
        if let Some(open) = name.rfind('[') {
            name = &name[..open];
        }
    }
    if let Some(base) = name.strip_suffix("-latest") {
        return base;
    }
    // Compared as bytes: the name may end in any UTF-8 (found by fuzzing), and slicing it 9
    // bytes from the end could cut a character. The 9 bytes matched are ASCII, so the cut is safe.
    if let Some(at) = name.len().checked_sub(9).filter(|&at| at > 0) {
        let (sep, digits) = (name.as_bytes()[at], &name.as_bytes()[at + 1..]);
        if matches!(sep, b'-' | b'@') && digits.iter().all(u8::is_ascii_digit) {
            return &name[..at];
        }
    }
    name
}

/// Step 5: the family rule.
fn family(lower: &str) -> Option<&'static str> {
    FAMILIES
        .iter()
        .find(|(kw, _)| lower.contains(kw))
        .map(|(_, to)| *to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_models_resolve_to_what_their_names_say() {
        let map = ModelMap::with_overrides("gpt-4o=claude-opus-4-5", "").unwrap();
        let listed = map.listed();
        assert_eq!(listed.len(), 11);
        assert_eq!(
            listed[0],
            ListedModel {
                id: "gpt-4o".into(),
                display_name: "gpt-4o".into(),
                created: 1_763_942_400
            }
        );
        assert_eq!(
            listed[1],
            ListedModel {
                id: "claude-opus-4-6".into(),
                display_name: "Claude Opus 4.6".into(),
                created: 1_770_249_600
            }
        );
        assert_eq!(listed[2].id, "claude-opus-4-6-thinking");
        assert_eq!(listed[2].display_name, "Claude Opus 4.6 (thinking)");
        for m in &listed[1..] {
            let r = map.resolve(&m.id).unwrap();
            assert_eq!(r.thinking, m.id.ends_with("-thinking"), "{}", m.id);
            let base = m.id.trim_end_matches("-thinking");
            assert_eq!(r.upstream, known_alias(base).unwrap(), "{}", m.id);
        }
    }

    fn up(map: &ModelMap, name: &str) -> String {
        map.resolve(name).unwrap().upstream
    }

    #[test]
    fn thinking_suffix_is_stripped_first() {
        let map = ModelMap::default();
        assert_eq!(
            map.resolve("claude-sonnet-4-5-thinking").unwrap(),
            Resolved {
                upstream: "claude-sonnet-4.5".to_owned(),
                thinking: true
            }
        );
        assert_eq!(
            map.resolve("claude-opus-4.6-Thinking").unwrap(),
            Resolved {
                upstream: "claude-opus-4.6".to_owned(),
                thinking: true
            }
        );
        assert!(!map.resolve("claude-sonnet-4-5").unwrap().thinking);
        // A bare "-thinking" is a (strange) name, not a suffix.
        assert_eq!(up(&map, "-thinking"), DEFAULT_MODEL);
        // Overrides see the stripped name.
        let map = ModelMap::with_overrides("my-model=claude-haiku-4.5", "").unwrap();
        assert_eq!(
            map.resolve("my-model-thinking").unwrap(),
            Resolved {
                upstream: "claude-haiku-4.5".to_owned(),
                thinking: true
            }
        );
    }

    #[test]
    fn overrides_come_first_and_are_case_insensitive() {
        let map = ModelMap::with_overrides(
            " gpt-4o = claude-opus-4-5 , claude-sonnet-4-5=claude-sonnet-4, ,X=claude-opus-4.7",
            "",
        )
        .unwrap();
        assert_eq!(up(&map, "GPT-4o"), "claude-opus-4.5"); // target resolved through the aliases
        assert_eq!(up(&map, "claude-sonnet-4-5"), "claude-sonnet-4"); // beats the built-in alias
        assert_eq!(up(&map, "x"), "claude-opus-4.7"); // unknown target sent verbatim
        assert_eq!(up(&map, "claude-sonnet-4-5-20250929"), "claude-sonnet-4.5"); // exact only
        assert!(ModelMap::with_overrides("nothing", "").is_err());
        assert!(ModelMap::with_overrides("a=", "").is_err());
        assert!(ModelMap::with_overrides("=b", "").is_err());
        assert!(ModelMap::with_overrides("a=b c", "").is_err());
        assert_eq!(
            ModelMap::with_overrides("", "").unwrap(),
            ModelMap::default()
        );
    }

    #[test]
    fn upstream_ids_pass_through() {
        let map = ModelMap::default();
        for id in UPSTREAM_IDS {
            assert_eq!(up(&map, id), *id);
            assert_eq!(up(&map, &id.to_uppercase()), *id);
        }
    }

    #[test]
    fn anthropic_names_short_and_dated() {
        let map = ModelMap::default();
        let cases = [
            ("claude-sonnet-4-5", "claude-sonnet-4.5"),
            ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
            ("claude-sonnet-4-5@20250929", "claude-sonnet-4.5"),
            ("claude-sonnet-4-5-20250929[1m]", "claude-sonnet-4.5"),
            ("claude-haiku-4-5", "claude-haiku-4.5"),
            ("claude-haiku-4-5-20251001", "claude-haiku-4.5"),
            ("claude-opus-4-5", "claude-opus-4.5"),
            ("claude-opus-4-5-20251101", "claude-opus-4.5"),
            ("claude-sonnet-4-20250514", "claude-sonnet-4.5"),
            ("claude-sonnet-4-0", "claude-sonnet-4.5"),
            ("claude-opus-4-1-20250805", "claude-opus-4.5"),
            ("claude-3-7-sonnet-20250219", "claude-sonnet-4.5"),
            ("claude-3-7-sonnet-latest", "claude-sonnet-4.5"),
            ("claude-3-5-sonnet-20241022", "claude-sonnet-4.5"),
            ("claude-3-5-sonnet-20240620", "claude-sonnet-4.5"),
            ("claude-3-5-haiku-20241022", "claude-haiku-4.5"),
            ("claude-sonnet-4-6", "claude-sonnet-4.6"),
            ("claude-sonnet-4-6[1m]", "claude-sonnet-4.6"),
            ("claude-opus-4-6", "claude-opus-4.6"),
            ("claude-opus-4-6-20260201", "claude-opus-4.6"),
        ];
        for (name, want) in cases {
            assert_eq!(up(&map, name), want, "{name}");
        }
    }

    #[test]
    fn family_rule_for_unknown_versions() {
        let map = ModelMap::default();
        let cases = [
            ("claude-opus-5-5", "claude-opus-4.5"), // Claude Code 2.1.x default
            ("claude-opus-4-7", "claude-opus-4.5"),
            ("claude-sonnet-5", "claude-sonnet-4.5"),
            ("claude-haiku-4-6", "claude-haiku-4.5"),
            ("claude-3-opus-20240229", "claude-opus-4.5"),
            ("claude-3-haiku-20240307", "claude-haiku-4.5"),
            (
                "anthropic.claude-sonnet-4-5-20250929-v1:0",
                "claude-sonnet-4.5",
            ),
            ("CLAUDE_SONNET_4_5_20250929_V1_0", "claude-sonnet-4.5"),
            ("sonnet", "claude-sonnet-4.5"),
            ("opus", "claude-opus-4.5"),
        ];
        for (name, want) in cases {
            assert_eq!(up(&map, name), want, "{name}");
        }
    }

    #[test]
    fn other_vendors_get_the_default_model() {
        let map = ModelMap::default();
        for name in ["gpt-4o", "o3", "gemini-2.5-pro", "deepseek-chat", "auto"] {
            assert_eq!(up(&map, name), DEFAULT_MODEL, "{name}");
        }
        let map = ModelMap::with_overrides("", "claude-haiku-4-5").unwrap();
        assert_eq!(up(&map, "gpt-4o"), "claude-haiku-4.5");
        assert_eq!(map.default_model(), "claude-haiku-4.5");
        let map = ModelMap::with_overrides("", "claude-opus-4.8").unwrap();
        assert_eq!(up(&map, "gpt-4o"), "claude-opus-4.8");
        assert!(ModelMap::with_overrides("", "two words").is_err());
    }

    #[test]
    fn names_that_are_not_models_are_errors() {
        let map = ModelMap::default();
        assert!(map.resolve("").is_err());
        assert!(map.resolve("   ").is_err());
        assert!(map.resolve("claude sonnet").is_err());
        assert!(map.resolve("claude\u{0}sonnet").is_err());
        assert!(map.resolve(&"a".repeat(129)).is_err());
        assert!(map.resolve(&"a".repeat(128)).is_ok());
        // Surrounding whitespace is forgiven.
        assert_eq!(up(&map, " claude-sonnet-4-5\n"), "claude-sonnet-4.5");
    }

    #[test]
    fn context_windows() {
        assert_eq!(ModelMap::context_window("claude-sonnet-4.6"), 1_000_000);
        assert_eq!(ModelMap::context_window("claude-opus-4.6"), 1_000_000);
        assert_eq!(ModelMap::context_window("claude-sonnet-4.5"), 200_000);
        assert_eq!(ModelMap::context_window("claude-haiku-4.5"), 200_000);
        assert_eq!(ModelMap::context_window("anything"), 200_000);
    }

    #[test]
    fn table_lists_every_step_in_order() {
        let map = ModelMap::with_overrides("gpt-4o=claude-opus-4.5", "claude-haiku-4.5").unwrap();
        let table = map.table();
        assert_eq!(
            table[0],
            ("gpt-4o".to_owned(), "claude-opus-4.5".to_owned())
        );
        assert_eq!(
            table[1],
            (
                "claude-sonnet-4.5".to_owned(),
                "claude-sonnet-4.5".to_owned()
            )
        );
        assert!(table.contains(&(
            "claude-sonnet-4-5".to_owned(),
            "claude-sonnet-4.5".to_owned()
        )));
        assert!(table.contains(&("*opus*".to_owned(), "claude-opus-4.5".to_owned())));
        assert_eq!(
            table.last().unwrap(),
            &("*".to_owned(), "claude-haiku-4.5".to_owned())
        );
        // Every table row resolves as listed (the wildcard rows aside).
        for (from, to) in table.iter().filter(|(f, _)| !f.contains('*')) {
            assert_eq!(&up(&map, from), to, "{from}");
        }
    }

    /// Found by fuzzing: a name whose ninth byte from the end is inside a character panicked.
    #[test]
    fn names_ending_in_any_utf8_resolve() {
        let map = ModelMap::default();
        for name in [
            "ctype=aude\u{357}ayku-5-5",
            "x\u{4d3}12345678",
            "é-20250929",
            "claude-ü-20250929",
        ] {
            assert!(map.resolve(name).is_ok(), "{name}");
        }
        assert_eq!(strip_version_suffix("claude-ü-20250929"), "claude-ü");
        assert_eq!(strip_version_suffix("é-2025092"), "é-2025092");
    }
}
