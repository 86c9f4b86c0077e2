//! The gateway's HTTP/1.1 wire behaviour as a client meets it: pipelining, chunked bodies,
//! interim responses, keep-alive and close, and the refusals that keep one request from being
//! read two ways (request smuggling).
//!
//! Unlike `gateway_proxy.rs`, which goes through a client library, most tests here write and
//! read raw bytes on a `TcpStream`: the framing itself is what they check, and any HTTP/1.1
//! codec behind the gateway must pass them.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rampart_test_support::{Behavior, Upstream, UpstreamBody};
use support::{Gateway, body_bytes, route_to};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long one read may wait: a guard against a hang, never a measure of speed.
const GUARD: Duration = Duration::from_secs(5);

/// A response as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Names lowercased, values trimmed, in the order received.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    /// The first value of the header `name` (lowercase).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The line of `bytes` starting at `at`, without its CRLF, and where the next line starts.
fn line(bytes: &[u8], at: usize) -> Option<(&str, usize)> {
    let len = bytes
        .get(at..)?
        .windows(2)
        .position(|pair| pair == b"\r\n")?;
    let text = std::str::from_utf8(&bytes[at..at + len]).expect("a response line in UTF-8");
    Some((text, at + len + 2))
}

/// One response from the start of `bytes` and how many bytes it took, or `None` while it is
/// incomplete. `eof` says the gateway closed, which ends a body of no announced length.
fn parse(bytes: &[u8], head_only: bool, eof: bool) -> Option<(Answer, usize)> {
    let (status_line, mut at) = line(bytes, 0)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
    let mut answer = Answer {
        status,
        headers: Vec::new(),
        body: Vec::new(),
    };

    loop {
        let (text, next) = line(bytes, at)?;
        at = next;
        if text.is_empty() {
            break;
        }
        let (name, value) = text
            .split_once(':')
            .unwrap_or_else(|| panic!("not a header line: {text:?}"));
        answer
            .headers
            .push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    if head_only || status < 200 || status == 204 || status == 304 {
        return Some((answer, at));
    }

    let chunked = answer
        .header("transfer-encoding")
        .is_some_and(|codings| codings.to_ascii_lowercase().ends_with("chunked"));
    let (body, end) = if chunked {
        dechunk(bytes, at)?
    } else if let Some(length) = answer.header("content-length") {
        let length: usize = length.parse().expect("a numeric content-length");
        (bytes.get(at..at + length)?.to_vec(), at + length)
    } else if eof {
        (bytes[at..].to_vec(), bytes.len())
    } else {
        return None;
    };
    answer.body = body;
    Some((answer, end))
}

/// Decodes the chunked body starting at `at`: its data and where the message ends.
fn dechunk(bytes: &[u8], mut at: usize) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    loop {
        let (size_line, data) = line(bytes, at)?;
        let digits = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(digits, 16)
            .unwrap_or_else(|_| panic!("bad chunk size from the gateway: {size_line:?}"));

        // The last chunk; trailer fields, if any, end with an empty line.
        if size == 0 {
            let mut at = data;
            loop {
                let (trailer, next) = line(bytes, at)?;
                at = next;
                if trailer.is_empty() {
                    return Some((body, at));
                }
            }
        }
        body.extend_from_slice(bytes.get(data..data + size)?);
        at = data + size + 2;
        assert_eq!(
            bytes.get(data + size..at)?,
            b"\r\n",
            "chunk data not followed by CRLF"
        );
    }
}

/// One client connection spoken to in bytes, keeping what arrives past one response.
struct Wire {
    stream: TcpStream,
    received: Vec<u8>,
    closed: bool,
}

impl Wire {
    async fn connect(gateway: &Gateway) -> Self {
        Self {
            stream: TcpStream::connect(gateway.addr()).await.unwrap(),
            received: Vec::new(),
            closed: false,
        }
    }

    /// Opens a connection, sends `request` and reads the answer to it.
    async fn ask(gateway: &Gateway, request: &str) -> (Self, Answer) {
        let mut wire = Self::connect(gateway).await;
        wire.send(request).await;
        let answer = wire.response().await;
        (wire, answer)
    }

