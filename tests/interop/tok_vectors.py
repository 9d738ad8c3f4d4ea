#!/usr/bin/env python3
"""Tokenizer test vectors from the real Hugging Face `tokenizers` (and `transformers` when it is
installed), for tests/unit/test_tok_vectors.c. Run from the repository root, on the GPU machine
(tokenizers 0.23.2, transformers 5.17) or anywhere `tokenizers` imports:

    python3 tests/interop/tok_vectors.py [--out tests/data/tokenizer]

For each tokenizer (the fixture's, and the test files of tests/data/tokenizer/) and each text of
tests/data/tokenizer/corpus.jsonl it writes one line of vectors_<name>.jsonl:
    {"text": ..., "ids": encode(text, add_special_tokens=False),
     "ids_special": tokenizer(text)["input_ids"] (transformers; see below),
     "decoded": decode(ids, skip_special_tokens=False),
     "decoded_skip": decode(ids_special, skip_special_tokens=True)}
after a first {"meta": ...} line naming the library versions. ids_special comes from transformers
(AutoTokenizer for a folder, PreTrainedTokenizerFast(tokenizer_file=...) for a loose file); without
transformers it is computed with transformers' rule (tokenizer_config.json's add_bos_token /
add_eos_token replace the post-processor, as does a null post-processor) and meta says so.
vectors_regex.jsonl holds, for pre-tokenizer patterns and corpus texts, the spans (code point
offsets) that the library's Oniguruma matches (via a Split pre-tokenizer; empty matches are not
visible that way and are not listed)."""
import argparse
import json
import os

import tokenizers
from tokenizers import Regex, Tokenizer, pre_tokenizers

try:
    import transformers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast
except Exception:  # not installed here
    transformers = None

TOKENIZERS = [  # name, path (a folder uses its tokenizer_config.json as transformers does)
    ("fixture", "fixtures/dsv4-tiny"),
    ("deepseek_style", "tests/data/tokenizer/deepseek_style.tokenizer.json"),
    ("cl100k_style", "tests/data/tokenizer/cl100k_style.tokenizer.json"),
    ("behaviors", "tests/data/tokenizer/behaviors.tokenizer.json"),
]

PATTERNS = [
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    "\\p{N}{1,3}", "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|"
    "\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    "\\w+", "\\W+", "\\d+", "\\s+", "\\S+", "\\h+", ".+", "[^\\r\\n]+", "\\P{L}+", "\\p{^N}+", "\\p{M}+", "\\p{Lu}\\p{Ll}*",
    "\\p{Letter}+", "\\p{Sc}|\\p{Sm}", "a*?b", "(?>a+)b", "a++", "x{2,3}?", "\\bthe\\b", "\\Bing\\b", "^\\s+|\\s+$",
    "(?:ab|a)(?:bc|c)", "(?i:[a-z])?(?i:ab|cd)", "\\s+(?!\\S)", "(?=\\d)\\w{2}", "\\A\\S+|\\S+\\z", "\\x41\\u0042\\x{43}",
    "[\\p{L}\\-]+", "e\\u0301|\u00e9", "[\\t\\n]+|\\r\\n", "(?i)hello|world", "\\.{3}|\\.",
]


def emulate_special(tok, path, text):
    """transformers' rule when transformers is not installed (TokenizersBackend.update_post_processor)."""
    cfg_path = os.path.join(path, "tokenizer_config.json") if os.path.isdir(path) else None
    cfg = json.load(open(cfg_path, encoding="utf-8")) if cfg_path and os.path.exists(cfg_path) else {}
    post_null = json.loads(tok.to_str()).get("post_processor") is None
    if "add_bos_token" not in cfg and "add_eos_token" not in cfg and not post_null:
        return tok.encode(text, add_special_tokens=True).ids

    def tid(key):
        v = cfg.get(key)
        v = v.get("content") if isinstance(v, dict) else v
        return tok.token_to_id(v) if v else None
    bos, eos = tid("bos_token"), tid("eos_token")
    ids = tok.encode(text, add_special_tokens=False).ids
    return ([bos] if cfg.get("add_bos_token") and bos is not None else []) + ids + \
           ([eos] if cfg.get("add_eos_token") and eos is not None else [])


def hf_tokenizer(path):
    if transformers is None:
        return None
    if os.path.isdir(path):
        return AutoTokenizer.from_pretrained(path)
    return PreTrainedTokenizerFast(tokenizer_file=path)


def regex_spans(pattern, text):
    iso = pre_tokenizers.Split(Regex(pattern), "isolated").pre_tokenize_str(text)
    rem = {off for _, off in pre_tokenizers.Split(Regex(pattern), "removed").pre_tokenize_str(text)}
    return [list(off) for _, off in iso if off not in rem]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/data/tokenizer")
    args = ap.parse_args()
    corpus = [json.loads(l)["text"] for l in open("tests/data/tokenizer/corpus.jsonl", encoding="utf-8")]
    probe = pre_tokenizers.Split(Regex("\\p{L}+"), "removed")
    meta = {"tokenizers": tokenizers.__version__,
            "transformers": transformers.__version__ if transformers else None,
            "ids_special_by": "transformers" if transformers else "tokenizers + transformers' add_bos_token rule (emulated)",
            "onig_unicode_16_letter_U+16D40": probe.pre_tokenize_str("\U00016d40") == [],
            "onig_unicode_17_letter_U+10940": probe.pre_tokenize_str("\U00010940") == []}
    for name, path in TOKENIZERS:
        tok = Tokenizer.from_file(os.path.join(path, "tokenizer.json") if os.path.isdir(path) else path)
        hf = hf_tokenizer(path)
        with open(os.path.join(args.out, f"vectors_{name}.jsonl"), "w", encoding="utf-8") as f:
            f.write(json.dumps({"meta": dict(meta, tokenizer=path)}, ensure_ascii=False) + "\n")
            for text in corpus:
                ids = tok.encode(text, add_special_tokens=False).ids
                ids_special = hf(text)["input_ids"] if hf else emulate_special(tok, path, text)
                f.write(json.dumps({"text": text, "ids": ids, "ids_special": ids_special,
                                    "decoded": tok.decode(ids, skip_special_tokens=False),
                                    "decoded_skip": tok.decode(ids_special, skip_special_tokens=True)},
                                   ensure_ascii=False) + "\n")
        print(f"vectors_{name}.jsonl: {len(corpus)} texts")
    texts = [t for t in corpus if len(t) < 400][::2]
    with open(os.path.join(args.out, "vectors_regex.jsonl"), "w", encoding="utf-8") as f:
        f.write(json.dumps({"meta": meta}, ensure_ascii=False) + "\n")
        for p in PATTERNS:
            for t in texts:
                f.write(json.dumps({"pattern": p, "text": t, "spans": regex_spans(p, t)}, ensure_ascii=False) + "\n")
    print(f"vectors_regex.jsonl: {len(PATTERNS)} patterns x {len(texts)} texts")


if __name__ == "__main__":
    main()
