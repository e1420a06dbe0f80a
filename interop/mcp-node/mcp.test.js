// The TypeScript MCP SDK (@modelcontextprotocol/sdk) against a dcr started with
// examples/mcp.toml: the auth() discovery-and-registration path an MCP host runs, and
// registerClient on its own.
//
// interop/run.sh starts the server and sets:
//   INTEROP_MCP_ISSUER  issuer of the dcr running examples/mcp.toml
//   INTEROP_MCP_CONFIG  its configuration file (for `dcr clients show`)
//   INTEROP_DCR         the dcr binary
//
// auth() starts from an MCP server URL: this test serves the MCP server's protected resource
// metadata (RFC 9728) naming dcr's issuer as authorization server, and stops where the SDK
// would send the user to the authorization endpoint (provider.redirectToAuthorization).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { execFileSync } from 'node:child_process'
import {
  auth,
  registerClient,
  discoverAuthorizationServerMetadata,
} from '@modelcontextprotocol/sdk/client/auth.js'

function env(name) {
  const value = process.env[name]
  assert.ok(value, `${name} must be set (run interop/run.sh)`)
  return value
}

const issuer = env('INTEROP_MCP_ISSUER')
const CURSOR = 'cursor://anysphere.cursor-mcp/oauth/callback'

// The MCP server: only its protected resource metadata (any path under the well-known prefix,
// the SDK tries the path-aware URL first).
let mcpServer
let mcpUrl
before(async () => {
  mcpServer = http.createServer((req, res) => {
    if (req.url.startsWith('/.well-known/oauth-protected-resource')) {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({
        resource: mcpUrl,
        authorization_servers: [issuer],
        scopes_supported: ['mcp:tools'],
      }))
      return
    }
    res.writeHead(404)
    res.end()
  })
  await new Promise((resolve) => mcpServer.listen(0, '127.0.0.1', resolve))
  mcpUrl = `http://127.0.0.1:${mcpServer.address().port}/mcp`
})
after(() => mcpServer.close())

// An in-memory OAuthClientProvider, as an MCP host implements it.
function provider(redirectUrl) {
  const saved = {}
  return {
    saved,
    get redirectUrl() { return redirectUrl },
    get clientMetadata() {
      return {
        client_name: 'MCP SDK interop',
        redirect_uris: [redirectUrl],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      }
    },
    clientInformation() { return saved.client },
    saveClientInformation(info) { saved.client = info },
    tokens() { return saved.tokens },
    saveTokens(tokens) { saved.tokens = tokens },
    saveCodeVerifier(v) { saved.verifier = v },
    codeVerifier() { return saved.verifier },
    redirectToAuthorization(url) { saved.authorizationUrl = url },
  }
}

// A fetch that keeps dcr's registration answers as sent: the SDK parses them with its own
// schema, which keeps only the members it knows (application_type is not one).
function recording() {
  const answers = []
  const fetchFn = async (url, init) => {
    const res = await fetch(url, init)
    if (init?.method === 'POST' && String(url) === `${issuer}/reg`) {
      answers.push({ status: res.status, body: await res.clone().json() })
    }
    return res
  }
  return { answers, fetchFn }
}

// What the host authorization server sees when it resolves the client: the stored metadata.
function resolved(clientId) {
  const out = execFileSync(
    env('INTEROP_DCR'),
    ['clients', 'show', clientId, '--config', env('INTEROP_MCP_CONFIG')],
    { encoding: 'utf8', env: { PATH: process.env.PATH } },
  )
  return JSON.parse(out)
}

for (const [name, redirectUrl] of [
  ['a custom-scheme client', CURSOR],
  ['a loopback client', 'http://127.0.0.1:33418/callback'],
]) {
  test(`auth(): discovery from the MCP server URL, then registration of ${name}`, async () => {
    const p = provider(redirectUrl)
    const { answers, fetchFn } = recording()
    const result = await auth(p, { serverUrl: mcpUrl, fetchFn })
    assert.equal(result, 'REDIRECT')

    assert.equal(answers.length, 1, 'one registration')
    assert.equal(answers[0].status, 201)
    assert.equal(answers[0].body.application_type, 'native', 'inferred from the redirect URI')
    const client = p.saved.client
    assert.ok(client, 'the SDK saved the registration')
    assert.equal(client.client_id, answers[0].body.client_id)
    assert.deepEqual(client.redirect_uris, [redirectUrl])
    assert.equal(client.token_endpoint_auth_method, 'none')
    assert.equal(client.client_secret, undefined)
    assert.equal(client.scope, 'mcp:tools', 'the protected resource scopes were registered')

    // Stopped where the user would be sent to the host authorization server.
    const url = p.saved.authorizationUrl
    assert.equal(`${url.origin}${url.pathname}`, 'https://auth.example.com/authorize')
    assert.equal(url.searchParams.get('client_id'), client.client_id)
    assert.equal(url.searchParams.get('redirect_uri'), redirectUrl)
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256')
    assert.ok(url.searchParams.get('code_challenge'))

    // The host authorization server resolves the client dcr stored.
    const stored = resolved(client.client_id)
    assert.equal(stored.client_id, client.client_id)
    assert.equal(stored.metadata.application_type, 'native')
    assert.deepEqual(stored.metadata.redirect_uris, [redirectUrl])
  })
}

test('registerClient: 201 with application_type native for a client that sends none', async () => {
  const metadata = await discoverAuthorizationServerMetadata(issuer)
  assert.equal(metadata.registration_endpoint, `${issuer}/reg`)
  assert.deepEqual(metadata.code_challenge_methods_supported, ['S256'])
  assert.equal(metadata.authorization_endpoint, 'https://auth.example.com/authorize')
  assert.equal(metadata.token_endpoint, 'https://auth.example.com/token')

  const { answers, fetchFn } = recording()
  const info = await registerClient(issuer, {
    metadata,
    clientMetadata: provider(CURSOR).clientMetadata,
    fetchFn,
  })
  assert.equal(answers[0].status, 201)
  assert.equal(answers[0].body.application_type, 'native')
  assert.equal(info.client_id, answers[0].body.client_id)
  assert.deepEqual(info.redirect_uris, [CURSOR])
  // What the SDK keeps: no registration access token (it never manages its registration).
  assert.ok(answers[0].body.registration_access_token)

  // A web redirect URI next to a custom scheme is refused, precisely.
  await assert.rejects(
    registerClient(issuer, {
      metadata,
      clientMetadata: {
        ...provider(CURSOR).clientMetadata,
        redirect_uris: ['https://app.example.com/cb', CURSOR],
      },
    }),
    (err) => {
      assert.match(err.message, /cannot be inferred/)
      return true
    },
  )
})
