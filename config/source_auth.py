"""Schema of a stream's `source.auth`: how the worker authenticates to the upstream.

Secrets are never part of a definition: each secret field names an environment variable
of the worker (`token_env`, `password_env`, `client_secret_env`, ...), read at fetch time.
A definition can therefore be stored, listed and returned without leaking anything.
Only variables named with the server's secret prefix (``SECRET_ENV_PREFIX``, default
``DS_SECRET_``) may be named, so a definition cannot make the worker send ``REDIS_URL``
or ``API_TOKEN`` upstream: the PUT view passes the prefix in the validation context
(`SECRET_PREFIX_CONTEXT`), and the worker checks it again when it reads the variable.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

# Key of the validation context holding the required prefix of secret variables (a str).
SECRET_PREFIX_CONTEXT = "secret_env_prefix"


def _secret_variable(name: str, info: ValidationInfo) -> str:
    prefix = info.context.get(SECRET_PREFIX_CONTEXT) if isinstance(info.context, dict) else None
    if prefix is not None and not name.startswith(prefix):
        raise ValueError(f"must name a secret variable: names start with {prefix!r} "
                         "(SECRET_ENV_PREFIX)")
    return name


EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$",
                               description="Name of an environment variable of the worker; "
                                           "it must start with SECRET_ENV_PREFIX "
                                           "(default DS_SECRET_)."),
                    AfterValidator(_secret_variable)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BearerAuth(_Strict):
    """Send ``Authorization: Bearer <token>``."""

    type: Literal["bearer"]
    token_env: EnvName


class ApiKeyAuth(_Strict):
    """Send an API key as a header or as a query parameter."""

    type: Literal["api_key"]
    name: str = Field(min_length=1, max_length=128,
                      description="Header or query parameter name, e.g. X-API-Key, api_key.")
    location: Literal["header", "query"] = Field(default="header", alias="in")
    value_env: EnvName
    prefix: str = Field(default="", max_length=64,
                        description="Text before the key, e.g. 'Token ' for a header.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              serialize_by_alias=True)


class BasicAuth(_Strict):
    """Send HTTP basic credentials."""

    type: Literal["basic"]
    username: str = Field(default="", max_length=256)
    username_env: EnvName | None = None
    password_env: EnvName


class OAuth2ClientCredentials(_Strict):
    """Get a token by the OAuth 2.0 client credentials grant; cache it, shared by workers."""

    type: Literal["oauth2_client_credentials"]
    token_url: str = Field(min_length=1, max_length=2048)
    client_id: str = Field(default="", max_length=512)
    client_id_env: EnvName | None = None
    client_secret_env: EnvName
    scopes: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=64)
    client_auth: Literal["basic", "body"] = Field(
        default="basic", description="Send the client credentials as basic auth or in the form.")
    extra_params: dict[str, str] = Field(default_factory=dict, max_length=32,
                                         description="Extra token request fields, e.g. audience.")
    expiry_margin_seconds: int = Field(default=30, ge=0, le=3600)

    @field_validator("token_url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError("token_url must start with http:// or https://")
        return url


Auth = Annotated[BearerAuth | ApiKeyAuth | BasicAuth | OAuth2ClientCredentials,
                 Field(discriminator="type")]
