//! `amq2api serve`: opens the database, adds the seed account from the environment, loads the
//! pool and the keys into memory and keeps them in step with the database (`crate::watch`),
//! refreshes tokens ahead of expiry in the background, and runs the HTTP server (one awc client
//! per worker) until Ctrl-C or SIGTERM.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

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
    state.ping_every = std::time::Duration::from_secs(args.ping_interval);
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
                        .exclude("/health"),
                )
                .configure(http::configure)
        })
        // SSE events are small writes that must leave at once, not wait for Nagle's algorithm.
        .tcp_nodelay(true)
        .shutdown_timeout(30);
        if let Some(workers) = args.workers {
            server = server.workers(workers.max(1));
        }
        let server = server
            .bind((args.host.as_str(), args.port))
            .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
        for addr in server.addrs() {
            log::info!("listening on http://{addr}");
        }
        server.run().await.context("server failed")
    });
    watcher.stop();
    served?;
    Ok(ExitCode::SUCCESS)
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
