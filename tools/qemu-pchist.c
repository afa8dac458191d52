/* PC histogram for qemu-system-arm 7.2 (plugin API v1, no QEMU headers): counts executed
 * instructions per guest address (code below 4 MiB) and writes "addr count" lines (hex, decimal)
 * to $PCHIST_OUT (default pchist.txt) at exit.
 *   gcc -shared -fPIC -O2 -o /tmp/libpchist.so tools/qemu-pchist.c
 *   PCHIST_OUT=/tmp/pc.txt QEMU_EXTRA="-plugin /tmp/libpchist.so -d plugin" FIRMWARE_ONLY=lara8 \
 *     cargo run --release --example firmware --target thumbv7em-none-eabihf
 *   python3 tools/pchist-symbols.py target/thumbv7em-none-eabihf/release/examples/firmware /tmp/pc.txt */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb; struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, void (*)(qemu_plugin_id_t, struct qemu_plugin_tb *));
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, void (*)(qemu_plugin_id_t, void *), void *);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *, enum qemu_plugin_op, void *, uint64_t);
__attribute__((visibility("default"))) int qemu_plugin_version = 1;
#define SPAN (4u << 20)
static uint64_t *counts;
static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        if (pc < SPAN) qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &counts[pc / 2], 1);
    }
}
static void at_exit(qemu_plugin_id_t id, void *p) {
    const char *path = getenv("PCHIST_OUT");
    FILE *f = fopen(path ? path : "pchist.txt", "w");
    if (!f) return;
    for (uint64_t i = 0; i < SPAN / 2; i++)
        if (counts[i]) fprintf(f, "%llx %llu\n", (unsigned long long)(i * 2), (unsigned long long)counts[i]);
    fclose(f);
}
__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc, char **argv) {
    counts = calloc(SPAN / 2, sizeof *counts);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
