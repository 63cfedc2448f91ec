//! The deploy examples run commands our CLI accepts.

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
    let line = crontab
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("trailsight nightly"))
        .unwrap();
    let args: Vec<String> = line.split_whitespace().skip(6).map(str::to_owned).collect();
    accepts(args);
}
