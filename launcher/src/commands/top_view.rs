//! `top`'s screen: what the view holds (each node's stream followed, the events as they came, the keys'
//! state) and how it is drawn with ratatui. The same drawing makes the plain frame of `--once` (a buffer
//! printed as text), so a person's screen and a script's frame never differ in what they say.
//!
//! The values and their words are the library's (`gpu_diag::watch::live`): the vendor's model name, the
//! throttle reasons and counters in the vendor's terms, kernel events judged as `watch_gpus` judges them.

use std::collections::{BTreeMap, VecDeque};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use gpu_diag::finding::Severity;
use gpu_diag::watch::live::{Follow, Live, Row};
use gpu_diag::watch::{Episode, EpisodeKind};
use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row as TableRow, Table, Wrap};

/// Events kept for the pane above the rows.
const EVENTS_KEPT: usize = 200;

/// What arrives from the probes.
#[derive(Debug)]
pub enum Update {
    /// A line of the node's window number `window`.
    Line {
        node: String,
        window: u64,
        line: Live,
    },
    /// The node's window could not run or ended in an error: why, in one line.
    Failed { node: String, why: String },
    /// A window ended: its episodes over the whole window (a straggler, a stall, throttling, counters), read
    /// as `watch_gpus` reads them. Kernel events were shown as they came.
    Window {
        node: String,
        started_unix: f64,
        episodes: Vec<Episode>,
    },
}

/// One node as the view knows it.
#[derive(Debug, Default, Clone)]
pub struct NodeState {
    window: u64,
    follow: Follow,
    /// Why the node cannot be read now (cleared by its next sample).
    error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Node,
    Util,
    Memory,
    Power,
    Temp,
}

impl Sort {
    fn next(self) -> Self {
        match self {
            Sort::Node => Sort::Util,
            Sort::Util => Sort::Memory,
            Sort::Memory => Sort::Power,
            Sort::Power => Sort::Temp,
            Sort::Temp => Sort::Node,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Sort::Node => "node",
            Sort::Util => "util",
            Sort::Memory => "memory",
            Sort::Power => "power",
            Sort::Temp => "temp",
        }
    }
}

/// What a key asks of the loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Key {
    Quit,
    Redraw,
    Ignored,
}

/// An event as the pane shows it.
#[derive(Debug, Clone)]
struct Event {
    node: String,
    at_unix: f64,
    episode: Episode,
}

#[derive(Debug, Clone)]
pub struct View {
    /// What is watched, in the person's words: `gpu-node-5`, `job/train in ml`.
    pub title: String,
    pub interval_ms: u32,
    nodes: BTreeMap<String, NodeState>,
    /// `namespace/pod` → its rank as the workload publishes it.
    ranks: BTreeMap<String, String>,
    events: VecDeque<Event>,
    sort: Sort,
    filter: String,
    editing_filter: bool,
    /// The screen as it was when paused: updates still arrive into `self`, the frozen copy is drawn.
    paused: Option<Box<View>>,
    help: bool,
}

impl View {
    pub fn new(
        title: String,
        interval_ms: u32,
        nodes: &[String],
        ranks: BTreeMap<String, String>,
    ) -> Self {
        View {
            title,
            interval_ms,
            nodes: nodes
                .iter()
                .map(|n| (n.clone(), NodeState::default()))
                .collect(),
            ranks,
            events: VecDeque::new(),
            sort: Sort::Node,
            filter: String::new(),
            editing_filter: false,
            paused: None,
            help: false,
        }
    }

    /// Take an update; a new sample gives the Unix time it was taken.
    pub fn apply(&mut self, u: Update) -> Option<f64> {
        match u {
            Update::Failed { node, why } => {
                self.nodes.entry(node).or_default().error = Some(why);
                None
            }
            Update::Window {
                node,
                started_unix,
                episodes,
            } => {
                let worth: Vec<Episode> = episodes
                    .into_iter()
                    .filter(|e| {
                        e.kind != EpisodeKind::KernelEvent && e.severity >= Severity::Warning
                    })
                    .collect();
                // A window's episodes are timed by their end (the window saw them whole).
                self.add_events(&node, started_unix, worth, |e| e.to_s);
                None
            }
            Update::Line { node, window, line } => {
                let st = self.nodes.entry(node.clone()).or_default();
                if window < st.window {
                    // The window before the one that took over (they overlap while the next starts).
                    return None;
                }
                if window > st.window {
                    st.window = window;
                    // The last rows stay on screen until the new window's first sample.
                    let rows = std::mem::take(&mut st.follow.rows);
                    st.follow = Follow::default();
                    st.follow.rows = rows;
                }
                if st.follow.feed(line) {
                    st.error = None;
                    let start = st.follow.started_unix.unwrap_or(0.0);
                    let at = start + st.follow.t_s;
                    let fresh = st.follow.events.clone();
                    self.add_events(&node, start, fresh, |e| e.from_s);
                    return Some(at);
                }
                None
            }
        }
    }

