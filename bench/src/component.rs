//! Size, compile, load and instantiate times of a component, and the rows
//! that set two builds side by side.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use wasmtime::component::Component;

use ld_dynamodb_host::embed::{
    full_wasi_instance_pre, new_engine, new_store, HostOptions, Runtime,
};

use crate::measure::{median, Sample};

/// Size, compile, load and instantiate times of one component.
pub(crate) struct ComponentFigures {
    size: usize,
    gzip: usize,
    compile: f64,
    load: f64,
    instantiate: f64,
}

impl ComponentFigures {
    /// Table rows, with a second column when `before` is given.
    pub(crate) fn rows(&self, before: Option<&ComponentFigures>) -> String {
        let row = |what: &str, f: &dyn Fn(&ComponentFigures) -> String| match before {
            Some(b) => format!("| {what} | {} | {} |\n", f(self), f(b)),
            None => format!("| {what} | {} |\n", f(self)),
        };
        [
            row("size", &|c| {
                format!("{} bytes ({} gzipped)", c.size, c.gzip)
            }),
            row("compile with Cranelift", &|c| {
                format!("{:.1} ms", c.compile * 1e3)
            }),
            row("load the precompiled artifact", &|c| {
                format!("{:.2} ms", c.load * 1e3)
            }),
            row("instantiate (from `InstancePre`)", &|c| {
                format!("{:.1} µs", c.instantiate * 1e6)
            }),
        ]
        .concat()
    }
}

/// Measures a component: medians of `runs` compiles, of loads of the
/// precompiled artifact, and of 20 instantiations. `full_wasi` links all of
/// wasmtime-wasi (for builds that import more than the proxy world).
pub(crate) async fn component_figures(
    path: &Path,
    runs: usize,
    full_wasi: bool,
) -> Result<ComponentFigures> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let gz = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -9c {} | wc -c", path.display()))
        .output()?;
    let gzip: usize = String::from_utf8_lossy(&gz.stdout)
        .trim()
        .parse()
        .with_context(|| format!("gzip gave no size for {}", path.display()))?;
    let engine = new_engine()?;
    let mut compile = Vec::new();
    let mut component = None;
    for _ in 0..runs {
        let t = Instant::now();
        component = Some(Component::new(&engine, &bytes).map_err(|e| anyhow::anyhow!("{e}"))?);
        compile.push(Sample {
            wall: t.elapsed().as_secs_f64(),
            ..Sample::default()
        });
    }
    let serialized = component
        .unwrap()
        .serialize()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut load = Vec::new();
    let mut loaded = None;
    for _ in 0..runs.max(5) {
        let t = Instant::now();
        // SAFETY: produced just above by the same engine.
        loaded = Some(
            unsafe { Component::deserialize(&engine, &serialized) }
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        load.push(Sample {
            wall: t.elapsed().as_secs_f64(),
            ..Sample::default()
        });
    }
    let loaded = loaded.unwrap();
    let mut instantiate = Vec::new();
    if full_wasi {
        let pre = full_wasi_instance_pre(&engine, &loaded)?;
        for _ in 0..20 {
            let mut store = new_store(&engine, &HostOptions::default());
            let t = Instant::now();
            let _instance = pre.instantiate_async(&mut store).await?;
            instantiate.push(Sample {
                wall: t.elapsed().as_secs_f64(),
                ..Sample::default()
            });
        }
    } else {
        let runtime = Runtime::from_compiled(engine, loaded)?;
        for _ in 0..20 {
            let t = Instant::now();
            let _instance = runtime.instance(&HostOptions::default()).await?;
            instantiate.push(Sample {
                wall: t.elapsed().as_secs_f64(),
                ..Sample::default()
            });
        }
    }
    Ok(ComponentFigures {
        size: bytes.len(),
        gzip,
        compile: median(&compile).wall,
        load: median(&load).wall,
        instantiate: median(&instantiate).wall,
    })
}
