//! Copy delivery: the payload, the choice of build per architecture, the ELF checks, the in-container
//! script (run here with the host's sh, as kwok runs it) and its failure markers.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::probe::delivery::{
    self, DeliveryChoice, DeliveryError, Failure, Payload, ProbeBinaries, SCRIPT, candidates,
    elf_info, find_binary, sha256_hex,
};

/// A minimal ELF64 LE header for `machine`, with one PT_INTERP program header naming `interp`.
fn fake_elf(machine: u16, interp: Option<&str>) -> Vec<u8> {
    let mut d = vec![0u8; 64];
    d[..4].copy_from_slice(b"\x7fELF");
    d[4] = 2; // 64-bit
    d[5] = 1; // little endian
    d[0x12..0x14].copy_from_slice(&machine.to_le_bytes());
    d[0x20..0x28].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    d[0x36..0x38].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    let phnum: u16 = if interp.is_some() { 1 } else { 0 };
    d[0x38..0x3a].copy_from_slice(&phnum.to_le_bytes());
    if let Some(i) = interp {
        let mut ph = vec![0u8; 56];
        ph[..4].copy_from_slice(&3u32.to_le_bytes());
        let off = (64 + 56) as u64;
        ph[8..16].copy_from_slice(&off.to_le_bytes());
        ph[32..40].copy_from_slice(&((i.len() + 1) as u64).to_le_bytes());
        d.extend_from_slice(&ph);
        d.extend_from_slice(i.as_bytes());
        d.push(0);
    }
    d.extend_from_slice(&[0xAB; 1000]);
    d
}

#[test]
fn payload_checksum_is_the_binarys_and_argv_carries_it() {
    let data = fake_elf(0x3e, Some("/lib64/ld-linux-x86-64.so.2"));
    let p = Payload::build("amd64", Path::new("/x/node-probe-linux-amd64"), &data).unwrap();
    assert_eq!(p.sha256, sha256_hex(&data));
    // sha256("abc"), the FIPS 180-2 example: the hex form is the one sha256sum prints.
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // Sent as is: no archive around it.
    assert_eq!(p.plain.as_slice(), data.as_slice());
    assert_eq!(
        p.interpreter.as_deref(),
        Some("/lib64/ld-linux-x86-64.so.2")
    );
    // Before the background compression: no gzip offered (0), the plain bytes for every image.
    let args = || ["health".to_string(), "--node-name".into(), "n1".into()];
    assert_eq!(p.argv(args())[5], "0");
    assert_eq!(p.stdin_for(delivery::Format::Gzip), p.plain.as_slice());
    p.compress().unwrap();
    let argv = p.argv(args());
    assert_eq!(&argv[..2], ["sh", "-c"]);
    assert_eq!(argv[2], SCRIPT);
    assert_eq!(argv[3], "sh");
    assert_eq!(argv[4], data.len().to_string());
    let gz = p.gzip().unwrap();
    assert_eq!(argv[5], gz.len().to_string());
    assert!(gz.len() < p.plain.len());
    assert_eq!(p.stdin_for(delivery::Format::Gzip), gz.as_slice());
    assert_eq!(p.stdin_for(delivery::Format::Plain), p.plain.as_slice());
    assert_eq!(argv[6], p.sha256);
    assert_eq!(argv[7], "/lib64/ld-linux-x86-64.so.2");
    assert_eq!(&argv[8..], ["health", "--node-name", "n1"]);
    // The compressed form is the binary, gzip'ed.
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(gz.as_slice()),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, data);
}

#[test]
fn payload_refuses_a_build_for_another_architecture_or_not_elf() {
    let arm = fake_elf(0xb7, Some("/lib/ld-linux-aarch64.so.1"));
    let e = Payload::build("amd64", Path::new("/x/node-probe-linux-amd64"), &arm).unwrap_err();
    assert!(
        e.to_string()
            .contains("built for arm64, not for the node's amd64"),
        "{e}"
    );
    assert!(Payload::build("arm64", Path::new("/x/a"), &arm).is_ok());
    let e = Payload::build("amd64", Path::new("/x/a"), b"#!/bin/sh\necho hi\n").unwrap_err();
    assert!(e.to_string().contains("not an ELF"), "{e}");
    // Static binaries have no interpreter: nothing to check in the container.
    assert_eq!(elf_info(&fake_elf(0x3e, None)).unwrap().interpreter, None);
    // The interpreter goes into a shell argument: anything odd is refused.
    let odd = fake_elf(0x3e, Some("/lib/ld$(reboot)"));
    assert!(elf_info(&odd).is_err());
    assert!(
        elf_info(&fake_elf(0x3e, Some("/lib"))[..70]).is_err(),
        "truncated"
    );
}

