//! The pod's life as a pure state machine: events in, actions out. No syscalls here, so the
//! exit policy is unit-tested without processes.
//!
//! Each app goes through these phases; a phase with a process waits for it to be reaped:
//!
//! ```text
//!  PreStart(0) ─ exit 0 ─> PreStart(1) … ─> Main ─ any end ─> PostStop(0) … ─> Done
//!       │ exit ≠ 0 or spawn failure: the app failed, Main is skipped ──┘
//! ```
//!
//! Exit policy of rkt's immutable pod (docs/stage-contract.md, "Exit policy"): an app whose main process exits 0
//! leaves the others running; one that fails (exit ≠ 0, killed by a signal we did not send,
//! failed to start) stops the pod: the polite signal to every app's pre-start or main process,
//! SIGKILL to whatever is left after the stop timeout. SIGTERM or SIGINT received starts the
//! same stop with that signal; SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGQUIT and SIGCONT are only
//! forwarded (schedulers such as Nomad's `alloc signal` rely on that), to the same processes a
//! stop signals. A process killed by a signal during a stop we started is recorded as 0. Post-stop handlers always run and only warn. The pod exits
//! once every app is `Done`, with the status of the first failure observed, else 0.

use std::time::Duration;

use crate::contract::EXIT_SETUP_FAILURE;

/// A process id as the kernel reports it.
pub type Pid = i32;

/// Which of an app's processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proc {
    /// The i-th pre-start handler.
    PreStart(usize),
    Main,
    /// The i-th post-stop handler.
    PostStop(usize),
}

/// Signals stage2-init receives (all but `Kill`) or sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Term,
    Int,
    Hup,
    Usr1,
    Usr2,
    Winch,
    Quit,
    Cont,
    Kill,
}

impl Signal {
    /// Every signal stage2-init waits for: these stop the pod or are forwarded to it.
    pub const RECEIVED: [Signal; 8] = [
        Signal::Term,
        Signal::Int,
        Signal::Hup,
        Signal::Usr1,
        Signal::Usr2,
        Signal::Winch,
        Signal::Quit,
        Signal::Cont,
    ];
}

