//! The client's files, compiled in, and the headers they are served with.
//! The policy lets the page load only its own scripts and styles, talk only
//! to this gateway (HTTP and WebSocket), and show images from here, from
//! object URLs of files being uploaded, and from the S3 server that signed
//! media URLs point at.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use chatterbox_errors::Error;

use crate::error::{ApiError, ApiResult};
use crate::state::GatewayState;

/// What the page needs to know of the deployment.
#[derive(Debug, Clone, Default)]
pub struct WebSettings {
    /// The origin of signed media URLs (`https://minio.example.com`), when
    /// media lives in S3.
    pub media_origin: Option<String>,
    /// How long the session cookie lives: the refresh-token family's lifetime.
    pub session_ttl_secs: u64,
    /// How long a signed media URL handed to a page stays valid.
    pub media_link_ttl_secs: u64,
}

/// Where browsers fetch signed media URLs: the S3 server's public endpoint
/// when one is named (a gateway alone knows only that); with media in
/// `s3_bucket`, its endpoint, or AWS in `region` (path-style); none with
/// media on disk.
pub fn media_origin(
    s3_bucket: Option<&str>,
    public_endpoint: Option<&str>,
    endpoint: Option<&str>,
    region: Option<&str>,
) -> Option<String> {
    match (public_endpoint, s3_bucket, endpoint, region) {
        (Some(public), _, _, _) => origin_of(public),
        (None, Some(_), Some(endpoint), _) => origin_of(endpoint),
        (None, Some(_), None, Some(region)) => origin_of(&format!("https://s3.{region}.amazonaws.com")),
        (None, Some(_), None, None) => Some("https://*.amazonaws.com".to_owned()),
        (None, None, _, _) => None,
    }
}

/// `scheme://authority` of a URL, if it is one a policy can name.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let scheme_ok = matches!(scheme, "http" | "https");
    (scheme_ok && !authority.is_empty() && authority.chars().all(authority_char))
        .then(|| format!("{scheme}://{authority}"))
}

fn authority_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '*')
}

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! assets {
    ($($name:literal => $content_type:literal),* $(,)?) => {
        &[$(Asset { name: $name, content_type: $content_type, body: include_str!(concat!("../../web/", $name)) }),*]
    };
}

const INDEX: &str = include_str!("../../web/index.html");

const ASSETS: &[Asset] = assets! {
    "app.css" => "text/css; charset=utf-8",
    "main.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "session.js" => "text/javascript; charset=utf-8",
    "socket.js" => "text/javascript; charset=utf-8",
    "store.js" => "text/javascript; charset=utf-8",
    "timeline.js" => "text/javascript; charset=utf-8",
    "outbox.js" => "text/javascript; charset=utf-8",
    "users.js" => "text/javascript; charset=utf-8",
    "events.js" => "text/javascript; charset=utf-8",
    "dom.js" => "text/javascript; charset=utf-8",
    "views.js" => "text/javascript; charset=utf-8",
    "conversation.js" => "text/javascript; charset=utf-8",
    "mentions.js" => "text/javascript; charset=utf-8",
    "search.js" => "text/javascript; charset=utf-8",
    "results.js" => "text/javascript; charset=utf-8",
    "icon.svg" => "image/svg+xml",
};

/// The page's policy, for the host the browser used to reach it.
fn policy(settings: &WebSettings, host: Option<&str>) -> String {
    let mut connect = String::from("'self'");
    // `'self'` covers WebSockets of the same host in current browsers; the
    // explicit form is for the others (only a well-formed host is named).
    if let Some(host) = host
        && !host.is_empty()
        && host.chars().all(authority_char)
        && !host.contains('*')
    {
        connect.push_str(&format!(" ws://{host} wss://{host}"));
    }
    let mut images = String::from("'self' blob:");
    if let Some(origin) = &settings.media_origin {
        images.push(' ');
        images.push_str(origin);
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src {images}; connect-src {connect}; \
         manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

fn page_headers(
    settings: &WebSettings,
    host: Option<&str>,
    content_type: &'static str,
) -> ApiResult<[(header::HeaderName, HeaderValue); 6]> {
    let csp = HeaderValue::from_str(&policy(settings, host))
        .map_err(|_| ApiError::from(Error::invariant("unusable policy")))?;
    Ok([
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        // Served from the binary: a new release must show at once.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ])
}

/// `GET /`: the client.
pub(crate) async fn index(State(s): State<GatewayState>, uri: Uri, headers: HeaderMap) -> ApiResult<Response> {
    Ok((page_headers(&s.web, crate::extract::request_host(&headers, &uri), "text/html; charset=utf-8")?, INDEX)
        .into_response())
}

/// `GET /app/{file}`: its scripts, style and icon.
pub(crate) async fn file(
    State(s): State<GatewayState>,
    uri: Uri,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let asset = ASSETS.iter().find(|a| a.name == name).ok_or_else(|| Error::not_found("no such file"))?;
    Ok((page_headers(&s.web, crate::extract::request_host(&headers, &uri), asset.content_type)?, asset.body)
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_origins_come_from_the_public_endpoint() {
        let origin = |bucket, public, endpoint| media_origin(bucket, public, endpoint, None);
        let public = Some("http://localhost:9000/");
        let inside = Some("http://minio:9000");
        assert_eq!(origin(Some("media"), public, inside).as_deref(), Some("http://localhost:9000"));
        assert_eq!(origin(None, public, None).as_deref(), Some("http://localhost:9000"), "a gateway alone");
        assert_eq!(origin(Some("media"), None, inside).as_deref(), Some("http://minio:9000"));
        let aws = media_origin(Some("m"), None, None, Some("eu-west-1"));
        assert_eq!(aws.as_deref(), Some("https://s3.eu-west-1.amazonaws.com"));
        assert_eq!(origin(Some("m"), None, None).as_deref(), Some("https://*.amazonaws.com"));
        assert_eq!(origin(None, None, inside), None, "media on disk");
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("http://a b"), None);
        assert_eq!(origin_of("https://s3.example.com/bucket?x=1").as_deref(), Some("https://s3.example.com"));
    }

    #[test]
    fn the_policy_names_only_this_host_and_the_media_origin() {
        let settings = WebSettings {
            media_origin: Some("https://minio.example.com".into()),
            session_ttl_secs: 1,
            media_link_ttl_secs: 1,
        };
        let csp = policy(&settings, Some("chat.example.com"));
        assert!(csp.starts_with("default-src 'none'; script-src 'self'; style-src 'self';"), "{csp}");
        assert!(csp.contains("img-src 'self' blob: https://minio.example.com;"), "{csp}");
        assert!(csp.contains("connect-src 'self' ws://chat.example.com wss://chat.example.com;"), "{csp}");
        let csp = policy(&WebSettings::default(), Some("evil; script-src *"));
        assert!(csp.contains("connect-src 'self';") && !csp.contains("evil"), "{csp}");
    }

    #[test]
    fn every_file_the_page_names_is_served() {
        for name in INDEX.split("/app/").skip(1).filter_map(|rest| rest.split('"').next()) {
            assert!(ASSETS.iter().any(|a| a.name == name), "index.html names {name}, which is not served");
        }
        let main = ASSETS.iter().find(|a| a.name == "main.js").unwrap().body;
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for import in asset.body.lines().filter_map(|l| l.split("from './").nth(1)) {
                let name = import.split('\'').next().unwrap();
                assert!(ASSETS.iter().any(|a| a.name == name), "{} imports {name}, which is not served", asset.name);
            }
        }
        assert!(main.contains("import"));
    }
}
