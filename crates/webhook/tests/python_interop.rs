//! Signatures made by an independent implementation (Python's `hmac`, `hashlib` and `base64`
//! modules, in `tests/interop.py`) verify here, and ours verify there.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use rampart_webhook::{SchemeKind, SignConfig, Signer, Verifier, VerifyConfig};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop.py");

fn python(args: &[&str], body: &[u8]) -> String {
    let mut child = Command::new("python3")
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed for the interop tests");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "interop.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn cases() -> Vec<(SchemeKind, &'static str, &'static str)> {
    vec![
        (
            SchemeKind::Standard,
            "standard",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
        (
            SchemeKind::Timestamped,
            "timestamped",
            "a timestamped secret",
        ),
        (SchemeKind::Github, "github", "It's a Secret to Everybody"),
    ]
}

fn bodies() -> Vec<Vec<u8>> {
    let mut noise = Vec::with_capacity(70_000);
    let mut state: u32 = 0x9e37_79b9;
    for _ in 0..70_000 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        noise.push(state.to_le_bytes()[0]);
    }
    vec![
        Vec::new(),
        br#"{"type":"run.finished","data":{"id":42}}"#.to_vec(),
        vec![0xff, 0xfe, 0x00, b'.', 0x80, b'\n'],
        noise,
    ]
}

#[test]
fn python_signatures_verify_here() {
    let ts = 1_700_000_000u64;
    let now = UNIX_EPOCH + Duration::from_secs(ts);
    for (scheme, name, secret) in cases() {
        let verifier = Verifier::new(&VerifyConfig {
            scheme,
            secrets: vec![secret.into()],
            ..VerifyConfig::default()
        })
        .unwrap();
        for body in bodies() {
            // Python signs; we parse its header lines and verify.
            let lines = python(
                &["sign", name, secret, "msg_from_python", &ts.to_string()],
                &body,
            );
            let mut headers = HeaderMap::new();
            for line in lines.lines() {
                let (header, value) = line.split_once(": ").unwrap();
                headers.insert(
                    http::HeaderName::from_bytes(header.as_bytes()).unwrap(),
                    value.parse().unwrap(),
                );
            }
            verifier
                .verify(&headers, &body, now)
                .unwrap_or_else(|err| panic!("{name}, {} bytes: {err}", body.len()));

            // The same headers over another body do not verify.
            let mut other = body.clone();
            other.push(b'!');
            assert!(verifier.verify(&headers, &other, now).is_err(), "{name}");
        }
    }
}

#[test]
fn our_signatures_verify_in_python() {
    for (scheme, name, secret) in cases() {
        let signer = Signer::new(&SignConfig {
            scheme,
            secrets: vec![secret.into()],
            ..SignConfig::default()
        })
        .unwrap();
        for body in bodies() {
            // We sign; Python checks with its own HMAC.
            let signed = signer.sign(&body, SystemTime::now());
            let headers: serde_json::Map<String, serde_json::Value> = signed
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().into()))
                .collect();
            let headers = serde_json::Value::Object(headers).to_string();
            assert_eq!(
                python(&["verify", name, secret, &headers], &body).trim(),
                "ok",
                "{name}, {} bytes",
                body.len()
            );

            // Python refuses our headers over a tampered body, so the check above can fail.
            let mut tampered = body.clone();
            tampered.insert(0, b' ');
            assert_eq!(
                python(&["verify", name, secret, &headers], &tampered).trim(),
                "mismatch"
            );
        }
    }
}
