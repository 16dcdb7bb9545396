//! The notices of a launcher or framework that something waits too long.

use super::signature::Signature;

/// Hang notices: PyTorch's heartbeat monitor, the elastic rendezvous and store timeouts, NCCL's own.
pub fn hang_notice(s: &str) -> Option<Signature> {
    const NOTICES: &[&str] = &[
        "Heartbeat monitor timed out",
        "RendezvousTimeoutError",
        "Socket Timeout",
        "Timed out waiting for",
        "watchdog thread terminated",
        "NCCL communicator was aborted",
    ];
    NOTICES
        .iter()
        .any(|n| s.contains(n))
        .then_some(Signature::Hang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hang_notices() {
        assert_eq!(
            hang_notice(
                "[rank0]:[E ProcessGroupNCCL.cpp:1400] [PG 0 Rank 0] Heartbeat monitor timed out! Process will be terminated after dumping debug info."
            ),
            Some(Signature::Hang)
        );
        assert_eq!(
            hang_notice("torch.distributed.elastic.rendezvous.api.RendezvousTimeoutError"),
            Some(Signature::Hang)
        );
    }
}
