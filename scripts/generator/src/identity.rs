//! Who makes the calls: the per-stream roster of principals and how each renders as a
//! CloudTrail `userIdentity`, `userAgent` and `sourceIPAddress`.
//!
//! A [`Roster`] is built once per stream (account x region) from the stream's generator. It holds
//! people (console IAM user, SSO roles, a CLI user), pipelines (`ci-deployer`, `terraform`),
//! workloads (Lambda function roles, an EC2 instance role), AWS services, and the root user with
//! a tiny weight. Session names and session access keys are derived from the principal and the
//! time, so one session keeps one key for its lifetime, as in real trails.

use serde::Serialize;

use crate::catalogue::Caller;
use crate::clock::{self, MINUTES_PER_HOUR, Minute};
use crate::rng::{self, Rand};
use rand::Rng;

/// 2019-era user agents, close to what CloudTrail recorded then.
pub const UA_CLI: &[&str] = &[
    "aws-cli/1.16.263 Python/3.7.4 Darwin/18.7.0 botocore/1.12.253",
    "aws-cli/1.16.266 Python/3.6.8 Linux/4.15.0-66-generic botocore/1.13.2",
    "aws-cli/1.16.220 Python/3.7.3 Windows/10 botocore/1.12.210",
];
pub const UA_CONSOLE: &[&str] = &[
    "AWS Internal",
    "console.amazonaws.com",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/78.0.3904.70 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:70.0) Gecko/20100101 Firefox/70.0",
];
pub const UA_TERRAFORM: &str = "aws-sdk-go/1.25.3 (go1.13.1; linux; amd64) APN/1.0 HashiCorp/1.0 Terraform/0.12.12 (+https://www.terraform.io)";
pub const UA_CI: &str =
    "aws-cli/1.16.263 Python/3.7.5 Linux/4.14.146-119.123.amzn2.x86_64 botocore/1.12.253";
pub const UA_LAMBDA_NODE: &str =
    "aws-sdk-nodejs/2.536.0 linux/v10.16.3 exec-env/AWS_Lambda_nodejs10.x callback";
pub const UA_LAMBDA_PYTHON: &str = "Boto3/1.9.221 Python/3.7.4 Linux/4.14.138-99.102.amzn2.x86_64 exec-env/AWS_Lambda_python3.7 Botocore/1.12.221";
pub const UA_JAVA: &str = "aws-sdk-java/1.11.656 Linux/4.14.146-119.123.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/25.232-b09 java/1.8.0_232 vendor/Oracle_Corporation";
pub const UA_SSM_AGENT: &str =
    "aws-sdk-go/1.25.10 (go1.12.10; linux; amd64) amazon-ssm-agent/2.3.722.0";

const PEOPLE: &[&str] = &[
    "alice.wong",
    "bruno.silva",
    "chen.li",
    "dana.kowalski",
    "emeka.obi",
];
const FUNCTIONS: &[(&str, &str)] = &[
    ("orders-api", UA_LAMBDA_NODE),
    ("image-resizer", UA_LAMBDA_PYTHON),
    ("nightly-backup", UA_LAMBDA_PYTHON),
    ("billing-export", UA_LAMBDA_NODE),
];

/// How the principal appears in `userIdentity`.
#[derive(Debug, Clone)]
pub enum Principal {
    IamUser {
        name: String,
        id: String,
        key: String,
    },
    Role {
        name: String,
        id: String,
        /// `/`, or `/aws-service-role/<service>/` for service-linked roles.
        path: String,
        sessions: Sessions,
    },
    AwsService,
    Root,
}

/// How a role's session names evolve over time.
#[derive(Debug, Clone)]
pub enum Sessions {
    /// Always the same session name (SSO e-mail, Lambda function name, service session).
    Fixed(String),
    /// One of a few EC2 instance ids, drawn per call.
    Instances(Vec<String>),
    /// A CI job id that changes every hour.
    CiJob,
    /// The Go SDK's nanosecond-stamped session, new every hour.
    GoSdk,
}

/// One principal with its habits.
#[derive(Debug, Clone)]
pub struct Actor {
    pub class: Caller,
    pub weight: f64,
    pub principal: Principal,
    pub agents: Vec<String>,
    pub ips: Vec<String>,
    /// Console sessions carry `sessionCredentialFromConsole` and MFA.
    pub console: bool,
    /// Set for AWS services acting on the account's behalf.
    pub invoked_by: Option<&'static str>,
}

