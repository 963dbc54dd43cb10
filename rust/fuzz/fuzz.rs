//! Bounded mutation fuzzer for the decoders: `tether-proto-fuzz [ITERATIONS] [SEED]`.
//!
//! Starts from valid frames and bodies, mutates them (bit flips, byte stores, truncation,
//! extension, splicing) and feeds every result to every decoder. A panic is a failure
//! (the process aborts with the input printed); decoded values must re-encode to the
//! same bytes.

#![allow(
    clippy::indexing_slicing,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]

use std::process::ExitCode;
use tether_proto::auth::{
    hello_mac_input, key_from_file, welcome_mac_input, Challenge, C_AUTH, MAC_LEN, NONCE_LEN,
};
use tether_proto::export::Export;
use tether_proto::frame::{Header, HEADER_LEN, MAX_FRAME};
use tether_proto::kind::Kind;
use tether_proto::msg::{negotiate, ErrorMsg, Flushed, Hello, SinkAck, Welcome, W_RESUMED};
use tether_proto::process::{ProcAttrs, SignalMsg, SIGXFSZ};
use tether_proto::syscall::{BufDesc, SyscallReply, SyscallReq, DIR_IN, DIR_OUT, DIR_RET};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for k in Kind::ALL {
        let mut h = Header::new(k, 64);
        h.seq = 12345;
        out.push(h.encode().to_vec());
    }
    let mut b = [0u8; 64];
    let hello = Hello {
        min_version: 1,
        max_version: 1,
        boot_verifier: 7,
        max_frame: 65536,
        heartbeat_ms: 500,
        kinds: Kind::all_bits(),
        resume_session: 3,
        instance: 0xabcd,
        nonce: [0x11; NONCE_LEN],
        mac: [0x22; MAC_LEN],
    };
    let n = hello.encode(&mut b).unwrap_or(0);
    out.push(b[..n].to_vec());
    out.push(b[..Hello::LEN_V1].to_vec());
    out.push(b[..Hello::LEN_V2].to_vec());
    let w = Welcome {
        version: 1,
        boot_verifier: 8,
        max_frame: 4096,
        heartbeat_ms: 500,
        session: 1,
        kinds: 3,
        flags: W_RESUMED,
        mac: [0x33; MAC_LEN],
    };
    let n = w.encode(&mut b).unwrap_or(0);
    out.push(b[..n].to_vec());
    out.push(b[..Welcome::LEN_V1].to_vec());
    out.push(b[..Welcome::LEN_V2].to_vec());
    let c = Challenge {
        nonce: [0x77; NONCE_LEN],
        flags: C_AUTH,
    };
    let n = c.encode(&mut b).unwrap_or(0);
    out.push(b[..n].to_vec());
    let f = Flushed {
        up_to_seq: 99,
        boot_verifier: 0x5eed,
    };
    let n = f.encode(&mut b).unwrap_or(0);
    out.push(b[..n].to_vec());
    let mut req = SyscallReq {
        nr: 0,
        nbufs: 2,
        args: [3, 0, 64, 0, 0, 0],
        ..Default::default()
    };
    req.bufs[0] = BufDesc {
        arg: 1,
        dir: DIR_OUT | DIR_RET,
        len: 64,
    };
    req.bufs[1] = BufDesc {
        arg: 2,
        dir: DIR_IN,
        len: 4,
    };
    let n = req.encode(&mut b).unwrap_or(0);
    let mut v = b[..n].to_vec();
    v.extend_from_slice(b"abcd");
    out.push(v);
    let rep = SyscallReply {
        ret: 5,
        nbufs: 1,
        flags: 0,
        lens: [5, 0, 0, 0],
    };
    let n = rep.encode(&mut b).unwrap_or(0);
    let mut v = b[..n].to_vec();
    v.extend_from_slice(b"hello");
    out.push(v);
    let mut attrs = ProcAttrs {
        uid: 1000,
        fsize_cur: 4096,
        ngroups: 2,
        ..Default::default()
    };
    attrs.groups[..2].copy_from_slice(&[0, 1000]);
    let mut a = [0u8; ProcAttrs::MAX_LEN];
    let n = attrs.encode(&mut a).unwrap_or(0);
    out.push(a[..n].to_vec());
    out.push(b"3 /srv root_squash uids=1000-1999 gids=1000-1999".to_vec());
    out.push(b"5 /srv/x all_squash gids=7".to_vec());
    let n = SignalMsg { signo: SIGXFSZ }.encode(&mut b).unwrap_or(0);
    out.push(b[..n].to_vec());
    out
}

