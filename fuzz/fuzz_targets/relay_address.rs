//! Any string parses to a relay address or an error; a parsed address formats to a
//! string that parses to the same address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_proto::RelayAddress;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(a) = s.parse::<RelayAddress>() {
        assert_eq!(a.to_string().parse::<RelayAddress>().as_ref(), Ok(&a));
    }
});
