//! Claude Code itself (npm `@anthropic-ai/claude-code`, run offline in `-p` mode) against the
//! real `amq2api serve` and the fake Amazon Q: a plain answer with its default model and
//! settings, and a tool loop where the fake asks for a Bash command and Claude Code's result
//! comes back through the gateway. `.ci/run` installs the package and sets AMQ2API_CLAUDE.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::support::fake_q::{FakeQ, Script};
use crate::support::{account_and_key, Server, TestDir};

fn claude() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AMQ2API_CLAUDE") {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/claude-code/node_modules/.bin/claude");
    local.exists().then_some(local)
}

struct Gateway {
    fake: FakeQ,
    t: TestDir,
    server: Server,
    key: String,
}

fn gateway() -> Gateway {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let server = Server::start(&t, &fake);
    Gateway {
        fake,
        t,
        server,
        key,
    }
}

/// `claude -p PROMPT --output-format json ARGS` against the gateway; its JSON result.
fn run_claude(bin: &PathBuf, g: &Gateway, prompt: &str, args: &[&str]) -> Value {
    let home = g.t.path().join("home");
    let work = g.t.path().join("work");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let out = std::process::Command::new(bin)
        .current_dir(&work)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("ANTHROPIC_BASE_URL", &g.server.url)
        .env("ANTHROPIC_API_KEY", &g.key)
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .args(["-p", prompt, "--output-format", "json"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "claude failed ({}):\n{stdout}\n{}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        g.server.log()
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn skip_or_fail() -> Option<PathBuf> {
    let bin = claude();
    if bin.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide Claude Code: set AMQ2API_CLAUDE (see .ci/run)"
        );
        eprintln!("skipping: Claude Code not installed; run: npm install --prefix target/claude-code @anthropic-ai/claude-code");
    }
    bin
}

#[test]
fn claude_code_default_model_plain_answer() {
    let Some(bin) = skip_or_fail() else { return };
    let g = gateway();
    g.fake.set_default_reply(
        Script::new()
            .texts(&["Hi from ", "the gateway."])
            .end()
            .reply(),
    );
    let result = run_claude(&bin, &g, "say hi", &[]);
    assert_eq!(result["is_error"], json!(false), "{result}");
    assert_eq!(result["result"], "Hi from the gateway.", "{result}");
    // Every request Claude Code sent reached Amazon Q in a valid shape.
    assert!(g.fake.chat_calls() >= 1);
    for req in g.fake.requests() {
        let typed: amq2api::q::types::GenerateAssistantResponseRequest =
            serde_json::from_value(req.body.clone()).unwrap();
        amq2api::claude::request::check_history_rules(&typed).unwrap();
        assert_eq!(req.status, 200);
    }
}

#[test]
fn claude_code_tool_loop_through_the_gateway() {
    let Some(bin) = skip_or_fail() else { return };
    let g = gateway();
    g.fake.push_reply(
        Script::new()
            .text("I will run it.")
            .tool_use(
                "tooluse_bash1",
                "Bash",
                &[
                    "{\"command\": \"echo gateway-tool-",
                    "ok\", \"description\": \"Print a marker\"}",
                ],
            )
            .end()
            .reply(),
    );
    g.fake.set_default_reply(
        Script::new()
            .texts(&["The command printed the marker."])
            .end()
            .reply(),
    );
    let result = run_claude(
        &bin,
        &g,
        "run the marker command",
        &["--allowedTools", "Bash"],
    );
    assert_eq!(
        result["result"], "The command printed the marker.",
        "{result}"
    );
    // The tool result came back upstream, paired with the tool use.
    let requests = g.fake.requests();
    let with_result = requests
        .iter()
        .find(|r| {
            r.body.pointer("/conversationState/currentMessage/userInputMessage/userInputMessageContext/toolResults/0/toolUseId")
                == Some(&json!("tooluse_bash1"))
        })
        .unwrap_or_else(|| panic!("no request carried the tool result: {requests:#?}"));
    let text = with_result.body["conversationState"]["currentMessage"]["userInputMessage"]
        ["userInputMessageContext"]["toolResults"][0]["content"][0]["text"]
        .as_str()
        .unwrap();
    assert!(text.contains("gateway-tool-ok"), "{text}");
}
