//! The account pool in memory: every account as the database last said, plus what the server
//! learned since (health, recent trouble, requests in flight, rate limiters, fresh tokens); the
//! choice of an account for a request, handed out as an [`AccountLease`]; and the queue of
//! write-backs that the change watcher (`crate::watch`) drains into the database, so
//! `accounts list` shows what the server knows.
//!
//! One mutex guards it all; it is held for bookkeeping only, never across an await or a
//! database call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::health::{self, Effect, HealthConfig, State, Trouble};
use super::strategy::{self, Candidate, RecentCount, Rotation, Strategy};
use super::unavailable::{self, Why};
use crate::db::accounts::{Account, Health};
use crate::error::ApiError;
use crate::limits::{Rpm, SlotGuard, Slots};
use crate::q::error::{Stage, UpstreamError};

/// `last_used_at` is written back at most this often per account.
const LAST_USED_EVERY_MS: i64 = 5_000;

/// How the pool behaves; `serve` builds it from its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    pub strategy: Strategy,
    /// Most accounts one request is tried on.
    pub max_accounts_per_request: usize,
    pub health: HealthConfig,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            strategy: Strategy::RoundRobin,
            max_accounts_per_request: 3,
            health: HealthConfig::default(),
        }
    }
}

/// A database write the server owes: the watcher performs it on its own connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteBack {
    Health {
        id: i32,
        health: Health,
        until: Option<i64>,
        reason: Option<String>,
    },
    LastUsed {
        id: i32,
        at: i64,
    },
}

/// The health columns as the database last had them (or as we last wrote them): a reload only
/// overrides what the server knows when someone else changed these.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    health: String,
    until: Option<i64>,
    reason: Option<String>,
}

impl Seen {
    fn of(a: &Account) -> Seen {
        Seen {
            health: a.health.clone(),
            until: a.health_until,
            reason: a.health_reason.clone(),
        }
    }

    fn of_state(s: &State) -> Seen {
        Seen {
            health: s.health.as_str().to_owned(),
            until: s.until_secs(),
            reason: s.reason.clone(),
        }
    }
}

struct Entry {
    account: Arc<Account>,
    seen: Seen,
    state: State,
    trouble: Trouble,
    /// Token refreshes that failed in a row without disabling the account, and when to try the
    /// next one.
    refresh_failures: u32,
    refresh_retry_at_ms: Option<i64>,
    slots: Slots,
    rpm: Option<Rpm>,
    recent: RecentCount,
    last_used_ms: Option<i64>,
    last_used_written_ms: Option<i64>,
    /// When the background task last refreshed this account's token.
    refreshed_ahead_ms: Option<i64>,
    /// A token the server got that the database did not show yet: a reload does not take it
    /// away until the database has caught up.
    token_not_yet_loaded: Option<String>,
}

impl Entry {
    fn new(account: Account) -> Entry {
        Entry {
            seen: Seen::of(&account),
            state: State::from_row(
                &account.health,
                account.health_until,
                account.health_reason.as_deref(),
            ),
            trouble: Trouble::default(),
            refresh_failures: 0,
            refresh_retry_at_ms: None,
            slots: Slots::default(),
            rpm: limit(account.rpm_limit).and_then(Rpm::new),
            recent: RecentCount::default(),
            last_used_ms: account.last_used_at.map(|s| s * 1000),
            last_used_written_ms: account.last_used_at.map(|s| s * 1000),
            refreshed_ahead_ms: None,
            token_not_yet_loaded: None,
            account: Arc::new(account),
        }
    }

    fn concurrency(&self) -> Option<u32> {
        limit(self.account.concurrency_limit)
    }

    fn weight(&self) -> u32 {
        u32::try_from(self.account.weight).unwrap_or(1).max(1)
    }

    fn token_valid(&self, now_ms: i64) -> bool {
        self.account.access_token.is_some()
            && self
                .account
                .access_token_expires_at
                .is_some_and(|t| t.saturating_mul(1000) > now_ms)
    }

