//! A window as a picture for people: per GPU, utilization, SM clock, power and temperature over time, one
//! line per GPU in its own colour, with each GPU's harmful-throttle strip and the kernel events as marks.
//! Drawn into an RGB buffer and written as a PNG here (a few primitives and a 5×7 font: no image crate for
//! one chart), from the bounded timelines the answer already carries.

use std::io::Write;

use gpu_diag::watch::GpuWindow;

const W: usize = 880;
const PANEL_H: usize = 110;
const LEFT: usize = 64;
const RIGHT: usize = 130;
const TOP: usize = 28;
const GAP: usize = 22;
const STRIP_H: usize = 6;

type Rgb = [u8; 3];
const BG: Rgb = [255, 255, 255];
const AXIS: Rgb = [120, 120, 120];
const GRID: Rgb = [232, 232, 232];
const INK: Rgb = [30, 30, 30];
const THROTTLE: Rgb = [220, 40, 40];
const EVENT: Rgb = [150, 0, 160];

/// Distinct colours for up to 16 lines (Tableau 10 and its lighter half).
const PALETTE: [Rgb; 16] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
    [174, 199, 232],
    [255, 187, 120],
    [152, 223, 138],
    [255, 152, 150],
    [197, 176, 213],
    [196, 156, 148],
];

/// Lines drawn at most; the rest are named in the legend as left out.
pub const MAX_LINES: usize = 16;

/// One GPU's line: its label and window.
pub struct Line<'a> {
    pub label: String,
    pub gpu: &'a GpuWindow,
}

