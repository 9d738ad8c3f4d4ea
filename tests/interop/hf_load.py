"""The release checkpoint (FP8 / FP4 weights, upstream names) loaded into transformers'
DeepseekV4ForCausalLM: every weight dequantized to float (FP8 e4m3 x e8m0 per 128x128 block, FP4
e2m1 x e8m0 per 32 along the input dim), renamed to transformers' module names
(spec/dsv4_architecture.md §2.5-2.6), routed experts stacked into the fused 3-D
`mlp.experts.gate_up_proj` [E, 2I, H] (w1 then w3) and `mlp.experts.down_proj` [E, H, I].
The MTP block is not part of transformers' model and is not loaded. Used by bench/hf_speed.py and
tests/interop/llmc_gptq.py; needs torch, safetensors and transformers with `deepseek_v4`."""
import json
import os

import torch
from safetensors.torch import load_file
from transformers import DeepseekV4Config, DeepseekV4ForCausalLM

E2M1 = torch.tensor([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6])

# upstream top-level name -> transformers name
RENAME = [("embed.weight", "model.embed_tokens.weight"), ("head.weight", "lm_head.weight"),
          ("norm.weight", "model.norm.weight"), ("hc_head_fn", "model.hc_head.hc_fn"),
          ("hc_head_base", "model.hc_head.hc_base"), ("hc_head_scale", "model.hc_head.hc_scale")]
# upstream per-layer prefix -> transformers prefix (first match wins)
SUBST = [("attn_norm", "input_layernorm"), ("ffn_norm", "post_attention_layernorm"), ("hc_attn_", "attn_hc."),
         ("hc_ffn_", "ffn_hc."), ("attn.attn_sink", "self_attn.sinks"), ("attn.wq_a", "self_attn.q_a_proj"),
         ("attn.q_norm", "self_attn.q_a_norm"), ("attn.wq_b", "self_attn.q_b_proj"), ("attn.wkv", "self_attn.kv_proj"),
         ("attn.kv_norm", "self_attn.kv_norm"), ("attn.wo_a", "self_attn.o_a_proj"), ("attn.wo_b", "self_attn.o_b_proj"),
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


def load_config(d):
    """transformers' config from the release config.json, its FP8 quantization_config dropped
    (the weights are handed over dequantized)."""
    path = os.path.join(d, "config.json")
    with open(path) as f:
        cfg = DeepseekV4Config.from_dict(json.load(f))
    cfg.quantization_config = None
    return cfg


def load_release_state(d):
    """All tensors of the release shards model-*.safetensors in folder d, upstream names."""
    sd = {}
    shards = sorted(f for f in os.listdir(d) if f.startswith("model-") and f.endswith(".safetensors"))
    if not shards:
        raise SystemExit(f"hf_load: {d}: no model-*.safetensors shards (expected the release layout)")
    for f in shards:
        sd.update(load_file(os.path.join(d, f)))
    return sd


def _e8m0(s):
    return torch.exp2(s.view(torch.uint8).float() - 127)


def dequant(sd, name):
    """Float32 value of release tensor `name`: FP4 (I8 pairs, low nibble first) x e8m0 per 32,
    FP8 x e8m0 per 128x128 block, or the tensor itself where it has no `.scale`."""
    w = sd[name]
    s = sd.get(name[:-len(".weight")] + ".scale")
    if s is None:
        return w.float()
    if w.dtype == torch.int8:
        b = w.view(torch.uint8)
        codes = torch.stack([b & 15, b >> 4], -1).reshape(w.shape[0], -1).long()
        return E2M1[codes] * _e8m0(s).repeat_interleave(32, 1)[:, : codes.shape[1]]
    sc = _e8m0(s).repeat_interleave(128, 0).repeat_interleave(128, 1)[: w.shape[0], : w.shape[1]]
    return w.float() * sc


def hf_state_dict(sd, cfg):
    """transformers' state dict (float32) of the main model from the release tensors."""
    hf = {}
    for a, b in RENAME:
        hf[b] = sd[a].float()
    for i in range(cfg.num_hidden_layers):
        p = f"layers.{i}."
        for k in [k for k in sd if k.startswith(p) and not k.endswith(".scale") and ".experts." not in k]:
            n = k[len(p):]
            for a, b in SUBST:
                if n.startswith(a):
                    n = b + n[len(a):]
                    break
            v = sd[k] if k.endswith("tid2eid") else (dequant(sd, k) if k.endswith(".weight") else sd[k].float())
            hf[f"model.layers.{i}.{n}"] = v
        E = cfg.n_routed_experts
        hf[f"model.layers.{i}.mlp.experts.gate_up_proj"] = torch.stack(
            [torch.cat([dequant(sd, f"{p}ffn.experts.{e}.w1.weight"), dequant(sd, f"{p}ffn.experts.{e}.w3.weight")])
             for e in range(E)])
        hf[f"model.layers.{i}.mlp.experts.down_proj"] = torch.stack(
            [dequant(sd, f"{p}ffn.experts.{e}.w2.weight") for e in range(E)])
    return hf


def load_model(d, dtype=torch.float32, device="cpu"):
    """DeepseekV4ForCausalLM holding the release weights of folder d, in eval mode on `device`.
    Exits naming the tensors when the state dict does not match the model."""
    cfg = load_config(d)
    cfg.dtype = dtype
    hf = hf_state_dict(load_release_state(d), cfg)
    model = DeepseekV4ForCausalLM(cfg).float()
    missing, unexpected = model.load_state_dict(hf, strict=False)
    missing = [m for m in missing if "inv_freq" not in m]
    if missing or unexpected:
        raise SystemExit(f"hf_load: {d}: state dict mismatch: missing {missing[:5]} unexpected {unexpected[:5]}")
    return model.to(device=device, dtype=dtype).eval()


def load_rows(d, name):
    """`input_ids` of token-row file `name` in folder d as int64 [rows, len]."""
    path = os.path.join(d, name)
    t = load_file(path)
    if "input_ids" not in t or t["input_ids"].dim() != 2:
        raise SystemExit(f"hf_load: {path}: expected a 2-D tensor `input_ids`")
    return t["input_ids"].long()