    /// `episodes` of `node` into the pane (times from `start`, by `at`): newest on top, and of those that came
    /// together, the most severe.
    fn add_events(
        &mut self,
        node: &str,
        start: f64,
        mut episodes: Vec<Episode>,
        at: impl Fn(&Episode) -> f64,
    ) {
        episodes.sort_by_key(|e| e.severity);
        for e in episodes {
            self.events.push_front(Event {
                node: node.to_string(),
                at_unix: start + at(&e),
                episode: e,
            });
        }
        self.events.truncate(EVENTS_KEPT);
    }

    /// Every node has sent a sample or said why it cannot.
    pub fn complete(&self) -> bool {
        self.nodes.values().all(|n| {
            let sampled = !n.follow.rows.is_empty();
            let none_here = n.follow.started_unix.is_some() && n.follow.ids.is_empty();
            sampled || none_here || n.error.is_some()
        })
    }

    pub fn key(&mut self, k: KeyEvent) -> Key {
        if self.editing_filter {
            match k.code {
                KeyCode::Enter => self.editing_filter = false,
                KeyCode::Esc => {
                    self.editing_filter = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) if self.filter.chars().count() < 40 && !c.is_control() => {
                    self.filter.push(c)
                }
                _ => return Key::Ignored,
            }
            return Key::Redraw;
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Char('c') if ctrl => Key::Quit,
            KeyCode::Char('q') | KeyCode::Char('Q') => Key::Quit,
            KeyCode::Esc if self.help => {
                self.help = false;
                Key::Redraw
            }
            KeyCode::Esc if !self.filter.is_empty() => {
                self.filter.clear();
                Key::Redraw
            }
            KeyCode::Char('?') | KeyCode::Char('h') | KeyCode::F(1) => {
                self.help = !self.help;
                Key::Redraw
            }
            KeyCode::Char('s') | KeyCode::Char('>') => {
                self.sort = self.sort.next();
                Key::Redraw
            }
            KeyCode::Char('n') => self.sort_by(Sort::Node),
            KeyCode::Char('u') => self.sort_by(Sort::Util),
            KeyCode::Char('m') => self.sort_by(Sort::Memory),
            KeyCode::Char('p') => self.sort_by(Sort::Power),
            KeyCode::Char('t') => self.sort_by(Sort::Temp),
            KeyCode::Char('/') => {
                self.editing_filter = true;
                Key::Redraw
            }
            KeyCode::Char(' ') | KeyCode::Char('P') => {
                self.paused = match self.paused.take() {
                    Some(_) => None,
                    None => {
                        let mut frozen = self.clone();
                        frozen.paused = None;
                        Some(Box::new(frozen))
                    }
                };
                Key::Redraw
            }
            _ => Key::Ignored,
        }
    }

    fn sort_by(&mut self, s: Sort) -> Key {
        self.sort = s;
        Key::Redraw
    }

    /// The frozen copy while paused, with this view's keys' state (sorting and filtering still work).
    fn frozen(&self) -> Option<View> {
        let p = self.paused.as_deref()?;
        let mut v = p.clone();
        v.sort = self.sort;
        v.filter = self.filter.clone();
        v.editing_filter = self.editing_filter;
        v.help = self.help;
        v.paused = Some(Box::new(View::new(String::new(), 0, &[], BTreeMap::new())));
        Some(v)
    }

