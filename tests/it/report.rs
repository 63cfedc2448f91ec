//! `trailsight report`: the HTML page of the sample data opens in headless Chromium without a
//! console message, shows the RunInstances episode's chart with its window shaded from 13:25 to
//! 13:26, and the page is the same bytes on every run. Chromium is required, not optional: the
//! test fails (never skips) without it, and says how to install it (scripts/test does).

use crate::support::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one Chromium run may take before the test gives up on it.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(120);

/// `analyze` the sample into `dir/out`, then `report` it (with `--source` when asked) into
/// `dir/r.html`.
fn sample_report(dir: &Path, with_source: bool) -> PathBuf {
    let out = dir.join("out");
    let run = analyze(&repo_path("sample-data"), &out, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let html = dir.join("r.html");
    let sample = repo_path("sample-data");
    let source = ["--source", sample.to_str().unwrap()];
    let extra: &[&str] = if with_source { &source } else { &[] };
    let Report { code, stderr, .. } = run_report(&out, &html, extra);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("episodes                     3"),
        "{stderr}"
    );
    html
}

/// Debian's `chromium` (or `$CHROMIUM`); a missing browser fails the test with what to do.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
            .find(|path| path.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "headless Chromium is needed to test the HTML report and was not found on PATH. \
             Run scripts/test, which installs Debian's chromium package (apt-get install chromium), \
             or set CHROMIUM=/path/to/chromium."
        )
    })
}

/// Run headless Chromium on `page` (with `#fragment` when not empty) and `extra` arguments;
/// returns (stdout, stderr).
fn run_chromium(page: &Path, fragment: &str, profile: &Path, extra: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (stdout_path, stderr_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}{fragment}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > CHROMIUM_TIMEOUT {
            let _ = child.kill();
            panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}): {stderr}");
    (stdout, stderr)
}

/// The start tag `<tag ...>` at byte `at` of `html`, as (name, value) attributes.
fn attributes(html: &str, at: usize) -> Vec<(String, String)> {
    let tag = &html[at..at + html[at..].find('>').unwrap()];
    let mut attrs = Vec::new();
    let mut rest = tag.split_once(char::is_whitespace).map_or("", |(_, r)| r);
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim().to_owned();
        let value_start = eq + 2;
        let value_end = value_start + rest[value_start..].find('"').unwrap();
        attrs.push((name, rest[value_start..value_end].replace("&amp;", "&")));
        rest = &rest[value_end + 1..];
    }
    attrs
}

