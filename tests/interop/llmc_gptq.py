#!/usr/bin/env python3
"""llm-compressor's GPTQ on the tiny model, the baseline that issue 6 compares our GPTQ with.

transformers' DeepseekV4ForCausalLM holds the release weights (tests/interop/hf_load.py); its fused
routed experts are linearized by llm-compressor's own `linearize_moe` into per-expert nn.Linear
gate_proj / up_proj / down_proj (DeepseekV4Experts is a registered MoE of llm-compressor 0.14), and
the logits are compared before and after. Then, on the routed experts' Linear modules only
(attention, shared experts, gate, lm_head stay as they are; the MTP block is not in transformers'
model), W4A16: symmetric INT4, groups of 128, minmax scales (--observer mse: llm-compressor's MSE grid):
  (a) the unquantized model,
  (b) GPTQModifier (actorder static, dampening 0.01, block 128) through `oneshot` with the sequential
      pipeline on the fixture's calibration rows (calib.tokens.safetensors, all 128 x 512 unless
      --rows), every expert calibrated on every token (llm-compressor's default
      moe_calibrate_all_experts) unless --routed-only; then saved compressed (pack-quantized) and
      reloaded: every packed expert weight decompressed by compressed-tensors, compared with the
      in-memory weight, and loaded into a fresh model for its own perplexity,
  (c) round-to-nearest: QuantizationModifier, same scheme.
Perplexity = exp(mean NLL) over the eval rows (eval.tokens.safetensors [64, 513]: input row[:512],
targets row[1:]), the wall time of each oneshot call, the versions and the module counts go to the
JSON file --out; each stage's result is written there as soon as it exists.
Usage: python3 tests/interop/llmc_gptq.py --out FILE [--fixture DIR] [--device cuda|cpu] [--rows N]
Exit 0 when every stage ran, 1 when one failed (its error is in the JSON), 2 on bad arguments."""
import argparse
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
import traceback

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TARGET = r"re:.*mlp\.experts\.\d+\.(gate|up|down)_proj$"
TARGET_RE = re.compile(TARGET[3:])
# a saved expert tensor: save_pretrained reverts transformers' deepseek_v4 load renames where their
# patterns match, so transformers 5.17 writes `model.layers.L.ffn.experts.E.wgate` (from `.wgate.` ->
# `.gate_proj.`), `.up_proj`, `.down_proj`; the release's w1/w3/w2 are accepted too
SAVED_RE = re.compile(r"(?:^|\.)layers\.(\d+)\.(?:mlp|ffn)\.experts\.(\d+)\."
                      r"(gate_proj|up_proj|down_proj|wgate|w1|w3|w2)\.weight_packed$")
PROJ = {"w1": "gate_proj", "wgate": "gate_proj", "w3": "up_proj", "w2": "down_proj"}


