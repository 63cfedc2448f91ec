//! The report's SVG charts, drawn with plotters (its SVG backend, nothing else):
//! - `episode_svg`: an API's per-minute rate around one episode, with the baseline average as a
//!   dashed line, the episode shaded, and Start and End marked, like CloudTrail's console graph;
//! - `timeline_svg`: Insights started per day, by type.
//!
//! (An activity's combined chart is `activity_chart`, on this module's time ticks and y axis.)
//!
//! plotters draws the axes, ticks, labels and the rate series. The parts a reader (or a test)
//! needs to find are added around its output as plain SVG with stable attributes, placed with
//! plotters' own coordinate mapping: the shaded window is a `rect.episode-window` with
//! `data-start`/`data-end` (ISO times, `data-end` empty while the episode is open), the baseline
//! is a `line.baseline` with `data-average`, the markers are `g.marker[data-marker=start|end]`,
//! and the chart itself carries `data-shared-event-id`. The plotters drawing is nested inside as
//! its own `<svg>` with a transparent background, so the shaded window lies beneath the series.
//! (A dashed line drawn by plotters is one element per dash; one styled `<line>` is 50 times
//! smaller, which matters in a page of thousands of charts.)

use crate::model::Minute;
use chrono::{Datelike, NaiveDate};
use plotters::prelude::*;
use std::fmt::Write as _;

/// Size of an episode chart, in SVG pixels (it scales with the page).
pub const EPISODE_SIZE: (u32, u32) = (680, 240);
/// Size of the timeline.
pub const TIMELINE_SIZE: (u32, u32) = (680, 160);
/// An episode chart draws at most this many steps (12 hours by the minute); longer windows are
/// averaged into bins.
pub const MAX_STEPS: i64 = 720;

/// Text size in the charts' own units. The page shows a chart at most `MAX_CHART_PIXELS`
/// wide (page.css), so the text is 15 to 18 px on a wide screen and about 12 px at 600 px.
pub const FONT_SIZE: u32 = 15;

/// The shaded window is at least this wide, so a one-minute episode in hours of context shows.
pub(super) const MIN_WINDOW_PIXELS: i32 = 4;

const CALLS: RGBColor = RGBColor(37, 99, 235);
const ERRORS: RGBColor = RGBColor(220, 38, 38);
const BASELINE: RGBColor = RGBColor(55, 65, 81);
pub(super) const GRID: RGBColor = RGBColor(229, 231, 235);
pub(super) const AXIS: RGBColor = RGBColor(156, 163, 175);
pub(super) const LABEL: RGBColor = RGBColor(75, 85, 99);

/// What the chart knows about the rate.
#[derive(Debug, Clone, Copy)]
pub enum Rate<'a> {
    /// Per-minute counts from the logs, one per minute from the chart's `from`.
    Counted(&'a [u64]),
    /// Only the Insight records' averages: the Start's average over the minutes it covers
    /// (its `insightDuration`), and the average of the minutes after them up to the End
    /// (`None` when the Start covers the whole episode, or while open).
    Averages {
        start_average: f64,
        start_minutes: i64,
        rest: Option<f64>,
    },
}

/// One episode's chart.
#[derive(Debug, Clone, Copy)]
pub struct EpisodeChart<'a> {
    pub shared_event_id: &'a str,
    /// The charted minutes, `[from, until)`.
    pub from: Minute,
    pub until: Minute,
    pub start: Minute,
    /// The first minute after the episode; `None` while it is open.
    pub end: Option<Minute>,
    /// Per minute.
    pub baseline: f64,
    pub rate: Rate<'a>,
    /// Error-rate episodes are drawn in red, call-rate ones in blue.
    pub errors: bool,
}

/// Where the overlay goes, in SVG pixels.
struct Frame {
    top: i32,
    bottom: i32,
    left: i32,
    right: i32,
    baseline_y: i32,
    start_x: i32,
    end_x: i32,
    /// The y ticks: pixel row and label.
    y_ticks: Vec<(i32, String)>,
}

