//! What the agent tells the windows that subscribe to it: the engine's events, how a
//! browser sign-in ended, a notification no server took, and quit. The window runs no
//! engine of its own; it passes each event on to its web UI under the name the UI
//! already listens on (`ShellEvent`), so one renewal is seen once by every window.

use serde::Serialize;
use tokio::sync::broadcast;

use crate::ipc_types::ShellEvent;

/// How many events a slow subscriber may lag before it is told to reload instead.
const BACKLOG: usize = 256;

/// The name of the event that tells windows the agent is quitting.
pub const QUIT: &str = "quit";

/// One event as it crosses the socket: `{"event": NAME, "payload": …}` on a line.
/// Nothing in a payload is a secret: engine events, sign-in outcomes and messages.
#[derive(Debug, Clone, Serialize)]
pub struct FeedEvent {
    pub event: &'static str,
    pub payload: serde_json::Value,
}

impl FeedEvent {
    /// An event the window shows as the shell event `kind`.
    pub fn shell(kind: ShellEvent, payload: &impl Serialize) -> Self {
        Self {
            event: kind.name(),
            payload: serde_json::to_value(payload).unwrap_or(serde_json::Value::Null),
        }
    }

    /// The agent is quitting (the tray's Quit, a signal): windows close with it.
    pub fn quit() -> Self {
        Self {
            event: QUIT,
            payload: serde_json::Value::Null,
        }
    }

    /// The event as one line, newline included.
    pub fn line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// The agent's events, for every subscriber. Cloning it shares it.
#[derive(Debug, Clone)]
pub struct Feed(broadcast::Sender<FeedEvent>);

impl Default for Feed {
    fn default() -> Self {
        Self(broadcast::channel(BACKLOG).0)
    }
}

impl Feed {
    /// Sends `event` to whoever subscribes now; nobody listening is no error.
    pub fn publish(&self, event: FeedEvent) {
        let _ = self.0.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<FeedEvent> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_line_named_as_the_window_listens() {
        let e = FeedEvent::shell(ShellEvent::NotificationFailed, &"no server");
        let line = e.line();
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["event"], "notification-failed");
        assert_eq!(v["payload"], "no server");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&FeedEvent::quit().line()).unwrap()
                ["event"],
            QUIT
        );
    }
}
