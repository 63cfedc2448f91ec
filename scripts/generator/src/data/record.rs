//! One data-event record: S3 object calls and Lambda `Invoke`, in CloudTrail's field order
//! (see `crate::record`), with `managementEvent` false, `eventCategory` "Data" and the
//! `resources` CloudTrail writes for them (the object and its bucket, or the function).

use rand::Rng;
use serde::Serialize;

use super::Api;
use crate::clock::{self, Minute};
use crate::identity::{Actor, UserIdentity};
use crate::rng::{self, Rand};

const CIPHER: &str = "ECDHE-RSA-AES128-GCM-SHA256";

/// What a data call touches.
#[derive(Debug, Clone)]
pub enum Target {
    Object { bucket: String, key: String },
    Function(String),
}

/// One data call.
pub struct Call<'a> {
    pub api: Api,
    pub minute: Minute,
    pub second: u32,
    pub actor: &'a Actor,
    pub error_code: Option<&'static str>,
    pub target: Target,
    /// `PutObject` only: the KMS key the object is encrypted with (SSE-KMS), else SSE-S3.
    pub kms_key: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    event_version: &'static str,
    user_identity: UserIdentity,
    event_time: String,
    event_source: &'static str,
    event_name: &'static str,
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: &'a str,
    user_agent: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'static str>,
    request_parameters: Request<'a>,
    response_elements: Option<Response<'a>>,
    additional_event_data: Additional,
    #[serde(rename = "requestID")]
    request_id: String,
    #[serde(rename = "eventID")]
    event_id: String,
    read_only: bool,
    resources: Vec<Resource>,
    event_type: &'static str,
    management_event: bool,
    recipient_account_id: &'a str,
    event_category: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_details: Option<Tls>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Request<'a> {
    #[serde(rename_all = "camelCase")]
    Object {
        bucket_name: &'a str,
        #[serde(rename = "Host")]
        host: &'a str,
        key: &'a str,
        #[serde(
            rename = "x-amz-server-side-encryption",
            skip_serializing_if = "Option::is_none"
        )]
        sse: Option<&'static str>,
        #[serde(
            rename = "x-amz-server-side-encryption-aws-kms-key-id",
            skip_serializing_if = "Option::is_none"
        )]
        kms_key: Option<&'a str>,
    },
    #[serde(rename_all = "camelCase")]
    Function { function_name: &'a str },
}

#[derive(Serialize)]
struct Response<'a> {
    #[serde(rename = "x-amz-server-side-encryption")]
    sse: &'static str,
    #[serde(
        rename = "x-amz-server-side-encryption-aws-kms-key-id",
        skip_serializing_if = "Option::is_none"
    )]
    kms_key: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Additional {
    S3 {
        #[serde(rename = "SignatureVersion")]
        signature_version: &'static str,
        #[serde(rename = "CipherSuite")]
        cipher_suite: &'static str,
        #[serde(rename = "bytesTransferredIn")]
        bytes_in: u64,
        #[serde(rename = "AuthenticationMethod")]
        authentication_method: &'static str,
        #[serde(rename = "x-amz-id-2")]
        amz_id_2: String,
        #[serde(rename = "bytesTransferredOut")]
        bytes_out: u64,
    },
    Lambda {
        #[serde(rename = "functionVersion")]
        function_version: String,
    },
}

#[derive(Serialize)]
struct Resource {
    #[serde(rename = "accountId", skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "ARN")]
    arn: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Tls {
    tls_version: &'static str,
    cipher_suite: &'static str,
    client_provided_host_header: String,
}

/// The record of `call` in `account` and `region`, as compact JSON.
pub fn render(rng: &mut Rand, account: &str, region: &str, call: &Call) -> Vec<u8> {
    let user_identity = call.actor.identity(rng, account, call.minute);
    let service = call.actor.invoked_by.is_some();
    let source_ip = call.actor.ip(rng).to_string();
    let agent = call.actor.agent(rng).to_string();
    let failed = call.error_code.is_some();
    let (request, response, additional, resources, host, request_id, version) = match &call.target {
        Target::Object { bucket, key } => {
            let host = format!("{bucket}.s3.{region}.amazonaws.com");
            let put = call.api == Api::PutObject;
            let size = rng.random_range(1u64 << 10..1 << 26);
            let additional = Additional::S3 {
                signature_version: "SigV4",
                cipher_suite: CIPHER,
                bytes_in: if put && !failed { size } else { 0 },
                authentication_method: "AuthHeader",
                amz_id_2: rng::alnum(rng, 76),
                bytes_out: if call.api == Api::GetObject && !failed {
                    size
                } else {
                    0
                },
            };
            let resources = vec![
                Resource {
                    account_id: None,
                    kind: "AWS::S3::Object",
                    arn: format!("arn:aws:s3:::{bucket}/{key}"),
                },
                Resource {
                    account_id: Some(account.to_string()),
                    kind: "AWS::S3::Bucket",
                    arn: format!("arn:aws:s3:::{bucket}"),
                },
            ];
            let response = (put && !failed).then_some(Response {
                sse: if call.kms_key.is_some() {
                    "aws:kms"
                } else {
                    "AES256"
                },
                kms_key: call.kms_key,
            });
            (
                (bucket.as_str(), key.as_str()),
                response,
                additional,
                resources,
                Some(host),
                rng::upper_alnum(rng, 16),
                "1.09",
            )
        }
        Target::Function(name) => {
            let arn = format!("arn:aws:lambda:{region}:{account}:function:{name}");
            let additional = Additional::Lambda {
                function_version: format!("{arn}:$LATEST"),
            };
            let resources = vec![Resource {
                account_id: Some(account.to_string()),
                kind: "AWS::Lambda::Function",
                arn,
            }];
            (
                ("", name.as_str()),
                None,
                additional,
                resources,
                None,
                rng::uuid(rng),
                "1.08",
            )
        }
    };
    let function_arn;
    let request_parameters = match &call.target {
        Target::Object { .. } => Request::Object {
            bucket_name: request.0,
            host: host.as_deref().unwrap_or_default(),
            key: request.1,
            sse: call.kms_key.map(|_| "aws:kms"),
            kms_key: call.kms_key,
        },
        Target::Function(_) => {
            function_arn = resources[0].arn.clone();
            Request::Function {
                function_name: &function_arn,
            }
        }
    };
    let record = Record {
        event_version: version,
        user_identity,
        event_time: clock::event_time(call.minute, call.second),
        event_source: call.api.source(),
        event_name: call.api.name(),
        aws_region: region,
        source_ip_address: &source_ip,
        user_agent: &agent,
        error_code: call.error_code,
        error_message: failed.then_some("Access Denied"),
        request_parameters,
        response_elements: response,
        additional_event_data: additional,
        request_id,
        event_id: rng::uuid(rng),
        read_only: call.api.read_only(),
        resources,
        event_type: "AwsApiCall",
        management_event: false,
        recipient_account_id: account,
        event_category: "Data",
        tls_details: (!service).then(|| Tls {
            tls_version: "TLSv1.2",
            cipher_suite: CIPHER,
            client_provided_host_header: host
                .clone()
                .unwrap_or_else(|| format!("lambda.{region}.amazonaws.com")),
        }),
    };
    serde_json::to_vec(&record).expect("records serialise")
}
