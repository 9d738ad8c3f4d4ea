"""The numbers the GPTQ benches (bench/gptq_*.sh) read from a dsv4-verify report (an artifact's
dsv4_verify.json, or `dsv4-verify --json`): the perplexity of artifact and source, the mean KL, the
same-top-1 rate and both teacher-forced MTP acceptance rates, rates in percent."""
import json


def _holder(d):  # the object of the report that holds the dynamic comparison (its "perplexity")
    if isinstance(d, dict):
        if isinstance(d.get("perplexity"), dict):
            return d
        for v in d.values():
            h = _holder(v)
            if h:
                return h
    return None


def pct(r):
    return 100 * r if r <= 1 else r


def metrics(path):
    ev = _holder(json.load(open(path)))
    if ev is None:
        raise SystemExit(f"{path}: the report holds no dynamic comparison (no perplexity)")
    mtp = ev["mtp"]
    return {"ppl": ev["perplexity"]["artifact"], "ppl_source": ev["perplexity"]["source"],
            "kl": ev["kl_divergence"]["mean"], "top1_pct": pct(ev["same_top1"]["rate"]),
            "accept_pct": pct(mtp["artifact"]["teacher_forced"]["rate"]),
            "accept_source_pct": pct(mtp["source"]["teacher_forced"]["rate"])}
