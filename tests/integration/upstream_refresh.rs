//! Token refresh against the fake Amazon Q: what is stored, how failures change the account,
//! single-flight, and `amq2api accounts refresh` end to end.

use std::sync::Arc;
use std::time::Duration;

use amq2api::db::{self, accounts};
use amq2api::q::config::UpstreamConfig;
use amq2api::q::error::ErrorClass;
use amq2api::q::token::Refresher;

use crate::support::fake_q::FakeQ;
use crate::support::{cells, stderr, stdout, TestDir};

fn cfg(fake: &FakeQ) -> Arc<UpstreamConfig> {
    Arc::new(UpstreamConfig {
        api_endpoint: Some(fake.api_url()),
        token_endpoint: Some(fake.token_url()),
        social_token_endpoint: Some(fake.social_url()),
        idle_timeout: Duration::from_secs(5),
        ..UpstreamConfig::default()
    })
}

fn add_idc(t: &TestDir, name: &str, client_id: &str, secret: &str, refresh: &str) -> i32 {
    let pool = t.pool();
    let input = accounts::AccountInput {
        kind: accounts::AuthKind::Idc,
        client_id: Some(client_id.into()),
        client_secret: Some(secret.into()),
        refresh_token: refresh.into(),
        access_token: None,
        access_token_expires_at: None,
        region: "us-east-1".into(),
        profile_arn: None,
        start_url: None,
        rpm_limit: None,
    };
    match accounts::upsert(&mut pool.get().unwrap(), &input, name, true, db::now()).unwrap() {
        accounts::Upserted::Added(id) => id,
        other => panic!("{other:?}"),
    }
}

fn account(t: &TestDir, id: i32) -> accounts::Account {
    accounts::find(&mut t.pool().get().unwrap(), id)
        .unwrap()
        .unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    actix_web::rt::System::new().block_on(f)
}

/// `Refresher::refresh_now` for account `id` with the given upstream settings.
fn refresh_now(
    t: &TestDir,
    cfg: Arc<UpstreamConfig>,
    id: i32,
) -> Result<amq2api::q::token::AccessToken, amq2api::q::token::TokenError> {
    let pool = t.pool();
    block_on(async {
        let client = amq2api::q::client::http_client(&cfg);
        Refresher::new(pool, cfg.clone())
            .refresh_now(&client, id)
            .await
    })
}

#[test]
fn success_stores_access_token_expiry_and_rotated_refresh_token() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let idx = fake.add_idc("FAKECLIENT1", "eyJFAKE-secret-1", "aorFAKE-refresh-1");
    let id = add_idc(
        &t,
        "one",
        "FAKECLIENT1",
        "eyJFAKE-secret-1",
        "aorFAKE-refresh-1",
    );
    let before = db::now();
    let token = refresh_now(&t, cfg(&fake), id).unwrap();
    let a = account(&t, id);
    assert_eq!(a.access_token.as_deref(), Some(token.token.as_str()));
    let expires = a.access_token_expires_at.unwrap();
    assert!(
        expires >= before + 3600 && expires <= db::now() + 3600,
        "{expires}"
    );
    let rotated = fake.current_refresh_token(idx);
    assert_ne!(rotated, "aorFAKE-refresh-1");
    assert_eq!(a.refresh_token, rotated);
    assert_eq!(a.refresh_token_hash, accounts::token_hash(&rotated));
    // The request was the camelCase OIDC body.
    let req = &fake.token_requests()[0];
    assert_eq!(req.path, "/token");
    assert_eq!(
        req.body,
        serde_json::json!({"clientId":"FAKECLIENT1","clientSecret":"eyJFAKE-secret-1","grantType":"refresh_token","refreshToken":"aorFAKE-refresh-1"})
    );
    assert_eq!(req.header("content-type"), Some("application/json"));
    // A second refresh spends the rotated token, which the fake accepts (the old one is dead).
    refresh_now(&t, cfg(&fake), id).unwrap();
    assert_eq!(
        account(&t, id).refresh_token,
        fake.current_refresh_token(idx)
    );
    assert_eq!(fake.token_calls(), 2);
}

