//! Capability sets of a starting app: the bounding set before `setuid`, then the permitted,
//! effective, inheritable and ambient sets after it. Runs in the child between `fork` and
//! `execve`: raw system calls on stack data only.

use std::ptr;

use super::spawn::{check, errno, Step};
use crate::plan::CapSet;

/// `_LINUX_CAPABILITY_VERSION_3` of `<linux/capability.h>`: 64-bit sets as two 32-bit words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`; version 3 takes two: bits 0–31, then bits 32–63.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops every capability from 0 to `last_cap` that `keep` lacks from the bounding set, so
/// neither the app nor anything it executes (set-uid root binaries, file capabilities) can
/// regain it. EINVAL means the kernel lacks that capability: nothing to drop.
pub(super) fn drop_bounding_set(keep: u64, last_cap: u32) -> Result<(), Step> {
    for cap in 0..=last_cap.min(CapSet::MAX) {
        if keep & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes a capability number and no pointers; the unused
        // arguments are passed as zero longs, as the kernel reads them.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAPBSET_DROP,
                libc::c_ulong::from(cap),
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if rc == -1 && errno() != libc::EINVAL {
            return Err(Step::DropBounding);
        }
    }
    Ok(())
}

/// After setuid: permitted and effective become `keep` (as far as we hold it). A root app's
/// inheritable set becomes the same; another uid keeps only the part of its inheritable set
/// within `keep` (empty unless stage2-init was started with inheritable capabilities), since
/// inheritable capabilities are not limited by the bounding set at execve. Ambient
/// capabilities are cleared (the capset already removed any outside `keep`).
pub(super) fn restrict_caps(keep: u64, uid: libc::uid_t) -> Result<(), Step> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: version 3 makes capget write two data structs, the size of `data`; both are
    // live locals.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            ptr::addr_of_mut!(header),
            data.as_mut_ptr(),
        )
    };
    check(rc, Step::Capget)?;
    let join = |low: u32, high: u32| u64::from(high) << 32 | u64::from(low);
    let permitted = join(data[0].permitted, data[1].permitted) & keep;
    let inheritable = if uid == 0 {
        permitted
    } else {
        join(data[0].inheritable, data[1].inheritable) & keep
    };
    for (word, shift) in data.iter_mut().zip([0, 32]) {
        // Truncation picks the 32-bit half.
        let half = |set: u64| (set >> shift) as u32;
        *word = CapData {
            effective: half(permitted),
            permitted: half(permitted),
            inheritable: half(inheritable),
        };
    }
    // SAFETY: as for capget; capset only reads.
    let rc = unsafe { libc::syscall(libc::SYS_capset, ptr::addr_of!(header), data.as_ptr()) };
    check(rc, Step::Capset)?;
    Ok(())
}

/// Clears the ambient set. Before the capability sets are narrowed, and before a seccomp
/// filter is loaded, so that the filter never needs to allow `prctl` for us.
pub(super) fn clear_ambient() -> Result<(), Step> {
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes no pointers and needs the other arguments zero.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    // EINVAL: a kernel before 4.3, without ambient capabilities.
    if rc == -1 && errno() != libc::EINVAL {
        return Err(Step::ClearAmbient);
    }
    Ok(())
}
