//! NCCL's lines: its `WARN`s and the error strings PyTorch re-raises, the init lines naming the network and
//! each communicator's rank and device, and its `busId` in canonical form.

use super::line::{digits_after, word_after};
use super::signature::{NcclProblem, Signature, Transport};

/// A `NCCL WARN` line or NCCL's error strings as PyTorch re-raises them (`NCCL error in: …, <string>`).
pub fn nccl_problem(s: &str) -> Option<Signature> {
    let warn = s.find("NCCL WARN").map(|i| &s[i + "NCCL WARN".len()..]);
    let body = warn.unwrap_or(s);
    let problem = if let Some(i) = body.find("Got completion from peer") {
        let rest = &body[i..];
        NcclProblem::IbCompletion {
            peer: word_after(rest, "from peer").map(String::from),
            status: digits_after(rest, "status=").or_else(|| digits_after(rest, "with error ")),
            vendor_err: digits_after(rest, "vendor err"),
            hca: word_after(rest, " hca ").map(String::from),
        }
    } else if let Some(i) = body.find("Connection closed by remote peer") {
        NcclProblem::ConnectionClosed {
            peer: word_after(&body[i..], "remote peer").map(String::from),
        }
    } else if body.contains("remote process exited") {
        NcclProblem::RemoteExited
    } else if body.contains("unhandled system error") {
        NcclProblem::SystemError
    } else if warn.is_some() {
        NcclProblem::Other
    } else {
        return None;
    };
    Some(Signature::Nccl { problem })
}

/// NCCL's init lines naming the network: `NCCL INFO Using network IB` or `NCCL INFO NET/IB : Using [0]mlx5_0:1/IB
/// …` (and `NET/Socket : Using [0]eth0:…`).
pub fn nccl_transport(s: &str) -> Option<Signature> {
    let of = |name: &str| match name {
        n if n.starts_with("IB") => Transport::Ib,
        n if n.starts_with("Socket") => Transport::Socket,
        _ => Transport::Other,
    };
    if !s.contains("NCCL INFO") {
        return None;
    }
    if let Some(n) = word_after(s, "Using network") {
        return Some(Signature::NcclTransport {
            transport: of(n),
            nics: None,
        });
    }
    let i = s.find("NET/")?;
    let rest = &s[i + 4..];
    let (name, after) = rest.split_once(" : Using")?;
    if name.contains(' ') {
        return None;
    }
    let nics = after.split(" ; ").next().unwrap_or("").trim();
    Some(Signature::NcclTransport {
        transport: of(name),
        nics: (!nics.is_empty()).then(|| nics.chars().take(120).collect()),
    })
}

/// `NCCL INFO … comm 0x… rank R nranks N cudaDev C nvmlDev D busId B … Init COMPLETE`, and the same fields
/// on the `… - Init START` line NCCL prints when a communicator begins (NVIDIA/nccl `src/init.cc`: `"%s comm
/// %p rank %d nranks %d cudaDev %d nvmlDev %d busId %lx commId 0x%llx - Init START"`), so a rank that died
/// during init still names its GPU. Older NCCL prints no `nvmlDev` (`comm %p rank %d nranks %d cudaDev %d
/// busId %lx … - Init COMPLETE`).
pub fn nccl_rank_device(s: &str) -> Option<Signature> {
    if !s.contains("NCCL INFO") || !(s.contains("Init COMPLETE") || s.contains("Init START")) {
        return None;
    }
    Some(Signature::NcclRankDevice {
        rank: digits_after(s, " rank ")?,
        nranks: digits_after(s, " nranks "),
        nvml_dev: digits_after(s, " nvmlDev "),
        bus_id: word_after(s, " busId ").map(String::from),
    })
}

