"""Sign-in through an OpenID Connect provider: authorisation code flow with PKCE, state and
nonce, the ID token checked against the provider's keys (signature, iss, aud, exp, nonce),
and the person linked to a contact by subject or by a verified address.

Configured by [oidc] issuer / client_id / client_secret; an empty issuer switches it off.
The pending login (state, nonce, PKCE verifier) travels in a short-lived signed value that
the portal keeps in a cookie, so any web process can finish a login another one started.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from authlib.integrations.httpx_client.oauth2_client import httpx2 as authlib_http  # httpx2, or httpx as fallback
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts import InvalidInput, normalise_email
from core.config import Settings
from core.errors import PostdeskError, SenderError
from core.models import Contact, utcnow
from core.sessions import end_all_sessions
from core.tickets import contact_for

log = logging.getLogger(__name__)
PENDING_SECONDS = 600
METADATA_SECONDS = 3600
TIMEOUT_SECONDS = 10.0
CLOCK_LEEWAY = 60


class OidcError(PostdeskError):
    """The provider could not be reached or answered something we must not trust."""


class OidcRefused(SenderError):
    """The provider's answer is fine, but it does not let this person in here (message says why)."""


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class PendingLogin:
    state: str
    nonce: str
    code_verifier: str
    next_path: str
    started: int


@dataclass(frozen=True)
class Identity:
    subject: str
    email: str
    email_verified: bool
    name: str


def oidc_config(settings: Settings) -> OidcConfig | None:
    """The [oidc] settings, or None when sign-in through a provider is switched off."""
    section = getattr(settings, "oidc", None)
    issuer = (getattr(section, "issuer", "") or "").rstrip("/")
    if not issuer:
        return None
    return OidcConfig(issuer, getattr(section, "client_id", ""), getattr(section, "client_secret", ""))


_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_cache_lock = threading.Lock()


def provider_metadata(cfg: OidcConfig, refresh: bool = False) -> dict[str, Any]:
    """The provider's discovery document (cached for an hour); its issuer must be the configured one."""
    with _cache_lock:
        cached = _cache.get(cfg.issuer)
    if cached and not refresh and cached[0] > time.monotonic():
        return cached[1]
    metadata = _get_json(f"{cfg.issuer}/.well-known/openid-configuration")
    if metadata.get("issuer", "").rstrip("/") != cfg.issuer:
        raise OidcError(f"the provider names itself {metadata.get('issuer')!r}, not {cfg.issuer!r}")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not metadata.get(key):
            raise OidcError(f"the provider's discovery document has no {key}")
    with _cache_lock:
        _cache[cfg.issuer] = (time.monotonic() + METADATA_SECONDS, metadata)
    return metadata


def _get_json(url: str) -> dict[str, Any]:
    try:
        response = httpx.get(url, timeout=TIMEOUT_SECONDS, headers={"Accept": "application/json"})
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OidcError(f"cannot read {url}: {exc}") from None
    if not isinstance(data, dict):
        raise OidcError(f"{url} did not answer a JSON object")
    return data


def _client(cfg: OidcConfig, redirect_uri: str) -> OAuth2Client:
    return OAuth2Client(client_id=cfg.client_id, client_secret=cfg.client_secret, scope="openid email profile",
                        redirect_uri=redirect_uri, code_challenge_method="S256", timeout=TIMEOUT_SECONDS)


def begin_login(cfg: OidcConfig, redirect_uri: str, next_path: str) -> tuple[str, PendingLogin]:
    """The provider URL to send the browser to, and what must be remembered until it comes back."""
    metadata = provider_metadata(cfg)
    pending = PendingLogin(state=generate_token(32), nonce=generate_token(32), code_verifier=generate_token(64),
                           next_path=next_path, started=int(time.time()))
    with _client(cfg, redirect_uri) as client:
        url, _ = client.create_authorization_url(metadata["authorization_endpoint"], state=pending.state,
                                                 code_verifier=pending.code_verifier, nonce=pending.nonce)
    return url, pending


