#!/usr/bin/env python3
"""Writes tests/data/tokenizer/corpus.jsonl, the texts of the tokenizer test vectors: Python code,
English prose, Unicode (CJK, emoji, combining marks, RTL, many-digit numbers), whitespace runs,
CR LF, tabs, contractions, special tokens inside text, the empty string and edge cases, plus the
texts of fixtures/dsv4-tiny/calib.jsonl (whole, and cut into lines). Deterministic; run from the
repository root: python3 tests/data/tokenizer/make_corpus.py"""
import json

BOS, EOS = "<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>"

HAND = [
    "", " ", "  ", "a", "\n", "\t", "\r\n", "Hello", "Hello world", " Hello world", "Hello world ", "Hello  world",
    "hello, world! How's it going?", "I'm sure you'll love it; they've said we'd go, didn't they?",
    "SHE'S HERE. WE'LL SEE. I'D KNOW. THEY'RE GONE. YOU'VE WON. IT'S MINE. I'M OK.",
    "don\u2019t use curly quotes \u201clike this\u201d \u2014 or do", "'s 't 're 've 'm 'll 'd",
    "'\u017f and 'S and '\u212a: case folding of the apostrophe rules",
    "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX! the-quick_brown.fox",
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness...",
    "e-mail: someone@example.com, url: https://example.org/path?q=1&r=two#frag",
    "def foo(x, y=2, *args, **kwargs):\n    \"\"\"Docstring.\"\"\"\n    return x + y  # comment\n",
    "class A(object):\n\tdef __init__(self):\n\t\tself.x = [1, 2, 3]\n\t\tself.y = {'a': 1}\n",
    "for i in range(10):\n    if i % 2 == 0:\n        print(f\"{i:>4d} is even\")\n    else:\n        continue\n",
    "import os, sys\nfrom collections import OrderedDict as OD\n\n\nif __name__ == '__main__':\n    sys.exit(main())\n",
    "x = 0x1F + 0o17 + 0b1010 + 1_000_000 + 3.14159e-10j\nlambda a, b: (a ** b) // 3 != 4 <= 5 >= 6",
    "try:\n    pass\nexcept (ValueError, KeyError) as exc:\n    raise RuntimeError('bad') from exc\nfinally:\n    del x\n",
    "    \n    \n\n\n\n        x = 1\n",
    "line one\r\nline two\r\n\r\nline four\r\n", "mixed\r\rcarriage\n\rreturns\r", "trailing spaces   \n  ",
    "tabs\tand\t\tmore\t\t\ttabs", "\t\t\tindented\n\t\t\t\tmore", " " * 40 + "x", "x" + " " * 40, "\n" * 12,
    " \n \n \n ", "a \n b", "a  \n  b", "\u00a0non\u00a0breaking\u00a0spaces\u00a0", "ideographic\u3000space\u3000\u3000",
    "em\u2003space and thin\u2009space and zero\u200bwidth", "\u2028line separator\u2029paragraph separator",
    "\x0bvertical\x0ctab and form feed\x1c\x1d\x1e\x1f separators \x85 next line",
    "12345678901234567890", "3.14159265358979323846264338327950288", "1,234,567.89 and 1 234 567", "-42 +17 007 0",
    "phone: +1 (555) 123-4567, year 2024, version 1.2.3-rc4", "\u0661\u0662\u0663\u0664\u0665 arabic-indic digits",
    "\uff11\uff12\uff13\uff14 full-width digits \uff21\uff22\uff23", "superscripts x\u00b2 y\u00b3 \u00bd \u2153 \u2460\u2461\u2462",
    "roman \u2160\u2161\u2162\u216b numerals", "\u0967\u0968\u0969 devanagari digits", "99 bottles, 100 bottles, 1000 bottles",
    "\u4eca\u5929\u5929\u6c14\u5f88\u597d\uff0c\u6211\u4eec\u53bb\u516c\u56ed\u6563\u6b65\u5427\u3002",
    "\u6df1\u5ea6\u6c42\u7d22\u662f\u4e00\u5bb6\u4e13\u6ce8\u4e8e\u4eba\u5de5\u667a\u80fd\u7814\u7a76\u7684\u516c\u53f8\uff0c\u81f4\u529b\u4e8e\u5f00\u53d1\u5927\u8bed\u8a00\u6a21\u578b\u3002",
    "\u4eba\u5de5\u667a\u80fd\uff08AI\uff09\u6280\u672f\u6b63\u5728\u6539\u53d8\u4e16\u754c\uff0c2024\u5e74\u7684\u6a21\u578b\u6709123456\u4e2a\u53c2\u6570\u3002",
    "\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3067\u3059\u3002\u3072\u3089\u304c\u306a\u3001\u30ab\u30bf\u30ab\u30ca\u3001\u6f22\u5b57\u3002\u30b3\u30f3\u30d4\u30e5\u30fc\u30bf\u30fc\u3002",
    "\u30c6\u30b9\u30c8test\u30c6\u30b9\u30c8123\u30c6\u30b9\u30c8", "\ud55c\uad6d\uc5b4 \ubb38\uc7a5\uc785\ub2c8\ub2e4. \uc548\ub155\ud558\uc138\uc694!",
    "\u4e2d\u6587English\u6df7\u5408mixed\u6587\u672c text\uff0c\u5305\u62ec\u6807\u70b9\u7b26\u53f7\uff01\uff1f\u3001\u300c\u5f15\u53f7\u300d",
    "\u9f98\u9f99\u9fa5\u9fa6\u9fff \u3400\u4dbf \U00020000\U0002a6df CJK edges", "\u3041\u3094\u309f\u30a0\u30ff\u3040 kana edges",
    "emoji \U0001f600\U0001f601\U0001f602 \U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 \U0001f1fa\U0001f1f8 \u2764\ufe0f",
    "\U0001f680\U0001f680\U0001f680 rocket! \u2728sparkles\u2728", "caf\u00e9 vs cafe\u0301 (precomposed vs combining)",
    "n\u0303 a\u0308 o\u0302\u0323 stacked: e\u0301\u0302\u0303\u0304\u0305", "\u0301 lone combining mark at the start",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e (devanagari with virama)", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a thai",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645! (arabic, RTL)", "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd (hebrew)",
    "mixed \u202eRTL override\u202c and \u200fmarks\u200e", "\u0391\u03b8\u03ae\u03bd\u03b1 \u03a3\u03a3 \u03c3\u03c2 greek",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u042d\u0442\u043e \u0442\u0435\u0441\u0442.", "\u0130stanbul \u0131 \u0049 i turkish dots",
    "ligatures \ufb00 \ufb01 \ufb06 and \u00df \u1e9e", "math \u2200x\u2208\u211d: x\u00b2 \u2265 0 \u2227 \u221a4 = 2 \u2260 3",
    "currency $5 \u20ac10 \u00a320 \u00a5100 \u20b9500 \u20bf1", "symbols \u00a9\u00ae\u2122 \u2190\u2192\u2191\u2193 \u2660\u2663\u2665\u2666",
    "\ufeffBOM at start", "private use \ue000\uf8ff and \U000f0000", "unassigned \u0378 \u0530 \U000e0080",
    "noncharacters \ufffe\uffff \U0010ffff", "replacement \ufffd char", "\x00nul\x00inside\x01\x02\x7f",
    "Kirat Rai (Unicode 16) \U00016d40\U00016d41 Garay \U00010d50 and Unicode 17 \U00010940",
    "circled \u24b6\u24b7\u24d0 letters", "ZWJ\u200dZWNJ\u200c joiners", "variation selectors \u2614\ufe0e \u2614\ufe0f",
    "a" * 300, "ab" * 150, "!" * 50, "=" * 80, "-" * 3 + ">" + "." * 7, "\U0001f600" * 20, "\u4e2d" * 60,
    "aaaa bbbb cccc dddd eeee ffff", "AAAAAAAAAAAAAAAA", "aAaAaAaA", "CamelCaseWordsAndHTTPServer2Go",
    "snake_case_words and kebab-case-words and dot.separated.words", "path/to/file.py:123:45: error: bad",
    "<html><body class=\"x\">Hi &amp; bye</body></html>", "{\"key\": [1, 2.5, null, true], \"k2\": \"v\"}",
    "SELECT * FROM t WHERE a >= 10 AND b <> 'x';", "#include <stdio.h>\nint main(void) { return 0; }\n",
    BOS, EOS, BOS + "Hello" + EOS, "text " + BOS + " more " + EOS + " end", BOS + BOS + EOS + EOS,
    "partial <\uff5cbegin\u2581of\u2581sentence and <\uff5cend\u2581of", "a" + BOS + "b", " " + EOS + " ",
    "<\uff5cUser\uff5c>What is 2+2?<\uff5cAssistant\uff5c>4" + EOS, "<think>reasoning</think>answer",
    "<\uff5cplace\u2581holder\u2581no\u25810\uff5c> and <\uff5cplace\u2581holder\u2581no\u2581799\uff5c>",
    "<|fim_prefix|>def f():<|fim_suffix|>  return 1<|fim_middle|>", "<|endoftext|>", " <|endoftext|> ",
    "word<|endoftext|>word", "<mask> lstrip <mask>rstrip <mask>", "[SINGLE] single word [SINGLE]s x[SINGLE] [SINGLE]",
    "<\uff5ctool\u2581calls\u2581begin\uff5c><\uff5ctool\u2581call\u2581begin\uff5c>f<\uff5ctool\u2581sep\uff5c>{}",
]


def main():
    calib = [json.loads(l)["text"] for l in open("fixtures/dsv4-tiny/calib.jsonl", encoding="utf-8")]
    texts = list(HAND)
    texts += calib  # the 32 rows whole
    for row in calib[:12]:  # and cut into lines, keeping the line ends
        texts += [l for l in row.splitlines(keepends=True) if l.strip()][:8]
    seen, out = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            out.append(t)
    with open("tests/data/tokenizer/corpus.jsonl", "w", encoding="utf-8") as f:
        for t in out:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    print(f"corpus.jsonl: {len(out)} texts")


if __name__ == "__main__":
    main()
