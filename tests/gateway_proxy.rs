//! The gateway as a reverse proxy: streaming, errors, headers, shutdown and metrics, tested
//! through the real binary against real upstream servers.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use rampart_test_support::{Behavior, RedisServer, Upstream, free_port};
use support::{Gateway, body_bytes, body_json, client, route_to};

#[tokio::test]
async fn a_request_is_proxied_with_forwarding_headers() {
    let upstream = Upstream::start(Behavior::Echo).await;
    let gateway = Gateway::start(&route_to("echo", &upstream.url(), "")).await;

    let request = Request::post(gateway.uri("/agents/run?x=1"))
        .header("host", "api.example.test")
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap();
    let response = client().request(request).await.unwrap();

    // The client gets the upstream's answer, marked as passing through us.
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-upstream"], "echo");
    assert_eq!(response.headers()["via"], "1.1 rampart");
    assert_eq!(body_bytes(response.into_body()).await, "hello");

    // The upstream saw the path, the query and the forwarding headers.
    let seen = &upstream.requests()[0];
    assert_eq!(
        seen.uri.path_and_query().unwrap().as_str(),
        "/agents/run?x=1"
    );
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["x-forwarded-host"], "api.example.test");
    assert_eq!(seen.headers["via"], "1.1 rampart");
    assert_eq!(seen.headers["host"], upstream.addr().to_string());
}

#[tokio::test]
async fn the_client_address_is_written_exactly_whatever_its_digits() {
    let upstream = Upstream::start(Behavior::Echo).await;
    let gateway = Gateway::start(&route_to("echo", &upstream.url(), "")).await;

    // All of 127.0.0.0/8 is loopback: clients bound to these addresses have octets of one,
    // two and three digits, zeros and the largest octet.
    let clients = ["127.0.0.1", "127.10.99.200", "127.0.9.255", "127.100.0.10"];
    for (i, client_addr) in clients.iter().enumerate() {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(format!("{client_addr}:0").parse().unwrap())
            .unwrap();
        let stream = socket.connect(gateway.addr()).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);

        let request = Request::get("/")
            .header("host", "api.example.test")
            .body(Full::<Bytes>::default())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);

        // The upstream is told the address the connection came from, as written anywhere.
        assert_eq!(
            upstream.requests()[i].headers["x-forwarded-for"],
            *client_addr
        );
    }
}

#[tokio::test]
async fn forged_forwarding_headers_from_an_untrusted_client_are_replaced() {
    let upstream = Upstream::start(Behavior::Echo).await;
    let gateway = Gateway::start(&route_to("echo", &upstream.url(), "")).await;

    let request = Request::get(gateway.uri("/"))
        .header("host", "api.example.test")
        .header("x-forwarded-for", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6;proto=https")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "bank.example")
        .body(Full::default())
        .unwrap();
    client().request(request).await.unwrap();

    // The upstream sees what we know of the connection, none of the client's claims.
    let seen = &upstream.requests()[0];
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["x-forwarded-host"], "api.example.test");
    assert!(!seen.headers.contains_key("forwarded"));
}