/// The `userIdentity` object, fields in CloudTrail's order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_context: Option<SessionContext>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    pub session_issuer: SessionIssuer,
    pub web_id_federation_data: Empty,
    pub attributes: SessionAttributes,
}

#[derive(Debug, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Empty {}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributes {
    pub creation_date: String,
    pub mfa_authenticated: &'static str,
}

/// The principals of one account in one region.
#[derive(Debug, Clone)]
pub struct Roster {
    pub account: String,
    pub actors: Vec<Actor>,
}

impl Roster {
    /// Builds the roster of `account` in `region`; identical inputs give identical rosters.
    pub fn build(rng: &mut Rand, account: &str, region: &str) -> Roster {
        let office = vec![doc_ip(rng, "203.0.113"), doc_ip(rng, "198.51.100")];
        let nat = vec![nat_ip(rng, region), nat_ip(rng, region)];
        let mut actors = people(rng, &office);
        actors.extend(pipelines(rng));
        actors.extend(workloads(rng, &nat));
        actors.push(root(&office));
        Roster {
            account: account.to_string(),
            actors,
        }
    }

    /// A principal of `class` drawn by weight; service classes get a service principal.
    pub fn pick(&self, rng: &mut Rand, class: Caller) -> Actor {
        if let Caller::Service(name) = class {
            return service_actor(name);
        }
        let candidates: Vec<&Actor> = self.actors.iter().filter(|a| a.class == class).collect();
        let weights: Vec<f64> = candidates.iter().map(|a| a.weight).collect();
        candidates[rng::weighted(rng, &weights)].clone()
    }
}

fn doc_ip(rng: &mut Rand, net: &str) -> String {
    format!("{net}.{}", rng.random_range(10..250))
}

