//! `shoal-operator`: `local` runs a self-managing cluster of `shoal-node` processes on this
//! machine; `run` (the operator inside Kubernetes) and `crd` (prints the CustomResourceDefinition)
//! are provided by the `k8s` module.

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "shoal-operator", version, about = "Shoal control plane and operator")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a self-managing cluster of shoal-node processes on this machine.
    Local,
    /// Run the operator inside Kubernetes (provided by the k8s module).
    Run,
    /// Print the CustomResourceDefinition as YAML (provided by the k8s module).
    Crd,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Local => anyhow::bail!("local mode is not implemented yet"),
        // Entry points for the Kubernetes engineer's `k8s` module.
        Cmd::Run | Cmd::Crd => anyhow::bail!("the k8s module is not built into this binary yet"),
    }
}
