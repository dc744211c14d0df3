//! `tokenkeeper exec NAME --keep-fresh -- CMD` against the TrueSight stand-in with
//! six-second tokens: a command that runs for several token lifetimes reads a token
//! the vendor accepts from its file at every moment, the file goes when the command
//! ends or `exec` is killed, and a renewal that fails never leaves an expired token.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use tokenkeeper_e2e::{descendants, finish, wait_for, Run, Sandbox, Session};

/// The stand-in's token lifetime, in seconds.
const TTL: u64 = 6;

fn session_with_ts() -> (Session, Sandbox) {
    let s = Session::start();
    let sb = Sandbox::start(&["--truesight-token-ttl", &TTL.to_string()]);
    s.add_sandbox_truesight(&sb, "ts").ok();
    (s, sb)
}

/// A command for `sh -c`: prints its token file's path, then for `seconds` reads the
/// token file and the header file every quarter second, calls TrueSight's `about`
/// with `curl -H @header-file`, and writes `STATUS TOKEN` per call to `$LOG` (or
/// `missing` when there is no file). It fails at the first call the vendor rejects.
fn probing_script(about_url: &str, seconds: u64, fail_on_missing: bool) -> String {
    let on_missing = if fail_on_missing { "exit 3" } else { "" };
    format!(
        r#"echo "$TOKENKEEPER_TOKEN_FILE"
end=$(( $(date +%s) + {seconds} ))
while [ "$(date +%s)" -lt "$end" ]; do
  if ! token=$(cat "$TOKENKEEPER_TOKEN_FILE" 2>/dev/null); then
    echo missing >> "$LOG"; {on_missing}
  else
    header=$(cat "$TOKENKEEPER_HEADER_FILE")
    # The two files are replaced one after the other: a read between the two renames
    # sees them differ for a moment, never for long.
    tries=0
    while [ "$header" != "Authorization: authToken $token" ]; do
      tries=$((tries + 1)); [ "$tries" -le 40 ] || {{ echo "header mismatch" >&2; exit 4; }}
      sleep 0.05
      [ -e "$TOKENKEEPER_TOKEN_FILE" ] || break
      token=$(cat "$TOKENKEEPER_TOKEN_FILE"); header=$(cat "$TOKENKEEPER_HEADER_FILE")
    done
    code=$(curl -s -o /dev/null -w '%{{http_code}}' -H @"$TOKENKEEPER_HEADER_FILE" '{about_url}')
    if [ "$code" != 200 ] && [ ! -e "$TOKENKEEPER_TOKEN_FILE" ]; then
      # Read just before the file went, a second before the token's expiry, and
      # called with after it (a slow machine): as good as no file.
      echo missing >> "$LOG"; {on_missing}
    else
      echo "$code $token" >> "$LOG"
      [ "$code" = 200 ] || exit 5
    fi
  fi
  sleep 0.25
done
"#
    )
}

fn about_url(sb: &Sandbox) -> String {
    format!("{}/tsws/api/v10.1/about", sb.url("truesight"))
}