#[tokio::test]
async fn a_trusted_proxy_chain_is_extended() {
    let upstream = Upstream::start(Behavior::Echo).await;
    let config = format!(
        "trusted_proxies = [\"127.0.0.1\"]\n{}",
        route_to("echo", &upstream.url(), "")
    );
    let gateway = Gateway::start(&config).await;

    let request = Request::get(gateway.uri("/"))
        .header("x-forwarded-for", "198.51.100.7")
        .header("x-forwarded-proto", "https")
        .body(Full::default())
        .unwrap();
    client().request(request).await.unwrap();

    let seen = &upstream.requests()[0];
    assert_eq!(seen.headers["x-forwarded-for"], "198.51.100.7, 127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped_both_ways() {
    let upstream = Upstream::start_fn(|_request| async {
        let mut response = rampart_test_support::fixed(StatusCode::OK, "ok");
        let headers = response.headers_mut();
        headers.insert("connection", "x-upstream-private".parse().unwrap());
        headers.insert("x-upstream-private", "secret".parse().unwrap());
        headers.insert("keep-alive", "timeout=5".parse().unwrap());
        headers.insert("proxy-authenticate", "Basic".parse().unwrap());
        response
    })
    .await;
    let gateway = Gateway::start(&route_to("hop", &upstream.url(), "")).await;

    let request = Request::get(gateway.uri("/"))
        .header("connection", "x-client-private")
        .header("x-client-private", "1")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("te", "trailers")
        .header("upgrade", "websocket")
        .header("x-kept", "yes")
        .body(Full::default())
        .unwrap();
    let response = client().request(request).await.unwrap();

    let seen = &upstream.requests()[0].headers;
    for name in [
        "x-client-private",
        "keep-alive",
        "proxy-authorization",
        "te",
        "upgrade",
    ] {
        assert!(
            !seen.contains_key(name),
            "upstream received hop-by-hop header {name}"
        );
    }
    assert_eq!(seen["x-kept"], "yes");

    let returned = response.headers();
    for name in ["x-upstream-private", "keep-alive", "proxy-authenticate"] {
        assert!(
            !returned.contains_key(name),
            "client received hop-by-hop header {name}"
        );
    }
}

#[tokio::test]
async fn an_upstream_that_closes_every_connection_causes_no_errors() {
    // The upstream answers each request on a connection of its own and closes it.
    let upstream = Upstream::start_fn(|_request| async {
        let mut response = rampart_test_support::fixed(StatusCode::OK, "once");
        response
            .headers_mut()
            .insert("connection", "close".parse().unwrap());
        response
    })
    .await;
    let gateway = Gateway::start(&route_to("closing", &upstream.url(), "")).await;

    // Every request finds the pooled connection gone and gets a fresh one, never a 502.
    for _ in 0..20 {
        let request = Request::get(gateway.uri("/"))
            .body(Full::default())
            .unwrap();
        let response = client().request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body_bytes(response.into_body()).await, "once");
    }
    assert_eq!(upstream.request_count(), 20);
}

#[tokio::test]
async fn request_id_is_propagated_or_generated() {
    let upstream = Upstream::start(Behavior::Echo).await;
    let gateway = Gateway::start(&route_to("echo", &upstream.url(), "")).await;

    // A client-supplied id travels to the upstream and back unchanged.
    let request = Request::get(gateway.uri("/"))
        .header("x-request-id", "client-id-42")
        .body(Full::default())
        .unwrap();
    let response = client().request(request).await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-id-42");
    assert_eq!(
        upstream.requests()[0].headers["x-request-id"],
        "client-id-42"
    );

    // Without one, the gateway makes one and uses it on both sides.
    let response = client().get(gateway.uri("/")).await.unwrap();
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(generated.len(), 36, "expected a UUID, got {generated}");
    assert_eq!(
        upstream.requests()[1].headers["x-request-id"],
        generated.as_str()
    );
}

/// Sends `GET /` with `request_id` and expects a problem document of `status` naming it.
async fn problem_of(gateway: &Gateway, request_id: &str, status: StatusCode) {
    let request = Request::get(gateway.uri("/"))
        .header("x-request-id", request_id)
        .body(Full::default())
        .unwrap();
    let response = client().request(request).await.unwrap();

    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem = body_json(response.into_body()).await;
    assert_eq!(problem["status"], status.as_u16());
    assert_eq!(problem["request_id"], request_id);
}

