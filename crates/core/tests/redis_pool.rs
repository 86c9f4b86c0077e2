//! The Redis pool builder against real servers: standalone, restarted, and a 3-node cluster.

use std::time::Duration;

use rampart_core::redis::{RedisConfig, RedisError, RedisPool};
use rampart_test_support::{RedisCluster, RedisServer};

#[tokio::test]
async fn standalone_pool_runs_commands_and_survives_a_restart() {
    let mut server = RedisServer::start();
    let pool = RedisPool::new(&RedisConfig::standalone(server.url())).unwrap();

    let mut conn = pool.get().await.unwrap();
    redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let value: String = redis::cmd("GET")
        .arg("k")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(value, "v");
    drop(conn);

    // While Redis is down, a ping fails within its deadline instead of hanging.
    server.stop();
    let err = pool.ping(Duration::from_millis(300)).await.unwrap_err();
    assert!(
        matches!(
            err,
            RedisError::Pool(_) | RedisError::Command(_) | RedisError::Timeout(_)
        ),
        "{err}"
    );

    // Back on the same port: the pool replaces its broken connections by itself.
    server.restart();
    let mut recovered = false;
    for _ in 0..50 {
        if pool.ping(Duration::from_millis(300)).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        recovered,
        "pool did not recover after redis-server restarted"
    );
}

#[tokio::test]
async fn cluster_pool_routes_keys_to_their_slots() {
    let cluster = RedisCluster::start();
    let pool = RedisPool::new(&RedisConfig::cluster(cluster.urls())).unwrap();

    let mut conn = pool.get().await.unwrap();
    // Keys spread over all three nodes' slot ranges; the cluster client follows the slots.
    for i in 0..30 {
        let key = format!("key-{i}");
        redis::cmd("SET")
            .arg(&key)
            .arg(i)
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }
    for i in 0..30 {
        let value: i64 = redis::cmd("GET")
            .arg(format!("key-{i}"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(value, i);
    }
    pool.ping(Duration::from_secs(1)).await.unwrap();
}

#[test]
fn config_must_name_exactly_one_deployment() {
    let neither = RedisConfig::default();
    assert!(matches!(
        RedisPool::new(&neither),
        Err(RedisError::Ambiguous)
    ));

    let both = RedisConfig {
        cluster: vec!["redis://127.0.0.1:7000".into()],
        ..RedisConfig::standalone("redis://127.0.0.1:6379")
    };
    assert!(matches!(RedisPool::new(&both), Err(RedisError::Ambiguous)));

    let empty = RedisConfig {
        max_size: 0,
        ..RedisConfig::standalone("redis://127.0.0.1:6379")
    };
    assert!(matches!(RedisPool::new(&empty), Err(RedisError::EmptyPool)));
}
