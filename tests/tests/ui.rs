//! The admin's window end to end: the real desktop binary in Xvfb, driven over
//! WebDriver against the sandbox vendors over real HTTP(S) and a real keyring. Every
//! vendor is added from its generated form, browser sign-ins are approved from the
//! address the app opened (or left to expire, then retried with the copied code), a
//! BigFix account is pinned to its certificate, and renew, copy (with the clipboard cleared), reveal,
//! remove, the BigFix inventory and the settings are used as an admin would.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokenkeeper_e2e::oidc::OidcServer;
use tokenkeeper_e2e::webdriver::{Browser, Driver};
use tokenkeeper_e2e::{bin, user_code, Display, RecordingBrowser, Running, Sandbox, Session};

const WAIT: Duration = Duration::from_secs(30);

/// A session, a display and the app in it, with a recording `$BROWSER`.
struct Window {
    // Dropped first: the app before what it talks to.
    app: Browser,
    _driver: Driver,
    _beside: Option<Running>,
    browser: RecordingBrowser,
    display: Display,
    s: Session,
}

impl Window {
    fn open(setup: impl FnOnce(&Session)) -> Self {
        Self::open_beside(|s, _| {
            setup(s);
            None
        })
    }

    /// Opens the window after `setup`, which may start a process that runs beside
    /// the app on its display (a notification daemon).
    fn open_beside(setup: impl FnOnce(&Session, &Display) -> Option<Running>) -> Self {
        let s = Session::start();
        let display = Display::start();
        let beside = setup(&s, &display);
        let browser = s.browser();
        let driver = Driver::start(&s, &display.name, &[browser.env()]);
        let app = driver.launch(&bin("tokenkeeper-desktop"), &[]);
        app.wait_text("header", WAIT);
        Window {
            app,
            _driver: driver,
            _beside: beside,
            browser,
            display,
            s,
        }
    }

    fn row(&self, name: &str) -> String {
        format!("[data-testid='account'][data-name='{name}']")
    }

    /// Waits for the account's row to show `state`.
    fn wait_state(&self, name: &str, state: &str) {
        let css = format!("{}[data-state='{state}']", self.row(name));
        self.app.wait_text(&css, WAIT);
    }

    fn open_details(&self, name: &str) {
        self.app.click(&self.row(name));
        self.app.wait_text(
            &format!("[data-testid='details'][data-name='{name}']"),
            WAIT,
        );
    }

    /// The clipboard's text on the app's display, `None` when it holds nothing.
    fn clipboard(&self) -> Option<String> {
        let out = Command::new("xclip")
            .args(["-selection", "clipboard", "-o"])
            .env("DISPLAY", &self.display.name)
            .output()
            .expect("xclip (./scripts/setup-debian.sh installs it)");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (out.status.success() && !text.is_empty()).then_some(text)
    }

    fn token(&self, name: &str) -> String {
        self.s.token(name)
    }
}

struct Form<'a> {
    vendor: &'a str,
    method: &'a str,
    name: &'a str,
    url: String,
    fields: &'a [(&'a str, &'a str)],
    secret: Option<&'a str>,
    ca_cert: Option<&'a str>,
    pin_sha256: Option<&'a str>,
    labels: &'a str,
}

impl<'a> Form<'a> {
    /// A form with the vendor, method, name and address filled in, nothing else.
    fn new(vendor: &'a str, method: &'a str, name: &'a str, url: String) -> Self {
        Form {
            vendor,
            method,
            name,
            url,
            fields: &[],
            secret: None,
            ca_cert: None,
            pin_sha256: None,
            labels: "",
        }
    }

    /// The same form with the secret typed in.
    fn with_secret(self, secret: &'a str) -> Self {
        Form {
            secret: Some(secret),
            ..self
        }
    }

    /// A browser (device-code) sign-in form: nothing to fill in but where.
    fn device(vendor: &'a str, name: &'a str, url: String) -> Self {
        Self::new(vendor, "device-code", name, url)
    }
}

/// Fills the add form as an admin would and submits it.
fn submit_add_form(app: &Browser, f: &Form<'_>) {
    app.click("[data-testid='add-account']");
    app.wait_text("[data-testid='add-form']", WAIT);
    app.select("[data-testid='vendor']", f.vendor);
    app.select("[data-testid='method']", f.method);
    app.fill("[data-testid='name']", f.name);
    app.fill("[data-testid='base-url']", &f.url);
    app.fill("[data-testid='labels']", f.labels);
    for (key, value) in f.fields {
        app.fill(&format!("[data-testid='field-{key}']"), value);
    }
    if let Some(secret) = f.secret {
        app.fill("[data-testid='secret']", secret);
    }
    if f.ca_cert.is_some() || f.pin_sha256.is_some() {
        // The trust inputs sit in a section that starts folded.
        app.execute(
            "document.querySelectorAll('[data-testid=add-form] details').forEach(d => d.open = true);",
            json!([]),
        );
    }
    if let Some(pem) = f.ca_cert {
        app.paste("[data-testid='ca-cert']", pem);
    }
    if let Some(pin) = f.pin_sha256 {
        app.fill("[data-testid='pin-sha256']", pin);
    }
    app.click("[data-testid='submit']");
}

/// Approves the browser sign-in the app opened, and waits for the window to say so;
/// with `screenshot`, the window is photographed while it waits.
fn approve_opened(
    w: &Window,
    sb: &Sandbox,
    already_opened: usize,
    screenshot: Option<&str>,
) -> String {
    tokenkeeper_e2e::wait_for("the app to open the browser", WAIT, || {
        w.browser.opened().len() > already_opened
    });
    let url = w.browser.opened()[already_opened].clone();
    let code = user_code(&url);
    let shown = w.app.wait_text("[data-testid='user-code']", WAIT);
    assert_eq!(
        shown.trim(),
        code,
        "the window shows the code the browser got"
    );
    w.app.wait_text("[data-testid='sign-in-progress']", WAIT);
    if let Some(name) = screenshot {
        w.app.screenshot(&tokenkeeper_e2e::screenshot_path(name));
    }
    sb.approve(&code);
    w.app.wait_text("[data-testid='sign-in-done']", WAIT);
    url
}

