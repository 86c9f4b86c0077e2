//! JWKS over `https://`: a CA and a server certificate made at run time, a real TLS server on
//! loopback, and the built-in fetcher trusting that CA through `ca_file` (or not).

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::*;
use http::Response;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::Algorithm as Jwt;
use jsonwebtoken::jwk::Jwk;
use rampart_auth::jwt::jwks::HttpFetcher;
use rampart_auth::jwt::{
    Algorithm, JwksFetcher, JwksResponse, JwksUrlConfig, JwtConfig, JwtVerifier, RemoteJwks,
};
use rampart_auth::{AuthConfig, AuthError, Authenticator, KeyHasher};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A CA made for one test, and the PEM file that holds its certificate.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    pem_file: PathBuf,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("ca key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("rampart test CA {name}"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("ca cert");
        let dir = std::env::temp_dir().join(format!("rampart-auth-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let pem_file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&pem_file, cert.pem()).expect("write ca");
        Self {
            issuer: Issuer::new(params, key),
            cert: cert.der().clone(),
            pem_file,
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses), with its key.
    fn server_cert(
        &self,
        names: &[&str],
    ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "rampart test IdP");
        let cert = params.signed_by(&key, &self.issuer).expect("server cert");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![cert.der().clone(), self.cert.clone()], key)
    }
}

