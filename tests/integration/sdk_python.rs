//! The official Anthropic Python SDK (tests/python/anthropic_sdk.py) against the real
//! `amq2api serve` and the fake Amazon Q. `.ci/run` installs the SDK into a virtual environment
//! and points AMQ2API_PYTHON at it; without it the test fails in CI and says how to set it up
//! elsewhere.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use crate::support::fake_q::{FakeQ, QError, Reply, Script};
use crate::support::{account_and_key, Server, TestDir};

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AMQ2API_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/sdk-venv/bin/python");
    venv.exists().then_some(venv)
}

/// Runs `tests/python/<script>` against `server` and asserts that all `steps` passed.
fn run_script(python: &Path, script: &str, server: &Server, key: &str, steps: usize) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let out = std::process::Command::new(python)
        .arg(path)
        .env("AMQ2API_BASE_URL", &server.url)
        .env("AMQ2API_KEY", key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "SDK script failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    assert!(
        stdout.ends_with(&format!("{steps} passed, 0 failed\n")),
        "{stdout}"
    );
}

#[test]
fn anthropic_python_sdk_end_to_end() {
    let Some(python) = python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide the Anthropic SDK: set AMQ2API_PYTHON (see .ci/run)"
        );
        eprintln!("skipping: no Python with the anthropic SDK; run: python3 -m venv target/sdk-venv && target/sdk-venv/bin/pip install -r tests/python/requirements.txt");
        return;
    };
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    // One reply per upstream call, in the order of the script's steps.
    fake.push_reply(
        Script::new()
            .texts(&["Hello ", "from Amazon Q"])
            .end()
            .reply(),
    );
    fake.push_reply(
        Script::new()
            .texts(&["one", " two", " three"])
            .end()
            .reply(),
    );
    fake.push_reply(
        Script::new()
            .text("Checking.")
            .tool_use("tooluse_w1", "get_weather", &["{\"city\"", ": \"Paris\"}"])
            .end()
            .reply(),
    );
    fake.push_reply(
        Script::new()
            .texts(&["It is 22C and clear", " in Paris."])
            .end()
            .reply(),
    );
    fake.push_reply(
        Script::new()
            .texts(&["<thin", "king>\nLet me plan.</thinking>\n\n", "The answer."])
            .end()
            .reply(),
    );
    fake.push_reply(Reply::Error(QError::InputTooLong));
    // The malformed request never reaches the fake; the throttled one does (a single account, so
    // the 429 is what the client sees).
    fake.push_reply(Reply::Error(QError::Throttled));
    let server = Server::start(&t, &fake);
    run_script(&python, "anthropic_sdk.py", &server, &key, 9);
    // The tool round trip sent the result back upstream paired with its tool use.
    std::thread::sleep(Duration::from_millis(100));
    let reqs = fake.requests();
    let round_trip = &reqs[3].body["conversationState"];
    assert_eq!(
        round_trip["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
            [0]["toolUseId"],
        "tooluse_w1"
    );
    assert_eq!(fake.pending_replies(), 0);
}

#[test]
fn openai_python_sdk_end_to_end() {
    let Some(python) = python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide the OpenAI SDK: set AMQ2API_PYTHON (see .ci/run)"
        );
        eprintln!("skipping: no Python with the openai SDK; run: python3 -m venv target/sdk-venv && target/sdk-venv/bin/pip install -r tests/python/requirements.txt");
        return;
    };
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    // One reply per upstream call, in the order of the script's steps.
    for reply in [
        Script::new().texts(&["Hello ", "from Amazon Q"]).end(),
        Script::new().texts(&["one", " two", " three"]).end(),
        Script::new()
            .text("Checking.")
            .tool_use("tooluse_w1", "get_weather", &["{\"city\"", ": \"Paris\"}"])
            .end(),
        Script::new()
            .texts(&["It is 22C and clear", " in Paris."])
            .end(),
        Script::new()
            .tool_use(
                "tooluse_w2",
                "get_weather",
                &["{\"city\": \"Oslo\", ", "\"units\": \"metric\"}"],
            )
            .end(),
        Script::new().text("A red pixel.").end(),
        Script::new()
            .texts(&["<thinking>\nLet me ", "plan.</thinking>\n\n", "The answer."])
            .end(),
        Script::new()
            .texts(&["partial"])
            .exception("ThrottlingException", json!({"message": "Rate exceeded"})),
    ] {
        fake.push_reply(reply.reply());
    }
    let server = Server::start(&t, &fake);
    run_script(&python, "openai_sdk.py", &server, &key, 10);
    std::thread::sleep(Duration::from_millis(100));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 8);
    // The tool round trip sent the result back upstream paired with its tool use.
    let round_trip = &reqs[3].body["conversationState"];
    let history = round_trip["history"].as_array().unwrap();
    assert_eq!(
        history.last().unwrap()["assistantResponseMessage"]["toolUses"][0],
        json!({"toolUseId": "tooluse_w1", "name": "get_weather", "input": {"city": "Paris"}})
    );
    assert_eq!(
        round_trip["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"],
        json!([{"toolUseId": "tooluse_w1", "status": "success", "content": [{"text": "22C, clear"}]}])
    );
    // The data URL arrived as an Amazon Q image block.
    let image = &reqs[5].body["conversationState"]["currentMessage"]["userInputMessage"];
    assert_eq!(
        image["images"],
        json!([{"format": "png", "source": {"bytes": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="}}])
    );
    assert_eq!(image["content"], "What is this?");
    assert_eq!(fake.pending_replies(), 0);
}
