#!/bin/sh
# Cargo runner for the bare-metal Cortex-M targets (set in .cargo/config.toml): boots the ELF on a
# QEMU machine with semihosting, so the firmware's SYS_EXIT_EXTENDED status becomes QEMU's and
# cargo's exit status. A firmware that hangs is killed by `timeout` (exit 124).
#
#   usage: qemu-run.sh DEFAULT_MACHINE ELF [ARGS...]   (ARGS reach the firmware as its command line)
#   env:   QEMU_MACHINE  machine to use instead of DEFAULT_MACHINE (mps2-an385, mps2-an386,
#                        mps2-an500, mps3-an547)
#          QEMU_ICOUNT   -icount shift (default 6: one instruction = 2^6 ns of virtual time, so
#                        timers count instructions deterministically); "off" runs without icount
#          QEMU_TIMEOUT  seconds before the run is killed (default 300)
#          QEMU_EXTRA    more QEMU options (e.g. "-plugin ./libinsnmark.so -d plugin")
set -eu
if [ "$#" -lt 2 ]; then
  echo "usage: $0 DEFAULT_MACHINE ELF [ARGS...]" >&2
  exit 2
fi
machine="${QEMU_MACHINE:-$1}"
elf="$2"
shift 2
if ! command -v qemu-system-arm >/dev/null 2>&1; then
  echo "qemu-run.sh: qemu-system-arm not found (apt-get install -y --no-install-recommends qemu-system-arm)" >&2
  exit 127
fi
icount="${QEMU_ICOUNT:-6}"
if [ "$icount" = off ]; then icount_opt=""; else icount_opt="-icount shift=$icount"; fi
# shellcheck disable=SC2086 # QEMU_EXTRA and icount_opt are word lists
exec timeout "${QEMU_TIMEOUT:-300}" qemu-system-arm -machine "$machine" -nographic \
  -semihosting-config enable=on,target=native $icount_opt ${QEMU_EXTRA:-} \
  ${1:+-append "$*"} -kernel "$elf"
