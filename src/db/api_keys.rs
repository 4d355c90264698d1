//! The `api_keys` table: client keys, stored as SHA-256 only, with the plaintext key types.

use diesel::prelude::*;
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};

use super::schema::api_keys;

/// Every key starts with this, so a leaked key is recognisable (secret scanners, logs). Changing
/// it does not invalidate existing keys, but scanners configured for it would stop matching.
pub const KEY_PREFIX: &str = "sk-amq-";
/// 44 alphanumeric characters carry 44 × log2(62) ≈ 262 bits: more than 32 random bytes.
const KEY_RANDOM_CHARS: usize = 44;
/// How much of a key `keys list` shows: the prefix and five random characters.
const DISPLAY_CHARS: usize = KEY_PREFIX.len() + 5;

/// A freshly generated key. Shown once, then only its [`HashedKey`] is kept.
pub struct PlainKey(String);

impl PlainKey {
    /// A new key from the thread-local CSPRNG (ChaCha, seeded from the OS).
    pub fn generate() -> PlainKey {
        let random = Alphanumeric.sample_string(&mut rand::rng(), KEY_RANDOM_CHARS);
        PlainKey(format!("{KEY_PREFIX}{random}"))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hashed(&self) -> HashedKey {
        HashedKey::of(&self.0)
    }

    /// The non-secret display form, e.g. `sk-amq-AbCdE`.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(DISPLAY_CHARS).collect()
    }
}

impl std::fmt::Debug for PlainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlainKey")
    }
}

/// The SHA-256 (hex) of a key, as stored.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HashedKey(String);

impl HashedKey {
    pub fn of(key: &str) -> HashedKey {
        HashedKey(hex::encode(Sha256::digest(key.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for HashedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashedKey")
    }
}

#[derive(Queryable, Selectable, Identifiable, Debug, Clone, PartialEq)]
#[diesel(table_name = api_keys)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
pub struct ApiKey {
    pub id: i32,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub is_admin: bool,
    pub rpm_limit: Option<i32>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// Requests this key may have in flight at once (`None`: no cap).
    pub concurrency_limit: Option<i32>,
}

impl ApiKey {
    /// Usable now: not revoked and not expired.
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| t > now)
    }
}

#[derive(Insertable, Debug)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey<'a> {
    pub name: &'a str,
    pub prefix: &'a str,
    pub key_hash: &'a str,
    pub is_admin: bool,
    pub rpm_limit: Option<i32>,
    pub concurrency_limit: Option<i32>,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

pub fn insert(conn: &mut SqliteConnection, new: &NewApiKey<'_>) -> QueryResult<ApiKey> {
    diesel::insert_into(api_keys::table)
        .values(new)
        .returning(ApiKey::as_returning())
        .get_result(conn)
}

pub fn list(conn: &mut SqliteConnection) -> QueryResult<Vec<ApiKey>> {
    api_keys::table
        .order(api_keys::id.asc())
        .select(ApiKey::as_select())
        .load(conn)
}

/// Every key that is not revoked (expired ones included: expiry is checked at use), for the
/// server's in-memory key table.
pub fn list_unrevoked(conn: &mut SqliteConnection) -> QueryResult<Vec<ApiKey>> {
    api_keys::table
        .filter(api_keys::revoked_at.is_null())
        .order(api_keys::id.asc())
        .select(ApiKey::as_select())
        .load(conn)
}

/// The key with this hash if it is usable now (not revoked, not expired).
pub fn find_live(
    conn: &mut SqliteConnection,
    hash: &HashedKey,
    now: i64,
) -> QueryResult<Option<ApiKey>> {
    let key = api_keys::table
        .filter(api_keys::key_hash.eq(hash.as_str()))
        .select(ApiKey::as_select())
        .first(conn)
        .optional()?;
    Ok(key.filter(|k| k.is_live(now)))
}

/// Keys matching `reference`: the key with that id; else the live key with that name (or, if
/// none, any with that name); else every key whose display prefix starts with it.
pub fn find_by_ref(conn: &mut SqliteConnection, reference: &str) -> QueryResult<Vec<ApiKey>> {
    if let Ok(id) = reference.parse::<i32>() {
        if let Some(key) = api_keys::table
            .find(id)
            .select(ApiKey::as_select())
            .first(conn)
            .optional()?
        {
            return Ok(vec![key]);
        }
    }
    let named: Vec<ApiKey> = api_keys::table
        .filter(api_keys::name.eq(reference))
        .order(api_keys::id.asc())
        .select(ApiKey::as_select())
        .load(conn)?;
    if !named.is_empty() {
        let live: Vec<ApiKey> = named
            .iter()
            .filter(|k| k.revoked_at.is_none())
            .cloned()
            .collect();
        return Ok(if live.is_empty() { named } else { live });
    }
    if reference.len() >= 4 {
        let all = list(conn)?;
        return Ok(all
            .into_iter()
            .filter(|k| {
                k.prefix.starts_with(reference)
                    || reference.starts_with(&k.prefix) && reference.len() <= k.prefix.len()
            })
            .collect());
    }
    Ok(Vec::new())
}

pub fn revoke(conn: &mut SqliteConnection, id: i32, now: i64) -> QueryResult<usize> {
    diesel::update(
        api_keys::table
            .find(id)
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(now))
    .execute(conn)
}

pub fn touch_last_used(conn: &mut SqliteConnection, id: i32, now: i64) -> QueryResult<usize> {
    diesel::update(api_keys::table.find(id))
        .set(api_keys::last_used_at.eq(now))
        .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_look_right_and_hash_stably() {
        let k = PlainKey::generate();
        assert!(k.expose().starts_with(KEY_PREFIX));
        assert_eq!(k.expose().len(), KEY_PREFIX.len() + KEY_RANDOM_CHARS);
        assert!(k.expose()[KEY_PREFIX.len()..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(k.expose(), PlainKey::generate().expose());
        assert_eq!(k.hashed(), HashedKey::of(k.expose()));
        assert_eq!(k.hashed().as_str().len(), 64);
        assert_eq!(format!("{k:?} {:?}", k.hashed()), "PlainKey HashedKey");
        assert_eq!(k.display_prefix().len(), 12);
    }

    #[test]
    fn find_live_skips_revoked_and_expired() {
        let dir = tempfile::tempdir().unwrap();
        let pool = super::super::open(&dir.path().join("t.db")).unwrap();
        let c = &mut pool.get().unwrap();
        let k = PlainKey::generate();
        let h = k.hashed();
        let row = insert(
            c,
            &NewApiKey {
                name: "a",
                prefix: &k.display_prefix(),
                key_hash: h.as_str(),
                is_admin: false,
                rpm_limit: None,
                concurrency_limit: None,
                expires_at: Some(100),
                created_at: 1,
            },
        )
        .unwrap();
        assert_eq!(find_live(c, &h, 99).unwrap().map(|k| k.id), Some(row.id));
        assert_eq!(find_live(c, &h, 100).unwrap(), None);
        revoke(c, row.id, 50).unwrap();
        assert_eq!(find_live(c, &h, 60).unwrap(), None);
        assert_eq!(find_by_ref(c, "a").unwrap().len(), 1);
        assert_eq!(find_by_ref(c, &k.display_prefix()).unwrap().len(), 1);
    }
}
