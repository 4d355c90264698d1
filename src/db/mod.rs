//! The SQLite database shared by the CLI and the server: opening it (file mode, migrations, WAL,
//! per-connection pragmas), the connection pool, and one module of plain query functions per table.

pub mod accounts;
pub mod api_keys;
pub mod schema;
pub mod stats;
pub mod usage;

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool as R2d2Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How long a connection waits for another writer (another CLI process or the server) before
/// SQLite reports "database is locked".
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub type Pool = R2d2Pool<ConnectionManager<SqliteConnection>>;
pub type Conn = PooledConnection<ConnectionManager<SqliteConnection>>;

/// Errors of the database layer; commands add context, the server maps them to a 500.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create {path}: {source}")]
    CreateFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: diesel::ConnectionError,
    },
    #[error("cannot migrate {path}: {message}")]
    Migrate { path: PathBuf, message: String },
    #[error("connection pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

/// Per-connection settings; `journal_mode=WAL` is persistent and set once in [`open`].
#[derive(Debug, Clone, Copy)]
struct Pragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        apply_pragmas(conn).map_err(diesel::r2d2::Error::QueryError)
    }
}

fn apply_pragmas(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
        BUSY_TIMEOUT.as_millis()
    ))
}

/// Opens (creating if needed) the database at `path`: the parent folder is created, a new file
/// gets mode 0600, pending migrations run, and WAL is switched on. Returns a pool whose
/// connections all carry the per-connection pragmas.
pub fn open(path: &Path) -> Result<Pool, DbError> {
    create_file(path)?;
    let url = path.to_string_lossy().into_owned();
    let mut conn = SqliteConnection::establish(&url).map_err(|source| DbError::Open {
        path: path.to_owned(),
        source,
    })?;
    apply_pragmas(&mut conn)?;
    retry_while_locked(&mut conn, enable_wal)?;
    // IMMEDIATE takes the write lock first, so two processes opening a fresh database at the same
    // moment run the migrations one after the other instead of both trying to create the tables.
    retry_while_locked(&mut conn, |conn| {
        conn.immediate_transaction(|c| {
            c.run_pending_migrations(MIGRATIONS)
                .map(|_| ())
                .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))
        })
    })
    .map_err(|e| DbError::Migrate {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    drop(conn);
    let manager = ConnectionManager::<SqliteConnection>::new(url);
    let pool = R2d2Pool::builder()
        .max_size(8)
        .min_idle(Some(1))
        .connection_customizer(Box::new(Pragmas))
        .build(manager)?;
    Ok(pool)
}

/// One connection outside the pool, with the same pragmas, for a task that must keep its own
/// connection (the server's change watcher: `PRAGMA data_version` is per connection). The
/// database must have been opened with [`open`] first.
pub fn connect(path: &Path) -> Result<SqliteConnection, DbError> {
    let mut conn =
        SqliteConnection::establish(&path.to_string_lossy()).map_err(|source| DbError::Open {
            path: path.to_owned(),
            source,
        })?;
    apply_pragmas(&mut conn)?;
    Ok(conn)
}

#[derive(diesel::QueryableByName)]
struct DataVersion {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    data_version: i64,
}

/// SQLite's `PRAGMA data_version`: changes whenever another connection (another process, or
/// another connection of this one) commits a change, and not for this connection's own writes.
pub fn data_version(conn: &mut SqliteConnection) -> diesel::QueryResult<i64> {
    let v: DataVersion = diesel::sql_query("PRAGMA data_version").get_result(conn)?;
    Ok(v.data_version)
}

#[derive(diesel::QueryableByName)]
struct JournalMode {
    #[diesel(sql_type = diesel::sql_types::Text)]
    journal_mode: String,
}

/// Switches the file to WAL once; reading the mode first avoids taking a lock on every open.
fn enable_wal(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    let mode: JournalMode = diesel::sql_query("PRAGMA journal_mode").get_result(conn)?;
    if !mode.journal_mode.eq_ignore_ascii_case("wal") {
        let _: JournalMode = diesel::sql_query("PRAGMA journal_mode = WAL").get_result(conn)?;
    }
    Ok(())
}

/// Runs `step` again while SQLite answers "database is locked", for as long as the busy
/// timeout. SQLite does not always wait in its busy handler: switching the journal mode, or
/// upgrading a read to a write, fails at once when another connection holds the lock (waiting
/// could deadlock them). Several processes opening a fresh database at the same moment meet
/// exactly that (a CI run once saw it).
fn retry_while_locked<T>(
    conn: &mut SqliteConnection,
    mut step: impl FnMut(&mut SqliteConnection) -> diesel::QueryResult<T>,
) -> diesel::QueryResult<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut attempt: u64 = 0;
    loop {
        match step(conn) {
            // The migration harness hands its errors on as text: match the text.
            Err(e)
                if e.to_string().contains("database is locked")
                    && std::time::Instant::now() < deadline =>
            {
                attempt += 1;
                // Staggered by process, so the contenders do not retry in step.
                let jitter = u64::from(std::process::id() % 7);
                std::thread::sleep(Duration::from_millis(5 * attempt.min(10) + jitter));
            }
            other => return other,
        }
    }
}

