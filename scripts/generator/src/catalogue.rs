//! The catalogue of management APIs the generator calls, and how often.
//!
//! Each [`Api`] names its service, whether it is read-only, its [`Pattern`] (office hours,
//! machine-steady, sparse, or scheduled at fixed local minutes), who calls it ([`Caller`]
//! weights) and its background errors. Rates are *per stream* (one account in one region) at
//! volume 1; `Office` and `Machine` rates are multiplied by the run's volume, while `Sparse`
//! and scheduled APIs keep their absolute counts so that rare write APIs stay rare at any scale.
//! Global services (IAM, sign-in) are only called in `us-east-1`, as CloudTrail records them.

/// The region where global-service events (IAM, console sign-in) are recorded.
pub const GLOBAL_REGION: &str = "us-east-1";

/// Per-service constants: the record's eventVersion, the endpoint host, and the service's own
/// spelling of "access denied" and "throttled".
#[derive(Debug)]
pub struct Service {
    pub source: &'static str,
    pub event_version: &'static str,
    /// `{region}` is replaced by the stream's region; global services have none.
    pub host: &'static str,
    pub denied_code: &'static str,
    pub throttle_code: &'static str,
    pub throttle_message: &'static str,
}

/// When calls happen. Hours and minutes are in the account's local time.
#[derive(Debug, Clone, Copy)]
pub enum Pattern {
    /// Humans: `peak_per_hour` at mid-afternoon on a weekday, little at night and weekends.
    Office { peak_per_hour: f64 },
    /// Workloads: `per_hour` on average, a mild business-hours bump, slightly lower weekends.
    Machine { per_hour: f64 },
    /// Rare calls at a flat rate of `per_week`, any time of day (not scaled by volume).
    Sparse { per_week: f64 },
    /// `calls` calls at each listed (hour, minute) every day (cron jobs, nightly backups).
    Daily {
        times: &'static [(u8, u8)],
        calls: u8,
    },
    /// `calls` calls at each listed (hour, minute) on weekdays only (deploy pipelines).
    Weekdays {
        times: &'static [(u8, u8)],
        calls: u8,
    },
    /// No ordinary traffic at all: only injected anomalies call it (an API never seen before,
    /// for the evaluation's new-API bursts).
    Never,
}

impl Pattern {
    /// Whether ordinary traffic ever calls an API with this pattern.
    pub fn is_ordinary(&self) -> bool {
        !matches!(self, Pattern::Never)
    }
}

/// Which kind of principal makes a call; identities are drawn per account from these classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Caller {
    /// A person in the AWS console (IAM user or SSO role), browser-ish user agents.
    Console,
    /// A person with the AWS CLI and long-term or SSO credentials.
    Cli,
    /// CI/CD and infrastructure-as-code roles (ci-deployer, terraform).
    Pipeline,
    /// Applications: Lambda functions and EC2 instance roles using an SDK.
    Workload,
    /// An AWS service acting for the account (`invokedBy`), e.g. `"autoscaling.amazonaws.com"`.
    Service(&'static str),
}

/// How a record is classified in `eventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    ApiCall,
    ServiceEvent,
    ConsoleSignIn,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ApiCall => "AwsApiCall",
            EventKind::ServiceEvent => "AwsServiceEvent",
            EventKind::ConsoleSignIn => "AwsConsoleSignIn",
        }
    }
}

/// A background error an API returns at `rate` (fraction of its calls).
/// `{principal}`, `{action}` and `{resource}` in the message are filled in per record.
#[derive(Debug)]
pub struct ErrorSpec {
    pub code: &'static str,
    pub message: Option<&'static str>,
    pub rate: f64,
}

/// One management API.
#[derive(Debug)]
pub struct Api {
    pub service: &'static Service,
    pub name: &'static str,
    pub read_only: bool,
    pub kind: EventKind,
    pub global: bool,
    pub pattern: Pattern,
    pub callers: &'static [(Caller, u8)],
    pub errors: &'static [ErrorSpec],
}

