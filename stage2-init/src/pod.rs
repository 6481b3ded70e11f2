//! Runs the pod: carries out the [`Supervisor`]'s actions with [`sys`] and feeds it what
//! happened, from one loop that waits for signals (SIGCHLD included) and the stop timer.
//!
//! Setup failures before the first app starts end stage2-init with 254. After that nothing
//! is fatal: a failed action is a warning on stderr and the loop goes on reaping. Errors and
//! warnings are always printed; the supervisor's informational reports only with `verbose`.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::Path;
use std::time::Instant;

use crate::contract::{ENTER_SOCKET, EXIT_SETUP_FAILURE};
use crate::enter::EnterServer;
use crate::plan::{AppPlan, Plan};
use crate::status;
use crate::supervisor::{Action, AppHooks, Event, Proc, Report, Signal, StopCause, Supervisor};
use crate::sys::{
    self, Command, Confinement, ExecLimits, ExecSpec, Program, Session, SignalWaiter, Wakeup,
};

/// An app's processes, prepared as C data once, before anything starts.
struct AppSpecs {
    pre_start: Vec<ExecSpec>,
    main: ExecSpec,
    post_stop: Vec<ExecSpec>,
}

struct Pod<'a> {
    plan: &'a Plan,
    specs: Vec<AppSpecs>,
    pid1: bool,
    stop_deadline: Option<Instant>,
    limits: ExecLimits,
    /// `rkt enter` requests; `None` if the socket could not be made (the pod runs anyway).
    enter: Option<EnterServer>,
}

/// Runs every app of `plan` to the end; returns stage2-init's exit code.
pub fn run(plan: &Plan) -> i32 {
    match setup(plan) {
        Ok((signals, pod)) => pod.supervise(&signals),
        Err(err) => {
            say!("{err}");
            EXIT_SETUP_FAILURE
        }
    }
}

fn setup(plan: &Plan) -> Result<(SignalWaiter, Pod<'_>), sys::Error> {
    // Before any child exists, so no SIGCHLD or forwarded signal can be missed.
    let signals = SignalWaiter::new()?;
    let pid1 = std::process::id() == 1;
    if !pid1 {
        sys::become_subreaper()?;
    }
    status::create_status_dir(&plan.rkt_dir)?;
    // While there is room: a pod that fills its disk must still record how its apps exit.
    for app in &plan.apps {
        status::reserve_status(&plan.rkt_dir, &app.name)?;
    }
    let limits = ExecLimits::read();
    let specs = plan
        .apps
        .iter()
        .map(|app| app_specs(app, plan.interactive, limits))
        .collect::<Result<_, _>>()?;
    // Before any app starts, so it is there once the pod is ready.
    let enter = match EnterServer::bind(&plan.rkt_dir.join(ENTER_SOCKET), pid1) {
        Ok(server) => Some(server),
        Err(err) => {
            say!("warning: rkt enter will not work in this pod: {err}");
            None
        }
    };
    let pod = Pod {
        plan,
        specs,
        pid1,
        stop_deadline: None,
        limits,
        enter,
    };
    Ok((signals, pod))
}

/// The app's seccomp programs, read from the file the plan names (none without one).
pub fn seccomp_programs(app: &AppPlan) -> Result<Vec<Program>, sys::Error> {
    match &app.seccomp {
        Some(path) => sys::read_programs(path),
        None => Ok(Vec::new()),
    }
}

/// What every process of `app` gets beyond root and credentials.
pub fn confinement<'a>(app: &'a AppPlan, seccomp: &'a [Program]) -> Confinement<'a> {
    Confinement {
        cgroup_fds: &app.cgroup_fds,
        cgroup_v2: app.cgroup_v2,
        oom_score_adj: app.oom_score_adj,
        no_new_privileges: app.no_new_privileges,
        seccomp,
    }
}

fn app_specs(app: &AppPlan, interactive: bool, limits: ExecLimits) -> Result<AppSpecs, sys::Error> {
    let programs = seccomp_programs(app)?;
    let spec = |argv: &[OsString], uid, gid, groups: &[u32], session| {
        let command = Command {
            root: &app.root,
            cwd: &app.cwd,
            argv,
            env: &app.env,
            uid,
            gid,
            groups,
            session,
            caps: app.caps,
            confine: confinement(app, &programs),
        };
        ExecSpec::new(&command, limits)
    };
    // Handlers run as root with no supplementary groups (rkt runs them privileged even for
    // unprivileged apps, docs/stage-contract.md, "How an app starts"), in the app's root, cwd and environment, and
    // with the app's capabilities.
    let handlers = |commands: &[Vec<OsString>]| {
        commands
            .iter()
            .map(|argv| spec(argv, 0, 0, &[], Session::New))
            .collect::<Result<Vec<_>, _>>()
    };
    let session = if interactive {
        Session::Foreground
    } else {
        Session::New
    };
    Ok(AppSpecs {
        pre_start: handlers(&app.pre_start)?,
        main: spec(&app.exec, app.uid, app.gid, &app.groups, session)?,
        post_stop: handlers(&app.post_stop)?,
    })
}

