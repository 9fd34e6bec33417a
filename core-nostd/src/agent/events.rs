//! OS events on their way to the BMC's log (DESIGN §5): a bounded queue,
//! delivered in order over the session as EVENT, kept until the BMC ACKs
//! them and sent again after a reconnect (at least once; the sequence number
//! lets the BMC drop repeats).
//!
//! The queue has a fixed size. When it is full the oldest event is dropped
//! and counted, and the count travels as an event of its own
//! ([`DROPPED_ID`]) at the head of the queue: nothing is lost silently.

use heapless::Deque;

// The platform hands OS events over (`platform::OsEvents`): the type is
// the platform's, re-exported here where the queue keeps them.
pub use crate::platform::{OsEvent, OS_EVENT_ID_LEN, OS_EVENT_TEXT_LEN};

/// Events the agent queues for the BMC.
pub const EVENT_QUEUE: usize = 16;
/// Events sent and not yet ACKed at once on one session.
pub const EVENT_WINDOW: usize = 4;
/// The ID of the event reporting how many events the queue dropped.
pub const DROPPED_ID: &str = "BL2090";
/// The severity of [`DROPPED_ID`] (the audit severity code for warnings).
pub const DROPPED_SEVERITY: u8 = 1;

/// What a queue slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An OS event.
    Os(OsEvent),
    /// This many events were dropped because the queue was full.
    Dropped(u32),
}

/// A queued entry and the sequence number it is sent (and ACKed) with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// EVENT/ACK sequence number.
    pub seq: u32,
    /// The entry.
    pub entry: Entry,
}

/// The bounded, ordered queue of events not yet ACKed. `N` must be at least
/// 2 (one slot for the drop report, one for the newest event).
#[derive(Debug)]
pub struct EventQueue<const N: usize> {
    queue: Deque<Queued, N>,
    next_seq: u32,
    /// How many entries at the head were sent on the current session.
    sent: usize,
    dropped_total: u32,
}

impl<const N: usize> Default for EventQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> EventQueue<N> {
    /// An empty queue; sequence numbers start at 1.
    pub const fn new() -> Self {
        EventQueue {
            queue: Deque::new(),
            next_seq: 1,
            sent: 0,
            dropped_total: 0,
        }
    }

