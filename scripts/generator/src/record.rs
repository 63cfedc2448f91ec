//! One CloudTrail record: the field set and field order of real management events.
//!
//! Order (as CloudTrail writes it): eventVersion, userIdentity, eventTime, eventSource,
//! eventName, awsRegion, sourceIPAddress, userAgent, errorCode, errorMessage, requestParameters,
//! responseElements, additionalEventData, requestID, eventID, readOnly, resources, eventType,
//! managementEvent, recipientAccountId, sharedEventID, vpcEndpointId, eventCategory, tlsDetails,
//! sessionCredentialFromConsole. Optional fields are omitted, never `null`, except
//! requestParameters / responseElements which CloudTrail writes as `null`.

use rand::Rng;
use serde::Serialize;
use serde_json::Value;

use crate::catalogue::{Api, Caller, EventKind};
use crate::clock::{self, Minute};
use crate::identity::{self, Actor, UserIdentity};
use crate::inventory::Inventory;
use crate::payload::{self, Ctx, Resource};
use crate::rng::{self, Rand};

/// Share of workload calls to KMS/SSM/Secrets Manager/S3 that go through a VPC endpoint.
const VPC_ENDPOINT_SHARE: f64 = 0.5;
/// Share of console calls negotiated with TLS 1.3.
const TLS13_SHARE: f64 = 0.2;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Record<'a> {
    event_version: &'static str,
    user_identity: UserIdentity,
    event_time: String,
    event_source: &'static str,
    event_name: &'a str,
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: String,
    user_agent: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
    request_parameters: Value,
    response_elements: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_event_data: Option<Value>,
    #[serde(rename = "requestID", skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(rename = "eventID")]
    event_id: String,
    read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<Vec<Resource>>,
    event_type: &'static str,
    management_event: bool,
    recipient_account_id: &'a str,
    #[serde(rename = "sharedEventID", skip_serializing_if = "Option::is_none")]
    shared_event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vpc_endpoint_id: Option<&'a str>,
    event_category: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_details: Option<TlsDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_credential_from_console: Option<&'static str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TlsDetails {
    tls_version: &'static str,
    cipher_suite: &'static str,
    client_provided_host_header: String,
}

/// An error to put on a record.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: String,
    /// A template; `{principal}`, `{action}` and `{resource}` are filled in.
    pub message: Option<String>,
}

/// What one call is: the API, when, who, and whether it failed.
pub struct Call<'a> {
    pub api: &'a Api,
    /// The eventName when it is not the API's own (a long-tail API rendered as `api`).
    pub name: Option<&'a str>,
    pub minute: Minute,
    pub second: u32,
    pub actor: &'a Actor,
    pub failure: Option<Failure>,
}

/// The record of `call`, serialised as compact JSON.
pub fn render(rng: &mut Rand, inv: &Inventory, call: &Call) -> Vec<u8> {
    let api = call.api;
    let mut ctx = Ctx {
        rng,
        inv,
        minute: call.minute,
        second: call.second,
    };
    let payload = payload::build(api, &mut ctx);
    let rng = ctx.rng;
    let service_event = api.kind == EventKind::ServiceEvent;
    let user_identity = if service_event {
        identity::service_event_identity(&inv.account, api.source())
    } else {
        call.actor.identity(rng, &inv.account, call.minute)
    };
    let endpoint = via_endpoint(rng, api, call.actor).then_some(inv.vpc_endpoint.as_str());
    let source_ip_address = match endpoint {
        Some(_) => format!(
            "10.0.{}.{}",
            rng.random_range(0..64),
            rng.random_range(4..250)
        ),
        None => call.actor.ip(rng).to_string(),
    };
    let user_agent = user_agent(rng, api, call.actor);
    let error_message = call
        .failure
        .as_ref()
        .and_then(|f| f.message.as_deref())
        .map(|template| {
            fill_message(
                template,
                api,
                user_identity.arn.as_deref(),
                &payload.subject,
            )
        });
    let failed = call.failure.is_some();
    let host = payload
        .host
        .clone()
        .unwrap_or_else(|| endpoint_host(api, &inv.region));
    let request_id = request_id(rng, api, payload.request_id);
    let record = Record {
        event_version: api.service.event_version,
        user_identity,
        event_time: clock::event_time(call.minute, call.second),
        event_source: api.source(),
        event_name: call.name.unwrap_or(api.name),
        aws_region: &inv.region,
        source_ip_address,
        user_agent: &user_agent,
        error_code: call.failure.as_ref().map(|f| f.code.as_str()),
        error_message,
        request_parameters: payload.request,
        response_elements: if failed {
            Value::Null
        } else {
            payload.response
        },
        additional_event_data: payload.additional,
        request_id,
        event_id: rng::uuid(rng),
        read_only: api.read_only,
        resources: payload.resources,
        event_type: api.kind.as_str(),
        management_event: true,
        recipient_account_id: &inv.account,
        shared_event_id: (call.actor.invoked_by.is_some() && api.name == "AssumeRole")
            .then(|| rng::uuid(rng)),
        vpc_endpoint_id: endpoint,
        event_category: "Management",
        tls_details: (call.actor.invoked_by.is_none() && !service_event)
            .then(|| tls(rng, call.actor, host)),
        session_credential_from_console: (call.actor.console && api.kind == EventKind::ApiCall)
            .then_some("true"),
    };
    serde_json::to_vec(&record).expect("records serialise")
}