/// NCCL's `busId` (the PCI address's hex digits without separators, e.g. `1b000` for `0000:1b:00.0`) in the
/// canonical form of [`crate::pci::normalize_bus_id`].
pub fn nccl_bus_id(raw: &str) -> Option<String> {
    if raw.is_empty() || raw.len() > 12 {
        return None;
    }
    let v = u64::from_str_radix(raw, 16).ok()?;
    Some(format!(
        "{:04x}:{:02x}:{:02x}.{:x}",
        v >> 20,
        (v >> 12) & 0xff,
        (v >> 4) & 0xff,
        v & 0xf
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nccl_warnings_are_told_apart() {
        let p = |l: &str| match nccl_problem(l) {
            Some(Signature::Nccl { problem }) => problem,
            o => panic!("{o:?}"),
        };
        assert_eq!(
            p(
                "gpu-7:211:305 [2] NCCL WARN NET/IB : Got completion from peer 10.4.0.17<50113> with status=12 \
               opcode=0 len=0 vendor err 129 (Recv) localGid ::ffff:10.4.0.9 remoteGid ::ffff:10.4.0.17"
            ),
            NcclProblem::IbCompletion {
                peer: Some("10.4.0.17<50113>".into()),
                status: Some(12),
                vendor_err: Some(129),
                hca: None,
            }
        );
        // NCCL 2.19 and later end the line with the rank's own HCA.
        assert_eq!(
            p(
                "gpu-7:211:305 [2] NCCL WARN NET/IB : Got completion from peer 10.4.0.17<50113> with status=12 \
               opcode=0 len=0 vendor err 129 (Recv) localGid ::ffff:10.4.0.9 remoteGid ::ffff:10.4.0.17 hca mlx5_3"
            ),
            NcclProblem::IbCompletion {
                peer: Some("10.4.0.17<50113>".into()),
                status: Some(12),
                vendor_err: Some(129),
                hca: Some("mlx5_3".into()),
            }
        );
        assert_eq!(
            p(
                "gpu-7:211:305 [2] NCCL WARN NET/IB : Got completion from peer 10.4.0.17<50113> with error 5, \
               opcode 0, len 0, vendor err 249"
            ),
            NcclProblem::IbCompletion {
                peer: Some("10.4.0.17<50113>".into()),
                status: Some(5),
                vendor_err: Some(249),
                hca: None,
            }
        );
        assert_eq!(
            p("gpu-2:88:90 [0] NCCL WARN Net : Connection closed by remote peer 10.4.1.3<41862>"),
            NcclProblem::ConnectionClosed {
                peer: Some("10.4.1.3<41862>".into())
            }
        );
        assert_eq!(
            p(
                "torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, remote process \
               exited or there was a network error, NCCL version 2.21.5"
            ),
            NcclProblem::RemoteExited
        );
        assert_eq!(
            p(
                "RuntimeError: NCCL error in: ../ProcessGroupNCCL.cpp:1269, unhandled system error (run with \
               NCCL_DEBUG=INFO for details), NCCL version 2.18.1"
            ),
            NcclProblem::SystemError
        );
        assert_eq!(
            p("h:1:2 [0] NCCL WARN Cuda failure 'invalid argument'"),
            NcclProblem::Other
        );
        assert_eq!(nccl_problem("NCCL INFO Bootstrap : Using eth0"), None);
    }

    #[test]
    fn transport_and_rank_device_from_init_lines() {
        assert_eq!(
            nccl_transport(
                "gpu-1:42:42 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_3:1/IB ; OOB eth0:10.4.0.2<0>"
            ),
            Some(Signature::NcclTransport {
                transport: Transport::Ib,
                nics: Some("[0]mlx5_0:1/IB [1]mlx5_3:1/IB".into())
            })
        );
        assert_eq!(
            nccl_transport("gpu-1:42:42 [0] NCCL INFO NET/Socket : Using [0]eth0:10.4.0.2<0>"),
            Some(Signature::NcclTransport {
                transport: Transport::Socket,
                nics: Some("[0]eth0:10.4.0.2<0>".into())
            })
        );
        assert_eq!(
            nccl_transport("gpu-1:42:42 [0] NCCL INFO Using network Socket"),
            Some(Signature::NcclTransport {
                transport: Transport::Socket,
                nics: None
            })
        );
        assert_eq!(
            nccl_rank_device(
                "gpu-1:42:97 [3] NCCL INFO comm 0x5581c0a0 rank 27 nranks 64 cudaDev 3 nvmlDev 3 busId 5d000 \
                 commId 0x9c1e2a4b7f00aa11 - Init COMPLETE"
            ),
            Some(Signature::NcclRankDevice {
                rank: 27,
                nranks: Some(64),
                nvml_dev: Some(3),
                bus_id: Some("5d000".into())
            })
        );
        assert_eq!(
            nccl_rank_device("NCCL INFO comm 0x1 rank 2 nranks 4 - Init START"),
            Some(Signature::NcclRankDevice {
                rank: 2,
                nranks: Some(4),
                nvml_dev: None,
                bus_id: None
            })
        );
        // The line a communicator starts with names the device too (NVIDIA/nccl src/init.cc), so a rank
        // that never completed init still names its GPU.
        assert_eq!(
            nccl_rank_device(
                "train-4:41:41 [0] NCCL INFO ncclCommInitRank comm 0x55d04000 rank 4 nranks 8 cudaDev 0 nvmlDev 0 \
                 busId 9a000 commId 0x3f6a91c0d25e7b14 - Init START"
            ),
            Some(Signature::NcclRankDevice {
                rank: 4,
                nranks: Some(8),
                nvml_dev: Some(0),
                bus_id: Some("9a000".into())
            })
        );
        assert_eq!(
            nccl_rank_device("h:1:2 [0] NCCL INFO Channel 00/02 :    0   1   2   3"),
            None
        );
    }
}
