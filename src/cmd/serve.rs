//! `amq2api serve`: opens the database, adds the seed account from the environment, loads the
//! pool and the keys into memory and keeps them in step with the database (`crate::watch`),
//! refreshes tokens ahead of expiry in the background, and runs the HTTP server (one awc client
//! per worker) until Ctrl-C or SIGTERM.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Service;
use actix_web::{middleware, web, App, HttpServer};
use anyhow::Context;

use super::open_db;
use crate::cli::{PoolArgs, SeedAccountArgs, ServeArgs};
use crate::db::{self, accounts};
use crate::http::auth::{KeyDefaults, KeyTable};
use crate::http::{self, AppState};
use crate::models::ModelMap;
use crate::pick::health::HealthConfig;
use crate::pick::{PoolConfig, Roster};
use crate::q::client::http_client;
use crate::q::config::UpstreamConfig;

pub fn run(database: &Path, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let pool = open_db(database)?;
    let models = ModelMap::with_overrides(&args.model_map, &args.default_model)
        .map_err(anyhow::Error::msg)
        .context("invalid model map")?;
    seed_account(&pool, &args.seed)?;
    crate::tokens::warm_up();
    let upstream = UpstreamConfig::from_args(&args.upstream);
    let mut state = AppState::new(pool, upstream, models);
    state.ping_every = Duration::from_secs(args.ping_interval);
    state.metrics_public = args.metrics_public;
    state.max_body = usize::try_from(args.max_body_bytes).unwrap_or(usize::MAX);
    let grace = Duration::from_secs(args.shutdown_timeout);
    state.accounts = Arc::new(Roster::new(pool_config(&args.pool)));
    state.keys = Arc::new(KeyTable::new(KeyDefaults {
        rpm: args.pool.key_rpm,
        concurrency: args.pool.key_concurrency,
    }));
    let watcher =
        crate::watch::Watcher::start(database, state.accounts.clone(), state.keys.clone())
            .context("cannot load the account pool")?;
    warn_about_setup(&state);
    log::info!(
        "strategy {}, at most {} accounts per request",
        args.pool.strategy.as_str(),
        args.pool.max_accounts_per_request
    );
    let state = web::Data::new(state);
    let usage = state.usage.clone();
    let shutdown = state.shutdown.clone();
    let request_timeout = Duration::from_secs(args.request_timeout);
    let served = actix_web::rt::System::new().block_on(async move {
        let cfg = state.upstream.clone();
        actix_web::rt::spawn(crate::pick::refresh_ahead::run(
            state.clone().into_inner(),
            http_client(&cfg),
        ));
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::Data::new(http_client(&cfg)))
                .wrap(
                    middleware::Logger::new("%r %s %Dms")
                        .exclude("/v1/messages")
                        .exclude("/v1/v1/messages")
                        .exclude("/v1/chat/completions")
                        .exclude("/v1/v1/chat/completions")
                        .exclude("/health"),
                )
                .wrap_fn(move |req, srv| {
                    let in_progress = http::conn::track_request(&req);
                    let answer = srv.call(http::conn::body_deadline(req, request_timeout));
                    async move {
                        let res = answer.await?;
                        Ok(http::conn::until_answered(res, in_progress))
                    }
                })
                .configure(http::configure)
        })
        // SSE events are small writes that must leave at once, not wait for Nagle's algorithm.
        .tcp_nodelay(true)
        // A client that closes its connection (or only its sending side: HTTP clients do not
        // half-close) has left: actix then drops the request at once, so a stream waiting on a
        // silent Amazon Q ends now and stops reading upstream, rather than at its next write.
        .h1_allow_half_closed(false)
        // Slow clients (slow-loris): the headers must arrive within the request timeout (actix
        // answers 408 and closes), and the body again within it (`body_deadline` above).
        .client_request_timeout(request_timeout)
        // ... and a reused connection gets as long between an answer and the next request.
        .on_connect(move |conn, ext| http::conn::on_connect(conn, ext, request_timeout))
        // Signals are ours (see `on_signals`); actix only enforces a last-resort deadline after
        // the streams still open at the grace deadline got their error event.
        .disable_signals()
        .shutdown_timeout(args.shutdown_timeout + 5);
        if let Some(workers) = args.workers {
            server = server.workers(workers.max(1));
        }
        let server = server
            .bind((args.host.as_str(), args.port))
            .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
        for addr in server.addrs() {
            log::info!("listening on http://{addr}");
        }
        // systemd's Type=notify: ready once the listener is bound (a no-op without NOTIFY_SOCKET).
        #[cfg(unix)]
        if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
            log::warn!("cannot tell systemd that the server is ready: {e}");
        }
        let server = server.run();
        actix_web::rt::spawn(on_signals(server.handle(), shutdown, grace));
        server.await.context("server failed")
    });
    watcher.stop();
    if !usage.flush(Duration::from_secs(10)) {
        log::error!("some usage rows could not be written before exit");
    }
    served?;
    log::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or SIGINT: stop accepting connections and let in-flight requests finish for `grace`;
