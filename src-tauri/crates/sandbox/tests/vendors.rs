//! The stand-ins over real HTTP(S), in-process on free ports: BigID, BigFix (TLS with
//! its own CA), the device-code issuers of BigAnimal and OIDC, and Immuta.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokenkeeper_sandbox::{start, Config, Running, Urls};

fn fast_config() -> Config {
    Config {
        device_interval: Duration::from_secs(1),
        ..Config::default()
    }
}

async fn sandbox(config: Config) -> (Running, Urls, Client) {
    let running = start(config, 0).await.expect("sandbox starts");
    let urls = running.urls();
    let ca = reqwest::Certificate::from_pem(urls.bigfix_ca_pem.as_bytes()).expect("CA PEM");
    let client = Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    (running, urls, client)
}

async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let body = resp.json::<Value>().await.expect("a JSON body");
    (status, body)
}

async fn text_of(resp: reqwest::Response) -> (StatusCode, String) {
    let status = resp.status();
    (status, resp.text().await.expect("a body"))
}

fn jwt_claims(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT: {token}");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url")).expect("claims")
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn stats(client: &Client, urls: &Urls) -> Value {
    let resp = client
        .get(format!("{}/stats", urls.admin))
        .send()
        .await
        .unwrap();
    json_of(resp).await.1
}

