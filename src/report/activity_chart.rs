//! An activity's combined chart: the per-minute series of all its Insights on one shared time
//! axis (pure; plain SVG).
//!
//! Each Insight is one line in its own colour (`colour(i)`, the page's legend uses the same),
//! its baseline average a dashed line in that colour, its minutes (Start to End) shaded in that
//! colour. Calls and errors are different quantities, so call-rate and error-rate Insights get
//! a panel each (calls above, errors below), the panels sharing the time axis. Within a panel,
//! series whose peaks differ by `LOG_RATIO` or more (a burst of 78 calls next to a service's 2
//! follow-up events) are drawn on a logarithmic scale, `log10(1 + rate)` with ticks at 0, 1,
//! 10, 100..., and the panel's title says "log scale"; otherwise the scale is linear from 0 with
//! round ticks, as in the Insight cards. Where a later line would hide an earlier one (the same
//! rate in the same minutes) the earlier gets a wider halo there, so both colours show. Nothing
//! is normalised: every value on the page is a
//! rate per minute an analyst can compare with the Insight's numbers.
//!
//! The chart is drawn as plain SVG rather than through plotters: it is all custom parts (panels
//! of their own scales, per-series baselines and shading) on the time ticks of `chart`. Readers
//! and tests find its parts by stable attributes: `svg.activity-chart[data-activity]`,
//! `g.panel[data-kind=calls|errors][data-scale=linear|log]`, and per Insight a
//! `g.series[data-shared-event-id]` with `data-rate` (`counted` or `averages`) and, when
//! counted, `data-episode-count` (the calls drawn in the Insight's own minutes), a
//! `line.baseline[data-average]` and a `rect.insight-span[data-start][data-end]`.

use super::chart::{self, EpisodeChart, FONT_SIZE, Rate, YAxis, escape};
use crate::model::Minute;
use std::fmt::Write as _;

/// Width of the chart in SVG pixels (as the Insight cards' charts).
pub const WIDTH: u32 = chart::EPISODE_SIZE.0;
/// Peaks this many times apart in one panel put it on a log scale.
pub const LOG_RATIO: f64 = 10.0;
/// At most this many Insights are drawn (each needs a colour one can tell apart).
pub const MAX_LINES: usize = 8;

/// Colours told apart on white and by most colour-blind readers (d3's category10, its grey and
/// olive left out).
const PALETTE: [&str; MAX_LINES] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#e377c2", "#8c564b",
];

const LEFT: i32 = 74;
const RIGHT: i32 = WIDTH as i32 - 14;
const TOP: i32 = 4;
/// Room above a panel for its title (the y axis title).
const TITLE: i32 = 24;
const GAP: i32 = 10;
const X_LABELS: i32 = 26;
/// Plot height of the only panel, and of each of two.
const ONE_PANEL: i32 = 190;
const TWO_PANELS: i32 = 140;

/// The colour of the `i`-th line.
pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// One Insight's line.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// Its series, Start, End and baseline; `from` is the minute its counts (when counted)
    /// start at, `until` is unused (the activity's window is).
    pub episode: EpisodeChart<'a>,
    /// Its name on hover: `ssm.amazonaws.com DeleteParameter calls`.
    pub label: String,
    /// The Insight's own minutes `[start, end)`, whose drawn calls are summed.
    pub own: (Minute, Minute),
}

/// An activity's chart: its lines over `[from, until)`.
#[derive(Debug, Clone)]
pub struct ActivityChart<'a> {
    pub id: &'a str,
    pub from: Minute,
    pub until: Minute,
    /// At most `MAX_LINES`; line `i` is drawn in `colour(i)`.
    pub lines: &'a [Line<'a>],
}

/// How a panel maps a rate to its height.
#[derive(Debug, Clone, PartialEq)]
enum Scale {
    Linear(YAxis),
    /// `log10(1 + rate)`, up to `10^top_power`.
    Log {
        top_power: i32,
    },
}

impl Scale {
    /// Linear from 0, or log when the peaks (at least 10 at the top) are `LOG_RATIO` apart.
    fn for_peaks(peaks: &[f64]) -> Scale {
        let top = peaks.iter().copied().fold(0.0, f64::max);
        let lowest = peaks
            .iter()
            .copied()
            .filter(|p| *p > 0.0)
            .fold(f64::INFINITY, f64::min);
        if top >= LOG_RATIO && top >= LOG_RATIO * lowest {
            Scale::Log {
                top_power: top.log10().ceil().max(1.0) as i32,
            }
        } else {
            Scale::Linear(YAxis::new(top * 1.1))
        }
    }