fn drawing_failed<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e:?}")
}

/// The SVG of one episode's chart. A window whose ends are swapped or equal is drawn one minute
/// wide, and the Start and End are held inside the window, so no input makes plotters panic.
pub fn episode_svg(c: &EpisodeChart<'_>) -> anyhow::Result<String> {
    let until = c.until.max(Minute(c.from.0.saturating_add(1)));
    let c = &EpisodeChart {
        until,
        start: c.start.clamp(c.from, until),
        ..*c
    };
    let (width, height) = EPISODE_SIZE;
    let steps = steps(c);
    let top_value = steps
        .iter()
        .map(|(_, v)| *v)
        .fold(c.baseline, f64::max)
        .max(0.0);
    let y_axis = YAxis::new(top_value * 1.1);
    let ticks = time_ticks(c.from, c.until);
    let color = if c.errors { ERRORS } else { CALLS };
    let mut inner = String::new();
    let frame = {
        let root = SVGBackend::with_string(&mut inner, (width, height)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin_top(26)
            .margin_right(14)
            .margin_left(4)
            .margin_bottom(2)
            .x_label_area_size(26)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (c.from.0..c.until.0).with_key_points(ticks.clone()),
                0f64..y_axis.max,
            )
            .map_err(drawing_failed)?;
        let span = c.until.0 - c.from.0;
        let x_label = |m: &i64| time_label(Minute(*m), span);
        let what = if c.errors { "errors" } else { "calls" };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(AXIS)
            .x_label_formatter(&x_label)
            // The y ticks are drawn around plotters' output (`wrap_episode`): its own float
            // ticks cannot be chosen, and on tiny scales they repeated labels.
            .y_labels(0)
            .y_desc(format!("{what} per minute"))
            .axis_desc_style(("sans-serif", FONT_SIZE).into_font().color(&LABEL))
            .label_style(("sans-serif", FONT_SIZE).into_font().color(&LABEL))
            .draw()
            .map_err(drawing_failed)?;
        chart
            .draw_series(
                AreaSeries::new(steps.iter().copied(), 0.0, color.mix(0.22))
                    .border_style(color.stroke_width(1)),
            )
            .map_err(drawing_failed)?;
        let (x_pixels, y_pixels) = chart.plotting_area().get_pixel_range();
        let x = |m: Minute| chart.backend_coord(&(m.0, 0.0)).0;
        let frame = Frame {
            top: y_pixels.start,
            bottom: y_pixels.end,
            left: x_pixels.start,
            right: x_pixels.end,
            baseline_y: chart.backend_coord(&(c.from.0, c.baseline)).1,
            start_x: x(c.start),
            end_x: x(c.end.unwrap_or(c.until).clamp(c.start, c.until)),
            y_ticks: y_axis
                .ticks
                .iter()
                .map(|t| (chart.backend_coord(&(c.from.0, *t)).1, y_axis.label(*t)))
                .collect(),
        };
        root.present().map_err(drawing_failed)?;
        frame
    };
    Ok(wrap_episode(c, &frame, &inner))
}

