//! A console session lives no longer than the credentials it was opened
//! with: revoking the token, or deleting the user who signed in with a
//! password, ends it at the next request (not at its expiry hours later).
//! Plain HTTP against the real binary; the browser flows are in console.rs.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use reqwest::blocking::{Client, Response};
use reqwest::redirect::Policy;
use support::Entrepot;

/// The value of cookie `name` set by `response`.
fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=')?;
            (k.trim() == name && !v.is_empty()).then(|| v.to_owned())
        })
}

/// Sign in through the sign-in form; the session cookie.
fn sign_in(server: &Entrepot, client: &Client, fields: &[(&str, &str)]) -> String {
    let base = format!("http://{}", server.addr);
    let form = client.get(format!("{base}/ui/signin")).send().unwrap();
    let signin = set_cookie(&form, "entrepot_console_signin").expect("sign-in cookie");
    let mut body = vec![("signin_token", signin.as_str())];
    body.extend_from_slice(fields);
    let answer = client
        .post(format!("{base}/ui/signin"))
        .header("cookie", format!("entrepot_console_signin={signin}"))
        .form(&body)
        .send()
        .unwrap();
    assert_eq!(answer.status(), 303, "sign-in refused");
    set_cookie(&answer, "entrepot_console").expect("session cookie")
}

/// Whether the session cookie still opens the console's home page.
fn signed_in(server: &Entrepot, client: &Client, session: &str) -> bool {
    let answer = client
        .get(format!("http://{}/ui/", server.addr))
        .header("cookie", format!("entrepot_console={session}"))
        .send()
        .unwrap();
    match answer.status().as_u16() {
        200 => true,
        303 => {
            let location = answer.headers()["location"].to_str().unwrap().to_owned();
            assert!(location.starts_with("/ui/signin"), "{location}");
            false
        }
        other => panic!("GET /ui/ answered {other}"),
    }
}

fn client() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
}

#[test]
fn revoking_the_token_ends_its_console_session() {
    let server = Entrepot::start();
    server.create_user("dev@example.com", None);
    let (token, id) = server.token_for("user:dev@example.com");
    let client = client();
    let session = sign_in(&server, &client, &[("method", "token"), ("token", &token)]);
    assert!(signed_in(&server, &client, &session));
    server.admin_api("DELETE", &format!("/v1/tokens/{id}"), None);
    assert!(!signed_in(&server, &client, &session));
}

#[test]
fn deleting_the_user_ends_a_password_session() {
    let server = Entrepot::start();
    server.create_user("leaver@example.com", Some("correct horse battery staple"));
    let client = client();
    let session = sign_in(
        &server,
        &client,
        &[
            ("method", "password"),
            ("username", "leaver@example.com"),
            ("password", "correct horse battery staple"),
        ],
    );
    assert!(signed_in(&server, &client, &session));
    server.admin_api("DELETE", "/v1/users/leaver@example.com", None);
    assert!(!signed_in(&server, &client, &session));
}
