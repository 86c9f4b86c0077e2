//! The test services themselves: each must be the real thing, or the tests built on them
//! prove nothing.

use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rampart_test_support::{Behavior, TestDatabase, Upstream};
use tokio_postgres::NoTls;

#[tokio::test]
async fn each_test_database_is_private_and_dropped_afterwards() {
    let first = TestDatabase::create().await;
    let second = TestDatabase::create().await;
    assert_ne!(first.name(), second.name());

    // A table written in one database is not visible in the other.
    let (client, connection) = tokio_postgres::connect(first.url(), NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE letters (id int); INSERT INTO letters VALUES (1)")
        .await
        .unwrap();
    let (other, connection) = tokio_postgres::connect(second.url(), NoTls).await.unwrap();
    tokio::spawn(connection);
    assert!(other.query("SELECT * FROM letters", &[]).await.is_err());
    drop(client);
    drop(other);

    // Dropping the handle drops the database on the server.
    let name = first.name().to_owned();
    drop(first);
    let admin_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (admin, connection) = tokio_postgres::connect(&admin_url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows = admin
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap();
    assert!(rows.is_empty(), "database {name} still exists");
}

#[tokio::test]
async fn fail_times_fails_then_echoes() {
    let upstream = Upstream::start(Behavior::FailTimes {
        times: 2,
        status: StatusCode::SERVICE_UNAVAILABLE,
    })
    .await;
    let client: Client<HttpConnector, Full<bytes::Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());

    let mut statuses = Vec::new();
    for _ in 0..3 {
        let request = http::Request::post(upstream.url())
            .body(Full::new(bytes::Bytes::from_static(b"payload")))
            .unwrap();
        let response = client.request(request).await.unwrap();
        statuses.push(response.status());
        if response.status() == StatusCode::OK {
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "payload");
        }
    }
    assert_eq!(
        statuses,
        [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK
        ]
    );
    assert_eq!(upstream.request_count(), 3);
}