/// How a reaped process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStatus {
    Exited(i32),
    Signaled(i32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The driver started `proc` of `app` as asked by [`Action::Spawn`].
    Spawned { app: usize, proc: Proc, pid: Pid },
    /// The driver could not start it (and already said why).
    SpawnFailed { app: usize, proc: Proc },
    /// A child ended; orphans we never spawned are reaped too and ignored here.
    Reaped { pid: Pid, status: WaitStatus },
    /// A signal sent to stage2-init. `Signal::Kill` cannot be received; it is taken as `Term`.
    Signal(Signal),
    /// The stop timer armed by [`Action::ArmStopTimer`] expired.
    StopTimerExpired,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start `proc` of `app` in its own session (or process group) and report back with
    /// [`Event::Spawned`] or [`Event::SpawnFailed`].
    Spawn { app: usize, proc: Proc },
    /// Send `signal` to the process group led by `pid`.
    Signal { pid: Pid, signal: Signal },
    /// SIGKILL everything left; `pids` lead the process groups we know of.
    KillAll { pids: Vec<Pid> },
    /// Record the app's status in `status/<app>`.
    WriteStatus { app: usize, status: i32 },
    /// Deliver [`Event::StopTimerExpired`] after this long.
    ArmStopTimer(Duration),
    /// Every app's main process was started or failed to start.
    MarkReady,
    /// Something worth a line on stderr, informational: shown only with `verbose`.
    Report(Report),
    /// The pod is done; stage2-init exits with this code.
    Exit(i32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// A pre-start (the app fails) or post-stop (only a warning) handler exited non-zero.
    HookFailed { app: usize, proc: Proc, status: i32 },
    /// An app failed while the pod was already stopping.
    AppFailed { app: usize, status: i32 },
    /// The pod is stopping because of this.
    Stopping(StopCause),
    /// The stop timeout expired: what is left gets SIGKILL.
    StopTimeout,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopCause {
    AppFailed { app: usize, status: i32 },
    Signal(Signal),
}

/// What the supervisor needs to know about an app: how many handlers it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppHooks {
    pub pre_start: usize,
    pub post_stop: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    PreStart(usize),
    Main,
    PostStop(usize),
    Done,
}

#[derive(Debug)]
struct AppState {
    hooks: AppHooks,
    phase: Phase,
    /// The phase's process, once spawned and until reaped.
    pid: Option<Pid>,
    /// A stop we started signalled that process: death by signal then counts as success.
    stopped_by_us: bool,
}

impl AppState {
    /// The main process was started, failed to start, or will never start.
    fn started(&self) -> bool {
        match self.phase {
            Phase::PreStart(_) => false,
            Phase::Main => self.pid.is_some(),
            Phase::PostStop(_) | Phase::Done => true,
        }
    }

    /// The pid of a pre-start or main process, which a stop or a forwarded signal goes to.
    /// Post-stop handlers are cleanup and are left alone until SIGKILL.
    fn signalable_pid(&self) -> Option<Pid> {
        match self.phase {
            Phase::PreStart(_) | Phase::Main => self.pid,
            Phase::PostStop(_) | Phase::Done => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    NotStopping,
    /// The polite signal went out; the timer runs.
    Graceful(Signal),
    /// The timer expired and SIGKILL went out.
    Killed,
}

#[derive(Debug)]
pub struct Supervisor {
    apps: Vec<AppState>,
    stop_timeout: Duration,
    stop: Stop,
    first_failure: Option<i32>,
    ready: bool,
    exited: bool,
    out: Vec<Action>,
}

impl Supervisor {
    pub fn new(apps: impl IntoIterator<Item = AppHooks>, stop_timeout: Duration) -> Self {
        let apps = apps
            .into_iter()
            .map(|hooks| AppState {
                hooks,
                phase: Phase::PreStart(0),
                pid: None,
                stopped_by_us: false,
            })
            .collect();
        Self {
            apps,
            stop_timeout,
            stop: Stop::NotStopping,
            first_failure: None,
            ready: false,
            exited: false,
            out: Vec::new(),
        }
    }

    /// Starts every app at once: their first pre-start handler or main process.
    pub fn start(&mut self) -> Vec<Action> {
        for app in 0..self.apps.len() {
            self.enter(app, Phase::PreStart(0));
        }
        self.finish_step()
    }

    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        if self.exited {
            return Vec::new();
        }
        match event {
            Event::Spawned { app, proc, pid } => self.spawned(app, proc, pid),
            Event::SpawnFailed { app, proc } => self.ended(app, proc, EXIT_SETUP_FAILURE),
            Event::Reaped { pid, status } => self.reaped(pid, status),
            Event::Signal(
                signal @ (Signal::Hup
                | Signal::Usr1
                | Signal::Usr2
                | Signal::Winch
                | Signal::Quit
                | Signal::Cont),
            ) => self.forward(signal),
            Event::Signal(Signal::Term | Signal::Kill) => {
                self.begin_stop(StopCause::Signal(Signal::Term))
            }
            Event::Signal(Signal::Int) => self.begin_stop(StopCause::Signal(Signal::Int)),
            Event::StopTimerExpired => self.kill_all(),
        }
        self.finish_step()
    }

    /// Moves `app` to `phase`, skipping phases with nothing to run.
    fn enter(&mut self, app: usize, phase: Phase) {
        let hooks = self.apps[app].hooks;
        let stopping = self.stop != Stop::NotStopping;
        let (phase, spawn) = match phase {
            // A stop before the main process started: it never will, and there is nothing
            // to record as a failure.
            Phase::PreStart(_) | Phase::Main if stopping => return self.main_ended(app, 0),
            Phase::PreStart(i) if i < hooks.pre_start => (phase, Some(Proc::PreStart(i))),
            Phase::PreStart(_) | Phase::Main => (Phase::Main, Some(Proc::Main)),
            Phase::PostStop(i) if i < hooks.post_stop => (phase, Some(Proc::PostStop(i))),
            Phase::PostStop(_) | Phase::Done => (Phase::Done, None),
        };
        let state = &mut self.apps[app];
        state.phase = phase;
        state.pid = None;
        state.stopped_by_us = false;
        if let Some(proc) = spawn {
            self.out.push(Action::Spawn { app, proc });
        }
    }

    fn spawned(&mut self, app: usize, proc: Proc, pid: Pid) {
        let stop = self.stop;
        let Some(state) = self.apps.get_mut(app) else {
            return;
        };
        state.pid = Some(pid);
        // Asked for before the stop began, started after: it gets what the others got.
        let signal = match stop {
            _ if matches!(proc, Proc::PostStop(_)) => return,
            Stop::NotStopping => return,
            Stop::Graceful(signal) => signal,
            Stop::Killed => Signal::Kill,
        };
        state.stopped_by_us = true;
        self.out.push(Action::Signal { pid, signal });
    }

    fn reaped(&mut self, pid: Pid, status: WaitStatus) {
        let Some(app) = self.apps.iter().position(|a| a.pid == Some(pid)) else {
            return; // an orphan re-parented to us
        };
        let state = &self.apps[app];
        let status = match status {
            WaitStatus::Exited(code) => code,
            WaitStatus::Signaled(_) if state.stopped_by_us => 0,
            WaitStatus::Signaled(signal) => 128 + signal,
        };
        let proc = match state.phase {
            Phase::PreStart(i) => Proc::PreStart(i),
            Phase::Main => Proc::Main,
            Phase::PostStop(i) => Proc::PostStop(i),
            Phase::Done => return,
        };
        // Reaped: the pid may be reused from now on and must never be signalled again.
        self.apps[app].pid = None;
        if status != 0 && proc != Proc::Main {
            self.out
                .push(Action::Report(Report::HookFailed { app, proc, status }));
        }
        self.ended(app, proc, status);
    }

    /// `proc` of `app` ended with `status`, or failed to start (status 254, already reported
    /// by the driver).
    fn ended(&mut self, app: usize, proc: Proc, status: i32) {
        match proc {
            Proc::PreStart(i) if status == 0 => self.enter(app, Phase::PreStart(i + 1)),
            Proc::PreStart(_) | Proc::Main => self.main_ended(app, status),
            Proc::PostStop(i) => self.enter(app, Phase::PostStop(i + 1)),
        }
    }

    /// The app is over (or never started): record it, apply the exit policy, clean up.
    fn main_ended(&mut self, app: usize, status: i32) {
        self.out.push(Action::WriteStatus { app, status });
        if status != 0 {
            self.first_failure.get_or_insert(status);
            if self.stop == Stop::NotStopping {
                self.begin_stop(StopCause::AppFailed { app, status });
            } else {
                self.out
                    .push(Action::Report(Report::AppFailed { app, status }));
            }
        }
        self.enter(app, Phase::PostStop(0));
    }

    /// Starts a stop unless one is under way; a repeated request changes nothing.
    fn begin_stop(&mut self, cause: StopCause) {
        if self.stop != Stop::NotStopping {
            return;
        }
        let signal = match cause {
            StopCause::Signal(signal) => signal,
            StopCause::AppFailed { .. } => Signal::Term,
        };
        self.stop = Stop::Graceful(signal);
        self.out.push(Action::Report(Report::Stopping(cause)));
        for state in &mut self.apps {
            if let Some(pid) = state.signalable_pid() {
                state.stopped_by_us = true;
                self.out.push(Action::Signal { pid, signal });
            }
        }
        self.out.push(Action::ArmStopTimer(self.stop_timeout));
    }

    fn forward(&mut self, signal: Signal) {
        let pids = self.apps.iter().filter_map(AppState::signalable_pid);
        self.out
            .extend(pids.map(|pid| Action::Signal { pid, signal }));
    }

    fn kill_all(&mut self) {
        if !matches!(self.stop, Stop::Graceful(_)) {
            return;
        }
        self.stop = Stop::Killed;
        self.out.push(Action::Report(Report::StopTimeout));
        let mut pids = Vec::new();
        for state in &mut self.apps {
            if let Some(pid) = state.pid {
                state.stopped_by_us = true;
                pids.push(pid);
            }
        }
        self.out.push(Action::KillAll { pids });
    }

    /// Readiness and the end of the pod are decided after each step, so `Exit` comes last.
    fn finish_step(&mut self) -> Vec<Action> {
        if !self.ready && self.apps.iter().all(AppState::started) {
            self.ready = true;
            self.out.push(Action::MarkReady);
        }
        if !self.exited && self.apps.iter().all(|a| a.phase == Phase::Done) {
            self.exited = true;
            self.out.push(Action::Exit(self.first_failure.unwrap_or(0)));
        }
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests;
