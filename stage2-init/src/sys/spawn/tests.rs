use super::*;

#[test]
fn step_codes_round_trip() {
    for step in Step::ALL {
        assert_eq!(Step::from_code(step as u32), Some(step));
    }
    assert_eq!(Step::from_code(0), None);
    assert_eq!(Step::from_code(Step::ALL.len() as u32 + 1), None);
}

#[test]
fn limits_come_from_the_kernel() {
    let limits = ExecLimits::read();
    assert!(limits.last_cap <= CapSet::MAX);
    if let Ok(text) = std::fs::read_to_string(LAST_CAP_PATH) {
        assert_eq!(limits.last_cap.to_string(), text.trim());
    }
    assert!(limits.fd_limit > 3);
}

#[test]
fn the_fallback_marks_an_inherited_descriptor_close_on_exec() {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors; pipe without O_CLOEXEC on purpose.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: pipe succeeded; the test owns both descriptors from here on.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: F_GETFD on descriptors we own.
    let cloexec = |fd: &OwnedFd| unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    assert_eq!(cloexec(&b) & libc::FD_CLOEXEC, 0);
    let limit = a.as_raw_fd().max(b.as_raw_fd()) + 1;
    assert_eq!(mark_fds_cloexec_one_by_one(limit), Ok(()));
    assert_ne!(cloexec(&a) & libc::FD_CLOEXEC, 0);
    assert_ne!(cloexec(&b) & libc::FD_CLOEXEC, 0);
}
