//! Secrets held in memory: a type that cannot leak through Debug, Display or serde.
//!
//! `Secret` deliberately implements neither `Display` nor `Serialize`: the only way to
//! the text is `expose()`, which makes every use visible in review. The bundle of an
//! account's secrets is turned into the keyring's JSON by one explicit function.

use std::fmt;

use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

use crate::error::Error;

/// A secret string: password, API key, user token, refresh or access token.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret's text. Call it only where the secret leaves for the keyring, a
    /// vendor's request, or `tokenkeeper token`'s stdout.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A vendor's words, fit to quote in an error message (which reaches the history,
/// the window and notifications): every secret that was sent is replaced first, so no
/// fragment of one survives the cut, then control characters go, then the text is
/// cut to `max_chars`. A vendor may echo what it was sent.
pub fn quote_vendor<'a>(
    text: &str,
    sent: impl IntoIterator<Item = &'a Secret>,
    max_chars: usize,
) -> String {
    // Each secret as a vendor may echo it: as sent, JSON-escaped, percent-encoded,
    // or in base64. Longest first: a form that contains another is replaced whole.
    let mut forms: Vec<Zeroizing<String>> = sent
        .into_iter()
        .filter(|s| s.expose().len() >= 4)
        .flat_map(|s| echoed_forms(s.expose()))
        .collect();
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    let scrub = |mut out: String| {
        for form in &forms {
            if form.len() >= 4 {
                out = out.replace(form.as_str(), "[redacted]");
            }
        }
        out
    };
    // Scrubbed again once control characters are gone: one inside an echoed secret
    // must not shield it from the first pass and then vanish (found by fuzzing).
    let clean = scrub(
        scrub(text.to_string())
            .chars()
            .filter(|c| !c.is_control())
            .collect(),
    );
    let clean = clean.trim();
    if clean.chars().count() > max_chars {
        let cut: String = clean.chars().take(max_chars).collect();
        format!("{}…", cut.trim_end())
    } else {
        clean.to_string()
    }
}

/// The ways a server may quote a secret it was sent.
fn echoed_forms(secret: &str) -> Vec<Zeroizing<String>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json
        .strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or_default()
        .to_string();
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    // Every byte but the unreserved ones escaped, as a strict client would, in
    // upper- or lower-case hex.
    let percent = |lower: bool| -> String {
        secret
            .bytes()
            .map(
                |b| match (b.is_ascii_alphanumeric() || b"-._~".contains(&b), lower) {
                    (true, _) => char::from(b).to_string(),
                    (false, false) => format!("%{b:02X}"),
                    (false, true) => format!("%{b:02x}"),
                },
            )
            .collect()
    };
    let mut forms = vec![
        secret.to_string(),
        json,
        form,
        percent(false),
        percent(true),
        STANDARD.encode(secret),
        STANDARD_NO_PAD.encode(secret),
        URL_SAFE.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
    ];
    // A JSON string escapes "/" as "\/" in some servers' output.
    forms.push(forms[1].replace('/', "\\/"));
    forms.into_iter().map(Zeroizing::new).collect()
}

/// What kind of secret a slot of the bundle holds; also its key in the keyring's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    Password,
    ApiKey,
    UserToken,
    RefreshToken,
    AccessToken,
    VendorToken,
}

impl SecretKind {
    pub const ALL: [SecretKind; 6] = [
        SecretKind::Password,
        SecretKind::ApiKey,
        SecretKind::UserToken,
        SecretKind::RefreshToken,
        SecretKind::AccessToken,
        SecretKind::VendorToken,
    ];

    pub fn key(self) -> &'static str {
        match self {
            SecretKind::Password => "password",
            SecretKind::ApiKey => "api_key",
            SecretKind::UserToken => "user_token",
            SecretKind::RefreshToken => "refresh_token",
            SecretKind::AccessToken => "access_token",
            SecretKind::VendorToken => "vendor_token",
        }
    }

    /// How the admin calls it, for prompts and messages.
    pub fn label(self) -> &'static str {
        match self {
            SecretKind::Password => "password",
            SecretKind::ApiKey => "API key",
            SecretKind::UserToken => "user token",
            SecretKind::RefreshToken => "refresh token",
            SecretKind::AccessToken => "access token",
            SecretKind::VendorToken => "token",
        }
    }
}

/// Every secret of one account: stored as one keyring item, so that a rotation
/// replaces the refresh and access tokens in a single write.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBundle {
    slots: Vec<(SecretKind, Secret)>,
}

impl fmt::Debug for SecretBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds: Vec<&str> = self.slots.iter().map(|(k, _)| k.key()).collect();
        write!(f, "SecretBundle{kinds:?}")
    }
}

impl SecretBundle {
    pub fn get(&self, kind: SecretKind) -> Option<&Secret> {
        self.slots.iter().find(|(k, _)| *k == kind).map(|(_, s)| s)
    }

    pub fn set(&mut self, kind: SecretKind, secret: Secret) {
        self.remove(kind);
        self.slots.push((kind, secret));
    }

    pub fn with(mut self, kind: SecretKind, secret: Secret) -> Self {
        self.set(kind, secret);
        self
    }

