//! `requestParameters`, `responseElements`, `resources` and `additionalEventData` per API.
//!
//! Shapes follow real records of the same APIs (see `shared/real-cloudtrail/`): EC2's
//! `items` wrappers, S3's `Host` and `additionalEventData`, STS credentials with a (fake)
//! session token, Java-style dates in IAM/STS responses. Describe/List/Get calls mostly carry a
//! `null` response, as CloudTrail records them. Values come from the stream's [`Inventory`].

use rand::Rng;
use serde::Serialize;
use serde_json::{Value, json};

use crate::catalogue::Api;
use crate::clock::{self, Minute};
use crate::inventory::{FUNCTION_NAMES, Inventory, pick};
use crate::rng::{self, Rand};

/// Everything a payload builder may use.
pub struct Ctx<'a> {
    pub rng: &'a mut Rand,
    pub inv: &'a Inventory,
    pub minute: Minute,
    pub second: u32,
}

/// One element of `resources`, fields in CloudTrail's order. (Other nested objects are
/// `serde_json` maps, whose keys serialise sorted.)
#[derive(Debug, Clone, Serialize)]
pub struct Resource {
    #[serde(rename = "accountId")]
    pub account_id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(rename = "ARN")]
    pub arn: String,
}

/// The API-specific parts of one record.
#[derive(Debug, Default)]
pub struct Payload {
    pub request: Value,
    pub response: Value,
    pub resources: Option<Vec<Resource>>,
    pub additional: Option<Value>,
    /// The resource named in error messages (`{resource}`).
    pub subject: String,
    /// The requestID when the response repeats it (EC2's `requestId`).
    pub request_id: Option<String>,
    /// The TLS host header when it is not the service endpoint (S3 virtual-hosted buckets).
    pub host: Option<String>,
}

impl Payload {
    fn request(request: Value) -> Payload {
        Payload {
            request,
            response: Value::Null,
            ..Payload::default()
        }
    }

    fn response(mut self, response: Value) -> Payload {
        self.response = response;
        self
    }

    fn subject(mut self, subject: impl Into<String>) -> Payload {
        self.subject = subject.into();
        self
    }

    fn resource(mut self, account: &str, kind: &'static str, arn: String) -> Payload {
        self.resources = Some(vec![Resource {
            account_id: account.to_string(),
            kind,
            arn,
        }]);
        self
    }
}

/// The payload of one call to `api`.
pub fn build(api: &Api, ctx: &mut Ctx) -> Payload {
    let name = api.name;
    match api.source() {
        "ec2.amazonaws.com" => ec2(name, ctx),
        "s3.amazonaws.com" => s3(name, ctx),
        "iam.amazonaws.com" => iam(name, ctx),
        "sts.amazonaws.com" => sts(name, ctx),
        "kms.amazonaws.com" => kms(name, ctx),
        "lambda.amazonaws.com" => lambda(name, ctx),
        "monitoring.amazonaws.com" => monitoring(name, ctx),
        "logs.amazonaws.com" => logs(name, ctx),
        "ssm.amazonaws.com" => ssm(name, ctx),
        "secretsmanager.amazonaws.com" => secrets(name, ctx),
        "cloudformation.amazonaws.com" => cloudformation(name, ctx),
        "autoscaling.amazonaws.com" => autoscaling(name, ctx),
        "elasticloadbalancing.amazonaws.com" => elb(name, ctx),
        "cloudtrail.amazonaws.com" => cloudtrail(name, ctx),
        "signin.amazonaws.com" => signin(ctx),
        _ => Payload::default(),
    }
}

fn items(values: Vec<Value>) -> Value {
    json!({ "items": values })
}

fn filter(name: &str, value: &str) -> Value {
    json!({ "items": [{ "name": name, "valueSet": { "items": [{ "value": value }] } }] })
}

fn epoch_ms(ctx: &Ctx) -> i64 {
    ctx.minute * 60_000 + i64::from(ctx.second) * 1000
}

