//! `amq2api keys create|list|revoke`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use serde_json::json;

use super::{confirm, open_db, table};
use crate::cli::{CreateKeyArgs, ListArgs, RevokeArgs};
use crate::db::api_keys::{ApiKey, NewApiKey, PlainKey};
use crate::db::{self, api_keys};

pub fn create(database: &Path, args: CreateKeyArgs) -> anyhow::Result<ExitCode> {
    let name = args.name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        bail!(
            "invalid key name {:?}: 1 to 64 printable characters",
            args.name
        );
    }
    let now = db::now();
    let expires_at = args
        .expires
        .as_deref()
        .map(|text| parse_expiry(text, now))
        .transpose()
        .context("invalid --expires")?;
    let pool = open_db(database)?;
    let mut conn = pool.get()?;
    let key = PlainKey::generate();
    let hash = key.hashed();
    let prefix = key.display_prefix();
    let row = api_keys::insert(
        &mut conn,
        &NewApiKey {
            name,
            prefix: &prefix,
            key_hash: hash.as_str(),
            is_admin: args.admin,
            rpm_limit: args.rpm.map(|n| n as i32),
            concurrency_limit: args.concurrency.map(|n| n as i32),
            expires_at,
            created_at: now,
        },
    )
    .map_err(|e| match e {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => {
            anyhow!(
                "a live key named {name:?} already exists (revoke it first or pick another name)"
            )
        }
        other => anyhow!(other),
    })
    .context("cannot create key")?;
    // The key alone on stdout, so `KEY=$(amq2api keys create --name ci)` works.
    writeln!(std::io::stdout().lock(), "{}", key.expose())?;
    let mut note = format!("Created key {} ({}, id {})", row.name, row.prefix, row.id);
    if row.is_admin {
        note.push_str(", admin");
    }
    if let Some(rpm) = row.rpm_limit {
        note.push_str(&format!(", {rpm} requests/min"));
    }
    if let Some(n) = row.concurrency_limit {
        note.push_str(&format!(", {n} at once"));
    }
    if let Some(t) = row.expires_at {
        note.push_str(&format!(", expires {}", table::date(t)));
    }
    eprintln!("{note}. It is shown only this once: store it now.");
    Ok(ExitCode::SUCCESS)
}

/// `30d`, `12h`, `90min` (from now), or `2027-01-31` (midnight UTC), or an RFC 3339 time.
fn parse_expiry(text: &str, now: i64) -> anyhow::Result<i64> {
    let text = text.trim();
    let at = if let Ok(d) = humantime::parse_duration(text) {
        let secs = i64::try_from(d.as_secs()).map_err(|_| anyhow!("{text:?} is too far away"))?;
        now.checked_add(secs)
            .ok_or_else(|| anyhow!("{text:?} is too far away"))?
    } else if let Some(t) = table::parse_point_in_time(text) {
        t
    } else {
        bail!("{text:?} is neither a duration (30d, 12h) nor a date (2027-01-31)");
    };
    if at <= now {
        bail!("{text:?} is in the past");
    }
    Ok(at)
}

fn status(k: &ApiKey, now: i64) -> String {
    match (k.revoked_at, k.expires_at) {
        (Some(t), _) => format!("revoked {}", table::relative(t, now)),
        (None, Some(t)) if t <= now => "expired".into(),
        _ => "active".into(),
    }
}

pub fn list(database: &Path, args: ListArgs) -> anyhow::Result<ExitCode> {
    let pool = open_db(database)?;
    let rows = api_keys::list(&mut *pool.get()?).context("cannot list keys")?;
    let now = db::now();
    let key_json = |k: &ApiKey| {
        json!({
            "id": k.id,
            "name": k.name,
            "prefix": k.prefix,
            "admin": k.is_admin,
            "rpm_limit": k.rpm_limit,
            "concurrency_limit": k.concurrency_limit,
            "status": if k.revoked_at.is_some() { "revoked" } else if k.is_live(now) { "active" } else { "expired" },
            "created_at": table::rfc3339(Some(k.created_at)),
            "last_used_at": table::rfc3339(k.last_used_at),
            "expires_at": table::rfc3339(k.expires_at),
            "revoked_at": table::rfc3339(k.revoked_at),
        })
    };
    table::print_list(
        args.json,
        || rows.iter().map(key_json).collect(),
        "No keys. Create one with: amq2api keys create --name NAME",
        || {
            let mut t = table::new(&[
                "ID",
                "Name",
                "Prefix",
                "Admin",
                "RPM limit",
                "Created",
                "Last used",
                "Expires",
                "Status",
            ]);
            for k in &rows {
                t.add_row(vec![
                    k.id.to_string(),
                    k.name.clone(),
                    format!("{}…", k.prefix),
                    if k.is_admin { "yes" } else { "no" }.to_string(),
                    k.rpm_limit.map_or_else(|| "-".into(), |n| n.to_string()),
                    table::date(k.created_at),
                    table::last(k.last_used_at, now),
                    k.expires_at.map_or_else(|| "never".into(), table::date),
                    status(k, now),
                ]);
            }
            t
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn revoke(database: &Path, args: RevokeArgs) -> anyhow::Result<ExitCode> {
    let pool = open_db(database)?;
    let mut conn = pool.get()?;
    let reference = args.key.trim_end_matches('…');
    let matches = api_keys::find_by_ref(&mut conn, reference).context("cannot revoke key")?;
    let key = match matches.as_slice() {
        [] => bail!(
            "cannot revoke key: no key with id, name or prefix {:?}",
            args.key
        ),
        [one] => one.clone(),
        many => bail!(
            "cannot revoke key: {:?} matches {} keys (ids {}); give an id",
            args.key,
            many.len(),
            many.iter()
                .map(|k| k.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    if key.revoked_at.is_some() {
        bail!(
            "cannot revoke key: key {} ({}) is already revoked",
            key.id,
            key.name
        );
    }
    let question = format!(
        "Revoke key {} ({}, {}…)? Clients using it stop working.",
        key.id, key.name, key.prefix
    );
    if !confirm(&question, args.yes).context("cannot revoke key")? {
        writeln!(std::io::stderr(), "Not revoked.")?;
        return Ok(ExitCode::FAILURE);
    }
    api_keys::revoke(&mut conn, key.id, db::now()).context("cannot revoke key")?;
    writeln!(
        std::io::stdout().lock(),
        "Revoked key {} ({})",
        key.id,
        key.name
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_expiry;

    #[test]
    fn expiry_forms() {
        assert_eq!(parse_expiry("30d", 1000).unwrap(), 1000 + 30 * 86_400);
        assert_eq!(parse_expiry("90min", 0).unwrap(), 5400);
        assert_eq!(parse_expiry("2027-01-31", 0).unwrap(), 1_801_353_600);
        assert_eq!(
            parse_expiry("2027-01-31T00:00:00Z", 0).unwrap(),
            1_801_353_600
        );
        assert_eq!(
            parse_expiry("2020-01-01", 1_800_000_000)
                .unwrap_err()
                .to_string(),
            "\"2020-01-01\" is in the past"
        );
        assert!(parse_expiry("soon", 0).is_err());
    }
}