#[test]
fn every_vendor_is_added_from_its_generated_form_and_browser_sign_ins_are_approved() {
    let sb = Sandbox::start(&[]);
    let w = Window::open(|_| {});
    let app = &w.app;
    app.wait_text("[data-testid='empty']", WAIT);

    // A wrong password: the form says why and keeps what was typed; nothing is added.
    let truesight = Form {
        vendor: "truesight",
        method: "password",
        name: "ts",
        url: sb.url("truesight"),
        fields: &[("username", "demo"), ("tenant", "BmcRealm")],
        secret: Some("not-the-password"),
        ca_cert: None,
        pin_sha256: None,
        labels: "prod, eu",
    };
    submit_add_form(app, &truesight);
    let error = app.wait_text("[data-testid='form-error']", WAIT);
    assert!(
        error.contains("'ts'") && !error.contains("not-the-password"),
        "{error}"
    );
    assert_eq!(w.s.cli(&["list", "--json"], None).ok().json(), json!([]));
    app.fill("[data-testid='secret']", "demo-password");
    app.click("[data-testid='submit']");
    w.wait_state("ts", "valid");

    // BigID with a user token that is a JWT (its expiry is the human deadline).
    let user_token = sb.bigid_user_token(30, true);
    submit_add_form(
        app,
        &Form::new("bigid", "user-token", "bid", sb.url("bigid")).with_secret(&user_token),
    );
    w.wait_state("bid", "valid");

    // Immuta with an API key.
    submit_add_form(
        app,
        &Form::new("immuta", "api-key", "imm", sb.url("immuta")).with_secret("immuta-demo-apikey"),
    );
    w.wait_state("imm", "valid");

    // BigFix on its self-signed HTTPS port, trusting the server's CA from the form.
    let ca = sb.urls["bigfix_ca_pem"].as_str().unwrap().to_string();
    submit_add_form(
        app,
        &Form {
            vendor: "bigfix",
            method: "password",
            name: "bf",
            url: sb.url("bigfix"),
            fields: &[("username", "admin")],
            secret: Some("admin-password"),
            ca_cert: Some(&ca),
            pin_sha256: None,
            labels: "on-prem",
        },
    );
    w.wait_state("bf", "valid");

    // BigAnimal: adding starts the browser sign-in; the address opened carries the
    // code the window shows; approving it signs in.
    submit_add_form(app, &Form::device("biganimal", "ba", sb.url("biganimal")));
    let opened = approve_opened(&w, &sb, 0, Some("sign-in.png"));
    assert!(opened.contains("/activate?user_code="), "{opened}");
    w.wait_state("ba", "valid");

    // Any OIDC issuer with the device grant.
    submit_add_form(
        app,
        &Form {
            vendor: "oidc",
            method: "device-code",
            name: "generic",
            url: sb.url("oidc"),
            fields: &[("client_id", "tokenkeeper-sandbox")],
            secret: None,
            ca_cert: None,
            pin_sha256: None,
            labels: "",
        },
    );
    approve_opened(&w, &sb, 1, None);
    w.wait_state("generic", "valid");

    // A denied sign-in says so and offers a retry, which works.
    w.open_details("generic");
    app.click("[data-testid='sign-in']");
    tokenkeeper_e2e::wait_for("the browser again", WAIT, || w.browser.opened().len() > 2);
    sb.deny(&user_code(&w.browser.opened()[2]));
    let failed = app.wait_text("[data-testid='sign-in-failed']", WAIT);
    assert!(failed.to_lowercase().contains("denied"), "{failed}");
    app.click("[data-testid='sign-in-retry']");
    approve_opened(&w, &sb, 3, None);

    // What the window added is what the CLI sees, and every token works.
    assert_eq!(
        w.s.account_names(),
        ["ba", "bf", "bid", "generic", "imm", "ts"]
    );
    let ts = w.s.account("ts");
    assert_eq!(ts["labels"], json!(["prod", "eu"]));
    assert_eq!(sb.truesight_about(&w.token("ts")), 200);
    assert_eq!(
        sb.get_status(
            &format!("{}/api/v3/projects", sb.url("biganimal")),
            &format!("Bearer {}", w.token("ba"))
        ),
        200
    );

    // Filters and search narrow the list.
    app.fill("[data-testid='search']", "on-prem");
    tokenkeeper_e2e::wait_for("the search to narrow the list", WAIT, || {
        app.texts("[data-testid='account']").len() == 1
    });
    assert!(app.exists(&w.row("bf")));
    app.fill("[data-testid='search']", "");
    app.select("[data-testid='filter-vendor']", "biganimal");
    tokenkeeper_e2e::wait_for("the vendor filter", WAIT, || {
        app.texts("[data-testid='account']").len() == 1 && app.exists(&w.row("ba"))
    });
    app.select("[data-testid='filter-vendor']", "");
    app.select("[data-testid='filter-label']", "eu");
    tokenkeeper_e2e::wait_for("the label filter", WAIT, || {
        app.texts("[data-testid='account']").len() == 1 && app.exists(&w.row("ts"))
    });
    app.select("[data-testid='filter-label']", "");
    tokenkeeper_e2e::wait_for("every row back", WAIT, || {
        app.texts("[data-testid='account']").len() == 6
    });
    app.click("[data-testid='close-details']");
    app.wait_gone("[data-testid='details']", WAIT);
    app.screenshot(&tokenkeeper_e2e::screenshot_path("list.png"));
}

