# Shared by the hack/ scripts: timed stages with one line each.
_t0=$SECONDS
stage() {
  local name="$1"; shift
  local start=$SECONDS
  printf '==> %s\n' "$name" >&2
  "$@"
  printf '<== %s: %ss (total %ss)\n' "$name" "$((SECONDS - start))" "$((SECONDS - _t0))" >&2
}

# Full logs of the quiet stages (and of apt, hack/prereqs.sh), one file per stage.
CELLNET_LOG_DIR="${CELLNET_LOG_DIR:-$PWD/target/make-logs}"
export CELLNET_LOG_DIR

# quiet NAME CMD...: runs CMD with its stderr (progress, compiler lines, package managers) in
# $CELLNET_LOG_DIR/NAME.log; stdout passes through (the scripts print their result there). On
# failure, the log's last lines and its path.
quiet() {
  local name="$1"; shift
  local log="$CELLNET_LOG_DIR/$name.log"
  mkdir -p "$CELLNET_LOG_DIR"
  "$@" 2>"$log" && return 0
  local status=$?
  printf '!!! %s failed (exit %s); last lines below, full log: %s\n' "$*" "$status" "$log" >&2
  tail -n 40 "$log" >&2
  return "$status"
}
