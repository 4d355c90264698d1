//! Monitoring-page sessions: a random id in an `HttpOnly`, `SameSite=Strict` cookie, and in
//! memory (lost on restart, which only means signing in again) the admin key it belongs to and
//! when it ends. The map is keyed by the id's SHA-256, so a lookup's timing says nothing about
//! a valid id. The key itself is re-checked on every page load by the handler, so revoking it
//! with the CLI ends its sessions.
//!
//! The `Set-Cookie` and `Cookie` headers are written and read by hand: the value is base64url
//! (nothing to encode), and actix-web's `cookies` feature would bring the `cookie` and `time`
//! crates for two header lines.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The cookie's name.
pub const COOKIE: &str = "amq2api_admin";
/// How long a session lasts after signing in.
pub const TTL: Duration = Duration::from_secs(12 * 3600);

struct Session {
    key_id: i32,
    expires: Instant,
}

/// The live sessions of this server process.
#[derive(Default)]
pub struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.by_hash.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session for `key_id`; returns its id (32 random bytes, base64url). Ended sessions
    /// are dropped on the way.
    pub fn create(&self, key_id: i32) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        let mut map = self.map();
        map.retain(|_, s| s.expires > now);
        map.insert(
            digest(&id),
            Session {
                key_id,
                expires: now + TTL,
            },
        );
        id
    }

    /// The key id of a live session.
    pub fn key_of(&self, id: &str) -> Option<i32> {
        let mut map = self.map();
        let hash = digest(id);
        match map.get(&hash) {
            Some(s) if s.expires > Instant::now() => Some(s.key_id),
            Some(_) => {
                map.remove(&hash);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) {
        self.map().remove(&digest(id));
    }

    /// Ends every session of a key (it was revoked, expired or lost its admin flag).
    pub fn remove_key(&self, key_id: i32) {
        self.map().retain(|_, s| s.key_id != key_id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map().len()
    }
}

/// The session id the request carries, if any.
pub fn from_request(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// `Secure` only over https (directly, or as a proxy reports it with `Forwarded` or
/// `X-Forwarded-Proto`): over plain http a browser would not send the cookie back.
fn secure(req: &HttpRequest) -> &'static str {
    if req.connection_info().scheme() == "https" {
        "; Secure"
    } else {
        ""
    }
}

/// The `Set-Cookie` value that starts a session.
pub fn set_cookie(req: &HttpRequest, id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/admin; Max-Age={}; HttpOnly; SameSite=Strict{}",
        TTL.as_secs(),
        secure(req)
    )
}

/// The `Set-Cookie` value that removes it.
pub fn clear_cookie(req: &HttpRequest) -> String {
    format!(
        "{COOKIE}=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict{}",
        secure(req)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn sessions_are_random_tied_to_a_key_and_removable() {
        let s = Sessions::default();
        let a = s.create(1);
        let b = s.create(1);
        let c = s.create(2);
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "32 bytes in base64url without padding");
        assert!(a
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
        assert_eq!(s.key_of(&a), Some(1));
        assert_eq!(s.key_of(&c), Some(2));
        assert_eq!(s.key_of("nope"), None);
        s.remove(&a);
        assert_eq!(s.key_of(&a), None);
        s.remove_key(1);
        assert_eq!(s.key_of(&b), None);
        assert_eq!(s.key_of(&c), Some(2));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn an_ended_session_is_gone() {
        let s = Sessions::default();
        let id = s.create(7);
        s.map().get_mut(&digest(&id)).unwrap().expires = Instant::now();
        assert_eq!(s.key_of(&id), None);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn cookies() {
        let req = TestRequest::default()
            .insert_header(("cookie", "other=1; amq2api_admin=abc-_9; x=y"))
            .to_http_request();
        assert_eq!(from_request(&req).as_deref(), Some("abc-_9"));
        assert_eq!(
            set_cookie(&req, "abc"),
            "amq2api_admin=abc; Path=/admin; Max-Age=43200; HttpOnly; SameSite=Strict"
        );
        let https = TestRequest::default()
            .insert_header(("x-forwarded-proto", "https"))
            .to_http_request();
        assert_eq!(from_request(&https), None);
        assert_eq!(
            clear_cookie(&https),
            "amq2api_admin=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict; Secure"
        );
    }
}
