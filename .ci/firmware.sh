#!/usr/bin/env bash
# Firmware CI for lara-attn (called by .ci/run; runs from anywhere):
#   1. installs QEMU, the aarch64 cross linker and the ARM binutils if missing, and the rustup targets;
#   2. runs the whole host test suite for aarch64-unknown-linux-gnu under qemu-aarch64;
#   3. runs examples/firmware.rs on five emulated Cortex-M machines (M4F, M7, M55, M3, M0 code): each
#      run compares its outputs with the host's and measures instructions and stack per kernel call;
#   4. Helium: the Cortex-M55 build again without MVE;
#   5. sizes on the Cortex-M4F at opt-level "s" and 3: the example, the kernels alone (by difference
#      with a build that calls no kernel), their symbols, and every public entry point (.ci/no-panic).
# Fails on the first non-zero exit. Logs and ELF files: target/firmware-ci/ (or $CARGO_TARGET_DIR/...).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

THUMB_TARGETS=(thumbv6m-none-eabi thumbv7m-none-eabi thumbv7em-none-eabihf thumbv8m.main-none-eabihf)
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
LOGS="$TARGET_DIR/firmware-ci"
mkdir -p "$LOGS"

step "tools: qemu-system-arm, qemu-aarch64, aarch64-linux-gnu-gcc, arm-none-eabi binutils"
if ! command -v qemu-system-arm >/dev/null || ! command -v qemu-aarch64 >/dev/null ||
  ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v arm-none-eabi-size >/dev/null ||
  ! [ -e /usr/aarch64-linux-gnu/lib/crt1.o ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  "${sudo[@]}" apt-get update
  # libc6-dev-arm64-cross (crt1.o) is only a Recommends of the cross gcc: name it explicitly.
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends \
    qemu-system-arm qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-arm-none-eabi
fi
qemu-system-arm --version | head -n 1
rustup target add "${THUMB_TARGETS[@]}" aarch64-unknown-linux-gnu

# lara-attn (library and tests) at opt-level 1, debug assertions and overflow checks still on:
# unoptimised, the property tests alone take about 5 minutes under qemu-aarch64; at opt-level 1,
# about 30 s. Dependencies stay at opt-level 0 (quicker to build).
step "cargo test --target aarch64-unknown-linux-gnu, NEON forced (under qemu-aarch64; lara-attn at opt-level 1)"
LARA_ATTN_BACKEND=neon cargo test --target aarch64-unknown-linux-gnu \
  --config 'profile.dev.package.lara-attn.opt-level=1' --config 'profile.dev.package.lara-attn.debug=false'

# One firmware run: target triple, machine, label; the output goes to the console and a log.
run_firmware() {
  local target="$1" machine="$2" label="$3"
  step "firmware on $label: $machine, $target"
  QEMU_MACHINE="$machine" cargo run --release --example firmware --target "$target" \
    2>"$LOGS/$label.build.log" | tee "$LOGS/$label.log" ||
    { cat "$LOGS/$label.build.log"; return 1; }
}

run_firmware thumbv7em-none-eabihf mps2-an386 cortex-m4f
run_firmware thumbv7em-none-eabihf mps2-an500 cortex-m7
run_firmware thumbv8m.main-none-eabihf mps3-an547 cortex-m55
run_firmware thumbv7m-none-eabi mps2-an385 cortex-m3
run_firmware thumbv6m-none-eabi mps2-an385 cortex-m0

# Helium: the same example on the Cortex-M55 with MVE disabled (scalar FPU code). RUSTFLAGS replaces
# the config's rustflags for the target, so it repeats the linker flags.
step "Helium: cortex-m55 without MVE (-C target-feature=-mve,-mve.fp)"
RUSTFLAGS="-C target-cpu=cortex-m55 -C target-feature=-mve,-mve.fp -C link-arg=-Tlink.x -C link-arg=-Lexamples/firmware" \
  cargo run --release --example firmware --target thumbv8m.main-none-eabihf \
  2>"$LOGS/cortex-m55-no-mve.build.log" | tee "$LOGS/cortex-m55-no-mve.log" ||
  { cat "$LOGS/cortex-m55-no-mve.build.log"; exit 1; }

# Sizes on the Cortex-M4F, with the release profile at each opt-level.
flash() { arm-none-eabi-size "$1" | awk 'NR == 2 { print $1 + $2 }'; }
ram() { arm-none-eabi-size "$1" | awk 'NR == 2 { print $2 + $3 }'; }
# "size<TAB>name" of every function and object of an ELF file, one per address.
symbols() {
  arm-none-eabi-nm -S -C --radix=d "$1" | awk '$3 ~ /^[TtRrDdBb]$/ && !seen[$1]++ {
    name = $4; for (i = 5; i <= NF; i++) name = name " " $i; print ($2 + 0) "\t" name }'
}
# The symbols of ELF file $1 whose name is not in ELF file $2, largest first.
symbols_only_in() {
  awk -F '\t' 'NR == FNR { base[$2] = 1; next } !($2 in base)' <(symbols "$2") <(symbols "$1") | sort -rn
}
declare -A FLASH KERNELS
for opt in s 3; do
  case "$opt" in s) value='"s"' ;; *) value="$opt" ;; esac
  elf="$TARGET_DIR/thumbv7em-none-eabihf/release/examples/firmware"
  step "size at opt-level = $opt: firmware example (Cortex-M4F), and a build that calls no kernel"
  FIRMWARE_SIZE=1 FIRMWARE_SIZE_BASELINE=1 cargo build --release --example firmware --target thumbv7em-none-eabihf \
    --config "profile.release.opt-level=$value" 2>"$LOGS/size-$opt.build.log" ||
    { cat "$LOGS/size-$opt.build.log"; exit 1; }
  cp "$elf" "$LOGS/firmware-baseline-opt-$opt.elf"
  FIRMWARE_SIZE=1 cargo build --release --example firmware --target thumbv7em-none-eabihf \
    --config "profile.release.opt-level=$value" 2>"$LOGS/size-$opt.build.log" ||
    { cat "$LOGS/size-$opt.build.log"; exit 1; }
  cp "$elf" "$LOGS/firmware-opt-$opt.elf"
  arm-none-eabi-size "$LOGS/firmware-opt-$opt.elf" "$LOGS/firmware-baseline-opt-$opt.elf"
  FLASH[$opt]=$(flash "$LOGS/firmware-opt-$opt.elf")
  KERNELS[$opt]=$((FLASH[$opt] - $(flash "$LOGS/firmware-baseline-opt-$opt.elf")))
  echo "firmware example: flash (text+data) ${FLASH[$opt]} B, static RAM (data+bss) $(ram "$LOGS/firmware-opt-$opt.elf") B"
  echo "kernels alone (exact + RFA positive + LARA, with libm): ${KERNELS[$opt]} B of flash (difference with the baseline)"
  # Symbols only in the build that calls the kernels: the kernels' own functions and tables.
  symbols_only_in "$LOGS/firmware-opt-$opt.elf" "$LOGS/firmware-baseline-opt-$opt.elf" \
    >"$LOGS/kernel-symbols-opt-$opt.txt"
  echo "symbols only in the build that calls the kernels (bytes; sum $(awk '{ s += $1 } END { print s + 0 }' \
    "$LOGS/kernel-symbols-opt-$opt.txt") B):"
  grep -v -P '\t\.L' "$LOGS/kernel-symbols-opt-$opt.txt" | sed 's/^/  /' || true
  awk -F '\t' '$2 ~ /^\.L/ { s += $1 } END { print "  (and " s + 0 " B of anonymous constants)" }' \
    "$LOGS/kernel-symbols-opt-$opt.txt"
  step "firmware example built at opt-level = $opt, on the Cortex-M4F"
  QEMU_MACHINE=mps2-an386 .ci/qemu-run.sh mps2-an386 "$LOGS/firmware-opt-$opt.elf" |
    tee "$LOGS/cortex-m4f-opt-$opt.log"