#[test]
fn invalid_grant_disables_the_account_with_its_reason() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    fake.add_idc("FAKECLIENT1", "eyJFAKE-secret-1", "aorFAKE-known");
    let id = add_idc(
        &t,
        "dead",
        "FAKECLIENT1",
        "eyJFAKE-secret-1",
        "aorFAKE-unknown",
    );
    let err = refresh_now(&t, cfg(&fake), id).unwrap_err();
    assert_eq!(
        err.upstream().unwrap().class,
        ErrorClass::RefreshTokenInvalid
    );
    let a = account(&t, id);
    assert_eq!(a.health, "disabled");
    assert_eq!(a.health_reason.as_deref(), Some("refresh token invalid"));
    assert_eq!(a.access_token, None);
    // Re-enabling clears it (the operator fixed the token).
    t.ok(&["accounts", "enable", "dead"]);
    assert_eq!(account(&t, id).health, "active");
}

#[test]
fn invalid_client_disables_with_client_registration_expired() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    fake.add_idc("FAKECLIENT1", "eyJFAKE-secret-1", "aorFAKE-r");
    fake.expire_client("FAKECLIENT1");
    let id = add_idc(&t, "old", "FAKECLIENT1", "eyJFAKE-secret-1", "aorFAKE-r");
    let err = refresh_now(&t, cfg(&fake), id).unwrap_err();
    assert_eq!(
        err.upstream().unwrap().class,
        ErrorClass::ClientRegistrationExpired
    );
    assert_eq!(
        account(&t, id).health_reason.as_deref(),
        Some("client registration expired")
    );
}

#[test]
fn transient_failures_leave_the_account_untouched() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    fake.add_idc("FAKECLIENT1", "eyJFAKE-secret-1", "aorFAKE-r");
    let id = add_idc(&t, "flaky", "FAKECLIENT1", "eyJFAKE-secret-1", "aorFAKE-r");
    let before = account(&t, id);
    for (status, body, class) in [
        (
            500,
            r#"{"error":"server_error","error_description":"oops"}"#,
            ErrorClass::ServerError,
        ),
        (
            429,
            r#"{"error":"slow_down","error_description":"slow down"}"#,
            ErrorClass::Throttled,
        ),
    ] {
        fake.push_token_failure(status, body);
        let err = refresh_now(&t, cfg(&fake), id).unwrap_err();
        assert_eq!(err.upstream().unwrap().class, class);
        let after = account(&t, id);
        assert_eq!(after.health, "active");
        assert_eq!(after.refresh_token, before.refresh_token);
        assert_eq!(after.updated_at, before.updated_at);
    }
    // Nothing listens there: a network error, also transient.
    let mut c = (*cfg(&fake)).clone();
    c.token_endpoint = Some("http://127.0.0.1:9/token".into());
    let err = refresh_now(&t, Arc::new(c), id).unwrap_err();
    assert_eq!(err.upstream().unwrap().class, ErrorClass::Network);
    assert_eq!(account(&t, id).health, "active");
}

#[test]
fn twenty_concurrent_callers_cause_exactly_one_refresh() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    fake.add_idc("FAKECLIENT1", "eyJFAKE-secret-1", "aorFAKE-r");
    fake.set_token_delay(Duration::from_millis(300));
    let id = add_idc(&t, "busy", "FAKECLIENT1", "eyJFAKE-secret-1", "aorFAKE-r");
    let refresher = Arc::new(Refresher::new(t.pool(), cfg(&fake)));
    // Four threads (like four server workers), five concurrent callers each.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (refresher, cfg) = (refresher.clone(), cfg(&fake));
            std::thread::spawn(move || {
                block_on(async move {
                    let client = amq2api::q::client::http_client(&cfg);
                    let calls = (0..5).map(|_| refresher.access_token(&client, id));
                    futures_util::future::join_all(calls).await
                })
            })
        })
        .collect();
    let tokens: Vec<String> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .map(|r| r.unwrap().token)
        .collect();
    assert_eq!(tokens.len(), 20);
    assert!(tokens.iter().all(|t| t == &tokens[0]));
    assert_eq!(fake.token_calls(), 1);
}