/// Every `<tag ...>` in `html` whose attributes include all of `wanted`, as (offset, attributes).
fn find_elements(
    html: &str,
    tag: &str,
    wanted: &[(&str, &str)],
) -> Vec<(usize, Vec<(String, String)>)> {
    let open = format!("<{tag} ");
    html.match_indices(&open)
        .map(|(at, _)| (at, attributes(html, at)))
        .filter(|(_, attrs)| {
            wanted
                .iter()
                .all(|(n, v)| attrs.iter().any(|(an, av)| an == n && av == v))
        })
        .collect()
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_sample_report_renders_in_headless_chromium_with_the_runinstances_window_shaded() {
    let dir = tempfile::tempdir().unwrap();
    let page = sample_report(dir.path(), true);
    let profile = dir.path().join("chromium-profile");

    let (dom, log) = run_chromium(&page, "", &profile, &["--dump-dom"]);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "the page wrote to the console:\n{}",
        console.join("\n")
    );
    let body = find_elements(&dom, "body", &[]);
    let body = &body.first().expect("a <body>").1;
    assert_eq!(
        attr(body, "data-report-ready"),
        Some("true"),
        "the page's script did not finish: {body:?}"
    );
    assert_eq!(attr(body, "data-report-error"), None, "{body:?}");

    // The activities lead the page, most severe first.
    let activities = find_elements(&dom, "section", &[]);
    let severities: Vec<f64> = activities
        .iter()
        .filter_map(|(_, a)| attr(a, "data-severity"))
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(severities.len(), 3, "three activities: {activities:?}");
    assert!(
        severities.windows(2).all(|w| w[0] >= w[1]),
        "most severe first: {severities:?}"
    );
    let (first_activity, _) = activities
        .iter()
        .find(|(_, a)| attr(a, "data-severity").is_some())
        .unwrap();
    let timeline = dom.find("Insights started per day").expect("a timeline");
    assert!(*first_activity < timeline, "activities before the timeline");

    // The RunInstances episode, on the first page, with its chart.
    let articles = find_elements(&dom, "article", &[("class", "episode")]);
    assert_eq!(articles.len(), 3, "three episodes");
    let (at, first) = articles
        .iter()
        .find(|(_, a)| attr(a, "data-event-name") == Some("RunInstances"))
        .expect("the RunInstances episode");
    assert_eq!(attr(first, "hidden"), None, "it is on the first page");
    let id = attr(first, "data-shared-event-id").unwrap();
    let article = &dom[*at..*at + dom[*at..].find("</article>").unwrap()];
    let charts = find_elements(
        article,
        "svg",
        &[("class", "chart"), ("data-shared-event-id", id)],
    );
    assert_eq!(charts.len(), 1, "one chart for {id}");
    let windows = find_elements(article, "rect", &[("class", "episode-window")]);
    assert_eq!(windows.len(), 1);
    let window = &windows[0].1;
    assert_eq!(attr(window, "data-start"), Some("2019-11-07T13:25:00Z"));
    assert_eq!(attr(window, "data-end"), Some("2019-11-07T13:26:00Z"));
    let width: f64 = attr(window, "width").unwrap().parse().unwrap();
    assert!(width > 0.0, "{window:?}");
    for marker in ["start", "end"] {
        assert_eq!(
            find_elements(article, "g", &[("data-marker", marker)]).len(),
            1,
            "{marker} marker"
        );
    }
    assert_eq!(
        find_elements(article, "line", &[("class", "baseline")]).len(),
        1
    );
    assert!(article.contains("ci-deployer"), "attributions are shown");

    let shot = dir.path().join("report.png");
    let shot_arg = format!("--screenshot={}", shot.display());
    run_chromium(&page, "", &profile, &[&shot_arg, "--window-size=1280,2000"]);
    let png = std::fs::read(&shot).expect("a screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    assert_eq!((size(16), size(20)), (1280, 2000));
    assert!(
        png.len() > 20_000,
        "a near-empty screenshot: {} bytes",
        png.len()
    );

    // One episode per page: a link to the last one opens the last page, with it alone shown.
    let paged = dir.path().join("paged.html");
    let Report { code, stderr, .. } =
        run_report(&dir.path().join("out"), &paged, &["--page-size", "1"]);
    assert_eq!(code, 0, "{stderr}");
    let oldest = attr(&articles[2].1, "data-shared-event-id").unwrap();
    let (dom, log) = run_chromium(&paged, &format!("#ep-{oldest}"), &profile, &["--dump-dom"]);
    assert!(!log.contains(":CONSOLE"), "{log}");
    let shown: Vec<String> = find_elements(&dom, "article", &[("class", "episode")])
        .into_iter()
        .filter(|(_, a)| attr(a, "hidden").is_none())
        .map(|(_, a)| attr(&a, "data-shared-event-id").unwrap().to_owned())
        .collect();
    assert_eq!(shown, [oldest]);
    assert!(dom.contains(r#"<span id="page-info">page 3 of 3</span>"#));

    if let Some(keep) = std::env::var_os("TRAILSIGHT_KEEP_REPORT") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&page, keep.join("report.html")).unwrap();
        std::fs::copy(&shot, keep.join("report.png")).unwrap();
    }
}

#[test]
fn without_the_logs_the_report_charts_the_records_averages() {
    let dir = tempfile::tempdir().unwrap();
    let html = std::fs::read_to_string(sample_report(dir.path(), false)).unwrap();
    assert_eq!(find_elements(&html, "svg", &[("class", "chart")]).len(), 3);
    assert_eq!(
        html.matches("from the Insight records' averages").count(),
        3
    );
    let windows = find_elements(&html, "rect", &[("class", "episode-window")]);
    let spans: Vec<(&str, &str)> = windows
        .iter()
        .map(|(_, a)| (attr(a, "data-start").unwrap(), attr(a, "data-end").unwrap()))
        .collect();
    assert!(
        spans.contains(&("2019-11-07T13:25:00Z", "2019-11-07T13:26:00Z")),
        "{spans:?}"
    );
    // Self-contained: nothing is fetched, and the policy forbids it anyway.
    for fetch in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(fetch), "{fetch}");
    }
    assert!(html.contains("default-src 'none'"));
}