def complete_login(cfg: OidcConfig, pending: PendingLogin, params: Mapping[str, str], redirect_uri: str) -> Identity:
    """Exchange the code the provider sent back for a checked ID token; OidcRefused or OidcError otherwise."""
    if params.get("error"):
        raise OidcRefused(f"The sign-in provider answered: {params.get('error_description') or params['error']}.")
    if not hmac.compare_digest(params.get("state", ""), pending.state):
        raise OidcRefused("This sign-in did not start here, or it was started again in another tab; please retry.")
    if not params.get("code"):
        raise OidcRefused("The sign-in provider sent no authorisation code; please retry.")
    metadata = provider_metadata(cfg)
    try:
        with _client(cfg, redirect_uri) as client:
            token = client.fetch_token(metadata["token_endpoint"], grant_type="authorization_code",
                                       code=params["code"], code_verifier=pending.code_verifier,
                                       redirect_uri=redirect_uri)
    except (OAuthError, authlib_http.HTTPError, ValueError) as exc:
        raise OidcError(f"token request failed: {type(exc).__name__}: {exc}") from None
    if not token.get("id_token"):
        raise OidcError("the token answer carries no id_token")
    claims = _checked_id_token(cfg, metadata, token, pending.nonce)
    return Identity(subject=str(claims["sub"]), email=str(claims.get("email") or ""),
                    email_verified=claims.get("email_verified") in (True, "true"),
                    name=str(claims.get("name") or "")[:200])


def _checked_id_token(cfg: OidcConfig, metadata: dict[str, Any], token: Mapping[str, Any], nonce: str) -> CodeIDToken:
    """The ID token's claims after checking signature (provider's JWKS), iss, aud, exp, iat, nonce, azp, at_hash."""
    registry = JWSRegistry(algorithms=metadata.get("id_token_signing_alg_values_supported") or ["RS256"])
    try:
        try:
            decoded = jwt.decode(token["id_token"], KeySet.import_key_set(_get_json(metadata["jwks_uri"])),
                                 registry=registry)
        except InvalidKeyIdError:  # keys rotated since the discovery document was cached
            decoded = jwt.decode(token["id_token"], KeySet.import_key_set(
                _get_json(provider_metadata(cfg, refresh=True)["jwks_uri"])), registry=registry)
        claims = CodeIDToken(decoded.claims, decoded.header,
                             {"iss": {"essential": True, "value": cfg.issuer},
                              "aud": {"essential": True, "value": cfg.client_id}},
                             {"nonce": nonce, "client_id": cfg.client_id, "access_token": token.get("access_token")})
        claims.validate(leeway=CLOCK_LEEWAY)
    except (JoseError, ValueError) as exc:
        raise OidcError(f"ID token refused: {type(exc).__name__}: {exc}") from None
    return claims


def subject_key(issuer: str, subject: str) -> str:
    """What contact.oidc_subject stores: a subject is only unique at its issuer."""
    key = f"{issuer}#{subject}"
    return key if len(key) <= 255 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def account_for_identity(session: Session, cfg: OidcConfig, identity: Identity) -> Contact:
    """The contact this provider identity signs in as: linked before, or found (or created) by a verified address."""
    key = subject_key(cfg.issuer, identity.subject)
    contact = session.scalar(select(Contact).where(Contact.oidc_subject == key))
    if contact is not None:
        return contact
    if not identity.email or not identity.email_verified:
        raise OidcRefused("Your sign-in provider did not confirm an email address, so no account here can be "
                          "linked to it. Sign in with your password, or ask your provider to confirm your address.")
    try:
        address = normalise_email(identity.email)
    except InvalidInput:
        raise OidcRefused("Your sign-in provider gave an email address we cannot use.") from None
    contact = contact_for(session, address, identity.name)
    if contact.oidc_subject and contact.oidc_subject != key:
        raise OidcRefused("This address is already linked to another sign-in at your provider.")
    if contact.email_verified_at is None and contact.password_hash:
        # A password set before anyone proved the mailbox may be an attacker's (account pre-hijacking).
        contact.password_hash = None
        end_all_sessions(session, contact.id)
        log.info("contact %s: unconfirmed password dropped on linking to the provider", contact.id)
    contact.oidc_subject = key
    if not contact.name and identity.name:
        contact.name = identity.name
    contact.email_verified_at = contact.email_verified_at or utcnow()  # the provider confirmed it
    log.info("contact %s linked to provider %s", contact.id, cfg.issuer)
    return contact


def seal_pending(secret: str, pending: PendingLogin) -> str:
    """The pending login as a signed cookie value (it holds no secret of ours, but must not be forged)."""
    body = base64.urlsafe_b64encode(json.dumps(asdict(pending), separators=(",", ":")).encode()).decode()
    return f"{body}.{_signature(secret, body)}"


def open_pending(secret: str, value: str | None) -> PendingLogin | None:
    """The pending login a cookie value carries, or None when it is missing, forged or older than 10 minutes."""
    body, _, sig = (value or "").rpartition(".")
    if not body or not hmac.compare_digest(sig, _signature(secret, body)):
        return None
    try:
        pending = PendingLogin(**json.loads(base64.urlsafe_b64decode(body.encode())))
    except (ValueError, TypeError):
        return None
    return pending if 0 <= time.time() - pending.started <= PENDING_SECONDS else None


def _signature(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), f"oidc-pending:{body}".encode(), hashlib.sha256).hexdigest()
