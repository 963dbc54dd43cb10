//! Prints a fixed table of encodings made with tether-proto; `wire_xcheck.c` prints the
//! same table with the selftests' C encoder and tests/check.sh compares the two outputs.

use tether_proto::auth::{hello_mac_input, welcome_mac_input, Challenge, C_AUTH};
use tether_proto::calls::{Effect, CALLS};
use tether_proto::codec::{sum64, SUM_INIT};
use tether_proto::frame::{Header, F_ACK_REQ, F_REPLY};
use tether_proto::hmac::hmac_sha256;
use tether_proto::kind::Kind;
use tether_proto::msg::{ErrorMsg, Flushed, Hello, SinkAck, Welcome, W_RESUMED};
use tether_proto::process::{ProcAttrs, SignalMsg, ThreadMsg, RLIM_INFINITY, THREAD_EXITED};
use tether_proto::syscall::{SyscallReply, SyscallReq};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() {
    let hdrs = [
        (Kind::Hello, 0, 28, 0, 1u64),
        (Kind::Heartbeat, F_REPLY, 0, 7, u64::MAX),
        (
            Kind::Sink,
            F_ACK_REQ,
            65536,
            0xdead_beef,
            0x0102_0304_0506_0708,
        ),
    ];
    for (kind, flags, len, session, seq) in hdrs {
        let mut h = Header::new(kind, len);
        h.flags = flags;
        h.session = session;
        h.seq = seq;
        println!("hdr {}", hex(&h.encode()));
        // Decoding our own encoding must give the fields back (also what the C side checks).
        assert_eq!(Header::decode(&h.encode(), len), Ok(h));
    }
    let mut b = [0u8; 128];
    let hello = Hello {
        min_version: 1,
        max_version: 1,
        boot_verifier: 0x0102_0304_0506_0708,
        max_frame: 1 << 20,
        heartbeat_ms: 500,
        kinds: Kind::all_bits(),
        resume_session: 0x0a0b_0c0d,
        instance: 0x8877_6655_4433_2211,
        nonce: [0; 32],
        mac: [0; 32],
    };
    let n = hello.encode(&mut b).unwrap_or(0).min(Hello::LEN_V2);
    println!("hello {}", hex(&b[..n]));
    let w = Welcome {
        version: 1,
        boot_verifier: 0x1122_3344_5566_7788,
        max_frame: 65536,
        heartbeat_ms: 250,
        session: 9,
        kinds: 0x1fe,
        flags: W_RESUMED,
        mac: [0; 32],
    };
    let n = w.encode(&mut b).unwrap_or(0).min(Welcome::LEN_V2);
    println!("welcome {}", hex(&b[..n]));
    let n = ErrorMsg {
        code: 5,
        detail: 4097,
    }
    .encode(&mut b)
    .unwrap_or(0);
    println!("error {}", hex(&b[..n]));
    let n = SinkAck {
        bytes: 1 << 20,
        sum: 0xfeed,
    }
    .encode(&mut b)
    .unwrap_or(0);
    println!("sinkack {}", hex(&b[..n]));
    let n = Flushed {
        up_to_seq: 0x0102_0304_0506_0708,
        boot_verifier: 0xf0e0_d0c0_b0a0_9080,
    }
    .encode(&mut b)
    .unwrap_or(0);
    println!("flushed {}", hex(&b[..n]));
    let mut h = Header::new(Kind::ServerFlushed, 16);
    h.session = 3;
    h.seq = 42;
    println!("hdr {}", hex(&h.encode()));
    let data: Vec<u8> = (0..70000u32)
        .map(|i| (i.wrapping_mul(131) >> 3) as u8)
        .collect();
    for len in [0usize, 1, 7, 8, 9, 15, 16, 17, 3584, 65536, 70000] {
        println!("sum64 {len} {:016x}", sum64(SUM_INIT, &data[..len]));
    }
    let chained = data[..65536].chunks(4096).fold(SUM_INIT, sum64);
    println!("sum64 chained {chained:016x}");
    println!("allkinds {:x}", Kind::all_bits());
    let n = SignalMsg { signo: 25 }.encode(&mut b).unwrap_or(0);
    println!("signal {}", hex(&b[..n]));
    let n = ThreadMsg {
        tid: 77,
        event: THREAD_EXITED,
    }
    .encode(&mut b)
    .unwrap_or(0);
    println!("thread {}", hex(&b[..n]));
    let mut a = ProcAttrs {
        uid: 1000,
        euid: 0,
        fsuid: 0,
        gid: 1000,
        egid: 0,
        fsgid: 100,
        fsize_cur: 4096,
        fsize_max: RLIM_INFINITY,
        ngroups: 3,
        ..Default::default()
    };
    a.groups[..3].copy_from_slice(&[0, 24, 1000]);
    let mut ab = [0u8; ProcAttrs::MAX_LEN];
    let n = a.encode(&mut ab).unwrap_or(0);
    println!("attrs {}", hex(&ab[..n]));
    assert_eq!(ProcAttrs::decode(&ab[..n]), Ok(a));
    // The shadow ABI: a request without buffers, a bare reply, the call table (the C side
    // prints userspace-tools/tether_abi.h's, which tether-shadow.c runs by).
    let req = SyscallReq {
        nr: 95,
        args: [0o22, 1, u64::MAX, 0, 0x8000_0000_0000_0000, 7],
        ..Default::default()
    };
    let n = req.encode(&mut b).unwrap_or(0);
    println!("syscall {}", hex(&b[..n]));
    println!("reply {}", hex(&SyscallReply::bare(-13)));
    for c in CALLS.iter() {
        let effect = match c.effect {
            Effect::None => 0,
            Effect::Commits => 1,
            Effect::CommitsIfCreates => 2,
            Effect::SyncsAll => 3,
            Effect::SyncsFile => 4,
        };
        println!("call {} {} {}", c.nr, effect, c.name);
    }

    // Authentication: CHALLENGE, and the MACs of an authenticated HELLO and WELCOME under
    // a fixed key and fixed nonces (the C side computes them with its own SHA-256).
    let key = b"tether-test-key-0123456789abcdef";
    let snonce: [u8; 32] = core::array::from_fn(|i| i as u8);
    let cnonce: [u8; 32] = core::array::from_fn(|i| 0xff - i as u8);
    let mut cb = [0u8; 64];
    let n = Challenge {
        nonce: snonce,
        flags: C_AUTH,
    }
    .encode(&mut cb)
    .unwrap_or(0);
    println!("challenge {}", hex(&cb[..n]));
    let mut hb = [0u8; Hello::LEN];
    let mut h = Hello {
        nonce: cnonce,
        ..hello
    };
    let _ = h.encode(&mut hb);
    let parts = hello_mac_input(&snonce, &cnonce, &hb).unwrap_or([&[]; 4]);
    h.mac = hmac_sha256(key, &parts);
    let n = h.encode(&mut hb).unwrap_or(0);
    println!("hello_auth {}", hex(&hb[..n]));
    let mut wb = [0u8; Welcome::LEN];
    let _ = w.encode(&mut wb);
    let parts = welcome_mac_input(&snonce, &cnonce, &wb, &h.mac).unwrap_or([&[]; 5]);
    let mac = hmac_sha256(key, &parts);
    let wa = Welcome { mac, ..w };
    let n = wa.encode(&mut wb).unwrap_or(0);
    println!("welcome_auth {}", hex(&wb[..n]));
    println!(
        "hmac_long_key {}",
        hex(&hmac_sha256(&[0xaa; 131], &[b"x".as_slice(); 3]))
    );
}