#[test]
fn an_expired_code_says_so_a_retry_copies_the_new_code_and_bigfix_can_be_pinned() {
    let sb = Sandbox::start(&["--device-interval", "1"]);
    let w = Window::open(|_| {});
    let app = &w.app;
    app.wait_text("[data-testid='empty']", WAIT);

    // Nobody approves the first code: the window says it expired and what to do.
    submit_add_form(app, &Form::device("biganimal", "ba", sb.url("biganimal")));
    tokenkeeper_e2e::wait_for("the app to open the browser", WAIT, || {
        !w.browser.opened().is_empty()
    });
    let first = user_code(&w.browser.opened()[0]);
    app.wait_text("[data-testid='sign-in-progress']", WAIT);
    sb.expire(&first);
    let failed = app.wait_text("[data-testid='sign-in-failed']", WAIT);
    assert!(failed.to_lowercase().contains("expired"), "{failed}");
    assert!(
        !app.exists("[data-testid='user-code']"),
        "an expired code is gone"
    );
    w.wait_state("ba", "needs-sign-in");
    assert!(
        w.s.stored_secrets().is_empty(),
        "nothing stored for an expired code"
    );

    // "Try again" gets a new code; "Copy code" puts exactly that code on the clipboard.
    app.click("[data-testid='sign-in-retry']");
    tokenkeeper_e2e::wait_for("the browser again", WAIT, || w.browser.opened().len() > 1);
    let second = user_code(&w.browser.opened()[1]);
    assert_ne!(first, second, "a new code");
    let shown = app.wait_text("[data-testid='user-code']", WAIT);
    assert_eq!(shown.trim(), second);
    app.click("[data-testid='copy-code']");
    tokenkeeper_e2e::wait_for("the code on the clipboard", WAIT, || {
        w.clipboard().as_deref() == Some(second.as_str())
    });
    sb.approve(&second);
    app.wait_text("[data-testid='sign-in-done']", WAIT);
    w.wait_state("ba", "valid");
    assert_eq!(
        sb.get_status(
            &format!("{}/api/v3/projects", sb.url("biganimal")),
            &format!("Bearer {}", w.token("ba"))
        ),
        200
    );

    // BigFix pinned to its server certificate from the form: a wrong fingerprint is
    // refused with the reason and adds nothing; the right one signs in.
    let bigfix = Form {
        vendor: "bigfix",
        method: "password",
        name: "bf",
        url: sb.url("bigfix"),
        fields: &[("username", "admin")],
        secret: Some("admin-password"),
        ca_cert: None,
        pin_sha256: Some(&"ab".repeat(32)),
        labels: "",
    };
    submit_add_form(app, &bigfix);
    let error = app.wait_text("[data-testid='form-error']", WAIT);
    assert!(error.contains("pinned"), "{error}");
    assert!(!error.contains("admin-password"), "{error}");
    assert!(!app.exists(&w.row("bf")));
    // The long fingerprints in the message wrap: the pane never scrolls sideways.
    let overflow = app.execute(
        "const p = document.querySelector('[data-testid=add-form]').parentElement; \
         return p.scrollWidth - p.clientWidth;",
        json!([]),
    );
    assert_eq!(overflow, json!(0), "the add pane scrolls sideways");
    // The form kept what was typed: only the fingerprint is mended.
    let pin = sb.urls["bigfix_cert_sha256"].as_str().unwrap();
    app.fill("[data-testid='pin-sha256']", pin);
    app.click("[data-testid='submit']");
    w.wait_state("bf", "valid");
    let settings = w.s.cli(&["show", "bf", "--json"], None).ok().json();
    assert_eq!(settings["settings"]["pin_sha256"], json!(pin), "{settings}");
}

