#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` (CPU only) for the tests of the OpenAI-compatible
# generation backend (src/models/remote.rs), and prints where it is. A no-op when the
# binary is installed already:
#   $TANYA_CACHE/llama-server/<source>/llama-server
# ($TANYA_CACHE is ~/.cache/tanya by default, outside the clone, so CI keeps it.)
#
# Where the sources come from: the llama-cpp-sys-2 crate vendors llama.cpp, but its
# package includes only the library, ggml, common/ and mtmd, not tools/server. So the
# server is built from the llama.cpp that the llama-cpp-python source distribution
# vendors: one pinned version from PyPI (`pip download`, like scripts/install_models.py,
# checked against its SHA-256), kept in $TANYA_CACHE/llama-server/. Nothing else is
# downloaded: the web UI is neither built (npm) nor fetched (its prebuilt assets come
# from a model hub unless LLAMA_USE_PREBUILT_UI=OFF), and the server is built without
# curl or OpenSSL.
#
# Usage: scripts/setup_llama_server.sh        (the binary's path goes to stdout, last line)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

SDIST_NAME=llama-cpp-python
SDIST_VERSION=0.3.36
SDIST_FILE=llama_cpp_python-$SDIST_VERSION.tar.gz
SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e

home="$TANYA_CACHE/llama-server"
prefix="$home/$SDIST_NAME-$SDIST_VERSION"
bin="$prefix/llama-server"
if [ -x "$bin" ]; then
  echo "llama-server: up to date ($bin)" >&2
  echo "$bin"
  exit 0
fi

mkdir -p "$home/src"
sdist="$home/src/$SDIST_FILE"
if [ ! -f "$sdist" ] || ! echo "$SDIST_SHA256  $sdist" | sha256sum --check --status; then
  echo "llama-server: downloading the $SDIST_NAME $SDIST_VERSION source distribution" >&2
  rm -f "$sdist"
  python3 -m pip download --quiet --no-deps --no-binary :all: \
    "$SDIST_NAME==$SDIST_VERSION" -d "$home/src" >&2
fi
echo "$SDIST_SHA256  $sdist" | sha256sum --check --status || {
  echo "llama-server: $sdist does not have the pinned SHA-256 $SDIST_SHA256" >&2
  exit 1
}

work="$(mktemp -d "$home/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
tar -xzf "$sdist" -C "$work" "llama_cpp_python-$SDIST_VERSION/vendor/llama.cpp"
src="$work/llama_cpp_python-$SDIST_VERSION/vendor/llama.cpp"
[ -f "$src/tools/server/CMakeLists.txt" ] || {
  echo "llama-server: $SDIST_FILE holds no tools/server" >&2
  exit 1
}

# GGML_NATIVE=OFF: -march=native enables AMX on this CPU, and llama.cpp's first AMX
# matmul dies with SIGILL (see .cargo/config.toml); AVX2/FMA are named instead when the
# CPU has them, as the Rust build of llama-cpp-sys-2 does.
simd=()
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  simd=(-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_SSE42=ON)
fi
started=$SECONDS
echo "llama-server: building (a few minutes per core)" >&2
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF "${simd[@]}" \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_COMMON=ON \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_LLGUIDANCE=OFF \
  -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF \
  >"$work/configure.log" 2>&1 || {
  tail -40 "$work/configure.log" >&2
  exit 1
}
cmake --build "$work/build" --config Release --target llama-server -j"$(nproc)" \
  >"$work/build.log" 2>&1 || {
  tail -60 "$work/build.log" >&2
  exit 1
}
mkdir -p "$prefix"
install -m 0755 "$work/build/bin/llama-server" "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "llama-server: built in $((SECONDS - started)) s: $("$bin" --version 2>&1 | head -1)" >&2
echo "$bin"
