#!/usr/bin/env bash
# Rebuilds json-avro.wasm from json-avro.c (`make wasm`): clang and lld from Debian
# (apt-get install clang lld). The .wasm is committed, so nothing else needs them;
# json-avro.c.sha256 records which source it was built from (a unit test checks it).
set -euo pipefail
cd "$(dirname "$0")"
clang --target=wasm32 -O3 -mbulk-memory -nostdlib -fno-builtin-memcpy \
  -Wall -Wextra -Werror \
  -Wl,--no-entry -Wl,--export=__heap_base -Wl,--strip-all \
  -o json-avro.wasm json-avro.c
sha256sum json-avro.c > json-avro.c.sha256
echo "built json-avro.wasm ($(wc -c < json-avro.wasm) bytes) from $(cut -c1-12 json-avro.c.sha256)"
