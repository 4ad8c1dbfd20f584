# Shared by the hack/ scripts: timed stages with one line each.
_t0=$SECONDS
stage() {
  local name="$1"; shift
  local start=$SECONDS
  printf '==> %s\n' "$name" >&2
  "$@"
  printf '<== %s: %ss (total %ss)\n' "$name" "$((SECONDS - start))" "$((SECONDS - _t0))" >&2
}
