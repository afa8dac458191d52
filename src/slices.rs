//! Row views of row-major matrices and panic-free slice splitting: what every kernel indexes
//! through, so that no kernel has a bounds-check panic path (`.ci/no-panic` proves it).

/// The rows of a row-major matrix `[len / width, width]`. Every caller has checked
/// `width > 0`; the `max(1)` (a no-op then) lets the optimiser drop `chunks_exact`'s zero-width
/// panic path, wherever the function is inlined.
#[inline(always)]
pub(crate) fn rows<T>(data: &[T], width: usize) -> Rows<'_, T> {
    Rows(chunks(data, width))
}

/// The rows of a mutable row-major matrix (see [`rows`]).
#[inline(always)]
pub(crate) fn rows_mut<T>(data: &mut [T], width: usize) -> RowsMut<'_, T> {
    RowsMut(chunks_mut(data, width))
}

/// The whole chunks of `width` elements of `data` (the rest dropped; `max(1)` as in [`rows`]):
/// `chunks_exact`, but built for size `WholeChunks`, whose constructor does not divide by
/// the width for the rest (on ARMv6-M every such division a call of the division routine,
/// which then need not be linked at all).
#[inline(always)]
pub(crate) fn chunks<T>(data: &[T], width: usize) -> Chunks<'_, T> {
    #[cfg(not(lara_attn_compact))]
    return data.chunks_exact(width.max(1));
    #[cfg(lara_attn_compact)]
    WholeChunks {
        rest: data,
        width: width.max(1),
    }
}

/// The mutable whole chunks of `data` (see [`chunks`]).
#[inline(always)]
pub(crate) fn chunks_mut<T>(data: &mut [T], width: usize) -> ChunksMut<'_, T> {
    #[cfg(not(lara_attn_compact))]
    return data.chunks_exact_mut(width.max(1));
    #[cfg(lara_attn_compact)]
    WholeChunksMut {
        rest: data,
        width: width.max(1),
    }
}

/// See [`chunks`].
#[cfg(not(lara_attn_compact))]
pub(crate) type Chunks<'a, T> = core::slice::ChunksExact<'a, T>;
/// See [`chunks`].
#[cfg(lara_attn_compact)]
pub(crate) type Chunks<'a, T> = WholeChunks<'a, T>;
/// See [`chunks_mut`].
#[cfg(not(lara_attn_compact))]
pub(crate) type ChunksMut<'a, T> = core::slice::ChunksExactMut<'a, T>;
/// See [`chunks_mut`].
#[cfg(lara_attn_compact)]
pub(crate) type ChunksMut<'a, T> = WholeChunksMut<'a, T>;

/// The whole chunks of a slice, built for size (see [`chunks`]).
#[cfg(lara_attn_compact)]
#[derive(Clone, Debug)]
pub(crate) struct WholeChunks<'a, T> {
    rest: &'a [T],
    width: usize,
}

/// The mutable whole chunks of a slice, built for size (see [`chunks_mut`]).
#[cfg(lara_attn_compact)]
#[derive(Debug)]
pub(crate) struct WholeChunksMut<'a, T> {
    rest: &'a mut [T],
    width: usize,
}

#[cfg(lara_attn_compact)]
impl<'a, T> Iterator for WholeChunks<'a, T> {
    type Item = &'a [T];
    #[inline]
    fn next(&mut self) -> Option<&'a [T]> {
        let (chunk, rest) = self.rest.split_at_checked(self.width)?;
        self.rest = rest;
        Some(chunk)
    }
}

#[cfg(lara_attn_compact)]
impl<'a, T> Iterator for WholeChunksMut<'a, T> {
    type Item = &'a mut [T];
    #[inline]
    fn next(&mut self) -> Option<&'a mut [T]> {
        let (chunk, rest) = core::mem::take(&mut self.rest).split_at_mut_checked(self.width)?;
        self.rest = rest;
        Some(chunk)
    }
}

/// Row iterator: `ChunksExact` without its random-access specialisation. Zipping two
/// `ChunksExact` goes through `Zip::new`'s random-access path, which divides by the chunk width
/// to get the length; where the optimiser keeps that `Zip::new` out of line, the division
/// brings a (never taken) division-by-zero panic path into the kernels, and `.ci/no-panic`
/// rejects it. Plain `next` iteration has no division.
#[derive(Clone, Debug)]
pub(crate) struct Rows<'a, T>(Chunks<'a, T>);

