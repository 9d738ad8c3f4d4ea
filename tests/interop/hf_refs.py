#!/usr/bin/env python3
"""Reference outputs from transformers' DeepseekV4ForCausalLM for the runner's tests, beyond the
trained fixture: small random configurations (other hc_mult, window, head counts, layer mixes,
index_topk, hash layers; few experts and a small vocabulary keep the files small) with random weights, a prefill of every position and a cached decode
(prefill P tokens, then single-token steps with the cache), in fp32 on the GPU machine.
Each case is written to tests/data/hfref/<case>/: config.json (release keys), model.safetensors
(transformers names, BF16 weights; the reference runs on exactly those values in fp32, the
routing tables and biases F32/I64), ref.safetensors (input_ids I32 [N], prefill logits F32 [N, V],
decode_start P as I32 [1], decode logits F32 [N - P, V]), and a line in meta.json.
Usage (repository root, GPU machine): python3 tests/interop/hf_refs.py [OUT]"""
import json, os, sys
import torch
import transformers
from safetensors.torch import save_file
from transformers import DeepseekV4Config, DeepseekV4ForCausalLM

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/data/hfref"
BASE = dict(architectures=["DeepseekV4ForCausalLM"], model_type="deepseek_v4", attention_bias=False, attention_dropout=0.0,
            bos_token_id=0, eos_token_id=1, hc_eps=1e-6, hc_sinkhorn_iters=20, hidden_act="silu", hidden_size=128,
            initializer_range=0.05, max_position_embeddings=65536, moe_intermediate_size=128, n_shared_experts=1,
            norm_topk_prob=True, num_key_value_heads=1, num_nextn_predict_layers=0, q_lora_rank=128, qk_rope_head_dim=64,
            head_dim=128, rms_norm_eps=1e-6, rope_theta=10000, compress_rope_theta=160000,
            rope_scaling=dict(beta_fast=32, beta_slow=1, factor=16, original_max_position_embeddings=65536, type="yarn"),
            routed_scaling_factor=1.5, scoring_func="sqrtsoftplus", swiglu_limit=10.0, tie_word_embeddings=False,
            topk_method="noaux_tc", torch_dtype="bfloat16", use_cache=True, vocab_size=256)
CASES = {
    # hc 2, 2 heads, CSA (hash) + HCA + SWA, window 8, top-4 of the compressed entries
    "hc2_csa_hca_swa": dict(hc_mult=2, num_attention_heads=2, o_groups=2, o_lora_rank=64, index_n_heads=2,
                            index_head_dim=64, index_topk=4, n_routed_experts=4, num_experts_per_tok=2,
                            num_hidden_layers=3, num_hash_layers=1, sliding_window=8, compress_ratios=[4, 128, 0],
                            seq=300, decode_start=260, seed=1),
    # hc 4, 4 heads, HCA + CSA + CSA, no hash layer, window 16, top-8, 6 experts top-3
    "hc4_hca_csa_csa": dict(hc_mult=4, num_attention_heads=4, o_groups=2, o_lora_rank=128, index_n_heads=4,
                            index_head_dim=128, index_topk=8, n_routed_experts=6, num_experts_per_tok=3,
                            num_hidden_layers=3, num_hash_layers=0, sliding_window=16, compress_ratios=[128, 4, 4],
                            seq=270, decode_start=250, seed=2),
    # short sequence: fewer tokens than one HCA block and than the window, 2 hash layers
    "short_seq": dict(hc_mult=4, num_attention_heads=2, o_groups=1, o_lora_rank=128, index_n_heads=2,
                      index_head_dim=64, index_topk=16, n_routed_experts=4, num_experts_per_tok=3,
                      num_hidden_layers=2, num_hash_layers=2, sliding_window=32, compress_ratios=[4, 128],
                      seq=23, decode_start=9, seed=3),
}

dev = "cuda" if torch.cuda.is_available() else "cpu"
meta = {"transformers": transformers.__version__, "torch": torch.__version__, "device": dev, "cases": {}}
for name, c in CASES.items():
    c = dict(c)
    N, P, seed = c.pop("seq"), c.pop("decode_start"), c.pop("seed")
    cfgd = dict(BASE, **c)
    # one ratio per decoder layer: no MTP block (num_nextn_predict_layers 0), transformers has none
    torch.manual_seed(seed)
    cfg = DeepseekV4Config.from_dict(dict(cfgd, num_nextn_predict_layers=0))
    model = DeepseekV4ForCausalLM(cfg).float()
    E, K = cfgd["n_routed_experts"], cfgd["num_experts_per_tok"]
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for n, p in model.named_parameters():  # exercise every term: sinks, position biases, hc bases, router bias
            if n.endswith("sinks") or n.endswith("position_bias") or n.endswith("hc_base") or n.endswith(".base"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for n, b in model.named_buffers():
            if n.endswith("e_score_correction_bias"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            if n.endswith("tid2eid"):
                b.copy_(torch.stack([torch.randperm(E, generator=g)[:K] for _ in range(b.shape[0])]))
        sd = {}
        for n, t in model.state_dict().items():
            if "inv_freq" in n:
                continue
            if t.dtype == torch.int64:
                sd[n] = t.contiguous()
            else:
                sd[n] = t.to(torch.bfloat16).contiguous()
                t.copy_(sd[n].float())  # the reference runs on the stored values
    model = model.to(dev).eval()
    ids = torch.randint(2, cfgd["vocab_size"], (1, N), generator=g).to(dev)
    with torch.no_grad():
        pre = model(ids, use_cache=False).logits[0].float().cpu()
        out = model(ids[:, :P], use_cache=True)
        pkv, dec = out.past_key_values, [out.logits[0, -1].float().cpu()]
        for p in range(P, N - 1):
            out = model(ids[:, p : p + 1], past_key_values=pkv, use_cache=True)
            pkv = out.past_key_values
            dec.append(out.logits[0, -1].float().cpu())
    dec = torch.stack(dec)  # logits at positions P-1 .. N-2
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    json.dump(cfgd, open(os.path.join(d, "config.json"), "w"), indent=2)
    save_file(sd, os.path.join(d, "model.safetensors"))
    save_file({"input_ids": ids[0].int().cpu().contiguous(), "prefill_logits": pre.contiguous(),
               "decode_start": torch.tensor([P], dtype=torch.int32), "decode_logits": dec.contiguous()},
              os.path.join(d, "ref.safetensors"))
    diff = (dec - pre[P - 1 : N - 1]).abs().max().item()
    meta["cases"][name] = {"seq": N, "decode_start": P, "seed": seed, "hf_decode_vs_prefill_max_abs": diff}
    print(f"{name}: N={N} P={P}, transformers decode vs its prefill max |diff| {diff:.3g}")
json.dump(meta, open(os.path.join(OUT, "meta.json"), "w"), indent=2)