    /// Why it cannot be chosen, leaving the limits aside; `None` if it can.
    fn blocked(&self, now_ms: i64) -> Option<Why> {
        if !self.account.enabled {
            return Some(Why::OperatorDisabled);
        }
        if self.state.paused(now_ms) {
            let until_ms = self.state.until_ms.unwrap_or(i64::MAX);
            return Some(match self.state.health {
                Health::Cooling => Why::Cooling { until_ms },
                Health::Quota => Why::Quota { until_ms },
                Health::Suspended => Why::Suspended,
                Health::Disabled | Health::Active => Why::Disabled(
                    self.state
                        .reason
                        .clone()
                        .unwrap_or_else(|| "no reason recorded".into()),
                ),
            });
        }
        match self.refresh_retry_at_ms {
            Some(at) if at > now_ms && !self.token_valid(now_ms) => {
                Some(Why::RefreshPending { retry_at_ms: at })
            }
            _ => None,
        }
    }
}

fn limit(n: Option<i32>) -> Option<u32> {
    n.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0)
}

struct Inner {
    /// Whether the first load happened (later arrivals are logged).
    loaded: bool,
    entries: BTreeMap<i32, Entry>,
    rotation: Rotation,
    writes: Vec<WriteBack>,
    rng: StdRng,
}

/// The pool of accounts in memory. Shared by every worker (`AppState::accounts`).
pub struct Roster {
    cfg: PoolConfig,
    inner: Mutex<Inner>,
}

/// One account taken for one request. Holds the account's concurrency slot until dropped: keep
/// it alive until the response (including a long stream) has ended.
pub struct AccountLease {
    account: Arc<Account>,
    roster: Arc<Roster>,
    /// A token refresh failed lately: use the token while it is valid rather than refresh again.
    refresh_waiting: bool,
    _slot: SlotGuard,
}

impl std::fmt::Debug for AccountLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountLease")
            .field("account", &self.account.id)
            .field("name", &self.account.name)
            .finish()
    }
}

impl AccountLease {
    /// The account, as it was when it was taken (its credentials included).
    pub fn account(&self) -> &Account {
        &self.account
    }

    pub fn id(&self) -> i32 {
        self.account.id
    }

    /// A token refresh of this account failed lately and is not to be retried yet.
    pub fn refresh_waiting(&self) -> bool {
        self.refresh_waiting
    }

    pub fn name(&self) -> &str {
        &self.account.name
    }

    /// Reports an upstream error that came after the response started (an in-stream
    /// exception): the account's health follows it as it would before the first byte.
    pub fn report_failure(&self, err: &UpstreamError) {
        self.roster.on_error(self.account.id, err, super::now_ms());
    }
}

impl Roster {
    pub fn new(cfg: PoolConfig) -> Roster {
        Roster {
            cfg,
            inner: Mutex::new(Inner {
                loaded: false,
                entries: BTreeMap::new(),
                rotation: Rotation::default(),
                writes: Vec::new(),
                rng: StdRng::from_os_rng(),
            }),
        }
    }