fn via_endpoint(rng: &mut Rand, api: &Api, actor: &Actor) -> bool {
    let private = matches!(
        api.source(),
        "kms.amazonaws.com"
            | "ssm.amazonaws.com"
            | "secretsmanager.amazonaws.com"
            | "s3.amazonaws.com"
    );
    private && actor.class == Caller::Workload && rng.random_bool(VPC_ENDPOINT_SHARE)
}

fn user_agent(rng: &mut Rand, api: &Api, actor: &Actor) -> String {
    if api.kind == EventKind::ServiceEvent {
        return api.source().to_string();
    }
    if api.name.starts_with("UpdateInstance") && actor.class == Caller::Workload {
        return identity::UA_SSM_AGENT.to_string();
    }
    let agent = actor.agent(rng);
    if api.source() == "s3.amazonaws.com" && actor.invoked_by.is_none() {
        format!("[{agent}]")
    } else {
        agent.to_string()
    }
}

fn request_id(rng: &mut Rand, api: &Api, known: Option<String>) -> Option<String> {
    match api.kind {
        EventKind::ConsoleSignIn => None,
        _ if known.is_some() => known,
        _ if api.source() == "s3.amazonaws.com" => Some(rng::upper_alnum(rng, 16)),
        _ => Some(rng::uuid(rng)),
    }
}

fn endpoint_host(api: &Api, region: &str) -> String {
    if api.service.host.is_empty() {
        api.source().to_string()
    } else {
        api.service.host.replace("{region}", region)
    }
}

fn tls(rng: &mut Rand, actor: &Actor, host: String) -> TlsDetails {
    let tls13 = actor.console && rng.random_bool(TLS13_SHARE);
    TlsDetails {
        tls_version: if tls13 { "TLSv1.3" } else { "TLSv1.2" },
        cipher_suite: if tls13 {
            "TLS_AES_128_GCM_SHA256"
        } else {
            "ECDHE-RSA-AES128-GCM-SHA256"
        },
        client_provided_host_header: host,
    }
}

/// `kms:Decrypt`, `lambda:GetFunction` (API version suffixes dropped), `cloudwatch:...`.
pub fn iam_action(api: &Api) -> String {
    let prefix = match api.source() {
        "monitoring.amazonaws.com" => "cloudwatch",
        source => source.trim_end_matches(".amazonaws.com"),
    };
    let name = api
        .name
        .find(|c: char| c.is_ascii_digit())
        .map_or(api.name, |i| &api.name[..i]);
    format!("{prefix}:{name}")
}

fn fill_message(template: &str, api: &Api, principal: Option<&str>, subject: &str) -> String {
    let resource = if subject.is_empty() { "*" } else { subject };
    template
        .replace("{principal}", principal.unwrap_or("anonymous"))
        .replace("{action}", &iam_action(api))
        .replace("{resource}", resource)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{APIS, find};

    #[test]
    fn iam_actions_drop_version_suffixes() {
        let cases = [
            (
                "lambda.amazonaws.com",
                "GetFunction20150331v2",
                "lambda:GetFunction",
            ),
            (
                "monitoring.amazonaws.com",
                "GetMetricData",
                "cloudwatch:GetMetricData",
            ),
            ("kms.amazonaws.com", "Decrypt", "kms:Decrypt"),
        ];
        for (source, name, want) in cases {
            let api = &APIS[find(source, name).unwrap()];
            assert_eq!(iam_action(api), want, "{source} {name}");
        }
    }
}
