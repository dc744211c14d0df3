//! The desktop app as a resident process: one per vault (a second start hands over
//! and exits), and it keeps running in the tray without a window.

use std::time::{Duration, Instant};

use tokenkeeper_e2e::{bin, Display, Running, Session};

#[test]
fn a_second_start_hands_over_to_the_running_app_and_exits() {
    let s = Session::start();
    let display = Display::start();
    let start = |extra: &[&str]| s.spawn_desktop(&display, extra);
    let mut first = Running(start(&["--tray"]));
    // The first instance is up once its socket exists.
    let run_dir = s.root.path().join("run");
    let end = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_dir(&run_dir)
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".sock"))
        })
        .unwrap_or(false)
    {
        assert!(Instant::now() < end, "the first instance did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    assert!(
        !tokenkeeper_e2e::window_mapped(&display.name, "Tokenkeeper"),
        "started in the tray: no window yet"
    );
    let second = start(&[]);
    let out = tokenkeeper_e2e::finish(second, Duration::from_secs(15));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("already running"), "{}", out.stderr);
    assert!(
        out.took < Duration::from_secs(10),
        "handed over without a second app starting up: {:?}",
        out.took
    );
    assert!(
        first.0.try_wait().unwrap().is_none(),
        "the first instance runs on"
    );
    // The hand-over shows the first instance's window.
    tokenkeeper_e2e::wait_for(
        "the first instance to show its window",
        Duration::from_secs(20),
        || tokenkeeper_e2e::window_mapped(&display.name, "Tokenkeeper"),
    );
    // A third start, with the window already shown, hands over too.
    let third = tokenkeeper_e2e::finish(start(&[]), Duration::from_secs(15));
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(third.stderr.contains("already running"), "{}", third.stderr);
    assert!(
        first.0.try_wait().unwrap().is_none(),
        "the first instance still runs"
    );

    // A socket left by an app killed with -9 does not block the next start.
    let _ = first.0.kill();
    let _ = first.0.wait();
    let mut again = Running(start(&["--tray"]));
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        again.0.try_wait().unwrap().is_none(),
        "a new first instance"
    );
}

#[test]
fn start_at_login_writes_and_removes_an_autostart_entry_that_starts_in_the_tray() {
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
    assert_eq!(
        exec,
        format!("{} --tray", bin("tokenkeeper-desktop").display())
    );
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
