#!/usr/bin/env python3
"""Writes the test tokenizer files of tests/data/tokenizer/ (run from the repository root; needs the
`tokenizers` package, e.g. pip install --target /tmp/tk tokenizers==0.23.2 and PYTHONPATH=/tmp/tk):

deepseek_style.tokenizer.json
    DeepSeek-V3's tokenizer.json pipeline exactly (empty normalizer Sequence, the three isolating
    Split regexes and ByteLevel(use_regex=false), ByteLevel decoder, BOS TemplateProcessing, its
    added tokens: BOS / EOS / pad, the 800 place holders, FIM, chat and tool tokens) around a small
    byte-level BPE trained here on corpus.jsonl plus extra CJK text (about 700 merges), so that the
    DeepSeek pre-tokenizer can be tested without the 7 MB file. Its ids are not DeepSeek's.
cl100k_style.tokenizer.json
    The fixture's vocabulary and merges under a GPT-4 (cl100k) Split regex with (?i:...), added
    tokens with lstrip / rstrip / single_word / normalized, and a BOS ... EOS template.
behaviors.tokenizer.json
    The fixture's vocabulary and merges (ignore_merges on) under the o200k regex followed by every
    Split behavior, an inverted Split, Digits, ByteLevel with add_prefix_space, no decoder, and a
    Sequence post-processor: the less common paths of the pipeline.
Everything is deterministic; the files are committed and this script documents how they were made."""
import json

from tokenizers import Tokenizer, pre_tokenizers, trainers

D = "tests/data/tokenizer/"
BOS, EOS, PAD = "<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>", "<\uff5c\u2581pad\u2581\uff5c>"

