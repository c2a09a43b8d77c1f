//! The coordinator's side of the run, one task per worker ([`drive`]): it relays the
//! controller's commands to the worker, and the worker's units, watermark, events and
//! status to the controller, which merges them (`engine::schedule`), and it decides
//! when a worker is lost.
//!
//! It refuses (and drops) a worker that sends a malformed or oversized frame, a
//! message of another run, a unit for a second the run has not reached, a thread that
//! is not its own, or more messages than any worker sends; silence for [`LOSS_AFTER`]
//! is a loss too, and so is a watermark (the last second a worker sent all its units
//! for) [`UNITS_WITHIN`] behind the run: the controller makes a second final only once
//! every live worker's watermark passed it, so a worker that falls that far behind
//! would hold the whole run back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::time::timeout;

use super::WorkerState;
use super::Workers;
use super::coordinator::SEND_WITHIN;
use super::proto::{Down, Event, RunId, Up};
use super::transport::{self, Incoming, Socket};
use crate::engine::control::Control;
use crate::engine::remote::{Events, ThreadCmd, ThreadEvent};
use crate::metrics::snapshot::EndReason;
use crate::metrics::wire;

/// A worker silent this long (no unit, status or pong) is lost.
pub const LOSS_AFTER: Duration = Duration::from_secs(3);
/// A worker whose units for a second have not all come this long after the second
/// ended is lost (the second is then final without it; the loss marks the gap).
pub const UNITS_WITHIN: Duration = Duration::from_secs(10);
/// A worker sends a unit and a status a second, and events in bursts at most a few
/// thousand a second: past this many messages in one second it is misbehaving.
const MAX_MESSAGES_PER_S: u32 = 20_000;

/// One worker's connection during the run.
pub(super) struct Driven {
    pub socket: Socket,
    pub index: usize,
    pub name: String,
    pub run: RunId,
    /// Its run-wide threads: `count` from `first`; `cmds` has one receiver each.
    pub first: usize,
    pub count: usize,
    pub cmds: Vec<mpsc::UnboundedReceiver<ThreadCmd>>,
    pub events: Events,
    pub control: mpsc::UnboundedSender<Control>,
    pub requests: usize,
    /// A loss ends the run (`--on-worker-loss fail`, or `iterations`, whose tickets
    /// the lost worker took with it).
    pub stop_on_loss: bool,
    pub origin: Instant,
    pub workers: Workers,
    pub saturated: Arc<watch::Sender<Option<String>>>,
    /// The worker's watermark: it sent every unit up to this second.
    pub through: u64,
}

/// What to do after a message.
enum Next {
    Go,
    Done,
}

/// Relays between one worker and the controller until the worker is done or lost.
pub(super) async fn drive(mut d: Driven, failed_start: Option<String>) {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<(usize, ThreadCmd)>();
    for (i, mut rx) in std::mem::take(&mut d.cmds).into_iter().enumerate() {
        let (tx, thread) = (out_tx.clone(), d.first + i);
        tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                if tx.send((thread, cmd)).is_err() {
                    break;
                }
            }
        });
    }
    drop(out_tx);
    let mut keepalive = tokio::time::interval(Duration::from_secs(1));
    let mut heard = tokio::time::Instant::now();
    let mut window = (tokio::time::Instant::now(), 0u32);
    let mut commands_open = true;
    let outcome: Result<(), String> = match failed_start {
        Some(e) => Err(e),
        None => loop {
            tokio::select! {
                incoming = tokio::time::timeout_at(heard + LOSS_AFTER, transport::recv::<Up>(&mut d.socket)) => {
                    let now = tokio::time::Instant::now();
                    match incoming {
                        Err(_) => break Err(format!("nothing heard for {}s", LOSS_AFTER.as_secs())),
                        Ok(Err(e)) => break Err(e.to_string()),
                        Ok(Ok(Incoming::Alive)) => heard = now,
                        Ok(Ok(Incoming::Msg(up))) => {
                            heard = now;
                            if now.duration_since(window.0) >= Duration::from_secs(1) {
                                window = (now, 0);
                            }
                            window.1 += 1;
                            if window.1 > MAX_MESSAGES_PER_S {
                                break Err(refused(&mut d.socket, format!("more than {MAX_MESSAGES_PER_S} messages in a second")).await);
                            }
                            match d.on_message(up) {
                                Ok(Next::Go) => {}
                                Ok(Next::Done) => break Ok(()),
                                Err(why) => break Err(refused(&mut d.socket, why).await),
                            }
                        }
                    }
                }
                cmd = out_rx.recv(), if commands_open => match cmd {
                    Some((thread, cmd)) => {
                        let msg = Down::Cmd { run: d.run, thread: thread as u32, cmd: (&cmd).into() };
                        if let Err(e) = send_within(&mut d.socket, &msg).await {
                            break Err(e);
                        }
                    }
                    None => commands_open = false,
                },
                _ = keepalive.tick() => {
                    if let Some(why) = d.behind() {
                        break Err(refused(&mut d.socket, why).await);
                    }
                    if let Err(e) = timeout(SEND_WITHIN, transport::ping(&mut d.socket)).await.map_err(|_| "it stopped reading".to_owned()).and_then(|r| r.map_err(|e| e.to_string())) {
                        break Err(e);
                    }
                }
            }
        },
    };
    // Done or lost, it sends no more units: its seconds no longer wait for it.
    d.mark(u64::MAX);
    match outcome {
        Ok(()) => {
            tracing::info!(worker = %d.name, "worker done");
            d.workers.update(d.index, |r| r.state = WorkerState::Done);
            let _ = d.socket.close(None).await;
        }
        Err(why) => d.lost(why),
    }
}

