//! Account files users already have (protocol doc §2) → [`AccountInput`]s: a single object, an
//! array, `{"accounts": [...]}`, the botocore SSO cache, Kiro's `kiro-auth-token.json` with its
//! client-registration file, the Amazon Q CLI's snake_case store, and Kiro Account Manager
//! exports. Pure: reading files is the caller's job (except Kiro's sibling registration file).
//! Error messages name fields, never their values, so no secret reaches a terminal or a log.

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::db::accounts::{token_hash, AccountInput, AuthKind};

pub const DEFAULT_REGION: &str = "us-east-1";

/// One input file (or standard input).
#[derive(Debug, Clone)]
pub struct Source {
    /// How messages name it: the path as given, or `<stdin>`.
    pub label: String,
    /// The folder holding it, to find a Kiro client-registration file next to it.
    pub dir: Option<PathBuf>,
    /// The file name without `.json` (Kiro names a registration file after `clientIdHash`).
    pub stem: Option<String>,
    pub text: String,
}

/// One account entry of a file, parsed or rejected.
#[derive(Debug)]
pub struct Entry {
    pub source: String,
    /// 1-based position among the account entries of its file, and their count.
    pub index: usize,
    pub total: usize,
    pub result: Result<Parsed, String>,
}

impl Entry {
    /// "accounts.json: entry 2 of 3"
    pub fn location(&self) -> String {
        format!("{}: entry {} of {}", self.source, self.index, self.total)
    }
}

#[derive(Debug)]
pub struct Parsed {
    pub input: AccountInput,
    /// A stable name derived from labels in the file, never from a secret.
    pub suggested_name: String,
}

/// A client registration (`clientId` + `clientSecret` without a refresh token).
#[derive(Debug, Clone)]
struct Registration {
    stem: Option<String>,
    client_id: String,
    client_secret: String,
}

/// The JSON objects of one file, or why it has none.
type FileObjects = Result<Vec<Map<String, Value>>, String>;

/// Parses every source. A file that is not JSON, or not an object/array of objects, is one
/// rejected entry (index 1 of 1) so `--skip-invalid` can report it like any other.
pub fn parse_sources(sources: &[Source]) -> Vec<Entry> {
    let mut files: Vec<(&Source, FileObjects)> = Vec::new();
    let mut registrations: Vec<Registration> = Vec::new();
    for source in sources {
        let objects = objects_of(&source.text);
        if let Ok(objs) = &objects {
            for obj in objs {
                if let Some(reg) = registration_of(obj, source.stem.clone()) {
                    registrations.push(reg);
                }
            }
        }
        files.push((source, objects));
    }
    let mut out = Vec::new();
    for (source, objects) in files {
        match objects {
            Err(reason) => out.push(Entry {
                source: source.label.clone(),
                index: 1,
                total: 1,
                result: Err(reason),
            }),
            Ok(objs) => {
                let accounts: Vec<&Map<String, Value>> = objs
                    .iter()
                    .filter(|o| registration_of(o, None).is_none())
                    .collect();
                let total = accounts.len();
                for (i, obj) in accounts.into_iter().enumerate() {
                    out.push(Entry {
                        source: source.label.clone(),
                        index: i + 1,
                        total,
                        result: parse_account(obj, source, &registrations),
                    });
                }
            }
        }
    }
    out
}

/// The JSON objects of a file: an object, an array of objects, or `{"accounts": [...]}`.
/// Kiro Account Manager entries keep their secrets under `credentials`; those are lifted up.
fn objects_of(text: &str) -> FileObjects {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON ({e})"))?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut obj) => match obj.remove("accounts") {
            Some(Value::Array(items)) => items,
            Some(_) => return Err("field \"accounts\" must be an array".into()),
            None => vec![Value::Object(obj)],
        },
        _ => return Err("expected a JSON object or an array of objects".into()),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(mut obj) => {
                if let Some(Value::Object(creds)) = obj.remove("credentials") {
                    for (k, v) in creds {
                        obj.entry(k).or_insert(v);
                    }
                }
                Ok(obj)
            }
            _ => Err(format!("item {} is not a JSON object", i + 1)),
        })
        .collect()
}

fn registration_of(obj: &Map<String, Value>, stem: Option<String>) -> Option<Registration> {
    if REFRESH_TOKEN.iter().any(|k| obj.contains_key(*k)) {
        return None;
    }
    let client_id = str_field(obj, CLIENT_ID).ok().flatten()?;
    let client_secret = str_field(obj, CLIENT_SECRET).ok().flatten()?;
    Some(Registration {
        stem,
        client_id,
        client_secret,
    })
}