# DeepSeek-V3 tokenizer.json, verbatim.
DS_NORMALIZER = {"type": "Sequence", "normalizers": []}
DS_PRE = {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": False},
    {"type": "Split", "pattern": {"Regex": "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+"}, "behavior": "Isolated",
     "invert": False},
    {"type": "Split", "pattern": {"Regex": "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?"
                                           "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
     "behavior": "Isolated", "invert": False},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
DS_DECODER = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
DS_TAIL = ["<\uff5cfim\u2581hole\uff5c>", "<\uff5cfim\u2581begin\uff5c>", "<\uff5cfim\u2581end\uff5c>", "<\uff5cUser\uff5c>",
           "<\uff5cAssistant\uff5c>", "<|EOT|>", "<\uff5ctool\u2581calls\u2581begin\uff5c>", "<\uff5ctool\u2581calls\u2581end\uff5c>",
           "<\uff5ctool\u2581call\u2581begin\uff5c>", "<\uff5ctool\u2581call\u2581end\uff5c>",
           "<\uff5ctool\u2581outputs\u2581begin\uff5c>", "<\uff5ctool\u2581outputs\u2581end\uff5c>",
           "<\uff5ctool\u2581output\u2581begin\uff5c>", "<\uff5ctool\u2581output\u2581end\uff5c>", "<\uff5ctool\u2581sep\uff5c>"]

CL100K = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
O200K = ("[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
         "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
         "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")

EXTRA_CJK = [
    "\u4eba\u5de5\u667a\u80fd\u662f\u8ba1\u7b97\u673a\u79d1\u5b66\u7684\u4e00\u4e2a\u5206\u652f\uff0c\u5b83\u4f01\u56fe\u4e86\u89e3\u667a\u80fd\u7684\u5b9e\u8d28\u3002",
    "\u5927\u8bed\u8a00\u6a21\u578b\u901a\u8fc7\u5b66\u4e60\u5927\u91cf\u6587\u672c\u6765\u9884\u6d4b\u4e0b\u4e00\u4e2a\u8bcd\u3002",
    "\u6211\u4eec\u4eca\u5929\u53bb\u516c\u56ed\uff0c\u660e\u5929\u53bb\u5b66\u6821\uff0c\u540e\u5929\u53bb\u5de5\u4f5c\u3002",
    "\u3053\u3093\u306b\u3061\u306f\u3001\u4e16\u754c\u3002\u30b3\u30f3\u30d4\u30e5\u30fc\u30bf\u30fc\u3068\u30d7\u30ed\u30b0\u30e9\u30e0\u3002",
]


def added(i, content, special, normalized=None, lstrip=False, rstrip=False, single_word=False):
    return {"id": i, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": (not special) if normalized is None else normalized, "special": special}


def template(single_pre, single_post, specials):
    single = [{"SpecialToken": {"id": s, "type_id": 0}} for s in single_pre] + [{"Sequence": {"id": "A", "type_id": 0}}] + \
             [{"SpecialToken": {"id": s, "type_id": 0}} for s in single_post]
    pair = single + [{"Sequence": {"id": "B", "type_id": 1}}]
    return {"type": "TemplateProcessing", "single": single, "pair": pair,
            "special_tokens": {s: {"id": s, "ids": [i], "tokens": [s]} for s, i in specials}}


def write(name, obj):
    text = json.dumps(obj, ensure_ascii=False, indent=1)
    Tokenizer.from_str(text)  # must load in the reference library
    with open(D + name, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    print(f"{name}: {len(obj['model']['vocab'])} vocab, {len(obj['model']['merges'])} merges, "
          f"{len(obj['added_tokens'])} added tokens")


def deepseek_style(corpus):
    base = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": DS_NORMALIZER,
            "pre_tokenizer": DS_PRE, "post_processor": None, "decoder": DS_DECODER,
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": {}, "merges": []}}
    tok = Tokenizer.from_str(json.dumps(base))
    tr = trainers.BpeTrainer(vocab_size=3 + 256 + 700, show_progress=False, special_tokens=[BOS, EOS, PAD],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus + EXTRA_CJK * 6, tr)
    model = json.loads(tok.to_str())["model"]
    n = len(model["vocab"])
    toks = [added(0, BOS, True, False), added(1, EOS, True, False), added(2, PAD, True, False)]
    toks += [added(n + k, f"<\uff5cplace\u2581holder\u2581no\u2581{k}\uff5c>", True, False) for k in range(800)]
    toks += [added(n + 800 + k, c, c == "<|EOT|>") for k, c in enumerate(DS_TAIL)]
    obj = dict(base, added_tokens=toks, model=model, post_processor=template([BOS], [], [(BOS, 0)]))
    write("deepseek_style.tokenizer.json", obj)


def fixture_based(name, pre, decoder, post, extra_added, ignore_merges=False):
    fx = json.load(open("fixtures/dsv4-tiny/tokenizer.json", encoding="utf-8"))
    model = dict(fx["model"], ignore_merges=ignore_merges)
    obj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": fx["added_tokens"] + extra_added,
           "normalizer": None, "pre_tokenizer": pre, "post_processor": post, "decoder": decoder, "model": model}
    write(name, obj)


def main():
    corpus = [json.loads(l)["text"] for l in open(D + "corpus.jsonl", encoding="utf-8")]
    deepseek_style(corpus)
    bl_dec = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    n = 1024
    fixture_based("cl100k_style.tokenizer.json",
                  {"type": "Sequence", "pretokenizers": [
                      {"type": "Split", "pattern": {"Regex": CL100K}, "behavior": "Isolated", "invert": False},
                      {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
                  bl_dec, template([BOS], [EOS], [(BOS, 0), (EOS, 1)]),
                  [added(n, "<|endoftext|>", True), added(n + 1, "<mask>", True, lstrip=True, rstrip=True),
                   added(n + 2, "[SINGLE]", False, single_word=True), added(n + 3, "<|fim_prefix|>", True),
                   added(n + 4, "<|fim_middle|>", True), added(n + 5, "<|fim_suffix|>", True),
                   added(n + 6, "  ", False)])
    fixture_based("behaviors.tokenizer.json",
                  {"type": "Sequence", "pretokenizers": [
                      {"type": "Split", "pattern": {"Regex": O200K}, "behavior": "Isolated", "invert": False},
                      {"type": "Split", "pattern": {"String": "\n"}, "behavior": "MergedWithPrevious", "invert": False},
                      {"type": "Split", "pattern": {"Regex": "(?i:the)"}, "behavior": "MergedWithNext", "invert": False},
                      {"type": "Split", "pattern": {"Regex": "[aeiou]"}, "behavior": "Contiguous", "invert": False},
                      {"type": "Split", "pattern": {"Regex": "zz+|q"}, "behavior": "Removed", "invert": False},
                      {"type": "Split", "pattern": {"String": "."}, "behavior": "MergedWithPrevious", "invert": True},
                      {"type": "Digits", "individual_digits": True},
                      {"type": "Split", "pattern": {"Regex": "\\p{N}"}, "behavior": "Contiguous", "invert": False},
                      {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": False}]},
                  None, {"type": "Sequence", "processors": [
                      {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
                      template([BOS], [], [(BOS, 0)])]},
                  [added(n, "<|endoftext|>", True)], ignore_merges=True)


if __name__ == "__main__":
    main()
