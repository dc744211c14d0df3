//! A sixth vendor, thrown away after the test: its whole module is this file. It shows
//! that one vendor's quirks (its sign-in form, a setting check, the URL hint, what to do
//! after a sign-in) fit the `VendorFlow` hooks, and that the generic parts (the add
//! form, validation, vendor calls, the fuzzing seam) take it without any other
//! vendor's module knowing. A real sixth vendor adds this file under `vendors/` plus
//! its line in the registry (`Vendor` and `vendors::flow_for`).

use async_trait::async_trait;
use chrono::{Duration, Utc};
use serde::Deserialize;
use tokenkeeper_core::canned::{self, Canned};
use tokenkeeper_core::error::{Error, ErrorKind, Result};
use tokenkeeper_core::fields::{Field, FieldKey, MethodSpec, NewAccount};
use tokenkeeper_core::forms::vendor_form;
use tokenkeeper_core::http;
use tokenkeeper_core::model::{EventKind, Method, Note, Outcome, RenewsWith, TokenMeta, Vendor};
use tokenkeeper_core::secret::{Secret, SecretBundle, SecretKind};
use tokenkeeper_core::vault::account_from;
use tokenkeeper_core::vendors::{required, Call, Issued, VendorFlow};

struct Acme;

const FIELDS: &[Field] = &[
    Field {
        key: FieldKey::Username,
        label: "Username",
        required: true,
        help: "An Acme user with API access",
        default: None,
    },
    Field {
        key: FieldKey::TokenDuration,
        label: "Session lifetime (days)",
        required: false,
        help: "1 to 30 days",
        default: Some("7"),
    },
];

const METHODS: &[MethodSpec] = &[MethodSpec {
    method: Method::Password,
    fields: FIELDS,
    secret: Some(SecretKind::Password),
}];

#[derive(Deserialize)]
struct Session {
    token: String,
    ttl_seconds: i64,
}

#[async_trait]
impl VendorFlow for Acme {
    fn vendor(&self) -> Vendor {
        // Until it has its own variant in the registry it borrows one; nothing here
        // looks a flow up by it.
        Vendor::Oidc
    }

    fn methods(&self) -> &'static [MethodSpec] {
        METHODS
    }

    fn url_hint(&self) -> &'static str {
        "https://acme.example.com"
    }

    fn check_setting(&self, key: FieldKey, value: &str) -> Result<()> {
        match key {
            FieldKey::TokenDuration => value
                .parse::<u32>()
                .ok()
                .filter(|d| (1..=30).contains(d))
                .map(drop)
                .ok_or_else(|| Error::usage(format!("'{value}' is not 1 to 30 days"))),
            _ => Ok(()),
        }
    }

    async fn sign_in(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<Issued> {
        let password = required(call, secrets, SecretKind::Password)?;
        let endpoint = "Acme's session API";
        let request = call
            .http
            .post(format!("{}/api/session", call.account.base_url))
            .json(&serde_json::json!({
                "user": call.account.username,
                "password": password.expose(),
            }));
        let answer = http::send(request, endpoint).await?;
        if !answer.status.is_success() {
            return Err(Error::refused(format!(
                "Acme refused the password of account '{}'",
                call.name()
            )));
        }
        let session: Session = answer.json()?;
        let expires = call.now + Duration::seconds(session.ttl_seconds);
        Ok(Issued {
            token: Secret::new(session.token),
            meta: TokenMeta::issued(call.now, Some(expires), RenewsWith::StoredPassword),
            rotated: Vec::new(),
            note: None,
        })
    }

    /// Acme keeps the previous session alive until it expires: say so.
    async fn after_sign_in(&self, call: &Call<'_>, _secrets: &SecretBundle) -> Option<Note> {
        call.previous.map(|_| Note {
            kind: EventKind::SignIn,
            outcome: Outcome::Ok,
            detail: "Acme keeps the previous session until it expires".into(),
        })
    }
}

