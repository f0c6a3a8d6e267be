"""`make test`'s runner: the alert-rule steps fail loudly when promtool cannot be had."""

from __future__ import annotations

import pytest

from devtools import test as runner


@pytest.mark.parametrize("apt_usable", [False, True])
def test_a_missing_promtool_fails_the_run(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str],
                                          apt_usable: bool) -> None:
    installs: list[list[str]] = []

    def failing_install(self: runner.Apt, title: str, packages: list[str], *extra: str) -> bool:
        installs.append(packages)
        return False

    monkeypatch.setattr(runner.shutil, "which", lambda name: None)
    monkeypatch.setattr(runner.Apt, "usable", staticmethod(lambda: apt_usable))
    monkeypatch.setattr(runner.Apt, "install", failing_install)
    monkeypatch.setattr(runner, "ensure_chromium", lambda apt: None)

    assert runner.main([]) == 1

    assert "promtool is missing and could not be installed" in capsys.readouterr().out
    assert installs == ([["prometheus"]] if apt_usable else [])
