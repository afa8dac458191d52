//! RFA positive features on int8 inputs (work in progress).
