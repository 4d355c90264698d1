//! The account pool of `serve` against the fake Amazon Q with several accounts: round robin,
//! failover before the first byte, the health state machine (throttling, refresh, dead refresh
//! tokens, client faults), single-flight refresh under load, the 503 that says why, live
//! changes made with the CLI, and per-key and per-account limits.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fake_q::{FakeQ, QError, Reply, Script};
use crate::support::{active_accounts, eventually, http, Response, Server, TestDir};

const TWO_SECONDS: Duration = Duration::from_secs(2);

/// A database with `n` accounts the fake knows (fake index i is account `acc{i+1}`, id i+1),
/// each as `extra(i)` adds to its import entry, and one key.
fn setup(fake: &FakeQ, n: usize, extra: impl Fn(usize) -> Value) -> (TestDir, String) {
    let t = TestDir::new();
    import(&t, fake, 0..n, extra);
    let key = t
        .ok(&["keys", "create", "--name", "tester"])
        .trim()
        .to_owned();
    (t, key)
}

/// Registers accounts `range` with the fake and imports them with the CLI.
fn import(
    t: &TestDir,
    fake: &FakeQ,
    range: std::ops::Range<usize>,
    extra: impl Fn(usize) -> Value,
) {
    let entries: Vec<Value> = range
        .map(|i| {
            let n = i + 1;
            assert_eq!(
                fake.add_idc(
                    &format!("FAKECLIENT{n}"),
                    &format!("eyJFAKE-secret-{n}"),
                    &format!("aorFAKE-refresh-{n}")
                ),
                i
            );
            let mut entry = json!({
                "clientId": format!("FAKECLIENT{n}"),
                "clientSecret": format!("eyJFAKE-secret-{n}"),
                "refreshToken": format!("aorFAKE-refresh-{n}"),
                "label": format!("acc{n}"),
            });
            if let Value::Object(more) = extra(i) {
                entry.as_object_mut().unwrap().extend(more);
            }
            entry
        })
        .collect();
    let file = t.path().join("accounts.json");
    std::fs::write(&file, Value::Array(entries).to_string()).unwrap();
    t.ok(&["accounts", "import", file.to_str().unwrap()]);
}

fn none(_: usize) -> Value {
    Value::Null
}

fn hello(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": stream,
           "messages": [{"role": "user", "content": "hello"}]})
}

fn post(server: &Server, key: &str, body: &Value) -> Response {
    post_to(server, key, "/v1/messages", body)
}

fn post_to(server: &Server, key: &str, path: &str, body: &Value) -> Response {
    http(
        "POST",
        &format!("{}{path}", server.url),
        &[("x-api-key", key), ("content-type", "application/json")],
        Some(&body.to_string()),
    )
}

/// (fake account index, status) of every chat call the fake received, in order.
fn calls(fake: &FakeQ) -> Vec<(Option<usize>, u16)> {
    fake.requests()
        .iter()
        .map(|r| (r.account, r.status))
        .collect()
}

/// Successful chat calls per fake account index.
fn served(fake: &FakeQ, accounts: usize) -> Vec<usize> {
    let mut counts = vec![0; accounts];
    for (account, status) in calls(fake) {
        if status == 200 {
            counts[account.unwrap()] += 1;
        }
    }
    counts
}