    async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream
            .write_all(bytes.as_ref())
            .await
            .expect("writing to the gateway");
    }

    /// One read of at most `GUARD`; `None` if nothing came. A reset counts as a close.
    async fn read_more(&mut self) -> Option<()> {
        let read = tokio::time::timeout(GUARD, self.stream.read_buf(&mut self.received))
            .await
            .ok()?;
        self.closed = matches!(read, Ok(0) | Err(_));
        Some(())
    }

    /// The next whole response.
    async fn response(&mut self) -> Answer {
        self.next(false).await
    }

    /// The head of the next response, for a HEAD request or an interim `100 Continue`.
    async fn head(&mut self) -> Answer {
        self.next(true).await
    }

    async fn next(&mut self, head_only: bool) -> Answer {
        loop {
            if let Some((answer, used)) = parse(&self.received, head_only, self.closed) {
                self.received.drain(..used);
                return answer;
            }
            let so_far = String::from_utf8_lossy(&self.received).into_owned();
            assert!(!self.closed, "connection closed mid-response: {so_far:?}");
            assert!(
                self.read_more().await.is_some(),
                "no whole response within {GUARD:?}: {so_far:?}"
            );
        }
    }

    /// Reads until the gateway closes; returns what it sent after the responses read so far.
    async fn until_closed(&mut self) -> Vec<u8> {
        while !self.closed {
            assert!(
                self.read_more().await.is_some(),
                "connection still open {GUARD:?} after the last response"
            );
        }
        std::mem::take(&mut self.received)
    }

    /// Asserts that the gateway closes the connection and sends nothing more.
    async fn assert_closes(&mut self) {
        let rest = self.until_closed().await;
        assert!(
            rest.is_empty(),
            "bytes after the last response: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

/// `GET path` with a Host header.
fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: gateway.test\r\n\r\n")
}

/// `POST path` of `body`, framed by Content-Length.
fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// An echo upstream and a gateway routing everything to it.
async fn echo_gateway() -> (Upstream, Gateway) {
    let upstream = Upstream::start(Behavior::Echo).await;
    let gateway = Gateway::start(&route_to("echo", &upstream.url(), "")).await;
    (upstream, gateway)
}

/// Asserts that `answer`, the answer `to` a request, is a problem document of `status`.
fn assert_problem(answer: &Answer, status: u16, to: &str) {
    assert_eq!(
        answer.status,
        status,
        "answer to {to:?}; body {:?}",
        answer.text()
    );
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json"),
        "content-type of the answer to {to:?}; headers {:?}",
        answer.headers
    );
    let problem: serde_json::Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|err| panic!("problem body is not JSON ({err}): {:?}", answer.text()));
    assert_eq!(problem["status"], status);
}

/// Sends `request` on a fresh connection and asserts a `status` problem that the upstream
/// never saw; with `closes`, also that the gateway then closes the connection.
async fn assert_refused(request: &str, status: u16, closes: bool) {
    let (upstream, gateway) = echo_gateway().await;
    let (mut wire, answer) = Wire::ask(&gateway, request).await;
    assert_problem(&answer, status, request);
    assert_eq!(upstream.request_count(), 0, "the upstream saw {request:?}");
    if closes {
        wire.assert_closes().await;
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    // An upstream that answers with the path it was asked for.
    let upstream = Upstream::start_fn(|request| async move {
        let path = Bytes::from(request.uri().path().to_owned());
        Response::new(Full::new(path).map_err(|never| match never {}).boxed())
    })
    .await;
    let gateway = Gateway::start(&route_to("paths", &upstream.url(), "")).await;

    // Two requests in one write: two answers, each to its own request, in order.
    let mut wire = Wire::connect(&gateway).await;
    wire.send(get("/first") + &get("/second")).await;
    for path in ["/first", "/second"] {
        let answer = wire.response().await;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.text(), path);
    }
    let seen: Vec<_> = upstream
        .requests()
        .iter()
        .map(|r| r.uri.to_string())
        .collect();
    assert_eq!(seen, ["/first", "/second"]);
}

#[tokio::test]
async fn a_chunked_request_body_reaches_the_upstream_whole() {
    let (upstream, gateway) = echo_gateway().await;

    // Three chunks, one with an extension, then a trailer field.
    let request = "POST /upload HTTP/1.1\r\nHost: gateway.test\r\n\
         Transfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n6;name=value\r\n, wide\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n";
    let (_wire, answer) = Wire::ask(&gateway, request).await;

    // The echo returns exactly the de-chunked data.
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "hello, wide world");
    assert_eq!(upstream.request_count(), 1);
}

