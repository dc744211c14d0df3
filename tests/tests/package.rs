//! The installable package: the .deb that Tauri's bundler made (`./dev deb`; `./dev
//! test` makes one from the debug build first) is installed with dpkg into a scratch
//! root, and what it installed is checked: the desktop app, its menu entry and icons,
//! and the `tokenkeeper` CLI, which then works against a real keyring.

use std::path::PathBuf;
use std::process::Command;

use tokenkeeper_e2e::Session;

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
    assert!(
        packed >= built,
        "{} is older than the build: ./dev deb --debug",
        deb.display()
    );
    deb
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

#[test]
fn the_deb_installs_the_app_its_menu_entry_icons_and_the_cli() {
    let deb = newest_deb();
    let deb = deb.to_str().unwrap();
    let info = Command::new("dpkg-deb").args(["-f", deb]).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout).to_string();
    assert!(info.contains("Package: tokenkeeper\n"), "{info}");
    for dep in [
        "libwebkit2gtk-4.1-0",
        "libgtk-3-0",
        "libayatana-appindicator3-1",
    ] {
        assert!(info.contains(dep), "depends on {dep}: {info}");
    }

    // Install into a scratch root with its own dpkg database.
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("var/lib/dpkg/info")).unwrap();
    std::fs::create_dir_all(r.join("var/lib/dpkg/updates")).unwrap();
    std::fs::write(r.join("var/lib/dpkg/status"), "").unwrap();
    let root_arg = format!("--root={}", r.display());
    dpkg(&[
        &root_arg,
        "--force-not-root",
        "--force-depends",
        "--force-script-chrootless",
        "-i",
        deb,
    ]);
    let status = dpkg(&[&root_arg, "-s", "tokenkeeper"]);
    assert!(status.contains("Status: install ok installed"), "{status}");
    let files = dpkg(&[&root_arg, "-L", "tokenkeeper"]);
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
}
