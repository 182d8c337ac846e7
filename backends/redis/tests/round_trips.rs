//! One operation = one command on the server, counted with
//! `INFO commandstats`; and exact counts under contention from 4 clients.

mod common;

use std::sync::Arc;

use rampart::{Bytes, Key, Store};

/// Counts the commands clients send to `server` while `f` runs, with
/// `MONITOR` (commands a script runs inside Redis are tagged `lua` there
/// and not counted: they cost no round trip).
pub async fn round_trips<F: std::future::Future<Output = ()>>(
    server: &common::Server,
    f: F,
) -> Vec<String> {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut monitor = Command::new("redis-cli")
        .args(["-p", &server.port.to_string(), "MONITOR"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(monitor.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap().trim(), "OK");
    f.await;
    server.cli(&["ECHO", "rampart-marker"]);
    let mut sent = Vec::new();
    for line in lines {
        let line = line.unwrap();
        if line.contains("rampart-marker") {
            break;
        }
        if !line.contains(" lua]") {
            sent.push(line);
        }
    }
    let _ = monitor.kill();
    let _ = monitor.wait();
    sent
}

/// `calls=` of one command in `INFO commandstats`.
pub fn calls(server: &common::Server, command: &str) -> u64 {
    server
        .cli(&["INFO", "commandstats"])
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("cmdstat_{command}:calls="))
                .map(|r| r.split(',').next().unwrap().parse().unwrap())
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn each_store_operation_is_one_round_trip() {
    let server = common::Server::start();
    let store = server.store();
    let k = Key::new("k").unwrap();
    // Connect and load scripts first, so only steady-state calls are counted.
    store.increment(&k, 1, None).await.unwrap();
    store.delete_if_equal(&k, b"x").await.unwrap();
    store.expire_if_equal(&k, b"x", None).await.unwrap();
    store.compare_and_swap(&k, None, None, None).await.unwrap();

    let one =
        |name: &'static str, sent: Vec<String>| assert_eq!(sent.len(), 1, "{name}: {sent:#?}");
    one(
        "get",
        round_trips(&server, async { store.get(&k).await.map(drop).unwrap() }).await,
    );
    one(
        "set",
        round_trips(&server, async {
            store.set(&k, Bytes::from_static(b"1"), None).await.unwrap()
        })
        .await,
    );
    one(
        "increment",
        round_trips(&server, async {
            store.increment(&k, 5, None).await.map(drop).unwrap()
        })
        .await,
    );
    let cas = round_trips(&server, async {
        store
            .compare_and_swap(&k, Some(b"6"), Some(Bytes::from_static(b"7")), None)
            .await
            .map(drop)
            .unwrap()
    });
    one("compare_and_swap", cas.await);
    let sia = round_trips(&server, async {
        store
            .set_if_absent(&k, Bytes::from_static(b"x"), None)
            .await
            .map(drop)
            .unwrap()
    });
    one("set_if_absent", sia.await);
    let exp = round_trips(&server, async {
        store
            .expire_if_equal(&k, b"7", Some(std::time::Duration::from_secs(9)))
            .await
            .map(drop)
            .unwrap()
    });
    one("expire_if_equal", exp.await);
    one(
        "delete_if_equal",
        round_trips(&server, async {
            store.delete_if_equal(&k, b"7").await.map(drop).unwrap()
        })
        .await,
    );

    // The same seen through INFO commandstats: 100 increments = 100 EVALSHA.
    server.cli(&["CONFIG", "RESETSTAT"]);
    for _ in 0..100 {
        store.increment(&k, 1, None).await.unwrap();
    }
    assert_eq!(calls(&server, "evalsha"), 100);
    assert_eq!(calls(&server, "eval"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_clients_times_32_tasks_count_exactly() {
    let server = common::Server::start();
    let clients: Vec<Arc<rampart_redis::RedisStore>> =
        (0..4).map(|_| Arc::new(server.store())).collect();
    let key = Key::new("hits").unwrap();
    let mut tasks = Vec::new();
    for client in &clients {
        for _ in 0..32 {
            let client = client.clone();
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    client.increment(&key, 1, None).await.unwrap();
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        clients[0].get(&key).await.unwrap().as_deref(),
        Some(&b"1280"[..])
    );
}