fn nat_ip(rng: &mut Rand, region: &str) -> String {
    let first = if region.starts_with("us-") {
        [3, 34, 52, 54]
    } else {
        [3, 18, 34, 52]
    };
    format!(
        "{}.{}.{}.{}",
        first[rng.random_range(0..first.len())],
        rng.random_range(0..255),
        rng.random_range(0..255),
        rng.random_range(1..255)
    )
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn iam_user(rng: &mut Rand, name: &str) -> Principal {
    Principal::IamUser {
        name: name.to_string(),
        id: format!("AIDA{}", rng::upper_alnum(rng, 17)),
        key: format!("AKIA{}", rng::upper_alnum(rng, 16)),
    }
}

fn role(rng: &mut Rand, name: &str, sessions: Sessions) -> Principal {
    Principal::Role {
        name: name.to_string(),
        id: format!("AROA{}", rng::upper_alnum(rng, 17)),
        path: "/".to_string(),
        sessions,
    }
}

fn actor(
    class: Caller,
    weight: f64,
    principal: Principal,
    agents: Vec<String>,
    ips: &[String],
) -> Actor {
    Actor {
        class,
        weight,
        principal,
        agents,
        ips: ips.to_vec(),
        console: class == Caller::Console,
        invoked_by: None,
    }
}

fn people(rng: &mut Rand, office: &[String]) -> Vec<Actor> {
    let first = rng.random_range(0..PEOPLE.len());
    let person = |i: usize| PEOPLE[(first + i) % PEOPLE.len()];
    let admin = format!("AWSReservedSSO_AdministratorAccess_{}", rng::hex(rng, 16));
    let readonly = format!("AWSReservedSSO_ReadOnlyAccess_{}", rng::hex(rng, 16));
    let email = |name: &str| format!("{name}@example.com");
    let console = strings(UA_CONSOLE);
    vec![
        actor(
            Caller::Console,
            3.0,
            iam_user(rng, person(0)),
            console.clone(),
            office,
        ),
        actor(
            Caller::Console,
            4.0,
            role(rng, &admin, Sessions::Fixed(email(person(1)))),
            console.clone(),
            office,
        ),
        actor(
            Caller::Console,
            3.0,
            role(rng, &readonly, Sessions::Fixed(email(person(2)))),
            console,
            office,
        ),
        actor(
            Caller::Cli,
            2.0,
            iam_user(rng, person(3)),
            strings(&UA_CLI[..2]),
            office,
        ),
        actor(
            Caller::Cli,
            2.0,
            role(rng, &admin, Sessions::Fixed(email(person(1)))),
            strings(&UA_CLI[1..]),
            office,
        ),
    ]
}

fn pipelines(rng: &mut Rand) -> Vec<Actor> {
    let runners = vec![doc_ip(rng, "192.0.2")];
    vec![
        actor(
            Caller::Pipeline,
            3.0,
            role(rng, "ci-deployer", Sessions::CiJob),
            vec![UA_CI.to_string()],
            &runners,
        ),
        actor(
            Caller::Pipeline,
            2.0,
            role(rng, "terraform", Sessions::GoSdk),
            vec![UA_TERRAFORM.to_string()],
            &runners,
        ),
    ]
}

fn workloads(rng: &mut Rand, nat: &[String]) -> Vec<Actor> {
    let mut actors: Vec<Actor> = FUNCTIONS
        .iter()
        .map(|(name, agent)| {
            let principal = role(
                rng,
                &format!("{name}-role"),
                Sessions::Fixed(name.to_string()),
            );
            actor(
                Caller::Workload,
                2.0,
                principal,
                vec![agent.to_string()],
                nat,
            )
        })
        .collect();
    let instances = (0..3)
        .map(|_| format!("i-0{}", rng::hex(rng, 16)))
        .collect();
    let principal = role(rng, "app-server-role", Sessions::Instances(instances));
    actors.push(actor(
        Caller::Workload,
        4.0,
        principal,
        vec![UA_JAVA.to_string()],
        nat,
    ));
    actors
}

fn root(office: &[String]) -> Actor {
    actor(
        Caller::Console,
        0.05,
        Principal::Root,
        strings(&UA_CONSOLE[2..]),
        office,
    )
}

/// An AWS service acting for the account: AWS Config through its service-linked role, other
/// services as an `AWSService` principal.
pub fn service_actor(name: &'static str) -> Actor {
    let principal = if name == "config.amazonaws.com" {
        Principal::Role {
            name: "AWSServiceRoleForConfig".to_string(),
            id: format!("AROA{}", rng::stable_token(name, 17)),
            path: "/aws-service-role/config.amazonaws.com/".to_string(),
            sessions: Sessions::Fixed("AWSConfig-Describe".to_string()),
        }
    } else {
        Principal::AwsService
    };
    Actor {
        class: Caller::Service(name),
        weight: 1.0,
        principal,
        agents: vec![name.to_string()],
        ips: vec![name.to_string()],
        console: false,
        invoked_by: Some(name),
    }
}

impl Actor {
    /// This actor's identity at `minute`, rendered for `account`.
    pub fn identity(&self, rng: &mut Rand, account: &str, minute: Minute) -> UserIdentity {
        match &self.principal {
            Principal::IamUser { name, id, key } => {
                self.user_identity(account, minute, name, id, key)
            }
            Principal::Role {
                name,
                id,
                path,
                sessions,
            } => {
                let session = session_name(rng, sessions, minute);
                self.role_identity(account, minute, name, id, path, &session)
            }
            Principal::AwsService => UserIdentity {
                kind: Some("AWSService"),
                principal_id: None,
                arn: None,
                account_id: None,
                access_key_id: None,
                user_name: None,
                session_context: None,
                invoked_by: self.invoked_by,
            },
            Principal::Root => self.root_identity(account, minute),
        }
    }

    fn user_identity(
        &self,
        account: &str,
        minute: Minute,
        name: &str,
        id: &str,
        key: &str,
    ) -> UserIdentity {
        let (access_key_id, session_context) = if self.console {
            let key = format!(
                "ASIA{}",
                rng::stable_token(&format!("{id}/{}", session_start(minute)), 16)
            );
            (
                key,
                Some(self.session_context(SessionIssuer::default(), minute)),
            )
        } else {
            (key.to_string(), None)
        };
        UserIdentity {
            kind: Some("IAMUser"),
            principal_id: Some(id.to_string()),
            arn: Some(format!("arn:aws:iam::{account}:user/{name}")),
            account_id: Some(account.to_string()),
            access_key_id: Some(access_key_id),
            user_name: Some(name.to_string()),
            session_context,
            invoked_by: None,
        }
    }

    fn role_identity(
        &self,
        account: &str,
        minute: Minute,
        name: &str,
        id: &str,
        path: &str,
        session: &str,
    ) -> UserIdentity {
        let issuer = SessionIssuer {
            kind: Some("Role"),
            principal_id: Some(id.to_string()),
            arn: Some(format!("arn:aws:iam::{account}:role{path}{name}")),
            account_id: Some(account.to_string()),
            user_name: Some(name.to_string()),
        };
        let key_label = format!("{id}/{session}/{}", session_start(minute));
        UserIdentity {
            kind: Some("AssumedRole"),
            principal_id: Some(format!("{id}:{session}")),
            arn: Some(format!(
                "arn:aws:sts::{account}:assumed-role/{name}/{session}"
            )),
            account_id: Some(account.to_string()),
            access_key_id: self
                .invoked_by
                .is_none()
                .then(|| format!("ASIA{}", rng::stable_token(&key_label, 16))),
            user_name: None,
            session_context: Some(self.session_context(issuer, minute)),
            invoked_by: self.invoked_by,
        }
    }

    fn root_identity(&self, account: &str, minute: Minute) -> UserIdentity {
        UserIdentity {
            kind: Some("Root"),
            principal_id: Some(account.to_string()),
            arn: Some(format!("arn:aws:iam::{account}:root")),
            account_id: Some(account.to_string()),
            access_key_id: Some(format!(
                "ASIA{}",
                rng::stable_token(&format!("root/{account}/{}", session_start(minute)), 16)
            )),
            user_name: None,
            session_context: Some(self.session_context(SessionIssuer::default(), minute)),
            invoked_by: None,
        }
    }

    fn session_context(&self, session_issuer: SessionIssuer, minute: Minute) -> SessionContext {
        SessionContext {
            session_issuer,
            web_id_federation_data: Empty {},
            attributes: SessionAttributes {
                creation_date: clock::event_time(session_start(minute), 0),
                mfa_authenticated: if self.console { "true" } else { "false" },
            },
        }
    }

    /// The user agent of one call.
    pub fn agent<'a>(&'a self, rng: &mut Rand) -> &'a str {
        &self.agents[rng.random_range(0..self.agents.len())]
    }

    /// The source IP of one call.
    pub fn ip<'a>(&'a self, rng: &mut Rand) -> &'a str {
        &self.ips[rng.random_range(0..self.ips.len())]
    }

    /// The role name and session of an assumed-role principal, for labels.
    pub fn arn(&self, account: &str) -> String {
        match &self.principal {
            Principal::IamUser { name, .. } => format!("arn:aws:iam::{account}:user/{name}"),
            Principal::Role {
                name,
                sessions: Sessions::Fixed(s),
                ..
            } => {
                format!("arn:aws:sts::{account}:assumed-role/{name}/{s}")
            }
            Principal::Role { name, .. } => format!("arn:aws:iam::{account}:role/{name}"),
            Principal::AwsService => self.invoked_by.unwrap_or("AWS Internal").to_string(),
            Principal::Root => format!("arn:aws:iam::{account}:root"),
        }
    }
}

