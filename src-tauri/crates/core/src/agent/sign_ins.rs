//! Browser sign-ins run by the agent, so that one started in a window survives the
//! window being closed and is shown again when it reopens. The device code's prompt
//! is answered at once while the approval is awaited here, one per account; how it
//! ended goes to every window on the feed (`sign-in-finished`). Cancelling stops the
//! wait for approval only: an approval already being stored is finished first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use super::feed::{Feed, FeedEvent};
use crate::error::{Error, Result};
use crate::ipc_types::{ShellEvent, SignInOutcome};
use crate::vault::Vault;
use crate::vendors::DevicePrompt;

/// One sign-in waiting for approval.
struct Pending {
    generation: u64,
    prompt: Option<DevicePrompt>,
    cancel: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// The sign-ins in progress, by account name.
pub struct SignIns {
    vault: Arc<Vault>,
    feed: Feed,
    /// Wakes the renewal engine: a signed-in account has a new plan.
    wake: Arc<Notify>,
    pending: Mutex<HashMap<String, Pending>>,
    next: AtomicU64,
}

impl std::fmt::Debug for SignIns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIns").finish_non_exhaustive()
    }
}

/// A sign-in in progress, as a window shows it again: nothing here is a secret (the
/// device code itself stays in the agent).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InProgress {
    pub account: String,
    pub prompt: DevicePrompt,
}

impl SignIns {
    pub fn new(vault: Arc<Vault>, feed: Feed, wake: Arc<Notify>) -> Arc<Self> {
        Arc::new(Self {
            vault,
            feed,
            wake,
            pending: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        })
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets `name`'s sign-in if it is still this generation's.
    fn finished(&self, name: &str, generation: u64) {
        let mut map = self.map();
        if map.get(name).is_some_and(|p| p.generation == generation) {
            map.remove(name);
        }
    }

    fn prompted(&self, name: &str, generation: u64, prompt: &DevicePrompt) {
        if let Some(p) = self
            .map()
            .get_mut(name)
            .filter(|p| p.generation == generation)
        {
            p.prompt = Some(prompt.clone());
        }
    }

    /// The sign-ins waiting for approval whose code was shown.
    pub fn in_progress(&self) -> Vec<InProgress> {
        let mut out: Vec<InProgress> = self
            .map()
            .iter()
            .filter_map(|(account, p)| {
                Some(InProgress {
                    account: account.clone(),
                    prompt: p.prompt.clone()?,
                })
            })
            .collect();
        out.sort_by(|a, b| a.account.cmp(&b.account));
        out
    }

    /// Starts `name`'s browser sign-in (ending one already under way) and answers
    /// with its prompt once the vendor gave a code, or with why it gave none.
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<DevicePrompt> {
        self.cancel(name).await;
        self.spawn(name)
            .await
            .map_err(|_| Error::internal("the sign-in stopped before it began"))?
    }

    /// Starts the sign-in task and registers it; the receiver gets the prompt (or why
    /// there is none). Not async: the registry's lock is never held across an await.
    fn spawn(self: &Arc<Self>, name: &str) -> oneshot::Receiver<Result<DevicePrompt>> {
        let generation = self.next.fetch_add(1, Ordering::SeqCst);
        let (prompt_tx, prompt_rx) = oneshot::channel::<Result<DevicePrompt>>();
        let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
        let prompt_tx = Arc::new(Mutex::new(Some(prompt_tx)));
        let on_prompt = prompt_tx.clone();
        let account = name.to_string();
        let me = self.clone();
        // Registered before the task can end, so that its end always finds its entry.
        let mut pending = self.map();
        let task = tokio::spawn(async move {
            let cancelled = async {
                let _ = cancel_rx.await;
            };
            let shown = me.clone();
            let shown_for = account.clone();
            let result = me
                .vault
                .login_device(
                    &account,
                    move |prompt| {
                        shown.prompted(&shown_for, generation, prompt);
                        if let Some(tx) = on_prompt.lock().unwrap_or_else(|p| p.into_inner()).take()
                        {
                            let _ = tx.send(Ok(prompt.clone()));
                        }
                    },
                    cancelled,
                )
                .await;
            me.finished(&account, generation);
            let unsent = prompt_tx.lock().unwrap_or_else(|p| p.into_inner()).take();
            let outcome = match result {
                Ok(_) => SignInOutcome::signed_in(&account),
                Err(e) => {
                    // Failing before any code was shown: the request answers with it.
                    if let Some(tx) = unsent {
                        let _ = tx.send(Err(e));
                        return;
                    }
                    SignInOutcome::failed(&account, e)
                }
            };
            me.wake.notify_one();
            me.feed
                .publish(FeedEvent::shell(ShellEvent::SignInFinished, &outcome));
        });
        pending.insert(
            name.to_string(),
            Pending {
                generation,
                prompt: None,
                cancel: cancel_tx,
                task,
            },
        );
        drop(pending);
        prompt_rx
    }

    /// Stops waiting for `name`'s approval (the code simply expires at the vendor)
    /// and waits for the sign-in to end, storing an approval that already arrived.
    pub async fn cancel(&self, name: &str) {
        let taken = self.map().remove(name);
        if let Some(p) = taken {
            let _ = p.cancel.send(());
            let _ = tokio::time::timeout(Duration::from_secs(10), p.task).await;
        }
    }
}
