//! The web console of entrepot, served at `/ui/`.
//!
//! Server-rendered pages over the same services the admin API calls: every
//! permission is checked by the service a page calls, never here. Controls a
//! user may not use are hidden by asking IAM which permissions the user
//! holds (the services' `testIamPermissions`); posting anyway is refused
//! with 403 by the service. Sessions live in the metadata database, each
//! with its own CSRF token that every form posts back.

mod access_policy;
mod assets;
mod audit;
mod error;
mod form;
mod iam_panel;
mod layout;
mod project;
mod repositories;
mod repository_content;
mod repository_detail;
mod repository_form;
mod roles;
mod secrets;
mod security;
mod session;
mod signin;

use axum::routing::{get, post};
use axum::Router;
use entrepot_api::AppState;
use entrepot_services::console_sessions::ConsoleSessions;

/// How long a console session lives: a working day (8 hours).
pub const SESSION_TTL_SECS: u64 = 8 * 3600;

/// What the console's handlers need: the services of the API, and sessions.
#[derive(Clone)]
pub struct ConsoleState {
    /// The services, shared with the admin API.
    pub app: AppState,
    /// Signed-in sessions.
    pub sessions: ConsoleSessions,
}

/// The console's routes, all under `/ui/`, with their security headers.
pub fn router(app: AppState, sessions: ConsoleSessions) -> Router {
    let state = ConsoleState { app, sessions };
    Router::new()
        .route("/ui", get(signin::home))
        .route("/ui/", get(signin::home))
        .route("/ui/static/{file}", get(assets::serve))
        .route("/ui/signin", get(signin::form).post(signin::submit))
        .route("/ui/signout", post(signin::sign_out))
        .route("/ui/iam/add", post(iam_panel::add))
        .route("/ui/iam/remove", post(iam_panel::remove))
        .route("/ui/access-policy", get(access_policy::page))
        .route("/ui/access-policy/add", post(access_policy::add))
        .route("/ui/access-policy/remove", post(access_policy::remove))
        .route(
            "/ui/access-policy/enforcement",
            post(access_policy::enforcement),
        )
        .route("/ui/projects/{project}", get(project::page))
        .route("/ui/projects/{project}/audit", get(audit::page))
        .route(
            "/ui/projects/{project}/repositories",
            get(repositories::list).post(repository_form::create),
        )
        .route(
            "/ui/projects/{project}/repositories/new",
            get(repository_form::new_form),
        )
        .route(
            "/ui/projects/{project}/repositories/{repository}",
            get(repository_detail::page),
        )
        .route(
            "/ui/projects/{project}/repositories/{repository}/edit",
            get(repository_form::edit_form).post(repository_form::update),
        )
        .route(
            "/ui/projects/{project}/repositories/{repository}/test-upstream",
            post(repository_detail::test_upstream),
        )
        .route(
            "/ui/projects/{project}/secrets",
            get(secrets::list).post(secrets::create),
        )
        .route("/ui/projects/{project}/secrets/new", get(secrets::new_form))
        .route(
            "/ui/projects/{project}/secrets/{secret}",
            get(secrets::detail),
        )
        .route(
            "/ui/projects/{project}/secrets/{secret}/versions",
            post(secrets::add_version),
        )
        .route(
            "/ui/projects/{project}/secrets/{secret}/versions/{version}/view",
            post(secrets::view_value),
        )
        .route(
            "/ui/projects/{project}/secrets/{secret}/versions/{version}/{action}",
            get(secrets::confirm_state).post(secrets::change_state),
        )
        .layer(axum::extract::DefaultBodyLimit::max(form::MAX_FORM_BYTES))
        .layer(axum::middleware::from_fn(security::headers))
        .with_state(state)
}
