pub fn run(_port: u16) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("demo: not yet")
}
