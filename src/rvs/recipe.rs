//! The private recipe of one run: RVS's own conf, narrowed to the GPUs this run was approved to load.
//!
//! Why a recipe of our own and no `-i`: rvs reads `-i` values as GPU *indexes* when every one is below its
//! GPU count (ROCm/ROCmValidationSuite `rvs/src/rvsexec_do_yaml.cpp:944-981` with `src/gpu_util.cpp:824-834`
//! `gpu_check_if_gpu_indexes`), so a KFD gpu_id that happens to be small names another GPU; and `-i` sets
//! only `device`, never pbqt's `peers` (`pbqt.so/src/action.cpp:78-108`), so `peers: all` still sends
//! transfers to held GPUs. A recipe's `device:` is always a list of KFD gpu_ids, space-separated
//! (`src/rvsactionbase.cpp:287-293` `property_get_uint_list<uint16_t>`, `include/rvs_key_def.h:30,85`),
//! matched against gpu_id only (`src/rvs_util.cpp:163-183` `fetch_gpu_list`; `pbqt.so/src/action.cpp:406-414`,
//! `pebb.so/src/action.cpp`), and `peers:` likewise (`pbqt.so/src/action.cpp:443-456`): that form is
//! unambiguous. So every action's `device` and every `peers` is set to the selected gpu_ids, any
//! `device_index` is removed (it would widen the selection: `src/rvs_util.cpp:178-183`), and rvs gets no
//! `-i`.
//!
//! pbqt moves data between two GPUs (`srcgpu` -> `dstgpu`, `pbqt.so/src/action.cpp:355-369`): with fewer
//! than two selected GPUs it has no pair to test, and its `peers` would have to name an unselected GPU, so
//! its actions are left out and the report says so. pebb is host <-> GPU (`srccpu`/`dstgpu`,
//! `pebb.so/src/action.cpp:456-467`) and runs on one GPU.
//!
//! RVS's recipes are plain block YAML (`rvs/conf/*.conf`): `actions:` and a list of flat maps, some with a
//! nested map (`capability:`). This reads that much YAML and refuses anything else (flow collections on
//! the keys it changes, anchors, tabs, several documents) rather than guess.

/// Modules whose actions need two or more GPUs (transfers between GPUs).
pub const MULTI_GPU_MODULES: &[&str] = &["pbqt"];

/// At most this many actions are read from a recipe.
pub const MAX_ACTIONS: usize = 64;

/// One action of the recipe that will run, on every selected GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub name: String,
    pub module: String,
}

/// The narrowed recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Narrowed {
    /// The recipe file's text, for rvs's `-c`.
    pub text: String,
    /// The actions that will run, in order.
    pub actions: Vec<Action>,
    /// Actions left out, each with why (`xgmi_interface (pbqt): ...`).
    pub left_out: Vec<String>,
}

