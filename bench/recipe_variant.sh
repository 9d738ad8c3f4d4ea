# Sourced by bench/gptq_*.sh. variant NAME BASE SED-EXPR...: writes $tmp/NAME.yaml, the recipe BASE
# with each sed edit applied in turn.
variant() {
  local n=$1 base=$2; shift 2
  cp "$base" "$tmp/$n.yaml"
  for x in "$@"; do sed -i "$x" "$tmp/$n.yaml"; done
}
