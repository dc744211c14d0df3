//! How an account reaches its server: the certificate it trusts (proven by a
//! handshake before it is saved) and its address.

use super::Vault;
use crate::error::{Error, Result};
use crate::http;

impl Vault {
    /// Replaces how an account trusts its server's certificate: a CA of its own
    /// (`ca_cert_pem`) or one pinned certificate (`pin_sha256`), never both, never
    /// neither checked. The handshake must succeed with the new trust before it is
    /// saved, so a typo cannot cut an account off.
    pub async fn set_trust(
        &self,
        name: &str,
        ca_cert_pem: Option<String>,
        pin_sha256: Option<String>,
    ) -> Result<()> {
        let (mut account, _) = self.find(name)?;
        if !account.base_url.starts_with("https://") {
            return Err(Error::usage(format!(
                "account '{name}' does not use TLS ({}): there is no certificate to trust",
                account.base_url
            )));
        }
        match (ca_cert_pem, pin_sha256) {
            (Some(ca), None) => {
                account.ca_cert_pem = Some(ca.trim().to_string());
                account.settings.remove(http::PIN_SETTING);
            }
            (None, Some(pin)) => {
                account.ca_cert_pem = None;
                account
                    .settings
                    .insert(http::PIN_SETTING.to_string(), http::normalize_pin(&pin)?);
            }
            _ => {
                return Err(Error::usage(
                    "give either --ca-cert FILE or --pin-sha256 FINGERPRINT",
                ))
            }
        }
        let client = http::client_for(&account)?;
        http::handshake(&client, &account.base_url)
            .await
            .map_err(|e| e.for_account(name))?;
        // A shared account's trust changes in its team first (a refusal changes nothing).
        self.publish_shared(&account).await?;
        self.db.set_trust(
            &account.id,
            account.ca_cert_pem.as_deref(),
            &account.settings,
        )
    }

    /// Points an account at another address (the sandbox's, which changes each start).
    pub fn set_base_url(&self, name: &str, url: &str) -> Result<()> {
        let (account, _) = self.find(name)?;
        let url = http::normalize_base_url(url)?;
        self.db.set_base_url(&account.id, &url)
    }
}
