//! The report page: one HTML file with its CSS, SVG charts and a little JavaScript inline, and
//! a Content-Security-Policy that forbids every network fetch, so it works from `file://`,
//! offline, and shows the same thing anywhere.
//!
//! Layout: the counts, then the activities (`section.activity`), most severe first, each with
//! (when it has several Insights) its combined chart (`figure.activity-chart-box`) and its
//! `article.episode` per Insight, then a timeline of Insights per day and breakdowns by
//! account, region, API and type, whose rows filter the activities. Each article carries its facts as data attributes (`data-shared-event-id`,
//! `data-account`, `data-region`, `data-type`, `data-api`, `data-start`, `data-end`,
//! `data-change`), which the script (`page.js`) uses to filter, sort and paginate. Only the first
//! page is visible as written (the rest carry `hidden`), so a browser lays out one page even
//! when the file holds thousands of charts. When the script has run without an exception it
//! sets `data-report-ready="true"` on `<body>`; an exception sets `data-report-error`.

use super::Episode;
use super::activity::{self, Activity};
use super::activity_chart::{self, ActivityChart, Line};
use super::chart::{self, EpisodeChart, Rate, TimelineDay, escape};
use super::coverage::Coverage;
use crate::model::insight::Attribution;
use crate::model::{CallRateScope, EventCategory, Minute};
use std::collections::BTreeMap;
use std::fmt::Write as _;

const CSS: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");
/// Everything inline, nothing fetched.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";
/// The two Insight types.
const CALL_RATE: &str = "ApiCallRateInsight";
const ERROR_RATE: &str = "ApiErrorRateInsight";

/// What the page is made of.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    pub insights_dir: &'a str,
    pub source: Option<String>,
    /// Newest first.
    pub episodes: &'a [Episode],
    /// Per-minute counts of each episode (same order) over its `super::count_windows` window
    /// (its chart window, widened to its activity's), when counted from logs.
    pub counts: Option<&'a [Vec<u64>]>,
    pub context_minutes: i64,
    pub page_size: usize,
    /// What the runs could not see (`coverage`).
    pub coverage: &'a Coverage,
    /// Run records and bad-objects reports that could not be used, each named.
    pub coverage_skipped: &'a [crate::model::problem::SkippedObject],
}

