"""REDIS_URL and STORE_URL: the forms each role accepts, the errors at start-up, and what
Celery and RedBeat are told for a Sentinel group."""

from __future__ import annotations

import pytest

from config import redis_url
from config.settings import load_settings


def test_store_url_defaults_to_the_broker() -> None:
    settings = load_settings({"REDIS_URL": "redis://10.0.0.5:6380/2"})
    assert settings["STORE_URL"] == "redis://10.0.0.5:6380/2"
    assert settings["CELERY"]["broker_url"] == "redis://10.0.0.5:6380/2"
    assert settings["CELERY"]["redbeat_redis_url"] == "redis://10.0.0.5:6380/2"


def test_a_cluster_as_store() -> None:
    url = "redis+cluster://:s3cret@h1:7000,h2:7001,h3:7002"
    settings = load_settings({"REDIS_URL": "redis://b:6379/0", "STORE_URL": url})
    parsed = redis_url.parse(settings["STORE_URL"], "STORE_URL")
    assert parsed.kind == redis_url.CLUSTER and not parsed.tls
    assert parsed.hosts == (("h1", 7000), ("h2", 7001), ("h3", 7002))
    assert parsed.password == "s3cret" and parsed.db == 0
    assert redis_url.parse("rediss+cluster://h1:7000", "STORE_URL").tls


def test_a_cluster_as_broker_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError) as error:
        load_settings({"REDIS_URL": "redis+cluster://:pw@h1:7000,h2:7001"})
    message = str(error.value)
    assert message.startswith("REDIS_URL=redis+cluster://:***@h1:7000")
    assert "no cluster transport" in message and "STORE_URL" in message
    assert "pw" not in message


@pytest.mark.parametrize(("url", "says"), [
    ("sentinel://h1:26379;sentinel://h2:26379", "cannot name the Sentinel service"),
    ("redis+sentinel://h1:26379,h2:26379", "name the Sentinel service"),
    ("redis+sentinel://h1:26379/mymaster/x", "must be /db"),
    ("memcached://h1:11211", "unknown scheme 'memcached'"),
    ("redis://h1:6379,h2:6379/0", "one Redis has one host"),
    ("redis://h1/0", "is not host:port"),
    ("redis+cluster://h1:7000/3", "only database 0"),
])
def test_malformed_urls_say_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        load_settings({"REDIS_URL": "redis://b:6379/0", "STORE_URL": url})


def test_a_sentinel_broker_for_celery_and_redbeat() -> None:
    url = "redis+sentinel://:pw@s1:26379,s2:26380/mymaster/3?sentinel_password=spw"
    celery = load_settings({"REDIS_URL": url})["CELERY"]
    assert celery["broker_url"] == ("sentinel://:pw@s1:26379/3;sentinel://:pw@s2:26380/3")
    options = celery["broker_transport_options"]
    assert options["master_name"] == "mymaster"
    assert options["sentinel_kwargs"] == {"password": "spw"}
    assert options["visibility_timeout"] == 3600  # merged with the other transport options
    assert celery["redbeat_redis_url"] == "redis-sentinel://s1:26379/3"
    redbeat = celery["redbeat_redis_options"]
    assert redbeat["sentinels"] == [("s1", 26379), ("s2", 26380)]
    assert (redbeat["service_name"], redbeat["db"], redbeat["password"]) == ("mymaster", 3, "pw")
