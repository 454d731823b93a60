"""The sandbox: a free, built-in stand-in for the separation API, following the provider's
documented contract: submit, record-info, callbacks to `callBackUrl`, the credit endpoint, the
`{code, msg, data}` envelope.

With `SEPARATION_API_URL=sandbox` the bot serves it from its own web server (under `/sandbox/`)
and talks to it over HTTP like to the real API, so every part of the bot runs as it would for
real. It is no open relay: its API answers only the bot's own key (`derive_api_key`, known to the
deployment's processes alone), sends callbacks only to the bot's own callback address, and keeps
a bounded number of tasks for a bounded time. Only its stem files (`/sandbox/files/`) are public.

Its parts: `contract` (paths, envelope, stems, outcomes, tasks, what record-info and callbacks
carry), `tasks` (the task lifecycle: expiry, completion, callbacks), `api` (routes, the key and
callback checks), `sound` (the stems' WAVs) and `observer` (what it tells whoever watches it:
requests, submits, polls, completions, callbacks).
"""

from bot.sandbox.api import SandboxApi
from bot.sandbox.contract import (
    ALL_STEMS,
    CALLBACK_EXCEPTION,
    CREATE_TASK_FAILED,
    CREDIT_PATH,
    DEFAULT_TASK_LIFETIME,
    ENDPOINT_PATHS,
    ENDPOINTS,
    FAILURE_MESSAGES,
    FAILURE_OUTCOMES,
    GENERATE_AUDIO_FAILED,
    GENERATION_PATH,
    MAX_TASKS,
    MODES,
    PENDING,
    PRICES,
    RECORD_PATH,
    SANDBOX_API_URL,
    SANDBOX_CREDITS,
    SANDBOX_PREFIX,
    STEM_LABELS,
    STEM_OUTCOMES,
    STEMS_2,
    STEMS_12,
    SUBMIT_PATH,
    SUCCESS,
    Refusal,
    SandboxTask,
    SubmitRequest,
    callback_block_reason,
    callback_payload,
    camel_key,
    derive_api_key,
    envelope,
    json_response,
    parse_stem_name,
    parse_submit,
    snake_key,
)
from bot.sandbox.observer import Call, CallbackAttempt, SandboxObserver, SubmitCall, Unobserved
from bot.sandbox.sound import stem_wav
from bot.sandbox.tasks import TaskBook

__all__ = [
    "ALL_STEMS",
    "CALLBACK_EXCEPTION",
    "CREATE_TASK_FAILED",
    "CREDIT_PATH",
    "DEFAULT_TASK_LIFETIME",
    "ENDPOINTS",
    "ENDPOINT_PATHS",
    "FAILURE_MESSAGES",
    "FAILURE_OUTCOMES",
    "GENERATE_AUDIO_FAILED",
    "GENERATION_PATH",
    "MAX_TASKS",
    "MODES",
    "PENDING",
    "PRICES",
    "RECORD_PATH",
    "SANDBOX_API_URL",
    "SANDBOX_CREDITS",
    "SANDBOX_PREFIX",
    "STEMS_2",
    "STEMS_12",
    "STEM_LABELS",
    "STEM_OUTCOMES",
    "SUBMIT_PATH",
    "SUCCESS",
    "Call",
    "CallbackAttempt",
    "Refusal",
    "SandboxApi",
    "SandboxObserver",
    "SandboxTask",
    "SubmitCall",
    "SubmitRequest",
    "TaskBook",
    "Unobserved",
    "callback_block_reason",
    "callback_payload",
    "camel_key",
    "derive_api_key",
    "envelope",
    "json_response",
    "parse_stem_name",
    "parse_submit",
    "snake_key",
    "stem_wav",
]