#[test]
fn the_report_is_the_same_bytes_on_every_run() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = std::fs::read_to_string(sample_report(a.path(), true)).unwrap();
    let second = std::fs::read_to_string(sample_report(b.path(), true)).unwrap();
    // The pages name their own temporary directories, and the coverage section names when
    // each run started; everything else is equal.
    let strip = |html: &str, dir: &Path| {
        let html = html.replace(dir.to_str().unwrap(), "DIR");
        let at = html
            .find("The latest: <code>analyze</code> started")
            .unwrap();
        let end = at + html[at..].find("</p>").unwrap();
        format!("{}{}", &html[..at], &html[end..])
    };
    assert_eq!(strip(&first, a.path()), strip(&second, b.path()));
    // The same output reported again is the same bytes.
    let again = a.path().join("again.html");
    let Report { code, stderr, .. } = run_report(
        &a.path().join("out"),
        &again,
        &["--source", repo_path("sample-data").to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(std::fs::read_to_string(again).unwrap(), first);
}

#[test]
fn an_open_episode_and_a_broken_file_are_shown_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    assert_eq!(analyze(&repo_path("sample-data"), &out, &[]).code, 0);
    // Keep only the Start of every episode, as when a run ends while they are open.
    for (key, bytes) in files(&out) {
        if key.ends_with(".json.gz") {
            let starts: Vec<serde_json::Value> = gunzip_records(&bytes)
                .into_iter()
                .filter(|r| r["insightDetails"]["state"] == "Start")
                .collect();
            let body = serde_json::json!({ "Records": starts }).to_string();
            std::fs::write(out.join(&key), gzip(body.as_bytes())).unwrap();
        }
    }
    let broken = out.join(
        "AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2019/11/08/123456789012_CloudTrail-Insight_us-east-1_20191108T2359Z_broken.json.gz",
    );
    std::fs::create_dir_all(broken.parent().unwrap()).unwrap();
    std::fs::write(&broken, b"not gzip at all").unwrap();
    let html = dir.path().join("r.html");
    let Report {
        code,
        stderr,
        page: html,
    } = run_report(&out, &html, &[]);
    assert_eq!(code, 1, "a skipped file gives exit 1: {stderr}");
    assert!(
        stderr.contains("_broken.json.gz") && stderr.contains("not gzip"),
        "{stderr}"
    );
    let open = find_elements(&html, "rect", &[("data-open", "true")]);
    assert_eq!(open.len(), 3, "every episode is open");
    assert!(open.iter().all(|(_, a)| attr(a, "data-end") == Some("")));
    assert_eq!(
        html.matches(r#"<span class="badge open">still open</span>"#)
            .count(),
        3
    );
}

#[test]
fn the_report_reads_aws_own_insight_records() {
    let examples: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo_path(
            "tests/fixtures/real-cloudtrail/aws-insights-examples.Records.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(
        "AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2019/11/07/123456789012_CloudTrail-Insight_us-east-1_20191107T2359Z_aws.json.gz",
    );
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, gzip(examples.to_string().as_bytes())).unwrap();
    let html = dir.path().join("r.html");
    let Report {
        code,
        stderr,
        page: html,
    } = run_report(dir.path(), &html, &[]);
    assert_eq!(code, 0, "{stderr}");
    // Nine records: four episodes, one of them only started, and one ID used twice.
    assert!(stderr.contains("4 (1 still open)"), "{stderr}");
    assert!(stderr.contains("2 duplicates"), "{stderr}");
    assert_eq!(find_elements(&html, "svg", &[("class", "chart")]).len(), 4);
}