    fn seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        s
    }

    /// Drops the oldest OS event behind the head (the head itself when it
    /// is not a drop report) and counts it.
    fn drop_oldest(&mut self) -> u32 {
        match self.queue.pop_front() {
            Some(Queued {
                entry: Entry::Os(_),
                ..
            }) => {
                self.dropped_total = self.dropped_total.saturating_add(1);
                1
            }
            // A report is never dropped by another report.
            Some(Queued {
                entry: Entry::Dropped(n),
                ..
            }) => n,
            None => 0,
        }
    }

    /// Queues `event`. When the queue is full the oldest events make room,
    /// and their count goes into the drop report at the head, which is sent
    /// first. After an overflow everything not ACKed is sent again (the BMC
    /// drops repeats by sequence number).
    pub fn push(&mut self, event: OsEvent) {
        if self.queue.is_full() {
            let report_seq = match self.queue.front() {
                Some(Queued {
                    seq,
                    entry: Entry::Dropped(_),
                }) if self.sent == 0 => Some(*seq),
                _ => None,
            };
            // Without a report, two events make room (the report and the
            // new event); with one, the report and one event come out.
            let mut lost = self.drop_oldest();
            lost = lost.saturating_add(self.drop_oldest());
            let seq = match report_seq {
                Some(s) => s,
                None => self.seq(),
            };
            let _ = self.queue.push_front(Queued {
                seq,
                entry: Entry::Dropped(lost),
            });
            self.sent = 0;
        }
        let seq = self.seq();
        // Cannot fail: room was made above (N >= 2).
        let _ = self.queue.push_back(Queued {
            seq,
            entry: Entry::Os(event),
        });
    }

    /// The BMC stored the event `seq`: it and everything queued before it
    /// (sent earlier on the same in-order stream) leave the queue. Returns
    /// `false`, changing nothing, for an ACK outside the sent window (an
    /// event never sent in this session, or not queued at all): that is a
    /// protocol error, and it must not drop what the BMC never saw.
    pub fn ack(&mut self, seq: u32) -> bool {
        if !self.queue.iter().take(self.sent).any(|q| q.seq == seq) {
            return false;
        }
        while let Some(q) = self.queue.pop_front() {
            self.sent = self.sent.saturating_sub(1);
            if q.seq == seq {
                break;
            }
        }
        true
    }

    /// A new session started: everything not ACKed is sent again.
    pub fn resend_all(&mut self) {
        self.sent = 0;
    }

    /// The next entry to send now, if the window allows, marked as sent.
    pub fn next_to_send(&mut self) -> Option<&Queued> {
        if self.sent >= EVENT_WINDOW {
            return None;
        }
        let q = self.queue.iter().nth(self.sent)?;
        self.sent = self.sent.saturating_add(1);
        Some(q)
    }

    /// Entries waiting for an ACK (sent or not).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Events dropped on overflow since the agent started.
    pub fn dropped(&self) -> u32 {
        self.dropped_total
    }

    /// The queued entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Queued> {
        self.queue.iter()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    fn ev(i: u32) -> OsEvent {
        OsEvent::new(3, "OS1", &std::format!("event {i}"))
    }

    fn contents<const N: usize>(q: &EventQueue<N>) -> Vec<Entry> {
        q.iter().map(|q| q.entry.clone()).collect()
    }

    #[test]
    fn events_are_sent_in_order_within_the_window_and_leave_on_ack() {
        let mut q: EventQueue<8> = EventQueue::new();
        for i in 0..6 {
            q.push(ev(i));
        }
        let seqs: Vec<u32> = core::iter::from_fn(|| q.next_to_send().map(|e| e.seq)).collect();
        assert_eq!(seqs, [1, 2, 3, 4], "a window of {EVENT_WINDOW}");
        assert!(q.ack(1));
        assert_eq!(q.next_to_send().map(|e| e.seq), Some(5));
        assert!(q.ack(3));
        assert_eq!(q.len(), 3, "ACK 3 also settles 2");
        assert!(!q.ack(99));
        assert_eq!(q.len(), 3, "an ACK for nothing queued changes nothing");
    }

    #[test]
    fn an_ack_outside_the_sent_window_drops_nothing() {
        let mut q: EventQueue<8> = EventQueue::new();
        for i in 0..6 {
            q.push(ev(i));
        }
        // Window: 1..=4 sent, 5 and 6 queued but never sent.
        while q.next_to_send().is_some() {}
        assert!(!q.ack(6), "6 was never sent");
        assert_eq!(q.len(), 6, "nothing dropped by an ACK for an unsent event");
        assert!(!q.ack(0));
        assert_eq!(q.len(), 6);
        // After a reconnect nothing counts as sent until it is sent again.
        q.resend_all();
        assert!(!q.ack(1));
        assert_eq!(q.len(), 6);
        assert_eq!(q.next_to_send().map(|e| e.seq), Some(1));
        assert!(q.ack(1));
        assert_eq!(q.len(), 5);
    }

    #[test]
    fn unacked_events_are_sent_again_after_reconnect() {
        let mut q: EventQueue<8> = EventQueue::new();
        q.push(ev(0));
        q.push(ev(1));
        assert_eq!(q.next_to_send().map(|e| e.seq), Some(1));
        assert_eq!(q.next_to_send().map(|e| e.seq), Some(2));
        assert!(q.next_to_send().is_none());
        q.resend_all();
        assert_eq!(q.next_to_send().map(|e| e.seq), Some(1));
    }

    #[test]
    fn overflow_drops_the_oldest_and_reports_the_count_at_the_head() {
        let mut q: EventQueue<4> = EventQueue::new();
        for i in 0..10 {
            q.push(ev(i));
        }
        assert_eq!(q.dropped(), 7);
        assert_eq!(
            contents(&q),
            [
                Entry::Dropped(7),
                Entry::Os(ev(7)),
                Entry::Os(ev(8)),
                Entry::Os(ev(9))
            ]
        );
        // The report is sent first and leaves on its ACK like any event.
        let head = q.next_to_send().map(|e| (e.seq, e.entry.clone()));
        let Some((seq, Entry::Dropped(7))) = head else {
            panic!("{head:?}")
        };
        q.ack(seq);
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let long = "é".repeat(200);
        let e = OsEvent::new(2, "an-id-longer-than-sixteen", &long);
        assert_eq!(e.id.as_str(), "an-id-longer-tha");
        assert_eq!(e.text.len(), OS_EVENT_TEXT_LEN);
        assert!(e.text.chars().all(|c| c == 'é'));
    }
}
