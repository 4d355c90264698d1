//! Tool names Amazon Q accepts (`^[a-zA-Z][a-zA-Z0-9_-]*$`, at most 64 characters; protocol doc
//! §3.6, §7.7) and the map back to the client's names. Long MCP names
//! (`mcp__plugin_server__a_very_long_tool_name…`) are shortened deterministically, so the same
//! name always maps to the same upstream name, across requests and in history.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// Longest name sent upstream. Peers disagree between 63 and 64; 63 is safe for both.
pub const MAX_TOOL_NAME: usize = 63;
/// Characters kept from the original name before the hash suffix.
const KEPT: usize = 54;

fn valid(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_TOOL_NAME
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The upstream name for a client tool name: unchanged when Amazon Q accepts it, otherwise the
/// first 54 usable characters (others replaced by `_`), `_`, and 8 hex digits of the SHA-256 of
/// the original name (63 characters at most).
pub fn upstream_name(name: &str) -> String {
    if valid(name) {
        return name.to_owned();
    }
    let mut cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(KEPT)
        .collect();
    if !cleaned.starts_with(|c: char| c.is_ascii_alphabetic()) {
        cleaned.insert(0, 't');
        cleaned.truncate(KEPT);
    }
    let hash = hex::encode(Sha256::digest(name.as_bytes()));
    format!("{cleaned}_{}", &hash[..8])
}

/// Upstream name → the client's name, for every tool name of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolNames {
    to_client: HashMap<String, String>,
}

impl ToolNames {
    /// Registers a client name; returns the name to send upstream.
    pub fn register(&mut self, client_name: &str) -> String {
        let upstream = upstream_name(client_name);
        if upstream != client_name {
            self.to_client
                .insert(upstream.clone(), client_name.to_owned());
        }
        upstream
    }

    /// The client's name for a name Amazon Q used (unknown names pass through; Amazon Q
    /// matches tool names case-insensitively, so a case-only difference still maps back).
    pub fn client_name(&self, upstream: &str) -> String {
        if let Some(name) = self.to_client.get(upstream) {
            return name.clone();
        }
        self.to_client
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(upstream))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| upstream.to_owned())
    }

    /// Whether any name was shortened.
    pub fn is_empty(&self) -> bool {
        self.to_client.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_valid_names_pass_through() {
        assert_eq!(upstream_name("run_shell"), "run_shell");
        assert_eq!(upstream_name("mcp__fs__read-file"), "mcp__fs__read-file");
    }

    #[test]
    fn long_and_invalid_names_are_shortened_deterministically_and_mapped_back() {
        let long = "mcp__plugin_claude-code-home_playwright__browser_take_screenshot_of_the_page";
        let up = upstream_name(long);
        assert_eq!(up.len(), 63);
        assert!(valid(&up));
        assert_eq!(up, upstream_name(long));
        assert_eq!(&up[..54], &long[..54]);
        assert_ne!(upstream_name(&format!("{long}2")), up);
        let dotted = upstream_name("server.tool:read");
        assert!(
            valid(&dotted) && dotted.starts_with("server_tool_read_"),
            "{dotted}"
        );
        let digit = upstream_name("1tool");
        assert!(valid(&digit) && digit.starts_with("t1tool_"), "{digit}");
        let mut names = ToolNames::default();
        let sent = names.register(long);
        assert_eq!(names.register("ok_tool"), "ok_tool");
        assert_eq!(names.client_name(&sent), long);
        assert_eq!(names.client_name(&sent.to_uppercase()), long);
        assert_eq!(names.client_name("ok_tool"), "ok_tool");
        assert_eq!(names.client_name("unknown"), "unknown");
    }
}