#[test]
fn report_refuses_a_missing_insights_directory() {
    // Every run leaves its --out, so a missing one is a wrong path, even inside a folder.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("out");
    for (path, want) in [
        ("/nonexistent/insights".to_owned(), "no such directory"),
        (missing.display().to_string(), "no such directory"),
    ] {
        let (code, _, stderr) = run_binary(&[
            "report",
            "--insights",
            &path,
            "--html",
            dir.path().join("never.html").to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{path}: {stderr}");
        assert!(
            stderr.contains(&format!("--insights {path}: {want}")),
            "{stderr}"
        );
    }
    assert!(!dir.path().join("never.html").exists());
}

/// The text of every element `<tag ...>...</tag>` whose start tag has all of `wanted` (no nesting
/// of the same tag inside).
fn elements<'a>(
    html: &'a str,
    tag: &str,
    wanted: &[(&str, &str)],
) -> Vec<(Vec<(String, String)>, &'a str)> {
    let close = format!("</{tag}>");
    find_elements(html, tag, wanted)
        .into_iter()
        .map(|(at, attrs)| {
            let end = at + html[at..].find(&close).unwrap();
            (attrs, &html[at..end])
        })
        .collect()
}

#[test]
fn on_real_logs_filed_under_another_account_every_chart_counts_what_the_insight_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, out) = invictus_run(dir.path(), true);
    let records = insights(&out);
    let ends: Vec<&serde_json::Value> = records
        .iter()
        .map(|(_, r)| r)
        .filter(|r| r["insightDetails"]["state"] == "End")
        .collect();
    assert_eq!(ends.len(), 15, "the hour fires 15 Insights");
    let html = dir.path().join("r.html");
    let Report {
        code,
        stderr,
        page: html,
    } = run_report(
        &out,
        &html,
        &["--source", logs.to_str().unwrap(), "--page-size", "100"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("log objects read             55"),
        "{stderr}"
    );
    assert!(!stderr.contains("hold no"), "{stderr}");
    let mut reported_by_id = std::collections::BTreeMap::new();
    for end in ends {
        let id = end["sharedEventID"].as_str().unwrap();
        let stats = &end["insightDetails"]["insightContext"]["statistics"];
        let minutes = stats["insightDuration"].as_f64().unwrap();
        let reported = stats["insight"]["average"].as_f64().unwrap() * minutes;
        reported_by_id.insert(id.to_owned(), reported);
        let article = elements(&html, "article", &[("data-shared-event-id", id)]);
        assert_eq!(article.len(), 1, "{id}");
        let figure = find_elements(article[0].1, "figure", &[("class", "chart-box")]);
        let figure = &figure[0].1;
        assert_eq!(
            attr(figure, "data-rate"),
            Some("counted"),
            "{id}: {figure:?}"
        );
        let counted: f64 = attr(figure, "data-episode-count").unwrap().parse().unwrap();
        assert!(
            (counted - reported).abs() < 0.01,
            "{id}: the chart counts {counted} calls in the Insight's minutes, the Insight {reported}"
        );
        assert!(!article[0].1.contains("0.000e0"), "{id}");
    }
    // Each activity of several Insights has one combined chart, a line per Insight, each line
    // drawn from counts that hold what its Insight reports in its own minutes.
    let mut charted = 0;
    for (activity, text) in elements(&html, "section", &[]) {
        if attr(&activity, "class") != Some("activity") {
            continue;
        }
        let members: BTreeSet<String> = find_elements(text, "article", &[("class", "episode")])
            .iter()
            .map(|(_, a)| attr(a, "data-shared-event-id").unwrap().to_owned())
            .collect();
        let charts = find_elements(text, "svg", &[("class", "chart activity-chart")]);
        assert_eq!(charts.len(), 1, "{members:?}");
        let lines = find_elements(text, "g", &[("class", "series")]);
        let lined: BTreeSet<String> = lines
            .iter()
            .map(|(_, a)| attr(a, "data-shared-event-id").unwrap().to_owned())
            .collect();
        assert_eq!(lined.len(), lines.len(), "one line per Insight");
        assert_eq!(lined, members, "a line per Insight of the activity");
        for (_, line) in &lines {
            let id = attr(line, "data-shared-event-id").unwrap();
            assert_eq!(attr(line, "data-rate"), Some("counted"), "{id}: {line:?}");
            let counted: f64 = attr(line, "data-episode-count").unwrap().parse().unwrap();
            let reported = reported_by_id[id];
            assert!(
                (counted - reported).abs() < 0.01,
                "{id}: the activity chart draws {counted} in the Insight's minutes, the Insight {reported}"
            );
            charted += 1;
        }
    }
    assert_eq!(
        charted, 10,
        "the 10 Insights of the hour's 3 activities of several"
    );
    let single = elements(&html, "section", &[("class", "activity single")]);
    assert!(
        single
            .iter()
            .all(|(_, text)| !text.contains("activity-chart")),
        "a single Insight's activity does not repeat its chart"
    );
}