    fn value(&self, v: f64) -> f64 {
        match self {
            Scale::Linear(_) => v.max(0.0),
            Scale::Log { .. } => v.max(0.0).ln_1p() / std::f64::consts::LN_10,
        }
    }

    fn max(&self) -> f64 {
        match self {
            Scale::Linear(axis) => axis.max,
            Scale::Log { top_power } => self.value(10f64.powi(*top_power)),
        }
    }

    /// The ticks: value and label.
    fn ticks(&self) -> Vec<(f64, String)> {
        match self {
            Scale::Linear(axis) => axis.ticks.iter().map(|t| (*t, axis.label(*t))).collect(),
            Scale::Log { top_power } => std::iter::once((0.0, "0".to_owned()))
                .chain((0..=*top_power).map(|p| {
                    let v = 10f64.powi(p);
                    (v, power_label(p))
                }))
                .collect(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Scale::Linear(_) => "linear",
            Scale::Log { .. } => "log",
        }
    }
}

/// `1`, `10`, `100`, `1k` ... `100M`, `1e9` ...
fn power_label(p: i32) -> String {
    match p {
        0..=2 => format!("{}", 10i64.pow(p as u32)),
        3..=5 => format!("{}k", 10i64.pow(p as u32 - 3)),
        6..=8 => format!("{}M", 10i64.pow(p as u32 - 6)),
        _ => format!("1e{p}"),
    }
}

/// One panel: its lines (indices into the chart's) and where it is drawn.
struct Panel {
    errors: bool,
    lines: Vec<usize>,
    scale: Scale,
    top: i32,
    height: i32,
}

/// The steps of line `l` over the chart's window.
fn steps_of(c: &ActivityChart<'_>, l: &Line<'_>) -> Vec<(i64, f64)> {
    let rate = match l.episode.rate {
        Rate::Counted(counts) => Rate::Counted(super::counts_within(
            counts,
            l.episode.from,
            (c.from, c.until),
        )),
        averages => averages,
    };
    chart::steps(&EpisodeChart {
        from: c.from,
        until: c.until,
        rate,
        ..l.episode
    })
}

/// The calls drawn in a line's own minutes, when counted from the logs.
pub fn drawn_episode_count(l: &Line<'_>) -> Option<u64> {
    match l.episode.rate {
        Rate::Counted(counts) => Some(
            super::counts_within(counts, l.episode.from, l.own)
                .iter()
                .sum(),
        ),
        Rate::Averages { .. } => None,
    }
}

/// The SVG of an activity's chart.
pub fn activity_svg(c: &ActivityChart<'_>) -> String {
    let until = c.until.max(c.from.plus(1));
    let c = &ActivityChart { until, ..c.clone() };
    let steps: Vec<Vec<(i64, f64)>> = c.lines.iter().map(|l| steps_of(c, l)).collect();
    let panels = panels(c, &steps);
    let height = panels.last().map_or(TOP, |p| p.top + p.height + X_LABELS);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart activity-chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" data-activity="{id}" data-from="{from}" data-until="{until}"><title>{n} Insights per minute, {from_clock} to {until_clock} UTC</title>"#,
        id = escape(c.id),
        from = c.from.to_rfc3339(),
        until = c.until.to_rfc3339(),
        n = c.lines.len(),
        from_clock = chart::clock(c.from),
        until_clock = chart::clock(c.until),
    );
    let x = |m: i64| x_of(c, m);
    let ticks = chart::time_ticks(c.from, c.until);
    let (first_top, last_bottom) = (
        panels.first().map_or(TOP, |p| p.top),
        panels.last().map_or(TOP, |p| p.top + p.height),
    );
    for t in &ticks {
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{x}" y1="{first_top}" x2="{x}" y2="{last_bottom}" stroke="{grid}"/><text class="x-tick" x="{x}" y="{ty}" text-anchor="middle" font-family="sans-serif" font-size="{FONT_SIZE}" fill="{fill}">{label}</text>"#,
            x = x(*t),
            ty = last_bottom + 19,
            grid = chart::hex(chart::GRID),
            fill = chart::hex(chart::LABEL),
            label = chart::time_label(Minute(*t), c.until.0 - c.from.0),
        );
    }
    for p in &panels {
        panel(&mut svg, c, p, &steps);
    }
    svg.push_str("</svg>");
    svg
}

