//! The `accounts` table: the Amazon Q account pool, with its credentials, token state and health.

use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::schema::accounts;

/// How an account refreshes its access token (protocol doc §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// Builder ID or IAM Identity Center: AWS SSO-OIDC `CreateToken` with client id and secret.
    Idc,
    /// Kiro Google/GitHub login: the Kiro auth service's `refreshToken` call.
    Social,
}

impl AuthKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Idc => "idc",
            AuthKind::Social => "social",
        }
    }

    pub fn parse(s: &str) -> Option<AuthKind> {
        match s {
            "idc" => Some(AuthKind::Idc),
            "social" => Some(AuthKind::Social),
            _ => None,
        }
    }
}

/// The health states of an account; `enabled` is the operator's switch and is separate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Active,
    /// Temporarily skipped until `health_until` (throttling, upstream errors).
    Cooling,
    /// Needs an operator: `health_reason` says why (refresh token invalid, ...).
    Disabled,
    /// Amazon Q suspended the account.
    Suspended,
    /// The monthly quota is exhausted until `health_until`.
    Quota,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Active => "active",
            Health::Cooling => "cooling",
            Health::Disabled => "disabled",
            Health::Suspended => "suspended",
            Health::Quota => "quota",
        }
    }

    pub fn parse(s: &str) -> Health {
        match s {
            "cooling" => Health::Cooling,
            "disabled" => Health::Disabled,
            "suspended" => Health::Suspended,
            "quota" => Health::Quota,
            _ => Health::Active,
        }
    }
}

#[derive(Queryable, Selectable, Identifiable, Clone)]
#[diesel(table_name = accounts)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
pub struct Account {
    pub id: i32,
    pub name: String,
    pub auth_kind: String,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub refresh_token: String,
    pub refresh_token_hash: String,
    pub imported_token_hash: String,
    pub access_token: Option<String>,
    pub access_token_expires_at: Option<i64>,
    pub region: String,
    pub profile_arn: Option<String>,
    pub start_url: Option<String>,
    pub enabled: bool,
    pub health: String,
    pub health_until: Option<i64>,
    pub health_reason: Option<String>,
    pub rpm_limit: Option<i32>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
    /// Requests this account may serve at once (`None`: no cap).
    pub concurrency_limit: Option<i32>,
    /// Its share of the traffic relative to the other accounts (1 = an equal share).
    pub weight: i32,
}

/// Prints no secret: client secret, refresh and access tokens are shown as `***`.
impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("auth_kind", &self.auth_kind)
            .field("region", &self.region)
            .field("enabled", &self.enabled)
            .field("health", &self.health)
            .field("client_secret", &"***")
            .field("refresh_token", &"***")
            .field("access_token", &"***")
            .finish_non_exhaustive()
    }
}

impl Account {
    pub fn kind(&self) -> AuthKind {
        AuthKind::parse(&self.auth_kind).unwrap_or(AuthKind::Idc)
    }

    pub fn health_state(&self) -> Health {
        Health::parse(&self.health)
    }
}

/// Credentials and metadata of one account as read from an import file or the `add` command.
#[derive(Clone, PartialEq)]
pub struct AccountInput {
    pub kind: AuthKind,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub refresh_token: String,
    pub access_token: Option<String>,
    pub access_token_expires_at: Option<i64>,
    pub region: String,
    pub profile_arn: Option<String>,
    pub start_url: Option<String>,
    pub rpm_limit: Option<i32>,
}

impl std::fmt::Debug for AccountInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountInput")
            .field("kind", &self.kind)
            .field("region", &self.region)
            .field("profile_arn", &self.profile_arn)
            .finish_non_exhaustive()
    }
}

/// SHA-256 (hex) of a refresh token: how accounts are matched on re-import.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What [`upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Added(i32),
    Updated(i32),
}

pub fn list(conn: &mut SqliteConnection) -> QueryResult<Vec<Account>> {
    accounts::table
        .order(accounts::id.asc())
        .select(Account::as_select())
        .load(conn)
}

