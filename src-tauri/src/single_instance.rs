//! One app per vault: a second start hands over to the running one (which shows its
//! window) and exits, so two engines never run side by side and a click in the
//! launcher brings the window back. The meeting point is a Unix socket named after
//! the vault's keyring service, in the user's runtime folder.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// What a start found.
pub enum Instance {
    /// This is the only one: it listens for later starts.
    First(UnixListener),
    /// Another one runs and was asked to show its window.
    Handed,
}

fn socket_path(dir: &Path) -> PathBuf {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let service = tokenkeeper_core::vault::service_name_for(dir);
    let tag = service.rsplit('/').next().unwrap_or("default").to_string();
    runtime.join(format!("tokenkeeper-{tag}.sock"))
}

pub fn claim(dir: &Path) -> std::io::Result<Instance> {
    let path = socket_path(dir);
    match UnixListener::bind(&path) {
        Ok(l) => return Ok(Instance::First(l)),
        Err(e) if e.kind() != std::io::ErrorKind::AddrInUse => return Err(e),
        Err(_) => {}
    }
    match UnixStream::connect(&path) {
        Ok(mut s) => {
            s.write_all(b"show\n")?;
            // Wait for the answer, so the caller exits only once it was heard.
            let mut ok = [0u8; 3];
            let _ = s.read(&mut ok);
            Ok(Instance::Handed)
        }
        Err(_) => {
            // A socket left by an app that died: take its place.
            std::fs::remove_file(&path)?;
            Ok(Instance::First(UnixListener::bind(&path)?))
        }
    }
}

/// Calls `show` for each later start, from a thread of its own.
pub fn serve(listener: UnixListener, show: impl Fn() + Send + 'static) {
    let _ = std::thread::Builder::new()
        .name("single-instance".into())
        .spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut line = [0u8; 5];
                if stream.read_exact(&mut line).is_ok() && &line == b"show\n" {
                    show();
                    let _ = stream.write_all(b"ok\n");
                }
            }
        });
}
