#![no_main]

use libfuzzer_sys::fuzz_target;
use tanya_ingest::Format;

fuzz_target!(|data: &[u8]| tanya_ingest_fuzz::run(Format::Eml, data));