/// Mutable row iterator (see [`Rows`]).
#[derive(Debug)]
pub(crate) struct RowsMut<'a, T>(ChunksMut<'a, T>);

impl<'a, T> Iterator for Rows<'a, T> {
    type Item = &'a [T];
    #[inline(always)]
    fn next(&mut self) -> Option<&'a [T]> {
        self.0.next()
    }
    #[inline(always)]
    fn nth(&mut self, n: usize) -> Option<&'a [T]> {
        self.0.nth(n)
    }
}

impl<'a, T> Iterator for RowsMut<'a, T> {
    type Item = &'a mut [T];
    #[inline(always)]
    fn next(&mut self) -> Option<&'a mut [T]> {
        self.0.next()
    }
    #[inline(always)]
    fn nth(&mut self, n: usize) -> Option<&'a mut [T]> {
        self.0.nth(n)
    }
}

/// `data.fill(value)`. Built for size out of line, the value through `black_box`: one short
/// loop for every fill of the int8 kernels, not a call of the `memset` routine (158 B on
/// ARMv6-M) for the zero fills.
#[cfg_attr(not(lara_attn_compact), inline(always))]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) fn fill(data: &mut [i32], value: i32) {
    #[cfg(lara_attn_compact)]
    let value = core::hint::black_box(value);
    data.fill(value);
}

/// `dst = src` over the common length (no length-mismatch panic path).
#[inline]
pub(crate) fn copy(dst: &mut [f32], src: &[f32]) {
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = x;
    }
}

/// The first `len` elements (all of them if there are fewer: callers size the buffers).
#[inline]
pub(crate) fn prefix<T>(buffer: &mut [T], len: usize) -> &mut [T] {
    let len = len.min(buffer.len());
    &mut buffer[..len]
}

/// Splits the next `len` floats off the front of `rest`. Callers have checked the whole
/// length; a shorter buffer (an internal bug, caught in debug builds) yields a shorter part,
/// never a panic or an access out of bounds.
#[inline]
pub(crate) fn take<'a, T>(rest: &mut &'a mut [T], len: usize) -> &'a mut [T] {
    let buffer = core::mem::take(rest);
    debug_assert!(
        buffer.len() >= len,
        "scratch split beyond its checked length"
    );
    let (head, tail) = buffer.split_at_mut(len.min(buffer.len()));
    *rest = tail;
    head
}

/// The total length of a workspace's parts (saturating: an impossible size, which the scratch
/// check refuses, rather than a wrapped one).
pub(crate) const fn parts_len(parts: &[usize]) -> usize {
    let mut total = 0usize;
    let mut i = 0;
    while i < parts.len() {
        total = total.saturating_add(parts[i]);
        i += 1;
    }
    total
}

/// Stores the consecutive parts of `scratch` of the lengths `lens` (see [`take`]) into the
/// `&mut [i32]` fields at the byte offsets `offsets` of the struct at `workspace`, in order: a
/// workspace's split built for size ([`split_workspace`]), one loop for every part.
///
/// # Safety
/// `workspace` points to a struct (live, possibly uninitialised) with a `&'a mut [i32]` field
/// at each of `offsets`.
#[cfg(lara_attn_compact)]
#[allow(unsafe_code)]
#[inline(never)]
pub(crate) unsafe fn fill_parts<'a>(
    workspace: *mut u8,
    offsets: &[u16],
    mut scratch: &'a mut [i32],
    lens: &[usize],
) {
    for (&offset, &len) in offsets.iter().zip(lens) {
        let part = take(&mut scratch, len);
        // SAFETY: the caller's contract: a `&'a mut [i32]` field at `offset` (in the struct,
        // aligned; written without reading or dropping the old value).
        unsafe {
            workspace
                .add(usize::from(offset))
                .cast::<&'a mut [i32]>()
                .write(part)
        };
    }
}

