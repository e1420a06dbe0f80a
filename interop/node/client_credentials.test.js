// openid-client's `clientCredentialsGrant` against the example authorization server
// (crates/dcr-server/examples/authorization_server), whose token endpoint authenticates clients
// through dcr's library.
//
// interop/run.sh starts the example and sets:
//   INTEROP_AS_ISSUER             its issuer (registration at /reg, tokens at /token)
//   INTEROP_AS_CONFIGURED_ID      a client configured in its TOML ([[clients]], client_secret_basic)
//   INTEROP_AS_CONFIGURED_SECRET  that client's secret (from an environment variable there too)
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as client from 'openid-client'

function env(name) {
  const value = process.env[name]
  assert.ok(value, `${name} must be set (run interop/run.sh)`)
  return value
}

const insecure = { execute: [client.allowInsecureRequests] }

let discovered
async function server() {
  discovered ??= await client.discovery(new URL(env('INTEROP_AS_ISSUER')), 'discovery-only', undefined, undefined, insecure)
  return discovered.serverMetadata()
}

async function register(method, extra = {}) {
  const config = await client.dynamicClientRegistration(
    new URL(env('INTEROP_AS_ISSUER')),
    {
      redirect_uris: ['https://service.example/cb'],
      grant_types: ['client_credentials'],
      response_types: [],
      token_endpoint_auth_method: method,
      ...extra,
    },
    undefined,
    insecure,
  )
  return config.clientMetadata()
}

// A Configuration for `clientId` that authenticates with `auth`.
async function configuration(clientId, auth, metadata = {}) {
  const config = new client.Configuration(await server(), clientId, metadata, auth)
  client.allowInsecureRequests(config)
  return config
}

async function grantsToken(config) {
  const tokens = await client.clientCredentialsGrant(config, { scope: 'reports:read' })
  assert.equal(tokens.token_type.toLowerCase(), 'bearer')
  assert.ok(tokens.access_token.length >= 32)
  assert.equal(tokens.scope, 'reports:read')
}

// The refusal of a wrong secret: 401 invalid_client with a Basic challenge (openid-client
// throws its WWWAuthenticateChallengeError for a 401 with a challenge; the body is read here).
async function refused(config) {
  let err
  try {
    await client.clientCredentialsGrant(config)
  } catch (e) {
    err = e
  }
  assert.ok(err, 'the grant must be refused')
  assert.equal(err.status, 401)
  assert.equal(err.code, 'OAUTH_WWW_AUTHENTICATE_CHALLENGE')
  assert.equal(err.cause[0].scheme, 'basic')
  const body = await err.response.json()
  assert.equal(body.error, 'invalid_client')
  assert.equal(typeof body.error_description, 'string')
}

test('discovery advertises the token endpoint and its auth methods', async () => {
  const meta = await server()
  assert.equal(meta.token_endpoint, `${env('INTEROP_AS_ISSUER')}/token`)
  for (const m of ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']) {
    assert.ok(meta.token_endpoint_auth_methods_supported.includes(m), m)
  }
})

test('ClientSecretBasic: a client registered over RFC 7591', async () => {
  const reg = await register('client_secret_basic')
  await grantsToken(await configuration(reg.client_id, client.ClientSecretBasic(reg.client_secret)))
  await refused(await configuration(reg.client_id, client.ClientSecretBasic('not-the-secret')))
})

test('ClientSecretPost: a client registered over RFC 7591', async () => {
  const reg = await register('client_secret_post')
  await grantsToken(await configuration(reg.client_id, client.ClientSecretPost(reg.client_secret)))
  await refused(await configuration(reg.client_id, client.ClientSecretPost('not-the-secret')))
})

test('ClientSecretBasic: a client configured in the TOML ([[clients]])', async () => {
  const id = env('INTEROP_AS_CONFIGURED_ID')
  await grantsToken(await configuration(id, client.ClientSecretBasic(env('INTEROP_AS_CONFIGURED_SECRET'))))
  await refused(await configuration(id, client.ClientSecretBasic('not-the-secret')))
})

test('PrivateKeyJwt: a client registered with its public key in jwks', async () => {
  const { privateKey, publicKey } = await crypto.subtle.generateKey(
    { name: 'ECDSA', namedCurve: 'P-256' },
    true,
    ['sign', 'verify'],
  )
  const jwk = { ...(await crypto.subtle.exportKey('jwk', publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }
  delete jwk.key_ops
  delete jwk.ext
  const reg = await register('private_key_jwt', {
    jwks: { keys: [jwk] },
    token_endpoint_auth_signing_alg: 'ES256',
  })
  // Each grant signs a fresh assertion (a new jti): two in a row both succeed.
  const config = await configuration(reg.client_id, client.PrivateKeyJwt({ key: privateKey, kid: 'k1' }))
  await grantsToken(config)
  await grantsToken(config)
  // Another key under the same kid is refused.
  const other = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
  await refused(await configuration(reg.client_id, client.PrivateKeyJwt({ key: other.privateKey, kid: 'k1' })))
})

test('None: a public client authenticates but may not use client_credentials', async () => {
  const reg = await register('none')
  const config = await configuration(reg.client_id, client.None())
  await assert.rejects(client.clientCredentialsGrant(config), (err) => {
    assert.equal(err.status, 400)
    assert.equal(err.error, 'unauthorized_client')
    return true
  })
})
