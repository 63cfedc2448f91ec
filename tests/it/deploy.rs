//! The deploy examples run commands our CLI accepts, and pass what operators check: the image
//! builds its dependencies in a cached layer, on one pinned Debian release, as a non-root user;
//! the Kubernetes pod passes Pod Security "restricted" with a read-only root; the Batch job keeps
//! its state in S3 (or on EFS through an access point); the crontab mails only on failure.

use crate::support::repo_path;
use clap::Parser;
use trailsight::cli::Cli;

fn accepts(args: Vec<String>) {
    let mut argv = vec!["trailsight".to_owned()];
    argv.extend(args);
    if let Err(e) = Cli::try_parse_from(&argv) {
        panic!("{argv:?}: {e}");
    }
}

#[test]
fn the_aws_batch_job_runs_a_valid_command() {
    let text = std::fs::read_to_string(repo_path("deploy/aws-batch-job-definition.json")).unwrap();
    let job: serde_json::Value = serde_json::from_str(&text).unwrap();
    let command: Vec<String> =
        serde_json::from_value(job["containerProperties"]["command"].clone()).unwrap();
    accepts(command);
    let env = job["containerProperties"]["environment"]
        .as_array()
        .unwrap();
    assert!(env.iter().any(|e| e["name"] == "AWS_BATCH_JOB_ARRAY_SIZE"));
}

#[test]
fn the_kubernetes_job_and_the_crontab_run_valid_commands() {
    let yaml = std::fs::read_to_string(repo_path("deploy/kubernetes-cronjob.yaml")).unwrap();
    let args: Vec<String> = yaml
        .lines()
        .skip_while(|l| l.trim() != "args:")
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("- ") && !l.contains("name:"))
        .map(|l| l.trim_start().trim_start_matches("- ").to_owned())
        .collect();
    assert_eq!(args.first().map(String::as_str), Some("nightly"));
    accepts(args);
    let crontab = std::fs::read_to_string(repo_path("deploy/crontab")).unwrap();
    let (_, command) = crontab_command(&crontab);
    accepts(command);
}

/// The crontab's trailsight line: (the whole line, the arguments of `trailsight`).
fn crontab_command(crontab: &str) -> (String, Vec<String>) {
    let line = crontab
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("trailsight nightly"))
        .expect("a trailsight line");
    let after =
        &line[line.find("/trailsight ").expect("the binary's path") + "/trailsight ".len()..];
    let args = after.split(" 2>&1").next().unwrap();
    (
        line.to_owned(),
        args.split_whitespace().map(str::to_owned).collect(),
    )
}

#[test]
fn the_crontab_mails_only_on_failure_and_relies_on_no_cron_tz() {
    let crontab = std::fs::read_to_string(repo_path("deploy/crontab")).unwrap();
    assert!(
        !crontab
            .lines()
            .any(|l| l.trim_start().starts_with("CRON_TZ")),
        "Debian's cron ignores CRON_TZ"
    );
    let (line, _) = crontab_command(&crontab);
    // The output is captured (stdout and stderr) and printed only after a non-zero exit.
    let captured = line.find("out=$(").expect("output captured");
    let redirected = line.find("2>&1)").expect("stderr captured too");
    let on_failure = line.find(") ||").expect("printed only on failure");
    assert!(captured < redirected && redirected < on_failure, "{line}");
    // A bare % ends a crontab command: every one is escaped.
    let bare = line
        .match_indices('%')
        .filter(|(i, _)| !line[..*i].ends_with('\\'))
        .count();
    assert_eq!(bare, 0, "{line}");
}

#[test]
fn the_image_caches_dependencies_on_one_debian_release_and_runs_as_a_non_root_user() {
    let dockerfile = std::fs::read_to_string(repo_path("deploy/Dockerfile")).unwrap();
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let release = lines
        .iter()
        .find_map(|l| l.strip_prefix("ARG DEBIAN_RELEASE="))
        .expect("ARG DEBIAN_RELEASE=<codename>");
    assert!(
        ["bookworm", "trixie"].contains(&release),
        "a named Debian release: {release}"
    );
    let froms: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    for from in &froms {
        assert!(
            from.contains("${DEBIAN_RELEASE}"),
            "both stages on the one release: {from}"
        );
        assert!(!from.contains(":latest"), "{from}");
    }
    // The dependency layer: a release build from the manifests alone, before the sources.
    let position = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in the Dockerfile"))
    };
    let manifests = position("COPY Cargo.toml Cargo.lock");
    let deps = position("cargo build --release --locked");
    let sources = position("COPY src src");
    assert!(
        manifests < deps && deps < sources,
        "dependencies built before the sources"
    );
    let user = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric uid");
    assert!(
        uid >= 1000,
        "non-root, not a system id the host may use: {user}"
    );
    assert!(
        dockerfile.contains("--home-dir /var/lib/trailsight"),
        "a writable state home"
    );

    // The build context holds what the Dockerfile copies, and no .git or target/.
    let ignore = std::fs::read_to_string(repo_path(".dockerignore")).expect(".dockerignore");
    let rules: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        rules.first(),
        Some(&"*"),
        "everything out, then the sources back in"
    );
    for copied in [
        "Cargo.toml",
        "Cargo.lock",
        "src/",
        "scripts/generator/Cargo.toml",
    ] {
        assert!(rules.contains(&format!("!{copied}").as_str()), "{copied}");
    }
    assert!(
        !rules
            .iter()
            .any(|r| r.starts_with("!.git") || r.starts_with("!target"))
    );
}