def log(msg):
    print(f"[llmc_gptq {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fixture", default="fixtures/dsv4-tiny", help="release-format model folder")
    ap.add_argument("--out", required=True, help="JSON results file")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                    help="model and weight dtype (float32 = the golden values' arithmetic)")
    ap.add_argument("--rows", type=int, default=None, help="calibration rows (default: all)")
    ap.add_argument("--eval-rows", type=int, default=None, help="eval rows (default: all)")
    ap.add_argument("--eval-batch", type=int, default=1, help="eval rows per forward")
    ap.add_argument("--dampening", type=float, default=0.01, help="GPTQ dampening_frac")
    ap.add_argument("--block-size", type=int, default=128, help="GPTQ block size")
    ap.add_argument("--group-size", type=int, default=128, help="INT4 group size")
    ap.add_argument("--actorder", default="static", choices=["static", "none"], help="GPTQ activation ordering")
    ap.add_argument("--observer", default="minmax", choices=["minmax", "mse"],
                    help="weight scale observer: minmax (llm-compressor's default, memoryless_minmax) or mse "
                         "(memoryless_mse: the grid search our recipes/w4a16.yaml uses)")
    ap.add_argument("--routed-only", action="store_true",
                    help="calibrate each expert on its routed tokens only (moe_calibrate_all_experts=False)")
    ap.add_argument("--skip-rtn", action="store_true", help="leave out (c)")
    ap.add_argument("--skip-save", action="store_true", help="leave out the save + reload of (b)")
    ap.add_argument("--save-dir", default=None, help="where (b) is saved (default: a temporary folder, removed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true", help="llm-compressor's INFO log on the console")
    a = ap.parse_args()
    for k in ("rows", "eval_rows"):
        v = getattr(a, k)
        if v is not None and v < 1:
            ap.error(f"--{k.replace('_', '-')} must be >= 1")
    if a.eval_batch < 1:
        ap.error("--eval-batch must be >= 1")
    if not os.path.isdir(os.path.dirname(os.path.abspath(a.out))):
        ap.error(f"--out {a.out}: its folder does not exist")
    if a.save_dir and os.path.exists(a.save_dir) and os.listdir(a.save_dir):
        ap.error(f"--save-dir {a.save_dir}: exists and is not empty")
    for f in ("config.json", "calib.tokens.safetensors", "eval.tokens.safetensors", "tokenizer.json",
              "tokenizer_config.json"):
        if not os.path.isfile(os.path.join(a.fixture, f)):
            ap.error(f"--fixture {a.fixture}: no {f} (expected the release layout of fixtures/dsv4-tiny)")
    return a


ARGS = parse_args()
# llm-compressor's console log: its warnings are echoed by Bench.sink instead, and its per-module
# METRIC lines (level 38) are summed into the JSON rather than printed
os.environ.setdefault("LLM_COMPRESSOR_LOG_LEVEL", "INFO" if ARGS.verbose else "ERROR")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_load import load_model, load_rows  # noqa: E402


class Run:
    """The results dict, written to --out after every stage; a failed stage records its error."""

    def __init__(self, path):
        self.path = path
        self.res = {"status": "running", "errors": {}}
        self.failed = False

    def write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.res, f, indent=2, sort_keys=False)
            f.write("\n")
        os.replace(tmp, self.path)

    def stage(self, name, fn, *a):
        log(f"stage {name}: start")
        t0 = time.perf_counter()
        try:
            out = fn(*a)
            log(f"stage {name}: done in {time.perf_counter() - t0:.1f} s")
            return out
        except Exception as e:  # recorded, the later stages still run where they can
            self.failed = True
            self.res["errors"][name] = f"{type(e).__name__}: {e}"
            log(f"stage {name}: FAILED: {type(e).__name__}: {e}")
            traceback.print_exc()
            return None
        finally:
            self.write()


def bad(msg):
    print(f"llmc_gptq: {msg}", file=sys.stderr)
    sys.exit(2)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def eval_ppl(model, rows, dev, batch):
    """exp(mean NLL) of rows[:, 1:] given rows[:, :-1], all positions, fp64 sum of fp32 NLLs."""
    nll, n = 0.0, 0
    model.eval()
    with torch.no_grad():
        for i in range(0, rows.shape[0], batch):
            r = rows[i:i + batch].to(dev)
            lg = model(input_ids=r[:, :-1], use_cache=False).logits.float()
            nll += F.cross_entropy(lg.reshape(-1, lg.shape[-1]), r[:, 1:].reshape(-1), reduction="sum").double().item()
            n += r[:, 1:].numel()
    mean = nll / n
    if not math.isfinite(mean):
        raise RuntimeError(f"eval NLL is not finite ({mean})")
    return {"ppl": math.exp(mean), "mean_nll": mean, "tokens": n}


