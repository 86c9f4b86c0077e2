//! Authentication and authorization through the real gateway binary: bearer tokens signed by
//! the `openssl` CLI (not by the crate under test), API keys from the config file and from
//! Redis, the `gateway keys` and `gateway token` commands, and a JWKS URL rotating its keys.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use rampart_test_support::{Behavior, RedisServer, Upstream, UpstreamBody};
use serde_json::{Value, json};
use support::{Gateway, body_bytes, client, gateway_command};

const HS_SECRET: &str = "gateway-test-secret-long-enough-for-hs512-which-needs-64-bytes-0123";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("crates/auth/tests/fixtures")
        .join(name)
}

/// Runs `openssl` with `args`, feeding `input`, and returns its standard output.
fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl CLI is installed");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("writing to openssl");
    let output = child.wait_with_output().expect("openssl output");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

enum Sign<'a> {
    Hs256(&'a str),
    Rs256(&'a str),
    Nothing,
    /// Any algorithm by name, with the fixture key that fits it.
    Alg(&'a str),
}

/// An ECDSA signature from DER (`SEQUENCE { r, s }`) to JOSE's fixed-width `r || s`.
fn der_to_raw(der: &[u8], width: usize) -> Vec<u8> {
    let mut at = 2 + usize::from(der[1] & 0x80 != 0) * usize::from(der[1] & 0x7f);
    let mut raw = Vec::with_capacity(2 * width);
    for _ in 0..2 {
        assert_eq!(der[at], 0x02, "an INTEGER");
        let len = usize::from(der[at + 1]);
        let int = &der[at + 2..at + 2 + len];
        let int = &int[int.len().saturating_sub(width)..];
        raw.extend(std::iter::repeat_n(0u8, width - int.len()));
        raw.extend_from_slice(int);
        at += 2 + len;
    }
    raw
}

fn sign_with(alg: &str, input: &[u8]) -> Vec<u8> {
    let path = |name: &str| fixture(name).to_str().expect("utf-8 path").to_owned();
    let digest = format!("-sha{}", &alg[2..]);
    match alg {
        "HS256" | "HS384" | "HS512" => {
            openssl(&["dgst", &digest, "-hmac", HS_SECRET, "-binary"], input)
        }
        "RS256" | "RS384" | "RS512" => openssl(
            &["dgst", &digest, "-binary", "-sign", &path("rsa.key.pem")],
            input,
        ),
        "PS256" | "PS384" | "PS512" => {
            let salt = format!(
                "rsa_pss_saltlen:{}",
                alg[2..].parse::<usize>().expect("bits") / 8
            );
            openssl(
                &[
                    "dgst",
                    &digest,
                    "-binary",
                    "-sign",
                    &path("rsa.key.pem"),
                    "-sigopt",
                    "rsa_padding_mode:pss",
                    "-sigopt",
                    &salt,
                ],
                input,
            )
        }
        "ES256" => der_to_raw(
            &openssl(
                &["dgst", "-sha256", "-binary", "-sign", &path("p256.key.pem")],
                input,
            ),
            32,
        ),
        "ES384" => der_to_raw(
            &openssl(
                &["dgst", "-sha384", "-binary", "-sign", &path("p384.key.pem")],
                input,
            ),
            48,
        ),
        "ES512" => der_to_raw(
            &openssl(
                &["dgst", "-sha512", "-binary", "-sign", &path("p521.key.pem")],
                input,
            ),
            66,
        ),
        "EdDSA" => {
            let dir = std::env::temp_dir().join(format!("rampart-eddsa-{}", uuid::Uuid::new_v4()));
            std::fs::write(&dir, input).expect("signing input");
            let out = openssl(
                &[
                    "pkeyutl",
                    "-sign",
                    "-rawin",
                    "-inkey",
                    &path("ed25519.key.pem"),
                    "-in",
                    dir.to_str().expect("utf-8"),
                ],
                b"",
            );
            let _ = std::fs::remove_file(dir);
            out
        }
        other => panic!("no signer for {other}"),
    }
}

fn token(header: &Value, claims: &Value, sign: &Sign<'_>) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let signature = match sign {
        Sign::Hs256(secret) => openssl(
            &["dgst", "-sha256", "-hmac", secret, "-binary"],
            input.as_bytes(),
        ),
        Sign::Rs256(key) => {
            let key = fixture(key);
            openssl(
                &[
                    "dgst",
                    "-sha256",
                    "-binary",
                    "-sign",
                    key.to_str().expect("utf-8 path"),
                ],
                input.as_bytes(),
            )
        }
        Sign::Nothing => Vec::new(),
        Sign::Alg(alg) => sign_with(alg, input.as_bytes()),
    };
    format!("{input}.{}", b64url(&signature))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn claims(roles: &[&str], scope: &str) -> Value {
    let now = now();
    json!({ "sub": "alice", "iss": "dev", "aud": "orders-api", "iat": now, "exp": now + 300, "roles": roles, "scope": scope })
}

fn hs(claims: &Value) -> String {
    token(
        &json!({ "alg": "HS256", "typ": "JWT", "kid": "dev-hs" }),
        claims,
        &Sign::Hs256(HS_SECRET),
    )
}

/// The RSA fixture's public key as a JWK, its modulus read with `openssl rsa -modulus`.
fn rsa_jwk(private_key: &str, kid: &str) -> Value {
    let key = fixture(private_key);
    let out = openssl(
        &[
            "rsa",
            "-in",
            key.to_str().expect("utf-8 path"),
            "-noout",
            "-modulus",
        ],
        b"",
    );
    let hex = String::from_utf8(out).expect("ascii");
    let hex = hex.trim().trim_start_matches("Modulus=");
    let modulus: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    json!({ "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64url(&modulus), "e": "AQAB" })
}

/// A static API key built from the documented format with openssl's SHA-256.
fn static_key() -> (String, String, String) {
    let id = "ciabcdefghijklmn";
    let secret = "s".repeat(52);
    let body = format!("rk_{id}_{secret}");
    let digest = openssl(&["dgst", "-sha256", "-binary"], body.as_bytes());
    let bits = digest[..5]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let alphabet = b"abcdefghijklmnopqrstuvwxyz234567";
    let check: String = (0..7)
        .map(|i| char::from(alphabet[((bits >> (35 - 5 * i)) & 31) as usize]))
        .collect();
    let hash = openssl(&["dgst", "-sha256", "-binary"], secret.as_bytes());
    let hash_hex: String = hash.iter().fold(String::new(), |mut hex, b| {
        use std::fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
        hex
    });
    (
        format!("{body}_{check}"),
        id.to_owned(),
        format!("sha256:{hash_hex}"),
    )
}

struct Setup {
    gateway: Gateway,
    upstream: Upstream,
    jwks: Arc<Mutex<Value>>,
    _jwks_server: Upstream,
    _redis: RedisServer,
    config_path: PathBuf,
}

/// The gateway configuration shared by these tests.
fn config_text(
    redis: &RedisServer,
    upstream: &Upstream,
    secret_file: &std::path::Path,
    jwks_server: &Upstream,
    static_id: &str,
    static_hash: &str,
) -> String {
    format!(
        r#"
[redis]
url = "{redis}"

[upstreams.agents]
url = "{upstream}"

[auth.api_keys]
prefix = "rk"
store = "redis"
redis = {{ cache_ttl = "200ms", negative_ttl = "200ms" }}
static = [{{ id = "{static_id}", hash = "{static_hash}", owner = "ci", roles = ["deploy"] }}]

[auth.jwt]
leeway = "5s"

[[auth.jwt.issuers]]
issuer = "dev"
audiences = ["orders-api"]
keys = [
  {{ kid = "dev-hs", algorithm = "HS256", secret_file = "{secret}" }},
  {{ kid = "dev-rs", algorithm = "RS256", pem_file = "{rsa_pub}" }},
  {{ kid = "HS384", algorithm = "HS384", secret_file = "{secret}" }},
  {{ kid = "HS512", algorithm = "HS512", secret_file = "{secret}" }},
  {{ kid = "RS384", algorithm = "RS384", pem_file = "{rsa_pub}" }},
  {{ kid = "RS512", algorithm = "RS512", pem_file = "{rsa_pub}" }},
  {{ kid = "PS256", algorithm = "PS256", pem_file = "{rsa_pub}" }},
  {{ kid = "PS384", algorithm = "PS384", pem_file = "{rsa_pub}" }},
  {{ kid = "PS512", algorithm = "PS512", pem_file = "{rsa_pub}" }},
  {{ kid = "ES256", algorithm = "ES256", pem_file = "{p256}" }},
  {{ kid = "ES384", algorithm = "ES384", pem_file = "{p384}" }},
  {{ kid = "ES512", algorithm = "ES512", pem_file = "{p521}" }},
  {{ kid = "EdDSA", algorithm = "EdDSA", pem_file = "{ed25519}" }},
]

[[auth.jwt.issuers]]
issuer = "idp"
keys = [{{ jwks_url = {{ url = "{jwks}/jwks.json", algorithms = ["RS256"], min_refresh_interval = "300ms" }} }}]

[auth.jwt.signing]
algorithm = "HS256"
kid = "dev-hs"
secret_file = "{secret}"
issuer = "dev"
audience = "orders-api"

[[routes]]
name = "open"
prefix = "/open"
upstream = "agents"
[routes.auth]
anonymous = true

[[routes]]
name = "admin"
prefix = "/admin"
upstream = "agents"
[routes.auth]
any_role = ["admin"]

[[routes]]
name = "orders"
prefix = "/orders"
upstream = "agents"
[routes.auth]
all_scopes = ["orders:read"]

[[routes]]
name = "rest"
prefix = "/"
upstream = "agents"
"#,
        redis = redis.url(),
        upstream = upstream.url(),
        secret = secret_file.display(),
        rsa_pub = fixture("rsa.pub.pem").display(),
        p256 = fixture("p256.pub.pem").display(),
        p384 = fixture("p384.pub.pem").display(),
        p521 = fixture("p521.pub.pem").display(),
        ed25519 = fixture("ed25519.pub.pem").display(),
        jwks = jwks_server.url(),
    )
}

async fn setup() -> Setup {
    let upstream = Upstream::start(Behavior::Echo).await;
    let redis = RedisServer::start();
    let jwks = Arc::new(Mutex::new(
        json!({ "keys": [rsa_jwk("rsa.key.pem", "idp-1")] }),
    ));
    let served = jwks.clone();
    let jwks_server = Upstream::start_fn(move |_request| {
        let body = served.lock().expect("jwks lock").to_string();
        async move {
            let response: Response<UpstreamBody> = Response::new(
                Full::new(Bytes::from(body))
                    .map_err(|never| match never {})
                    .boxed(),
            );
            response
        }
    })
    .await;

    let dir = std::env::temp_dir().join(format!("rampart-auth-gateway-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let secret_file = dir.join("jwt-secret");
    std::fs::write(&secret_file, HS_SECRET).expect("secret file");
    let (_, static_id, static_hash) = static_key();

    let config = config_text(
        &redis,
        &upstream,
        &secret_file,
        &jwks_server,
        &static_id,
        &static_hash,
    );
    let gateway = Gateway::start(&config).await;
    let config_path = dir.join("gateway.toml");
    std::fs::write(&config_path, format!("listen = \"127.0.0.1:1\"\n{config}"))
        .expect("config copy");
    Setup {
        gateway,
        upstream,
        jwks,
        _jwks_server: jwks_server,
        _redis: redis,
        config_path,
    }
}

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    content_type: Option<String>,
    body: Value,
}

async fn get(gateway: &Gateway, path: &str, headers: &[(&'static str, HeaderValue)]) -> Answer {
    let mut request = Request::get(gateway.uri(path))
        .body(Full::default())
        .expect("request");
    for (name, value) in headers {
        request.headers_mut().append(*name, value.clone());
    }
    let response = client().request(request).await.expect("gateway answers");
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let bytes = body_bytes(response.into_body()).await;
    Answer {
        status,
        challenge,
        content_type,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn bearer(token: &str) -> (&'static str, HeaderValue) {
    (
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).expect("ascii"),
    )
}

fn assert_invalid(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    let challenge = answer.challenge.as_deref().expect("challenge");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(
        answer.content_type.as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(
        answer.body["detail"],
        "the credentials are invalid or expired"
    );
}

fn gateway_cli(config: &PathBuf, args: &[&str]) -> (String, String) {
    let output = gateway_command()
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("running the gateway CLI");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "gateway {args:?} failed: {stderr}");
    (stdout, stderr)
}

#[tokio::test]
async fn bearer_tokens_through_the_gateway() {
    let s = setup().await;
    let g = &s.gateway;

    // No credential: 401 with a bare challenge and a problem body; the upstream sees nothing.
    let answer = get(g, "/rest", &[]).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.challenge.as_deref(),
        Some("Bearer realm=\"rampart\"")
    );
    assert_eq!(answer.body["status"], 401);
    assert!(answer.body["request_id"].is_string());
    assert_eq!(s.upstream.request_count(), 0);

    // HS256 and RS256 tokens from issuer "dev".
    assert_eq!(
        get(g, "/rest", &[bearer(&hs(&claims(&[], "")))])
            .await
            .status,
        200
    );
    let rs = token(
        &json!({ "alg": "RS256", "kid": "dev-rs" }),
        &claims(&[], ""),
        &Sign::Rs256("rsa.key.pem"),
    );
    assert_eq!(get(g, "/rest", &[bearer(&rs)]).await.status, 200);
    assert_eq!(s.upstream.request_count(), 2);

    // Within the configured 5 s leeway an expired token still passes; past it, it does not.
    let mut c = claims(&[], "");
    c["exp"] = json!(now() - 2);
    assert_eq!(get(g, "/rest", &[bearer(&hs(&c))]).await.status, 200);
    let mut c = claims(&[], "");
    c["nbf"] = json!(now() + 2);
    assert_eq!(get(g, "/rest", &[bearer(&hs(&c))]).await.status, 200);
    assert_eq!(s.upstream.request_count(), 4);

    // Expired, not yet valid, wrong issuer, wrong audience, missing audience.
    let mut c = claims(&[], "");
    c["exp"] = json!(now() - 60);
    assert_invalid(&get(g, "/rest", &[bearer(&hs(&c))]).await);
    let mut c = claims(&[], "");
    c["nbf"] = json!(now() + 120);
    assert_invalid(&get(g, "/rest", &[bearer(&hs(&c))]).await);
    let mut c = claims(&[], "");
    c["iss"] = json!("someone-else");
    assert_invalid(&get(g, "/rest", &[bearer(&hs(&c))]).await);
    let mut c = claims(&[], "");
    c["aud"] = json!("billing");
    assert_invalid(&get(g, "/rest", &[bearer(&hs(&c))]).await);
    let mut c = claims(&[], "");
    c.as_object_mut().expect("object").remove("aud");
    assert_invalid(&get(g, "/rest", &[bearer(&hs(&c))]).await);

    // Wrong key, unknown kid, alg none, HS256 signed with the RSA public key's PEM.
    let wrong = token(
        &json!({ "alg": "RS256", "kid": "dev-rs" }),
        &claims(&[], ""),
        &Sign::Rs256("rsa2.key.pem"),
    );
    assert_invalid(&get(g, "/rest", &[bearer(&wrong)]).await);
    let unknown = token(
        &json!({ "alg": "HS256", "kid": "nope" }),
        &claims(&[], ""),
        &Sign::Hs256(HS_SECRET),
    );
    assert_invalid(&get(g, "/rest", &[bearer(&unknown)]).await);
    let none = token(
        &json!({ "alg": "none", "kid": "dev-hs" }),
        &claims(&[], ""),
        &Sign::Nothing,
    );
    assert_invalid(&get(g, "/rest", &[bearer(&none)]).await);
    let pem = std::fs::read_to_string(fixture("rsa.pub.pem")).expect("pem");
    let confused = token(
        &json!({ "alg": "HS256", "kid": "dev-rs" }),
        &claims(&[], ""),
        &Sign::Hs256(&pem),
    );
    assert_invalid(&get(g, "/rest", &[bearer(&confused)]).await);

    // Malformed headers: empty token, two spaces, 16 KiB, non-ASCII.
    let good = hs(&claims(&[], ""));
    for value in [
        HeaderValue::from_static("Bearer "),
        HeaderValue::from_str(&format!("Bearer  {good}")).expect("ascii"),
        HeaderValue::from_str(&format!("Bearer {}", "A".repeat(16 * 1024))).expect("ascii"),
        HeaderValue::from_bytes("Bearer jeton-spécial".as_bytes()).expect("obs-text"),
    ] {
        assert_invalid(&get(g, "/rest", &[("authorization", value)]).await);
    }

    // None of the refused requests reached the upstream.
    assert_eq!(s.upstream.request_count(), 4);
}

#[tokio::test]
async fn roles_scopes_and_anonymous_routes_through_the_gateway() {
    let s = setup().await;
    let g = &s.gateway;

    // Roles and scopes per route.
    assert_eq!(
        get(g, "/admin", &[bearer(&hs(&claims(&["admin"], "")))])
            .await
            .status,
        200
    );
    let answer = get(g, "/admin", &[bearer(&hs(&claims(&["viewer"], "")))]).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.body["status"], 403);
    assert_eq!(
        get(g, "/orders", &[bearer(&hs(&claims(&[], "orders:read")))])
            .await
            .status,
        200
    );
    let answer = get(g, "/orders", &[bearer(&hs(&claims(&[], "orders:write")))]).await;
    assert_eq!(answer.status, 403);
    assert_eq!(
        answer.challenge.as_deref(),
        Some("Bearer realm=\"rampart\", error=\"insufficient_scope\", scope=\"orders:read\"")
    );

    // The anonymous route lets a credential-less request through, but not a bad credential.
    assert_eq!(get(g, "/open", &[]).await.status, 200);
    assert_invalid(&get(g, "/open", &[bearer("a.b.c")]).await);

    // Metrics count outcomes; the log never holds a token.
    let text = g.metrics().await;
    assert!(text.contains("rampart_auth_requests_total"), "{text}");
    assert!(text.contains("outcome=\"invalid\""), "{text}");
    assert!(text.contains("outcome=\"forbidden\""), "{text}");
    let good = hs(&claims(&["admin"], ""));
    assert_eq!(get(g, "/admin", &[bearer(&good)]).await.status, 200);

    // A refusal is logged with its reason and request id, and without the credential.
    let other = hs(&claims(&["viewer"], ""));
    let (signed_part, _) = good.rsplit_once('.').expect("jws");
    let (_, foreign_signature) = other.rsplit_once('.').expect("jws");
    let forged = format!("{signed_part}.{foreign_signature}");
    assert_invalid(&get(g, "/admin", &[bearer(&forged)]).await);
    let log = g.log();
    let refusal = log
        .lines()
        .find(|line| line.contains("request not authenticated") && line.contains("signature"))
        .unwrap_or_else(|| panic!("no refusal event in the log:\n{log}"));
    assert!(refusal.contains("request.id="), "{refusal}");
    assert!(!log.contains(foreign_signature), "{log}");
    assert!(!log.contains(&good[good.len() - 20..]), "{log}");
}

#[tokio::test]
async fn jwks_rotation_while_serving() {
    let s = setup().await;
    let g = &s.gateway;
    let idp = |key: &str, kid: &str| {
        let mut c = claims(&[], "");
        c["iss"] = json!("idp");
        token(
            &json!({ "alg": "RS256", "kid": kid }),
            &c,
            &Sign::Rs256(key),
        )
    };

    // Fetched at start-up.
    assert_eq!(
        get(g, "/rest", &[bearer(&idp("rsa.key.pem", "idp-1"))])
            .await
            .status,
        200
    );

    // The identity provider rotates to a new key; tokens naming it verify after one refresh.
    *s.jwks.lock().expect("jwks lock") = json!({ "keys": [rsa_jwk("rsa2.key.pem", "idp-2")] });
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        get(g, "/rest", &[bearer(&idp("rsa2.key.pem", "idp-2"))])
            .await
            .status,
        200
    );
    assert_invalid(&get(g, "/rest", &[bearer(&idp("rsa.key.pem", "idp-1"))]).await);

    // A token from "idp" cannot use issuer "dev"'s keys.
    let mut c = claims(&[], "");
    c["iss"] = json!("idp");
    assert_invalid(&get(g, "/rest", &[bearer(&hs(&c))]).await);
}

// Several worker threads: the CLI runs as a blocking child process while this runtime keeps
// serving the JWKS endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_and_the_cli() {
    let s = setup().await;
    let g = &s.gateway;

    // The static key from the config file.
    let (static_key, _, _) = static_key();
    let key_header = |key: &str| ("x-api-key", HeaderValue::from_str(key).expect("ascii"));
    assert_eq!(
        get(g, "/rest", &[key_header(&static_key)]).await.status,
        200
    );
    let answer = get(g, "/admin", &[key_header(&static_key)]).await;
    assert_eq!(answer.status, 403);

    // `gateway keys create` stores the hash in Redis and prints the key once.
    let (stdout, stderr) = gateway_cli(
        &s.config_path,
        &["keys", "create", "--owner", "alice", "--roles", "admin"],
    );
    let key = stdout.trim().to_owned();
    assert!(key.starts_with("rk_"), "{stdout}");
    assert!(stderr.contains("shown once"), "{stderr}");
    assert_eq!(get(g, "/admin", &[key_header(&key)]).await.status, 200);
    let apikey_auth = (
        "authorization",
        HeaderValue::from_str(&format!("ApiKey {key}")).expect("ascii"),
    );
    assert_eq!(get(g, "/admin", &[apikey_auth]).await.status, 200);

    // Listed by id, never by secret.
    let id = key.split('_').nth(1).expect("id").to_owned();
    let (listing, _) = gateway_cli(&s.config_path, &["keys", "list"]);
    assert!(
        listing.contains(&id) && listing.contains("owner=alice"),
        "{listing}"
    );
    assert!(!listing.contains(key.split('_').nth(2).expect("secret")));

    // Revoked: refused once the gateway's cache entry expires.
    gateway_cli(&s.config_path, &["keys", "revoke", &id]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_invalid(&get(g, "/admin", &[key_header(&key)]).await);

    // An expired key.
    let (stdout, _) = gateway_cli(
        &s.config_path,
        &["keys", "create", "--owner", "bob", "--expires", "1s"],
    );
    let expiring = stdout.trim().to_owned();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_invalid(&get(g, "/rest", &[key_header(&expiring)]).await);

    // A typo and a made-up key.
    let mut typo = key.clone().into_bytes();
    let at = typo.len() - 10;
    typo[at] = if typo[at] == b'a' { b'b' } else { b'a' };
    assert_invalid(
        &get(
            g,
            "/rest",
            &[key_header(&String::from_utf8(typo).expect("ascii"))],
        )
        .await,
    );
    assert_invalid(&get(g, "/rest", &[key_header("rk_not_a_key")]).await);

    // Malformed API key headers: empty, 16 KiB, non-ASCII, and a bare `ApiKey` scheme.
    for (name, value) in [
        ("x-api-key", HeaderValue::from_static("")),
        (
            "x-api-key",
            HeaderValue::from_str(&format!("rk_{}", "A".repeat(16 * 1024))).expect("ascii"),
        ),
        (
            "x-api-key",
            HeaderValue::from_bytes("rk_clé".as_bytes()).expect("obs-text"),
        ),
        ("authorization", HeaderValue::from_static("ApiKey")),
    ] {
        assert_invalid(&get(g, "/rest", &[(name, value)]).await);
    }
    // An empty Authorization carries no credential at all: a plain challenge (RFC 6750 3.1).
    let answer = get(
        g,
        "/rest",
        &[("authorization", HeaderValue::from_static(""))],
    )
    .await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.challenge.as_deref(),
        Some("Bearer realm=\"rampart\"")
    );

    // `gateway token` mints with [auth.jwt.signing]; the gateway accepts it.
    let (stdout, _) = gateway_cli(
        &s.config_path,
        &["token", "--sub", "alice", "--roles", "admin", "--ttl", "1h"],
    );
    assert_eq!(get(g, "/admin", &[bearer(stdout.trim())]).await.status, 200);
}

#[tokio::test]
async fn every_algorithm_through_the_gateway() {
    let s = setup().await;
    let g = &s.gateway;
    let algorithms = [
        "HS384", "HS512", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
        "EdDSA",
    ];
    for alg in algorithms {
        // Signed by openssl with the key configured under this kid: accepted.
        let good = token(
            &json!({ "alg": alg, "kid": alg }),
            &claims(&[], ""),
            &Sign::Alg(alg),
        );
        let answer = get(g, "/rest", &[bearer(&good)]).await;
        assert_eq!(answer.status, 200, "{alg}: {}", answer.body);

        // The same token with its payload swapped: refused.
        let parts: Vec<&str> = good.split('.').collect();
        let mut other = claims(&["admin"], "");
        other["sub"] = json!("mallory");
        let swapped = format!(
            "{}.{}.{}",
            parts[0],
            b64url(other.to_string().as_bytes()),
            parts[2]
        );
        assert_invalid(&get(g, "/rest", &[bearer(&swapped)]).await);
    }
    assert_eq!(s.upstream.request_count(), algorithms.len());
}
