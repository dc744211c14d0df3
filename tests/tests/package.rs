//! The installable package: the .deb that Tauri's bundler made (`./dev deb`; `./dev
//! test` makes one from the debug build first). Every shared library its programs
//! link against comes from a package its `Depends` field pulls in; it is installed
//! for real with `apt-get install ./x.deb` (which resolves those dependencies) and
//! removed again at the end, and what it installed is checked: the desktop app, which
//! starts and maps its window, its menu entry and icons, and the `tokenkeeper` CLI,
//! which then works against a real keyring. The packaged app has no sandbox mode:
//! none of the stand-in vendors' code is in it, and it says so to `--sandbox`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tokenkeeper_e2e::{Display, Session};

fn newest_deb() -> PathBuf {
    let target = tokenkeeper_e2e::bin_dir();
    let dir = target.join("bundle/deb");
    let mut debs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|_| {
            panic!(
                "no {}: build the package with ./dev deb --debug",
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    debs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    let deb = debs.pop().expect("a .deb: ./dev deb --debug");
    // A package older than the binary it should hold is stale.
    let built = std::fs::metadata(target.join("tokenkeeper"))
        .and_then(|m| m.modified())
        .unwrap();
    let packed = std::fs::metadata(&deb).and_then(|m| m.modified()).unwrap();
    // A later build that linked the same CLI again (cargo relinks when a dependency
    // was rebuilt for the package's feature set) leaves the package current: what
    // counts is the binary it holds.
    let same_cli = || {
        let inside = Command::new("sh")
            .arg("-c")
            .arg("dpkg-deb --fsys-tarfile \"$0\" | tar -xOf - --wildcards \"*usr/bin/tokenkeeper\"")
            .arg(&deb)
            .output()
            .expect("dpkg-deb");
        inside.status.success()
            && std::fs::read(target.join("tokenkeeper")).ok() == Some(inside.stdout)
    };
    assert!(
        packed >= built || same_cli(),
        "{} is older than the build and holds another tokenkeeper: ./dev deb --debug",
        deb.display()
    );
    deb
}

/// The .deb's files, unpacked into a scratch folder.
fn unpack(deb: &str) -> tempfile::TempDir {
    let unpacked = tempfile::tempdir().unwrap();
    let out = Command::new("dpkg-deb")
        .args(["-x", deb])
        .arg(unpacked.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dpkg-deb -x: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    unpacked
}

fn dpkg(args: &[&str]) -> String {
    let out = Command::new("dpkg").args(args).output().expect("dpkg");
    assert!(
        out.status.success(),
        "dpkg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn field(entry: &str, key: &str) -> String {
    entry
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in the desktop entry:\n{entry}"))
        .to_string()
}

/// Runs a command as root: directly when the tests run as root (CI), else through
/// `sudo -n`.
fn as_root(program: &str, args: &[&str]) -> std::process::Output {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut cmd = if root {
        Command::new(program)
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", program]);
        c
    };
    cmd.args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// The package names a control field (`Depends`) lists, alternatives included,
/// without versions or architectures.
fn package_names(field: &str) -> BTreeSet<String> {
    field
        .split([',', '|'])
        .filter_map(|d| d.split_whitespace().next())
        .map(|d| d.split(':').next().unwrap().to_string())
        .filter(|d| !d.is_empty())
        .collect()
}

/// `packages` and everything they depend on (Depends and Pre-Depends, recursively),
/// as apt knows it.
fn dependency_closure(packages: &BTreeSet<String>) -> BTreeSet<String> {
    let mut args = vec![
        "depends",
        "--recurse",
        "--no-recommends",
        "--no-suggests",
        "--no-conflicts",
        "--no-breaks",
        "--no-replaces",
        "--no-enhances",
    ];
    args.extend(packages.iter().map(String::as_str));
    let out = Command::new("apt-cache")
        .args(&args)
        .output()
        .expect("apt-cache");
    assert!(out.status.success(), "apt-cache {args:?}");
    let mut closure = packages.clone();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line
            .trim()
            .trim_start_matches('|')
            .trim_start_matches("PreDepends:")
            .trim_start_matches("Depends:")
            .trim()
            .trim_matches(|c| c == '<' || c == '>');
        if let Some(name) = name.split_whitespace().next() {
            closure.insert(name.split(':').next().unwrap().to_string());
        }
    }
    closure
}

/// The libraries `binary` names itself (its ELF NEEDED entries), each with the
/// path the dynamic linker resolves it to.
fn needed_libraries(binary: &Path) -> Vec<(String, String)> {
    let dynamic = Command::new("readelf")
        .args(["-d"])
        .arg(binary)
        .output()
        .expect("readelf (binutils)");
    let needed: Vec<String> = String::from_utf8_lossy(&dynamic.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| {
            l.split('[')
                .nth(1)
                .map(|n| n.trim_end_matches(']').to_string())
        })
        .collect();
    assert!(!needed.is_empty(), "{} links no library?", binary.display());
    let ldd = Command::new("ldd").arg(binary).output().expect("ldd");
    let ldd = String::from_utf8_lossy(&ldd.stdout).to_string();
    needed
        .into_iter()
        .map(|lib| {
            let path =
                ldd.lines()
                    .find_map(|l| match l.trim().split_once(" => ") {
                        Some((name, rest)) => (name == lib)
                            .then(|| rest.split(" (").next().unwrap().trim().to_string()),
                        // The dynamic linker is listed by its path alone.
                        None => {
                            let path = l.split_whitespace().next()?;
                            path.ends_with(&format!("/{lib}")).then(|| path.to_string())
                        }
                    })
                    .unwrap_or_else(|| {
                        panic!("ldd does not resolve {lib} of {}:\n{ldd}", binary.display())
                    });
            assert!(
                path.starts_with('/'),
                "{lib} of {} is not found: {path}",
                binary.display()
            );
            (lib, path)
        })
        .collect()
}

/// The package that owns `path` (resolving /lib vs /usr/lib on a merged /usr).
fn owner(path: &str) -> String {
    let real = std::fs::canonicalize(path)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_string());
    let candidates = [
        path.to_string(),
        real.clone(),
        real.strip_prefix("/usr").unwrap_or(&real).to_string(),
        format!("/usr{path}"),
        path.strip_prefix("/usr").unwrap_or(path).to_string(),
    ];
    for candidate in candidates {
        let out = Command::new("dpkg")
            .args(["-S", &candidate])
            .output()
            .unwrap();
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let package = text.split(':').next().unwrap().trim().to_string();
            return package;
        }
    }
    panic!("no package owns {path} ({real})")
}

/// Removes the installed package when the test ends, however it ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let out = as_root("apt-get", &["remove", "-y", "tokenkeeper"]);
        if !out.status.success() {
            eprintln!(
                "apt-get remove tokenkeeper: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn the_deb_installs_the_app_its_menu_entry_icons_and_the_cli() {
    let deb = newest_deb();
    let deb = deb.to_str().unwrap();
    let field_of = |key: &str| {
        let out = Command::new("dpkg-deb")
            .args(["-f", deb, key])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(field_of("Package"), "tokenkeeper");
    let depends = package_names(&field_of("Depends"));
    for dep in ["libwebkit2gtk-4.1-0", "libgtk-3-0"] {
        assert!(depends.contains(dep), "Depends lists {dep}: {depends:?}");
    }
    // The tray is the agent's, drawn over D-Bus (StatusNotifierItem): no
    // appindicator library is needed any more.
    assert!(
        !depends.iter().any(|d| d.contains("appindicator")),
        "{depends:?}"
    );

    // Every library the programs link against comes with what Depends pulls in.
    let unpacked = unpack(deb);
    let closure = dependency_closure(&depends);
    let mut uncovered = Vec::new();
    for name in ["tokenkeeper", "tokenkeeper-desktop"] {
        let binary = unpacked.path().join("usr/bin").join(name);
        for (lib, path) in needed_libraries(&binary) {
            let package = owner(&path);
            if !closure.contains(&package) {
                uncovered.push(format!("{name}: {lib} ({path}, from {package})"));
            }
        }
    }
    assert!(
        uncovered.is_empty(),
        "libraries no package in Depends brings: {uncovered:?}; Depends: {depends:?}"
    );

    // Installed for real: apt resolves the dependencies (and would fetch what is
    // missing); the package is removed again when the test ends.
    let out = as_root(
        "apt-get",
        &["install", "-y", "--no-install-recommends", deb],
    );
    let _installed = Installed;
    assert!(
        out.status.success(),
        "apt-get install {deb}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let status = dpkg(&["-s", "tokenkeeper"]);
    assert!(status.contains("Status: install ok installed"), "{status}");
    let r = Path::new("/");
    let files = dpkg(&["-L", "tokenkeeper"]);
    for want in [
        "/usr/bin/tokenkeeper-desktop",
        "/usr/bin/tokenkeeper",
        "/usr/share/applications/Tokenkeeper.desktop",
        "/usr/share/icons/hicolor/32x32/apps/tokenkeeper-desktop.png",
        "/usr/share/icons/hicolor/128x128/apps/tokenkeeper-desktop.png",
    ] {
        assert!(
            files.lines().any(|l| l == want),
            "{want} installed:\n{files}"
        );
    }
    // Only hicolor's own size folders, so that desktops find the icon.
    for line in files
        .lines()
        .filter(|l| l.starts_with("/usr/share/icons/hicolor/"))
    {
        let size = line.split('/').nth(5).unwrap_or_default();
        assert!(
            size.is_empty() || size.split('x').all(|n| n.parse::<u32>().is_ok()),
            "not a hicolor size folder: {line}"
        );
    }

    let entry =
        std::fs::read_to_string(r.join("usr/share/applications/Tokenkeeper.desktop")).unwrap();
    assert_eq!(field(&entry, "Type"), "Application");
    assert_eq!(field(&entry, "Name"), "Tokenkeeper");
    let exec = field(&entry, "Exec");
    assert!(
        r.join("usr/bin")
            .join(exec.split_whitespace().next().unwrap())
            .exists(),
        "Exec names an installed program: {exec}"
    );
    let icon = field(&entry, "Icon");
    assert!(
        r.join(format!("usr/share/icons/hicolor/128x128/apps/{icon}.png"))
            .exists(),
        "Icon names an installed icon: {icon}"
    );

    // The installed programs run; the CLI uses a real keyring.
    let bin = |name: &str| r.join("usr/bin").join(name);
    for name in ["tokenkeeper", "tokenkeeper-desktop"] {
        let out = Command::new(bin(name)).arg("--version").output().unwrap();
        assert!(out.status.success(), "{name} --version");
        assert!(String::from_utf8_lossy(&out.stdout).contains("0.1.0"));
    }
    let s = Session::start();
    let out = s
        .command(bin("tokenkeeper"))
        .args(["info", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the installed CLI opens a vault: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["accounts"], 0, "{info}");
    assert!(info["keyring_service"].is_string(), "{info}");
    assert!(
        !tokenkeeper_e2e::files_under(&s.data_dir).is_empty(),
        "the vault was written where the session says"
    );

    // The installed app starts as the menu entry starts it and maps its window.
    let display = Display::start();
    let mut app = s.command(bin("tokenkeeper-desktop"));
    app.args(
        exec.split_whitespace()
            .skip(1)
            .filter(|a| !a.starts_with('%')),
    )
    .env("DISPLAY", &display.name)
    .stdout(std::process::Stdio::null())
    .stderr(std::fs::File::create(s.root.path().join("app.log")).unwrap());
    let mut app = tokenkeeper_e2e::Running(app.spawn().expect("the installed app"));
    tokenkeeper_e2e::wait_for(
        "the installed app's window to map",
        Duration::from_secs(30),
        || {
            if let Some(status) = app.0.try_wait().expect("try_wait") {
                panic!(
                    "the installed app exited ({status}): {}",
                    std::fs::read_to_string(s.root.path().join("app.log")).unwrap_or_default()
                );
            }
            tokenkeeper_e2e::window_mapped(&display.name, "Tokenkeeper")
        },
    );
    // It started the agent installed beside it.
    let agent = s.agent_pid().expect("the installed app started its agent");
    let exe = std::fs::read_link(format!("/proc/{agent}/exe")).unwrap();
    assert_eq!(exe, std::fs::canonicalize(bin("tokenkeeper")).unwrap());
}

/// Text that only the sandbox crate (the stand-in vendors) puts in a binary: its
/// unauthenticated fault-injection and admin routes, and its source folder (which
/// panic locations name).
const SANDBOX_MARKS: &[&str] = &[
    "/faults/clear",
    "/_sandbox",
    "/bigid/revoke-user-tokens",
    "/oauth/refresh-token-state",
    "/immuta/expire-tokens",
    "crates/sandbox/src/",
];

/// The marks of [`SANDBOX_MARKS`] that the file at `path` contains.
fn sandbox_marks_in(path: &Path) -> Vec<&'static str> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // Lossy text keeps every ASCII run as it is, and std's search is fast on it.
    let text = String::from_utf8_lossy(&bytes);
    SANDBOX_MARKS
        .iter()
        .copied()
        .filter(|mark| text.contains(mark))
        .collect()
}

#[test]
fn the_packaged_app_has_no_sandbox_mode() {
    // The marks are what a binary with the stand-ins holds: the stand-ins' own
    // program has every one of them.
    let standins = tokenkeeper_e2e::bin("tokenkeeper-sandbox");
    assert_eq!(
        sandbox_marks_in(&standins),
        SANDBOX_MARKS,
        "{} lacks some marks: they no longer tell the stand-ins' code",
        standins.display()
    );

    let deb = newest_deb();
    let unpacked = unpack(deb.to_str().unwrap());
    let app = unpacked.path().join("usr/bin/tokenkeeper-desktop");
    let found = sandbox_marks_in(&app);
    assert!(
        found.is_empty(),
        "the packaged app holds the stand-ins' code (built with the sandbox feature?): {found:?}"
    );

    // Asked for sandbox mode, it says this build has none and where to get it, and
    // exits with an error (before any window or vault: a private session all the same).
    let s = Session::start();
    let mut app = tokenkeeper_e2e::Running(
        s.command(&app)
            .arg("--sandbox")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the packaged app"),
    );
    tokenkeeper_e2e::wait_for(
        "the packaged app to answer --sandbox",
        Duration::from_secs(30),
        || app.0.try_wait().expect("try_wait").is_some(),
    );
    let status = app.0.wait().unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(&mut app.0.stderr.take().unwrap(), &mut said).unwrap();
    assert_eq!(status.code(), Some(2), "--sandbox is refused: {said}");
    assert!(
        said.contains("this build has no sandbox mode") && said.contains("./dev sandbox"),
        "says why and where sandbox mode is: {said}"
    );
}