fn private_ip(rng: &mut Rand) -> String {
    format!(
        "10.0.{}.{}",
        rng.random_range(0..64),
        rng.random_range(4..250)
    )
}

fn ec2(name: &str, ctx: &mut Ctx) -> Payload {
    let inv = ctx.inv;
    let rng = &mut *ctx.rng;
    let instance = pick(rng, &inv.instances).to_string();
    let request_id = rng::uuid(rng);
    let ok = |extra: Value| {
        let mut response = json!({ "requestId": request_id, "_return": true });
        if let (Some(map), Value::Object(extra)) = (response.as_object_mut(), extra) {
            map.extend(extra);
        }
        response
    };
    let mut payload = match name {
        "DescribeInstances" => Payload::request(if rng.random_bool(0.5) {
            json!({ "instancesSet": items(vec![json!({ "instanceId": instance })]), "filterSet": {} })
        } else {
            json!({ "instancesSet": {}, "filterSet": filter("tag:aws:autoscaling:groupName", pick(rng, &inv.asgs)) })
        }),
        "DescribeInstanceStatus" => Payload::request(json!({
            "instancesSet": items(vec![json!({ "instanceId": instance })]),
            "filterSet": {},
            "includeAllInstances": false
        })),
        "DescribeSecurityGroups" => Payload::request(json!({
            "securityGroupSet": {},
            "securityGroupIdSet": items(vec![json!({ "groupId": pick(rng, &inv.security_groups) })]),
            "filterSet": {}
        })),
        "DescribeVolumes" => Payload::request(json!({
            "volumeSet": {},
            "filterSet": filter("attachment.instance-id", &instance)
        })),
        "DescribeSubnets" => Payload::request(json!({ "subnetSet": {}, "filterSet": filter("vpc-id", &inv.vpc) })),
        "DescribeVpcs" => Payload::request(json!({ "vpcSet": {}, "filterSet": {} })),
        "DescribeNetworkInterfaces" => Payload::request(json!({
            "networkInterfaceIdSet": {},
            "filterSet": filter("description", "AWS Lambda VPC ENI*")
        })),
        "RunInstances" => run_instances(ctx, request_id.clone()),
        "TerminateInstances" | "StartInstances" | "StopInstances" => {
            let (from, to) = match name {
                "TerminateInstances" => ((16, "running"), (32, "shutting-down")),
                "StartInstances" => ((80, "stopped"), (0, "pending")),
                _ => ((16, "running"), (64, "stopping")),
            };
            Payload::request(json!({ "instancesSet": items(vec![json!({ "instanceId": instance })]) }))
                .response(json!({
                    "requestId": request_id,
                    "instancesSet": items(vec![json!({
                        "instanceId": instance,
                        "currentState": { "code": to.0, "name": to.1 },
                        "previousState": { "code": from.0, "name": from.1 }
                    })])
                }))
                .subject(instance)
        }
        "CreateTags" => Payload::request(json!({
            "resourcesSet": items(vec![json!({ "resourceId": instance })]),
            "tagSet": items(vec![json!({ "key": "Owner", "value": format!("team-{}", inv.app(rng)) })])
        }))
        .response(ok(json!({}))),
        "AuthorizeSecurityGroupIngress" | "RevokeSecurityGroupIngress" => {
            let port = [22, 443, 5432, 8080][rng.random_range(0..4)];
            let group = pick(rng, &inv.security_groups).to_string();
            Payload::request(json!({
                "groupId": group,
                "ipPermissions": items(vec![json!({
                    "ipProtocol": "tcp", "fromPort": port, "toPort": port, "groups": {},
                    "ipRanges": items(vec![json!({ "cidrIp": "10.0.0.0/16" })]),
                    "ipv6Ranges": {}, "prefixListIds": {}
                })])
            }))
            .response(ok(json!({})))
            .subject(group)
        }
        "CreateSnapshot" => {
            let volume = pick(rng, &inv.volumes).to_string();
            let description = format!("nightly-backup {}", &clock::event_time(ctx.minute, 0)[..10]);
            let snapshot = format!("snap-0{}", rng::hex(rng, 16));
            Payload::request(json!({ "volumeId": volume, "description": description })).response(json!({
                "requestId": request_id, "snapshotId": snapshot, "volumeId": volume, "status": "pending",
                "startTime": epoch_ms(ctx), "progress": "", "ownerId": inv.account, "volumeSize": 100,
                "encrypted": true, "description": description
            }))
        }
        "DeleteSnapshot" => {
            let snapshot = format!("snap-0{}", rng::hex(rng, 16));
            Payload::request(json!({ "snapshotId": snapshot })).response(ok(json!({})))
        }
        _ => Payload::default(),
    };
    payload.request_id = Some(request_id);
    payload
}