#[test]
fn the_running_launcher_is_an_elf_of_its_own_architecture() {
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let info = elf_info(&exe).unwrap();
    let want = match delivery::launcher_arch() {
        "amd64" => 0x3e,
        "arm64" => 0xb7,
        other => panic!("unexpected test host architecture {other}"),
    };
    assert_eq!(info.machine, want);
}

#[test]
fn architecture_selection() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(delivery::kube_arch("x86_64"), "amd64");
    assert_eq!(delivery::kube_arch("aarch64"), "arm64");
    // Nothing there: the error lists every place looked at and says how to build the binary.
    let e = find_binary(d, "n1", "arm64", "amd64").unwrap_err();
    let DeliveryError::NoBinary { looked, .. } = &e else {
        panic!("{e:?}")
    };
    assert!(looked.contains("node-probe-linux-arm64") && looked.contains("arm64/node-probe"));
    // Not the plain node-probe: that one is the launcher's own (amd64) build.
    assert_eq!(looked.matches(", ").count(), 1, "{looked}");
    assert!(
        e.to_string().contains("target aarch64-unknown-linux-gnu")
            && e.to_string().contains("packaging/build-probes.sh"),
        "{e}"
    );
    // A plain node-probe serves only the launcher's own architecture.
    std::fs::write(d.join("node-probe"), b"x").unwrap();
    assert_eq!(
        find_binary(d, "n1", "amd64", "amd64").unwrap(),
        d.join("node-probe")
    );
    assert!(find_binary(d, "n1", "arm64", "amd64").is_err());
    assert_eq!(candidates(d, "arm64", "amd64").len(), 2);
    // <arch>/node-probe, then node-probe-linux-<arch> takes precedence.
    std::fs::create_dir(d.join("arm64")).unwrap();
    std::fs::write(d.join("arm64/node-probe"), b"x").unwrap();
    assert_eq!(
        find_binary(d, "n1", "arm64", "amd64").unwrap(),
        d.join("arm64/node-probe")
    );
    std::fs::write(d.join("node-probe-linux-arm64"), b"x").unwrap();
    std::fs::write(d.join("node-probe-linux-amd64"), b"x").unwrap();
    assert_eq!(
        find_binary(d, "n1", "arm64", "amd64").unwrap(),
        d.join("node-probe-linux-arm64")
    );
    assert_eq!(
        find_binary(d, "n1", "amd64", "amd64").unwrap(),
        d.join("node-probe-linux-amd64")
    );
    // Unknown or missing architectures are errors, even with files around.
    let e = find_binary(d, "n1", "s390x", "amd64").unwrap_err();
    assert!(matches!(e, DeliveryError::UnsupportedArch { .. }), "{e:?}");
    assert!(e.to_string().contains("`s390x`"), "{e}");
    assert!(e.to_string().contains("amd64 and arm64 only"), "{e}");
    assert_eq!(
        find_binary(d, "n1", "", "amd64").unwrap_err(),
        DeliveryError::NoArch { node: "n1".into() }
    );
}

#[test]
fn release_layout_probes_beside_the_launcher() {
    // A release archive: k8s-gpu-mcp with probes/node-probe-linux-{amd64,arm64} beside it.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        delivery::default_dir(d),
        d,
        "no probes/: the launcher's own directory"
    );
    std::fs::write(d.join("probes"), b"not a directory").unwrap();
    assert_eq!(
        delivery::default_dir(d),
        d,
        "a file named probes is not the layout"
    );
    std::fs::remove_file(d.join("probes")).unwrap();
    std::fs::create_dir(d.join("probes")).unwrap();
    std::fs::write(d.join("probes/node-probe-linux-arm64"), b"x").unwrap();
    let probes = delivery::default_dir(d);
    assert_eq!(probes, d.join("probes"));
    assert_eq!(
        find_binary(&probes, "n1", "arm64", "amd64").unwrap(),
        d.join("probes/node-probe-linux-arm64")
    );
    // --probe-bin-dir still wins over the layout.
    let other = tempfile::tempdir().unwrap();
    assert_eq!(
        ProbeBinaries::from_flag(Some(other.path())).dir,
        other.path()
    );
}

