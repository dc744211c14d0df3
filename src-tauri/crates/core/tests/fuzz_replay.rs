//! Replays the fuzz corpora on stable Rust, in seconds: every file of `fuzz/seeds/*`,
//! `fuzz/corpus/*` and `fuzz/regressions/*` goes through the same function its
//! cargo-fuzz target calls (`tokenkeeper_core::fuzzing`), so a crash the fuzzer once
//! found, or an input that once covered a path, is checked on every `./dev test`.
//!
//! The seeds are written by `write_seeds` below (ignored; run it after changing the
//! input format or the examples):
//! `cargo test -p tokenkeeper-core --test fuzz_replay -- --ignored write_seeds`.
//! Each seed is an answer from the vendor pages (`../shared/vendor-docs/`), verbatim
//! where the page gives one (the BigFix create sample's missing comma included), then
//! the variants the pages describe (errors, other spellings, other units).

use std::path::{Path, PathBuf};

use tokenkeeper_core::canned::{self, Canned};
use tokenkeeper_core::fuzzing::{self, encode, flag, op_index, Op, LOOPBACK, TARGETS};
use tokenkeeper_core::model::Vendor;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                // Not .gitkeep.
                .filter(|p| {
                    p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.')
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn every_corpus_and_regression_replays_without_a_finding() {
    let start = std::time::Instant::now();
    let mut total = 0;
    for (name, target) in TARGETS {
        let seeds = files(&fuzz_dir().join("seeds").join(name));
        assert!(!seeds.is_empty(), "no seeds for the fuzz target {name}");
        for kind in ["seeds", "corpus", "regressions"] {
            for file in files(&fuzz_dir().join(kind).join(name)) {
                let data = std::fs::read(&file).unwrap();
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(
                    outcome.is_ok(),
                    "{} fails its fuzz target's checks",
                    file.display()
                );
                total += 1;
            }
        }
    }
    assert!(!canned::is_armed());
    eprintln!(
        "replayed {total} fuzz inputs in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn canned_answers_stand_in_for_the_network_only_while_armed() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    rt.block_on(async {
        canned::arm([json(401, r#"{"error":"x"}"#)]);
        let a = tokenkeeper_core::http::send(client.get("http://127.0.0.1:9/a"), "Vendor")
            .await
            .unwrap();
        assert_eq!(a.status.as_u16(), 401);
        assert_eq!(a.body, br#"{"error":"x"}"#);
        let e = tokenkeeper_core::http::send(client.get("http://127.0.0.1:9/a"), "Vendor")
            .await
            .unwrap_err();
        assert!(e.message().contains("no answer"), "{e}");
        assert_eq!(canned::disarm(), 0);
        assert!(!canned::is_armed());
    });
}

#[test]
fn a_vendor_answer_from_the_pages_signs_in_through_the_seam() {
    // TrueSight's page: an authToken; the harness checks it all and must not panic.
    let input = encode(
        op_index(Vendor::Truesight, Op::SignIn),
        0,
        0,
        &[json(200, TS_OK)],
    );
    fuzzing::vendor(Vendor::Truesight, &input);
    // A planted secret echoed by the vendor is caught by the harness's check when a
    // message quotes it unscrubbed: here it is scrubbed, so no panic.
    let echo = encode(
        op_index(Vendor::Immuta, Op::SignIn),
        0,
        0,
        &[json(
            401,
            r#"{"message":"bad key ak-canary Z9&k=2","error":"Unauthorized","statusCode":401}"#,
        )],
    );
    fuzzing::vendor(Vendor::Immuta, &echo);
}

fn json(status: u16, body: &str) -> Canned {
    answer(status, Some("application/json"), body)
}

fn answer(status: u16, content_type: Option<&str>, body: &str) -> Canned {
    Canned {
        status,
        content_type: content_type.map(str::to_string),
        body: body.as_bytes().to_vec(),
    }
}

fn html(status: u16) -> Canned {
    answer(
        status,
        Some("text/html; charset=utf-8"),
        "<!DOCTYPE html><html><body>Sign in to the portal</body></html>",
    )
}

// The vendor pages' examples (../shared/vendor-docs/), verbatim.
/// 004 (TrueSight): the page shows the answer without its opening brace.
const TS_PAGE: &str = r#""authToken": "_ce14bc5c-e517-4df4-916f-5b942ec25b35",
"authPassed": true,
"expires": "2018-01-18T13:08:18.000Z",
"status": "OK"
}"#;
const TS_OK: &str = r#"{"authToken": "_ce14bc5c-e517-4df4-916f-5b942ec25b35",
"authPassed": true,
"expires": "2018-01-18T13:08:18.000Z",
"status": "OK"
}"#;
/// 000 (BigID): the sessions answer as the page prints it, cut off.
const BIGID_PAGE: &str = r#"{
    "success": true,
    "message": "Enjoy your token!",
    "auth_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.<don't copy me! I'm just an example!>...",
    "username": "bigid",
    "firstName": "BigID Admin",
    "permissions": [
        "admin",
        "permission.tasks.edit",
        "permission.tasks.read_task_list",
..."#;
/// 001 (BigFix).
const BIGFIX_LIST: &str = r#"{
    "tokens": [
        {
            "Id": 1,
            "Name": "token_for_env1",
            "Expiration": 1772191430000000,
            "User": 1
        },
        {
            "Id": 2,
            "Name": "token_for_env2",
            "Expiration": 1774084440000000,
            "User": 2
        }
    ]
}"#;
const BIGFIX_LIST_SCHEMA: &str = r#"{
    "tokens": [
        {
            "Id": token_id_1,
            "Name": "token_name_1",
            "Expiration": timestamp_ms_1,
            "User": user_id_1
        }
    ]
}"#;
const BIGFIX_USER_LIST: &str = r#"{
    "Tokens": [
        {
            "Id": 1,
            "Name": "token_for_env1",
            "Expiration": 1772191430000000,
            "User": 1
        }
    ]
}"#;
const BIGFIX_ONE: &str = r#"{
    "Id": 1,
    "Name": "token_for_env1",
    "Expiration": 1772191430000000,
    "User": 1
}"#;
/// The create sample lacks a comma after the token.
const BIGFIX_CREATE_PAGE: &str = r#"{
    "Token": "cGt2PxRXAX-v4N2tTUQr-NNUSV8jN3v_R7VNnQAAAAE"
    "Id": 1,
    "Name": "my_first_token",
    "Expiration": 1772191430000000,
    "User": 1
}"#;
const BIGFIX_CREATE: &str = r#"{
    "Token": "cGt2PxRXAX-v4N2tTUQr-NNUSV8jN3v_R7VNnQAAAAE",
    "Id": 1,
    "Name": "my_first_token",
    "Expiration": 1772191430000000,
    "User": 1
}"#;
/// 002 (BigAnimal).
const BA_PROVIDER: &str = r#"{
  "clientId": "5B79FAjzKF2Ig5dVFAOhc1acDSJYY2xh",
  "freetrialClientId": "m71bEVZrGsWiKtPqMI3hYCHCG3EYLPDk",
  "issuerUri": "https://auth.biganimal.com",
  "scope": "openid profile email offline_access",
  "audience": "https://portal.biganimal.com/api"
}"#;
const BA_DEVICE: &str = r#"{
  "device_code": "KEOY2_5YjuVsRuIrrR-aq5gs",
  "user_code": "HHHJ-MMSZ",
  "verification_uri": "https://auth.biganimal.com/activate",
  "expires_in": 900,
  "interval": 5,
  "verification_uri_complete": "https://auth.biganimal.com/activate?user_code=HHHJ-MMSZ"
}"#;
const BA_TOKEN: &str = r#"{
  "access_token": "eyJhbGc.......1Qtkaw2fyho",
  "id_token": "eyJhbGci.......FBra7tA",
  "refresh_token": "v1.MTvuZpu.......sbiionEhtTw",
  "scope": "openid profile email offline_access",
  "expires_in": 86400,
  "token_type": "Bearer"
}"#;
const BA_EXCHANGE: &str = r#"{
  "token": "eyJhbGc.......0HFkr_19Vr7w"
}"#;
const BA_REFRESHED: &str = r#"{
  "access_token": "eyJ...MoQ",
  "expires_in": 86400,
  "scope": "openid offline_access",
  "id_token": "eyJ...0NE",
  "refresh_token": "v1.Mjv..._2pRs",
  "token_type": "Bearer"
}"#;
/// 003 (Immuta).
const IMMUTA_KEY: &str = r#"{
  "authenticated": true,
  "token": "2d798e67a4214e2960ca4b"
}"#;
const IMMUTA_PASSWORD: &str = r#"{
  "authenticated": true,
  "token": "2d798e67a4214e2960ca4b",
  "tokenExpiration": "2018-11-02T20:00:43.687Z"

}"#;
const IMMUTA_401: &str =
    r#"{"message": "Authentication failed for user", "error": "Unauthorized", "statusCode": 401}"#;