/// Calls above errors, each panel with the scale its peaks need.
fn panels(c: &ActivityChart<'_>, steps: &[Vec<(i64, f64)>]) -> Vec<Panel> {
    let mut panels = Vec::new();
    for errors in [false, true] {
        let lines: Vec<usize> = (0..c.lines.len())
            .filter(|&i| c.lines[i].episode.errors == errors)
            .collect();
        if lines.is_empty() {
            continue;
        }
        let peaks: Vec<f64> = lines
            .iter()
            .map(|&i| {
                steps[i]
                    .iter()
                    .map(|(_, v)| *v)
                    .fold(c.lines[i].episode.baseline, f64::max)
            })
            .collect();
        panels.push(Panel {
            errors,
            lines,
            scale: Scale::for_peaks(&peaks),
            top: 0,
            height: 0,
        });
    }
    let height = if panels.len() > 1 {
        TWO_PANELS
    } else {
        ONE_PANEL
    };
    let mut top = TOP;
    for p in &mut panels {
        p.top = top + TITLE;
        p.height = height;
        top = p.top + height + GAP;
    }
    panels
}

fn x_of(c: &ActivityChart<'_>, m: i64) -> i32 {
    let span = (c.until.0 - c.from.0).max(1) as f64;
    let m = m.clamp(c.from.0, c.until.0);
    LEFT + ((m - c.from.0) as f64 / span * f64::from(RIGHT - LEFT)).round() as i32
}

/// One panel: title, ticks, each Insight's shading, baseline and line, then the axes.
fn panel(svg: &mut String, c: &ActivityChart<'_>, p: &Panel, steps: &[Vec<(i64, f64)>]) {
    let bottom = p.top + p.height;
    let y = |v: f64| {
        let f = (p.scale.value(v) / p.scale.max()).clamp(0.0, 1.0);
        bottom - (f * f64::from(p.height)).round() as i32
    };
    let what = if p.errors { "errors" } else { "calls" };
    let _ = write!(
        svg,
        r#"<g class="panel" data-kind="{what}" data-scale="{scale}"><text class="y-title" x="{LEFT}" y="{ty}" font-family="sans-serif" font-size="{FONT_SIZE}" font-weight="600" fill="{fill}">{what} per minute{log}</text>"#,
        scale = p.scale.name(),
        ty = p.top - 8,
        fill = chart::hex(chart::LABEL),
        log = if matches!(p.scale, Scale::Log { .. }) {
            " (log scale)"
        } else {
            ""
        },
    );
    for (v, label) in p.scale.ticks() {
        let ty = y(v);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" y1="{ty}" x2="{RIGHT}" y2="{ty}" stroke="{grid}"/><text class="y-tick" x="{tx}" y="{ly}" text-anchor="end" font-family="sans-serif" font-size="{FONT_SIZE}" fill="{fill}">{label}</text>"#,
            tx = LEFT - 6,
            ly = ty + 5,
            grid = chart::hex(chart::GRID),
            fill = chart::hex(chart::LABEL),
        );
    }
    for &i in &p.lines {
        let l = &c.lines[i];
        let e = &l.episode;
        let start_x = x_of(c, e.start.0);
        let end_x = x_of(c, e.end.unwrap_or(c.until).0).max(start_x + chart::MIN_WINDOW_PIXELS);
        let _ = write!(
            svg,
            r#"<rect class="insight-span" x="{start_x}" y="{top}" width="{w}" height="{h}" fill="{colour}" fill-opacity="0.14" data-shared-event-id="{id}" data-start="{start}" data-end="{end}"><title>{label}: Insight {span}</title></rect>"#,
            top = p.top,
            w = end_x - start_x,
            h = p.height,
            colour = colour(i),
            id = escape(e.shared_event_id),
            start = e.start.to_rfc3339(),
            end = e.end.map(Minute::to_rfc3339).unwrap_or_default(),
            label = escape(&l.label),
            span = match e.end {
                Some(end) => format!("{} to {} UTC", chart::clock(e.start), chart::clock(end)),
                None => format!("from {} UTC, still open", chart::clock(e.start)),
            },
        );
    }
    for (j, &i) in p.lines.iter().enumerate() {
        let above: Vec<&[(i64, f64)]> = p.lines[j + 1..]
            .iter()
            .map(|&k| steps[k].as_slice())
            .collect();
        line(svg, c, i, &steps[i], &above, &y);
    }
    let _ = write!(
        svg,
        r#"<path class="axis" d="M{LEFT} {top}V{bottom}H{RIGHT}" fill="none" stroke="{axis}"/></g>"#,
        top = p.top,
        axis = chart::hex(chart::AXIS),
    );
}

