#![no_main]
use tokenkeeper_core::{fuzzing, model::Vendor};

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::vendor(Vendor::Biganimal, data));