#[tokio::test]
async fn expect_100_continue_gets_an_interim_answer_before_the_body() {
    let (_upstream, gateway) = echo_gateway().await;

    // Only the head: the gateway must invite the body.
    let mut wire = Wire::connect(&gateway).await;
    wire.send(
        "POST /upload HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 11\r\n\
         Expect: 100-continue\r\n\r\n",
    )
    .await;
    let interim = wire.head().await;
    assert_eq!(interim.status, 100, "expected 100 Continue before the body");

    // Then the body, and the proxied answer.
    wire.send("hello world").await;
    let answer = wire.response().await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "hello world");
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_refused() {
    assert_refused(
        "POST / HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 5\r\n\
         Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        true,
    )
    .await;
}

#[tokio::test]
async fn two_different_content_lengths_are_refused() {
    assert_refused(
        "POST / HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 5\r\n\
         Content-Length: 6\r\n\r\nhello!",
        400,
        true,
    )
    .await;
}

#[tokio::test]
async fn a_content_length_that_is_not_plain_digits_is_refused() {
    for length in ["abc", "-1", "+5"] {
        let request = format!(
            "POST / HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: {length}\r\n\r\nhello"
        );
        assert_refused(&request, 400, true).await;
    }
}

/// A POST of `hello` in chunks, under a Transfer-Encoding of `codings`.
fn with_transfer_encoding(codings: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: gateway.test\r\nTransfer-Encoding: {codings}\r\n\r\n\
         5\r\nhello\r\n0\r\n\r\n"
    )
}

#[tokio::test]
async fn chunked_not_last_is_refused() {
    assert_refused(&with_transfer_encoding("chunked, gzip"), 400, true).await;
}

#[tokio::test]
async fn a_transfer_coding_we_do_not_decode_is_not_implemented() {
    // Framing is known here, so closing the connection is not required.
    assert_refused(&with_transfer_encoding("gzip, chunked"), 501, false).await;
}

#[tokio::test]
async fn a_malformed_request_line_is_refused() {
    assert_refused("GARBAGE\r\n\r\n", 400, true).await;
}

#[tokio::test]
async fn a_request_head_over_64_kib_is_refused() {
    let (_upstream, gateway) = echo_gateway().await;

    // One header of 70 KiB. The gateway may answer before reading it all, so a failed write
    // is no failure: the answer is.
    let mut wire = Wire::connect(&gateway).await;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: gateway.test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let _ = wire.stream.write_all(request.as_bytes()).await;

    assert_problem(&wire.response().await, 431, "a 70 KiB header");
}

#[tokio::test]
async fn an_http_1_1_request_needs_exactly_one_host() {
    let (upstream, gateway) = echo_gateway().await;

    // No Host, then two: each refused on a connection of its own, neither forwarded.
    for request in [
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
    ] {
        let (_wire, answer) = Wire::ask(&gateway, request).await;
        assert_eq!(answer.status, 400, "answer to {request:?}");
        assert_eq!(upstream.request_count(), 0, "the upstream saw {request:?}");
    }
}

/// Sends `request` to an echo gateway, asserts that it was proxied and answered 200 and that
/// the gateway then closes the connection, and returns the answer.
async fn answered_then_closed(request: &str) -> Answer {
    let (upstream, gateway) = echo_gateway().await;
    let (mut wire, answer) = Wire::ask(&gateway, request).await;
    assert_eq!(answer.status, 200, "answer to {request:?}");
    assert_eq!(upstream.request_count(), 1);
    wire.assert_closes().await;
    answer
}

