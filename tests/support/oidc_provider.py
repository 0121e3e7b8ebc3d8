"""A small OpenID Connect provider for tests: discovery, JWKS, /authorize and /token on a free
loopback port, in a thread (stdlib http.server).

/authorize approves `provider.user` at once (no login form) and redirects back with a code
and the state; /token checks the client's secret, the redirect URI and the PKCE verifier, and
answers an RS256-signed ID token carrying the nonce. `id_token_overrides` changes claims of
the next ID tokens (a wrong audience, an expired token…) and `sign_with_rogue_key` signs them
with a key the JWKS does not publish, so tests can see the relying party refuse them.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.support.net import free_port


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class OidcProvider:
    """`with OidcProvider() as idp:` an OIDC provider at `idp.issuer` until the block ends."""

    def __init__(self, client_id: str = "postdesk", client_secret: str | None = None) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(16)
        self.key = RSAKey.generate_key(2048, {"kid": "test-key-1", "use": "sig", "alg": "RS256"}, private=True)
        self.rogue_key = RSAKey.generate_key(2048, {"kid": "test-key-1"}, private=True)
        self.user: dict = {"sub": "idp-user-1", "email": "olga@example.org", "email_verified": True,
                           "name": "Olga Provider"}
        self.id_token_overrides: dict = {}
        self.sign_with_rogue_key = False
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self._codes: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "OidcProvider":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def settings(self) -> dict[str, str]:
        """The [oidc] section that points Postdesk at this provider."""
        return {"issuer": self.issuer, "client_id": self.client_id, "client_secret": self.client_secret}

    def env(self) -> dict[str, str]:
        return {f"POSTDESK_OIDC__{k.upper()}": v for k, v in self.settings().items()}

    # ---- the endpoints ---------------------------------------------------------------------------

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile"],
        }

    def jwks(self) -> dict:
        return {"keys": [self.key.as_dict(private=False)]}

    def authorize(self, params: dict[str, str]) -> tuple[int, dict[str, str], dict]:
        """(status, headers, json body): a redirect back with code and state, or a 400."""
        self.authorize_requests.append(params)
        problems = [name for name, ok in (
            ("response_type", params.get("response_type") == "code"),
            ("client_id", params.get("client_id") == self.client_id),
            ("redirect_uri", bool(params.get("redirect_uri"))),
            ("scope", "openid" in params.get("scope", "").split()),
            ("state", bool(params.get("state"))),
            ("nonce", bool(params.get("nonce"))),
            ("code_challenge", params.get("code_challenge_method") == "S256" and bool(params.get("code_challenge"))),
        ) if not ok]
        if problems:
            return 400, {}, {"error": "invalid_request", "error_description": f"bad {', '.join(problems)}"}
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {"redirect_uri": params["redirect_uri"], "nonce": params["nonce"],
                                 "challenge": params["code_challenge"], "user": dict(self.user)}
        query = urlencode({"code": code, "state": params["state"]})
        return 302, {"Location": f"{params['redirect_uri']}?{query}"}, {}

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict]:
        self.token_requests.append(form)
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        if authorization.lower().startswith("basic "):
            client_id, _, client_secret = base64.b64decode(authorization[6:]).decode().partition(":")
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            return 401, {"error": "invalid_client"}
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # a code works once
        if form.get("grant_type") != "authorization_code" or grant is None:
            return 400, {"error": "invalid_grant"}
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        if _s256(form.get("code_verifier", "")) != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verifier does not match"}
        access_token = secrets.token_urlsafe(24)
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300,
                  "nonce": grant["nonce"], **grant["user"], **self.id_token_overrides}
        key = self.rogue_key if self.sign_with_rogue_key else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key-1"}, claims, key)
        return 200, {"access_token": access_token, "token_type": "Bearer", "expires_in": 300,
                     "id_token": id_token}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _answer(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._answer(200, provider.discovery())
                elif url.path == "/jwks":
                    self._answer(200, provider.jwks())
                elif url.path == "/authorize":
                    status, headers, body = provider.authorize(params)
                    self._answer(status, body, headers)
                else:
                    self._answer(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if urlsplit(self.path).path != "/token":
                    self._answer(404, {"error": "not_found"})
                    return
                status, body = provider.token(form, self.headers.get("Authorization", ""))
                self._answer(status, body)

        return Handler
