//! The CUDA runtime's errors as a rank prints them.

use super::signature::{CudaErrorKind, Signature};

/// The CUDA runtime's error strings (`cudaGetErrorString`) and PyTorch's out-of-memory error.
pub fn cuda_error(s: &str) -> Option<Signature> {
    let error = if s.contains("uncorrectable ECC error encountered") {
        CudaErrorKind::EccUncorrectable
    } else if s.contains("an illegal memory access was encountered")
        || s.contains("an illegal instruction was encountered")
    {
        CudaErrorKind::IllegalAddress
    } else if s.contains("unspecified launch failure") {
        CudaErrorKind::LaunchFailure
    } else if s.contains("CUDA out of memory") || s.contains("CUDA error: out of memory") {
        CudaErrorKind::OutOfMemory
    } else {
        return None;
    };
    Some(Signature::CudaError { error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_errors() {
        let k = |l: &str| match cuda_error(l) {
            Some(Signature::CudaError { error }) => error,
            o => panic!("{o:?}"),
        };
        assert_eq!(
            k("RuntimeError: CUDA error: uncorrectable ECC error encountered"),
            CudaErrorKind::EccUncorrectable
        );
        assert_eq!(
            k("torch.AcceleratorError: CUDA error: an illegal memory access was encountered"),
            CudaErrorKind::IllegalAddress
        );
        assert_eq!(
            k("RuntimeError: CUDA error: unspecified launch failure"),
            CudaErrorKind::LaunchFailure
        );
        assert_eq!(
            k(
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.11 GiB"
            ),
            CudaErrorKind::OutOfMemory
        );
        assert_eq!(cuda_error("all good"), None);
    }
}