    pub fn config(&self) -> &PoolConfig {
        &self.cfg
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes in the accounts as the database has them now. Accounts that are gone are
    /// forgotten; new ones join; a health change made by someone else (the CLI, a refresh in
    /// another process) replaces what the server knew, the server's own knowledge stays
    /// otherwise.
    pub fn load(&self, accounts: Vec<Account>) {
        let mut inner = self.lock();
        let ids: std::collections::HashSet<i32> = accounts.iter().map(|a| a.id).collect();
        inner.entries.retain(|id, e| {
            let keep = ids.contains(id);
            if !keep {
                log::info!(target: "amq2api::pick", "account {} ({}) was removed from the pool", e.account.name, e.account.id);
            }
            keep
        });
        inner.rotation.retain(|id| ids.contains(&id));
        for account in accounts {
            let Some(entry) = inner.entries.get_mut(&account.id) else {
                if inner.loaded {
                    log::info!(target: "amq2api::pick", "account {} ({}) joined the pool", account.name, account.id);
                }
                inner.entries.insert(account.id, Entry::new(account));
                continue;
            };
            let seen = Seen::of(&account);
            if seen != entry.seen {
                let state = State::from_row(
                    &account.health,
                    account.health_until,
                    account.health_reason.as_deref(),
                );
                if state != entry.state {
                    log_transition(&account, &entry.state, &state);
                }
                if state.health == Health::Active {
                    entry.trouble = Trouble::default();
                    entry.refresh_failures = 0;
                    entry.refresh_retry_at_ms = None;
                }
                entry.state = state;
                entry.seen = seen;
            }
            if account.rpm_limit != entry.account.rpm_limit {
                entry.rpm = limit(account.rpm_limit).and_then(Rpm::new);
            }
            if account.access_token != entry.account.access_token {
                entry.refresh_failures = 0;
                entry.refresh_retry_at_ms = None;
            }
            let mut account = account;
            if let Some(ours) = &entry.token_not_yet_loaded {
                if account.access_token.as_ref() == Some(ours) {
                    entry.token_not_yet_loaded = None;
                } else {
                    // Read before the server's refresh was stored: keep the newer token.
                    account.access_token = entry.account.access_token.clone();
                    account.access_token_expires_at = entry.account.access_token_expires_at;
                }
            }
            entry.account = Arc::new(account);
        }
        inner.loaded = true;
    }

    /// An account for a request, not one of `exclude` (those tried already), chosen by the
    /// strategy among the usable ones; or the error saying why there is none.
    pub fn acquire(
        self: &Arc<Self>,
        exclude: &[i32],
        now_ms: i64,
    ) -> Result<AccountLease, ApiError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut reasons = Vec::new();
        let mut candidates = Vec::new();
        let ids: Vec<i32> = inner.entries.keys().copied().collect();
        for id in ids {
            if exclude.contains(&id) {
                continue;
            }
            self.end_pause_if_over(inner, id, now_ms);
            let e = &inner.entries[&id];
            if let Some(why) = e.blocked(now_ms) {
                reasons.push(why);
            } else if !e.slots.has_room(e.concurrency()) {
                reasons.push(Why::Busy);
            } else {
                candidates.push(Candidate {
                    id,
                    weight: e.weight(),
                    recent: e.recent.total(now_ms),
                    in_flight: e.slots.in_flight(),
                    last_used_ms: e.last_used_ms,
                });
            }
        }
        let order = strategy::order(
            self.cfg.strategy,
            &inner.rotation,
            &candidates,
            &mut inner.rng,
        );
        for id in order {
            let e = inner
                .entries
                .get_mut(&id)
                .expect("candidates come from the entries");
            if let Some(Err(wait)) = e.rpm.as_ref().map(Rpm::check) {
                reasons.push(Why::RpmLimit { wait });
                continue;
            }
            let Some(slot) = e.slots.try_take(e.concurrency()) else {
                reasons.push(Why::Busy);
                continue;
            };
            e.recent.add(now_ms);
            e.last_used_ms = Some(now_ms);
            let account = e.account.clone();
            let refresh_waiting = e.refresh_retry_at_ms.is_some_and(|t| t > now_ms);
            inner.rotation.chosen(id, &candidates);
            return Ok(AccountLease {
                account,
                roster: self.clone(),
                refresh_waiting,
                _slot: slot,
            });
        }
        Err(unavailable::explain(&reasons, now_ms))
    }

    /// An account whose pause has ended is active again (logged, written back).
    fn end_pause_if_over(&self, inner: &mut Inner, id: i32, now_ms: i64) {
        let Some(e) = inner.entries.get_mut(&id) else {
            return;
        };
        if e.state.pause_over(now_ms) {
            let back = State::active();
            log::info!(
                target: "amq2api::pick",
                "account {} ({}): {} -> active (the pause is over)",
                e.account.name,
                e.account.id,
                e.state.describe()
            );
            e.state = back.clone();
            inner.writes.push(write_of(id, &back));
        }
    }

