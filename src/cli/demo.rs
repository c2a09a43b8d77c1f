//! `swarm demo`: serves the built-in demo target in the foreground until Ctrl-C.

use std::net::{IpAddr, SocketAddr};

use super::{CliError, DemoArgs};

pub fn run(args: DemoArgs) -> Result<(), CliError> {
    let ip: IpAddr = args.bind.parse().map_err(|_| {
        CliError::Usage(format!(
            "--bind must be an IP address such as 127.0.0.1, not `{}`",
            args.bind
        ))
    })?;
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let addr = SocketAddr::new(ip, args.port);
        let server = crate::demo::start_on(addr, args.tcp_port)
            .await
            .map_err(|source| CliError::Listen { addr, source })?;
        println!("swarm demo shop listening on {}", server.url());
        println!(
            "WebSocket on {}/ws, TCP line protocol on {}",
            server.url().replacen("http", "ws", 1),
            server.tcp_addr
        );
        println!(
            "try: swarm check plans/quickstart.yaml --target {}",
            server.url()
        );
        println!("press Ctrl-C to stop");
        crate::run::signals::shutdown().await;
        drop(server);
        Ok(())
    })
}
