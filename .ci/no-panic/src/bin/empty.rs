//! `int8_firmware.rs` without its kernel calls: the baseline of its flash figure.
#![no_std]
#![no_main]

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[cortex_m_rt::entry]
fn main() -> ! {
    // SAFETY: not executed (the program is linked, never run).
    let ok = unsafe { core::ptr::read_volatile(0x2000_0000 as *const usize) };
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(0x2000_1000 as *mut usize, ok) };
    loop {}
}
