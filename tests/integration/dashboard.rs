//! The monitoring page against the real server: signing in with admin, non-admin and wrong
//! keys, the cookie's attributes, the security headers, the seeded figures on the dashboard, a
//! revoked key ending its session, no secret in any `/admin` response; and the whole flow in
//! real headless Chromium (tests/browser/dashboard.mjs with playwright-core, installed by
//! `.ci/run` into target/browser; AMQ2API_NODE_BROWSER_DIR and AMQ2API_CHROMIUM point at them).

use std::path::PathBuf;

use amq2api::db::{self, accounts, usage};

use crate::support::fake_q::FakeQ;
use crate::support::{account_and_key, Response, Server, TestDir, FIXTURE_SECRETS};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
/// The access token stored for account `one`: it must never be shown.
const ACCESS_TOKEN: &str = "eyJFAKE-access-token-dashboard";

/// One request without following redirects.
fn call(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Response {
    crate::support::http_no_redirect(method, url, headers, body)
}

/// A form-encoded key, as a browser sends it.
fn form(key: &str) -> String {
    let mut out = String::from("key=");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct Site {
    _fake: FakeQ,
    t: TestDir,
    server: Server,
    admin: String,
    user: String,
    /// Every `/admin` response seen, to search for secrets at the end.
    seen: std::cell::RefCell<Vec<Response>>,
}

impl Site {
    fn get(&self, path: &str, cookie: Option<&str>) -> Response {
        let cookie = cookie.map(|c| format!("amq2api_admin={c}"));
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("cookie", c.as_str())).collect();
        self.keep(call(
            "GET",
            &format!("{}{path}", self.server.url),
            &headers,
            None,
        ))
    }

    fn login(&self, key: &str, extra: &[(&str, &str)]) -> Response {
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        headers.extend_from_slice(extra);
        self.keep(call(
            "POST",
            &format!("{}/admin/login", self.server.url),
            &headers,
            Some(&form(key)),
        ))
    }

    fn keep(&self, r: Response) -> Response {
        let copy = Response {
            status: r.status,
            headers: r.headers.clone(),
            body: r.body.clone(),
        };
        self.seen.borrow_mut().push(copy);
        r
    }

    /// Signs in with the admin key; the session id.
    fn session(&self) -> String {
        let r = self.login(&self.admin, &[]);
        assert_eq!(r.status, 303, "{}", r.body);
        session_of(&r).expect("a session cookie")
    }
}

fn set_cookies(r: &Response) -> Vec<&str> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn session_of(r: &Response) -> Option<String> {
    set_cookies(r)
        .iter()
        .find_map(|c| c.strip_prefix("amq2api_admin="))
        .map(|rest| rest.split(';').next().unwrap().to_owned())
        .filter(|v| !v.is_empty())
}

fn assert_security_headers(r: &Response) {
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-")
            && csp.ends_with(
                "; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
            ),
        "CSP: {csp}"
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

/// Accounts `one` (healthy, with an access token) and `two` (cooling, with a reason holding
/// markup); keys `tester` (from `account_and_key`) and `boss` (admin); usage rows at known
/// times (the figures tests/browser/dashboard.mjs checks).
fn site() -> Site {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let user = account_and_key(&t, &fake);
    let file = t.path().join("two.json");
    std::fs::write(
        &file,
        r#"{"clientId":"FAKECLIENT2","clientSecret":"eyJFAKE-secret-2","refreshToken":"aorFAKE-refresh-2","label":"two"}"#,
    )
    .unwrap();
    t.ok(&["accounts", "import", file.to_str().unwrap()]);
    let admin = t
        .ok(&["keys", "create", "--name", "boss", "--admin"])
        .trim()
        .to_owned();
    let now = db::now();
    {
        let pool = t.pool();
        let c = &mut pool.get().unwrap();
        let one = accounts::find_by_name(c, "one").unwrap().unwrap();
        accounts::store_tokens(c, one.id, ACCESS_TOKEN, now + HOUR, None, None, now).unwrap();
        accounts::touch_last_used(c, one.id, now - 2 * HOUR).unwrap();
        let two = accounts::find_by_name(c, "two").unwrap().unwrap();
        accounts::set_health(
            c,
            two.id,
            accounts::Health::Cooling,
            Some(now + 600),
            Some("ThrottlingException <b>slow down</b>"),
            now,
        )
        .unwrap();
        let tester = amq2api::db::api_keys::find_by_ref(c, "tester").unwrap()[0].id;
        let row = |at: i64, tokens: (i64, i64), model: &str, status: i32, class: Option<&str>| {
            usage::NewUsageRecord {
                created_at: at,
                api_key_id: Some(tester),
                account_id: Some(one.id),
                account_name: Some("one".into()),
                endpoint: "/v1/messages".into(),
                model_requested: model.into(),
                model_upstream: None,
                stream: true,
                input_tokens: tokens.0,
                output_tokens: tokens.1,
                status,
                error_class: class.map(str::to_owned),
                ttfb_ms: None,
                latency_ms: 1234,
            }
        };
        for r in [
            row(
                now - 2 * HOUR,
                (12_345, 678),
                "claude-sonnet-4-5",
                200,
                None,
            ),
            row(
                now - 3 * DAY,
                (50_000, 7_000),
                "claude-sonnet-4-5",
                200,
                None,
            ),
            row(
                now - HOUR,
                (100, 0),
                "claude-<i>x</i>",
                429,
                Some("throttled"),
            ),
        ] {
            usage::insert(c, &r).unwrap();
        }
    }
    let server = Server::start(&t, &fake);
    Site {
        _fake: fake,
        t,
        server,
        admin,
        user,
        seen: Default::default(),
    }
}

/// The text of a table row's cells, markup removed.
fn row_cells(html: &str, marker: &str) -> Vec<String> {
    let start = html.find(marker).unwrap_or_else(|| panic!("no {marker}"));
    let row = &html[start..start + html[start..].find("</tr>").unwrap()];
    row.split("<td")
        .skip(1)
        .map(|cell| {
            let cell = &cell[cell.find('>').unwrap() + 1..];
            let mut text = String::new();
            let mut in_tag = false;
            for c in cell.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text.trim().to_owned()
        })
        .collect()
}

#[test]
fn signing_in_the_cookie_and_the_dashboard() {
    let s = site();
    // The form.
    let r = s.get("/admin/login", None);
    assert_eq!(r.status, 200);
    assert_security_headers(&r);
    assert!(r
        .body
        .contains(r#"<form method="post" action="/admin/login">"#));
    assert!(r.body.contains(r#"name="key" type="password""#));

    // Without a session the dashboard sends the browser to the form.
    for cookie in [None, Some("forged-session-id")] {
        let r = s.get("/admin/dashboard", cookie);
        assert_eq!(r.status, 303);
        assert_eq!(r.header("location"), Some("/admin/login"));
        assert_security_headers(&r);
    }
    assert_eq!(
        s.get("/admin", None).header("location"),
        Some("/admin/dashboard")
    );
    let missing = s.get("/admin/nothing-here", None);
    assert_eq!(missing.status, 404);
    assert_security_headers(&missing);

    // A wrong key, a non-admin key, an empty form: the form again, no cookie, no echo.
    let wrong = s.login("sk-amq-wrongwrongwrong", &[]);
    assert_eq!(wrong.status, 401);
    assert!(wrong
        .body
        .contains("not valid: it is wrong, revoked or expired"));
    assert!(!wrong.body.contains("wrongwrongwrong"));
    let user = s.login(&s.user, &[]);
    assert_eq!(user.status, 403);
    assert!(user.body.contains("not an admin key"));
    assert!(user.body.contains(r#"name="key""#), "the form again");
    let empty = s.login("", &[]);
    assert_eq!(empty.status, 401);
    for r in [&wrong, &user, &empty] {
        assert!(set_cookies(r).is_empty(), "{:?}", r.headers);
        assert_security_headers(r);
    }

    // The admin key: a session cookie and a 303 to the dashboard.
    let ok = s.login(&s.admin, &[]);
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.header("location"), Some("/admin/dashboard"));
    assert_security_headers(&ok);
    let cookies = set_cookies(&ok);
    assert_eq!(cookies.len(), 1);
    let id = session_of(&ok).unwrap();
    assert_eq!(id.len(), 43);
    assert_eq!(
        cookies[0],
        format!("amq2api_admin={id}; Path=/admin; Max-Age=43200; HttpOnly; SameSite=Strict")
    );
    // Behind a TLS proxy the cookie is Secure too.
    let tls = s.login(&s.admin, &[("x-forwarded-proto", "https")]);
    assert!(set_cookies(&tls)[0].ends_with("; HttpOnly; SameSite=Strict; Secure"));
    // Signed in, the form sends the browser on.
    assert_eq!(
        s.get("/admin/login", Some(&id)).header("location"),
        Some("/admin/dashboard")
    );

    // The dashboard.
    let d = s.get("/admin/dashboard", Some(&id));
    assert_eq!(d.status, 200);
    assert_security_headers(&d);
    assert_eq!(d.header("content-type"), Some("text/html; charset=utf-8"));
    let html = &d.body;
    assert!(html.contains(r#"<meta http-equiv="refresh" content="30">"#));
    assert!(!html.contains("<script"));
    assert!(html.contains("signed in as boss"));
    let one = row_cells(html, r#"<tr data-account="one">"#);
    assert_eq!(one[..3], ["one", "yes", "active"]);
    assert_eq!(one[4], "-");
    assert_eq!(one[5], "2 h ago");
    assert!(one[6].starts_with("in "), "token expiry: {}", one[6]);
    let two = row_cells(html, r#"<tr data-account="two">"#);
    assert_eq!(two[2], "cooling");
    assert_eq!(two[3], "ThrottlingException &lt;b&gt;slow down&lt;/b&gt;");
    assert_eq!(two[6], "no token");
    let tester = row_cells(html, r#"<tr data-key="tester">"#);
    assert_eq!(tester[2..4], ["no", "active"]);
    assert_eq!(tester[6..], ["2", "1", "13,123", "3", "70,123"]);
    let boss = row_cells(html, r#"<tr data-key="boss">"#);
    assert_eq!(boss[1], format!("{}…", &s.admin[..12]));
    assert_eq!(boss[2], "yes");
    // Totals over 24 hours, the error class, the failure (its model name escaped).
    assert!(html.contains(r#"<div class="value">2</div><div class="sub">1 error (50.0 %)</div>"#));
    assert!(html.contains(r#"<div class="value">12,445</div>"#));
    assert_eq!(
        row_cells(html, r#"<tr data-class="throttled">"#),
        ["throttled", "1", "100.0 %"]
    );
    let failure = row_cells(html, "<tbody><tr><td>20");
    assert_eq!(
        failure[1..],
        [
            "tester",
            "one",
            "claude-&lt;i&gt;x&lt;/i&gt;",
            "429",
            "throttled",
            "1,234 ms"
        ]
    );
    // Both charts, with the seeded figures on their bars.
    assert!(html.contains(r#"data-input="12345" data-output="678""#));
    assert!(html.contains(r#"data-input="50000" data-output="7000""#));
    assert!(html.contains("Total: <b>12,445</b> input, <b>678</b> output tokens"));
    assert!(html.contains("Total: <b>62,445</b> input, <b>7,678</b> output tokens"));

    // Signing out ends the session.
    let out = s.keep(call(
        "POST",
        &format!("{}/admin/logout", s.server.url),
        &[("cookie", &format!("amq2api_admin={id}"))],
        None,
    ));
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/admin/login"));
    assert!(set_cookies(&out)[0].starts_with("amq2api_admin=; Path=/admin; Max-Age=0;"));
    assert_eq!(s.get("/admin/dashboard", Some(&id)).status, 303);
    // The wrong method.
    assert_eq!(s.get("/admin/logout", None).status, 405);

    no_secrets(&s);
}

#[test]
fn a_revoked_key_ends_its_sessions() {
    let s = site();
    let id = s.session();
    assert_eq!(s.get("/admin/dashboard", Some(&id)).status, 200);
    s.t.ok(&["keys", "revoke", "boss", "--yes"]);
    let r = s.get("/admin/dashboard", Some(&id));
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/admin/login"));
    assert!(set_cookies(&r)[0].contains("Max-Age=0"));
    // A new admin key does not bring the old session back.
    s.t.ok(&["keys", "create", "--name", "boss", "--admin"]);
    assert_eq!(s.get("/admin/dashboard", Some(&id)).status, 303);
    // And the revoked key cannot sign in again.
    assert_eq!(s.login(&s.admin, &[]).status, 401);
    no_secrets(&s);
}

/// No credential, key or hash in any `/admin` response seen, nor in the server's log.
fn no_secrets(s: &Site) {
    let pool = s.t.pool();
    let hashes: Vec<String> = amq2api::db::api_keys::list(&mut pool.get().unwrap())
        .unwrap()
        .into_iter()
        .map(|k| k.key_hash)
        .collect();
    let mut secrets: Vec<&str> = FIXTURE_SECRETS.to_vec();
    secrets.extend([
        ACCESS_TOKEN,
        &s.admin[..13],
        &s.user[..13],
        "aorFAKE-refresh-2",
    ]);
    secrets.extend(hashes.iter().map(String::as_str));
    let seen = s.seen.borrow();
    assert!(!seen.is_empty());
    for r in seen.iter() {
        let all = format!("{:?}\n{}", r.headers, r.body);
        for secret in &secrets {
            assert!(!all.contains(secret), "{secret:?} in an /admin response");
        }
    }
    let log = s.server.log();
    for secret in &secrets {
        assert!(!log.contains(secret), "{secret:?} in the server log");
    }
}

fn browser_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AMQ2API_NODE_BROWSER_DIR") {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    local
        .join("node_modules/playwright-core")
        .exists()
        .then_some(local)
}

fn chromium() -> Option<PathBuf> {
    let p = std::env::var_os("AMQ2API_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    p.exists().then_some(p)
}

#[test]
fn the_dashboard_in_headless_chromium() {
    let (Some(dir), Some(chromium)) = (browser_dir(), chromium()) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide Chromium and playwright-core: AMQ2API_CHROMIUM and AMQ2API_NODE_BROWSER_DIR (see .ci/run)"
        );
        eprintln!("skipping: no Chromium or playwright-core; run: apt-get install chromium && mkdir -p target/browser && cp tests/browser/package*.json target/browser/ && npm ci --prefix target/browser");
        return;
    };
    if !crate::support::tool_available("node", "nodejs") {
        return;
    }
    let s = site();
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&shots).unwrap();
    const SHOTS: [&str; 3] = [
        "dashboard.png",
        "dashboard-phone.png",
        "dashboard-login.png",
    ];
    for name in SHOTS {
        let _ = std::fs::remove_file(shots.join(name));
    }
    let out = std::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/dashboard.mjs"
        ))
        .env("AMQ2API_BASE_URL", &s.server.url)
        .env("AMQ2API_ADMIN_KEY", &s.admin)
        .env("AMQ2API_USER_KEY", &s.user)
        .env("AMQ2API_NODE_BROWSER_DIR", &dir)
        .env("AMQ2API_CHROMIUM", &chromium)
        .env("AMQ2API_SCREENSHOT_DIR", &shots)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser script failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.server.log()
    );
    assert!(stdout.ends_with("10 passed, 0 failed\n"), "{stdout}");
    for name in SHOTS {
        let png = std::fs::read(shots.join(name)).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}");
    }
}
