"""The official Anthropic Python SDK against a running `amq2api serve`.

Run by tests/integration/sdk_python.rs, which starts the fake Amazon Q and the server, queues
the fake's replies in the order of the steps below, and passes AMQ2API_BASE_URL and
AMQ2API_KEY. Each step prints one line; any failed check raises, and the exit status says so.
"""

import os
import sys

import anthropic

BASE = os.environ["AMQ2API_BASE_URL"]
KEY = os.environ["AMQ2API_KEY"]
client = anthropic.Anthropic(base_url=BASE, api_key=KEY, max_retries=0)
MODEL = "claude-sonnet-4-5-20250929"


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def step_non_streaming():
    msg = client.messages.create(
        model=MODEL,
        max_tokens=200,
        system="You are terse.",
        messages=[{"role": "user", "content": "Say hello"}],
    )
    check(msg.type == "message" and msg.role == "assistant", f"shape: {msg}")
    check(msg.model == MODEL, f"model echoed: {msg.model}")
    check([b.type for b in msg.content] == ["text"], f"content: {msg.content}")
    check(msg.content[0].text == "Hello from Amazon Q", f"text: {msg.content[0].text!r}")
    check(msg.stop_reason == "end_turn", f"stop_reason: {msg.stop_reason}")
    check(msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0, f"usage: {msg.usage}")


def step_streaming_text():
    with client.messages.stream(
        model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "Count"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    check(text == "one two three", f"streamed text: {text!r}")
    check(final.stop_reason == "end_turn", f"stop_reason: {final.stop_reason}")
    check(final.content[0].text == "one two three", f"final: {final.content}")


def step_tool_round_trip():
    tools = [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    with client.messages.stream(model=MODEL, max_tokens=200, tools=tools, messages=messages) as stream:
        final = stream.get_final_message()
    check(final.stop_reason == "tool_use", f"stop_reason: {final.stop_reason}")
    uses = [b for b in final.content if b.type == "tool_use"]
    check(len(uses) == 1 and uses[0].name == "get_weather", f"tool uses: {final.content}")
    check(uses[0].input == {"city": "Paris"}, f"input: {uses[0].input}")
    messages += [
        {"role": "assistant", "content": [b.model_dump() for b in final.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "22C, clear"}],
        },
    ]
    answer = client.messages.create(model=MODEL, max_tokens=200, tools=tools, messages=messages)
    check(answer.content[0].text == "It is 22C and clear in Paris.", f"answer: {answer.content}")


def step_thinking():
    with client.messages.stream(
        model=MODEL,
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Think first"}],
    ) as stream:
        final = stream.get_final_message()
    kinds = [b.type for b in final.content]
    check(kinds == ["thinking", "text"], f"blocks: {kinds}")
    check(final.content[0].thinking == "Let me plan.", f"thinking: {final.content[0].thinking!r}")
    check(final.content[0].signature, "thinking has a signature")
    check(final.content[1].text == "The answer.", f"text: {final.content[1].text!r}")


def step_count_tokens():
    result = client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "hello world"}]
    )
    check(result.input_tokens == 6, f"count_tokens: {result}")


def step_upstream_error_is_an_api_error():
    try:
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}])
    except anthropic.BadRequestError as e:
        check(e.status_code == 400, f"status {e.status_code}")
        check("too long" in str(e), f"message: {e}")
    else:
        raise AssertionError("expected BadRequestError")


def step_malformed_request():
    try:
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "robot", "content": "x"}])
    except anthropic.BadRequestError as e:
        check(e.status_code == 400, f"status {e.status_code}")
        check(e.body["error"]["type"] == "invalid_request_error", f"body: {e.body}")
    else:
        raise AssertionError("expected BadRequestError")


def step_upstream_throttling_is_a_rate_limit_error():
    try:
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}])
    except anthropic.RateLimitError as e:
        check(e.status_code == 429, f"status {e.status_code}")
    else:
        raise AssertionError("expected RateLimitError")


def step_bad_key():
    bad = anthropic.Anthropic(base_url=BASE, api_key="sk-amq-not-a-key", max_retries=0)
    try:
        bad.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}])
    except anthropic.AuthenticationError as e:
        check(e.status_code == 401, f"status {e.status_code}")
    else:
        raise AssertionError("expected AuthenticationError")


STEPS = [
    step_non_streaming,
    step_streaming_text,
    step_tool_round_trip,
    step_thinking,
    step_count_tokens,
    step_upstream_error_is_an_api_error,
    step_malformed_request,
    step_upstream_throttling_is_a_rate_limit_error,
    step_bad_key,
]

if __name__ == "__main__":
    failed = 0
    for step in STEPS:
        try:
            step()
            print(f"ok {step.__name__}")
        except Exception as e:  # report every step, then fail
            failed += 1
            print(f"FAILED {step.__name__}: {type(e).__name__}: {e}")
    print(f"{len(STEPS) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