fn check(input: &[u8]) {
    if let Ok(h) = Header::decode(input, MAX_FRAME) {
        assert!(h.len <= MAX_FRAME);
        assert_eq!(&h.encode()[..], &input[..HEADER_LEN]);
    }
    let mut b = [0u8; 128];
    // Bodies without the optional trailing fields re-encode with them (zero): compare the
    // bytes the input has.
    if let Ok(m) = Hello::decode(input) {
        let n = m.encode(&mut b).expect("encode hello").min(input.len());
        assert!(
            n == Hello::LEN
                || (n == Hello::LEN_V2 && m.mac == [0; MAC_LEN] && m.nonce == [0; NONCE_LEN])
                || (n == Hello::LEN_V1 && m.instance == 0 && m.mac == [0; MAC_LEN])
        );
        assert_eq!(&b[..n], &input[..n]);
        // What the MAC covers is always there in a decoded HELLO's encoding.
        let parts = hello_mac_input(&m.nonce, &m.nonce, &b).expect("mac input");
        assert_eq!(parts[3], &b[..Hello::LEN_V2]);
        if let Ok((v, f)) = negotiate(&m, MAX_FRAME) {
            assert!(v >= m.min_version && v <= m.max_version && f <= MAX_FRAME);
        }
    }
    if let Ok(m) = Welcome::decode(input) {
        let n = m.encode(&mut b).expect("encode welcome").min(input.len());
        assert!(
            n == Welcome::LEN
                || (n == Welcome::LEN_V2 && m.mac == [0; MAC_LEN])
                || (n == Welcome::LEN_V1 && m.flags == 0 && m.mac == [0; MAC_LEN])
        );
        assert_eq!(&b[..n], &input[..n]);
        assert!(welcome_mac_input(&[0; NONCE_LEN], &[0; NONCE_LEN], &b, &m.mac).is_ok());
    }
    if let Ok(m) = Flushed::decode(input) {
        let n = m.encode(&mut b).expect("encode flushed");
        assert_eq!(&b[..n], &input[..n]);
    }
    if let Ok((req, data)) = SyscallReq::decode(input) {
        assert_eq!(data.len() as u64, req.in_len());
        let mut b = [0u8; 128];
        let n = req.encode(&mut b).expect("encode request");
        assert_eq!(&b[..n], &input[..n]);
    }
    if let Ok((rep, data)) = SyscallReply::decode(input) {
        assert_eq!(
            data.len() as u64,
            rep.lens[..rep.nbufs as usize]
                .iter()
                .map(|l| u64::from(*l))
                .sum::<u64>()
        );
    }
    if let Ok(m) = ProcAttrs::decode(input) {
        let mut a = [0u8; ProcAttrs::MAX_LEN];
        let n = m.encode(&mut a).expect("encode attrs");
        assert_eq!(&a[..n], input);
        assert!(m.fsize_cur <= m.fsize_max && m.groups().len() == m.ngroups as usize);
    }
    if let Ok(m) = SignalMsg::decode(input) {
        let n = m.encode(&mut b).expect("encode signal");
        assert_eq!(&b[..n], input);
    }
    if let Ok(m) = Challenge::decode(input) {
        let n = m.encode(&mut b).expect("encode challenge");
        assert_eq!(&b[..n], &input[..n]);
    }
    if let Ok(k) = key_from_file(input) {
        assert!(!k.is_empty() && input.starts_with(k));
    }
    if let Ok(line) = core::str::from_utf8(input) {
        if let Ok(e) = Export::parse(line) {
            assert!(e.root.starts_with('/') && e.uids.lo <= e.uids.hi && e.gids.lo <= e.gids.hi);
        }
    }
    let _ = ErrorMsg::decode(input);
    let _ = SinkAck::decode(input);
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let iterations: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7e7e_7e7e);
    let mut rng = Rng(seed | 1);
    let corpus = seeds();
    let mut accepted = 0u64;
    for _ in 0..iterations {
        let mut input = corpus[rng.below(corpus.len())].clone();
        for _ in 0..=rng.below(4) {
            match rng.below(5) {
                0 if !input.is_empty() => {
                    let i = rng.below(input.len());
                    input[i] ^= 1 << rng.below(8);
                }
                1 if !input.is_empty() => {
                    let i = rng.below(input.len());
                    input[i] = [0, 0xff, 0x7f, 0x80, rng.next() as u8][rng.below(5)];
                }
                2 => input.truncate(rng.below(input.len() + 1)),
                3 => input.extend((0..rng.below(40)).map(|_| rng.next() as u8)),
                _ => {
                    let other = &corpus[rng.below(corpus.len())];
                    let at = rng.below(input.len() + 1);
                    input.truncate(at);
                    input.extend_from_slice(&other[rng.below(other.len())..]);
                }
            }
        }
        let r = std::panic::catch_unwind(|| check(&input));
        if r.is_err() {
            eprintln!("fuzz: failing input: {input:02x?}");
            return ExitCode::FAILURE;
        }
        if Header::decode(&input, MAX_FRAME).is_ok() {
            accepted += 1;
        }
    }
    println!("fuzz: {iterations} inputs, {accepted} valid headers, no panic");
    ExitCode::SUCCESS
}