/// The `key: value` pairs of the YAML block that starts at `header` (a line such as
/// `securityContext:`), nested keys joined with dots: enough YAML for these checks.
fn yaml_block(lines: &[&str], header: usize) -> std::collections::BTreeMap<String, String> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let base = indent(lines[header]);
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut pairs = std::collections::BTreeMap::new();
    for line in &lines[header + 1..] {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let depth = indent(line);
        if depth <= base {
            break;
        }
        path.retain(|(d, _)| *d < depth);
        let (key, value) = line.trim().split_once(':').expect("key: value");
        let value = value.split('#').next().unwrap().trim();
        let mut full: Vec<&str> = path.iter().map(|(_, k)| k.as_str()).collect();
        full.push(key.trim());
        if value.is_empty() {
            path.push((depth, key.trim().to_owned()));
        } else {
            pairs.insert(full.join("."), value.to_owned());
        }
    }
    pairs
}

#[test]
fn the_kubernetes_pod_passes_pod_security_restricted_with_a_read_only_root() {
    let yaml = std::fs::read_to_string(repo_path("deploy/kubernetes-cronjob.yaml")).unwrap();
    let lines: Vec<&str> = yaml.lines().collect();
    let blocks: Vec<_> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim() == "securityContext:")
        .map(|(i, _)| yaml_block(&lines, i))
        .collect();
    assert_eq!(blocks.len(), 2, "the pod's and the container's");
    fn get<'a>(
        block: &'a std::collections::BTreeMap<String, String>,
        key: &str,
    ) -> Option<&'a str> {
        block.get(key).map(String::as_str)
    }
    let (pod, container) = (&blocks[0], &blocks[1]);
    assert_eq!(get(pod, "runAsNonRoot"), Some("true"));
    assert_ne!(get(pod, "runAsUser"), Some("0"));
    assert_eq!(get(pod, "seccompProfile.type"), Some("RuntimeDefault"));
    assert_eq!(get(container, "allowPrivilegeEscalation"), Some("false"));
    assert_eq!(get(container, "capabilities.drop"), Some("[\"ALL\"]"));
    assert_eq!(get(container, "readOnlyRootFilesystem"), Some("true"));
    assert_ne!(get(container, "privileged"), Some("true"));
    for forbidden in [
        "hostPath:",
        "hostNetwork: true",
        "hostPID: true",
        "privileged: true",
    ] {
        assert!(!yaml.contains(forbidden), "{forbidden}");
    }
    // With a read-only root, the state is in S3 or on a mounted volume, and /tmp is writable.
    let state = lines
        .iter()
        .skip_while(|l| l.trim() != "- --state")
        .nth(1)
        .map(|l| l.trim().trim_start_matches("- "))
        .expect("--state");
    let mounts: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("mountPath: "))
        .collect();
    assert!(
        state.starts_with("s3://") || mounts.iter().any(|m| state.starts_with(m)),
        "state {state} is writable"
    );
    assert!(mounts.contains(&"/tmp"), "{mounts:?}");
}

#[test]
fn the_batch_job_keeps_its_state_in_s3_or_on_efs_through_an_access_point() {
    let text = std::fs::read_to_string(repo_path("deploy/aws-batch-job-definition.json")).unwrap();
    let job: serde_json::Value = serde_json::from_str(&text).unwrap();
    let container = &job["containerProperties"];
    let command: Vec<String> = serde_json::from_value(container["command"].clone()).unwrap();
    let state = &command[command.iter().position(|a| a == "--state").unwrap() + 1];
    if !state.starts_with("s3://") {
        let volumes = container["volumes"]
            .as_array()
            .expect("a volume for the state");
        for volume in volumes {
            let efs = &volume["efsVolumeConfiguration"];
            assert!(
                efs["authorizationConfig"]["accessPointId"].is_string(),
                "EFS through an access point (its POSIX user owns the state): {volume}"
            );
        }
    }
    assert_eq!(container["readonlyRootFilesystem"], true);
    let user = container["user"].as_str().expect("a user");
    assert!(
        !user.starts_with("0") && !user.starts_with("root"),
        "{user}"
    );
}