/// The outer SVG: the shaded window beneath plotters' drawing, the markers above it.
fn wrap_episode(c: &EpisodeChart<'_>, f: &Frame, inner: &str) -> String {
    let (width, height) = EPISODE_SIZE;
    let start = c.start.to_rfc3339();
    let end = c.end.map(Minute::to_rfc3339).unwrap_or_default();
    let shade_width = (f.end_x - f.start_x).max(MIN_WINDOW_PIXELS);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" data-shared-event-id="{id}" data-from="{from}" data-until="{until}">"#,
        id = escape(c.shared_event_id),
        from = c.from.to_rfc3339(),
        until = c.until.to_rfc3339(),
    );
    let window_title = match c.end {
        Some(e) => format!("Insight {} to {} UTC", clock(c.start), clock(e)),
        None => format!("Insight from {} UTC, still open", clock(c.start)),
    };
    let _ = write!(
        svg,
        r#"<rect class="episode-window" x="{x}" y="{y}" width="{shade_width}" height="{h}" data-start="{start}" data-end="{end}"{open}><title>{window_title}</title></rect>"#,
        x = f.start_x,
        y = f.top,
        h = f.bottom - f.top,
        open = if c.end.is_none() {
            r#" data-open="true""#
        } else {
            ""
        },
    );
    for (y, label) in &f.y_ticks {
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{left}" y1="{y}" x2="{right}" y2="{y}" stroke="{grid}"/><text class="y-tick" x="{tx}" y="{ty}" text-anchor="end" font-family="sans-serif" font-size="{FONT_SIZE}" fill="{fill}">{label}</text>"#,
            left = f.left,
            right = f.right,
            tx = f.left - 6,
            ty = y + 5,
            grid = hex(GRID),
            fill = hex(LABEL),
        );
    }
    svg.push_str(inner.trim_end());
    let _ = write!(
        svg,
        r#"<line class="baseline" x1="{left}" y1="{y}" x2="{right}" y2="{y}" data-average="{average}" stroke="{color}" stroke-width="2" stroke-dasharray="6 4"><title>baseline average: {average} per minute</title></line>"#,
        left = f.left,
        right = f.right,
        y = f.baseline_y,
        average = c.baseline,
        color = hex(BASELINE),
    );
    let label_y = f.top - 8;
    let _ = write!(
        svg,
        r#"<g class="marker start" data-marker="start" data-time="{start}"><line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}"/><text x="{tx}" y="{label_y}" text-anchor="end">Start {clock}</text></g>"#,
        x = f.start_x,
        tx = f.start_x - 3,
        top = f.top,
        bottom = f.bottom,
        clock = clock(c.start),
    );
    match c.end {
        Some(e) => {
            let x = f.start_x + shade_width;
            let _ = write!(
                svg,
                r#"<g class="marker end" data-marker="end" data-time="{end}"><line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}"/><text x="{tx}" y="{label_y}">End {clock}</text></g>"#,
                tx = x + 3,
                top = f.top,
                bottom = f.bottom,
                clock = clock(e),
            );
        }
        None => {
            let _ = write!(
                svg,
                r#"<g class="marker open" data-marker="open"><text x="{tx}" y="{label_y}">still open</text></g>"#,
                tx = f.start_x + 3,
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The rate as steps, with runs of equal values drawn as one step.
pub(super) fn steps(c: &EpisodeChart<'_>) -> Vec<(i64, f64)> {
    let mut out: Vec<(i64, f64)> = Vec::new();
    for (x, v) in raw_steps(c) {
        let n = out.len();
        if n >= 2 && out[n - 1].1 == v && out[n - 2].1 == v {
            out[n - 1].0 = x;
        } else {
            out.push((x, v));
        }
    }
    out
}

/// The rate as steps: (minute, per-minute value) pairs, two per bin.
fn raw_steps(c: &EpisodeChart<'_>) -> Vec<(i64, f64)> {
    let (from, until) = (c.from.0, c.until.0);
    match c.rate {
        Rate::Counted(counts) => {
            let span = until - from;
            let bin = ((span + MAX_STEPS - 1) / MAX_STEPS).max(1);
            let mut out = Vec::new();
            let mut x0 = from;
            while x0 < until {
                let x1 = (x0 + bin).min(until);
                let lo = (x0 - from) as usize;
                let hi = ((x1 - from) as usize).min(counts.len());
                let sum: u64 = counts.get(lo..hi).map_or(0, |s| s.iter().sum());
                let value = sum as f64 / (x1 - x0) as f64;
                out.extend([(x0, value), (x1, value)]);
                x0 = x1;
            }
            out
        }
        Rate::Averages {
            start_average,
            start_minutes,
            rest,
        } => {
            let start = c.start.0.clamp(from, until);
            let mut second = start.saturating_add(start_minutes.max(1)).min(until);
            if let Some(end) = c.end {
                second = second.min(end.0.max(start + 1));
            }
            let mut out = vec![
                (from, c.baseline),
                (start, c.baseline),
                (start, start_average),
                (second, start_average),
            ];
            if let Some(end) = c.end {
                let end = end.0.clamp(second, until);
                if let Some(rest) = rest
                    && end > second
                {
                    out.extend([(second, rest), (end, rest)]);
                }
                out.extend([(end, c.baseline), (until, c.baseline)]);
            }
            out
        }
    }
}

/// Tick minutes aligned to UTC: at most 8 of them, on a round step.
pub(super) fn time_ticks(from: Minute, until: Minute) -> Vec<i64> {
    const STEPS: [i64; 13] = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 10080];
    let span = (until.0 - from.0).max(1);
    let step = STEPS
        .into_iter()
        .find(|s| span / s <= 8)
        .unwrap_or(span / 8 + 1);
    let first = from.0.div_euclid(step) * step;
    (0..)
        .map(|i| first + i * step)
        .skip_while(|m| *m < from.0)
        .take_while(|m| *m <= until.0)
        .collect()
}

/// `13:25`, or the date at midnight when the chart spans more than a day's hours.
pub(super) fn time_label(m: Minute, span: i64) -> String {
    let t = m.to_datetime();
    if m.0.rem_euclid(1440) == 0 && span > 60 {
        format!("{} {}", month(t.month()), t.day())
    } else {
        t.format("%H:%M").to_string()
    }
}

pub(super) fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

pub(super) fn clock(m: Minute) -> String {
    m.to_datetime().format("%H:%M").to_string()
}

fn month(m: u32) -> &'static str {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    NAMES[(m as usize + 11) % 12]
}

/// A y axis from 0 with 3 to 5 round ticks (1, 2, 2.5 or 5 times a power of ten apart),
/// labelled with as many decimals as the step needs, so no two labels read the same.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct YAxis {
    pub(super) max: f64,
    pub(super) ticks: Vec<f64>,
    decimals: usize,
}