    /// Ends every pause that is over (the watcher calls this on every tick, so `accounts list`
    /// shows an account back even when no request came).
    pub fn end_pauses(&self, now_ms: i64) {
        let mut inner = self.lock();
        let ids: Vec<i32> = inner.entries.keys().copied().collect();
        for id in ids {
            self.end_pause_if_over(&mut inner, id, now_ms);
        }
    }

    /// What an upstream error of `id` (chat or token refresh) does to it.
    pub fn on_error(&self, id: i32, err: &UpstreamError, now_ms: i64) {
        let mut inner = self.lock();
        let Some(e) = inner.entries.get_mut(&id) else {
            return;
        };
        let effect = health::on_error(&self.cfg.health, &mut e.trouble, err, now_ms);
        let mut write = None;
        match effect {
            Effect::None => {}
            Effect::Counted(n) => log::debug!(
                target: "amq2api::pick",
                "account {} ({}): failure {n} in a row ({})",
                e.account.name,
                e.account.id,
                err.class
            ),
            Effect::Enter(state) => {
                // A worse or equal state only: a late error from a request that started before
                // the account was disabled must not turn "disabled" into "cooling".
                if rank(state.health) >= rank(e.state.health) || !e.state.paused(now_ms) {
                    if state.health != e.state.health || state.reason != e.state.reason {
                        log_transition(&e.account, &e.state, &state);
                    }
                    if state != e.state {
                        write = Some(write_of(id, &state));
                        e.state = state;
                    }
                }
            }
        }
        if err.stage == Stage::TokenRefresh && !e.state.paused(now_ms) {
            e.refresh_failures = e.refresh_failures.saturating_add(1);
            let wait = health::throttle_backoff(&self.cfg.health, e.refresh_failures);
            e.refresh_retry_at_ms =
                Some(now_ms.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)));
        }
        inner.writes.extend(write);
    }

    /// A request went through on `id`.
    pub fn on_success(&self, id: i32) {
        if let Some(e) = self.lock().entries.get_mut(&id) {
            health::on_success(&mut e.trouble);
        }
    }

    /// The server refreshed `id`'s access token: later requests use it without asking the
    /// database.
    pub fn on_refreshed(&self, id: i32, token: &str, expires_at: i64) {
        if let Some(e) = self.lock().entries.get_mut(&id) {
            e.refresh_failures = 0;
            e.refresh_retry_at_ms = None;
            if e.account.access_token.as_deref() != Some(token) {
                let mut account = (*e.account).clone();
                account.access_token = Some(token.to_owned());
                account.access_token_expires_at = Some(expires_at);
                e.account = Arc::new(account);
                e.token_not_yet_loaded = Some(token.to_owned());
            }
        }
    }

    /// The writes the server owes the database, oldest first. Health writes count as seen from
    /// now on, so a reload does not take the old row for someone else's change.
    pub fn take_writes(&self, now_ms: i64) -> Vec<WriteBack> {
        let mut inner = self.lock();
        let mut writes = std::mem::take(&mut inner.writes);
        for w in &writes {
            if let WriteBack::Health { id, .. } = w {
                if let Some(e) = inner.entries.get_mut(id) {
                    e.seen = Seen::of_state(&e.state);
                }
            }
        }
        for (id, e) in inner.entries.iter_mut() {
            if let Some(used) = e.last_used_ms {
                let due = e
                    .last_used_written_ms
                    .is_none_or(|w| used > w && now_ms - w >= LAST_USED_EVERY_MS);
                if due {
                    writes.push(WriteBack::LastUsed {
                        id: *id,
                        at: used.div_euclid(1000),
                    });
                    e.last_used_written_ms = Some(used);
                }
            }
        }
        writes
    }

    /// Accounts whose token the background task should refresh now: in use (a request within
    /// `active_within`), usable, holding a token that expires within `margin` plus a jitter of up
    /// to a minute (so accounts imported together are not refreshed in lockstep), and not
    /// refreshed ahead in the last `min_gap`. Returns (id, the expiry the refresh replaces).
    pub fn due_for_refresh(
        &self,
        now_ms: i64,
        margin: Duration,
        active_within: Duration,
        min_gap: Duration,
    ) -> Vec<(i32, i64)> {
        let inner = self.lock();
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        inner
            .entries
            .values()
            .filter(|e| e.blocked(now_ms).is_none())
            .filter(|e| {
                e.last_used_ms
                    .is_some_and(|t| now_ms - t <= ms(active_within))
            })
            .filter(|e| {
                e.refreshed_ahead_ms
                    .is_none_or(|t| now_ms - t >= ms(min_gap))
            })
            .filter_map(|e| {
                let expires = e.account.access_token_expires_at?;
                e.account.access_token.as_ref()?;
                let due = expires
                    .saturating_sub(i64::try_from(margin.as_secs()).unwrap_or(i64::MAX))
                    .saturating_sub(jitter_secs(e.account.id, expires));
                (due * 1000 <= now_ms).then_some((e.account.id, expires))
            })
            .collect()
    }

    /// Notes that the background task refreshed (or tried to refresh) `id`.
    pub fn refreshed_ahead(&self, id: i32, now_ms: i64) {
        if let Some(e) = self.lock().entries.get_mut(&id) {
            e.refreshed_ahead_ms = Some(now_ms);
        }
    }

    /// Accounts that can take requests (enabled, not paused), for `/health`.
    pub fn usable_count(&self, now_ms: i64) -> usize {
        self.lock()
            .entries
            .values()
            .filter(|e| e.blocked(now_ms).is_none() || e.state.pause_over(now_ms))
            .count()
    }

    /// The account's health as the server sees it (tests, diagnostics).
    pub fn state_of(&self, id: i32) -> Option<State> {
        self.lock().entries.get(&id).map(|e| e.state.clone())
    }
}