    fn rows(&self) -> Vec<Shown<'_>> {
        let mut out = Vec::new();
        for (node, st) in &self.nodes {
            for r in &st.follow.rows {
                let pods: Vec<&str> = st
                    .follow
                    .holders
                    .iter()
                    .filter(|h| h.gpu == r.index)
                    .map(|h| h.pod.as_str())
                    .collect();
                out.push(Shown {
                    node,
                    row: r,
                    pods,
                    stale: st.error.is_some(),
                });
            }
        }
        let f = self.filter.to_lowercase();
        if !f.is_empty() {
            out.retain(|s| s.text().to_lowercase().contains(&f));
        }
        let key = |s: &Shown<'_>| -> f64 {
            let r = s.row;
            match self.sort {
                Sort::Node => 0.0,
                Sort::Util => r.util_pct.map_or(-1.0, f64::from),
                Sort::Memory => r.mem_used_mib.map_or(-1.0, |m| m as f64),
                Sort::Power => r.power_w.unwrap_or(-1.0),
                Sort::Temp => r.temp_c.map_or(-1.0, f64::from),
            }
        };
        if self.sort != Sort::Node {
            out.sort_by(|a, b| key(b).total_cmp(&key(a)));
        }
        out
    }

    /// The GPUs with rows.
    pub fn gpus(&self) -> usize {
        self.nodes.values().map(|n| n.follow.rows.len()).sum()
    }

    fn latest_unix(&self) -> Option<f64> {
        self.nodes
            .values()
            .filter_map(|n| Some(n.follow.started_unix? + n.follow.t_s))
            .reduce(f64::max)
    }

    /// Draw the whole screen.
    pub fn draw(&self, f: &mut Frame<'_>) {
        let frozen = self.frozen();
        let v = frozen.as_ref().unwrap_or(self);
        let area = f.area();
        v.render(area, f.buffer_mut());
        if v.help {
            let w = area.width.min(60);
            let h = area.height.min(14);
            let r = Rect::new(
                area.x + (area.width - w) / 2,
                area.y + (area.height - h) / 2,
                w,
                h,
            );
            f.render_widget(Clear, r);
            f.render_widget(
                Paragraph::new(HELP.join("\n"))
                    .wrap(Wrap { trim: false })
                    .block(Block::default().borders(Borders::ALL).title(" keys ")),
                r,
            );
        }
    }

    /// A line for each node that cannot be read now (why, and whether its rows are its last values), and
    /// for each GPU that could not be read at its last sample (why, in its driver's words).
    fn node_lines(&self) -> Vec<Line<'_>> {
        let filter = self.filter.to_lowercase();
        let mut out = Vec::new();
        for (n, st) in &self.nodes {
            for r in &st.follow.rows {
                let Some(why) = &r.unreadable else { continue };
                let what = format!("{n} GPU {}: ", r.index);
                if !filter.is_empty() && !format!("{what}{why}").to_lowercase().contains(&filter) {
                    continue;
                }
                out.push(Line::from(vec![
                    Span::styled(what, Style::default().add_modifier(Modifier::BOLD)),
                    Span::styled(why.clone(), Style::default().fg(Color::Red)),
                ]));
            }
            let why = match (&st.error, st.follow.rows.is_empty()) {
                (Some(e), true) => e.clone(),
                (Some(e), false) => format!("{e} (its rows show the last values read)"),
                (None, true) if st.follow.started_unix.is_some() => {
                    "no accelerator sampled on this node".into()
                }
                (None, true) => "starting its probe".into(),
                (None, false) => continue,
            };
            if !filter.is_empty() && !format!("{n} {why}").to_lowercase().contains(&filter) {
                continue;
            }
            out.push(Line::from(vec![
                Span::styled(
                    format!("{n}: "),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::styled(why, Style::default().fg(Color::Yellow)),
            ]));
        }
        out
    }

    fn render(&self, area: Rect, buf: &mut Buffer) {
        let events_h = (self.events.len().min(5) as u16).min(area.height.saturating_sub(6));
        let mut nodes = self.node_lines();
        let room = area.height.saturating_sub(6 + events_h).min(5) as usize;
        if nodes.len() > room {
            let more = nodes.len() - room.saturating_sub(1);
            nodes.truncate(room.saturating_sub(1));
            nodes.push(Line::from(format!("{more} more node(s) without samples")));
        }
        let [head, events, down, table, foot] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(events_h),
            Constraint::Length(nodes.len() as u16),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .areas(area);
        ratatui::widgets::Widget::render(Paragraph::new(nodes), down, buf);
        ratatui::widgets::Widget::render(Paragraph::new(self.header()), head, buf);
        let lines: Vec<Line<'_>> = self
            .events
            .iter()
            .take(events_h as usize)
            .map(event_line)
            .collect();
        ratatui::widgets::Widget::render(Paragraph::new(lines), events, buf);
        self.table(table.width).render_into(table, buf);
        let foot_text = if self.editing_filter {
            format!("filter: {}_  (Enter keep, Esc clear)", self.filter)
        } else {
            "q quit  s sort  / filter  space pause  ? help".to_string()
        };
        ratatui::widgets::Widget::render(
            Paragraph::new(foot_text).style(Style::default().add_modifier(Modifier::DIM)),
            foot,
            buf,
        );
    }

    fn header(&self) -> Line<'_> {
        let at = self
            .latest_unix()
            .map_or_else(|| "--:--:--".to_string(), clock);
        let mut spans = vec![
            Span::styled(
                format!("top {}", self.title),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!(
                "  {} node(s) {} GPU(s) every {}  {at} UTC  sort: {}",
                self.nodes.len(),
                self.gpus(),
                every(self.interval_ms),
                self.sort.name()
            )),
        ];
        if !self.filter.is_empty() {
            spans.push(Span::raw(format!("  filter: {}", self.filter)));
        }
        if self.paused.is_some() {
            spans.push(Span::styled(
                "  PAUSED",
                Style::default().add_modifier(Modifier::REVERSED),
            ));
        }
        Line::from(spans)
    }

    fn table(&self, width: u16) -> GpuTable<'_> {
        GpuTable {
            rows: self.rows(),
            ranks: &self.ranks,
            wide: width >= 120,
        }
    }

    /// The screen as plain text, `width` columns wide: `--once` and a stdout that is no terminal.
    pub fn plain(&self, width: u16) -> String {
        let height = 1
            + self.events.len().min(5) as u16
            + self.node_lines().len().min(5) as u16
            + 1
            + self.rows().len() as u16
            // The layout keeps room for a few rows whatever is above them; blank lines are cut below.
            + 7;
        let area = Rect::new(0, 0, width, height.max(4));
        let mut buf = Buffer::empty(area);
        self.render(area, &mut buf);
        let mut out = String::new();
        for y in 0..area.height {
            let mut line = String::new();
            for x in 0..area.width {
                line.push_str(buf[(x, y)].symbol());
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        // The keys' line is for a person at the screen.
        let keep: Vec<&str> = out.lines().filter(|l| !l.starts_with("q quit")).collect();
        let mut s = keep.join("\n");
        while s.ends_with('\n') {
            s.pop();
        }
        s.push('\n');
        s
    }
}

const HELP: [&str; 12] = [
    "q, Ctrl-C    quit (the probe pods are deleted)",
    "s, >         next sort order",
    "n u m p t    sort by node, util, memory, power, temp",
    "/            filter rows (node, gpu N, model, pod, throttle)",
    "Esc          clear the filter, close this help",
    "space        pause the screen (values keep coming)",
    "? h F1       this help",
    "",
    "THROTTLE: what held the clocks in the last interval,",
    "in the vendor's words. ERRORS: counters that moved.",
    "Events: kernel errors as they came; at each window's",
    "end, its stragglers, stalls and throttling.",
];

/// One GPU's row as shown.
struct Shown<'a> {
    node: &'a str,
    row: &'a Row,
    pods: Vec<&'a str>,
    /// The node's latest window failed: these values are its last.
    stale: bool,
}

