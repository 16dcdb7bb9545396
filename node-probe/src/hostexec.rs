//! Running a host's own program inside the host root (its binary, its libraries, its configuration).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// Make `cmd` chroot into `dir` (and chdir to `/`) before it execs: the program path is then the
/// host's. Needs CAP_SYS_CHROOT (the probe pod is privileged).
pub fn chroot(cmd: &mut Command, dir: PathBuf) {
    // SAFETY: only async-signal-safe syscalls (chroot, chdir) run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::chroot(&dir)?;
            rustix::process::chdir("/")?;
            Ok(())
        });
    }
}