impl Api {
    const fn new(
        service: &'static Service,
        name: &'static str,
        read_only: bool,
        pattern: Pattern,
        callers: &'static [(Caller, u8)],
    ) -> Api {
        Api {
            service,
            name,
            read_only,
            kind: EventKind::ApiCall,
            global: service.host.is_empty(),
            pattern,
            callers,
            errors: &[],
        }
    }

    const fn errors(self, errors: &'static [ErrorSpec]) -> Api {
        Api { errors, ..self }
    }

    const fn kind(self, kind: EventKind) -> Api {
        Api { kind, ..self }
    }

    pub fn source(&self) -> &'static str {
        self.service.source
    }

    /// Whether this API is recorded in `region` (global services only in [`GLOBAL_REGION`]).
    pub fn recorded_in(&self, region: &str) -> bool {
        !self.global || region == GLOBAL_REGION
    }
}

/// The catalogue index of `source`/`name`, if present.
pub fn find(source: &str, name: &str) -> Option<usize> {
    APIS.iter()
        .position(|api| api.source() == source && api.name == name)
}

const fn err(code: &'static str, message: &'static str, rate: f64) -> ErrorSpec {
    ErrorSpec {
        code,
        message: Some(message),
        rate,
    }
}

macro_rules! service {
    ($name:ident, $source:expr, $version:expr, $host:expr, $denied:expr, $throttle:expr) => {
        pub static $name: Service = Service {
            source: $source,
            event_version: $version,
            host: $host,
            denied_code: $denied,
            throttle_code: $throttle,
            throttle_message: "Rate exceeded",
        };
    };
}

service!(
    EC2,
    "ec2.amazonaws.com",
    "1.09",
    "ec2.{region}.amazonaws.com",
    "Client.UnauthorizedOperation",
    "Client.RequestLimitExceeded"
);
service!(
    S3,
    "s3.amazonaws.com",
    "1.09",
    "s3.{region}.amazonaws.com",
    "AccessDenied",
    "SlowDown"
);
service!(
    IAM,
    "iam.amazonaws.com",
    "1.08",
    "",
    "AccessDenied",
    "Throttling"
);
service!(
    STS,
    "sts.amazonaws.com",
    "1.08",
    "sts.{region}.amazonaws.com",
    "AccessDenied",
    "Throttling"
);
service!(
    KMS,
    "kms.amazonaws.com",
    "1.08",
    "kms.{region}.amazonaws.com",
    "AccessDeniedException",
    "ThrottlingException"
);
service!(
    LAMBDA,
    "lambda.amazonaws.com",
    "1.08",
    "lambda.{region}.amazonaws.com",
    "AccessDenied",
    "TooManyRequestsException"
);
service!(
    MONITORING,
    "monitoring.amazonaws.com",
    "1.08",
    "monitoring.{region}.amazonaws.com",
    "AccessDenied",
    "Throttling"
);
service!(
    LOGS,
    "logs.amazonaws.com",
    "1.08",
    "logs.{region}.amazonaws.com",
    "AccessDenied",
    "ThrottlingException"
);
service!(
    SSM,
    "ssm.amazonaws.com",
    "1.08",
    "ssm.{region}.amazonaws.com",
    "AccessDeniedException",
    "ThrottlingException"
);
service!(
    SECRETS,
    "secretsmanager.amazonaws.com",
    "1.10",
    "secretsmanager.{region}.amazonaws.com",
    "AccessDeniedException",
    "ThrottlingException"
);
service!(
    CLOUDFORMATION,
    "cloudformation.amazonaws.com",
    "1.10",
    "cloudformation.{region}.amazonaws.com",
    "AccessDenied",
    "Throttling"
);
service!(
    AUTOSCALING,
    "autoscaling.amazonaws.com",
    "1.08",
    "autoscaling.{region}.amazonaws.com",
    "AccessDenied",
    "Throttling"
);
service!(
    ELB,
    "elasticloadbalancing.amazonaws.com",
    "1.08",
    "elasticloadbalancing.{region}.amazonaws.com",
    "AccessDenied",
    "Throttling"
);
service!(
    CLOUDTRAIL,
    "cloudtrail.amazonaws.com",
    "1.11",
    "cloudtrail.{region}.amazonaws.com",
    "AccessDeniedException",
    "ThrottlingException"
);
service!(
    SIGNIN,
    "signin.amazonaws.com",
    "1.08",
    "",
    "AccessDenied",
    "Throttling"
);