impl Shown<'_> {
    /// What a filter matches.
    fn text(&self) -> String {
        format!(
            "{} gpu {} {} {} {} {}",
            self.node,
            self.row.index,
            self.row.model,
            self.pods.join(" "),
            self.row.throttles.join(" "),
            self.row.counters_moving.join(" ")
        )
    }
}

struct GpuTable<'a> {
    rows: Vec<Shown<'a>>,
    ranks: &'a BTreeMap<String, String>,
    wide: bool,
}

impl GpuTable<'_> {
    fn render_into(self, area: Rect, buf: &mut Buffer) {
        let mut header = vec!["NODE", "GPU"];
        if self.wide {
            header.push("MODEL");
        }
        header.extend([
            "UTIL", "MEM GiB", "POWER W", "TEMP", "MHz", "THROTTLE", "ERRORS", "POD",
        ]);
        if self.wide {
            header.push("RANK");
        }
        // The node's name whole (to a bound), fixed columns for the numbers; words share what is left.
        let longest = self
            .rows
            .iter()
            .map(|s| s.node.chars().count())
            .max()
            .unwrap_or(4);
        let node_w = longest.clamp(4, if self.wide { 40 } else { 24 }) as u16;
        let mut widths = vec![Constraint::Length(node_w), Constraint::Length(3)];
        if self.wide {
            widths.push(Constraint::Fill(3));
        }
        widths.extend([
            Constraint::Length(4),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(4),
            Constraint::Length(4),
            Constraint::Min(10),
            Constraint::Fill(2),
            Constraint::Fill(2),
        ]);
        if self.wide {
            widths.push(Constraint::Length(6));
        }
        let cols = header.len();
        let rows: Vec<TableRow<'_>> = self
            .rows
            .iter()
            .map(|s| {
                let Shown {
                    node,
                    row,
                    pods,
                    stale,
                } = s;
                {
                    let dash = || "-".to_string();
                    let mut cells = vec![
                        Cell::from(node.to_string()),
                        Cell::from(row.index.to_string()),
                    ];
                    if self.wide {
                        cells.push(Cell::from(row.model.clone()));
                    }
                    if let Some(why) = &row.unreadable {
                        // The numbers' columns are too narrow for a reason: it takes the words' columns.
                        cells.resize(cols - 3, Cell::from("-"));
                        let red = Style::default().fg(Color::Red);
                        cells.push(Cell::from("unreadable").style(red));
                        cells.push(Cell::from(why.clone()).style(red));
                        cells.resize(cols, Cell::from(""));
                        return TableRow::new(cells);
                    }
                    let mem = match (row.mem_used_mib, row.mem_total_mib) {
                        (Some(u), Some(t)) => format!("{:.1}/{:.0}", gib(u), gib(t)),
                        (Some(u), None) => format!("{:.1}", gib(u)),
                        _ => dash(),
                    };
                    let power = match (row.power_w, row.power_limit_w) {
                        (Some(p), Some(l)) => format!("{p:.0}/{l:.0}"),
                        (Some(p), None) => format!("{p:.0}"),
                        _ => dash(),
                    };
                    cells.extend([
                        Cell::from(row.util_pct.map_or_else(dash, |u| format!("{u}%"))),
                        Cell::from(mem),
                        Cell::from(power),
                        Cell::from(row.temp_c.map_or_else(dash, |t| format!("{t}C"))),
                        Cell::from(row.sm_mhz.map_or_else(dash, |m| m.to_string())),
                        Cell::from(if row.throttles.is_empty() {
                            "-".to_string()
                        } else {
                            row.throttles.join(", ")
                        }),
                        Cell::from(if row.counters_moving.is_empty() {
                            "-".to_string()
                        } else {
                            row.counters_moving.join(", ")
                        })
                        .style(if row.critical {
                            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
                        } else {
                            Style::default()
                        }),
                        Cell::from(if pods.is_empty() {
                            "-".to_string()
                        } else {
                            pods.join(",")
                        }),
                    ]);
                    if self.wide {
                        let rank = pods
                            .iter()
                            .find_map(|p| self.ranks.get(*p))
                            .cloned()
                            .unwrap_or_else(dash);
                        cells.push(Cell::from(rank));
                    }
                    let mut r = TableRow::new(cells);
                    if *stale {
                        r = r.style(Style::default().add_modifier(Modifier::DIM));
                    }
                    r
                }
            })
            .collect();
        let t = Table::new(rows, widths)
            .header(TableRow::new(header).style(Style::default().add_modifier(Modifier::BOLD)))
            .column_spacing(1);
        ratatui::widgets::Widget::render(t, area, buf);
    }
}

fn gib(mib: u64) -> f64 {
    mib as f64 / 1024.0
}

fn every(ms: u32) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

/// HH:MM:SS (UTC) of a Unix time.
fn clock(unix: f64) -> String {
    let s = unix.max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn event_line(e: &Event) -> Line<'_> {
    let (word, style) = match e.episode.severity {
        Severity::Critical => (
            "CRITICAL",
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        Severity::Warning => ("WARNING", Style::default().fg(Color::Yellow)),
        _ => ("info", Style::default()),
    };
    Line::from(vec![
        Span::raw(format!("{} {} ", clock(e.at_unix), e.node)),
        Span::styled(word, style),
        Span::raw(format!(" {}", e.episode.text)),
    ])
}
