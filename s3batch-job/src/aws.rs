//! AWS configuration shared by the engine's Lambda and S3 clients, and by any other client of
//! the same endpoints (`s3batch-control`'s S3 Control client, say): an endpoint override, and
//! placeholder credentials for a local endpoint.

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::{Credentials, ProvideCredentials, Region, SharedCredentialsProvider};

/// The usual configuration chain, with an endpoint override; placeholder credentials on a
/// loopback endpoint when none are configured, and `us-east-1` when no region is.
pub async fn load(endpoint: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(e) = endpoint {
        loader = loader.endpoint_url(e);
    }
    let config = loader.load().await;
    let mut builder = config.to_builder();
    if config.region().is_none() {
        builder.set_region(Some(Region::new("us-east-1")));
    }
    let endpoint = endpoint
        .map(str::to_owned)
        .or(config.endpoint_url().map(str::to_owned));
    if endpoint.as_deref().is_some_and(is_loopback) && !has_credentials(&config).await {
        builder.set_credentials_provider(Some(SharedCredentialsProvider::new(Credentials::new(
            "local",
            "local",
            None,
            None,
            "s3batch-job-loopback",
        ))));
    }
    builder.build()
}

async fn has_credentials(config: &aws_config::SdkConfig) -> bool {
    match config.credentials_provider() {
        Some(p) => p.provide_credentials().await.is_ok(),
        None => false,
    }
}

/// Whether an endpoint URL names this machine: `localhost` or a loopback address.
pub fn is_loopback(endpoint: &str) -> bool {
    match url::Url::parse(endpoint).as_ref().map(url::Url::host) {
        Ok(Some(url::Host::Domain(name))) => name.eq_ignore_ascii_case("localhost"),
        Ok(Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
        Ok(Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
        _ => false,
    }
}

/// An S3 client; path-style addressing when an endpoint is set, by the argument,
/// `AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_S3` (local servers need it), as the function's own
/// client does (`s3batch::Client`).
pub(crate) async fn s3(endpoint: Option<&str>) -> aws_sdk_s3::Client {
    let config = load(endpoint).await;
    let path_style = config.endpoint_url().is_some()
        || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some_and(|v| !v.is_empty());
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(path_style)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback() {
        assert!(super::is_loopback("http://127.0.0.1:9000"));
        assert!(super::is_loopback("http://localhost"));
        assert!(super::is_loopback("http://[::1]:5000/x"));
        assert!(super::is_loopback("http://127.8.9.10"));
        assert!(super::is_loopback("HTTP://LOCALHOST:9000"));
        assert!(!super::is_loopback(
            "https://lambda.us-east-1.amazonaws.com"
        ));
        // The host is what counts, not what a path or user name says.
        assert!(!super::is_loopback("http://localhost.example.com"));
        assert!(!super::is_loopback("http://127.0.0.1.example.com/"));
        assert!(!super::is_loopback("http://localhost@10.0.0.1/"));
        assert!(!super::is_loopback("http://10.0.0.1/127.0.0.1"));
        assert!(!super::is_loopback("not a url"));
    }
}
