//! `cargo s3batch serve` under connections that never finish: hundreds of idle connections,
//! half-sent headers and bodies, and a process out of file descriptors. A request timeout
//! closes what does not arrive, the number of connections is bounded, and a failed accept is
//! retried after a pause: a real request is still answered, and the process does not spin.
//!
//! The server runs as the real binary, so the second test can start it with a small
//! file-descriptor limit (`ulimit -n`) without touching the test process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "123456789012";

struct Serve {
    child: Child,
    port: u16,
    _state: tempdir::Dir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod tempdir {
    /// A folder removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(name: &str) -> Dir {
            let dir = std::env::temp_dir().join(format!(
                "s3batch-serve-robust-{name}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Starts `serve` on a free port with a request timeout of `timeout_secs`, under
/// `ulimit -n fd_limit` when given, and waits for its "listening on" line.
fn serve(name: &str, timeout_secs: u64, fd_limit: Option<u32>) -> Serve {
    let state = tempdir::Dir::new(name);
    let bin = env!("CARGO_BIN_EXE_cargo-s3batch");
    let script = format!(
        "{}exec \"$0\" s3batch serve --port 0 --request-timeout {timeout_secs} --state-dir \"$1\"",
        fd_limit.map_or(String::new(), |n| format!("ulimit -n {n} && "))
    );
    let mut child = Command::new("sh")
        .args(["-c", &script, bin])
        .arg(&state.0)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    Serve {
        child,
        port,
        _state: state,
    }
}

fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).unwrap()
}

/// A ListJobs request on a new connection; returns the whole response. The bound is for a
/// server that never answers, not a measure of speed.
fn list_jobs(port: u16) -> String {
    let mut stream = connect(port);
    stream
        .set_read_timeout(Some(Duration::from_secs(180)))
        .unwrap();
    write!(
        stream,
        "GET /v20180820/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nx-amz-account-id: {ACCOUNT}\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .unwrap_or_else(|e| panic!("ListJobs was not answered: {e}"));
    response
}

/// Whether the server closed `stream` within `limit` (end of file or a reset), reading and
/// returning what it sent before.
fn closed_by_server(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    match stream.read_to_end(&mut got) {
        Ok(_) => Some(String::from_utf8_lossy(&got).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            Some(String::from_utf8_lossy(&got).into_owned())
        }
        Err(_) => None,
    }
}

#[test]
fn idle_and_half_sent_connections_time_out_and_requests_are_still_answered() {
    let server = serve("idle", 3, None);
    // More idle connections than the server takes at once (256).
    let mut idle: Vec<TcpStream> = (0..300).map(|_| connect(server.port)).collect();
    let mut half_headers: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut s = connect(server.port);
            write!(s, "POST /v20180820/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
            s
        })
        .collect();
    let mut half_bodies: Vec<TcpStream> = (0..5)
        .map(|_| {
            let mut s = connect(server.port);
            write!(
                s,
                "POST /v20180820/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nx-amz-account-id: {ACCOUNT}\r\n\
                 Content-Length: 100\r\n\r\n<CreateJob"
            )
            .unwrap();
            s
        })
        .collect();

    let answer = list_jobs(server.port);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("ListJobsResult"),
        "{answer}"
    );

    // Every connection that sent nothing, or stopped halfway, is closed by the server; a
    // body that never arrived is answered 400 first.
    for (what, streams) in [
        ("idle", &mut idle),
        ("half-sent headers", &mut half_headers),
    ] {
        for (i, s) in streams.iter_mut().enumerate() {
            assert!(
                closed_by_server(s, Duration::from_secs(120)).is_some(),
                "{what} connection {i} is still open"
            );
        }
    }
    for (i, s) in half_bodies.iter_mut().enumerate() {
        let got = closed_by_server(s, Duration::from_secs(120))
            .unwrap_or_else(|| panic!("half-sent body {i} is still open"));
        assert!(
            got.starts_with("HTTP/1.1 400") && got.contains("did not arrive within 3 s"),
            "half-sent body {i}: {got}"
        );
    }
    // And the server goes on answering.
    assert!(list_jobs(server.port).starts_with("HTTP/1.1 200"));
}

/// CPU time (user + system) the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn out_of_file_descriptors_the_server_backs_off_and_answers_once_they_free_up() {
    // `sh` runs the binary with at most 64 descriptors: fewer than the connections below.
    let server = serve("fds", 3, Some(64));
    let pid = server.child.id();
    let _idle: Vec<TcpStream> = (0..150).map(|_| connect(server.port)).collect();
    // The server now has every descriptor in use, and connections wait that it cannot
    // accept. Over two seconds of that it must not spin on the failing accept.
    let ticks = cpu_ticks(pid);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - ticks;
    let elapsed_ticks = started.elapsed().as_secs_f64() * 100.0; // USER_HZ is 100 on Linux
    assert!(
        (used as f64) < elapsed_ticks / 4.0,
        "the server used {used} ticks of CPU in {elapsed_ticks:.0}: it spins on accept"
    );
    // As the idle connections time out, descriptors free up and a request is answered.
    let answer = list_jobs(server.port);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