/// The `(status, token)` lines the probing script wrote.
fn probes(log: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (code, token) = l.split_once(' ').unwrap_or((l, ""));
            (code.to_string(), token.to_string())
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Starts `tokenkeeper exec ts --keep-fresh -- sh -c SCRIPT` with `$LOG` set; the
/// process and the token file's path the script printed first.
fn spawn_exec(s: &Session, log: &Path, script: &str) -> (Child, PathBuf) {
    let log = log.display().to_string();
    let mut exec = s.spawn_cli(
        &[("LOG", &log)],
        &["exec", "ts", "--keep-fresh", "--", "sh", "-c", script],
    );
    let mut line = String::new();
    BufReader::new(exec.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("the token file's path");
    let file = PathBuf::from(line.trim());
    assert!(file.is_absolute(), "TOKENKEEPER_TOKEN_FILE: {line:?}");
    (exec, file)
}

fn assert_private(s: &Session, file: &Path) {
    let folder = file.parent().expect("the token folder");
    assert_eq!(
        folder.parent(),
        Some(s.root.path().join("run").as_path()),
        "the folder is in $XDG_RUNTIME_DIR"
    );
    assert_eq!(mode(folder), 0o700, "{}", folder.display());
    assert_eq!(mode(file), 0o600, "{}", file.display());
    for entry in std::fs::read_dir(folder).expect("read the folder") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

fn assert_no_token_in(run: &Run, tokens: &[String]) {
    assert!(!tokens.is_empty(), "the command read tokens");
    for t in tokens.iter().filter(|t| !t.is_empty()) {
        assert!(
            !run.stderr.contains(t.as_str()),
            "a token on stderr: {}",
            run.stderr
        );
    }
}

#[test]
fn a_command_running_three_lifetimes_always_reads_a_token_the_vendor_accepts() {
    let (s, sb) = session_with_ts();
    let log = s.root.path().join("probes.log");
    let seconds = 3 * TTL + 2;
    let (exec, file) = spawn_exec(&s, &log, &probing_script(&about_url(&sb), seconds, true));
    let folder = file.parent().expect("folder").to_path_buf();
    assert_private(&s, &file);
    // Neither `exec`'s processes' argv (the command's, the guard's) holds a token.
    std::thread::sleep(Duration::from_millis(500));
    let first = std::fs::read_to_string(&file).expect("the token file");
    assert!(
        first.starts_with('_') && !first.ends_with('\n'),
        "{first:?}"
    );
    for (pid, _) in descendants(exec.id()) {
        let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&argv).contains(&first),
            "a token in the argv of {pid}"
        );
    }

    let run = finish(exec, Duration::from_secs(seconds + 30));
    let probes = probes(&log);
    assert_eq!(run.code, 0, "stderr: {}\nprobes: {probes:?}", run.stderr);
    assert!(
        probes.len() as u64 >= seconds,
        "a probe every quarter second, at least one a second on a loaded machine: {probes:?}"
    );
    assert!(probes.iter().all(|(code, _)| code == "200"), "{probes:?}");
    let mut tokens: Vec<String> = probes.into_iter().map(|(_, t)| t).collect();
    tokens.dedup();
    assert!(
        tokens.len() >= 4,
        "the file was rewritten through three lifetimes: {} tokens",
        tokens.len()
    );
    assert_no_token_in(&run, &tokens);
    assert!(!folder.exists(), "{} is left", folder.display());
}

#[test]
fn the_folder_goes_when_exec_is_killed_and_the_command_is_told_to_stop() {
    let (s, sb) = session_with_ts();
    let log = s.root.path().join("probes.log");
    let stopped = s.root.path().join("got-sigterm");
    // Probes for long, and marks the SIGTERM it gets once `exec` is gone.
    let script = format!(
        "trap 'echo yes > {}; exit 0' TERM\n{}",
        stopped.display(),
        probing_script(&about_url(&sb), 600, false)
    );
    let (mut exec, file) = spawn_exec(&s, &log, &script);
    let folder = file.parent().expect("folder").to_path_buf();
    assert_private(&s, &file);
    wait_for("a few probes", Duration::from_secs(10), || {
        probes(&log).len() >= 4
    });
    let command_pids: Vec<u32> = descendants(exec.id())
        .into_iter()
        .filter(|(_, comm)| comm == "sh")
        .map(|(pid, _)| pid)
        .collect();
    assert!(!command_pids.is_empty(), "the command and the guard run");

    exec.kill().expect("SIGKILL exec");
    let run = finish(exec, Duration::from_secs(5));
    wait_for("the token folder to go", Duration::from_secs(15), || {
        !folder.exists()
    });
    wait_for(
        "the command to get SIGTERM",
        Duration::from_secs(15),
        || stopped.exists(),
    );
    wait_for(
        "the command and the guard to end",
        Duration::from_secs(15),
        || {
            command_pids
                .iter()
                .all(|pid| !Path::new(&format!("/proc/{pid}/cmdline")).exists() || is_zombie(*pid))
        },
    );
    let tokens: Vec<String> = probes(&log).into_iter().map(|(_, t)| t).collect();
    assert_no_token_in(&run, &tokens);
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

#[test]
fn exit_codes_and_signals_pass_through_and_the_folder_goes_however_the_command_ends() {
    let (s, _sb) = session_with_ts();
    for (script, code) in [
        (
            "echo \"$TOKENKEEPER_TOKEN_FILE\"; test -s \"$TOKENKEEPER_TOKEN_FILE\"",
            0,
        ),
        ("echo \"$TOKENKEEPER_TOKEN_FILE\"; exit 7", 7),
        ("echo \"$TOKENKEEPER_TOKEN_FILE\"; kill -TERM $$", 128 + 15),
    ] {
        let run = s.cli(
            &["exec", "ts", "--keep-fresh", "--", "sh", "-c", script],
            None,
        );
        assert_eq!(run.code, code, "{script}: {}", run.stderr);
        let file = PathBuf::from(run.stdout.trim());
        let folder = file.parent().expect("folder");
        assert!(folder.starts_with(s.root.path().join("run")), "{file:?}");
        assert!(!folder.exists(), "{script}: {} is left", folder.display());
    }
    // The environment variables stay, for short commands.
    let run = s
        .cli(
            &[
                "exec",
                "ts",
                "--keep-fresh",
                "--",
                "sh",
                "-c",
                "[ \"$TOKENKEEPER_TOKEN\" = \"$(cat \"$TOKENKEEPER_TOKEN_FILE\")\" ] && \
                 [ \"$TOKENKEEPER_AUTHORIZATION\" = \"authToken $TOKENKEEPER_TOKEN\" ]",
            ],
            None,
        )
        .ok();
    assert_eq!(run.stdout, "");

    // SIGTERM to `exec` goes to the command, whose exit code `exec` returns.
    let marker = s.root.path().join("got-sigterm");
    let script = format!(
        "trap 'echo yes > {}; exit 9' TERM\necho \"$TOKENKEEPER_TOKEN_FILE\"\nwhile :; do sleep 0.1; done",
        marker.display()
    );
    let (exec, file) = spawn_exec(&s, &s.root.path().join("unused.log"), &script);
    tokenkeeper_e2e::terminate(&exec);
    let run = finish(exec, Duration::from_secs(10));
    assert_eq!(run.code, 9, "{}", run.stderr);
    assert!(marker.exists(), "the command got SIGTERM");
    assert!(!file.parent().expect("folder").exists());
}

#[test]
fn a_failing_renewal_keeps_the_valid_token_then_removes_it_at_expiry_and_says_what_to_do() {
    let (s, sb) = session_with_ts();
    let log = s.root.path().join("probes.log");
    let seconds = 3 * TTL;
    let (exec, file) = spawn_exec(&s, &log, &probing_script(&about_url(&sb), seconds, false));
    // From now on TrueSight refuses every sign-in: no renewal can succeed.
    sb.fault_times("/truesight/tsws/api/v10.1/token", "status500", 1000);
    let run = finish(exec, Duration::from_secs(seconds + 30));
    let probes = probes(&log);
    // Every token the command read was accepted; after the last one expired there
    // was no file rather than an expired token.
    assert_eq!(run.code, 0, "stderr: {}\nprobes: {probes:?}", run.stderr);
    assert!(probes.iter().any(|(code, _)| code == "200"), "{probes:?}");
    let missing_from = probes
        .iter()
        .position(|(code, _)| code == "missing")
        .unwrap_or_else(|| panic!("the file went at the expiry: {probes:?}"));
    assert!(
        probes[missing_from..]
            .iter()
            .all(|(code, _)| code == "missing"),
        "{probes:?}"
    );
    assert_eq!(
        run.stderr.matches("cannot renew 'ts'").count(),
        1,
        "said once: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("expired and could not be renewed")
            && run.stderr.contains("tokenkeeper login ts"),
        "{}",
        run.stderr
    );
    let tokens: Vec<String> = probes.into_iter().map(|(_, t)| t).collect();
    assert_no_token_in(&run, &tokens);
    assert!(!file.parent().expect("folder").exists());
}
