//! The desktop app as the window on demand (issue 13): launched, it makes sure the
//! vault's agent runs and shows the window; a second start hands over to the window
//! that is open and exits; `--tray` starts only the agent; start at login starts the
//! agent, not a window.

use std::time::Duration;

use tokenkeeper_e2e::{bin, wait_for, Display, Running, Session};

const WAIT: Duration = Duration::from_secs(30);

/// The window process's command name, as /proc shows it (15 characters).
const WINDOW: &str = "tokenkeeper-des";

/// Whether the window of `app` is on `display`; a window process that died first
/// fails the test with what it said (a window that never came showed up once in a
/// full run, unexplained).
fn window_shown(app: &mut Running, display: &Display) -> bool {
    if let Ok(Some(status)) = app.0.try_wait() {
        let mut said = String::new();
        if let Some(mut err) = app.0.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut said);
        }
        panic!("the window's process exited ({status}) before its window showed: {said}");
    }
    tokenkeeper_e2e::window_mapped(&display.name, "Tokenkeeper")
}

#[test]
fn a_launch_starts_the_agent_and_a_second_start_hands_over_to_the_open_window() {
    let s = Session::start();
    let display = Display::start();
    let start = |extra: &[&str]| s.spawn_desktop(&display, extra);

    // `--tray` (what a login used to start): the agent, and no window.
    let tray = tokenkeeper_e2e::finish(start(&["--tray"]), WAIT);
    assert_eq!(tray.code, 0, "{}", tray.stderr);
    assert!(tray.stderr.contains("in the tray"), "{}", tray.stderr);
    let agent = s.agent_pid().expect("the agent runs after --tray");
    assert!(s.processes_named(WINDOW).is_empty(), "no window process");
    assert!(!tokenkeeper_e2e::window_mapped(
        &display.name,
        "Tokenkeeper"
    ));

    // Launched from the menu: the window, over the same agent.
    let mut first = Running(start(&[]));
    wait_for("the window", WAIT, || window_shown(&mut first, &display));
    assert_eq!(s.agent_pid(), Some(agent), "the agent that ran is kept");

    let second = tokenkeeper_e2e::finish(start(&[]), WAIT);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("already running"),
        "{}",
        second.stderr
    );
    assert!(
        second.took < Duration::from_secs(20),
        "handed over without a second window starting up: {:?}",
        second.took
    );
    assert!(
        first.0.try_wait().unwrap().is_none(),
        "the first window runs on"
    );
    // (A helper the window spawns may pass for a moment as a second one; a second
    // window would stay.)
    wait_for("one window process", Duration::from_secs(10), || {
        s.processes_named(WINDOW).len() == 1
    });

    // A window killed with -9 leaves a socket that does not block the next start,
    // and the agent runs on.
    let _ = first.0.kill();
    let _ = first.0.wait();
    assert_eq!(s.agent_pid(), Some(agent));
    let mut again = Running(start(&[]));
    wait_for("a window again", WAIT, || {
        window_shown(&mut again, &display)
    });
    assert!(again.0.try_wait().unwrap().is_none(), "a new first window");

    // An agent killed with -9 is started again by the open window.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &agent.to_string()])
        .status();
    wait_for("the window to start a new agent", WAIT, || {
        s.agent_pid().is_some_and(|pid| pid != agent)
    });
}

#[test]
fn start_at_login_writes_and_removes_an_autostart_entry_that_starts_the_agent() {
    let s = Session::start();
    let entry = s.root.path().join("config/autostart/tokenkeeper.desktop");
    assert!(!entry.exists(), "off by default");
    let on = tokenkeeper_e2e::run(
        {
            let mut c = s.command(bin("tokenkeeper-desktop"));
            c.args(["--start-at-login", "on"]);
            c
        },
        None,
    );
    assert_eq!(on.code, 0, "{}", on.stderr);
    let text = std::fs::read_to_string(&entry).expect("the autostart entry");
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("Exec="))
        .expect("Exec=");
    let cli = std::fs::canonicalize(bin("tokenkeeper")).unwrap();
    assert_eq!(exec, format!("{} agent", cli.display()));
    assert!(
        text.starts_with("[Desktop Entry]\nType=Application\n"),
        "{text}"
    );
    let off = tokenkeeper_e2e::run(
        {
            let mut c = s.command(bin("tokenkeeper-desktop"));
            c.args(["--start-at-login", "off"]);
            c
        },
        None,
    );
    assert_eq!(off.code, 0, "{}", off.stderr);
    assert!(!entry.exists());
}