#[tokio::test]
async fn a_refused_upstream_is_a_502_problem() {
    let closed_port = free_port();
    let gateway = Gateway::start(&route_to(
        "dead",
        &format!("http://127.0.0.1:{closed_port}"),
        "",
    ))
    .await;

    problem_of(&gateway, "req-502", StatusCode::BAD_GATEWAY).await;

    // The log event carries the request id so an operator can find it.
    let log = gateway.log_containing("upstream unreachable").await;
    assert!(log.contains("req-502"), "{log}");
    assert!(log.contains("upstream.addr="), "{log}");
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_problem() {
    let upstream = Upstream::start(Behavior::Delay(Duration::from_secs(10))).await;
    let gateway = Gateway::start(&route_to(
        "slow",
        &upstream.url(),
        "request_timeout = \"200ms\"",
    ))
    .await;

    problem_of(&gateway, "req-504", StatusCode::GATEWAY_TIMEOUT).await;
    let log = gateway.log_containing("upstream timed out").await;
    assert!(log.contains("req-504"), "{log}");
}

#[tokio::test]
async fn an_upstream_cut_mid_response_fails_that_response_only() {
    let upstream = Upstream::start(Behavior::CloseMidResponse).await;
    let gateway = Gateway::start(&route_to("cut", &upstream.url(), "")).await;

    // The client sees the body end early, as the upstream's failure, not a made-up success.
    let response = client().get(gateway.uri("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.into_body().collect().await.is_err());

    // The gateway keeps serving.
    let health = client().get(gateway.uri("/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn large_bodies_stream_through_without_growing_memory() {
    const MIB: usize = 1024 * 1024;

    let echo = Upstream::start(Behavior::Echo).await;
    let small = Upstream::start(Behavior::Stream {
        total: 4 * MIB as u64,
    })
    .await;
    let large = Upstream::start(Behavior::Stream {
        total: 64 * MIB as u64,
    })
    .await;
    let config = format!(
        "[upstreams.echo]\nurl = \"{}\"\n[upstreams.small]\nurl = \"{}\"\n\
         [upstreams.large]\nurl = \"{}\"\n\
         [[routes]]\nname = \"echo\"\nprefix = \"/echo\"\nupstream = \"echo\"\n\
         [[routes]]\nname = \"small\"\nprefix = \"/small\"\nupstream = \"small\"\n\
         [[routes]]\nname = \"large\"\nprefix = \"/large\"\nupstream = \"large\"\n",
        echo.url(),
        small.url(),
        large.url()
    );
    let gateway = Gateway::start(&config).await;

    // A 1 MiB request body arrives whole at the upstream and comes back.
    let payload = Bytes::from(
        (0..MIB)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect::<Vec<_>>(),
    );
    let request = Request::post(gateway.uri("/echo"))
        .body(Full::new(payload.clone()))
        .unwrap();
    let response = client().request(request).await.unwrap();
    assert_eq!(body_bytes(response.into_body()).await, payload);

    // A 4 MiB response fills the pools and buffers a streamed body ever needs.
    assert_eq!(stream_length(&gateway, "/small").await, 4 * MIB as u64);
    let warmed = gateway.memory_kib("VmHWM");

    // Sixteen times as much then passes with the peak nearly where it was: memory does not
    // follow the body size. Buffering would add 64 MiB; what remains is the allocator keeping
    // freed chunks between threads (2 to 10 MiB here, the same for a 256 MiB body).
    assert_eq!(stream_length(&gateway, "/large").await, 64 * MIB as u64);
    let growth_kib = gateway.memory_kib("VmHWM").saturating_sub(warmed);
    assert!(
        growth_kib < 20 * 1024,
        "peak RSS grew by {growth_kib} KiB past {warmed} KiB"
    );
}

/// Reads a response body frame by frame, keeping only its length.
async fn stream_length(gateway: &Gateway, path: &str) -> u64 {
    let response = client().get(gateway.uri(path)).await.unwrap();
    let mut body = response.into_body();
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            received += data.len() as u64;
        }
    }
    received
}

type InFlight = (
    Gateway,
    Upstream,
    tokio::task::JoinHandle<
        Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>,
    >,
);

/// A gateway with `shutdown_grace` in front of an upstream that answers `body` after `delay`,
/// and a request to it already in flight at the upstream.
async fn request_in_flight(grace: &str, delay: Duration, body: &'static str) -> InFlight {
    let (arrived_tx, mut arrived_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let upstream = Upstream::start_fn(move |_request| {
        let arrived = arrived_tx.clone();
        async move {
            let _ = arrived.send(());
            tokio::time::sleep(delay).await;
            rampart_test_support::fixed(StatusCode::OK, body)
        }
    })
    .await;
    let config = format!(
        "shutdown_grace = \"{grace}\"\n{}",
        route_to("slow", &upstream.url(), "")
    );
    let gateway = Gateway::start(&config).await;

    // Start a request and wait until the upstream is working on it.
    let in_flight = tokio::spawn(client().get(gateway.uri("/")));
    arrived_rx.recv().await.unwrap();
    (gateway, upstream, in_flight)
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish() {
    let (mut gateway, _upstream, in_flight) =
        request_in_flight("10s", Duration::from_millis(800), "finished").await;

    // SIGTERM now: the gateway stops listening but the request still completes.
    gateway.terminate();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_bytes(response.into_body()).await, "finished");

    let status = gateway.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "gateway exited with {status}");
    assert!(
        client().get(gateway.uri("/healthz")).await.is_err(),
        "still accepting after SIGTERM"
    );
}

#[tokio::test]
async fn ctrl_c_stops_the_gateway_once_the_grace_period_is_over() {
    // The upstream will not answer for a minute.
    let (mut gateway, _upstream, in_flight) =
        request_in_flight("300ms", Duration::from_secs(60), "too late").await;

    // Ctrl-C: the gateway drains for its grace period, then exits without the answer.
    gateway.signal("INT");
    let status = gateway.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "gateway exited with {status}");
    assert!(
        in_flight.await.unwrap().is_err(),
        "the request was answered"
    );
    gateway.log_containing("grace period over").await;
}

#[tokio::test]
async fn an_upstream_closing_before_its_headers_is_a_502_problem() {
    // A server that reads the request and hangs up without a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buffer).await;
            drop(socket);
        }
    });
    let gateway = Gateway::start(&route_to("hangup", &format!("http://{addr}"), "")).await;

    problem_of(&gateway, "req-hangup", StatusCode::BAD_GATEWAY).await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let ok = Upstream::start(Behavior::Echo).await;
    let teapot = Upstream::start(Behavior::Status(StatusCode::IM_A_TEAPOT)).await;
    let config = format!(
        "[upstreams.ok]\nurl = \"{}\"\n[upstreams.teapot]\nurl = \"{}\"\n\
         [[routes]]\nname = \"ok\"\nprefix = \"/ok\"\nupstream = \"ok\"\n\
         [[routes]]\nname = \"teapot\"\nprefix = \"/teapot\"\nupstream = \"teapot\"\n",
        ok.url(),
        teapot.url()
    );
    let gateway = Gateway::start(&config).await;

    for _ in 0..3 {
        client().get(gateway.uri("/ok/x")).await.unwrap();
    }
    client().get(gateway.uri("/teapot")).await.unwrap();

    let text = gateway.metrics().await;
    assert!(
        text.contains(r#"rampart_gateway_requests_total{route="ok",status="200"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"rampart_gateway_requests_total{route="teapot",status="418"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"rampart_gateway_request_duration_seconds_count{route="ok",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"rampart_gateway_request_duration_seconds_bucket{route="ok",status="200",le="#
    ));
}