/// The whole page.
pub fn render(page: &Page<'_>) -> anyhow::Result<String> {
    let mut h = String::with_capacity(64 * 1024 + page.episodes.len() * 24 * 1024);
    let n = page.episodes.len();
    let _ = write!(
        h,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="trailsight {version}">
<title>trailsight: {n} CloudTrail {insights}</title>
<style>{CSS}</style>
</head>
<body data-page-size="{page_size}">
<main>
<header class="top">
<h1>CloudTrail Insights</h1>
<p class="sub">{n} {episodes} found in <code>{dir}</code>. {rates} All times are UTC.</p>
</header>
"#,
        version = env!("CARGO_PKG_VERSION"),
        insights = plural(n, "Insight", "Insights"),
        episodes = plural(n, "Insight episode", "Insight episodes"),
        page_size = page.page_size,
        dir = escape(page.insights_dir),
        rates = match &page.source {
            Some(source) => format!(
                "Rates are counted per minute from the logs in <code>{}</code>.",
                escape(source)
            ),
            None => "Charts show the averages the Insight records hold; run <code>trailsight report --source LOGS</code> to chart the per-minute rate counted from the logs.".to_owned(),
        },
    );
    if page.coverage.has_gaps() {
        let c = page.coverage;
        let _ = write!(
            h,
            r##"<p class="note" id="coverage-note">Some logs were not analysed: {} day(s) without logs, {} delivery gap(s), {} partition(s) withheld, {} object(s) not read. Insights may be missing there; see <a href="#coverage">Coverage</a>.</p>"##,
            c.days_without_logs.len(),
            c.delivery_gaps.len(),
            c.withheld.len(),
            c.skipped_total(),
        );
    }
    summary(&mut h, page);
    episodes(&mut h, page)?;
    coverage(&mut h, page);
    overview(&mut h, page)?;
    let _ = write!(
        h,
        "</main>\n<script>\n{SCRIPT}</script>\n</body>\n</html>\n"
    );
    Ok(h)
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// The counts (or a page with no Insight says so).
fn summary(h: &mut String, page: &Page<'_>) {
    let eps = page.episodes;
    if eps.is_empty() {
        let why = match (page.coverage.runs, page.coverage.days) {
            (runs @ 1.., Some((first, last))) => format!(
                "{runs} {} analysed {first} to {last} and found nothing unusual.",
                plural(runs, "run", "runs")
            ),
            (1.., None) => "the runs recorded here analysed no day.".to_owned(),
            _ => "nothing was unusual in the analysed days, or the directory is not the output of a run.".to_owned(),
        };
        let _ = write!(
            h,
            r#"<section class="panel" id="summary"><p class="empty">No Insights were found: {why}</p></section>"#
        );
        return;
    }
    let count = |f: &dyn Fn(&Episode) -> bool| eps.iter().filter(|e| f(e)).count();
    let distinct = |f: &dyn Fn(&Episode) -> &str| {
        eps.iter()
            .map(f)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let tiles = [
        ("episodes", eps.len()),
        ("API call rate", count(&|e| !e.is_error_rate())),
        ("API error rate", count(&|e| e.is_error_rate())),
        ("still open", count(&|e| e.end.is_none())),
        ("accounts", distinct(&|e| &e.start.recipient_account_id)),
        ("regions", distinct(&|e| &e.start.aws_region)),
    ];
    h.push_str(r#"<section id="summary"><div class="tiles">"#);
    for (name, value) in tiles {
        let _ = write!(
            h,
            r#"<div class="tile"><b>{value}</b><span>{name}</span></div>"#
        );
    }
    h.push_str("</div></section>\n");
}

/// At most this many objects not read are listed per day (the bad-objects report has them all).
const MAX_SKIPPED_LISTED: usize = 20;

/// What the runs could not see: days without logs, delivery gaps, withheld partitions and
/// objects not read, from the runs' records and the bad-objects reports.
fn coverage(h: &mut String, page: &Page<'_>) {
    let c = page.coverage;
    if c.runs == 0 && c.skipped.is_empty() && page.coverage_skipped.is_empty() {
        return;
    }
    h.push_str(r#"<section class="panel" id="coverage"><h2>Coverage</h2>"#);
    if let Some(r) = &c.latest {
        let _ = write!(
            h,
            r#"<p class="help">{runs} run {records} under <code>_trailsight/runs/</code>{days}. The latest: <code>{command}</code> started <time datetime="{iso}">{when}</time> UTC, exit code {code}{error}.</p>"#,
            runs = c.runs,
            records = plural(c.runs, "record", "records"),
            days = match c.days {
                Some((a, b)) => format!(", analysing {a} to {b}"),
                None => String::new(),
            },
            command = escape(&r.command),
            iso = r.started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            when = r.started.format("%Y-%m-%d %H:%M"),
            code = r.exit_code,
            error = match &r.error {
                Some(e) => format!(
                    r#" (<span class="error-text">{}</span>)"#,
                    shortened(e, e, 300)
                ),
                None => String::new(),
            },
        );
    }
    if !c.has_gaps() {
        h.push_str(r#"<p class="help" data-coverage="complete">No day without logs, no delivery gap, no partition withheld and no object skipped.</p>"#);
    }
    if !c.days_without_logs.is_empty() {
        let days: Vec<String> = c
            .days_without_logs
            .iter()
            .map(ToString::to_string)
            .collect();
        let _ = write!(
            h,
            r#"<h3>Days without logs</h3><p data-coverage="days-without-logs">No partition delivered any log object on {}: nothing could be found on these days.</p>"#,
            days.join(", ")
        );
    }
    if !c.delivery_gaps.is_empty() {
        h.push_str(r#"<h3>Delivery gaps</h3><p class="help">Partitions that delivered far fewer log objects than on their recent days: Insights may be missing.</p><div class="table-box"><table data-coverage="delivery-gaps"><thead><tr><th>day</th><th>account</th><th>region</th><th class="num">objects expected</th><th class="num">seen</th></tr></thead><tbody>"#);
        for g in &c.delivery_gaps {
            let _ = write!(
                h,
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
                g.day,
                escape(&g.account),
                escape(&g.region),
                g.expected,
                g.seen
            );
        }
        h.push_str("</tbody></table></div>");
    }
    if !c.withheld.is_empty() {
        let _ = write!(
            h,
            r#"<h3>Partitions withheld</h3><p data-coverage="withheld">Some of their logs could not be read by the latest run{by}, so their Insights were not written; a later run writes them once it can read them: {list}.</p>"#,
            by = c
                .withheld_by
                .map(|t| format!(" ({} UTC)", t.format("%Y-%m-%d %H:%M")))
                .unwrap_or_default(),
            list = c
                .withheld
                .iter()
                .map(|p| format!("<code>{}</code>", escape(p)))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if !c.skipped.is_empty() {
        let _ = write!(
            h,
            r#"<h3>Objects not read</h3><p class="help">{n} log {objects} skipped or quarantined (from <code>_trailsight/bad-objects/</code>, which lists them all with details); the Insights of their partitions were written without them.</p><div class="table-box"><table data-coverage="skipped"><thead><tr><th>day</th><th>object</th><th>reason</th></tr></thead><tbody>"#,
            n = c.skipped_total(),
            objects = plural(c.skipped_total(), "object was", "objects were"),
        );
        for (day, objects) in &c.skipped {
            for (object, reason) in objects.iter().take(MAX_SKIPPED_LISTED) {
                let _ = write!(
                    h,
                    r#"<tr><td>{day}</td><td class="value">{}</td><td>{}</td></tr>"#,
                    shortened(object, object, MAX_VALUE_CHARS),
                    escape(reason)
                );
            }
            if objects.len() > MAX_SKIPPED_LISTED {
                let _ = write!(
                    h,
                    r#"<tr><td>{day}</td><td colspan="2">and {} more</td></tr>"#,
                    objects.len() - MAX_SKIPPED_LISTED
                );
            }
        }
        h.push_str("</tbody></table></div>");
    }
    if c.bad_record_objects + c.ignored > 0 {
        let _ = write!(
            h,
            r#"<p class="help">Also: {} log object(s) held records that could not be used, and {} file(s) in log folders were not log files (see the bad-objects reports).</p>"#,
            c.bad_record_objects, c.ignored
        );
    }
    if !page.coverage_skipped.is_empty() {
        h.push_str(r#"<p class="help" data-coverage="unreadable">Not used (not a run record or bad-objects report trailsight wrote):</p><ul>"#);
        for s in page.coverage_skipped {
            let _ = write!(
                h,
                "<li><code>{}</code>: {}</li>",
                shortened(&s.object, &s.object, MAX_VALUE_CHARS),
                shortened(&s.detail, &s.detail, 200)
            );
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>\n");
}

/// After the activities: the timeline of Insights per day and the breakdown tables, whose rows
/// filter the activities above.
fn overview(h: &mut String, page: &Page<'_>) -> anyhow::Result<()> {
    let eps = page.episodes;
    if eps.is_empty() {
        return Ok(());
    }
    h.push_str(r#"<section id="overview">"#);
    let mut days: BTreeMap<chrono::NaiveDate, TimelineDay> = BTreeMap::new();
    for e in eps {
        let day = e.start_minute.day();
        let d = days.entry(day).or_insert(TimelineDay {
            day,
            call_rate: 0,
            error_rate: 0,
        });
        if e.is_error_rate() {
            d.error_rate += 1;
        } else {
            d.call_rate += 1;
        }
    }
    let days: Vec<TimelineDay> = days.into_values().collect();
    let _ = writeln!(
        h,
        r#"<section class="panel"><h2>Insights started per day</h2><figure class="timeline-box">{}<figcaption class="legend"><span><i class="swatch call"></i>API call rate</span><span><i class="swatch error"></i>API error rate</span><span>Click a day to list its Insights.</span></figcaption></figure></section>"#,
        chart::timeline_svg(&days)?
    );

    h.push_str(r#"<section class="panel"><h2>Breakdown</h2><p class="help">Number of Insights (not of calls) of each type per account, region, API and type. Click a row to list them.</p><div class="breakdown">"#);
    breakdown(h, "Account", "account", eps, |e| {
        e.start.recipient_account_id.clone()
    });
    breakdown(h, "Region", "region", eps, |e| e.start.aws_region.clone());
    breakdown(h, "API", "api", eps, api);
    breakdown(h, "Type", "type", eps, |e| {
        e.start.insight_details.insight_type.clone()
    });
    h.push_str("</div></section></section>\n");
    Ok(())
}

/// `ec2.amazonaws.com RunInstances`
fn api(e: &Episode) -> String {
    let d = &e.start.insight_details;
    format!("{} {}", d.event_source, d.event_name)
}

/// One breakdown table; a row filters the list by its value.
fn breakdown(
    h: &mut String,
    title: &str,
    filter: &str,
    eps: &[Episode],
    value: impl Fn(&Episode) -> String,
) {
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for e in eps {
        let c = counts.entry(value(e)).or_default();
        if e.is_error_rate() {
            c.1 += 1;
        } else {
            c.0 += 1;
        }
    }
    let mut rows: Vec<(String, (u64, u64))> = counts.into_iter().collect();
    rows.sort_by(|a, b| (b.1.0 + b.1.1).cmp(&(a.1.0 + a.1.1)).then(a.0.cmp(&b.0)));
    let _ = write!(
        h,
        r#"<div class="table-box {filter}"><table class="breakdown-table" data-breakdown="{filter}"><thead><tr><th>{title}</th><th class="num" title="API call-rate Insights (not calls)">call rate</th><th class="num" title="API error-rate Insights (not errors)">error rate</th></tr></thead><tbody>"#
    );
    for (name, (calls, errors)) in rows {
        let shown = match name.as_str() {
            CALL_RATE => "API call rate",
            ERROR_RATE => "API error rate",
            other => other,
        };
        let shown = match shown.split_once(' ') {
            Some((source, name)) if filter == "api" => format!(
                r#"{} <span class="api-source">{}</span>"#,
                escape(name),
                escape(source)
            ),
            _ => escape(shown),
        };
        let _ = write!(
            h,
            r#"<tr data-filter="{filter}" data-value="{value}" title="Show only these"><td>{shown}</td><td class="num">{calls}</td><td class="num">{errors}</td></tr>"#,
            value = escape(&name),
        );
    }
    h.push_str("</tbody></table></div>");
}

/// The filters, the pager and every episode.
fn episodes(h: &mut String, page: &Page<'_>) -> anyhow::Result<()> {
    let eps = page.episodes;
    if eps.is_empty() {
        return Ok(());
    }
    let options = |values: Vec<String>, label: &dyn Fn(&str) -> String| {
        let values: std::collections::BTreeSet<String> = values.into_iter().collect();
        let mut o = String::from(r#"<option value="">all</option>"#);
        for v in values {
            let _ = write!(
                o,
                r#"<option value="{}">{}</option>"#,
                escape(&v),
                escape(&label(&v))
            );
        }
        o
    };
    let same = |v: &str| v.to_owned();
    let type_name = |v: &str| match v {
        CALL_RATE => "API call rate".to_owned(),
        ERROR_RATE => "API error rate".to_owned(),
        other => other.to_owned(),
    };
    let _ = write!(
        h,
        r#"<section id="episodes">
<h2>Activities</h2>
<p class="help">Insights that tell one story are shown together as an activity: same account and region, minutes overlapping or at most {near} minutes apart, and the same API (a call rate and its error rate), the same caller on the same service, the AWS service acting after a caller's request on that service, or one caller's calls starting in the same minute. Most severe first (the severity adds up rarity, magnitude, a new API or caller and errors, as each activity's headline shows; the sort control also orders them by time); an activity's Insights oldest first.</p>
<p class="help">An activity of several Insights opens with one chart of all their rates per minute, each in its own colour with its baseline average dashed and its minutes shaded in that colour, {activity_window}; calls and errors in separate panels, and a panel whose peaks differ tenfold or more on a log scale (its title says so). Each Insight's own chart shows its API's rate per minute from {hours} before the Start to {hours} after the End. Dashed line: the baseline average (the 7 days before the Start). Shaded: the Insight, from Start to End.</p>
<div class="controls" role="search">
<label>Account<select id="f-account">{accounts}</select></label>
<label>Region<select id="f-region">{regions}</select></label>
<label>Type<select id="f-type">{types}</select></label>
<label>Day<select id="f-day">{days}</select></label>
<label>API<input id="f-api" type="search" placeholder="name or service"></label>
<label>Sort<select id="sort"><option value="severity">most severe first</option><option value="newest">newest first</option><option value="oldest">oldest first</option><option value="change">largest change</option><option value="api">API</option><option value="account">account, region</option></select></label>
<span class="pager"><button id="prev" type="button">&larr; previous</button> <span id="page-info"></span> <button id="next" type="button">next &rarr;</button></span>
<span id="shown" aria-live="polite"></span>
</div>
<div id="episode-list">
"#,
        hours = hours(page.context_minutes),
        activity_window = activity_window_text(page.context_minutes),
        near = activity::NEAR_MINUTES,
        accounts = options(
            eps.iter()
                .map(|e| e.start.recipient_account_id.clone())
                .collect(),
            &same
        ),
        regions = options(
            eps.iter().map(|e| e.start.aws_region.clone()).collect(),
            &same
        ),
        types = options(
            eps.iter()
                .map(|e| e.start.insight_details.insight_type.clone())
                .collect(),
            &type_name
        ),
        days = options(
            eps.iter()
                .map(|e| e.start_minute.day().to_string())
                .collect(),
            &same
        ),
    );
    let windows = super::count_windows(eps, page.context_minutes);
    let activities = ranked(eps);
    if activities.len() > page.page_size {
        let _ = write!(
            h,
            "<noscript><p class=\"help\">JavaScript is off: the first {} activities are shown.</p></noscript>",
            page.page_size,
        );
    }
    for (n, (a, severity)) in activities.iter().enumerate() {
        let hidden = n >= page.page_size;
        activity_open(h, eps, a, severity, hidden);
        let counted = |i: usize| {
            let counts = page.counts.and_then(|c| c.get(i))?;
            Some((counts.as_slice(), windows[i].0))
        };
        if a.members.len() > 1 {
            combined(h, eps, a, page.context_minutes, &counted);
        }
        for &i in &a.members {
            let window = eps[i].chart_window(page.context_minutes);
            let counts = counted(i).map(|(c, from)| super::counts_within(c, from, window));
            episode(h, &eps[i], counts, page.context_minutes, hidden)?;
        }
        h.push_str("</section>\n");
    }
    h.push_str("</div></section>\n");
    Ok(())
}

/// The activities in the page's default order: most severe first (by the severity as written
/// in `data-severity`, two decimals, so the script's sort keeps this order), then newest first,
/// then by their first Insight's sharedEventID.
fn ranked(eps: &[Episode]) -> Vec<(Activity, activity::Severity)> {
    let mut ranked: Vec<(Activity, activity::Severity)> = activity::group(eps)
        .into_iter()
        .map(|a| {
            let s = activity::severity(eps, &a);
            (a, s)
        })
        .collect();
    let written = |s: &activity::Severity| format!("{:.2}", s.score).parse::<f64>().unwrap_or(0.0);
    let first = |a: &Activity| eps[a.members[0]].shared_event_id();
    ranked.sort_by(|(a, sa), (b, sb)| {
        written(sb)
            .total_cmp(&written(sa))
            .then_with(|| b.start.cmp(&a.start))
            .then_with(|| first(a).cmp(first(b)))
    });
    ranked
}

/// An activity's combined chart (`activity_chart`): one line per Insight, at most
/// `activity_chart::MAX_LINES`, with a legend naming each in its colour.
fn combined<'a>(
    h: &mut String,
    eps: &'a [Episode],
    a: &Activity,
    context_minutes: i64,
    counted: &dyn Fn(usize) -> Option<(&'a [u64], Minute)>,
) {
    let (from, until) = a.chart_window(context_minutes);
    let lines: Vec<Line<'_>> = a
        .members
        .iter()
        .take(activity_chart::MAX_LINES)
        .map(|&i| {
            let e = &eps[i];
            let (rate, counts_from) = rate_of(e, counted(i));
            Line {
                episode: EpisodeChart {
                    shared_event_id: e.shared_event_id(),
                    from: counts_from.unwrap_or(from),
                    until,
                    start: e.start_minute,
                    end: e.end_minute,
                    baseline: e.baseline_average(),
                    rate,
                    errors: e.is_error_rate(),
                },
                label: series_label(e, true),
                own: e.own_minutes(),
            }
        })
        .collect();
    let svg = activity_chart::activity_svg(&ActivityChart {
        id: eps[a.members[0]].shared_event_id(),
        from,
        until,
        lines: &lines,
    });
    let _ = write!(
        h,
        r#"<figure class="chart-box activity-chart-box" data-activity="{id}">{svg}<figcaption class="legend">"#,
        id = escape(eps[a.members[0]].shared_event_id()),
    );
    for (i, (l, &member)) in lines.iter().zip(&a.members).enumerate() {
        let shown = match l.episode.rate {
            Rate::Counted(_) => series_label(&eps[member], false),
            Rate::Averages { .. } => {
                format!("{} (Insight averages)", series_label(&eps[member], false))
            }
        };
        let _ = write!(
            h,
            r#"<span class="series-key" data-shared-event-id="{id}"><i class="swatch line" style="background:{colour}"></i>{name}</span>"#,
            id = escape(l.episode.shared_event_id),
            colour = activity_chart::colour(i),
            name = shortened(&l.label, &shown, MAX_LEGEND_CHARS),
        );
    }
    let more = a.members.len().saturating_sub(lines.len());
    let _ = write!(
        h,
        r#"<span><i class="swatch baseline"></i>each one's baseline average, in its colour</span><span><i class="swatch span"></i>each Insight's minutes, shaded in its colour</span>{more}</figcaption></figure>"#,
        more = if more > 0 {
            format!("<span>{more} more Insights are charted in their own cards below</span>")
        } else {
            String::new()
        },
    );
}

/// How much an activity's chart shows around it (`Activity::chart_window`).
fn activity_window_text(context_minutes: i64) -> String {
    let least = activity::MIN_CHART_CONTEXT_MINUTES;
    if context_minutes > least {
        format!(
            "from {least} minutes before the activity to {least} minutes after it (as long as the activity itself when it is longer, at most {})",
            hours(context_minutes)
        )
    } else {
        format!(
            "from {} before the activity to {} after it",
            hours(context_minutes),
            hours(context_minutes)
        )
    }
}

/// Legend labels longer than this are cut, the full name on hover.
const MAX_LEGEND_CHARS: usize = 56;

/// `DeleteParameter calls` or `DescribeParameters ThrottlingException errors`; `long` with the
/// service and per minute.
fn series_label(e: &Episode, long: bool) -> String {
    let d = &e.start.insight_details;
    let what = match &d.error_code {
        Some(code) => format!("{} {code} errors", d.event_name),
        None => format!("{} calls", d.event_name),
    };
    if long {
        format!("{} {what} per minute", d.event_source)
    } else {
        what
    }
}

/// What an episode's chart draws: the counts (from `counts_from`) when they hold calls in its
/// own minutes, else the Insight records' averages (a zero line where the Insight saw calls
/// would mislead).
fn rate_of<'a>(e: &Episode, counted: Option<(&'a [u64], Minute)>) -> (Rate<'a>, Option<Minute>) {
    match counted {
        Some((counts, from))
            if super::counts_within(counts, from, e.own_minutes())
                .iter()
                .any(|n| *n > 0) =>
        {
            (Rate::Counted(counts), Some(from))
        }
        _ => (averages(e), None),
    }
}

/// The Insight records' averages: the Start's over the minutes that confirmed it, then the rest
/// of the episode to its End.
fn averages(e: &Episode) -> Rate<'static> {
    let (start_stats, stats) = (e.start_statistics(), e.statistics());
    let start_minutes = start_stats.insight_duration.max(1);
    Rate::Averages {
        start_average: start_stats.insight.average,
        start_minutes,
        rest: e.end.as_ref().and_then(|_| {
            let n = e.duration_minutes();
            let k = start_minutes.min(n);
            (n > k).then(|| {
                ((stats.insight.average * n as f64 - start_stats.insight.average * k as f64)
                    / (n - k) as f64)
                    .max(0.0)
            })
        }),
    }
}

/// An activity's opening tag, with the facts the script filters and sorts by, and (for more than
/// one Insight) its headline: when, who, which APIs, how many Insights, and why together.
fn activity_open(
    h: &mut String,
    eps: &[Episode],
    a: &Activity,
    severity: &activity::Severity,
    hidden: bool,
) {
    let members: Vec<&Episode> = a.members.iter().map(|&i| &eps[i]).collect();
    let first = members[0];
    let max_change = members.iter().map(|e| change_of(e)).fold(0.0, f64::max);
    let _ = write!(
        h,
        r#"<section class="activity{single}" id="act-{id}" data-account="{account}" data-region="{region}" data-start="{start}" data-end="{end}" data-insights="{n}" data-change="{change}" data-severity="{score:.2}"{hidden}>"#,
        score = severity.score,
        single = if members.len() == 1 { " single" } else { "" },
        id = escape(first.shared_event_id()),
        account = escape(&first.start.recipient_account_id),
        region = escape(&first.start.aws_region),
        start = a.start.to_rfc3339(),
        end = a.end.to_rfc3339(),
        n = members.len(),
        change = change_attr(max_change),
        hidden = if hidden { " hidden" } else { "" },
    );
    if members.len() == 1 {
        return;
    }
    let mut callers: Vec<&str> = Vec::new();
    let mut apis: Vec<&str> = Vec::new();
    for e in &members {
        if let Some(c) = activity::top_caller(e)
            && !callers.contains(&c)
        {
            callers.push(c);
        }
        let name = e.start.insight_details.event_name.as_str();
        if !apis.contains(&name) {
            apis.push(name);
        }
    }
    let errors = members.iter().filter(|e| e.is_error_rate()).count();
    let who = if callers.is_empty() {
        "no attributed caller".to_owned()
    } else {
        callers
            .iter()
            .map(|c| shortened(c, short_caller(c), 60))
            .collect::<Vec<_>>()
            .join(", ")
    };
    const MAX_APIS: usize = 5;
    let mut what: Vec<String> = apis.iter().take(MAX_APIS).map(|a| escape(a)).collect();
    if apis.len() > MAX_APIS {
        what.push(format!("{} more", apis.len() - MAX_APIS));
    }
    let start = a.start.to_datetime();
    let end = a.end.to_datetime();
    let to = if end.date_naive() == start.date_naive() {
        end.format("%H:%M").to_string()
    } else {
        end.format("%Y-%m-%d %H:%M").to_string()
    };
    let reasons: Vec<&str> = a.reasons.iter().map(|r| r.text()).collect();
    let _ = write!(
        h,
        r#"<header class="activity-head"><h3>{what}</h3><p class="facts"><b>{n} Insights</b> ({calls} call rate, {errors} error rate) · <time datetime="{start_iso}">{from}</time> → <time datetime="{end_iso}">{to}</time> UTC · by {who} · account <b>{account}</b> · region <b>{region}</b> · largest change {change}</p><p class="why">Together because: {reasons}. Severity {score:.1}: {parts}.</p></header>"#,
        score = severity.score,
        parts = severity_parts(severity),
        what = what.join(", "),
        n = members.len(),
        calls = members.len() - errors,
        start_iso = a.start.to_rfc3339(),
        end_iso = a.end.to_rfc3339(),
        from = start.format("%Y-%m-%d %H:%M"),
        account = escape(&first.start.recipient_account_id),
        region = escape(&first.start.aws_region),
        change = if max_change >= f64::MAX {
            "new (none in the baseline)".to_owned()
        } else {
            format!("{}×", rate_text(max_change))
        },
        reasons = escape(&reasons.join("; ")),
    );
}

/// `rarity 4.1, magnitude 3.6, new API, new caller, 2 error-rate Insights`
fn severity_parts(s: &activity::Severity) -> String {
    let mut parts = vec![
        format!("rarity {:.1}", s.rarity),
        format!("magnitude {:.1}", s.magnitude),
    ];
    if s.new_api {
        parts.push("new API (+2)".into());
    }
    if s.new_caller {
        parts.push("new caller (+2)".into());
    }
    if s.errors > 0 {
        parts.push(format!(
            "{} error-rate {} (+{})",
            s.errors,
            plural(s.errors, "Insight", "Insights"),
            s.errors.min(3)
        ));
    }
    parts.join(", ")
}

/// The last part of an ARN (`user/bert`), or the caller as given.
fn short_caller(caller: &str) -> &str {
    match caller.rsplit_once(':') {
        Some((_, last)) if caller.starts_with("arn:") && !last.is_empty() => last,
        _ => caller,
    }
}

/// `shown` (escaped, cut to `max` characters) with the full `text` on hover when they differ.
fn shortened(text: &str, shown: &str, max: usize) -> String {
    let cut: String = if shown.chars().count() > max {
        let mut c: String = shown.chars().take(max - 1).collect();
        c.push('…');
        c
    } else {
        shown.to_owned()
    };
    if cut == text {
        escape(text)
    } else {
        format!(r#"<span title="{}">{}</span>"#, escape(text), escape(&cut))
    }
}

/// The Insight's average over the baseline's; `f64::MAX` when the baseline is 0.
fn change_of(e: &Episode) -> f64 {
    let baseline = e.baseline_average();
    let stats = e.statistics();
    if baseline > 0.0 {
        stats.insight.average / baseline
    } else {
        f64::MAX
    }
}

fn change_attr(change: f64) -> String {
    if change >= f64::MAX {
        "1e300".to_owned()
    } else {
        format!("{change:.4}")
    }
}

/// A probability for people: `< 1e-300` where it underflows.
fn probability_text(p: f64) -> String {
    if !p.is_finite() {
        "unknown".to_owned()
    } else if p < 1e-300 {
        "< 1e-300".to_owned()
    } else {
        format!("{p:.2e}")
    }
}

fn hours(minutes: i64) -> String {
    match minutes {
        60 => "an hour".to_owned(),
        m if m % 60 == 0 => format!("{} hours", m / 60),
        m => format!("{m} minutes"),
    }
}

/// One episode: what, where, when, why, the chart, the numbers and the attributions.
fn episode(
    h: &mut String,
    e: &Episode,
    counts: Option<&[u64]>,
    context_minutes: i64,
    hidden: bool,
) -> anyhow::Result<()> {
    let d = &e.start.insight_details;
    let id = escape(e.shared_event_id());
    let baseline = e.baseline_average();
    let change = change_of(e);
    // Counts from the logs are used only when they hold calls in the episode's own minutes:
    // a flat zero line where the Insight saw calls would mislead.
    let (from, until) = e.chart_window(context_minutes);
    let (own_from, own_until) = e.own_minutes();
    let in_window = |m: Minute| (m.0 - from.0).clamp(0, (until.0 - from.0).max(0)) as usize;
    let own_total = counts.map(|c| {
        let (lo, hi) = (in_window(own_from), in_window(own_until));
        c.get(lo..hi.max(lo)).map_or(0, |s| s.iter().sum::<u64>())
    });
    let counts = counts.filter(|_| own_total.unwrap_or(0) > 0);
    let first_count = counts.and_then(|c| c.get(in_window(e.start_minute)).copied());
    let start = e.start_minute.to_rfc3339();
    let end = e.end_minute.map(Minute::to_rfc3339).unwrap_or_default();
    let what = if e.is_error_rate() { "errors" } else { "calls" };
    let _ = write!(
        h,
        r#"<article class="episode" id="ep-{id}" data-shared-event-id="{id}" data-account="{account}" data-region="{region}" data-type="{kind}" data-api="{api}" data-event-name="{name}" data-day="{day}" data-start="{start}" data-end="{end}" data-change="{change}"{hidden}>
<header><h3><span class="api-name">{name}</span> <span class="api-source">{source}</span></h3>
<p class="facts">{badge}{data}{open} account <b>{account}</b> · region <b>{region}</b> · {when}</p></header>
"#,
        account = escape(&e.start.recipient_account_id),
        region = escape(&e.start.aws_region),
        kind = escape(&d.insight_type),
        api = escape(&api(e)),
        name = escape(&d.event_name),
        source = escape(&d.event_source),
        day = e.start_minute.day(),
        change = change_attr(change),
        badge = match &d.error_code {
            Some(code) => format!(
                r#"<span class="badge error">API error rate · {}</span>"#,
                escape(code)
            ),
            None => r#"<span class="badge call">API call rate</span>"#.to_owned(),
        },
        data = if e.category() == EventCategory::Data {
            r#" <span class="badge data">data events</span>"#
        } else {
            ""
        },
        open = if e.end.is_none() {
            r#" <span class="badge open">still open</span>"#
        } else {
            ""
        },
        when = when(e),
        hidden = if hidden { " hidden" } else { "" },
    );
    if let Some(x) = &e.explanation {
        let _ = write!(h, r#"<p class="reason">{}</p>"#, escape(&x.reason));
    }

    let rate = match counts {
        Some(counts) => Rate::Counted(counts),
        None => averages(e),
    };
    let svg = chart::episode_svg(&EpisodeChart {
        shared_event_id: e.shared_event_id(),
        from,
        until,
        start: e.start_minute,
        end: e.end_minute,
        baseline,
        rate,
        errors: e.is_error_rate(),
    })?;
    let kind = if e.is_error_rate() { "error" } else { "call" };
    let line = match counts {
        Some(_) => format!("{what} per minute, counted from the logs"),
        None => format!("{what} per minute, from the Insight records' averages"),
    };
    if own_total == Some(0) {
        let _ = write!(
            h,
            r#"<p class="note" data-no-calls="true">The logs read hold no {what} of this API in account {account}, region {region} during this Insight, so its chart shows the Insight records' averages instead of a zero line. Are the logs of these minutes under <code>--source</code>?</p>"#,
            account = escape(&e.start.recipient_account_id),
            region = escape(&e.start.aws_region),
        );
    }
    let _ = writeln!(
        h,
        r#"<figure class="chart-box" data-rate="{rate_kind}" data-episode-count="{episode_count}">{svg}<figcaption class="legend"><span><i class="swatch {kind}"></i>{line}</span><span><i class="swatch baseline"></i>baseline average: {baseline} {what}/min</span><span><i class="swatch window"></i>the Insight</span></figcaption></figure>"#,
        baseline = rate_text(baseline),
        rate_kind = if counts.is_some() {
            "counted"
        } else {
            "averages"
        },
        episode_count = own_total.map(|t| t.to_string()).unwrap_or_default(),
    );

    numbers(h, e, what, change, first_count);
    if !e.attributions().is_empty() {
        h.push_str(r#"<div class="attributions">"#);
        for a in e.attributions() {
            attribution(h, a);
        }
        h.push_str("</div>");
    }
    h.push_str("</article>\n");
    Ok(())
}

/// `2019-11-07 13:25 → 13:26 (1 minute)`
fn when(e: &Episode) -> String {
    let start = e.start_minute.to_datetime();
    let from = start.format("%Y-%m-%d %H:%M").to_string();
    match e.end_minute {
        Some(end) => {
            let end_t = end.to_datetime();
            let to = if end_t.date_naive() == start.date_naive() {
                end_t.format("%H:%M").to_string()
            } else {
                end_t.format("%Y-%m-%d %H:%M").to_string()
            };
            format!(
                r#"<time datetime="{}">{from}</time> → <time datetime="{}">{to}</time> UTC ({})"#,
                e.start_minute.to_rfc3339(),
                end.to_rfc3339(),
                duration(end.0 - e.start_minute.0)
            )
        }
        None => format!(
            r#"from <time datetime="{}">{from}</time> UTC, no End yet"#,
            e.start_minute.to_rfc3339()
        ),
    }
}

/// `1 minute`, `12 minutes`, `2 h 5 min`, `7 days`, `5 days 14 h 40 min`.
fn duration(minutes: i64) -> String {
    let (days, hours, mins) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days} {}", if days == 1 { "day" } else { "days" }));
    }
    if hours > 0 {
        parts.push(format!("{hours} h"));
    }
    if mins > 0 || parts.is_empty() {
        parts.push(match (mins, days + hours) {
            (1, 0) => "1 minute".to_owned(),
            (m, 0) => format!("{m} minutes"),
            (m, _) => format!("{m} min"),
        });
    }
    parts.join(" ")
}

/// The statistics of the Insight records and the detector's explanation, side by side.
fn numbers(h: &mut String, e: &Episode, what: &str, change: f64, first_count: Option<u64>) {
    let (start_stats, stats) = (e.start_statistics(), e.statistics());
    let baseline_span = match start_stats.baseline_duration {
        0 => "the baseline".to_owned(),
        minutes => duration(minutes),
    };
    let mut items: Vec<(String, String)> = vec![(
        "baseline average".into(),
        format!(
            "{} {what}/min over {baseline_span}",
            rate_text(start_stats.baseline.average),
        ),
    )];
    match first_count {
        Some(n) => items.push((
            "first minute".into(),
            format!("{n} {what}, counted from the logs"),
        )),
        None if start_stats.insight_duration <= 1 => items.push((
            "first minute".into(),
            format!("{} {what}", rate_text(start_stats.insight.average)),
        )),
        None => items.push((
            "Start's window".into(),
            format!(
                "{} {what}/min over {} (the minutes that confirmed the Start)",
                rate_text(start_stats.insight.average),
                duration(start_stats.insight_duration)
            ),
        )),
    }
    if e.end.is_some() {
        items.push((
            "Insight average".into(),
            format!(
                "{} {what}/min over {}",
                rate_text(stats.insight.average),
                duration(e.duration_minutes())
            ),
        ));
    }
    items.push((
        "change".into(),
        if change == f64::MAX {
            if e.is_error_rate() {
                "new: this error was not seen in the baseline".into()
            } else {
                "new: no call in the baseline".into()
            }
        } else {
            format!("{}× the baseline", rate_text(change))
        },
    ));
    // Which calls were counted, where it is not AWS's default (write management calls).
    let counted = match (e.category(), e.call_rate_scope()) {
        (EventCategory::Data, Some(_)) => Some("read and write data calls"),
        (EventCategory::Data, None) => Some("data calls with this error code"),
        (EventCategory::Management, Some(CallRateScope::All)) => {
            Some("every management call, read-only ones included (--call-rate-events all)")
        }
        (EventCategory::Management, _) => None,
    };
    if let Some(counted) = counted {
        items.push(("counted".into(), counted.into()));
    }
    if let Some(x) = &e.explanation {
        items.push((
            "opening window".into(),
            format!(
                "{} {what} in {} where {} were expected",
                x.observed_calls,
                duration(x.window_minutes),
                rate_text(x.expected_calls)
            ),
        ));
        items.push((
            "model".into(),
            format!(
                "{}, tail probability {}",
                x.distribution,
                probability_text(x.tail_probability)
            ),
        ));
    }
    h.push_str(r#"<dl class="numbers">"#);
    for (name, value) in items {
        let _ = write!(
            h,
            "<div><dt>{}</dt><dd>{}</dd></div>",
            escape(&name),
            escape(&value)
        );
    }
    h.push_str("</dl>");
}

/// Attributed values (user agents can be hundreds of characters) are cut to this many, the
/// full text on hover.
const MAX_VALUE_CHARS: usize = 90;

/// One attribute's values: the Insight's and the baseline's averages side by side.
fn attribution(h: &mut String, a: &Attribution) {
    let title = match a.attribute.as_str() {
        "userIdentityArn" => "Caller",
        "userAgent" => "User agent",
        "errorCode" => "Error code",
        other => other,
    };
    let mut rows: Vec<(&str, Option<f64>, Option<f64>)> = Vec::new();
    for v in &a.insight {
        rows.push((&v.value, Some(v.average), None));
    }
    for v in &a.baseline {
        match rows.iter_mut().find(|r| r.0 == v.value) {
            Some(row) => row.2 = Some(v.average),
            None => rows.push((&v.value, None, Some(v.average))),
        }
    }
    let _ = write!(
        h,
        r#"<table class="attribution" data-attribute="{attr}"><caption>{title} <code>{attr}</code></caption><thead><tr><th>value</th><th class="num">Insight /min</th><th class="num">baseline /min</th></tr></thead><tbody>"#,
        attr = escape(&a.attribute),
    );
    let cell = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), rate_text);
    for (value, insight, baseline) in rows {
        let _ = write!(
            h,
            r#"<tr><td class="value">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            {
                let value = if value == "null" { "(no error)" } else { value };
                shortened(value, value, MAX_VALUE_CHARS)
            },
            cell(insight),
            cell(baseline)
        );
    }
    h.push_str("</tbody></table>");
}

/// A rate for people: 3 significant digits below 1, fewer decimals above.
pub fn rate_text(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let text = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        let decimals = (-v.abs().log10()).floor() as usize + 3;
        format!("{v:.decimals$}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_like_numbers_people_write() {
        let cases = [
            (0.0020833333, "0.00208"),
            (0.0010912698, "0.00109"),
            (6.0, "6"),
            (2.5, "2.5"),
            (85.4202380952, "85.42"),
            (2880.0, "2880"),
            (0.0, "0"),
        ];
        for (v, want) in cases {
            assert_eq!(rate_text(v), want, "{v}");
        }
    }

    #[test]
    fn durations_read_like_people_say_them() {
        let cases = [
            (1, "1 minute"),
            (12, "12 minutes"),
            (60, "1 h"),
            (125, "2 h 5 min"),
            (10080, "7 days"),
            (8080, "5 days 14 h 40 min"),
        ];
        for (minutes, want) in cases {
            assert_eq!(duration(minutes), want, "{minutes}");
        }
    }

    #[test]
    fn text_is_escaped_for_html() {
        assert_eq!(
            escape(r#"aws-cli/2 <script>"x" & 'y'"#),
            "aws-cli/2 &lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn an_empty_directory_gives_a_page_that_says_so() {
        let page = Page {
            insights_dir: "out",
            source: None,
            episodes: &[],
            counts: None,
            context_minutes: 180,
            page_size: 20,
            coverage: &Coverage::default(),
            coverage_skipped: &[],
        };
        let html = render(&page).unwrap();
        assert!(html.contains("No Insights were found"), "{html}");
        assert!(html.contains("data-report-ready") || html.contains("<script>"));
    }
}
