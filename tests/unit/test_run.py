"""`make run`'s start-up hint: a first command that works with the settings in force."""

from __future__ import annotations

from devtools.run import start_hint


def test_the_hint_without_a_token_is_a_plain_curl() -> None:
    hint = start_hint({})
    assert "curl -X POST localhost:8000/streams/demo/start\n" in hint
    assert "Flower on http://127.0.0.1:5555" in hint
    assert "Authorization" not in hint and "DS_TOKEN" not in hint


def test_the_hint_sends_the_api_token_by_name_never_by_value() -> None:
    hint = start_hint({"API_TOKEN": "s3cret-value", "PORT": "9000", "FLOWER_PORT": "6000"})
    assert 'curl -X POST localhost:9000/streams/demo/start -H "Authorization: Bearer ' \
           '$API_TOKEN"' in hint
    assert 'DS_URL=http://127.0.0.1:9000 DS_TOKEN="$API_TOKEN" ' in hint
    assert "Flower on http://127.0.0.1:6000" in hint
    assert "s3cret-value" not in hint