#[tokio::test]
async fn an_http_1_0_request_is_answered_and_the_connection_closed() {
    // Without keep-alive, the gateway closes once it has answered.
    let answer = answered_then_closed(
        "POST /old HTTP/1.0\r\nHost: gateway.test\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;

    // An HTTP/1.0 client cannot decode chunked framing.
    assert_eq!(answer.header("transfer-encoding"), None);
    assert_eq!(answer.text(), "hello");
}

#[tokio::test]
async fn a_head_answer_has_no_body_and_the_connection_stays_in_step() {
    let upstream = Upstream::start(Behavior::Stream { total: 1000 }).await;
    let gateway = Gateway::start(&route_to("stream", &upstream.url(), "")).await;

    // The head announces the GET body's length but carries none of it.
    let mut wire = Wire::connect(&gateway).await;
    wire.send("HEAD /file HTTP/1.1\r\nHost: gateway.test\r\n\r\n")
        .await;
    let head = wire.head().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("1000"));

    // A GET on the same connection is read from the first byte after that head.
    wire.send(get("/file")).await;
    let answer = wire.response().await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, vec![b'x'; 1000]);
}

#[tokio::test]
async fn connection_close_from_the_client_is_honoured() {
    let answer =
        answered_then_closed("GET / HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n")
            .await;

    // The answer says so as well.
    let connection = answer.header("connection").unwrap_or_default();
    assert!(
        connection.to_ascii_lowercase().contains("close"),
        "connection header {connection:?}"
    );
}

#[tokio::test]
async fn fifty_requests_share_one_kept_alive_connection() {
    let (upstream, gateway) = echo_gateway().await;
    let mut wire = Wire::connect(&gateway).await;

    for i in 0..50 {
        let body = format!("request {i}");
        wire.send(post("/", &body)).await;
        let answer = wire.response().await;
        assert_eq!(answer.status, 200, "request {i}");
        assert_eq!(answer.text(), body);
    }
    assert_eq!(upstream.request_count(), 50);
}

#[tokio::test]
async fn an_http2_prior_knowledge_client_is_proxied() {
    let (_upstream, gateway) = echo_gateway().await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();

    let request = Request::post(gateway.uri("/"))
        .body(Full::new(Bytes::from_static(b"over h2")))
        .unwrap();
    let response = tokio::time::timeout(GUARD, client.request(request))
        .await
        .expect("no HTTP/2 answer within the guard")
        .expect("an HTTP/2 answer");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(body_bytes(response.into_body()).await, "over h2");
}

#[tokio::test]
async fn a_malformed_chunk_size_is_refused_or_cuts_the_answer_short() {
    // An echo upstream that also tells how its request body ended: `Some(true)` when whole.
    let (ended_tx, ended) = tokio::sync::watch::channel(None::<bool>);
    let ended_tx = Arc::new(ended_tx);
    let upstream = Upstream::start_fn(move |request| {
        let ended_tx = ended_tx.clone();
        let frames = futures_util::stream::unfold(Some(request.into_body()), move |body| {
            let ended_tx = ended_tx.clone();
            async move {
                let mut body = body?;
                let frame = body.frame().await;
                ended_tx.send_replace(match &frame {
                    None => Some(true),
                    Some(Err(_)) => Some(false),
                    Some(Ok(_)) => None,
                });
                // After an error the body is done: read no further.
                let frame = frame?;
                let rest = frame.is_ok().then_some(body);
                Some((frame.map_err(BoxError::from), rest))
            }
        });
        let response: Response<UpstreamBody> = Response::new(StreamBody::new(frames).boxed());
        async move { response }
    })
    .await;
    let gateway = Gateway::start(&route_to("echo", &upstream.url(), "")).await;

    // A good chunk, then a size that is not hexadecimal.
    let mut wire = Wire::connect(&gateway).await;
    wire.send(
        "POST / HTTP/1.1\r\nHost: gateway.test\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n",
    )
    .await;
    let received = wire.until_closed().await;

    match parse(&received, false, true) {
        // Refused before answering: a 400 problem and nothing after it.
        Some((answer, used)) => {
            assert_problem(&answer, 400, "a malformed chunk size");
            assert_eq!(used, received.len(), "bytes after the 400 answer");
        }
        // Answered already: the head went out and the body was cut short, as the client sees.
        None => assert!(
            parse(&received, true, true).is_some(),
            "closed without an answer: {:?}",
            String::from_utf8_lossy(&received)
        ),
    }

    // Whatever reached the upstream ends in an error, never as a complete body.
    if upstream.request_count() > 0 {
        let mut ended = ended.clone();
        let _ = tokio::time::timeout(GUARD, ended.wait_for(Option::is_some)).await;
    }
    assert_ne!(
        *ended.borrow(),
        Some(true),
        "the upstream saw a complete body"
    );
}