/// What rvs may be given as a `device` list: KFD gpu_ids, which RVS holds as 16-bit numbers
/// (`property_get_uint_list<uint16_t>`); 0 is no GPU's (KFD gives CPU nodes gpu_id 0).
pub fn check_ids(gpu_ids: &[u32]) -> Result<(), String> {
    if gpu_ids.is_empty() {
        return Err("no GPU to give rvs".into());
    }
    for &id in gpu_ids {
        if id == 0 || id > u32::from(u16::MAX) {
            return Err(format!(
                "KFD gpu_id {id} cannot be named to rvs (its recipe's `device` holds gpu_ids of 1-65535): \
                 not run rather than risk RVS testing another GPU"
            ));
        }
    }
    Ok(())
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// `key: value` of a map line (value without a trailing comment, unquoted).
fn key_value(s: &str) -> Option<(&str, &str)> {
    let (k, v) = s.split_once(':')?;
    let k = k.trim();
    if k.is_empty()
        || !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-/.".contains(c))
    {
        return None;
    }
    let v = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    let v = v.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
        .unwrap_or(v);
    Some((k, v))
}

fn plain_name(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.+".contains(c))
}

struct Item {
    lines: Vec<String>,
    name: Option<String>,
    module: Option<String>,
    has_device: bool,
}

/// Narrow RVS's recipe `conf` to `gpu_ids` (KFD's, checked with [`check_ids`]).
pub fn narrow(conf: &str, gpu_ids: &[u32]) -> Result<Narrowed, String> {
    check_ids(gpu_ids)?;
    let bad = |why: &str| {
        Err(format!(
            "the recipe could not be narrowed to the selected GPUs ({why}): not run rather than let RVS \
             choose the GPUs"
        ))
    };
    let ids = gpu_ids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let mut items: Vec<Item> = Vec::new();
    let mut in_actions = false;
    let mut item_indent = None::<usize>;
    let mut key_indent = None::<usize>;
    for raw in conf.lines() {
        let line = raw.trim_end();
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if line.contains('\t') {
            return bad("a tab in its indentation");
        }
        if t.starts_with("---") || t.starts_with("...") || t.starts_with('%') {
            return bad("more than one YAML document");
        }
        if t.contains(" &") || t.contains(" *") || t.starts_with('&') || t.starts_with('*') {
            return bad("a YAML anchor or alias");
        }
        let ind = indent(line);
        if ind == 0 && !t.starts_with('-') {
            match key_value(t) {
                Some(("actions", "")) => {
                    in_actions = true;
                    continue;
                }
                _ => return bad("a top-level key other than `actions`"),
            }
        }
        if !in_actions {
            return bad("no `actions:` list");
        }
        if let Some(rest) = t.strip_prefix("- ").or_else(|| (t == "-").then_some("")) {
            if item_indent.is_some_and(|i| i != ind) {
                return bad("actions at different indentations");
            }
            item_indent = Some(ind);
            if items.len() >= MAX_ACTIONS {
                return bad("too many actions");
            }
            items.push(Item {
                lines: Vec::new(),
                name: None,
                module: None,
                has_device: false,
            });
            key_indent = Some(ind + 2 + (rest.len() - rest.trim_start().len()));
            if rest.trim().is_empty() {
                key_indent = None;
                continue;
            }
            // The item's first key, written as its own line at the key indentation.
            let first = format!("{}{}", " ".repeat(ind + 2), rest.trim_start());
            let item = items.last_mut().expect("pushed");
            item.lines.push(first);
            continue;
        }
        let Some(item) = items.last_mut() else {
            return bad("a line outside any action");
        };
        if item_indent.is_some_and(|i| ind <= i) {
            return bad("a line outside any action");
        }
        let ki = *key_indent.get_or_insert(ind);
        if ind < ki {
            return bad("an action's keys at different indentations");
        }
        item.lines.push(line.to_string());
    }
    // Each item: its keys at the key indentation; rewrite device/peers, drop device_index.
    let mut out = String::from(
        "# Written by k8s-gpu-mcp's node-probe: RVS's recipe narrowed to the selected GPUs (KFD gpu_ids).\n\
         actions:\n",
    );
    let mut actions = Vec::new();
    let mut left_out = Vec::new();
    for item in &mut items {
        let ki = item.lines.first().map_or(0, |l| indent(l));
        let mut kept: Vec<String> = Vec::new();
        let mut skip_nested = false;
        for l in &item.lines {
            let ind = indent(l);
            if ind > ki {
                if !skip_nested {
                    kept.push(l.clone());
                }
                continue;
            }
            if ind < ki {
                return bad("an action's keys at different indentations");
            }
            skip_nested = false;
            let Some((k, v)) = key_value(l.trim_start()) else {
                return bad("an action line that is no `key: value`");
            };
            match k {
                "name" => {
                    if !plain_name(v) {
                        return bad("an action name of other than letters, digits and `_-.+`");
                    }
                    item.name = Some(v.to_string());
                    kept.push(l.clone());
                }
                "module" => {
                    if !plain_name(v) {
                        return bad("a module name of other than letters, digits and `_-.+`");
                    }
                    item.module = Some(v.to_string());
                    kept.push(l.clone());
                }
                "device" | "peers" => {
                    if v.is_empty() || v.starts_with(['[', '{', '|', '>']) {
                        return bad("a `device` or `peers` that is not a plain value");
                    }
                    if k == "device" {
                        item.has_device = true;
                    }
                    kept.push(format!("{}{k}: {ids}", " ".repeat(ki)));
                    skip_nested = true;
                }
                "device_index" => skip_nested = true,
                _ => kept.push(l.clone()),
            }
        }
        let (Some(name), Some(module)) = (item.name.clone(), item.module.clone()) else {
            return bad("an action without `name` or `module`");
        };
        if actions.iter().any(|a: &Action| a.name == name) {
            return bad("two actions of one name (their results would be one)");
        }
        if gpu_ids.len() < 2 && MULTI_GPU_MODULES.contains(&module.as_str()) {
            left_out.push(format!(
                "{name} ({module}): transfers between GPUs need two or more selected GPUs; {} was selected",
                gpu_ids.len()
            ));
            continue;
        }
        if !item.has_device {
            // RVS requires `device` (`src/rvsactionbase.cpp:164-175`); ours names the selected GPUs.
            kept.push(format!("{}device: {ids}", " ".repeat(ki)));
        }
        for (i, l) in kept.iter().enumerate() {
            let body = &l[ki..];
            if i == 0 {
                out.push_str(&format!("- {body}\n"));
            } else {
                out.push_str(&format!("  {body}\n"));
            }
        }
        out.push('\n');
        actions.push(Action { name, module });
    }
    if items.is_empty() {
        return bad("no actions");
    }
    Ok(Narrowed {
        text: out,
        actions,
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ROCm/ROCmValidationSuite `rvs/conf/MI300X/levels/rvs_level_2.conf` @21584e1 (actions as shipped,
    /// the licence header cut).
    const LEVEL_2: &str = "\
# header comment
actions:
- name: pcie_capability
  device: all
  module: peqt
  capability:
    link_cap_max_speed:
    link_cap_max_width:
    kernel_driver:

- name: hbm_basic
  device: all
  module: babel
  parallel: true
  count: 1
  array_size: 268435456
  test_type: 1

- name: xgmi_interface
  device: all
  module: pbqt
  log_interval: 5000
  duration: 20000
  peers: all
  test_bandwidth: true
  device_id: all

- name: pcie_interface
  device: all
  module: pebb
  duration: 20000
  host_to_device: true
";

    #[test]
    fn every_device_and_peers_names_the_selected_gpu_ids() {
        let n = narrow(LEVEL_2, &[42924, 1337]).unwrap();
        assert_eq!(
            n.actions
                .iter()
                .map(|a| format!("{}/{}", a.module, a.name))
                .collect::<Vec<_>>(),
            [
                "peqt/pcie_capability",
                "babel/hbm_basic",
                "pbqt/xgmi_interface",
                "pebb/pcie_interface"
            ]
        );
        assert!(n.left_out.is_empty());
        assert_eq!(
            n.text.matches("device: 42924 1337\n").count(),
            4,
            "{}",
            n.text
        );
        assert_eq!(n.text.matches("peers: 42924 1337\n").count(), 1);
        assert!(!n.text.contains("device: all") && !n.text.contains("peers: all"));
        // Nested maps and other keys are kept as they were.
        assert!(
            n.text.contains("  capability:\n    link_cap_max_speed:\n"),
            "{}",
            n.text
        );
        assert!(n.text.contains("  array_size: 268435456\n"));
    }

    #[test]
    fn one_gpu_leaves_out_transfers_between_gpus_and_says_why() {
        let n = narrow(LEVEL_2, &[42924]).unwrap();
        assert_eq!(n.actions.len(), 3);
        assert!(n.actions.iter().all(|a| a.module != "pbqt"));
        assert!(
            !n.text.contains("pbqt") && !n.text.contains("peers"),
            "{}",
            n.text
        );
        assert_eq!(n.left_out.len(), 1);
        assert!(
            n.left_out[0].starts_with("xgmi_interface (pbqt): transfers between GPUs need two"),
            "{:?}",
            n.left_out
        );
        // pebb is host <-> GPU: it stays.
        assert!(n.text.contains("module: pebb"));
    }

    #[test]
    fn device_index_is_removed_and_a_missing_device_is_added() {
        let conf = "actions:\n- name: a\n  module: tst\n  device_index: all\n  count: 1\n- module: gpup\n  name: b\n";
        let n = narrow(conf, &[7]).unwrap();
        assert!(!n.text.contains("device_index"), "{}", n.text);
        assert_eq!(n.text.matches("device: 7\n").count(), 2, "{}", n.text);
        assert!(n.text.contains("- module: gpup\n  name: b\n"), "{}", n.text);
    }

    #[test]
    fn what_it_cannot_read_is_refused_never_passed_through() {
        for (conf, says) in [
            (
                "actions:\n- name: a\n  module: gst\n  device: [1, 2]\n",
                "not a plain value",
            ),
            (
                "actions:\n- name: a\n  module: gst\n  peers: {x: 1}\n",
                "not a plain value",
            ),
            (
                "actions:\n- name: a\n  module: gst\n  device: &d all\n",
                "anchor",
            ),
            ("actions:\n- name: a\n\tmodule: gst\n", "tab"),
            (
                "other: 1\nactions:\n- name: a\n  module: gst\n",
                "top-level key",
            ),
            (
                "actions:\n- name: a\n  device: all\n",
                "without `name` or `module`",
            ),
            ("actions:\n- name: a;rm\n  module: gst\n", "action name"),
            (
                "actions:\n- name: a\n  module: gst\n- name: a\n  module: gst\n",
                "two actions of one name",
            ),
            ("actions:\n", "no actions"),
            ("", "no actions"),
            (
                "actions:\n- name: a\n  module: gst\n---\nactions:\n",
                "more than one",
            ),
        ] {
            let e = narrow(conf, &[42924]).unwrap_err();
            assert!(e.contains(says) && e.contains("not run"), "{conf:?}: {e}");
        }
        for ids in [&[][..], &[0], &[65536], &[1, 70000]] {
            assert!(narrow(LEVEL_2, ids).is_err(), "{ids:?}");
        }
    }
}