impl YAxis {
    /// The axis for values up to `top` (at least 1 when nothing is above 0).
    pub(super) fn new(top: f64) -> YAxis {
        let top = if top.is_finite() && top > 0.0 {
            top
        } else {
            1.0
        };
        let step = nice_step(top / 4.0);
        let n = (top / step - 1e-9).ceil().max(1.0) as usize;
        let max = step * n as f64;
        let exponent = -step.log10().floor();
        let mut decimals = exponent.max(0.0) as usize;
        // 2.5 × 10^k needs one more decimal than 10^k below 10 (2.5, 0.25), none from 25 up.
        let mantissa = step / 10f64.powf(-exponent);
        if (mantissa - 2.5).abs() < 1e-9 && step < 10.0 {
            decimals += 1;
        }
        YAxis {
            max,
            ticks: (0..=n).map(|i| step * i as f64).collect(),
            decimals,
        }
    }

    pub(super) fn label(&self, v: f64) -> String {
        format!("{v:.*}", self.decimals)
    }
}

/// The round step (1, 2, 2.5 or 5 times a power of ten) at or above `v`.
fn nice_step(v: f64) -> f64 {
    if !v.is_finite() || v <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|x| *x >= v * 0.9999)
        .unwrap_or(10.0 * magnitude)
}

/// Insights started on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineDay {
    pub day: NaiveDate,
    pub call_rate: u64,
    pub error_rate: u64,
}