#[test]
fn details_renew_copy_reveal_settings_and_remove() {
    let sb = Sandbox::start(&[]);
    let canary = format!("CANARY-UI-{}", std::process::id());
    sb.admin(
        "/truesight/users",
        json!({"username": "ops", "password": canary, "tenant": "BmcRealm"}),
    );
    let url = sb.url("truesight");
    let w = Window::open(|s| {
        s.add_truesight("ts", &url, "ops", &canary, &["--label", "prod"])
            .ok();
    });
    let app = &w.app;
    w.wait_state("ts", "valid");
    let first = w.token("ts");

    // The keyboard reaches everything: "/" searches, ArrowDown enters the list,
    // Enter opens the row, Escape closes the pane.
    app.keys("body", "/");
    assert_eq!(app.focused(), "search");
    app.press("ts\u{E015}");
    assert_eq!(app.focused(), "account");
    app.press("\u{E007}");
    app.wait_text("[data-testid='details'][data-name='ts']", WAIT);
    app.press("\u{E00C}");
    app.wait_gone("[data-testid='details']", WAIT);
    app.fill("[data-testid='search']", "");

    // Settings: a short clipboard timeout, other thresholds, start at login.
    app.click("[data-testid='open-settings']");
    app.wait_text("[data-testid='settings']", WAIT);
    let thresholds = app.attr("[data-testid='thresholds']", "value");
    app.fill("[data-testid='thresholds']", "every day");
    app.click("[data-testid='settings-save']");
    let refused = app.wait_text("[data-testid='settings-message']", WAIT);
    assert!(
        !refused.contains("Saved"),
        "a bad threshold is refused: {refused}"
    );
    app.fill("[data-testid='thresholds']", "2d, 3h");
    app.fill("[data-testid='clipboard-seconds']", "5");
    if !app.checked("[data-testid='start-at-login']") {
        app.click("[data-testid='start-at-login']");
    }
    app.click("[data-testid='settings-save']");
    app.wait_text_where("[data-testid='settings-message']", WAIT, |t| {
        t.contains("Saved")
    });
    let autostart = w.s.root.path().join("config/autostart/tokenkeeper.desktop");
    let entry = std::fs::read_to_string(&autostart).expect("the autostart entry");
    assert!(entry.contains(" agent\n"), "{entry}");
    let saved = app.invoke("preferences", json!({}));
    let saved: Value = serde_json::from_str(&saved).expect(&saved);
    assert_eq!(
        saved,
        json!({"alert_thresholds_s": [172800, 10800], "clipboard_clear_s": 5, "start_at_login": true})
    );
    assert_eq!(
        thresholds.as_deref(),
        Some("7d, 1d, 1h"),
        "the defaults first"
    );
    app.click("[data-testid='close-settings']");

    // Renew now: a new token that works; the history says so.
    w.open_details("ts");
    app.click("[data-testid='renew']");
    tokenkeeper_e2e::wait_for("a renewed token", WAIT, || w.token("ts") != first);
    let second = w.token("ts");
    assert_eq!(sb.truesight_about(&second), 200);
    app.wait_text_where("[data-testid='events']", WAIT, |t| t.contains("renewed"));

    // Copy: the token is on the clipboard, and gone after the timeout.
    // (Each moment is taken before the click: the timer cannot start earlier.)
    let copied_at = Instant::now();
    app.click("[data-testid='copy']");
    let copied = app.wait_text("[data-testid='copied']", WAIT);
    // A countdown from 5 s, maybe a few seconds on when a loaded machine reads it.
    let left: u64 = copied
        .split("cleared in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no countdown in {copied}"));
    assert!((1..=5).contains(&left), "{copied}");
    assert_eq!(w.clipboard().as_deref(), Some(second.as_str()));
    tokenkeeper_e2e::wait_for("the clipboard to be cleared", WAIT, || {
        w.clipboard().is_none()
    });
    assert!(
        copied_at.elapsed() >= Duration::from_millis(4500),
        "cleared after the timeout, not at once: {:?}",
        copied_at.elapsed()
    );

    // Something the admin copies afterwards is left alone.
    let copied_again = Instant::now();
    app.click("[data-testid='copy']");
    tokenkeeper_e2e::wait_for("the token on the clipboard again", WAIT, || {
        w.clipboard().as_deref() == Some(second.as_str())
    });
    let mut other = Command::new("xclip")
        .args(["-selection", "clipboard", "-i"])
        .env("DISPLAY", &w.display.name)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("xclip");
    std::io::Write::write_all(other.stdin.as_mut().unwrap(), b"the admin's own text").unwrap();
    drop(other.stdin.take());
    let _ = other.wait();
    tokenkeeper_e2e::wait_for("the admin's text on the clipboard", WAIT, || {
        w.clipboard().as_deref() == Some("the admin's own text")
    });
    // Past the 5-second timeout, with margin: still the admin's text.
    while copied_again.elapsed() < Duration::from_secs(8) {
        assert_eq!(w.clipboard().as_deref(), Some("the admin's own text"));
        std::thread::sleep(Duration::from_millis(500));
    }

    // Reveal shows the token only on the explicit click.
    assert!(!app.page_everything().contains(&second));
    assert!(!app.page_everything().contains(&canary));
    let revealed_at = Instant::now();
    app.click("[data-testid='reveal']");
    let revealed = app.wait_text("[data-testid='revealed']", WAIT);
    assert!(revealed.contains(&second), "{revealed}");
    // ...and hides it again by itself after 20 seconds.
    app.wait_gone("[data-testid='revealed']", Duration::from_secs(40));
    assert!(
        revealed_at.elapsed() >= Duration::from_millis(19_500),
        "hidden by its timer, not at once: {:?}",
        revealed_at.elapsed()
    );
    let page = app.page_everything();
    assert!(!page.contains(&second) && !page.contains(&canary));

    // Nothing but reveal answers with a secret.
    for (command, args) in [
        ("list_accounts", json!({})),
        ("account_detail", json!({"name": "ts"})),
        ("vendor_forms", json!({})),
        ("preferences", json!({})),
        ("app_info", json!({})),
        ("take_pending_account", json!({})),
    ] {
        let answer = app.invoke(command, args);
        assert!(!answer.starts_with("ERR"), "{command}: {answer}");
        for secret in [&canary, &first, &second] {
            assert!(
                !answer.contains(secret.as_str()),
                "{command} leaks a secret"
            );
        }
    }
    // CANARY SWEEP: every command the page may call, with its answer (or its error)
    // searched for every secret, whatever its declared type (webview_policy.rs
    // checks that this sweep names every command).
    let typed = format!("CANARY-UI-TYPED-{}", std::process::id());
    sb.admin(
        "/truesight/users",
        json!({"username": "ops2", "password": typed, "tenant": "BmcRealm"}),
    );
    let form = |name: &str| {
        json!({"form": {
            "name": name, "vendor": "truesight", "base_url": url, "method": "password",
            "fields": {"username": "ops2", "tenant": "BmcRealm"}, "labels": [],
            "ca_cert_pem": null, "pin_sha256": null,
        }, "secret": typed})
    };
    let saved_preferences: Value =
        serde_json::from_str(&app.invoke("preferences", json!({}))).expect("preferences as JSON");
    // (command, arguments, whether it succeeds)
    let sweep: Vec<(&str, Value, bool)> = vec![
        ("app_info", json!({}), true),
        ("list_accounts", json!({}), true),
        ("vendor_forms", json!({}), true),
        ("account_detail", json!({"name": "ts"}), true),
        ("preferences", json!({}), true),
        ("take_pending_account", json!({}), true),
        ("add_account", form("sweep"), true),
        // Refused (the name is taken): the error is searched too.
        ("add_account", form("sweep"), false),
        ("account_detail", json!({"name": "sweep"}), true),
        ("sign_in", json!({"name": "sweep", "secret": typed}), true),
        ("sign_in", json!({"name": "sweep", "secret": null}), true),
        (
            "sign_in",
            json!({"name": "sweep", "secret": format!("{typed}-WRONG")}),
            false,
        ),
        ("renew_now", json!({"name": "sweep"}), true),
        ("copy_token", json!({"name": "sweep"}), true),
        (
            "edit_account",
            json!({"name": "sweep", "edit": {"base_url": url, "fields": {"username": "ops2", "tenant": "BmcRealm"}, "labels": ["swept"]}}),
            true,
        ),
        (
            "set_trust",
            json!({"name": "sweep", "caCertPem": null, "pinSha256": "00".repeat(32)}),
            false,
        ),
        ("start_device_sign_in", json!({"name": "sweep"}), false),
        ("device_sign_in_in_progress", json!({"name": "sweep"}), true),
        ("cancel_sign_in", json!({"name": "sweep"}), true),
        (
            "bigfix_tokens",
            json!({"name": "sweep", "user": null}),
            false,
        ),
        (
            "bigfix_rename",
            json!({"name": "sweep", "id": 1, "newName": "x"}),
            false,
        ),
        (
            "bigfix_extend",
            json!({"name": "sweep", "id": 1, "days": 1}),
            false,
        ),
        ("bigfix_revoke", json!({"name": "sweep", "id": 1}), false),
        ("bigfix_rotate", json!({"name": "sweep"}), false),
        (
            "set_preferences",
            json!({"preferences": saved_preferences.clone()}),
            true,
        ),
        (
            "remove_account",
            json!({"name": "sweep", "signOut": true}),
            true,
        ),
    ];
    let mut sweep_secrets = vec![canary.clone(), typed.clone(), first.clone(), second.clone()];
    for (command, args, succeeds) in sweep {
        let answer = app.invoke(command, args.clone());
        assert_eq!(
            !answer.starts_with("ERR"),
            succeeds,
            "{command} {args}: {answer}"
        );
        // The tokens the sweep's own account had (each renewal or sign-in makes one).
        sweep_secrets.extend(w.s.stored_secrets());
        for secret in &sweep_secrets {
            assert!(
                secret.len() < 8 || !answer.contains(secret.as_str()),
                "{command} {args} answers with a secret: {answer}"
            );
        }
    }
    assert!(
        sweep_secrets.iter().any(|t| t.starts_with('_')),
        "the sweep's account had tokens to look for"
    );
    assert!(
        !app.page_everything().contains(&typed),
        "the typed secret is nowhere in the page"
    );
    assert_eq!(
        app.invoke("reveal_token", json!({"name": "ts"})),
        serde_json::to_string(&second).unwrap()
    );
    // An action's answer is a summary, without the new token.
    let renewed = app.invoke("renew_now", json!({"name": "ts"}));
    assert!(renewed.contains("\"name\":\"ts\""), "{renewed}");
    let third = w.token("ts");
    assert_ne!(third, second);
    for secret in [&canary, &second, &third] {
        assert!(
            !renewed.contains(secret.as_str()),
            "renew_now leaks a secret"
        );
    }
    // The vault checks preferences itself, whatever the page sends.
    let refused = app.invoke(
        "set_preferences",
        json!({"preferences": {"alert_thresholds_s": [-5], "clipboard_clear_s": 5, "start_at_login": true}}),
    );
    assert!(
        refused.starts_with("ERR") && refused.contains("alert threshold"),
        "{refused}"
    );
    let refused = app.invoke(
        "set_preferences",
        json!({"preferences": {"alert_thresholds_s": [3600], "clipboard_clear_s": 1, "start_at_login": true}}),
    );
    assert!(
        refused.starts_with("ERR") && refused.contains("clipboard"),
        "{refused}"
    );

    // Edit: the labels; the CLI sees the change.
    app.click("[data-testid='edit']");
    app.fill(
        "[data-testid='edit-form'] [data-testid='labels']",
        "prod, edited",
    );
    app.click("[data-testid='edit-save']");
    tokenkeeper_e2e::wait_for("the edit to be saved", WAIT, || {
        w.s.cli(&["list", "--json"], None).ok().json()[0]["labels"] == json!(["prod", "edited"])
    });
    let second = third;

    // Remove, signing out at the vendor: the session ends there, the account here.
    app.click("[data-testid='remove']");
    app.wait_text("[data-testid='remove-confirm']", WAIT);
    assert!(app.checked("[data-testid='remove-sign-out']"));
    app.click("[data-testid='remove-yes']");
    let notice = app.wait_text("[data-testid='notice']", WAIT);
    assert!(notice.contains("ts"), "{notice}");
    app.wait_gone(&w.row("ts"), WAIT);
    assert_eq!(
        sb.truesight_about(&second),
        401,
        "the session ended at TrueSight"
    );
    assert_eq!(w.s.cli(&["list", "--json"], None).ok().json(), json!([]));
    for secret in w.s.stored_secrets() {
        assert!(
            secret != canary,
            "the password left the keyring with the account"
        );
    }
}

