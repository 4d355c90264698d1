//! The usage log writer: requests hand their usage row to a bounded queue and never wait; one
//! writer thread inserts what is queued in batched transactions. A full queue drops the row (the
//! request still succeeds), counted in `amq2api_usage_rows_dropped_total` and logged. On shutdown
//! [`UsageLog::flush`] waits until everything queued is written.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::db::{self, usage::NewUsageRecord};

/// Rows the queue holds before new ones are dropped: minutes of traffic at the benchmark's rates
/// even while another process holds the database locked.
pub const QUEUE_CAPACITY: usize = 50_000;
/// Rows written per transaction at most.
const MAX_BATCH: usize = 1_000;
/// Attempts for a batch the database refuses (each waits out `busy_timeout` first).
const WRITE_ATTEMPTS: u32 = 3;

enum Msg {
    Row(Box<NewUsageRecord>),
    /// Answered once every row queued before it is written.
    Flush(mpsc::Sender<()>),
}

/// The queue's sending side; cheap to share.
pub struct UsageLog {
    tx: SyncSender<Msg>,
    /// When a drop was last logged (drops are logged at most every 10 seconds).
    last_drop_log: Mutex<Option<Instant>>,
}

impl UsageLog {
    /// Starts the writer thread on `pool`.
    pub fn start(pool: db::Pool, capacity: usize) -> UsageLog {
        let (log, rx) = UsageLog::queue(capacity);
        std::thread::Builder::new()
            .name("usage-writer".into())
            .spawn(move || writer(pool, rx))
            .expect("cannot start the usage writer thread");
        log
    }

    fn queue(capacity: usize) -> (UsageLog, Receiver<Msg>) {
        let (tx, rx) = mpsc::sync_channel(capacity);
        let log = UsageLog {
            tx,
            last_drop_log: Mutex::new(None),
        };
        (log, rx)
    }

    /// Queues a row; never blocks.
    pub fn push(&self, row: NewUsageRecord) {
        match self.tx.try_send(Msg::Row(Box::new(row))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                crate::metrics::get().usage_rows_dropped.inc();
                let mut last = self.last_drop_log.lock().unwrap_or_else(|p| p.into_inner());
                if last.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    *last = Some(Instant::now());
                    log::warn!(
                        "usage rows are being dropped: the write queue is full (total dropped: {})",
                        crate::metrics::get().usage_rows_dropped.get()
                    );
                }
            }
        }
    }

    /// Waits up to `timeout` until every row queued so far is written. Returns whether it was.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (ack_tx, ack_rx) = mpsc::channel();
        let mut msg = Msg::Flush(ack_tx);
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => return false,
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        !matches!(
            ack_rx.recv_timeout(left),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected)
        )
    }
}

fn writer(pool: db::Pool, rx: Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut rows = Vec::new();
        let mut acks = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Row(row) => rows.push(*row),
                Msg::Flush(ack) => acks.push(ack),
            }
            if rows.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !rows.is_empty() {
            write(&pool, &rows);
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

fn write(pool: &db::Pool, rows: &[NewUsageRecord]) {
    for attempt in 1..=WRITE_ATTEMPTS {
        let result = pool.get().map_err(db::DbError::from).and_then(|mut conn| {
            conn.immediate_transaction(|c| {
                for row in rows {
                    db::usage::insert(c, row)?;
                }
                diesel::QueryResult::Ok(())
            })
            .map_err(db::DbError::from)
        });
        match result {
            Ok(()) => return,
            Err(e) if attempt < WRITE_ATTEMPTS => {
                log::warn!(
                    "cannot write {} usage rows yet (attempt {attempt}): {e}",
                    rows.len()
                );
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => {
                log::error!("dropping {} usage rows: {e}", rows.len());
                crate::metrics::get()
                    .usage_rows_dropped
                    .inc_by(rows.len() as u64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: i64) -> NewUsageRecord {
        NewUsageRecord {
            created_at: n,
            api_key_id: None,
            account_id: None,
            account_name: Some("a".into()),
            endpoint: "/v1/messages".into(),
            model_requested: "m".into(),
            model_upstream: None,
            stream: false,
            input_tokens: n,
            output_tokens: 1,
            status: 200,
            error_class: None,
            ttfb_ms: None,
            latency_ms: 5,
        }
    }

    #[test]
    fn rows_are_written_in_order_and_flush_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let pool = db::open(&dir.path().join("t.db")).unwrap();
        let log = UsageLog::start(pool.clone(), 1_000);
        for n in 0..250 {
            log.push(row(n));
        }
        assert!(log.flush(Duration::from_secs(10)));
        let rows = db::usage::list_since(&mut pool.get().unwrap(), 0).unwrap();
        assert_eq!(rows.len(), 250);
        assert!(rows
            .iter()
            .enumerate()
            .all(|(i, r)| r.input_tokens == i as i64));
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (log, rx) = UsageLog::queue(2);
        let before = crate::metrics::get().usage_rows_dropped.get();
        let started = Instant::now();
        for n in 0..5 {
            log.push(row(n));
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(crate::metrics::get().usage_rows_dropped.get() - before, 3);
        assert_eq!(rx.try_iter().count(), 2);
    }
}