/// A JWKS served over TLS on loopback. `requests` counts HTTP requests that got through the
/// handshake.
struct TlsJwksServer {
    port: u16,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsJwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsJwksServer {
    async fn start(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        body: String,
    ) -> Self {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server tls config");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let body = Bytes::from(body);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let counter = counter.clone();
                let body = body.clone();
                tokio::spawn(async move {
                    // A client that does not trust the certificate aborts here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |_request| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let response = Response::builder()
                            .header(http::header::CONTENT_TYPE, "application/json")
                            .body(Full::new(body.clone()));
                        async move { response }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            port,
            requests,
            task,
        }
    }

    fn url(&self, host: &str) -> String {
        format!("https://{host}:{}/.well-known/jwks.json", self.port)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn jwks_of(private_pem: &str, kid: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&fixture(private_pem)).expect("fixture");
    let mut jwk = Jwk::from_encoding_key(&key, Jwt::RS256).expect("jwk");
    jwk.common.key_id = Some(kid.to_owned());
    json!({ "keys": [jwk] }).to_string()
}

fn signed(private_pem: &str, kid: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&fixture(private_pem)).expect("fixture");
    mint(Jwt::RS256, &key, Some(kid), &claims("alice"))
}

/// A gateway-style configuration: one issuer whose keys come from `jwks_url`.
fn jwt_config(url: &str, ca_file: Option<&PathBuf>) -> JwtConfig {
    let ca = ca_file.map_or(String::new(), |path| {
        format!(", ca_file = {:?}", path.display().to_string())
    });
    toml::from_str(&format!(
        "[[issuers]]\nkeys = [{{ jwks_url = {{ url = {url:?}, algorithms = [\"RS256\"]{ca} }} }}]\n"
    ))
    .expect("jwt config")
}

async fn start_verifier(config: &JwtConfig) -> Result<JwtVerifier, AuthError> {
    JwtVerifier::from_config(config, Arc::new(HttpFetcher::default())).await
}

#[tokio::test]
async fn a_jwks_served_over_https_by_a_private_ca_verifies_tokens() {
    let ca = TestCa::new("trusted");
    let (chain, key) = ca.server_cert(&["127.0.0.1", "localhost"]);
    let server = TlsJwksServer::start(chain, key, jwks_of("rsa.key.pem", "k1")).await;

    let config = jwt_config(&server.url("127.0.0.1"), Some(&ca.pem_file));
    let verifier = start_verifier(&config)
        .await
        .expect("start-up fetch over https");
    assert_eq!(server.requests(), 1, "fetched once at start-up");

    let layer = layer(
        Authenticator::new(
            &AuthConfig::default(),
            KeyHasher::sha256(),
            None,
            Some(verifier),
        )
        .expect("auth"),
    );
    let accepted = send_through(&layer, bearer(&signed("rsa.key.pem", "k1"))).await;
    assert_eq!(accepted.status, 200, "body: {}", accepted.body);
    assert_eq!(accepted.body["subject"], "alice");

    // A token naming k1 but signed by another key is refused.
    assert_refused(&send_through(&layer, bearer(&signed("rsa2.key.pem", "k1"))).await);

    // By host name as well: the certificate names `localhost` too.
    let by_name = jwt_config(&server.url("localhost"), Some(&ca.pem_file));
    start_verifier(&by_name).await.expect("fetch via localhost");
}

#[tokio::test]
async fn without_the_ca_start_up_fails_with_a_certificate_error() {
    let ca = TestCa::new("untrusted");
    let (chain, key) = ca.server_cert(&["127.0.0.1"]);
    let server = TlsJwksServer::start(chain, key, jwks_of("rsa.key.pem", "k1")).await;
    let url = server.url("127.0.0.1");

    let err = start_verifier(&jwt_config(&url, None))
        .await
        .expect_err("a certificate from an unknown CA is refused");
    let AuthError::Jwks {
        url: failed,
        reason,
    } = &err
    else {
        panic!("expected a JWKS error, got {err}");
    };
    assert_eq!(failed, &url);
    assert!(
        reason.contains("invalid peer certificate") && reason.contains("UnknownIssuer"),
        "the error says why: {err}"
    );
    assert_eq!(
        server.requests(),
        0,
        "no request crossed the failed handshake"
    );

    // A different CA's file does not help either.
    let other = TestCa::new("other");
    let err = start_verifier(&jwt_config(&url, Some(&other.pem_file)))
        .await
        .expect_err("the wrong CA is refused");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused_even_from_the_trusted_ca() {
    let ca = TestCa::new("misnamed");
    let (chain, key) = ca.server_cert(&["idp.example.com"]);
    let server = TlsJwksServer::start(chain, key, jwks_of("rsa.key.pem", "k1")).await;

    let err = start_verifier(&jwt_config(&server.url("127.0.0.1"), Some(&ca.pem_file)))
        .await
        .expect_err("the certificate does not name 127.0.0.1");
    assert!(
        err.to_string()
            .contains("certificate not valid for name \"127.0.0.1\""),
        "{err}"
    );
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn a_bad_ca_file_fails_start_up_with_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("rampart-auth-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = "https://127.0.0.1:9/jwks.json";

    let missing = dir.join("no-such-ca.pem");
    let err = start_verifier(&jwt_config(url, Some(&missing)))
        .await
        .expect_err("missing file");
    assert!(
        matches!(&err, AuthError::Read { path, .. } if path == &missing),
        "{err}"
    );

    let not_pem = dir.join("not-a-ca.pem");
    std::fs::write(&not_pem, "just some text\n").expect("write");
    let err = start_verifier(&jwt_config(url, Some(&not_pem)))
        .await
        .expect_err("no certificate in the file");
    assert!(
        matches!(&err, AuthError::Config { field: "jwks_url.ca_file", reason }
            if reason.contains("no CERTIFICATE block")),
        "{err}"
    );

    // ca_file on a plain http:// URL is a configuration mistake, not silently ignored.
    let ca = TestCa::new("plain");
    let err = start_verifier(&jwt_config(
        "http://127.0.0.1:9/jwks.json",
        Some(&ca.pem_file),
    ))
    .await
    .expect_err("ca_file needs https");
    assert!(
        matches!(
            &err,
            AuthError::Config {
                field: "jwks_url.ca_file",
                ..
            }
        ),
        "{err}"
    );
}

/// A fetcher of the embedder's own that knows nothing of extra CAs.
#[derive(Debug)]
struct OwnFetcher;

impl JwksFetcher for OwnFetcher {
    fn fetch<'a>(
        &'a self,
        _url: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<JwksResponse, String>> {
        Box::pin(async {
            Ok(JwksResponse {
                body: Bytes::from(jwks_of("rsa.key.pem", "k1")),
                max_age: None,
            })
        })
    }
}

#[tokio::test]
async fn a_custom_fetcher_that_cannot_take_the_ca_file_refuses_it() {
    let ca = TestCa::new("custom");
    let mut config = JwksUrlConfig::new("https://idp.internal/jwks.json", vec![Algorithm::RS256]);
    // Without ca_file the fetcher serves the set.
    RemoteJwks::start(config.clone(), Arc::new(OwnFetcher))
        .await
        .expect("own fetcher");
    config.ca_file = Some(ca.pem_file.clone());
    let err = RemoteJwks::start(config, Arc::new(OwnFetcher))
        .await
        .expect_err("ca_file cannot be honoured");
    assert!(
        matches!(&err, AuthError::Config { field: "jwks_url.ca_file", reason }
            if reason.contains("cannot take extra CA certificates")),
        "{err}"
    );
}
