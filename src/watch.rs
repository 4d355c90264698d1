//! Keeps the server's in-memory accounts and keys in step with the database, both ways, on a
//! thread of its own with its own connection:
//!
//! * every [`POLL`] it asks SQLite for `PRAGMA data_version`, which moves only when another
//!   connection (the CLI, or the server's pool) has committed a change, and reloads both tables
//!   only then; so `accounts import/enable/disable/remove/refresh` and `keys create/revoke` take
//!   effect within a poll, and requests never read the tables themselves;
//! * it writes back what the server learned (health transitions, last use), so `accounts list`
//!   shows it. Its own writes do not move its `data_version`, so they cause no reload.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use diesel::{Connection, SqliteConnection};

use crate::db::{self, accounts, api_keys, DbError};
use crate::http::auth::KeyTable;
use crate::pick::roster::WriteBack;
use crate::pick::{now_ms, Roster};

/// How often the database is checked for changes.
pub const POLL: Duration = Duration::from_millis(250);

/// The running watcher; [`Watcher::stop`] ends it after a last write-back.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct Job {
    conn: SqliteConnection,
    version: i64,
    accounts: Arc<Roster>,
    keys: Arc<KeyTable>,
}

impl Watcher {
    /// Loads both tables once (the server starts with them), then watches on its own thread.
    pub fn start(
        path: &Path,
        accounts: Arc<Roster>,
        keys: Arc<KeyTable>,
    ) -> Result<Watcher, DbError> {
        let mut conn = db::connect(path)?;
        // Read before loading: a change made while loading moves it again.
        let version = db::data_version(&mut conn)?;
        let mut job = Job {
            conn,
            version,
            accounts,
            keys,
        };
        job.reload()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("amq2api-watch".into())
            .spawn(move || {
                while !stopping.load(Ordering::Acquire) {
                    std::thread::sleep(POLL);
                    if let Err(e) = job.tick() {
                        log::error!("cannot sync the pool with the database: {e}");
                    }
                }
                if let Err(e) = job.write_back() {
                    log::error!("cannot write the pool's state back: {e}");
                }
            })
            .map_err(|e| DbError::Migrate {
                path: path.to_owned(),
                message: format!("cannot start the database watcher: {e}"),
            })?;
        Ok(Watcher {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops watching, after writing back what is still owed.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads both tables into the server's memory once. `serve` does this through [`Watcher`];
/// in-process tests that build an `AppState` themselves call it directly.
pub fn load(
    conn: &mut SqliteConnection,
    accounts: &Roster,
    keys: &KeyTable,
) -> Result<(), DbError> {
    let (rows, live_keys) = conn.transaction(|c| {
        Ok::<_, diesel::result::Error>((accounts::list(c)?, api_keys::list_unrevoked(c)?))
    })?;
    log::debug!(
        "loaded {} accounts and {} keys from the database",
        rows.len(),
        live_keys.len()
    );
    accounts.load(rows);
    keys.load(live_keys);
    Ok(())
}

impl Job {
    fn tick(&mut self) -> Result<(), DbError> {
        self.accounts.end_pauses(now_ms());
        self.write_back()?;
        let version = db::data_version(&mut self.conn)?;
        if version != self.version {
            self.version = version;
            self.reload()?;
        }
        Ok(())
    }

    fn reload(&mut self) -> Result<(), DbError> {
        load(&mut self.conn, &self.accounts, &self.keys)
    }

    fn write_back(&mut self) -> Result<(), DbError> {
        let writes = self.accounts.take_writes(now_ms());
        if writes.is_empty() {
            return Ok(());
        }
        let now = db::now();
        self.conn.immediate_transaction(|c| {
            for w in &writes {
                match w {
                    WriteBack::Health {
                        id,
                        health,
                        until,
                        reason,
                    } => {
                        accounts::set_health(c, *id, *health, *until, reason.as_deref(), now)?;
                    }
                    WriteBack::LastUsed { id, at } => {
                        accounts::touch_last_used(c, *id, *at)?;
                    }
                }
            }
            Ok::<_, diesel::result::Error>(())
        })?;
        Ok(())
    }
}
