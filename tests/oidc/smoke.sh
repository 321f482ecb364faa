#!/usr/bin/env bash
# Smoke test of the test OpenID Provider: provider.mjs + user.mjs, driven with curl.
#   tests/oidc/smoke.sh        (needs node, curl, and `npm ci` done in tests/oidc; `make oidc` does it)
# Covers: discovery, device flow (confidential client, Basic auth), ID token claims and signature,
# code flow + PKCE to a loopback redirect on a port that was not registered (RFC 8252),
# refresh, /test/users, /test/sign, /test/rotate. Prints SMOKE OK and exits 0 on success.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; echo "--- provider log (tail)" >&2; tail -20 "$tmp/provider.err" >&2; exit 1; }
check() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; echo "ok   $1"; }
# JSON field by dotted path (arrays/objects come out as compact JSON): jget "$json" a.b
jget() { node -e 'let v=JSON.parse(process.argv[1]);for(const k of process.argv[2].split("."))v=v?.[k];
  console.log(typeof v==="object"?JSON.stringify(v):v??"")' "$1" "$2"; }
# A JWT's header (0) or payload (1) as JSON.
jwt_part() { node -e 'console.log(Buffer.from(process.argv[1].split(".")[process.argv[2]],"base64url").toString())' "$1" "$2"; }
# Verifies a JWT's signature with the provider's JWKS; prints the kid.
verify() { node -e 'const [iss,jwt]=process.argv.slice(1);const [h,p,s]=jwt.split(".");
  const hd=JSON.parse(Buffer.from(h,"base64url"));
  fetch(iss+"/jwks").then(r=>r.json()).then(({keys})=>{const k=keys.find(k=>k.kid===hd.kid);
    if(!k||!require("crypto").verify("sha256",Buffer.from(h+"."+p),{key:k,format:"jwk",dsaEncoding:"ieee-p1363"},Buffer.from(s,"base64url")))
      {console.error("bad signature / unknown kid "+hd.kid);process.exit(1)}console.log(hd.kid)})' "$ISS" "$1"; }

# --- Start the provider on a free port.
cat >"$tmp/config.json" <<'EOF'
{ "port": 0,
  "clients": [{ "client_id": "gatehouse", "client_secret": "gatehouse-secret",
                "redirect_uris": ["http://127.0.0.1/callback"],
                "grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "authorization_code", "refresh_token"] }],
  "users": [{ "sub": "alice", "password": "alice-pw", "email": "alice@example.com",
              "name": "Alice Liddell", "groups": ["dba", "eng"] }] }
EOF
node "$here/provider.mjs" "$tmp/config.json" >"$tmp/provider.out" 2>"$tmp/provider.err" &
pids+=($!)
for _ in $(seq 150); do grep -q '^OIDC_READY ' "$tmp/provider.out" && break; sleep 0.1; done
ISS=$(sed -n 's/^OIDC_READY //p' "$tmp/provider.out")
[ -n "$ISS" ] || fail "provider did not print OIDC_READY"
echo "provider at $ISS"
AUTH=(-u gatehouse:gatehouse-secret)

# --- Discovery.
disco=$(curl -sf "$ISS/.well-known/openid-configuration")
check "discovery issuer" "$(jget "$disco" issuer)" "$ISS"
DEVICE_EP=$(jget "$disco" device_authorization_endpoint)
TOKEN_EP=$(jget "$disco" token_endpoint)
check "jwks key types" "$(jget "$(curl -sf "$(jget "$disco" jwks_uri)")" keys | node -e \
  'console.log(JSON.parse(require("fs").readFileSync(0)).map(k=>k.alg).join(","))')" "RS256,ES256"

# --- Device flow.
dev=$(curl -sf "${AUTH[@]}" -d 'scope=openid email profile groups' "$DEVICE_EP")
DEVICE_CODE=$(jget "$dev" device_code)
poll() { curl -s "${AUTH[@]}" -d grant_type=urn:ietf:params:oauth:grant-type:device_code \
  -d device_code="$DEVICE_CODE" "$TOKEN_EP"; }
check "device poll before login" "$(jget "$(poll)" error)" "authorization_pending"
node "$here/user.mjs" device --issuer "$ISS" --user-code "$(jget "$dev" user_code)" \
  --login alice --password alice-pw || fail "user.mjs device"
for _ in $(seq 10); do tok=$(poll); [ -n "$(jget "$tok" id_token)" ] && break; sleep 1; done
ID=$(jget "$tok" id_token)
[ -n "$ID" ] || fail "no tokens from device flow: $tok"
claims=$(jwt_part "$ID" 1)
echo "id token: $(jwt_part "$ID" 0) $claims"
check "sub" "$(jget "$claims" sub)" "alice"
check "email" "$(jget "$claims" email)" "alice@example.com"
check "name" "$(jget "$claims" name)" "Alice Liddell"
check "groups" "$(jget "$claims" groups)" '["dba","eng"]'
check "aud" "$(jget "$claims" aud)" "gatehouse"
check "iss" "$(jget "$claims" iss)" "$ISS"
KID1=$(verify "$ID") || fail "device id token signature"
echo "ok   id token signature (kid $KID1)"

# --- Code flow + PKCE to a loopback port that is not in the registered redirect_uri.
node -e 'require("http").createServer((q,s)=>{require("fs").writeFileSync(process.argv[1],q.url);s.end("done")})
  .listen(0,"127.0.0.1",function(){console.log(this.address().port)})' "$tmp/callback" >"$tmp/cb.port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/cb.port" ] && break; sleep 0.1; done
REDIRECT="http://127.0.0.1:$(cat "$tmp/cb.port")/callback"
VERIFIER=$(node -e 'console.log(require("crypto").randomBytes(32).toString("base64url"))')
CHALLENGE=$(node -e 'console.log(require("crypto").createHash("sha256").update(process.argv[1]).digest("base64url"))' "$VERIFIER")
url=$(node -e 'const u=new URL(process.argv[1]);Object.entries({client_id:"gatehouse",response_type:"code",
  scope:"openid email profile groups",redirect_uri:process.argv[2],state:"st8",nonce:"n0nce",
  code_challenge:process.argv[3],code_challenge_method:"S256"}).forEach(([k,v])=>u.searchParams.set(k,v));
  console.log(u.href)' "$(jget "$disco" authorization_endpoint)" "$REDIRECT" "$CHALLENGE")
back=$(node "$here/user.mjs" code --url "$url" --login alice --password alice-pw) || fail "user.mjs code"
check "callback received" "http://127.0.0.1:$(cat "$tmp/cb.port")$(cat "$tmp/callback")" "$back"
check "callback state" "$(node -e 'console.log(new URL(process.argv[1]).searchParams.get("state"))' "$back")" "st8"
code=$(node -e 'console.log(new URL(process.argv[1]).searchParams.get("code"))' "$back")
tok=$(curl -s "${AUTH[@]}" -d grant_type=authorization_code -d code="$code" -d redirect_uri="$REDIRECT" \
  -d code_verifier="$VERIFIER" "$TOKEN_EP")
claims=$(jwt_part "$(jget "$tok" id_token)" 1)
check "code flow nonce" "$(jget "$claims" nonce)" "n0nce"
check "code flow groups" "$(jget "$claims" groups)" '["dba","eng"]'
REFRESH=$(jget "$tok" refresh_token)
[ -n "$REFRESH" ] || fail "no refresh token: $tok"

# --- /test/sign: a workload JWT with arbitrary claims, signed with the current RS256 key.
jwt=$(jget "$(curl -sf -X POST "$ISS/test/sign" -d '{"claims":{"sub":"repo:acme/db:ref:main","aud":"gatehouse"}}')" jwt)
check "signed kid" "$(verify "$jwt")" "$KID1"
check "signed sub" "$(jget "$(jwt_part "$jwt" 1)" sub)" "repo:acme/db:ref:main"
es=$(jget "$(curl -sf -X POST "$ISS/test/sign" -d '{"claims":{"sub":"w"},"header":{"alg":"ES256"}}')" jwt)
verify "$es" >/dev/null || fail "ES256 signature"
echo "ok   ES256 signature"

# --- /test/rotate and /test/users, then refresh: new kid, new groups, old key still published.
rot=$(curl -sf -X POST "$ISS/test/rotate")
KID2=$(jget "$rot" kid)
[ "$KID2" != "$KID1" ] || fail "rotation kept the kid"
curl -sf -X POST "$ISS/test/users" -d '[{"sub":"alice","password":"alice-pw","email":"alice@example.com",
  "name":"Alice Liddell","groups":["eng"]}]' >/dev/null
tok=$(curl -s "${AUTH[@]}" -d grant_type=refresh_token -d refresh_token="$REFRESH" "$TOKEN_EP")
ID=$(jget "$tok" id_token)
check "refresh after rotation: kid" "$(verify "$ID")" "$KID2"
check "refresh after users change: groups" "$(jget "$(jwt_part "$ID" 1)" groups)" '["eng"]'
check "old key still in jwks" "$(verify "$jwt")" "$KID1"
curl -sf -X POST "$ISS/test/rotate?drop_old=1" >/dev/null
verify "$jwt" 2>/dev/null && fail "old key still in jwks after drop_old"
echo "ok   drop_old removed $KID1"

echo "SMOKE OK"
