//! Reads the expiry a vendor wrote into a JWT it issued (BigID's session and user
//! tokens), without verifying it: the vendor checks its own tokens, we only need
//! the date to plan renewals and deadlines.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use zeroize::Zeroizing;

/// The `exp` claim of a JWT, or `None` when the text is not a JWT or has no `exp`.
pub fn expiry(token: &str) -> Option<DateTime<Utc>> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?);
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?;
    let seconds = exp.as_i64().or_else(|| exp.as_f64().map(|f| f as i64))?;
    Utc.timestamp_opt(seconds, 0).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload.as_bytes())
        )
    }

    #[test]
    fn reads_exp_when_present() {
        let t = jwt(r#"{"sub":"bigid","exp":1893456000}"#);
        assert_eq!(expiry(&t).unwrap().timestamp(), 1_893_456_000);
    }

    #[test]
    fn anything_else_is_none() {
        assert_eq!(expiry(&jwt(r#"{"sub":"x"}"#)), None);
        assert_eq!(expiry("2d798e67a4214e2960ca4b"), None);
        assert_eq!(expiry("a.b.c"), None);
        assert_eq!(expiry("a.b.c.d"), None);
        assert_eq!(expiry(""), None);
    }
}
