//! `shoal-node [path/to/shoal.conf] [--directive value ...]`

use anyhow::Context;
use shoal_node::config::Config;
use shoal_node::exec::Executor;

// The allocator is wrapped so `used_memory` (and the `maxmemory` check) is a live count of
// every thread's allocations (see `shoal_node::memory`).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: shoal_node::memory::Counting<mimalloc::MiMalloc> =
    shoal_node::memory::Counting::new(mimalloc::MiMalloc);
#[cfg(not(feature = "mimalloc"))]
#[global_allocator]
static GLOBAL: shoal_node::memory::Counting<std::alloc::System> =
    shoal_node::memory::Counting::new(std::alloc::System);

fn main() -> anyhow::Result<()> {
    shoal_node::memory::mark_installed();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-v") {
        println!("Shoal server v={} (redis_version={})", shoal_node::VERSION, shoal_node::REDIS_VERSION);
        return Ok(());
    }
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    shoal_node::logging::init(
        config.get("loglevel").unwrap_or("notice"),
        config.get("logfile").unwrap_or(""),
    )
    .context("opening the log file")?;
    let dir = config.get("dir").unwrap_or("").to_string();
    if !dir.is_empty() {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating dir {dir}"))?;
        std::env::set_current_dir(&dir).with_context(|| format!("changing to dir {dir}"))?;
    }
    // A panic on any thread must take the node down rather than leave it half-alive.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::exit(101);
    }));
    let node = Executor::build(config).context("starting the node")?;
    log::info!(
        "Shoal {} (redis_version {}) pid={}",
        shoal_node::VERSION,
        shoal_node::REDIS_VERSION,
        std::process::id()
    );
    let mode = if node.srv.cluster.is_some() { "cluster" } else { "standalone" };
    log::info!("Running mode={mode}, port={}.", node.port());
    if node.tls_port() != 0 {
        log::info!("TLS listening, tls-port={}.", node.tls_port());
    }
    log::info!("Ready to accept connections tcp");
    node.run().context("event loop")?;
    Ok(())
}