use Caller::{Cli, Console, Pipeline, Service as Svc, Workload};
use Pattern::{Daily, Machine, Never, Office, Sparse, Weekdays};

const PEOPLE: &[(Caller, u8)] = &[(Console, 3), (Cli, 1)];
const PEOPLE_AND_CI: &[(Caller, u8)] = &[(Console, 2), (Cli, 1), (Pipeline, 2)];
const APPS: &[(Caller, u8)] = &[(Workload, 1)];
const CI: &[(Caller, u8)] = &[(Pipeline, 1)];
const CHANGES: &[(Caller, u8)] = &[(Pipeline, 3), (Console, 1), (Cli, 1)];

/// The catalogue. Order is part of the output contract (it fixes the random stream): append
/// new APIs at the end of their service block only when regenerating the sample is intended.
/// `Never` APIs (at the very end) draw no random numbers, so they change no preset's output.
pub static APIS: &[Api] = &[
    // EC2
    Api::new(&EC2, "DescribeInstances", true, Machine { per_hour: 26.0 }, &[(Workload, 3), (Console, 1), (Pipeline, 1), (Svc("ssm.amazonaws.com"), 1)]),
    Api::new(&EC2, "DescribeInstanceStatus", true, Machine { per_hour: 10.0 }, APPS),
    Api::new(&EC2, "DescribeSecurityGroups", true, Office { peak_per_hour: 16.0 }, PEOPLE_AND_CI),
    Api::new(&EC2, "DescribeVolumes", true, Machine { per_hour: 5.0 }, &[(Workload, 2), (Console, 1)]),
    Api::new(&EC2, "DescribeSubnets", true, Office { peak_per_hour: 7.0 }, PEOPLE_AND_CI),
    Api::new(&EC2, "DescribeVpcs", true, Office { peak_per_hour: 5.0 }, PEOPLE_AND_CI),
    Api::new(&EC2, "DescribeNetworkInterfaces", true, Machine { per_hour: 5.0 }, &[(Svc("lambda.amazonaws.com"), 2), (Workload, 1)]),
    Api::new(&EC2, "RunInstances", false, Sparse { per_week: 21.0 }, CHANGES)
        .errors(&[err("Client.InsufficientInstanceCapacity", "We currently do not have sufficient capacity in the Availability Zone you requested. Our system will be working on provisioning additional capacity.", 0.03)]),
    Api::new(&EC2, "TerminateInstances", false, Sparse { per_week: 14.0 }, CHANGES),
    Api::new(&EC2, "StartInstances", false, Weekdays { times: &[(7, 0)], calls: 2 }, APPS),
    Api::new(&EC2, "StopInstances", false, Weekdays { times: &[(19, 0)], calls: 2 }, APPS),
    Api::new(&EC2, "CreateTags", false, Sparse { per_week: 30.0 }, CHANGES),
    Api::new(&EC2, "AuthorizeSecurityGroupIngress", false, Sparse { per_week: 18.0 }, CHANGES)
        .errors(&[err("Client.InvalidPermission.Duplicate", "the specified rule \"peer: 10.0.0.0/16, TCP, from port: 443, to port: 443, ALLOW\" already exists", 0.08)]),
    Api::new(&EC2, "RevokeSecurityGroupIngress", false, Sparse { per_week: 6.0 }, CHANGES),
    Api::new(&EC2, "CreateSnapshot", false, Daily { times: &[(2, 0)], calls: 3 }, APPS),
    Api::new(&EC2, "DeleteSnapshot", false, Daily { times: &[(2, 30)], calls: 2 }, APPS),
    // S3 (bucket-level management events)
    Api::new(&S3, "ListBuckets", true, Office { peak_per_hour: 5.0 }, PEOPLE),
    Api::new(&S3, "GetBucketAcl", true, Machine { per_hour: 5.0 }, &[(Svc("cloudtrail.amazonaws.com"), 2), (Svc("config.amazonaws.com"), 1), (Console, 1)]),
    Api::new(&S3, "GetBucketLocation", true, Machine { per_hour: 7.0 }, &[(Workload, 2), (Console, 1)]),
    Api::new(&S3, "GetBucketPolicy", true, Office { peak_per_hour: 3.0 }, PEOPLE_AND_CI)
        .errors(&[err("NoSuchBucketPolicy", "The bucket policy does not exist", 0.35)]),
    Api::new(&S3, "GetBucketEncryption", true, Office { peak_per_hour: 2.0 }, PEOPLE_AND_CI)
        .errors(&[err("ServerSideEncryptionConfigurationNotFoundError", "The server side encryption configuration was not found", 0.2)]),
    Api::new(&S3, "PutBucketPolicy", false, Sparse { per_week: 3.0 }, CHANGES),
    Api::new(&S3, "PutBucketTagging", false, Sparse { per_week: 4.0 }, CHANGES),
    Api::new(&S3, "CreateBucket", false, Sparse { per_week: 2.0 }, CHANGES)
        .errors(&[err("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.", 0.1)]),
    // IAM (global)
    Api::new(&IAM, "GetRole", true, Office { peak_per_hour: 9.0 }, &[(Pipeline, 3), (Console, 1), (Svc("config.amazonaws.com"), 1)]),
    Api::new(&IAM, "ListRoles", true, Office { peak_per_hour: 3.0 }, PEOPLE),
    Api::new(&IAM, "GetPolicy", true, Office { peak_per_hour: 3.0 }, PEOPLE_AND_CI),
    Api::new(&IAM, "ListAttachedRolePolicies", true, Office { peak_per_hour: 4.0 }, PEOPLE_AND_CI),
    Api::new(&IAM, "GetUser", true, Office { peak_per_hour: 2.0 }, PEOPLE)
        .errors(&[err("NoSuchEntityException", "The user with name {resource} cannot be found.", 0.05)]),
    Api::new(&IAM, "CreateRole", false, Sparse { per_week: 3.0 }, CHANGES)
        .errors(&[err("EntityAlreadyExistsException", "Role with name {resource} already exists.", 0.1)]),
    Api::new(&IAM, "AttachRolePolicy", false, Sparse { per_week: 5.0 }, CHANGES),
    Api::new(&IAM, "PutRolePolicy", false, Sparse { per_week: 4.0 }, CHANGES),
    Api::new(&IAM, "CreateAccessKey", false, Sparse { per_week: 1.0 }, PEOPLE),
    // STS
    Api::new(&STS, "AssumeRole", true, Machine { per_hour: 22.0 }, &[(Svc("lambda.amazonaws.com"), 2), (Pipeline, 1), (Workload, 1)]),
    Api::new(&STS, "GetCallerIdentity", true, Office { peak_per_hour: 9.0 }, &[(Cli, 2), (Pipeline, 2)]),
    Api::new(&STS, "GetSessionToken", true, Sparse { per_week: 5.0 }, &[(Cli, 1)]),
    // KMS
    Api::new(&KMS, "Decrypt", true, Machine { per_hour: 34.0 }, &[(Workload, 3), (Svc("secretsmanager.amazonaws.com"), 1)]),
    Api::new(&KMS, "GenerateDataKey", true, Machine { per_hour: 16.0 }, &[(Workload, 1), (Svc("s3.amazonaws.com"), 1)]),
    Api::new(&KMS, "Encrypt", true, Machine { per_hour: 3.0 }, APPS),
    Api::new(&KMS, "DescribeKey", true, Office { peak_per_hour: 2.0 }, PEOPLE_AND_CI),
    Api::new(&KMS, "CreateGrant", false, Sparse { per_week: 10.0 }, &[(Svc("ec2.amazonaws.com"), 1)]),
    // Lambda
    Api::new(&LAMBDA, "ListFunctions20150331", true, Office { peak_per_hour: 3.0 }, PEOPLE),
    Api::new(&LAMBDA, "GetFunction20150331v2", true, Office { peak_per_hour: 4.0 }, PEOPLE_AND_CI),
    Api::new(&LAMBDA, "GetPolicy20150331v2", true, Office { peak_per_hour: 1.0 }, PEOPLE_AND_CI)
        .errors(&[err("ResourceNotFoundException", "The resource you requested does not exist.", 0.3)]),
    Api::new(&LAMBDA, "UpdateFunctionCode20150331v2", false, Weekdays { times: &[(10, 30), (15, 30)], calls: 1 }, CI),
    Api::new(&LAMBDA, "UpdateFunctionConfiguration20150331v2", false, Weekdays { times: &[(10, 31)], calls: 1 }, CI),
    Api::new(&LAMBDA, "CreateFunction20150331", false, Sparse { per_week: 1.0 }, CHANGES),
    // CloudWatch
    Api::new(&MONITORING, "DescribeAlarms", true, Machine { per_hour: 10.0 }, &[(Workload, 2), (Console, 1)]),
    Api::new(&MONITORING, "GetMetricData", true, Office { peak_per_hour: 18.0 }, &[(Console, 2), (Workload, 1)]),
    Api::new(&MONITORING, "PutMetricAlarm", false, Weekdays { times: &[(10, 32)], calls: 2 }, CI),
    // CloudWatch Logs
    Api::new(&LOGS, "CreateLogStream", false, Machine { per_hour: 12.0 }, APPS)
        .errors(&[err("ResourceAlreadyExistsException", "The specified log stream already exists", 0.04)]),
    Api::new(&LOGS, "DescribeLogGroups", true, Office { peak_per_hour: 5.0 }, PEOPLE_AND_CI),
    Api::new(&LOGS, "FilterLogEvents", true, Office { peak_per_hour: 3.0 }, PEOPLE),
    Api::new(&LOGS, "PutRetentionPolicy", false, Sparse { per_week: 2.0 }, CHANGES),
    // SSM
    Api::new(&SSM, "UpdateInstanceInformation", false, Machine { per_hour: 16.0 }, APPS),
    Api::new(&SSM, "UpdateInstanceAssociationStatus", false, Machine { per_hour: 6.0 }, APPS),
    Api::new(&SSM, "GetParameter", true, Machine { per_hour: 16.0 }, APPS)
        .errors(&[err("ParameterNotFound", "", 0.02)]),
    Api::new(&SSM, "GetParameters", true, Machine { per_hour: 5.0 }, APPS),
    Api::new(&SSM, "PutParameter", false, Sparse { per_week: 5.0 }, CHANGES),
    Api::new(&SSM, "SendCommand", false, Daily { times: &[(3, 0)], calls: 2 }, APPS),
    // Secrets Manager
    Api::new(&SECRETS, "GetSecretValue", true, Machine { per_hour: 9.0 }, APPS)
        .errors(&[err("ResourceNotFoundException", "Secrets Manager can't find the specified secret.", 0.01)]),
    Api::new(&SECRETS, "DescribeSecret", true, Office { peak_per_hour: 2.0 }, PEOPLE_AND_CI),
    Api::new(&SECRETS, "PutSecretValue", false, Daily { times: &[(4, 0)], calls: 1 }, APPS),
    Api::new(&SECRETS, "RotationSucceeded", false, Daily { times: &[(4, 1)], calls: 1 }, &[(Svc("secretsmanager.amazonaws.com"), 1)])
        .kind(EventKind::ServiceEvent),
    // CloudFormation
    Api::new(&CLOUDFORMATION, "DescribeStacks", true, Office { peak_per_hour: 10.0 }, &[(Pipeline, 3), (Console, 1)]),
    Api::new(&CLOUDFORMATION, "DescribeStackEvents", true, Office { peak_per_hour: 5.0 }, &[(Pipeline, 1), (Console, 1)]),
    Api::new(&CLOUDFORMATION, "CreateChangeSet", false, Weekdays { times: &[(10, 28)], calls: 1 }, CI),
    Api::new(&CLOUDFORMATION, "DescribeChangeSet", true, Weekdays { times: &[(10, 28)], calls: 4 }, CI),
    Api::new(&CLOUDFORMATION, "ExecuteChangeSet", false, Weekdays { times: &[(10, 29)], calls: 1 }, CI),
    // Auto Scaling
    Api::new(&AUTOSCALING, "DescribeAutoScalingGroups", true, Machine { per_hour: 8.0 }, &[(Workload, 2), (Console, 1)]),
    Api::new(&AUTOSCALING, "SetDesiredCapacity", false, Weekdays { times: &[(7, 55), (19, 5)], calls: 1 }, APPS),
    Api::new(&AUTOSCALING, "UpdateAutoScalingGroup", false, Sparse { per_week: 3.0 }, CHANGES),
    // Elastic Load Balancing
    Api::new(&ELB, "DescribeLoadBalancers", true, Office { peak_per_hour: 4.0 }, PEOPLE_AND_CI),
    Api::new(&ELB, "DescribeTargetHealth", true, Machine { per_hour: 7.0 }, APPS),
    Api::new(&ELB, "RegisterTargets", false, Weekdays { times: &[(10, 33)], calls: 1 }, CI),
    Api::new(&ELB, "DeregisterTargets", false, Weekdays { times: &[(10, 33)], calls: 1 }, CI),
    // CloudTrail
    Api::new(&CLOUDTRAIL, "DescribeTrails", true, Office { peak_per_hour: 1.5 }, &[(Console, 1), (Svc("config.amazonaws.com"), 1)]),
    Api::new(&CLOUDTRAIL, "LookupEvents", true, Office { peak_per_hour: 3.0 }, PEOPLE),
    // Console sign-in (global)
    Api::new(&SIGNIN, "ConsoleLogin", false, Office { peak_per_hour: 2.5 }, &[(Console, 1)])
        .kind(EventKind::ConsoleSignIn),
    // Never called by ordinary traffic: the evaluation's bursts on APIs never seen before.
    Api::new(&EC2, "CreateKeyPair", false, Never, PEOPLE),
    Api::new(&EC2, "ModifyInstanceAttribute", false, Never, PEOPLE),
    Api::new(&EC2, "CreateVpcPeeringConnection", false, Never, PEOPLE),
    Api::new(&S3, "PutBucketPublicAccessBlock", false, Never, PEOPLE),
    Api::new(&IAM, "CreateUser", false, Never, PEOPLE),
    Api::new(&IAM, "CreateLoginProfile", false, Never, PEOPLE),
    Api::new(&KMS, "ScheduleKeyDeletion", false, Never, PEOPLE),
    Api::new(&LOGS, "DeleteLogGroup", false, Never, PEOPLE),
    Api::new(&SECRETS, "DeleteSecret", false, Never, PEOPLE),
    Api::new(&CLOUDTRAIL, "StopLogging", false, Never, PEOPLE),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn catalogue_is_sized_like_a_real_account() {
        let services: BTreeSet<_> = APIS.iter().map(Api::source).collect();
        let ordinary = APIS.iter().filter(|a| a.pattern.is_ordinary()).count();
        assert!((60..=80).contains(&ordinary), "{ordinary} APIs");
        assert!((10..=15).contains(&services.len()), "{services:?}");
    }

    #[test]
    fn names_are_unique_and_insights_eligible() {
        let mut seen = BTreeSet::new();
        for api in APIS {
            assert!(
                seen.insert((api.source(), api.name)),
                "duplicate {}",
                api.name
            );
            assert!(
                api.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{}",
                api.name
            );
            assert!(!api.callers.is_empty(), "{} has no callers", api.name);
        }
    }

    #[test]
    fn anomaly_apis_exist() {
        for (source, name) in [
            ("ec2.amazonaws.com", "RunInstances"),
            ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"),
            ("kms.amazonaws.com", "Decrypt"),
        ] {
            assert!(find(source, name).is_some(), "{source} {name}");
        }
    }
}