const CLIENT_ID: &[&str] = &["clientId", "client_id"];
const CLIENT_SECRET: &[&str] = &["clientSecret", "client_secret"];
const REFRESH_TOKEN: &[&str] = &["refreshToken", "refresh_token"];
const ACCESS_TOKEN: &[&str] = &["accessToken", "access_token"];
const EXPIRES_AT: &[&str] = &["expiresAt", "expires_at"];
const REGION: &[&str] = &["region", "idcRegion", "authRegion"];
const PROFILE_ARN: &[&str] = &["profileArn", "profile_arn"];
const START_URL: &[&str] = &["startUrl", "start_url"];
const AUTH_METHOD: &[&str] = &["authMethod", "auth_method", "authType"];
const PROVIDER: &[&str] = &["provider"];
const CLIENT_ID_HASH: &[&str] = &["clientIdHash", "client_id_hash"];
const LABELS: &[&str] = &["label", "name", "email", "nickname"];

/// A string field under any of its spellings; null counts as absent, another type is an error.
fn str_field(obj: &Map<String, Value>, names: &[&str]) -> Result<Option<String>, String> {
    for name in names {
        match obj.get(*name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if s.trim().is_empty() => continue,
            Some(Value::String(s)) => return Ok(Some(s.trim().to_owned())),
            Some(_) => return Err(format!("field \"{name}\" must be a string")),
        }
    }
    Ok(None)
}

fn required(obj: &Map<String, Value>, names: &[&str]) -> Result<String, String> {
    str_field(obj, names)?.ok_or_else(|| format!("missing field \"{}\"", names[0]))
}

fn parse_account(
    obj: &Map<String, Value>,
    source: &Source,
    registrations: &[Registration],
) -> Result<Parsed, String> {
    let refresh_token = required(obj, REFRESH_TOKEN)?;
    if refresh_token.contains("...") || refresh_token.chars().any(char::is_whitespace) {
        return Err("field \"refreshToken\" looks truncated or malformed".into());
    }
    let provider = str_field(obj, PROVIDER)?;
    let kind = match str_field(obj, AUTH_METHOD)? {
        Some(method) => match method
            .to_ascii_lowercase()
            .replace(['_', ' '], "-")
            .as_str()
        {
            "social" => AuthKind::Social,
            "idc" | "builder-id" | "builderid" | "iam" | "identity-center" | "identitycenter" => {
                AuthKind::Idc
            }
            "api-key" => {
                return Err("field \"authMethod\": Kiro API keys are not supported".into());
            }
            _ => return Err("field \"authMethod\" must be \"IdC\" or \"social\"".into()),
        },
        None => match provider.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("google") | Some("github") => AuthKind::Social,
            _ => AuthKind::Idc,
        },
    };
    let mut client_id = str_field(obj, CLIENT_ID)?;
    let mut client_secret = str_field(obj, CLIENT_SECRET)?;
    if kind == AuthKind::Idc && (client_id.is_none() || client_secret.is_none()) {
        if let Some(reg) = find_registration(obj, source, registrations)? {
            client_id = client_id.or(Some(reg.client_id));
            client_secret = client_secret.or(Some(reg.client_secret));
        }
        if client_id.is_none() {
            return Err(missing_client_field(obj, "clientId"));
        }
        if client_secret.is_none() {
            return Err(missing_client_field(obj, "clientSecret"));
        }
    }
    let access_token = str_field(obj, ACCESS_TOKEN)?;
    let expires = EXPIRES_AT
        .iter()
        .find_map(|n| obj.get(*n).filter(|v| !v.is_null()));
    let access_token_expires_at = match expires {
        None => None,
        Some(v) => Some(parse_time(v).ok_or("field \"expiresAt\" is not a date")?),
    };
    let region = str_field(obj, REGION)?.unwrap_or_else(|| DEFAULT_REGION.to_owned());
    if !valid_region(&region) {
        return Err("field \"region\" is not an AWS region (like us-east-1)".into());
    }
    let profile_arn = str_field(obj, PROFILE_ARN)?;
    if let Some(arn) = &profile_arn {
        if !arn.starts_with("arn:aws:codewhisperer:") {
            return Err("field \"profileArn\" is not a CodeWhisperer profile ARN".into());
        }
    }
    let suggested_name = LABELS
        .iter()
        .find_map(|l| str_field(obj, &[l]).ok().flatten())
        .map(|l| sanitize_name(&l))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| {
            let base = match (
                kind,
                provider.as_deref().map(str::to_ascii_lowercase).as_deref(),
            ) {
                (AuthKind::Social, Some(p @ ("google" | "github"))) => p.to_owned(),
                (AuthKind::Social, _) => "social".to_owned(),
                (AuthKind::Idc, Some("enterprise")) => "idc".to_owned(),
                (AuthKind::Idc, _) => "builder-id".to_owned(),
            };
            format!("{base}-{}", &token_hash(&refresh_token)[..8])
        });
    Ok(Parsed {
        input: AccountInput {
            kind,
            client_id,
            client_secret,
            refresh_token,
            access_token,
            access_token_expires_at,
            region,
            profile_arn,
            start_url: str_field(obj, START_URL)?,
            rpm_limit: None,
        },
        suggested_name,
    })
}