#[tokio::test]
async fn payloads_are_built_once_per_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node-probe-linux-arm64");
    std::fs::write(&path, fake_elf(0xb7, Some("/lib/ld-linux-aarch64.so.1"))).unwrap();
    let bins = ProbeBinaries::new(dir.path().into());
    // Concurrent first uses (the startup prewarm and a first call) share one build.
    let (a, a2) = tokio::join!(bins.payload("n1", "arm64"), bins.payload("n0", "arm64"));
    let a = a.unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &a2.unwrap()));
    // Changing the file afterwards changes nothing: read and hashed once, kept in memory.
    std::fs::write(&path, b"changed").unwrap();
    let b = bins.payload("n2", "arm64").await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert!(bins.payload("n3", "amd64").await.is_err());
}

#[test]
fn delivery_choice_auto_rule() {
    let auto: DeliveryChoice = "auto".parse().unwrap();
    assert_eq!(auto, DeliveryChoice::default());
    // No flags: copy (into an image the node has); only --probe-image: image; a bin dir: copy.
    assert_eq!(auto.resolve(false, false), delivery::Delivery::Copy);
    assert_eq!(auto.resolve(false, true), delivery::Delivery::Image);
    assert_eq!(auto.resolve(true, false), delivery::Delivery::Copy);
    assert_eq!(auto.resolve(true, true), delivery::Delivery::Copy);
    let copy: DeliveryChoice = "copy".parse().unwrap();
    assert_eq!(copy.resolve(false, true), delivery::Delivery::Copy);
    let image: DeliveryChoice = "image".parse().unwrap();
    assert_eq!(image.resolve(true, false), delivery::Delivery::Image);
    assert!("scp".parse::<DeliveryChoice>().is_err());
}

#[test]
fn markers_map_to_failures_only_with_their_exit_code() {
    let s = "some node-probe noise\nk8s-gpu-mcp-delivery: missing-tool tee";
    assert_eq!(
        Failure::from_exit(120, s),
        Some(Failure::MissingTool("tee".into()))
    );
    assert_eq!(Failure::from_exit(0, s), None);
    assert_eq!(Failure::from_exit(2, "plain stderr"), None);
    assert_eq!(
        Failure::from_exit(123, "k8s-gpu-mcp-delivery: checksum-mismatch abc"),
        Some(Failure::ChecksumMismatch("abc".into()))
    );
    assert_eq!(
        Failure::from_exit(124, "k8s-gpu-mcp-delivery: no-glibc /lib64/ld.so"),
        Some(Failure::NoGlibc("/lib64/ld.so".into()))
    );
    assert_eq!(
        Failure::from_exit(125, "k8s-gpu-mcp-delivery: cannot-execute 127"),
        Some(Failure::CannotExecute("127".into()))
    );
    assert_eq!(
        Failure::from_exit(122, "k8s-gpu-mcp-delivery: incomplete 1"),
        Some(Failure::Incomplete("1".into()))
    );
    assert_eq!(
        Failure::from_exit(121, "k8s-gpu-mcp-delivery: no-private-dir /x"),
        Some(Failure::NoPrivateDir("/x".into()))
    );
    assert_eq!(Failure::from_exit(120, "k8s-gpu-mcp-delivery: bogus"), None);
    let p = Payload::build("amd64", Path::new("/b/np"), &fake_elf(0x3e, None)).unwrap();
    let m = Failure::MissingTool("tee".into()).explain("distroless:x", &p);
    assert!(
        m.contains("distroless:x") && m.contains("`tee`") && m.contains("--probe-delivery image"),
        "{m}"
    );
    let m = Failure::Incomplete("1000".into()).explain("img", &p);
    assert!(
        m.contains("1000 of") && m.contains("nothing was run"),
        "{m}"
    );
    let m = Failure::ChecksumMismatch("abc".into()).explain("img", &p);
    assert!(
        m.contains(&p.sha256) && m.contains("abc") && m.contains("/b/np"),
        "{m}"
    );
    let m = Failure::NoGlibc("/lib64/ld-linux-x86-64.so.2".into()).explain("busybox:musl", &p);
    assert!(m.contains("no glibc") && m.contains("busybox:musl"), "{m}");
}

// ---- the script itself, run by this host's sh the way kwok's exec runs it ----

struct ScriptRun {
    code: i32,
    stdout: String,
    stderr: String,
}

/// The two forms the launcher has of one binary: plain and gzip-compressed, and how much of the chosen one
/// the stream carries before it ends (None: all of it, and stdin stays open, as over kwok and v4).
struct Forms {
    plain: Vec<u8>,
    gz: Vec<u8>,
    cut_to: Option<usize>,
}

fn forms(plain: &[u8]) -> Forms {
    Forms {
        plain: plain.to_vec(),
        gz: delivery::gzip(plain).unwrap(),
        cut_to: None,
    }
}

