"""The command line's HTTP client: one session, the bearer token, and every failure turned
into a `CommandError` carrying the API's message and the exit code of what happened.

    code  meaning        when
    0     done
    1     failed         a 5xx other than 502-504, an answer that is not the API's
    2     usage          click: an unknown option, a missing argument
    3     not found      404: no such stream or batch, no complete batch yet
    4     refused        400, 405, 409, 410, 413, 415, 422; a file `apply` cannot read
    5     unavailable    no answer (refused, timed out), 429, 502, 503, 504
    6     auth           401 (no or malformed token), 403 (wrong token)
    7     not published  a batch waited for ended otherwise, or the wait gave up
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

OK, FAILED, USAGE, NOT_FOUND, REFUSED, UNAVAILABLE, AUTH, NOT_PUBLISHED = range(8)
DEFAULT_URL = "http://127.0.0.1:8000"
# Seconds to connect, and to wait for the next bytes of an answer (an export's first bytes
# can take a while: a CSV export reads the whole version for its columns first).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
EXPORT_READ_TIMEOUT = 600.0
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


class CommandError(Exception):
    """A command failed: `message` for people, `exit_code` for scripts, `error` as the API
    answered it (``{"code", "message", "details"}``) when it answered."""

    def __init__(self, message: str, exit_code: int, error: dict[str, Any] | None = None,
                 status: int | None = None, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.error = error or {"code": "client_error", "message": message, "details": {}}
        self.status = status
        self.result = result or {}  # what the command got done before it failed


def exit_code_of(status: int) -> int:
    """Return the exit code of an HTTP error status."""
    if status in (401, 403):
        return AUTH
    if status == 404:
        return NOT_FOUND
    if status in (429, 502, 503, 504):
        return UNAVAILABLE
    return REFUSED if 400 <= status < 500 else FAILED


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    match = _ERRNO.search(str(exc))
    return match.group(1).strip() if match else type(exc).__name__


class Client:
    """Sends requests to the API at `url` with `token`; raises CommandError on failure."""

    def __init__(self, url: str, token: str = "") -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["User-Agent"] = "data-streams-cli"
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: Any) -> Any:
        """GET `path` and return its JSON answer."""
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return its JSON answer (None for an empty one)."""
        response = self._send(method, path, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), **kwargs)
        return response.json() if response.content else None

    @contextmanager
    def download(self, path: str, **params: Any) -> Iterator[requests.Response]:
        """GET `path` as a stream of bytes; the answer is closed on leaving."""
        response = self._send("GET", path, params=params, stream=True,
                              timeout=(CONNECT_TIMEOUT, EXPORT_READ_TIMEOUT))
        with response:
            yield response

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.http.request(method, self.url + path, **kwargs)
        except requests.RequestException as exc:
            raise CommandError(f"cannot reach {self.url}: {_reason(exc)}", UNAVAILABLE,
                               {"code": "unreachable", "message": _reason(exc),
                                "details": {"url": self.url}}) from None
        if response.status_code >= 400:
            raise _api_error(response)
        return response


def _api_error(response: requests.Response) -> CommandError:
    """Return the error of a failed answer: the API's own message when it sent one."""
    status = response.status_code
    try:
        error = response.json()["error"]
        message = str(error["message"])
    except (ValueError, KeyError, TypeError):
        text = response.text.strip().splitlines()
        message = f"HTTP {status} {response.reason}" + (f": {text[0][:200]}" if text else "")
        error = {"code": f"http_{status}", "message": message, "details": {}}
    return CommandError(message, exit_code_of(status), error, status)