def expert_linears(model):
    """name -> nn.Linear of the routed experts after linearization (the GPTQ targets)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and TARGET_RE.match(n)}


def quantized_modules(model):
    return {n: m for n, m in model.named_modules() if getattr(m, "quantization_scheme", None) is not None}


def weight_args(with_actorder):
    from compressed_tensors.quantization import QuantizationArgs
    return QuantizationArgs(num_bits=4, type="int", symmetric=True, strategy="group", group_size=ARGS.group_size,
                            actorder=(ARGS.actorder if with_actorder and ARGS.actorder != "none" else None),
                            observer="memoryless_" + ARGS.observer)


def scheme_groups(with_actorder):
    from compressed_tensors.quantization import QuantizationScheme
    return {"group_0": QuantizationScheme(targets=[TARGET], weights=weight_args(with_actorder))}


def grid_check(model):
    """Largest |W - fake_quant(W)| over the quantized modules: 0 where oneshot left the quantized
    values in the weights (GPTQ does); RTN keeps the original weights and quantizes them in the
    forward, so its value is the rounding error."""
    from compressed_tensors.quantization.lifecycle.forward import fake_quantize
    worst = 0.0
    with torch.no_grad():
        for _, m in quantized_modules(model).items():
            w = m.weight
            q = fake_quantize(w, m.weight_scale, getattr(m, "weight_zero_point", None), m.quantization_scheme.weights)
            worst = max(worst, (q.float() - w.float()).abs().max().item())
    return worst


class Bench:
    """The fixture's rows, the device and the stages; self.res is the Run's results dict."""

    def __init__(self, run):
        self.run = run
        self.res = run.res
        a = ARGS
        if a.device.startswith("cuda") and not torch.cuda.is_available():
            bad(f"--device {a.device}: torch {torch.__version__} sees no GPU (--device cpu runs on the CPU)")
        self.dev = torch.device(a.device)
        self.dtype = getattr(torch, a.dtype)
        torch.manual_seed(a.seed)
        self.calib = load_rows(a.fixture, "calib.tokens.safetensors")
        self.eval = load_rows(a.fixture, "eval.tokens.safetensors")
        if a.rows is not None and a.rows > self.calib.shape[0]:
            bad(f"--rows {a.rows}: {a.fixture}/calib.tokens.safetensors has {self.calib.shape[0]} rows")
        if a.eval_rows is not None and a.eval_rows > self.eval.shape[0]:
            bad(f"--eval-rows {a.eval_rows}: {a.fixture}/eval.tokens.safetensors has {self.eval.shape[0]} rows")
        self.calib = self.calib[: a.rows or self.calib.shape[0]]
        self.eval = self.eval[: a.eval_rows or self.eval.shape[0]]
        self.work = tempfile.mkdtemp(prefix="llmc_gptq_")
        self.warnings = []
        self.losses = []

    def sink(self, msg):
        """loguru sink for llm-compressor's records of level WARNING and up: GPTQ's per-module
        `error` METRIC values are kept (their sum goes to the JSON), warnings echoed and kept."""
        rec = msg.record
        text = rec["message"]
        if rec["level"].name == "METRIC":
            if text.startswith("error "):
                self.losses.append(float(text.split()[1]))
            return
        line = f"{rec['level'].name} {rec['function']}: {text}"[:400]
        if not ARGS.verbose and line not in self.warnings:  # each distinct one once on the console
            log(f"llm-compressor {line[:300]}")
        self.warnings.append(line)

    # ---- setup ----
    def versions(self):
        import compressed_tensors
        import datasets
        import llmcompressor
        import pyarrow
        import safetensors
        import transformers
        from loguru import logger
        logger.add(self.sink, level="WARNING")
        v = {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__,
             "safetensors": safetensors.__version__, "llmcompressor": llmcompressor.__version__,
             "compressed_tensors": compressed_tensors.__version__, "datasets": datasets.__version__,
             "pyarrow": pyarrow.__version__,
             "device": torch.cuda.get_device_name(self.dev) if self.dev.type == "cuda" else "cpu"}
        log("versions: " + ", ".join(f"{k} {x}" for k, x in v.items()))
        self.res["versions"] = v
        self.res["setup"] = {
            "fixture": ARGS.fixture, "dtype": ARGS.dtype, "device": str(self.dev), "seed": ARGS.seed,
            "calib_rows": int(self.calib.shape[0]), "calib_len": int(self.calib.shape[1]),
            "eval_rows": int(self.eval.shape[0]), "eval_len": int(self.eval.shape[1] - 1),
            "targets": TARGET, "scheme": "W4A16 int4 symmetric, group %d, %s (memoryless) scales" % (ARGS.group_size, ARGS.observer),
            "gptq": {"actorder": ARGS.actorder, "dampening_frac": ARGS.dampening, "block_size": ARGS.block_size},
            "moe_calibrate_all_experts": not ARGS.routed_only, "pipeline": "sequential", "batch_size": 1}
        golden = os.path.join(ARGS.fixture, "golden.json")
        if os.path.exists(golden):
            with open(golden) as f:
                self.res["golden_ppl"] = json.load(f).get("ppl")

    def model(self):
        """A fresh unquantized model with linearized experts, its config and tokenizer in self.work
        (oneshot re-reads the config by name_or_path and must see no quantization_config)."""
        m = load_model(ARGS.fixture, self.dtype, self.dev)
        self._named(m)
        from llmcompressor.modeling.moe.linearize import linearize_moe
        linearize_moe(m)
        return m.to(self.dev).eval()

    def _named(self, m):
        m.config.save_pretrained(self.work)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(ARGS.fixture, f), self.work)
        m.config._name_or_path = self.work
        m.name_or_path = self.work

    def tokenizer(self):
        from transformers import AutoTokenizer
        return AutoTokenizer.from_pretrained(self.work)

    # ---- (a) ----
    def stage_a(self):
        m = load_model(ARGS.fixture, self.dtype, self.dev)
        self._named(m)
        with torch.no_grad():
            x = self.eval[:1, :-1].to(self.dev)
            ref = m(input_ids=x, use_cache=False).logits.float()
        a = eval_ppl(m, self.eval, self.dev, ARGS.eval_batch)
        log(f"(a) unquantized: ppl {a['ppl']:.6f} (golden.json {self.res.get('golden_ppl')})")
        self.res["a_unquantized"] = a
        from llmcompressor.modeling.moe.linearize import linearize_moe
        t0 = time.perf_counter()
        linearize_moe(m)
        m = m.to(self.dev).eval()
        t_lin = time.perf_counter() - t0
        with torch.no_grad():
            lin = m(input_ids=x, use_cache=False).logits.float()
        diff = (lin - ref).abs().max().item()
        n = len(expert_linears(m))
        lp = eval_ppl(m, self.eval, self.dev, ARGS.eval_batch)
        log(f"linearized experts: {n} Linear modules; eval row 0 logits max |diff| {diff:.3e} "
            f"(max |logit| {ref.abs().max().item():.2f}); ppl {lp['ppl']:.6f}")
        self.res["linearize"] = {"expert_linears": n, "row0_logits_max_abs_diff": diff,
                                 "row0_logits_max_abs": ref.abs().max().item(), "ppl": lp["ppl"], "seconds": t_lin}
        want = self.res["a_unquantized"]
        if n == 0 or abs(lp["ppl"] - want["ppl"]) > 5e-3 * want["ppl"]:
            raise RuntimeError(f"linearized experts do not reproduce the model: {n} expert Linear modules, "
                               f"ppl {lp['ppl']:.6f} vs {want['ppl']:.6f}")

    # ---- (b), (c) ----
    def oneshot(self, m, modifier, calibrate):
        from llmcompressor import oneshot
        kw = {}
        if calibrate:
            data = [{"input_ids": r} for r in self.calib]
            kw = dict(dataset=torch.utils.data.DataLoader(data, batch_size=1, shuffle=False),
                      num_calibration_samples=len(data), pipeline="sequential",
                      moe_calibrate_all_experts=not ARGS.routed_only)
        sync(self.dev)
        t0 = time.perf_counter()
        oneshot(model=m, recipe=[modifier], processor=self.tokenizer(), **kw)
        sync(self.dev)
        return time.perf_counter() - t0

    def quantized_summary(self, m, key, seconds):
        q = quantized_modules(m)
        outside = sorted(n for n in q if not TARGET_RE.match(n))
        r = self.eval_ppl_logged(m, key)
        r.update({"oneshot_seconds": seconds, "quantized_modules": len(q), "quantized_outside_targets": outside,
                  "weights_off_grid_max": grid_check(m)})
        r["explicit_fake_quant"] = self.eval_ppl_logged(self.explicit(m), key + " weights fake-quantized explicitly")
        if outside:
            raise RuntimeError(f"{len(outside)} modules outside the targets were quantized: {outside[:4]}")
        if len(q) != self.res["linearize"]["expert_linears"]:
            raise RuntimeError(f"{len(q)} quantized modules, expected {self.res['linearize']['expert_linears']}")
        return r

    def explicit(self, m):
        """A fresh unquantized model whose expert weights are compressed-tensors' fake_quantize of m's
        quantized modules: its perplexity must equal m's (forward-time QDQ of the same values)."""
        from compressed_tensors.quantization.lifecycle.forward import fake_quantize
        fresh = self.model()
        fm = expert_linears(fresh)
        with torch.no_grad():
            for n, q in quantized_modules(m).items():
                fm[n].weight.copy_(fake_quantize(q.weight, q.weight_scale, getattr(q, "weight_zero_point", None),
                                                 q.quantization_scheme.weights))
        return fresh

    def eval_ppl_logged(self, m, key):
        r = eval_ppl(m, self.eval, self.dev, ARGS.eval_batch)
        log(f"{key}: ppl {r['ppl']:.6f}")
        return r

    def stage_b(self):
        from llmcompressor.modifiers.gptq import GPTQModifier
        m = self.model()
        mod = GPTQModifier(config_groups=scheme_groups(True), ignore=["lm_head"], block_size=ARGS.block_size,
                           dampening_frac=ARGS.dampening, actorder=None if ARGS.actorder == "none" else ARGS.actorder)
        nw = len(self.warnings)
        self.losses = []
        secs = self.oneshot(m, mod, True)
        log(f"(b) GPTQ oneshot: {secs:.2f} s")
        r = self.quantized_summary(m, "(b) GPTQ", secs)
        r["rtn_fallback_warnings"] = [w for w in self.warnings[nw:] if "round-to-nearest" in w]
        r["gptq_loss"] = {"modules": len(self.losses), "sum": sum(self.losses),
                          "note": "llm-compressor's per-module GPTQ `error` METRIC values, summed; its H is "
                                  "sum(2 x x^T) / number of forward calls (one per calibration row), not per token"}
        self.res["b_gptq"] = r
        self.gptq_model = m

    def stage_c(self):
        from llmcompressor.modifiers.quantization import QuantizationModifier
        m = self.model()
        secs = self.oneshot(m, QuantizationModifier(config_groups=scheme_groups(False), ignore=["lm_head"]), False)
        log(f"(c) RTN oneshot: {secs:.2f} s")
        self.res["c_rtn"] = self.quantized_summary(m, "(c) RTN", secs)

    # ---- (b) saved and reloaded ----
    def stage_reload(self):
        from compressed_tensors.compressors.pack_quantized.base import PackedQuantizationCompressor
        from compressed_tensors.quantization import QuantizationConfig
        from safetensors.torch import load_file
        m = self.gptq_model
        mods = {n: x.weight.detach().clone() for n, x in expert_linears(m).items()}  # save compresses in place
        out = ARGS.save_dir or os.path.join(self.work, "gptq")
        t0 = time.perf_counter()
        m.save_pretrained(out, save_compressed=True)
        t_save = time.perf_counter() - t0
        with open(os.path.join(out, "config.json")) as f:
            qc = json.load(f).get("quantization_config")
        if qc is None:
            raise RuntimeError(f"{out}/config.json: no quantization_config")
        qcfg = QuantizationConfig.model_validate(qc)
        if len(qcfg.config_groups) != 1:
            raise RuntimeError(f"{out}/config.json: expected one config group, got {list(qcfg.config_groups)}")
        scheme = next(iter(qcfg.config_groups.values()))
        files = sorted(f for f in os.listdir(out) if f.endswith(".safetensors"))
        sd = {}
        for f in files:
            sd.update(load_file(os.path.join(out, f)))
        got = {}
        for k in sd:
            mm = SAVED_RE.search(k)
            if not mm:
                continue
            name = f"model.layers.{mm.group(1)}.mlp.experts.{mm.group(2)}.{PROJ.get(mm.group(3), mm.group(3))}"
            p = k[: -len("weight_packed")]
            part = {n: sd[p + n] for n in ("weight_packed", "weight_scale", "weight_shape")}
            if p + "weight_zero_point" in sd:
                part["weight_zero_point"] = sd[p + "weight_zero_point"]
            got[name] = PackedQuantizationCompressor.decompress(part, scheme)["weight"]
        missing = sorted(set(mods) - set(got))
        if missing or not got:
            raise RuntimeError(f"{out}: {len(got)} packed expert weights found, {len(missing)} targets missing "
                               f"(e.g. {missing[:3]}); keys look like {sorted(sd)[:3]}")
        worst, same = 0.0, 0
        for n, w in got.items():
            d = (w.float().to(self.dev) - mods[n].float()).abs().max().item()
            worst, same = max(worst, d), same + (d == 0.0)
        log(f"reload: {len(got)} packed expert weights decompressed, {same} equal to the in-memory weights, "
            f"max |diff| {worst:.3e}")
        fresh = self.model()
        fm = expert_linears(fresh)
        with torch.no_grad():
            for n, w in got.items():
                fm[n].weight.copy_(w.to(fm[n].weight.dtype))
        r = self.eval_ppl_logged(fresh, "(b) GPTQ saved + reloaded")
        r.update({"save_seconds": t_save, "format": qc.get("format"), "files": files,
                  "packed_expert_weights": len(got), "equal_to_in_memory": same, "max_abs_diff_to_in_memory": worst,
                  "example_keys": sorted(k for k in sd if SAVED_RE.search(k))[:3]})
        self.res["b_gptq_reloaded"] = r