#[test]
fn bigfix_inventory_flags_untracked_tokens_and_renames_extends_revokes_rotates_and_remove_revokes()
{
    let sb = Sandbox::start(&[]);
    let url = sb.url("bigfix");
    let ca_pem = sb.urls["bigfix_ca_pem"].as_str().unwrap().to_string();
    let w = Window::open(|s| {
        let ca = s.write_file("ca.pem", &ca_pem);
        let ca = ca.to_str().unwrap();
        for (name, user, pw) in [
            ("bf", "admin", "admin-password"),
            ("op", "operator", "operator-password"),
        ] {
            s.add_bigfix(name, &url, user, pw, &["--ca-cert", ca]).ok();
        }
    });
    let app = &w.app;
    // A token made outside Tokenkeeper (a script's), straight through the API.
    let client = sb.bigfix_client();
    let made = client
        .post(format!("{url}/api/token?name=ci-script&duration=30"))
        .basic_auth("admin", Some("admin-password"))
        .send()
        .unwrap();
    assert!(made.status().is_success(), "{}", made.status());

    w.wait_state("bf", "valid");
    w.open_details("bf");
    app.click("[data-testid='open-inventory']");
    app.wait_text("[data-testid='inventory']", WAIT);
    app.wait_text("[data-testid='bf-token']", WAIT);
    let rows = |app: &Browser| app.texts("[data-testid='bf-token']");
    tokenkeeper_e2e::wait_for("two tokens", WAIT, || rows(app).len() == 2);
    let untracked = "[data-testid='bf-token'][data-tracked='false']";
    let text = app.wait_text(untracked, WAIT);
    assert!(
        text.contains("ci-script") && text.contains("Not tracked"),
        "{text}"
    );
    assert!(app
        .wait_text("[data-testid='bf-token'][data-tracked='true']", WAIT)
        .contains("Used by this account"));
    app.screenshot(&tokenkeeper_e2e::screenshot_path("bigfix-inventory.png"));
    // The inventory's answer lists tokens by name and id, never their values.
    let listed = app.invoke("bigfix_tokens", json!({"name": "bf", "user": null}));
    assert!(listed.contains("ci-script"), "{listed}");
    for secret in [w.token("bf"), "admin-password".to_string()] {
        assert!(!listed.contains(&secret), "bigfix_tokens leaks a secret");
    }
    let id = app.attr(untracked, "data-id").unwrap();
    let row = format!("[data-testid='bf-token'][data-id='{id}']");
    let server = |id: &str| -> Value {
        client
            .get(format!("{url}/api/token/id/{id}"))
            .basic_auth("admin", Some("admin-password"))
            .send()
            .unwrap()
            .json()
            .unwrap_or(Value::Null)
    };

    // Rename.
    app.click(&format!("{row} [data-testid='bf-rename']"));
    app.fill("[data-testid='bf-rename-input']", "ci-nightly");
    app.click("[data-testid='bf-rename-save']");
    app.wait_text_where(&row, WAIT, |t| t.contains("ci-nightly"));
    assert!(
        server(&id).to_string().contains("ci-nightly"),
        "{}",
        server(&id)
    );

    // Extend to never expire.
    assert_ne!(
        server(&id)["Expiration"],
        json!(0),
        "it expired before: {}",
        server(&id)
    );
    app.click(&format!("{row} [data-testid='bf-extend']"));
    app.fill("[data-testid='bf-extend-days']", "0");
    app.click("[data-testid='bf-extend-save']");
    app.wait_text_where(&row, WAIT, |t| t.contains("Never expires"));
    // ...and the server says so too (BigFix: expiration 0).
    assert_eq!(
        server(&id)["Expiration"],
        json!(0),
        "never expires on the server: {}",
        server(&id)
    );

    // Revoke it: gone on the server and from the table.
    app.click(&format!("{row} [data-testid='bf-revoke']"));
    app.click("[data-testid='bf-revoke-yes']");
    app.wait_gone(&row, WAIT);
    let status = client
        .get(format!("{url}/api/token/id/{id}"))
        .basic_auth("admin", Some("admin-password"))
        .send()
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 404, "revoked on the server");

    // A master operator lists the other operator's tokens by user id.
    app.fill("[data-testid='inventory-user']", "2");
    app.click("[data-testid='inventory-load']");
    tokenkeeper_e2e::wait_for("the operator's token", WAIT, || {
        rows(app).len() == 1 && app.exists("[data-testid='bf-token'][data-tracked='false']")
    });
    app.fill("[data-testid='inventory-user']", "");
    app.click("[data-testid='inventory-load']");

    // Rotate: a new tracked token, the old one revoked, the account still valid.
    let tracked = "[data-testid='bf-token'][data-tracked='true']";
    tokenkeeper_e2e::wait_for("my own tokens again", WAIT, || {
        rows(app).len() == 1 && app.exists(tracked)
    });
    let before = app.attr(tracked, "data-id").unwrap();
    app.click("[data-testid='bf-rotate']");
    app.wait_text_where("[data-testid='inventory-message']", WAIT, |t| {
        !t.trim().is_empty()
    });
    tokenkeeper_e2e::wait_for("one tracked token, another one", WAIT, || {
        rows(app).len() == 1 && app.attr(tracked, "data-id").is_some_and(|id| id != before)
    });
    assert_eq!(server(&before), Value::Null, "the old token is revoked");
    let token = w.token("bf");
    let login_status = |token: &str| sb.bigfix_login(token);
    let login = login_status(&token);
    assert_eq!(login, 200);

    // Removing the account offers to revoke its token on the server, which it does.
    let current = app.attr(tracked, "data-id").unwrap();
    app.click("[data-testid='close-inventory']");
    app.wait_gone("[data-testid='inventory']", WAIT);
    w.open_details("bf");
    app.click("[data-testid='remove']");
    let confirm = app.wait_text("[data-testid='remove-confirm']", WAIT);
    assert!(
        confirm.contains("Revoke the token on the BigFix server"),
        "{confirm}"
    );
    assert!(app.checked("[data-testid='remove-sign-out']"));
    // The dialog keeps the keyboard: Tab and Shift+Tab go round its three controls.
    let in_dialog = || {
        app.execute(
            "return document.querySelector('[data-testid=remove-confirm]').contains(document.activeElement);",
            json!([]),
        ) == json!(true)
    };
    assert!(in_dialog(), "the dialog opens with the focus in it");
    for round in 0..4 {
        app.press("\u{E004}");
        assert!(
            in_dialog(),
            "Tab {round} left the dialog: {}",
            app.focused()
        );
    }
    app.chord("\u{E008}", "\u{E004}");
    assert!(in_dialog(), "Shift+Tab left the dialog: {}", app.focused());
    app.click("[data-testid='remove-yes']");
    app.wait_gone(&w.row("bf"), WAIT);
    // The focused button went with the dialog: the keyboard lands on the search.
    tokenkeeper_e2e::wait_for("the focus on the search", WAIT, || {
        app.focused() == "search"
    });
    assert_eq!(server(&current), Value::Null, "revoked on the server");
    let login = login_status(&token);
    assert_eq!(login, 401, "the removed account's token no longer works");
    assert!(app.exists(&w.row("op")), "the other account stays");
}

