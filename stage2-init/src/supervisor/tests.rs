use super::*;

const TIMEOUT: Duration = Duration::from_secs(2);

fn hooks(pre_start: usize, post_stop: usize) -> AppHooks {
    AppHooks {
        pre_start,
        post_stop,
    }
}

/// A supervisor for apps without handlers whose main processes were all spawned,
/// app `i` with pid `100 + i`.
fn running(count: usize) -> Supervisor {
    let mut sup = Supervisor::new(vec![hooks(0, 0); count], TIMEOUT);
    let spawns = sup.start();
    assert_eq!(spawns.len(), count);
    for app in 0..count {
        let actions = sup.handle(spawned(app, Proc::Main, 100 + app as Pid));
        assert_eq!(actions.is_empty(), app + 1 < count, "{actions:?}");
    }
    sup
}

fn spawned(app: usize, proc: Proc, pid: Pid) -> Event {
    Event::Spawned { app, proc, pid }
}

fn exited(pid: Pid, code: i32) -> Event {
    Event::Reaped {
        pid,
        status: WaitStatus::Exited(code),
    }
}

fn killed(pid: Pid, signal: i32) -> Event {
    Event::Reaped {
        pid,
        status: WaitStatus::Signaled(signal),
    }
}

fn spawn(app: usize, proc: Proc) -> Action {
    Action::Spawn { app, proc }
}

fn status(app: usize, status: i32) -> Action {
    Action::WriteStatus { app, status }
}

fn term(pid: Pid) -> Action {
    Action::Signal {
        pid,
        signal: Signal::Term,
    }
}

#[test]
fn all_start_together_and_ready_after_the_last_main_started() {
    let mut sup = Supervisor::new([hooks(0, 0), hooks(1, 0)], TIMEOUT);
    assert_eq!(
        sup.start(),
        [spawn(0, Proc::Main), spawn(1, Proc::PreStart(0))]
    );
    assert_eq!(sup.handle(spawned(0, Proc::Main, 10)), []);
    assert_eq!(sup.handle(spawned(1, Proc::PreStart(0), 11)), []);
    assert_eq!(sup.handle(exited(11, 0)), [spawn(1, Proc::Main)]);
    assert_eq!(sup.handle(spawned(1, Proc::Main, 12)), [Action::MarkReady]);
}

#[test]
fn zero_five_and_slow_exit_five_with_statuses_zero_five_zero() {
    let mut sup = running(3);
    assert_eq!(sup.handle(exited(100, 0)), [status(0, 0)]);
    assert_eq!(
        sup.handle(exited(101, 5)),
        [
            status(1, 5),
            Action::Report(Report::Stopping(StopCause::AppFailed { app: 1, status: 5 })),
            term(102),
            Action::ArmStopTimer(TIMEOUT),
        ]
    );
    assert_eq!(sup.handle(killed(102, 15)), [status(2, 0), Action::Exit(5)]);
    assert_eq!(sup.handle(Event::StopTimerExpired), []);
}

#[test]
fn stop_timeout_kills_what_ignores_sigterm() {
    let mut sup = running(2);
    sup.handle(exited(100, 3));
    assert_eq!(
        sup.handle(Event::StopTimerExpired),
        [
            Action::Report(Report::StopTimeout),
            Action::KillAll { pids: vec![101] }
        ]
    );
    assert_eq!(sup.handle(killed(101, 9)), [status(1, 0), Action::Exit(3)]);
}

#[test]
fn apps_exiting_zero_leave_the_others_running() {
    let mut sup = running(2);
    assert_eq!(sup.handle(exited(101, 0)), [status(1, 0)]);
    assert_eq!(sup.handle(exited(100, 0)), [status(0, 0), Action::Exit(0)]);
}

#[test]
fn sigterm_stops_gracefully_and_exits_zero() {
    let mut sup = running(2);
    assert_eq!(
        sup.handle(Event::Signal(Signal::Term)),
        [
            Action::Report(Report::Stopping(StopCause::Signal(Signal::Term))),
            term(100),
            term(101),
            Action::ArmStopTimer(TIMEOUT),
        ]
    );
    assert_eq!(sup.handle(Event::Signal(Signal::Term)), []);
    assert_eq!(sup.handle(Event::Signal(Signal::Int)), []);
    assert_eq!(sup.handle(killed(100, 15)), [status(0, 0)]);
    assert_eq!(sup.handle(exited(101, 0)), [status(1, 0), Action::Exit(0)]);
}

