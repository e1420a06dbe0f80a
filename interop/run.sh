#!/usr/bin/env bash
# Interop: third-party OAuth / OpenID Connect clients against a freshly built `dcr`.
#
# Builds dcr (debug), starts servers on free 127.0.0.1 ports (each its own issuer), then runs
#   - interop/node:   openid-client (npm), with `node --test` (registration against dcr;
#                     clientCredentialsGrant against the example authorization server);
#   - interop/python: pyoidc (`oic` on PyPI), with unittest, in a venv made here;
#   - interop/mcp-node: the TypeScript MCP SDK (@modelcontextprotocol/sdk), with `node --test`;
#   - interop/mcp-python: the Python MCP SDK (`mcp` on PyPI), with unittest, in its own venv;
#   the MCP suites against a dcr started with examples/mcp.toml (issuer and listen address
#   overridden with DCR_ variables, its SQLite file in a temporary directory).
# Any failure fails the script. The servers are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}

echo "--> building dcr"
cargo build --locked -p dcr-server --bin dcr
dcr=$target/debug/dcr

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The host authorization server's JWKS (pyoidc fetches jwks_uri on discovery; dcr serves none).
mkdir -p "$work/jwks"
echo '{"keys":[]}' >"$work/jwks/jwks.json"
jwks_port=$(free_port)
python3 -m http.server "$jwks_port" --bind 127.0.0.1 --directory "$work/jwks" >"$work/jwks.log" 2>&1 &
pids+=($!)

# write_config NAME REGISTRATION_TOML: a config in $work/NAME on a free port; prints the issuer.
write_config() {
  local name=$1 registration=$2 port
  port=$(free_port)
  mkdir -p "$work/$name"
  cat >"$work/$name/dcr.toml" <<EOF
issuer = "http://127.0.0.1:$port"
listen = "127.0.0.1:$port"

[storage]
url = "sqlite://dcr.db"

[registration]
$registration

[discovery]
authorization_endpoint = "https://as.example.test/authorize"
token_endpoint = "https://as.example.test/token"
jwks_uri = "http://127.0.0.1:$jwks_port/jwks.json"

[log]
filter = "warn,dcr_server=info"
EOF
  echo "http://127.0.0.1:$port"
}

# serve NAME: starts dcr on $work/NAME/dcr.toml and waits until it listens.
serve() {
  local name=$1
  "$dcr" serve --config "$work/$name/dcr.toml" 2>"$work/$name/stderr.log" &
  pids+=($!)
  for _ in $(seq 1 100); do
    grep -q "listening on http://" "$work/$name/stderr.log" && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "dcr ($name) did not start:" >&2
  cat "$work/$name/stderr.log" >&2
  return 1
}

# Not DCR_*: dcr reads those as configuration.
export INTEROP_OPEN_ISSUER INTEROP_IAT_ISSUER INTEROP_IAT INTEROP_JWT_IAT_ISSUER INTEROP_JWT_IAT
INTEROP_OPEN_ISSUER=$(write_config open "")
serve open
INTEROP_IAT_ISSUER=$(write_config iat "initial_access_token = true")
INTEROP_IAT=$("$dcr" iat create --config "$work/iat/dcr.toml" --label interop 2>/dev/null | tail -n1)
[ -n "$INTEROP_IAT" ] || { echo "dcr iat create printed no token" >&2; exit 1; }
serve iat
# A static initial access token that is a JWT (pyoidc sends JWT tokens as they are).
INTEROP_JWT_IAT="eyJhbGciOiJub25lIn0.eyJzdWIiOiJpbnRlcm9wIn0.c2ln"
INTEROP_JWT_IAT_ISSUER=$(write_config jwt-iat "initial_access_token = \"$INTEROP_JWT_IAT\"")
serve jwt-iat

# examples/mcp.toml as the README runs it; copied so that its SQLite file lands in $work/mcp.
mcp_port=$(free_port)
mkdir -p "$work/mcp"
cp examples/mcp.toml "$work/mcp/dcr.toml"
export INTEROP_MCP_ISSUER=http://127.0.0.1:$mcp_port INTEROP_MCP_CONFIG=$work/mcp/dcr.toml INTEROP_DCR=$dcr
DCR_ISSUER=$INTEROP_MCP_ISSUER DCR_LISTEN=127.0.0.1:$mcp_port serve mcp

# The example authorization server (crates/dcr-server/examples/authorization_server): dcr's
# registration plus a client_credentials token endpoint on dcr's client authentication, with
# one client configured in its TOML.
echo "--> building the example authorization server"
cargo build --locked -p dcr-server --example authorization_server
export INTEROP_AS_ISSUER INTEROP_AS_CONFIGURED_ID INTEROP_AS_CONFIGURED_SECRET
INTEROP_AS_CONFIGURED_ID=interop-configured
INTEROP_AS_CONFIGURED_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
as_port=$(free_port)
INTEROP_AS_ISSUER="http://127.0.0.1:$as_port"
mkdir -p "$work/as"
cat >"$work/as/dcr.toml" <<EOF
issuer = "$INTEROP_AS_ISSUER"
listen = "127.0.0.1:$as_port"
allow_insecure_issuer = true

[storage]
url = "memory:"

[[clients]]
client_id = "$INTEROP_AS_CONFIGURED_ID"
client_secret_env = "INTEROP_AS_CONFIGURED_SECRET"
[clients.metadata]
redirect_uris = ["https://reports.example/cb"]
grant_types = ["client_credentials"]
response_types = []
token_endpoint_auth_method = "client_secret_basic"
EOF
"$target/debug/examples/authorization_server" --config "$work/as/dcr.toml" 2>"$work/as/stderr.log" &
pids+=($!)
for _ in $(seq 1 100); do
  grep -q "listening on http://" "$work/as/stderr.log" && break
  kill -0 "${pids[-1]}" 2>/dev/null || break
  sleep 0.1
done
grep -q "listening on http://" "$work/as/stderr.log" || {
  echo "the example authorization server did not start:" >&2
  cat "$work/as/stderr.log" >&2
  exit 1
}

echo "--> node: openid-client"
(cd interop/node && npm ci --no-audit --no-fund --loglevel=error && node --test)

echo "--> python: pyoidc"
venv=$work/venv
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r interop/python/requirements.txt
"$venv/bin/python" -m unittest discover -s interop/python -p 'test_*.py' -v

echo "--> node: @modelcontextprotocol/sdk"
(cd interop/mcp-node && npm ci --no-audit --no-fund --loglevel=error && node --test)

echo "--> python: mcp"
mcp_venv=$work/mcp-venv
python3 -m venv "$mcp_venv"
"$mcp_venv/bin/pip" install --quiet --disable-pip-version-check -r interop/mcp-python/requirements.txt
"$mcp_venv/bin/python" -m unittest discover -s interop/mcp-python -p 'test_*.py' -v

echo "--> interop passed"
