//! The database under pressure: streaming and non-streaming requests on both APIs while the CLI
//! (`accounts import`, `keys create`, `stats`, `stats --json`) writes and reads the same SQLite
//! file in a loop, with no failed request and no "database is locked"; and a `kill -9` of
//! `serve` under load, after which the database opens cleanly and holds the usage row of every
//! request that completed more than a second before the kill.
//!
//! The usage writer (`src/usage.rs`) has no flush timer: its thread blocks on the queue and
//! commits whatever is queued at once (one transaction per batch, up to 1,000 rows), so a row
//! is on disk milliseconds after its request ended. WAL with `synchronous = NORMAL` keeps a
//! committed transaction through a process kill (not through a power loss).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;

use crate::support::fake_q::{FakeQ, Script};
use crate::support::{account_and_key, stderr, Server, TestDir};

/// One kind of request, chosen round-robin.
#[derive(Clone, Copy, Debug)]
enum Kind {
    ClaudeStream,
    ClaudePlain,
    OpenAiStream,
    OpenAiPlain,
}

const KINDS: [Kind; 4] = [
    Kind::ClaudeStream,
    Kind::ClaudePlain,
    Kind::OpenAiStream,
    Kind::OpenAiPlain,
];

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::ClaudeStream | Kind::ClaudePlain => "/v1/messages",
            Kind::OpenAiStream | Kind::OpenAiPlain => "/v1/chat/completions",
        }
    }

    fn body(self, model: &str) -> String {
        let stream = matches!(self, Kind::ClaudeStream | Kind::OpenAiStream);
        serde_json::json!({
            "model": model,
            "max_tokens": 50,
            "stream": stream,
            "messages": [{"role": "user", "content": "hello under pressure"}],
        })
        .to_string()
    }

    /// Whether `body` is a complete, successful answer of this kind.
    fn complete(self, body: &str) -> bool {
        match self {
            Kind::ClaudeStream => {
                body.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
                    && !body.contains("event: error")
            }
            Kind::ClaudePlain => body.contains(r#""type":"message""#),
            Kind::OpenAiStream => {
                body.ends_with("data: [DONE]\n\n") && !body.contains(r#""error""#)
            }
            Kind::OpenAiPlain => body.contains(r#""object":"chat.completion""#),
        }
    }
}

/// A blocking client for one thread: one actix System and one awc client (keep-alive), and
/// errors returned instead of panicking (the kill test expects some requests to break).
struct Client {
    system: actix_web::rt::SystemRunner,
    client: awc::Client,
}

impl Client {
    fn new() -> Client {
        let system = actix_web::rt::System::new();
        let client = system.block_on(async {
            awc::Client::builder()
                .timeout(Duration::from_secs(60))
                .finish()
        });
        Client { system, client }
    }

    /// POSTs `body`; `Ok((status, body))`, or the transport error.
    fn post(&self, url: &str, key: &str, body: String) -> Result<(u16, String), String> {
        let client = self.client.clone();
        self.system.block_on(async move {
            let mut resp = client
                .post(url)
                .insert_header(("x-api-key", key))
                .insert_header(("content-type", "application/json"))
                .send_body(body)
                .await
                .map_err(|e| format!("send: {e}"))?;
            let bytes = resp
                .body()
                .limit(16 << 20)
                .await
                .map_err(|e| format!("body: {e}"))?;
            Ok((
                resp.status().as_u16(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ))
        })
    }
}

/// A short streamed answer that takes a little while, so requests overlap the CLI's writes.
fn slow_answer() -> crate::support::fake_q::Reply {
    Script::new()
        .metadata()
        .text("Under ")
        .delay(Duration::from_millis(30))
        .text("pressure, ")
        .delay(Duration::from_millis(30))
        .text("still fine.")
        .end()
        .reply()
}

/// What the CLI printed when a command failed or mentioned the lock.
fn locked_or_failed(out: &std::process::Output) -> bool {
    let err = stderr(out).to_ascii_lowercase();
    !out.status.success() || err.contains("locked") || err.contains("busy")
}

#[test]
fn cli_commands_and_requests_share_the_database_without_locking() {
    const CLIENTS: usize = 6;
    const RUN: Duration = Duration::from_secs(12);
    let fake = FakeQ::start();
    fake.set_rotate(false);
    fake.set_default_reply(slow_answer());
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let server = Server::start(&t, &fake);
    let deadline = Instant::now() + RUN;

    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (url, key) = (server.url.clone(), key.clone());
            let (ok, failures) = (ok.clone(), failures.clone());
            std::thread::spawn(move || {
                let client = Client::new();
                let mut i = c;
                // Bounded by time and by count.
                while Instant::now() < deadline && i < 20_000 {
                    let kind = KINDS[i % KINDS.len()];
                    let model = if i % 2 == 0 {
                        "claude-sonnet-4-5"
                    } else {
                        "gpt-4o"
                    };
                    match client.post(&format!("{url}{}", kind.path()), &key, kind.body(model)) {
                        Ok((200, body)) if kind.complete(&body) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        other => failures
                            .lock()
                            .unwrap()
                            .push(format!("{kind:?}: {other:?}")),
                    }
                    i += CLIENTS;
                }
            })
        })
        .collect();

    // The CLI, in a loop on this thread: each round imports a new account (known to the fake,
    // so the server can use it), creates a key, and reads the statistics twice.
    let mut commands = 0;
    let mut cli_failures = Vec::new();
    let mut round = 0;
    while Instant::now() < deadline {
        round += 1;
        let client_id = format!("FAKECLIENTp{round}");
        fake.add_idc(
            &client_id,
            &format!("eyJFAKE-p-secret-{round}"),
            &format!("aorFAKE-p-refresh-{round}"),
        );
        let file = t.path().join(format!("p{round}.json"));
        std::fs::write(
            &file,
            serde_json::json!({
                "clientId": client_id,
                "clientSecret": format!("eyJFAKE-p-secret-{round}"),
                "refreshToken": format!("aorFAKE-p-refresh-{round}"),
                "label": format!("p{round}"),
            })
            .to_string(),
        )
        .unwrap();
        let name = format!("p{round}");
        for args in [
            vec!["accounts", "import", file.to_str().unwrap()],
            vec!["keys", "create", "--name", &name],
            vec!["stats"],
            vec!["stats", "--json"],
        ] {
            let out = t.run(&args);
            commands += 1;
            if locked_or_failed(&out) {
                cli_failures.push(format!("{args:?}: {:?}\n{}", out.status, stderr(&out)));
            }
        }
    }
    for c in clients {
        c.join().unwrap();
    }
    let ok = ok.load(Ordering::Relaxed);
    let failures = failures.lock().unwrap().clone();
    eprintln!(
        "db pressure: {ok} requests succeeded, {} failed; {commands} CLI commands ({round} rounds), {} failed",
        failures.len(),
        cli_failures.len()
    );
    assert!(failures.is_empty(), "failed requests: {failures:#?}");
    assert!(
        cli_failures.is_empty(),
        "failed commands: {cli_failures:#?}"
    );
    // The load really overlapped the CLI.
    assert!(ok >= 40 && round >= 3, "{ok} requests, {round} rounds");
    // Everything the CLI wrote is there, and every request has its usage row.
    let accounts = t.json(&["accounts", "list", "--json"]);
    assert_eq!(accounts.as_array().unwrap().len(), 1 + round);
    let keys = t.json(&["keys", "list", "--json"]);
    assert_eq!(keys.as_array().unwrap().len(), 1 + round);
    crate::support::eventually("a usage row per request", Duration::from_secs(20), || {
        let rows = amq2api::db::usage::list_since(&mut t.pool().get().unwrap(), 0).unwrap();
        (rows.len() == ok).then_some(())
    });
    assert!(!server.log().contains("locked"), "{}", server.log());
}

#[derive(diesel::QueryableByName)]
struct Integrity {
    #[diesel(sql_type = diesel::sql_types::Text)]
    integrity_check: String,
}

#[test]
fn kill_9_under_load_keeps_every_row_completed_a_second_before() {
    const CLIENTS: usize = 6;
    let fake = FakeQ::start();
    fake.set_default_reply(slow_answer());
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let server = Server::start(&t, &fake);

    let stop = Arc::new(AtomicBool::new(false));
    // (model name = request id, completion time) of every request that completed.
    let done = Arc::new(Mutex::new(Vec::<(String, Instant)>::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (url, key) = (server.url.clone(), key.clone());
            let (stop, done) = (stop.clone(), done.clone());
            std::thread::spawn(move || {
                let client = Client::new();
                // Bounded: the kill comes after a few seconds; 5,000 is far beyond that.
                for i in 0..5_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let kind = KINDS[(c + i) % KINDS.len()];
                    // An unknown model name gets the default model and is kept verbatim in the
                    // usage row's `model_requested`: it identifies the request.
                    let id = format!("kill-{c}-{i}");
                    match client.post(&format!("{url}{}", kind.path()), &key, kind.body(&id)) {
                        Ok((200, body)) if kind.complete(&body) => {
                            done.lock().unwrap().push((id, Instant::now()))
                        }
                        // Broken by the kill (or after it): the client is done.
                        _ => break,
                    }
                }
            })
        })
        .collect();
    // Load for a few seconds, then SIGKILL in the middle of it.
    crate::support::eventually("load under way", Duration::from_secs(60), || {
        (done.lock().unwrap().len() >= 60).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let killed_at = Instant::now();
    server.signal("KILL");
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    drop(server);

    // The database opens cleanly (migrations, WAL recovery) and is intact.
    let pool = t.pool();
    let mut conn = pool.get().unwrap();
    let check: Vec<Integrity> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut conn)
        .unwrap();
    assert_eq!(
        check
            .iter()
            .map(|c| c.integrity_check.as_str())
            .collect::<Vec<_>>(),
        ["ok"]
    );
    t.ok(&["accounts", "list"]);
    t.ok(&["stats"]);

    let rows: HashSet<String> = amq2api::db::usage::list_since(&mut conn, 0)
        .unwrap()
        .into_iter()
        .map(|r| r.model_requested)
        .collect();
    let done = done.lock().unwrap().clone();
    let settled: Vec<&String> = done
        .iter()
        .filter(|(_, at)| killed_at.duration_since(*at) > Duration::from_secs(1))
        .map(|(id, _)| id)
        .collect();
    let missing: Vec<&&String> = settled.iter().filter(|id| !rows.contains(**id)).collect();
    let recent = done.len() - settled.len();
    let recent_kept = done
        .iter()
        .filter(|(id, at)| {
            killed_at.duration_since(*at) <= Duration::from_secs(1) && rows.contains(id)
        })
        .count();
    eprintln!(
        "kill -9: {} requests completed, {} more than 1 s before the kill ({} rows missing); {recent} in the last second ({recent_kept} rows kept); {} usage rows",
        done.len(),
        settled.len(),
        missing.len(),
        rows.len()
    );
    assert!(settled.len() >= 30, "too little load: {}", settled.len());
    assert!(missing.is_empty(), "rows missing: {missing:?}");
}
