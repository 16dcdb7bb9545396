//! `node-probe`: one-shot GPU node diagnostics. Prints exactly one JSON document on stdout (see
//! `gpu_diag::contract`); logs, if any, go to stderr. Exit status: 0 ok, 2 bad usage, 3 GPU library
//! unavailable, 4 permission denied, 1 other.

mod amd;
mod cli;
mod dcgm;
mod dra;
mod driver_roots;
mod evidence;
mod gaudi;
mod history;
mod host;
mod hostexec;
mod imex;
mod kmsg;
mod ldcache;
mod lines;
mod neuron;
mod nic;
mod nvml;
mod operator;
mod options;
mod podresources;
mod rvs;
mod source;
mod vendor;
mod watch;
mod xid_watch;

use std::io::Write;
use std::process::ExitCode;

use gpu_diag::contract::{ErrorKind, ProbeDocument, ProbeError};

fn main() -> ExitCode {
    // The libamd_smi reader (amd/smi.rs): before the command line, as no user-facing command.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == amd::smi::CHILD_ARG) {
        return amd::smi_child::main(&args[2..]);
    }
    // The libhlml reader (gaudi/hlml.rs), likewise.
    if args.get(1).is_some_and(|a| a == gaudi::hlml::CHILD_ARG) {
        return gaudi::hlml_child::main(&args[2..]);
    }
    let doc = match cli::parse(std::env::args_os()) {
        Ok(cli::Parsed::Run(inv)) => match inv.run() {
            Ok(doc) => doc,
            Err(e) => ProbeDocument::failure(e),
        },
        Ok(cli::Parsed::Help(text)) => {
            // --help and --version are for humans: plain text on stdout, as every CLI does.
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => ProbeDocument::failure(e),
    };
    let code = match &doc {
        ProbeDocument::Failure { error, .. } => error.kind.exit_code(),
        ProbeDocument::Success { .. } => 0,
    };
    if let Err(e) = emit(&doc) {
        eprintln!("node-probe: cannot write the report: {e}");
        return ExitCode::from(1);
    }
    ExitCode::from(code as u8)
}

fn emit(doc: &ProbeDocument) -> std::io::Result<()> {
    let pretty = std::env::var_os("NODE_PROBE_PRETTY").is_some();
    let text = if pretty {
        serde_json::to_string_pretty(doc)
    } else {
        serde_json::to_string(doc)
    }
    .map_err(|e| std::io::Error::other(ProbeError::new(ErrorKind::Internal, e.to_string())))?;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}
