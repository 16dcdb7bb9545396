//! Truth test for `gpu_metrics`: the offsets node-probe's reader and the fake hosts use
//! (`tests/truth/gpu_metrics_layouts.txt`) are the ones the system C compiler lays out from the kernel's
//! own declarations, and the fake hosts' tables (`tests/support/amdgpu_tree.rs`) are byte for byte a C
//! struct of that revision filled with the same values.
//! - v1.3, v1.4, v1.5: Linux 6.12's `drivers/gpu/drm/amd/include/kgd_pp_interface.h` itself, compiled
//!   whole (a prelude gives it the kernel's `u8`..`u64`), from the directory `tests/truth/fetch-upstream.sh`
//!   populates (`$K8S_GPU_MCP_UPSTREAM`, else `${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp/upstream`).
//!   Without it the test skips (a failure under CI=true, tests/support/gate.rs).
//! - v1.6, v1.7, v1.8: the declarations in `tests/truth/gpu_metrics_v1_6_to_v1_8.txt` (ROCm/amdgpu
//!   1858ba85af496fb128a3a06a55c1c48ec6c71179), turned into C here.
//! - v1.9: a packed C struct of the SMU 13.0.6 attribute list (`tests/truth/gpu_metrics_v1_9.txt`), each
//!   `u64 <name>_ftype` set with the kernel's `AMDGPU_METRICS_ENC_ATTR` form, as `DECLARE_SMU_METRICS_CLASS`
//!   declares and initialises it.

#[path = "../support/amdgpu_tree.rs"]
mod amdgpu_tree;
#[path = "../support/gate.rs"]
mod gate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use amdgpu_tree::{Gpu, Metrics};

const LAYOUTS: &str = include_str!("gpu_metrics_layouts.txt");
const V16_TO_V18: &str = include_str!("gpu_metrics_v1_6_to_v1_8.txt");
const V19: &str = include_str!("gpu_metrics_v1_9.txt");

/// A GPU whose every reported value differs from the others, so a member read or written at a wrong
/// offset shows.
fn distinct(metrics: Metrics) -> Gpu {
    let mut g = Gpu::mi300x(3);
    g.metrics = metrics;
    g.edge_c = 37;
    g.hotspot_c = 83;
    g.mem_c = 71;
    g.power_w = 612;
    g.xgmi_width_speed = (16, 36);
    g.residency = [
        7_000_001, 7_000_002, 7_000_003, 7_000_004, 7_000_005, 7_000_006,
    ];
    g.l0_to_recov = 0x1111_0000_0000_0021;
    g.replays = 0x2222_0000_0000_0042;
    g.nak = (0x3300_0063, 0x3400_0084);
    g.xgmi_links = [1, 0, 1, 1, 0, 1, 1, 0xFFFF];
    g.xgmi_read_kb = [101, 202, 303, 404, 505, 606, 707, 808];
    g
}

fn upstream_header() -> PathBuf {
    let dir = std::env::var_os("K8S_GPU_MCP_UPSTREAM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
                });
            cache.join("k8s-gpu-mcp/upstream")
        });
    dir.join("linux-source-6.12/drivers/gpu/drm/amd/include/kgd_pp_interface.h")
}

