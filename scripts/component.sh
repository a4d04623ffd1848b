# Sourced by the build scripts (with $root set): builds the guests' core
# modules for wasm32-unknown-unknown and turns each into a size-optimized
# component.

# The guests build in a cargo target folder of their own, so that a build
# script (host-example/build.rs, tests/build.rs) can run these scripts while the
# cargo that runs it holds target/ (a nested cargo on the same folder and
# profile would wait for it forever).
guest_target="$root/target/guests"
guest_release="$guest_target/wasm32-unknown-unknown/release"

# guest_rustc PACKAGE [CARGO ARGS...]: the package's library as a core module,
# $guest_release/<crate>.wasm (release profile, so its LTO applies).
guest_rustc() {
  local package=$1
  shift
  cargo rustc --release --target wasm32-unknown-unknown --target-dir "$guest_target" \
    -p "$package" --lib --crate-type cdylib "$@"
}

# Fails naming the first missing piece of the guest toolchain, with the
# command that installs it.
require_guest_tools() {
  local tools="$root/.tools" missing=""
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    missing="the Rust target wasm32-unknown-unknown"
  elif ! command -v node >/dev/null; then
    missing="node (it runs wasm-opt)"
  elif [ ! -f "$tools/binaryen/node_modules/binaryen/bin/wasm-opt" ]; then
    missing="wasm-opt ($tools/binaryen)"
  elif [ ! -x "$tools/venv/bin/wasm-tools" ]; then
    missing="wasm-tools ($tools/venv/bin/wasm-tools)"
  fi
  if [ -n "$missing" ]; then
    echo "building the guest components needs $missing: run scripts/setup.sh" >&2
    return 1
  fi
}

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
  local core="$1" out="$2" tools="$root/.tools" tmp stamp="$2.core-sha256" digest
  # Nothing to do when the component is newer than its core module: a build
  # that changed nothing leaves every artifact (and what embeds it) as it was.
  if [ "$out" -nt "$core" ]; then
    return 0
  fi
  # A core module rebuilt with the same bytes (a source touched, a comment
  # edited) gives the same component: it is only marked as current.
  digest="$(sha256sum "$core" | cut -d' ' -f1)"
  if [ -f "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ]; then
    touch "$out"
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
  "$tools/venv/bin/wasm-tools" strip -a "$tmp/component.wasm" -o "$tmp/stripped.wasm"
  "$tools/venv/bin/wasm-tools" validate "$tmp/stripped.wasm"
  # Replaced in one step: a test or a build running beside this one reads the
  # old component or the new one, never part of one.
  mv "$tmp/stripped.wasm" "$out"
  echo "$digest" >"$stamp"
  rm -rf "$tmp"
}