    pub fn remove(&mut self, kind: SecretKind) {
        self.slots.retain(|(k, _)| *k != kind);
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// A vendor's words, fit to quote in a message: see [`quote_vendor`].
    pub fn quote(&self, text: &str, max_chars: usize) -> String {
        quote_vendor(text, self.secrets(), max_chars)
    }

    /// Every secret of the bundle, for scrubbing.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.slots.iter().map(|(_, s)| s)
    }

    /// The keyring item's text. The only place a bundle becomes JSON.
    pub fn to_keyring_json(&self) -> Zeroizing<String> {
        let mut map = Map::new();
        map.insert("v".into(), Value::from(1));
        for (kind, secret) in &self.slots {
            map.insert(
                kind.key().into(),
                Value::String(secret.expose().to_string()),
            );
        }
        let mut value = Value::Object(map);
        let text = Zeroizing::new(value.to_string());
        wipe(&mut value);
        text
    }

    pub fn from_keyring_json(text: &str) -> Result<Self, Error> {
        let mut value: Value = serde_json::from_str(text).map_err(|_| {
            Error::keyring("a keyring item of this vault is not in Tokenkeeper's format; it was left untouched")
        })?;
        let mut bundle = SecretBundle::default();
        if let Value::Object(map) = &value {
            for kind in SecretKind::ALL {
                if let Some(Value::String(s)) = map.get(kind.key()) {
                    bundle.set(kind, Secret::new(s.clone()));
                }
            }
        }
        wipe(&mut value);
        Ok(bundle)
    }
}

fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Object(map) => map.values_mut().for_each(wipe),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use static_assertions::assert_not_impl_any;

    assert_not_impl_any!(Secret: serde::Serialize, fmt::Display);
    assert_not_impl_any!(SecretBundle: serde::Serialize, fmt::Display);

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2-canary");
        assert_eq!(format!("{s:?}"), "[redacted]");
        let b = SecretBundle::default().with(SecretKind::Password, s);
        let shown = format!("{b:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("password"));
    }

    #[test]
    fn keyring_json_round_trips() {
        let b = SecretBundle::default()
            .with(SecretKind::Password, Secret::new("p@ss\"word"))
            .with(SecretKind::AccessToken, Secret::new("tok"));
        let text = b.to_keyring_json();
        let back = SecretBundle::from_keyring_json(&text).unwrap();
        assert_eq!(back, b);
        assert_eq!(
            back.get(SecretKind::Password).unwrap().expose(),
            "p@ss\"word"
        );
        assert!(back.get(SecretKind::RefreshToken).is_none());
    }

    #[test]
    fn quote_hides_every_secret() {
        let b = SecretBundle::default().with(SecretKind::Password, Secret::new("s3cr3t-pw"));
        assert_eq!(
            b.quote("bad password s3cr3t-pw!", 100),
            "bad password [redacted]!"
        );
    }

    #[test]
    fn quote_hides_a_secret_in_the_forms_a_vendor_echoes_it_in() {
        use base64::Engine as _;
        let raw = "pa ss/w+rd\"é&=?";
        let secret = Secret::new(raw);
        let json = serde_json::to_string(raw).unwrap();
        let form: String = url::form_urlencoded::byte_serialize(raw.as_bytes()).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let strict = "pa%20ss%2Fw%2Brd%22%C3%A9%26%3D%3F";
        for echoed in [
            json.trim_matches('"').to_string(),
            json.trim_matches('"').replace('/', "\\/"),
            form,
            strict.to_string(),
            // Lower-case hex (the secret's own letters are lower-case here).
            strict.to_ascii_lowercase(),
            b64,
            b64url,
        ] {
            let text = format!("rejected: {echoed} (try again)");
            let quoted = quote_vendor(&text, [&secret], 500);
            assert!(quoted.contains("[redacted]"), "{echoed} survived: {quoted}");
            assert!(!quoted.contains(&echoed), "{echoed} survived: {quoted}");
        }
    }

    #[test]
    fn quote_scrubs_before_it_cuts_so_no_fragment_survives() {
        let token = Secret::new("rt-0123456789abcdef");
        // The cut falls inside the echoed token: scrubbing after it would leave
        // "rt-0123" in the message.
        let said = format!("invalid refresh token {}", token.expose());
        let q = quote_vendor(&said, [&token], 28);
        assert!(!q.contains("rt-0123"), "{q}");
        assert_eq!(q, "invalid refresh token [redac…");
    }

    #[test]
    fn quote_replaces_a_secret_that_contains_another_whole() {
        let short = Secret::new("abcd1234");
        let long = Secret::new("abcd1234-and-more");
        let q = quote_vendor("got abcd1234-and-more", [&short, &long], 100);
        assert_eq!(q, "got [redacted]");
    }

    #[test]
    fn quote_drops_control_characters_and_trims() {
        let q = quote_vendor("  line one\nline\u{1b}[31m two\r\n", [], 100);
        assert_eq!(q, "line oneline[31m two");
    }

    #[test]
    fn foreign_keyring_text_is_an_error_not_a_panic() {
        let err = SecretBundle::from_keyring_json("not json").unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Keyring);
    }
}
