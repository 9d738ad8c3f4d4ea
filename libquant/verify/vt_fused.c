/* The pairs of linear layers vLLM fuses (vt_fused.h). */
#include "verify/vt_fused.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *a, *b, *fused;
} FUSED[] = {
    {"attn.wq_a", "attn.wkv", "attn.fused_wqa_wkv"},
    {"attn.compressor.wkv", "attn.compressor.wgate", "attn.compressor.fused_wkv_wgate"},
    {"attn.indexer.compressor.wkv", "attn.indexer.compressor.wgate", "attn.indexer.compressor.fused_wkv_wgate"},
    {"ffn.shared_experts.w1", "ffn.shared_experts.w3", "ffn.shared_experts.gate_up_proj"},
};

/* Length of "layers.N." / "mtp.N." at the start of a module name, 0 when none. */
static size_t block_len(const char *m)
{
    const char *p = !strncmp(m, "layers.", 7) ? m + 7 : !strncmp(m, "mtp.", 4) ? m + 4 : NULL;
    if (!p || *p < '0' || *p > '9')
        return 0;
    while (*p >= '0' && *p <= '9')
        p++;
    return *p == '.' ? (size_t)(p + 1 - m) : 0;
}

int dsv4_vt_fused_partner(const char *module, char *partner, size_t pcap, char *fused, size_t fcap, int *expert)
{
    size_t bl = block_len(module), ml = strlen(module);
    const char *rest = module + bl;
    *expert = 0;
    if (!bl)
        return 0;
    if (!strncmp(rest, "ffn.experts.", 12) && ml - bl > 15 && !strcmp(module + ml - 3, ".w1")) {
        const char *e = rest + 12;
        size_t el = ml - bl - 15;
        for (size_t i = 0; i < el; i++)
            if (e[i] < '0' || e[i] > '9')
                return 0;
        snprintf(partner, pcap, "%.*s.w3", (int)(ml - 3), module);
        snprintf(fused, fcap, "%.*sffn.experts.w13 (expert %.*s)", (int)bl, module, (int)el, e);
        *expert = 1;
        return 1;
    }
    for (size_t k = 0; k < sizeof FUSED / sizeof *FUSED; k++)
        if (!strcmp(rest, FUSED[k].a)) {
            snprintf(partner, pcap, "%.*s%s", (int)bl, module, FUSED[k].b);
            snprintf(fused, fcap, "%.*s%s", (int)bl, module, FUSED[k].fused);
            return 1;
        }
    return 0;
}