def main():
    run = Run(ARGS.out)
    b = Bench(run)
    run.write()
    run.res["command"] = " ".join(sys.argv)
    run.stage("versions", b.versions)
    if "versions" in run.res["errors"]:
        run.res["status"] = "failed"
        run.write()
        return 1
    run.stage("a_unquantized", b.stage_a)
    if "a_unquantized" not in run.res["errors"]:
        run.stage("b_gptq", b.stage_b)
        if not ARGS.skip_save and "b_gptq" not in run.res["errors"]:
            run.stage("b_gptq_reloaded", b.stage_reload)
        if not ARGS.skip_rtn:
            run.stage("c_rtn", b.stage_c)
    if ARGS.save_dir is None:
        shutil.rmtree(b.work, ignore_errors=True)
    r = run.res
    if all(k in r for k in ("a_unquantized", "b_gptq")):
        line = f"ppl: (a) unquantized {r['a_unquantized']['ppl']:.6f}  (b) GPTQ {r['b_gptq']['ppl']:.6f}"
        if "b_gptq_reloaded" in r:
            line += f" (reloaded {r['b_gptq_reloaded']['ppl']:.6f})"
        if "c_rtn" in r:
            line += f"  (c) RTN {r['c_rtn']['ppl']:.6f}"
        log(line)
        log(f"oneshot wall: GPTQ {r['b_gptq']['oneshot_seconds']:.2f} s"
            + (f", RTN {r['c_rtn']['oneshot_seconds']:.2f} s" if "c_rtn" in r else ""))
    r["warnings"] = b.warnings[:50]
    r["status"] = "failed" if run.failed else "ok"
    run.write()
    log(f"results: {ARGS.out} (status {r['status']})")
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
