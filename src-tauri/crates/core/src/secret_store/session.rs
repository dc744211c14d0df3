//! One D-Bus connection and one encrypted Secret Service session for the reads of a
//! process. `tokenkeeper token` reads two items (the vault key, then the account's);
//! through the keyring crate each read opened its own connection and its own session,
//! and the session's 1024-bit Diffie-Hellman exchange (two exponentiations here, one in
//! the keyring daemon) was most of what a read cost. Here the exchange is done once,
//! with a CSPRNG exponent, and overlapped with the daemon's work: the search is sent
//! before the exponent is computed, the secret is asked for before the shared key is
//! derived. Only the plain case is served (exactly one unlocked item, UTF-8 text);
//! anything else (no item, several, a locked collection that must prompt, a daemon that
//! went away) is left to the keyring crate, as before, by answering `None`.

use std::collections::HashMap;
use std::sync::{Mutex, TryLockError};
use std::time::{Duration, Instant};

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use dbus::arg::Variant;
use dbus::channel::{BusType, Channel};
use dbus::{Message, MessageType, Path};
use hkdf::Hkdf;
use num_bigint::BigUint;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

const SERVICE: &str = "org.freedesktop.secrets";
const SERVICE_PATH: &str = "/org/freedesktop/secrets";
const SERVICE_INTERFACE: &str = "org.freedesktop.Secret.Service";
const ITEM_INTERFACE: &str = "org.freedesktop.Secret.Item";
/// The Secret Service's encrypted transfer: the 1024-bit MODP group of RFC 2409
/// (generator 2), HKDF-SHA256 to a 128-bit AES key, AES-CBC with PKCS#7 padding.
const ALGORITHM: &str = "dh-ietf1024-sha256-aes128-cbc-pkcs7";
const PRIME: [u8; 128] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xC9, 0x0F, 0xDA, 0xA2, 0x21, 0x68, 0xC2, 0x34,
    0xC4, 0xC6, 0x62, 0x8B, 0x80, 0xDC, 0x1C, 0xD1, 0x29, 0x02, 0x4E, 0x08, 0x8A, 0x67, 0xCC, 0x74,
    0x02, 0x0B, 0xBE, 0xA6, 0x3B, 0x13, 0x9B, 0x22, 0x51, 0x4A, 0x08, 0x79, 0x8E, 0x34, 0x04, 0xDD,
    0xEF, 0x95, 0x19, 0xB3, 0xCD, 0x3A, 0x43, 0x1B, 0x30, 0x2B, 0x0A, 0x6D, 0xF2, 0x5F, 0x14, 0x37,
    0x4F, 0xE1, 0x35, 0x6D, 0x6D, 0x51, 0xC2, 0x45, 0xE4, 0x85, 0xB5, 0x76, 0x62, 0x5E, 0x7E, 0xC6,
    0xF4, 0x4C, 0x42, 0xE9, 0xA6, 0x37, 0xED, 0x6B, 0x0B, 0xFF, 0x5C, 0xB6, 0xF4, 0x06, 0xB7, 0xED,
    0xEE, 0x38, 0x6B, 0xFB, 0x5A, 0x89, 0x9F, 0xA5, 0xAE, 0x9F, 0x24, 0x11, 0x7C, 0x4B, 0x1F, 0xE6,
    0x49, 0x28, 0x66, 0x51, 0xEC, 0xE6, 0x53, 0x81, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
];

/// A link unused for this long is closed and a new one opened: a long-running agent
/// keeps no session open between renewals hours apart.
const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// The link cannot answer (no bus, a daemon that went away, a malformed answer): the
/// caller then asks through the keyring crate, whose error, if it fails too, is the one
/// reported.
#[derive(Debug)]
pub(super) struct Broken;

impl From<dbus::Error> for Broken {
    fn from(_: dbus::Error) -> Self {
        Broken
    }
}

impl From<dbus::arg::TypeMismatchError> for Broken {
    fn from(_: dbus::arg::TypeMismatchError) -> Self {
        Broken
    }
}

/// The link of one `OsKeyring` (and its clones), opened on first use.
#[derive(Default)]
pub(super) struct SharedLink {
    link: Mutex<Option<Link>>,
}

impl std::fmt::Debug for SharedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedLink")
    }
}