/// The SVG of the timeline: a bar per day, call-rate Insights below error-rate ones. The x axis
/// counts tenths of a day (plotters formats integer axes with custom ticks; floats it cannot).
pub fn timeline_svg(days: &[TimelineDay]) -> anyhow::Result<String> {
    let (width, height) = TIMELINE_SIZE;
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return Ok(String::new());
    };
    let tenths = |d: NaiveDate| i64::from(d.num_days_from_ce()) * 10;
    let span = (last.day - first.day).num_days() + 1;
    let step = [1, 2, 7, 14, 30, 91, 182, 365]
        .into_iter()
        .find(|s| span / s <= 10)
        .unwrap_or(span / 10 + 1);
    let x_ticks: Vec<i64> = (0..span)
        .step_by(step as usize)
        .map(|i| tenths(first.day) + i * 10)
        .collect();
    let top = days
        .iter()
        .map(|d| d.call_rate + d.error_rate)
        .max()
        .unwrap_or(1)
        .max(1);
    let y_step = top.div_ceil(4);
    let y_ticks: Vec<i64> = (0..=top.div_ceil(y_step))
        .map(|i| (i * y_step) as i64)
        .collect();
    let y_max = (top.div_ceil(y_step) * y_step + y_step.div_ceil(4)) as i64;
    let mut inner = String::new();
    let mut hits = String::new();
    {
        let root = SVGBackend::with_string(&mut inner, (width, height)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin(6)
            .margin_right(14)
            .x_label_area_size(24)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (tenths(first.day) - 7..tenths(last.day) + 7).with_key_points(x_ticks),
                (0..y_max).with_key_points(y_ticks),
            )
            .map_err(drawing_failed)?;
        let day_label = |x: &i64| {
            let day =
                NaiveDate::from_num_days_from_ce_opt((x.div_euclid(10)) as i32).unwrap_or_default();
            format!("{} {}", month(day.month()), day.day())
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(AXIS)
            .x_label_formatter(&day_label)
            .y_desc("Insights")
            .axis_desc_style(("sans-serif", FONT_SIZE).into_font().color(&LABEL))
            .label_style(("sans-serif", FONT_SIZE).into_font().color(&LABEL))
            .draw()
            .map_err(drawing_failed)?;
        let bar = |d: &TimelineDay, lo: u64, hi: u64, color: RGBColor| {
            let x = tenths(d.day);
            Rectangle::new([(x - 3, lo as i64), (x + 3, hi as i64)], color.filled())
        };
        let calls = days.iter().map(|d| bar(d, 0, d.call_rate, CALLS));
        chart.draw_series(calls).map_err(drawing_failed)?;
        let errors = days
            .iter()
            .map(|d| bar(d, d.call_rate, d.call_rate + d.error_rate, ERRORS));
        chart.draw_series(errors).map_err(drawing_failed)?;
        let (_, y_pixels) = chart.plotting_area().get_pixel_range();
        for d in days {
            let x = tenths(d.day);
            let (x0, x1) = (
                chart.backend_coord(&(x - 5, 0)).0,
                chart.backend_coord(&(x + 5, 0)).0,
            );
            let _ = write!(
                hits,
                r#"<rect class="day" data-day="{day}" x="{x0}" y="{y}" width="{w}" height="{h}"><title>{day}: {calls} call-rate, {errors} error-rate Insights</title></rect>"#,
                day = d.day,
                y = y_pixels.start,
                w = (x1 - x0).max(2),
                h = y_pixels.end - y_pixels.start,
                calls = d.call_rate,
                errors = d.error_rate,
            );
        }
        root.present().map_err(drawing_failed)?;
    }
    Ok(format!(
        r#"<svg class="timeline" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">{}{hits}</svg>"#,
        inner.trim_end()
    ))
}

