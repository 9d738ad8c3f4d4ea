/* The linear layers vLLM fuses into one module (seed_pipelines §1.5, §3.12): attention wq_a + wkv
 * (fused_wqa_wkv), compressor wkv + wgate and indexer compressor wkv + wgate (fused_wkv_wgate),
 * shared experts w1 + w3 (gate_up_proj) and each routed expert's w1 + w3 (the MoE's w13). Both
 * halves need one scheme, one config group and, for NVFP4, one global scale. */
#ifndef DSV4_VT_FUSED_H
#define DSV4_VT_FUSED_H

#include <stddef.h>

/* When `module` is the first half of a fused pair: 1 with its partner's module name and a label
 * of the fused module ("layers.0.attn.fused_wqa_wkv"); `expert` is set to 1 for a routed expert's
 * w1 + w3. Otherwise 0. */
int dsv4_vt_fused_partner(const char *module, char *partner, size_t pcap, char *fused, size_t fcap, int *expert);

#endif