fn run_instances(ctx: &mut Ctx, request_id: String) -> Payload {
    let inv = ctx.inv;
    let launched = epoch_ms(ctx);
    let rng = &mut *ctx.rng;
    let ami = pick(rng, &inv.amis).to_string();
    let subnet = pick(rng, &inv.subnets).to_string();
    let instance_type = ["t3.medium", "m5.large", "c5.xlarge"][rng.random_range(0..3)];
    let instance = format!("i-0{}", rng::hex(rng, 16));
    let ip = private_ip(rng);
    let zone = format!("{}{}", inv.region, ['a', 'b', 'c'][rng.random_range(0..3)]);
    let app = inv.app(rng);
    let tags = json!({ "items": [{ "resourceType": "instance", "tags": [{ "key": "app", "value": app }] }] });
    Payload::request(json!({
        "instancesSet": items(vec![json!({ "imageId": ami, "minCount": 1, "maxCount": 1 })]),
        "instanceType": instance_type, "blockDeviceMapping": {}, "monitoring": { "enabled": false },
        "subnetId": subnet, "disableApiTermination": false, "clientToken": rng::uuid(rng),
        "iamInstanceProfile": { "name": "app-server-profile" }, "tagSpecificationSet": tags
    }))
    .response(json!({
        "requestId": request_id,
        "reservationId": format!("r-0{}", rng::hex(rng, 16)),
        "ownerId": inv.account,
        "groupSet": {},
        "instancesSet": items(vec![json!({
            "instanceId": instance, "imageId": ami, "instanceState": { "code": 0, "name": "pending" },
            "privateDnsName": format!("ip-{}.ec2.internal", ip.replace('.', "-")), "amiLaunchIndex": 0,
            "instanceType": instance_type, "launchTime": launched,
            "placement": { "availabilityZone": zone, "tenancy": "default" },
            "monitoring": { "state": "disabled" }, "subnetId": subnet, "vpcId": inv.vpc,
            "privateIpAddress": ip, "architecture": "x86_64", "rootDeviceType": "ebs",
            "rootDeviceName": "/dev/xvda", "virtualizationType": "hvm", "hypervisor": "xen"
        })])
    }))
    .subject(subnet)
}

