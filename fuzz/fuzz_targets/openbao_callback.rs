#![no_main]
use tokenkeeper_core::fuzzing;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::openbao_callback(data));