/// Sessions start on the hour (one-hour role sessions), so a session's key is stable within it.
fn session_start(minute: Minute) -> Minute {
    minute - minute.rem_euclid(MINUTES_PER_HOUR)
}

fn session_name(rng: &mut Rand, sessions: &Sessions, minute: Minute) -> String {
    let hour = minute.div_euclid(MINUTES_PER_HOUR);
    match sessions {
        Sessions::Fixed(name) => name.clone(),
        Sessions::Instances(ids) => ids[rng.random_range(0..ids.len())].clone(),
        Sessions::CiJob => format!("gitlab-ci-job-{}", 31_000_000 + hour.rem_euclid(1_000_000)),
        Sessions::GoSdk => format!(
            "aws-go-sdk-{}",
            session_start(minute) * 60_000_000_000 + 523_310_002
        ),
    }
}

/// The identity of an `AwsServiceEvent`: only the account and the service, no `type`.
pub fn service_event_identity(account: &str, service: &'static str) -> UserIdentity {
    UserIdentity {
        kind: None,
        principal_id: None,
        arn: None,
        account_id: Some(account.to_string()),
        access_key_id: None,
        user_name: None,
        session_context: None,
        invoked_by: Some(service),
    }
}

/// A one-off actor for injected anomalies: `role/session` or an IAM user, fixed agent and IP.
pub fn scripted_actor(rng: &mut Rand, principal: &str, agent: &str, ip: &str) -> Actor {
    let principal = match principal.split_once('/') {
        Some((role_name, session)) => role(rng, role_name, Sessions::Fixed(session.to_string())),
        None => iam_user(rng, principal),
    };
    actor(
        Caller::Cli,
        1.0,
        principal,
        vec![agent.to_string()],
        &[ip.to_string()],
    )
}