fn accounts_list(t: &TestDir) -> Vec<Value> {
    t.json(&["accounts", "list", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

/// The account list once `pred` holds for the account named `name` (the server writes its state
/// back on its own schedule).
fn account_when(t: &TestDir, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("{name} in accounts list"), TWO_SECONDS, || {
        accounts_list(t)
            .into_iter()
            .find(|a| a["name"] == name)
            .filter(|a| pred(a))
    })
}

fn error_json(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// "14:05 UTC" (today) or "2026-12-01 00:00 UTC": how the server shows a pause's end, rounded up
/// to the minute.
fn shown(until: &str) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(until)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let secs = t.timestamp();
    let up = chrono::DateTime::from_timestamp((secs + 59).div_euclid(60) * 60, 0).unwrap();
    if up.date_naive() == chrono::Utc::now().date_naive() {
        up.format("%H:%M UTC").to_string()
    } else {
        up.format("%Y-%m-%d %H:%M UTC").to_string()
    }
}

#[test]
fn round_robin_spreads_evenly_and_a_disabled_account_gets_nothing() {
    let fake = FakeQ::start();
    let (t, key) = setup(&fake, 4, none);
    t.ok(&["accounts", "disable", "acc4"]);
    let server = Server::start(&t, &fake);
    for _ in 0..30 {
        assert_eq!(post(&server, &key, &hello(false)).status, 200);
    }
    assert_eq!(served(&fake, 4), [10, 10, 10, 0]);
    // One refresh per account that served, nothing else upstream.
    assert_eq!(fake.token_calls(), 3);
    assert_eq!(fake.chat_calls(), 30);
    // Disabled with the CLI while the server runs: it gets nothing from then on.
    t.ok(&["accounts", "disable", "acc3"]);
    eventually("acc3 leaves the pool", TWO_SECONDS, || {
        (active_accounts(&server) == 2).then_some(())
    });
    fake.clear_requests();
    for _ in 0..10 {
        assert_eq!(post(&server, &key, &hello(false)).status, 200);
    }
    assert_eq!(served(&fake, 4), [5, 5, 0, 0]);
    // `accounts list` shows when each account was last used.
    account_when(&t, "acc3", |a| a["last_used_at"].is_string());
    assert_eq!(accounts_list(&t)[3]["last_used_at"], Value::Null);
}

#[test]
fn a_throttled_account_is_skipped_before_the_first_byte_and_comes_back_after_its_cooldown() {
    let fake = FakeQ::start();
    let (t, key) = setup(&fake, 2, none);
    let server = Server::start_with(&t, &fake, &[("AMQ2API_THROTTLE_BACKOFF", "1s")]);
    fake.push_reply_for(0, Reply::Error(QError::Throttled));
    let throttled_at = Instant::now();
    let r = post(&server, &key, &hello(true));
    // The client sees a complete, normal answer: the 429 never reached it.
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("event: message_start\n"), "{}", r.body);
    assert!(r.body.contains("event: message_stop\n"), "{}", r.body);
    assert!(!r.body.contains("event: error"), "{}", r.body);
    assert_eq!(calls(&fake), [(Some(0), 429), (Some(1), 200)]);
    let acc1 = account_when(&t, "acc1", |a| a["health"] == "cooling");
    assert_eq!(acc1["health_reason"], "throttled");
    // While it cools down, acc2 takes everything.
    fake.clear_requests();
    assert_eq!(post(&server, &key, &hello(false)).status, 200);
    if throttled_at.elapsed() < Duration::from_millis(900) {
        assert_eq!(calls(&fake), [(Some(1), 200)]);
    }
    // After its cooldown it is back by itself: active in the list and serving again.
    account_when(&t, "acc1", |a| a["health"] == "active");
    assert!(throttled_at.elapsed() >= Duration::from_millis(900));
    fake.clear_requests();
    for _ in 0..2 {
        assert_eq!(post(&server, &key, &hello(false)).status, 200);
    }
    assert_eq!(served(&fake, 2), [1, 1]);
    assert!(server
        .log()
        .contains("account acc1 (1): active -> cooling until "));
    assert!(server
        .log()
        .contains(": throttled -> active (the pause is over)"));
}

#[test]
fn a_refused_access_token_is_refreshed_once_and_the_request_succeeds_on_the_same_account() {
    let fake = FakeQ::start();
    // Tokens valid by their expiry but unknown to the fake: it answers 403 "bearer token invalid".
    let (t, key) = setup(
        &fake,
        2,
        |i| json!({"accessToken": format!("aoaFAKE-stale-{i}"), "expiresAt": "2099-01-01T00:00:00Z"}),
    );
    let server = Server::start(&t, &fake);
    let r = post(&server, &key, &hello(false));
    assert_eq!(r.status, 200, "{}", r.body);
    // The fake cannot tell whose token it refused.
    assert_eq!(calls(&fake), [(None, 403), (Some(0), 200)]);
    assert_eq!(fake.token_calls(), 1);
    // The fresh token is kept: the next request on acc1 needs no refresh.
    post(&server, &key, &hello(false));
    fake.clear_requests();
    let r = post(&server, &key, &hello(false));
    assert_eq!(r.status, 200);
    assert_eq!(calls(&fake), [(Some(0), 200)]);
    assert_eq!(fake.token_calls(), 2, "acc2 refreshed once as well");
    assert_eq!(account_when(&t, "acc1", |_| true)["health"], "active");
}

#[test]
fn a_dead_refresh_token_disables_the_account_and_the_request_succeeds_elsewhere() {
    let fake = FakeQ::start();
    let (t, key) = setup(
        &fake,
        2,
        |i| json!({"accessToken": format!("aoaFAKE-stale-{i}"), "expiresAt": "2099-01-01T00:00:00Z"}),
    );
    fake.revoke_refresh_token(0);
    let server = Server::start(&t, &fake);
    let r = post(&server, &key, &hello(false));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(calls(&fake), [(None, 403), (None, 403), (Some(1), 200)]);
    assert_eq!(fake.token_calls(), 2);
    let acc1 = account_when(&t, "acc1", |a| a["health"] == "disabled");
    assert_eq!(acc1["health_reason"], "refresh token invalid");
    // Never tried again.
    fake.clear_requests();
    for _ in 0..3 {
        assert_eq!(post(&server, &key, &hello(false)).status, 200);
    }
    assert_eq!(served(&fake, 2), [0, 3]);
    assert_eq!(fake.token_calls(), 2);
    let log = server.log();
    assert_eq!(
        log.matches("account acc1 (1): active -> disabled: refresh token invalid")
            .count(),
        1,
        "{log}"
    );
}

#[test]
fn a_malformed_request_leaves_every_account_untouched_even_fifty_times() {
    let fake = FakeQ::start();
    let (t, key) = setup(&fake, 3, none);
    let server = Server::start(&t, &fake);
    fake.set_default_reply(Reply::Error(QError::ImproperlyFormed));
    for _ in 0..50 {
        let r = post(&server, &key, &hello(false));
        assert_eq!(
            (r.status, r.json()),
            (
                400,
                error_json(
                    "invalid_request_error",
                    "Amazon Q rejected the request (ValidationException): Improperly formed request."
                )
            )
        );
    }
    // Each tried on one account only, never on another.
    assert_eq!(fake.chat_calls(), 50);
    // The server's own view, at once: every account usable, no transition logged.
    assert_eq!(active_accounts(&server), 3);
    assert!(!server.log().contains(" -> "), "{}", server.log());
    for a in accounts_list(&t) {
        assert_eq!(
            (&a["health"], &a["health_reason"], &a["health_until"]),
            (&json!("active"), &Value::Null, &Value::Null),
            "{a}"
        );
    }
    // And each still takes its turn.
    fake.set_default_reply(Reply::default_text());
    fake.clear_requests();
    for _ in 0..3 {
        assert_eq!(post(&server, &key, &hello(false)).status, 200);
    }
    assert_eq!(served(&fake, 3), [1, 1, 1]);
}

/// `n` concurrent POSTs of `body`; their statuses.
fn concurrent(server: &Server, key: &str, body: &Value, n: usize) -> Vec<u16> {
    let url = format!("{}/v1/messages", server.url);
    let (key, body) = (key.to_owned(), body.to_string());
    actix_web::rt::System::new().block_on(async move {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .finish();
        let requests = (0..n).map(|_| {
            let req = client
                .post(&url)
                .insert_header(("x-api-key", key.as_str()))
                .send_body(body.clone());
            async move {
                let mut resp = req.await.unwrap();
                let _ = resp.body().await;
                resp.status().as_u16()
            }
        });
        futures_util::future::join_all(requests).await
    })
}

#[test]
fn a_hundred_concurrent_requests_with_expired_tokens_refresh_each_account_once() {
    let fake = FakeQ::start();
    let (t, key) = setup(
        &fake,
        3,
        |i| json!({"accessToken": format!("aoaFAKE-old-{i}"), "expiresAt": "2020-01-01T00:00:00Z"}),
    );
    fake.set_token_delay(Duration::from_millis(300));
    let server = Server::start(&t, &fake);
    let statuses = concurrent(&server, &key, &hello(false), 100);
    assert_eq!(statuses, vec![200; 100]);
    assert_eq!(fake.token_calls(), 3);
    let mut refreshed: Vec<String> = fake
        .token_requests()
        .iter()
        .map(|r| r.body["clientId"].as_str().unwrap().to_owned())
        .collect();
    refreshed.sort();
    assert_eq!(refreshed, ["FAKECLIENT1", "FAKECLIENT2", "FAKECLIENT3"]);
    assert_eq!(fake.chat_calls(), 100);
    assert_eq!(served(&fake, 3).iter().sum::<usize>(), 100);
}

#[test]
fn with_every_account_unusable_the_client_gets_a_503_saying_why() {
    let fake = FakeQ::start();
    let (t, key) = setup(&fake, 4, none);
    fake.set_account_error(0, Some(QError::MonthlyQuota));
    fake.revoke_refresh_token(1);
    fake.set_account_error(2, Some(QError::Throttled));
    t.ok(&["accounts", "disable", "acc4"]);
    let server = Server::start(&t, &fake);
    // Three accounts tried, each failing its own way; the last error goes to the client.
    let r = post(&server, &key, &hello(false));
    assert_eq!(
        (r.status, r.json()),
        (
            429,
            error_json(
                "rate_limit_error",
                "Amazon Q rejected the request (ThrottlingException): Rate exceeded"
            )
        )
    );
    assert_eq!(calls(&fake), [(Some(0), 400), (Some(2), 429)]);
    let quota = account_when(&t, "acc1", |a| a["health"] == "quota");
    account_when(&t, "acc2", |a| a["health"] == "disabled");
    let cooling = account_when(&t, "acc3", |a| a["health"] == "cooling");
    // Nothing is usable now.
    let r = post(&server, &key, &hello(false));
    let message = format!(
        "No available accounts in pool (4 accounts: 1 cooling down until {}, 1 out of quota until {}, 1 disabled: refresh token invalid, 1 disabled by the operator)",
        shown(cooling["health_until"].as_str().unwrap()),
        shown(quota["health_until"].as_str().unwrap()),
    );
    assert_eq!(
        (r.status, r.json()),
        (503, error_json("overloaded_error", &message))
    );
    // The throttled account is back within 30 s: the client may retry then.
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((25..=30).contains(&retry), "{retry}");
    assert_eq!(fake.chat_calls(), 2);
    assert_eq!(
        http("GET", &format!("{}/health", server.url), &[], None).json()["status"],
        "degraded"
    );
}

#[test]
fn cli_changes_reach_the_running_server_within_two_seconds() {
    let fake = FakeQ::start();
    let (t, key) = setup(&fake, 1, none);
    let server = Server::start(&t, &fake);
    assert_eq!(post(&server, &key, &hello(false)).status, 200);
    // A key revoked with the CLI is refused.
    let revoked_at = Instant::now();
    t.ok(&["keys", "revoke", "tester", "--yes"]);
    let r = eventually("the revoked key is refused", TWO_SECONDS, || {
        Some(post(&server, &key, &hello(false))).filter(|r| r.status == 401)
    });
    assert!(revoked_at.elapsed() < TWO_SECONDS);
    assert_eq!(
        r.json(),
        error_json(
            "authentication_error",
            "no API key exists yet: create one on the server with `amq2api keys create --name NAME`"
        )
    );
    // A key created with the CLI works.
    let key2 = t
        .ok(&["keys", "create", "--name", "second"])
        .trim()
        .to_owned();
    eventually("the new key is accepted", TWO_SECONDS, || {
        (post_to(&server, &key2, "/v1/messages/count_tokens", &hello(false)).status == 200)
            .then_some(())
    });
    // An account imported with the CLI starts receiving traffic.
    fake.clear_requests();
    let imported_at = Instant::now();
    import(&t, &fake, 1..2, none);
    eventually("acc2 serves a request", TWO_SECONDS, || {
        assert_eq!(post(&server, &key2, &hello(false)).status, 200);
        (served(&fake, 2)[1] > 0).then_some(())
    });
    assert!(imported_at.elapsed() < TWO_SECONDS + Duration::from_secs(1));
    // `accounts refresh` from the CLI, after every token the server holds was revoked: the
    // server takes the CLI's new tokens from the database and refreshes nothing itself.
    fake.revoke_access_tokens();
    t.ok(&[
        "accounts",
        "refresh",
        "--all",
        "--token-endpoint",
        &fake.token_url(),
    ]);
    let after_cli = fake.token_calls();
    eventually(
        "the server uses the tokens the CLI got",
        TWO_SECONDS,
        || {
            fake.clear_requests();
            assert_eq!(post(&server, &key2, &hello(false)).status, 200);
            (calls(&fake).len() == 1).then_some(())
        },
    );
    assert_eq!(
        fake.token_calls(),
        after_cli,
        "the server refreshed nothing"
    );
    // Removed with the CLI: it leaves the pool.
    t.ok(&["accounts", "remove", "acc1", "--yes"]);
    eventually("acc1 leaves the pool", TWO_SECONDS, || {
        (active_accounts(&server) == 1).then_some(())
    });
}

#[test]
fn per_key_limits_are_429_with_retry_after() {
    let fake = FakeQ::start();
    let (t, _) = setup(&fake, 1, none);
    let rpm_key = t
        .ok(&["keys", "create", "--name", "slow", "--rpm", "2"])
        .trim()
        .to_owned();
    let one_at_a_time = t
        .ok(&["keys", "create", "--name", "single", "--concurrency", "1"])
        .trim()
        .to_owned();
    let server = Server::start(&t, &fake);
    assert_eq!(post(&server, &rpm_key, &hello(false)).status, 200);
    assert_eq!(post(&server, &rpm_key, &hello(false)).status, 200);
    let r = post(&server, &rpm_key, &hello(false));
    assert_eq!(
        (r.status, r.json()),
        (
            429,
            error_json(
                "rate_limit_error",
                "rate limit of this API key reached: 2 requests per minute"
            )
        )
    );
    // One request every 30 s.
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((28..=30).contains(&retry), "{retry}");
    assert_eq!(fake.chat_calls(), 2);
    // Token counting is answered locally and is not limited.
    for _ in 0..5 {
        let r = post_to(
            &server,
            &rpm_key,
            "/v1/messages/count_tokens",
            &hello(false),
        );
        assert_eq!(r.status, 200);
    }

    // Concurrency: a slow stream holds the key's only slot until it ends.
    fake.push_reply(
        Script::new()
            .text("a")
            .delay(Duration::from_millis(1500))
            .text("b")
            .end()
            .reply(),
    );
    let streaming = {
        let (url, key) = (server.url.clone(), one_at_a_time.clone());
        std::thread::spawn(move || {
            http(
                "POST",
                &format!("{url}/v1/messages"),
                &[("x-api-key", &key)],
                Some(&hello(true).to_string()),
            )
        })
    };
    eventually("the stream is in flight", TWO_SECONDS, || {
        (fake.chat_calls() == 3).then_some(())
    });
    let r = post(&server, &one_at_a_time, &hello(false));
    assert_eq!(
        (r.status, r.json(), r.header("retry-after")),
        (
            429,
            error_json(
                "rate_limit_error",
                "concurrency limit of this API key reached: 1 request at a time"
            ),
            Some("1")
        )
    );
    let streamed = streaming.join().unwrap();
    assert!(streamed.body.contains("event: message_stop"));
    assert_eq!(post(&server, &one_at_a_time, &hello(false)).status, 200);
}

#[test]
fn per_account_limits_are_429_with_retry_after() {
    let fake = FakeQ::start();
    let (t, key) = setup(&fake, 1, none);
    assert_eq!(
        t.ok(&["accounts", "set", "acc1", "--rpm", "1"]),
        "Account 1 (acc1): 1/min\n"
    );
    let server = Server::start(&t, &fake);
    assert_eq!(post(&server, &key, &hello(false)).status, 200);
    let r = post(&server, &key, &hello(false));
    assert_eq!(
        (r.status, r.json()),
        (
            429,
            error_json(
                "rate_limit_error",
                "Every usable account is at its rate limit (1 account: 1 at the requests-per-minute limit)"
            )
        )
    );
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((55..=60).contains(&retry), "{retry}");
    assert_eq!(fake.chat_calls(), 1);

    // Changed with the CLI while the server runs: no rate limit, one request at a time.
    assert_eq!(
        t.ok(&[
            "accounts",
            "set",
            "acc1",
            "--rpm",
            "0",
            "--concurrency",
            "1",
            "--weight",
            "2"
        ]),
        "Account 1 (acc1): 1 at once, weight 2\n"
    );
    eventually("the rate limit is lifted", TWO_SECONDS, || {
        (post(&server, &key, &hello(false)).status == 200).then_some(())
    });
    let calls_before = fake.chat_calls();
    fake.push_reply(
        Script::new()
            .text("a")
            .delay(Duration::from_millis(1500))
            .text("b")
            .end()
            .reply(),
    );
    let streaming = {
        let (url, key) = (server.url.clone(), key.clone());
        std::thread::spawn(move || {
            http(
                "POST",
                &format!("{url}/v1/messages"),
                &[("x-api-key", &key)],
                Some(&hello(true).to_string()),
            )
        })
    };
    eventually("the stream is in flight", TWO_SECONDS, || {
        (fake.chat_calls() == calls_before + 1).then_some(())
    });
    let r = post(&server, &key, &hello(false));
    assert_eq!(
        (r.status, r.json(), r.header("retry-after")),
        (
            429,
            error_json(
                "rate_limit_error",
                "Every usable account is at its rate limit (1 account: 1 at the concurrency limit)"
            ),
            Some("1")
        )
    );
    assert!(streaming
        .join()
        .unwrap()
        .body
        .contains("event: message_stop"));
    assert_eq!(post(&server, &key, &hello(false)).status, 200);
    let acc1 = &accounts_list(&t)[0];
    assert_eq!(
        (
            &acc1["rpm_limit"],
            &acc1["concurrency_limit"],
            &acc1["weight"]
        ),
        (&Value::Null, &json!(1), &json!(2))
    );
}

#[test]
fn failures_in_a_row_cool_an_account_down_and_it_is_tried_again_afterwards() {
    let fake = FakeQ::start();
    let (t, key) = setup(&fake, 2, none);
    let server = Server::start_with(
        &t,
        &fake,
        &[
            ("AMQ2API_FAILURE_THRESHOLD", "2"),
            ("AMQ2API_FAILURE_COOLDOWN", "1s"),
        ],
    );
    fake.set_account_error(0, Some(QError::InternalError));
    // acc1 fails (a 5xx), acc2 answers: the client never notices.
    for _ in 0..3 {
        assert_eq!(post(&server, &key, &hello(false)).status, 200);
    }
    assert_eq!(
        calls(&fake),
        [
            (Some(0), 500),
            (Some(1), 200),
            (Some(1), 200),
            (Some(0), 500),
            (Some(1), 200)
        ]
    );
    let acc1 = account_when(&t, "acc1", |a| a["health"] == "cooling");
    assert_eq!(
        acc1["health_reason"],
        "2 failures in a row (the last: server error)"
    );
    // Back after the cooldown, and healthy again once it answers.
    fake.set_account_error(0, None);
    account_when(&t, "acc1", |a| a["health"] == "active");
    fake.clear_requests();
    for _ in 0..2 {
        assert_eq!(post(&server, &key, &hello(false)).status, 200);
    }
    assert_eq!(served(&fake, 2), [1, 1]);
}

#[test]
fn tokens_of_accounts_in_use_are_refreshed_ahead_of_expiry_once() {
    use amq2api::http::AppState;
    use amq2api::pick::{now_ms, refresh_ahead};

    let fake = FakeQ::start();
    // Tokens that expire in 4 minutes (inside the 5-minute margin) and one in 2 hours.
    let soon = (chrono::Utc::now() + chrono::Duration::minutes(4)).to_rfc3339();
    let (t, _) = setup(&fake, 3, |i| {
        let expires = if i == 2 {
            (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339()
        } else {
            soon.clone()
        };
        json!({"accessToken": format!("aoaFAKE-{i}"), "expiresAt": expires})
    });
    let upstream = amq2api::q::config::UpstreamConfig {
        api_endpoint: Some(fake.api_url()),
        token_endpoint: Some(fake.token_url()),
        idle_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let pool = t.pool();
    let state = AppState::new(pool.clone(), upstream, Default::default());
    amq2api::watch::load(&mut pool.get().unwrap(), &state.accounts, &state.keys).unwrap();
    // acc1 and acc3 serve a request; acc2 stays idle.
    drop(state.accounts.acquire(&[2], now_ms()).unwrap());
    drop(state.accounts.acquire(&[2], now_ms()).unwrap());
    actix_web::rt::System::new().block_on(async {
        let client = amq2api::q::client::http_client(&state.upstream);
        refresh_ahead::tick(&state, &client).await;
        // Only acc1: in use and near expiry. Idle acc2 and long-lived acc3 are left alone.
        assert_eq!(fake.token_calls(), 1);
        assert_eq!(fake.token_requests()[0].body["clientId"], "FAKECLIENT1");
        // Its new token is what the pool holds now, and it is not refreshed again.
        let lease = state.accounts.acquire(&[2, 3], now_ms()).unwrap();
        let expires = lease.account().access_token_expires_at.unwrap();
        assert!(expires > amq2api::db::now() + 3000);
        drop(lease);
        refresh_ahead::tick(&state, &client).await;
        assert_eq!(fake.token_calls(), 1);
    });
    let acc1 = amq2api::db::accounts::find(&mut pool.get().unwrap(), 1)
        .unwrap()
        .unwrap();
    assert!(acc1.access_token_expires_at.unwrap() > amq2api::db::now() + 3000);
}

#[test]
fn a_failed_early_refresh_keeps_the_valid_token_and_waits_before_trying_again() {
    let fake = FakeQ::start();
    // A token Amazon Q accepts, 4 minutes from expiry: inside the 5-minute refresh margin.
    fake.add_access_token("aoaFAKE-still-good");
    let soon = (chrono::Utc::now() + chrono::Duration::minutes(4)).to_rfc3339();
    let (t, key) = setup(
        &fake,
        1,
        |_| json!({"accessToken": "aoaFAKE-still-good", "expiresAt": soon}),
    );
    let server = Server::start(&t, &fake);
    fake.push_token_failure(500, r#"{"error":"server_error"}"#);
    for _ in 0..3 {
        assert_eq!(post(&server, &key, &hello(false)).status, 200);
    }
    // One refresh attempt; the requests went out with the old token meanwhile.
    assert_eq!(fake.token_calls(), 1);
    assert_eq!(fake.chat_calls(), 3);
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.bearer() == Some("aoaFAKE-still-good")));
    assert_eq!(account_when(&t, "acc1", |_| true)["health"], "active");
}