impl SharedLink {
    /// The secret of the one unlocked item with these attributes, as text; `None`
    /// when this link cannot tell (the caller asks the keyring crate). A read already
    /// using the link (another thread) is not waited for: `None` too.
    pub(super) fn read_text(
        &self,
        attributes: &[(&str, &str)],
        deadline: Instant,
    ) -> Option<Zeroizing<String>> {
        let mut slot = match self.link.try_lock() {
            Ok(slot) => slot,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        if slot.as_ref().is_some_and(|l| l.used.elapsed() > IDLE_LIMIT) {
            *slot = None;
        }
        let link = match slot.as_mut() {
            Some(link) => link,
            None => slot.insert(Link::connect().ok()?),
        };
        match link.read(attributes, deadline) {
            Ok(found) => {
                link.used = Instant::now();
                let bytes = found?;
                let text = std::str::from_utf8(&bytes).ok()?;
                Some(Zeroizing::new(text.to_string()))
            }
            Err(Broken) => {
                // A daemon that restarted, a session it forgot: start afresh next time.
                *slot = None;
                None
            }
        }
    }
}

/// Where the session's key exchange is.
enum Session {
    /// Not asked for yet.
    None,
    /// OpenSession sent with our public half; our exponent kept for the answer.
    Asked { serial: u32, exponent: BigUint },
    /// The daemon answered with its half; the shared key is not derived yet.
    Answered {
        path: Path<'static>,
        exponent: BigUint,
        theirs: BigUint,
    },
    Open {
        path: Path<'static>,
        key: Zeroizing<[u8; 16]>,
    },
}

pub(super) struct Link {
    channel: Channel,
    session: Session,
    /// Answers that came in while another was awaited, by the serial they answer.
    answers: HashMap<u32, Message>,
    used: Instant,
}

impl Link {
    fn connect() -> Result<Self, Broken> {
        Ok(Self {
            channel: Channel::get_private(BusType::Session)?,
            session: Session::None,
            answers: HashMap::new(),
            used: Instant::now(),
        })
    }

