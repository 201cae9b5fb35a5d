//! The running kernel's build configuration, where the machine offers it:
//! `/proc/config.gz` (CONFIG_IKCONFIG_PROC) or `/boot/config-RELEASE` (what
//! distributions install). With it, a missing feature can be traced to the
//! one option that is off (`CONFIG_KPROBES is not set`), rather than to
//! the option most likely to be.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The options of a kernel config file, and where they were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelConfig {
    /// The file read.
    pub source: PathBuf,
    options: HashMap<String, String>,
}

/// The running kernel's release (`uname -r`), from `/proc`.
pub fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The kernel's version as (major, minor), from a release string like
/// `6.12.95+deb12-amd64`.
pub fn version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

impl KernelConfig {
    /// Reads the running kernel's config from `/proc/config.gz`, else from
    /// `/boot/config-RELEASE`; `None` when neither can be read.
    pub fn load() -> Option<KernelConfig> {
        let boot = PathBuf::from(format!("/boot/config-{}", release()));
        KernelConfig::load_from(Path::new("/proc/config.gz"), &boot)
    }

    /// Like [`KernelConfig::load`], from the given files (tests).
    pub fn load_from(gz: &Path, plain: &Path) -> Option<KernelConfig> {
        if let Ok(f) = std::fs::File::open(gz) {
            let mut text = String::new();
            if flate2::read::GzDecoder::new(f)
                .read_to_string(&mut text)
                .is_ok()
            {
                return Some(KernelConfig::parse(gz, &text));
            }
        }
        let text = std::fs::read_to_string(plain).ok()?;
        Some(KernelConfig::parse(plain, &text))
    }

    /// Parses config text: `CONFIG_X=value` lines, and `# CONFIG_X is not
    /// set` as the value `n`.
    pub fn parse(source: &Path, text: &str) -> KernelConfig {
        let options = text
            .lines()
            .filter_map(|l| {
                l.split_once('=').or_else(|| {
                    l.strip_prefix("# ")?
                        .strip_suffix(" is not set")
                        .map(|k| (k, "n"))
                })
            })
            .filter(|(k, _)| k.starts_with("CONFIG_"))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        KernelConfig {
            source: source.to_path_buf(),
            options,
        }
    }

    /// The value of an option (`y`, `m`, a number, a string), `None` when
    /// it is not set.
    pub fn value(&self, option: &str) -> Option<&str> {
        self.options.get(option).map(String::as_str)
    }

    /// Whether the config mentions the option at all (set or not): an
    /// option the kernel's version does not have is not mentioned.
    pub fn knows(&self, option: &str) -> bool {
        self.options.contains_key(option)
    }

    /// Whether an option is built in or a module.
    pub fn is_set(&self, option: &str) -> bool {
        matches!(self.value(option), Some(v) if v != "n")
    }

    /// The first of `options` (outermost first) that is not set.
    pub fn first_unset<'a>(&self, options: &[&'a str]) -> Option<&'a str> {
        options.iter().copied().find(|o| !self.is_set(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn config_reads_plain_and_gzip_and_names_the_first_unset_option() {
        let text = "# comment\nCONFIG_KPROBES=y\n# CONFIG_KPROBE_EVENTS is not set\nCONFIG_X=\"a b\"\nCONFIG_M=m\n";
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("config.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().unwrap();
        let c = KernelConfig::load_from(&gz, Path::new("/nonexistent")).unwrap();
        assert_eq!(c.source, gz);
        assert!(c.is_set("CONFIG_KPROBES") && c.is_set("CONFIG_M"));
        assert_eq!(c.value("CONFIG_X"), Some("a b"));
        assert_eq!(
            c.first_unset(&["CONFIG_KPROBES", "CONFIG_KPROBE_EVENTS"]),
            Some("CONFIG_KPROBE_EVENTS")
        );
        assert_eq!(c.first_unset(&["CONFIG_KPROBES"]), None);
        assert!(c.knows("CONFIG_KPROBE_EVENTS") && !c.knows("CONFIG_NOPE"));
        assert!(!c.is_set("CONFIG_KPROBE_EVENTS"));
        let plain = dir.path().join("config");
        std::fs::write(&plain, text).unwrap();
        let p = KernelConfig::load_from(Path::new("/nonexistent"), &plain).unwrap();
        assert_eq!(p.first_unset(&["CONFIG_NOPE"]), Some("CONFIG_NOPE"));
        assert!(KernelConfig::load_from(Path::new("/no"), Path::new("/no")).is_none());
    }

    #[test]
    fn versions_parse_from_releases() {
        assert_eq!(version("6.12.95+deb12-amd64"), Some((6, 12)));
        assert_eq!(version("6.1.0-56-amd64"), Some((6, 1)));
        assert_eq!(version("5.4"), Some((5, 4)));
        assert_eq!(version("x"), None);
    }
}
