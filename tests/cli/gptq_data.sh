#!/usr/bin/env bash
# GPTQ calibration data through the command line (recipes/w4a16.yaml on the tiny fixture): JSONL
# text written here (40 English sentences, one {"id": N, "text": ...} object a line, a blank line
# in between) with --calib-data and as the recipe's calibration.data (a relative path is taken
# from the recipe file's folder); the report's calibration records the data (path, kind, hash of
# the rows used, samples and seq_len used and asked); deterministic; the same text as token rows
# (each line through dsv4-tok as tokenizer(text) does, concatenated, cut into rows of seq_len
# tokens: exactly how the JSONL reader builds its rows) gives the same bytes; --calib-samples /
# --calib-seq-len beat the recipe's; refusals (too few tokens, empty file, bad JSON line, missing
# "text", missing file) name the file (and line), exit 2 and leave nothing behind.
# PASS/FAIL lines for tests/run.sh.
set -u
cd "$(dirname "$0")/../.."
Q="${BUILD:-build}/bin/dsv4-quant"
TOK="${BUILD:-build}/bin/dsv4-tok"
FX=fixtures/dsv4-tiny
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
PREFIX=gptq_data_
. tests/lib/cli.sh
# CALIB_DEVICE=cuda runs the same checks with the calibration on the GPU (the GPU machine)
C=(--calib-device "${CALIB_DEVICE:-cpu}" --threads 2 --no-eval --quiet)
S=(--calib-samples 8 --calib-seq-len 128)

