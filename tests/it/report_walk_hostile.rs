//! `trailsight report` on output folders whose tree itself is hostile: links that make the walk
//! loop. Each case must finish well within the time limit, name the link it did not follow, and
//! still draw the good episode. (The FIFO and `/dev/zero` cases, which are about reading a file,
//! are in `report_hostile.rs`.)
//! The walk goes through the store (`sink::read`), which never follows a link: before it, these
//! hung until the time limit.

use crate::report_hostile::{TIME_LIMIT, good_output, report};
use std::path::Path;

/// (case, links to make: (link path relative to the output folder, target))
type Links = &'static [(&'static str, &'static str)];

const CASES: [(&str, Links); 3] = [
    (
        "three links to the output folder, in it",
        &[("x", "."), ("y", "."), ("z", ".")],
    ),
    (
        "a link to the output folder's root, deep inside it",
        &[(
            "AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2019/11/07/up",
            "../../../../../../..",
        )],
    ),
    (
        "two folders linked to each other",
        &[
            (
                "AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2019/a",
                "b",
            ),
            (
                "AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2019/b",
                "a",
            ),
        ],
    ),
];

#[test]
fn report_walks_link_loops_in_bounded_time_and_names_them() {
    for (case, links) in CASES {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        good_output(&out);
        for (link, target) in links {
            let path = out.join(link);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(Path::new(target), &path).unwrap();
        }
        let run = report(&out, false);
        assert!(
            run.seconds < TIME_LIMIT.as_secs_f64() / 4.0,
            "{case}: {:.1} s",
            run.seconds
        );
        assert!(
            matches!(run.code, 0 | 1),
            "{case}: exit {}: {}",
            run.code,
            run.stderr
        );
        let (link, _) = links[0];
        let name = Path::new(link).file_name().unwrap().to_str().unwrap();
        assert!(
            run.stderr.contains(&format!("/{name}")),
            "{case}: the link {name} is not named:\n{}",
            run.stderr
        );
        assert!(
            run.html.contains(r#"data-shared-event-id="good""#),
            "{case}: the good episode is not drawn"
        );
    }
}
