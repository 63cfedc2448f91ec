//! The one place an AWS SDK configuration is built, for the S3 client and the EventBridge/SNS
//! publishers alike, with the AWS CLI's conventions:
//! - `--profile` (or `AWS_PROFILE`): the named profile of `~/.aws/config` and
//!   `~/.aws/credentials` (`AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`); a profile that
//!   is in neither file is named in the error, with the profiles that are;
//! - `--ca-bundle` (or `AWS_CA_BUNDLE`): a PEM file of certificates trusted besides the
//!   system's (a TLS-inspecting proxy, a private S3-compatible store); `SSL_CERT_FILE` still
//!   replaces the system's own;
//! - `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (either case), through the SDK's
//!   own HTTP client (rustls with ring): HTTPS is tunnelled with CONNECT.
//!
//! Credentials come from the standard chain only and are never logged: the setup logs the
//! profile name, the region and the endpoint (its password removed), nothing else.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::{Connector, proxy::ProxyConfig, tls};
use std::path::{Path, PathBuf};

/// How to reach AWS, beyond what the standard chain says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsAccess {
    /// The profile of the shared config files (`--profile`, `AWS_PROFILE`).
    pub profile: Option<String>,
    /// Extra trusted certificates, PEM (`--ca-bundle`, `AWS_CA_BUNDLE`).
    pub ca_bundle: Option<PathBuf>,
}

/// The largest CA bundle read: the whole Mozilla store is about 200 KiB.
pub const MAX_CA_BUNDLE_BYTES: u64 = 16 << 20;

/// The certificates of a CA bundle, checked the way the TLS stack will use them (the SDK
/// panics on a PEM file it cannot parse, so nothing unchecked reaches it).
pub fn read_ca_bundle(path: &Path) -> Result<Vec<u8>, String> {
    let name = path.display();
    let bytes = crate::source::local::read_object(path, MAX_CA_BUNDLE_BYTES)
        .map_err(|e| format!("CA bundle {name}: cannot read it: {e}"))?;
    check_ca_bundle(&bytes).map_err(|e| format!("CA bundle {name}: {e}"))?;
    Ok(bytes)
}

/// Whether `pem` holds at least one certificate and every certificate in it parses.
pub fn check_ca_bundle(pem: &[u8]) -> Result<usize, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM file of certificates ({e})"))?;
    if certificates.is_empty() {
        return Err("no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)".into());
    }
    let mut roots = rustls::RootCertStore::empty();
    for (n, certificate) in certificates.iter().enumerate() {
        roots
            .add(certificate.clone())
            .map_err(|e| format!("certificate {} cannot be used: {e}", n + 1))?;
    }
    Ok(certificates.len())
}

/// The SDK's HTTP client: rustls with ring, the system's roots plus the CA bundle's, the
/// proxy from the environment.
fn http_client(ca_bundle: Option<Vec<u8>>) -> aws_sdk_s3::config::SharedHttpClient {
    let mut trust = tls::TrustStore::default();
    if let Some(pem) = ca_bundle {
        trust = trust.with_pem_certificate(pem);
    }
    let context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("a TLS context with a trust store only always builds");
    aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let mut builder = Connector::builder();
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder
            .proxy_config(ProxyConfig::from_env())
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .tls_context(context.clone())
            .build()
    })
}

/// A profile that is in neither shared file, named with the profiles that are.
async fn check_profile(profile: &str) -> Result<(), String> {
    use aws_types::os_shim_internal::{Env, Fs};
    let files = aws_config::profile::load(&Fs::real(), &Env::real(), &Default::default(), None)
        .await
        .map_err(|e| format!("profile {profile:?}: the AWS config files cannot be read: {e}"))?;
    if files.get_profile(profile).is_some() {
        return Ok(());
    }
    let mut known: Vec<&str> = files.profiles().collect();
    known.sort_unstable();
    let known = match known.is_empty() {
        true => "there is none".to_owned(),
        false => format!("there are: {}", known.join(", ")),
    };
    Err(format!(
        "profile {profile:?} (--profile or AWS_PROFILE) is not in the AWS config files (~/.aws/config, ~/.aws/credentials, or AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE); {known}"
    ))
}

/// The shared SDK configuration: the standard chain with `access`, `region` and
/// `endpoint_url` over it. Fails, naming what to fix, on a missing profile, an unreadable CA
/// bundle, or no region at all (`no_region` says where one can come from).
pub async fn load(
    access: &AwsAccess,
    region: Option<&str>,
    endpoint_url: Option<&str>,
    no_region: &str,
) -> Result<SdkConfig, String> {
    let ca_bundle = access
        .ca_bundle
        .as_deref()
        .map(read_ca_bundle)
        .transpose()?;
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).http_client(http_client(ca_bundle));
    if let Some(profile) = &access.profile {
        check_profile(profile).await?;
        loader = loader.profile_name(profile);
    }
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let shared = loader.load().await;
    if shared.region().is_none() {
        return Err(no_region.to_owned());
    }
    tracing::debug!(
        profile = access.profile.as_deref(),
        ca_bundle = access.ca_bundle.as_ref().map(|p| p.display().to_string()),
        region = shared.region().map(|r| r.as_ref()),
        "AWS configuration loaded"
    );
    Ok(shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_bundle_must_hold_usable_certificates() {
        // (contents, what the error names)
        let cases: [(&[u8], &str); 3] = [
            (b"", "no certificate"),
            (b"just some text\n", "no certificate"),
            (
                b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
                "cannot be used",
            ),
        ];
        for (pem, want) in cases {
            let err = check_ca_bundle(pem).unwrap_err();
            assert!(
                err.contains(want),
                "{:?}: {err}",
                String::from_utf8_lossy(pem)
            );
        }
    }
}