/// Whether `gzip` is found on `path` (None: this host's PATH), as the script's `command -v` sees it.
fn has_gzip(path: Option<&str>) -> bool {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", "command -v gzip"]);
    if let Some(p) = path {
        c.env("PATH", p);
    }
    c.output().unwrap().status.success()
}

/// Run SCRIPT with the form it will ask for on stdin (gzip where `gzip` is on its PATH; stdin then stays
/// open: the script must not wait for EOF, unless the stream is cut), both lengths and the checksum as given,
/// in `tmp` as NODE_PROBE_DIR, with an optional PATH.
fn run_script(
    a: &Forms,
    sum: &str,
    interp: &str,
    args: &[&str],
    tmp: &Path,
    path: Option<&str>,
) -> ScriptRun {
    // An absolute path: with PATH overridden, std looks the program up on the child's PATH.
    let mut cmd = Command::new("/bin/sh");
    cmd.args([
        "-c",
        SCRIPT,
        "sh",
        &a.plain.len().to_string(),
        &a.gz.len().to_string(),
        sum,
        interp,
    ])
    .args(args)
    .env("NODE_PROBE_DIR", tmp)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    // An empty gz: none offered (GZSIZE 0), as before the launcher's background compression finished.
    let mut data = if has_gzip(path) && !a.gz.is_empty() {
        a.gz.clone()
    } else {
        a.plain.clone()
    };
    let cut = a.cut_to.is_some();
    if let Some(n) = a.cut_to {
        data.truncate(n);
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Keep stdin open until the script has finished: no EOF, as over kwok and v4. The writer closes it
    // when told to, or after a minute (so a script that waits for EOF ends, and fails the check below).
    let (done, wait_done) = std::sync::mpsc::channel::<()>();
    let eof = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let eof_w = eof.clone();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
        if cut {
            // A cut stream ends: the connection is gone.
            eof_w.store(true, std::sync::atomic::Ordering::SeqCst);
            drop(stdin);
            return;
        }
        let _ = wait_done.recv_timeout(std::time::Duration::from_secs(60));
        eof_w.store(true, std::sync::atomic::Ordering::SeqCst);
        drop(stdin);
    });
    let out = child.wait_with_output().unwrap();
    assert!(
        cut || !eof.load(std::sync::atomic::Ordering::SeqCst),
        "the script waited for stdin's EOF"
    );
    let _ = done.send(());
    writer.join().unwrap();
    ScriptRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// A directory of links to this host's `tools` (found on PATH), to stand for an image that has only those.
