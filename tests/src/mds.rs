//! A metadata service of a test's own (`rkt metadata-service`): its registration socket in
//! the test's directory, a free TCP port, killed on drop.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::env::{rkt_bin, Run};
use crate::TestEnv;

/// A metadata service of the test's own: its socket in the test's directory, a free port.
pub struct Mds {
    child: Child,
    pub socket: PathBuf,
    pub port: u16,
}

impl Mds {
    pub fn start(env: &TestEnv) -> Mds {
        let socket = env.work().join("mds.sock");
        std::fs::create_dir_all(env.work()).unwrap();
        let mut child = Command::new(rkt_bin())
            .args(["metadata-service", "--listen-port=0"])
            .env("RKT_METADATA_SOCKET", &socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let port = loop {
            let line = lines.next().expect("service output").unwrap();
            if let Some(rest) = line.split("running on port ").nth(1) {
                break rest.trim_end_matches("...").parse().unwrap();
            }
        };
        // Keep draining its log so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Mds {
            child,
            socket,
            port,
        }
    }

    /// `rkt ARGS` as a client of this service.
    pub fn rkt(&self, env: &TestEnv, args: &[&str]) -> Run {
        Run::from(
            env.cmd(args)
                .env("RKT_METADATA_SOCKET", &self.socket)
                .output()
                .unwrap(),
        )
    }

    /// One HTTP request to the app side; the status and body.
    pub fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        let status = reply.split(' ').nth(1).unwrap().parse().unwrap();
        let body = reply.split_once("\r\n\r\n").unwrap().1.to_string();
        (status, body)
    }
}

impl Drop for Mds {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
