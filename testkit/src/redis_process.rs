//! A `redis-server` of the test's own: a free loopback port, a temporary directory, no
//! persistence, stopped when dropped. For suites that share state through Redis.
//!
//! ```no_run
//! use portcullis::testkit::redis_process::RedisProcess;
//! let mut redis = RedisProcess::start();
//! let url = redis.url(); // redis://127.0.0.1:PORT/
//! redis.stop(); // an outage…
//! redis.restart(); // …and the same server back, empty, on the same port
//! # let _ = url;
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server` (Debian's package `redis-server`, or the binary named by
/// `PORTCULLIS_REDIS_SERVER`).
#[derive(Debug)]
pub struct RedisProcess {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisProcess {
    /// Start one and wait until it accepts connections (panics when it cannot: the test needs
    /// it).
    pub fn start() -> RedisProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("portcullis-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut server = RedisProcess {
            port,
            dir,
            child: None,
        };
        server.restart();
        server
    }

    /// Start it again on the same port (after [`stop`](Self::stop)); it comes back empty.
    pub fn restart(&mut self) {
        self.stop();
        let bin =
            std::env::var("PORTCULLIS_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} (install Debian's redis-server): {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill it (an outage).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Redis's own count of the commands it has processed (`INFO stats`), read over a
    /// connection of its own; the reading counts as one command.
    pub fn commands_processed(&self) -> u64 {
        use std::io::{Read, Write};
        let mut conn =
            std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("redis-server is up");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("a timeout");
        conn.write_all(b"INFO stats\r\n").expect("INFO sent");
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        // A bulk reply: `$<len>\r\n<body>\r\n`; read until the counter's line is whole.
        while !text.contains("total_commands_processed:")
            || !text
                .split("total_commands_processed:")
                .nth(1)
                .is_some_and(|rest| rest.contains("\r\n"))
        {
            let n = conn.read(&mut buf).expect("INFO answered");
            assert!(n > 0, "redis-server closed the connection");
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        text.lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("INFO stats has total_commands_processed")
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