fn missing_client_field(obj: &Map<String, Value>, field: &str) -> String {
    match str_field(obj, CLIENT_ID_HASH).ok().flatten() {
        Some(hash) => format!(
            "missing field \"{field}\" (give the client-registration file {hash}.json alongside it)"
        ),
        None => format!("missing field \"{field}\""),
    }
}

/// The registration for a Kiro/Q token object without client credentials: the file named after
/// its `clientIdHash` (given on the command line, or next to the token file), else the only
/// registration given.
fn find_registration(
    obj: &Map<String, Value>,
    source: &Source,
    registrations: &[Registration],
) -> Result<Option<Registration>, String> {
    if let Some(hash) = str_field(obj, CLIENT_ID_HASH)? {
        if let Some(reg) = registrations
            .iter()
            .find(|r| r.stem.as_deref() == Some(hash.as_str()))
        {
            return Ok(Some(reg.clone()));
        }
        let safe = hash
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if let (true, Some(dir)) = (safe, &source.dir) {
            if let Ok(text) = std::fs::read_to_string(dir.join(format!("{hash}.json"))) {
                if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(&text) {
                    if let Some(reg) = registration_of(&o, Some(hash.clone())) {
                        return Ok(Some(reg));
                    }
                }
            }
        }
    }
    Ok(match registrations {
        [only] => Some(only.clone()),
        _ => None,
    })
}

/// RFC 3339 text, or a number of seconds (or milliseconds, when it is that large) since 1970.
fn parse_time(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s.trim())
            .ok()
            .map(|t| t.timestamp()),
        Value::Number(n) => {
            let n = n.as_f64()?;
            let secs = if n > 1e11 { n / 1000.0 } else { n };
            (secs.is_finite() && secs >= 0.0).then_some(secs as i64)
        }
        _ => None,
    }
}

fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()))
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// Letters, digits and `._@-`; anything else becomes `-`; at most 64 characters.
pub fn sanitize_name(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.trim().chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-') {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out.trim_matches('-').chars().take(64).collect()
}

/// Names for the accounts of one run: `--name` as given for one entry, or `NAME-1`, `NAME-2`, ...
/// for several; otherwise the derived names.
pub fn names_for(entries: &[&Parsed], name: Option<&str>) -> Vec<String> {
    match name {
        Some(n) if entries.len() == 1 => vec![n.to_owned()],
        Some(n) => (1..=entries.len()).map(|i| format!("{n}-{i}")).collect(),
        None => entries.iter().map(|p| p.suggested_name.clone()).collect(),
    }
}

