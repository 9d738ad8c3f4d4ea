#!/usr/bin/env bash
# dsv4-tok end to end: encode / decode with the fixture's tokenizer (the folder, with its
# tokenizer_config.json BOS, and the bare file), the DeepSeek-style test tokenizer, --regex, and the
# refusals with their exit codes. Prints PASS/FAIL lines for tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
B="${BUILD:-build}/bin/dsv4-tok"
FX=fixtures/dsv4-tiny
DS=tests/data/tokenizer/deepseek_style.tokenizer.json
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
PREFIX=tok_
. tests/lib/cli.sh

enc() { printf '%s' "$2" | "$B" $1; }
check encode 0 '^41 70 77 331 323 274 615 258 200 199 476 289 80 80 9 89 311 342 448 19 20 21 22$' \
  -- enc "$FX/tokenizer.json" $'Hello world  \n\tdef foo(x): return 12345'
# tokenizer(text) as transformers 5.17 does it: the fixture (PreTrainedTokenizerFast, null
# post_processor) gets no BOS despite add_bos_token; the DeepSeek-style file's template adds one
check encode_special 0 '^41 70 77 331$' -- enc "--special $FX" 'Hello'
check encode_special_template 0 '^0 42 750 329$' -- enc "--special $DS" 'Hello'
check special_in_text 0 '^66 0 67$' -- enc "$FX" $'a<\xef\xbd\x9cbegin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>b'
check decode 0 '^<｜begin▁of▁sentence｜>Hello<｜end▁of▁sentence｜>$' -- sh -c "echo '0 41 70 77 331 1' | $B --decode $FX"
check decode_skip 0 '^Hello$' -- sh -c "echo '0 41 70 77 331 1' | $B --decode --skip-special $FX"
check info 0 '^vocab_size 1024$' '^bos 0$' '^eos 1$' -- "$B" --info "$FX"
check deepseek_info 0 '^vocab_size 1774$' '^bos 0$' '^eos -1$' -- "$B" --info "$DS"
# the DeepSeek pre-tokenizer isolates CJK runs and 1-3 digit groups: the round trip is exact
printf '深度求索 DeepSeek-V3 has 671000000000 params.\n' >"$tmp/ds.txt"
"$B" "$DS" <"$tmp/ds.txt" >"$tmp/ds.ids" && "$B" --decode "$DS" <"$tmp/ds.ids" >"$tmp/ds.back"
pass_if deepseek_round_trip cmp -s "$tmp/ds.txt" "$tmp/ds.back"
check regex 0 '^0 3$' '^3 6$' '^6 7$' -- sh -c "printf '1234567' | $B --regex '\\p{N}{1,3}'"
check regex_refused 2 'lookbehind .* is not supported' -- sh -c "printf 'ab' | $B --regex '(?<=a)b'"
check bad_utf8 2 'not valid UTF-8 \(byte 1\)' -- sh -c "printf 'a\\377' | $B $FX"
check bad_id 2 'id 5000 \(position 1\) is not a token' -- sh -c "echo '5 5000' | $B --decode $FX"
check not_an_id 2 'is not a token id' -- sh -c "echo '5 x' | $B --decode $FX"
printf '{"version": "1.0", "normalizer": {"type": "NFKC"}, "model": {"type": "BPE", "vocab": {}, "merges": []}}' >"$tmp/nfkc.json"
check unsupported_normalizer 2 'nfkc.json: normalizer NFKC is not supported' -- sh -c "printf 'a' | $B $tmp/nfkc.json"
check missing 2 'nope: No such file' -- sh -c "printf 'a' | $B $tmp/nope"
check usage 2 '^usage: dsv4-tok' -- "$B"
check usage_skip 2 '^usage: dsv4-tok' -- "$B" --skip-special "$FX"
exit $((fails > 0))
