"""JSON log lines: one object per line, context attached, secrets and tokens scrubbed."""

from __future__ import annotations

import io
import logging
import time

import orjson
import pytest

from app.ops import logs
from app.ops.logs import REDACTED, bind, redact, secret_values


def capture(environ: dict[str, str] | None = None, names: list[str] | None = None
            ) -> tuple[logging.Logger, io.StringIO]:
    """Return a fresh logger that writes JSON lines into a buffer."""
    out = io.StringIO()
    logger = logging.getLogger(f"test.logs.{id(out)}")
    logger.propagate = False
    logger.handlers = [logging.StreamHandler(out)]
    logs.install(logger.handlers[0], secret_values(environ or {}, names))
    logger.setLevel(logging.DEBUG)
    return logger, out


def lines(out: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def test_one_json_object_per_line_with_extra_fields() -> None:
    logger, out = capture()
    logger.info("batch fetched\nsecond line", extra={"stream": "s1", "records": 3})
    [line] = lines(out)
    assert line["message"] == "batch fetched\nsecond line"
    assert line["level"] == "INFO" and line["stream"] == "s1" and line["records"] == 3
    assert line["ts"].endswith("Z")


def test_bound_context_is_on_every_line() -> None:
    logger, out = capture()
    with bind(stream="s1", version=7):
        with bind(page=2):
            logger.info("page sent")
        logger.info("batch done")
    logger.info("outside")
    first, second, third = lines(out)
    assert (first["stream"], first["version"], first["page"]) == ("s1", 7, 2)
    assert "page" not in second and second["version"] == 7
    assert "stream" not in third


@pytest.mark.parametrize("text", [
    "Authorization: Bearer abc.def.ghi", "authorization=Bearer abc.def.ghi",
    "{'Authorization': 'Basic dXNlcjpwYXNz'}", "X-API-Key: abc.def.ghi",
    "Private-Token: abc.def.ghi", "X-Auth-Token: abc.def.ghi", '{"access_token": "abc.def.ghi"}',
    "Cookie: session=abc.def.ghi"])
def test_authorization_headers_are_scrubbed(text: str) -> None:
    assert "abc.def.ghi" not in redact(text, []) and "dXNlcjpwYXNz" not in redact(text, [])
    assert REDACTED in redact(text, [])


@pytest.mark.parametrize("param", ["api_key", "token", "access_token", "client_secret",
                                   "apikey", "refresh_token", "password", "api_token",
                                   "private_token", "sig", "signature", "X-Amz-Signature",
                                   "X-Amz-Credential", "X-Amz-Security-Token", "key"])
def test_token_query_params_are_scrubbed(param: str) -> None:
    url = f"GET https://up.example/items?page=2&{param}=s3cr3tvalue&x=1"
    scrubbed = redact(url, [])
    assert "s3cr3tvalue" not in scrubbed
    assert f"{param}={REDACTED}" in scrubbed and "page=2" in scrubbed and "x=1" in scrubbed


def test_url_passwords_are_scrubbed() -> None:
    assert redact("redis://:hunter22@10.0.0.5:6379/0", []) == \
        f"redis://:{REDACTED}@10.0.0.5:6379/0"


def test_secret_env_values_are_scrubbed_wherever_they_appear() -> None:
    environ = {"API_TOKEN": "tok-AAAA-1111", "UPSTREAM_PASSWORD": "pw-BBBB-2222",
               "MY_CUSTOM": "custom-CCCC", "HOME": "/root-dir", "SHORT_TOKEN": "abc"}
    secrets = secret_values(environ, ["MY_CUSTOM"])
    assert set(secrets) == {"tok-AAAA-1111", "pw-BBBB-2222", "custom-CCCC"}
    logger, out = capture(environ, ["MY_CUSTOM"])
    logger.warning("sent tok-AAAA-1111 and %s and custom-CCCC to /root-dir", "pw-BBBB-2222",
                   extra={"header": "x tok-AAAA-1111"})
    [line] = lines(out)
    text = orjson.dumps(line).decode()
    for secret in secrets:
        assert secret not in text
    assert "/root-dir" in line["message"]


def test_exceptions_are_scrubbed() -> None:
    logger, out = capture({"CLIENT_SECRET": "very-secret-value"})
    try:
        raise RuntimeError("failed with very-secret-value")
    except RuntimeError:
        logger.exception("fetch failed")
    [line] = lines(out)
    assert "very-secret-value" not in line["exc"] and "RuntimeError" in line["exc"]


def test_task_fields_come_from_the_task_arguments() -> None:
    from tasks import ingest, protocol

    fields = logs.task_fields(ingest.page, ("s1", 4, "tok", 2, protocol.pack([])), {})
    assert fields == {"stream": "s1", "version": 4, "page": 2}


def test_plain_pairs_stay_and_long_lines_scrub_fast() -> None:
    line = "batch fetched stream=orders version=12 pages=3 records=25 stop=no_next kind=auth"
    assert redact(line, []) == line
    long = "x" * 200_000 + " token=abc " + "a." * 100_000
    started = time.monotonic()
    assert "token=abc" not in redact(long, [])
    assert time.monotonic() - started < 1.0
