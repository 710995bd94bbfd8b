//! `shoal-operator`: `local` runs a self-managing cluster of `shoal-node` processes on this
//! machine; `run` is the operator inside Kubernetes; `crd` prints the CustomResourceDefinition
//! (the source of `manifests/crd.yaml` and the Helm chart's `crds/`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use shoal_operator::controlplane::autoscaler::IoThreadsPolicy;
use shoal_operator::k8s;
use shoal_operator::local::{self, LocalConfig};

#[derive(Parser, Debug)]
#[command(name = "shoal-operator", version, about = "Shoal control plane and operator")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a self-managing cluster of shoal-node processes on this machine.
    Local(Box<LocalArgs>),
    /// Run the operator inside Kubernetes.
    Run(RunArgs),
    /// Print the ShoalCluster CustomResourceDefinition as YAML.
    Crd,
}

/// `run` flags; each has an environment variable the Helm chart sets.
#[derive(Args, Debug)]
struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "SHOAL_WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "SHOAL_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: std::net::SocketAddr,
    /// Take a Lease before reconciling (needed with more than one replica).
    #[arg(long, env = "SHOAL_LEADER_ELECT", default_value_t = false)]
    leader_elect: bool,
    /// Namespace of the Lease (default: the pod's namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    #[arg(long, env = "SHOAL_LEASE_NAME", default_value = "shoal-operator")]
    lease_name: String,
    /// This replica's identity in the Lease (default: the pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Clusters reconciled concurrently.
    #[arg(long, env = "SHOAL_CONCURRENCY", default_value_t = 4)]
    concurrency: u16,
    /// The shoal-node image for clusters whose spec names none.
    #[arg(long, env = "SHOAL_NODE_IMAGE")]
    node_image: Option<String>,
    /// The cluster DNS domain.
    #[arg(long, env = "SHOAL_CLUSTER_DOMAIN", default_value = "cluster.local")]
    cluster_domain: String,
}

impl RunArgs {
    fn config(self) -> k8s::run::RunConfig {
        let mut defaults =
            k8s::resources::Defaults { cluster_domain: self.cluster_domain, ..Default::default() };
        if let Some(i) = self.node_image {
            defaults.node_image = i;
        }
        k8s::run::RunConfig {
            namespace: self.namespace,
            metrics_addr: self.metrics_addr,
            leader_election: self.leader_elect,
            lease_namespace: self.lease_namespace,
            lease_name: self.lease_name,
            identity: self.identity.unwrap_or_else(|| format!("shoal-operator-{}", std::process::id())),
            concurrency: self.concurrency.max(1),
            defaults,
        }
    }
}

/// Flags override the YAML file given with --config.
#[derive(Args, Debug, Default)]
struct LocalArgs {
    /// YAML configuration file (same field names as the flags, in camelCase).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the effective configuration as YAML and exit.
    #[arg(long)]
    print_config: bool,
    /// Shards to start with.
    #[arg(long)]
    shards: Option<u32>,
    /// Replicas per shard (separate shoal-node processes).
    #[arg(long)]
    replicas: Option<u32>,
    /// Port of shard 0 (shard i listens on base + i); default: ephemeral ports.
    #[arg(long)]
    port_base: Option<u16>,
    /// Prometheus metrics port of shard 0 (shard i serves on base + i); default: none.
    #[arg(long)]
    metrics_port_base: Option<u16>,
    /// Directory for the nodes' data.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The shoal-node binary.
    #[arg(long)]
    node_bin: Option<PathBuf>,
    /// Each node's maxmemory (e.g. 256mb).
    #[arg(long)]
    maxmemory: Option<String>,
    /// Each node's initial io-threads.
    #[arg(long)]
    io_threads: Option<u32>,
    /// A password every node requires (requirepass); the control loop authenticates with it.
    #[arg(long, env = "SHOAL_REQUIREPASS", hide_env_values = true)]
    requirepass: Option<String>,
    /// Turn the autoscaler on.
    #[arg(long)]
    autoscale: bool,
    /// Decide and log, but do not act.
    #[arg(long)]
    recommend_only: bool,
    #[arg(long)]
    min_shards: Option<u32>,
    #[arg(long)]
    max_shards: Option<u32>,
    /// Target executor busy ratio of a primary, percent (0 disables).
    #[arg(long)]
    cpu_target: Option<f64>,
    /// Target used_memory/maxmemory of a primary, percent (0 disables).
    #[arg(long)]
    memory_target: Option<f64>,
    #[arg(long)]
    scale_out_cooldown: Option<u64>,
    #[arg(long)]
    scale_in_cooldown: Option<u64>,
    #[arg(long)]
    disable_scale_in: bool,
    /// Tune each node's io-threads between these bounds.
    #[arg(long)]
    io_threads_min: Option<u32>,
    #[arg(long)]
    io_threads_max: Option<u32>,
    /// Control-loop period in milliseconds.
    #[arg(long)]
    interval_ms: Option<u64>,
}

