//! Measuring: samples and their median, and CPU time of this process and of
//! another (the emulator), from `getrusage` and `/proc`.

use anyhow::{bail, Context, Result};

/// One measured run.
#[derive(Clone, Copy, Default)]
pub(crate) struct Sample {
    pub(crate) wall: f64,
    pub(crate) cpu: f64,
    pub(crate) requests: f64,
    pub(crate) server_cpu: f64,
}

pub(crate) fn median(samples: &[Sample]) -> Sample {
    let pick = |f: fn(&Sample) -> f64| {
        let mut v: Vec<f64> = samples.iter().map(f).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    Sample {
        wall: pick(|s| s.wall),
        cpu: pick(|s| s.cpu),
        requests: pick(|s| s.requests),
        server_cpu: pick(|s| s.server_cpu),
    }
}

/// This process's user+sys CPU seconds.
pub(crate) fn own_cpu() -> Result<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; it was zeroed before.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            bail!("getrusage failed: {}", std::io::Error::last_os_error());
        }
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(secs(usage.ru_utime) + secs(usage.ru_stime))
}

/// Another process's user+sys CPU seconds, from /proc; an error when they
/// cannot be read (a zero would make ratios infinite).
pub(crate) fn process_cpu(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path} has no command name"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("{path} has no CPU time in field {}", i + 3))
    };
    // utime and stime are fields 14 and 15 of the line (11 and 12 after the name).
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz <= 0 {
        bail!("sysconf(_SC_CLK_TCK) failed");
    }
    Ok((ticks(11)? + ticks(12)?) / hz as f64)
}