/// A point of a line: minute and rate per minute.
type Step = (i64, f64);

/// How much wider than a line its halo is for each later line drawn over the same segment, so
/// both colours show where two Insights have the same rate (a service's follow-up events, one
/// per call), at most 3 deep.
const HALO_WIDTH: f64 = 2.5;

/// The segments of `steps` above zero that later lines (`above`) draw too, each with how many
/// draw it.
fn covered(steps: &[Step], above: &[&[Step]]) -> Vec<(Step, Step, usize)> {
    steps
        .windows(2)
        .filter(|w| w[0].1 > 0.0 || w[1].1 > 0.0)
        .filter_map(|w| {
            let n = above
                .iter()
                .filter(|o| o.contains(&w[0]) && o.contains(&w[1]))
                .count();
            (n > 0).then_some((w[0], w[1], n.min(3)))
        })
        .collect()
}

/// One Insight's baseline (dashed) and rate (solid), in its colour; beneath the rate, a wider
/// halo where later lines (`above`) would hide it.
fn line(
    svg: &mut String,
    c: &ActivityChart<'_>,
    i: usize,
    steps: &[(i64, f64)],
    above: &[&[(i64, f64)]],
    y: &dyn Fn(f64) -> i32,
) {
    let l = &c.lines[i];
    let e = &l.episode;
    let id = escape(e.shared_event_id);
    let label = escape(&l.label);
    let colour = colour(i);
    let points: Vec<String> = steps
        .iter()
        .map(|(m, v)| format!("{},{}", x_of(c, *m), y(*v)))
        .collect();
    let peak = steps.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let mut halo = String::new();
    for (a, b, n) in covered(steps, above) {
        let _ = write!(
            halo,
            r#"<line class="halo" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{colour}" stroke-width="{}" stroke-linecap="butt"/>"#,
            x_of(c, a.0),
            y(a.1),
            x_of(c, b.0),
            y(b.1),
            2.0 + HALO_WIDTH * n as f64,
        );
    }
    let _ = write!(
        svg,
        r#"<g class="series" data-shared-event-id="{id}" data-colour="{colour}" data-rate="{rate}" data-episode-count="{count}" data-peak="{peak}"><line class="baseline" x1="{LEFT}" y1="{by}" x2="{RIGHT}" y2="{by}" data-average="{average}" stroke="{colour}" stroke-width="2" stroke-dasharray="6 4"><title>{label}: baseline average {average_text} per minute</title></line>{halo}<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2" stroke-linejoin="round"><title>{label}: at most {peak_text} per minute</title></polyline></g>"#,
        rate = match e.rate {
            Rate::Counted(_) => "counted",
            Rate::Averages { .. } => "averages",
        },
        count = drawn_episode_count(l)
            .map(|n| n.to_string())
            .unwrap_or_default(),
        by = y(e.baseline),
        average = e.baseline,
        average_text = super::html::rate_text(e.baseline),
        peak_text = super::html::rate_text(peak),
        points = points.join(" "),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line whose counts start at `from`, its Insight two minutes from `start`.
    fn line<'a>(
        id: &'a str,
        errors: bool,
        counts: &'a [u64],
        from: Minute,
        start: Minute,
    ) -> Line<'a> {
        Line {
            episode: EpisodeChart {
                shared_event_id: id,
                from,
                until: from.plus(counts.len() as i64),
                start,
                end: Some(start.plus(2)),
                baseline: 0.5,
                rate: Rate::Counted(counts),
                errors,
            },
            label: format!("ssm.amazonaws.com {id}"),
            own: (start, start.plus(2)),
        }
    }

    #[test]
    fn scales_go_log_only_for_peaks_orders_of_magnitude_apart() {
        let cases: [(&[f64], &str, &[&str]); 5] = [
            (&[78.0, 2.0], "log", &["0", "1", "10", "100"]),
            (&[8.0, 2.0], "linear", &["0.0", "2.5", "5.0", "7.5", "10.0"]),
            (&[40.0, 17.0], "linear", &["0", "20", "40", "60"]),
            (
                &[1500.0, 0.0, 3.0],
                "log",
                &["0", "1", "10", "100", "1k", "10k"],
            ),
            (&[12.0, 1.5], "linear", &["0", "5", "10", "15"]),
        ];
        for (peaks, name, labels) in cases {
            let scale = Scale::for_peaks(peaks);
            assert_eq!(scale.name(), name, "{peaks:?}");
            let shown: Vec<String> = scale.ticks().into_iter().map(|(_, l)| l).collect();
            assert_eq!(shown, labels, "{peaks:?}");
            assert!(
                scale.value(peaks[0]) <= scale.max(),
                "{peaks:?}: the top fits"
            );
        }
    }

    #[test]
    fn every_line_is_drawn_from_the_counts_of_its_own_window() {
        let from = Minute(28_000_000);
        // The call line's counts start 10 minutes before the chart; the error line's with it.
        let calls: Vec<u64> = (0..100).map(|m| if m == 50 { 78 } else { 0 }).collect();
        let errors: Vec<u64> = (0..90).map(|m| if m == 40 { 2 } else { 0 }).collect();
        let lines = [
            line("calls", false, &calls, from.plus(-10), from.plus(40)),
            line("errors", true, &errors, from, from.plus(40)),
        ];
        let chart = ActivityChart {
            id: "act",
            from,
            until: from.plus(90),
            lines: &lines,
        };
        let svg = activity_svg(&chart);
        assert!(
            svg.starts_with(r#"<svg class="chart activity-chart""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"data-kind="calls" data-scale="linear""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"data-kind="errors" data-scale="linear""#),
            "{svg}"
        );
        for (id, count, colour) in [("calls", 78, colour(0)), ("errors", 2, colour(1))] {
            let want = format!(
                r#"data-shared-event-id="{id}" data-colour="{colour}" data-rate="counted" data-episode-count="{count}""#
            );
            assert!(svg.contains(&want), "{want} in {svg}");
        }
        // The call line's 78 lies at its minute 50, the chart's minute 40, within its span.
        let steps = steps_of(&chart, &lines[0]);
        assert!(steps.contains(&(from.plus(40).0, 78.0)), "{steps:?}");
        // Counts taken as starting at the chart's `from` would miss the burst.
        let lines = [
            line("calls", false, &calls, from, from.plus(40)),
            lines[1].clone(),
        ];
        let chart = ActivityChart {
            lines: &lines,
            ..chart
        };
        assert_eq!(drawn_episode_count(&lines[0]), Some(0));
        assert!(activity_svg(&chart).contains(r#"data-rate="counted" data-episode-count="0""#));
    }

    #[test]
    fn a_line_beneath_an_equal_one_is_drawn_wider_so_both_show() {
        let from = Minute(28_000_000);
        let counts: Vec<u64> = (0..60).map(|m| u64::from(m == 40) * 20).collect();
        let other: Vec<u64> = (0..60).map(|m| u64::from(m == 41) * 20).collect();
        // (the second line's counts, segments of the first it lies over): the same spike (its
        // rise, top and fall), or a spike a minute later (only the first's fall is its rise).
        let cases: [(&[u64], usize); 2] = [(&counts, 3), (&other, 1)];
        for (second, halos) in cases {
            let lines = [
                line("first", false, &counts, from, from.plus(40)),
                line("second", false, second, from, from.plus(40)),
            ];
            let svg = activity_svg(&ActivityChart {
                id: "a",
                from,
                until: from.plus(60),
                lines: &lines,
            });
            let first = svg
                .find(r#"data-shared-event-id="first" data-colour"#)
                .unwrap();
            let drawn = &svg[first..svg[first..].find("</g>").unwrap() + first];
            assert_eq!(drawn.matches(r#"class="halo""#).count(), halos, "{drawn}");
            assert_eq!(
                drawn.matches(r#"stroke-width="4.5""#).count(),
                halos,
                "{drawn}"
            );
            let second = svg
                .find(r#"data-shared-event-id="second" data-colour"#)
                .unwrap();
            assert!(
                !svg[second..].contains("halo"),
                "the top line needs none: {svg}"
            );
        }
    }

    #[test]
    fn a_swapped_window_and_open_episodes_draw_without_panic() {
        let counts = [1u64, 2, 3];
        let mut l = line("x", false, &counts, Minute(100), Minute(101));
        l.episode.end = None;
        l.episode.rate = Rate::Averages {
            start_average: 3.0,
            start_minutes: 2,
            rest: None,
        };
        let lines = [l];
        let svg = activity_svg(&ActivityChart {
            id: "x",
            from: Minute(200),
            until: Minute(100),
            lines: &lines,
        });
        assert!(
            svg.contains(r#"data-rate="averages" data-episode-count="""#),
            "{svg}"
        );
        assert!(svg.contains(r#"data-end="""#), "{svg}");
    }
}