/// A notification daemon (dunst) on the session's D-Bus and the display, with
/// identical notifications not stacked.
fn dunst(s: &Session, display: &Display) -> Running {
    s.start_dunst(display)
}

/// dunstctl in the session (a failing one fails the test).
fn dunstctl(w: &Window, args: &[&str]) -> String {
    w.s.dunstctl(args).trim().to_string()
}

#[test]
fn clicking_a_sign_in_notification_opens_the_account_and_starts_its_sign_in() {
    let sb = Sandbox::start(&["--oauth-access-ttl", "6"]);
    let portal = sb.url("biganimal");
    let w = Window::open_beside(|s, display| {
        s.add_sandbox_biganimal(&sb, "ba").ok();
        Some(dunst(s, display))
    });
    let app = &w.app;
    w.wait_state("ba", "valid");

    // The issuer revokes every refresh token: the app's next renewal is refused, and
    // the admin is told with a notification.
    sb.admin("/oauth/revoke-all", json!({}));
    tokenkeeper_e2e::wait_for("the sign-in notification", Duration::from_secs(60), || {
        dunstctl(&w, &["count", "displayed"])
            .parse::<u32>()
            .unwrap_or(0)
            >= 1
    });
    w.wait_state("ba", "needs-sign-in");

    // Clicking it (dunst invokes its default action) opens the account and starts
    // the browser sign-in, which the admin approves.
    dunstctl(&w, &["action", "0"]);
    app.wait_text("[data-testid='details'][data-name='ba']", WAIT);
    approve_opened(&w, &sb, 0, None);
    w.wait_state("ba", "valid");
    let token = w.token("ba");
    assert_eq!(
        sb.get_status(
            &format!("{portal}/api/v3/projects"),
            &format!("Bearer {token}")
        ),
        200
    );
}

