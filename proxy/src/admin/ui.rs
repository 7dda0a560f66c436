//! The web UI on the admin listener: one page at `/ui/` (and `/` sends
//! there) with hand-written HTML, CSS and ES modules embedded in the binary,
//! no build step. The assets hold no data: every page asks the debug API
//! (`debug.rs`) from the browser, with the bearer token the page keeps in
//! the tab's `sessionStorage`, so the UI is exactly as open as that API.
//! Record keys and values reach the page as text only, and the answers
//! carry a Content-Security-Policy that allows this origin's scripts and
//! nothing else.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// (file name, content type, content).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("ui/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("ui/style.css"),
    ),
    ("app.js", JS, include_str!("ui/app.js")),
    ("lib.js", JS, include_str!("ui/lib.js")),
    ("topics.js", JS, include_str!("ui/topics.js")),
    ("tail.js", JS, include_str!("ui/tail.js")),
    ("groups.js", JS, include_str!("ui/groups.js")),
    ("route.js", JS, include_str!("ui/route.js")),
];
const JS: &str = "text/javascript; charset=utf-8";
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|| async { asset("index.html") }))
        .route(
            "/ui/{file}",
            get(|Path(file): Path<String>| async move { asset(&file) }),
        )
}

fn asset(name: &str) -> Response {
    let Some((_, kind, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no {name:?} in the web UI\n"),
        )
            .into_response();
    };
    let mut r = (*body).into_response();
    let h = r.headers_mut();
    for (k, v) in [
        (header::CONTENT_TYPE, *kind),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        // A new binary may bring new assets: the browser asks again.
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_served() {
        for (name, _, body) in ASSETS {
            for (at, _) in body.match_indices("from './") {
                let rest = &body[at + "from './".len()..];
                let file = &rest[..rest.find('\'').unwrap_or(0)];
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == file),
                    "{name} imports {file:?}, which is not served"
                );
            }
        }
        let page = ASSETS[0].2;
        assert!(page.contains("src=\"app.js\"") && page.contains("href=\"style.css\""));
    }
}