/// `&`, `<`, `>`, `"` and `'` escaped, for text and attribute values alike, in
/// SVG and HTML (the page embeds the charts; this module is below `html`, so it owns this).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ticks_are_round_and_few() {
        let cases = [
            // (from, until) minutes after midnight -> first tick, step
            ((13 * 60 + 25 - 180, 13 * 60 + 26 + 180), (11 * 60, 60)),
            ((0, 30), (0, 5)),
            ((90, 90 + 3 * 1440), (720, 720)),
        ];
        for ((from, until), (first, step)) in cases {
            let ticks = time_ticks(Minute(from), Minute(until));
            assert!(ticks.len() <= 9, "{from}..{until}: {ticks:?}");
            assert_eq!(ticks[0], first, "{from}..{until}: {ticks:?}");
            assert_eq!(ticks[1] - ticks[0], step, "{from}..{until}: {ticks:?}");
        }
    }

    #[test]
    fn long_windows_are_averaged_into_bins() {
        let counts = vec![2u64; 1440];
        let c = EpisodeChart {
            shared_event_id: "x",
            from: Minute(0),
            until: Minute(1440),
            start: Minute(400),
            end: Some(Minute(410)),
            baseline: 1.0,
            rate: Rate::Counted(&counts),
            errors: false,
        };
        let s = raw_steps(&c);
        assert_eq!(s.len(), 2 * 720, "two points per 2-minute bin");
        assert!(s.iter().all(|(_, v)| *v == 2.0));
        assert_eq!(
            steps(&c),
            vec![(0, 2.0), (1440, 2.0)],
            "one step for a flat rate"
        );
    }

    #[test]
    fn the_episode_window_is_marked_for_readers_and_tests() {
        let counts = vec![0u64; 361];
        let start = Minute(1_000_000);
        let c = EpisodeChart {
            shared_event_id: "7fed0223",
            from: start.plus(-180),
            until: start.plus(181),
            start,
            end: Some(start.plus(1)),
            baseline: 0.002,
            rate: Rate::Counted(&counts),
            errors: false,
        };
        let svg = episode_svg(&c).unwrap();
        assert!(svg.starts_with(r#"<svg class="chart""#), "{svg}");
        assert!(svg.contains(r#"data-shared-event-id="7fed0223""#));
        let window = format!(
            r#"data-start="{}" data-end="{}""#,
            start.to_rfc3339(),
            start.plus(1).to_rfc3339()
        );
        assert!(svg.contains(&window), "{svg}");
        assert!(svg.contains(r#"data-marker="start""#) && svg.contains(r#"data-marker="end""#));
        assert!(
            svg.contains(r#"<line class="baseline""#) && svg.contains(r#"data-average="0.002""#)
        );
        assert!(
            svg.ends_with("</svg></svg>") || svg.ends_with("</g></svg>"),
            "{svg}"
        );
        let open = EpisodeChart { end: None, ..c };
        let svg = episode_svg(&open).unwrap();
        assert!(svg.contains(r#"data-end="" data-open="true""#), "{svg}");
    }

    #[test]
    fn y_ticks_are_round_and_never_read_the_same() {
        // top -> (axis max, tick labels)
        let cases: [(f64, f64, &[&str]); 8] = [
            (6.9, 8.0, &["0", "2", "4", "6", "8"]),
            (0.0023, 0.003, &["0.000", "0.001", "0.002", "0.003"]),
            (0.0, 1.0, &["0.00", "0.25", "0.50", "0.75", "1.00"]),
            (29.0 * 1.1, 40.0, &["0", "10", "20", "30", "40"]),
            (0.0015, 0.0015, &["0.0000", "0.0005", "0.0010", "0.0015"]),
            (67.0, 80.0, &["0", "20", "40", "60", "80"]),
            (78.0 * 1.1, 100.0, &["0", "25", "50", "75", "100"]),
            (8.8, 10.0, &["0.0", "2.5", "5.0", "7.5", "10.0"]),
        ];
        for (top, max, labels) in cases {
            let axis = YAxis::new(top);
            assert!((axis.max - max).abs() < 1e-12, "{top}: {axis:?}");
            let shown: Vec<String> = axis.ticks.iter().map(|t| axis.label(*t)).collect();
            assert_eq!(shown, labels, "{top}: {axis:?}");
            let distinct: std::collections::BTreeSet<&String> = shown.iter().collect();
            assert_eq!(
                distinct.len(),
                shown.len(),
                "{top}: repeated labels {shown:?}"
            );
        }
    }
}
