//! A module that claims ABI version 2: the host must refuse it at load.
//! Written without the SDK, as a module from another toolchain would be:
//! its manifest is a hand-written custom section.
#![cfg_attr(all(target_arch = "wasm32", not(test)), no_std)]

#[cfg(all(not(test), target_arch = "wasm32"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(target_arch = "wasm32")]
const MANIFEST: &[u8] =
    br#"{"abi":1,"name":"wrong_abi","version":"0.1.0","params":[],"indicators":[],"models":[]}"#;

#[cfg(target_arch = "wasm32")]
#[unsafe(link_section = "cw_manifest")]
#[used]
static CW_MANIFEST: [u8; MANIFEST.len()] = {
    let mut out = [0u8; MANIFEST.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = MANIFEST[i];
        i += 1;
    }
    out
};

#[unsafe(no_mangle)]
pub extern "C" fn cw_abi_version() -> u32 {
    2
}
