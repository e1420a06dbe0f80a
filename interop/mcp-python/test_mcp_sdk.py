"""The Python MCP SDK (`mcp` on PyPI) against a dcr started with examples/mcp.toml.

interop/run.sh starts the server and sets:
  INTEROP_MCP_ISSUER  issuer of the dcr running examples/mcp.toml
  INTEROP_MCP_CONFIG  its configuration file (for `dcr clients show`)
  INTEROP_DCR         the dcr binary

The SDK's OAuthClientProvider runs when an MCP server answers 401: this test serves that MCP
server (401 with a WWW-Authenticate naming its protected resource metadata, and the metadata
naming dcr's issuer as authorization server), and stops in the redirect handler, where an MCP
host would send the user to the authorization endpoint.
"""

import asyncio
import json
import logging
import os
import subprocess
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.utils import create_client_registration_request, handle_registration_response
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthMetadata, OAuthToken

# The SDK logs the exception that stops each flow at the redirect.
logging.getLogger("mcp").setLevel(logging.CRITICAL)

ISSUER = os.environ.get("INTEROP_MCP_ISSUER", "")
CURSOR = "cursor://anysphere.cursor-mcp/oauth/callback"


class McpServer(BaseHTTPRequestHandler):
    """An MCP server that only asks for authorization (RFC 9728 metadata, 401 on /mcp)."""

    def log_message(self, *args):
        pass

    def _send(self, status, body=None, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        data = json.dumps(body).encode() if body is not None else b""
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path.startswith("/.well-known/oauth-protected-resource"):
            self._send(
                200,
                {"resource": f"{base}/mcp", "authorization_servers": [ISSUER], "scopes_supported": ["mcp:tools"]},
            )
        elif self.path == "/mcp":
            challenge = f'Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"'
            self._send(401, {"error": "invalid_token"}, [("WWW-Authenticate", challenge)])
        else:
            self._send(404, {})


class MemoryStorage:
    """TokenStorage as an MCP host implements it."""

    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Redirected(Exception):
    """Raised by the redirect handler: the test stops where the user would leave."""

    def __init__(self, url):
        super().__init__(url)
        self.url = url


def resolved(client_id):
    """What the host authorization server resolves: the client dcr stored."""
    out = subprocess.run(
        [os.environ["INTEROP_DCR"], "clients", "show", client_id, "--config", os.environ["INTEROP_MCP_CONFIG"]],
        check=True,
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "")},
    )
    return json.loads(out.stdout)


def metadata(redirect_uri, **extra):
    return OAuthClientMetadata(
        client_name="mcp (Python SDK) interop",
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
        **extra,
    )


class McpSdkRegistration(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not ISSUER:
            raise unittest.SkipTest("INTEROP_MCP_ISSUER is not set (run interop/run.sh)")
        cls.server = ThreadingHTTPServer(("127.0.0.1", 0), McpServer)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.mcp_url = f"http://127.0.0.1:{cls.server.server_address[1]}/mcp"

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()

    def flow(self, redirect_uri):
        """OAuthClientProvider from the 401 to the authorization redirect; returns (storage,
        the registration answer as dcr sent it, the authorization URL)."""
        storage = MemoryStorage()
        answers = []

        async def record(response):
            if response.request.method == "POST" and str(response.request.url) == f"{ISSUER}/reg":
                await response.aread()
                answers.append((response.status_code, response.json()))

        async def redirect_handler(url):
            raise Redirected(url)

        async def callback_handler():
            raise AssertionError("the flow must stop at the redirect")

        provider = OAuthClientProvider(
            server_url=self.mcp_url,
            client_metadata=metadata(redirect_uri),
            storage=storage,
            redirect_handler=redirect_handler,
            callback_handler=callback_handler,
        )

        async def run():
            async with httpx2.AsyncClient(auth=provider, event_hooks={"response": [record]}) as http:
                with self.assertRaises(Redirected) as stopped:
                    await http.get(self.mcp_url)
                return stopped.exception.url

        url = asyncio.run(run())
        self.assertEqual(len(answers), 1, "one registration")
        return storage, answers[0], urlparse(url)

    def check_flow(self, redirect_uri):
        storage, (status, body), url = self.flow(redirect_uri)
        self.assertEqual(status, 201)
        self.assertEqual(body["application_type"], "native")
        self.assertEqual(body["redirect_uris"], [redirect_uri])
        self.assertNotIn("client_secret", body)
        # The protected resource's scope, and offline_access (the SDK asks for it when the
        # authorization server advertises it and the client uses refresh tokens).
        self.assertEqual(body["scope"].split(" "), ["mcp:tools", "offline_access"])
        info = storage.client_info
        self.assertEqual(info.client_id, body["client_id"])
        self.assertEqual(info.application_type, "native")

        self.assertEqual(f"{url.scheme}://{url.netloc}{url.path}", "https://auth.example.com/authorize")
        query = parse_qs(url.query)
        self.assertEqual(query["client_id"], [info.client_id])
        self.assertEqual(query["redirect_uri"], [redirect_uri])
        self.assertEqual(query["code_challenge_method"], ["S256"])

        stored = resolved(info.client_id)
        self.assertEqual(stored["metadata"]["application_type"], "native")
        self.assertEqual(stored["metadata"]["redirect_uris"], [redirect_uri])

    def test_provider_registers_a_custom_scheme_client(self):
        self.check_flow(CURSOR)

    def test_provider_registers_a_loopback_client(self):
        self.check_flow("http://127.0.0.1:33418/callback")

    def test_registration_helpers_without_application_type(self):
        """The SDK's registration request and response handling, for a client that sends no
        application_type (the SDK itself always sends one, "native" by default)."""

        async def run(redirect_uri):
            async with httpx2.AsyncClient() as http:
                discovery = await http.get(f"{ISSUER}/.well-known/oauth-authorization-server")
                asm = OAuthMetadata.model_validate_json(discovery.content)
                self.assertEqual([str(m) for m in asm.code_challenge_methods_supported], ["S256"])
                request = create_client_registration_request(asm, metadata(redirect_uri), ISSUER)
                body = json.loads(request.content)
                self.assertEqual(body.pop("application_type"), "native")
                response = await http.post(str(request.url), json=body)
                self.assertEqual(response.status_code, 201)
                self.assertEqual(response.json()["application_type"], "native")
                return await handle_registration_response(response)

        for redirect_uri in [CURSOR, "http://127.0.0.1:45678/callback"]:
            info = asyncio.run(run(redirect_uri))
            self.assertEqual(info.application_type, "native")
            self.assertEqual([str(u) for u in info.redirect_uris], [redirect_uri])


if __name__ == "__main__":
    unittest.main()
