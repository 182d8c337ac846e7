//! Real redis-server processes for tests: started on free loopback ports,
//! stopped on drop. Tests that need Redis fail loudly when it is missing.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use rampart_redis::{RedisConfig, RedisStore};

/// The redis-server binary; a missing one fails the test with a clear message.
pub fn redis_server_bin() -> PathBuf {
    let bin = std::env::var_os("REDIS_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| "redis-server".into());
    let ok = Command::new(&bin)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "redis-server is not installed (scripts/test installs it: apt-get install redis-server); Redis tests never skip"
    );
    bin
}

static NEXT: AtomicU16 = AtomicU16::new(0);

/// A free port below 55535 whose cluster-bus twin (port + 10000) is free too.
pub fn free_port() -> u16 {
    let base = 20_000 + (std::process::id() % 2_000) as u16 * 10;
    for _ in 0..5_000 {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 30_000;
        if port > 55_000 {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
        {
            return port;
        }
    }
    panic!("no free loopback port");
}

/// One redis-server process.
pub struct Server {
    pub port: u16,
    child: Child,
    dir: PathBuf,
    extra: Vec<String>,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    pub fn start_on(port: u16) -> Server {
        Self::start_at(port, &[])
    }

    pub fn start_with(extra: &[&str]) -> Server {
        Self::start_at(free_port(), extra)
    }

    fn start_at(port: u16, extra: &[&str]) -> Server {
        let dir = std::env::temp_dir().join(format!("rampart-redis-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let child = spawn(port, &dir, &extra);
        let server = Server {
            port,
            child,
            dir,
            extra,
        };
        server.wait_ready();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn config(&self) -> RedisConfig {
        RedisConfig::from_url(&self.url()).unwrap()
    }

    pub fn store(&self) -> RedisStore {
        RedisStore::new(self.config()).unwrap()
    }

    /// redis-cli against this server.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.cli(&["PING"]).trim() == "PONG"
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    /// Kills the server (SIGKILL: no goodbye to clients).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.port, &self.dir, &self.extra);
        self.wait_ready();
    }
}

fn spawn(port: u16, dir: &Path, extra: &[String]) -> Child {
    let child = Command::new(redis_server_bin())
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--dir", dir.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    // Servers held in statics are never dropped: a watchdog kills the
    // server once this test process is gone, so no test leaves one behind.
    let watchdog = format!(
        "while kill -0 {me} 2>/dev/null && kill -0 {rs} 2>/dev/null; do sleep 0.3; done; kill -9 {rs} 2>/dev/null",
        me = std::process::id(),
        rs = child.id()
    );
    let _ = Command::new("sh")
        .args(["-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    child
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A local 3-master Redis Cluster.
pub struct Cluster {
    pub nodes: Vec<Server>,
}

impl Cluster {
    pub fn start() -> Cluster {
        let nodes: Vec<Server> = (0..3)
            .map(|_| {
                Server::start_with(&["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create runs");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = nodes
                .iter()
                .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"));
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "cluster did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        Cluster { nodes }
    }

    pub fn config(&self) -> RedisConfig {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        RedisConfig::from_vars(|k| (k == "REDIS_CLUSTER_NODES").then(|| nodes.join(",")))
            .unwrap()
            .unwrap()
    }

    pub fn store(&self) -> RedisStore {
        RedisStore::new(self.config()).unwrap()
    }
}
