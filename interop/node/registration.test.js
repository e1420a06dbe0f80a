// openid-client (npm, the OpenID client most Node apps use) against a running dcr.
//
// interop/run.sh starts the servers and sets:
//   INTEROP_OPEN_ISSUER  issuer of a dcr with open registration
//   INTEROP_IAT_ISSUER   issuer of a dcr that needs an initial access token
//   INTEROP_IAT          an initial access token for it (minted with `dcr iat create`)
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as client from 'openid-client'

function env(name) {
  const value = process.env[name]
  assert.ok(value, `${name} must be set (run interop/run.sh)`)
  return value
}

// dcr runs on plain http on 127.0.0.1 here; openid-client refuses that unless told.
const insecure = { execute: [client.allowInsecureRequests] }

const metadata = {
  redirect_uris: ['https://rp.example.com/cb'],
  client_name: 'openid-client interop',
  response_types: ['code'],
  grant_types: ['authorization_code', 'refresh_token'],
  token_endpoint_auth_method: 'client_secret_basic',
  contacts: ['ops@rp.example.com'],
}

// Reads the registration back through its registration client URI (RFC 7592 §2.1),
// with openid-client's own protected-resource request.
async function readBack(config) {
  const registered = config.clientMetadata()
  const res = await client.fetchProtectedResource(
    config,
    registered.registration_access_token,
    new URL(registered.registration_client_uri),
    'GET',
  )
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('cache-control'), 'no-store')
  const body = await res.json()
  assert.equal(body.client_id, registered.client_id)
  assert.equal(body.client_secret, registered.client_secret)
  assert.deepEqual(body.redirect_uris, metadata.redirect_uris)
  return body
}

function checkRegistered(config, issuer) {
  const server = config.serverMetadata()
  assert.equal(server.issuer, issuer)
  assert.equal(server.registration_endpoint, `${issuer}/reg`)
  const registered = config.clientMetadata()
  assert.equal(typeof registered.client_id, 'string')
  assert.ok(registered.client_id.length > 0)
  assert.equal(registered.client_secret.length, 86)
  assert.equal(registered.client_secret_expires_at, 0)
  assert.equal(registered.client_name, metadata.client_name)
  assert.deepEqual(registered.grant_types, metadata.grant_types)
  assert.equal(registered.token_endpoint_auth_method, 'client_secret_basic')
  assert.equal(
    registered.registration_client_uri,
    `${issuer}/reg/${encodeURIComponent(registered.client_id)}`,
  )
  assert.ok(registered.registration_access_token)
}

test('discovers dcr and registers a client (open registration)', async () => {
  const issuer = env('INTEROP_OPEN_ISSUER')
  const config = await client.dynamicClientRegistration(
    new URL(issuer),
    metadata,
    undefined,
    insecure,
  )
  checkRegistered(config, issuer)
  await readBack(config)
})

test('discovers dcr through RFC 8414 metadata and registers a public client', async () => {
  const issuer = env('INTEROP_OPEN_ISSUER')
  const config = await client.dynamicClientRegistration(
    new URL(issuer),
    { ...metadata, token_endpoint_auth_method: 'none' },
    client.None(),
    { ...insecure, algorithm: 'oauth2' },
  )
  const registered = config.clientMetadata()
  assert.equal(registered.token_endpoint_auth_method, 'none')
  assert.equal(registered.client_secret, undefined)
  const body = await readBack(config)
  assert.equal(body.client_secret, undefined)
})

test('registers with an initial access token', async () => {
  const issuer = env('INTEROP_IAT_ISSUER')
  const config = await client.dynamicClientRegistration(
    new URL(issuer),
    metadata,
    undefined,
    { ...insecure, initialAccessToken: env('INTEROP_IAT') },
  )
  checkRegistered(config, issuer)
  await readBack(config)
})

test('is refused without an initial access token, or with a wrong one', async () => {
  const issuer = env('INTEROP_IAT_ISSUER')
  for (const initialAccessToken of [undefined, 'not-the-initial-access-token']) {
    await assert.rejects(
      client.dynamicClientRegistration(new URL(issuer), metadata, undefined, {
        ...insecure,
        initialAccessToken,
      }),
      (err) => {
        assert.equal(err.status, 401)
        assert.match(err.response.headers.get('www-authenticate'), /^Bearer realm=/)
        return true
      },
    )
  }
})

test('reports invalid client metadata as an OAuth error', async () => {
  const issuer = env('INTEROP_OPEN_ISSUER')
  await assert.rejects(
    client.dynamicClientRegistration(
      new URL(issuer),
      { ...metadata, redirect_uris: ['https://rp.example.com/cb#fragment'] },
      undefined,
      insecure,
    ),
    (err) => {
      assert.equal(err.error, 'invalid_redirect_uri')
      assert.ok(err.error_description)
      return true
    },
  )
})
