"""What can carry a secret: names, URLs, and the definition answered to readers."""

from __future__ import annotations

import orjson
import pytest

from app.redaction import REDACTED, definition, secret_name, url
from config.streams import StreamDefinition


@pytest.mark.parametrize("name", [
    "api_key", "apikey", "X-API-Key", "api_token", "private_token", "access_token", "token",
    "refresh_token", "client_secret", "password", "passwd", "sig", "signature",
    "X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Credential", "Authorization",
    "Proxy-Authorization", "Cookie", "session_id", "key", "code", "auth", "X-Auth-Token",
    "client_assertion"])
def test_secret_names(name: str) -> None:
    assert secret_name(name)


@pytest.mark.parametrize("name", ["page", "limit", "offset", "author", "monkey", "design",
                                  "keyword", "cursor", "Accept", "per_page", "authority"])
def test_plain_names(name: str) -> None:
    assert not secret_name(name)


def test_url_loses_user_info_and_secret_query_values() -> None:
    shown = url("https://ann:pw-1@api.example/x?page=2&X-Amz-Signature=abc&sig=def&k=ghi",
                ["k"])
    assert shown == (f"https://{REDACTED}@api.example/x?page=2&X-Amz-Signature={REDACTED}"
                     f"&sig={REDACTED}&k={REDACTED}")


def test_definition_shows_no_secret_material_and_keeps_the_rest() -> None:
    model = StreamDefinition.model_validate({
        "source": {"url": "http://u:p-secret@up.example/items?access_token=t-secret&n=1",
                   "params": {"api_token": "a-secret", "limit": 5},
                   "headers": {"Private-Token": "h-secret", "X-Tenant": "x-secret",
                               "Accept": "application/json"},
                   "method": "POST", "body": {"filter": {"password": "b-secret", "n": 2}},
                   "auth": {"type": "oauth2_client_credentials",
                            "token_url": "https://id.example/token?secret=q-secret",
                            "client_secret_env": "DS_SECRET_X",
                            "extra_params": {"audience": "api", "client_assertion": "e-s"}}},
        "middleware": [{"type": "custom", "path": "pkg.mod.fn",
                        "options": {"webhook_token": "o-secret", "size": 3}}],
        "key": "id"})
    shown = definition(model.model_dump(mode="json"))
    text = orjson.dumps(shown).decode()
    assert not [s for s in ("p-secret", "t-secret", "a-secret", "h-secret", "x-secret",
                            "b-secret", "q-secret", "e-s", "o-secret") if s in text]
    source = shown["source"]
    assert source["url"] == f"http://{REDACTED}@up.example/items?access_token={REDACTED}&n=1"
    assert source["params"] == {"api_token": REDACTED, "limit": 5}
    assert source["headers"]["Accept"] == "application/json"
    assert source["body"] == {"filter": {"password": REDACTED, "n": 2}}
    assert source["auth"]["client_secret_env"] == "DS_SECRET_X"
    assert source["auth"]["extra_params"] == {"audience": "api", "client_assertion": REDACTED}
    assert shown["middleware"][0]["options"] == {"webhook_token": REDACTED, "size": 3}
    assert shown["key"] == "id"


def test_the_query_param_an_api_key_travels_in_is_redacted_whatever_its_name() -> None:
    model = StreamDefinition.model_validate({"source": {
        "url": "http://up.example/items?q=1&zz=secret-in-url", "params": {"zz": "other"},
        "auth": {"type": "api_key", "in": "query", "name": "zz",
                 "value_env": "DS_SECRET_K"}}})
    source = definition(model.model_dump(mode="json"))["source"]
    assert source["url"].endswith(f"zz={REDACTED}") and source["params"] == {"zz": REDACTED}
