"""Settings from the environment: defaults that follow other settings."""

from __future__ import annotations

from config.settings import load_settings


def test_the_flower_link_follows_flower_port() -> None:
    assert load_settings({})["UI_FLOWER_URL"] == "http://127.0.0.1:5555"
    assert load_settings({"FLOWER_PORT": "6555"})["UI_FLOWER_URL"] == "http://127.0.0.1:6555"
    explicit = {"FLOWER_PORT": "6555", "UI_FLOWER_URL": "https://flower.example.org"}
    assert load_settings(explicit)["UI_FLOWER_URL"] == "https://flower.example.org"