/// Thresholds set in the window are the ones notified: an account whose human
/// deadline is 60 s away gets exactly one notification as it crosses each of two
/// thresholds (40 s and 20 s), and nothing more while it waits in between.
#[test]
fn each_alert_threshold_set_in_the_window_is_notified_once() {
    let sb = Sandbox::start(&[]);
    let w = Window::open_beside(|s, display| Some(dunst(s, display)));
    let app = &w.app;
    app.click("[data-testid='open-settings']");
    app.fill("[data-testid='thresholds']", "20s, 40s");
    app.click("[data-testid='settings-save']");
    app.wait_text_where("[data-testid='settings-message']", WAIT, |t| {
        t.contains("Saved")
    });
    app.click("[data-testid='close-settings']");

    // A BigID user token (a JWT) that expires in 75 s: its expiry is the deadline,
    // 35 s of which are for adding it through the form on a loaded machine.
    let user_token = sb.bigid_user_token_for(Duration::from_secs(75), true);
    let minted = Instant::now();
    submit_add_form(
        app,
        &Form::new("bigid", "user-token", "short", sb.url("bigid")).with_secret(&user_token),
    );
    w.wait_state("short", "valid");
    assert!(
        minted.elapsed() < Duration::from_secs(33),
        "the account was added before its first threshold"
    );
    assert!(w.s.notifications_shown().is_empty(), "nothing is due yet");

    let first = w.s.wait_for_notifications(1, Duration::from_secs(60));
    let at_first = minted.elapsed();
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        at_first >= Duration::from_secs(33),
        "the 40 s threshold fired early, after {at_first:?}: {first:?}"
    );
    let second = w.s.wait_for_notifications(2, Duration::from_secs(40));
    assert_eq!(second.len(), 2, "{second:?}");
    let at_second = minted.elapsed();
    assert!(
        at_second >= Duration::from_secs(53),
        "the 20 s threshold fired early, after {at_second:?}: {second:?}"
    );
    for (summary, body) in &second {
        assert_eq!(summary, "Sign-in due soon", "{second:?}");
        assert!(body.contains("'short'"), "{second:?}");
        assert!(!body.contains(&user_token) && !summary.contains(&user_token));
    }
    // Both name the time left: about 40 s, and about 20 s (dunst lists newest first).
    let seconds_left = |body: &str| -> u64 {
        let words = body.split("within ").nth(1).unwrap_or_default();
        words
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no time left in {body}"))
    };
    let mut left: Vec<u64> = second.iter().map(|(_, body)| seconds_left(body)).collect();
    left.sort_unstable();
    assert!(left[0] <= 20 && (21..=40).contains(&left[1]), "{second:?}");
    // Nothing more before the deadline (a failing dunstctl fails the test).
    let mut now = second;
    while minted.elapsed() < Duration::from_secs(70) {
        now = w.s.notifications_shown();
        assert!(now.len() <= 2, "{now:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(now.len(), 2, "{now:?}");
}

#[test]
fn closing_the_window_ends_its_process_and_the_agent_renews_on() {
    let sb = Sandbox::start(&["--truesight-token-ttl", "8"]);
    let s = Session::start();
    s.add_sandbox_truesight(&sb, "ts").ok();
    let display = Display::start();
    // Started as from the menu, not under WebDriver: closing the last window would
    // end a WebDriver session and the app with it.
    let mut app = s.start_desktop(&display, &[]);
    let pid = app.0.id();
    let webviews = |pid: u32| {
        tokenkeeper_e2e::descendants(pid)
            .into_iter()
            .filter(|(_, comm)| comm.starts_with("WebKitWebProces"))
            .count()
    };
    tokenkeeper_e2e::wait_for("the window's webview", WAIT, || webviews(pid) > 0);
    let agent = s.agent_pid().expect("the window started the agent");
    // Asked again until it goes: a window still starting up may miss the first ask.
    tokenkeeper_e2e::wait_for("the window's process to end", WAIT, || {
        tokenkeeper_e2e::close_window(&display.name, "Tokenkeeper");
        std::thread::sleep(Duration::from_millis(1000));
        app.0.try_wait().expect("try_wait").is_some()
    });
    let status = app.0.try_wait().unwrap().unwrap();
    assert!(
        status.success(),
        "closing the window ends it cleanly: {status}"
    );
    // WebKit's helpers end when they see their parent's socket close: a moment later.
    tokenkeeper_e2e::wait_for("no WebKit process left", WAIT, || {
        s.processes_named("WebKitWebProces").is_empty()
            && s.processes_named("WebKitNetworkPr").is_empty()
    });
    assert_eq!(s.agent_pid(), Some(agent), "the agent stays");

    // Tokens of 8 s go on being renewed with no window.
    let renewals = || sb.requests("POST /truesight/tsws/api/v10.1/token");
    let before = renewals();
    tokenkeeper_e2e::wait_for("renewals with the window closed", WAIT, || {
        renewals() > before
    });
    let token = s.cli(&["token", "ts"], None).ok().stdout;
    assert_eq!(sb.truesight_about(token.trim()), 200);

    // Starting it again (the menu entry) opens a window over the same agent.
    let again = s.start_desktop(&display, &[]);
    tokenkeeper_e2e::wait_for("a webview again", WAIT, || webviews(again.0.id()) > 0);
    assert_eq!(s.agent_pid(), Some(agent));
}

#[test]
fn a_browser_sign_in_started_in_the_window_survives_its_closing_and_shows_again() {
    let sb = Sandbox::start(&[]);
    let w = Window::open(|_| {});
    w.app.wait_text("[data-testid='empty']", WAIT);
    submit_add_form(
        &w.app,
        &Form::device("biganimal", "ba", sb.url("biganimal")),
    );
    tokenkeeper_e2e::wait_for("the app to open the browser", WAIT, || {
        !w.browser.opened().is_empty()
    });
    let code = user_code(&w.browser.opened()[0]);
    w.app.wait_text("[data-testid='sign-in-progress']", WAIT);
    let close = || {
        tokenkeeper_e2e::wait_for("the window's process to end", WAIT, || {
            tokenkeeper_e2e::close_window(&w.display.name, "Tokenkeeper");
            std::thread::sleep(Duration::from_millis(500));
            w.s.processes_named("tokenkeeper-des").is_empty()
        });
    };
    // Closed before anybody approved: the agent waits on.
    close();
    assert!(w.s.agent_pid().is_some(), "the agent stays");

    // Opened again (under a WebDriver of its own: the first one's session ended with
    // its window): the same code, still waiting, shown with the address to open.
    let driver = || Driver::start(&w.s, &w.display.name, &[w.browser.env()]);
    let second = driver();
    let again = second.launch(&bin("tokenkeeper-desktop"), &[]);
    again.wait_text("header", WAIT);
    again.click(&w.row("ba"));
    let shown = again.wait_text("[data-testid='user-code']", WAIT);
    assert_eq!(shown.trim(), code, "the sign-in under way, not a new one");
    again.wait_text("[data-testid='sign-in-progress']", WAIT);
    let url = again.wait_text("[data-testid='browser-url']", WAIT);
    assert!(url.contains(&code), "{url}");
    assert_eq!(w.browser.opened().len(), 1, "no second code was asked for");

    // Closed again, then approved: the agent stores the sign-in with no window open.
    close();
    sb.approve(&code);
    tokenkeeper_e2e::wait_for("the sign-in stored with the window closed", WAIT, || {
        w.s.cli(&["list", "--json"], None)
            .stdout
            .contains("\"valid\"")
    });
    let token = w.s.token("ba");
    assert_eq!(
        sb.get_status(
            &format!("{}/api/v3/projects", sb.url("biganimal")),
            &format!("Bearer {token}")
        ),
        200
    );
    // And the window opened now shows it signed in, with no sign-in under way.
    let third = driver();
    let last = third.launch(&bin("tokenkeeper-desktop"), &[]);
    last.wait_text(&format!("{}[data-state='valid']", w.row("ba")), WAIT);
    last.click(&w.row("ba"));
    last.wait_text("[data-testid='details'][data-name='ba']", WAIT);
    assert!(!last.exists("[data-testid='user-code']"));
}

#[test]
fn a_shared_account_says_where_it_is_stored_and_reveals_the_teams_token() {
    let Some(bao) = tokenkeeper_e2e::openbao::DevServer::start("ui team") else {
        return;
    };
    bao.policy(
        "tokenkeeper-member",
        tokenkeeper_e2e::openbao::MEMBER_POLICY,
    );
    bao.userpass_user("alice", "pw-alice", &["tokenkeeper-member"]);
    let sb = Sandbox::start(&[]);
    let w = Window::open(|s| {
        s.add_sandbox_truesight(&sb, "shared").ok();
        s.add_sandbox_truesight(&sb, "mine").ok();
        s.team_connect(&bao.addr, "alice");
        s.cli(&["team", "add", "shared", "--team", "ops"], None)
            .ok();
    });
    let app = &w.app;
    w.wait_state("shared", "valid");
    w.wait_state("mine", "valid");
    // The list says which account is shared, and where.
    let row = app.wait_text(&w.row("shared"), WAIT);
    assert!(row.contains("shared · ops"), "{row}");
    let mine = app.wait_text(&w.row("mine"), WAIT);
    assert!(!mine.contains("shared"), "{mine}");
    // Its details say where its secrets are, and reveal shows the team's token.
    w.open_details("shared");
    let stored = app.wait_text("[data-testid='stored-in']", WAIT);
    assert_eq!(stored, "team ops (OpenBao)");
    let token = w.token("shared");
    app.click("[data-testid='reveal']");
    let revealed = app.wait_text("[data-testid='revealed']", WAIT);
    assert!(revealed.contains(token.trim()), "{revealed}");
    w.open_details("mine");
    let stored = app.wait_text("[data-testid='stored-in']", WAIT);
    assert_eq!(stored, "this computer's keyring");
}

#[test]
fn an_openbao_browser_sign_in_from_the_window_comes_back_by_itself() {
    let Some(bao) = tokenkeeper_e2e::openbao::DevServer::start("ui openbao oidc") else {
        return;
    };
    bao.policy(
        "tokenkeeper-member",
        tokenkeeper_e2e::openbao::MEMBER_POLICY,
    );
    let port = tokenkeeper_e2e::free_port().to_string();
    let callback = format!("http://127.0.0.1:{port}/oidc/callback");
    let idp = OidcServer::start_with(&["--bao-redirect", &callback]);
    bao.enable_oidc(&idp.issuer, &callback, &["tokenkeeper-member"], "60s", "1h");
    let w = Window::open(|_| {});
    w.app.wait_text("[data-testid='empty']", WAIT);
    submit_add_form(
        &w.app,
        &Form {
            fields: &[("callback_port", port.as_str())],
            ..Form::device("openbao", "bao", bao.addr.clone())
        },
    );
    // One click opened the browser at the provider, by way of OpenBao.
    tokenkeeper_e2e::wait_for("the app to open the browser", WAIT, || {
        !w.browser.opened().is_empty()
    });
    let url = w.browser.opened()[0].clone();
    assert!(url.starts_with(&idp.issuer), "{url}");
    w.app.wait_text("[data-testid='sign-in-progress']", WAIT);
    assert!(
        !w.app.exists("[data-testid='user-code']"),
        "no code to compare: the browser comes back by itself"
    );
    // The admin signs in in that tab; it comes back to the app's callback.
    let page = tokenkeeper_e2e::oidc::authorize(&url);
    assert!(page.contains("Signed in to OpenBao"), "{page}");
    w.app.wait_text("[data-testid='sign-in-done']", WAIT);
    w.wait_state("bao", "valid");
    let token = w.token("bao");
    let looked = bao.bao(&["token", "lookup", "-format=json", &token]);
    assert!(looked.status.success(), "OpenBao knows the token");
}