fn create_file(path: &Path) -> Result<(), DbError> {
    let err = |source| DbError::CreateFile {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(err)?;
    Ok(())
}

/// Current time as Unix seconds, the unit of every `*_at` column.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(diesel::QueryableByName, Debug)]
    struct Value {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }

    /// schema.rs is written to match migrations/: selecting every schema.rs column of every
    /// table from the migrated database fails if a migration renamed or dropped one.
    #[test]
    fn schema_matches_migrations() {
        use diesel::{QueryDsl, SelectableHelper};
        let dir = tempfile::tempdir().unwrap();
        let pool = open(&dir.path().join("t.db")).unwrap();
        let mut conn = pool.get().unwrap();
        schema::accounts::table
            .select(accounts::Account::as_select())
            .load(&mut conn)
            .unwrap();
        schema::api_keys::table
            .select(api_keys::ApiKey::as_select())
            .load(&mut conn)
            .unwrap();
        schema::usage_log::table
            .select(usage::UsageRecord::as_select())
            .load(&mut conn)
            .unwrap();
    }

    #[test]
    fn open_sets_wal_pragmas_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/t.db");
        let pool = open(&path).unwrap();
        let mut conn = pool.get().unwrap();
        let v = |c: &mut SqliteConnection, q: &str| {
            diesel::sql_query(format!("SELECT CAST(({q}) AS TEXT) AS v"))
                .get_result::<Value>(c)
                .unwrap()
                .v
        };
        let mode: JournalMode = diesel::sql_query("PRAGMA journal_mode")
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(mode.journal_mode, "wal");
        assert_eq!(
            v(&mut conn, "SELECT foreign_keys FROM pragma_foreign_keys"),
            "1"
        );
        assert_eq!(
            v(&mut conn, "SELECT synchronous FROM pragma_synchronous"),
            "1"
        );
        assert_eq!(
            v(&mut conn, "SELECT timeout FROM pragma_busy_timeout"),
            "30000"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // data_version moves for other connections' commits only.
        let mut watcher = connect(&path).unwrap();
        let before = data_version(&mut watcher).unwrap();
        diesel::sql_query("UPDATE accounts SET weight = 1")
            .execute(&mut watcher)
            .unwrap();
        assert_eq!(data_version(&mut watcher).unwrap(), before);
        diesel::sql_query(
            "INSERT INTO usage_log (created_at, endpoint, model_requested, stream, status, latency_ms) VALUES (0, '/', 'm', 0, 200, 0)",
        )
        .execute(&mut conn)
        .unwrap();
        assert_ne!(data_version(&mut watcher).unwrap(), before);
        // Opening again is a no-op for migrations.
        drop(conn);
        open(&path).unwrap();
    }
}
