//! Decodes the app icon's PNGs (the ones the desktop app bundles, in `icons/` at the
//! repository's root) into raw RGBA once, at build time, so the agent carries no PNG
//! decoder and does no decoding at start.

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// The sizes sent as the item's IconPixmap: panels pick the one nearest their size.
const SIZES: [&str; 2] = ["32x32.png", "128x128.png"];

fn main() {
    let icons = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../icons");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let mut list = String::from("&[\n");
    for name in SIZES {
        let path = icons.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        let (width, height, rgba) = decode(&path);
        let raw = out.join(format!("{name}.rgba"));
        std::fs::write(&raw, rgba).expect("write the decoded icon");
        writeln!(
            list,
            "    ({width}, {height}, include_bytes!({:?}).as_slice()),",
            raw.display().to_string()
        )
        .expect("a string takes writes");
    }
    list.push_str("]\n");
    std::fs::write(out.join("icons.rs"), list).expect("write icons.rs");
}

/// Width, height and 8-bit RGBA of one PNG (the bundler wants RGBA too).
fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(BufReader::new(file))
        .read_info()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rgba = vec![0; reader.output_buffer_size().expect("an icon's size fits")];
    let info = reader
        .next_frame(&mut rgba)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        info.color_type == png::ColorType::Rgba && info.bit_depth == png::BitDepth::Eight,
        "{} is not 8-bit RGBA",
        path.display()
    );
    rgba.truncate(info.buffer_size());
    (info.width, info.height, rgba)
}