fn s3(name: &str, ctx: &mut Ctx) -> Payload {
    let inv = ctx.inv;
    let rng = &mut *ctx.rng;
    let additional = json!({
        "SignatureVersion": "SigV4",
        "CipherSuite": "ECDHE-RSA-AES128-GCM-SHA256",
        "bytesTransferredIn": 0,
        "AuthenticationMethod": "AuthHeader",
        "x-amz-id-2": format!("{}=", rng::alnum(rng, 75)),
        "bytesTransferredOut": rng.random_range(200..1400)
    });
    if name == "ListBuckets" {
        let mut payload = Payload::request(json!({ "Host": "s3.amazonaws.com" }));
        payload.additional = Some(additional);
        payload.host = Some("s3.amazonaws.com".to_string());
        return payload;
    }
    let bucket = if name == "CreateBucket" {
        format!("{}-scratch-{}", inv.company, rng::hex(rng, 8))
    } else {
        pick(rng, &inv.buckets).to_string()
    };
    let host = format!("{bucket}.s3.amazonaws.com");
    let mut request = json!({ "bucketName": bucket, "Host": host });
    let extra = match name {
        "GetBucketAcl" => json!({ "acl": "" }),
        "GetBucketLocation" => json!({ "location": "" }),
        "GetBucketPolicy" => json!({ "policy": "" }),
        "GetBucketEncryption" => json!({ "encryption": "" }),
        "PutBucketPolicy" => json!({ "policy": "", "bucketPolicy": {
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
                "Condition": { "Bool": { "aws:SecureTransport": "false" } }
            }]
        } }),
        "PutBucketTagging" => json!({ "tagging": "", "Tagging": {
            "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/",
            "TagSet": { "Tag": [{ "Key": "team", "Value": inv.app(rng) }] }
        } }),
        "CreateBucket" if inv.region != "us-east-1" => json!({ "CreateBucketConfiguration": {
            "xmlns": "http://s3.amazonaws.com/doc/2006-03-01/", "LocationConstraint": inv.region
        } }),
        _ => json!({}),
    };
    if let (Some(map), Value::Object(extra)) = (request.as_object_mut(), extra) {
        map.extend(extra);
    }
    let mut payload = Payload::request(request)
        .resource(
            &inv.account,
            "AWS::S3::Bucket",
            format!("arn:aws:s3:::{bucket}"),
        )
        .subject(bucket);
    payload.additional = Some(additional);
    payload.host = Some(host);
    payload
}

fn java_date(minute: Minute, second: u32) -> String {
    clock::java_date(minute, second)
}

fn iam(name: &str, ctx: &mut Ctx) -> Payload {
    let inv = ctx.inv;
    let rng = &mut *ctx.rng;
    let role = pick(rng, &inv.roles).to_string();
    let user = pick(rng, &inv.users).to_string();
    let managed = [
        "AmazonS3ReadOnlyAccess",
        "CloudWatchAgentServerPolicy",
        "AmazonSSMManagedInstanceCore",
    ][rng.random_range(0..3)];
    let managed_arn = format!("arn:aws:iam::aws:policy/{managed}");
    match name {
        "GetRole" | "ListAttachedRolePolicies" => Payload::request(json!({ "roleName": role })).subject(role),
        "ListRoles" => Payload::request(Value::Null),
        "GetPolicy" => Payload::request(json!({ "policyArn": managed_arn })),
        "GetUser" => Payload::request(json!({ "userName": user })).subject(user),
        "CreateRole" => {
            let new_role = format!("{}-task-role-{}", inv.app(rng), rng::hex(rng, 4));
            let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
            let role_id = format!("AROA{}", rng::upper_alnum(rng, 17));
            Payload::request(json!({ "roleName": new_role, "assumeRolePolicyDocument": trust, "path": "/" }))
                .response(json!({ "role": {
                    "path": "/", "roleName": new_role, "roleId": role_id,
                    "arn": format!("arn:aws:iam::{}:role/{new_role}", inv.account),
                    "createDate": java_date(ctx.minute, ctx.second),
                    "assumeRolePolicyDocument": "%7B%22Version%22%3A%222012-10-17%22%7D"
                } }))
                .subject(new_role)
        }
        "AttachRolePolicy" => Payload::request(json!({ "roleName": role, "policyArn": managed_arn })).subject(role),
        "PutRolePolicy" => Payload::request(json!({
            "roleName": role,
            "policyName": "inline-s3-access",
            "policyDocument": format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["s3:GetObject"],"Resource":"arn:aws:s3:::{}/*"}}]}}"#, pick(rng, &inv.buckets))
        }))
        .subject(role),
        "CreateAccessKey" => Payload::request(json!({ "userName": user }))
            .response(json!({ "accessKey": {
                "userName": user, "accessKeyId": format!("AKIA{}", rng::upper_alnum(rng, 16)),
                "status": "Active", "createDate": java_date(ctx.minute, ctx.second)
            } }))
            .subject(user),
        _ => Payload::default(),
    }
}