/// `f()`, not inlined (its frame off the caller's).
#[cfg(not(lara_attn_compact))]
#[inline(never)]
pub(crate) fn out_of_line<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `let $ws: &mut $ty` = a workspace `$ty { fields, parts }` (on the caller's stack) whose parts
/// (`&mut [i32]`) are the consecutive parts of `scratch` of the lengths `lens` (an array, in
/// the parts' order; `?` returns the error of a scratch shorter than their sum); the parts
/// listed under `stream` (after the others in `lens`) are the fields of its `stream`, an
/// [`int8::KeyStream`](crate::int8::KeyStream). At opt-level 3 the struct literal with one
/// inlined [`take`] per part; built for size, the fields written in place and every part by one
/// out-of-line loop (`fill_parts`, from the parts' offsets): less flash, and no copy of the
/// struct.
macro_rules! split_workspace {
    (
        $ws:ident = $scratch:expr, $lens:expr,
        $ty:ident { $($(#[$meta:meta])* $field:ident: $value:expr,)* }
        => { $($part:ident,)+ } $(stream { $($stream_part:ident,)+ })?
    ) => {
        // (built for size: the fields written in place, no copy of the struct; the lengths
        // in this block alone, their stack reused after it)
        #[cfg(lara_attn_compact)]
        let mut storage = core::mem::MaybeUninit::<$ty>::uninit();
        #[cfg(lara_attn_compact)]
        let $ws: &mut $ty = {
            let lens = $lens;
            let scratch: &mut [i32] =
                $crate::shape::take_scratch_of($scratch, $crate::slices::parts_len(&lens))?;
            const OFFSETS: &[u16] = &[
                $(core::mem::offset_of!($ty, $part) as u16,)+
                $($(core::mem::offset_of!($ty, stream.$stream_part) as u16,)+)?
            ];
            let workspace = storage.as_mut_ptr();
            // (every part a `&mut [i32]`, and every field named once: a type error otherwise)
            if false {
                let _ = $ty {
                    $($(#[$meta])* $field: $value,)*
                    $($part: <&mut [i32]>::default(),)+
                    $(stream: $crate::int8::KeyStream {
                        $($stream_part: <&mut [i32]>::default(),)+
                    },)?
                };
            }
            #[allow(unsafe_code)]
            // SAFETY: every field is written before the struct is used: the fields here and
            // the parts by `fill_parts`, at their offsets (the dead struct literal above
            // checks that the lists name every field once and that each part is a
            // `&mut [i32]`).
            unsafe {
                $($(#[$meta])* (&raw mut (*workspace).$field).write($value);)*
                $crate::slices::fill_parts(workspace.cast::<u8>(), OFFSETS, scratch, &lens);
                storage.assume_init_mut()
            }
        };
        // (at opt-level 3 the struct literal, one inlined `take` per part, out of line: its
        // frame off the call's path)
        #[cfg(not(lara_attn_compact))]
        let scratch: &mut [i32] =
            $crate::shape::take_scratch_of($scratch, $crate::slices::parts_len(&$lens))?;
        #[cfg(not(lara_attn_compact))]
        let mut storage = $crate::slices::out_of_line(move || {
            let lens = $lens;
            let mut rest = scratch;
            let mut index = 0;
            let mut next = || {
                let part = $crate::slices::take(&mut rest, lens.get(index).copied().unwrap_or(0));
                index += 1;
                part
            };
            // (the fields in the parts' order: a struct literal evaluates them in order)
            $ty {
                $($(#[$meta])* $field: $value,)*
                $($part: next(),)+
                $(stream: $crate::int8::KeyStream {
                    $($stream_part: next(),)+
                },)?
            }
        });
        #[cfg(not(lara_attn_compact))]
        let $ws: &mut $ty = &mut storage;
    };
}
pub(crate) use split_workspace;

/// The `index`-th of the consecutive parts of `len` elements of `data` (a head's slice of a
/// stacked tensor whose length the caller checked: no division, unlike [`part`]); empty if
/// there is no such part.
// (built for size, out of line: one copy for a head's three slices)
#[cfg_attr(not(lara_attn_compact), inline)]
#[cfg_attr(lara_attn_compact, inline(never))]
pub(crate) fn nth_part<T>(data: &[T], len: usize, index: usize) -> &[T] {
    let start = len * index;
    data.get(start..start + len).unwrap_or_default()
}

/// The `index`-th of `parts` equal parts of `data` (a head's slice of a stacked tensor);
/// empty if there is no such part (callers have checked that the parts exist).
#[inline]
pub(crate) fn part<T>(data: &[T], parts: usize, index: usize) -> &[T] {
    let len = data.len() / parts.max(1);
    let rest = data.get(len.saturating_mul(index)..).unwrap_or_default();
    rest.get(..len).unwrap_or_default()
}

/// The mutable `index`-th of `parts` equal parts of `data` (see [`part`]).
#[inline]
pub(crate) fn part_mut<T>(data: &mut [T], parts: usize, index: usize) -> &mut [T] {
    let len = data.len() / parts.max(1);
    let rest = data
        .get_mut(len.saturating_mul(index)..)
        .unwrap_or_default();
    rest.get_mut(..len).unwrap_or_default()
}
