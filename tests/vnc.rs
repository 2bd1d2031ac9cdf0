//! The real VNC console of `support::vnc` itself: Xvnc behind websockify
//! speaks RFB with VNC authentication, the sim hands it out, and nothing
//! of it is left after a drop.

use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::daemon::group_alive;
use crate::support::vnc::{VncServer, assert_rfb_greeting};

#[test]
fn a_real_vnc_server_behind_websockify_and_gone_after_drop() {
    let started = Instant::now();
    let Some(vnc) = VncServer::start("secret12") else {
        return;
    };
    let startup = started.elapsed();
    assert!(vnc.ws_url().starts_with("ws://127.0.0.1:"));
    assert_eq!(vnc.password(), "secret12");
    assert_rfb_greeting(vnc.ws_url(), &|| vnc.logs());
    // Two connections in a row, as a page and its reconnect do.
    assert_rfb_greeting(vnc.ws_url(), &|| vnc.logs());
    // Xvnc's own port speaks RFB too, on loopback.
    let mut rfb = TcpStream::connect(("127.0.0.1", vnc.rfb_port())).expect("connect to Xvnc");
    rfb.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    let mut banner = [0u8; 12];
    rfb.read_exact(&mut banner).expect("Xvnc's banner");
    assert_eq!(&banner, b"RFB 003.008\n");
    drop(rfb);

    // xev watches the root window's keys; nothing pressed yet.
    assert!(vnc.xev_log().exists());
    assert!(!vnc.xev_text().contains("KeyPress"), "{}", vnc.xev_text());

    let display = vnc.display();
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{}", &display[1..]));
    let socket_inode = std::fs::metadata(&socket)
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap_or_else(|e| panic!("no {}: {e}", socket.display()));
    let groups = vnc.process_groups();
    let dir = vnc.dir().to_path_buf();
    let port = vnc.ws_port();
    drop(vnc);
    for pgid in groups {
        assert!(!group_alive(pgid), "process group {pgid} outlived the drop");
    }
    // Another test's Xvnc may take the freed display number at once: only
    // this server's own socket must be gone.
    let same_socket = std::fs::metadata(&socket)
        .is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == socket_inode);
    assert!(!same_socket, "{} left behind", socket.display());
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    eprintln!("VncServer::start took {startup:?}");
}

/// The sim hands out the real console; its URL leads to the VNC server.
#[test]
fn the_sim_hands_out_a_real_vnc_console() {
    let Some(vnc) = VncServer::start("hcc-test-pw") else {
        return;
    };
    let sim = vnc.sim(&["--servers", "1"]);
    let id = sim.get("/servers").json()["servers"][0]["id"].clone();
    let console = sim.request_console(&id).json();
    assert_eq!(console["wss_url"], vnc.ws_url());
    assert_eq!(console["password"], "hcc-test-pw");
    let url = console["wss_url"].as_str().expect("wss_url");
    assert_rfb_greeting(url, &|| vnc.logs());
}
