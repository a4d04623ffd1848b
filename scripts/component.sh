# Sourced by the build scripts (with $root set): turns a core module built for
# wasm32-unknown-unknown into a size-optimized component.

# make_component CORE OUT: `wasm-opt -Oz`, `wasm-tools component new` (the
# component type is embedded by wit-bindgen), `wasm-tools strip -a`, validate.
make_component() {
  local core="$1" out="$2" tools="$root/.tools" tmp
  tmp="$(mktemp -d "$root/target/component-build.XXXXXX")"
  node "$tools/node/node_modules/binaryen/bin/wasm-opt" -Oz \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-multivalue --enable-reference-types \
    "$core" -o "$tmp/core.wasm"
  "$tools/venv/bin/wasm-tools" component new "$tmp/core.wasm" -o "$tmp/component.wasm"
  "$tools/venv/bin/wasm-tools" strip -a "$tmp/component.wasm" -o "$out"
  "$tools/venv/bin/wasm-tools" validate "$out"
  rm -rf "$tmp"
}