#[test]
fn sigint_is_forwarded_as_sigint() {
    let mut sup = running(1);
    let actions = sup.handle(Event::Signal(Signal::Int));
    let int = Action::Signal {
        pid: 100,
        signal: Signal::Int,
    };
    assert!(actions.contains(&int), "{actions:?}");
    assert_eq!(sup.handle(killed(100, 2)), [status(0, 0), Action::Exit(0)]);
}

#[test]
fn an_app_exiting_non_zero_after_a_requested_stop_is_the_failure() {
    let mut sup = running(2);
    sup.handle(Event::Signal(Signal::Term));
    let failed = Action::Report(Report::AppFailed {
        app: 0,
        status: 143,
    });
    assert_eq!(sup.handle(exited(100, 143)), [status(0, 143), failed]);
    assert_eq!(
        sup.handle(killed(101, 15)),
        [status(1, 0), Action::Exit(143)]
    );
}

#[test]
fn sighup_is_only_forwarded_and_death_by_it_is_a_failure() {
    let mut sup = running(2);
    let hup = |pid| Action::Signal {
        pid,
        signal: Signal::Hup,
    };
    assert_eq!(sup.handle(Event::Signal(Signal::Hup)), [hup(100), hup(101)]);
    let actions = sup.handle(killed(100, 1));
    assert_eq!(actions[0], status(0, 129));
    assert!(actions.contains(&term(101)), "{actions:?}");
}

#[test]
fn forward_only_signals_reach_pre_start_and_main_but_stop_nothing() {
    let forwarded = [
        Signal::Hup,
        Signal::Usr1,
        Signal::Usr2,
        Signal::Winch,
        Signal::Quit,
        Signal::Cont,
    ];
    let mut sup = Supervisor::new([hooks(1, 0), hooks(0, 1), hooks(0, 0)], TIMEOUT);
    sup.start();
    sup.handle(spawned(0, Proc::PreStart(0), 10));
    sup.handle(spawned(1, Proc::Main, 20));
    sup.handle(spawned(2, Proc::Main, 30));
    // App 1 is in its post-stop handler: cleanup is left alone.
    sup.handle(exited(20, 0));
    sup.handle(spawned(1, Proc::PostStop(0), 21));
    for signal in forwarded {
        let to = |pid| Action::Signal { pid, signal };
        assert_eq!(
            sup.handle(Event::Signal(signal)),
            [to(10), to(30)],
            "{signal:?}"
        );
    }
    // Still running normally: the app ends with its own status and nothing else.
    assert_eq!(sup.handle(exited(30, 0)), [status(2, 0)]);
    let received: Vec<_> = Signal::RECEIVED.into_iter().collect();
    for signal in forwarded {
        assert!(received.contains(&signal), "{signal:?} is waited for");
    }
}

#[test]
fn killed_by_someone_else_records_128_plus_signal() {
    let mut sup = running(1);
    assert_eq!(
        sup.handle(killed(100, 9)),
        [
            status(0, 137),
            Action::Report(Report::Stopping(StopCause::AppFailed {
                app: 0,
                status: 137
            })),
            Action::ArmStopTimer(TIMEOUT),
            Action::Exit(137),
        ]
    );
}

#[test]
fn exit_code_is_the_first_failure_observed() {
    let mut sup = running(3);
    sup.handle(exited(101, 7));
    sup.handle(exited(100, 9));
    let failed = Action::Report(Report::AppFailed { app: 2, status: 1 });
    assert_eq!(
        sup.handle(exited(102, 1)),
        [status(2, 1), failed, Action::Exit(7)]
    );
}

