"""The sandbox's API face: its routes, the envelope on every answer, the key check, and which
callback addresses it accepts (only the bot's own: it is no open relay)."""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from aiohttp import web
from yarl import URL

from bot import http_limits
from bot.sandbox.contract import (
    CALLBACK_TOKEN,
    CREDIT_PATH,
    ENDPOINT_PATHS,
    FAIL_PREFIX,
    FILE_LABELS,
    GENERATE_AUDIO_FAILED,
    GENERATION_PATH,
    NEVER,
    RECORD_PATH,
    SANDBOX_CREDITS,
    SANDBOX_PREFIX,
    STEM_BY_FILE,
    SUBMIT_PATH,
    SUCCESS,
    Refusal,
    SandboxTask,
    envelope,
    json_response,
    parse_submit,
    record_body,
    reserved_invalid,
)
from bot.sandbox.observer import Call, SandboxObserver, SubmitCall
from bot.sandbox.songs import generation_answer
from bot.sandbox.sound import stem_wav
from bot.sandbox.tasks import TaskBook

UNAUTHORIZED = envelope(401, "Unauthorized: invalid or missing API key")


def _origin(url: URL) -> tuple[str, str, int | None]:
    """Scheme, host and port (the default one when none is written)."""
    return url.scheme, (url.host or "").lower(), url.port


