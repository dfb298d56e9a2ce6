//! `tanya config`: the effective configuration.

use tanya::config::Config;

pub fn run(config: &Config) -> anyhow::Result<()> {
    print!("{}", toml::to_string_pretty(config)?);
    Ok(())
}
