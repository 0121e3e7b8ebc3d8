"""A local HTTP server that speaks Mistral's chat-completions protocol, scripted per test.

    with FakeMistral(api_key="test-key") as server:
        server.script(status(429), ok({"summary": ...}))
        ... MistralProvider(AiSettings(api_key="test-key", server_url=server.url)) ...
        assert len(server.requests) == 2

Each valid request takes the next scripted reply (or `server.default` when the script is
empty). Requests are validated like the real API: a wrong bearer token is answered 401, an
unknown path 404, a body that is not a valid chat-completion request 422 — these consume no
scripted reply. Every request is recorded in `server.requests`.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

CHAT_PATH = "/v1/chat/completions"
ROLES = {"system", "user", "assistant", "tool"}
RESPONSE_FORMAT_TYPES = {"json_schema", "json_object"}


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a completion, an HTTP error, a hang or a broken body."""

    kind: str  # "ok", "status", "hang", "malformed", "no_choices"
    content: str = ""
    status: int = 200
    retry_after: float | None = None
    seconds: float = 0.0


def ok(content: dict[str, Any] | str) -> Reply:
    """A 200 completion whose assistant content is `content` (a dict is sent as JSON text)."""
    return Reply("ok", content=content if isinstance(content, str) else json.dumps(content))


def status(code: int, retry_after: float | None = None) -> Reply:
    """An HTTP error in Mistral's error shape, optionally with a Retry-After header."""
    return Reply("status", status=code, retry_after=retry_after)


def hang(seconds: float = 10.0) -> Reply:
    """Hold the request for `seconds` (or until the server stops) before answering."""
    return Reply("hang", seconds=seconds)


def malformed() -> Reply:
    """A 200 response with a JSON content type whose body is not JSON."""
    return Reply("malformed")


def no_choices() -> Reply:
    """A well-formed completion with an empty choices list."""
    return Reply("no_choices")


@dataclass(frozen=True)
class RecordedRequest:
    """What the server received: method, path, lowercased headers and the parsed JSON body."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


def request_problems(body: Any) -> list[dict[str, Any]]:
    """Validation errors of a chat-completion request body, in the API's 422 `detail` shape."""
    def problem(loc: list[str | int], msg: str, kind: str = "value_error") -> dict[str, Any]:
        return {"loc": ["body", *loc], "msg": msg, "type": kind}

    if not isinstance(body, dict):
        return [problem([], "Input should be a valid dictionary", "dict_type")]
    found: list[dict[str, Any]] = []
    if not isinstance(body.get("model"), str) or not body["model"]:
        found.append(problem(["model"], "Field required", "missing"))
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        found.append(problem(["messages"], "messages must be a non-empty list"))
    else:
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                found.append(problem(["messages", i, "role"], "unknown or missing role"))
            elif not isinstance(message.get("content"), (str, list)):
                found.append(problem(["messages", i, "content"], "content must be text or chunks"))
    response_format = body.get("response_format")
    if not isinstance(response_format, dict) or response_format.get("type") not in RESPONSE_FORMAT_TYPES:
        found.append(problem(["response_format"], "response_format must be json_schema or json_object"))
    elif response_format["type"] == "json_schema":
        schema = response_format.get("json_schema")
        if not isinstance(schema, dict) or not schema.get("name") or not isinstance(schema.get("schema"), dict):
            found.append(problem(["response_format", "json_schema"], "json_schema needs name and schema"))
    return found


@dataclass
class FakeMistral:
    """The fake server; start()/stop() or use it as a context manager."""

    api_key: str = "test-key"
    default: Reply = field(default_factory=lambda: status(500))
    requests: list[RecordedRequest] = field(default_factory=list)
    # Answers a valid request (its parsed body) when the script is empty, before `default`:
    # a stand-in "model" whose answer depends on the prompt it was sent.
    responder: Callable[[Any], Reply] | None = None

    def __post_init__(self) -> None:
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL to pass as server_url (the SDK appends /v1/chat/completions)."""
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_port}"

    def script(self, *replies: Reply) -> None:
        """Queue replies; each valid request takes the next one."""
        with self._lock:
            self._script.extend(replies)

    def start(self) -> FakeMistral:
        """Listen on an ephemeral port of 127.0.0.1 in a daemon thread."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-mistral", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests, stop serving and close the socket."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeMistral:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_reply(self, body: Any = None) -> Reply:
        with self._lock:
            if self._script:
                return self._script.popleft()
        return self.responder(body) if self.responder is not None else self.default


def completion(model: str, content: str) -> dict[str, Any]:
    """A chat-completion response body shaped like the real API's."""
    return {
        "id": uuid.uuid4().hex,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "tool_calls": None, "prefix": False},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 321, "completion_tokens": 54, "total_tokens": 375},
    }


def _handler_for(fake: FakeMistral) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body: Any = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = None
            headers = {k.lower(): v for k, v in self.headers.items()}
            fake._record(RecordedRequest("POST", self.path, headers, body))
            if headers.get("authorization") != f"Bearer {fake.api_key}":
                return self._json(401, {"message": "Unauthorized", "request_id": uuid.uuid4().hex})
            if self.path.split("?")[0] != CHAT_PATH:
                return self._json(404, {"detail": "Not Found"})
            if problems := request_problems(body):
                return self._json(422, {"detail": problems})
            self._answer(fake._next_reply(body), body["model"])

        def _answer(self, reply: Reply, model: str) -> None:
            if reply.kind == "hang":
                fake._stopping.wait(reply.seconds)
                reply = ok("{}")
            if reply.kind == "ok":
                self._json(200, completion(model, reply.content))
            elif reply.kind == "no_choices":
                self._json(200, {**completion(model, ""), "choices": []})
            elif reply.kind == "malformed":
                self._send(200, b'{"id": "cmpl-1", "choices": [ this is not json', "application/json")
            else:
                extra = {} if reply.retry_after is None else {"Retry-After": f"{reply.retry_after:g}"}
                error = {"object": "error", "message": f"fake error {reply.status}",
                         "type": "fake_error", "param": None, "code": str(reply.status)}
                self._json(reply.status, error, extra)

        def _json(self, code: int, payload: Any, extra: dict[str, str] | None = None) -> None:
            self._send(code, json.dumps(payload).encode(), "application/json", extra)

        def _send(self, code: int, data: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
            try:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                pass

    return Handler