async fn admin(client: &Client, urls: &Urls, path: &str, body: Value) -> reqwest::Response {
    client
        .post(format!("{}{path}", urls.admin))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn urls_name_every_vendor() {
    let (running, urls, _) = sandbox(fast_config()).await;
    let base = format!("http://{}", running.addr);
    assert_eq!(urls.bigid, format!("{base}/bigid"));
    assert_eq!(urls.biganimal, format!("{base}/biganimal"));
    assert_eq!(urls.oidc, format!("{base}/oidc"));
    assert_eq!(urls.immuta, format!("{base}/immuta"));
    assert_eq!(urls.bigfix, format!("https://{}", running.bigfix_addr));
    assert!(urls.bigfix.starts_with("https://127.0.0.1:"));
    assert!(urls
        .bigfix_ca_pem
        .starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(urls.bigfix_cert_sha256.len(), 64);
    assert!(urls
        .bigfix_cert_sha256
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
}

#[tokio::test]
async fn bigid_password_and_user_tokens() {
    let (_running, urls, client) = sandbox(fast_config()).await;
    let bigid = &urls.bigid;

    let resp = client
        .post(format!("{bigid}/api/v1/sessions"))
        .json(&json!({"username": "bigid", "password": "wrong"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"success": false, "message": "Invalid username or password"})
    );

    let resp = client
        .post(format!("{bigid}/api/v1/sessions"))
        .json(&json!({"username": "bigid", "password": "bigid-password"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], true);
    assert_eq!(body["message"], "Enjoy your token!");
    assert_eq!(body["username"], "bigid");
    assert!(body["firstName"].is_string());
    assert!(body["permissions"]
        .as_array()
        .is_some_and(|p| !p.is_empty()));
    let session = body["auth_token"].as_str().unwrap().to_string();
    let claims = jwt_claims(&session);
    let exp = claims["exp"].as_i64().unwrap();
    assert!((exp - now_secs() - 86_400).abs() < 10, "24 h: {claims}");
    assert_eq!(claims["sub"], "bigid");

    // The bare token works; a Bearer one does not.
    let ds = format!("{bigid}/api/v1/ds-connections");
    let resp = client
        .get(&ds)
        .header("Authorization", &session)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body["data"]["ds_connections"]
        .as_array()
        .unwrap()
        .is_empty());
    let resp = client
        .get(&ds)
        .header("Authorization", format!("Bearer {session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // A user token (JWT) -> a session token, by GET and by POST.
    let resp = admin(
        &client,
        &urls,
        "/bigid/user-tokens",
        json!({"expires_in_days": 999, "jwt": true}),
    )
    .await;
    let user_token = json_of(resp).await.1["token"].as_str().unwrap().to_string();
    let user_exp = jwt_claims(&user_token)["exp"].as_i64().unwrap();
    assert!((user_exp - now_secs() - 999 * 86_400).abs() < 10);
    let refresh = format!("{bigid}/api/v1/refresh-access-token");
    let resp = client
        .get(&refresh)
        .header("Authorization", &user_token)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["success"], true);
    let system = body["systemToken"].as_str().unwrap().to_string();
    assert!(jwt_claims(&system)["exp"].as_i64().unwrap() > now_secs());
    let resp = client
        .get(&ds)
        .header("Authorization", &system)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = client
        .post(&refresh)
        .header("Authorization", &user_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // The quirk: `Bearer <user token>` is refused.
    let resp = client
        .get(&refresh)
        .header("Authorization", format!("Bearer {user_token}"))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["success"], false);

    // An opaque user token works too; an expired one does not.
    let resp = admin(
        &client,
        &urls,
        "/bigid/user-tokens",
        json!({"expires_in_days": 1, "jwt": false}),
    )
    .await;
    let opaque = json_of(resp).await.1["token"].as_str().unwrap().to_string();
    assert_eq!(opaque.split('.').count(), 1);
    let resp = client
        .get(&refresh)
        .header("Authorization", &opaque)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = admin(
        &client,
        &urls,
        "/bigid/user-tokens",
        json!({"expires_in_secs": 0, "jwt": true}),
    )
    .await;
    let expired = json_of(resp).await.1["token"].as_str().unwrap().to_string();
    let resp = client
        .get(&refresh)
        .header("Authorization", &expired)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Revoked user tokens stop working.
    let resp = admin(&client, &urls, "/bigid/revoke-user-tokens", json!({})).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    for token in [&user_token, &opaque] {
        let resp = client
            .get(&refresh)
            .header("Authorization", token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let counts = stats(&client, &urls).await;
    assert_eq!(
        counts["requests"]["GET /bigid/api/v1/refresh-access-token"],
        6
    );
}

/// Expiration in microseconds (lists, creation) is about `days` from now.
fn assert_micros_in(expiration: &Value, days: i64) {
    let micros = expiration.as_i64().unwrap();
    assert!(micros > 1_000_000_000_000_000, "microseconds: {micros}");
    let want = (now_secs() + days * 86_400) * 1_000_000;
    assert!((micros - want).abs() < 60_000_000, "{micros} vs {want}");
}

fn assert_millis_in(expiration: &Value, days: i64) {
    let millis = expiration.as_i64().unwrap();
    assert!(millis < 10_000_000_000_000, "milliseconds: {millis}");
    let want = (now_secs() + days * 86_400) * 1000;
    assert!((millis - want).abs() < 60_000, "{millis} vs {want}");
}

#[tokio::test]
async fn bigfix_tokens_over_tls() {
    let (_running, urls, client) = sandbox(fast_config()).await;
    let bf = &urls.bigfix;

    // Without the CA, TLS fails.
    let plain = Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let err = plain
        .get(format!("{bf}/api/login"))
        .send()
        .await
        .expect_err("an unknown CA is refused");
    assert!(err.is_connect(), "{err:?}");

    let resp = client.get(format!("{bf}/api/login")).send().await.unwrap();
    assert_eq!(
        text_of(resp).await,
        (StatusCode::UNAUTHORIZED, "Login failed".into())
    );
    let resp = client
        .get(format!("{bf}/api/login"))
        .basic_auth("admin", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = client
        .get(format!("{bf}/api/login"))
        .basic_auth("admin", Some("admin-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(text_of(resp).await, (StatusCode::OK, "ok".into()));

    // Create, with the query string (default 30 days) and with a form body (never).
    let resp = client
        .post(format!("{bf}/api/token?name=token_for_env1"))
        .basic_auth("admin", Some("admin-password"))
        .send()
        .await
        .unwrap();
    let (status, first) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    let secret = first["Token"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 43);
    assert!(URL_SAFE_NO_PAD.decode(&secret).is_ok());
    assert_eq!(first["Name"], "token_for_env1");
    assert_eq!(first["User"], 1);
    assert_micros_in(&first["Expiration"], 30);
    let id = first["Id"].as_u64().unwrap();

    let resp = client
        .post(format!("{bf}/api/token"))
        .basic_auth("admin", Some("admin-password"))
        .form(&[("name", "forever"), ("duration", "0")])
        .send()
        .await
        .unwrap();
    let (_, forever) = json_of(resp).await;
    assert_eq!(forever["Expiration"], 0);
    let forever_secret = forever["Token"].as_str().unwrap().to_string();

    let resp = client
        .post(format!("{bf}/api/token?name=token_for_env1"))
        .basic_auth("admin", Some("admin-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "duplicate name");
    let resp = client
        .post(format!("{bf}/api/token"))
        .basic_auth("admin", Some("admin-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "no name");

    // A token authenticates as its owner; the list says `tokens`, in microseconds.
    let resp = client
        .get(format!("{bf}/api/tokens"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    let (status, list) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    let tokens = list["tokens"].as_array().expect("lowercase key");
    assert_eq!(tokens.len(), 2);
    assert_micros_in(&tokens[0]["Expiration"], 30);

    // Get by name and by id: milliseconds.
    let resp = client
        .get(format!("{bf}/api/token/name/token_for_env1"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    let (_, by_name) = json_of(resp).await;
    assert_eq!(by_name["Id"], id);
    assert_millis_in(&by_name["Expiration"], 30);
    let resp = client
        .get(format!("{bf}/api/token/id/{id}"))
        .basic_auth("admin", Some("admin-password"))
        .send()
        .await
        .unwrap();
    let (_, by_id) = json_of(resp).await;
    assert_eq!(by_id["Name"], "token_for_env1");
    assert_millis_in(&by_id["Expiration"], 30);
    let resp = client
        .get(format!("{bf}/api/token/name/nope"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Rename, with a new duration from now.
    let resp = client
        .put(format!(
            "{bf}/api/token/{id}?name=my_edited_token&duration=10"
        ))
        .basic_auth("admin", Some("admin-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = client
        .get(format!("{bf}/api/token/id/{id}"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    let (_, edited) = json_of(resp).await;
    assert_eq!(edited["Name"], "my_edited_token");
    assert_millis_in(&edited["Expiration"], 10);

    // Another operator: its own token, no look at others'.
    let resp = client
        .post(format!("{bf}/api/token?name=ops&duration=5"))
        .basic_auth("operator", Some("operator-password"))
        .send()
        .await
        .unwrap();
    let (_, ops) = json_of(resp).await;
    assert_eq!(ops["User"], 2);
    let resp = client
        .get(format!("{bf}/api/tokens/user/1"))
        .basic_auth("operator", Some("operator-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = client
        .get(format!("{bf}/api/token/id/{id}"))
        .basic_auth("operator", Some("operator-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = client
        .delete(format!("{bf}/api/token/{id}"))
        .basic_auth("operator", Some("operator-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = client
        .get(format!("{bf}/api/tokens/user/2"))
        .basic_auth("admin", Some("admin-password"))
        .send()
        .await
        .unwrap();
    let (status, theirs) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    let theirs = theirs["Tokens"].as_array().expect("capitalized key");
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["Name"], "ops");
    assert_micros_in(&theirs[0]["Expiration"], 5);

    // Revoke: the token stops working; a second revoke finds nothing.
    let resp = client
        .delete(format!("{bf}/api/token/{id}"))
        .bearer_auth(&forever_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = client
        .get(format!("{bf}/api/login"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = client
        .delete(format!("{bf}/api/token/{id}"))
        .basic_auth("admin", Some("admin-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Rotating the key kills every token.
    assert_eq!(stats(&client, &urls).await["bigfix_live_tokens"], 2);
    let resp = admin(&client, &urls, "/bigfix/rotatetokenkey", json!({})).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = client
        .get(format!("{bf}/api/login"))
        .bearer_auth(&forever_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let counts = stats(&client, &urls).await;
    assert_eq!(counts["bigfix_live_tokens"], 0);
    assert_eq!(counts["requests"]["GET /api/tokens"], 1);
}

#[tokio::test]
async fn bigfix_leaf_fingerprint_matches() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use sha2::{Digest, Sha256};

    let (running, urls, _) = sandbox(fast_config()).await;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(urls.bigfix_ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(running.bigfix_addr)
        .await
        .unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = connector
        .connect(name, tcp)
        .await
        .expect("localhost is named");
    let leaf = &tls.get_ref().1.peer_certificates().unwrap()[0];
    assert_eq!(hex::encode(Sha256::digest(leaf)), urls.bigfix_cert_sha256);
}

async fn form_post(client: &Client, url: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    json_of(client.post(url).form(form).send().await.unwrap()).await
}

#[tokio::test]
async fn biganimal_device_flow_refresh_rotation_and_replay() {
    let (_running, urls, client) = sandbox(fast_config()).await;
    let portal = &urls.biganimal;
    let resp = client
        .get(format!("{portal}/api/v3/auth/provider"))
        .send()
        .await
        .unwrap();
    let (_, provider) = json_of(resp).await;
    let issuer = provider["issuerUri"].as_str().unwrap().to_string();
    assert_eq!(issuer, format!("{}/biganimal-auth", urls.base));
    assert_eq!(provider["audience"], format!("{portal}/api"));
    assert_eq!(provider["scope"], "openid profile email offline_access");
    let client_id = provider["clientId"].as_str().unwrap().to_string();
    assert_ne!(provider["freetrialClientId"], provider["clientId"]);

    let (status, code) = form_post(
        &client,
        &format!("{issuer}/oauth/device/code"),
        &[
            ("client_id", &client_id),
            ("scope", "openid profile email offline_access"),
            ("audience", provider["audience"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(code["interval"], 1);
    assert_eq!(code["expires_in"], 900);
    let user_code = code["user_code"].as_str().unwrap().to_string();
    assert_eq!(user_code.len(), 9);
    assert_eq!(code["verification_uri"], format!("{issuer}/activate"));
    assert_eq!(
        code["verification_uri_complete"],
        format!("{issuer}/activate?user_code={user_code}")
    );
    let device_code = code["device_code"].as_str().unwrap().to_string();
    let token_url = format!("{issuer}/oauth/token");
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code.as_str()),
        ("client_id", client_id.as_str()),
    ];

    let (status, body) = form_post(&client, &token_url, &poll).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "authorization_pending");
    let (status, body) = form_post(&client, &token_url, &poll).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "slow_down");
    // The interval grew to 6 s: waiting the original 1 s is still too fast.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, body) = form_post(&client, &token_url, &poll).await;
    assert_eq!(body["error"], "slow_down");

    let (status, body) = form_post(
        &client,
        &token_url,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", "nope"),
            ("client_id", client_id.as_str()),
        ],
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );
    let (status, body) = form_post(
        &client,
        &token_url,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code.as_str()),
            ("client_id", "stranger"),
        ],
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::UNAUTHORIZED, &json!("invalid_client"))
    );

    // Approve in the "browser".
    let resp = client
        .get(code["verification_uri_complete"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let (status, html) = text_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&user_code) && html.contains("Approve") && html.contains("Deny"));
    assert!(!html.contains("<script"));
    let resp = client
        .post(format!("{issuer}/activate"))
        .form(&[("user_code", user_code.as_str()), ("action", "approve")])
        .send()
        .await
        .unwrap();
    let (status, html) = text_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Device approved"));

    let (status, tokens) = form_post(&client, &token_url, &poll).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 86_400);
    assert_eq!(tokens["scope"], "openid profile email offline_access");
    assert!(jwt_claims(tokens["id_token"].as_str().unwrap())["exp"].is_i64());
    let access1 = tokens["access_token"].as_str().unwrap().to_string();
    let refresh1 = tokens["refresh_token"].as_str().unwrap().to_string();
    let (status, body) = form_post(&client, &token_url, &poll).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant")),
        "redeemed once"
    );

    // Raw token -> BigAnimal token -> the API; the raw token itself is not accepted.
    let exchange = format!("{portal}/api/v3/auth/token");
    let resp = client
        .post(&exchange)
        .json(&json!({"token": access1}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    let ba_token = body["token"].as_str().unwrap().to_string();
    let projects = format!("{portal}/api/v3/projects");
    let resp = client
        .get(&projects)
        .bearer_auth(&ba_token)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["projectId"], "prj_abcd1234");
    let resp = client
        .get(&projects)
        .bearer_auth(&access1)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = client
        .post(&exchange)
        .json(&json!({"token": "forged"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["status"], 401);
    assert!(body["error"]["message"].is_string());

    // Rotation: the used refresh token is obsolete at once.
    let (status, second) = form_post(
        &client,
        &token_url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id.as_str()),
            ("refresh_token", refresh1.as_str()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let refresh2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh1);
    let access2 = second["access_token"].as_str().unwrap().to_string();

    // Replay: invalid_grant, and the whole family dies.
    let (status, body) = form_post(
        &client,
        &token_url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id.as_str()),
            ("refresh_token", refresh1.as_str()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."})
    );
    let (status, body) = form_post(
        &client,
        &token_url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id.as_str()),
            ("refresh_token", refresh2.as_str()),
        ],
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );
    for raw in [&access1, &access2] {
        let resp = client
            .post(&exchange)
            .json(&json!({"token": raw}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = client
        .get(&projects)
        .bearer_auth(&ba_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let oauth = &stats(&client, &urls).await["oauth"];
    assert_eq!(
        *oauth,
        json!({"refreshes": 1, "replays": 1, "families_revoked": 1, "reuses": 0})
    );

    // A denied code answers 403 access_denied.
    let (_, code) = form_post(
        &client,
        &format!("{issuer}/oauth/device/code"),
        &[("client_id", &client_id), ("scope", "openid")],
    )
    .await;
    let resp = admin(
        &client,
        &urls,
        "/device/deny",
        json!({"user_code": code["user_code"]}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, body) = form_post(
        &client,
        &token_url,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", code["device_code"].as_str().unwrap()),
            ("client_id", client_id.as_str()),
        ],
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::FORBIDDEN, &json!("access_denied"))
    );
    let resp = admin(
        &client,
        &urls,
        "/device/approve",
        json!({"user_code": "ZZZZ-ZZZZ"}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn oidc_discovery_device_flow_and_revocation() {
    let (_running, urls, client) = sandbox(fast_config()).await;
    // A second sandbox whose device codes live 1 s, for one that expires.
    let short = Config {
        device_code_ttl: Duration::from_secs(1),
        ..fast_config()
    };
    let (_short_running, short_urls, _) = sandbox(short).await;
    let issuer = &urls.oidc;
    let resp = client
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    let (_, discovery) = json_of(resp).await;
    assert_eq!(discovery["issuer"], *issuer);
    assert_eq!(
        discovery["device_authorization_endpoint"],
        format!("{issuer}/device/auth")
    );
    assert_eq!(discovery["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(discovery["userinfo_endpoint"], format!("{issuer}/me"));
    assert!(discovery["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("urn:ietf:params:oauth:grant-type:device_code")));
    let token_url = discovery["token_endpoint"].as_str().unwrap().to_string();

    let device = |issuer: &str, scope: &'static str| {
        let client = client.clone();
        let url = format!("{issuer}/device/auth");
        async move {
            form_post(
                &client,
                &url,
                &[("client_id", "tokenkeeper-sandbox"), ("scope", scope)],
            )
            .await
            .1
        }
    };
    let poll = |code: &Value| {
        let device_code = code["device_code"].as_str().unwrap().to_string();
        let client = client.clone();
        // The token endpoint of the issuer that made the code.
        let url = format!(
            "{}/token",
            code["verification_uri"]
                .as_str()
                .unwrap()
                .trim_end_matches("/device")
        );
        async move {
            form_post(
                &client,
                &url,
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", &device_code),
                    ("client_id", "tokenkeeper-sandbox"),
                ],
            )
            .await
        }
    };

    // An injected slow_down answers even the first poll, and the code expires.
    let expiring = device(&short_urls.oidc, "openid").await;
    assert_eq!(
        expiring["verification_uri"],
        format!("{}/device", short_urls.oidc)
    );
    assert_eq!(expiring["interval"], 1);
    let resp = admin(
        &client,
        &short_urls,
        "/faults",
        json!({"path_prefix": "/oidc/token", "kind": "slow_down", "count": 1}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, body) = poll(&expiring).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("slow_down"))
    );

    // Approve by the page (no offline_access: no refresh token).
    let plain = device(issuer, "openid profile").await;
    let resp = client
        .get(plain["verification_uri_complete"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let (_, html) = text_of(resp).await;
    assert!(html.contains("<form method=\"post\"") && html.contains("Approve"));
    let resp = admin(
        &client,
        &urls,
        "/device/approve",
        json!({"user_code": plain["user_code"]}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, tokens) = poll(&plain).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens.get("refresh_token").is_none());
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let me = format!("{issuer}/me");
    let resp = client.get(&me).bearer_auth(&access).send().await.unwrap();
    assert_eq!(
        json_of(resp).await,
        (StatusCode::OK, json!({"sub": "demo"}))
    );
    let resp = client.get(&me).bearer_auth("forged").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // With offline_access: a refresh token, until every family is revoked.
    let offline = device(issuer, "openid offline_access").await;
    let resp = client
        .post(format!("{issuer}/device"))
        .form(&[
            ("user_code", offline["user_code"].as_str().unwrap()),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert!(text_of(resp).await.1.contains("Device approved"));
    let (_, tokens) = poll(&offline).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let offline_access = tokens["access_token"].as_str().unwrap().to_string();
    let resp = admin(&client, &urls, "/oauth/revoke-all", json!({})).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, body) = form_post(
        &client,
        &token_url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "tokenkeeper-sandbox"),
            ("refresh_token", refresh.as_str()),
        ],
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_grant"))
    );
    for token in [&access, &offline_access] {
        let resp = client.get(&me).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }

    // The first code has expired by now (its lifetime is 1 s there).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = poll(&expiring).await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("expired_token"))
    );
}

#[tokio::test]
async fn immuta_apikey_password_and_expiry() {
    let (_running, urls, client) = sandbox(fast_config()).await;
    let im = &urls.immuta;

    let resp = client
        .post(format!("{im}/bim/apikey/authenticate"))
        .json(&json!({"apikey": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(resp).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"message": "Authentication failed for API key", "error": "Unauthorized", "statusCode": 401})
        )
    );
    let resp = client
        .post(format!("{im}/bim/apikey/authenticate"))
        .json(&json!({"apikey": "immuta-demo-apikey"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["authenticated"], true);
    assert!(body.get("tokenExpiration").is_none());
    let by_key = body["token"].as_str().unwrap().to_string();

    let resp = client
        .post(format!("{im}/bim/iam/ldap/user/authenticate"))
        .json(&json!({"username": "immuta-user", "password": "immuta-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(resp).await,
        (
            StatusCode::NOT_FOUND,
            json!({"message": "IAM system 'ldap' not found", "error": "Not Found", "statusCode": 404})
        )
    );
    let resp = client
        .post(format!("{im}/bim/iam/bim/user/authenticate"))
        .json(&json!({"username": "immuta-user", "password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(resp).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"message": "Authentication failed for user", "error": "Unauthorized", "statusCode": 401})
        )
    );
    let resp = client
        .post(format!("{im}/bim/iam/bim/user/authenticate"))
        .json(&json!({"username": "immuta-user", "password": "immuta-password"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::OK);
    let expiration = body["tokenExpiration"].as_str().unwrap();
    assert!(
        expiration.ends_with('Z') && expiration.len() == 24,
        "{expiration}"
    );
    let exp = chrono::DateTime::parse_from_rfc3339(expiration).unwrap();
    assert!((exp.timestamp() - now_secs() - 3600).abs() < 10);
    let by_password = body["token"].as_str().unwrap().to_string();

    let current = format!("{im}/bim/rpc/user/current");
    for token in [&by_key, &by_password] {
        let resp = client
            .get(&current)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let (status, user) = json_of(resp).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(user["userid"], "immuta-user");
    }
    assert_eq!(stats(&client, &urls).await["immuta_live_tokens"], 2);
    let resp = admin(&client, &urls, "/immuta/expire-tokens", json!({})).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = client
        .get(&current)
        .bearer_auth(&by_key)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(resp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["statusCode"], 401);
    assert_eq!(stats(&client, &urls).await["immuta_live_tokens"], 0);
}
