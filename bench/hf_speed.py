#!/usr/bin/env python3
"""transformers' eager DeepseekV4ForCausalLM on the tiny model, for the runner's speed ratio
(bench/bench_runner.c measures ours the same way): prefill tokens/s over 4 eval rows of 512 tokens
(one forward each) and decode tokens/s (256 single-token steps with the cache after a 64-token
prompt), fp32 on the GPU, best of 3 after a warm-up. The release weights are dequantized here
(FP8 e4m3 x e8m0 128x128 blocks, FP4 e2m1 x e8m0 per 32) and renamed to transformers' names
(spec/dsv4_architecture.md §2.5-2.6) by tests/interop/hf_load.py. Also prints the eval perplexity
of rows 0..3 as a check.
Usage: python3 bench/hf_speed.py [FIXTURE]"""
import math, os, sys, time
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "interop"))
from hf_load import load_model, load_rows  # noqa: E402  (the release -> transformers loader)

d = sys.argv[1] if len(sys.argv) > 1 else "fixtures/dsv4-tiny"
dev = "cuda"
model = load_model(d, torch.float32, dev)
rows = load_rows(d, "eval.tokens.safetensors").to(dev)

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
