// wasi:config/store for the edge flag server under `jco serve`: the settings
// are the JSON object in the LD_EDGE_CONFIG environment variable, such as
// {"table": "flags", "region": "us-east-1"}. Secrets stay in their own
// environment variables (LD_SDK_KEY, AWS_*), which the app reads through
// wasi:cli/environment, as under `wasmtime serve`.
const settings = JSON.parse(process.env.LD_EDGE_CONFIG ?? "{}");

/** A setting's value, or undefined when it is not set. */
export function get(key) {
  const value = settings[key];
  return value === undefined ? undefined : String(value);
}

/** Every setting, as [name, value] pairs. */
export function getAll() {
  return Object.entries(settings).map(([key, value]) => [key, String(value)]);
}
