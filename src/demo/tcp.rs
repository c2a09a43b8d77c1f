//! The demo's TCP line protocol, Redis-like: each line (ended by `\n`, a `\r` before
//! it ignored) is a command. `PING` answers `+PONG`, `ECHO text` answers `+text`,
//! `QUIT` answers `+OK` and closes; anything else answers `-ERR unknown command`.
//! Every answer ends with `\r\n`. A line longer than 64 KiB closes the connection.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The longest line read.
const MAX_LINE: u64 = 64 * 1024;

/// Serves every connection `listener` accepts, until the task is dropped.
pub(super) async fn serve(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream));
            }
            Err(e) => {
                tracing::debug!("demo tcp accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

async fn connection(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        match (&mut lines).take(MAX_LINE).read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) if !line.ends_with('\n') => return,
            Ok(_) => {}
        }
        let command = line.trim_end_matches(['\r', '\n']);
        let (verb, arg) = command.split_once(' ').unwrap_or((command, ""));
        let (reply, quit) = match verb.to_ascii_uppercase().as_str() {
            "PING" => ("+PONG".to_owned(), false),
            "ECHO" => (format!("+{arg}"), false),
            "QUIT" => ("+OK".to_owned(), true),
            _ => ("-ERR unknown command".to_owned(), false),
        };
        if write
            .write_all(format!("{reply}\r\n").as_bytes())
            .await
            .is_err()
            || quit
        {
            return;
        }
    }
}
