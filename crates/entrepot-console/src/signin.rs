//! Signing in and out, and the console's home page (the projects).
//!
//! Sign-in takes a personal access token or a local user's password and
//! checks it through IAM, so that the API's password-check limits (per user
//! name and per client address) apply here too. The sign-in form carries a
//! token of its own, matched against a cookie set with the form, so that no
//! other site can sign a browser in.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use entrepot_services::console_sessions::{random_token, same_token, ConsoleSessionError};
use entrepot_services::{AuthError, Credentials, PageRequest};
use maud::html;
use serde::Deserialize;

use crate::error::ConsoleError;
use crate::form::FormData;
use crate::layout::{self, Chrome, Section};
use crate::session::{cookie, over_tls, set_cookie, Signed, SESSION_COOKIE};
use crate::ConsoleState;

/// The cookie holding the sign-in form's token.
const SIGNIN_COOKIE: &str = "entrepot_console_signin";

/// The query of pages that show a success message.
#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    /// A key of [`layout::notice_text`].
    #[serde(default)]
    pub notice: Option<String>,
}

/// `GET /ui/`: the projects the caller may see.
pub async fn home(
    State(state): State<ConsoleState>,
    signed: Signed,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, ConsoleError> {
    let page = state
        .app
        .projects
        .list(&signed.principal, &PageRequest::first(100))
        .await;
    let projects = match page {
        Ok(p) => p.items,
        // Without the organisation-wide listing, the default project is
        // still offered: its pages say what the caller may see there.
        Err(_) => Vec::new(),
    };
    let chrome = Chrome {
        signed: &signed,
        project: None,
        section: Section::None,
    };
    let body = html! {
        div.page-header { h1 { "Projects" } }
        @if projects.is_empty() {
            (layout::empty("You cannot list the projects of this registry.", Some(html! {
                a.button href="/ui/projects/default/repositories" { "Open project default" }
            })))
        } @else {
            table.data {
                thead { tr { th { "Project" } th { "Number" } th { "Created" } } }
                tbody {
                    @for p in &projects {
                        tr {
                            td { a href={ "/ui/projects/" (p.id) "/repositories" } { (p.id) } }
                            td { (p.number) }
                            td { (p.create_time) }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&chrome, "Projects", q.notice.as_deref(), body).into_response())
}

fn signin_page(token: &str, error: Option<&str>, username: &str) -> maud::Markup {
    html! {
        div.signin-card {
            h1 { "Sign in to entrepot" }
            p.muted { "Use a personal access token, or the password of a local user." }
            @if let Some(e) = error {
                div.alert.alert-error role="alert" { (e) }
            }
            form method="post" action="/ui/signin" {
                input type="hidden" name="signin_token" value=(token);
                fieldset.tabs {
                    legend { "Sign in with" }
                    label.radio { input type="radio" name="method" value="token" checked; " Access token" }
                    label.radio { input type="radio" name="method" value="password"; " User name and password" }
                }
                div.field.method-token {
                    label for="token" { "Personal access token" }
                    input #token type="password" name="token" autocomplete="off" placeholder="entp_…";
                }
                div.field.method-password {
                    label for="username" { "User name" }
                    input #username type="text" name="username" autocomplete="username" value=(username);
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password";
                }
                button.button.primary type="submit" { "Sign in" }
            }
        }
    }
}

/// `GET /ui/signin`.
pub async fn form(headers: HeaderMap) -> Response {
    let token = random_token();
    let cookie = set_cookie(SIGNIN_COOKIE, &token, 3600, over_tls(&headers));
    (
        [(header::SET_COOKIE, cookie)],
        layout::bare("Sign in", signin_page(&token, None, "")),
    )
        .into_response()
}

/// `POST /ui/signin`.
pub async fn submit(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    form: FormData,
) -> Result<Response, ConsoleError> {
    let expected = cookie(&headers, SIGNIN_COOKIE).unwrap_or("");
    let sent = form.raw("signin_token").unwrap_or("");
    if expected.is_empty() || !same_token(expected, sent) {
        return Err(ConsoleError::Csrf);
    }
    let username = form.get("username").to_owned();
    let credentials = match form.get("method") {
        "password" => Credentials::Basic {
            username: username.clone(),
            password: form.raw("password").unwrap_or("").to_owned(),
        },
        _ => Credentials::Bearer(form.get("token").to_owned()),
    };
    let blank = match &credentials {
        Credentials::Basic { username, password } => username.is_empty() || password.is_empty(),
        Credentials::Bearer(t) => t.is_empty(),
    };
    let refused = |status: StatusCode, message: &str| {
        (
            status,
            layout::bare("Sign in", signin_page(sent, Some(message), &username)),
        )
            .into_response()
    };
    if blank {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "Enter a token, or a user name and its password.",
        ));
    }
    let tls = over_tls(&headers);
    match state.sessions.sign_in(&credentials).await {
        Ok((value, _session)) => {
            let ttl = state.sessions.ttl_secs();
            let mut response = Redirect::to("/ui/?notice=signed-in").into_response();
            let h = response.headers_mut();
            for c in [
                set_cookie(SESSION_COOKIE, value.expose(), ttl, tls),
                set_cookie(SIGNIN_COOKIE, "", 0, tls),
            ] {
                if let Ok(v) = header::HeaderValue::from_str(&c) {
                    h.append(header::SET_COOKIE, v);
                }
            }
            Ok(response)
        }
        Err(ConsoleSessionError::Auth(AuthError::Throttled {
            message,
            retry_after_secs,
            ..
        })) => {
            let mut r = refused(StatusCode::TOO_MANY_REQUESTS, &message);
            r.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after_secs),
            );
            Ok(r)
        }
        Err(ConsoleSessionError::Auth(_)) => Ok(refused(
            StatusCode::UNAUTHORIZED,
            "The token, user name or password is not valid, has expired or was revoked.",
        )),
        Err(ConsoleSessionError::NotForConsole(m)) => Ok(refused(StatusCode::UNAUTHORIZED, &m)),
        Err(ConsoleSessionError::Store(e)) => Err(ConsoleError::Internal(e.to_string())),
    }
}

/// `POST /ui/signout`: the session is deleted on the server, the cookie in
/// the browser.
pub async fn sign_out(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    signed: Signed,
    form: FormData,
) -> Result<Response, ConsoleError> {
    form.check_csrf(&signed)?;
    state
        .sessions
        .sign_out(&signed.cookie)
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    let cookie = set_cookie(SESSION_COOKIE, "", 0, over_tls(&headers));
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/ui/signin")).into_response())
}