done

# Every public entry point of the crate (all estimators, sampled modes, samplers, ω helpers,
# multi-head and fixed-size layers): the .ci/no-panic program, LTO, at opt-level "s" and 3. It is
# linked here with its panic symbol defined, because at opt-level "s" core keeps one unreachable
# panic path (see README); this measures size only.
declare -A ALL
for profile in release-size release; do
  step "size of every public entry point (.ci/no-panic, profile $profile, LTO)"
  RUSTFLAGS="-C link-arg=-Tlink.x -C link-arg=--defsym=a_panic_path_survived_in_lara_attn=0" \
    cargo build --profile "$profile" --manifest-path .ci/no-panic/Cargo.toml \
    --target thumbv7em-none-eabihf --target-dir "$TARGET_DIR" \
    2>"$LOGS/all-$profile.build.log" || { cat "$LOGS/all-$profile.build.log"; exit 1; }
  elf="$TARGET_DIR/thumbv7em-none-eabihf/$profile/lara-attn-no-panic"
  arm-none-eabi-size "$elf"
  ALL[$profile]=$(flash "$elf")
done

step "summary"
grep -h -E "^(exact|rfa|lara) |^at |^(libm|lara_attn)::" "$LOGS/cortex-m4f.log" | sed 's/^/cortex-m4f: /'
for log in cortex-m55 cortex-m55-no-mve; do
  grep -h -E "^(exact|rfa|lara) " "$LOGS/$log.log" | sed "s/^/$log: /"
done
for opt in s 3; do
  echo "opt-level $opt: firmware example ${FLASH[$opt]} B flash, kernels alone ${KERNELS[$opt]} B"
done
echo "every public entry point: ${ALL[release-size]} B flash at opt-level s, ${ALL[release]} B at 3 (LTO)"
step "firmware: all runs passed"
