//! A deadline for a connection's handshakes as a whole. Each read has a
//! timeout of its own, but a peer that sends a byte, or a ping, just
//! within it could hold a session's thread (and its ticket, and a
//! connection slot) for hours. Past its deadline a watched socket is shut
//! down, which ends whatever read or write waits on it. One thread
//! watches every socket, and runs only while there are some.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often the watcher looks.
const TICK: Duration = Duration::from_millis(200);

struct Watched {
    id: u64,
    deadline: Instant,
    socket: TcpStream,
    fired: Arc<AtomicBool>,
}

/// The sockets watched, and whether a watcher thread runs.
static WATCHED: Mutex<(Vec<Watched>, bool)> = Mutex::new((Vec::new(), false));
static NEXT: AtomicU64 = AtomicU64::new(0);

fn lock() -> MutexGuard<'static, (Vec<Watched>, bool)> {
    WATCHED.lock().unwrap_or_else(|e| e.into_inner())
}

/// A socket watched until this is dropped.
pub struct Watch {
    id: u64,
    fired: Arc<AtomicBool>,
}

impl Watch {
    /// Did the deadline pass (and the socket get shut down)?
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        lock().0.retain(|w| w.id != self.id);
    }
}

/// Shuts `socket` down `within` from now unless the returned guard is
/// dropped first.
pub fn watch(socket: &TcpStream, within: Duration) -> std::io::Result<Watch> {
    let socket = socket.try_clone()?;
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let fired = Arc::new(AtomicBool::new(false));
    let mut watched = lock();
    watched.0.push(Watched {
        id,
        deadline: Instant::now() + within,
        socket,
        fired: fired.clone(),
    });
    if !watched.1 {
        let spawned = std::thread::Builder::new()
            .name("hcc-deadline".into())
            .stack_size(64 * 1024)
            .spawn(watcher);
        if let Err(err) = spawned {
            watched.0.pop();
            return Err(err);
        }
        watched.1 = true;
    }
    Ok(Watch { id, fired })
}

fn watcher() {
    loop {
        std::thread::sleep(TICK);
        let mut watched = lock();
        let now = Instant::now();
        watched.0.retain(|w| {
            if w.deadline > now {
                return true;
            }
            w.fired.store(true, Ordering::SeqCst);
            let _ = w.socket.shutdown(Shutdown::Both);
            false
        });
        if watched.0.is_empty() {
            watched.1 = false;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn a_read_waiting_past_the_deadline_ends_and_a_dropped_watch_does_nothing() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        let _server = listener.accept().unwrap();
        let kept = watch(&client, Duration::from_millis(10)).unwrap();
        drop(kept);
        let watch = watch(&client, Duration::from_millis(300)).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 1];
        assert_eq!(client.read(&mut buf).unwrap(), 0);
        assert!(watch.fired());
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