fn credentials(rng: &mut Rand, minute: Minute, second: u32) -> Value {
    json!({
        "accessKeyId": format!("ASIA{}", rng::upper_alnum(rng, 16)),
        "sessionToken": format!("IQoJb3JpZ2luX2VjE{}", rng::alnum(rng, 180)),
        "expiration": clock::java_date(minute + 60, second)
    })
}

fn sts(name: &str, ctx: &mut Ctx) -> Payload {
    let inv = ctx.inv;
    let (minute, second) = (ctx.minute, ctx.second);
    let rng = &mut *ctx.rng;
    match name {
        "AssumeRole" => {
            let role = pick(rng, &inv.roles).to_string();
            let session = FUNCTION_NAMES[rng.random_range(0..FUNCTION_NAMES.len())];
            let role_arn = format!("arn:aws:iam::{}:role/{role}", inv.account);
            let role_id = format!("AROA{}", rng::stable_token(&role_arn, 17));
            Payload::request(
                json!({ "roleArn": role_arn, "roleSessionName": session, "durationSeconds": 3600 }),
            )
            .response(json!({
                "credentials": credentials(rng, minute, second),
                "assumedRoleUser": {
                    "assumedRoleId": format!("{role_id}:{session}"),
                    "arn": format!("arn:aws:sts::{}:assumed-role/{role}/{session}", inv.account)
                }
            }))
            .resource(&inv.account, "AWS::IAM::Role", role_arn.clone())
            .subject(role_arn)
        }
        "GetSessionToken" => Payload::request(json!({ "durationSeconds": 43200 }))
            .response(json!({ "credentials": credentials(rng, minute + 660, second) })),
        _ => Payload::request(Value::Null),
    }
}

