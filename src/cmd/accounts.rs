//! `amq2api accounts import|list|add|enable|disable|remove`.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use serde_json::json;

use super::{confirm, open_db, table};
use crate::cli::{
    AccountRef, AddArgs, ImportArgs, KindArg, ListArgs, RefreshArgs, RemoveArgs, SetArgs,
};
use crate::db::accounts::{Account, AccountInput, AuthKind, Health, LimitChanges, Upserted};
use crate::db::{self, accounts};
use crate::import::{self, Source, Summary};
use crate::q::client::http_client;
use crate::q::config::UpstreamConfig;
use crate::q::token::{permanent_reason, Refresher, TokenError};

pub fn import(database: &Path, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let mut sources = Vec::new();
    let mut summary = Summary::default();
    let mut stdin_used = false;
    for file in &args.files {
        let source = if file.as_os_str() == "-" {
            if stdin_used {
                bail!("cannot import accounts: standard input (-) given twice");
            }
            stdin_used = true;
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot import accounts: cannot read standard input")?;
            Source {
                label: "<stdin>".into(),
                dir: None,
                stem: None,
                text,
            }
        } else {
            match std::fs::read_to_string(file) {
                Ok(text) => Source {
                    label: file.display().to_string(),
                    dir: file.parent().map(Path::to_path_buf),
                    stem: file.file_stem().map(|s| s.to_string_lossy().into_owned()),
                    text,
                },
                Err(e) if args.skip_invalid => {
                    eprintln!("skipped {}: {e}", file.display());
                    summary.skipped += 1;
                    continue;
                }
                Err(e) => {
                    return Err(anyhow!(e)).with_context(|| {
                        format!("cannot import accounts: cannot read {}", file.display())
                    });
                }
            }
        };
        sources.push(source);
    }

    let entries = import::parse_sources(&sources);
    let mut valid = Vec::new();
    for entry in &entries {
        match &entry.result {
            Ok(parsed) => valid.push(parsed),
            Err(reason) if args.skip_invalid => {
                eprintln!("skipped {}: {reason}", entry.location());
                summary.skipped += 1;
            }
            Err(reason) => bail!("cannot import accounts: {}: {reason}", entry.location()),
        }
    }
    if entries.is_empty() && summary.skipped == 0 {
        bail!("cannot import accounts: no account found in the given files");
    }
    let names = import::names_for(&valid, args.name.as_deref());
    if let Some(name) = &args.name {
        check_name(name)?;
    }

    let pool = open_db(database)?;
    let mut conn = pool.get().context("cannot open database")?;
    let now = db::now();
    // One transaction: either every valid entry is written or, on any error, none.
    let outcomes = conn
        .immediate_transaction(|c| {
            valid
                .iter()
                .zip(&names)
                .map(|(parsed, name)| {
                    accounts::upsert(c, &parsed.input, name, args.name.is_some(), now)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .context("cannot import accounts")?;
    for outcome in outcomes {
        match outcome {
            Upserted::Added(_) => summary.added += 1,
            Upserted::Updated(_) => summary.updated += 1,
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} added, {} updated, {} skipped",
        summary.added, summary.updated, summary.skipped
    )?;
    Ok(ExitCode::SUCCESS)
}

fn check_name(name: &str) -> anyhow::Result<()> {
    if name.trim().is_empty() || name != import::sanitize_name(name) {
        bail!("invalid account name {name:?}: use letters, digits and . _ @ - (at most 64)");
    }
    Ok(())
}

pub fn list(database: &Path, args: ListArgs) -> anyhow::Result<ExitCode> {
    let pool = open_db(database)?;
    let rows = accounts::list(&mut *pool.get()?).context("cannot list accounts")?;
    let now = db::now();
    table::print_list(
        args.json,
        || rows.iter().map(|a| account_json(a, now)).collect(),
        "No accounts. Add some with: amq2api accounts import FILE",
        || {
            let mut t = table::new(&[
                "ID",
                "Name",
                "Kind",
                "Region",
                "Enabled",
                "Health",
                "Token expires",
                "Last used",
            ]);
            for a in &rows {
                t.add_row(vec![
                    a.id.to_string(),
                    a.name.clone(),
                    a.auth_kind.clone(),
                    a.region.clone(),
                    if a.enabled { "yes" } else { "no" }.to_string(),
                    health_text(a, now),
                    table::expiry(a.access_token_expires_at, now),
                    table::last(a.last_used_at, now),
                ]);
            }
            t
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// "active", "cooling until 2026-11-26 14:05 UTC (in 12 min)", "disabled: refresh token invalid".
fn health_text(a: &Account, now: i64) -> String {
    let health = a.health_state();
    let mut text = health.as_str().to_owned();
    if let Some(until) = a.health_until.filter(|_| health != Health::Active) {
        text = format!(
            "{text} until {} ({})",
            table::date(until),
            table::relative(until, now)
        );
    }
    if let Some(reason) = a
        .health_reason
        .as_deref()
        .filter(|_| health != Health::Active)
    {
        text = format!("{text}: {reason}");
    }
    text
}

/// "60/min, 2 at once, weight 3" (what `accounts set` reports), or "-" without limits and with
/// the default weight.
fn limits_text(a: &Account) -> String {
    let mut parts = Vec::new();
    if let Some(n) = a.rpm_limit {
        parts.push(format!("{n}/min"));
    }
    if let Some(n) = a.concurrency_limit {
        parts.push(format!("{n} at once"));
    }
    if a.weight != 1 {
        parts.push(format!("weight {}", a.weight));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// The `--json` form of an account: everything but the secrets.
fn account_json(a: &Account, now: i64) -> serde_json::Value {
    json!({
        "id": a.id,
        "name": a.name,
        "kind": a.auth_kind,
        "region": a.region,
        "profile_arn": a.profile_arn,
        "enabled": a.enabled,
        "health": a.health,
        "health_until": table::rfc3339(a.health_until),
        "health_reason": a.health_reason,
        "rpm_limit": a.rpm_limit,
        "concurrency_limit": a.concurrency_limit,
        "weight": a.weight,
        "access_token_expires_at": table::rfc3339(a.access_token_expires_at),
        "access_token_valid": a.access_token.is_some() && a.access_token_expires_at.is_some_and(|t| t > now),
        "created_at": table::rfc3339(Some(a.created_at)),
        "updated_at": table::rfc3339(Some(a.updated_at)),
        "last_used_at": table::rfc3339(a.last_used_at),
    })
}

pub fn add(database: &Path, args: AddArgs) -> anyhow::Result<ExitCode> {
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let ask = |flag: &str, prompt: &str, secret: bool| -> anyhow::Result<String> {
        if !interactive {
            bail!("missing --{flag} (no terminal to ask on)");
        }
        let value = if secret {
            dialoguer::Password::new().with_prompt(prompt).interact()?
        } else {
            dialoguer::Input::<String>::new()
                .with_prompt(prompt)
                .interact_text()?
        };
        Ok(value.trim().to_owned())
    };
    let kind = match args.kind {
        Some(k) => k,
        None if interactive => {
            let i = dialoguer::Select::new()
                .with_prompt("Kind")
                .items(&[
                    "idc (Builder ID / IAM Identity Center)",
                    "social (Kiro Google/GitHub)",
                ])
                .default(0)
                .interact()?;
            if i == 0 {
                KindArg::Idc
            } else {
                KindArg::Social
            }
        }
        None => KindArg::Idc,
    };
    let kind = match kind {
        KindArg::Idc => AuthKind::Idc,
        KindArg::Social => AuthKind::Social,
    };
    let name = match args.name {
        Some(n) => n,
        None => ask("name", "Account name", false)?,
    };
    check_name(&name)?;
    let (client_id, client_secret) = if kind == AuthKind::Idc {
        let id = match args.client_id {
            Some(v) => v,
            None => ask("client-id", "Client id", false)?,
        };
        let secret = match args.client_secret {
            Some(v) => v,
            None => ask("client-secret", "Client secret", true)?,
        };
        (Some(id), Some(secret))
    } else {
        (args.client_id, args.client_secret)
    };
    let refresh_token = match args.refresh_token {
        Some(v) => v,
        None => ask("refresh-token", "Refresh token", true)?,
    };
    // The same validation as an imported file, so both paths accept exactly the same accounts.
    let mut obj = serde_json::Map::new();
    obj.insert(
        "authMethod".into(),
        json!(if kind == AuthKind::Idc {
            "IdC"
        } else {
            "social"
        }),
    );
    obj.insert("refreshToken".into(), json!(refresh_token));
    obj.insert("clientId".into(), json!(client_id));
    obj.insert("clientSecret".into(), json!(client_secret));
    obj.insert("region".into(), json!(args.region));
    obj.insert("profileArn".into(), json!(args.profile_arn));
    let entries = import::parse_sources(&[Source {
        label: "account".into(),
        dir: None,
        stem: None,
        text: serde_json::Value::Object(obj).to_string(),
    }]);
    let parsed = match entries.into_iter().next().map(|e| e.result) {
        Some(Ok(parsed)) => parsed,
        Some(Err(reason)) => bail!("cannot add account: {}", reason.replace("field \"", "\"")),
        None => bail!("cannot add account: incomplete credentials"),
    };
    let input = AccountInput {
        rpm_limit: args.rpm.map(|n| n as i32),
        ..parsed.input
    };
    let pool = open_db(database)?;
    let mut conn = pool.get()?;
    if accounts::find_by_name(&mut conn, &name)?.is_some() {
        bail!("cannot add account: an account named {name:?} already exists");
    }
    let outcome = conn
        .immediate_transaction(|c| accounts::upsert(c, &input, &name, true, db::now()))
        .context("cannot add account")?;
    let (verb, id) = match outcome {
        Upserted::Added(id) => ("Added", id),
        Upserted::Updated(id) => ("Updated", id),
    };
    let account = accounts::find(&mut conn, id)?.ok_or_else(|| anyhow!("account vanished"))?;
    writeln!(
        std::io::stdout().lock(),
        "{verb} account {} ({})",
        account.id,
        account.name
    )?;
    Ok(ExitCode::SUCCESS)
}

fn find_account(conn: &mut db::Conn, reference: &str) -> anyhow::Result<Account> {
    accounts::find_by_ref(conn, reference)?
        .ok_or_else(|| anyhow!("no account with id or name {reference:?}"))
}

pub fn set_enabled(database: &Path, args: AccountRef, enabled: bool) -> anyhow::Result<ExitCode> {
    let verb = if enabled { "enable" } else { "disable" };
    let pool = open_db(database)?;
    let mut conn = pool.get()?;
    let account =
        find_account(&mut conn, &args.account).with_context(|| format!("cannot {verb} account"))?;
    accounts::set_enabled(&mut conn, account.id, enabled, db::now())
        .with_context(|| format!("cannot {verb} account"))?;
    writeln!(
        std::io::stdout().lock(),
        "{} account {} ({})",
        if enabled { "Enabled" } else { "Disabled" },
        account.id,
        account.name
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn remove(database: &Path, args: RemoveArgs) -> anyhow::Result<ExitCode> {
    let pool = open_db(database)?;
    let mut conn = pool.get()?;
    let account = find_account(&mut conn, &args.account).context("cannot remove account")?;
    let question = format!(
        "Remove account {} ({})? Its usage history is kept.",
        account.id, account.name
    );
    if !confirm(&question, args.yes).context("cannot remove account")? {
        writeln!(std::io::stderr(), "Not removed.")?;
        return Ok(ExitCode::FAILURE);
    }
    accounts::remove(&mut conn, account.id).context("cannot remove account")?;
    writeln!(
        std::io::stdout().lock(),
        "Removed account {} ({})",
        account.id,
        account.name
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `accounts set`: limits and weight; 0 removes a limit.
pub fn set(database: &Path, args: SetArgs) -> anyhow::Result<ExitCode> {
    let to_limit = |n: u32| (n > 0).then(|| i32::try_from(n).unwrap_or(i32::MAX));
    let changes = LimitChanges {
        rpm_limit: args.rpm.map(to_limit),
        concurrency_limit: args.concurrency.map(to_limit),
        weight: args.weight.map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
        updated_at: None,
    };
    let pool = open_db(database)?;
    let mut conn = pool.get()?;
    let account = find_account(&mut conn, &args.account).context("cannot change account")?;
    accounts::set_limits(&mut conn, account.id, &changes, db::now())
        .context("cannot change account")?;
    let account = find_account(&mut conn, &account.id.to_string())?;
    writeln!(
        std::io::stdout().lock(),
        "Account {} ({}): {}",
        account.id,
        account.name,
        match limits_text(&account).as_str() {
            "-" => "no limits, weight 1".to_owned(),
            text => text.to_owned(),
        }
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn refresh(database: &Path, args: RefreshArgs) -> anyhow::Result<ExitCode> {
    let pool = open_db(database)?;
    let targets: Vec<Account> = {
        let mut conn = pool.get()?;
        if args.all {
            accounts::list(&mut conn)?
                .into_iter()
                .filter(|a| a.enabled)
                .collect()
        } else {
            let mut found = Vec::new();
            for reference in &args.accounts {
                let account = find_account(&mut conn, reference).context("cannot refresh")?;
                if !found.iter().any(|a: &Account| a.id == account.id) {
                    found.push(account);
                }
            }
            found
        }
    };
    if targets.is_empty() {
        bail!("cannot refresh: no enabled account");
    }
    let cfg = std::sync::Arc::new(UpstreamConfig::from_args(&args.upstream));
    let ids: Vec<i32> = targets.iter().map(|a| a.id).collect();
    // awc runs on actix's single-threaded runtime.
    let results = actix_web::rt::System::new().block_on(async move {
        let client = http_client(&cfg);
        let refresher = Refresher::new(pool, cfg);
        futures_util::future::join_all(ids.iter().map(|id| refresher.refresh_now(&client, *id)))
            .await
    });
    let now = db::now();
    let mut failed = 0;
    let mut t = table::new(&["ID", "Account", "Result", "Expires / error"]);
    for (account, result) in targets.iter().zip(results) {
        let (outcome, detail) = match result {
            Ok(token) => (
                "refreshed".to_owned(),
                table::expiry(Some(token.expires_at), now),
            ),
            Err(e) => {
                failed += 1;
                ("failed".to_owned(), describe_refresh_error(&e))
            }
        };
        t.add_row(vec![
            account.id.to_string(),
            account.name.clone(),
            outcome,
            detail,
        ]);
    }
    writeln!(std::io::stdout().lock(), "{t}")?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// "refresh token invalid (account disabled)", or the classified transient error.
fn describe_refresh_error(e: &TokenError) -> String {
    match e.upstream() {
        Some(up) => match permanent_reason(up.class) {
            Some(reason) => format!("{reason} (account disabled)"),
            None => format!(
                "{}: {} (account unchanged)",
                up.class.as_str().replace('_', " "),
                up.message
            ),
        },
        None => e.to_string(),
    }
}