async fn send_within(socket: &mut Socket, msg: &Down) -> Result<(), String> {
    match timeout(SEND_WITHIN, transport::send(socket, msg)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("it stopped reading".into()),
    }
}

/// Refuses a worker mid-run: tells it why, and returns the reason.
async fn refused(socket: &mut Socket, why: String) -> String {
    let msg = Down::Refused {
        reason: why.clone(),
    };
    let _ = timeout(SEND_WITHIN, transport::send(socket, &msg)).await;
    let _ = timeout(SEND_WITHIN, socket.close(None)).await;
    format!("refused: {why}")
}

impl Driven {
    /// Passes the worker's watermark on to the controller (a worker with no threads
    /// sends no units and holds nothing back).
    fn mark(&mut self, through: u64) {
        if self.count > 0 && through > self.through {
            self.through = through;
            let _ = self
                .events
                .send((self.first, ThreadEvent::Through(through)));
        }
    }

    /// Why the worker is too far behind with its units, if it is.
    fn behind(&self) -> Option<String> {
        let waiting = self.through.saturating_add(1);
        let due = self.origin + Duration::from_secs(waiting) + UNITS_WITHIN;
        (self.count > 0 && Instant::now() > due).then(|| {
            format!(
                "its units for second {waiting} did not all come within {}s",
                UNITS_WITHIN.as_secs()
            )
        })
    }

    /// Handles one message; an error is why the worker is refused.
    fn on_message(&mut self, up: Up) -> Result<Next, String> {
        let run = match &up {
            Up::Ready { run, .. }
            | Up::Failed { run, .. }
            | Up::Unit { run, .. }
            | Up::Event { run, .. }
            | Up::Status { run, .. }
            | Up::Done { run } => *run,
            Up::Hello { .. } => return Err("a second hello".into()),
        };
        if run != self.run {
            return Err("a message of another run (replayed?)".into());
        }
        match up {
            Up::Unit { unit, through, .. } => {
                let delta = wire::decode_unit(&unit, self.requests).map_err(|e| e.to_string())?;
                let now = self.origin.elapsed().as_secs();
                if delta.second > now + 2 {
                    return Err(format!(
                        "a unit for second {}, the run is at second {now}",
                        delta.second
                    ));
                }
                let rps = delta.requests_total() as f64;
                let users = delta.active;
                self.workers.update(self.index, |r| {
                    r.status.requests_per_s = rps;
                    r.status.users = users;
                });
                let _ = self.events.send((self.first, ThreadEvent::Unit(delta)));
                self.mark(through.min(now + 2));
            }
            Up::Event { thread, event, .. } => {
                let thread = thread as usize;
                if thread < self.first || thread >= self.first + self.count {
                    return Err(format!("an event of thread {thread}, not one of its own"));
                }
                let event = match event {
                    Event::Completed(n) => ThreadEvent::Completed(n),
                    Event::NeedTickets { starving } => ThreadEvent::NeedTickets { starving },
                    Event::Returned(n) => ThreadEvent::Returned(n),
                    Event::FeederExhausted { feeder } => {
                        ThreadEvent::End(EndReason::FeederExhausted { feeder })
                    }
                    Event::Stopping { active } => ThreadEvent::Stopping { active },
                };
                let _ = self.events.send((thread, event));
            }
            Up::Status { status, .. } => {
                if let Some(why) = &status.saturated
                    && self.saturated.borrow().is_none()
                {
                    let named = format!("worker `{}`: {why}", self.name);
                    eprintln!("warning: the generator saturated on {named}");
                    self.saturated.send_replace(Some(named));
                }
                self.workers.update(self.index, |r| {
                    r.status.cpu_percent = status.cpu_percent;
                    r.status.lag_p99_ms = status.lag_p99_ms;
                    if status.saturated.is_some() {
                        r.status.saturated = status.saturated;
                    }
                });
            }
            Up::Failed { error, .. } => return Err(error),
            Up::Done { .. } => return Ok(Next::Done),
            Up::Ready { .. } | Up::Hello { .. } => return Err("an unexpected message".into()),
        }
        Ok(Next::Go)
    }

    /// The worker is gone: mark it, and end the run or carry on without it.
    fn lost(self, why: String) {
        let at = self.origin.elapsed().as_secs_f64();
        eprintln!("worker `{}` lost at {at:.1}s: {why}", self.name);
        self.workers.update(self.index, |r| {
            r.state = WorkerState::Lost;
            r.lost = Some((at, why.clone()));
        });
        if self.stop_on_loss {
            let _ = self.control.send(Control::Stop);
        } else {
            // Its users are no longer running anywhere.
            for t in self.first..self.first + self.count {
                let _ = self.events.send((t, ThreadEvent::Stopping { active: 0 }));
            }
        }
    }
}