/// How many entries of each outcome a summary line reports.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub added: usize,
    pub updated: usize,
    pub skipped: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(label: &str, text: &str) -> Source {
        Source {
            label: label.into(),
            dir: None,
            stem: Some(label.trim_end_matches(".json").into()),
            text: text.into(),
        }
    }

    fn ok(entries: &[Entry]) -> Vec<&Parsed> {
        entries.iter().map(|e| e.result.as_ref().unwrap()).collect()
    }

    #[test]
    fn single_object_camel_case() {
        let e = parse_sources(&[src(
            "a.json",
            r#"{"clientId":"cid","clientSecret":"cs","refreshToken":"rt1","region":"eu-central-1","label":"Work Account"}"#,
        )]);
        let p = ok(&e);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].input.kind, AuthKind::Idc);
        assert_eq!(p[0].input.region, "eu-central-1");
        assert_eq!(p[0].suggested_name, "Work-Account");
    }

    #[test]
    fn array_accounts_wrapper_and_snake_case() {
        let e = parse_sources(&[src(
            "b.json",
            r#"{"accounts":[{"client_id":"c","client_secret":"s","refresh_token":"r1"},{"clientId":"c","clientSecret":"s","refreshToken":"r2","expiresAt":"2026-03-01T12:00:00Z"}]}"#,
        )]);
        let p = ok(&e);
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].input.access_token_expires_at, Some(1772366400));
        assert!(p[0].suggested_name.starts_with("builder-id-"));
        assert_eq!(e[1].location(), "b.json: entry 2 of 2");
    }

    #[test]
    fn kiro_token_with_registration_file() {
        let token = r#"{"accessToken":"aoa","refreshToken":"aor","expiresAt":"2026-03-01T07:54:17.089Z","clientIdHash":"e909","authMethod":"IdC","provider":"BuilderId","region":"us-east-1"}"#;
        let reg = r#"{"clientId":"cid","clientSecret":"cs","expiresAt":"2026-05-30T12:00:00Z"}"#;
        let e = parse_sources(&[src("kiro-auth-token.json", token), src("e909.json", reg)]);
        assert_eq!(e.len(), 1, "the registration is not an account");
        let p = ok(&e);
        assert_eq!(p[0].input.client_id.as_deref(), Some("cid"));
        // Without it, the error says which file is needed.
        let e = parse_sources(&[src("kiro-auth-token.json", token)]);
        assert_eq!(
            e[0].result.as_ref().unwrap_err(),
            "missing field \"clientId\" (give the client-registration file e909.json alongside it)"
        );
    }

    #[test]
    fn social_and_kam_exports() {
        let e = parse_sources(&[src(
            "kam.json",
            r#"[{"email":"me@example.com","credentials":{"refreshToken":"r","authMethod":"social","region":"us-east-1"},"status":"ok"},{"refreshToken":"r2","provider":"Github","profileArn":"arn:aws:codewhisperer:us-east-1:1:profile/X"}]"#,
        )]);
        let p = ok(&e);
        assert_eq!(p[0].input.kind, AuthKind::Social);
        assert_eq!(p[0].suggested_name, "me@example.com");
        assert_eq!(p[1].input.kind, AuthKind::Social);
        assert!(p[1].suggested_name.starts_with("github-"));
    }

    #[test]
    fn errors_name_the_field_never_the_value() {
        let cases = [
            (r#"{"clientId":"c","clientSecret":"s"}"#, None),
            (
                r#"{"clientId":"c","refreshToken":"SECRET1"}"#,
                Some("missing field \"clientSecret\""),
            ),
            (
                r#"{"clientId":"c","clientSecret":"s","refreshToken":42}"#,
                Some("field \"refreshToken\" must be a string"),
            ),
            (
                r#"{"clientId":"c","clientSecret":"s","refreshToken":"SECRET1","expiresAt":"soon"}"#,
                Some("field \"expiresAt\" is not a date"),
            ),
            (
                r#"{"clientId":"c","clientSecret":"s","refreshToken":"SECRET1","region":"mars"}"#,
                Some("field \"region\" is not an AWS region (like us-east-1)"),
            ),
            (
                r#"{"clientId":"c","clientSecret":"s","refreshToken":"SECR...ET"}"#,
                Some("field \"refreshToken\" looks truncated or malformed"),
            ),
            (r#"[1]"#, Some("item 1 is not a JSON object")),
        ];
        for (text, want) in cases {
            let e = parse_sources(&[src("f.json", text)]);
            match want {
                None => assert!(e.is_empty(), "a lone registration is not an account"),
                Some(w) => assert_eq!(e[0].result.as_ref().unwrap_err(), w),
            }
        }
        let e = parse_sources(&[src("f.json", "{not json")]);
        let msg = e[0].result.as_ref().unwrap_err();
        assert!(
            msg.starts_with("not valid JSON (key must be a string at line 1 column 2"),
            "{msg}"
        );
    }

    #[test]
    fn names() {
        assert_eq!(sanitize_name("  My  Account/1 "), "My-Account-1");
        let e = parse_sources(&[src(
            "a.json",
            r#"[{"clientId":"c","clientSecret":"s","refreshToken":"a"},{"clientId":"c","clientSecret":"s","refreshToken":"b"}]"#,
        )]);
        let p = ok(&e);
        assert_eq!(names_for(&p, Some("team")), ["team-1", "team-2"]);
        assert_eq!(names_for(&p[..1], Some("team")), ["team"]);
    }
}
