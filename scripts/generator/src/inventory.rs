//! The resources an account owns in one region: instance ids, buckets, keys, functions...
//!
//! Payloads refer to these so that a stream talks about a stable, plausible set of things
//! (the same bucket is read all week, the same three instances report to SSM), as real trails do.

use rand::Rng;

use crate::rng::{self, Rand};

const COMPANIES: &[&str] = &[
    "acme", "globex", "initech", "umbrella", "hooli", "vandelay", "wonka", "stark",
];
pub const FUNCTION_NAMES: &[&str] = &[
    "orders-api",
    "image-resizer",
    "nightly-backup",
    "billing-export",
];
const APPS: &[&str] = &["orders", "billing", "catalog", "auth"];

/// Named resources of one account in one region.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub account: String,
    pub region: String,
    pub company: String,
    pub vpc: String,
    pub vpc_endpoint: String,
    pub subnets: Vec<String>,
    pub instances: Vec<String>,
    pub security_groups: Vec<String>,
    pub volumes: Vec<String>,
    pub amis: Vec<String>,
    pub buckets: Vec<String>,
    pub keys: Vec<String>,
    pub roles: Vec<String>,
    pub users: Vec<String>,
    pub stacks: Vec<String>,
    pub asgs: Vec<String>,
    pub load_balancers: Vec<String>,
    pub target_groups: Vec<String>,
}

impl Inventory {
    pub fn build(rng: &mut Rand, account: &str, region: &str) -> Inventory {
        let company = COMPANIES[rng.random_range(0..COMPANIES.len())].to_string();
        let ids = |rng: &mut Rand, prefix: &str, n: usize| -> Vec<String> {
            (0..n)
                .map(|_| format!("{prefix}-0{}", rng::hex(rng, 16)))
                .collect()
        };
        Inventory {
            vpc: format!("vpc-0{}", rng::hex(rng, 16)),
            vpc_endpoint: format!("vpce-0{}", rng::hex(rng, 16)),
            subnets: ids(rng, "subnet", 3),
            instances: ids(rng, "i", 6),
            security_groups: ids(rng, "sg", 5),
            volumes: ids(rng, "vol", 6),
            amis: ids(rng, "ami", 2),
            buckets: ["logs", "artifacts", "data", "backups", "static-site"]
                .iter()
                .map(|purpose| format!("{company}-{purpose}-{account}-{region}"))
                .collect(),
            keys: (0..3).map(|_| rng::uuid(rng)).collect(),
            roles: APPS
                .iter()
                .map(|app| format!("{app}-service-role"))
                .chain(["ci-deployer", "terraform", "app-server-role"].map(String::from))
                .collect(),
            users: [
                "alice.wong",
                "bruno.silva",
                "chen.li",
                "dana.kowalski",
                "svc-reporting",
            ]
            .map(String::from)
            .to_vec(),
            stacks: APPS.iter().map(|app| format!("{app}-prod")).collect(),
            asgs: APPS.iter().map(|app| format!("{app}-prod-asg")).collect(),
            load_balancers: APPS.iter().map(|app| format!("{app}-prod-alb")).collect(),
            target_groups: APPS
                .iter()
                .map(|app| format!("{app}-prod-tg/{}", rng::hex(rng, 16)))
                .collect(),
            company,
            account: account.to_string(),
            region: region.to_string(),
        }
    }

    pub fn app(&self, rng: &mut Rand) -> &'static str {
        APPS[rng.random_range(0..APPS.len())]
    }

    pub fn key_arn(&self, key: &str) -> String {
        format!("arn:aws:kms:{}:{}:key/{key}", self.region, self.account)
    }

    pub fn target_group_arn(&self, tg: &str) -> String {
        format!(
            "arn:aws:elasticloadbalancing:{}:{}:targetgroup/{tg}",
            self.region, self.account
        )
    }

    pub fn stack_arn(&self, stack: &str, id: &str) -> String {
        format!(
            "arn:aws:cloudformation:{}:{}:stack/{stack}/{id}",
            self.region, self.account
        )
    }
}

/// One element of `items`, uniformly.
pub fn pick<'a>(rng: &mut Rand, items: &'a [String]) -> &'a str {
    &items[rng.random_range(0..items.len())]
}
