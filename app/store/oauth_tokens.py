"""OAuth2 access tokens shared by every worker of a stream, encrypted at rest.

One string per stream (`StreamKeys.oauth_token`), PX = the token's lifetime less a margin.
The value is a Fernet token whose key is derived from the client secret (HKDF-SHA256), so
only a process that has the secret in its environment can read the access token; the
payload also carries a fingerprint of the token URL, client id and scopes, so a token
cached for an older definition is never used.
"""

from __future__ import annotations

import base64

import orjson
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis import Redis

from app.store.keys import StreamKeys

_INFO = b"data-streams oauth2 token cache v1"


def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


class TokenCache:
    """Reads and writes the cached access token of each stream."""

    def __init__(self, connection: Redis, prefix: str) -> None:
        self.connection = connection
        self.prefix = prefix

    def get(self, stream: str, fingerprint: str, secret: str) -> str | None:
        """Return the cached token for this fingerprint, or None."""
        raw = self.connection.get(StreamKeys(self.prefix, stream).oauth_token)
        if not raw:
            return None
        try:
            payload = orjson.loads(_fernet(secret).decrypt(str(raw).encode()))
        except (InvalidToken, orjson.JSONDecodeError):
            return None
        if payload.get("fp") != fingerprint:
            return None
        return str(payload["token"])

    def put(self, stream: str, fingerprint: str, secret: str, token: str,
            ttl_seconds: float) -> None:
        """Cache `token` for `ttl_seconds` (nothing is cached for a non-positive ttl)."""
        ttl_ms = int(ttl_seconds * 1000)
        if ttl_ms <= 0:
            return
        body = _fernet(secret).encrypt(orjson.dumps({"fp": fingerprint, "token": token}))
        self.connection.set(StreamKeys(self.prefix, stream).oauth_token, body.decode(),
                            px=ttl_ms)

    def drop(self, stream: str, fingerprint: str, secret: str, token: str) -> None:
        """Forget the cached token if it is still `token` (a 401 said it is no good)."""
        if self.get(stream, fingerprint, secret) == token:
            self.connection.delete(StreamKeys(self.prefix, stream).oauth_token)