pub fn find(conn: &mut SqliteConnection, id: i32) -> QueryResult<Option<Account>> {
    accounts::table
        .find(id)
        .select(Account::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_name(conn: &mut SqliteConnection, name: &str) -> QueryResult<Option<Account>> {
    accounts::table
        .filter(accounts::name.eq(name))
        .select(Account::as_select())
        .first(conn)
        .optional()
}

/// Looks an account up by numeric id first, then by name.
pub fn find_by_ref(conn: &mut SqliteConnection, reference: &str) -> QueryResult<Option<Account>> {
    if let Ok(id) = reference.parse::<i32>() {
        if let Some(account) = find(conn, id)? {
            return Ok(Some(account));
        }
    }
    find_by_name(conn, reference)
}

fn find_by_token_hash(conn: &mut SqliteConnection, hash: &str) -> QueryResult<Option<Account>> {
    accounts::table
        .filter(
            accounts::refresh_token_hash
                .eq(hash)
                .or(accounts::imported_token_hash.eq(hash)),
        )
        .select(Account::as_select())
        .first(conn)
        .optional()
}

/// A name not used by any account other than `except`: `base`, else `base-2`, `base-3`, ...
fn free_name(conn: &mut SqliteConnection, base: &str, except: Option<i32>) -> QueryResult<String> {
    let mut candidate = base.to_owned();
    let mut n = 1;
    loop {
        match find_by_name(conn, &candidate)? {
            Some(a) if Some(a.id) != except => {
                n += 1;
                candidate = format!("{base}-{n}");
            }
            _ => return Ok(candidate),
        }
    }
}

/// Adds an account, or updates the one it already is: an account whose current or originally
/// imported refresh token equals this one, else (when `explicit_name`) the account of that name.
/// An updated account becomes healthy again; a refresh token that has been rotated since the
/// import is not replaced by the older one from the file. Run it inside a transaction.
pub fn upsert(
    conn: &mut SqliteConnection,
    input: &AccountInput,
    name: &str,
    explicit_name: bool,
    now: i64,
) -> QueryResult<Upserted> {
    let hash = token_hash(&input.refresh_token);
    let mut existing = find_by_token_hash(conn, &hash)?;
    if existing.is_none() && explicit_name {
        existing = find_by_name(conn, name)?;
    }
    match existing {
        Some(account) => {
            let stale_copy =
                account.refresh_token_hash != hash && account.imported_token_hash == hash;
            let target = accounts::table.find(account.id);
            if stale_copy {
                // The file holds the token we imported before; ours has rotated since. Keep our
                // tokens, take the rest.
                diesel::update(target)
                    .set((
                        accounts::client_id.eq(&input.client_id),
                        accounts::client_secret.eq(&input.client_secret),
                        accounts::region.eq(&input.region),
                        accounts::profile_arn
                            .eq(input.profile_arn.as_ref().or(account.profile_arn.as_ref())),
                        accounts::start_url
                            .eq(input.start_url.as_ref().or(account.start_url.as_ref())),
                        accounts::updated_at.eq(now),
                    ))
                    .execute(conn)?;
            } else {
                let new_name = if explicit_name {
                    free_name(conn, name, Some(account.id))?
                } else {
                    account.name.clone()
                };
                let keep_access =
                    input.access_token.is_none() && account.refresh_token_hash == hash;
                diesel::update(target)
                    .set((
                        accounts::name.eq(new_name),
                        accounts::auth_kind.eq(input.kind.as_str()),
                        accounts::client_id.eq(&input.client_id),
                        accounts::client_secret.eq(&input.client_secret),
                        accounts::refresh_token.eq(&input.refresh_token),
                        accounts::refresh_token_hash.eq(&hash),
                        accounts::imported_token_hash.eq(&hash),
                        accounts::access_token.eq(if keep_access {
                            account.access_token.clone()
                        } else {
                            input.access_token.clone()
                        }),
                        accounts::access_token_expires_at.eq(if keep_access {
                            account.access_token_expires_at
                        } else {
                            input.access_token_expires_at
                        }),
                        accounts::region.eq(&input.region),
                        accounts::profile_arn
                            .eq(input.profile_arn.as_ref().or(account.profile_arn.as_ref())),
                        accounts::start_url
                            .eq(input.start_url.as_ref().or(account.start_url.as_ref())),
                        accounts::rpm_limit.eq(input.rpm_limit.or(account.rpm_limit)),
                        accounts::health.eq(Health::Active.as_str()),
                        accounts::health_until.eq(None::<i64>),
                        accounts::health_reason.eq(None::<String>),
                        accounts::updated_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            Ok(Upserted::Updated(account.id))
        }
        None => {
            let name = free_name(conn, name, None)?;
            let id = diesel::insert_into(accounts::table)
                .values((
                    accounts::name.eq(name),
                    accounts::auth_kind.eq(input.kind.as_str()),
                    accounts::client_id.eq(&input.client_id),
                    accounts::client_secret.eq(&input.client_secret),
                    accounts::refresh_token.eq(&input.refresh_token),
                    accounts::refresh_token_hash.eq(&hash),
                    accounts::imported_token_hash.eq(&hash),
                    accounts::access_token.eq(&input.access_token),
                    accounts::access_token_expires_at.eq(input.access_token_expires_at),
                    accounts::region.eq(&input.region),
                    accounts::profile_arn.eq(&input.profile_arn),
                    accounts::start_url.eq(&input.start_url),
                    accounts::rpm_limit.eq(input.rpm_limit),
                    accounts::created_at.eq(now),
                    accounts::updated_at.eq(now),
                ))
                .returning(accounts::id)
                .get_result(conn)?;
            Ok(Upserted::Added(id))
        }
    }
}

/// The operator's switch. Enabling also clears a disabled/suspended/cooling health state, so an
/// account whose refresh token was rejected can be retried after the operator fixed it.
pub fn set_enabled(
    conn: &mut SqliteConnection,
    id: i32,
    enabled: bool,
    now: i64,
) -> QueryResult<usize> {
    let target = accounts::table.find(id);
    if enabled {
        diesel::update(target)
            .set((
                accounts::enabled.eq(true),
                accounts::health.eq(Health::Active.as_str()),
                accounts::health_until.eq(None::<i64>),
                accounts::health_reason.eq(None::<String>),
                accounts::updated_at.eq(now),
            ))
            .execute(conn)
    } else {
        diesel::update(target)
            .set((accounts::enabled.eq(false), accounts::updated_at.eq(now)))
            .execute(conn)
    }
}

/// Removes an account; its usage rows stay (their `account_id` becomes NULL, the name is kept).
pub fn remove(conn: &mut SqliteConnection, id: i32) -> QueryResult<usize> {
    diesel::delete(accounts::table.find(id)).execute(conn)
}

/// Stores the result of a successful token refresh. A rotated refresh token replaces the old one.
pub fn store_tokens(
    conn: &mut SqliteConnection,
    id: i32,
    access_token: &str,
    expires_at: i64,
    rotated_refresh_token: Option<&str>,
    profile_arn: Option<&str>,
    now: i64,
) -> QueryResult<usize> {
    conn.immediate_transaction(|conn| {
        let target = accounts::table.find(id);
        diesel::update(target)
            .set((
                accounts::access_token.eq(access_token),
                accounts::access_token_expires_at.eq(expires_at),
                accounts::updated_at.eq(now),
            ))
            .execute(conn)?;
        if let Some(token) = rotated_refresh_token {
            diesel::update(target)
                .set((
                    accounts::refresh_token.eq(token),
                    accounts::refresh_token_hash.eq(token_hash(token)),
                ))
                .execute(conn)?;
        }
        if let Some(arn) = profile_arn {
            diesel::update(target)
                .set(accounts::profile_arn.eq(arn))
                .execute(conn)?;
        }
        // A successful refresh proves the credentials work: a cooldown stays, a stale
        // "disabled because refresh failed" does not.
        diesel::update(target.filter(accounts::health.eq(Health::Disabled.as_str())))
            .set((
                accounts::health.eq(Health::Active.as_str()),
                accounts::health_reason.eq(None::<String>),
            ))
            .execute(conn)
    })
}

/// Records a health change (the pool decides which upstream error leads to which state).
pub fn set_health(
    conn: &mut SqliteConnection,
    id: i32,
    health: Health,
    until: Option<i64>,
    reason: Option<&str>,
    now: i64,
) -> QueryResult<usize> {
    diesel::update(accounts::table.find(id))
        .set((
            accounts::health.eq(health.as_str()),
            accounts::health_until.eq(until),
            accounts::health_reason.eq(reason),
            accounts::updated_at.eq(now),
        ))
        .execute(conn)
}

/// The pool's limits of one account, as `accounts set` changes them: `None` leaves a value as it
/// is; `Some(None)` removes a limit.
#[derive(AsChangeset, Debug, Default, Clone, PartialEq)]
#[diesel(table_name = accounts)]
pub struct LimitChanges {
    pub rpm_limit: Option<Option<i32>>,
    pub concurrency_limit: Option<Option<i32>>,
    pub weight: Option<i32>,
    pub updated_at: Option<i64>,
}

impl LimitChanges {
    pub fn is_empty(&self) -> bool {
        self.rpm_limit.is_none() && self.concurrency_limit.is_none() && self.weight.is_none()
    }
}

pub fn set_limits(
    conn: &mut SqliteConnection,
    id: i32,
    changes: &LimitChanges,
    now: i64,
) -> QueryResult<usize> {
    let changes = LimitChanges {
        updated_at: Some(now),
        ..changes.clone()
    };
    diesel::update(accounts::table.find(id))
        .set(&changes)
        .execute(conn)
}

pub fn touch_last_used(conn: &mut SqliteConnection, id: i32, now: i64) -> QueryResult<usize> {
    diesel::update(accounts::table.find(id))
        .set(accounts::last_used_at.eq(now))
        .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(token: &str) -> AccountInput {
        AccountInput {
            kind: AuthKind::Idc,
            client_id: Some("cid".into()),
            client_secret: Some("csecret".into()),
            refresh_token: token.into(),
            access_token: None,
            access_token_expires_at: None,
            region: "us-east-1".into(),
            profile_arn: None,
            start_url: None,
            rpm_limit: None,
        }
    }

    #[test]
    fn upsert_adds_then_updates_and_survives_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let pool = super::super::open(&dir.path().join("t.db")).unwrap();
        let c = &mut pool.get().unwrap();
        assert_eq!(
            upsert(c, &input("r1"), "a", false, 1).unwrap(),
            Upserted::Added(1)
        );
        assert_eq!(
            upsert(c, &input("r1"), "a", false, 2).unwrap(),
            Upserted::Updated(1)
        );
        // Same base name, different token: a second account with a free name.
        assert_eq!(
            upsert(c, &input("r2"), "a", false, 3).unwrap(),
            Upserted::Added(2)
        );
        assert_eq!(find(c, 2).unwrap().unwrap().name, "a-2");
        // The token rotates; re-importing the old file still finds the account and keeps the new token.
        store_tokens(c, 1, "acc", 100, Some("r1-rotated"), None, 4).unwrap();
        assert_eq!(
            upsert(c, &input("r1"), "x", false, 5).unwrap(),
            Upserted::Updated(1)
        );
        let a = find(c, 1).unwrap().unwrap();
        assert_eq!(a.refresh_token, "r1-rotated");
        assert_eq!(a.access_token.as_deref(), Some("acc"));
        assert_eq!(list(c).unwrap().len(), 2);
        // Debug never prints secrets.
        let dbg = format!("{a:?} {:?}", input("r1"));
        assert!(!dbg.contains("r1-rotated") && !dbg.contains("csecret") && !dbg.contains("acc\""));
    }
}