fn kms(name: &str, ctx: &mut Ctx) -> Payload {
    let inv = ctx.inv;
    let rng = &mut *ctx.rng;
    let key_arn = inv.key_arn(pick(rng, &inv.keys));
    let request = match name {
        "Decrypt" => {
            let function = FUNCTION_NAMES[rng.random_range(0..FUNCTION_NAMES.len())];
            json!({ "encryptionContext": {
                "aws:lambda:FunctionArn": format!("arn:aws:lambda:{}:{}:function:{function}", inv.region, inv.account)
            } })
        }
        "GenerateDataKey" => json!({
            "keyId": "alias/aws/s3",
            "keySpec": "AES_256",
            "encryptionContext": { "aws:s3:arn": format!("arn:aws:s3:::{}/{}", pick(rng, &inv.buckets), rng::hex(rng, 12)) }
        }),
        "Encrypt" => json!({ "keyId": "alias/app-data" }),
        "DescribeKey" => json!({ "keyId": "alias/app-data" }),
        "CreateGrant" => json!({
            "keyId": key_arn,
            "granteePrincipal": "ec2.amazonaws.com",
            "constraints": { "encryptionContextSubset": { "aws:ebs:id": pick(rng, &inv.volumes) } },
            "operations": ["Decrypt", "Encrypt", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo", "CreateGrant"]
        }),
        _ => Value::Null,
    };
    let mut payload = Payload::request(request)
        .resource(&inv.account, "AWS::KMS::Key", key_arn.clone())
        .subject(key_arn);
    if name == "CreateGrant" {
        payload.response = json!({ "grantId": rng::hex(rng, 64) });
    }
    payload
}

fn function_config(ctx: &mut Ctx, function: &str) -> Value {
    let inv = ctx.inv;
    let modified = clock::event_time(ctx.minute, ctx.second).replace('Z', ".000+0000");
    let rng = &mut *ctx.rng;
    json!({
        "functionName": function,
        "functionArn": format!("arn:aws:lambda:{}:{}:function:{function}", inv.region, inv.account),
        "runtime": "nodejs10.x",
        "role": format!("arn:aws:iam::{}:role/{function}-role", inv.account),
        "handler": "index.handler",
        "codeSize": rng.random_range(200_000..9_000_000),
        "description": "",
        "timeout": 30,
        "memorySize": 512,
        "lastModified": modified,
        "codeSha256": format!("{}=", rng::alnum(rng, 43)),
        "version": "$LATEST",
        "tracingConfig": { "mode": "PassThrough" },
        "revisionId": rng::uuid(rng)
    })
}

fn lambda(name: &str, ctx: &mut Ctx) -> Payload {
    let function = FUNCTION_NAMES[ctx.rng.random_range(0..FUNCTION_NAMES.len())];
    match name {
        "ListFunctions20150331" => Payload::request(Value::Null),
        "GetFunction20150331v2" | "GetPolicy20150331v2" => {
            Payload::request(json!({ "functionName": function })).subject(function)
        }
        "UpdateFunctionCode20150331v2" => {
            let bucket = pick(ctx.rng, &ctx.inv.buckets).to_string();
            let key = format!("lambda/{function}/{}.zip", rng::hex(ctx.rng, 12));
            Payload::request(json!({ "functionName": function, "s3Bucket": bucket, "s3Key": key, "publish": false, "dryRun": false }))
                .response(function_config(ctx, function))
        }
        "UpdateFunctionConfiguration20150331v2" => Payload::request(json!({
            "functionName": function, "timeout": 30, "memorySize": 512,
            "environment": { "variables": "HIDDEN_DUE_TO_SECURITY_REASONS" }
        }))
        .response(function_config(ctx, function)),
        "CreateFunction20150331" => {
            let new_function = format!("{}-worker", ctx.inv.app(ctx.rng));
            Payload::request(json!({
                "functionName": new_function, "runtime": "nodejs10.x",
                "role": format!("arn:aws:iam::{}:role/{new_function}-role", ctx.inv.account),
                "handler": "index.handler", "code": {}, "timeout": 30, "memorySize": 256, "publish": true
            }))
            .response(function_config(ctx, &new_function))
        }
        _ => Payload::default(),
    }
}

fn monitoring(name: &str, ctx: &mut Ctx) -> Payload {
    let inv = ctx.inv;
    let end = clock::java_date(ctx.minute, 0);
    let start = clock::java_date(ctx.minute - 180, 0);
    let rng = &mut *ctx.rng;
    let app = inv.app(rng);
    match name {
        "DescribeAlarms" => {
            Payload::request(json!({ "alarmNames": [format!("{app}-prod-5xx-rate")] }))
        }
        "GetMetricData" => Payload::request(json!({
            "metricDataQueries": [{
                "id": "m0",
                "metricStat": {
                    "metric": {
                        "namespace": "AWS/EC2", "metricName": "CPUUtilization",
                        "dimensions": [{ "name": "InstanceId", "value": pick(rng, &inv.instances) }]
                    },
                    "period": 300, "stat": "Average"
                },
                "returnData": true
            }],
            "startTime": start, "endTime": end
        })),
        "PutMetricAlarm" => Payload::request(json!({
            "alarmName": format!("{app}-prod-5xx-rate"), "actionsEnabled": true,
            "alarmActions": [format!("arn:aws:sns:{}:{}:ops-alerts", inv.region, inv.account)],
            "metricName": "HTTPCode_Target_5XX_Count", "namespace": "AWS/ApplicationELB",
            "statistic": "Sum", "period": 60, "evaluationPeriods": 5, "threshold": 25.0,
            "comparisonOperator": "GreaterThanThreshold", "treatMissingData": "notBreaching"
        })),
        _ => Payload::default(),
    }
}

fn logs(name: &str, ctx: &mut Ctx) -> Payload {
    let date = clock::event_time(ctx.minute, 0)[..10].replace('-', "/");
    let now_ms = epoch_ms(ctx);
    let rng = &mut *ctx.rng;
    let function = FUNCTION_NAMES[rng.random_range(0..FUNCTION_NAMES.len())];
    let group = format!("/aws/lambda/{function}");
    match name {
        "CreateLogStream" => Payload::request(json!({
            "logGroupName": group,
            "logStreamName": format!("{date}/[$LATEST]{}", rng::hex(rng, 32))
        }))
        .subject(group),
        "DescribeLogGroups" => Payload::request(json!({ "logGroupNamePrefix": "/aws/lambda/" })),
        "FilterLogEvents" => Payload::request(json!({
            "logGroupName": group, "startTime": now_ms - 3_600_000, "endTime": now_ms,
            "filterPattern": "ERROR", "interleaved": true
        })),
        "PutRetentionPolicy" => {
            Payload::request(json!({ "logGroupName": group, "retentionInDays": 30 }))
        }
        _ => Payload::default(),
    }
}

fn ssm(name: &str, ctx: &mut Ctx) -> Payload {
    let inv = ctx.inv;
    let requested = clock::java_date(ctx.minute, ctx.second);
    let rng = &mut *ctx.rng;
    let app = inv.app(rng);
    let parameter = format!(
        "/prod/{app}/{}",
        ["db-host", "api-url", "feature-flags"][rng.random_range(0..3)]
    );
    match name {
        "UpdateInstanceInformation" => {
            let ip = private_ip(rng);
            Payload::request(json!({
                "instanceId": pick(rng, &inv.instances), "agentVersion": "2.3.722.0", "agentStatus": "Active",
                "platformType": "Linux", "platformName": "Amazon Linux", "platformVersion": "2",
                "iPAddress": ip, "computerName": format!("ip-{}.ec2.internal", ip.replace('.', "-")),
                "agentName": "amazon-ssm-agent", "availabilityZone": format!("{}a", inv.region)
            }))
        }
        "GetParameter" => Payload::request(json!({ "name": parameter, "withDecryption": true }))
            .subject(parameter),
        "GetParameters" => Payload::request(
            json!({ "names": [parameter, format!("/prod/{app}/log-level")], "withDecryption": true }),
        ),
        "PutParameter" => Payload::request(json!({
            "name": parameter, "type": "SecureString", "keyId": "alias/aws/ssm", "overwrite": true,
            "value": "HIDDEN_DUE_TO_SECURITY_REASONS"
        }))
        .response(json!({ "version": rng.random_range(2..40), "tier": "Standard" })),
        "SendCommand" => {
            let instances = vec![
                pick(rng, &inv.instances).to_string(),
                pick(rng, &inv.instances).to_string(),
            ];
            Payload::request(json!({
                "instanceIds": instances, "documentName": "AWS-RunPatchBaseline",
                "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS", "interactive": false
            }))
            .response(json!({ "command": {
                "commandId": rng::uuid(rng), "documentName": "AWS-RunPatchBaseline", "documentVersion": "",
                "instanceIds": instances, "requestedDateTime": requested, "status": "Pending",
                "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS", "maxConcurrency": "50", "maxErrors": "0"
            } }))
        }
        _ => Payload::default(),
    }
}

fn secrets(name: &str, ctx: &mut Ctx) -> Payload {
    let inv = ctx.inv;
    let rng = &mut *ctx.rng;
    let secret = format!("prod/{}/db", inv.app(rng));
    let arn = format!(
        "arn:aws:secretsmanager:{}:{}:secret:{secret}-{}",
        inv.region,
        inv.account,
        rng::alnum(rng, 6)
    );
    match name {
        "PutSecretValue" => {
            let version = rng::uuid(rng);
            Payload::request(json!({ "secretId": arn, "clientRequestToken": version, "versionStages": ["AWSPENDING"] }))
                .response(json!({ "arn": arn, "name": secret, "versionId": version, "versionStages": ["AWSPENDING"] }))
        }
        "RotationSucceeded" => {
            let mut payload = Payload::request(Value::Null);
            payload.additional = Some(json!({ "SecretId": arn }));
            payload
        }
        _ => Payload::request(json!({ "secretId": secret })).subject(secret),
    }
}

fn cloudformation(name: &str, ctx: &mut Ctx) -> Payload {
    let inv = ctx.inv;
    let rng = &mut *ctx.rng;
    let stack = pick(rng, &inv.stacks).to_string();
    let day = ctx.minute / clock::MINUTES_PER_DAY;
    let change_set = format!("deploy-{}", 1000 + day % 10_000);
    match name {
        "CreateChangeSet" => {
            let stack_id = rng::uuid(rng);
            Payload::request(json!({
                "stackName": stack, "changeSetName": change_set, "changeSetType": "UPDATE",
                "templateURL": format!("https://s3.amazonaws.com/{}/cfn/{stack}.yaml", inv.buckets[1]),
                "capabilities": ["CAPABILITY_IAM"], "parameters": [{ "parameterKey": "ImageTag", "parameterValue": rng::hex(rng, 7) }]
            }))
            .response(json!({
                "id": format!("arn:aws:cloudformation:{}:{}:changeSet/{change_set}/{}", inv.region, inv.account, rng::uuid(rng)),
                "stackId": inv.stack_arn(&stack, &stack_id)
            }))
        }
        "DescribeChangeSet" | "ExecuteChangeSet" => {
            Payload::request(json!({ "changeSetName": change_set, "stackName": stack }))
        }
        _ => Payload::request(json!({ "stackName": stack })).subject(stack),
    }
}

fn autoscaling(name: &str, ctx: &mut Ctx) -> Payload {
    let rng = &mut *ctx.rng;
    let group = pick(rng, &ctx.inv.asgs).to_string();
    match name {
        "DescribeAutoScalingGroups" => {
            Payload::request(json!({ "autoScalingGroupNames": [group] }))
        }
        "SetDesiredCapacity" => Payload::request(json!({
            "autoScalingGroupName": group, "desiredCapacity": rng.random_range(2..8), "honorCooldown": false
        })),
        _ => {
            Payload::request(json!({ "autoScalingGroupName": group, "minSize": 2, "maxSize": 12 }))
        }
    }
}

fn elb(name: &str, ctx: &mut Ctx) -> Payload {
    let inv = ctx.inv;
    let rng = &mut *ctx.rng;
    let group = inv.target_group_arn(pick(rng, &inv.target_groups));
    match name {
        "DescribeLoadBalancers" => {
            Payload::request(json!({ "names": [pick(rng, &inv.load_balancers)] }))
        }
        "DescribeTargetHealth" => Payload::request(json!({ "targetGroupArn": group })),
        _ => Payload::request(json!({
            "targetGroupArn": group,
            "targets": [{ "id": pick(rng, &inv.instances), "port": 8080 }]
        })),
    }
}

fn cloudtrail(name: &str, ctx: &mut Ctx) -> Payload {
    match name {
        "LookupEvents" => Payload::request(json!({
            "startTime": clock::java_date(ctx.minute - 1440, 0),
            "endTime": clock::java_date(ctx.minute, 0),
            "lookupAttributes": [{ "attributeKey": "ReadOnly", "attributeValue": "false" }],
            "maxResults": 50
        })),
        _ => Payload::request(json!({ "trailNameList": [], "includeShadowTrails": true })),
    }
}

fn signin(ctx: &mut Ctx) -> Payload {
    let mfa = if ctx.rng.random_bool(0.8) {
        "Yes"
    } else {
        "No"
    };
    let mut payload = Payload::request(Value::Null).response(json!({ "ConsoleLogin": "Success" }));
    payload.additional = Some(json!({
        "LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true",
        "MobileVersion": "No",
        "MFAUsed": mfa
    }));
    payload.host = Some("signin.aws.amazon.com".to_string());
    payload
}
