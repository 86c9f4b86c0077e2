//! Private `redis-server` processes.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL_HINT: &str = "redis-server was not found on PATH. Install it (Debian/Ubuntu: \
     `apt-get install redis-server`; macOS: `brew install redis`) or run `bash .ci/run`, \
     which installs it";

/// A `redis-server` of the test's own on a free loopback port, killed on drop.
///
/// It keeps nothing on disk unless started with [`RedisServer::start_persistent`].
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    persistent: bool,
    extra_args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server with persistence off and waits until it answers `PING`.
    pub fn start() -> Self {
        Self::launch(false, Vec::new())
    }

    /// Starts a server that appends every write to disk, so a restart keeps the data.
    pub fn start_persistent() -> Self {
        Self::launch(true, Vec::new())
    }

    fn launch(persistent: bool, extra_args: Vec<String>) -> Self {
        let port = crate::free_port();
        let dir = scratch_dir(&format!("redis-{port}"));
        let mut server = Self {
            port,
            dir,
            persistent,
            extra_args,
            child: None,
        };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on; it stays the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server: clients see refused connections until [`Self::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", ""])
            .args(["--appendonly", if self.persistent { "yes" } else { "no" }])
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = match command.spawn() {
            Ok(child) => child,
            Err(err) => panic!("{INSTALL_HINT} ({err})"),
        };
        self.child = Some(child);
        wait_for_pong(self.port);
    }

    /// Sends one command in RESP inline form and returns the raw reply.
    pub fn command(&self, args: &[&str]) -> String {
        raw_command(self.port, args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Three `redis-server` nodes joined into a Redis Cluster, each owning a third of the slots.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the nodes, assigns the slots and waits for `cluster_state:ok` on every node.
    pub fn start() -> Self {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                let port = cluster_port();
                let dir = scratch_dir(&format!("cluster-{port}"));
                let mut node = RedisServer {
                    port,
                    dir: dir.clone(),
                    persistent: false,
                    extra_args: vec![
                        "--cluster-enabled".into(),
                        "yes".into(),
                        "--cluster-config-file".into(),
                        dir.join("nodes.conf").display().to_string(),
                        "--cluster-node-timeout".into(),
                        "2000".into(),
                    ],
                    child: None,
                };
                node.spawn();
                node
            })
            .collect();

        // Split the 16384 slots in three and introduce the nodes to each other.
        let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
        for (node, (first, last)) in nodes.iter().zip(ranges) {
            let reply = node.command(&[
                "CLUSTER",
                "ADDSLOTSRANGE",
                &first.to_string(),
                &last.to_string(),
            ]);
            assert!(
                reply.starts_with("+OK"),
                "CLUSTER ADDSLOTSRANGE failed: {reply}"
            );
        }
        for node in &nodes[1..] {
            let reply = nodes[0].command(&["CLUSTER", "MEET", "127.0.0.1", &node.port.to_string()]);
            assert!(reply.starts_with("+OK"), "CLUSTER MEET failed: {reply}");
        }

        let deadline = Instant::now() + Duration::from_secs(20);
        while !nodes.iter().all(|node| {
            node.command(&["CLUSTER", "INFO"])
                .contains("cluster_state:ok")
        }) {
            assert!(
                Instant::now() < deadline,
                "redis cluster did not reach cluster_state:ok in 20s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { nodes }
    }

    /// The seed URLs of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes, to stop or inspect one.
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }
}

/// A port whose cluster bus port (port + 10000) is also free.
fn cluster_port() -> u16 {
    loop {
        let port = crate::free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rampart-test-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("creating a scratch directory for redis-server");
    dir
}

fn wait_for_pong(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if try_command(port, &["PING"]).is_ok_and(|reply| reply.starts_with("+PONG")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redis-server on port {port} did not answer PING within 10s; is `redis-server` \
             working? Try running it by hand"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn raw_command(port: u16, args: &[&str]) -> String {
    try_command(port, args).unwrap_or_else(|err| panic!("redis command {args:?} on {port}: {err}"))
}

fn try_command(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;

    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        let _ = write!(request, "${}\r\n{arg}\r\n", arg.len());
    }
    stream.write_all(request.as_bytes())?;

    // One read is enough for the short replies the helpers need; bulk replies may need more.
    let mut reply = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf)?;
        reply.extend_from_slice(&buf[..n]);
        if n == 0 || reply_complete(&reply) {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

fn reply_complete(reply: &[u8]) -> bool {
    let text = String::from_utf8_lossy(reply);
    let Some((head, rest)) = text.split_once("\r\n") else {
        return false;
    };
    match head.as_bytes().first() {
        Some(b'$') => head[1..]
            .parse::<isize>()
            .map_or(true, |len| len < 0 || rest.len() >= len.unsigned_abs() + 2),
        _ => true,
    }
}