#[test]
fn related_real_insights_are_grouped_into_activities() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = invictus_run(dir.path(), true);
    let html = dir.path().join("r.html");
    let Report {
        code,
        stderr,
        page: html,
    } = run_report(&out, &html, &[]);
    assert_eq!(code, 0, "{stderr}");
    let activities = elements(&html, "section", &[]);
    let activities: Vec<Vec<String>> = activities
        .iter()
        .filter(|(a, _)| attr(a, "class").is_some_and(|c| c.starts_with("activity")))
        .map(|(_, text)| {
            let mut names: Vec<String> = find_elements(text, "article", &[("class", "episode")])
                .iter()
                .map(|(_, a)| {
                    let name = attr(a, "data-event-name").unwrap();
                    match attr(a, "data-type") {
                        Some("ApiErrorRateInsight") => format!("{name}!"),
                        _ => name.to_owned(),
                    }
                })
                .collect();
            names.sort();
            names
        })
        .collect();
    assert!(activities.len() < 15, "{activities:?}");
    let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    for group in [
        set(&["PutParameter", "PutParameter!"]),
        set(&["CreateSecret", "PutSecretValue"]),
        set(&[
            "DeleteParameter",
            "DeleteParameter!",
            "DeleteSecret",
            "DescribeParameters!",
            "EndSecretVersionDelete",
            "StartSecretVersionDelete",
        ]),
        set(&["CreateFunction20150331"]),
    ] {
        assert!(activities.contains(&group), "{group:?} in {activities:#?}");
    }
    assert!(html.contains("Together because:"), "activities say why");
}

#[test]
fn a_run_that_found_nothing_gets_a_page_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = invictus_run(dir.path(), false);
    // The run leaves its --out with its summary, though it found nothing.
    let records: Vec<PathBuf> = std::fs::read_dir(out.join("_trailsight/runs"))
        .expect("a runs folder")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&records[0]).unwrap()).unwrap();
    assert_eq!(record["command"], "analyze");
    assert_eq!(record["exit_code"], 0);
    assert_eq!(record["summary"]["insight_records_written"], 0);
    let html = dir.path().join("r.html");
    let Report {
        code,
        stderr,
        page: html,
    } = run_report(&out, &html, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(html.contains("No Insights were found"), "{html}");
}

