"""Authentication to the upstream: secrets read from the worker's environment at fetch time.

`Authenticator.apply` adds the credentials to one request; `refresh` is called once on a
401 and, for OAuth2 client credentials, drops the cached token and fetches a new one.
Tokens are shared by the workers through `app.store.oauth_tokens` (encrypted). Secrets never
appear in an error, a log line or a URL shown to anyone, are read only from variables named
with ``SECRET_ENV_PREFIX``, and go only to the source's origin and the token URL (the
fetcher and `transport` see to that).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import Mapping
from typing import Any

import requests

from app.exceptions import UpstreamError
from app.hosts import HostPolicy
from app.redaction import url as redact
from app.store.oauth_tokens import TokenCache
from config import defaults
from config.source_auth import ApiKeyAuth, Auth, BasicAuth, BearerAuth, OAuth2ClientCredentials
from tasks.upstream import reasons

log = logging.getLogger(__name__)
DEFAULT_TOKEN_LIFETIME = 3600


def secret_from_env(environ: Mapping[str, str], name: str, prefix: str) -> str:
    """Return the value of env var `name`, or fail the batch with kind auth.

    Only variables whose name starts with `prefix` (``SECRET_ENV_PREFIX``) hold upstream
    secrets: a definition naming another one (``REDIS_URL``, ``API_TOKEN``) is refused
    here too, whatever let it in.
    """
    if not name.startswith(prefix):
        raise UpstreamError("auth", f"environment variable {name} is not a secret variable: "
                            f"secret names start with {prefix} (SECRET_ENV_PREFIX)")
    value = environ.get(name)
    if not value:
        raise UpstreamError("auth", f"environment variable {name} is not set on the worker")
    return value


def secret_params(auth: Auth | None) -> list[str]:
    """Return the query parameter names that carry a secret of `auth`."""
    return [auth.name] if isinstance(auth, ApiKeyAuth) and auth.location == "query" else []


class Authenticator:
    """Adds one stream's credentials to its requests."""

    def __init__(self, auth: Auth | None, *, session: requests.Session, policy: HostPolicy,
                 stream: str, tokens: TokenCache | None, timeout: tuple[float, float],
                 environ: Mapping[str, str] | None = None,
                 secret_prefix: str = defaults.SECRET_ENV_PREFIX) -> None:
        self.auth = auth
        self.session = session
        self.policy = policy
        self.stream = stream
        self.tokens = tokens
        self.timeout = timeout
        self.environ = os.environ if environ is None else environ
        self.secret_prefix = secret_prefix
        self._token: str | None = None

    @property
    def secret_params(self) -> list[str]:
        """Return the query parameter names that carry a secret."""
        return secret_params(self.auth)

    def _secret(self, name: str) -> str:
        return secret_from_env(self.environ, name, self.secret_prefix)

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        """Add the credentials to a request's headers or query parameters."""
        auth = self.auth
        if isinstance(auth, BearerAuth):
            headers["Authorization"] = f"Bearer {self._secret(auth.token_env)}"
        elif isinstance(auth, ApiKeyAuth):
            value = auth.prefix + self._secret(auth.value_env)
            (headers if auth.location == "header" else params)[auth.name] = value
        elif isinstance(auth, BasicAuth):
            user = (self._secret(auth.username_env) if auth.username_env
                    else auth.username)
            password = self._secret(auth.password_env)
            pair = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        elif isinstance(auth, OAuth2ClientCredentials):
            headers["Authorization"] = f"Bearer {self._oauth_token(auth)}"

    def refresh(self) -> bool:
        """Drop a rejected OAuth2 token and get a new one; False when nothing can change."""
        auth = self.auth
        if not isinstance(auth, OAuth2ClientCredentials) or self._token is None:
            return False
        secret = self._secret(auth.client_secret_env)
        if self.tokens is not None:
            self.tokens.drop(self.stream, self._fingerprint(auth), secret, self._token)
        self._token = None
        log.info("oauth2 token rejected, refreshing stream=%s", self.stream)
        self._token = self._request_token(auth, secret)
        return True

    def _oauth_token(self, auth: OAuth2ClientCredentials) -> str:
        if self._token is not None:
            return self._token
        secret = self._secret(auth.client_secret_env)
        cached = None
        if self.tokens is not None:
            cached = self.tokens.get(self.stream, self._fingerprint(auth), secret)
        self._token = cached or self._request_token(auth, secret)
        return self._token

    def _fingerprint(self, auth: OAuth2ClientCredentials) -> str:
        text = "\n".join([auth.token_url, self._client_id(auth), " ".join(auth.scopes)])
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _client_id(self, auth: OAuth2ClientCredentials) -> str:
        if auth.client_id_env:
            return self._secret(auth.client_id_env)
        return auth.client_id

    def _request_token(self, auth: OAuth2ClientCredentials, secret: str) -> str:
        """Run the client credentials grant; cache and return the access token."""
        form = {"grant_type": "client_credentials", **auth.extra_params}
        if auth.scopes:
            form["scope"] = " ".join(auth.scopes)
        client_id = self._client_id(auth)
        basic = None
        if auth.client_auth == "basic":
            basic = (client_id, secret)
        else:
            form.update(client_id=client_id, client_secret=secret)
        body = self._post_token(auth.token_url, form, basic)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise UpstreamError("auth", "token endpoint answered without access_token",
                                url=redact(auth.token_url))
        lifetime = body.get("expires_in") or DEFAULT_TOKEN_LIFETIME
        if self.tokens is not None and isinstance(lifetime, int | float):
            self.tokens.put(self.stream, self._fingerprint(auth), secret, token,
                            float(lifetime) - auth.expiry_margin_seconds)
        return token

    def _post_token(self, url: str, form: dict[str, str], basic: tuple[str, str] | None
                    ) -> Any:
        shown = redact(url)
        self.policy.check_url(url, resolve=None)
        try:
            # Never redirected: the client secret would follow (a 307 resends the form).
            response = self.session.post(url, data=form, auth=basic, timeout=self.timeout,
                                         headers={"Accept": "application/json"},
                                         allow_redirects=False)
        except UpstreamError as exc:
            exc.url = shown
            raise
        except requests.RequestException as exc:
            raise UpstreamError("auth", f"token endpoint unreachable: {type(exc).__name__}",
                                url=shown) from None
        if response.is_redirect:
            raise UpstreamError("auth", f"token endpoint answered {response.status_code} (a "
                                "redirect): credentials are sent to token_url only; set the "
                                "final URL", status=response.status_code, url=shown)
        if response.status_code >= 400:
            said = reasons.words(response, reasons.secrets_of(self.auth, self.environ))
            raise UpstreamError("auth", f"token endpoint answered {response.status_code}{said}",
                                status=response.status_code, url=shown)
        try:
            return response.json()
        except ValueError:
            raise UpstreamError("auth", "token endpoint answer is not JSON", url=shown) from None