fn oauth_error(code: &str) -> String {
    format!(r#"{{"error":"{code}","error_description":"The issuer said {code}."}}"#)
}

/// An OIDC issuer (Keycloak's shape) at `issuer`.
fn discovery(issuer: &str) -> String {
    format!(
        r#"{{"issuer":"{issuer}","authorization_endpoint":"{issuer}/protocol/openid-connect/auth","device_authorization_endpoint":"{issuer}/protocol/openid-connect/auth/device","token_endpoint":"{issuer}/protocol/openid-connect/token","grant_types_supported":["refresh_token","urn:ietf:params:oauth:grant-type:device_code"]}}"#
    )
}

fn device(issuer: &str) -> String {
    format!(
        r#"{{"device_code":"KEOY2_5YjuVsRuIrrR-aq5gs","user_code":"HHHJ-MMSZ","verification_uri":"{issuer}/device","verification_uri_complete":"{issuer}/device?user_code=HHHJ-MMSZ","expires_in":600,"interval":5}}"#
    )
}

const OIDC_TOKEN: &str = r#"{"access_token":"eyJhbGciOiJSUzI1NiJ9.e30.sig","expires_in":300,"refresh_expires_in":1800,"refresh_token":"eyJhbGciOiJIUzI1NiJ9.rt.sig","token_type":"Bearer","scope":"openid offline_access"}"#;

type Seeds = Vec<(String, Vec<u8>)>;

fn seed(
    out: &mut Seeds,
    name: &str,
    vendor: Vendor,
    op: Op,
    flags: u8,
    param: u8,
    answers: &[Canned],
) {
    out.push((
        name.to_string(),
        encode(op_index(vendor, op), flags, param, answers),
    ));
}

fn truesight() -> Seeds {
    let v = Vendor::Truesight;
    let mut s = Seeds::new();
    seed(
        &mut s,
        "page-answer",
        v,
        Op::SignIn,
        0,
        0,
        &[json(200, TS_PAGE)],
    );
    seed(&mut s, "sign-in", v, Op::SignIn, 0, 0, &[json(200, TS_OK)]);
    seed(
        &mut s,
        "renew-future-expiry",
        v,
        Op::Renew,
        flag::PREVIOUS,
        LOOPBACK,
        &[json(
            200,
            r#"{"authToken":"_ce14bc5c","authPassed":true,"expires":"2099-01-18T13:08:18.000Z","status":"OK"}"#,
        )],
    );
    seed(
        &mut s,
        "wrapped-in-response",
        v,
        Op::SignIn,
        0,
        0,
        &[json(
            200,
            r#"{"response":{"authToken":"_ce14bc5c","authPassed":true,"expires":"2018-01-18T13:08:18.000Z"}}"#,
        )],
    );
    seed(
        &mut s,
        "auth-failed",
        v,
        Op::SignIn,
        0,
        0,
        &[json(200, r#"{"authPassed":false,"status":"FAILED"}"#)],
    );
    seed(&mut s, "401", v, Op::SignIn, 0, 0, &[answer(401, None, "")]);
    seed(
        &mut s,
        "403-no-api-access",
        v,
        Op::SignIn,
        0,
        0,
        &[json(
            403,
            r#"{"statusCode":"403","statusMsg":"api-access permission is required"}"#,
        )],
    );
    seed(&mut s, "html", v, Op::SignIn, 0, 0, &[html(200)]);
    seed(
        &mut s,
        "500",
        v,
        Op::Renew,
        0,
        0,
        &[answer(500, Some("text/plain"), "Internal Server Error")],
    );
    seed(
        &mut s,
        "check-ok",
        v,
        Op::Check,
        0,
        0,
        &[json(200, r#"{"status":"OK"}"#)],
    );
    seed(
        &mut s,
        "check-expired",
        v,
        Op::Check,
        0,
        0,
        &[answer(401, Some("text/plain"), "Invalid/expired token")],
    );
    seed(
        &mut s,
        "check-403",
        v,
        Op::Check,
        0,
        0,
        &[answer(403, None, "")],
    );
    seed(
        &mut s,
        "sign-out",
        v,
        Op::SignOut,
        0,
        0,
        &[answer(200, None, "")],
    );
    seed(
        &mut s,
        "sign-out-expired",
        v,
        Op::SignOut,
        0,
        0,
        &[answer(401, None, "")],
    );
    s
}

fn bigid() -> Seeds {
    let v = Vendor::Bigid;
    let ut = flag::OTHER_METHOD;
    let mut s = Seeds::new();
    seed(
        &mut s,
        "page-answer",
        v,
        Op::SignIn,
        0,
        0,
        &[json(200, BIGID_PAGE)],
    );
    seed(
        &mut s,
        "session",
        v,
        Op::SignIn,
        0,
        0,
        &[json(
            200,
            r#"{"success":true,"message":"Enjoy your token!","auth_token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjQxMDI0NDQ4MDB9.sig","username":"bigid"}"#,
        )],
    );
    seed(
        &mut s,
        "session-opaque",
        v,
        Op::Renew,
        flag::PREVIOUS,
        LOOPBACK,
        &[json(200, r#"{"success":true,"auth_token":"not-a-jwt"}"#)],
    );
    seed(
        &mut s,
        "user-token",
        v,
        Op::SignIn,
        ut,
        0,
        &[json(
            200,
            r#"{"success":true,"systemToken":"eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE4OTM0NTYwMDB9.sig"}"#,
        )],
    );
    seed(
        &mut s,
        "user-token-jwt-post",
        v,
        Op::Renew,
        ut | flag::JWT_USER_TOKEN | flag::VARIANT,
        0,
        &[json(
            200,
            r#"{"success":true,"systemToken":"opaque-system-token"}"#,
        )],
    );
    seed(
        &mut s,
        "user-token-dated",
        v,
        Op::SignIn,
        ut | flag::SETTING,
        0,
        &[json(200, r#"{"success":true,"systemToken":"opaque"}"#)],
    );
    seed(
        &mut s,
        "refused-echo",
        v,
        Op::SignIn,
        0,
        0,
        &[json(
            401,
            r#"{"success":false,"message":"Wrong password pw-canary\"Q7/x+1 for bigid"}"#,
        )],
    );
    seed(
        &mut s,
        "refused-user-token",
        v,
        Op::SignIn,
        ut,
        0,
        &[json(
            403,
            r#"{"success":false,"message":"user token ut-canary~R4.w expired"}"#,
        )],
    );
    seed(
        &mut s,
        "success-false",
        v,
        Op::SignIn,
        0,
        0,
        &[json(
            200,
            r#"{"success":false,"message":"Invalid credentials"}"#,
        )],
    );
    seed(
        &mut s,
        "no-token",
        v,
        Op::SignIn,
        0,
        0,
        &[json(200, r#"{"success":true}"#)],
    );
    seed(&mut s, "html", v, Op::SignIn, ut, 0, &[html(200)]);
    seed(
        &mut s,
        "502",
        v,
        Op::SignIn,
        0,
        0,
        &[answer(502, Some("text/html"), "<html>Bad Gateway</html>")],
    );
    s
}

fn bigfix() -> Seeds {
    let v = Vendor::Bigfix;
    let prev = flag::PREVIOUS | flag::VENDOR_REF;
    let mut s = Seeds::new();
    seed(
        &mut s,
        "list-page",
        v,
        Op::List,
        0,
        0,
        &[json(200, BIGFIX_LIST)],
    );
    seed(
        &mut s,
        "list-schema",
        v,
        Op::List,
        0,
        0,
        &[json(200, BIGFIX_LIST_SCHEMA)],
    );
    seed(
        &mut s,
        "list-user",
        v,
        Op::List,
        0,
        2,
        &[json(200, BIGFIX_USER_LIST)],
    );
    seed(
        &mut s,
        "list-ms-and-s",
        v,
        Op::List,
        0,
        0,
        &[json(
            200,
            r#"{"Tokens":[{"Id":1,"Name":"a","Expiration":1772191430000,"User":1},{"Id":2,"Name":"b","Expiration":1772191430,"User":1},{"Id":3,"Name":"never","Expiration":0,"User":1},{"Id":4,"Name":"odd","Expiration":-5,"User":1},{"Id":5,"Name":"far","Expiration":9223372036854775807,"User":1}]}"#,
        )],
    );
    seed(
        &mut s,
        "by-name",
        v,
        Op::ByName,
        0,
        0,
        &[json(200, BIGFIX_ONE)],
    );
    seed(&mut s, "by-id", v, Op::ById, 0, 2, &[json(200, BIGFIX_ONE)]);
    seed(
        &mut s,
        "by-id-404",
        v,
        Op::ById,
        0,
        2,
        &[answer(404, Some("text/plain"), "Token not found")],
    );
    seed(
        &mut s,
        "create-page",
        v,
        Op::Create,
        0,
        0,
        &[json(200, BIGFIX_CREATE_PAGE)],
    );
    seed(
        &mut s,
        "create",
        v,
        Op::Create,
        0,
        60,
        &[json(200, BIGFIX_CREATE)],
    );
    seed(
        &mut s,
        "create-400",
        v,
        Op::Create,
        0,
        0,
        &[answer(
            400,
            Some("text/plain"),
            "A token named my_first_token already exists",
        )],
    );
    seed(
        &mut s,
        "sign-in",
        v,
        Op::SignIn,
        0,
        0,
        &[json(200, BIGFIX_CREATE)],
    );
    seed(
        &mut s,
        "sign-in-never",
        v,
        Op::SignIn,
        flag::SETTING,
        LOOPBACK,
        &[json(
            200,
            r#"{"Token":"cGt2PxRX","Id":9,"Name":"n","Expiration":0,"User":1}"#,
        )],
    );
    seed(
        &mut s,
        "renew-revokes",
        v,
        Op::Renew,
        prev,
        0,
        &[json(200, BIGFIX_CREATE), answer(200, None, "")],
    );
    seed(
        &mut s,
        "renew-old-gone",
        v,
        Op::Renew,
        prev,
        0,
        &[json(200, BIGFIX_CREATE), answer(404, None, "")],
    );
    seed(
        &mut s,
        "renew-revoke-fails",
        v,
        Op::Renew,
        prev,
        0,
        &[
            json(200, BIGFIX_CREATE),
            answer(503, Some("text/plain"), "busy"),
        ],
    );
    seed(
        &mut s,
        "renew-sink-fails",
        v,
        Op::Renew,
        prev | flag::SINK_FAILS,
        0,
        &[json(200, BIGFIX_CREATE), answer(200, None, "")],
    );
    seed(
        &mut s,
        "refused-echo-basic",
        v,
        Op::SignIn,
        0,
        0,
        &[answer(
            401,
            Some("text/plain"),
            "Unauthorized: Basic b3BlcmF0b3I6cHctY2FuYXJ5IlE3L3grMQ== (pw-canary\"Q7/x+1)",
        )],
    );
    seed(
        &mut s,
        "forbidden",
        v,
        Op::List,
        0,
        4,
        &[answer(
            403,
            Some("text/plain"),
            "Only master operators may list other operators' tokens",
        )],
    );
    seed(
        &mut s,
        "update",
        v,
        Op::Update,
        0,
        2,
        &[answer(200, None, "")],
    );
    seed(
        &mut s,
        "revoke",
        v,
        Op::Revoke,
        0,
        2,
        &[answer(200, None, "")],
    );
    seed(
        &mut s,
        "revoke-400",
        v,
        Op::Revoke,
        0,
        2,
        &[answer(400, Some("text/plain"), "bad request")],
    );
    seed(
        &mut s,
        "check",
        v,
        Op::Check,
        0,
        0,
        &[answer(200, Some("text/xml"), "<BESAPI/>")],
    );
    seed(
        &mut s,
        "check-revoked",
        v,
        Op::Check,
        0,
        0,
        &[answer(401, None, "")],
    );
    seed(
        &mut s,
        "sign-out",
        v,
        Op::SignOut,
        prev,
        0,
        &[answer(200, None, "")],
    );
    seed(&mut s, "html", v, Op::List, 0, 0, &[html(200)]);
    s
}

fn immuta() -> Seeds {
    let v = Vendor::Immuta;
    let pw = flag::OTHER_METHOD;
    let mut s = Seeds::new();
    seed(
        &mut s,
        "api-key",
        v,
        Op::SignIn,
        0,
        0,
        &[json(200, IMMUTA_KEY)],
    );
    seed(
        &mut s,
        "password",
        v,
        Op::SignIn,
        pw,
        0,
        &[json(200, IMMUTA_PASSWORD)],
    );
    seed(
        &mut s,
        "password-future",
        v,
        Op::Renew,
        pw | flag::PREVIOUS,
        LOOPBACK,
        &[json(
            200,
            r#"{"authenticated":true,"token":"2d79","tokenExpiration":"2099-11-02T20:00:43.687Z"}"#,
        )],
    );
    seed(&mut s, "401", v, Op::SignIn, 0, 0, &[json(401, IMMUTA_401)]);
    seed(
        &mut s,
        "401-echo",
        v,
        Op::Renew,
        0,
        0,
        &[json(
            401,
            r#"{"message":"bad apikey ak-canary Z9&k=2","error":"Unauthorized ak-canary%20Z9%26k%3D2","statusCode":401}"#,
        )],
    );
    seed(
        &mut s,
        "404-iam",
        v,
        Op::SignIn,
        pw,
        0,
        &[json(
            404,
            r#"{"message":"IAM not found","error":"Not Found","statusCode":404}"#,
        )],
    );
    seed(
        &mut s,
        "500",
        v,
        Op::SignIn,
        0,
        0,
        &[json(500, r#"{"message":"boom","statusCode":500}"#)],
    );
    seed(
        &mut s,
        "not-authenticated",
        v,
        Op::SignIn,
        0,
        0,
        &[json(200, r#"{"authenticated":false}"#)],
    );
    seed(&mut s, "html", v, Op::SignIn, pw, 0, &[html(200)]);
    seed(
        &mut s,
        "check",
        v,
        Op::Check,
        0,
        0,
        &[json(200, r#"{"id":1,"name":"user"}"#)],
    );
    seed(
        &mut s,
        "check-401",
        v,
        Op::Check,
        0,
        0,
        &[json(401, IMMUTA_401)],
    );
    s
}

fn biganimal() -> Seeds {
    let v = Vendor::Biganimal;
    let prev = flag::PREVIOUS | flag::VENDOR_REF;
    let pending = || json(400, &oauth_error("authorization_pending"));
    let mut s = Seeds::new();
    seed(
        &mut s,
        "start",
        v,
        Op::StartDevice,
        0,
        0,
        &[json(200, BA_PROVIDER), json(200, BA_DEVICE)],
    );
    seed(
        &mut s,
        "start-free-trial",
        v,
        Op::StartDevice,
        flag::VARIANT,
        0,
        &[json(200, BA_PROVIDER), json(200, BA_DEVICE)],
    );
    seed(
        &mut s,
        "sign-in-in-the-browser",
        v,
        Op::StartAndPoll,
        0,
        0,
        &[
            json(200, BA_PROVIDER),
            json(200, BA_DEVICE),
            pending(),
            json(200, BA_TOKEN),
            json(200, BA_EXCHANGE),
        ],
    );
    seed(
        &mut s,
        "slow-down",
        v,
        Op::StartAndPoll,
        flag::CLIENT_ID,
        0,
        &[
            json(200, BA_PROVIDER),
            json(200, BA_DEVICE),
            json(400, &oauth_error("slow_down")),
        ],
    );
    seed(
        &mut s,
        "loopback",
        v,
        Op::StartAndPoll,
        0,
        LOOPBACK,
        &[
            json(
                200,
                r#"{"clientId":"c","issuerUri":"http://127.0.0.1:9/auth","scope":"openid offline_access"}"#,
            ),
            json(
                200,
                r#"{"device_code":"d","user_code":"U","verification_uri":"http://127.0.0.1:9/auth/activate","expires_in":"900","interval":5.5}"#,
            ),
            json(200, BA_TOKEN),
            json(200, BA_EXCHANGE),
        ],
    );
    seed(
        &mut s,
        "issuer-elsewhere",
        v,
        Op::StartDevice,
        0,
        0,
        &[json(
            200,
            r#"{"clientId":"c","issuerUri":"https://evil.example.net"}"#,
        )],
    );
    seed(
        &mut s,
        "poll",
        v,
        Op::Poll,
        0,
        0,
        &[json(200, BA_TOKEN), json(200, BA_EXCHANGE)],
    );
    seed(
        &mut s,
        "poll-sink-fails",
        v,
        Op::Poll,
        flag::SINK_FAILS,
        0,
        &[json(200, BA_TOKEN), json(200, BA_EXCHANGE)],
    );
    seed(
        &mut s,
        "poll-expired",
        v,
        Op::Poll,
        0,
        0,
        &[json(400, &oauth_error("expired_token"))],
    );
    seed(
        &mut s,
        "poll-denied",
        v,
        Op::Poll,
        0,
        0,
        &[json(403, &oauth_error("access_denied"))],
    );
    seed(
        &mut s,
        "poll-echo",
        v,
        Op::Poll,
        0,
        0,
        &[json(
            400,
            r#"{"error":"invalid_request","error_description":"device_code dc-canary@K8!z unknown"}"#,
        )],
    );
    seed(
        &mut s,
        "poll-no-refresh",
        v,
        Op::Poll,
        0,
        0,
        &[json(200, r#"{"access_token":"a","expires_in":86400}"#)],
    );
    seed(
        &mut s,
        "exchange-refused",
        v,
        Op::Poll,
        0,
        0,
        &[json(200, BA_TOKEN), json(403, r#"{"message":"forbidden"}"#)],
    );
    seed(
        &mut s,
        "renew",
        v,
        Op::Renew,
        prev,
        0,
        &[json(200, BA_REFRESHED), json(200, BA_EXCHANGE)],
    );
    seed(
        &mut s,
        "renew-sink-fails",
        v,
        Op::Renew,
        prev | flag::SINK_FAILS,
        0,
        &[json(200, BA_REFRESHED), json(200, BA_EXCHANGE)],
    );
    seed(
        &mut s,
        "renew-same-refresh",
        v,
        Op::Renew,
        prev,
        0,
        &[
            json(
                200,
                r#"{"access_token":"a","refresh_token":"rt-canary%P3#v","expires_in":86400}"#,
            ),
            json(200, BA_EXCHANGE),
        ],
    );
    seed(
        &mut s,
        "renew-huge-lifetime",
        v,
        Op::Renew,
        prev,
        0,
        &[
            json(
                200,
                r#"{"access_token":"a","refresh_token":"r2","expires_in":1e13,"refresh_expires_in":-1}"#,
            ),
            json(200, BA_EXCHANGE),
        ],
    );
    seed(
        &mut s,
        "renew-invalid-grant",
        v,
        Op::Renew,
        prev,
        0,
        &[json(
            403,
            r#"{"error":"invalid_grant","error_description":"Unknown or invalid refresh token rt-canary%P3#v."}"#,
        )],
    );
    seed(&mut s, "renew-no-ref", v, Op::Renew, flag::PREVIOUS, 0, &[]);
    seed(
        &mut s,
        "check",
        v,
        Op::Check,
        0,
        0,
        &[json(
            200,
            r#"{"projectId":"prj_abcd1234","projectName":"Test project"}"#,
        )],
    );
    seed(
        &mut s,
        "provider-html",
        v,
        Op::StartDevice,
        0,
        0,
        &[html(200)],
    );
    s
}

fn oidc() -> Seeds {
    let v = Vendor::Oidc;
    let remote = "https://login.example.com/realms/ops";
    let local = "http://127.0.0.1:9/oidc";
    let prev = flag::PREVIOUS | flag::VENDOR_REF;
    let cid = flag::CLIENT_ID;
    let mut s = Seeds::new();
    seed(
        &mut s,
        "start",
        v,
        Op::StartDevice,
        cid,
        0,
        &[json(200, &discovery(remote)), json(200, &device(remote))],
    );
    seed(
        &mut s,
        "start-no-client",
        v,
        Op::StartDevice,
        0,
        0,
        &[json(200, &discovery(remote))],
    );
    seed(
        &mut s,
        "start-local",
        v,
        Op::StartDevice,
        cid,
        LOOPBACK,
        &[json(200, &discovery(local)), json(200, &device(local))],
    );
    seed(
        &mut s,
        "sign-in-in-the-browser",
        v,
        Op::StartAndPoll,
        cid,
        0,
        &[
            json(200, &discovery(remote)),
            json(200, &device(remote)),
            json(400, &oauth_error("authorization_pending")),
            json(200, OIDC_TOKEN),
        ],
    );
    seed(
        &mut s,
        "wrong-issuer",
        v,
        Op::StartDevice,
        cid,
        0,
        &[json(
            200,
            &discovery("https://login.example.com/realms/other"),
        )],
    );
    seed(
        &mut s,
        "endpoint-elsewhere",
        v,
        Op::StartDevice,
        cid,
        0,
        &[json(
            200,
            r#"{"issuer":"https://login.example.com/realms/ops","device_authorization_endpoint":"https://evil.example.net/device","token_endpoint":"https://login.example.com/realms/ops/token"}"#,
        )],
    );
    seed(
        &mut s,
        "no-device-endpoint",
        v,
        Op::StartDevice,
        cid,
        0,
        &[json(
            200,
            r#"{"issuer":"https://login.example.com/realms/ops","token_endpoint":"https://login.example.com/realms/ops/token"}"#,
        )],
    );
    seed(
        &mut s,
        "device-loopback-from-remote",
        v,
        Op::StartDevice,
        cid,
        0,
        &[
            json(200, &discovery(remote)),
            json(
                200,
                r#"{"device_code":"d","user_code":"U","verification_uri":"http://127.0.0.1/activate","verification_url":"https://login.example.com/activate","interval":1e300,"expires_in":-4}"#,
            ),
        ],
    );
    seed(
        &mut s,
        "device-error",
        v,
        Op::StartDevice,
        cid,
        0,
        &[
            json(200, &discovery(remote)),
            json(401, &oauth_error("invalid_client")),
        ],
    );
    seed(&mut s, "poll", v, Op::Poll, 0, 0, &[json(200, OIDC_TOKEN)]);
    seed(
        &mut s,
        "poll-slow-down",
        v,
        Op::Poll,
        0,
        0,
        &[json(400, &oauth_error("slow_down"))],
    );
    seed(
        &mut s,
        "poll-5xx",
        v,
        Op::Poll,
        0,
        0,
        &[json(503, &oauth_error("temporarily_unavailable"))],
    );
    seed(
        &mut s,
        "poll-sink-fails",
        v,
        Op::Poll,
        flag::SINK_FAILS,
        0,
        &[json(200, OIDC_TOKEN)],
    );
    seed(
        &mut s,
        "renew",
        v,
        Op::Renew,
        prev,
        0,
        &[json(200, OIDC_TOKEN)],
    );
    seed(
        &mut s,
        "renew-discovers",
        v,
        Op::Renew,
        flag::PREVIOUS | cid,
        0,
        &[json(200, &discovery(remote)), json(200, OIDC_TOKEN)],
    );
    seed(
        &mut s,
        "renew-sink-fails",
        v,
        Op::Renew,
        prev | flag::SINK_FAILS,
        0,
        &[json(200, OIDC_TOKEN)],
    );
    seed(
        &mut s,
        "renew-rotated-but-broken",
        v,
        Op::Renew,
        prev,
        0,
        &[json(
            200,
            r#"{"refresh_token":"rt-new","expires_in":"soon"}"#,
        )],
    );
    seed(
        &mut s,
        "renew-string-numbers",
        v,
        Op::Renew,
        prev,
        0,
        &[json(
            200,
            r#"{"access_token":"a","refresh_token":7,"expires_in":"3600","refresh_expires_in":1.5e9}"#,
        )],
    );
    seed(
        &mut s,
        "renew-invalid-grant",
        v,
        Op::Renew,
        prev,
        0,
        &[json(
            400,
            r#"{"error":"invalid_grant","error_description":"Token is not active"}"#,
        )],
    );
    seed(
        &mut s,
        "renew-echo",
        v,
        Op::Renew,
        prev,
        0,
        &[json(
            400,
            r#"{"error":"invalid_request","error_description":"refresh_token=rt-canary%25P3%23v rejected"}"#,
        )],
    );
    seed(
        &mut s,
        "discovery-html",
        v,
        Op::StartDevice,
        cid,
        0,
        &[html(200)],
    );
    seed(&mut s, "sign-in", v, Op::SignIn, 0, 0, &[]);
    s
}

/// OpenBao / Vault: a token kept with lookup-self and renew-self, or a userpass login.
fn openbao() -> Seeds {
    let v = Vendor::Openbao;
    let token = flag::OTHER_METHOD;
    const LOOKUP: &str = r#"{"data":{"ttl":2764800,"creation_ttl":2764800,"renewable":true,"explicit_max_ttl":0,"issue_time":"2026-12-01T10:00:00.0Z","policies":["default"]}}"#;
    const LOGIN: &str = r#"{"auth":{"client_token":"hvs.CAESIJ","lease_duration":2764800,"renewable":true,"policies":["default"]}}"#;
    let mut s = Seeds::new();
    seed(
        &mut s,
        "token",
        v,
        Op::SignIn,
        token,
        0,
        &[json(200, LOOKUP)],
    );
    seed(
        &mut s,
        "token-renew-capped",
        v,
        Op::Renew,
        token | flag::PREVIOUS,
        0,
        &[
            json(200, LOOKUP),
            json(
                200,
                r#"{"auth":{"client_token":"ut-canary~R4.w","lease_duration":60,"renewable":true},"warnings":["TTL of \"768h\" exceeded the effective max_ttl"]}"#,
            ),
        ],
    );
    seed(
        &mut s,
        "token-403-echo",
        v,
        Op::Renew,
        token,
        0,
        &[json(
            403,
            r#"{"errors":["permission denied for ut-canary~R4.w"]}"#,
        )],
    );
    seed(&mut s, "password", v, Op::SignIn, 0, 0, &[json(200, LOGIN)]);
    seed(
        &mut s,
        "password-400-echo",
        v,
        Op::Renew,
        0,
        0,
        &[json(
            400,
            r#"{"errors":["invalid username or password pw-canary\"Q7/x+1"]}"#,
        )],
    );
    seed(
        &mut s,
        "sealed",
        v,
        Op::SignIn,
        0,
        0,
        &[json(503, r#"{"errors":["Vault is sealed"]}"#)],
    );
    seed(
        &mut s,
        "check-403",
        v,
        Op::Check,
        token,
        0,
        &[json(403, r#"{"errors":["permission denied"]}"#)],
    );
    s
}

fn any_vendor() -> Seeds {
    let mut s = Seeds::new();
    for (vendor, seeds) in [
        (Vendor::Truesight, truesight()),
        (Vendor::Bigid, bigid()),
        (Vendor::Bigfix, bigfix()),
        (Vendor::Immuta, immuta()),
        (Vendor::Biganimal, biganimal()),
        (Vendor::Oidc, oidc()),
        (Vendor::Openbao, openbao()),
    ] {
        let index = Vendor::ALL.iter().position(|v| *v == vendor).unwrap() as u8;
        for (name, data) in seeds.into_iter().take(4) {
            let mut d = vec![index];
            d.extend(data);
            s.push((format!("{}-{name}", vendor.id()), d));
        }
        // Content types a server may send, inline.
        let mut d = vec![index];
        d.extend(encode(
            0,
            0,
            0,
            &[answer(
                200,
                Some("application/json;charset=UTF-8"),
                r#"{"a":1}"#,
            )],
        ));
        s.push((format!("{}-inline-type", vendor.id()), d));
    }
    s
}

fn jwt_expiry() -> Seeds {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let jwt = |claims: &str| {
        format!(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(claims)
        )
    };
    let mut s = Seeds::new();
    for (name, text) in [
        (
            "page-token",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.<don't copy me! I'm just an example!>..."
                .to_string(),
        ),
        ("exp", jwt(r#"{"sub":"bigid","exp":1893456000}"#)),
        ("exp-float", jwt(r#"{"exp":1893456000.5}"#)),
        ("exp-huge", jwt(r#"{"exp":1e300}"#)),
        ("exp-negative", jwt(r#"{"exp":-9223372036854775808}"#)),
        ("exp-string", jwt(r#"{"exp":"1893456000"}"#)),
        ("no-exp", jwt(r#"{"sub":"x"}"#)),
        ("opaque", "2d798e67a4214e2960ca4b".to_string()),
        ("claims", r#"{"exp":253402300799}"#.to_string()),
    ] {
        s.push((name.to_string(), text.into_bytes()));
    }
    s
}

fn bigfix_expiration() -> Seeds {
    let mut s = Seeds::new();
    for (name, value, body) in [
        ("page-us", 1_772_191_430_000_000_i64, BIGFIX_LIST),
        ("ms", 1_772_191_430_000, BIGFIX_USER_LIST),
        ("s", 1_772_191_430, BIGFIX_ONE),
        ("never", 0, BIGFIX_CREATE),
        ("negative", -1, BIGFIX_LIST_SCHEMA),
        ("max", i64::MAX, BIGFIX_CREATE_PAGE),
    ] {
        let mut d = value.to_le_bytes().to_vec();
        d.extend_from_slice(body.as_bytes());
        s.push((name.to_string(), d));
    }
    s
}

fn answers() -> Seeds {
    let mut s = Seeds::new();
    for (name, status, ct, body) in [
        ("json", 200u16, "application/json", BA_TOKEN),
        ("cut-off", 200, "application/json", BIGID_PAGE),
        ("html-type", 200, "text/html; charset=utf-8", "<p>login</p>"),
        (
            "html-sniffed",
            502,
            "",
            "  <!DOCTYPE html><html>Bad Gateway</html>",
        ),
        ("no-type-404", 404, "", "Not Found"),
        ("weird-status", 999, "application/json", "{}"),
        ("not-json", 200, "application/json", "Token not found"),
    ] {
        let mut d = status.to_be_bytes().to_vec();
        d.extend_from_slice(ct.as_bytes());
        d.push(b'\n');
        d.extend_from_slice(body.as_bytes());
        s.push((name.to_string(), d));
    }
    s
}

/// Requests a browser (or anything else on this machine) may send to OpenBao's
/// loopback OIDC callback, as `bao login -method=oidc` documents its return.
fn openbao_callback() -> Seeds {
    let state = fuzzing::CALLBACK_STATE;
    let get = |target: &str| format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:8250\r\n\r\n");
    let post = |body: &str| {
        format!(
            "POST /oidc/callback HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let mut s = Seeds::new();
    for (name, head) in [
        (
            "code",
            get(&format!("/oidc/callback?code=c0de-1&state={state}")),
        ),
        (
            "code-first-of-two",
            get(&format!(
                "/oidc/callback?state={state}&code=one&code=two&state=other"
            )),
        ),
        ("other-state", get("/oidc/callback?code=c0de&state=stale")),
        ("no-code", get(&format!("/oidc/callback?state={state}"))),
        (
            "refused",
            get(&format!(
                "/oidc/callback?state={state}&error=access_denied&error_description=User%20cancelled%0D%0Athe%20login"
            )),
        ),
        ("favicon", get("/favicon.ico")),
        ("form-post", post(&format!("code=c&state={state}"))),
        ("stray-post", post("code=c&state=guessed")),
        ("options", "OPTIONS * HTTP/1.1\r\n\r\n".to_string()),
        ("absolute-form", get("http://127.0.0.1:8250/oidc/callback")),
        ("bare-lf", format!("GET /oidc/callback?code=x&state={state} HTTP/1.0\n\n")),
        (
            "encoded-path",
            get(&format!("/oidc/%63allback?code=x&state={state}")),
        ),
    ] {
        s.push((name.to_string(), head.into_bytes()));
    }
    let mut binary = b"GET /oidc/callback?state=".to_vec();
    binary.extend_from_slice(state.as_bytes());
    binary.extend_from_slice(b"&code=\xff\xfe HTTP/1.1\r\n\r\n\x00\x01");
    s.push(("binary".to_string(), binary));
    s
}

/// Writes `fuzz/seeds/<target>/` from the examples above.
#[test]
#[ignore = "writes the seed corpora; run by hand"]
fn write_seeds() {
    for (target, seeds) in [
        ("truesight", truesight()),
        ("bigid", bigid()),
        ("bigfix", bigfix()),
        ("immuta", immuta()),
        ("biganimal", biganimal()),
        ("oidc", oidc()),
        ("any_vendor", any_vendor()),
        ("jwt_expiry", jwt_expiry()),
        ("bigfix_expiration", bigfix_expiration()),
        ("answer", answers()),
        ("openbao_callback", openbao_callback()),
    ] {
        let dir = fuzz_dir().join("seeds").join(target);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, data) in seeds {
            std::fs::write(dir.join(name), data).unwrap();
        }
    }
}