/// How bad a state is: a late error never makes a state milder.
fn rank(h: Health) -> u8 {
    match h {
        Health::Active => 0,
        Health::Cooling => 1,
        Health::Quota => 2,
        Health::Disabled => 3,
        Health::Suspended => 4,
    }
}

fn write_of(id: i32, state: &State) -> WriteBack {
    WriteBack::Health {
        id,
        health: state.health,
        until: state.until_secs(),
        reason: state.reason.clone(),
    }
}

fn log_transition(account: &Account, from: &State, to: &State) {
    log::info!(
        target: "amq2api::pick",
        "account {} ({}): {} -> {}",
        account.name,
        account.id,
        from.describe(),
        to.describe()
    );
}

/// 0–60 s, fixed per account and token, so refreshes of accounts whose tokens expire together
/// are spread over a minute.
fn jitter_secs(id: i32, expires_at: i64) -> i64 {
    let mixed = (u64::from(id.unsigned_abs()))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(expires_at as u64)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    ((mixed >> 33) % 61) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::q::error::ErrorClass;

    const NOW: i64 = 1_795_701_570_000;

    fn account(id: i32) -> Account {
        Account {
            id,
            name: format!("a{id}"),
            auth_kind: "idc".into(),
            client_id: None,
            client_secret: None,
            refresh_token: "r".into(),
            refresh_token_hash: format!("h{id}"),
            imported_token_hash: String::new(),
            access_token: Some("t".into()),
            access_token_expires_at: Some(NOW / 1000 + 3600),
            region: "us-east-1".into(),
            profile_arn: None,
            start_url: None,
            enabled: true,
            health: "active".into(),
            health_until: None,
            health_reason: None,
            rpm_limit: None,
            created_at: 0,
            updated_at: 0,
            last_used_at: None,
            concurrency_limit: None,
            weight: 1,
        }
    }

    fn roster(accounts: Vec<Account>) -> Arc<Roster> {
        let r = Arc::new(Roster::new(PoolConfig::default()));
        r.load(accounts);
        r
    }

    fn err(class: ErrorClass) -> UpstreamError {
        UpstreamError::new(class, Stage::Http, "x")
    }

    #[test]
    fn round_robin_leases_and_skips_what_is_not_usable() {
        let mut disabled = account(2);
        disabled.enabled = false;
        let r = roster(vec![account(1), disabled, account(3)]);
        let ids: Vec<i32> = (0..4).map(|_| r.acquire(&[], NOW).unwrap().id()).collect();
        assert_eq!(ids, [1, 3, 1, 3]);
        // Excluded accounts (tried already) are not handed out again.
        assert_eq!(r.acquire(&[1], NOW).unwrap().id(), 3);
        let e = r.acquire(&[1, 3], NOW).unwrap_err();
        assert_eq!(
            e.to_string(),
            "No available accounts in pool (1 account: 1 disabled by the operator)"
        );
    }

    #[test]
    fn concurrency_slots_are_held_by_the_lease() {
        let mut a = account(1);
        a.concurrency_limit = Some(1);
        let r = roster(vec![a]);
        let lease = r.acquire(&[], NOW).unwrap();
        let e = r.acquire(&[], NOW).unwrap_err();
        assert_eq!((e.status(), e.retry_after()), (429, Some(1)));
        drop(lease);
        assert!(r.acquire(&[], NOW).is_ok());
    }

    #[test]
    fn rpm_limit_is_a_429_with_the_wait() {
        let mut a = account(1);
        a.rpm_limit = Some(1);
        let r = roster(vec![a, account(2)]);
        // Account 2 takes over when 1 is at its limit.
        assert_eq!(r.acquire(&[], NOW).unwrap().id(), 1);
        assert_eq!(r.acquire(&[], NOW).unwrap().id(), 2);
        assert_eq!(r.acquire(&[], NOW).unwrap().id(), 2);
        let e = r.acquire(&[2], NOW).unwrap_err();
        assert_eq!(e.status(), 429);
        assert_eq!(
            e.to_string(),
            "Every usable account is at its rate limit (1 account: 1 at the requests-per-minute limit)"
        );
        assert!(e.retry_after().unwrap() >= 59);
    }

    #[test]
    fn errors_move_accounts_through_the_states_and_write_them_back() {
        let r = roster(vec![account(1), account(2)]);
        r.on_error(1, &err(ErrorClass::InvalidRequest), NOW);
        assert_eq!(r.state_of(1), Some(State::active()));
        r.on_error(1, &err(ErrorClass::Throttled), NOW);
        assert_eq!(
            r.state_of(1).unwrap().describe(),
            "cooling until 2026-11-26 14:00:00 UTC: throttled"
        );
        // A late milder error does not shorten a worse state.
        r.on_error(2, &err(ErrorClass::Suspended), NOW);
        r.on_error(2, &err(ErrorClass::Throttled), NOW);
        assert_eq!(r.state_of(2).unwrap().health, Health::Suspended);
        let writes = r.take_writes(NOW);
        assert_eq!(
            writes,
            [
                WriteBack::Health {
                    id: 1,
                    health: Health::Cooling,
                    until: Some(NOW / 1000 + 30),
                    reason: Some("throttled".into())
                },
                WriteBack::Health {
                    id: 2,
                    health: Health::Suspended,
                    until: None,
                    reason: Some("suspended by Amazon Q".into())
                },
            ]
        );
        // Nothing usable: the 503 says why, with the time the first account is back.
        let e = r.acquire(&[], NOW).unwrap_err();
        assert_eq!(
            (e.status(), e.to_string(), e.retry_after()),
            (
                503,
                "No available accounts in pool (2 accounts: 1 cooling down until 14:00 UTC, 1 suspended by Amazon Q)".into(),
                Some(30)
            )
        );
        // The cooldown ends: back, logged and written once.
        assert_eq!(r.acquire(&[], NOW + 30_000).unwrap().id(), 1);
        assert_eq!(
            r.take_writes(NOW + 30_000)[0],
            WriteBack::Health {
                id: 1,
                health: Health::Active,
                until: None,
                reason: None
            }
        );
    }

    #[test]
    fn a_reload_keeps_what_the_server_knows_unless_the_database_changed() {
        let r = roster(vec![account(1)]);
        r.on_error(1, &err(ErrorClass::Throttled), NOW);
        // The row read before our write landed still says active: ours stays.
        r.load(vec![account(1)]);
        assert_eq!(r.state_of(1).unwrap().health, Health::Cooling);
        // Once written, the same row is not a change either.
        r.take_writes(NOW);
        let mut written = account(1);
        written.health = "cooling".into();
        written.health_until = Some(NOW / 1000 + 30);
        written.health_reason = Some("throttled".into());
        r.load(vec![written]);
        assert_eq!(r.state_of(1).unwrap().health, Health::Cooling);
        // The operator enables it again with the CLI: the database wins.
        r.load(vec![account(1)]);
        assert_eq!(r.state_of(1), Some(State::active()));
        // Removed from the database: gone.
        r.load(vec![]);
        assert!(r.acquire(&[], NOW).is_err());
    }

    #[test]
    fn a_failed_refresh_waits_before_the_next_one_when_the_token_has_expired() {
        let mut a = account(1);
        a.access_token_expires_at = Some(NOW / 1000 - 1);
        let r = roster(vec![a]);
        let refresh_err = UpstreamError::new(ErrorClass::ServerError, Stage::TokenRefresh, "x");
        r.on_error(1, &refresh_err, NOW);
        let e = r.acquire(&[], NOW).unwrap_err();
        assert_eq!(
            e.to_string(),
            "No available accounts in pool (1 account: 1 waiting to retry a failed token refresh)"
        );
        assert!(r.acquire(&[], NOW + 30_000).is_ok());
        r.on_refreshed(1, "fresh", NOW / 1000 + 3600);
        assert_eq!(
            r.acquire(&[], NOW)
                .unwrap()
                .account()
                .access_token
                .as_deref(),
            Some("fresh")
        );
    }

    #[test]
    fn a_token_the_server_got_survives_a_reload_of_an_older_row() {
        let r = roster(vec![account(1)]);
        r.on_refreshed(1, "fresh", NOW / 1000 + 3600);
        // Read before the server's refresh was stored.
        r.load(vec![account(1)]);
        let token = |r: &Arc<Roster>| r.acquire(&[], NOW).unwrap().account().access_token.clone();
        assert_eq!(token(&r).as_deref(), Some("fresh"));
        // The database caught up; later changes (the CLI's refresh) are taken again.
        let mut stored = account(1);
        stored.access_token = Some("fresh".into());
        r.load(vec![stored]);
        let mut cli = account(1);
        cli.access_token = Some("from-cli".into());
        r.load(vec![cli]);
        assert_eq!(token(&r).as_deref(), Some("from-cli"));
    }

    #[test]
    fn background_refresh_picks_accounts_in_use_near_expiry_with_jitter() {
        let mut soon = account(1);
        soon.access_token_expires_at = Some(NOW / 1000 + 300);
        let mut later = account(2);
        later.access_token_expires_at = Some(NOW / 1000 + 3600);
        let mut idle = account(3);
        idle.access_token_expires_at = Some(NOW / 1000 + 100);
        let r = roster(vec![soon, later, idle]);
        drop(r.acquire(&[3], NOW));
        drop(r.acquire(&[3], NOW));
        let margin = Duration::from_secs(300);
        let hour = Duration::from_secs(3600);
        let minute = Duration::from_secs(60);
        assert_eq!(
            r.due_for_refresh(NOW, margin, hour, minute),
            [(1, NOW / 1000 + 300)]
        );
        r.refreshed_ahead(1, NOW);
        assert!(r.due_for_refresh(NOW, margin, hour, minute).is_empty());
        assert!(jitter_secs(1, 5) <= 60 && jitter_secs(2, 5) != jitter_secs(1, 5));
    }

    #[test]
    fn least_used_and_weights_come_from_the_rows() {
        let mut heavy = account(1);
        heavy.weight = 2;
        let cfg = PoolConfig {
            strategy: Strategy::LeastUsed,
            ..PoolConfig::default()
        };
        let r = Arc::new(Roster::new(cfg));
        r.load(vec![heavy, account(2)]);
        let ids: Vec<i32> = (0..6).map(|_| r.acquire(&[], NOW).unwrap().id()).collect();
        assert_eq!(ids.iter().filter(|i| **i == 1).count(), 4, "{ids:?}");
    }
}