impl LocalArgs {
    fn config(&self) -> anyhow::Result<LocalConfig> {
        let mut c = match &self.config {
            Some(p) => LocalConfig::from_file(p)?,
            None => LocalConfig::default(),
        };
        macro_rules! set {
            ($field:expr, $flag:expr) => {
                if let Some(v) = $flag.clone() {
                    $field = v;
                }
            };
        }
        set!(c.shards, self.shards);
        set!(c.replicas, self.replicas);
        set!(c.dir, self.dir);
        set!(c.interval_ms, self.interval_ms);
        c.port_base = self.port_base.or(c.port_base);
        c.metrics_port_base = self.metrics_port_base.or(c.metrics_port_base);
        c.node_bin = self.node_bin.clone().or(c.node_bin);
        c.maxmemory = self.maxmemory.clone().or(c.maxmemory);
        c.io_threads = self.io_threads.or(c.io_threads);
        c.requirepass = self.requirepass.clone().or(c.requirepass);
        let a = &mut c.autoscaling;
        a.enabled |= self.autoscale;
        a.recommend_only |= self.recommend_only;
        a.disable_scale_in |= self.disable_scale_in;
        set!(a.min_shards, self.min_shards);
        set!(a.max_shards, self.max_shards);
        set!(a.scale_out_cooldown_secs, self.scale_out_cooldown);
        set!(a.scale_in_cooldown_secs, self.scale_in_cooldown);
        if let Some(t) = self.cpu_target {
            a.cpu_target_percent = (t > 0.0).then_some(t);
        }
        if let Some(t) = self.memory_target {
            a.memory_target_percent = (t > 0.0).then_some(t);
        }
        if self.io_threads_min.is_some() || self.io_threads_max.is_some() {
            let io = a.io_threads.get_or_insert_with(IoThreadsPolicy::default);
            set!(io.min, self.io_threads_min);
            set!(io.max, self.io_threads_max);
        }
        if self.shards.is_none() && self.config.is_none() && a.enabled {
            c.shards = a.min_shards;
        }
        Ok(c)
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Cmd::Local(args) => {
            let cfg = args.config()?;
            if args.print_config {
                print!("{}", yaml_serde::to_string(&cfg)?);
                return Ok(());
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            // SIGHUP re-reads the file and flags; a changed node configuration is rolled out.
            let reload: local::Reload = Box::new(move || args.config().map_err(|e| format!("{e:#}")));
            rt.block_on(local::run(cfg, Some(reload)))?;
            Ok(())
        }
        Cmd::Crd => {
            use std::io::Write;
            // write_all, not print!: `shoal-operator crd | head` must not panic on a closed pipe.
            let _ = std::io::stdout().lock().write_all(k8s::crd_yaml().as_bytes());
            Ok(())
        }
        Cmd::Run(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(k8s::run::run(args.config()))?;
            Ok(())
        }
    }
}