#[tokio::test]
async fn a_gateway_made_answer_has_a_date_and_its_exact_length() {
    let upstream = Upstream::start(Behavior::Echo).await;
    let config = format!(
        "[upstreams.api]\nurl = \"{}\"\n\
         [[routes]]\nname = \"api\"\nprefix = \"/api\"\nupstream = \"api\"\n",
        upstream.url()
    );
    let gateway = Gateway::start(&config).await;

    // No route matches: the gateway answers 404 itself.
    let (mut wire, answer) = Wire::ask(&gateway, &get("/elsewhere")).await;
    assert_problem(&answer, 404, "an unrouted path");

    // An IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    let date = answer.header("date").expect("a date header");
    assert!(
        date.len() == 29 && date.as_bytes()[3] == b',' && date.ends_with(" GMT"),
        "date {date:?}"
    );
    let length = answer.header("content-length").expect("a content-length");
    assert_eq!(length, answer.body.len().to_string());

    // The length was exact: the next answer on the connection starts right after the body.
    wire.send(get("/healthz")).await;
    assert_eq!(wire.response().await.status, 200);
}

/// An upstream that answers one request per connection, without saying it will close, and
/// closes the connection shortly after: as servers with a short keep-alive timeout do. Counts
/// the connections it accepted.
async fn upstream_closing_idle_connections() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                // Read the head and as much body as it announces.
                let mut request = Vec::new();
                loop {
                    if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .map_or(0, |value| value.trim().parse().unwrap());
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                    if stream.read_buf(&mut request).await.unwrap_or(0) == 0 {
                        return;
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nonce")
                    .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            });
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn a_post_after_the_upstream_closed_its_idle_connection_is_answered() {
    let (url, accepted) = upstream_closing_idle_connections().await;
    let gateway = Gateway::start(&route_to("closing", &url, "")).await;

    let (_, first) = Wire::ask(&gateway, &get("/")).await;
    assert_eq!(first.status, 200);
    // Long enough for the upstream to close the pooled connection.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A POST may not be sent twice, so it must not go out on the closed connection at all.
    let (_, second) = Wire::ask(&gateway, &post("/", "ping")).await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(second.text(), "once");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_head_arriving_byte_by_byte_is_read_whole() {
    let (upstream, gateway) = echo_gateway().await;
    let mut wire = Wire::connect(&gateway).await;
    wire.stream.set_nodelay(true).unwrap();
    // Each byte in a segment of its own, so the end of the head spans several reads.
    for byte in post("/trickle", "abc").bytes() {
        wire.send([byte]).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let answer = wire.response().await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "abc");
    assert_eq!(upstream.request_count(), 1);
}

#[tokio::test]
async fn the_response_carries_one_request_id_the_gateways() {
    // An upstream that sets an id of its own on every answer.
    let upstream = Upstream::start_fn(|_request| async {
        let mut response = rampart_test_support::fixed(StatusCode::OK, "ok");
        response
            .headers_mut()
            .insert("x-request-id", "upstream-made".parse().unwrap());
        response
    })
    .await;
    let gateway = Gateway::start(&route_to("ids", &upstream.url(), "")).await;

    let request = "GET / HTTP/1.1\r\nHost: gateway.test\r\nX-Request-Id: client-made\r\n\r\n";
    let (_, answer) = Wire::ask(&gateway, request).await;
    let ids: Vec<_> = answer
        .headers
        .iter()
        .filter(|(name, _)| name == "x-request-id")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(ids, ["client-made"]);
}

#[tokio::test]
async fn a_body_the_gateway_did_not_read_is_drained_and_the_connection_kept() {
    let (upstream, gateway) = echo_gateway().await;
    let mut wire = Wire::connect(&gateway).await;

    // The admin endpoint refuses a POST without reading its body.
    wire.send(post("/healthz", &"x".repeat(10_000))).await;
    let refused = wire.response().await;
    assert_eq!(refused.status, 405);
    assert_ne!(refused.header("connection"), Some("close"));

    // The same connection then carries the next request, its framing intact.
    wire.send(post("/after", "next")).await;
    let answer = wire.response().await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "next");
    assert_eq!(upstream.request_count(), 1);
}
