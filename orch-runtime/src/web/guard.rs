//! Who may ask the UI for what. Every request: the access token when one is set, and on
//! loopback a `Host` naming the server itself (a page on another site that rebinds its DNS
//! name to 127.0.0.1 sends its own name). Every request that changes something: a POST whose
//! `Origin` (when the browser sends one) is the server itself and which carries the CSRF
//! token that only the server's own pages (and `/api/session`, which no other site can read)
//! hand out.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::Ui;

/// The header a mutating request carries the CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-orch-csrf";
/// The cookie `/login` sets.
const TOKEN_COOKIE: &str = "orch_token";

/// 128 random bits as hex, from the OS (without its randomness there is no safe token to
/// make, and the UI does not serve).
pub(crate) fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Why `token` cannot be the access token, if it cannot: it travels in a header and a cookie,
/// so it must be visible ASCII without separators, and long enough to guess at no cost.
pub(crate) fn check_token(token: &str) -> Result<(), String> {
    if token.len() < 16 {
        return Err("ORCH_UI_TOKEN is shorter than 16 characters: use a long random value (e.g. `openssl rand -hex 16`)".into());
    }
    if let Some(c) = token
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, ';' | ',' | '"' | '\\'))
    {
        return Err(format!(
            "ORCH_UI_TOKEN holds {c:?}, which cannot travel in a cookie: use letters, digits and - _ . ~"
        ));
    }
    Ok(())
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": why }))).into_response()
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn has_token(headers: &HeaderMap, token: &str) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer.is_some_and(|t| same_secret(t.trim(), token))
        || cookie(headers, TOKEN_COOKIE).is_some_and(|t| same_secret(t, token))
}

/// The middleware in front of every route.
pub(crate) async fn check(State(ui): State<Arc<Ui>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(hosts) = &ui.hosts
        && !hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            &format!(
                "this server answers to {} only, not to Host `{host}`",
                hosts.first().map_or("", String::as_str)
            ),
        );
    }
    if let Some(token) = &ui.token
        && request.uri().path() != "/login"
        && !has_token(headers, token)
    {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "this server needs its token: open /login?token=... once, or send `Authorization: Bearer ...`",
        );
    }
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        if method != Method::POST {
            return refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET and POST are served",
            );
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            // `https` too: behind a TLS proxy (the usual setup with a token) the page's origin
            // is https while the proxy talks http to us.
            let origin = origin.to_str().unwrap_or("");
            let same = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(host));
            if !same {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "cross-origin request refused: changes can only come from this server's pages",
                );
            }
        }
        if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
            && site != "same-origin"
            && site != "none"
        {
            return refuse(
                StatusCode::FORBIDDEN,
                "cross-site request refused: changes can only come from this server's pages",
            );
        }
        let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if !csrf.is_some_and(|t| same_secret(t, &ui.csrf)) {
            return refuse(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token: send the one GET /api/session returns in the x-orch-csrf header",
            );
        }
    }
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    response
}

/// `GET /login?token=...`: sets the token cookie and goes to the overview.
#[derive(serde::Deserialize)]
pub(crate) struct Login {
    token: String,
}

pub(crate) async fn login(State(ui): State<Arc<Ui>>, Query(login): Query<Login>) -> Response {
    match &ui.token {
        Some(token) if same_secret(&login.token, token) => {
            let mut response = Redirect::to("/").into_response();
            if let Ok(value) = header::HeaderValue::from_str(&format!(
                "{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
            )) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Some(_) => refuse(StatusCode::UNAUTHORIZED, "wrong token"),
        None => Redirect::to("/").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn tokens_must_be_long_and_cookie_safe() {
        assert!(check_token("0123456789abcdef").is_ok());
        assert!(check_token("short").unwrap_err().contains("16"));
        assert!(
            check_token("0123456789abcdef;x")
                .unwrap_err()
                .contains("';'")
        );
        assert!(check_token("0123456789 abcdef").is_err());
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }

    #[test]
    fn the_token_is_read_from_bearer_or_cookie() {
        let mut h = HeaderMap::new();
        assert!(!has_token(&h, "s3cret"));
        h.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(has_token(&h, "s3cret"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; orch_token=s3cret".parse().unwrap());
        assert!(has_token(&h, "s3cret"));
        assert!(!has_token(&h, "other"));
    }
}
