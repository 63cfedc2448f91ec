//! Background errors: the ordinary failure rate of every API.
//!
//! Three sources, drawn in this order for each ordinary call: the API's own errors from the
//! catalogue (`NoSuchBucketPolicy` on a third of `GetBucketPolicy`, ...), access denied at a
//! rate that depends on who calls (people get it most, workloads almost never), and throttling
//! (mostly workloads). The result is a few percent of records with an `errorCode`, with
//! near-zero access-denied rates for machine-called read APIs such as `kms:Decrypt`.

use rand::Rng;

use crate::catalogue::{Api, Caller, EventKind};
use crate::record::Failure;
use crate::rng::{self, Rand};

/// Access-denied probability per call, by caller class.
fn denied_rate(class: Caller) -> f64 {
    match class {
        Caller::Console => 0.004,
        Caller::Cli => 0.006,
        Caller::Pipeline => 0.002,
        Caller::Workload => 0.0002,
        Caller::Service(_) => 0.0,
    }
}

/// Throttling probability per call, by caller class.
fn throttle_rate(class: Caller) -> f64 {
    match class {
        Caller::Workload => 0.004,
        Caller::Pipeline => 0.003,
        Caller::Service(_) => 0.0,
        _ => 0.0002,
    }
}

/// The background failure of one ordinary call, if it fails.
pub fn background(rng: &mut Rand, api: &Api, class: Caller) -> Option<Failure> {
    if api.kind != EventKind::ApiCall {
        return None;
    }
    for spec in api.errors {
        if rng.random_bool(spec.rate) {
            return Some(Failure {
                code: spec.code.to_string(),
                message: spec.message.filter(|m| !m.is_empty()).map(str::to_string),
            });
        }
    }
    if rng.random_bool(denied_rate(class)) {
        return Some(denied(rng, api));
    }
    if rng.random_bool(throttle_rate(class)) {
        return Some(Failure {
            code: api.service.throttle_code.to_string(),
            message: Some(api.service.throttle_message.to_string()),
        });
    }
    None
}

/// The service's own "access denied" error for `api`.
pub fn denied(rng: &mut Rand, api: &Api) -> Failure {
    let code = api.service.denied_code;
    let message = match api.source() {
        "ec2.amazonaws.com" => format!(
            "You are not authorized to perform this operation. Encoded authorization failure message: {}",
            rng::alnum(rng, 120)
        ),
        "s3.amazonaws.com" => "Access Denied".to_string(),
        "kms.amazonaws.com" => "User: {principal} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action".to_string(),
        _ => "User: {principal} is not authorized to perform: {action} on resource: {resource}".to_string(),
    };
    Failure {
        code: code.to_string(),
        message: Some(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{APIS, find};

    fn error_share(source: &str, name: &str, class: Caller) -> f64 {
        let api = &APIS[find(source, name).unwrap()];
        let mut rng = rng::derive(5, "errors");
        let n = 50_000;
        let failed = (0..n)
            .filter(|_| background(&mut rng, api, class).is_some())
            .count();
        failed as f64 / f64::from(n)
    }

    #[test]
    fn background_error_rates_are_plausible() {
        let cases = [
            ("kms.amazonaws.com", "Decrypt", Caller::Workload, 0.0, 0.006),
            (
                "s3.amazonaws.com",
                "GetBucketPolicy",
                Caller::Console,
                0.3,
                0.4,
            ),
            (
                "ec2.amazonaws.com",
                "DescribeInstances",
                Caller::Cli,
                0.003,
                0.01,
            ),
        ];
        for (source, name, class, low, high) in cases {
            let share = error_share(source, name, class);
            assert!(
                (low..=high).contains(&share),
                "{source} {name} {class:?}: {share}"
            );
        }
    }
}