/// A kernel event: seconds since the window's start and a short label.
pub struct Mark {
    pub at_s: f64,
    pub label: String,
}

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Canvas {
            w,
            h,
            px: BG.repeat(w * h),
        }
    }

    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x < 0 || y < 0 || x as usize >= self.w || y as usize >= self.h {
            return;
        }
        let i = (y as usize * self.w + x as usize) * 3;
        self.px[i..i + 3].copy_from_slice(&c);
    }

    fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, c: Rgb) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx as i64, yy as i64, c);
            }
        }
    }

    /// Bresenham, two pixels thick.
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: Rgb) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, c);
            self.set(x, y + 1, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    fn text(&mut self, x: usize, y: usize, s: &str, c: Rgb) {
        let mut cx = x;
        for ch in s.chars() {
            let rows = glyph(ch.to_ascii_uppercase());
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        self.set((cx + col) as i64, (y + r) as i64, c);
                    }
                }
            }
            cx += 6;
        }
    }

    fn png(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity((self.w * 3 + 1) * self.h);
        for row in self.px.chunks(self.w * 3) {
            raw.push(0);
            raw.extend_from_slice(row);
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = z.write_all(&raw);
        let idat = z.finish().unwrap_or_default();
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&(self.w as u32).to_be_bytes());
        ihdr.extend_from_slice(&(self.h as u32).to_be_bytes());
        // 8 bits per sample, RGB, deflate, no filter, no interlace.
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &idat);
        chunk(&mut out, b"IEND", &[]);
        out
    }
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// A panel: its title, how to read a GPU's bucket values, and its scale's top.
struct Panel {
    title: &'static str,
    values: fn(&GpuWindow) -> Vec<Option<f64>>,
    top: fn(&[Line<'_>]) -> f64,
}

fn max_of(lines: &[Line<'_>], f: fn(&GpuWindow) -> Vec<Option<f64>>, floor: f64) -> f64 {
    let m = lines
        .iter()
        .flat_map(|l| f(l.gpu))
        .flatten()
        .fold(floor, f64::max);
    // A round top: the next multiple of a tenth of the order of magnitude.
    let step = 10f64.powf(m.log10().floor()) / 2.0;
    ((m / step).ceil() * step).max(floor)
}

const PANELS: [Panel; 4] = [
    Panel {
        title: "UTIL %",
        values: |g| {
            g.timeline
                .util_pct
                .iter()
                .map(|v| v.map(f64::from))
                .collect()
        },
        top: |_| 100.0,
    },
    Panel {
        title: "SM MHZ",
        values: |g| g.timeline.sm_mhz.iter().map(|v| v.map(f64::from)).collect(),
        top: |l| {
            let m = l
                .iter()
                .filter_map(|x| x.gpu.identity.sm_max_mhz)
                .max()
                .map(f64::from);
            m.unwrap_or_else(|| {
                max_of(
                    l,
                    |g| g.timeline.sm_mhz.iter().map(|v| v.map(f64::from)).collect(),
                    100.0,
                )
            })
        },
    },
    Panel {
        title: "POWER W",
        values: |g| {
            g.timeline
                .power_w
                .iter()
                .map(|v| v.map(f64::from))
                .collect()
        },
        top: |l| {
            let cap = l
                .iter()
                .filter_map(|x| x.gpu.identity.power_limit_w)
                .fold(0.0, f64::max);
            if cap > 0.0 {
                cap
            } else {
                max_of(
                    l,
                    |g| {
                        g.timeline
                            .power_w
                            .iter()
                            .map(|v| v.map(f64::from))
                            .collect()
                    },
                    50.0,
                )
            }
        },
    },
    Panel {
        title: "TEMP C",
        values: |g| g.timeline.temp_c.iter().map(|v| v.map(f64::from)).collect(),
        top: |l| {
            let slow = l
                .iter()
                .filter_map(|x| x.gpu.identity.slowdown_c)
                .max()
                .map(f64::from);
            slow.unwrap_or_else(|| {
                max_of(
                    l,
                    |g| g.timeline.temp_c.iter().map(|v| v.map(f64::from)).collect(),
                    50.0,
                )
            })
        },
    },
];

/// The chart as PNG bytes: `title` on top, the panels, the throttle strips, the legend; `window_s` is the
/// window's span (the x axis), `marks` the kernel events.
pub fn png(title: &str, window_s: f64, lines: &[Line<'_>], marks: &[Mark]) -> Vec<u8> {
    let lines = &lines[..lines.len().min(MAX_LINES)];
    let strips_h = lines.len() * (STRIP_H + 2) + 14;
    let h = TOP + PANELS.len() * (PANEL_H + GAP) + strips_h + 24;
    let mut c = Canvas::new(W, h);
    c.text(LEFT, 8, title, INK);
    let plot_w = W - LEFT - RIGHT;
    let x_of =
        |t: f64| LEFT as i64 + ((t / window_s.max(1e-9)).clamp(0.0, 1.0) * plot_w as f64) as i64;
    for (pi, p) in PANELS.iter().enumerate() {
        let y0 = TOP + pi * (PANEL_H + GAP);
        let top = (p.top)(lines).max(1.0);
        c.text(4, y0 + 2, p.title, INK);
        c.text(4, y0 + 14, &format!("{top:.0}"), AXIS);
        c.text(4, y0 + PANEL_H - 8, "0", AXIS);
        for q in 1..4 {
            c.rect(LEFT, y0 + PANEL_H * q / 4, plot_w, 1, GRID);
        }
        c.rect(LEFT, y0, 1, PANEL_H, AXIS);
        c.rect(LEFT, y0 + PANEL_H, plot_w, 1, AXIS);
        for m in marks {
            let x = x_of(m.at_s);
            for y in (y0..y0 + PANEL_H).step_by(4) {
                c.set(x, y as i64, EVENT);
                c.set(x, y as i64 + 1, EVENT);
            }
        }
        for (li, l) in lines.iter().enumerate() {
            let v = (p.values)(l.gpu);
            let n = v.len().max(1);
            let pts: Vec<Option<(i64, i64)>> = v
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    x.map(|x| {
                        let t = (i as f64 + 0.5) / n as f64 * window_s;
                        let y = y0 as f64 + PANEL_H as f64 * (1.0 - (x / top).clamp(0.0, 1.0));
                        (x_of(t), y as i64)
                    })
                })
                .collect();
            let col = PALETTE[li % PALETTE.len()];
            for w in pts.windows(2) {
                match (w[0], w[1]) {
                    (Some(a), Some(b)) => c.line(a, b, col),
                    (Some(a), None) => c.rect(a.0 as usize, a.1 as usize, 2, 2, col),
                    _ => {}
                }
            }
            if let [Some(only)] = pts.as_slice() {
                c.rect(only.0 as usize, only.1 as usize, 3, 3, col);
            }
        }
    }
    // Throttle strips: red where a harmful throttle held at least a quarter of the bucket.
    let ys = TOP + PANELS.len() * (PANEL_H + GAP);
    c.text(4, ys, "THROTTLE", INK);
    for (li, l) in lines.iter().enumerate() {
        let y = ys + 12 + li * (STRIP_H + 2);
        let t = &l.gpu.timeline.throttled_pct;
        let n = t.len().max(1);
        c.rect(LEFT, y, plot_w, STRIP_H, GRID);
        for (i, p) in t.iter().enumerate() {
            if *p >= 25 {
                let x0 = x_of(i as f64 / n as f64 * window_s) as usize;
                let x1 = x_of((i + 1) as f64 / n as f64 * window_s) as usize;
                c.rect(x0, y, x1.saturating_sub(x0).max(1), STRIP_H, THROTTLE);
            }
        }
        c.rect(LEFT - 10, y, 6, STRIP_H, PALETTE[li % PALETTE.len()]);
    }
    // Time axis and legend.
    let yt = h - 14;
    c.text(LEFT, yt, "0 S", AXIS);
    let end = format!("{window_s:.0} S");
    c.text(LEFT + plot_w - end.len() * 6, yt, &end, AXIS);
    for (li, l) in lines.iter().enumerate() {
        let y = TOP + li * 12;
        let x = W - RIGHT + 10;
        c.rect(x, y + 2, 10, 4, PALETTE[li % PALETTE.len()]);
        c.text(
            x + 14,
            y,
            &l.label.chars().take(18).collect::<String>(),
            INK,
        );
    }
    for (mi, m) in marks.iter().take(6).enumerate() {
        let y = TOP + (lines.len() + 1 + mi) * 12;
        c.text(
            W - RIGHT + 10,
            y,
            &format!("{} {:.0}S", m.label, m.at_s)
                .chars()
                .take(19)
                .collect::<String>(),
            EVENT,
        );
    }
    c.png()
}

/// 5×7 glyphs, one byte per row (low five bits, left to right): digits, letters, a few signs; others blank.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '/' => [0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        _ => [0; 7],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG decoder's view of the bytes: signature, IHDR's size, every chunk's CRC.
    #[test]
    fn the_chart_is_a_valid_png_of_its_size() {
        let g = GpuWindow {
            identity: Default::default(),
            held_by: vec![],
            processes: None,
            busy_pct: 100,
            util_pct: None,
            util_samples: None,
            sm_mhz: None,
            power_w: None,
            temp_c: None,
            mem_used_mib_max: None,
            throttled: vec![],
            counters: vec![],
            traffic_mib_s: vec![],
            unreadable_samples: 0,
            line: String::new(),
            timeline: gpu_diag::watch::GpuTimeline {
                bucket_s: 1.0,
                util_pct: vec![Some(10), Some(90), None, Some(50)],
                sm_mhz: vec![Some(1000); 4],
                power_w: vec![Some(300); 4],
                temp_c: vec![Some(60); 4],
                throttled_pct: vec![0, 100, 0, 30],
            },
        };
        let png = png(
            "NODE A 4 S",
            4.0,
            &[Line {
                label: "GPU 0".into(),
                gpu: &g,
            }],
            &[Mark {
                at_s: 2.0,
                label: "XID 79".into(),
            }],
        );
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        assert_eq!(w as usize, W);
        let mut i = 8;
        let mut kinds = Vec::new();
        while i < png.len() {
            let len = u32::from_be_bytes(png[i..i + 4].try_into().unwrap()) as usize;
            let kind = &png[i + 4..i + 8];
            let mut crc = flate2::Crc::new();
            crc.update(&png[i + 4..i + 8 + len]);
            let stored = u32::from_be_bytes(png[i + 8 + len..i + 12 + len].try_into().unwrap());
            assert_eq!(crc.sum(), stored, "{}", String::from_utf8_lossy(kind));
            kinds.push(String::from_utf8_lossy(kind).into_owned());
            i += 12 + len;
        }
        assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
        // The IDAT inflates to one filter byte and a row of RGB per line.
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap()) as usize;
        let idat_len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        let mut raw = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::ZlibDecoder::new(&png[41..41 + idat_len]),
            &mut raw,
        )
        .unwrap();
        assert_eq!(raw.len(), h * (W * 3 + 1));
        // Something was drawn in the throttle colour.
        assert!(raw.windows(3).any(|p| p == THROTTLE));
    }
}