#[test]
fn social_refresh_stores_the_profile_arn() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let arn = "arn:aws:codewhisperer:us-east-1:123456789012:profile/FAKESOCIAL";
    fake.add_social("aorFAKE-social", arn);
    let pool = t.pool();
    let input = accounts::AccountInput {
        kind: accounts::AuthKind::Social,
        client_id: None,
        client_secret: None,
        refresh_token: "aorFAKE-social".into(),
        access_token: None,
        access_token_expires_at: None,
        region: "us-east-1".into(),
        profile_arn: None,
        start_url: None,
        rpm_limit: None,
    };
    accounts::upsert(&mut pool.get().unwrap(), &input, "s", true, 1).unwrap();
    let cfg = cfg(&fake);
    block_on(async {
        let client = amq2api::q::client::http_client(&cfg);
        Refresher::new(pool, cfg.clone())
            .refresh_now(&client, 1)
            .await
    })
    .unwrap();
    let a = account(&t, 1);
    assert_eq!(a.profile_arn.as_deref(), Some(arn));
    assert!(a.access_token.is_some());
    assert_eq!(fake.token_requests()[0].path, "/refreshToken");
    assert_eq!(
        fake.token_requests()[0].body,
        serde_json::json!({"refreshToken": "aorFAKE-social"})
    );
}

#[test]
fn accounts_refresh_all_prints_the_table_and_sets_the_exit_status() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    fake.add_idc("FAKECLIENTgood", "eyJFAKE-good", "aorFAKE-good");
    add_idc(&t, "good", "FAKECLIENTgood", "eyJFAKE-good", "aorFAKE-good");
    add_idc(&t, "bad", "FAKECLIENTgood", "eyJFAKE-good", "aorFAKE-stale");
    let run = |args: &[&str]| {
        t.cmd()
            .env("AMAZONQ_TOKEN_ENDPOINT", fake.token_url())
            .env("RUST_LOG", "trace")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["accounts", "refresh", "--all"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let rows: Vec<Vec<String>> = text
        .lines()
        .filter(|l| l.contains('┆'))
        .map(cells)
        .collect();
    assert_eq!(rows[0], ["ID", "Account", "Result", "Expires / error"]);
    assert_eq!(rows[1][..3], ["1", "good", "refreshed"]);
    assert!(
        rows[1][3] == "in 59 min" || rows[1][3] == "in 60 min",
        "{:?}",
        rows[1]
    );
    assert_eq!(
        rows[2],
        [
            "2",
            "bad",
            "failed",
            "refresh token invalid (account disabled)"
        ]
    );
    let list = t.json(&["accounts", "list", "--json"]);
    assert_eq!(list[1]["health"], "disabled");
    assert_eq!(list[1]["health_reason"], "refresh token invalid");
    assert_eq!(list[0]["access_token_valid"], true);
    // No token in the output or the (trace-level) logs.
    let all = format!("{}{}", stdout(&out), stderr(&out));
    let a = account(&t, 1);
    for secret in [
        "aorFAKE",
        "eyJFAKE",
        a.access_token.as_deref().unwrap(),
        a.refresh_token.as_str(),
    ] {
        assert!(!all.contains(secret), "{secret} leaked:\n{all}");
    }
    // Only the good one: exit 0. Bad one alone, by name: exit 1. --all skips disabled accounts.
    let out = run(&["accounts", "refresh", "good"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    t.ok(&["accounts", "disable", "bad"]);
    let out = run(&["accounts", "refresh", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stdout(&out).contains("bad"));
    let out = run(&["accounts", "refresh"]);
    assert_eq!(out.status.code(), Some(2));
}
