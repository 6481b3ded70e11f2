//! A network namespace owned by one test: a thread that unshared its network namespace runs
//! what the test sends it, so servers it binds (even on port 443, as appc discovery needs) and
//! processes it starts see only that namespace's loopback. Nothing host-wide is touched, and
//! the namespace goes away with its last socket and process.
use std::process::Command;
use std::sync::mpsc::{channel, Sender};

type Job = Box<dyn FnOnce() + Send>;

pub struct Netns {
    jobs: Option<Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Netns {
    pub fn new() -> Netns {
        let (tx, rx) = channel::<Job>();
        let (ready_tx, ready_rx) = channel();
        let thread = std::thread::spawn(move || {
            // SAFETY: unshare affects only this thread's namespaces.
            let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            if rc != 0 {
                let _ = ready_tx.send(Err(std::io::Error::last_os_error().to_string()));
                return;
            }
            let up = Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status();
            if !matches!(up, Ok(s) if s.success()) {
                let _ = ready_tx.send(Err(format!("ip link set lo up: {up:?}")));
                return;
            }
            let _ = ready_tx.send(Ok(()));
            for job in rx {
                job();
            }
        });
        ready_rx
            .recv()
            .expect("netns thread")
            .expect("unshare a network namespace");
        Netns {
            jobs: Some(tx),
            thread: Some(thread),
        }
    }

    /// Runs `f` in the namespace (on its thread) and returns its result.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = channel();
        self.jobs
            .as_ref()
            .unwrap()
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .expect("netns thread alive");
        rx.recv().expect("netns job result")
    }
}

impl Default for Netns {
    fn default() -> Self {
        Netns::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
