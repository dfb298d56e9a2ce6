# Shared settings of the project's scripts (sourced, not run).
# The cargo target directory and the prepared models live in a cache outside the clone,
# so a fresh clone (and CI) rebuilds in minutes instead of tens of minutes.
export TANYA_CACHE="${TANYA_CACHE:-$HOME/.cache/tanya}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$TANYA_CACHE/target}"
export TANYA_MODELS_DIR="${TANYA_MODELS_DIR:-$TANYA_CACHE/models}"
export TANYA__PATHS__MODELS_DIR="$TANYA_MODELS_DIR"
# llama.cpp: OpenMP spin-waiting collapses generation speed on a busy 2-core machine.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
TANYA_BIN="$CARGO_TARGET_DIR/release/tanya"
