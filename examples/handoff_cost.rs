//! Measures what handing each append to a writer thread would cost: a round
//! trip over crossbeam channels (request, then reply) versus taking an
//! uncontended mutex in the caller's thread. The numbers justify appending
//! inside a short critical section (docs/ARCHITECTURE.md).
//! Usage: `cargo run --release --example handoff_cost`.

use std::sync::Mutex;
use std::time::Instant;

fn main() {
    const N: u32 = 200_000;
    let (to_writer, requests) =
        crossbeam_channel::bounded::<(u64, crossbeam_channel::Sender<u64>)>(1024);
    let writer = std::thread::spawn(move || {
        let mut tail = 0u64;
        for (len, reply) in requests {
            tail += len;
            let _ = reply.send(tail);
        }
    });
    let started = Instant::now();
    let (reply_to, replies) = crossbeam_channel::bounded(1);
    for _ in 0..N {
        to_writer
            .send((208, reply_to.clone()))
            .expect("writer alive");
        replies.recv().expect("reply");
    }
    let handoff = started.elapsed() / N;
    drop(to_writer);
    writer.join().expect("writer");

    let tail = Mutex::new(0u64);
    let started = Instant::now();
    for _ in 0..N {
        *tail.lock().expect("lock") += 208;
    }
    let critical = started.elapsed() / N;
    println!(
        "thread round trip per append: {handoff:?}; uncontended critical section: {critical:?}"
    );
}