same_weights() { # same_weights A B: the shards and the index (the manifest names the recipe)
  local f ok=0
  for f in "$1"/*.safetensors "$1"/model.safetensors.index.json; do
    cmp -s "$f" "$2/$(basename "$f")" || { echo "  differs: $(basename "$f")"; ok=1; }
  done
  return $ok
}
calib_val() { # calib_val REPORT KEY: the calibration's first "KEY": value (identity keys come first)
  sed -n '/"calibration": {/,$p' "$1/dsv4-quant-report.json" | grep -m1 "\"$2\": " | sed 's/.*": *//; s/[",]//g'
}
asked_val() { # asked_val REPORT KEY: calibration.data.asked.KEY
  sed -n '/"asked": {/,/}/p' "$1/dsv4-quant-report.json" | grep -m1 "\"$2\": " | sed 's/.*": *//; s/[",]//g'
}
nothing_written() { # nothing_written NAME OUT: neither OUT nor its work folder (nor temporaries)
  absent "$1_no_output" "$2"; absent "$1_no_work_dir" "$2.gptq-work"
}

cat > "$tmp/lines.txt" <<'EOF'
The morning train was late again, so most of the passengers waited on the platform with their coffee.
A small boat drifted past the harbour wall while the gulls argued over a piece of bread.
She opened the window, listened to the rain for a minute, and then went back to her book.
Every spring the old gardener planted tomatoes along the south fence, where the sun stayed longest.
The library closes at six on weekdays, but on Saturdays it stays open until the evening.
He said "good night" to the porter, buttoned his coat and walked out into the cold street.
Children were building a snowman in the park, and somebody had given it a red scarf.
The recipe asks for two cups of flour, one egg, a pinch of salt and a little warm milk.
When the power failed, the whole village lit candles and the church bells rang for an hour.
Our neighbours keep bees, and in August they leave jars of honey on the wall for anyone to take.
The bridge was built in 1887 and still carries more traffic than its engineers ever imagined.
After the meeting, the committee agreed to repaint the school hall before the winter concert.
A fox crossed the road in front of the bus, stopped to look at the driver, and trotted away.
The museum has a room full of clocks, and at noon they all strike together in a great noise.
My grandmother wrote letters every Sunday, always in blue ink and always on thin paper.
The river rose quickly after the storm, and the farmers moved their sheep to higher fields.
In the market square a man was selling maps of places that no longer exist.
They missed the last ferry and spent the night in a small hotel that smelled of wood smoke.
The teacher asked the class to describe their town in exactly one hundred words.
Fresh bread is delivered to the corner shop at five, long before the first customers arrive.
A lighthouse keeper once lived on that rock, alone with his dog and a shelf of old novels.
The orchestra tuned their instruments while the audience slowly found their seats.
It took three days to walk the coastal path, and it rained on every one of them.
The cat sleeps on the warm stones by the kitchen door and ignores everybody who passes.
Our train finally reached the city just as the street lamps were being switched on.
The doctor told him to rest, drink plenty of water and come back if the fever returned.
On clear nights you can see the lights of the next island across the water.
The baker's daughter runs the shop now, but she still uses her father's old oven.
Two cyclists stopped at the top of the hill to share an apple and admire the valley.
The newspaper printed the wrong date on its front page, and nobody noticed until lunch.
A heavy fog rolled in from the sea and the ships sounded their horns all through the night.
The students planted a row of oak trees behind the school to mark its hundredth year.
He repaired the roof himself, although it took him most of the summer to finish it.
The festival ended with fireworks over the lake and music that lasted until dawn.
In winter the road over the pass is closed, and the villages below are cut off for weeks.
She learned to play the violin at sixty and now performs with the town's amateur orchestra.
The postman knows every dog on his route and carries biscuits in his left pocket.
Our small team finished the project a week early and celebrated with a long lunch.
The castle on the hill is mostly ruins, but the tower still offers a fine view of the coast.
At the end of the day the fishermen sat on the quay, mending nets and telling old stories.
EOF
# JSONL: quotes and backslashes escaped, an extra key, a blank line after line 20.
awk '{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); printf "{\"id\": %d, \"text\": \"%s\"}\n", NR, $0; if (NR == 20) print "" }' \
  "$tmp/lines.txt" > "$tmp/text.jsonl"

# The same text as token rows: each line's ids as tokenizer(text) gives them, in file order, cut
# into rows of 128 (the remainder dropped), written as input_ids I32 [rows, 128].
while IFS= read -r l; do printf '%s' "$l" | "$TOK" --special "$FX" || echo "TOKENIZER FAILED"; echo; done \
  < "$tmp/lines.txt" > "$tmp/ids.txt"
perl -e '
  my ($S, $out) = @ARGV; local $/; my @ids = split " ", <STDIN>;
  my $R = int(@ids / $S); my $data = pack("l<*", @ids[0 .. $R * $S - 1]);
  my $h = sprintf("{\"input_ids\":{\"dtype\":\"I32\",\"shape\":[%d,%d],\"data_offsets\":[0,%d]}}", $R, $S, length $data);
  $h .= " " x ((8 - length($h) % 8) % 8);
  open(my $f, ">", $out) or die; binmode $f; print $f pack("Q<", length $h), $h, $data; close $f;' \
  128 "$tmp/rows.safetensors" < "$tmp/ids.txt"
ntok=$(wc -w < "$tmp/ids.txt")
pass_if tokenized_the_text bash -c "! grep -q FAILED '$tmp/ids.txt' && [ $ntok -ge 1024 ]"

# --calib-data F.jsonl: converts; the report records the data; a second run gives the same bytes.
check jsonl_converts 0 -- "$Q" --recipe recipes/w4a16.yaml "${C[@]}" "${S[@]}" --calib-data "$tmp/text.jsonl" "$FX" "$tmp/j1"
pass_if report_data_path [ "$(calib_val "$tmp/j1" path)" = "$tmp/text.jsonl" ]
pass_if report_data_kind [ "$(calib_val "$tmp/j1" kind)" = jsonl ]
pass_if report_data_hash grep -Eq '"data_xxh3_128": "[0-9a-f]{32}"' "$tmp/j1/dsv4-quant-report.json"
pass_if report_rows_used [ "$(calib_val "$tmp/j1" samples)/$(calib_val "$tmp/j1" seq_len)" = 8/128 ]
pass_if report_rows_available [ "$(calib_val "$tmp/j1" rows_available)" = $((ntok / 128)) ]
pass_if report_has_gptq grep -q '"how": "gptq"' "$tmp/j1/dsv4-quant-report.json"
check jsonl_again 0 -- "$Q" --recipe recipes/w4a16.yaml "${C[@]}" "${S[@]}" --calib-data "$tmp/text.jsonl" "$FX" "$tmp/j2"
pass_if jsonl_deterministic same_tensors "$tmp/j1" "$tmp/j2"

# calibration.data in a recipe elsewhere (relative to the recipe's folder, not to the working
# directory), with the recipe's samples (more than the text holds: all its rows) and seq_len.
mkdir "$tmp/rdir" && cp "$tmp/text.jsonl" "$tmp/rdir/"
sed -e 's/^  samples: 512$/  data: text.jsonl\n  samples: 1000/' -e 's/^  seq_len: 2048$/  seq_len: 64/' \
  recipes/w4a16.yaml > "$tmp/rdir/recipe.yaml"
check recipe_data_converts 0 -- "$Q" --recipe "$tmp/rdir/recipe.yaml" "${C[@]}" "$FX" "$tmp/r1"
pass_if recipe_data_from_recipe_folder [ "$(calib_val "$tmp/r1" path)" = "$tmp/rdir/text.jsonl" ]
pass_if recipe_numbers_used [ "$(calib_val "$tmp/r1" samples)/$(calib_val "$tmp/r1" seq_len)" = "$((ntok / 64))/64" ]
pass_if recipe_numbers_asked [ "$(asked_val "$tmp/r1" samples)/$(asked_val "$tmp/r1" seq_len)" = 1000/64 ]
# The flags beat the recipe's samples and seq_len: the --calib-data run's rows and bytes.
check flags_beat_recipe 0 -- "$Q" --recipe "$tmp/rdir/recipe.yaml" "${C[@]}" "${S[@]}" "$FX" "$tmp/r2"
pass_if flags_numbers_used [ "$(calib_val "$tmp/r2" samples)/$(calib_val "$tmp/r2" seq_len)" = 8/128 ]
pass_if flags_numbers_asked [ "$(asked_val "$tmp/r2" samples)/$(asked_val "$tmp/r2" seq_len)" = 8/128 ]
pass_if flags_same_bytes_as_calib_data same_weights "$tmp/j1" "$tmp/r2"
# The same text as token rows (--calib-data beats the recipe's calibration.data): the same rows
# (data hash), the same bytes.
check token_rows_convert 0 -- "$Q" --recipe "$tmp/rdir/recipe.yaml" "${C[@]}" "${S[@]}" --calib-data "$tmp/rows.safetensors" \
  "$FX" "$tmp/t"
pass_if token_rows_beat_recipe_data [ "$(calib_val "$tmp/t" path)" = "$tmp/rows.safetensors" ]
pass_if token_rows_kind [ "$(calib_val "$tmp/t" kind)" = safetensors ]
pass_if token_rows_same_data_hash [ "$(calib_val "$tmp/t" data_xxh3_128)" = "$(calib_val "$tmp/j1" data_xxh3_128)" ]
pass_if token_rows_same_bytes same_weights "$tmp/j1" "$tmp/t"
sed 's/^  data: text.jsonl$/  data: missing.jsonl/' "$tmp/rdir/recipe.yaml" > "$tmp/rdir/missing.yaml"
check recipe_data_missing 2 'missing.jsonl' 'calibration.data' "recipe's folder" -- \
  "$Q" --recipe "$tmp/rdir/missing.yaml" "${C[@]}" "$FX" "$tmp/x0"
nothing_written recipe_data_missing "$tmp/x0"

# Refusals: each names the file (and the line), exit 2, nothing written.
printf '{"text": "Far too short for one row."}\n\n{"text": "Still short."}\n' > "$tmp/short.jsonl"
check too_few_tokens 2 "short.jsonl: [0-9]+ tokens, fewer than one row of 128" -- \
  "$Q" --recipe recipes/w4a16.yaml "${C[@]}" "${S[@]}" --calib-data "$tmp/short.jsonl" "$FX" "$tmp/x1"
nothing_written too_few_tokens "$tmp/x1"
: > "$tmp/empty.jsonl"
check empty_file 2 'empty.jsonl: no \{"text": ...\} lines' -- \
  "$Q" --recipe recipes/w4a16.yaml "${C[@]}" "${S[@]}" --calib-data "$tmp/empty.jsonl" "$FX" "$tmp/x2"
nothing_written empty_file "$tmp/x2"
{ sed -n 1,2p "$tmp/text.jsonl"; echo '{"id": 3, "text": "an unterminated string}'; sed -n '4,$p' "$tmp/text.jsonl"; } > "$tmp/badjson.jsonl"
check bad_json_line 2 'badjson.jsonl.*line 3.*not valid JSON' -- \
  "$Q" --recipe recipes/w4a16.yaml "${C[@]}" "${S[@]}" --calib-data "$tmp/badjson.jsonl" "$FX" "$tmp/x3"
nothing_written bad_json_line "$tmp/x3"
sed '5s/"text"/"content"/' "$tmp/text.jsonl" > "$tmp/nokey.jsonl"
check missing_text_key 2 'nokey.jsonl:5: expected a JSON object with a string "text"' -- \
  "$Q" --recipe recipes/w4a16.yaml "${C[@]}" "${S[@]}" --calib-data "$tmp/nokey.jsonl" "$FX" "$tmp/x4"
nothing_written missing_text_key "$tmp/x4"
sed '7s/"text": "[^"]*"/"text": 7/' "$tmp/text.jsonl" > "$tmp/notstring.jsonl"
check text_not_a_string 2 'notstring.jsonl:7: expected a JSON object with a string "text"' -- \
  "$Q" --recipe recipes/w4a16.yaml "${C[@]}" "${S[@]}" --calib-data "$tmp/notstring.jsonl" "$FX" "$tmp/x5"
nothing_written text_not_a_string "$tmp/x5"
check missing_file 2 'nowhere.jsonl' -- \
  "$Q" --recipe recipes/w4a16.yaml "${C[@]}" "${S[@]}" --calib-data "$tmp/nowhere.jsonl" "$FX" "$tmp/x6"
nothing_written missing_file "$tmp/x6"

exit $((fails > 0))