fn have_cc() -> bool {
    Command::new("cc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Compiles and runs `src`; its stdout.
fn run_c(src: &str, include: Option<&Path>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("layout.c");
    let exe = dir.path().join("layout");
    std::fs::write(&c, src).unwrap();
    let mut cc = Command::new("cc");
    cc.args(["-std=gnu11", "-O0", "-o"]).arg(&exe).arg(&c);
    if let Some(inc) = include {
        cc.arg("-I").arg(inc);
    }
    let out = cc.output().unwrap();
    assert!(
        out.status.success(),
        "cc failed:\n{}\n--- source ---\n{src}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success());
    String::from_utf8(run.stdout).unwrap()
}

/// The members a struct declares, from its C text (`struct NAME {` to `};`).
fn c_members(header: &str, name: &str) -> Vec<String> {
    let start = header
        .find(&format!("struct {name} {{"))
        .unwrap_or_else(|| panic!("no struct {name} in the header"));
    let body = &header[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("};").unwrap()];
    body.lines()
        .map(|l| l.split("//").next().unwrap().trim())
        .filter(|l| l.ends_with(';') && !l.starts_with("/*"))
        .map(|l| {
            let decl = l.trim_end_matches(';');
            let last = decl.split_whitespace().last().unwrap();
            last.split('[').next().unwrap().to_string()
        })
        .collect()
}

/// C that prints `ROW rev member offset bytes` for each member the table could hold, and `SIZE`, and
/// `BLOB rev hex` of the struct filled (0xFF, header, then `g`'s values) for each revision.
fn probe_program(revs: &[(&str, &str, Vec<String>)]) -> String {
    let mut main = String::from("int main(void) {\n");
    for (rev, st, members) in revs {
        main += &format!("  printf(\"ROW {rev} SIZE 0 %zu\\n\", sizeof(struct {st}));\n");
        let g = distinct(match *rev {
            "1.3" => Metrics::V1_3,
            "1.4" => Metrics::V1_4,
            "1.5" => Metrics::V1_5,
            "1.6" => Metrics::V1_6,
            "1.7" => Metrics::V1_7,
            "1.8" => Metrics::V1_8,
            _ => unreachable!(),
        });
        main += &format!(
            "  {{ static struct {st} s; memset(&s, 0xFF, sizeof s);\n    s.common_header.structure_size = sizeof s; s.common_header.format_revision = 1; s.common_header.content_revision = {};\n",
            &rev[2..]
        );
        for (member, _, values) in amdgpu_tree::metric_values(&g) {
            if !members.iter().any(|m| m == member) {
                continue;
            }
            main += &format!(
                "    printf(\"ROW {rev} {member} %zu %zu\\n\", offsetof(struct {st}, {member}), sizeof s.{member});\n"
            );
            if values.len() == 1 {
                main += &format!("    s.{member} = {}ULL;\n", values[0]);
            } else {
                for (i, v) in values.iter().enumerate() {
                    main += &format!("    s.{member}[{i}] = {v}ULL;\n");
                }
            }
        }
        main += &format!(
            "    printf(\"BLOB {rev} \"); for (size_t i = 0; i < sizeof s; i++) printf(\"%02x\", ((unsigned char *)&s)[i]); printf(\"\\n\"); }}\n"
        );
    }
    main + "  return 0;\n}\n"
}

const PRELUDE: &str = "#include <stdint.h>\n#include <stdbool.h>\n#include <stddef.h>\n#include <stdio.h>\n\
    #include <string.h>\n#include <sys/types.h>\n\
    typedef uint8_t u8; typedef uint16_t u16; typedef uint32_t u32; typedef uint64_t u64;\n\
    typedef int8_t s8; typedef int16_t s16; typedef int32_t s32; typedef int64_t s64;\n";

/// Checks the program's rows against the table for `revs`, and its blobs against the fake hosts' tables.
fn check(out: &str, revs: &[&str]) {
    let table: Vec<String> = LAYOUTS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter(|l| revs.iter().any(|r| l.starts_with(&format!("{r} "))))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let compiled: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("ROW "))
        .map(str::to_string)
        .collect();
    let missing: Vec<&String> = compiled.iter().filter(|r| !table.contains(r)).collect();
    let extra: Vec<&String> = table.iter().filter(|r| !compiled.contains(r)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "gpu_metrics_layouts.txt disagrees with cc.\ncc says, the table does not: {missing:#?}\nthe table says, cc does not: {extra:#?}"
    );
    let blobs: BTreeMap<&str, &str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("BLOB "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    for rev in revs {
        let m = match *rev {
            "1.3" => Metrics::V1_3,
            "1.4" => Metrics::V1_4,
            "1.5" => Metrics::V1_5,
            "1.6" => Metrics::V1_6,
            "1.7" => Metrics::V1_7,
            "1.8" => Metrics::V1_8,
            _ => unreachable!(),
        };
        let fake: String = amdgpu_tree::gpu_metrics(&distinct(m))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            fake, blobs[rev],
            "the fake host's gpu_metrics {rev} differs from the C struct filled with the same values"
        );
    }
}

#[test]
fn v1_3_to_v1_5_are_linux_6_12s_structs() {
    if !have_cc() {
        return gate::skip("no C compiler (cc) to lay out the kernel's structs");
    }
    let header = upstream_header();
    let Ok(text) = std::fs::read_to_string(&header) else {
        return gate::skip(&format!(
            "{} is missing: run tests/truth/fetch-upstream.sh (apt-get download linux-source-6.12)",
            header.display()
        ));
    };
    let revs: Vec<(&str, &str, Vec<String>)> = [
        ("1.3", "gpu_metrics_v1_3"),
        ("1.4", "gpu_metrics_v1_4"),
        ("1.5", "gpu_metrics_v1_5"),
    ]
    .into_iter()
    .map(|(r, s)| (r, s, c_members(&text, s)))
    .collect();
    // The reader's premise for v1.5: 32 JPEG engines.
    assert!(text.contains("#define NUM_JPEG_ENG 32"));
    let src = format!(
        "{PRELUDE}#include \"kgd_pp_interface.h\"\n{}",
        probe_program(&revs)
    );
    let out = run_c(&src, Some(header.parent().unwrap()));
    check(&out, &["1.3", "1.4", "1.5"]);
}

/// `tests/truth/gpu_metrics_v1_6_to_v1_8.txt` as C declarations.
fn declarations() -> (String, BTreeMap<String, Vec<String>>) {
    let mut c = String::new();
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in V16_TO_V18
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
    {
        let p: Vec<&str> = line.split_whitespace().collect();
        match p.as_slice() {
            [] => {}
            ["const", name, value] => c += &format!("#define {name} {value}\n"),
            ["struct", name] => {
                current = name.to_string();
                c += &format!("struct {name} {{\n");
            }
            ["end"] => c += "};\n",
            [ty, name, rest @ ..] => {
                let cty = match *ty {
                    "u8" => "uint8_t".to_string(),
                    "u16" => "uint16_t".to_string(),
                    "u32" => "uint32_t".to_string(),
                    "u64" => "uint64_t".to_string(),
                    other => format!("struct {other}"),
                };
                let dim = rest.first().map(|n| format!("[{n}]")).unwrap_or_default();
                c += &format!("  {cty} {name}{dim};\n");
                members
                    .entry(current.clone())
                    .or_default()
                    .push(name.to_string());
            }
            other => panic!("gpu_metrics_v1_6_to_v1_8.txt: cannot read {other:?}"),
        }
    }
    (c, members)
}

#[test]
fn v1_6_to_v1_8_are_the_upstream_declarations() {
    if !have_cc() {
        return gate::skip("no C compiler (cc) to lay out the upstream structs");
    }
    let (decls, members) = declarations();
    let revs: Vec<(&str, &str, Vec<String>)> = [
        ("1.6", "gpu_metrics_v1_6"),
        ("1.7", "gpu_metrics_v1_7"),
        ("1.8", "gpu_metrics_v1_8"),
    ]
    .into_iter()
    .map(|(r, s)| (r, s, members[s].clone()))
    .collect();
    let out = run_c(&format!("{PRELUDE}{decls}{}", probe_program(&revs)), None);
    check(&out, &["1.6", "1.7", "1.8"]);
    // The sizes the issue names, from cc: v1.8's per-partition stats make it 3872, not 3360.
    assert!(out.contains("ROW 1.8 SIZE 0 3872"), "{out}");
}

#[test]
fn v1_9_is_the_packed_attribute_list() {
    if !have_cc() {
        return gate::skip("no C compiler (cc) to lay out the packed v1.9 struct");
    }
    let rows: Vec<Vec<&str>> = V19
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let get = |kind: &str, name: &str| -> String {
        rows.iter()
            .find(|p| p.len() >= 3 && p[0] == kind && p[1] == name)
            .unwrap_or_else(|| panic!("{kind} {name}"))[2]
            .to_string()
    };
    let g = distinct(Metrics::V1_9);
    let values = amdgpu_tree::metric_values(&g);
    // The kernel's form: `struct __packed { struct metrics_table_header header; int attr_count;` then per
    // attribute `u64 NAME_ftype; CTYPE NAME[COUNT];` (smu_cmn.h DECLARE_SMU_METRICS_CLASS).
    let mut decl = String::from(
        "struct metrics_table_header { uint16_t structure_size; uint8_t format_revision; uint8_t content_revision; };\n\
         struct __attribute__((packed)) v19 { struct metrics_table_header header; int attr_count;\n",
    );
    let mut init =
        String::from("  static struct v19 s; int count = 0; memset(&s, 0xFF, sizeof s);\n");
    let enc = format!(
        "#define ENC(unit, type, id, inst) (((u64)(unit) << {}) | ((u64)(type) << {}) | ((u64)(id) << {}) | (inst))\n",
        get("field", "unit"),
        get("field", "type"),
        get("field", "id")
    );
    for p in rows.iter().filter(|p| p.first() == Some(&"smu_13_0_6")) {
        let (attr, unit, ty, n) = (p[1], p[2], p[3], p[4]);
        let name = attr.to_ascii_lowercase();
        let cty = ty.to_ascii_lowercase();
        decl += &format!("  u64 {name}_ftype; {cty} {name}[{n}];\n");
        init += &format!(
            "  s.{name}_ftype = ENC({}, {}, {}, {n}); count++;\n",
            get("unit", unit),
            get("type", ty),
            get("attr", attr)
        );
        if let Some((_, _, vals)) = values.iter().find(|(m, _, _)| *m == name) {
            for (i, v) in vals.iter().enumerate().take(n.parse().unwrap()) {
                init += &format!("  s.{name}[{i}] = ({cty}){v}ULL;\n");
            }
        }
    }
    decl += "};\n";
    let src = format!(
        "{PRELUDE}{enc}{decl}int main(void) {{\n{init}  s.header.structure_size = sizeof s; s.header.format_revision = 1; s.header.content_revision = 9; s.attr_count = count;\n  for (size_t i = 0; i < sizeof s; i++) printf(\"%02x\", ((unsigned char *)&s)[i]);\n  return 0;\n}}\n"
    );
    let out = run_c(&src, None);
    let fake: String = amdgpu_tree::gpu_metrics(&g)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        fake,
        out.trim(),
        "the fake v1.9 table differs from the packed C struct"
    );
}