impl Pod<'_> {
    fn supervise(mut self, signals: &SignalWaiter) -> i32 {
        let hooks = self.plan.apps.iter().map(|app| AppHooks {
            pre_start: app.pre_start.len(),
            post_stop: app.post_stop.len(),
        });
        let mut supervisor = Supervisor::new(hooks, self.plan.stop_timeout);
        let mut pending: VecDeque<Action> = supervisor.start().into();
        loop {
            while let Some(action) = pending.pop_front() {
                if let Action::Exit(code) = action {
                    return code;
                }
                if let Some(event) = self.perform(action) {
                    pending.extend(supervisor.handle(event));
                }
            }
            let timeout = self
                .stop_deadline
                .map(|deadline| deadline.saturating_duration_since(Instant::now()));
            for wakeup in self.wait(signals, timeout) {
                if let Wakeup::Signal(signal) = wakeup {
                    pending.extend(supervisor.handle(Event::Signal(signal)));
                }
            }
            if self.stop_deadline.is_some_and(|d| Instant::now() >= d) {
                self.stop_deadline = None;
                pending.extend(supervisor.handle(Event::StopTimerExpired));
            }
            // Reap everything that ended, orphans included; standard signals coalesce, so one
            // SIGCHLD may stand for many children.
            loop {
                match sys::reap() {
                    Ok(Some((pid, status))) => {
                        let entered = self.enter.as_mut().is_some_and(|e| e.reaped(pid, status));
                        if !entered {
                            pending.extend(supervisor.handle(Event::Reaped { pid, status }));
                        }
                    }
                    Ok(None) => break,
                    Err(err) => {
                        say!("{err}");
                        break;
                    }
                }
            }
        }
    }

    /// Waits for signals, enter requests or the timeout; serves the enter socket and returns
    /// the signals that arrived.
    fn wait(
        &mut self,
        signals: &SignalWaiter,
        timeout: Option<std::time::Duration>,
    ) -> Vec<Wakeup> {
        let mut fds = vec![sys::readable(signals.as_fd())];
        let slots = self.enter.as_ref().map(|enter| {
            let (enter_fds, slots) = enter.fds();
            fds.extend(enter_fds.into_iter().map(sys::readable));
            slots
        });
        if let Err(err) = sys::poll(&mut fds, timeout) {
            say!("{err}");
        }
        let ready: Vec<bool> = fds.iter().map(|p| p.revents != 0).collect();
        if let (Some(enter), Some(slots)) = (self.enter.as_mut(), slots) {
            enter.serve(&ready[1..], slots, self.plan, self.limits);
        }
        if !ready[0] {
            return Vec::new();
        }
        signals.take().unwrap_or_else(|err| {
            say!("{err}");
            Vec::new()
        })
    }

    /// Carries out one action; returns what the supervisor must learn from it.
    fn perform(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::Spawn { app, proc } => return Some(self.spawn(app, proc)),
            Action::Signal { pid, signal } => warn(sys::kill_group(pid, signal)),
            // In the pod's pid namespace, that is every process but us, orphans included.
            Action::KillAll { .. } if self.pid1 => warn(sys::kill_every_process()),
            Action::KillAll { pids } => {
                for pid in pids {
                    warn(sys::kill_group(pid, Signal::Kill));
                }
            }
            Action::WriteStatus { app, status } => {
                warn(status::write_status(
                    &self.plan.rkt_dir,
                    &self.plan.apps[app].name,
                    status,
                ));
            }
            Action::ArmStopTimer(after) => self.stop_deadline = Some(Instant::now() + after),
            Action::MarkReady => warn(status::mark_ready(&self.plan.rkt_dir)),
            // Informational only: rkt's users see the apps' output undecorated unless asked.
            Action::Report(report) if self.plan.verbose => self.report(report),
            Action::Report(_) => {}
            Action::Exit(_) => {}
        }
        None
    }

    fn spawn(&self, app: usize, proc: Proc) -> Event {
        let specs = &self.specs[app];
        let spec = match proc {
            Proc::PreStart(i) => &specs.pre_start[i],
            Proc::Main => &specs.main,
            Proc::PostStop(i) => &specs.post_stop[i],
        };
        match sys::spawn(spec, None) {
            Ok(pid) => Event::Spawned { app, proc, pid },
            Err(err) => {
                let name = &self.plan.apps[app].name;
                match proc {
                    Proc::Main => say!("app {name}: {err}"),
                    _ => say!("app {name}: {}: {err}", self.describe(app, proc)),
                }
                Event::SpawnFailed { app, proc }
            }
        }
    }

    fn report(&self, report: Report) {
        match report {
            Report::HookFailed { app, proc, status } => {
                let name = &self.plan.apps[app].name;
                let consequence = match proc {
                    Proc::PreStart(_) => "the app is not started",
                    _ => "ignored",
                };
                let hook = self.describe(app, proc);
                say!("app {name}: {hook} exited with status {status}; {consequence}");
            }
            Report::AppFailed { app, status } => {
                let name = &self.plan.apps[app].name;
                say!("app {name} failed with status {status}");
            }
            Report::Stopping(StopCause::AppFailed { app, status }) => {
                let name = &self.plan.apps[app].name;
                say!("app {name} failed with status {status}; stopping the pod");
            }
            Report::Stopping(StopCause::Signal(signal)) => {
                say!("received {}; stopping the pod", sys::signal_name(signal));
            }
            Report::StopTimeout => say!(
                "apps still running {}s after the stop began; killing them",
                self.plan.stop_timeout.as_secs()
            ),
        }
    }

    /// `pre-start handler 1 (/bin/prepare)`.
    fn describe(&self, app: usize, proc: Proc) -> String {
        let app = &self.plan.apps[app];
        let (kind, index, argv) = match proc {
            Proc::PreStart(i) => ("pre-start", i, &app.pre_start[i]),
            Proc::PostStop(i) => ("post-stop", i, &app.post_stop[i]),
            Proc::Main => return "main process".to_owned(),
        };
        let path = argv.first().map_or(Path::new(""), Path::new);
        format!("{kind} handler {index} ({})", path.display())
    }
}

fn warn(result: Result<(), sys::Error>) {
    if let Err(err) = result {
        say!("warning: {err}");
    }
}
