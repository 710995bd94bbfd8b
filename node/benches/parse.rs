//! Parser throughput: a pipeline of 16 GETs / SETs parsed the way an I/O thread does it
//! (incrementally, consuming each request from the buffer and slicing its arguments).

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use shoal_node::protocol::{Frame, Limits, Parser};

fn pipeline(cmd: &[&[u8]], n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(format!("*{}\r\n", cmd.len()).as_bytes());
        for (j, a) in cmd.iter().enumerate() {
            let arg = if j == 1 { format!("key:{i:012}").into_bytes() } else { a.to_vec() };
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(&arg);
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

fn parse_all(input: &[u8]) -> usize {
    let mut buf = BytesMut::from(input);
    let mut parser = Parser::new();
    let mut n = 0;
    while let Ok(Some(frame)) = parser.parse(&buf, Limits::default(), false) {
        let chunk = buf.split_to(frame.consumed()).freeze();
        if let Frame::Multibulk { args, .. } = frame {
            let args: Vec<Bytes> = args.into_iter().map(|r| chunk.slice(r)).collect();
            n += args.len();
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_pipeline16");
    g.throughput(Throughput::Elements(16));
    let get = pipeline(&[b"GET", b"k"], 16);
    g.bench_function("get", |b| b.iter(|| parse_all(black_box(&get))));
    let value = vec![b'x'; 16];
    let set = pipeline(&[b"SET", b"k", &value], 16);
    g.bench_function("set_16b", |b| b.iter(|| parse_all(black_box(&set))));
    let value = vec![b'x'; 512];
    let set = pipeline(&[b"SET", b"k", &value], 16);
    g.bench_function("set_512b", |b| b.iter(|| parse_all(black_box(&set))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
