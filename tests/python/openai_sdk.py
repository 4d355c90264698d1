"""The official OpenAI Python SDK against a running `amq2api serve`.

Run by tests/integration/sdk_python.rs, which starts the fake Amazon Q and the server, queues
the fake's replies in the order of the steps below, and passes AMQ2API_BASE_URL and
AMQ2API_KEY. Each step prints one line; any failed check raises, and the exit status says so.
"""

import json
import os
import sys

import openai

BASE = os.environ["AMQ2API_BASE_URL"] + "/v1"
KEY = os.environ["AMQ2API_KEY"]
client = openai.OpenAI(base_url=BASE, api_key=KEY, max_retries=0)
MODEL = "claude-sonnet-4-5"
# A 1x1 PNG.
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def step_non_streaming():
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}],
    )
    check(r.object == "chat.completion" and r.id.startswith("chatcmpl-"), f"shape: {r}")
    check(r.model == MODEL, f"model echoed: {r.model}")
    choice = r.choices[0]
    check(choice.message.role == "assistant", f"role: {choice.message.role}")
    check(choice.message.content == "Hello from Amazon Q", f"content: {choice.message.content!r}")
    check(choice.message.tool_calls is None, f"tool_calls: {choice.message.tool_calls}")
    check(choice.finish_reason == "stop", f"finish_reason: {choice.finish_reason}")
    u = r.usage
    check(u.prompt_tokens > 0 and u.completion_tokens > 0, f"usage: {u}")
    check(u.total_tokens == u.prompt_tokens + u.completion_tokens, f"total: {u}")


def step_streaming_with_usage():
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check(text == "one two three", f"streamed text: {text!r}")
    check(len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1, "one id and created")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    check(finishes == ["stop"], f"finish reasons: {finishes}")
    last = chunks[-1]
    check(last.choices == [] and last.usage is not None, f"usage chunk: {last}")
    check(last.usage.completion_tokens > 0, f"usage: {last.usage}")
    check(last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens, f"usage: {last.usage}")
    check(all(c.usage is None for c in chunks[:-1]), "usage only on the last chunk")


def step_streamed_tool_call_round_trip():
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    stream = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS, stream=True)
    text, calls, finish = "", {}, None
    for c in stream:
        d = c.choices[0].delta
        text += d.content or ""
        for tc in d.tool_calls or []:
            call = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            if tc.id:
                call["id"] = tc.id
            if tc.function and tc.function.name:
                call["name"] = tc.function.name
            if tc.function and tc.function.arguments:
                call["arguments"] += tc.function.arguments
        finish = c.choices[0].finish_reason or finish
    check(text == "Checking.", f"text: {text!r}")
    check(finish == "tool_calls", f"finish_reason: {finish}")
    check(list(calls) == [0], f"indices: {list(calls)}")
    call = calls[0]
    check(call["id"] == "tooluse_w1" and call["name"] == "get_weather", f"call: {call}")
    check(json.loads(call["arguments"]) == {"city": "Paris"}, f"arguments: {call['arguments']!r}")
    messages += [
        {
            "role": "assistant",
            "content": text,
            "tool_calls": [
                {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}
            ],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": "22C, clear"},
    ]
    answer = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    check(answer.choices[0].message.content == "It is 22C and clear in Paris.", f"answer: {answer.choices[0].message}")


def step_non_streamed_tool_call():
    r = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=TOOLS, tool_choice="auto"
    )
    m = r.choices[0].message
    check(r.choices[0].finish_reason == "tool_calls", f"finish_reason: {r.choices[0].finish_reason}")
    check(m.content is None, f"content: {m.content!r}")
    check(len(m.tool_calls) == 1, f"tool_calls: {m.tool_calls}")
    tc = m.tool_calls[0]
    check(tc.type == "function" and tc.id == "tooluse_w2" and tc.function.name == "get_weather", f"call: {tc}")
    check(json.loads(tc.function.arguments) == {"city": "Oslo", "units": "metric"}, f"arguments: {tc.function.arguments!r}")


def step_image_as_data_url():
    r = client.chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
                ],
            }
        ],
    )
    check(r.choices[0].message.content == "A red pixel.", f"content: {r.choices[0].message.content!r}")


def step_reasoning_content():
    stream = client.chat.completions.create(
        model=MODEL + "-thinking", messages=[{"role": "user", "content": "Think first"}], stream=True
    )
    reasoning, text = "", ""
    for c in stream:
        d = c.choices[0].delta
        reasoning += getattr(d, "reasoning_content", None) or ""
        text += d.content or ""
    check(reasoning == "Let me plan.", f"reasoning: {reasoning!r}")
    check(text == "The answer.", f"text: {text!r}")


def step_error_in_stream():
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True)
    text = ""
    try:
        for c in stream:
            text += c.choices[0].delta.content or ""
    except openai.APIError as e:
        check(text == "partial", f"text before the error: {text!r}")
        check("Rate exceeded" in str(e), f"message: {e}")
    else:
        raise AssertionError("expected APIError")


def step_models_list():
    ids = [m.id for m in client.models.list()]
    check("claude-sonnet-4-5" in ids and "claude-opus-4-5-thinking" in ids, f"models: {ids}")
    m = client.models.retrieve("claude-haiku-4-5")
    check(m.id == "claude-haiku-4-5" and m.object == "model", f"model: {m}")


def step_bad_key():
    bad = openai.OpenAI(base_url=BASE, api_key="sk-amq-not-a-key", max_retries=0)
    try:
        bad.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    except openai.AuthenticationError as e:
        check(e.status_code == 401, f"status {e.status_code}")
        check(e.body["code"] == "invalid_api_key", f"body: {e.body}")
    else:
        raise AssertionError("expected AuthenticationError")


def step_malformed_request():
    bad_args = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{oops"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "?"},
    ]
    for messages, what in [([{"role": "robot", "content": "x"}], "unknown role"), (bad_args, "arguments")]:
        try:
            client.chat.completions.create(model=MODEL, messages=messages)
        except openai.BadRequestError as e:
            check(e.status_code == 400, f"status {e.status_code}")
            check(e.body["type"] == "invalid_request_error", f"body: {e.body}")
            check(what in e.body["message"], f"message: {e.body['message']}")
        else:
            raise AssertionError(f"expected BadRequestError for {what}")


STEPS = [
    step_non_streaming,
    step_streaming_with_usage,
    step_streamed_tool_call_round_trip,
    step_non_streamed_tool_call,
    step_image_as_data_url,
    step_reasoning_content,
    step_error_in_stream,
    step_models_list,
    step_bad_key,
    step_malformed_request,
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