class SandboxApi:
    """The API's documented behaviour, served on any aiohttp application by `add_routes`.

    Stem links start with `public_url` when given (the operator's CALLBACK_PUBLIC_URL), else with
    `local_url`, which the web server sets once it listens (`serving_at`). Every API request must
    carry `api_key` as its Bearer key; a `callBackUrl` must be the bot's own (`callback_refusal`).
    A separation takes `processing_seconds` (SANDBOX_SECONDS). The account is free: it always has
    SANDBOX_CREDITS. `tasks` keeps the tasks (by default for DEFAULT_TASK_LIFETIME, at most
    MAX_TASKS); `observer` is told of every request and task event.
    """

    def __init__(
        self,
        *,
        api_key: str,
        processing_seconds: float = 5.0,
        public_url: str | None = None,
        tasks: TaskBook | None = None,
        observer: SandboxObserver | None = None,
    ) -> None:
        self.api_key = api_key
        self.processing_seconds = processing_seconds
        self.public_url = public_url
        self.local_url: str | None = None
        self.book = tasks or TaskBook()
        if observer is not None:
            self.book.observer = observer

    @property
    def tasks(self) -> dict[str, SandboxTask]:
        return self.book.tasks

    @property
    def observer(self) -> SandboxObserver:
        return self.book.observer

    # ------------------------------------------------------------------ serving

    def add_routes(self, app: web.Application, prefix: str = "") -> None:
        """Serve the API under `prefix + "/api/v1/..."` and the stem files under `prefix + "/files/"`."""
        app.router.add_post(prefix + SUBMIT_PATH, self.handle_submit)
        app.router.add_get(prefix + RECORD_PATH, self.handle_record)
        app.router.add_get(prefix + CREDIT_PATH, self.handle_credit)
        app.router.add_get(prefix + GENERATION_PATH, self.handle_generation)
        app.router.add_get(prefix + "/files/{task_id}/{name}", self.handle_file)

    def started(self) -> None:
        """Call from the serving event loop before the first request."""
        self.book.started()

    def serving_at(self, local_url: str) -> None:
        """The web server listens at `local_url` (`http://127.0.0.1:8080`): the API is under it."""
        self.local_url = local_url.rstrip("/")
        self.started()

    @property
    def api_url(self) -> str:
        """The base URL the bot's API client uses: this process, under `/sandbox`."""
        if self.local_url is None:
            raise RuntimeError("the sandbox is not served yet (the web server has not started)")
        return self.local_url + SANDBOX_PREFIX

    async def stop(self) -> None:
        """Cancel pending callbacks and wake every waiting request."""
        await self.book.stop()

    def charged(self) -> int:
        """Credits charged to the account in total: none, the sandbox is free."""
        return 0

    # ------------------------------------------------------------------ the contract's checks

    def authorized(self, request: web.Request) -> bool:
        """Whether the request carries this sandbox's key as its Bearer key."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        # Constant time: how much of a guessed key matched must not show in the answer's timing.
        return hmac.compare_digest(token.strip().encode(), self.api_key.encode())

    def stem_url(self, task_id: str, stem: str) -> str:
        """Where a task's stem can be downloaded."""
        base = self.public_url or self.local_url
        if base is None:
            raise RuntimeError("the sandbox is not served yet (the web server has not started)")
        return f"{base.rstrip('/')}{SANDBOX_PREFIX}/files/{task_id}/{FILE_LABELS[stem]}.wav"

    def callback_refusal(self, url: URL) -> str | None:
        """Why a submit with this `callBackUrl` is refused, or None when it is accepted.

        Only the bot's own callback address: `/callback/<token>` on its public callback URL or its
        local address, nothing more. An address under the reserved `.invalid` TLD, where nothing
        can be reached, is accepted too and never called: the bot uses one when callbacks are off.
        """
        if reserved_invalid(url):
            return None
        if url.user is not None or url.password is not None or url.raw_query_string or url.raw_fragment:
            return "callBackUrl must be this bot's own callback address"
        for base in (self.public_url, self.local_url):
            if base is None:
                continue
            own = URL(base.rstrip("/"))
            if _origin(url) != _origin(own):
                continue
            prefix = own.raw_path.rstrip("/") + "/callback/"
            path = url.raw_path
            if path.startswith(prefix) and CALLBACK_TOKEN.fullmatch(path[len(prefix) :]):
                return None
        return "callBackUrl must be this bot's own callback address"

    def create_task(self, body: dict[str, Any]) -> SandboxTask | Refusal:
        """Accept a submit body as the sandbox does, or say why not. A source `taskId` starting
        with `fail-` shows a failure: `fail-400-…` is refused as an unknown id, `fail-timeout-…`
        never finishes, any other `fail-…` ends in GENERATE_AUDIO_FAILED."""
        request = parse_submit(body, self.callback_refusal)
        if isinstance(request, Refusal):
            return request
        failing = request.source_task_id.startswith(FAIL_PREFIX)
        if request.source_task_id.startswith(FAIL_PREFIX + "400-"):
            return Refusal(400, "taskId or audioId not found")
        if self.book.full:
            return Refusal(430, f"too many tasks at once (at most {self.book.capacity}): try again later")
        never = request.source_task_id.startswith(FAIL_PREFIX + "timeout-")
        task = self.book.new_task(
            request,
            processing=NEVER if never else self.processing_seconds,
            outcome=GENERATE_AUDIO_FAILED if failing else SUCCESS,
            stem_url=self.stem_url,
        )
        self.book.add(task)
        return task

    # ------------------------------------------------------------------ handlers

    def _call(self, request: web.Request, endpoint: str) -> Call:
        return Call(request.method, ENDPOINT_PATHS.get(endpoint) or request.path, time.time(), endpoint)

    def _answer(self, call: Call, code: int, body: bytes) -> web.Response:
        call.status = 200
        call.code = code
        self.observer.requested(call)
        return json_response(200, body)

    async def handle_credit(self, request: web.Request) -> web.Response:
        self.book.forget_expired()
        call = self._call(request, "credit")
        if not self.authorized(request):
            return self._answer(call, 401, UNAUTHORIZED)
        return self._answer(call, 200, envelope(200, "success", SANDBOX_CREDITS))

    def record_answer(self, task_id: str | None) -> tuple[int, bytes]:
        """record-info's envelope code and body for `task_id` (the caller checked the key)."""
        if not task_id:
            return 400, envelope(400, "taskId is required")
        task = self.book.tasks.get(task_id)
        if task is None:
            return 400, envelope(400, "task not found")
        return 200, record_body(task)

    async def handle_record(self, request: web.Request) -> web.Response:
        self.book.forget_expired()
        call = self._call(request, "record")
        task_id = request.query.get("taskId")
        call.task_id = task_id
        self.observer.polled(task_id)
        if not self.authorized(request):
            return self._answer(call, 401, UNAUTHORIZED)
        return self._answer(call, *self.record_answer(task_id))

    async def handle_generation(self, request: web.Request) -> web.Response:
        """Get Music Generation Details: two made-up takes for any task (`bot.sandbox.songs`)."""
        call = self._call(request, "tracks")
        task_id = request.query.get("taskId")
        call.task_id = task_id
        if not self.authorized(request):
            return self._answer(call, 401, UNAUTHORIZED)
        return self._answer(call, *generation_answer(task_id))

    async def read_submit(self, request: web.Request) -> tuple[bool, Any] | None:
        """The submit's body: (parsed as JSON, the JSON or the raw text); None when it did not
        arrive in time."""
        try:
            raw = await http_limits.read_body(request)
        except http_limits.BodyTimeout:
            return None
        try:
            return True, json.loads(raw)
        except ValueError:
            return False, raw.decode("utf-8", "replace")

    async def handle_submit(self, request: web.Request) -> web.Response:
        self.book.forget_expired()
        call = self._call(request, "submit")
        authorized = self.authorized(request)
        body: Any = None
        parsed_ok = False
        if authorized:  # a stranger's body is never even read
            read = await self.read_submit(request)
            if read is None:
                call.status = call.code = 408
                self.observer.requested(call)
                return http_limits.body_timeout_response(envelope(408, "request body not received in time"))
            parsed_ok, body = read
        submit = SubmitCall(time=call.time, body=body)
        self.observer.submitted(submit)
        if not authorized:
            code, answer = 401, UNAUTHORIZED
        elif not parsed_ok or not isinstance(body, dict):
            code, answer = 400, envelope(400, "request body must be a JSON object")
        else:
            created = self.create_task(body)
            if isinstance(created, Refusal):
                code, answer = created.code, envelope(created.code, created.msg)
            else:
                submit.task_id = created.task_id
                code, answer = 200, envelope(200, "success", {"taskId": created.task_id})
        submit.code = code
        return self._answer(call, code, answer)

    async def handle_file(self, request: web.Request) -> web.StreamResponse:
        # Made from the stem's name alone, so links keep working across restarts of the bot.
        name = request.match_info["name"]
        label, dot, ext = name.rpartition(".")
        stem = STEM_BY_FILE.get(label)
        if stem is None or not dot or ext != "wav" or len(request.match_info["task_id"]) > 64:
            return web.Response(status=404, text="no such sandbox file")
        return web.Response(
            body=stem_wav(stem),
            content_type="audio/wav",
            headers={"Content-Disposition": f'inline; filename="{name}"'},
        )