/// then every stream still open ends with an error event in its protocol (`shutdown` fires).
/// A second signal exits at once.
async fn on_signals(
    server: actix_web::dev::ServerHandle,
    shutdown: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    grace: Duration,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::error!("cannot install the signal handlers: stop the server with SIGKILL");
        return;
    };
    let mut next_signal = async move || {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    };
    let name = next_signal().await;
    log::info!(
        "{name}: shutting down; no new connections, in-flight requests have {}s to finish",
        grace.as_secs()
    );
    #[cfg(unix)]
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    actix_web::rt::spawn(server.stop(true));
    tokio::select! {
        _ = tokio::time::sleep(grace) => {
            log::warn!("shutdown grace period over: ending the streams still open");
            shutdown.send_replace(true);
        }
        name = next_signal() => {
            log::warn!("second signal ({name}): exiting now");
            std::process::exit(1);
        }
    }
    let name = next_signal().await;
    log::warn!("second signal ({name}): exiting now");
    std::process::exit(1);
}

fn pool_config(args: &PoolArgs) -> PoolConfig {
    PoolConfig {
        strategy: args.strategy,
        max_accounts_per_request: args.max_accounts_per_request as usize,
        health: HealthConfig {
            throttle_base: args.throttle_backoff,
            throttle_cap: args.throttle_backoff_max.max(args.throttle_backoff),
            failure_threshold: args.failure_threshold,
            failure_window: args.failure_window,
            failure_cooldown: args.failure_cooldown,
            denied_cooldown: args.denied_cooldown,
        },
    }
}

/// The seed's single-account mode: `AMAZONQ_REFRESH_TOKEN` (+ client id and secret, optional
/// profile ARN) is added, or updated if it is already in the pool, as account `env`.
fn seed_account(pool: &db::Pool, seed: &SeedAccountArgs) -> anyhow::Result<()> {
    let Some(refresh_token) = seed
        .seed_refresh_token
        .as_deref()
        .filter(|t| !t.trim().is_empty())
    else {
        return Ok(());
    };
    let mut obj = serde_json::Map::new();
    obj.insert("refreshToken".into(), refresh_token.into());
    if let Some(v) = &seed.seed_client_id {
        obj.insert("clientId".into(), v.as_str().into());
    }
    if let Some(v) = &seed.seed_client_secret {
        obj.insert("clientSecret".into(), v.as_str().into());
    }
    if let Some(v) = seed.seed_profile_arn.as_deref().filter(|v| !v.is_empty()) {
        obj.insert("profileArn".into(), v.into());
    }
    let entries = crate::import::parse_sources(&[crate::import::Source {
        label: "AMAZONQ_* environment".into(),
        dir: None,
        stem: None,
        text: serde_json::Value::Object(obj).to_string(),
    }]);
    let parsed = match entries.into_iter().next().map(|e| e.result) {
        Some(Ok(p)) => p,
        Some(Err(reason)) => anyhow::bail!("cannot add the AMAZONQ_* account: {reason}"),
        None => anyhow::bail!("cannot add the AMAZONQ_* account: incomplete credentials"),
    };
    let mut conn = pool.get()?;
    let outcome = conn
        .immediate_transaction(|c| accounts::upsert(c, &parsed.input, "env", false, db::now()))
        .context("cannot add the AMAZONQ_* account")?;
    log::info!("account from AMAZONQ_REFRESH_TOKEN: {outcome:?}");
    Ok(())
}

/// Says what is missing before anyone calls: no key means every request gets 401.
fn warn_about_setup(state: &AppState) {
    if state.keys.live_count(db::now()) == 0 {
        log::warn!("no API key exists: every request is refused with 401 until you create one with `amq2api keys create --name NAME`");
    }
    if state.accounts.usable_count(crate::pick::now_ms()) == 0 {
        log::warn!("no usable account: import one with `amq2api accounts import FILE`");
    }
}
