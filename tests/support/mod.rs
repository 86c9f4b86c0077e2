//! Running the real gateway binary in tests.
//!
//! Full-stack tests start `target/<profile>/examples/gateway` as a child process with a TOML
//! configuration of their own, on a free port, and talk to it over loopback like any client.
//! A separate process is the point: SIGTERM, memory use and the command line are tested as an
//! operator meets them.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A gateway process, killed on drop.
pub(crate) struct Gateway {
    child: Option<Child>,
    addr: SocketAddr,
    config_path: PathBuf,
    log: Arc<Mutex<String>>,
}

impl Gateway {
    /// Starts the gateway with `config` (TOML without `listen`, which is chosen here) and waits
    /// until `/healthz` answers.
    pub(crate) async fn start(config: &str) -> Self {
        let port = rampart_test_support::free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let config_path =
            std::env::temp_dir().join(format!("rampart-gateway-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&config_path, format!("listen = \"{addr}\"\n{config}")).unwrap();

        let mut child = gateway_command()
            .arg("--config")
            .arg(&config_path)
            // The layers log refusals at debug; tests read those events.
            .env(
                "RUST_LOG",
                "info,rampart_auth=debug,rampart_webhook=debug,rampart_ratelimit=debug",
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning the gateway binary");

        // Keep the log so that a failing test can show it.
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });

        let mut gateway = Self {
            child: Some(child),
            addr,
            config_path,
            log,
        };
        gateway.wait_until_healthy().await;
        gateway
    }

    async fn wait_until_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = client();
        loop {
            let response = client.get(self.uri("/healthz")).await;
            if response.is_ok_and(|response| response.status() == 200) {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "gateway exited with {status} during start-up:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "gateway not healthy after 30s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The listening address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr><path>`.
    pub(crate) fn uri(&self, path: &str) -> http::Uri {
        format!("http://{}{path}", self.addr).parse().unwrap()
    }

    /// The Prometheus text the gateway serves at `/metrics`.
    pub(crate) async fn metrics(&self) -> String {
        let response = client().get(self.uri("/metrics")).await.unwrap();
        String::from_utf8(body_bytes(response.into_body()).await.to_vec()).unwrap()
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap()
    }

    /// Everything the gateway logged so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits up to five seconds for the log to contain `needle`, then returns the log.
    ///
    /// The log is read from a pipe by another thread, so a line may land a moment after the
    /// response that caused it.
    pub(crate) async fn log_containing(&self, needle: &str) -> String {
        for _ in 0..250 {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("gateway log never contained {needle:?}:\n{}", self.log());
    }

    /// Sends SIGTERM, as an orchestrator does.
    pub(crate) fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends the signal of this name (`TERM`, `INT`, ...).
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub(crate) async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "gateway still running after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A field of `/proc/<pid>/status` in KiB (`VmRSS`, or `VmHWM` for the peak).
    pub(crate) fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} missing from /proc status"))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.config_path);
    }
}

/// Runs `gateway check-config` on a file holding `config`, asserts that it fails, and returns
/// what it printed to stderr.
pub(crate) fn check_config_fails(config: &str) -> String {
    let path = std::env::temp_dir().join(format!("rampart-bad-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, config).unwrap();
    let output = gateway_command()
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(!output.status.success(), "check-config accepted:\n{config}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The command that runs the gateway example built for this test run.
pub(crate) fn gateway_command() -> Command {
    Command::new(gateway_binary())
}

fn gateway_binary() -> PathBuf {
    // Tests run from target/<profile>/deps; examples are built into target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let binary = profile_dir.join("examples").join("gateway");
    assert!(
        binary.exists(),
        "{} is missing: run the tests with plain `cargo test`, which builds the examples, or \
         `cargo build --example gateway` first",
        binary.display()
    );
    binary
}

/// A plain HTTP/1.1 client.
pub(crate) fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// Reads a whole response body.
pub(crate) async fn body_bytes(body: hyper::body::Incoming) -> Bytes {
    body.collect()
        .await
        .expect("reading the response body")
        .to_bytes()
}

/// Reads a body as JSON.
pub(crate) async fn body_json(body: hyper::body::Incoming) -> serde_json::Value {
    let bytes = body_bytes(body).await;
    serde_json::from_slice(&bytes).unwrap_or_else(|err| {
        panic!(
            "body is not JSON ({err}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// An `[upstreams.<name>]` table and a catch-all route `<name>` to it.
pub(crate) fn route_to(name: &str, url: &str, extra_upstream: &str) -> String {
    format!(
        "[upstreams.{name}]\nurl = \"{url}\"\n{extra_upstream}\n\n\
         [[routes]]\nname = \"{name}\"\nprefix = \"/\"\nupstream = \"{name}\"\n"
    )
}
