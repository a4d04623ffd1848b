# Sourced by the build scripts (with $root set): turns a core module built for
# wasm32-unknown-unknown into a size-optimized component.

# make_component CORE OUT: `wasm-opt -Oz`, `wasm-tools component new` (the
# component type is embedded by wit-bindgen), `wasm-tools strip -a`, validate.
# wasm-opt may assume two facts of this layout: memory is the module's own, so
# zero-filled at start, and the first 1 KiB is never used, since rustc places
# the stack first, at [0, 1 MiB), growing down (only a stack within 1 KiB of
# overflowing would reach it). `--converge` repeats -Oz until it stops shrinking.
# The passes before it are semantics-preserving rewrites that -Oz alone does not
# run: whole-program type flow (`--gufa-optimizing`), control flow rebuilt by
# the Relooper (`--flatten --rereloop`, which then shrinks) and merging of
# functions that differ only in constants (measured: 3.6 KB less than -Oz).
make_component() {
  local core="$1" out="$2" tools="$root/.tools" tmp
  # Nothing to do when the component is newer than its core module: a build
  # that changed nothing leaves every artifact (and what embeds it) as it was.
  if [ "$out" -nt "$core" ]; then
    return 0
  fi
  tmp="$(mktemp -d "$root/target/component-build.XXXXXX")"
  node "$tools/binaryen/node_modules/binaryen/bin/wasm-opt" \
    --gufa-optimizing -Oz --flatten --rereloop -Oz --merge-similar-functions -Oz --converge \
    --zero-filled-memory --low-memory-unused \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-multivalue --enable-reference-types \
    "$core" -o "$tmp/core.wasm"
  "$tools/venv/bin/wasm-tools" component new "$tmp/core.wasm" -o "$tmp/component.wasm"
  "$tools/venv/bin/wasm-tools" strip -a "$tmp/component.wasm" -o "$out"
  "$tools/venv/bin/wasm-tools" validate "$out"
  rm -rf "$tmp"
}