fn new_account(settings: Vec<(FieldKey, String)>, username: Option<&str>) -> NewAccount {
    NewAccount {
        name: "acme-prod".into(),
        base_url: "https://acme.example.com".into(),
        username: username.map(str::to_string),
        settings,
        ..NewAccount::default()
    }
}

#[test]
fn the_add_form_is_the_flows_own() {
    let form = vendor_form(&Acme);
    assert_eq!(form.url_hint, "https://acme.example.com");
    assert_eq!(form.methods.len(), 1);
    let method = &form.methods[0];
    assert_eq!(method.secret_label.as_deref(), Some("password"));
    let keys: Vec<FieldKey> = method.fields.iter().map(|f| f.key).collect();
    assert_eq!(keys, [FieldKey::Username, FieldKey::TokenDuration]);
    assert_eq!(method.fields[1].default.as_deref(), Some("7"));
}

#[test]
fn validation_asks_the_flow_about_its_settings_and_fields() {
    let now = Utc::now();
    let bad = account_from(
        &Acme,
        new_account(vec![(FieldKey::TokenDuration, "45".into())], Some("ann")),
        now,
    )
    .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::Usage);
    assert!(bad.message().contains("'45' is not 1 to 30 days"), "{bad}");

    let missing = account_from(&Acme, new_account(vec![], None), now).unwrap_err();
    assert!(missing.message().contains("--username"), "{missing}");

    let foreign = account_from(
        &Acme,
        new_account(vec![(FieldKey::Scope, "read".into())], Some("ann")),
        now,
    )
    .unwrap_err();
    assert!(
        foreign.message().contains("--scope does not apply"),
        "{foreign}"
    );

    let (account, spec) = account_from(
        &Acme,
        new_account(vec![(FieldKey::TokenDuration, "14".into())], Some("ann")),
        now,
    )
    .unwrap();
    assert_eq!(spec.method, Method::Password);
    assert_eq!(account.username.as_deref(), Some("ann"));
    assert_eq!(account.setting("token_duration"), Some("14"));
}

#[test]
fn it_signs_in_through_the_same_calls_and_hooks_as_the_others() {
    let now = Utc::now();
    let (account, _) = account_from(&Acme, new_account(vec![], Some("ann")), now).unwrap();
    let client = reqwest::Client::new();
    let mut secrets = SecretBundle::default();
    secrets.set(SecretKind::Password, Secret::new("acme-password-canary"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        canned::arm([Canned {
            status: 200,
            content_type: Some("application/json".into()),
            body: br#"{"token":"acme-token-1","ttl_seconds":3600}"#.to_vec(),
        }]);
        let call = Call::new(&account, &client, now);
        let issued = Acme.sign_in(&call, &secrets).await.unwrap();
        assert_eq!(issued.token.expose(), "acme-token-1");
        assert_eq!(issued.meta.expires_at, Some(now + Duration::seconds(3600)));
        assert_eq!(Acme.after_sign_in(&call, &secrets).await, None);

        let again = Call::new(&account, &client, now).after(Some(&issued.meta));
        let note = Acme.after_sign_in(&again, &secrets).await.unwrap();
        assert_eq!((note.kind, note.outcome), (EventKind::SignIn, Outcome::Ok));

        // A refusal goes through the same error kinds as every vendor's.
        canned::arm([Canned {
            status: 401,
            content_type: Some("application/json".into()),
            body: b"{}".to_vec(),
        }]);
        let refused = Acme.sign_in(&call, &secrets).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Refused);
        assert!(!refused.message().contains("acme-password-canary"));
        assert_eq!(canned::disarm(), 0);
    });
}

#[test]
fn this_vendor_names_no_other_vendors_module() {
    let source = include_str!("sixth_vendor.rs");
    for other in [
        "bigid",
        "bigfix",
        "biganimal",
        "immuta",
        "truesight",
        "oidc",
        "oauth",
    ] {
        let path = format!("vendors::{other}");
        assert!(!source.contains(&path), "the sixth vendor uses {path}");
    }
}