#[tokio::test]
async fn admin_paths_are_never_routed_upstream() {
    let upstream = Upstream::start(Behavior::Echo).await;
    let gateway = Gateway::start(&route_to("all", &upstream.url(), "")).await;

    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = client().get(gateway.uri(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    assert_eq!(upstream.request_count(), 0);
}

#[tokio::test]
async fn readyz_follows_redis_availability() {
    let mut redis = RedisServer::start();
    let upstream = Upstream::start(Behavior::Echo).await;
    let config = format!(
        "[redis]\nurl = \"{}\"\n{}",
        redis.url(),
        route_to("echo", &upstream.url(), "")
    );
    let gateway = Gateway::start(&config).await;

    assert_eq!(
        client().get(gateway.uri("/readyz")).await.unwrap().status(),
        StatusCode::OK
    );

    // Redis goes away: not ready, with a problem body; liveness is unaffected.
    redis.stop();
    let response = client().get(gateway.uri("/readyz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(
        client()
            .get(gateway.uri("/healthz"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // Redis comes back on the same port: ready again without a restart.
    redis.restart();
    let mut ready = false;
    for _ in 0..50 {
        if client().get(gateway.uri("/readyz")).await.unwrap().status() == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ready,
        "gateway did not become ready after redis returned:\n{}",
        gateway.log()
    );
}

#[tokio::test]
async fn h2c_upstreams_are_spoken_to_over_http2() {
    let upstream = Upstream::start(Behavior::Echo).await;
    let gateway = Gateway::start(&route_to("h2", &upstream.url(), "protocol = \"h2c\"")).await;

    let request = Request::post(gateway.uri("/"))
        .body(Full::new(Bytes::from_static(b"over h2")))
        .unwrap();
    let response = client().request(request).await.unwrap();
    assert_eq!(body_bytes(response.into_body()).await, "over h2");
    assert_eq!(upstream.requests()[0].version, http::Version::HTTP_2);
}

#[tokio::test]
async fn routes_match_longest_prefix_then_method() {
    let general = Upstream::start(Behavior::Status(StatusCode::OK)).await;
    let execute = Upstream::start(Behavior::Status(StatusCode::ACCEPTED)).await;
    let config = format!(
        "[upstreams.general]\nurl = \"{}\"\n[upstreams.execute]\nurl = \"{}\"\n\
         [[routes]]\nname = \"api\"\nprefix = \"/api\"\nupstream = \"general\"\n\
         [[routes]]\nname = \"execute\"\nprefix = \"/api/agents/execute\"\nmethods = [\"POST\"]\nupstream = \"execute\"\n",
        general.url(),
        execute.url()
    );
    let gateway = Gateway::start(&config).await;

    let post = Request::post(gateway.uri("/api/agents/execute"))
        .body(Full::default())
        .unwrap();
    assert_eq!(
        client().request(post).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    // The same path with another method falls through to the shorter prefix.
    let get = client()
        .get(gateway.uri("/api/agents/execute"))
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    // Prefixes match whole segments only.
    let other = client().get(gateway.uri("/apix")).await.unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn check_config_reports_the_faulty_field() {
    let stderr = support::check_config_fails(
        "listen = \"127.0.0.1:0\"\n[upstreams.a]\nurl = \"http://127.0.0.1:1\"\n\
         [[routes]]\nname = \"r\"\nprefix = \"/\"\nupstream = \"missing\"\n",
    );
    assert!(stderr.contains("\"missing\""), "{stderr}");
}

#[tokio::test]
async fn the_shipped_example_config_passes_check_config() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gateway.toml");
    let output = support::gateway_command()
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("ok (2 routes"));
}

#[tokio::test]
async fn check_config_rejects_unknown_fields() {
    let stderr = support::check_config_fails(
        "listen = \"127.0.0.1:0\"\nlisten_backlog = 5\n[upstreams]\nroutes = []\n",
    );
    assert!(stderr.contains("listen_backlog"), "{stderr}");
}

#[tokio::test]
async fn the_shipped_config_answers_the_readme_curl_lines() {
    // The shipped file on free ports: the demo agent's port and the gateway's own.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gateway.toml");
    let demo = format!("127.0.0.1:{}", free_port());
    let shipped = std::fs::read_to_string(path).unwrap();
    let config: String = shipped
        .lines()
        .filter(|line| !line.starts_with("listen = \"127.0.0.1:8080\""))
        .map(|line| line.replace("127.0.0.1:9000", &demo) + "\n")
        .collect();
    let gateway = Gateway::start(&config).await;

    // curl -i http://127.0.0.1:8080/api/agents
    let response = client().get(gateway.uri("/api/agents")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
    assert!(response.headers().contains_key("ratelimit-policy"));
    let agents = body_json(response.into_body()).await;
    assert_eq!(agents["agents"][0]["id"], "echo");

    // curl -X POST .../api/agents/execute -d '{"agent": "shout", "input": "hello"}'
    let execute = || {
        Request::post(gateway.uri("/api/agents/execute"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(
                br#"{"agent": "shout", "input": "hello"}"#,
            )))
            .unwrap()
    };
    let response = client().request(execute()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response.into_body()).await["output"], "HELLO");

    // Five runs a minute: the sixth in the same minute is refused.
    for _ in 0..4 {
        assert_eq!(
            client().request(execute()).await.unwrap().status(),
            StatusCode::OK
        );
    }
    let refused = client().request(execute()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_client_trickling_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let upstream = Upstream::start(Behavior::Echo).await;
    let config = format!(
        "header_read_timeout = \"300ms\"\n{}",
        route_to("echo", &upstream.url(), "")
    );
    let gateway = Gateway::start(&config).await;

    // Half a request line, then silence: the gateway closes the connection.
    let mut stream = tokio::net::TcpStream::connect(gateway.addr())
        .await
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(
        read.is_ok(),
        "connection still open after the header timeout"
    );
    assert_eq!(upstream.request_count(), 0);
}

#[tokio::test]
async fn prefixes_are_stripped_and_base_paths_prepended() {
    let upstream = Upstream::start(Behavior::Echo).await;
    let config = format!(
        "[upstreams.v1]\nurl = \"{}/v1\"\n\
         [[routes]]\nname = \"agents\"\nprefix = \"/api/agents\"\nupstream = \"v1\"\nstrip_prefix = true\n",
        upstream.url()
    );
    let gateway = Gateway::start(&config).await;

    client()
        .get(gateway.uri("/api/agents/run?x=1"))
        .await
        .unwrap();
    client().get(gateway.uri("/api/agents")).await.unwrap();

    let seen = upstream.requests();
    assert_eq!(
        seen[0].uri.path_and_query().unwrap().as_str(),
        "/v1/run?x=1"
    );
    assert_eq!(seen[1].uri.path_and_query().unwrap().as_str(), "/v1/");
}
