//! AWS configuration shared by the Lambda and S3 clients.

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::{Credentials, ProvideCredentials, Region, SharedCredentialsProvider};

/// The usual configuration chain, with an endpoint override; placeholder credentials on a
/// loopback endpoint when none are configured, and `us-east-1` when no region is.
pub(crate) async fn load(endpoint: Option<&str>) -> aws_config::SdkConfig {
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

pub(crate) fn is_loopback(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    host == "localhost" || host.starts_with("127.") || rest.starts_with("[::1]")
}

/// An S3 client; path-style addressing when an endpoint is set (local servers need it).
pub(crate) async fn s3(endpoint: Option<&str>) -> aws_sdk_s3::Client {
    let config = load(endpoint).await;
    let path_style = config.endpoint_url().is_some();
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
        assert!(!super::is_loopback(
            "https://lambda.us-east-1.amazonaws.com"
        ));
    }
}