fn path_with(tools: &[&str]) -> tempfile::TempDir {
    let bin = tempfile::tempdir().unwrap();
    for t in tools {
        let found = String::from_utf8(
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        std::os::unix::fs::symlink(found.trim(), bin.path().join(t)).unwrap();
    }
    bin
}

/// A stand-in for node-probe: prints its arguments as JSON-ish text, a line on stderr, exits 3.
const FAKE_PROBE: &[u8] =
    b"#!/bin/sh\nprintf '{\"args\":\"%s\"}\\n' \"$*\"\necho probe-stderr >&2\nexit 3\n";

fn left_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// An image's tools without gzip.
const NO_GZIP: &[&str] = &["head", "tee", "sha256sum", "wc", "chmod", "mktemp", "rm"];

#[test]
fn script_receives_checks_runs_and_cleans_up() {
    assert!(has_gzip(None), "this host has gzip (CI installs it)");
    let a = forms(FAKE_PROBE);
    // This host's PATH (gzip: the compressed form), an image without gzip (the plain one), and gzip present
    // but no compressed form offered yet (the plain one).
    let no_gzip = path_with(NO_GZIP);
    let not_offered = Forms {
        gz: Vec::new(),
        ..forms(FAKE_PROBE)
    };
    for (a, path, format) in [
        (&a, None, "gzip"),
        (&a, no_gzip.path().to_str(), "plain"),
        (&not_offered, None, "plain"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let r = run_script(
            a,
            &sha256_hex(FAKE_PROBE),
            "/bin/sh",
            &["health", "--node-name", "n 1"],
            tmp.path(),
            path,
        );
        assert_eq!(
            r.code, 3,
            "node-probe's exit code passes through ({format}): {}",
            r.stderr
        );
        assert_eq!(
            r.stdout, "{\"args\":\"health --node-name n 1\"}\n",
            "stdout untouched"
        );
        // The ready line naming the form it takes (the launcher sends that one only after it), then
        // node-probe's own stderr.
        assert_eq!(
            r.stderr.trim(),
            format!("k8s-gpu-mcp-delivery: ready {format}\nprobe-stderr")
        );
        assert!(
            left_in(tmp.path()).is_empty(),
            "private dir removed: {:?}",
            left_in(tmp.path())
        );
    }
}

#[test]
fn script_refuses_a_corrupted_binary_and_runs_nothing() {
    let no_gzip = path_with(NO_GZIP);
    // One byte flipped, in each form (the gzip one recompressed from the altered bytes, so gzip itself is
    // content): only the checksum can tell.
    let mut bad = FAKE_PROBE.to_vec();
    bad[12] ^= 1;
    for path in [None, no_gzip.path().to_str()] {
        let tmp = tempfile::tempdir().unwrap();
        let r = run_script(
            &forms(&bad),
            &sha256_hex(FAKE_PROBE),
            "",
            &["health"],
            tmp.path(),
            path,
        );
        assert_eq!(r.code, 123, "{}", r.stderr);
        assert_eq!(r.stdout, "", "nothing ran");
        let f = Failure::from_exit(r.code, &r.stderr).expect("marker");
        let Failure::ChecksumMismatch(got) = f else {
            panic!("{f:?}")
        };
        assert_eq!(got, sha256_hex(&bad));
        assert!(left_in(tmp.path()).is_empty());
    }
}

#[test]
fn script_reports_a_missing_tool_and_a_missing_loader() {
    let tmp = tempfile::tempdir().unwrap();
    let a = forms(FAKE_PROBE);
    let sum = sha256_hex(FAKE_PROBE);
    // For each tool it needs, a PATH with every other one (and gzip): refused before reading anything.
    for missing in NO_GZIP {
        let tools: Vec<&str> = NO_GZIP
            .iter()
            .copied()
            .filter(|t| t != missing)
            .chain(["gzip"])
            .collect();
        let bin = path_with(&tools);
        let r = run_script(
            &a,
            &sum,
            "",
            &[],
            tmp.path(),
            Some(bin.path().to_str().unwrap()),
        );
        assert_eq!(r.code, 120, "{missing}: {}", r.stderr);
        assert_eq!(
            Failure::from_exit(r.code, &r.stderr),
            Some(Failure::MissingTool((*missing).into()))
        );
        assert!(!r.stderr.contains("ready"), "{}", r.stderr);
    }
    // No glibc loader at the binary's interpreter path: refused before reading anything.
    let r = run_script(
        &a,
        &sum,
        "/nonexistent/ld-linux-x86-64.so.2",
        &[],
        tmp.path(),
        None,
    );
    assert_eq!(
        Failure::from_exit(r.code, &r.stderr),
        Some(Failure::NoGlibc("/nonexistent/ld-linux-x86-64.so.2".into()))
    );
    assert!(left_in(tmp.path()).is_empty());
}

#[test]
fn script_reports_a_binary_that_cannot_execute() {
    let tmp = tempfile::tempdir().unwrap();
    // An executable whose interpreter does not exist: the shell says 126/127, as for a missing libc.
    let bad = b"#!/nonexistent/interpreter\n";
    let r = run_script(&forms(bad), &sha256_hex(bad), "", &[], tmp.path(), None);
    assert!(
        matches!(
            Failure::from_exit(r.code, &r.stderr),
            Some(Failure::CannotExecute(_))
        ),
        "{} {}",
        r.code,
        r.stderr
    );
    assert!(left_in(tmp.path()).is_empty());
}

#[test]
fn script_reports_a_cut_stream_and_runs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let no_gzip = path_with(NO_GZIP);
    // The stream ends early (the connection is gone): gzip sees a cut stream, plain gets fewer bytes; the
    // file is short either way and nothing runs.
    for (path, cut_to) in [
        (None, forms(FAKE_PROBE).gz.len() / 2),
        (no_gzip.path().to_str(), 40),
    ] {
        let a = Forms {
            cut_to: Some(cut_to),
            ..forms(FAKE_PROBE)
        };
        let r = run_script(&a, &sha256_hex(FAKE_PROBE), "", &[], tmp.path(), path);
        let f = Failure::from_exit(r.code, &r.stderr);
        let Some(Failure::Incomplete(got)) = &f else {
            panic!("{f:?}: {}", r.stderr)
        };
        assert!(got.parse::<usize>().unwrap() < FAKE_PROBE.len(), "{got}");
        assert_eq!(r.stdout, "", "nothing ran");
    }
    assert!(left_in(tmp.path()).is_empty());
}
