//! Runs the test suite's fake Amazon Q as a standalone server, for manual testing of amq2api.
//!
//! ```text
//! cargo run --example fake_amazonq -- --port 8099 --access-token aoaTEST \
//!     --refresh-token aorTEST --client-id cid --client-secret secret
//! ```
//!
//! Prints `fake Amazon Q listening on http://127.0.0.1:PORT`, then answers every chat with a
//! short scripted text reply until interrupted (Ctrl-C). Endpoints: `POST /` (dialect A),
//! `POST /generateAssistantResponse` (dialect B), `POST /token` (SSO-OIDC refresh) and
//! `POST /refreshToken` (Kiro social refresh). A `--refresh-token` without `--client-id` and
//! `--client-secret` registers a Kiro social account instead of an IdC one.

#[path = "../tests/integration/support/fake_q.rs"]
mod fake_q;

use std::io::Write;

use clap::Parser;

/// A fake Amazon Q (chat, SSO-OIDC token refresh, Kiro social refresh) on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(name = "fake_amazonq")]
struct Args {
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// A bearer token the chat endpoints accept without any refresh.
    #[arg(long)]
    access_token: Option<String>,
    /// A refresh token to accept (IdC with --client-id/--client-secret, otherwise Kiro social).
    #[arg(long)]
    refresh_token: Option<String>,
    /// IdC client id for --refresh-token.
    #[arg(long, requires = "refresh_token")]
    client_id: Option<String>,
    /// IdC client secret for --refresh-token.
    #[arg(long, requires = "refresh_token")]
    client_secret: Option<String>,
    /// profileArn returned by the social refresh.
    #[arg(long, default_value = fake_q::FAKE_PROFILE_ARN)]
    profile_arn: String,
}

fn main() {
    let args = Args::parse();
    let fake = match fake_q::FakeQ::try_start_on(args.port) {
        Ok(fake) => fake,
        Err(e) => {
            eprintln!(
                "fake_amazonq: cannot listen on 127.0.0.1:{}: {e}",
                args.port
            );
            std::process::exit(1);
        }
    };
    if let Some(token) = &args.access_token {
        fake.add_access_token(token);
    }
    if let Some(refresh) = &args.refresh_token {
        match (&args.client_id, &args.client_secret) {
            (Some(id), Some(secret)) => {
                fake.add_idc(id, secret, refresh);
            }
            (None, None) => {
                fake.add_social(refresh, &args.profile_arn);
            }
            _ => {
                eprintln!("fake_amazonq: --client-id and --client-secret go together");
                std::process::exit(2);
            }
        }
    }
    println!("fake Amazon Q listening on {}", fake.base_url());
    let _ = std::io::stdout().flush();
    // Wait for Ctrl-C (installing a handler also works when SIGINT was inherited as ignored),
    // then stop the server cleanly.
    actix_web::rt::System::new().block_on(async {
        let _ = actix_web::rt::signal::ctrl_c().await;
    });
    drop(fake);
}
