#!/usr/bin/env python3
"""transformers' eager DeepseekV4ForCausalLM on the tiny model, for the runner's speed ratio
(bench/bench_runner.c measures ours the same way): prefill tokens/s over 4 eval rows of 512 tokens
(one forward each) and decode tokens/s (256 single-token steps with the cache after a 64-token
prompt), fp32 on the GPU, best of 3 after a warm-up. The release weights are dequantized here
(FP8 e4m3 x e8m0 128x128 blocks, FP4 e2m1 x e8m0 per 32) and renamed to transformers' names
(spec/dsv4_architecture.md §2.5-2.6). Also prints the eval perplexity of rows 0..3 as a check.
Usage: python3 bench/hf_speed.py [FIXTURE]"""
import json, math, os, sys, time
import torch
from safetensors.torch import load_file
from transformers import DeepseekV4Config, DeepseekV4ForCausalLM

d = sys.argv[1] if len(sys.argv) > 1 else "fixtures/dsv4-tiny"
dev = "cuda"
cfg = DeepseekV4Config.from_dict(json.load(open(os.path.join(d, "config.json"))))
cfg.quantization_config = None
sd = {}
for f in sorted(os.listdir(d)):
    if f.startswith("model-") and f.endswith(".safetensors"):
        sd.update(load_file(os.path.join(d, f)))
E2M1 = torch.tensor([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6])

def e8m0(s):
    return torch.exp2(s.view(torch.uint8).float() - 127)

def deq(name):
    w = sd[name]
    s = sd.get(name[:-len(".weight")] + ".scale")
    if s is None:
        return w.float()
    if w.dtype == torch.int8:  # FP4 experts: low nibble first
        b = w.view(torch.uint8)
        codes = torch.stack([b & 15, b >> 4], -1).reshape(w.shape[0], -1).long()
        return E2M1[codes] * e8m0(s).repeat_interleave(32, 1)[:, : codes.shape[1]]
    sc = e8m0(s).repeat_interleave(128, 0).repeat_interleave(128, 1)[: w.shape[0], : w.shape[1]]
    return w.float() * sc

ren = [("embed.weight", "model.embed_tokens.weight"), ("head.weight", "lm_head.weight"), ("norm.weight", "model.norm.weight"),
       ("hc_head_fn", "model.hc_head.hc_fn"), ("hc_head_base", "model.hc_head.hc_base"), ("hc_head_scale", "model.hc_head.hc_scale")]
sub = [("attn_norm", "input_layernorm"), ("ffn_norm", "post_attention_layernorm"), ("hc_attn_", "attn_hc."), ("hc_ffn_", "ffn_hc."),
       ("attn.attn_sink", "self_attn.sinks"), ("attn.wq_a", "self_attn.q_a_proj"), ("attn.q_norm", "self_attn.q_a_norm"),
       ("attn.wq_b", "self_attn.q_b_proj"), ("attn.wkv", "self_attn.kv_proj"), ("attn.kv_norm", "self_attn.kv_norm"),
       ("attn.wo_a", "self_attn.o_a_proj"), ("attn.wo_b", "self_attn.o_b_proj"),
       ("attn.indexer.compressor.wkv", "self_attn.compressor.indexer.kv_proj"),
       ("attn.indexer.compressor.wgate", "self_attn.compressor.indexer.gate_proj"),
       ("attn.indexer.compressor.norm", "self_attn.compressor.indexer.kv_norm"),
       ("attn.indexer.compressor.ape", "self_attn.compressor.indexer.position_bias"),
       ("attn.indexer.wq_b", "self_attn.compressor.indexer.q_b_proj"),
       ("attn.indexer.weights_proj", "self_attn.compressor.indexer.scorer.weights_proj"),
       ("attn.compressor.wkv", "self_attn.compressor.kv_proj"), ("attn.compressor.wgate", "self_attn.compressor.gate_proj"),
       ("attn.compressor.norm", "self_attn.compressor.kv_norm"), ("attn.compressor.ape", "self_attn.compressor.position_bias"),
       ("ffn.gate.bias", "mlp.gate.e_score_correction_bias"), ("ffn.gate.tid2eid", "mlp.gate.tid2eid"),
       ("ffn.gate.weight", "mlp.gate.weight"), ("ffn.shared_experts.w1", "mlp.shared_experts.gate_proj"),
       ("ffn.shared_experts.w3", "mlp.shared_experts.up_proj"), ("ffn.shared_experts.w2", "mlp.shared_experts.down_proj")]
hf = {}
for a, b in ren:
    hf[b] = sd[a].float()
for i in range(cfg.num_hidden_layers):
    p = f"layers.{i}."
    for k in [k for k in sd if k.startswith(p) and not k.endswith(".scale") and ".experts." not in k]:
        n = k[len(p):]
        for a, b in sub:
            if n.startswith(a):
                n = b + n[len(a):]
                break
        n = n.replace("attn_hc.fn", "attn_hc.fn")
        v = sd[k] if k.endswith("tid2eid") else (deq(k) if k.endswith(".weight") else sd[k].float())
        hf[f"model.layers.{i}.{n}"] = v
    E = cfg.n_routed_experts
    hf[f"model.layers.{i}.mlp.experts.gate_up_proj"] = torch.stack(
        [torch.cat([deq(f"{p}ffn.experts.{e}.w1.weight"), deq(f"{p}ffn.experts.{e}.w3.weight")]) for e in range(E)])
    hf[f"model.layers.{i}.mlp.experts.down_proj"] = torch.stack([deq(f"{p}ffn.experts.{e}.w2.weight") for e in range(E)])
model = DeepseekV4ForCausalLM(cfg).float()
missing, unexpected = model.load_state_dict(hf, strict=False)
missing = [m for m in missing if "inv_freq" not in m]
if missing or unexpected:
    sys.exit(f"hf_speed: state dict mismatch: missing {missing[:5]} unexpected {unexpected[:5]}")
model = model.to(dev).eval()
rows = load_file(os.path.join(d, "eval.tokens.safetensors"))["input_ids"].long().to(dev)

def sync():
    torch.cuda.synchronize()

with torch.no_grad():
    nll = 0.0
    for r in range(4):
        lg = model(rows[r : r + 1, :512], use_cache=False).logits.float()
        nll += torch.nn.functional.cross_entropy(lg[0], rows[r, 1:513], reduction="sum").item()
    print(f"transformers eval rows 0..3: ppl {math.exp(nll / 2048):.6f}")
    best_p = best_d = 1e30
    for it in range(4):
        sync(); t0 = time.perf_counter()
        for r in range(4):
            model(rows[r : r + 1, :512], use_cache=False)
        sync(); t1 = time.perf_counter()
        out = model(rows[:1, :64], use_cache=True)
        pkv = out.past_key_values
        sync(); t2 = time.perf_counter()
        for p in range(64, 320):
            out = model(rows[:1, p : p + 1], past_key_values=pkv, use_cache=True)
            pkv = out.past_key_values
        sync(); t3 = time.perf_counter()
        if it:
            best_p, best_d = min(best_p, t1 - t0), min(best_d, t3 - t2)
    print(f"transformers eager {dev}  prefill {2048 / best_p:9.0f} tokens/s (4 x 512)   decode {256 / best_d:8.1f} tokens/s (256 steps)")