    /// The secret of the one unlocked item matching `attributes`; `Ok(None)` when
    /// there is none, several, or a locked one.
    fn read(
        &mut self,
        attributes: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, Broken> {
        let attributes: HashMap<&str, &str> = attributes.iter().copied().collect();
        let search =
            self.send(call(SERVICE_PATH, SERVICE_INTERFACE, "SearchItems")?.append1(attributes))?;
        // The exponentiation runs while the daemon searches.
        self.ask_for_session()?;
        let (unlocked, locked): (Vec<Path<'static>>, Vec<Path<'static>>) =
            self.answer(search, deadline)?.read2()?;
        let [item] = unlocked.as_slice() else {
            return Ok(None);
        };
        if !locked.is_empty() {
            return Ok(None);
        }
        let session = self.session_path(deadline)?;
        let get = self.send(call(item.clone(), ITEM_INTERFACE, "GetSecret")?.append1(session))?;
        // The shared key is derived while the daemon encrypts the secret.
        let key = self.session_key()?;
        let (_, iv, value, _): (Path<'static>, Vec<u8>, Vec<u8>, String) =
            self.answer(get, deadline)?.read1()?;
        decrypt(&key, &iv, &value).map(Some)
    }

    /// Sends a call now (libdbus would otherwise hold it until the next read).
    fn send(&self, message: Message) -> Result<u32, Broken> {
        let serial = self.channel.send(message).map_err(|()| Broken)?;
        self.channel.flush();
        Ok(serial)
    }

    fn ask_for_session(&mut self) -> Result<(), Broken> {
        if !matches!(self.session, Session::None) {
            return Ok(());
        }
        let mut random = Zeroizing::new([0u8; 128]);
        rand::rng().fill_bytes(random.as_mut());
        let exponent = BigUint::from_bytes_be(random.as_ref());
        let ours = BigUint::from(2u32).modpow(&exponent, &prime());
        let open = call(SERVICE_PATH, SERVICE_INTERFACE, "OpenSession")?
            .append2(ALGORITHM, Variant(ours.to_bytes_be()));
        let serial = self.send(open)?;
        self.session = Session::Asked { serial, exponent };
        Ok(())
    }

    fn session_path(&mut self, deadline: Instant) -> Result<Path<'static>, Broken> {
        if let Session::Asked { serial, .. } = self.session {
            let (theirs, path): (Variant<Vec<u8>>, Path<'static>) =
                self.answer(serial, deadline)?.read2()?;
            let Session::Asked { exponent, .. } =
                std::mem::replace(&mut self.session, Session::None)
            else {
                unreachable!("matched above");
            };
            self.session = Session::Answered {
                path,
                exponent,
                theirs: BigUint::from_bytes_be(&theirs.0),
            };
        }
        match &self.session {
            Session::Answered { path, .. } | Session::Open { path, .. } => Ok(path.clone()),
            _ => Err(Broken),
        }
    }

    fn session_key(&mut self) -> Result<Zeroizing<[u8; 16]>, Broken> {
        if let Session::Answered {
            path,
            exponent,
            theirs,
        } = &self.session
        {
            let key = shared_key(exponent, theirs)?;
            self.session = Session::Open {
                path: path.clone(),
                key,
            };
        }
        match &self.session {
            Session::Open { key, .. } => Ok(key.clone()),
            _ => Err(Broken),
        }
    }

    /// The answer to the call `serial`, waiting for it until `deadline`.
    fn answer(&mut self, serial: u32, deadline: Instant) -> Result<Message, Broken> {
        loop {
            if let Some(mut message) = self.answers.remove(&serial) {
                message.as_result()?;
                return Ok(message);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Broken);
            }
            if let Some(message) = self.channel.blocking_pop_message(left)? {
                let answer = matches!(
                    message.msg_type(),
                    MessageType::MethodReturn | MessageType::Error
                );
                if let (true, Some(to)) = (answer, message.get_reply_serial()) {
                    self.answers.insert(to, message);
                }
            }
        }
    }
}

fn call<'p>(path: impl Into<Path<'p>>, interface: &str, method: &str) -> Result<Message, Broken> {
    Message::new_method_call(SERVICE, path, interface, method).map_err(|_| Broken)
}

fn prime() -> BigUint {
    BigUint::from_bytes_be(&PRIME)
}

/// The session's AES key from our exponent and the daemon's public half.
fn shared_key(exponent: &BigUint, theirs: &BigUint) -> Result<Zeroizing<[u8; 16]>, Broken> {
    let prime = prime();
    // 1 and p-1 (and anything outside the group) would make the key guessable.
    let one = BigUint::from(1u32);
    if *theirs <= one || *theirs >= &prime - &one {
        return Err(Broken);
    }
    let secret = Zeroizing::new(theirs.modpow(exponent, &prime).to_bytes_be());
    let mut material = Zeroizing::new([0u8; 128]);
    material[128 - secret.len()..].copy_from_slice(&secret);
    let mut key = Zeroizing::new([0u8; 16]);
    Hkdf::<Sha256>::new(None, material.as_ref())
        .expand(&[], key.as_mut())
        .map_err(|_| Broken)?;
    Ok(key)
}

fn decrypt(key: &[u8; 16], iv: &[u8], value: &[u8]) -> Result<Zeroizing<Vec<u8>>, Broken> {
    let decryptor = cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv).map_err(|_| Broken)?;
    let mut clear = Zeroizing::new(value.to_vec());
    let len = decryptor
        .decrypt_padded_mut::<Pkcs7>(&mut clear)
        .map_err(|_| Broken)?
        .len();
    clear.truncate(len);
    Ok(clear)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::BlockEncryptMut;

    #[test]
    fn both_sides_derive_the_same_key_and_a_secret_round_trips() {
        let ours = BigUint::from(0x1234_5678_9abc_def1u64) << 900;
        let theirs = BigUint::from(0x0fed_cba9_8765_4321u64) << 800;
        let g = BigUint::from(2u32);
        let our_half = g.modpow(&ours, &prime());
        let their_half = g.modpow(&theirs, &prime());
        let key = shared_key(&ours, &their_half).unwrap();
        assert_eq!(*key, *shared_key(&theirs, &our_half).unwrap());

        let iv = [7u8; 16];
        let sealed = cbc::Encryptor::<aes::Aes128>::new_from_slices(key.as_ref(), &iv)
            .unwrap()
            .encrypt_padded_vec_mut::<Pkcs7>(b"hunter2");
        assert_eq!(&decrypt(&key, &iv, &sealed).unwrap()[..], b"hunter2");
        let mut other = *key;
        other[0] ^= 1;
        assert!(
            !matches!(decrypt(&other, &iv, &sealed), Ok(c) if &c[..] == b"hunter2"),
            "another key does not open it"
        );
    }

    #[test]
    fn degenerate_public_keys_are_refused() {
        let exponent = BigUint::from(12345u32);
        for bad in [
            BigUint::from(0u32),
            BigUint::from(1u32),
            prime() - BigUint::from(1u32),
            prime(),
        ] {
            assert!(shared_key(&exponent, &bad).is_err());
        }
    }
}
