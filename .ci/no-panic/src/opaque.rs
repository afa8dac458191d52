//! Opaque arguments: values read from fixed addresses, which the optimiser cannot see (these
//! programs are linked, never run).

use core::ptr::read_volatile;
use core::slice::{from_raw_parts, from_raw_parts_mut};
use lara_attn::Shape;

/// Opaque inputs at fixed addresses (never dereferenced at run time: this is never run).
pub struct Opaque;

impl Opaque {
    pub fn word(&self, slot: usize) -> usize {
        // SAFETY: not executed; the read only hides the value from the optimiser.
        unsafe { read_volatile((0x2000_0000 + 4 * slot) as *const usize) }
    }
    pub fn input(&self, slot: usize) -> &'static [f32] {
        // SAFETY: as above.
        unsafe { from_raw_parts(self.word(slot) as *const f32, self.word(slot + 1)) }
    }
    pub fn output(&self, slot: usize) -> &'static mut [f32] {
        // SAFETY: as above.
        unsafe { from_raw_parts_mut(self.word(slot) as *mut f32, self.word(slot + 1)) }
    }
    pub fn indices(&self, slot: usize) -> &'static [u32] {
        // SAFETY: as above.
        unsafe { from_raw_parts(self.word(slot) as *const u32, self.word(slot + 1)) }
    }
    pub fn bytes(&self, slot: usize) -> &'static [i8] {
        // SAFETY: as above.
        unsafe { from_raw_parts(self.word(slot) as *const i8, self.word(slot + 1)) }
    }
    pub fn bytes_out(&self, slot: usize) -> &'static mut [i8] {
        // SAFETY: as above.
        unsafe { from_raw_parts_mut(self.word(slot) as *mut i8, self.word(slot + 1)) }
    }
    pub fn words_out(&self, slot: usize) -> &'static mut [i32] {
        // SAFETY: as above.
        unsafe { from_raw_parts_mut(self.word(slot) as *mut i32, self.word(slot + 1)) }
    }
    pub fn mask(&self, slot: usize) -> &'static [bool] {
        // SAFETY: as above.
        unsafe { from_raw_parts(self.word(slot) as *const bool, self.word(slot + 1)) }
    }
    pub fn float(&self, slot: usize) -> f32 {
        f32::from_bits(self.word(slot) as u32)
    }
    pub fn optional<T>(&self, slot: usize, value: T) -> Option<T> {
        (self.word(slot) != 0).then_some(value)
    }
    pub fn shape(&self) -> Shape {
        Shape::cross(self.word(0), self.word(1), self.word(2), self.word(3))
            .with_heads(self.word(4))
    }
}