#[test]
fn pre_start_handlers_run_in_order_then_main_then_post_stop() {
    let mut sup = Supervisor::new([hooks(2, 2)], TIMEOUT);
    assert_eq!(sup.start(), [spawn(0, Proc::PreStart(0))]);
    sup.handle(spawned(0, Proc::PreStart(0), 10));
    assert_eq!(sup.handle(exited(10, 0)), [spawn(0, Proc::PreStart(1))]);
    sup.handle(spawned(0, Proc::PreStart(1), 11));
    assert_eq!(sup.handle(exited(11, 0)), [spawn(0, Proc::Main)]);
    assert_eq!(sup.handle(spawned(0, Proc::Main, 12)), [Action::MarkReady]);
    assert_eq!(
        sup.handle(exited(12, 0)),
        [status(0, 0), spawn(0, Proc::PostStop(0))]
    );
    sup.handle(spawned(0, Proc::PostStop(0), 13));
    assert_eq!(
        sup.handle(exited(13, 4)),
        [
            Action::Report(Report::HookFailed {
                app: 0,
                proc: Proc::PostStop(0),
                status: 4
            }),
            spawn(0, Proc::PostStop(1)),
        ]
    );
    let failed = Event::SpawnFailed {
        app: 0,
        proc: Proc::PostStop(1),
    };
    assert_eq!(sup.handle(failed), [Action::Exit(0)]);
}

#[test]
fn failing_pre_start_fails_the_app_without_starting_it() {
    let mut sup = Supervisor::new([hooks(2, 1), hooks(0, 0)], TIMEOUT);
    sup.start();
    sup.handle(spawned(0, Proc::PreStart(0), 10));
    sup.handle(spawned(1, Proc::Main, 20));
    let actions = sup.handle(exited(10, 3));
    assert_eq!(
        actions,
        [
            Action::Report(Report::HookFailed {
                app: 0,
                proc: Proc::PreStart(0),
                status: 3
            }),
            status(0, 3),
            Action::Report(Report::Stopping(StopCause::AppFailed { app: 0, status: 3 })),
            term(20),
            Action::ArmStopTimer(TIMEOUT),
            spawn(0, Proc::PostStop(0)),
            Action::MarkReady,
        ]
    );
    sup.handle(spawned(0, Proc::PostStop(0), 11));
    // Post-stop handlers are not signalled by the graceful stop, but are by SIGKILL.
    let actions = sup.handle(Event::StopTimerExpired);
    assert_eq!(actions[1], Action::KillAll { pids: vec![11, 20] });
    sup.handle(killed(11, 9));
    assert_eq!(sup.handle(killed(20, 9)), [status(1, 0), Action::Exit(3)]);
}

#[test]
fn main_that_fails_to_start_records_254_and_stops_the_pod() {
    let mut sup = Supervisor::new([hooks(0, 1), hooks(0, 0)], TIMEOUT);
    sup.start();
    let actions = sup.handle(Event::SpawnFailed {
        app: 0,
        proc: Proc::Main,
    });
    assert_eq!(actions[0], status(0, EXIT_SETUP_FAILURE));
    assert_eq!(actions.last(), Some(&spawn(0, Proc::PostStop(0))));
    // Requested before the stop, started after it: signalled at once.
    assert_eq!(
        sup.handle(spawned(1, Proc::Main, 20)),
        [term(20), Action::MarkReady]
    );
    sup.handle(spawned(0, Proc::PostStop(0), 11));
    sup.handle(exited(11, 0));
    assert_eq!(
        sup.handle(killed(20, 15)),
        [status(1, 0), Action::Exit(EXIT_SETUP_FAILURE)]
    );
}

#[test]
fn a_stop_during_pre_start_skips_the_main_process_and_records_zero() {
    let mut sup = Supervisor::new([hooks(2, 0)], TIMEOUT);
    sup.start();
    sup.handle(spawned(0, Proc::PreStart(0), 10));
    assert!(sup.handle(Event::Signal(Signal::Term)).contains(&term(10)));
    assert_eq!(
        sup.handle(killed(10, 15)),
        [status(0, 0), Action::MarkReady, Action::Exit(0)]
    );
}

#[test]
fn orphans_and_late_events_are_ignored() {
    let mut sup = running(1);
    assert_eq!(sup.handle(exited(999, 1)), []);
    assert_eq!(sup.handle(Event::StopTimerExpired), []);
    assert_eq!(sup.handle(exited(100, 0)), [status(0, 0), Action::Exit(0)]);
    assert_eq!(sup.handle(Event::Signal(Signal::Term)), []);
}