#[test]
fn the_real_report_reads_at_1400_and_600_pixels_without_a_console_message() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, out) = invictus_run(dir.path(), true);
    let page = dir.path().join("r.html");
    let Report { code, stderr, .. } =
        run_report(&out, &page, &["--source", logs.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let profile = dir.path().join("chromium-profile");
    for width in [1400, 600] {
        let size = format!("--window-size={width},2400");
        let (dom, log) = run_chromium(&page, "", &profile, &["--dump-dom", &size]);
        let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
        assert!(console.is_empty(), "{width} px: {}", console.join("\n"));
        let body = &find_elements(&dom, "body", &[])[0].1;
        assert_eq!(attr(body, "data-report-ready"), Some("true"), "{width} px");
        let combined = find_elements(&dom, "svg", &[("class", "chart activity-chart")]);
        assert_eq!(
            combined.len(),
            3,
            "{width} px: the 3 activities of several Insights"
        );
        let shot = dir.path().join(format!("report-{width}.png"));
        let shot_arg = format!("--screenshot={}", shot.display());
        run_chromium(&page, "", &profile, &[&shot_arg, &size]);
        let png = std::fs::read(&shot).expect("a screenshot");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        if let Some(keep) = std::env::var_os("TRAILSIGHT_KEEP_REPORT") {
            let keep = PathBuf::from(keep);
            std::fs::create_dir_all(&keep).unwrap();
            std::fs::copy(&shot, keep.join(format!("real-report-{width}.png"))).unwrap();
            std::fs::copy(&page, keep.join("real-report.html")).unwrap();
        }
    }
}

#[test]
fn coverage_from_the_runs_records_is_shown_escaped_and_bad_records_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = invictus_run(dir.path(), false);
    let runs = out.join("_trailsight/runs");
    // A later nightly run that saw a day without logs, a gap and a withheld partition.
    let record = serde_json::json!({
        "version": 1, "command": "nightly", "started": "2098-01-04T01:30:00.000Z",
        "exit_code": 4, "error": null,
        "summary": {
            "first_day": "2024-01-01", "last_day": "2024-01-03",
            "days_without_logs": ["2024-01-02"],
            "delivery_gaps": [{"account": "123456789012", "region": "us-east-1",
                               "day": "2024-01-03", "expected": 41, "seen": 3}],
            "partitions_withheld": ["123456789012/eu-west-1"],
        }
    });
    std::fs::write(
        runs.join("20980104T013000.000Z-aa.json"),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    // Hostile and broken records: skipped, named, never shown as facts.
    let hostile = serde_json::json!({
        "version": 1, "command": "nightly", "started": "2098-01-05T01:30:00.000Z",
        "exit_code": 0, "summary": {"partitions_withheld": ["<script>alert(1)</script>"]}
    });
    std::fs::write(
        runs.join("20980105T013000.000Z-bb.json"),
        serde_json::to_vec(&hostile).unwrap(),
    )
    .unwrap();
    std::fs::write(
        runs.join("20980106T013000.000Z-cc.json"),
        b"\x1f\x8bnot json",
    )
    .unwrap();
    let bad_objects = out.join("_trailsight/bad-objects");
    std::fs::create_dir_all(&bad_objects).unwrap();
    let report = serde_json::json!({
        "version": 1, "source": "s3://logs", "day": "2024-01-03",
        "skipped": [{"object": "s3://logs/<img src=x onerror=alert(1)>.json.gz",
                     "reason": "quarantined", "detail": "3 runs"}],
        "bad_records": [], "ignored": []
    });
    std::fs::write(
        bad_objects.join("2024-01-03.json"),
        serde_json::to_vec(&report).unwrap(),
    )
    .unwrap();

    let html = dir.path().join("r.html");
    let Report {
        code,
        stderr,
        page: html,
    } = run_report(&out, &html, &[]);
    assert_eq!(code, 0, "a bad run record never fails the report: {stderr}");
    for name in [
        "20980105T013000.000Z-bb.json",
        "20980106T013000.000Z-cc.json",
    ] {
        assert!(stderr.contains(name), "{name} named: {stderr}");
    }
    assert!(html.contains(r#"id="coverage""#), "{html}");
    assert!(
        html.contains(r#"id="coverage-note""#),
        "the header points to it"
    );
    let gaps = &html[html.find(r#"data-coverage="delivery-gaps""#).unwrap()..];
    let gaps = &gaps[..gaps.find("</table>").unwrap()];
    assert!(
        gaps.contains("<td>2024-01-03</td><td>123456789012</td><td>us-east-1</td><td class=\"num\">41</td><td class=\"num\">3</td>"),
        "{gaps}"
    );
    assert!(html.contains(r#"data-coverage="days-without-logs""#));
    assert!(html.contains("<code>123456789012/eu-west-1</code>"));
    assert!(html.contains("quarantined"));
    assert!(!html.contains("<img src=x"), "escaped");
    assert!(html.contains("&lt;img src=x"));
    assert!(!html.contains("<script>alert"), "never shown");
    assert!(html.contains(r#"data-coverage="unreadable""#));
}

/// A real run with a delivery gap (exit 4) leaves its record under --out, and the report shows
/// the gap with what the partition usually delivers and what it delivered.
#[test]
fn a_delivery_gap_of_a_real_run_is_on_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let copied = Command::new("cp")
        .args(["-r", "--"])
        .arg(repo_path("sample-data"))
        .arg(&logs)
        .status()
        .unwrap();
    assert!(copied.success());
    let quiet = "AWSLogs/o-a1b2c3d4e5/210987654321/CloudTrail/eu-west-1/2019/11/07";
    std::fs::remove_dir_all(logs.join(quiet)).unwrap();
    let out = dir.path().join("out");
    let run = analyze(&logs, &out, &[]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let expected = run.summary["delivery_gaps"][0]["expected"]
        .as_u64()
        .unwrap();
    let records: Vec<_> = std::fs::read_dir(out.join("_trailsight/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(records.len(), 1);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&records[0]).unwrap()).unwrap();
    assert_eq!(record["exit_code"], 4);

    let html = dir.path().join("r.html");
    let Report {
        code,
        stderr,
        page: html,
    } = run_report(&out, &html, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(html.contains(r#"id="coverage-note""#));
    let row = format!(
        "<td>2019-11-07</td><td>210987654321</td><td>eu-west-1</td><td class=\"num\">{expected}</td><td class=\"num\">0</td>"
    );
    assert!(html.contains(&row), "{row}");
    assert!(html.contains("exit code 4"));
}
